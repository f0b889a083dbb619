"""Open-loop HTTP load engine: a fixed pool of asyncio workers in a pinned child process.

Design (measured on the study machine):

- Open loop. Request `i` is due at `schedule.offsets_s[i]` after the run start, whatever
  happened to earlier requests, and every row keeps its intended start next to its actual
  start, so latency can be measured from the intended time (coordinated-omission corrected).
- Fixed pool. `max_in_flight` worker coroutines share one slot counter: a worker takes the next
  slot, sleeps until its intended time, sends, records, and takes the next. One task per request
  reached a higher peak (~14k req/s on one core) but collapsed after a 400 ms stall, because the
  overdue tasks piled up in the connection queue; the pool held 10k req/s through the same
  stall with less CPU. A slot taken more than `max_lag_s` late is recorded as dropped by the
  client (status 0, error_class "client_backlog") instead of sent: the rows say so, nothing
  is silently skipped.
- Connections as needed. Workers share one stack of idle keep-alive connections and take the
  most recently used one (a new one only when none is idle), so the service sees about as many
  connections as requests are in flight at once, not one per worker: with one connection per
  worker, a quick soak's 1,000 workers at 2,000 req/s held 1,000 connections open and Rust's
  RSS was 88-90 MiB; with reuse it was 25 MiB (at 1,000 req/s). `connections_opened` in the
  settings says how many there were.
- Lean client. A request is one write of a head built once plus the body on a keep-alive
  connection, the answer parsed by httptools for its status (`load.http1`): 18 us of CPU per
  request against aiohttp's 164 us, measured closed loop against nginx. With aiohttp this
  engine held no rate of the capacity search on an Intel Xeon machine of the project's kind
  (at 6,000 req/s: send lag p99 30 ms, 99% CPU, 56% of py-spy samples inside aiohttp); with
  this client it holds 32,000-40,000 req/s on one core against nginx.
- Own process. The engine runs in a "spawn" child pinned to its cores, so its CPU is bounded
  and it never shares a notebook's event loop. The child stops itself at a hard deadline; the
  parent kills it by pid if it overstays, and on any exception including Ctrl-C.
- Measuring only. The hot loop writes into preallocated arrays and bumps counters; the child
  builds one polars frame at the end. Aggregation lives in `ingestlab.analysis.latency`.

Clocks: every duration comes from `time.monotonic_ns()`; timestamps in the rows are wall-clock
epoch nanoseconds derived as `t0_wall_ns + (monotonic_ns - t0_mono_ns)` from one pair of clock
readings, so differences between columns are monotonic-exact.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import multiprocessing
import os
import pickle
import queue
import signal
import sys
import tempfile
import time
import traceback
from array import array
from bisect import bisect_right
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
import psutil
import yarl

from ingestlab.config import machine_cores
from ingestlab.host.ports import require_loopback
from ingestlab.load.http1 import REQUEST_ERRORS, Http1Connection, request_head
from ingestlab.load.payloads import PayloadSet
from ingestlab.load.progress import ProgressMode, make_display
from ingestlab.load.rows import REQUEST_SCHEMA, WallClock, phase_of, send_rate_rps
from ingestlab.load.schedules import Schedule
from ingestlab.load.timer_selector import TimerfdEpollSelector
from ingestlab.quantiles import nearest_rank
from ingestlab.units import NS_PER_MS

# error_class values the engine writes itself (all others are exception class names).
BACKLOG_ERROR = "client_backlog"  # slot taken more than max_lag_s late: not sent
DEADLINE_ERROR = "client_deadline"  # still unfinished when the hard deadline struck

# Saturation: when any of these trips, the numbers describe the load generator at least as
# much as the service, and the run says so in `health["saturated_reasons"]`.
# - Schedule lag: the event loop wakes a sleeping worker within about a millisecond (epoll
#   timeouts have 1 ms resolution), so a p99 lag above a few ms means workers were all busy
#   waiting for responses (raise max_in_flight) or the loop was short of CPU.
SATURATION_LAG_P99_MS = 5.0
# - Engine CPU, as % of one core (the loop is one thread): only a loop that never idles is
#   saturated by this measure. Its CPU is no capacity meter below that: the loop does more
#   per wake-up as the rate rises (measured against nginx: 40% at 4,000 req/s, 85% at
#   10,000, 97% at 48,000 with send-lag p99 still 2.2 ms), so lag is the signal that counts.
SATURATION_CPU_PCT = 99.0
# - Achieved rate below this fraction of the offered rate: requests went out late or not at all.
SATURATION_ACHIEVED_RATIO = 0.99

# How often the child reports progress to the parent.
PROGRESS_INTERVAL_S = 0.5
# The first slot is due this long after the workers are created, so setting up 256 tasks
# does not make the first requests late.
START_LEAD_S = 0.05
# Added to schedule duration + max lag + request timeout to form the child's hard deadline.
DEADLINE_MARGIN_S = 5.0
# Parent-side limits: interpreter start and imports in the child; then, after the child's
# deadline, building the frame and writing parquet (seconds for a million rows).
STARTUP_TIMEOUT_S = 60.0
FINISH_TIMEOUT_S = 120.0
# How long a child gets to exit after SIGTERM before SIGKILL.
STOP_GRACE_S = 2.0
# Exit code of a child whose parent died (it stops instead of loading a service for no one).
ORPHANED_EXIT_CODE = 3

_NOT_RECORDED = -1  # status of a slot no worker finished (only after the hard deadline)


@dataclass(frozen=True)
class LoadResult:
    """What a load run produced.

    Attributes:
        out_path: the parquet file of request rows (`ingestlab.load.rows.REQUEST_SCHEMA`).
        rows: number of rows written (= the schedule's count).
        health: the engine's self-check, computed in the child: offered_rps (schedule
            count / duration), achieved_rps ((sent - 1) / span from first to last actual
            start), sent, responses (any HTTP status), errors (no response or status
            >= 400), dropped (client_backlog), lag_p50_ms / lag_p99_ms / lag_max_ms
            (actual - intended start of sent requests, nearest rank), engine_cpu_pct (CPU
            time of the engine process over the run, % of one core), engine_wait_pct (time
            it was runnable but waiting for its core, % of the run: CPU the broker or others
            on the load core took from it; None where the kernel keeps no schedstat), run_s,
            deadline_hit,
            saturated (bool) and saturated_reasons (sentences with the numbers; see the
            SATURATION_* constants).
        settings: how the run was driven (url, workers, cores the child actually had, t0...).
    """

    out_path: Path
    rows: int
    health: dict[str, Any]
    settings: dict[str, Any]

    def frame(self) -> pl.DataFrame:
        """The request rows."""
        return pl.read_parquet(self.out_path)


@dataclass(frozen=True)
class _Job:
    """Everything the child needs; pickled to a file that the child reads first."""

    url: str
    schedule: Schedule
    payloads: PayloadSet
    out_path: Path
    cores: tuple[int, ...] | None
    max_in_flight: int
    warmup_s: float
    request_timeout_s: float
    max_lag_s: float
    parent_pid: int
    nice: int

    def validate(self) -> None:
        """Raise ValueError on arguments the engine cannot run with."""
        require_loopback(self.url)
        count = self.schedule.count
        if count == 0:
            raise ValueError("the schedule has no requests")
        if len(self.payloads) < count:
            raise ValueError(f"payloads has {len(self.payloads)} bodies, the schedule needs {count}")
        if not isinstance(self.max_in_flight, int) or self.max_in_flight < 1:
            raise ValueError(f"max_in_flight must be an integer >= 1, got {self.max_in_flight!r}")
        if not 0 <= self.warmup_s < self.schedule.duration_s:
            raise ValueError(
                f"warmup_s must be >= 0 and shorter than the schedule "
                f"({self.schedule.duration_s} s), got {self.warmup_s!r}"
            )
        for name in ("request_timeout_s", "max_lag_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")
        if self.cores is not None:
            usable = machine_cores()
            if not self.cores or not set(self.cores) <= usable:
                raise ValueError(f"cores {self.cores!r} must be a non-empty subset of {sorted(usable)}")

    @property
    def hard_deadline_s(self) -> float:
        """Seconds after t0 at which the child abandons what is still running.

        The last slot is sent at most `max_lag_s` after its time (later ones are dropped)
        and answered or timed out `request_timeout_s` later, so this is never reached
        in a run that is not stopped from outside.
        """
        return self.schedule.duration_s + self.max_lag_s + self.request_timeout_s + DEADLINE_MARGIN_S


def run_load(
    *,
    url: str,
    schedule: Schedule,
    payloads: PayloadSet,
    out_path: Path,
    cores: tuple[int, ...] | None,
    max_in_flight: int = 256,
    warmup_s: float = 0.0,
    request_timeout_s: float = 10.0,
    max_lag_s: float = 1.0,
    progress: ProgressMode = "auto",
    on_started: Callable[[int], None] | None = None,
    nice: int = 0,
) -> LoadResult:
    """POST `payloads.body(i)` to `url` at `schedule.offsets_s[i]` for every slot `i`.

    Runs in a spawned child pinned to `cores` (None: no pinning) and blocks until it is
    done; the child writes one row per slot to `out_path` (parquet, `REQUEST_SCHEMA`).
    Safe to call from a notebook (its event loop is not used); a script that calls it needs
    the usual `if __name__ == "__main__":` guard, because "spawn" imports the main module.

    Args:
        url: loopback only (127.0.0.1, localhost or ::1).
        schedule: intended send times; its count and duration bound the run.
        payloads: request bodies; needs at least `schedule.count` of them.
        out_path: where the rows go; written atomically (temp file, then rename).
        cores: CPU numbers for the engine process.
        max_in_flight: worker coroutines = connections = most requests outstanding at once.
        warmup_s: requests intended in the first `warmup_s` seconds get phase "warmup"
            (sent and recorded like any other).
        request_timeout_s: total time a request may take, connecting included.
        max_lag_s: a slot taken later than this behind its intended time is dropped by the
            client (status 0, "client_backlog") rather than sent. The default 1 s lets the
            engine catch up after a short stall but keeps a long one from turning into a
            burst of stale requests.
        progress: True / "auto": under a study, events on its progress channel (its
            terminal draws them; the notebook shows nothing), else a bar in a terminal or
            Jupyter, log lines in CI or a pipe; "bar" or "log" to force one; False: nothing
            (`load.progress.resolve_mode`).
        on_started: called with the engine process's pid once its schedule starts (for
            fault injection, e.g. pausing the engine to test its stall recovery).
        nice: the engine process's nice value (< 0 needs root; see `CoreLayout.load_nice`).

    Raises:
        ValueError: bad arguments (non-loopback URL, too few payloads, cores not usable...).
        RuntimeError: the engine process failed (its traceback is in the message).
        TimeoutError: the engine process overstayed its deadline and was killed.
    """
    job = _Job(
        url=url,
        schedule=schedule,
        payloads=payloads,
        out_path=Path(out_path),
        cores=None if cores is None else tuple(cores),
        max_in_flight=max_in_flight,
        warmup_s=warmup_s,
        request_timeout_s=request_timeout_s,
        max_lag_s=max_lag_s,
        parent_pid=os.getpid(),
        nice=nice,
    )
    job.validate()
    job.out_path.parent.mkdir(parents=True, exist_ok=True)
    display = make_display(progress, total=schedule.count, desc=f"load {schedule.kind}")
    context = multiprocessing.get_context("spawn")
    events = context.Queue()
    # The job (schedule arrays, payload templates: megabytes) goes through a file, not the
    # spawn pipe: `Process.start()` blocks forever writing a large process object to a child
    # that died while starting (e.g. a script without the `__main__` guard).
    fd, job_file = tempfile.mkstemp(prefix="ingestlab-load-", suffix=".pickle")
    # daemon=True: multiprocessing's exit hook terminates the child if the parent exits.
    child = context.Process(target=_child_main, args=(job_file, events), name="ingestlab-load", daemon=True)
    try:
        with os.fdopen(fd, "wb") as f:
            pickle.dump(job, f, protocol=pickle.HIGHEST_PROTOCOL)
        child.start()
        outcome = _await_child(child, events, display, job, on_started)
        child.join(STOP_GRACE_S)
    finally:
        display.close()
        _stop(child)
        events.close()
        Path(job_file).unlink(missing_ok=True)  # the child removes it once it has read it
    return LoadResult(
        out_path=job.out_path,
        rows=outcome["rows"],
        health=outcome["health"],
        settings=outcome["settings"],
    )


def _await_child(child: Any, events: Any, display: Any, job: _Job,
                 on_started: Callable[[int], None] | None) -> dict[str, Any]:
    """Relay the child's progress until it reports its result; enforce the deadlines."""
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while True:
        if time.monotonic() > deadline:
            raise TimeoutError(f"load engine process {child.pid} overstayed its deadline and was killed")
        try:
            kind, payload = events.get(timeout=0.1)
        except queue.Empty:
            if child.is_alive():
                continue
            try:  # it may have exited right after putting its last message
                kind, payload = events.get(timeout=1.0)
            except queue.Empty:
                raise RuntimeError(
                    f"load engine process exited with code {child.exitcode} without "
                    "reporting a result (its stderr is above). When run_load is called "
                    "from a script, the script needs the `if __name__ == '__main__':` "
                    "guard: the 'spawn' start method imports the main module again."
                ) from None
        if kind == "started":
            deadline = time.monotonic() + job.hard_deadline_s + FINISH_TIMEOUT_S
            if on_started is not None:
                on_started(payload["pid"])
        elif kind == "progress":
            display.update(payload)
        elif kind == "done":
            return payload
        elif kind == "error":
            raise RuntimeError(f"load engine process failed:\n{payload}")


