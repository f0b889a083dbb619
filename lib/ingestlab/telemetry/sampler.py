"""`ProcessSampler`: memory, file descriptors and CPU per process and per thread, at 10 Hz.

The sampler runs in a thread of its own in the measuring (Python) process, never in the
service: it reads `/proc` directly, one small file per process and per thread per tick, so
its own cost stays well under 1% of a core (it measures and reports that cost: 0.55% on the
Rust service, 0.69% on the Node service with its 14 threads, at 10 Hz on this machine).

```
with ProcessSampler(stack.service("node"), interval_s=0.1) as sampler:
    ...  # drive load
samples, threads = sampler.samples(), sampler.thread_samples()
cpu_by_thread(threads)
```

Timestamps (`t_ns`) are wall-clock epoch nanoseconds, but they are taken as one wall-clock
anchor plus monotonic offsets: differences between them are monotonic durations, immune to
clock steps, and they still line up with request rows and GC events by wall time.

Memory comes from a `MemorySource`. `ProcMemory` reads RSS from `/proc/<pid>/statm` on
every tick and PSS/USS from `/proc/<pid>/smaps_rollup` (the kernel's sum over all mappings;
psutil's `memory_full_info` parses the full `smaps` instead, far too slow at 10 Hz) as often
as a CPU budget allows, because even the rollup costs time in proportion to the resident
memory. CPU and thread numbers come from `/proc` for containers too, because a container's
processes have host pids.

When the sampled component is a container (its `runtime` attribute is "container", as
`engine.container.ContainerProcess` has), each tick also reads the container's cgroup
(`telemetry.cgroup`: memory charged, anonymous, page cache, CPU and throttled time) and the
samples gain the columns of `CGROUP_SAMPLE_SCHEMA`, filled on the main process's rows (the
cgroup is the whole container's) and null on its descendants' rows. A native process's samples
keep `SAMPLE_SCHEMA` exactly.
"""

from __future__ import annotations

import itertools
import os
import threading
import time
from dataclasses import dataclass
from typing import Literal, NamedTuple, Protocol

import polars as pl
import psutil

from ingestlab.host.process import process_tree
from ingestlab.names import CONTAINER, NATIVE
from ingestlab.telemetry.cgroup import CGROUP_SAMPLE_SCHEMA, Cgroup, CgroupGone, CgroupReading

CLK_TCK = os.sysconf("SC_CLK_TCK")  # units of the utime/stime fields of /proc/.../stat
PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")

SAMPLE_SCHEMA: dict[str, pl.DataType] = {
    "t_ns": pl.Int64(),            # wall-clock epoch ns (anchor + monotonic offset)
    "pid": pl.Int64(),
    "rss_bytes": pl.Int64(),
    "pss_bytes": pl.Int64(),       # null where not read on this tick (see ProcMemory)
    "uss_bytes": pl.Int64(),       # Private_Clean + Private_Dirty; null as pss_bytes
    "num_fds": pl.Int32(),
    "num_threads": pl.Int32(),
    "cpu_user_s": pl.Float64(),    # cumulative since the process started
    "cpu_system_s": pl.Float64(),  # cumulative since the process started
}

THREAD_SAMPLE_SCHEMA: dict[str, pl.DataType] = {
    "t_ns": pl.Int64(),
    "pid": pl.Int64(),
    "tid": pl.Int64(),
    "name": pl.String(),           # the kernel's comm: at most 15 bytes
    "cpu_user_s": pl.Float64(),    # cumulative since the thread started
    "cpu_system_s": pl.Float64(),
    "last_cpu": pl.Int32(),        # the core the thread last ran on
}


class ProcessGone(Exception):
    """The sampled process exited, became a zombie, or its pid now belongs to another one."""


# --- /proc parsing ----------------------------------------------------------------------------
class Stat(NamedTuple):
    """The fields of /proc/<pid>/stat (or .../task/<tid>/stat) the sampler uses."""

    comm: str
    state: str
    utime_ticks: int
    stime_ticks: int
    num_threads: int
    start_ticks: int
    last_cpu: int


