"""`telemetry.rig_memory.RigMemory`: the measuring process's RSS and its load engines' (spawned
children), not its other children's."""

from __future__ import annotations

import multiprocessing
import subprocess
import sys
import time

import psutil
import pytest

from ingestlab.telemetry.rig_memory import RigMemory, is_load_engine
from ingestlab.units import MIB


def _hold(mib: int, seconds: float) -> None:
    block = bytearray(mib * 1024 * 1024)
    for i in range(0, len(block), 4096):  # touch every page: resident
        block[i] = 1
    time.sleep(seconds)


def test_a_spawned_child_is_an_engine_another_child_is_not():
    context = multiprocessing.get_context("spawn")
    child = context.Process(target=_hold, args=(1, 3.0), daemon=True)
    child.start()
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3)"])
    try:
        assert is_load_engine(psutil.Process(child.pid))
        assert not is_load_engine(psutil.Process(other.pid))
    finally:
        child.kill()
        other.kill()
        child.join()
        other.wait()


def test_peaks_of_the_process_and_of_its_engines():
    context = multiprocessing.get_context("spawn")
    with RigMemory(interval_s=0.1) as rig:
        child = context.Process(target=_hold, args=(80, 1.5), daemon=True)
        child.start()
        child.join()
        now = rig.read()
    peaks = rig.peaks
    assert now / MIB <= peaks.self_peak_mib
    assert peaks.engine_peak_mib is not None and peaks.engine_peak_mib >= 80


def test_without_an_engine_there_is_no_engine_peak_and_nothing_read_is_an_error():
    with RigMemory(interval_s=0.05) as rig:
        time.sleep(0.2)
    assert rig.peaks.engine_peak_mib is None and rig.peaks.self_peak_mib > 10
    with pytest.raises(RuntimeError, match="read nothing"):
        _ = RigMemory().peaks
    with pytest.raises(ValueError):
        RigMemory(interval_s=0)