def _stop(child: Any) -> None:
    """Make sure the child is gone: SIGTERM, then SIGKILL (which also ends a stopped one)."""
    if child.pid is None:  # never started
        return
    if child.is_alive():
        child.terminate()
        child.join(STOP_GRACE_S)
    if child.is_alive():
        child.kill()
    child.join()
    child.close()


# ---------------------------------------------------------------------------- child process


def _precise_loop() -> asyncio.AbstractEventLoop:
    """An event loop whose timers wake on time (see `timer_selector`), not up to 1 ms late."""
    return asyncio.SelectorEventLoop(TimerfdEpollSelector())


def _child_main(job_file: str, events: Any) -> None:
    """Entry point of the engine process: run the pickled `_Job` in `job_file`."""
    # Ctrl-C in a terminal reaches the whole process group; the parent decides what happens
    # to the child (it terminates it), so the child must not die half-way on its own.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with open(job_file, "rb") as f:
            job: _Job = pickle.load(f)
        # Read once; removing it here leaves nothing behind even if the parent is killed.
        os.unlink(job_file)
        if job.cores is not None:
            os.sched_setaffinity(0, job.cores)
        if job.nice:
            os.setpriority(os.PRIO_PROCESS, 0, job.nice)
        with asyncio.Runner(loop_factory=_precise_loop) as runner:
            events.put(("done", runner.run(_drive(job, events))))
    except BaseException:
        events.put(("error", traceback.format_exc()))
        sys.exit(1)


