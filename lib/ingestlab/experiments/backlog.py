"""`backlog`: Kafka slower than the intake for minutes (issue 18, item 2).

The article's claims (its "Rate Limiting, Backpressure" section): in Node, when the intake
exceeds what the broker takes, "the Express event loop continues to accept connections,
queueing payloads in heap memory. This leads to garbage collection bottlenecks and eventual
OOM crashes"; Rust's rdkafka producer "implements bounded internal queues. If the Kafka cluster
lags, the rdkafka client applies backpressure by delaying the resolution of the FutureRecord
task ... graceful degradation". Its own producer settings let librdkafka queue 100,000 messages
(`queue.buffering.max.messages`; `queue.buffering.max.kbytes` keeps its default, 1 GiB), in
native memory, with 10 KB bodies about 1 GB.

Per service (each of `config.services`), a fresh stack (a broker and that service alone, as the
soak's), and the load open loop at `rate` throughout (the study's soak rate, which each service
holds while Kafka keeps up; the asyncio engine, its request ids matching each record to its
request, a client that gives up after `backlog.request_timeout_s`, workers enough to hold every
request that long):

1. `before_s` with Kafka keeping up (after `warmup_s` of unjudged load: a fresh broker and
   service);
2. the broker made slower than the intake for `slow_s`: a producer byte-rate quota of
   `quota_share` x the body bytes the load offers per second, so the producer's queue grows by
   about (1 - `quota_share`) x the rate per second;
3. the quota lifted: Kafka catches up, and `drain_s` more of the same load show the drain.

**How the broker is made slower: a client quota, Kafka's own mechanism.** `producer_byte_rate`
on the default client entity (every client id; the stack has one producer), set and lifted
through Kafka's Admin API (`alterClientQuotas`, what `kafka-configs.sh` and
`kafka.admin.ConfigCommand` call) from one JVM with the broker's jars, started before the load
(`stack.kafka.QuotaShell`, `infra/kafka/QuotaShell.java`): a change then takes a round trip
(0.04-0.6 s here), where `kafka-configs.sh` took 3-8 s per change on the busy broker core,
most of it a JVM's start beside the broker and the load engine, whose sends it delayed at the
very moments measured. A throttled producer gets its answers with a throttle time and its
connection muted that long (KIP-219), which is what a broker short of capacity does to its
clients: it stays up and answers, only slower, where the article's "Kafka cluster lags". Not
the AdminClient of the workbook's Python: confluent-kafka 2.16 has no `alter_client_quotas`.
Not the slow link (`stack.slow_link`, the faults' `slow`): a proxy in Python shapes TCP bytes,
not Kafka's requests, and costs CPU on the load core in proportion to what it carries (about
10 MB/s here), while the quota costs nothing while in force. The slow stage runs from the
set's return to the clear's (`BacklogConfig.quota_command_budget_s` per change lengthens the
load).

**Why the load goes on through the drain.** The clients of an ingestion service do not stop
when its broker recovers: the drain under load is what happens, and it is slower than an idle
one. And the memory at the end is then compared with the memory before at the same load: RSS
that has not come back is kept memory, not the load's working set.

**Memory limits.** `backlog.memory_limit_mb` gives the service's container a memory limit
(swap included); a service whose process ends on its own is recorded (`died_s`, its exit code,
whether the container was OOM-killed: `State.OOMKilled`), the load goes on against the dead
port (refused connections: the engine records them and does not wait), and the ledger says
what became of the requests it had accepted. Natively there is no limit (`Stack` refuses one).

The timeline per second (`analysis.backlog.backlog_timeline`, frame `timeline`) puts the
requests, what Kafka appended (from the records' append times), the memory parts (the services'
memory reports at 1 Hz: librdkafka's queue in messages and bytes, V8's heap) and Node's GC on
one clock, seconds after the slowdown began.
"""

from __future__ import annotations

import contextlib
import math
import shutil
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl
from confluent_kafka import KafkaException

