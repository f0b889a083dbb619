"""`CoreTimesSampler`: each core's busy, idle and stolen time from /proc/stat, in a thread.

A process sampler sees the processes it samples; /proc/stat sees everything a core did: every
process (the measuring Python, other users of the machine), the kernel's interrupt work
(loopback traffic is softirq time, charged to no process) and the time the hypervisor took
the vCPU away (steal). Over a window, a core's busy time less what the sampled processes used
on it is what the rest took (`analysis.cpu_cores.core_table`).

```
with CoreTimesSampler(interval_s=0.1) as cores:
    ...  # drive load
cores.frame()  # CORE_TIMES_SCHEMA
```
"""

from __future__ import annotations

import os
import threading
import time

import polars as pl

from ingestlab.telemetry.sampler import CLK_TCK

CORE_TIMES_SCHEMA: dict[str, pl.DataType] = {
    "t_ns": pl.Int64(),      # wall-clock epoch ns (anchor + monotonic offset, as ProcessSampler's)
    "core": pl.Int32(),
    "busy_s": pl.Float64(),  # cumulative since boot: user + nice + system + irq + softirq
    "idle_s": pl.Float64(),  # idle + iowait
    "steal_s": pl.Float64(),  # taken by the hypervisor
}


def parse_proc_stat(raw: bytes) -> list[tuple[int, float, float, float]]:
    """(core, busy_s, idle_s, steal_s) per `cpuN` line of /proc/stat (cumulative seconds;
    guest time is already inside user time, so it is not added again)."""
    found = []
    for line in raw.splitlines():
        name, _, values = line.partition(b" ")
        if not name.startswith(b"cpu") or name == b"cpu":
            continue
        user, nice, system, idle, iowait, irq, softirq, steal = (int(v) for v in values.split()[:8])
        found.append((int(name[3:]), (user + nice + system + irq + softirq) / CLK_TCK,
                      (idle + iowait) / CLK_TCK, steal / CLK_TCK))
    return found


class CoreTimesSampler:
    """Reads /proc/stat every `interval_s` seconds in a thread of its own (pinned to `cores`
    if given, e.g. the load cores) while entered; once on entering and once on leaving. One
    small read a tick: its cost is negligible next to a process sampler's."""

    def __init__(self, *, interval_s: float = 0.1, cores: tuple[int, ...] | None = None) -> None:
        if interval_s <= 0:
            raise ValueError("interval_s must be > 0")
        self.interval_s = interval_s
        self.cores = cores
        self._rows: list[tuple[int, int, float, float, float]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._wall0_ns = self._mono0_ns = 0

    def __enter__(self) -> CoreTimesSampler:
        self._wall0_ns, self._mono0_ns = time.time_ns(), time.monotonic_ns()
        self._thread = threading.Thread(target=self._run, name="ingestlab-core-times", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()

    def _run(self) -> None:
        if self.cores:
            os.sched_setaffinity(threading.get_native_id(), self.cores)  # this thread only
        while True:
            self._tick()
            if self._stop.wait(self.interval_s):
                self._tick()  # the window's end
                return

    def _tick(self) -> None:
        with open("/proc/stat", "rb") as stat:
            raw = stat.read()
        t_ns = self._wall0_ns + (time.monotonic_ns() - self._mono0_ns)
        self._rows.extend((t_ns, *row) for row in parse_proc_stat(raw))

    def frame(self) -> pl.DataFrame:
        """One row per core per tick (CORE_TIMES_SCHEMA)."""
        return pl.DataFrame(list(self._rows), schema=CORE_TIMES_SCHEMA, orient="row")
