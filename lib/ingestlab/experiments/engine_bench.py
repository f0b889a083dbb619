"""Benchmarks of the measuring instruments themselves, before they measure the services.

- `latency-accuracy`: the engine against an endpoint that answers after exactly 5 ms.
- `engine-capacity`: the highest rate the asyncio engine and oha each sustain on the load
  core against nginx's `return 202` (found by a rate search, so whatever the machine), beside
  wrk (closed loop) on the same core, and how fast the asyncio engine recovers from a 200 ms
  stall of its own process at 80% of its measured maximum. It calibrates the rig: the
  experiments choose their engine per step from it (`limits_of`, handed in by `inputs`).
"""

from __future__ import annotations

import os
import shutil
import signal
import statistics
import threading
import time
from pathlib import Path

import polars as pl
from tqdm.auto import tqdm

from ingestlab.analysis.engine_health import stall_recovery_floor_s, stall_recovery_s
from ingestlab.config import StudyConfig
from ingestlab.experiments.search import Outcome, SearchPolicy, SearchResult, run_search
from ingestlab.experiments.steps import (
    GENERATOR_LAG_SHARE,
    Engine,
    EngineLimits,
    StepResult,
    drive_step,
    generator_failures,
)
from ingestlab.load.engine import run_load
from ingestlab.load.payloads import PayloadSet
from ingestlab.load.schedules import constant
from ingestlab.load.wrk import run_wrk
from ingestlab.results import Run, find_runs
from ingestlab.stack.delay_server import DelayServer
from ingestlab.stack.nginx import ReferenceEndpoint
from ingestlab.summaries import EngineCapacitySummary, LatencyAccuracySummary

ACCURACY_TARGET_MS = 5.0
ACCURACY_P50_TOLERANCE_MS = 0.5
ACCURACY_P99_TOLERANCE_MS = 2.0
# The asyncio engine's goal: at least this share of wrk's closed-loop rate on the same core
# (absolute rates differ by CPU make: 12,000 vs 4,000-7,000 req/s for the same aiohttp engine).
SHARE_OF_WRK_GOAL = 0.10
STALL_GOAL_S = 1.0
# Capacity searches go no lower than this (req/s): an engine that cannot hold it is broken.
CAPACITY_FLOOR_RPS = 250
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
            rate_rps=config.calibration.accuracy_rate_rps,
            step=0,
            out_dir=steps_dir,
            id_prefix="accuracy",
            engine="asyncio",
            duration_s=config.calibration.accuracy_duration_s,
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
        LatencyAccuracySummary(
            target_ms=ACCURACY_TARGET_MS,
            p50_ms=result.p50_ms,
            p99_ms=result.p99_ms,
            max_ms=result.max_ms,
            rate_rps=config.calibration.accuracy_rate_rps,
            body_bytes=config.load.payload_bytes,
            goal={"p50_within_ms": ACCURACY_P50_TOLERANCE_MS, "p99_within_ms": ACCURACY_P99_TOLERANCE_MS,
                  "met": met},
            step=result.as_row(),
        ),
        warnings_found=found,
    )
    return run


def _sustained(config: StudyConfig, result: StepResult) -> bool:
    """The capacity criterion: no errors, and `generator_failures` empty with the lag bound
    of a service step (`GENERATOR_LAG_SHARE` of the p99 bound): the same test that makes a
    service's step inconclusive, so a calibrated rate is one the engine drives there. (A 5 ms
    bound made one of three searches end at 680 req/s when the VM's steal time rose.)"""
    lag_bound_ms = GENERATOR_LAG_SHARE * config.ceiling.p99_bound_ms
    return result.errors == 0 and not generator_failures(result, lag_bound_ms=lag_bound_ms)


def _search(
    config: StudyConfig,
    *,
    url: str,
    engine: Engine,
    start_rps: float,
    first_step: int,
    steps_dir: Path,
    label: str,
) -> tuple[list[dict], list[pl.DataFrame], SearchResult]:
    """The highest rate `engine` sustains against `url` (see `search`); step rows, frames, result."""
    policy = SearchPolicy(start_rps=start_rps, floor_rps=min(start_rps, CAPACITY_FLOOR_RPS),
                          cap_rps=config.calibration.cap_rps, resolution=config.calibration.resolution)
    table: list[dict] = []
    frames: list[pl.DataFrame] = []

    def try_rate(rate: float, k: int) -> Outcome:
        result, rows = drive_step(config, url=url, rate_rps=rate, step=first_step + k, out_dir=steps_dir,
                                  id_prefix=f"{label}-{k}", engine=engine,
                                  duration_s=config.calibration.step_s)
        ok = _sustained(config, result)
        table.append({**result.as_row(), "series": label, "sustained": ok})
        frames.append(rows.with_columns(series=pl.lit(label)))
        return "pass" if ok else "fail"

    return table, frames, run_search(policy, try_rate)


