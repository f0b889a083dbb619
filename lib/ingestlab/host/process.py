"""The native-process runtime: a `Component` backed by a child process of this Python.

Every child is started pinned to its cores and with a parent-death signal, so that even a
killed notebook kernel leaves no broker or service behind. Teardown stops the whole tree the
child started (by pid, nothing else).

The child's affinity, priority and death signal are set by util-linux and coreutils programs
that exec into the command (`launch_argv`), not by a `preexec_fn`: CPython documents
`preexec_fn` as unsafe while other threads run, and a sampler thread always does here. Each
program execs the next, so the pid is the command's own.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

import psutil

from ingestlab.host.component import log_tail


def launch_argv(argv: Sequence[str], *, cores: tuple[int, ...] | None = None, nice: int = 0) -> list[str]:
    """`argv` prefixed with the programs that set up the child before it runs: a parent-death
    SIGKILL (the child dies with the Python that started it, even if that one is killed
    without tearing down), the CPU cores it and every thread it creates may use, and its
    nice value."""
    prefix = ["setpriv", "--pdeathsig", "KILL", "--"]
    if cores:
        prefix += ["taskset", "--cpu-list", ",".join(map(str, cores))]
    if nice:
        prefix += ["nice", "-n", str(nice)]
    return [*prefix, *argv]


class NativeProcess:
    """A child process with its output in a log file. Use as a context manager or call
    `start()`/`stop()`.

    `cores` pins the process (and every thread it creates) to those CPUs before it executes.
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        log_path: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        cores: tuple[int, ...] | None = None,
        endpoint: str | None = None,
        nice: int = 0,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.cores = cores
        self.nice = nice
        self._log_path = log_path
        self._env = {**os.environ, **(env or {})}
        self._cwd = cwd
        self._endpoint = endpoint
        self._popen: subprocess.Popen[bytes] | None = None
        self._descendants: dict[int, psutil.Process] = {}

    # --- Component protocol -------------------------------------------------------------
    @property
    def endpoint(self) -> str | None:
        return self._endpoint

    @property
    def pid(self) -> int | None:
        return self._popen.pid if self._popen is not None and self._popen.poll() is None else None

    @property
    def log_path(self) -> Path:
        return self._log_path

    @property
    def returncode(self) -> int | None:
        return None if self._popen is None else self._popen.poll()

    def logs(self, tail_lines: int | None = 40) -> str:
        return log_tail(self._log_path, tail_lines)

    def is_running(self) -> bool:
        return self._popen is not None and self._popen.poll() is None

    def start(self) -> NativeProcess:
        if self._popen is not None:
            raise RuntimeError(f"{self.name} was already started")
        self._log_path.parent.mkdir(parents=True, exist_ok=True)
        with self._log_path.open("ab") as log:
            self._popen = subprocess.Popen(
                launch_argv(self.argv, cores=self.cores, nice=self.nice),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self._env,
                cwd=self._cwd,
            )
        return self

    def stop(self, timeout_s: float = 15.0) -> int | None:
        if self._popen is None:
            return None
        self._remember_descendants()
        if self._popen.poll() is None:
            self.resume()  # a paused process cannot handle SIGTERM
            self._popen.send_signal(signal.SIGTERM)
            try:
                self._popen.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self._popen.kill()
                self._popen.wait()
        self._reap_descendants()
        return self._popen.returncode

    def kill(self) -> None:
        if self._popen is None:
            return
        self._remember_descendants()
        if self._popen.poll() is None:
            self._popen.kill()
            self._popen.wait()
        self._reap_descendants()

    def pause(self) -> None:
        self._signal_tree(signal.SIGSTOP)

    def resume(self) -> None:
        self._signal_tree(signal.SIGCONT)

    # --- helpers ------------------------------------------------------------------------
    def process(self) -> psutil.Process | None:
        """psutil view of the main process, for samplers (None once it exited)."""
        pid = self.pid
        try:
            return psutil.Process(pid) if pid is not None else None
        except psutil.NoSuchProcess:
            return None

    def _remember_descendants(self) -> None:
        proc = self.process()
        if proc is None:
            return
        try:
            for child in proc.children(recursive=True):
                self._descendants[child.pid] = child
        except psutil.NoSuchProcess:
            pass

    def _signal_tree(self, sig: signal.Signals) -> None:
        proc = self.process()
        if proc is None:
            return
        self._remember_descendants()
        for p in [proc, *self._descendants.values()]:
            with contextlib.suppress(psutil.NoSuchProcess):
                p.send_signal(sig)

    def _reap_descendants(self) -> None:
        """SIGKILL what the child started and left running (psutil checks pid reuse)."""
        alive = [p for p in self._descendants.values() if p.is_running()]
        for p in alive:
            with contextlib.suppress(psutil.NoSuchProcess):
                p.kill()
        psutil.wait_procs(alive, timeout=5)

    def __enter__(self) -> NativeProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"NativeProcess({self.name!r}, pid={self.pid}, endpoint={self.endpoint!r})"


def process_tree(pid: int) -> list[psutil.Process]:
    """Process `pid` and its descendants, `pid` first: what a service of several processes
    (a cluster's or Python's workers) is. Raises psutil.NoSuchProcess if `pid` is gone."""
    main = psutil.Process(pid)
    return [main, *main.children(recursive=True)]