def parse_stat(raw: bytes) -> Stat:
    """Parse one /proc stat line. Fields are numbered as in proc(5), from 1.

    The comm (field 2) is whatever the program named itself and may hold spaces and
    parentheses, so it is everything between the first '(' and the *last* ')'; the
    remaining fields are split on whitespace after that.
    """
    head, _, tail = raw.rpartition(b")")
    comm = head.partition(b"(")[2].decode("utf-8", errors="replace")
    rest = tail.split()  # rest[0] is field 3, so field n is rest[n - 3]
    return Stat(comm=comm, state=rest[0].decode(), utime_ticks=int(rest[11]), stime_ticks=int(rest[12]),
                num_threads=int(rest[17]), start_ticks=int(rest[19]), last_cpu=int(rest[36]))


def _read(path: str) -> bytes:
    """One read of a small /proc file (os.open/read: a third of the cost of `open()`)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.read(fd, 65536)
    finally:
        os.close(fd)


class _OpenFiles:
    """/proc files kept open between ticks and re-read with pread.

    Re-reading an open stat file costs half of open + read + close (the path walk through
    /proc is the expensive part), and a file of a task that exited fails with ESRCH rather
    than showing a newer task that reuses its pid. Files not read during a tick are closed
    at its end (`sweep`), so the ones of exited threads do not pile up.
    """

    def __init__(self) -> None:
        self._fds: dict[str, int] = {}
        self._used: set[str] = set()

    def read(self, path: str) -> bytes:
        fd = self._fds.get(path)
        if fd is None:
            fd = self._fds[path] = os.open(path, os.O_RDONLY)
        self._used.add(path)
        try:
            return os.pread(fd, 65536, 0)
        except ProcessLookupError:
            self._close(path)
            raise

    def sweep(self) -> None:
        for path in self._fds.keys() - self._used:
            self._close(path)
        self._used.clear()

    def close(self) -> None:
        for path in list(self._fds):
            self._close(path)

    def _close(self, path: str) -> None:
        os.close(self._fds.pop(path))
        self._used.discard(path)


def _count_fds(pid: int) -> int:
    """Open file descriptors of `pid`. Linux 6.2+ reports the count as the size of
    /proc/<pid>/fd (one stat call, ~2 us); older kernels report 0 and the directory is listed
    (~10 us)."""
    return os.stat(f"/proc/{pid}/fd").st_size or len(os.listdir(f"/proc/{pid}/fd"))


# --- memory sources ---------------------------------------------------------------------------
class MemoryReading(NamedTuple):
    rss_bytes: int
    pss_bytes: int | None
    uss_bytes: int | None


class MemorySource(Protocol):
    """Where a sample's memory numbers come from.

    `read` raises `FileNotFoundError` or `ProcessLookupError` once the process is gone.
    """

    def read(self, pid: int) -> MemoryReading: ...


def parse_smaps_rollup(raw: bytes) -> MemoryReading:
    """RSS, PSS and USS in bytes from /proc/<pid>/smaps_rollup (whose values are in kB)."""
    kb: dict[bytes, int] = {}
    for line in raw.splitlines()[1:]:  # the first line is the pseudo-mapping's address range
        key, _, value = line.partition(b":")
        kb[key] = int(value.split()[0])
    if b"Rss" not in kb:
        raise ProcessLookupError("smaps_rollup is empty: the process has exited")
    return MemoryReading(rss_bytes=kb[b"Rss"] * 1024, pss_bytes=kb[b"Pss"] * 1024,
                         uss_bytes=(kb[b"Private_Clean"] + kb[b"Private_Dirty"]) * 1024)


class ProcMemory:
    """Memory of native processes from /proc: RSS every read, PSS and USS on a CPU budget.

    RSS comes from /proc/<pid>/statm (about 5 us). smaps_rollup, the only source of PSS
    and USS, costs the kernel a walk over every resident page, about 10 us per resident MB
    (measured here: 0.17 ms at 14 MB, 2 ms at 220 MB, 10 ms at 1 GB): read on every 10 Hz
    tick it alone would cost 10% of a core for a 1 GB process. So after each smaps_rollup
    read that took c seconds of CPU, the next one for that pid waits c / budget: at the
    default 0.2% a 10 MB process gets PSS/USS on every other tick, a 1 GB one every ~5 s;
    the reads in between leave them null. Without smaps_rollup (Linux < 4.14) they are
    always null.
    """

    def __init__(self, *, rollup_budget_pct: float = 0.2) -> None:
        if rollup_budget_pct <= 0:
            raise ValueError("rollup_budget_pct must be > 0")
        self.rollup_budget = rollup_budget_pct / 100.0
        self.has_rollup = os.path.exists("/proc/self/smaps_rollup")
        self._next_rollup_ns: dict[int, int] = {}

    def read(self, pid: int) -> MemoryReading:
        rss_bytes = int(_read(f"/proc/{pid}/statm").split()[1]) * PAGE_BYTES
        if not self.has_rollup or time.monotonic_ns() < self._next_rollup_ns.get(pid, 0):
            return MemoryReading(rss_bytes, None, None)
        # The cost is almost all kernel time, which the calling thread's CPU clock includes.
        cpu0_ns = time.thread_time_ns()
        rollup = parse_smaps_rollup(_read(f"/proc/{pid}/smaps_rollup"))
        cost_ns = time.thread_time_ns() - cpu0_ns
        self._next_rollup_ns[pid] = time.monotonic_ns() + round(cost_ns / self.rollup_budget)
        return MemoryReading(rss_bytes, rollup.pss_bytes, rollup.uss_bytes)


class CgroupSource(Protocol):
    """A container's cgroup (`telemetry.cgroup.Cgroup`); `read` raises CgroupGone once removed."""

    def read(self) -> CgroupReading: ...


