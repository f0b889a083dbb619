"""One constant-rate load step, driven by the aiohttp engine or by oha, summarised alike.

Both engines write request rows (`REQUEST_SCHEMA`); a step adds what its engine knows about
its own health, so a step the generator could not drive is never reported as the target's.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import polars as pl

from ingestlab.analysis.latency import percentiles
from ingestlab.config import StudyConfig
from ingestlab.load.engine import SATURATION_LAG_P99_MS, run_load
from ingestlab.load.native import run_oha
from ingestlab.load.payloads import PayloadSet
from ingestlab.load.schedules import constant

Engine = Literal["aiohttp", "oha"]
# oha saturates below 100% of its core: loopback network work also runs as softirq there,
# charged to no process (measured: behind schedule from about 80%).
OHA_SATURATION_CPU_PCT = 80.0


def pool_size(config: StudyConfig, rate_rps: float) -> int:
    """Workers (= connections) for a step: enough for every request to be in flight for the
    whole p99 bound at this rate, clamped to the config's limits (see `StudyConfig`)."""
    needed = math.ceil(rate_rps * config.ceiling_p99_bound_ms / 1000)
    return max(config.engine_pool_min, min(config.engine_pool_max, needed))


def engine_for(config: StudyConfig, rate_rps: float) -> Engine:
    """The aiohttp engine where it has headroom, oha above `config.aiohttp_max_rps`."""
    return "aiohttp" if rate_rps <= config.aiohttp_max_rps else "oha"


@dataclass(frozen=True)
class StepResult:
    """A step's numbers; latencies in ms from the intended send time, rates in req/s."""

    step: int
    engine: Engine
    offered_rps: float
    achieved_rps: float
    sent: int
    accepted: int  # answered 202
    errors: int  # everything else: other statuses, no answer, dropped by the client
    error_rate: float
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    max_ms: float | None
    engine_lag_p99_ms: float | None
    engine_cpu_pct: float
    engine_saturated: bool
    engine_notes: tuple[str, ...]

    def as_row(self) -> dict[str, object]:
        row = asdict(self)
        row["engine_notes"] = "; ".join(self.engine_notes)
        return row


def _latency_stats(rows: pl.DataFrame) -> dict[str, float | None]:
    stats = percentiles(rows)
    if stats.height == 0:
        return {"p50_ms": None, "p95_ms": None, "p99_ms": None, "max_ms": None}
    return {k: stats[k][0] for k in ("p50_ms", "p95_ms", "p99_ms", "max_ms")}


def _aiohttp_step(
    config: StudyConfig,
    *,
    url: str,
    rate_rps: float,
    step: int,
    out_path: Path,
    id_prefix: str,
    duration_s: float,
) -> tuple[StepResult, pl.DataFrame]:
    schedule = constant(rate_rps, duration_s)
    payloads = PayloadSet(
        schedule.count, size_bytes=config.payload_bytes, seed=config.seed + step, id_prefix=id_prefix
    )
    result = run_load(
        url=url,
        schedule=schedule,
        payloads=payloads,
        out_path=out_path,
        cores=config.cores.load,
        max_in_flight=pool_size(config, rate_rps),
        warmup_s=config.warmup_s,
    )
    rows = result.frame().with_columns(step=pl.lit(step, pl.Int32))
    health = result.health
    measured = rows.filter(pl.col("phase") == "measure")
    accepted = int((measured["status"] == 202).sum())
    return StepResult(
        step=step,
        engine="aiohttp",
        offered_rps=rate_rps,
        achieved_rps=health["achieved_rps"],
        sent=health["sent"],
        accepted=accepted,
        errors=measured.height - accepted,
        error_rate=(measured.height - accepted) / max(measured.height, 1),
        **_latency_stats(rows),
        engine_lag_p99_ms=health["lag_p99_ms"],
        engine_cpu_pct=health["engine_cpu_pct"],
        engine_saturated=health["saturated"],
        engine_notes=tuple(health["saturated_reasons"]),
    ), rows


def _oha_step(
    config: StudyConfig, *, url: str, rate_rps: float, step: int, out_path: Path, duration_s: float
) -> tuple[StepResult, pl.DataFrame]:
    body = PayloadSet(1, size_bytes=config.payload_bytes, seed=config.seed + step, id_prefix="oha").body(0)
    result = run_oha(
        url=url,
        rate_rps=rate_rps,
        duration_s=duration_s,
        body=body,
        out_path=out_path,
        cores=config.cores.load,
        connections=pool_size(config, rate_rps),
        timeout_s=3 * duration_s + 30,
        step=step,
    )
    rows = result.requests
    if rows.height:
        warm_until = rows["intended_start_ns"].min() + round(config.warmup_s * 1e9)
        rows = rows.with_columns(
            phase=pl.when(pl.col("intended_start_ns") < warm_until)
            .then(pl.lit("warmup"))
            .otherwise(pl.lit("measure"))
        )
    measured = rows.filter(pl.col("phase") == "measure")
    failed = sum(result.errors.values())  # no HTTP answer: not in oha's rows
    accepted = int((measured["status"] == 202).sum())
    total = measured.height + failed
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
        achieved_rps=result.achieved_rps,
        sent=result.sent,
        accepted=accepted,
        errors=total - accepted,
        error_rate=(total - accepted) / max(total, 1),
        **_latency_stats(rows),
        engine_lag_p99_ms=lag,
        engine_cpu_pct=result.cpu_percent,
        engine_saturated=bool(notes),
        engine_notes=tuple(notes),
    ), rows


def drive_step(
    config: StudyConfig,
    *,
    url: str,
    rate_rps: float,
    step: int,
    out_dir: Path,
    id_prefix: str,
    engine: Engine | None = None,
    duration_s: float | None = None,
) -> tuple[StepResult, pl.DataFrame]:
    """Offer `rate_rps` to `url` for `duration_s` (default `config.step_s`); rows and result.

    Rows carry `step`; requests intended in the first `config.warmup_s` are phase "warmup"
    and left out of the numbers. oha rows have no request ids (see `run_oha`).
    """
    engine = engine or engine_for(config, rate_rps)
    duration_s = duration_s or config.step_s
    out_path = out_dir / f"step-{step:03d}-{engine}.parquet"
    if engine == "aiohttp":
        return _aiohttp_step(
            config,
            url=url,
            rate_rps=rate_rps,
            step=step,
            out_path=out_path,
            id_prefix=id_prefix,
            duration_s=duration_s,
        )
    return _oha_step(config, url=url, rate_rps=rate_rps, step=step, out_path=out_path, duration_s=duration_s)
