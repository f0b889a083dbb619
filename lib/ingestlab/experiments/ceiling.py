"""`ceiling`: the sustained throughput limit of each service, ramped step by step.

A step passes when the service keeps up: achieved >= 99% of offered, errors < 0.1%, p99
latency (from the intended send time) under `config.ceiling_p99_bound_ms`, every accepted
record in Kafka, and the load generator itself not saturated. The ceiling is the highest
rate of an unbroken run of passing steps from the bottom; the ramp stops at the first step
that does not pass. Each service gets a fresh broker, so neither inherits the other's topic.

Delivery is checked by count per step (records added to the topic vs requests answered 202,
warm-up included): oha cannot tag its requests, and reading every 10 KB record back at
these rates would cost more than the step itself. A closed-loop `wrk` run after the ramp
cross-checks the limit.
"""

from __future__ import annotations

import shutil
import time

import polars as pl

from ingestlab.config import ServiceName, StudyConfig
from ingestlab.experiments.steps import StepResult, drive_step
from ingestlab.load.engine import SATURATION_ACHIEVED_RATIO
from ingestlab.load.payloads import PayloadSet
from ingestlab.load.wrk import run_wrk
from ingestlab.results import Run
from ingestlab.stack import Stack

MAX_ERROR_RATE = 0.001
# Between steps: let producer queues drain so one step's backlog is not charged to the next.
SETTLE_S = 1.0


def step_verdict(result: StepResult, *, p99_bound_ms: float, lost: int) -> tuple[bool, list[str]]:
    """Whether a step passed, and why not (empty when it passed)."""
    reasons = []
    if result.engine_saturated:
        reasons.append("load generator saturated (inconclusive): " + "; ".join(result.engine_notes))
    if result.achieved_rps < SATURATION_ACHIEVED_RATIO * result.offered_rps:
        reasons.append(f"achieved {result.achieved_rps:.0f} of {result.offered_rps:.0f} req/s")
    if result.error_rate >= MAX_ERROR_RATE:
        reasons.append(f"error rate {100 * result.error_rate:.2f}% (>= {100 * MAX_ERROR_RATE:.1f}%)")
    if result.p99_ms is None or result.p99_ms >= p99_bound_ms:
        reasons.append(f"p99 {result.p99_ms} ms (bound {p99_bound_ms} ms)")
    if lost:
        reasons.append(f"{lost} accepted records missing from Kafka")
    return not reasons, reasons


def _ramp_service(
    config: StudyConfig, run: Run, service: ServiceName
) -> tuple[dict, list[dict], list[pl.DataFrame]]:
    steps_dir = run.path / "steps"
    table: list[dict] = []
    frames: list[pl.DataFrame] = []
    best, best_engine = 0, None
    with Stack(config, services=(service,), log_dir=run.logs_dir / service) as stack:
        url = stack.service(service).ingest_url
        for k, rate in enumerate(config.ceiling_rates_rps):
            before = stack.topic_size()
            result, rows = drive_step(
                config, url=url, rate_rps=rate, step=k, out_dir=steps_dir, id_prefix=f"{service}-c{k}"
            )
            accepted_all = int((rows["status"] == 202).sum())  # warm-up requests are records too
            delivered = stack.wait_for_records(before + accepted_all) - before
            lost = max(0, accepted_all - delivered)
            passed, reasons = step_verdict(result, p99_bound_ms=config.ceiling_p99_bound_ms, lost=lost)
            table.append(
                {
                    "service": service,
                    **result.as_row(),
                    "accepted_incl_warmup": accepted_all,
                    "delivered": delivered,
                    "lost": lost,
                    "passed": passed,
                    "reasons": "; ".join(reasons),
                }
            )
            frames.append(
                rows.with_columns(
                    service=pl.lit(service), offered_rps=pl.lit(float(rate)), engine=pl.lit(result.engine)
                )
            )
            if not passed:
                break
            best, best_engine = rate, result.engine
            time.sleep(SETTLE_S)
        time.sleep(SETTLE_S)
        body = PayloadSet(1, size_bytes=config.payload_bytes, seed=config.seed, id_prefix="wrk").body(0)
        before = stack.topic_size()
        wrk = run_wrk(
            url=url,
            duration_s=max(1, round(config.step_s)),
            body=body,
            connections=config.wrk_connections,
            cores=config.cores.load,
        )
        wrk_accepted = wrk.requests - wrk.non_2xx_3xx
        wrk_delivered = stack.wait_for_records(before + wrk_accepted) - before
        run.update_meta(**{f"stack_{service}": stack.describe()})
    summary = {
        "ceiling_rps": best,
        "engine": best_engine,
        "p99_bound_ms": config.ceiling_p99_bound_ms,
        "wrk_rps": wrk.requests_per_s,
        "wrk_errors": wrk.errors,
        "wrk_connections": config.wrk_connections,
        "wrk_p99_ms": wrk.latency_percentiles_ms.get(99),
        "wrk_lost": max(0, wrk_accepted - wrk_delivered),
        "steps": table,
    }
    return summary, table, frames


def ceiling(config: StudyConfig) -> Run:
    """Ramp each service in `config.services`; summary keys per service: `ceiling_rps`,
    `engine` (of the highest passing step), `wrk_rps`, `steps`."""
    run = Run.create(config, "ceiling")
    summary: dict[str, object] = {}
    table: list[dict] = []
    frames: list[pl.DataFrame] = []
    found: list[str] = []
    for service in config.services:
        service_summary, rows, service_frames = _ramp_service(config, run, service)
        summary[service] = service_summary
        table += rows
        frames += service_frames
        last = rows[-1]
        if last["passed"]:
            found.append(
                f"{service}: passed every step up to {last['offered_rps']:.0f} req/s; "
                "its ceiling is higher than the ramp went"
            )
        elif last["engine_saturated"]:
            found.append(
                f"{service}: the ramp ended because the load generator saturated at "
                f"{last['offered_rps']:.0f} req/s; the ceiling is a lower bound"
            )
        if service_summary["wrk_lost"]:
            found.append(
                f"{service}: {service_summary['wrk_lost']} requests accepted under wrk are missing from Kafka"
            )
    if {"node", "rust"} <= set(config.services) and summary["node"]["ceiling_rps"]:
        summary["rust_over_node"] = {
            "ceiling": summary["rust"]["ceiling_rps"] / summary["node"]["ceiling_rps"],
            "wrk": summary["rust"]["wrk_rps"] / summary["node"]["wrk_rps"],
        }
    run.write_frame("requests", pl.concat(frames, how="diagonal_relaxed"))
    run.write_frame("steps", pl.DataFrame(table))
    shutil.rmtree(run.path / "steps", ignore_errors=True)
    run.write_summary(summary, warnings_found=found)
    return run
