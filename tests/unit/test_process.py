"""The native-process runtime, on small throw-away children (no broker, no services)."""

import os
import sys
import time

import psutil
import pytest

from ingestlab.host.component import Component, StartupError, wait_until
from ingestlab.host.process import NativeProcess

PY = sys.executable


def _proc(tmp_path, code, **kw):
    return NativeProcess("child", [PY, "-c", code], log_path=tmp_path / "child.log", **kw)


def test_is_a_component_and_captures_output(tmp_path):
    with _proc(tmp_path, "import time; print('hello', flush=True); time.sleep(30)") as p:
        assert isinstance(p, Component)
        wait_until(lambda: "hello" in p.logs(), component=p, timeout_s=10, what="printing")
        pid = p.pid
        assert psutil.pid_exists(pid)
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert p.pid is None and not p.is_running()


def test_child_is_pinned_to_the_requested_core(tmp_path):
    core = sorted(os.sched_getaffinity(0))[-1]
    code = "import os, time; print(sorted(os.sched_getaffinity(0)), flush=True); time.sleep(30)"
    with _proc(tmp_path, code, cores=(core,)) as p:
        wait_until(lambda: "]" in p.logs(), component=p, timeout_s=10, what="printing")
        assert p.logs().strip() == str([core])
        assert psutil.Process(p.pid).cpu_affinity() == [core]


def test_child_runs_at_the_requested_nice_value_under_its_own_pid(tmp_path):
    code = ("import os, time; print(os.getpid(), os.getpriority(os.PRIO_PROCESS, 0), flush=True); "
            "time.sleep(30)")
    with _proc(tmp_path, code, nice=5) as p:
        wait_until(lambda: p.logs().strip(), component=p, timeout_s=10, what="printing")
        # The launch programs exec into the command: the pid we hold is the command's own.
        assert p.logs().split() == [str(p.pid), "5"]


def test_child_dies_with_the_process_that_started_it(tmp_path):
    """A killed notebook kernel leaves no service behind: the parent-death signal."""
    pid_file = tmp_path / "child.pid"
    parent_code = (
        "import sys, time; from pathlib import Path; "
        "from ingestlab.host.process import NativeProcess; "
        f"p = NativeProcess('sleeper', [sys.executable, '-c', 'import time; time.sleep(60)'], "
        f"log_path=Path({str(tmp_path / 'sleeper.log')!r})).start(); "
        f"tmp = Path({str(pid_file) + '.tmp'!r}); tmp.write_text(str(p.pid)); tmp.rename({str(pid_file)!r}); "
        "time.sleep(60)"
    )
    parent = psutil.Popen([PY, "-c", parent_code])
    try:
        deadline = time.monotonic() + 20
        while not pid_file.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        child = psutil.Process(int(pid_file.read_text()))
        assert child.is_running()
    finally:
        parent.kill()
        parent.wait()
    gone, alive = psutil.wait_procs([child], timeout=10)
    assert not alive


def test_stop_also_ends_grandchildren(tmp_path):
    code = ("import subprocess, sys, time; "
            "c = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
            "print(c.pid, flush=True); time.sleep(60)")
    p = _proc(tmp_path, code).start()
    try:
        wait_until(lambda: p.logs().strip().isdigit(), component=p, timeout_s=10, what="printing")
        grandchild = int(p.logs().strip())
        assert psutil.pid_exists(grandchild)
    finally:
        p.stop(timeout_s=5)
    psutil.wait_procs([psutil.Process(grandchild)] if psutil.pid_exists(grandchild) else [], timeout=5)
    assert not psutil.pid_exists(grandchild)


def _wait_status(pid, stopped: bool) -> bool:
    """Signals are delivered asynchronously: poll the state for up to 5 s."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if (psutil.Process(pid).status() == psutil.STATUS_STOPPED) == stopped:
            return True
        time.sleep(0.01)
    return False


def test_pause_and_resume(tmp_path):
    with _proc(tmp_path, "import time; time.sleep(30)") as p:
        p.pause()
        assert _wait_status(p.pid, stopped=True)
        p.resume()
        assert _wait_status(p.pid, stopped=False)
        p.pause()  # stop() must work on a paused process too
    assert p.returncode is not None


def test_stop_escalates_to_kill_when_sigterm_is_ignored(tmp_path):
    code = ("import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
            "print('x', flush=True); time.sleep(60)")
    p = _proc(tmp_path, code).start()
    wait_until(lambda: "x" in p.logs(), component=p, timeout_s=10, what="ready")
    started = time.monotonic()
    assert p.stop(timeout_s=0.5) == -9
    assert time.monotonic() - started < 5


def test_startup_error_carries_log_tail_and_hint(tmp_path):
    p = _proc(tmp_path, "print('bad config: port 7 is taken', flush=True); raise SystemExit(3)").start()
    with pytest.raises(StartupError) as info:
        wait_until(lambda: False, component=p, timeout_s=10, what="healthy", hint="free the port")
    message = str(info.value)
    assert "exited while waiting for healthy" in message
    assert "bad config: port 7 is taken" in message
    assert "hint: free the port" in message
    p.stop()


def test_startup_error_on_timeout(tmp_path):
    code = "import time; print('still booting', flush=True); time.sleep(30)"
    expected = r"not ready after 0 s(.|\n)*still booting"
    with _proc(tmp_path, code) as p, pytest.raises(StartupError, match=expected):
        wait_until(lambda: False, component=p, timeout_s=0.3, what="ready")


def test_port_taken_is_recognised_in_node_rust_and_java_logs():
    from ingestlab.host.component import port_taken

    for log in ("Error: listen EADDRINUSE: address already in use 127.0.0.1:4000",
                'Error: Os { code: 98, kind: AddrInUse, message: "Address already in use" }',
                "java.net.BindException: Address already in use"):
        assert port_taken(StartupError("svc", "exited", logs=log))
    assert not port_taken(StartupError("svc", "exited", logs="Error: Cannot find module 'express'"))
