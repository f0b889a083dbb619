"""ProcessSampler against small Python children (no services), and its pure parts."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator

import polars as pl
import pytest

from ingestlab.telemetry.sampler import (
    SAMPLE_SCHEMA,
    THREAD_SAMPLE_SCHEMA,
    MemoryReading,
    ProcessSampler,
    ProcMemory,
    cpu_by_core,
    cpu_by_thread,
    parse_smaps_rollup,
    parse_stat,
    tree_cpu_s,
    tree_totals,
)

MIB = 1 << 20


@pytest.fixture
def child() -> Iterator:
    """Start Python children running a script; each prints "ready" once set up. Killed after."""
    started: list[subprocess.Popen[str]] = []

    def spawn(script: str) -> subprocess.Popen[str]:
        proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(script)], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, text=True)
        started.append(proc)
        assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
        return proc

    yield spawn
    for proc in started:
        proc.kill()
        proc.wait()


def _say(proc: subprocess.Popen[str], line: str = "go") -> str:
    """Write a line to the child and return the line it answers."""
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(line + "\n")
    proc.stdin.flush()
    return proc.stdout.readline()


def test_rss_and_uss_rise_by_what_the_child_allocates(child):
    proc = child("""
        import sys
        print("ready", flush=True)
        sys.stdin.readline()
        buf = bytearray(200 << 20)                              # zero pages: not resident yet
        buf[::4096] = b"\\x01" * len(range(0, len(buf), 4096))  # touch every page
        print("allocated", flush=True)
        sys.stdin.readline()
    """)
    # A budget of 100% reads smaps_rollup on every tick, so that USS is there at both ends.
    with ProcessSampler(proc, interval_s=0.05, memory=ProcMemory(rollup_budget_pct=100.0)) as sampler:
        time.sleep(0.3)
        assert _say(proc) == "allocated\n"
        time.sleep(0.3)
    samples = sampler.samples()
    assert samples.schema == pl.Schema(SAMPLE_SCHEMA)
    assert set(samples["pid"]) == {proc.pid}
    first, last = samples.row(0, named=True), samples.row(-1, named=True)
    assert last["rss_bytes"] - first["rss_bytes"] >= 200 * MIB
    # The last sample (taken on leaving) may fall inside the smaps_rollup budget's wait even at
    # 100%: compare the first and last samples that carry USS.
    uss = samples["uss_bytes"].drop_nulls()
    assert uss.len() >= 2 and uss[-1] - uss[0] >= 200 * MIB
    assert first["pss_bytes"] <= first["rss_bytes"] and first["num_fds"] >= 3
    assert samples["t_ns"].is_sorted() and samples["cpu_user_s"].is_sorted()
    stats = sampler.stats
    assert stats.ticks == len(samples) >= 6 and not stats.exited
    assert sampler.overhead_core_pct >= 0 and stats.mean_interval_s is not None


def test_thread_names_come_from_the_kernel_including_spaces_and_parens(child):
    proc = child("""
        import ctypes, sys, threading, time
        PR_SET_NAME = 15
        names = ["spinner", "we (ir) d)"]
        barrier = threading.Barrier(len(names) + 1)
        done = threading.Event()

        def run(name):
            ctypes.CDLL(None).prctl(PR_SET_NAME, name.encode(), 0, 0, 0)  # this thread's comm
            barrier.wait()
            while name == "spinner" and not done.is_set():
                pass  # busy: the one thread that uses CPU
            done.wait()

        for name in names:
            threading.Thread(target=run, args=(name,), daemon=True).start()
        barrier.wait()
        print("ready", flush=True)
        sys.stdin.readline()
        done.set()
    """)
    with ProcessSampler(proc, interval_s=0.05) as sampler:
        time.sleep(1.0)
    threads = sampler.thread_samples()
    assert threads.schema == pl.Schema(THREAD_SAMPLE_SCHEMA)
    names = dict(threads.select("tid", "name").unique().iter_rows())
    assert {"spinner", "we (ir) d)"} <= set(names.values())
    assert names[proc.pid].startswith("python")  # the main thread's tid is the pid
    by_thread = cpu_by_thread(threads)
    assert by_thread["name"][0] == "spinner" and by_thread["core_pct"][0] > 5
    assert set(cpu_by_core(threads)["last_cpu"]) <= set(threads["last_cpu"])


@pytest.mark.parametrize("reaped", [False, True], ids=["zombie", "reaped"])
def test_a_process_that_exits_mid_run_ends_sampling_and_keeps_the_samples(child, reaped):
    proc = child("""
        import sys
        print("ready", flush=True)
        sys.stdin.readline()
    """)
    with ProcessSampler(proc, interval_s=0.02) as sampler:
        time.sleep(0.2)
        proc.stdin.close()  # the child reads EOF and exits
        if reaped:
            proc.wait()
        deadline = time.monotonic() + 5
        while not sampler.stats.exited and time.monotonic() < deadline:
            time.sleep(0.02)
        assert sampler.stats.exited
    assert len(sampler.samples()) >= 3
    assert set(sampler.thread_samples()["tid"]) == {proc.pid}


def test_descendants_are_sampled_too(child):
    proc = child("""
        import subprocess, sys
        grandchild = subprocess.Popen(["sleep", "30"])
        print("ready", flush=True)
        print(grandchild.pid, flush=True)
        sys.stdin.readline()
        grandchild.kill()
    """)
    assert proc.stdout is not None
    grandchild = int(proc.stdout.readline())
    with ProcessSampler(proc, interval_s=0.05) as sampler:
        time.sleep(0.2)
    assert set(sampler.samples()["pid"]) == {proc.pid, grandchild}


def test_an_error_in_the_sampling_thread_is_raised_on_exit(child):
    class Forbidden:
        def read(self, pid: int) -> MemoryReading:
            raise PermissionError(f"/proc/{pid}/smaps_rollup")

    proc = child('print("ready", flush=True); import sys; sys.stdin.readline()')
    with (pytest.raises(RuntimeError, match="sampler") as info,
          ProcessSampler(proc, interval_s=0.05, memory=Forbidden())):
        time.sleep(0.1)
    assert isinstance(info.value.__cause__, PermissionError)


def test_sampling_a_stopped_component_is_refused():
    class Gone:
        pid = None

    with pytest.raises(RuntimeError, match="not running"):
        ProcessSampler(Gone()).start()


def test_stat_line_with_spaces_and_parentheses_in_the_comm():
    line = (b"4242 (a) b (c) R 1 4242 4242 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 11 0 313726 "
            b"5124096 942 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 3 0 0 0 0 0 0 0 0 0 0 0 0 0\n")
    stat = parse_stat(line)
    assert stat.comm == "a) b (c"
    assert (stat.state, stat.utime_ticks, stat.stime_ticks) == ("R", 250, 75)
    assert (stat.num_threads, stat.start_ticks, stat.last_cpu) == (11, 313726, 3)


def test_smaps_rollup_gives_rss_pss_and_uss_in_bytes():
    raw = textwrap.dedent("""\
        563c8c69b000-7ffc0c052000 ---p 00000000 00:00 0                          [rollup]
        Rss:                1776 kB
        Pss:                 430 kB
        Shared_Clean:       1608 kB
        Private_Clean:        56 kB
        Private_Dirty:       112 kB
    """).encode()
    assert parse_smaps_rollup(raw) == MemoryReading(1776 * 1024, 430 * 1024, (56 + 112) * 1024)
    with pytest.raises(ProcessLookupError):
        parse_smaps_rollup(b"")  # what a process that exited meanwhile gives


def _frame(rows: list[tuple]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=THREAD_SAMPLE_SCHEMA, orient="row")


def test_cpu_by_thread_and_by_core_on_known_deltas():
    s = 1_000_000_000
    threads = _frame([
        # t_ns, pid, tid, name, user_s, system_s, last_cpu
        (0, 10, 10, "node", 1.00, 0.50, 1),
        (0, 10, 11, "libuv-worker", 0.00, 0.00, 1),
        (0, 10, 12, "libuv-worker", 0.00, 0.00, 0),
        (s, 10, 10, "node", 1.40, 0.60, 1),           # +0.5 s on core 1
        (s, 10, 11, "libuv-worker", 0.10, 0.00, 0),   # +0.1 s, now on core 0
        (s, 10, 12, "libuv-worker", 0.05, 0.05, 0),   # +0.1 s on core 0
        (2 * s, 10, 10, "node", 1.40, 0.60, 1),       # idle
    ])
    by_tid = cpu_by_thread(threads)
    assert by_tid["tid"].to_list() == [10, 11, 12]
    assert by_tid["core_pct"].to_list() == pytest.approx([25.0, 5.0, 5.0])  # over the 2 s window
    assert by_tid["main_thread"].to_list() == [True, False, False]
    by_name = cpu_by_thread(threads, by="name")
    assert dict(zip(by_name["name"], by_name["threads"], strict=True)) == {"node": 1, "libuv-worker": 2}
    assert by_name.filter(pl.col("name") == "libuv-worker")["cpu_s"][0] == pytest.approx(0.2)
    assert by_name.filter(pl.col("main_thread"))["name"].to_list() == ["node"]
    by_core = cpu_by_core(threads)
    assert by_core["last_cpu"].to_list() == [0, 1]
    assert by_core["cpu_s"].to_list() == pytest.approx([0.2, 0.5])
    assert by_core["share"].to_list() == pytest.approx([0.2 / 0.7, 0.5 / 0.7])


def test_aggregates_need_two_ticks():
    with pytest.raises(ValueError, match="two ticks"):
        cpu_by_thread(_frame([(0, 1, 1, "x", 0.0, 0.0, 0)]))


def test_a_service_of_several_processes_is_their_sum_per_tick():
    samples = pl.DataFrame({
        "t_ns": [1, 1, 2, 2, 3],
        "pid": [10, 11, 10, 11, 10],
        "rss_bytes": [100, 50, 120, 60, 130],
        "cpu_user_s": [1.0, 0.5, 1.5, 0.5, 2.0],
        "cpu_system_s": [0.0, 0.0, 0.25, 0.25, 0.5],
    })
    totals = tree_totals(samples)
    assert totals["rss_bytes"].to_list() == [150, 180, 130]
    assert totals["processes"].to_list() == [2, 2, 1]
    # pid 10: 2.5 - 1.0; pid 11: 0.75 - 0.5
    assert tree_cpu_s(samples) == pytest.approx(1.75)


def test_threads_and_fds_are_read_every_nth_tick_and_on_the_last(child):
    proc = child("""
        import sys
        print("ready", flush=True)
        sys.stdin.readline()
    """)
    with ProcessSampler(proc, interval_s=0.02, threads_every=5) as sampler:
        time.sleep(0.5)
    samples, threads = sampler.samples(), sampler.thread_samples()
    ticks = samples["t_ns"].to_list()
    with_threads = sorted(threads["t_ns"].unique())
    assert with_threads[0] == ticks[0] and with_threads[-1] == ticks[-1]  # the first and the last
    assert len(ticks) >= 10 and len(with_threads) <= len(ticks) // 5 + 2
    fds = samples.filter(pl.col("t_ns").is_in(with_threads))["num_fds"]
    assert fds.null_count() == 0 and samples["num_fds"].null_count() == len(ticks) - len(with_threads)
    with pytest.raises(ValueError):
        ProcessSampler(proc, threads_every=0)
