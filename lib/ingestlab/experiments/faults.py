"""`faults`: what each service does when its broker fails under a constant load, and whether
what it promised its clients holds in Kafka afterwards.

One stack (a fresh broker, the services, and a `SlowLink` proxy in the path between them:
it passes bytes through unchanged until the `slow` fault); each service in turn, with a
`ProcessSampler` on it, through the faults of `config.faults.faults` in order (see
`FaultsConfig` for what each does and for how long): `pause`, `kill`, `slow`, `queue_full`,
`shutdown`, after which it is stopped, so the next service's faults meet a broker no other
client produces to (one broker start instead of one per service: on a shared machine a start
took 17-30 s here). Each fault's load is open loop at `config.faults.rate_rps` (except the
queue's fill), its requests carry ids of their own, and the fault is injected `before_s` into
it (by the calling thread, while the load runs in a thread of its own). Once every service
has been through its faults and stopped (SIGTERM: its producer flushes, so nothing is still on
its way), the topic is read back once: every fault's ledger (`analysis.faults.fault_ledger`)
is final.

The client waits `request_timeout_s` for an answer. Node answers 202 when the record is in
librdkafka's queue, Rust once the broker acknowledged it: a broker fault shows in Rust as held
requests and timeouts (pushing back), in Node as 202s for records that are not yet in Kafka.
The ledger says what came of them.
"""

from __future__ import annotations

import math
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from ingestlab.analysis.faults import (
    WINDOW_SCHEMA,
    fault_ledger,
    latency_around,
    recovery_s,
    rss_around,
    status_counts,
)
from ingestlab.config import FaultName, ServiceName, StudyConfig
from ingestlab.experiments.ceiling import ceiling_runs_here
from ingestlab.load.engine import START_LEAD_S, run_load
from ingestlab.load.payloads import PayloadSet
from ingestlab.load.schedules import constant
from ingestlab.results import Run
from ingestlab.stack import Stack
from ingestlab.stack.kafka import BROKER_SESSION_TIMEOUT_S
from ingestlab.stack.slow_link import CLEAR, LinkShape
from ingestlab.summaries import FaultOutcome, FaultsResult, FaultsSummary
from ingestlab.telemetry.sampler import ProcessSampler
from ingestlab.units import NS_PER_S

# Workers beyond rate x timeout (every request held until its timeout): the load stays on
# schedule even while the service holds every request it gets.
POOL_SLACK = 64
# A rate above this share of the slower service's ceiling measures overload, not the fault.
MAX_CEILING_SHARE = 0.5
# The queue's fill offers this many times the messages still missing (`queue_messages` less
# the fill's 202s so far; at least `QUEUE_REFILL_SHARE` of it) per round: not every request
# becomes a message (an overloaded Node drops those whose client gave up before it read them:
# 10-45% of a fill here). Rounds go on while the probes are still accepted (the queue has
# room); they stop once a probe is answered 5xx (the queue is full), or none is accepted (the
# service holds or refuses requests instead of queueing them).
QUEUE_FILL_MARGIN = 1.2
QUEUE_REFILL_SHARE = 0.1
QUEUE_FILL_MAX_ROUNDS = 4
# librdkafka's default reconnect.backoff.max.ms: a producer that found the broker gone for
# a while may wait this long before it connects again (Rust's answered nothing for the first
# 4 s after a restart here, and was back after 10 s), so a killed broker's run lasts this much
# longer after the restart.
RECONNECT_BACKOFF_MAX_S = 10.0
# The probes of a full queue go out over this long.
QUEUE_PROBE_S = 1.0


@dataclass(frozen=True)
class Injected:
    """What a fault's injection did: when it began and ended (wall-clock epoch ns) and what it
    measured on the way (`FaultOutcome`'s fault-specific fields)."""

    start_ns: int
    end_ns: int
    extra: dict[str, float | int | None] = field(default_factory=dict)


@dataclass(frozen=True)
class FaultRun:
    """One fault's load: its request rows (with `service`, `fault`, `leg`), its window
    (`analysis.faults.WINDOW_SCHEMA`) and the rows of the load after it, for the recovery."""

    rows: pl.DataFrame
    window: dict[str, object]
    extra: dict[str, float | int | None]
    after: pl.DataFrame


