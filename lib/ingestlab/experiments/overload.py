"""`overload`: each service held above its ceiling for minutes, its memory and what its
clients were told checked against what Kafka holds.

The rates (`overload_rates`, `config.OverloadConfig`): each of `ceiling_factors` times the
service's ceiling (handed in: the study's newest ceiling run for that service on this host and
core layout, measured by the study first if there is none, `inputs.service_ceilings`), and each of
`absolute_rps` (the article's 10,000 req/s). Per service and rate, a fresh stack (a broker
and that service alone, as in the soak): RSS at rest once ready, then the rate held open loop
by the asyncio engine (its request ids match each record to its request) with a
`ProcessSampler` on the service (RSS, CPU; the cgroup's charge in a container), the service
stopped (SIGTERM: its producer flushes) and the topic read back for the ledger
(`analysis.overload.overload_ledger`); a Node program's `--trace-gc` gives its V8 heap.

Above the ceiling the engine falls behind its schedule by design: every worker waits on the
service, and a slot finding none free for over a second is dropped (`max_in_flight` bounds
the backlog). The engine reports that as saturation; whether the generator itself held the
rate back (its CPU, or late sends while workers were free) is judged apart
(`generator_limited`), so a reader can tell a service's limit from the client's.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from ingestlab.analysis.memory import memory_pattern
from ingestlab.analysis.overload import (
    GENERATOR_LATE_SHARE,
    LEG_SCHEMA,
    late_with_free_workers,
    overload_ledger,
    rate_stats,
)
from ingestlab.config import ServiceName, StudyConfig
from ingestlab.experiments.search import nice_rate
from ingestlab.experiments.soak import REST_S, cgroup_memory, node_gc
from ingestlab.load.engine import SATURATION_CPU_PCT, SATURATION_LAG_P99_MS, run_load
from ingestlab.load.payloads import PayloadSet
from ingestlab.load.schedules import constant
from ingestlab.results import Run, find_runs
from ingestlab.stack import Stack
from ingestlab.summaries import OverloadRate, OverloadResult, OverloadSummary
from ingestlab.telemetry.sampler import ProcessSampler, tree_rss_bytes, tree_totals
from ingestlab.units import MIB, NS_PER_S
from ingestlab.variants import has_v8_trace

# The fields of a Node program's GC analysis (`experiments.soak`) an overload leg keeps.
_GC_FIELDS = ("heap_pattern", "heap_mean_mib", "heap_peak_mib", "heap_period_s", "gc_pause_max_ms",
              "gc_time_share")


@dataclass(frozen=True)
class Ceiling:
    """A service's ceiling here (req/s; None: no ceiling run, or it held no rate), whether
    it is only a lower bound, and a sentence saying where it comes from."""

    rps: float | None
    lower_bound: bool
    source: str


def ceiling_of(run: Run, service: ServiceName) -> Ceiling:
    """`service`'s ceiling in the ceiling run `run`, with where it comes from."""
    found = run.summary.services[service]
    bound = " (a lower bound)" if found.ceiling_lower_bound else ""
    rps = f"{found.ceiling_rps:,.0f} req/s" if found.ceiling_rps else "no rate held"
    return Ceiling(found.ceiling_rps, found.ceiling_lower_bound, f"{rps}{bound}, ceiling run {run.run_id}")


def latest_ceilings(config: StudyConfig) -> dict[ServiceName, Ceiling | None]:
    """Per service of `config`, its ceiling in the newest ceiling run of `config`'s profile
    (and study, if set) on this host and core layout that measured one (a trial that ended on a
    stall of the machine is none); None: no such run."""
    here = Run.environment_of(config)
    found: dict[ServiceName, Ceiling | None] = {}
    for service in config.services:
        runs = [run for run in find_runs(config.runs_dir, "ceiling", profile=config.profile,
                                         services=(service,), study_id=config.study_id)
                if run.environment_key() == here and run.summary.services[service].ceiling_rps
                and not run.summary.services[service].stalled]
        found[service] = ceiling_of(runs[0], service) if runs else None
    return found


