"""The one protocol every running part of a study implements, and the errors its start raises:
`StartupError` (it did not become ready) and `ArtifactMissing` (what it runs was not built).

Load, telemetry and fault-injection code only talk to `Component`, so they work the same
for a native process today and a container later (testcontainers-python's model).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Protocol, runtime_checkable


@runtime_checkable
class Component(Protocol):
    """A started thing: broker or service, native process or container."""

    name: str

    @property
    def endpoint(self) -> str | None:
        """Where clients reach it, e.g. "127.0.0.1:39211" (None if it serves nothing)."""

    @property
    def pid(self) -> int | None:
        """Host pid of its main process (None once it is gone)."""

    @property
    def log_path(self) -> Path:
        """File holding its stdout and stderr."""

    def logs(self, tail_lines: int | None = 40) -> str:
        """The last `tail_lines` lines of its output (all of it with None)."""

    def is_running(self) -> bool: ...

    def stop(self, timeout_s: float = 15.0) -> int | None:
        """Graceful stop (SIGTERM), then SIGKILL after `timeout_s`; returns the exit code."""

    def kill(self) -> None:
        """Immediate SIGKILL of the component and everything it started."""

    def pause(self) -> None:
        """Freeze it (SIGSTOP): it keeps its sockets but answers nothing."""

    def resume(self) -> None:
        """Undo `pause` (SIGCONT)."""


def log_tail(path: Path, tail_lines: int | None = 40) -> str:
    """The last `tail_lines` lines of a component's log file (all with None; "" if none yet)."""
    try:
        with path.open("r", errors="replace") as f:
            lines = deque(f, maxlen=tail_lines) if tail_lines else f.readlines()
    except FileNotFoundError:
        return ""
    return "".join(lines)


class ArtifactMissing(FileNotFoundError):
    """A built artifact is not where the current sources say it should be (`make setup` builds
    it: `build.artifacts`), or a program setup installs is not there."""


class StartupError(RuntimeError):
    """A component did not become ready. The message carries its last log lines and a hint."""

    def __init__(self, component: str, reason: str, *, logs: str = "", hint: str = "") -> None:
        self.component = component
        self.reason = reason
        self.log_tail = logs
        self.hint = hint
        parts = [f"{component}: {reason}"]
        if hint:
            parts.append(f"hint: {hint}")
        if logs:
            parts.append("last log lines:\n" + logs.rstrip())
        super().__init__("\n".join(parts))


# A port picked free can be taken (e.g. as a client's ephemeral port) before the component
# binds it; seeing this in a failed start's log means: pick another port and start again.
PORT_IN_USE_MARKERS = ("Address already in use", "EADDRINUSE")


def port_taken(error: StartupError) -> bool:
    """True if a start failed because its port was taken in the meantime."""
    return any(marker in error.log_tail for marker in PORT_IN_USE_MARKERS)


def wait_until(
    ready: Callable[[], bool],
    *,
    component: Component,
    timeout_s: float,
    what: str,
    hint: str = "",
    interval_s: float = 0.05,
) -> float:
    """Poll `ready()` until it returns True; returns the seconds waited.

    Fails fast when the component's process exits, and raises `StartupError` with the
    component's last log lines when `timeout_s` passes.
    """
    start = time.monotonic()
    deadline = start + timeout_s
    while True:
        if ready():
            return time.monotonic() - start
        if not component.is_running():
            raise StartupError(component.name, f"exited while waiting for {what}",
                               logs=component.logs(), hint=hint)
        if time.monotonic() > deadline:
            raise StartupError(component.name, f"not {what} after {timeout_s:.0f} s",
                               logs=component.logs(), hint=hint)
        time.sleep(interval_s)