# --- the sampler ------------------------------------------------------------------------------
class HasPid(Protocol):
    """Anything with a host pid: a `Component`, a `subprocess.Popen`, a `psutil.Process`."""

    @property
    def pid(self) -> int | None: ...


@dataclass(frozen=True)
class SamplerStats:
    """What the sampler achieved and cost. Times in seconds, overhead in % of one core."""

    ticks: int
    wall_s: float
    sampler_cpu_s: float
    overhead_core_pct: float
    mean_interval_s: float | None
    max_interval_s: float | None
    exited: bool  # the main process ended before the sampler was stopped


class ProcessSampler:
    """Samples a process and its descendants every `interval_s` seconds in its own thread.

    A context manager: entering starts sampling (the first sample is taken at once),
    leaving stops it, takes one last sample and joins the thread, also on an exception. If
    the process exits meanwhile, sampling ends quietly and what was sampled is kept
    (`stats.exited`). An unexpected error inside the thread (e.g. permission denied) is
    raised on leaving.

    Descendants are looked up every `children_every_s` (a scan of every process on the
    host, 1-1.6 ms here, too costly for each tick; this kernel has no
    /proc/<pid>/task/<tid>/children): a child living less than that may be missed.
    `cores` pins the sampling thread, e.g. to the load engine's core, so that its cost does
    not land on the core of the service it measures. `threads_every`: the threads' CPU and the
    open file descriptors are read every that many ticks (and on the last), the process's
    memory and CPU on every tick: with one stat file per thread and one directory entry per
    connection, they are most of a tick's cost (Node: 14 threads), and CPU per thread is a
    growth over the window, which needs no 10 Hz (the `cpu-cores` experiment, which puts each
    thread's CPU on the core it last ran on, keeps 1). `cgroup`: "auto" reads the cgroup of a
    component whose `runtime` is "container" (found from its main pid when sampling starts),
    None never reads one, or a `CgroupSource` to read. The thread shares the GIL of the
    measuring process: a busy Python thread there can delay ticks (`stats` has the achieved
    intervals), which is one more reason the load engine runs in a process of its own.
    """

    def __init__(self, component: HasPid, *, interval_s: float = 0.1, children_every_s: float = 2.0,
                 memory: MemorySource | None = None, cores: tuple[int, ...] | None = None,
                 cgroup: CgroupSource | Literal["auto"] | None = "auto", threads_every: int = 1) -> None:
        if interval_s <= 0:
            raise ValueError("interval_s must be > 0")
        if threads_every < 1:
            raise ValueError("threads_every must be >= 1")
        self.component = component
        self.interval_s = interval_s
        self.threads_every = threads_every
        self.children_every_s = children_every_s
        self.cores = cores
        self._memory = memory or ProcMemory()
        self._cgroup_choice = cgroup
        self.cgroup: CgroupSource | None = None  # set by start()
        self._rows: list[tuple] = []
        self._thread_rows: list[tuple] = []
        self._tick_ns: list[int] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._exited = False
        self._cpu_ns = 0
        self._wall_ns = 0
        self._start_ticks = 0
        self._wall0_ns = self._mono0_ns = 0
        self.pid: int | None = None

    # --- lifecycle -------------------------------------------------------------------------
    def start(self) -> ProcessSampler:
        if self._thread is not None:
            raise RuntimeError("this sampler was already started")
        pid = self.component.pid
        if pid is None:
            raise RuntimeError(f"{self.component!r} is not running: nothing to sample")
        try:
            main = psutil.Process(pid)
            self._start_ticks = parse_stat(_read(f"/proc/{pid}/stat")).start_ticks
        except (psutil.NoSuchProcess, FileNotFoundError, ProcessLookupError) as exc:
            raise RuntimeError(f"process {pid} exited before sampling started") from exc
        self.cgroup = self._resolve_cgroup(pid)
        self.pid = pid
        # Wall-clock anchor; every t_ns is this plus a monotonic offset (see the module doc).
        self._wall0_ns, self._mono0_ns = time.time_ns(), time.monotonic_ns()
        self._thread = threading.Thread(target=self._run, args=(main,), name="ingestlab-sampler",
                                        daemon=True)
        self._thread.start()
        return self

    def _resolve_cgroup(self, pid: int) -> CgroupSource | None:
        choice = self._cgroup_choice
        if choice != "auto":
            return choice  # type: ignore[return-value]
        if getattr(self.component, "runtime", NATIVE) != CONTAINER:
            return None
        try:
            return Cgroup.of_pid(pid)
        except ProcessLookupError as exc:
            raise RuntimeError(f"process {pid} exited before sampling started") from exc

    def stop(self) -> SamplerStats:
        """Stop sampling (after one last sample) and wait for the thread; safe to call twice.

        Raises RuntimeError if the sampling thread failed (its error is the cause).
        """
        self._halt()
        self._raise_error()
        return self.stats

    def __enter__(self) -> ProcessSampler:
        return self.start()

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self._halt()
        if exc_type is None:  # never mask the exception that is leaving the block
            self._raise_error()

    def _halt(self) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()

    def _raise_error(self) -> None:
        if self._error is not None:
            raise RuntimeError(f"the sampler of pid {self.pid} failed") from self._error

    # --- results ---------------------------------------------------------------------------
    @property
    def sample_schema(self) -> dict[str, pl.DataType]:
        """SAMPLE_SCHEMA, and CGROUP_SAMPLE_SCHEMA's columns after it when a cgroup is read."""
        return {**SAMPLE_SCHEMA, **CGROUP_SAMPLE_SCHEMA} if self.cgroup is not None else SAMPLE_SCHEMA

    def samples(self) -> pl.DataFrame:
        """One row per process per tick (`sample_schema`)."""
        return pl.DataFrame(list(self._rows), schema=self.sample_schema, orient="row")

    def thread_samples(self) -> pl.DataFrame:
        """One row per thread per tick (THREAD_SAMPLE_SCHEMA)."""
        return pl.DataFrame(list(self._thread_rows), schema=THREAD_SAMPLE_SCHEMA, orient="row")

    @property
    def overhead_core_pct(self) -> float:
        """CPU time of the sampling thread over its run, in % of one core (0 until stopped)."""
        return self.stats.overhead_core_pct

    @property
    def stats(self) -> SamplerStats:
        ticks = list(self._tick_ns)
        gaps = [(b - a) / 1e9 for a, b in zip(ticks, ticks[1:], strict=False)]
        wall_s = self._wall_ns / 1e9
        return SamplerStats(
            ticks=len(ticks), wall_s=wall_s, sampler_cpu_s=self._cpu_ns / 1e9,
            overhead_core_pct=100.0 * self._cpu_ns / self._wall_ns if self._wall_ns else 0.0,
            mean_interval_s=sum(gaps) / len(gaps) if gaps else None,
            max_interval_s=max(gaps) if gaps else None, exited=self._exited)

    # --- the sampling thread ---------------------------------------------------------------
    def _run(self, main: psutil.Process) -> None:
        cpu0_ns = time.thread_time_ns()
        if self.cores:
            os.sched_setaffinity(threading.get_native_id(), self.cores)  # this thread only
        interval_ns = round(self.interval_s * 1e9)
        children_every_ns = round(self.children_every_s * 1e9)
        children: set[int] = set()
        next_children_ns = deadline_ns = self._mono0_ns
        stopping = False
        files = _OpenFiles()
        try:
            for tick in itertools.count():
                now_ns = time.monotonic_ns()
                if now_ns >= next_children_ns:
                    children = _descendants(main)
                    next_children_ns = now_ns + children_every_ns
                detail = stopping or tick % self.threads_every == 0
                self._tick(files, main.pid, now_ns, children, detail=detail)
                if stopping:
                    break
                deadline_ns += interval_ns
                now_ns = time.monotonic_ns()
                if deadline_ns < now_ns:  # starved past a slot: skip the missed ones, never burst
                    deadline_ns += ((now_ns - deadline_ns) // interval_ns + 1) * interval_ns
                stopping = self._stop.wait((deadline_ns - now_ns) / 1e9)
        except ProcessGone:
            self._exited = True
        except BaseException as exc:  # re-raised by __exit__ in the caller's thread
            self._error = exc
        finally:
            files.close()
            self._cpu_ns = time.thread_time_ns() - cpu0_ns
            self._wall_ns = time.monotonic_ns() - self._mono0_ns

    def _tick(self, files: _OpenFiles, pid: int, now_ns: int, children: set[int], *, detail: bool) -> None:
        t_ns = self._wall0_ns + (now_ns - self._mono0_ns)
        extra: tuple = ()
        if self.cgroup is not None:
            try:
                extra = tuple(self.cgroup.read())
            except CgroupGone as exc:  # the container stopped and its cgroup was removed
                raise ProcessGone(pid) from exc
        self._sample_process(files, pid, t_ns, main=True, extra=extra, detail=detail)  # ProcessGone: the end
        for pid in list(children):
            try:
                self._sample_process(files, pid, t_ns, main=False, extra=(None,) * len(extra), detail=detail)
            except ProcessGone:
                children.discard(pid)
        files.sweep()
        self._tick_ns.append(now_ns)

    def _sample_process(self, files: _OpenFiles, pid: int, t_ns: int, *, main: bool,
                        extra: tuple = (), detail: bool = True) -> None:
        """Append one process row and, with `detail`, its thread rows and fd count (None
        otherwise), or nothing if the process is gone."""
        try:
            stat = parse_stat(files.read(f"/proc/{pid}/stat"))
            if stat.state in ("Z", "X", "x") or (main and stat.start_ticks != self._start_ticks):
                raise ProcessGone(pid)
            memory = self._memory.read(pid)
            num_fds = _count_fds(pid) if detail else None
            tids = os.listdir(f"/proc/{pid}/task") if detail else []
        except (FileNotFoundError, ProcessLookupError) as exc:
            raise ProcessGone(pid) from exc
        thread_rows = []
        for tid in tids:
            try:
                ts = parse_stat(files.read(f"/proc/{pid}/task/{tid}/stat"))
            except (FileNotFoundError, ProcessLookupError):
                continue  # the thread ended after the listing
            thread_rows.append((t_ns, pid, int(tid), ts.comm, ts.utime_ticks / CLK_TCK,
                                ts.stime_ticks / CLK_TCK, ts.last_cpu))
        self._rows.append((t_ns, pid, memory.rss_bytes, memory.pss_bytes, memory.uss_bytes, num_fds,
                           stat.num_threads, stat.utime_ticks / CLK_TCK, stat.stime_ticks / CLK_TCK,
                           *extra))
        self._thread_rows.extend(thread_rows)


def _descendants(main: psutil.Process) -> set[int]:
    try:
        return {child.pid for child in main.children(recursive=True)}
    except psutil.NoSuchProcess as exc:
        raise ProcessGone(main.pid) from exc


# --- aggregation (pure functions of thread_samples) -------------------------------------------
def _window_s(thread_samples: pl.DataFrame) -> float:
    """Seconds between the first and the last tick of a thread_samples frame."""
    if thread_samples["t_ns"].n_unique() < 2:
        raise ValueError("need thread samples from at least two ticks")
    return (thread_samples["t_ns"].max() - thread_samples["t_ns"].min()) / 1e9  # type: ignore[operator]


def tree_rss_bytes(pid: int) -> int:
    """RSS now of process `pid` and its descendants, summed (bytes)."""
    return sum(p.memory_info().rss for p in process_tree(pid))


def tree_cpu_now_s(pid: int) -> float:
    """CPU seconds (user + system) process `pid` and its descendants have used so far."""
    return sum(sum(p.cpu_times()[:2]) for p in process_tree(pid))


def tree_totals(samples: pl.DataFrame) -> pl.DataFrame:
    """One row per tick: `rss_bytes` summed over the sampled process and its descendants
    (a service of several processes is their sum; shared pages count once per process, as
    RSS does), `processes` sampled, and the cgroup columns as read on the main process."""
    extra = [pl.col(c).max() for c in CGROUP_SAMPLE_SCHEMA if c in samples.columns]
    return (samples.group_by("t_ns").agg(pl.col("rss_bytes").sum(), pl.len().alias("processes"), *extra)
            .sort("t_ns"))


def tree_cpu_s(samples: pl.DataFrame) -> float:
    """CPU seconds (user + system) the sampled processes used between their first and last
    sample, summed over the processes."""
    per_process = samples.group_by("pid").agg(
        (pl.col("cpu_user_s") + pl.col("cpu_system_s")).sort_by("t_ns").alias("cpu"))
    return float(sum(cpu[-1] - cpu[0] for cpu in per_process["cpu"] if len(cpu)))


def cpu_by_thread(thread_samples: pl.DataFrame, *, by: Literal["tid", "name"] = "tid") -> pl.DataFrame:
    """CPU used by each thread over the sampled window, busiest first.

    `core_pct` is % of one core: the growth of the thread's cumulative CPU time between its
    first and its last sample, over the whole window (so the rows of a process add up to its
    CPU use). A thread started after the first tick misses at most one interval of its CPU
    time. /proc counts CPU time in 1/CLK_TCK steps (10 ms), an error of at most 10 ms per
    thread over the window. `main_thread` marks the thread whose tid is the pid (Node's
    event loop).

    With `by="name"` threads of the same pid and name are summed into one row, with their
    count in `threads`; the main thread keeps a row of its own. Names are what the runtime
    set: Node 20 leaves its libuv pool and V8 platform threads named "node" like the main
    thread, librdkafka "rdk:main", "rdk:broker1"..., actix "actix-rt|system" and
    "actix-server ac" (the kernel cuts names at 15 bytes).
    """
    window_s = _window_s(thread_samples)
    per_tid = (
        thread_samples.sort("t_ns")
        .group_by("pid", "tid")
        .agg(pl.col("name").last(),
             cpu_user_s=pl.col("cpu_user_s").last() - pl.col("cpu_user_s").first(),
             cpu_system_s=pl.col("cpu_system_s").last() - pl.col("cpu_system_s").first())
        .with_columns(main_thread=pl.col("tid") == pl.col("pid"))
    )
    keys = ["pid", "tid"]
    if by == "name":
        keys = ["pid", "main_thread", "name"]
        per_tid = per_tid.group_by(keys).agg(pl.len().alias("threads"),
                                             pl.col("cpu_user_s", "cpu_system_s").sum())
    return (
        per_tid.with_columns(cpu_s=pl.col("cpu_user_s") + pl.col("cpu_system_s"))
        .with_columns(core_pct=pl.col("cpu_s") / window_s * 100.0)
        .sort(["cpu_s", *keys], descending=[True, *[False] * len(keys)])
    )


def cpu_by_core(thread_samples: pl.DataFrame) -> pl.DataFrame:
    """CPU time by core over the sampled window (approximate), one row per core.

    /proc only tells which core a thread ran on *last*, so each interval's CPU time of a
    thread is attributed to the core it was on at the end of the interval: a thread that
    moved between cores within an interval is counted on one of them. With pinned services
    (one core each) this is exact. `share` is the core's fraction of all sampled CPU time,
    `core_pct` its busy time in % of that core.
    """
    window_s = _window_s(thread_samples)
    deltas = (
        thread_samples.sort("t_ns")
        .with_columns(cpu_s=(pl.col("cpu_user_s") + pl.col("cpu_system_s")).diff().over("pid", "tid"))
        .drop_nulls("cpu_s")
    )
    per_core = deltas.group_by("last_cpu").agg(pl.col("cpu_s").sum())
    total_s = per_core["cpu_s"].sum()
    return per_core.with_columns(
        share=pl.col("cpu_s") / total_s if total_s else pl.lit(None, pl.Float64),
        core_pct=pl.col("cpu_s") / window_s * 100.0,
    ).sort("last_cpu")