class _Load:
    """The open-loop runs of one service's faults: where rows go, their ids, the engine."""

    def __init__(self, config: StudyConfig, stack: Stack, service: ServiceName, out_dir: Path) -> None:
        self.config = config
        self.stack = stack
        self.service = service
        self.out_dir = out_dir
        self._runs = 0

    def run(self, leg: str, *, rate_rps: float, duration_s: float, timeout_s: float,
            body_bytes: int | None = None,
            on_started: Callable[[int], None] | None = None) -> tuple[pl.DataFrame, int, int]:
        """One constant-rate run against the service: (rows, load start, schedule end), the
        two times in wall-clock epoch ns. `leg` names the run in the rows and the ids."""
        self._runs += 1
        schedule = constant(rate_rps, duration_s)
        payloads = PayloadSet(schedule.count, size_bytes=body_bytes or self.config.load.payload_bytes,
                              seed=self.config.seed + self._runs, id_prefix=f"{self.service}-{leg}")
        result = run_load(
            url=self.stack.service(self.service).ingest_url,
            schedule=schedule,
            payloads=payloads,
            out_path=self.out_dir / f"{self.service}-{leg}.parquet",
            cores=self.config.cores.load,
            max_in_flight=math.ceil(rate_rps * timeout_s) + POOL_SLACK,
            request_timeout_s=timeout_s,
            on_started=on_started,
            nice=self.config.cores.load_nice,
        )
        t0_ns = result.settings["t0_wall_ns"]
        rows = result.frame().with_columns(leg=pl.lit(leg))
        return rows, t0_ns, t0_ns + round(schedule.duration_s * NS_PER_S)

    def with_fault(self, fault: FaultName, inject: Callable[[], Injected], *, run_s: float) -> FaultRun:
        """`run_s` seconds at the fault rate, `inject` called `before_s` into them; its rows
        after the fault's end are the recovery's.

        The load runs in a thread and the fault in the caller's: a broker restarted by the
        `kill` fault gets the parent-death signal of the thread that started it
        (`setpriv --pdeathsig`, which Linux ties to the thread, not the process), so that
        thread must live as long as the stack.
        """
        f = self.config.faults
        started = threading.Event()
        result: list[tuple[pl.DataFrame, int, int]] = []
        failed: list[BaseException] = []

        def drive() -> None:
            try:
                result.append(self.run(fault, rate_rps=f.rate_rps, duration_s=run_s,
                                       timeout_s=f.request_timeout_s, on_started=lambda _pid: started.set()))
            except BaseException as exc:  # re-raised in the caller's thread
                failed.append(exc)
            finally:
                started.set()

        load = threading.Thread(target=drive, name=f"ingestlab-load-{fault}", daemon=True)
        load.start()
        try:
            started.wait()
            injected = None
            if not failed:
                time.sleep(START_LEAD_S + f.before_s)
                injected = inject()
        finally:
            load.join()
        if failed:
            raise failed[0]
        assert injected is not None
        rows, load_start, load_end = result[0]
        window = {"start_ns": injected.start_ns, "end_ns": injected.end_ns,
                  "load_start_ns": load_start, "load_end_ns": load_end}
        return FaultRun(rows=rows, window=window, extra=injected.extra,
                        after=rows.filter(pl.col("intended_start_ns") >= injected.end_ns))


# --- the faults ---------------------------------------------------------------------------------
def _pause(load: _Load) -> FaultRun:
    f, broker = load.config.faults, load.stack.kafka
    assert broker is not None

    def inject() -> Injected:
        start = time.time_ns()
        broker.pause()
        try:
            time.sleep(f.fault_s)
        finally:
            broker.resume()
        return Injected(start, time.time_ns())

    return load.with_fault("pause", inject, run_s=f.before_s + f.fault_s + f.after_s)


def _kill(load: _Load) -> FaultRun:
    f, broker = load.config.faults, load.stack.kafka
    assert broker is not None
    # A restart takes what the first start took (less the storage format), plus the wait for
    # the killed broker's session to expire before the controller registers it again; the
    # producers then reconnect within their backoff: the run lasts that much longer, so the
    # load after the restart still gets about `after_s`.
    first_start_s = broker.startup_s or load.config.stack.broker_start_timeout_s
    restart_budget_s = first_start_s + BROKER_SESSION_TIMEOUT_S + RECONNECT_BACKOFF_MAX_S

    def inject() -> Injected:
        start = time.time_ns()
        broker.kill()
        time.sleep(f.kill_down_s)
        restart_s = broker.restart()
        return Injected(start, time.time_ns(), {"restart_s": restart_s})

    return load.with_fault("kill", inject, run_s=f.before_s + f.kill_down_s + restart_budget_s + f.after_s)