def _run_queue_wait_ns() -> int | None:
    """Time this thread spent runnable but waiting for a CPU (ns, /proc/thread-self/schedstat);
    None where the kernel does not keep it. The engine is one thread."""
    try:
        return int(Path("/proc/thread-self/schedstat").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return None


class _Counters:
    """Running totals for the progress stream; the hot loop only increments them."""

    __slots__ = ("sent", "responses", "errors", "dropped")

    def __init__(self) -> None:
        self.sent = 0
        self.responses = 0  # any HTTP status
        self.errors = 0  # no HTTP response, or status >= 400
        self.dropped = 0  # client_backlog


class _Ledger:
    """One run's request rows, preallocated column by column (0 in a time column: not
    recorded), and its running totals. The workers only write into it."""

    def __init__(self, schedule: Schedule) -> None:
        n = schedule.count
        self.n = n
        self.offsets_ns = array("q", [round(offset * 1e9) for offset in schedule.offsets_s])
        self.actual_mono = array("q", bytes(8 * n))
        self.end_mono = array("q", bytes(8 * n))
        self.status = array("h", [_NOT_RECORDED]) * n
        self.bytes_sent = array("i", bytes(4 * n))
        self.error_class: list[str | None] = [None] * n
        self.counters = _Counters()

    def progress_event(self, t0: int, previous: tuple[int, int, int]) -> tuple[dict[str, float], tuple]:
        """Totals so far and the rates since `previous` (monotonic ns, due, sent), with the
        state to pass next time."""
        now = time.monotonic_ns()
        due = bisect_right(self.offsets_ns, now - t0)
        then, due_before, sent_before = previous
        interval_s = max(now - then, 1) * 1e-9
        counters = self.counters
        event = {
            "elapsed_s": (now - t0) * 1e-9,
            "sent": counters.sent,
            "responses": counters.responses,
            "errors": counters.errors,
            "dropped": counters.dropped,
            "offered_rps": (due - due_before) / interval_s,
            "achieved_rps": (counters.sent - sent_before) / interval_s,
        }
        return event, (now, due, counters.sent)


async def _worker(job: _Job, ledger: _Ledger, slots: Iterator[int], t0: int, url: yarl.URL, head: bytes,
                  open_connections: list[Http1Connection], idle: list[Http1Connection]) -> None:
    """Take the next send slot until none is left: wait for its time, send on the most
    recently idle connection (or a new one), record; the connection goes back to `idle`
    once its answer is in."""
    # Everything the loop touches is a local: this is the engine's hot path.
    n, offsets_ns, counters = ledger.n, ledger.offsets_ns, ledger.counters
    actual_mono, end_mono, status = ledger.actual_mono, ledger.end_mono, ledger.status
    bytes_sent, error_class = ledger.bytes_sent, ledger.error_class
    clock, sleep, body_of = time.monotonic_ns, asyncio.sleep, job.payloads.body
    timeout_s, max_lag_ns = job.request_timeout_s, round(job.max_lag_s * 1e9)
    loop = asyncio.get_running_loop()
    while True:
        i = next(slots)
        if i >= n:
            return
        intended = t0 + offsets_ns[i]
        now = clock()
        if now < intended:
            await sleep((intended - now) * 1e-9)
            now = clock()
        if now - intended > max_lag_ns:
            status[i] = 0
            error_class[i] = BACKLOG_ERROR
            counters.dropped += 1
            continue
        body = body_of(i)
        bytes_sent[i] = len(body)
        counters.sent += 1
        actual_mono[i] = clock()
        timer = None
        connection: Http1Connection | None = None
        while idle and connection is None:
            connection = idle.pop()
            if connection.closed:  # the service closed it while it was idle
                connection = None
        try:
            # Connecting counts in the request's time, as it would for any client.
            if connection is None:
                connection = await asyncio.wait_for(Http1Connection.open(url), timeout_s)
                open_connections.append(connection)
            answer = connection.send(head, body)
            timer = loop.call_later(timeout_s, connection.time_out)
            code = await answer
            end_mono[i] = clock()
            status[i] = code
            counters.responses += 1
            if code >= 400:
                counters.errors += 1
            idle.append(connection)
        except REQUEST_ERRORS as exc:
            # Known transport failures become rows; anything else is a bug and fails the run.
            end_mono[i] = clock()
            status[i] = 0
            error_class[i] = type(exc).__name__
            counters.errors += 1
            if connection is not None:
                connection.close()
        finally:
            if timer is not None:
                timer.cancel()


async def _drive(job: _Job, events: Any) -> dict[str, Any]:
    """Run the schedule, write the rows, return rows/health/settings."""
    ledger = _Ledger(job.schedule)
    workers = min(job.max_in_flight, ledger.n)
    # One pair of clock readings maps monotonic time to wall time for the whole run.
    wall_clock = WallClock()
    t0 = wall_clock.t0_mono_ns + round(START_LEAD_S * 1e9)
    t0_wall_ns = wall_clock.wall_ns(t0)
    open_connections: list[Http1Connection] = []
    idle: list[Http1Connection] = []  # a stack: the most recently used connection is reused first
    slots = itertools.count()
    # Parsed and built once for all workers.
    url = yarl.URL(job.url)
    head = request_head(url, body_bytes=job.payloads.size_bytes)

    async def report() -> None:
        previous = (t0, 0, 0)
        while True:
            await asyncio.sleep(PROGRESS_INTERVAL_S)
            if os.getppid() != job.parent_pid:
                # The parent died without stopping us: nobody will read the results.
                os._exit(ORPHANED_EXIT_CODE)
            event, previous = ledger.progress_event(t0, previous)
            events.put(("progress", event))

    events.put(("started", {"pid": os.getpid(), "t0_wall_ns": t0_wall_ns}))
    process = psutil.Process()
    cpu_before, wait_before, mono_before = process.cpu_times(), _run_queue_wait_ns(), time.monotonic_ns()
    tasks = [asyncio.create_task(_worker(job, ledger, slots, t0, url, head, open_connections, idle))
             for _ in range(workers)]
    reporter = asyncio.create_task(report())
    deadline_hit = False
    try:
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=job.hard_deadline_s + START_LEAD_S)
    except TimeoutError:
        deadline_hit = True  # wait_for has cancelled the workers
    finally:
        reporter.cancel()
    cpu_after, wait_after, mono_after = process.cpu_times(), _run_queue_wait_ns(), time.monotonic_ns()
    # A last event with whole-run average rates, so the display ends on the totals.
    events.put(("progress", ledger.progress_event(t0, (t0, 0, 0))[0]))
    for connection in open_connections:
        connection.close()

    rows = _rows_frame(job=job, ledger=ledger, t0_wall_ns=t0_wall_ns, t0_mono_ns=t0)
    # Written under another name first: a reader never sees half a file.
    temp_path = job.out_path.with_name(job.out_path.name + ".partial")
    rows.write_parquet(temp_path)
    os.replace(temp_path, job.out_path)

    cpu_s = (cpu_after.user + cpu_after.system) - (cpu_before.user + cpu_before.system)
    run_s = (mono_after - mono_before) * 1e-9
    health = _health(
        rows,
        schedule=job.schedule,
        counters=ledger.counters,
        engine_cpu_pct=100.0 * cpu_s / run_s,
        engine_wait_pct=None if wait_before is None or wait_after is None
        else 100.0 * (wait_after - wait_before) * 1e-9 / run_s,
        run_s=run_s,
        deadline_hit=deadline_hit,
    )
    settings = _settings(job, workers, t0_wall_ns) | {"connections_opened": len(open_connections)}
    return {"rows": rows.height, "health": health, "settings": settings}


