"""The pinned tool runner, on small Python children (no load tools needed)."""

import os
import sys

import psutil
import pytest

from ingestlab.load.pinned import ToolTimeout, run_pinned

PY = sys.executable


def test_runs_pinned_and_captures_output(tmp_path):
    core = sorted(os.sched_getaffinity(0))[-1]
    run = run_pinned("child", [PY, "-c", "import os; print(sorted(os.sched_getaffinity(0)))"],
                     cores=(core,), log_path=tmp_path / "child.log", load_s=1, timeout_s=30)
    assert run.returncode == 0
    assert run.output.strip() == str([core])


def test_cpu_of_a_busy_child_is_measured(tmp_path):
    busy = "import time\nend = time.monotonic() + 1.0\nwhile time.monotonic() < end: pass\n"
    run = run_pinned("busy", [PY, "-c", busy], cores=None, log_path=tmp_path / "busy.log",
                     load_s=0.8, timeout_s=30)
    assert run.returncode == 0
    assert run.cpu_percent > 0
    idle = run_pinned("idle", [PY, "-c", "import time; time.sleep(1.0)"], cores=None,
                      log_path=tmp_path / "idle.log", load_s=0.8, timeout_s=30)
    assert idle.cpu_percent < run.cpu_percent


def test_a_tool_past_its_time_limit_is_killed(tmp_path):
    code = "import os, time; print(os.getpid(), flush=True); time.sleep(60)"
    with pytest.raises(ToolTimeout, match="still running after"):
        run_pinned("sleeper", [PY, "-c", code], cores=None, log_path=tmp_path / "s.log",
                   load_s=0.1, timeout_s=0.5)
    pid = int((tmp_path / "s.log").read_text().split()[0])
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
