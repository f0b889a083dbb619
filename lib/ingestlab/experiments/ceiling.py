"""`ceiling`: the sustained throughput limit of each service, found by a rate search.

A step passes when the service keeps up: achieved >= 99% of offered, errors < 0.1%, p99
latency (from the intended send time) under `config.ceiling.p99_bound_ms`, and every
accepted record in Kafka. A step fails on the service when its own answers were too slow
(p99 from the actual send over the bound), too many failed, or records went missing; a step
whose load generator could not keep up, while the service's own times stayed in bound, is
inconclusive: it says nothing about the service, and nothing above it is tried.

The search (`experiments.search`) starts at `config.ceiling.start_rps`, doubles until a step
fails, halves when the first step fails, then bisects until the limit is known within
`config.ceiling.resolution`. The ceiling is the highest passing rate below every failing one;
it is a lower bound when the search ended on an inconclusive step or at the cap. The engine
of each step comes from the rig's calibration (the `EngineLimits` the caller hands in, from
`engine-capacity`). Each service gets a fresh broker, so neither inherits the other's topic.

No single step decides a trial. A step that failed or was inconclusive while the machine
stalled (`analysis.stalls`: the engine waited for its core, the hypervisor took a vCPU, or
every slow request sat in one short window; or an engine could not drive a rate it was
calibrated for) is repeated, up to `ceiling.stall_repeats` times, before the search moves on;
the steps table keeps every attempt (`repeated`, `stall_signs`). A search that still ends on
a lower bound the rig should have passed (`bound_kind` "stall") is run again, up to
`ceiling.search_repeats` times; if it still does, the result says so (`bound_by`), and the
study leaves the trial out of every row and rate. A lower bound at the rig's reach
(`bound_by` "rig") is a bound, never a ceiling.

Delivery is checked by count per step (records added to the topic vs requests answered 202,
warm-up included): oha cannot tag its requests, and reading every 10 KB record back at
these rates would cost more than the step itself. A closed-loop `wrk` run after the ramp
cross-checks the limit.
"""

from __future__ import annotations

import itertools
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import polars as pl

from ingestlab.analysis.stalls import others_pct, stall_signs, steal_pct
from ingestlab.config import ServiceName, StudyConfig
from ingestlab.experiments.search import Outcome, SearchPolicy, SearchResult, run_search
from ingestlab.experiments.steps import (
    ENGINES,
    GENERATOR_LAG_SHARE,
    MAX_ERROR_RATE,
    EngineLimits,
    StepResult,
    drive_step,
    generator_failures,
)
from ingestlab.load.payloads import PayloadSet
from ingestlab.load.wrk import run_wrk
from ingestlab.results import Run, find_runs
from ingestlab.stack import Stack
from ingestlab.summaries import BoundKind, CeilingResult, CeilingSummary
from ingestlab.telemetry.core_times import CoreTimesSampler
from ingestlab.telemetry.sampler import tree_cpu_now_s
from ingestlab.variants import ARTICLE_SERVICES

# Between steps: let producer queues drain so one step's backlog is not charged to the next.
SETTLE_S = 1.0


def step_verdict(result: StepResult, *, p99_bound_ms: float, lost: int) -> tuple[Outcome, list[str]]:
    """A step's outcome ("pass", "fail", "inconclusive") and why it did not pass.

    The service's own failures decide first, whatever the generator did: errors other than
    the generator's own drops, records missing from Kafka, or a p99 from the actual send
    (the service's time alone) over the bound. Otherwise a generator that did not drive the
    step as offered (`generator_failures`) makes it inconclusive; otherwise the p99 from the
    intended send decides.
    """
    own = []
    service_errors = result.errors - result.dropped
    total = max(result.sent, 1)
    if service_errors / total >= MAX_ERROR_RATE:
        own.append(f"error rate {100 * service_errors / total:.2f}% (>= {100 * MAX_ERROR_RATE:.1f}%)")
    if lost:
        own.append(f"{lost} accepted records missing from Kafka")
    if result.service_p99_ms is not None and result.service_p99_ms >= p99_bound_ms:
        own.append(f"p99 from the actual send {result.service_p99_ms:.1f} ms (bound {p99_bound_ms} ms)")
    if own:
        return "fail", own
    rig = generator_failures(result, lag_bound_ms=GENERATOR_LAG_SHARE * p99_bound_ms)
    if rig:
        return "inconclusive", ["load generator could not drive the step (inconclusive): " + "; ".join(rig)]
    if result.p99_ms is None or result.p99_ms >= p99_bound_ms:
        return "fail", [f"p99 {result.p99_ms} ms (bound {p99_bound_ms} ms)"]
    return "pass", []


