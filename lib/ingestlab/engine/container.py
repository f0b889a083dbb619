"""The container runtime: a `Component` backed by a container of the workbook's Docker engine.

`ContainerProcess` is the container twin of `host.process.NativeProcess`, with the same constructor
shape (name, argv, log_path, env, cwd, cores, endpoint) plus the image and bind mounts, and the
same behaviour seen from the outside:

- **Host networking, always** (`network_mode="host"`): the program listens on 127.0.0.1 as a
  native one does, so readiness checks, load and read-back are unchanged, and no bridge or
  private address range ever appears. A container created with any other network mode is
  removed and refused.
- **The same pinning**: `cpuset_cpus` from the role's cores (the cgroup's cpuset, which every
  thread inherits, like `taskset` natively).
- **`pid` is a host pid**: the container's main process as the engine reports it
  (`State.Pid`); it runs as pid 1 of the container's pid namespace, without an init in
  between, so `/proc` telemetry (RSS, threads, CPU) works unchanged and
  `telemetry.cgroup` finds the container's cgroup from it.
- **Logs**: streamed from the engine into `log_path` by a thread while the container runs
  (so the file grows as a native log does, and stays after the container is removed);
  `logs()` asks the engine while the container exists, and reads the file afterwards.
- **stop(timeout_s)**: SIGTERM through the engine (`kill(signal="SIGTERM")`: the services
  flush their producers on it), wait up to `timeout_s`, then SIGKILL; then the container is
  removed. testcontainers' own `stop()` removes with force (an immediate SIGKILL), so it is
  only used for that last removal.
- **pause()/resume()** send SIGSTOP/SIGCONT to the main process and its descendants from the
  host, exactly as the native runtime does, not the engine's pause (the cgroup freezer): a
  fault injected the same way in both runtimes means a difference measured between them comes
  from the runtime, not from the fault; a signal takes microseconds where a round trip to
  the engine takes milliseconds (the calibration's stall is 200 ms long and timed); and a
  frozen container cannot even be sent SIGTERM by the engine. (Signals from the host reach a
  pid-namespace init: SIGSTOP cannot be ignored, SIGCONT always continues.)
- **Nothing left behind**: every container carries `{CONTAINER_LABEL: "1"}` and labels naming
  its owner (this process: pid and start time), its stack and its component; a failed start
  removes what it created, `stop`/`kill` remove the container in `finally`, the `Stack`
  removes whatever still carries its stack's label when it closes, and a new container
  runtime first removes the containers of owners that no longer exist (a killed kernel's).
  The engine itself removes every labelled container when it stops.

testcontainers-python creates and starts the container (`DockerContainer`), with Ryuk
disabled (its image cannot be pulled here; the labels above do its job).
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil

from ingestlab.engine.docker_engine import DockerEngine, shared_engine
from ingestlab.engine.labels import CONTAINER_LABEL, OWNER_LABEL, container_labels, owner_alive
from ingestlab.host.component import StartupError, log_tail
from ingestlab.names import CONTAINER

if TYPE_CHECKING:  # docker and testcontainers load only when a container is started
    from docker.models.containers import Container
    from testcontainers.core.container import DockerContainer

NETWORK_MODE = "host"
# How long to wait for the log-following thread to finish once the container has exited.
_LOG_DRAIN_S = 5.0
_KILL_WAIT_S = 30.0


@dataclass(frozen=True)
class Bind:
    """A host directory mounted into the container (read-write unless `mode` is "ro")."""

    host: Path
    container: str
    mode: str = "rw"

    @classmethod
    def same_path(cls, path: Path, mode: str = "rw") -> Bind:
        """`path` mounted at the same path inside the container (so absolute paths written
        into config files mean the same thing on both sides)."""
        return cls(Path(path), str(path), mode)


# --- pure parts -----------------------------------------------------------------------------
def container_kwargs(
    name: str,
    argv: Sequence[str],
    *,
    image: str,
    env: Mapping[str, str] | None = None,
    cwd: str | Path | None = None,
    cores: tuple[int, ...] | None = None,
    mounts: Sequence[Bind] = (),
    labels: Mapping[str, str] | None = None,
    memory_limit_bytes: int | None = None,
) -> dict[str, Any]:
    """Keyword arguments of testcontainers' `DockerContainer` for one component.

    `argv` is the whole command, as natively: it becomes the entrypoint, so neither the
    image's ENTRYPOINT nor its CMD adds anything. `cwd` is a path inside the container
    (default: the image's WORKDIR). Host networking always; `cores` become the cpuset.
    `memory_limit_bytes` (None: no limit) becomes the cgroup's memory limit (`mem_limit`),
    with memory + swap limited to the same (`memswap_limit`), so swap cannot stretch it: past
    it the kernel's OOM killer ends the container's process (State.OOMKilled, `exit_state`).
    """
    if not argv:
        raise ValueError("argv is empty")
    kwargs: dict[str, Any] = {
        "image": image,
        "name": f"ingestlab-{name}-{uuid.uuid4().hex[:8]}",
        "env": dict(env or {}),
        "volumes": [(str(m.host), m.container, m.mode) for m in mounts],
        "entrypoint": list(argv),
        "network_mode": NETWORK_MODE,
        "labels": dict(labels) if labels is not None else container_labels(name),
    }
    if cores:
        kwargs["cpuset_cpus"] = ",".join(map(str, cores))
    if memory_limit_bytes is not None:
        if memory_limit_bytes <= 0:
            raise ValueError(f"memory_limit_bytes must be > 0, got {memory_limit_bytes!r}")
        kwargs["mem_limit"] = kwargs["memswap_limit"] = int(memory_limit_bytes)
    if cwd is not None:
        kwargs["working_dir"] = str(cwd)
    return kwargs


# --- the engine side ------------------------------------------------------------------------
def prepare_testcontainers(engine: DockerEngine) -> None:
    """Point testcontainers at `engine`: its environment (DOCKER_HOST, TC_HOST, Ryuk off) in
    this process's environment, where testcontainers reads it when it creates a container
    (with DOCKER_HOST set it also leaves the network alone; without, on a VM with /.dockerenv,
    it would try to attach containers to the network it believes it runs in), and Ryuk
    disabled in its config (read once, possibly before the environment was set)."""
    os.environ.update(engine.environ())
    from testcontainers.core.config import testcontainers_config

    testcontainers_config.ryuk_disabled = True


def remove_containers(client: Any, labels: Mapping[str, str]) -> list[str]:
    """Force-remove every container carrying all of `labels` (running or not); their ids."""
    filters = {"label": [f"{key}={value}" for key, value in labels.items()]}
    removed = []
    for container in client.containers.list(all=True, filters=filters):
        with contextlib.suppress(Exception):  # removed meanwhile
            container.remove(force=True, v=True)
            removed.append(container.id)
    return removed


def remove_orphans(client: Any) -> list[str]:
    """Remove the workbook's containers whose owner process no longer exists (e.g. a notebook
    kernel killed before it could tear down); containers of living processes are left alone."""
    removed = []
    for container in client.containers.list(all=True, filters={"label": f"{CONTAINER_LABEL}=1"}):
        owner = (container.labels or {}).get(OWNER_LABEL)
        if owner and not owner_alive(owner):
            with contextlib.suppress(Exception):
                container.remove(force=True, v=True)
                removed.append(container.id)
    return removed


def _engine_errors() -> tuple[type[BaseException], ...]:
    """The docker SDK's API errors and requests' errors (timeouts, connection)."""
    import docker.errors
    import requests.exceptions

    return (docker.errors.APIError, requests.exceptions.RequestException)


# --- the component --------------------------------------------------------------------------
class ContainerProcess:
    """A component running in a container (see the module's doc). Use as a context manager or
    call `start()`/`stop()`; `run()` runs a one-shot command to completion.

    `engine` is a `docker_engine.DockerEngine` (default: the process's shared one, started on
    first use). `cwd` is the working directory inside the container. `memory_limit_bytes`
    (None: none) limits its memory, swap included (`container_kwargs`); `exit_state()` says
    whether the kernel's OOM killer ended it.
    """

    runtime = CONTAINER

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        image: str,
        log_path: Path,
        env: Mapping[str, str] | None = None,
        cwd: str | Path | None = None,
        cores: tuple[int, ...] | None = None,
        endpoint: str | None = None,
        mounts: Sequence[Bind] = (),
        labels: Mapping[str, str] | None = None,
        engine: DockerEngine | None = None,
        memory_limit_bytes: int | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.image = image
        self.cores = cores
        self.mounts = tuple(mounts)
        self.container_env = dict(env or {})
        self.cwd = cwd
        self.labels = dict(labels) if labels is not None else None
        self.memory_limit_bytes = memory_limit_bytes
        self._log_path = log_path
        self._endpoint = endpoint
        self._engine = engine
        self._tc: DockerContainer | None = None
        self._container: Container | None = None
        self._proc: psutil.Process | None = None
        self._log_thread: threading.Thread | None = None
        self._exit_code: int | None = None
        self.container_id: str | None = None  # kept after removal, for describe()
        self.create_s: float | None = None    # create + start through the engine, seconds
        self._state: dict[str, Any] | None = None  # the engine's State once it exited (exit_state)

    # --- Component protocol -------------------------------------------------------------
    @property
    def endpoint(self) -> str | None:
        return self._endpoint

    @property
    def pid(self) -> int | None:
        proc = self._proc
        if proc is None:
            return None
        try:
            if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                return proc.pid
        except psutil.NoSuchProcess:
            pass
        return None

    @property
    def log_path(self) -> Path:
        return self._log_path

    @property
    def returncode(self) -> int | None:
        """The exit code once the main process ended (None while it runs or before start)."""
        if self._exit_code is not None or self._container is None or self.is_running():
            return self._exit_code
        with contextlib.suppress(*_engine_errors()):
            self._container.reload()
            if self._container.status in ("exited", "dead"):
                self._exit_code = int(self._container.attrs["State"]["ExitCode"])
        return self._exit_code

    def logs(self, tail_lines: int | None = 40) -> str:
        container = self._container
        if container is not None:
            with contextlib.suppress(*_engine_errors()):
                raw = container.logs(stdout=True, stderr=True, tail=tail_lines if tail_lines else "all")
                return raw.decode("utf-8", errors="replace")
        return log_tail(self._log_path, tail_lines)

    def is_running(self) -> bool:
        return self.pid is not None

    def start(self) -> ContainerProcess:
        """Create and start the container; returns once it runs (readiness is the caller's)."""
        if self._container is not None:
            raise RuntimeError(f"{self.name} was already started")
        from testcontainers.core.container import DockerContainer

        engine = self._engine_or_shared()
        prepare_testcontainers(engine)
        kwargs = container_kwargs(self.name, self.argv, image=self.image, env=self.container_env,
                                  cwd=self.cwd, cores=self.cores, mounts=self.mounts,
                                  labels=self.labels or container_labels(self.name),
                                  memory_limit_bytes=self.memory_limit_bytes)
        image, env, volumes = kwargs.pop("image"), kwargs.pop("env"), kwargs.pop("volumes")
        self._log_path.parent.mkdir(parents=True, exist_ok=True)
        self._exit_code = None
        began = time.monotonic()
        tc = DockerContainer(image, env=env, volumes=volumes, name=kwargs.pop("name"), **kwargs)
        self._tc = tc
        try:
            tc.start()
            container = tc.get_wrapped_container()
            container.reload()
        except BaseException as exc:
            self._release()
            if isinstance(exc, _engine_errors()):
                raise StartupError(self.name, f"the engine could not start a container of {image}",
                                   logs=str(exc), hint="check the image (build.images.store.ensure_image) "
                                   "and the engine's log (DockerEngine.logs())") from exc
            raise
        self.create_s = time.monotonic() - began
        self._container = container
        self.container_id = container.id
        mode = container.attrs["HostConfig"]["NetworkMode"]
        if mode != NETWORK_MODE:
            self._release()
            raise StartupError(self.name, f"container created with network mode {mode!r}, not "
                               f"{NETWORK_MODE!r}: removed")
        pid = int(container.attrs["State"].get("Pid") or 0)
        with contextlib.suppress(psutil.NoSuchProcess):
            self._proc = psutil.Process(pid) if pid > 0 else None
        self._log_thread = threading.Thread(target=self._follow_logs, args=(container,),
                                            name=f"ingestlab-logs-{self.name}", daemon=True)
        self._log_thread.start()
        return self

    def stop(self, timeout_s: float = 15.0) -> int | None:
        """SIGTERM, up to `timeout_s` for the container to exit, SIGKILL; then remove it.
        Returns the exit code (None if it was never started)."""
        container = self._container
        if container is None:
            return self._exit_code
        errors = _engine_errors()
        try:
            if self.is_running():
                self.resume()  # a stopped process cannot act on SIGTERM
                with contextlib.suppress(*errors):  # 409: it exited meanwhile
                    container.kill(signal="SIGTERM")
            try:
                self._exit_code = int(container.wait(timeout=timeout_s)["StatusCode"])
                self._remember_state(container)
            except errors:
                self._kill_and_wait(container)
        finally:
            self._release()
        return self._exit_code

    def kill(self) -> None:
        """SIGKILL (the container's whole pid namespace dies with its init); then remove it."""
        container = self._container
        if container is None:
            return
        try:
            self._kill_and_wait(container)
        finally:
            self._release()

    def _kill_and_wait(self, container: Container) -> None:
        """SIGKILL and keep its exit code; a container already gone is no error."""
        errors = _engine_errors()
        with contextlib.suppress(*errors):
            container.kill()
        with contextlib.suppress(*errors):
            self._exit_code = int(container.wait(timeout=_KILL_WAIT_S)["StatusCode"])
            self._remember_state(container)

    def _remember_state(self, container: Container) -> None:
        """Keep the engine's State of the exited container (before its removal)."""
        with contextlib.suppress(*_engine_errors()):
            container.reload()
            self._state = dict(container.attrs["State"])

    def exit_state(self) -> dict[str, Any] | None:
        """How the container's process ended, as the engine says: `oom_killed` (the kernel's
        OOM killer ended a process of it: its memory limit was reached), `exit_code` (137:
        SIGKILL), `finished_at` (the engine's RFC 3339 time), `error`; None while it runs or
        before it started. Kept after `stop()` or `kill()` removed the container."""
        container = self._container
        if container is not None and not self.is_running():
            self._remember_state(container)
        state = self._state
        if state is None or state.get("Running"):
            return None
        return {"oom_killed": bool(state.get("OOMKilled")), "exit_code": state.get("ExitCode"),
                "finished_at": state.get("FinishedAt"), "error": state.get("Error") or None}

    def pause(self) -> None:
        self._signal_tree("SIGSTOP")

    def resume(self) -> None:
        self._signal_tree("SIGCONT")

    # --- one-shot commands ----------------------------------------------------------------
    def run(self, timeout_s: float = 120.0) -> tuple[int, str]:
        """Start, wait for the command to exit, remove: (exit code, its whole output).
        Raises TimeoutError (after killing it) if it runs longer than `timeout_s`."""
        self.start()
        container = self._container
        assert container is not None
        try:
            try:
                code = int(container.wait(timeout=timeout_s)["StatusCode"])
            except _engine_errors() as exc:
                raise TimeoutError(f"{self.name} did not finish within {timeout_s:.0f} s") from exc
            self._exit_code = code
            return code, self.logs(tail_lines=None)
        finally:
            self.kill()

    # --- helpers --------------------------------------------------------------------------
    def process(self) -> psutil.Process | None:
        """psutil view of the main process (a host pid), for samplers (None once it exited)."""
        pid = self.pid
        return self._proc if pid is not None else None

    def describe(self) -> dict[str, object]:
        return {"runtime": self.runtime, "image": self.image, "container_id": self.container_id,
                "argv": list(self.argv), "cores": self.cores, "memory_limit_bytes": self.memory_limit_bytes}

    def _engine_or_shared(self) -> DockerEngine:
        if self._engine is None:
            self._engine = shared_engine()
        return self._engine

    def _follow_logs(self, container: Container) -> None:
        """Copy the container's output into log_path until it exits (or is removed)."""
        with self._log_path.open("ab") as log, contextlib.suppress(Exception):
            for chunk in container.logs(stream=True, follow=True, stdout=True, stderr=True):
                log.write(chunk)
                log.flush()

    def _signal_tree(self, signame: str) -> None:
        import signal

        proc = self.process()
        if proc is None:
            return
        sig = getattr(signal, signame)
        try:
            tree = [proc, *proc.children(recursive=True)]
        except psutil.NoSuchProcess:
            return
        for p in tree:
            with contextlib.suppress(psutil.NoSuchProcess):
                p.send_signal(sig)

    def _release(self) -> None:
        """Remove the container (forced: kills it if it still runs), let the log thread finish;
        forget the container. Safe to call twice."""
        tc, self._tc = self._tc, None
        thread, self._log_thread = self._log_thread, None
        exited = self._proc is None or self.pid is None
        if thread is not None and exited:
            thread.join(_LOG_DRAIN_S)  # the stream ends once the engine has all the output
        if tc is not None:
            try:
                tc.stop(force=True, delete_volume=True)
            except Exception:  # noqa: BLE001 - already gone, or the engine is down
                container = tc._container
                if container is not None:
                    with contextlib.suppress(Exception):
                        self._engine_or_shared().client().containers.get(container.id).remove(force=True)
        if thread is not None:
            thread.join(_LOG_DRAIN_S)
        self._container = None
        self._proc = None

    def __enter__(self) -> ContainerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        short = self.container_id[:12] if self.container_id else None
        return f"ContainerProcess({self.name!r}, {self.image!r}, container={short}, pid={self.pid})"