def _stall(config: StudyConfig, *, url: str, rate_rps: float, out_path: Path
           ) -> tuple[float | None, dict, pl.DataFrame]:
    """A `config.calibration.stall_ms` SIGSTOP of the engine process, `STALL_AT_S` into a constant run."""
    duration_s = max(6.0, config.ceiling.step_s)
    schedule = constant(rate_rps, duration_s)
    payloads = PayloadSet(
        schedule.count, size_bytes=config.load.payload_bytes, seed=config.seed, id_prefix="stall"
    )
    resumed: list[int] = []

    def stall(pid: int) -> None:
        time.sleep(STALL_AT_S)
        os.kill(pid, signal.SIGSTOP)
        try:
            time.sleep(config.calibration.stall_ms / 1000)
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
        max_in_flight=config.load.engine_pool_min,
        warmup_s=config.load.warmup_s,
        on_started=on_started,
        nice=config.cores.load_nice,
    )
    for t in threads:
        t.join()
    rows = result.frame().with_columns(series=pl.lit("stall"))
    # back on schedule: the lateness a service step tolerates (see `_sustained`)
    lag_bound_ms = GENERATOR_LAG_SHARE * config.ceiling.p99_bound_ms
    recovery = stall_recovery_s(rows, resumed_ns=resumed[0], lag_bound_ms=lag_bound_ms) if resumed else None
    return recovery, result.health, rows


def _all_searches(config: StudyConfig, *, url: str, steps_dir: Path
                  ) -> tuple[list[dict], list[pl.DataFrame], dict[str, SearchResult]]:
    """`config.calibration.repeats` searches of the asyncio engine (labels asyncio-0, ...) and
    one of oha: their step rows, frames and results by label."""
    # The engine's best case: few connections, since nginx answers in well under 1 ms.
    asyncio_config = config.replace(load={"engine_pool_max": config.load.engine_pool_min})
    oha_config = config.replace(load={"engine_pool_min": NATIVE_CONNECTIONS,
                                      "engine_pool_max": NATIVE_CONNECTIONS})
    searches: list[tuple[Engine, str, StudyConfig, float]] = [
        ("asyncio", f"asyncio-{r}", asyncio_config, config.calibration.start_rps)
        for r in range(config.calibration.repeats)
    ]
    searches.append(("oha", "oha", oha_config, config.calibration.native_start_rps))
    table: list[dict] = []
    frames: list[pl.DataFrame] = []
    found: dict[str, SearchResult] = {}
    for index, (engine, label, search_config, start) in enumerate(
            tqdm(searches, desc="engine-capacity", unit="search", disable=None)):
        rows, search_frames, found[label] = _search(search_config, url=url, engine=engine, start_rps=start,
                                                    first_step=100 * index, steps_dir=steps_dir, label=label)
        table += rows
        frames += search_frames
    return table, frames, found


