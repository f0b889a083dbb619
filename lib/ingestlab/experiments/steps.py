"""One constant-rate load step, driven by the asyncio engine or by oha, summarised alike.

Both engines write request rows (`REQUEST_SCHEMA`); a step adds what its engine knows about
its own health, so a step the generator could not drive is never reported as the target's.

Which engine drives a step comes from `EngineLimits`, what each engine was measured to hold
on the load core on this machine (`engine-capacity`), not from fixed thresholds: the same
engine held 12,000 req/s on one AMD EPYC machine of this project's kind and about 7,000 on an
Intel Xeon one. The asyncio engine is preferred where it has room, because it tags every
request with an id that its record in Kafka carries; oha is the fallback above that, and a
step the asyncio engine could not drive is repeated with oha.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Literal

import polars as pl

from ingestlab.analysis.latency import percentiles
from ingestlab.config import StudyConfig
from ingestlab.load.engine import (
    BACKLOG_ERROR,
    SATURATION_ACHIEVED_RATIO,
    SATURATION_CPU_PCT,
    SATURATION_LAG_P99_MS,
    run_load,
)
from ingestlab.load.native import run_oha
from ingestlab.load.payloads import PayloadSet
from ingestlab.load.rows import REQUEST_SCHEMA, phase_of, send_rate_rps
from ingestlab.load.schedules import constant
from ingestlab.quantiles import nearest_rank
from ingestlab.units import NS_PER_MS

Engine = Literal["asyncio", "oha"]
ENGINES: tuple[Engine, ...] = ("asyncio", "oha")
# oha saturates below 100% of its core: loopback network work also runs as softirq there,
# charged to no process (measured: behind schedule from about 80%).
OHA_SATURATION_CPU_PCT = 80.0
# The generator lateness a service step tolerates, as a share of its p99 bound. This VM loses
# its vCPUs to the hypervisor for 6-8% of the time (steal, /proc/stat), so a generator with
# CPU to spare (oha at 7% of its core) still sent its p99 request 6-14 ms late in some steps.
# Lateness of 20 ms cannot make a step fail or pass against a 100 ms bound, and oha's latency
# leaves it out anyway; beyond it, or when sends fall behind or are dropped, the step is the
# generator's.
GENERATOR_LAG_SHARE = 0.2
# The highest share of a service's answers that may be errors (its own, not the generator's
# drops) for a step or a soak to count as held.
MAX_ERROR_RATE = 0.001


@dataclass(frozen=True)
class EngineLimits:
    """What each engine held on schedule alone on the load core against nginx
    (`engine-capacity`), in req/s: its maximum, and the rate up to which it needed at most
    `cpu_budget_pct` of the core, the most a step gives it while the broker shares the core
    (see `LoadConfig.engine_cpu_budget_pct`).
    """

    asyncio_rps: float
    oha_rps: float
    asyncio_usable_rps: float
    oha_usable_rps: float
    cpu_budget_pct: float
    source: str  # the engine-capacity run these come from

    def usable_rps(self, engine: Engine) -> float:
        return self.asyncio_usable_rps if engine == "asyncio" else self.oha_usable_rps

    def choose(self, rate_rps: float) -> Engine | None:
        """The first engine (asyncio, then oha) with room for `rate_rps`; None: neither."""
        for engine in ENGINES:
            if rate_rps <= self.usable_rps(engine):
                return engine
        return None

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def pool_size(config: StudyConfig, rate_rps: float, in_flight_s: float | None = None) -> int:
    """Workers (= connections) for a step: enough for every request to be in flight for
    `in_flight_s` (default: the ceiling's p99 bound) at this rate, clamped to the config's
    limits (`LoadConfig.engine_pool_min`/`_max`)."""
    if in_flight_s is None:
        in_flight_s = config.ceiling.p99_bound_ms / 1000
    needed = math.ceil(rate_rps * in_flight_s)
    return max(config.load.engine_pool_min, min(config.load.engine_pool_max, needed))


@dataclass(frozen=True)
class StepResult:
    """A step's numbers; latencies in ms from the intended send time, rates in req/s.

    `service_p99_ms` is the p99 from the actual send instead (the service's own time, without
    any lateness of the generator): it tells a slow service from a late generator.
    """

    step: int
    engine: Engine | None  # None: no engine could drive the rate (nothing was sent)
    offered_rps: float
    achieved_rps: float
    sent: int
    accepted: int  # answered 202
    errors: int  # everything else: other statuses, no answer, dropped by the client
    error_rate: float
    dropped: int  # slots the generator gave up on as too late to send (within `errors`)
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    max_ms: float | None
    service_p99_ms: float | None
    engine_lag_p99_ms: float | None
    engine_cpu_pct: float
    engine_saturated: bool
    engine_notes: tuple[str, ...]
    # 202s of an attempt given up on (the asyncio engine saturated, the step repeated with
    # oha), warm-up included: their records are in Kafka too.
    accepted_before_retry: int = 0
    # The time the engine was runnable but waiting for its core, % of the step (the asyncio
    # engine's schedstat; None for oha): a sign the machine, not the service, was short.
    engine_wait_pct: float | None = None

    def as_row(self) -> dict[str, object]:
        row = asdict(self)
        row["engine_notes"] = "; ".join(self.engine_notes)
        return row


def _outcome_stats(rows: pl.DataFrame, *, failed: int = 0) -> dict[str, float | int | None]:
    """Counts and latencies of a step's measured rows; `failed`: requests without a row
    (oha keeps rows only for answered requests)."""
    measured = rows.filter(pl.col("phase") == "measure")
    accepted = int((measured["status"] == 202).sum())
    total = measured.height + failed
    stats = percentiles(rows)
    answered = measured.filter(pl.col("status") > 0)
    service_ms = (pl.col("end_ns") - pl.col("actual_start_ns")) / NS_PER_MS
    return {
        "accepted": accepted,
        "errors": total - accepted,
        "error_rate": (total - accepted) / max(total, 1),
        "dropped": int((measured["error_class"] == BACKLOG_ERROR).sum()),
        **{k: stats[k][0] if stats.height else None for k in ("p50_ms", "p95_ms", "p99_ms", "max_ms")},
        "service_p99_ms": answered.select(nearest_rank(service_ms, 0.99)).item() if answered.height else None,
    }


def _asyncio_step(
    config: StudyConfig,
    *,
    url: str,
    rate_rps: float,
    step: int,
    out_path: Path,
    id_prefix: str,
    duration_s: float,
    warmup_s: float,
    connections: int,
) -> tuple[StepResult, pl.DataFrame]:
    schedule = constant(rate_rps, duration_s)
    payloads = PayloadSet(
        schedule.count, size_bytes=config.load.payload_bytes, seed=config.seed + step, id_prefix=id_prefix
    )
    result = run_load(
        url=url,
        schedule=schedule,
        payloads=payloads,
        out_path=out_path,
        cores=config.cores.load,
        max_in_flight=connections,
        warmup_s=warmup_s,
        nice=config.cores.load_nice,
    )
    rows = result.frame().with_columns(step=pl.lit(step, pl.Int32))
    health = result.health
    return StepResult(
        step=step,
        engine="asyncio",
        offered_rps=rate_rps,
        achieved_rps=health["achieved_rps"],
        sent=health["sent"],
        **_outcome_stats(rows),
        engine_lag_p99_ms=health["lag_p99_ms"],
        engine_cpu_pct=health["engine_cpu_pct"],
        engine_wait_pct=health["engine_wait_pct"],
        engine_saturated=health["saturated"],
        engine_notes=tuple(health["saturated_reasons"]),
    ), rows


def _oha_step(
    config: StudyConfig, *, url: str, rate_rps: float, step: int, out_path: Path, duration_s: float,
    warmup_s: float, connections: int,
) -> tuple[StepResult, pl.DataFrame]:
    body = PayloadSet(1, size_bytes=config.load.payload_bytes, seed=config.seed + step,
                      id_prefix="oha").body(0)
    result = run_oha(
        url=url,
        rate_rps=rate_rps,
        duration_s=duration_s,
        body=body,
        out_path=out_path,
        cores=config.cores.load,
        connections=connections,
        timeout_s=3 * duration_s + 30,
        step=step,
        nice=config.cores.load_nice,
        warmup_s=warmup_s,
    )
    intended = pl.col("intended_start_ns")
    rows = result.requests.with_columns(phase=phase_of(intended - intended.min(), warmup_s))
    notes = []
    if result.cpu_percent > OHA_SATURATION_CPU_PCT:
        notes.append(f"oha CPU was {result.cpu_percent:.0f}% of one core (> {OHA_SATURATION_CPU_PCT:.0f}%)")
    lag = result.schedule_lag_p99_ms
    if lag is not None and lag > SATURATION_LAG_P99_MS:
        notes.append(f"oha schedule lag p99 {lag:.1f} ms (> {SATURATION_LAG_P99_MS} ms)")
    return StepResult(
        step=step,
        engine="oha",
        offered_rps=rate_rps,
        # the send rate over the measured phase, as the asyncio engine reports it (oha's own
        # figure divides answers by the time from its launch to the last answer, start-up and
        # the last latency included: 98.9% of a 3 s step that went out on time)
        achieved_rps=send_rate_rps(rows.filter(pl.col("phase") == "measure")["actual_start_ns"]) or 0.0,
        sent=result.sent,
        # no HTTP answer: not in oha's rows, only counted by error message
        **_outcome_stats(rows, failed=sum(result.errors.values())),
        engine_lag_p99_ms=lag,
        engine_cpu_pct=result.cpu_percent,
        engine_saturated=bool(notes),
        engine_notes=tuple(notes),
    ), rows


def generator_failures(result: StepResult, *, lag_bound_ms: float) -> list[str]:
    """Why the generator did not drive `result`'s step as offered; empty when it did."""
    if result.engine is None:
        return list(result.engine_notes)
    reasons = []
    if result.achieved_rps < SATURATION_ACHIEVED_RATIO * result.offered_rps:
        reasons.append(f"sent {result.achieved_rps:,.0f} of {result.offered_rps:,.0f} req/s")
    if result.dropped:
        reasons.append(f"{result.dropped} requests dropped as too late to send")
    lag = result.engine_lag_p99_ms
    if lag is None or lag > lag_bound_ms:
        reasons.append(f"{result.engine} schedule lag p99 {lag} ms (> {lag_bound_ms:g} ms)")
    cpu_bound = SATURATION_CPU_PCT if result.engine == "asyncio" else OHA_SATURATION_CPU_PCT
    if result.engine_cpu_pct > cpu_bound:
        reasons.append(f"{result.engine} CPU {result.engine_cpu_pct:.0f}% of its core (> {cpu_bound:g}%)")
    return reasons


def _not_driven(step: int, rate_rps: float, reason: str) -> tuple[StepResult, pl.DataFrame]:
    """A step no engine could drive: nothing sent, inconclusive, with the reason."""
    empty = pl.DataFrame(schema=REQUEST_SCHEMA).with_columns(step=pl.lit(step, pl.Int32))
    return StepResult(
        step=step, engine=None, offered_rps=rate_rps, achieved_rps=0.0, sent=0, accepted=0, errors=0,
        error_rate=0.0, dropped=0, p50_ms=None, p95_ms=None, p99_ms=None, max_ms=None,
        service_p99_ms=None, engine_lag_p99_ms=None,
        engine_cpu_pct=0.0, engine_saturated=True, engine_notes=(reason,),
    ), empty


def drive_step(
    config: StudyConfig,
    *,
    url: str,
    rate_rps: float,
    step: int,
    out_dir: Path,
    id_prefix: str,
    limits: EngineLimits | None = None,
    engine: Engine | None = None,
    duration_s: float | None = None,
    warmup_s: float | None = None,
    fallback: bool = True,
    in_flight_s: float | None = None,
) -> tuple[StepResult, pl.DataFrame]:
    """Offer `rate_rps` to `url` for `duration_s` (default `config.ceiling.step_s`); rows and result.

    The engine is `engine` if given, else `limits.choose(rate_rps)`. When no engine has room
    for the rate, nothing is sent and the step is inconclusive (`engine` None), saying why.
    With `fallback`, a step the asyncio engine could not drive (`generator_failures` with
    `GENERATOR_LAG_SHARE` of the p99 bound) is run again with oha if oha has room, and its
    notes say so.

    Rows carry `step`; requests intended in the first `warmup_s` (default `config.load.warmup_s`)
    are phase "warmup" and left out of the numbers. oha rows have no request ids (see
    `run_oha`). The engine keeps up to `pool_size(config, rate_rps, in_flight_s)` requests in
    flight.
    """
    if engine is None:
        if limits is None:
            raise ValueError("drive_step needs an engine or the measured EngineLimits to choose one")
        engine = limits.choose(rate_rps)
        if engine is None:
            return _not_driven(step, rate_rps, (
                f"{rate_rps:,.0f} req/s is above what any load engine holds on the load core here "
                f"(oha: {limits.oha_usable_rps:,.0f} req/s within {limits.cpu_budget_pct:g}% of the "
                f"core, {limits.oha_rps:,.0f} req/s with all of it; run {limits.source})"))
    duration_s = duration_s or config.ceiling.step_s
    warmup_s = config.load.warmup_s if warmup_s is None else warmup_s
    out_path = out_dir / f"step-{step:03d}-{engine}.parquet"
    connections = pool_size(config, rate_rps, in_flight_s)
    if engine == "oha":
        return _oha_step(config, url=url, rate_rps=rate_rps, step=step, out_path=out_path,
                         duration_s=duration_s, warmup_s=warmup_s, connections=connections)
    result, rows = _asyncio_step(config, url=url, rate_rps=rate_rps, step=step, out_path=out_path,
                                 id_prefix=id_prefix, duration_s=duration_s, warmup_s=warmup_s,
                                 connections=connections)
    failures = generator_failures(result, lag_bound_ms=GENERATOR_LAG_SHARE * config.ceiling.p99_bound_ms)
    if not (fallback and failures and limits is not None and rate_rps <= limits.usable_rps("oha")):
        return result, rows
    retried, retried_rows = _oha_step(config, url=url, rate_rps=rate_rps, step=step, duration_s=duration_s,
                                      warmup_s=warmup_s, out_path=out_dir / f"step-{step:03d}-oha.parquet",
                                      connections=connections)
    note = "asyncio engine could not drive the step (" + "; ".join(failures) + "), step repeated with oha"
    first_accepted = int((rows["status"] == 202).sum())
    return replace(retried, engine_notes=(note, *retried.engine_notes),
                   accepted_before_retry=first_accepted), retried_rows