def _warm_up(config: StudyConfig, stack: Stack, *, url: str, steps_dir: Path, limits: EngineLimits,
             service: str) -> None:
    """Load the fresh service and broker at half the start rate for `config.ceiling.warmup_s`,
    unjudged, and wait until its records are in Kafka. A just-started Node answered its first
    seconds at 1,000 req/s with a p99 of 105 ms (JIT, first produce to a new topic) and 15 ms
    after: without this, the first step measured the start-up, not the service."""
    before = stack.topic_size()
    _, rows = drive_step(config, url=url, rate_rps=config.ceiling.start_rps / 2, step=-1, out_dir=steps_dir,
                         id_prefix=f"{service}-warm", limits=limits, duration_s=config.ceiling.warmup_s,
                         warmup_s=0.0)
    stack.wait_for_records(before + int((rows["status"] == 202).sum()))
    time.sleep(SETTLE_S)


def decided_outcome(attempt: Callable[[], tuple[Outcome, list[str], dict]], *,
                    repeats: int) -> tuple[Outcome, list[dict]]:
    """A step's outcome, not decided by one stall: `attempt()` runs the step once and returns
    its outcome, the signs of a stall (`analysis.stalls`) and its row. A step that did not
    pass with a sign of a stall is run again, at most `repeats` times; the last attempt's
    outcome is the step's. Returns it and every attempt's row, `repeated` True on all but the
    last (the table keeps them: the run says what was repeated and why)."""
    rows = []
    for tries_left in range(repeats, -1, -1):
        outcome, signs, row = attempt()
        last = outcome == "pass" or not signs or not tries_left
        rows.append({**row, "repeated": not last})
        if last:
            return outcome, rows
    raise AssertionError("unreachable: the last try returns")


def bound_kind(found: SearchResult, limits: EngineLimits, *, rig_share: float) -> BoundKind | None:
    """What ended a search that found only a lower bound (None: it found the limit).

    "rig": the search reached what the rig can drive (the cap, no engine with room, or an
    inconclusive step at `rig_share` or more of the most any engine holds on the load core):
    the service holds at least the best rate, and the rig cannot tell more. "stall": it ended
    on a step the rig should have driven easily, so the lower bound is the machine's hiccup,
    not a property of the service: the trial must not stand for the service's ceiling.
    """
    if not found.lower_bound:
        return None
    rate = found.inconclusive_rps
    reach = max(limits.usable_rps(engine) for engine in ENGINES)
    if rate is None or limits.choose(rate) is None or rate >= rig_share * reach:
        return "rig"
    return "stall"