def overload_rates(config: StudyConfig, known: Ceiling) -> dict[float, str]:
    """The rates (req/s) to hold on a service with ceiling `known`, each with a sentence
    saying how it was chosen; a rate asked for twice is held once. Raises ValueError when a
    factor needs a ceiling there is none of, or a leg would exceed `max_requests`."""
    o = config.overload
    rates: dict[float, list[str]] = {}
    for factor in o.ceiling_factors:
        if not known.rps:
            raise ValueError(f"overload: a rate of {factor:g} x the ceiling needs a ceiling ({known.source})")
        rates.setdefault(nice_rate(factor * known.rps), []).append(
            f"{factor:g} x the ceiling {known.source}, rounded")
    for rate in o.absolute_rps:
        rates.setdefault(float(rate), []).append("set in the configuration (overload.absolute_rps)")
    too_many = [rate for rate in rates if rate * o.duration_s > o.max_requests]
    if too_many:
        raise ValueError(f"overload: {too_many} req/s for {o.duration_s:g} s is more than "
                         f"max_requests ({o.max_requests:,}) per leg")
    return {rate: f"{rate:,.0f} req/s: " + "; ".join(sources) for rate, sources in sorted(rates.items())}


@dataclass(frozen=True)
class Leg:
    """What one rate held on one fresh service produced: frames with `service` and
    `offered_rps` (requests, the main process's samples, Node's GC events or None, the topic
    read back), its `LEG_SCHEMA` row, the engine's health, the RSS at rest (bytes) and a
    Node program's GC fields (`SoakResult`'s names)."""

    requests: pl.DataFrame
    samples: pl.DataFrame
    gc: pl.DataFrame | None
    records: pl.DataFrame
    window: dict[str, Any]
    health: dict[str, Any]
    rss_start_bytes: int
    gc_fields: dict[str, Any]


def hold_leg(config: StudyConfig, service: ServiceName, rate_rps: float, *, log_dir: Path,
              out_dir: Path) -> Leg:
    """Start a broker and `service`, let it rest, hold `rate_rps` for `overload.duration_s`
    while sampling it, stop it (its producer flushes) and read the topic back."""
    o = config.overload
    schedule = constant(rate_rps, o.duration_s)
    payloads = PayloadSet(schedule.count, size_bytes=config.load.payload_bytes, seed=config.seed,
                          id_prefix=f"{service}-overload-{rate_rps:.0f}")
    with Stack(config, services=(service,), log_dir=log_dir) as stack:
        process = stack.service(service)
        time.sleep(REST_S)
        rss_start = tree_rss_bytes(process.pid)
        sampler = ProcessSampler(process, interval_s=o.sample_interval_s, cores=config.cores.load)
        with sampler:
            load = run_load(url=process.ingest_url, schedule=schedule, payloads=payloads,
                            out_path=out_dir / f"{service}-{rate_rps:.0f}.parquet", cores=config.cores.load,
                            max_in_flight=o.max_in_flight, warmup_s=o.warmup_s,
                            request_timeout_s=o.request_timeout_s, nice=config.cores.load_nice)
        process.stop()
        rows = load.frame()
        stack.wait_for_records(int((rows["status"] == 202).sum()))
        records = stack.read_topic()
    keys = {"service": pl.lit(service), "offered_rps": pl.lit(rate_rps, pl.Float64)}
    rows = rows.with_columns(**keys)
    start_ns = load.settings["t0_wall_ns"]
    gc_fields: dict[str, Any] = {}
    gc = None
    if has_v8_trace(service):
        found, gc_frame = node_gc(service, log_dir / f"{service}.log", rows)
        gc_fields = {name: found[name] for name in _GC_FIELDS} | {"gc_warnings": found["gc_warnings"]}
        gc = gc_frame.with_columns(**keys)
    return Leg(
        requests=rows,
        # every process of the service (node-cluster's, python's workers), summed per tick
        samples=tree_totals(sampler.samples()).with_columns(**keys),
        gc=gc,
        records=records.with_columns(**keys),
        window={"service": service, "offered_rps": rate_rps, "start_ns": start_ns,
                "end_ns": start_ns + round(schedule.duration_s * NS_PER_S)},
        health=load.health,
        rss_start_bytes=rss_start,
        gc_fields=gc_fields,
    )


def generator_notes(leg: Leg, *, max_in_flight: int) -> list[str]:
    """Why the engine itself could not hold the leg's rate; empty when it could."""
    notes = []
    cpu = leg.health["engine_cpu_pct"]
    if cpu > SATURATION_CPU_PCT:
        notes.append(f"the engine used {cpu:.0f}% of its core (> {SATURATION_CPU_PCT:g}%)")
    late = late_with_free_workers(leg.requests, max_in_flight=max_in_flight)
    if late > GENERATOR_LATE_SHARE:
        notes.append(f"{late:.1%} of the sends went out over {SATURATION_LAG_P99_MS:g} ms late while "
                     "workers were free")
    return notes