def _settings(job: _Job, workers: int, t0_wall_ns: int) -> dict[str, Any]:
    """What the engine ran with, as it was in its own process (cores, nice, pid)."""
    return {
        "url": job.url,
        "schedule_kind": job.schedule.kind,
        "schedule_count": job.schedule.count,
        "schedule_duration_s": job.schedule.duration_s,
        "payload_bytes": job.payloads.size_bytes,
        "max_in_flight": job.max_in_flight,
        "workers": workers,
        "warmup_s": job.warmup_s,
        "request_timeout_s": job.request_timeout_s,
        "max_lag_s": job.max_lag_s,
        "cores": sorted(os.sched_getaffinity(0)),
        "nice": os.getpriority(os.PRIO_PROCESS, 0),
        "pid": os.getpid(),
        "t0_wall_ns": t0_wall_ns,
    }


def _rows_frame(*, job: _Job, ledger: _Ledger, t0_wall_ns: int, t0_mono_ns: int) -> pl.DataFrame:
    """The request rows as one frame (`REQUEST_SCHEMA`), built once after the run.

    `actual_start_ns` is null for a request never sent, `end_ns` for one without an
    outcome; `bytes_sent` is the body size of a sent request, 0 otherwise.
    """

    def wall(column: str) -> pl.Expr:
        # Monotonic reading -> wall-clock epoch ns; 0 (never recorded) -> null.
        return pl.when(pl.col(column) != 0).then(pl.col(column) - t0_mono_ns + t0_wall_ns)

    unfinished = pl.col("status") == _NOT_RECORDED
    raw = pl.DataFrame(
        {
            "request_id": [job.payloads.request_id(i) for i in range(ledger.n)],
            "step": pl.Series(job.schedule.step, dtype=pl.Int32),
            "offset_ns": pl.Series(ledger.offsets_ns, dtype=pl.Int64),
            "actual_mono": pl.Series(ledger.actual_mono, dtype=pl.Int64),
            "end_mono": pl.Series(ledger.end_mono, dtype=pl.Int64),
            "status": pl.Series(ledger.status, dtype=pl.Int16),
            "bytes_sent": pl.Series(ledger.bytes_sent, dtype=pl.Int32),
            "error_class": pl.Series(ledger.error_class, dtype=pl.String),
        }
    )
    return raw.select(
        "request_id",
        "step",
        phase=phase_of(pl.col("offset_ns"), job.warmup_s),
        intended_start_ns=pl.col("offset_ns") + t0_wall_ns,
        actual_start_ns=wall("actual_mono"),
        end_ns=wall("end_mono"),
        status=pl.when(unfinished).then(0).otherwise(pl.col("status")).cast(pl.Int16),
        bytes_sent="bytes_sent",
        error_class=pl.when(unfinished).then(pl.lit(DEADLINE_ERROR)).otherwise(pl.col("error_class")),
    ).cast(REQUEST_SCHEMA)