def slow_shape(config: StudyConfig) -> LinkShape:
    """The slow fault's link: `slow_delay_ms` each way and `slow_bandwidth_share` of the body
    bytes the fault rate offers per second."""
    f = config.faults
    return LinkShape(delay_s=f.slow_delay_ms / 1000,
                     bandwidth_bytes_per_s=f.slow_bandwidth_share * f.rate_rps * config.load.payload_bytes)


def _slow(load: _Load) -> FaultRun:
    f, link = load.config.faults, load.stack.link
    assert link is not None
    shape = slow_shape(load.config)

    def inject() -> Injected:
        start = time.time_ns()
        link.shape = shape
        try:
            time.sleep(f.fault_s)
        finally:
            link.shape = CLEAR
        return Injected(start, time.time_ns())

    return load.with_fault("slow", inject, run_s=f.before_s + f.fault_s + f.after_s)


def _queue_full(load: _Load) -> FaultRun:
    """Broker paused once the fill's load is up; rounds of a fill (clients that give up after
    `queue_fill_timeout_s`) and a probe (clients that wait longer than the service does)
    while the probes are accepted (see `QUEUE_FILL_MARGIN`); broker resumed; `after_s` at the
    fault rate."""
    f, broker = load.config.faults, load.stack.kafka
    assert broker is not None
    legs: list[pl.DataFrame] = []
    paused: list[int] = []

    def pause(_pid: int) -> None:
        # Here, not before the fill: the engine's start (seconds on a busy machine) would
        # lengthen the pause, and past librdkafka's request timeout (30 s) a pause makes duplicates.
        if not paused:
            paused.append(time.time_ns())
            broker.pause()

    try:
        accepted = 0
        for round_ in range(QUEUE_FILL_MAX_ROUNDS):
            missing = max(f.queue_messages - accepted, QUEUE_REFILL_SHARE * f.queue_messages)
            fill, _, _ = load.run(f"queue_full-fill{round_}", rate_rps=f.queue_fill_rps,
                                  duration_s=QUEUE_FILL_MARGIN * missing / f.queue_fill_rps,
                                  timeout_s=f.queue_fill_timeout_s, body_bytes=f.queue_body_bytes,
                                  on_started=pause)
            probe, _, _ = load.run(f"queue_full-probe{round_}", duration_s=QUEUE_PROBE_S,
                                   rate_rps=f.queue_probe_requests / QUEUE_PROBE_S,
                                   timeout_s=f.queue_probe_timeout_s, body_bytes=f.queue_body_bytes)
            legs += [fill, probe]
            if (probe["status"] >= 500).any() or not (probe["status"] == 202).any():
                break
            accepted += int((fill["status"] == 202).sum())
    finally:
        if paused:
            broker.resume()
    end = time.time_ns()
    after, _, load_end = load.run("queue_full-after", rate_rps=f.rate_rps, duration_s=f.after_s,
                                  timeout_s=f.request_timeout_s)
    legs.append(after)
    first_start = int(legs[0]["intended_start_ns"].min())  # type: ignore[arg-type]
    window = {"start_ns": paused[0], "end_ns": end, "load_start_ns": first_start, "load_end_ns": load_end}
    return FaultRun(rows=pl.concat(legs), window=window, extra={}, after=after)


def _shutdown(load: _Load) -> FaultRun:
    f = load.config.faults
    service = load.stack.service(load.service)

    def inject() -> Injected:
        start = time.time_ns()
        began = time.monotonic()
        # SIGKILL only well past the bound, so a slow exit is measured, not cut short.
        exit_code = service.stop(timeout_s=2 * f.shutdown_bound_s)
        return Injected(start, time.time_ns(), {"exit_code": exit_code, "exit_s": time.monotonic() - began})

    return load.with_fault("shutdown", inject, run_s=f.before_s + f.fault_s)


FAULT_RUNS: dict[FaultName, Callable[[_Load], FaultRun]] = {
    "pause": _pause, "kill": _kill, "slow": _slow, "queue_full": _queue_full, "shutdown": _shutdown,
}