from ingestlab.analysis.backlog import (
    WINDOW_SCHEMA,
    backlog_timeline,
    drained_s,
    error_onset_s,
    gc_share_by_stage,
    memory_findings,
    queue_cap,
    stage_ledger,
    stage_rates,
    throttled_bytes_per_s,
    with_stage,
)
from ingestlab.analysis.faults import outcome
from ingestlab.config import ServiceName, StudyConfig
from ingestlab.experiments.faults import POOL_SLACK
from ingestlab.experiments.soak import REST_S, memory_parts_of
from ingestlab.host.component import StartupError
from ingestlab.load.engine import BACKLOG_ERROR, START_LEAD_S, LoadResult, run_load
from ingestlab.load.payloads import PayloadSet
from ingestlab.load.schedules import constant
from ingestlab.names import CONTAINER
from ingestlab.quantiles import nearest_rank
from ingestlab.results import Run
from ingestlab.stack import Stack
from ingestlab.stack.kafka import QuotaShell
from ingestlab.summaries import BacklogResult, BacklogSummary, ComparisonRate
from ingestlab.telemetry.gc_trace import parse_gc_log
from ingestlab.telemetry.memory_report import parse_memory_reports
from ingestlab.telemetry.sampler import ProcessSampler, tree_rss_bytes, tree_totals
from ingestlab.units import MB, MIB, NS_PER_MS, NS_PER_S
from ingestlab.variants import has_v8_trace

MECHANISM = ("a producer byte-rate client quota (producer_byte_rate, the default client entity) set "
             "and lifted on the broker through Kafka's Admin API (alterClientQuotas, as kafka-configs.sh) "
             "from a JVM with the broker's jars (stack.kafka.QuotaShell): the broker throttles the "
             "producer by delaying its answers (KIP-219)")


# After the load the topic is read every second: Kafka has flushed once it holds every record
# accepted and has not grown for FLUSH_QUIET_S (a queue's last messages, e.g. those of Rust's
# abandoned requests, are in too); a topic that has not grown for FLUSH_STUCK_S (a dead
# service's) ends the wait.
FLUSH_QUIET_S = 3.0
FLUSH_STUCK_S = 15.0
# Records appended per second over this share of the quota (once throttled): it did not hold.
# Kafka throttles after the fact (a request passes, and the client is muted for as long as it
# went over), so records run over the quota: 1.05 x over the full profile's 300 s here, 1.1-1.9 x
# over the quick profile's 30 s, whose measure has not settled.
QUOTA_HELD_SHARE = 2.0


def quota_bytes_per_s(config: StudyConfig, rate_rps: float) -> float:
    """The producer quota of the slow stage: `backlog.quota_share` of the body bytes `rate_rps`
    offers per second (bytes/s)."""
    return config.backlog.quota_share * rate_rps * config.load.payload_bytes


def requests_per_service(config: StudyConfig, rate_rps: float) -> int:
    """Requests one service's load sends (rate x its whole length); raises ValueError beyond
    `backlog.max_requests` (the engine keeps one row per request in memory)."""
    b = config.backlog
    count = math.ceil(rate_rps * b.load_s)
    if count > b.max_requests:
        raise ValueError(f"backlog: {rate_rps:,.0f} req/s for {b.load_s:g} s is {count:,} requests, "
                         f"more than max_requests ({b.max_requests:,}) per service")
    return count


@dataclass(frozen=True)
class Leg:
    """One service's run: its frames (each with `service`): requests (with `stage`), its
    processes' RSS summed per tick, memory parts per second, memory reports, Node's GC events
    (or None), the topic read back; its `WINDOW_SCHEMA` row; the engine's health; the RSS at
    rest (bytes); the quota commands' durations (s); how the service ended (`exit_state`,
    None: it ran to the end); the client's pool; the stack as `describe()`d; after the load,
    the seconds until Kafka had flushed (`flushed_s`, None: not within `flush_wait_s`) and the
    service's RSS then (bytes; None: it had died)."""

    requests: pl.DataFrame
    samples: pl.DataFrame
    parts: pl.DataFrame
    reports: pl.DataFrame
    gc: pl.DataFrame | None
    records: pl.DataFrame
    window: dict[str, Any]
    health: dict[str, Any]
    rss_start_bytes: int
    quota_set_s: float
    quota_cleared_s: float
    exit_state: dict[str, Any] | None
    max_in_flight: int
    stack: dict[str, Any]
    flushed_s: float | None = None
    rss_flushed_bytes: int | None = None