def rate_result(config: StudyConfig, leg: Leg, *, rate_source: str, known: Ceiling) -> OverloadRate:
    """A leg's `OverloadRate`."""
    o = config.overload
    rate = leg.window["offered_rps"]
    stats = rate_stats(leg.requests).row(0, named=True)
    ledger = overload_ledger(leg.requests, leg.records).row(0, named=True)
    loaded = leg.samples.filter(pl.col("t_ns") >= leg.window["start_ns"])
    rss = memory_pattern(loaded, value="rss_bytes")
    notes = generator_notes(leg, max_in_flight=o.max_in_flight)
    return OverloadRate(
        offered_rps=rate,
        rate_source=rate_source,
        share_of_ceiling=rate / known.rps if known.rps else None,
        duration_s=o.duration_s,
        request_timeout_s=o.request_timeout_s,
        max_in_flight=o.max_in_flight,
        **{name: stats[name] for name in ("offered", "sent", "achieved_rps", "error_rate", "timeout_rate",
                                          "dropped_rate", "p99_ms")},
        sent_rps=leg.health["achieved_rps"],
        rss_start_mib=leg.rss_start_bytes / MIB,
        rss_mean_mib=rss["mean"] / MIB,
        rss_peak_mib=rss["peak"] / MIB,
        memory_pattern=rss["classification"],
        memory_period_s=rss["period_s"],
        **{name: ledger[name] for name in ("accepted", "delivered", "accepted_not_delivered",
                                           "delivered_after_client_error", "duplicated")},
        engine_saturated=leg.health["saturated"],
        engine_notes=list(leg.health["saturated_reasons"]),
        generator_limited=bool(notes),
        generator_notes=notes,
        runtime=config.runtime,
        **{name: leg.gc_fields[name] for name in _GC_FIELDS if name in leg.gc_fields},
        **cgroup_memory(loaded),
    )


def _checks(service: str, r: OverloadRate, known: Ceiling, gc_warnings: list[str]) -> list[str]:
    """What a reader must know before the numbers of one leg."""
    at = f"{service} at {r.offered_rps:,.0f} req/s"
    found = []
    if r.accepted_not_delivered:
        found.append(f"{at}: {r.accepted_not_delivered:,} accepted requests have no record in Kafka")
    if r.generator_limited:
        found.append(f"{at}: the load generator held the rate back ({'; '.join(r.generator_notes)}): "
                     f"achieved {r.achieved_rps or 0:,.0f} req/s is the client's bound, not the service's")
    if r.share_of_ceiling is not None and r.share_of_ceiling <= 1:
        found.append(f"{at}: not above its ceiling ({known.source}): this leg measures no overload")
    elif known.lower_bound:
        found.append(f"{at}: its ceiling is a lower bound ({known.source}): the rate may not be above it")
    found += [f"{at}: {w}" for w in gc_warnings]
    return found


def overload(config: StudyConfig, *, ceilings: dict[ServiceName, Ceiling]) -> Run:
    """Hold each overload rate (`overload_rates`) on each service, given each one's ceiling
    (`inputs.service_ceilings`: the study's, measured there first when a factor needs one);
    summary: `OverloadSummary`."""
    rates = {service: overload_rates(config, ceilings[service]) for service in config.services}
    run = Run.create(config, "overload")
    run.update_meta(overload_rates={service: {f"{rate:.0f}": why for rate, why in mine.items()}
                                    for service, mine in rates.items()})
    results: dict[str, OverloadResult] = {}
    legs: list[Leg] = []
    found: list[str] = []
    for service in config.services:
        measured: dict[str, OverloadRate] = {}
        for rate, source in rates[service].items():
            leg = hold_leg(config, service, rate, log_dir=run.logs_dir / f"{service}-{rate:.0f}",
                            out_dir=run.path / "loads")
            measured[f"{rate:.0f}"] = result = rate_result(config, leg, rate_source=source,
                                                           known=ceilings[service])
            found += _checks(service, result, ceilings[service], leg.gc_fields.get("gc_warnings", []))
            legs.append(leg)
        known = ceilings[service]
        results[service] = OverloadResult(ceiling_rps=known.rps, ceiling_source=known.source, rates=measured)
    run.write_frame("legs", pl.DataFrame([leg.window for leg in legs], schema=LEG_SCHEMA))
    for field, frame_name in (("requests", "requests"), ("samples", "samples"), ("gc", "gc"),
                              ("records", "deliveries")):
        parts = [frame for leg in legs if (frame := getattr(leg, field)) is not None]
        if parts:
            run.write_frame(frame_name, pl.concat(parts, how="diagonal_relaxed"))
    shutil.rmtree(run.path / "loads", ignore_errors=True)
    o = config.overload
    summary = OverloadSummary(services=results, ceiling_factors=list(o.ceiling_factors),
                              absolute_rps=[float(r) for r in o.absolute_rps])
    run.write_summary(summary, warnings_found=found)
    return run