# --- the services, the whole run ----------------------------------------------------------------
@dataclass(frozen=True)
class ServiceFaults:
    """One service's faults: each one's run, and the frames of them all: requests (with
    `service`, `fault`, `leg`), windows (`analysis.faults.WINDOW_SCHEMA`) and the service's
    own process samples (with `service`)."""

    runs: dict[FaultName, FaultRun]
    requests: pl.DataFrame
    windows: pl.DataFrame
    samples: pl.DataFrame


def run_faults(config: StudyConfig, stack: Stack, service: ServiceName, faults: tuple[FaultName, ...],
               out_dir: Path) -> ServiceFaults:
    """Inject `faults` in order into `service` of a running `stack` (made with
    `broker_link=True` for `slow`), sampling the service; then stop it (its producer flushes)
    so that what Kafka holds of it is final."""
    load = _Load(config, stack, service, out_dir)
    process = stack.service(service)
    sampler = ProcessSampler(process, interval_s=config.faults.sample_interval_s, cores=config.cores.load)
    runs: dict[FaultName, FaultRun] = {}
    with sampler:
        for fault in faults:
            runs[fault] = FAULT_RUNS[fault](load)
    if process.is_running():
        process.stop()
    requests = pl.concat(
        [run.rows.with_columns(service=pl.lit(service), fault=pl.lit(fault)) for fault, run in runs.items()],
        how="diagonal_relaxed",
    )
    windows = pl.DataFrame([{"service": service, "fault": fault, **run.window}
                            for fault, run in runs.items()], schema=WINDOW_SCHEMA)
    samples = sampler.samples().filter(pl.col("pid") == sampler.pid).with_columns(service=pl.lit(service))
    return ServiceFaults(runs=runs, requests=requests, windows=windows, samples=samples)


def inject_faults(config: StudyConfig, stack: Stack, faults: tuple[FaultName, ...],
                  out_dir: Path) -> tuple[dict[ServiceName, ServiceFaults], pl.DataFrame]:
    """Every service of `stack` in turn through `faults` (`run_faults`), then the topic read
    back (`stack.topic.RECORD_SCHEMA`). Each service is stopped before the next one's
    faults, so no other client produces meanwhile, and all have flushed before the read-back."""
    measured = {service: run_faults(config, stack, service, faults, out_dir)
                for service in stack.service_names}
    stack.wait_for_records(sum(int((m.requests["status"] == 202).sum()) for m in measured.values()))
    return measured, stack.read_topic()


def outcomes(measured: ServiceFaults, records: pl.DataFrame) -> dict[str, FaultOutcome]:
    """One service's `FaultOutcome` per fault, from its faults and the records read back."""
    ledger = {row["fault"]: row for row in fault_ledger(measured.requests, records).iter_rows(named=True)}
    rss = {row["fault"]: row for row in rss_around(measured.samples, measured.windows).iter_rows(named=True)}
    latency = {row["fault"]: row
               for row in latency_around(measured.requests, measured.windows).iter_rows(named=True)}
    statuses = status_counts(measured.requests)
    found: dict[str, FaultOutcome] = {}
    for window in measured.windows.iter_rows(named=True):
        fault, run = window["fault"], measured.runs[window["fault"]]
        counts = ledger[fault]
        recovered = None if fault == "shutdown" else recovery_s(
            run.after, fault_end_ns=window["end_ns"], load_end_ns=window["load_end_ns"])
        found[fault] = FaultOutcome(
            start_s=(window["start_ns"] - window["load_start_ns"]) / NS_PER_S,
            duration_s=(window["end_ns"] - window["start_ns"]) / NS_PER_S,
            sent=counts["sent"], accepted=counts["accepted"], errors_4xx=counts["errors_4xx"],
            errors_5xx=counts["errors_5xx"], timeouts=counts["timeouts"], no_answer=counts["no_answer"],
            statuses={str(r["status"]): r["requests"]
                      for r in statuses.filter(pl.col("fault") == fault).iter_rows(named=True)},
            lost=counts["lost"], delivered_after_error=counts["delivered_after_error"],
            duplicated=counts["duplicated"], recovery_s=recovered,
            p99_before_ms=latency[fault]["p99_before_ms"], p99_during_ms=latency[fault]["p99_during_ms"],
            rss_before_mib=rss[fault]["rss_before_mib"], rss_peak_mib=rss[fault]["rss_peak_mib"],
            exit_code=run.extra.get("exit_code"),  # type: ignore[arg-type]
            exit_s=run.extra.get("exit_s"),
            restart_s=run.extra.get("restart_s"),
        )
    return found


