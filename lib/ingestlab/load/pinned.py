"""Run a native load tool to completion, pinned to cores, with a hard time limit, and
measure how much CPU it used while generating load (its saturation check)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil

from ingestlab.host.process import NativeProcess

_SAMPLE_INTERVAL_S = 0.05


class ToolTimeout(TimeoutError):
    """The tool was still running at its hard time limit and was killed."""


@dataclass(frozen=True)
class ToolRun:
    """A finished tool run. `output` is its stdout and stderr (one log file)."""

    returncode: int
    wall_s: float
    cpu_percent: float  # CPU time over the load phase / its wall time, in % of one core
    output: str


def run_pinned(name: str, argv: Sequence[str], *, cores: tuple[int, ...] | None, log_path: Path,
               load_s: float, timeout_s: float, nice: int = 0) -> ToolRun:
    """Run `argv` pinned to `cores` at `nice`, wait for it to exit, kill it after `timeout_s`.

    CPU use is measured over the load phase, from launch to `load_s` seconds later (or to
    exit if sooner), so the time a tool spends writing its results after the load does not
    dilute or inflate it. psutil samples the tool's cumulative CPU time (all threads) every
    50 ms; the window ends at the first sample at or after `load_s`.
    """
    process = NativeProcess(name, argv, log_path=log_path, cores=cores, nice=nice)
    log_path.unlink(missing_ok=True)
    with process:  # stops (and if need be kills) the tool on any exit from this block
        launched = time.monotonic()
        handle = process.process()
        window: list[tuple[float, float]] = []  # (seconds since launch, cpu seconds)
        while process.is_running():
            elapsed = time.monotonic() - launched
            if elapsed > timeout_s:
                process.kill()
                raise ToolTimeout(f"{name} still running after {timeout_s:.0f} s, killed; "
                                  f"last output:\n{process.logs(20)}")
            if handle is not None and (not window or window[-1][0] < load_s):
                try:
                    cpu = handle.cpu_times()
                    window.append((elapsed, cpu.user + cpu.system))
                except psutil.NoSuchProcess:
                    pass
            time.sleep(_SAMPLE_INTERVAL_S)
        wall_s = time.monotonic() - launched
    returncode = process.returncode
    assert returncode is not None  # the loop above ends only once the process has exited
    cpu_percent = 100.0 * window[-1][1] / window[-1][0] if window and window[-1][0] > 0 else 0.0
    return ToolRun(returncode=returncode, wall_s=wall_s, cpu_percent=cpu_percent,
                   output=process.logs(None))
