"""Benchmarks of the measuring instruments themselves, before they measure the services.

- `latency-accuracy`: the engine against an endpoint that answers after exactly 5 ms.
- `engine-capacity`: the highest rate the aiohttp engine sustains on one core against
  nginx's `return 202`, beside wrk (closed loop) and oha (native, open loop) on the same
  core, and how fast the engine recovers from a 400 ms stall of its own process.
"""

from __future__ import annotations

import os
import shutil
import signal
import threading
import time
from pathlib import Path

import polars as pl

from ingestlab.analysis.engine_health import stall_recovery_s
from ingestlab.config import StudyConfig
from ingestlab.experiments.steps import StepResult, drive_step
from ingestlab.load.engine import SATURATION_ACHIEVED_RATIO, SATURATION_LAG_P99_MS, run_load
from ingestlab.load.payloads import PayloadSet
from ingestlab.load.schedules import constant
from ingestlab.load.wrk import run_wrk
from ingestlab.results import Run
from ingestlab.stack.delay_server import DelayServer
from ingestlab.stack.nginx import ReferenceEndpoint

ACCURACY_TARGET_MS = 5.0
ACCURACY_P50_TOLERANCE_MS = 0.5
ACCURACY_P99_TOLERANCE_MS = 2.0
CAPACITY_GOAL_RPS = 12_000
STALL_GOAL_S = 1.0
# oha's connections against nginx: enough for 100k req/s at sub-millisecond answers.
NATIVE_CONNECTIONS = 64
# The stall starts this long into its run, so the engine is in its steady state first.
STALL_AT_S = 2.0


def _collect_steps(run: Run, frames: list[pl.DataFrame], steps_dir: Path) -> None:
    """Write all steps' rows as requests.parquet; drop the per-step files."""
    run.write_frame("requests", pl.concat(frames, how="diagonal_relaxed"))
    shutil.rmtree(steps_dir, ignore_errors=True)


def latency_accuracy(config: StudyConfig) -> Run:
    """p50/p99 the engine reports for an endpoint that answers after a fixed 5 ms."""
    run = Run.create(config, "latency-accuracy")
    steps_dir = run.path / "steps"
    with DelayServer(log_dir=run.logs_dir, delay_ms=ACCURACY_TARGET_MS, cores=config.cores.service) as server:
        result, rows = drive_step(
            config,
            url=server.url,
            rate_rps=config.accuracy_rate_rps,
            step=0,
            out_dir=steps_dir,
            id_prefix="accuracy",
            engine="aiohttp",
            duration_s=config.accuracy_duration_s,
        )
        run.update_meta(endpoint=server.describe())
    _collect_steps(run, [rows], steps_dir)
    p50_off = abs(result.p50_ms - ACCURACY_TARGET_MS)
    p99_off = abs(result.p99_ms - ACCURACY_TARGET_MS)
    met = p50_off <= ACCURACY_P50_TOLERANCE_MS and p99_off <= ACCURACY_P99_TOLERANCE_MS
    found = [f"engine: {note}" for note in result.engine_notes]
    if not met:
        found.append(
            f"p50 {result.p50_ms:.2f} ms / p99 {result.p99_ms:.2f} ms: not within "
            f"{ACCURACY_P50_TOLERANCE_MS} / {ACCURACY_P99_TOLERANCE_MS} ms of {ACCURACY_TARGET_MS} ms"
        )
    run.write_summary(
        {
            "target_ms": ACCURACY_TARGET_MS,
            "p50_ms": result.p50_ms,
            "p99_ms": result.p99_ms,
            "max_ms": result.max_ms,
            "rate_rps": config.accuracy_rate_rps,
            "body_bytes": config.payload_bytes,
            "goal": {
                "p50_within_ms": ACCURACY_P50_TOLERANCE_MS,
                "p99_within_ms": ACCURACY_P99_TOLERANCE_MS,
                "met": met,
            },
            "step": result.as_row(),
        },
        warnings_found=found,
    )
    return run


def _sustained(result: StepResult) -> bool:
    """The capacity criterion: on schedule (achieved >= 99%, send-lag p99 < 5 ms), no errors."""
    lag = result.engine_lag_p99_ms
    return (
        result.achieved_rps >= SATURATION_ACHIEVED_RATIO * result.offered_rps
        and result.errors == 0
        and lag is not None
        and lag < SATURATION_LAG_P99_MS
    )


def _ramp(
    config: StudyConfig,
    *,
    url: str,
    rates: tuple[int, ...],
    engine: str,
    first_step: int,
    steps_dir: Path,
    label: str,
) -> tuple[list[dict], list[pl.DataFrame], int]:
    """Steps up `rates` until one is not sustained; rows, frames, highest sustained rate (0: none)."""
    table, frames, best = [], [], 0
    for k, rate in enumerate(rates):
        result, rows = drive_step(
            config,
            url=url,
            rate_rps=rate,
            step=first_step + k,
            out_dir=steps_dir,
            id_prefix=f"{label}-{k}",
            engine=engine,  # type: ignore[arg-type]
        )
        ok = _sustained(result)
        table.append({**result.as_row(), "series": label, "sustained": ok})
        frames.append(rows.with_columns(series=pl.lit(label)))
        if not ok:
            break
        best = rate
    return table, frames, best