def _ramp_service(
    config: StudyConfig, run: Run, service: ServiceName, limits: EngineLimits
) -> tuple[CeilingResult, list[dict], list[pl.DataFrame]]:
    steps_dir = run.path / "steps"
    table: list[dict] = []
    frames: list[pl.DataFrame] = []
    c = config.ceiling
    policy = SearchPolicy(start_rps=c.start_rps, floor_rps=c.floor_rps, cap_rps=c.cap_rps,
                          resolution=c.resolution)
    counter = itertools.count()  # every attempt of every step gets an id of its own
    with Stack(config, services=(service,), log_dir=run.logs_dir / service) as stack:
        url = stack.service(service).ingest_url
        _warm_up(config, stack, url=url, steps_dir=steps_dir, limits=limits, service=service)

        def attempt(rate: float, search: int) -> tuple[Outcome, list[str], dict]:
            """One attempt at `rate`: its outcome, the signs of a stall, and its row."""
            step = next(counter)
            before = stack.topic_size()
            pid = stack.service(service).pid
            cpu_before = tree_cpu_now_s(pid)
            with CoreTimesSampler(interval_s=SETTLE_S, cores=config.cores.load) as core_times:
                result, rows = drive_step(config, url=url, rate_rps=rate, step=step, out_dir=steps_dir,
                                          id_prefix=f"{service}-c{step}", limits=limits)
            service_cpu_s = tree_cpu_now_s(pid) - cpu_before
            # warm-up requests are records too, and so are those of an attempt repeated with oha
            accepted_all = int((rows["status"] == 202).sum()) + result.accepted_before_retry
            delivered = stack.wait_for_records(before + accepted_all) - before
            lost = max(0, accepted_all - delivered)
            outcome, reasons = step_verdict(result, p99_bound_ms=c.p99_bound_ms, lost=lost)
            cores = tuple(sorted({*config.cores.load, *config.cores.service}))
            signs = [] if outcome == "pass" else stall_signs(
                rows, bound_ms=c.p99_bound_ms, engine_wait_pct=result.engine_wait_pct,
                steal=steal_pct(core_times.frame(), cores),
                others=others_pct(core_times.frame(), config.cores.service, service_cpu_s))
            if outcome == "inconclusive" and result.engine is not None:
                # the calibration gave this engine room for the rate: the rig held it once
                signs.append(f"{result.engine} was calibrated to drive {rate:,.0f} req/s here")
            row = {"service": service, **result.as_row(), "search": search,
                   "accepted_incl_warmup": accepted_all, "delivered": delivered, "lost": lost,
                   "outcome": outcome, "passed": outcome == "pass", "reasons": "; ".join(reasons),
                   "stall_signs": "; ".join(signs), "repeated": False}
            frames.append(rows.with_columns(service=pl.lit(service), offered_rps=pl.lit(float(rate)),
                                            engine=pl.lit(result.engine), search=pl.lit(search)))
            time.sleep(SETTLE_S)
            return outcome, signs, row

        def search_once(search: int) -> SearchResult:
            def try_rate(rate: float, k: int) -> Outcome:
                outcome, rows = decided_outcome(lambda: attempt(rate, search), repeats=c.stall_repeats)
                table.extend(rows)
                return outcome

            return run_search(policy, try_rate)

        # A search that ended on a stall, not on the service or the rig, is searched again.
        for search in range(c.search_repeats + 1):
            found = search_once(search)
            kind = bound_kind(found, limits, rig_share=c.rig_bound_share)
            if kind != "stall":
                break
        body = PayloadSet(1, size_bytes=config.load.payload_bytes, seed=config.seed, id_prefix="wrk").body(0)
        before = stack.topic_size()
        wrk = run_wrk(
            url=url,
            duration_s=max(1, round(c.step_s)),
            body=body,
            connections=config.load.wrk_connections,
            cores=config.cores.load,
            nice=config.cores.load_nice,
        )
        wrk_accepted = wrk.requests - wrk.non_2xx_3xx
        wrk_delivered = stack.wait_for_records(before + wrk_accepted) - before
        run.update_meta(**{f"stack_{service}": stack.describe()})
    final = [row for row in table if row["search"] == search and not row["repeated"]]
    best_engine = next(
        (row["engine"] for row in final if row["passed"] and row["offered_rps"] == found.best_rps), None
    )
    result = CeilingResult(
        ceiling_rps=found.best_rps,
        ceiling_lower_bound=found.lower_bound,
        first_failing_rps=found.limit_rps,
        search=found.reason,
        engine=best_engine,
        p99_bound_ms=c.p99_bound_ms,
        wrk_rps=wrk.requests_per_s,
        wrk_errors=wrk.errors,
        wrk_connections=config.load.wrk_connections,
        wrk_p99_ms=wrk.latency_percentiles_ms.get(99),
        wrk_lost=max(0, wrk_accepted - wrk_delivered),
        steps=table,
        bound_by=kind,
        searches=search + 1,
        repeated_steps=sum(row["repeated"] for row in table),
    )
    return result, table, frames


def ceiling_runs_here(config: StudyConfig, services: tuple[ServiceName, ...] = ARTICLE_SERVICES) -> list[Run]:
    """Finished ceiling runs of `config`'s profile (and study, if set) on this host and core
    layout in which each of `services` held a rate and no trial ended on a stall of the
    machine (`CeilingResult.stalled`), newest first. Reads saved runs only."""
    here = Run.environment_of(config)
    return [
        run for run in find_runs(config.runs_dir, "ceiling", profile=config.profile, services=services,
                                 study_id=config.study_id)
        if run.environment_key() == here
        and all(run.summary.services[s].ceiling_rps and not run.summary.services[s].stalled for s in services)
    ]


def ceiling(config: StudyConfig, *, limits: EngineLimits) -> Run:
    """Search each service's ceiling in `config.services` with the rig's calibration
    `limits`; summary: `CeilingSummary`."""
    run = Run.create(config, "ceiling")
    run.update_meta(engine_limits=limits.as_dict())
    results: dict[str, CeilingResult] = {}
    table: list[dict] = []
    frames: list[pl.DataFrame] = []
    found: list[str] = []
    for service in config.services:
        result, rows, service_frames = _ramp_service(config, run, service, limits)
        results[service] = result
        table += rows
        frames += service_frames
        if result.ceiling_rps is None or result.ceiling_lower_bound:
            found.append(f"{service}: {result.search}")
        if result.bound_by == "stall":
            found.append(f"{service}: the search ended on a stall of the machine in all {result.searches} "
                         "searches: this trial is no ceiling and is left out of every row and rate")
        if result.repeated_steps:
            found.append(f"{service}: {result.repeated_steps} step(s) repeated after a stall of the machine "
                         "(the steps table keeps every attempt, `repeated` and `stall_signs`)")
        if result.wrk_lost:
            found.append(f"{service}: {result.wrk_lost} requests accepted under wrk are missing from Kafka")
    run.write_frame("requests", pl.concat(frames, how="diagonal_relaxed"))
    run.write_frame("steps", pl.DataFrame(table))
    shutil.rmtree(run.path / "steps", ignore_errors=True)
    run.write_summary(CeilingSummary(services=results, engine_limits=limits.as_dict()), warnings_found=found)
    return run
