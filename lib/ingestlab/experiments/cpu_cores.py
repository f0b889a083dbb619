"""`cpu-cores`: CPU per core with the service free to use both cores (the article's 2-core row).

The study's default layout gives each service one core, so the article's "CPU Core
Distribution (2 Cores)" (Node 100% / 12%, Rust 44% / 41%) cannot be measured there. This
experiment runs in the named layout `config.cpu_cores.layout` (`config.CORE_LAYOUTS`; by
default "service-both-cores": the service on cores 0 and 1, the broker and the load engine on
core 0), whatever the study's own, and records it in the run's meta (`cores`, `core_layout`).

One broker; at one rate for both services (handed in: the study's, chosen once from
conclusive ceilings, `inputs.comparison_rates`), `trials` rounds of one trial per service,
one service at a time, each trial on a freshly started process (where the scheduler puts a
process's threads is a property of that process, so trials of one process would hide that
spread): `warmup_s` of load left out, then `duration_s` measured with

- the service's threads sampled (`telemetry.sampler`: CPU time, the core each last ran on),
- the broker's threads sampled, and every core's busy time read from /proc/stat
  (`telemetry.core_times`), the load engine's CPU from its own account:

per core, the service's share by thread group (`analysis.cpu_cores`), its busiest and other
core, and the contention: what the broker, the load engine and the rest took of each core.

A trial whose load generator saturated is run again (`saturation_repeats`); only its last
attempt is kept, and the run says which were repeated and why.

Frames (each with `service` and `trial`): `requests`, `thread_samples`,
`broker_thread_samples`, `core_times`; `cores` (one row per core: `CORE_TABLE_COLUMNS`,
`role`) and `core_groups` (the service's share per core and thread group, with `role`).
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import statistics

import polars as pl

from ingestlab.analysis.cpu_cores import (
    core_busy,
    core_table,
    group_core_pct,
    group_means,
    load_by_core,
    measured_window,
    process_core_pct,
    role_means,
    with_roles,
)
from ingestlab.config import CORE_LAYOUTS, ServiceName, StudyConfig
from ingestlab.experiments.soak import load_checks, sampled_load
from ingestlab.experiments.steps import EngineLimits
from ingestlab.results import Run
from ingestlab.stack import Stack
from ingestlab.summaries import ComparisonRate, CoreShare, CpuCoresResult, CpuCoresSummary, GroupShare
from ingestlab.telemetry.core_times import CoreTimesSampler
from ingestlab.telemetry.sampler import ProcessSampler
from ingestlab.variants import program_of

# A core where more than this (% of the core) went to none of the service, the broker and the
# load engine is worth a warning: on this shared machine, most likely another user's work.
REST_WARNING_PCT = 20.0


def _trial(config: StudyConfig, run: Run, stack: Stack, service: ServiceName, *, trial: int,
           rate_rps: float, limits: EngineLimits) -> tuple[dict, dict[str, pl.DataFrame]]:
    """One trial on the service now running in `stack`: its load numbers and its frames."""
    wanted = config.cpu_cores
    assert stack.kafka is not None  # the stack is entered
    broker = ProcessSampler(stack.kafka, interval_s=wanted.broker_interval_s, cores=config.cores.load,
                            cgroup=None)
    with CoreTimesSampler(interval_s=wanted.sample_interval_s, cores=config.cores.load) as core_times, broker:
        load = sampled_load(config, stack, service, rate_rps=rate_rps, out_dir=run.path / "steps",
                            id_prefix=f"{service}-cpu{trial}", duration_s=wanted.warmup_s + wanted.duration_s,
                            warmup_s=wanted.warmup_s, in_flight_s=wanted.in_flight_s,
                            interval_s=wanted.sample_interval_s, limits=limits, step=trial)
    window = dict(zip(("start_ns", "end_ns"), measured_window(load.rows), strict=True))
    threads = load.sampler.thread_samples()
    groups = group_core_pct(threads, program=program_of(service), **window)
    table = core_table(groups, core_busy(core_times.frame(), **window),
                       process_core_pct(broker.thread_samples(), **window),
                       load_by_core(load.result.engine_cpu_pct, config.cores.load))
    cores = with_roles(table, config.cores.service)
    tag = {"service": pl.lit(service), "trial": pl.lit(trial, pl.Int32)}
    frames = {
        "requests": load.rows, "thread_samples": threads, "broker_thread_samples": broker.thread_samples(),
        "core_times": core_times.frame(), "cores": cores,
        "core_groups": groups.join(cores.select("core", "role"), on="core", how="left"),
    }
    result = load.result
    # The affinity the service really had: a container's processes inherit the engine's, and a
    # cpuset does not widen it (a dockerd started from a process pinned to core 0 keeps them there).
    pids = threads["pid"].unique().to_list()
    numbers = {"allowed_cores": sorted(set().union(*(os.sched_getaffinity(pid) for pid in pids))),
               "achieved_rps": result.achieved_rps, "error_rate": result.error_rate, "p99_ms": result.p99_ms,
               "accepted": load.accepted, "delivered": load.delivered, "engine": result.engine,
               "engine_saturated": result.engine_saturated, "engine_notes": list(result.engine_notes),
               "sampler_overhead_core_pct": load.sampler.stats.overhead_core_pct}
    return numbers, {name: frame.with_columns(**tag) for name, frame in frames.items()}


def _result(config: StudyConfig, rate_rps: float, trials: list[dict], cores: pl.DataFrame,
            groups: pl.DataFrame) -> CpuCoresResult:
    """The service's summary from its trials' load numbers and its `cores` and `core_groups`."""
    by_trial = cores.sort("trial")
    busiest = by_trial.filter(pl.col("role") == "busiest")
    other = by_trial.filter(pl.col("role") == "other")["service_pct"].to_list()
    roles = role_means(cores)
    p99s = [t["p99_ms"] for t in trials if t["p99_ms"] is not None]
    achieved = [t["achieved_rps"] for t in trials if t["achieved_rps"] is not None]
    accepted, delivered = sum(t["accepted"] for t in trials), sum(t["delivered"] for t in trials)
    return CpuCoresResult(
        rate_rps=rate_rps,
        duration_s=config.cpu_cores.duration_s,
        trials=len(trials),
        busiest_core_pct=statistics.fmean(busiest["service_pct"]),
        other_core_pct=statistics.fmean(other) if other else None,
        busiest_core_pct_per_trial=busiest["service_pct"].to_list(),
        other_core_pct_per_trial=other,
        busiest_core_per_trial=busiest["core"].to_list(),
        service_total_pct=statistics.fmean(by_trial.group_by("trial").agg(pl.col("service_pct").sum())
                                           ["service_pct"]),
        by_role=[CoreShare(**{k: v for k, v in row.items() if k in CoreShare.__dataclass_fields__})
                 for row in roles.iter_rows(named=True)],
        by_group=[GroupShare(role=row["role"], group=row["group"], core_pct=row["core_pct"])
                  for row in group_means(groups, cores).iter_rows(named=True)],
        achieved_rps=statistics.fmean(achieved) if achieved else None,
        error_rate=max(t["error_rate"] for t in trials),
        p99_ms=max(p99s) if p99s else None,
        accepted=accepted,
        delivered=delivered,
        lost=max(0, accepted - delivered),
        engine=", ".join(sorted({str(t["engine"]) for t in trials})),
        engine_saturated=any(t["engine_saturated"] for t in trials),
        engine_notes=[note for t in trials for note in t["engine_notes"]],
        sampler_overhead_core_pct=max(t["sampler_overhead_core_pct"] for t in trials),
        allowed_cores=sorted(set().union(*(t["allowed_cores"] for t in trials))),
        runtime=config.runtime,
    )


def _checks(config: StudyConfig, service: str, s: CpuCoresResult, cores: pl.DataFrame) -> list[str]:
    found = load_checks(service, s)
    if set(s.allowed_cores) != set(config.cores.service):
        found.append(f"{service}: its processes could run on cores {s.allowed_cores} only, not on the "
                     f"layout's {list(config.cores.service)} (their CPU affinity; a container inherits its "
                     "engine's)")
    bound = config.ceiling.p99_bound_ms
    if s.p99_ms is not None and s.p99_ms > bound:
        found.append(f"{service}: p99 {s.p99_ms:.0f} ms > {bound:g} ms: the rate was not held as a ceiling "
                     "step must hold it")
    for row in cores.filter(pl.col("rest_pct") > REST_WARNING_PCT).iter_rows(named=True):
        found.append(f"{service}, trial {row['trial']}: {row['rest_pct']:.0f}% of core {row['core']} went to "
                     "none of the service, the broker and the load engine (another user of the machine?)")
    return found


def cpu_cores(config: StudyConfig, *, rate: ComparisonRate, limits: EngineLimits) -> Run:
    """Measure each service's CPU per core in the layout `config.cpu_cores.layout` at `rate`
    (the study's, `inputs.comparison_rates`) with the rig's calibration `limits` (see the
    module doc); summary: `CpuCoresSummary`."""
    rate_source = rate.source
    rate = rate.rate_rps
    layout = config.cpu_cores.layout
    config = config.replace(cores=CORE_LAYOUTS[layout])
    run = Run.create(config, "cpu-cores")
    run.update_meta(core_layout=layout, cpu_cores_rate_rps=rate, cpu_cores_rate_source=rate_source,
                    engine_limits=limits.as_dict())
    trials: dict[str, list[dict]] = {service: [] for service in config.services}
    repeated: dict[str, list[str]] = {service: [] for service in config.services}
    parts: dict[str, list[pl.DataFrame]] = {}
    with Stack(config, services=(), log_dir=run.logs_dir) as stack:
        for trial in range(config.cpu_cores.trials):
            # Interleaved, the order turned each round: drift in the rest of the machine's load
            # (it is shared) and a fresh broker's first minutes fall on every service alike.
            for service in config.services if trial % 2 == 0 else config.services[::-1]:
                # A trial whose load generator saturated measured the rig: it is run again, and
                # only the last attempt is kept (`saturation_repeats`).
                for attempt in range(config.cpu_cores.saturation_repeats + 1):
                    stack.start_service(service)  # a fresh process each trial (see the module doc)
                    numbers, frames = _trial(config, run, stack, service, trial=trial, rate_rps=rate,
                                             limits=limits)
                    stack.services.pop(service).stop()  # the next trial's service runs alone
                    if not numbers["engine_saturated"] or attempt == config.cpu_cores.saturation_repeats:
                        break
                    repeated[service].append(f"trial {trial}, attempt {attempt + 1}: "
                                             + "; ".join(numbers["engine_notes"]))
                trials[service].append(numbers)
                for name, frame in frames.items():
                    parts.setdefault(name, []).append(frame)
    frames = {name: pl.concat(found, how="diagonal_relaxed") for name, found in parts.items()}
    results: dict[str, CpuCoresResult] = {}
    warned: list[str] = []
    for service in config.services:
        cores, groups = (frames[name].filter(pl.col("service") == service)
                         for name in ("cores", "core_groups"))
        results[service] = dataclasses.replace(_result(config, rate, trials[service], cores, groups),
                                               repeated_trials=repeated[service])
        warned += _checks(config, service, results[service], cores)
        if repeated[service]:
            warned.append(f"{service}: trials run again, their load generator saturated: "
                          + " | ".join(repeated[service]))
    for name, frame in frames.items():
        run.write_frame(name, frame)
    shutil.rmtree(run.path / "steps", ignore_errors=True)
    summary = CpuCoresSummary(services=results, rate_rps=rate, rate_source=rate_source, layout=layout,
                              layout_cores=config.cores.as_dict(),
                              engine_limits=limits.as_dict())
    run.write_summary(summary, warnings_found=warned)
    return run