@dataclass(frozen=True)
class _Slowed:
    """The load and when the quota was in force (epoch ns), with its commands' durations."""

    load: LoadResult
    slow_start_ns: int
    slow_end_ns: int
    set_s: float
    cleared_s: float


def _slowed_load(config: StudyConfig, shell: QuotaShell, *, quota: float, **load: Any) -> _Slowed:
    """`run_load(**load)` in a thread of its own; from this one, `warmup_s` + `before_s` into its
    schedule the quota set on the broker (`shell`), `slow_s` later lifted."""
    b = config.backlog
    started = threading.Event()
    result: list[LoadResult] = []
    failed: list[BaseException] = []

    def drive() -> None:
        try:
            result.append(run_load(**load, on_started=lambda _pid: started.set()))
        except BaseException as exc:  # re-raised in the caller's thread
            failed.append(exc)
        finally:
            started.set()

    thread = threading.Thread(target=drive, name="ingestlab-load-backlog", daemon=True)
    thread.start()
    try:
        started.wait()
        if not failed:
            time.sleep(START_LEAD_S + b.warmup_s + b.before_s)
            set_s = shell.set(quota)
            slow_start_ns = time.time_ns()
            time.sleep(b.slow_s)
            cleared_s = shell.clear()
            slow_end_ns = time.time_ns()
    finally:
        thread.join()
    if failed:
        raise failed[0]
    return _Slowed(result[0], slow_start_ns, slow_end_ns, set_s, cleared_s)


def _wait_for_flush(stack: Stack, *, accepted: int, timeout_s: float) -> float | None:
    """Seconds from now until the topic last grew, once it holds `accepted` records and has
    stopped growing (see `FLUSH_QUIET_S`); None if it stopped short of them or `timeout_s`
    passed first."""
    began = time.monotonic()
    last, grew_at = -1, began
    while True:
        size, now = stack.topic_size(), time.monotonic()
        if size != last:
            last, grew_at = size, now
        if size >= accepted and now - grew_at >= FLUSH_QUIET_S:
            return grew_at - began
        if now - grew_at >= FLUSH_STUCK_S or now - began >= timeout_s:
            return None
        time.sleep(1.0)


def _finished_ns(finished_at: str | None) -> int | None:
    """The engine's FinishedAt (RFC 3339, ns digits) as epoch ns (to the microsecond)."""
    if not finished_at or finished_at.startswith("0001-"):
        return None
    return round(datetime.fromisoformat(finished_at).timestamp() * 1e6) * 1_000


def _ended(process: Any, samples: pl.DataFrame) -> tuple[dict[str, Any] | None, int | None]:
    """How a service that ended on its own ended (`ContainerProcess.exit_state`, or natively its
    exit code) and when (epoch ns: the engine's finish time, else the last sample); (None,
    None) while it runs."""
    if process.is_running():
        return None, None
    state = (process.exit_state() if hasattr(process, "exit_state") else None) or {
        "oom_killed": False, "exit_code": process.returncode, "finished_at": None, "error": None}
    died = _finished_ns(state.get("finished_at"))
    if died is None and not samples.is_empty():
        died = int(samples["t_ns"].max())
    return state, died


def _started_stack(config: StudyConfig, service: ServiceName, *, log_dir: Path,
                   memory_limit_bytes: int | None) -> Stack:
    """A started stack of a broker and `service`; a start that fails is tried once more (on the
    busy shared machine a fresh broker once took over 30 s to create the topic, which ended a
    full run after its first service's ten minutes)."""
    for attempt in (1, 2):
        stack = Stack(config, services=(service,), log_dir=log_dir,
                      service_memory_limit_bytes=memory_limit_bytes)
        try:
            return stack.__enter__()  # on failure it has torn down what it started
        except (StartupError, KafkaException):
            if attempt == 2:
                raise
            # its logs kept apart: the service's log is parsed for its reports
            log_dir.rename(log_dir.with_name(f"{log_dir.name}-failed-start"))
    raise AssertionError("unreachable")