def _health(
    rows: pl.DataFrame,
    *,
    schedule: Schedule,
    counters: _Counters,
    engine_cpu_pct: float,
    engine_wait_pct: float | None,
    run_s: float,
    deadline_hit: bool,
) -> dict[str, Any]:
    """The engine's self-check (see the SATURATION_* constants).

    Lag, achieved rate and drops are judged on the measured phase only: the warm-up is where
    connections open and the target's first answers are slow (e.g. a producer's first
    metadata fetch), which would otherwise flag every run.
    """
    measured = rows.filter(pl.col("phase") == "measure")
    if measured.height == 0:
        measured = rows
    sent = measured.filter(pl.col("actual_start_ns").is_not_null())
    dropped = int((measured["error_class"] == BACKLOG_ERROR).sum())
    lag_ms = (pl.col("actual_start_ns") - pl.col("intended_start_ns")) / NS_PER_MS
    stats = sent.select(
        lag_p50_ms=nearest_rank(lag_ms, 0.5),
        lag_p99_ms=nearest_rank(lag_ms, 0.99),
        lag_max_ms=lag_ms.max(),
    ).row(0, named=True)
    achieved_rps = send_rate_rps(sent["actual_start_ns"])
    offered_rps = schedule.offered_rps
    reasons = []
    if stats["lag_p99_ms"] is not None and stats["lag_p99_ms"] > SATURATION_LAG_P99_MS:
        waited = "" if engine_wait_pct is None else (
            f"; it waited {engine_wait_pct:.0f}% of the run for its core while other processes had it")
        reasons.append(
            f"schedule lag p99 is {stats['lag_p99_ms']:.1f} ms (> {SATURATION_LAG_P99_MS} ms): "
            "all workers were busy at send time (slow answers) or the engine was short of CPU"
            + waited
        )
    if engine_cpu_pct > SATURATION_CPU_PCT:
        reasons.append(f"engine CPU was {engine_cpu_pct:.0f}% of one core (> {SATURATION_CPU_PCT:.0f}%)")
    if achieved_rps is not None and achieved_rps < SATURATION_ACHIEVED_RATIO * offered_rps:
        reasons.append(
            f"achieved {achieved_rps:.1f} req/s is below {SATURATION_ACHIEVED_RATIO:.0%} of the "
            f"offered {offered_rps:.1f} req/s"
        )
    if dropped:
        reasons.append(f"{dropped} requests were dropped by the client (too late to send)")
    if deadline_hit:
        reasons.append("the hard deadline stopped the run; unfinished requests are 'client_deadline'")
    return {
        "offered_rps": offered_rps,
        "achieved_rps": achieved_rps,
        "sent": counters.sent,
        "responses": counters.responses,
        "errors": counters.errors,
        "dropped": counters.dropped,
        "lag_p50_ms": stats["lag_p50_ms"],
        "lag_p99_ms": stats["lag_p99_ms"],
        "lag_max_ms": stats["lag_max_ms"],
        "engine_cpu_pct": engine_cpu_pct,
        "engine_wait_pct": engine_wait_pct,
        "run_s": run_s,
        "deadline_hit": deadline_hit,
        "saturated": bool(reasons),
        "saturated_reasons": reasons,
    }
