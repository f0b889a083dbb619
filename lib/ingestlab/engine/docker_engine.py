"""The workbook's own Docker engine: Debian's `dockerd`, started by the workbook, on loopback only.

No container registry can be reached, so every image is built here (`build/images/`), and
every container runs with host networking: the daemon is started without a bridge and without
touching iptables (`--bridge=none --iptables=false --ip-masq=false --ip6tables=false`), so no
private bridge network ever appears on the host. Its state lives under the build cache
(`cache_root()/"docker"`): images survive between runs, and `make setup` builds them once.

When `DOCKER_HOST` is set, that engine is used as it is: never started or stopped here.

testcontainers needs two settings on this VM (`environ()`): `TC_HOST=127.0.0.1` (the VM has a
`/.dockerenv`, so testcontainers would otherwise aim at a default gateway) and
`TESTCONTAINERS_RYUK_DISABLED=true` (Ryuk's image cannot be pulled); containers are cleaned up
by label instead (`labels.CONTAINER_LABEL`, and testcontainers' own, `labels.TESTCONTAINERS_LABEL`).
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import hashlib
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import psutil

from ingestlab.config import machine_cores
from ingestlab.engine.labels import CONTAINER_LABEL, OWNER_LABEL, TESTCONTAINERS_LABEL
from ingestlab.host.component import ArtifactMissing, StartupError
from ingestlab.host.process import process_tree
from ingestlab.paths import cache_root

if TYPE_CHECKING:  # importing docker costs ~0.2 s; only the methods that talk to it need it
    import docker


DOCKERD_FLAGS = ("--bridge=none", "--iptables=false", "--ip-masq=false", "--ip6tables=false",
                 "--storage-driver=overlay2")
# sun_path holds 108 bytes with its NUL; the longest socket dockerd and its containerd make
# under the exec root is containerd/containerd-debug.sock. Past this, the exec root moves to a
# short directory under the temp dir (named after the state dir, so it is stable).
SOCKET_PATH_LIMIT_BYTES = 100
_LONGEST_SOCKET = Path("containerd") / "containerd-debug.sock"
_HINT = ("dockerd needs root, cgroups and an overlay-capable file system for its data root; "
         "see the log above, and `make setup` installs Debian's docker.io")
_MISSING = "dockerd not found on PATH (Debian's docker.io): run `make setup`"
_API_TIMEOUT_S = 120  # builds and imports of 100+ MB contexts take tens of seconds
_USERS_LOCK = "users.lock"
_START_LOCK = "start.lock"


class DockerEngine:
    """The workbook's container engine: its own dockerd (flags in `DOCKERD_FLAGS`; state
    under `cache_root()/"docker"` or `state_dir`: `data/` (images, containers), the exec root
    `run/` (moved to a short temp dir if a socket path in it would pass
    `SOCKET_PATH_LIMIT_BYTES`), `dockerd.pid`, `docker.sock` in the exec root, `dockerd.log`),
    or, when `DOCKER_HOST` is set (to anything but our own socket), that engine as it is (never
    started or stopped by us).

    A context manager; `start()` is idempotent. Several processes share the daemon (a test
    session, the notebook kernels it runs, `make setup`): `start()` uses a daemon already
    answering on the socket, whoever started it, and `stop()` removes the labelled
    (`CONTAINER_LABEL`) containers this process started (`OWNER_LABEL`) and stops the daemon
    only when no other process uses it any more (SIGTERM, up to `stop_timeout_s` = 15 s, then
    SIGKILL of its session): then every workbook and testcontainers container left on it goes
    too. The processes using it hold a shared lock on `users.lock` in the state dir. A daemon
    whose users were all killed (SIGKILL) keeps running until the next workbook process that
    used it stops.

    With `DOCKER_HOST` set, `stop()` removes only this process's containers.
    """

    stop_timeout_s = 15.0

    def __init__(self, *, state_dir: Path | None = None) -> None:
        self.state_dir = Path(state_dir) if state_dir is not None else cache_root() / "docker"
        self.data_root = self.state_dir / "data"
        self.exec_root = exec_root_for(self.state_dir)
        self.socket_path = self.exec_root / "docker.sock"
        # DOCKER_HOST naming our own socket (exported by `environ()` to testcontainers and
        # inherited by child processes) is not another engine: it is this one.
        host = os.environ.get("DOCKER_HOST") or None
        self.external_host = None if host == f"unix://{self.socket_path}" else host
        self.pidfile = self.state_dir / "dockerd.pid"
        self.log_path = self.state_dir / "dockerd.log"
        self.startup_s: float | None = None
        self._process: subprocess.Popen | None = None
        self._users_fd: int | None = None
        self._client: docker.DockerClient | None = None
        self._lock = threading.Lock()

    # --- context manager ------------------------------------------------------------------
    def __enter__(self) -> DockerEngine:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        how = "external" if self.external_host else "started here" if self.owns_daemon else "shared"
        return f"DockerEngine({self.docker_host}, {how})"

    # --- where it is ----------------------------------------------------------------------
    @property
    def docker_host(self) -> str:
        """The engine's address, e.g. "unix:///root/.cache/ingestlab/docker/run/docker.sock"."""
        return self.external_host or f"unix://{self.socket_path}"

    @property
    def owns_daemon(self) -> bool:
        """True if this object started the daemon process (`stop()` stops any daemon it uses,
        when no other process uses it)."""
        return self._process is not None

    def environ(self) -> dict[str, str]:
        """Environment for the docker CLI and testcontainers: `DOCKER_HOST`, `TC_HOST=127.0.0.1`,
        `TESTCONTAINERS_RYUK_DISABLED=true`."""
        return {"DOCKER_HOST": self.docker_host, "TC_HOST": "127.0.0.1",
                "TESTCONTAINERS_RYUK_DISABLED": "true"}

    def client(self) -> docker.DockerClient:
        """A docker SDK client for this engine (one per engine, closed by `stop()`); API calls
        time out after 120 s."""
        import docker

        with self._lock:
            if self._client is None:
                self._client = docker.DockerClient(base_url=self.docker_host, timeout=_API_TIMEOUT_S)
            return self._client

    def bridges(self) -> list[str]:
        """Names of the host's bridge-type network interfaces (none while every container uses
        host networking)."""
        return bridge_interfaces()

    def logs(self, tail_lines: int | None = 40) -> str:
        """The last `tail_lines` lines of dockerd's log (all of it with None)."""
        try:
            with self.log_path.open(errors="replace") as f:
                return "".join(deque(f, maxlen=tail_lines) if tail_lines else f)
        except FileNotFoundError:
            return ""

    # --- life cycle -----------------------------------------------------------------------
    def answers(self) -> bool:
        """True if the engine answers a ping (about a millisecond on the unix socket)."""
        if not self.external_host and not self.socket_path.exists():
            return False
        try:
            return bool(self.client().ping())
        except Exception:  # noqa: BLE001 - any connection or API error means "not yet"
            return False

    def start(self, timeout_s: float = 30.0) -> DockerEngine:
        """Make sure the engine answers; start our dockerd if none answers on its socket
        (ready in about 0.2 s here). Idempotent, and safe from several processes at once (one
        starts, the others use it). Raises `StartupError` (the log tail and a hint) if it does
        not answer within `timeout_s`, `ArtifactMissing` if dockerd is not installed."""
        if self.external_host:
            if not self.answers():
                raise StartupError("docker", f"DOCKER_HOST={self.external_host} does not answer",
                                   hint="unset DOCKER_HOST to let the workbook start its own dockerd")
            return self
        self._join()
        with self._exclusive(_START_LOCK):
            if self.answers():
                self._free_affinity()
                return self  # ours, or started by another process of the workbook: shared
            self._launch(timeout_s)
        return self

    def _launch(self, timeout_s: float) -> None:
        dockerd = shutil.which("dockerd")
        if dockerd is None:
            raise ArtifactMissing(_MISSING)
        if os.geteuid() != 0:
            raise StartupError("docker", "dockerd must run as root", hint=_HINT)
        for path in (self.data_root, self.exec_root):
            path.mkdir(parents=True, exist_ok=True)
        self.socket_path.unlink(missing_ok=True)
        begin = time.monotonic()
        with self.log_path.open("ab") as log:
            log.write(f"\n--- ingestlab: pid {os.getpid()} starts dockerd at {time.ctime()} ---\n".encode())
            log.flush()
            # Its own session: Ctrl-C in a notebook or a terminal does not reach the daemon,
            # and it outlives this process while another process still uses it.
            # On every core (taskset exec's into dockerd, as host.process pins children; no
            # preexec_fn while other threads run): a container's process starts with its
            # engine's CPU affinity, which a cpuset does not widen, and a study pins its own
            # process to the load core (a service given both cores ran on core 0 alone under a
            # daemon started from it).
            every_core = ",".join(str(core) for core in sorted(machine_cores()))
            self._process = subprocess.Popen(
                ["taskset", "-c", every_core, *self.dockerd_argv(dockerd)], stdin=subprocess.DEVNULL,
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = begin + timeout_s
        while not self.answers():
            if self._process.poll() is not None:
                code = self._process.returncode
                self._process = None
                raise StartupError("docker", f"dockerd exited with code {code} while starting",
                                   logs=self.logs(), hint=_HINT)
            if time.monotonic() > deadline:
                self._terminate(self._process.pid)
                raise StartupError("docker", f"dockerd did not answer within {timeout_s:.0f} s",
                                   logs=self.logs(), hint=_HINT)
            time.sleep(0.02)
        self.startup_s = time.monotonic() - begin

    def dockerd_argv(self, dockerd: str = "dockerd") -> list[str]:
        """The daemon's command line (its flags and its own paths)."""
        return [dockerd, *DOCKERD_FLAGS, f"--data-root={self.data_root}",
                f"--exec-root={self.exec_root}", f"--pidfile={self.pidfile}",
                f"--host=unix://{self.socket_path}"]

    def remove_labelled_containers(self, label: str = CONTAINER_LABEL, *,
                                   owner_pid: int | None = None) -> list[str]:
        """Force-remove every container (running or not) carrying `label` (and, with
        `owner_pid`, started by that process); returns their ids."""
        client = self.client()
        removed = []
        for container in client.containers.list(all=True, filters={"label": label}):
            owner = (container.labels or {}).get(OWNER_LABEL, "")
            if owner_pid is not None and owner.partition(":")[0] != str(owner_pid):
                continue
            with contextlib.suppress(Exception):  # gone in the meantime
                container.remove(force=True, v=True)
                removed.append(container.id)
        return removed

    def stop(self) -> None:
        """Remove this process's containers that are left; if no other process uses the
        daemon, remove every workbook container and stop the daemon."""
        if self.external_host:
            if self.answers():
                self.remove_labelled_containers(CONTAINER_LABEL, owner_pid=os.getpid())
            self._close_client()
            return
        if self._users_fd is None:
            return  # never started or joined (or stopped already)
        if self.answers():
            self.remove_labelled_containers(CONTAINER_LABEL, owner_pid=os.getpid())
        self._leave()
        with self._exclusive(_START_LOCK):
            last = self._last_user()
            if last is not None:
                try:
                    if self.answers():  # nobody else uses it: everything of the workbook goes
                        self.remove_labelled_containers(CONTAINER_LABEL)
                        self.remove_labelled_containers(TESTCONTAINERS_LABEL)
                    self._close_client()
                    pid = self._process.pid if self._process is not None else self._daemon_pid()
                    if pid is not None:
                        self._terminate(pid)
                finally:
                    os.close(last)
        self._close_client()

    # --- sharing between processes ----------------------------------------------------------
    # Each process using the daemon holds a shared lock on `users.lock` from start() to
    # stop(); the one that finds no other holder when it stops (an exclusive lock succeeds)
    # stops the daemon, whoever started it. `start.lock` serialises starting and stopping.
    def _join(self) -> None:
        if self._users_fd is None:
            self.state_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.state_dir / _USERS_LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            fcntl.flock(fd, fcntl.LOCK_SH)  # waits while another process stops the daemon
            self._users_fd = fd

    def _leave(self) -> None:
        fd, self._users_fd = self._users_fd, None
        if fd is not None:
            os.close(fd)

    def _last_user(self) -> int | None:
        """An fd holding the users lock exclusively if no process uses the daemon, else None."""
        fd = os.open(self.state_dir / _USERS_LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        return fd

    @contextlib.contextmanager
    def _exclusive(self, name: str) -> Iterator[None]:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.state_dir / name, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _free_affinity(self) -> None:
        """Let our running daemon and its children (containerd, the shims) use every core, as
        `_launch` starts it: one started by an older version may have kept a pinned parent's."""
        pid = self._daemon_pid()
        if pid is None:
            return
        with contextlib.suppress(psutil.Error):
            # the engine's own processes only: a container's keeps its cpuset
            engine = [p for p in process_tree(pid) if p.name().startswith(("dockerd", "containerd"))]
            for process in engine:
                if set(process.cpu_affinity()) != machine_cores():
                    process.cpu_affinity(sorted(machine_cores()))

    def _daemon_pid(self) -> int | None:
        """The pid in our pidfile if that process is a dockerd on our data root (so a reused
        pid is never signalled)."""
        try:
            pid = int(self.pidfile.read_text().strip())
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except (FileNotFoundError, ValueError, ProcessLookupError):
            return None
        if argv and Path(os.fsdecode(argv[0])).name == "dockerd" and \
                os.fsencode(f"--data-root={self.data_root}") in argv:
            return pid
        return None

    def _close_client(self) -> None:
        with self._lock:
            if self._client is not None:
                with contextlib.suppress(Exception):
                    self._client.close()
                self._client = None

    def _terminate(self, pid: int) -> None:
        """SIGTERM to dockerd (it stops its containerd), up to `stop_timeout_s`, then SIGKILL
        of the session it leads (dockerd and containerd)."""
        process, self._process = self._process, None
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + self.stop_timeout_s
        while _alive(pid, process) and time.monotonic() < deadline:
            time.sleep(0.02)
        if _alive(pid, process):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
            if process is not None:
                process.wait()


def _alive(pid: int, process: subprocess.Popen | None) -> bool:
    if process is not None and process.pid == pid:
        return process.poll() is None  # our child: reaps it too
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def exec_root_for(state_dir: Path, *, temp_dir: Path | None = None) -> Path:
    """dockerd's exec root for `state_dir`: `state_dir/"run"` when every socket under it fits
    in `SOCKET_PATH_LIMIT_BYTES`, else a short directory under the temp dir named after a
    digest of `state_dir` (so the same state dir always gets the same exec root)."""
    preferred = Path(state_dir) / "run"
    if len(os.fsencode(preferred / _LONGEST_SOCKET)) <= SOCKET_PATH_LIMIT_BYTES:
        return preferred
    digest = hashlib.sha256(os.fsencode(Path(state_dir).absolute())).hexdigest()[:12]
    return Path(temp_dir or tempfile.gettempdir()) / f"ingestlab-docker-{digest}"


def bridge_interfaces(sys_class_net: Path = Path("/sys/class/net")) -> list[str]:
    """Names of the bridge-type interfaces under `sys_class_net` (each has a `bridge/` dir)."""
    try:
        return sorted(entry.name for entry in sys_class_net.iterdir() if (entry / "bridge").is_dir())
    except FileNotFoundError:
        return []


_shared: DockerEngine | None = None
_shared_lock = threading.Lock()


def shared_engine() -> DockerEngine:
    """The process's one engine, started on first call (and again if its daemon died), its
    `stop()` registered with atexit: the daemon stops when the last process using it exits."""
    global _shared
    with _shared_lock:
        if _shared is None:
            engine = DockerEngine()
            engine.start()
            atexit.register(engine.stop)
            _shared = engine
        else:
            _shared.start()  # idempotent: restarts a daemon that died in the meantime
        return _shared