def hold_backlog(config: StudyConfig, service: ServiceName, rate_rps: float, *, log_dir: Path,
                 out_dir: Path) -> Leg:
    """Start a broker and `service` (with `backlog.memory_limit_mb`), let it rest, then hold
    `rate_rps` through the stages while sampling it; stop it (its producer flushes) and
    read the topic back."""
    b = config.backlog
    schedule = constant(rate_rps, b.load_s)
    payloads = PayloadSet(requests_per_service(config, rate_rps), size_bytes=config.load.payload_bytes,
                          seed=config.seed, id_prefix=f"{service}-backlog")
    max_in_flight = math.ceil(rate_rps * b.request_timeout_s) + POOL_SLACK
    limit = b.memory_limit_mb * MB if b.memory_limit_mb is not None else None
    started = _started_stack(config, service, log_dir=log_dir, memory_limit_bytes=limit)
    with contextlib.closing(started) as stack:
        assert stack.kafka is not None
        process = stack.service(service)
        sampler = ProcessSampler(process, interval_s=b.sample_interval_s, cores=config.cores.load)
        with stack.kafka.quota_shell(log_path=log_dir / "quota-shell.log") as shell:
            time.sleep(REST_S)  # after the shell's start, which shares the broker's core
            rss_start = tree_rss_bytes(process.pid)
            with sampler:
                slowed = _slowed_load(config, shell, quota=quota_bytes_per_s(config, rate_rps),
                                      url=process.ingest_url, schedule=schedule, payloads=payloads,
                                      out_path=out_dir / f"{service}.parquet", cores=config.cores.load,
                                      max_in_flight=max_in_flight, request_timeout_s=b.request_timeout_s,
                                      warmup_s=b.warmup_s, nice=config.cores.load_nice)
        samples = tree_totals(sampler.samples())
        rows = slowed.load.frame()
        accepted = int((rows["status"] == 202).sum())
        # the service runs on until Kafka has what it accepted: a stop with a backlog loses what
        # its flush timeout leaves, which says nothing about the backlog
        flushed_s = _wait_for_flush(stack, accepted=accepted, timeout_s=b.flush_wait_s)
        rss_flushed = tree_rss_bytes(process.pid) if process.is_running() else None
        exit_state, died_ns = _ended(process, samples)
        process.stop()
        stack.wait_for_records(accepted)
        records = stack.read_topic()
        described = stack.describe()
    key = {"service": pl.lit(service)}
    start_ns = slowed.load.settings["t0_wall_ns"]
    window = {"service": service, "load_start_ns": start_ns,
              "before_start_ns": start_ns + round(b.warmup_s * NS_PER_S),
              "slow_start_ns": slowed.slow_start_ns, "slow_end_ns": slowed.slow_end_ns,
              "load_end_ns": start_ns + round(schedule.duration_s * NS_PER_S), "died_ns": died_ns}
    windows = pl.DataFrame([window], schema=WINDOW_SCHEMA)
    log_path = log_dir / f"{service}.log"
    gc = parse_gc_log(log_path).events.with_columns(**key) if has_v8_trace(service) else None
    reports = parse_memory_reports(log_path).frame
    parts = memory_parts_of(reports, samples) if not samples.is_empty() else pl.DataFrame()
    return Leg(
        requests=with_stage(rows.with_columns(**key), windows),
        samples=samples.with_columns(**key),
        parts=parts.with_columns(**key) if not parts.is_empty() else parts,
        reports=reports.with_columns(**key),
        gc=gc,
        records=records.with_columns(**key),
        window=window,
        health=slowed.load.health,
        rss_start_bytes=rss_start,
        quota_set_s=slowed.set_s,
        quota_cleared_s=slowed.cleared_s,
        exit_state=exit_state,
        max_in_flight=max_in_flight,
        stack=described,
        flushed_s=flushed_s,
        rss_flushed_bytes=rss_flushed,
    )


def leg_timeline(leg: Leg) -> pl.DataFrame:
    """The leg's `analysis.backlog.backlog_timeline`."""
    return backlog_timeline(leg.requests, pl.DataFrame([leg.window], schema=WINDOW_SCHEMA),
                            parts=leg.parts if not leg.parts.is_empty() else None, records=leg.records,
                            gc=leg.gc)


