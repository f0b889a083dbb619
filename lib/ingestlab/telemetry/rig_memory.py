"""`RigMemory`: the rig's own memory while it measures, so that a long hold shows whether the
measuring process grows with the hold's length.

A thread of the measuring (Python) process reads, every `interval_s` (1 s), its own RSS and
that of its load engine processes: children started by multiprocessing's "spawn" (the
asyncio engine, `load.engine.run_load`: a new one per segment of a long soak) or named `oha`.
The services and the broker are never counted, whether containers or native children. A
child living less than `interval_s` may be missed; the engine's runs last a soak segment
(a minute). Each read costs a scan of the host's processes (about 1.5 ms here, 0.15% of a
core at 1 Hz), on the cores of the thread that starts it (the load cores in a `Stack`).
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass

import psutil

from ingestlab.units import MIB

# A child whose command line holds this is a multiprocessing "spawn" worker (the load engine).
_SPAWN_MARK = "spawn_main"
_ENGINE_NAMES = frozenset({"oha"})


def is_load_engine(process: psutil.Process) -> bool:
    """Whether `process` (a child of the measuring process) is one of its load engines."""
    try:
        return process.name() in _ENGINE_NAMES or any(_SPAWN_MARK in arg for arg in process.cmdline())
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return False


@dataclass(frozen=True)
class RigPeaks:
    """The rig's memory over what `RigMemory` watched, MiB: the measuring process's RSS at its
    peak; the largest RSS any load engine process reached (None: none was seen)."""

    self_peak_mib: float
    engine_peak_mib: float | None


class RigMemory:
    """Reads the measuring process's RSS and its load engines' every `interval_s` in a thread
    of its own (a context manager; `peaks` once it stopped, or while it runs)."""

    def __init__(self, *, interval_s: float = 1.0) -> None:
        if interval_s <= 0:
            raise ValueError("interval_s must be > 0")
        self.interval_s = interval_s
        self._me = psutil.Process(os.getpid())
        self._self_rss: list[int] = []
        self._engine_peak: int | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def __enter__(self) -> RigMemory:
        self.read()
        self._thread = threading.Thread(target=self._run, name="ingestlab-rig-memory", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.read()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.read()

    def read(self) -> int:
        """Read once now (also between the thread's reads, e.g. after a segment); returns the
        measuring process's RSS (bytes)."""
        rss = self._me.memory_info().rss
        engines = []
        for child in self._me.children(recursive=True):
            if is_load_engine(child):
                try:
                    engines.append(child.memory_info().rss)
                except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                    continue
        with self._lock:
            self._self_rss.append(rss)
            if engines:
                self._engine_peak = max(self._engine_peak or 0, *engines)
        return rss

    @property
    def peaks(self) -> RigPeaks:
        with self._lock:
            readings, engine = list(self._self_rss), self._engine_peak
        if not readings:
            raise RuntimeError("RigMemory has read nothing yet: enter it first")
        return RigPeaks(self_peak_mib=max(readings) / MIB,
                        engine_peak_mib=None if engine is None else engine / MIB)