def _stall(config: StudyConfig, *, url: str, out_path: Path) -> tuple[float | None, dict, pl.DataFrame]:
    """A `config.stall_ms` SIGSTOP of the engine process, `STALL_AT_S` into a constant run."""
    duration_s = max(6.0, config.step_s)
    schedule = constant(config.stall_rate_rps, duration_s)
    payloads = PayloadSet(
        schedule.count, size_bytes=config.payload_bytes, seed=config.seed, id_prefix="stall"
    )
    resumed: list[int] = []

    def stall(pid: int) -> None:
        time.sleep(STALL_AT_S)
        os.kill(pid, signal.SIGSTOP)
        try:
            time.sleep(config.stall_ms / 1000)
        finally:
            os.kill(pid, signal.SIGCONT)
            resumed.append(time.time_ns())

    threads: list[threading.Thread] = []

    def on_started(pid: int) -> None:
        threads.append(threading.Thread(target=stall, args=(pid,), daemon=True))
        threads[0].start()

    result = run_load(
        url=url,
        schedule=schedule,
        payloads=payloads,
        out_path=out_path,
        cores=config.cores.load,
        max_in_flight=config.engine_pool_min,
        warmup_s=config.warmup_s,
        on_started=on_started,
    )
    for t in threads:
        t.join()
    rows = result.frame().with_columns(series=pl.lit("stall"))
    recovery = stall_recovery_s(rows, resumed_ns=resumed[0]) if resumed else None
    return recovery, result.health, rows


def engine_capacity(config: StudyConfig) -> Run:
    """Highest sustained rate of the aiohttp engine, wrk and oha, each on the load core."""
    run = Run.create(config, "engine-capacity")
    steps_dir = run.path / "steps"
    table: list[dict] = []
    frames: list[pl.DataFrame] = []
    per_repeat: list[int] = []
    body = PayloadSet(1, size_bytes=config.payload_bytes, seed=config.seed).body(0)
    # The engine's best case: few connections, since nginx answers in well under 1 ms.
    capacity_config = config.replace(engine_pool_max=config.engine_pool_min)
    with ReferenceEndpoint(work_dir=run.path / "nginx", cores=config.cores.service) as nginx:
        for repeat in range(config.repeats):
            rows, repeat_frames, best = _ramp(
                capacity_config,
                url=nginx.accept_url,
                rates=config.capacity_rates_rps,
                engine="aiohttp",
                first_step=100 * repeat,
                steps_dir=steps_dir,
                label=f"aiohttp-{repeat}",
            )
            table += rows
            frames += repeat_frames
            per_repeat.append(best)
        native_rows, native_frames, native_best = _ramp(
            config.replace(engine_pool_min=NATIVE_CONNECTIONS, engine_pool_max=NATIVE_CONNECTIONS),
            url=nginx.accept_url,
            rates=config.native_rates_rps,
            engine="oha",
            first_step=1000,
            steps_dir=steps_dir,
            label="oha",
        )
        table += native_rows
        frames += native_frames
        wrk = run_wrk(
            url=nginx.accept_url,
            duration_s=max(1, round(config.step_s)),
            body=body,
            connections=config.wrk_connections,
            cores=config.cores.load,
        )
        recovery, stall_health, stall_rows = _stall(
            config, url=nginx.accept_url, out_path=steps_dir / "stall.parquet"
        )
        frames.append(stall_rows)
        run.update_meta(endpoint=nginx.describe())
        shutil.copy2(nginx.log_path, run.logs_dir / "nginx.log")
    _collect_steps(run, frames, steps_dir)
    steps = pl.DataFrame(table)
    run.write_frame("steps", steps)

    engine_max = min(per_repeat)
    at_max = steps.filter(
        (pl.col("series").str.starts_with("aiohttp")) & (pl.col("offered_rps") == engine_max)
    )
    found = []
    if engine_max < CAPACITY_GOAL_RPS:
        found.append(
            f"aiohttp engine sustained {engine_max} req/s in all {config.repeats} repeats "
            f"(per repeat: {per_repeat}); goal {CAPACITY_GOAL_RPS}"
        )
    if recovery is None or recovery >= STALL_GOAL_S:
        found.append(f"stall recovery {recovery} s (goal < {STALL_GOAL_S} s)")
    run.write_summary(
        {
            "engine_max_rps": engine_max,
            "engine_max_rps_per_repeat": per_repeat,
            "engine_lag_p99_ms": at_max["engine_lag_p99_ms"].max() if at_max.height else None,
            "engine_cpu_pct_at_max": at_max["engine_cpu_pct"].max() if at_max.height else None,
            "engine_pool": config.engine_pool_min,
            "wrk_rps": wrk.requests_per_s,
            "wrk_errors": wrk.errors,
            "wrk_connections": config.wrk_connections,
            "native_max_rps": native_best,
            "native_engine": "oha",
            "native_connections": NATIVE_CONNECTIONS,
            "body_bytes": len(body),
            "repeats": config.repeats,
            "stall_ms": config.stall_ms,
            "stall_rate_rps": config.stall_rate_rps,
            "stall_recovery_s": recovery,
            "stall_dropped": stall_health["dropped"],
            "goal": {
                "engine_rps": CAPACITY_GOAL_RPS,
                "met": engine_max >= CAPACITY_GOAL_RPS,
                "stall_recovery_s": STALL_GOAL_S,
                "stall_met": recovery is not None and recovery < STALL_GOAL_S,
            },
        },
        warnings_found=found,
    )
    return run