def _p99_ms(requests: pl.DataFrame, stage: str) -> float | None:
    latency_ms = (pl.col("end_ns") - pl.col("intended_start_ns")) / NS_PER_MS
    found = requests.filter(pl.col("stage") == stage, pl.col("status") > 0).select(
        nearest_rank(latency_ms, 0.99)).item()
    return float(found) if found is not None else None


def backlog_result(config: StudyConfig, leg: Leg, timeline: pl.DataFrame, *,
                   rate_rps: float) -> BacklogResult:
    """A leg's `BacklogResult`."""
    b, w = config.backlog, leg.window
    slow_s = (w["slow_end_ns"] - w["slow_start_ns"]) / NS_PER_S
    librdkafka = leg.reports.filter(pl.col("source") == "librdkafka")
    has_reports = not librdkafka.is_empty()
    cap = queue_cap(leg.reports, since_ns=w["slow_start_ns"])
    ledger = stage_ledger(leg.requests, leg.records)
    totals = ledger.select(pl.exclude("service", "stage")).sum().row(0, named=True)
    counts = leg.requests.with_columns(outcome=outcome()).select(
        **{name: (pl.col("outcome") == name).sum() for name in ("accepted", "errors_5xx", "timeouts")},
        no_answer=((pl.col("outcome") == "no_answer") & (pl.col("error_class") != BACKLOG_ERROR)).sum(),
        dropped=(pl.col("error_class") == BACKLOG_ERROR).sum()).row(0, named=True)
    died = w["died_ns"]
    at_death = librdkafka.filter(pl.col("t_ns") <= died).sort("t_ns") if died is not None else None
    gc_pauses = leg.gc["pause_ms"] if leg.gc is not None and not leg.gc.is_empty() else None
    state = leg.exit_state or {}
    return BacklogResult(
        rate_rps=rate_rps,
        request_timeout_s=b.request_timeout_s,
        max_in_flight=leg.max_in_flight,
        quota_bytes_per_s=quota_bytes_per_s(config, rate_rps),
        before_s=(w["slow_start_ns"] - w["before_start_ns"]) / NS_PER_S,
        slow_s=slow_s,
        drain_s=(w["load_end_ns"] - w["slow_end_ns"]) / NS_PER_S,
        quota_set_s=leg.quota_set_s,
        quota_cleared_s=leg.quota_cleared_s,
        per_stage=stage_rates(timeline),
        cap_reached_s=(cap["t_ns"] - w["slow_start_ns"]) / NS_PER_S if cap else None,
        cap_reached=cap["cap"] if cap else None,
        cap_messages=cap["messages"] if cap else None,
        cap_mib=cap["bytes"] / MIB if cap else None,
        queue_messages_max=int(librdkafka["queue_messages_max"].max()) if has_reports else None,
        queue_bytes_max_mib=float(librdkafka["queue_bytes_max"].max()) / MIB if has_reports else None,
        errors_began_s=error_onset_s(timeline),
        errors_5xx_began_s=error_onset_s(timeline, column="errors_5xx"),
        timeouts_began_s=error_onset_s(timeline, column="timeouts"),
        drained_s=drained_s(timeline, slow_s=slow_s),
        rss_start_mib=leg.rss_start_bytes / MIB,
        **memory_findings(timeline, leg.samples, w),
        offered=leg.requests.height,
        **{name: int(value) for name, value in counts.items()},
        p99_before_ms=_p99_ms(leg.requests, "before"),
        p99_slow_ms=_p99_ms(leg.requests, "slow"),
        delivered=int(totals["delivered"]),
        lost=int(totals["lost"]),
        delivered_after_error=int(totals["delivered_after_error"]),
        duplicated=int(totals["duplicated"]),
        ledger_by_stage={row["stage"]: {k: int(v) for k, v in row.items() if k not in ("service", "stage")}
                         for row in ledger.iter_rows(named=True)},
        engine_saturated=bool(leg.health["saturated"]),
        engine_notes=list(leg.health["saturated_reasons"]),
        runtime=config.runtime,
        memory_limit_mb=b.memory_limit_mb,
        died_s=(died - w["slow_start_ns"]) / NS_PER_S if died is not None else None,
        exit_code=state.get("exit_code"),
        oom_killed=bool(state.get("oom_killed")),
        queue_messages_at_death=int(at_death["queue_messages"][-1]) if at_death is not None
        and not at_death.is_empty() else None,
        gc_time_share=gc_share_by_stage(timeline),
        gc_pause_max_ms=float(gc_pauses.max()) if gc_pauses is not None else None,
        throttled_bytes_per_s=throttled_bytes_per_s(timeline),
        flushed_s=leg.flushed_s,
        rss_flushed_mib=leg.rss_flushed_bytes / MIB if leg.rss_flushed_bytes is not None else None,
    )