def engine_capacity(config: StudyConfig) -> Run:
    """Calibrate the rig: the highest rate the asyncio engine (`config.calibration.repeats` searches) and
    oha (one) hold on schedule on the load core against nginx on the service core, wrk's
    closed-loop rate on the same core, and the asyncio engine's recovery from a stall at
    `config.calibration.stall_fraction` of its own maximum. Summary: see the README's experiment table."""
    run = Run.create(config, "engine-capacity")
    steps_dir = run.path / "steps"
    body = PayloadSet(1, size_bytes=config.load.payload_bytes, seed=config.seed).body(0)
    with ReferenceEndpoint(work_dir=run.path / "nginx", cores=config.cores.service) as nginx:
        table, frames, found = _all_searches(config, url=nginx.accept_url, steps_dir=steps_dir)
        per_repeat = [result.best_rps for label, result in found.items() if label.startswith("asyncio")]
        wrk = run_wrk(
            url=nginx.accept_url,
            duration_s=max(1, round(config.calibration.step_s)),
            body=body,
            connections=config.load.wrk_connections,
            cores=config.cores.load,
            nice=config.cores.load_nice,
        )
        # The median of the searches: one search during a burst of steal time must not set
        # the rig's limits for a whole study.
        measured = [rate for rate in per_repeat if rate]
        engine_max = statistics.median_low(measured) if measured else None
        stall_rate = config.calibration.stall_fraction * engine_max if engine_max else None
        recovery, stall_health = None, {"dropped": None}
        if stall_rate:
            recovery, stall_health, stall_rows = _stall(
                config, url=nginx.accept_url, rate_rps=stall_rate, out_path=steps_dir / "stall.parquet"
            )
            frames.append(stall_rows)
        run.update_meta(endpoint=nginx.describe())
        shutil.copy2(nginx.log_path, run.logs_dir / "nginx.log")
    _collect_steps(run, frames, steps_dir)
    steps = pl.DataFrame(table)
    run.write_frame("steps", steps)

    at_max = steps.filter(
        (pl.col("series").str.starts_with("asyncio")) & (pl.col("offered_rps") == engine_max)
    )
    share = engine_max / wrk.requests_per_s if engine_max and wrk.requests_per_s else None
    floor = stall_recovery_floor_s(stall_s=config.calibration.stall_ms / 1000, rate_rps=stall_rate,
                                   capacity_rps=engine_max) if stall_rate else None
    warnings_found = [f"{label}: {result.reason}" for label, result in found.items()
                      if result.best_rps is None or result.lower_bound]
    if share is None or share < SHARE_OF_WRK_GOAL:
        warnings_found.append(f"asyncio engine held {engine_max} req/s = {share} of wrk's "
                              f"{wrk.requests_per_s:,.0f} (goal >= {SHARE_OF_WRK_GOAL})")
    if recovery is None or recovery >= STALL_GOAL_S:
        warnings_found.append(f"stall recovery {recovery} s at {stall_rate} req/s (goal < {STALL_GOAL_S} s; "
                              f"the shortest the measured maximum allows: {floor} s)")
    run.write_summary(
        EngineCapacitySummary(
            engine_max_rps=engine_max,
            engine_max_rps_per_repeat=per_repeat,
            engine_lag_p99_ms=at_max["engine_lag_p99_ms"].max() if at_max.height else None,
            engine_cpu_pct_at_max=at_max["engine_cpu_pct"].max() if at_max.height else None,
            engine_pool=config.load.engine_pool_min,
            engine_share_of_wrk=share,
            wrk_rps=wrk.requests_per_s,
            wrk_errors=wrk.errors,
            wrk_connections=config.load.wrk_connections,
            native_max_rps=found["oha"].best_rps,
            native_engine="oha",
            native_connections=NATIVE_CONNECTIONS,
            body_bytes=len(body),
            repeats=config.calibration.repeats,
            stall_ms=config.calibration.stall_ms,
            stall_rate_rps=stall_rate,
            stall_recovery_s=recovery,
            stall_dropped=stall_health["dropped"],
            stall_recovery_floor_s=floor,
            goal={
                "share_of_wrk": SHARE_OF_WRK_GOAL,
                "met": share is not None and share >= SHARE_OF_WRK_GOAL,
                "stall_recovery_s": STALL_GOAL_S,
                "stall_met": recovery is not None and recovery < STALL_GOAL_S,
            },
        ),
        warnings_found=warnings_found,
    )
    return run


def usable_rate(steps: pl.DataFrame, *, cpu_budget_pct: float) -> float | None:
    """The rate (req/s) at which an engine needed `cpu_budget_pct` of its core, read off its
    sustained calibration steps (`offered_rps`, `engine_cpu_pct`; steps at one rate averaged)
    by linear interpolation from (0, 0), never above the highest sustained rate."""
    points = (steps.group_by("offered_rps").agg(pl.col("engine_cpu_pct").mean()).sort("offered_rps")
              .select("offered_rps", "engine_cpu_pct").rows())
    if not points:
        return None
    previous_rate, previous_cpu = 0.0, 0.0
    for rate, cpu in points:
        if cpu >= cpu_budget_pct:
            share = (cpu_budget_pct - previous_cpu) / (cpu - previous_cpu)
            return previous_rate + max(0.0, share) * (rate - previous_rate)
        previous_rate, previous_cpu = rate, cpu
    return previous_rate


def limits_of(run: Run, *, cpu_budget_pct: float) -> EngineLimits:
    """The EngineLimits an engine-capacity run measured (raises if it measured no maximum)."""
    summary: EngineCapacitySummary = run.summary
    asyncio_rps, oha_rps = summary.engine_max_rps, summary.native_max_rps
    if not asyncio_rps or not oha_rps:
        raise ValueError(f"engine-capacity run {run.run_id} has no maximum for both engines "
                         f"(asyncio {asyncio_rps}, oha {oha_rps}): {run.warnings}")
    held = run.read_frame("steps").filter(pl.col("sustained"))
    usable = {engine: usable_rate(held.filter(pl.col("series").str.starts_with(engine)),
                                  cpu_budget_pct=cpu_budget_pct) or 0.0
              for engine in ("asyncio", "oha")}
    return EngineLimits(asyncio_rps=asyncio_rps, oha_rps=oha_rps, asyncio_usable_rps=usable["asyncio"],
                        oha_usable_rps=usable["oha"], cpu_budget_pct=cpu_budget_pct, source=run.run_id)


def saved_engine_limits(config: StudyConfig) -> EngineLimits | None:
    """What the engines hold on this machine: the study's engine-capacity run (or, outside a
    study, the newest one measured on this host and core layout); None: there is none (the
    study measures it, `inputs.engine_limits`)."""
    current = Run.environment_of(config)
    for run in find_runs(config.runs_dir, "engine-capacity", study_id=config.study_id):
        if run.environment_key() == current and run.summary.engine_max_rps and run.summary.native_max_rps:
            return limits_of(run, cpu_budget_pct=config.load.engine_cpu_budget_pct)
    return None