def _checks(config: StudyConfig, service: str, found: dict[str, FaultOutcome]) -> list[str]:
    """What a reader must know before the numbers: lost records, a slow or failed exit, no
    recovery, a queue that never filled."""
    notes = []
    for fault, o in found.items():
        if o.lost:
            notes.append(f"{service} {fault}: {o.lost} accepted requests have no record in Kafka")
        if fault != "shutdown" and o.recovery_s is None:
            notes.append(f"{service} {fault}: not recovered within the run "
                         f"(202s >= 95% of offered and no errors to its end)")
    shutdown, bound_s = found.get("shutdown"), config.faults.shutdown_bound_s
    if shutdown is not None and (shutdown.exit_code != 0 or (shutdown.exit_s or 0) > bound_s):
        notes.append(f"{service} shutdown: exit code {shutdown.exit_code} after {shutdown.exit_s:.1f} s "
                     f"(expected 0 within {bound_s:g} s)")
    queue = found.get("queue_full")
    if queue is not None and not queue.errors_5xx:
        notes.append(f"{service} queue_full: no 5xx answer: the queue did not fill, or the service "
                     "does not answer 5xx when it is full")
    return notes


def rate_source(config: StudyConfig) -> tuple[str, list[str]]:
    """How the fault rate relates to the services' ceilings on this machine (a sentence), and a
    warning if it is above `MAX_CEILING_SHARE` of the slower one's."""
    rate = config.faults.rate_rps
    runs = ceiling_runs_here(config)
    if not runs:
        return f"{rate:,} req/s (faults.rate_rps); no ceiling run on this machine to compare it with", []
    ceilings = {s: runs[0].summary.services[s].ceiling_rps for s in ("node", "rust")}
    slower = min(ceilings, key=ceilings.get)  # type: ignore[arg-type]
    share = rate / ceilings[slower]
    text = (f"{rate:,} req/s (faults.rate_rps) = {share:.0%} of {slower}'s ceiling "
            f"{ceilings[slower]:,.0f} req/s (ceiling run {runs[0].run_id})")
    warning = [f"the fault rate is {share:.0%} of {slower}'s ceiling: the runs measure overload as well "
               "as the faults"] if share > MAX_CEILING_SHARE else []
    return text, warning


def faults(config: StudyConfig) -> Run:
    """Each fault of `config.faults.faults` under load, per service; summary: `FaultsSummary`."""
    source, found = rate_source(config)
    run = Run.create(config, "faults")
    shape = slow_shape(config)
    f = config.faults
    with Stack(config, log_dir=run.logs_dir, broker_link=True) as stack:
        measured, records = inject_faults(config, stack, f.faults, run.path / "legs")
        run.update_meta(stack=stack.describe())
    results: dict[str, FaultsResult] = {}
    for service, mine in measured.items():
        found_here = outcomes(mine, records)
        results[service] = FaultsResult(rate_rps=float(f.rate_rps), request_timeout_s=f.request_timeout_s,
                                        faults=found_here)
        found += _checks(config, service, found_here)
    for name in ("requests", "windows", "samples"):
        parts = [getattr(mine, name) for mine in measured.values()]
        run.write_frame(name, pl.concat(parts, how="diagonal_relaxed"))
    run.write_frame("deliveries", records)
    shutil.rmtree(run.path / "legs", ignore_errors=True)
    summary = FaultsSummary(
        services=results,
        rate_source=source,
        slow_link={"delay_ms": f.slow_delay_ms, "bandwidth_bytes_per_s": shape.bandwidth_bytes_per_s,
                   "how": "asyncio TCP proxy on 127.0.0.1 that the broker advertises (stack.slow_link)"},
        queue_full={"messages": f.queue_messages, "fill_rps": f.queue_fill_rps,
                    "body_bytes": f.queue_body_bytes, "fill_timeout_s": f.queue_fill_timeout_s,
                    "probe_requests": f.queue_probe_requests, "probe_timeout_s": f.queue_probe_timeout_s},
    )
    run.write_summary(summary, warnings_found=found)
    return run