def _checks(service: str, r: BacklogResult, *, drain_s: float) -> list[str]:
    """What a reader must know before the numbers of one service."""
    found = []
    if r.died_s is not None:
        how = "OOM-killed (its memory limit reached)" if r.oom_killed else f"exit code {r.exit_code}"
        found.append(f"{service}: the service died {r.died_s:.0f} s after the slowdown began ({how})")
    if r.lost:
        found.append(f"{service}: {r.lost:,} accepted requests have no record in Kafka")
    if r.engine_saturated:
        found.append(f"{service}: load generator saturated: {'; '.join(r.engine_notes)}")
    if r.drain_s < 0.8 * drain_s:
        found.append(f"{service}: the drain lasted {r.drain_s:.0f} s of the {drain_s:g} s asked for (the "
                     f"quota commands took {r.quota_set_s:.1f} s and {r.quota_cleared_s:.1f} s)")
    throttled = r.throttled_bytes_per_s
    if throttled is not None and throttled > QUOTA_HELD_SHARE * r.quota_bytes_per_s:
        found.append(f"{service}: Kafka appended {throttled / MB:.1f} MB/s of records in the slow stage, "
                     f"over the quota's {r.quota_bytes_per_s / MB:.1f} MB/s: the slowdown was smaller "
                     "than asked")
    return found


def backlog(config: StudyConfig, *, rate: ComparisonRate) -> Run:
    """Hold `rate` (the study's soak rate, `inputs.rate_for(config, "soak")`) on each service
    while Kafka is made slower than the intake, then catches up; summary: `BacklogSummary`."""
    requests_per_service(config, rate.rate_rps)  # refuse a run too large before starting one
    b = config.backlog
    if b.memory_limit_mb is not None and config.runtime != CONTAINER:
        raise ValueError("backlog: memory_limit_mb needs the container runtime")
    run = Run.create(config, "backlog")
    run.update_meta(backlog_rate_rps=rate.rate_rps, backlog_rate_source=rate.source, mechanism=MECHANISM,
                    quota_bytes_per_s=quota_bytes_per_s(config, rate.rate_rps))
    legs: list[Leg] = []
    results: dict[str, BacklogResult] = {}
    timelines: list[pl.DataFrame] = []
    found: list[str] = []
    for service in config.services:
        leg = hold_backlog(config, service, rate.rate_rps, log_dir=run.logs_dir / service,
                           out_dir=run.path / "loads")
        timeline = leg_timeline(leg)
        results[service] = result = backlog_result(config, leg, timeline, rate_rps=rate.rate_rps)
        found += _checks(service, result, drain_s=b.drain_s)
        legs.append(leg)
        timelines.append(timeline)
    run.update_meta(stacks={leg.window["service"]: leg.stack for leg in legs})
    run.write_frame("windows", pl.DataFrame([leg.window for leg in legs], schema=WINDOW_SCHEMA))
    run.write_frame("timeline", pl.concat(timelines, how="diagonal_relaxed"))
    for field, name in (("requests", "requests"), ("samples", "samples"), ("parts", "memory_parts"),
                        ("reports", "memory_reports"), ("gc", "gc"), ("records", "deliveries")):
        parts = [frame for leg in legs if (frame := getattr(leg, field)) is not None and not frame.is_empty()]
        if parts:
            run.write_frame(name, pl.concat(parts, how="diagonal_relaxed"))
    shutil.rmtree(run.path / "loads", ignore_errors=True)
    summary = BacklogSummary(services=results, rate_rps=rate.rate_rps, rate_source=rate.source,
                             quota_share=b.quota_share, memory_limit_mb=b.memory_limit_mb,
                             mechanism=MECHANISM)
    run.write_summary(summary, warnings_found=found)
    return run
