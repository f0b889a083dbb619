"""`soak`: a constant rate held for minutes, with the service's memory, CPU and GC sampled.

Per service: RSS at rest once ready, then one rate for `config.soak.duration_s` with a
`ProcessSampler` on the service (10 Hz by default, its thread pinned to the load core); the
Node service's `--trace-gc` lines are joined onto the request timeline. Delivery is checked by
count, as in the ceiling.

The rate is handed in (`inputs.comparison_rates`): the same for both services and for every
soak trial of a study, chosen once per study from conclusive ceilings. Driving a service above
its ceiling is another experiment, not this one. A hold whose load generator saturated is held
again (`SoakConfig.saturation_repeats`); a run still flagged feeds no row of the claims.

Memory's trend (`analysis.memory.memory_slope`): RSS summed over the service's processes and
each memory part, MiB per hour with a 95% interval, over the steady state (the measured phase
less its first 20%, in which memory climbs to its level).

A long hold (`ingestlab run soak --duration 1h`: longer than `SoakConfig.segment_s`) is held as
segments (`experiments.segments`, `hold_segments`): consecutive engine runs in one sampler,
each segment's request rows written to `requests/<service>-<k>.parquet` and dropped, the
latency percentiles computed by scanning those parts; delivery by count (end offsets, which
the topic's retention, set for the hold, does not move); end-to-end latency, the requests'
overlap with GC pauses and the heap's growth per request over the last segment only
(`SoakResult.last_segment_only`); the gaps between segments and the rig's own memory
reported. It is not held again when saturated (an hour would become three): its saturated
segments are counted and named.
"""

from __future__ import annotations

import dataclasses
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import polars as pl

from ingestlab.analysis.e2e import e2e_summary
from ingestlab.analysis.gc import gc_latency_summary, gc_pause_summary
from ingestlab.analysis.latency import scan_percentiles
from ingestlab.analysis.memory import (
    HEAP_CLIMB_POINTS,
    heap_growth_per_1000_requests_mib,
    heap_series,
    memory_pattern,
    memory_slope,
)
from ingestlab.analysis.memory_parts import part_slopes, parts_summary, parts_timeline
from ingestlab.config import ServiceName, StudyConfig
from ingestlab.experiments.segments import (
    Segment,
    hold_checks,
    long_hold_topic_config,
    merge_segments,
    plan_segments,
    segment_record,
    with_gaps,
)
from ingestlab.experiments.steps import MAX_ERROR_RATE, Engine, EngineLimits, StepResult, drive_step
from ingestlab.results import Run
from ingestlab.stack import Stack
from ingestlab.stack import topic as topic_io
from ingestlab.summaries import ComparisonRate, CpuCoresResult, SoakResult, SoakSummary
from ingestlab.telemetry.gc_trace import parse_gc_log
from ingestlab.telemetry.memory_report import parse_memory_reports
from ingestlab.telemetry.rig_memory import RigMemory
from ingestlab.telemetry.sampler import (
    ProcessSampler,
    cpu_by_core,
    cpu_by_thread,
    tree_cpu_s,
    tree_rss_bytes,
    tree_totals,
)
from ingestlab.units import MB, MIB, NS_PER_S
from ingestlab.variants import has_v8_trace

# Memory at rest once ready: read after the service has idled this long.
REST_S = 1.0
# In a segmented hold, what is measured over its last segment only (see the module doc).
LAST_SEGMENT_ONLY = ("e2e_p50_ms", "e2e_p99_ms")
LAST_SEGMENT_ONLY_GC = ("p99_outside_gc_ms", "share_of_slow_requests_during_gc",
                        "share_of_requests_during_gc", "heap_growth_per_1000_requests_mib")


@dataclass(frozen=True)
class SampledLoad:
    """One constant-rate load on a service of a running stack (`sampled_load`): the step's
    result and request rows, the service's sampler (stopped: its frames and stats), and the
    delivery by count."""

    result: StepResult
    rows: pl.DataFrame
    sampler: ProcessSampler
    accepted: int
    delivered: int


def sampled_load(
    config: StudyConfig, stack: Stack, service: ServiceName, *, rate_rps: float, out_dir: Path,
    id_prefix: str, duration_s: float, warmup_s: float, in_flight_s: float, interval_s: float,
    limits: EngineLimits | None = None, engine: Engine | None = None, step: int = 0,
    threads_every: int = 1,
) -> SampledLoad:
    """Offer `rate_rps` to `service` of `stack` for `duration_s` (s; requests intended in the
    first `warmup_s` left out of the numbers; `in_flight_s` of the rate in flight), the engine
    `engine` or the one `limits` choose, with a `ProcessSampler` on the service every
    `interval_s` (its thread on the load cores; the threads every `threads_every` ticks); then
    wait until its accepted requests are in Kafka (by count)."""
    process = stack.service(service)
    before = stack.topic_size()
    sampler = ProcessSampler(process, interval_s=interval_s, cores=config.cores.load,
                             threads_every=threads_every)
    with sampler:
        # No repeat with another engine: the sampled run is the one measured.
        result, rows = drive_step(
            config,
            url=process.ingest_url,
            rate_rps=rate_rps,
            step=step,
            out_dir=out_dir,
            id_prefix=id_prefix,
            duration_s=duration_s,
            warmup_s=warmup_s,
            limits=limits,
            engine=engine,
            fallback=False,
            in_flight_s=in_flight_s,
        )
    accepted = int((rows["status"] == 202).sum())
    delivered = stack.wait_for_records(before + accepted) - before
    return SampledLoad(result=result, rows=rows, sampler=sampler, accepted=accepted, delivered=delivered)


def _threads_every(config: StudyConfig) -> int:
    """Sampler ticks per reading of the threads (`SoakConfig.thread_interval_s`)."""
    return max(1, round(config.soak.thread_interval_s / config.soak.sample_interval_s))


def hold_rate(
    config: StudyConfig, run: Run, stack: Stack, service: ServiceName, *, rate_rps: float,
    limits: EngineLimits, label: str = "soak",
) -> tuple[SoakResult, dict[str, pl.DataFrame]]:
    """Hold `rate_rps` on `service` of the running `stack` for `config.soak.duration_s` with
    the service sampled, and measure it (`SoakResult`) and its frames (requests, samples,
    thread_samples, and gc for a single Node process). Request ids start with
    `<service>-<label>`. A hold longer than `config.soak.segment_s` is `hold_segments`'s."""
    process = stack.service(service)
    time.sleep(REST_S)
    rss_start = tree_rss_bytes(process.pid)
    segments = plan_segments(config.soak.duration_s, config.soak.segment_s, config.soak.warmup_s)
    if len(segments) > 1:
        return hold_segments(config, run, stack, service, rate_rps=rate_rps, limits=limits, label=label,
                             rss_start=rss_start, segments=segments)
    load = sampled_load(config, stack, service, rate_rps=rate_rps, out_dir=run.path / "steps",
                        id_prefix=f"{service}-{label}", duration_s=config.soak.duration_s,
                        warmup_s=config.soak.warmup_s, in_flight_s=config.soak.in_flight_s,
                        interval_s=config.soak.sample_interval_s, limits=limits,
                        threads_every=_threads_every(config))
    result, rows, sampler, accepted, delivered = (load.result, load.rows, load.sampler, load.accepted,
                                                  load.delivered)
    # as the HTTP percentiles: requests intended in the warm-up are left out
    e2e = e2e_summary(rows.filter(pl.col("phase") == "measure"), stack.read_topic())
    rows = rows.with_columns(service=pl.lit(service))
    sampled, frames = sampled_fields(config, service, process.log_path, sampler,
                                     load_start_ns=rows["intended_start_ns"].min(), accepted=accepted)
    measured = {
        **sampled,
        "rate_rps": rate_rps,
        "duration_s": config.soak.duration_s,
        "engine": result.engine,
        "rss_start_mib": rss_start / MIB,
        "p50_ms": result.p50_ms,
        "p95_ms": result.p95_ms,
        "p99_ms": result.p99_ms,
        "e2e_p50_ms": e2e["e2e_p50_ms"],
        "e2e_p99_ms": e2e["e2e_p99_ms"],
        "achieved_rps": result.achieved_rps,
        "error_rate": result.error_rate,
        "accepted": accepted,
        "delivered": delivered,
        "lost": max(0, accepted - delivered),
        "engine_saturated": result.engine_saturated,
        "engine_notes": list(result.engine_notes),
    }
    frames = {"requests": rows, **frames}
    if has_v8_trace(service):
        gc_fields, frames["gc"] = node_gc(service, process.log_path, rows)
        measured.update(gc_fields)
    return SoakResult(**measured), frames


def sampled_fields(config: StudyConfig, service: ServiceName, log_path: Path, sampler: ProcessSampler, *,
                   load_start_ns: int, accepted: int) -> tuple[dict[str, Any], dict[str, pl.DataFrame]]:
    """What the stopped `sampler` saw of `service` from `load_start_ns` (epoch ns: the first
    request's intended start) on, as `SoakResult` fields: memory (RSS summed over the service's
    processes: its level, pattern and trend; its parts from the reports in `log_path`), CPU
    (per accepted request, by thread and core), the sampler's own cost; and the frames
    samples, thread_samples and, with reports, memory_parts."""
    stats = sampler.stats
    samples = sampler.samples().with_columns(service=pl.lit(service))
    threads = sampler.thread_samples().with_columns(service=pl.lit(service))
    # All the service's processes (node-cluster's and python's workers), summed per tick.
    window = samples.filter(pl.col("t_ns") >= load_start_ns)
    totals = tree_totals(window)
    rss = memory_pattern(totals, value="rss_bytes")
    parts = memory_parts_of(parse_memory_reports(log_path).frame, window)
    fields = {
        "runtime": config.runtime,
        **cgroup_memory(window),
        "rss_mean_mib": rss["mean"] / MIB,
        "rss_peak_mib": rss["peak"] / MIB,
        "rss_amplitude_mib": rss["amplitude"] / MIB,
        "memory_pattern": rss["classification"],
        "memory_period_s": rss["period_s"],
        "memory_bounds": {k: rss[k] for k in ("flat_bound_pct", "drop_pct", "min_drops", "warmup_fraction")},
        "cpu_per_request_us": tree_cpu_s(window) / accepted * 1e6 if accepted else None,
        "processes": int(window["pid"].n_unique()),
        "sampler_overhead_core_pct": stats.overhead_core_pct,
        "sampler_mean_interval_s": stats.mean_interval_s,
        "cpu_by_thread": cpu_by_thread(threads, by="name").to_dicts(),
        "cpu_by_core": cpu_by_core(threads).to_dicts(),
        "memory_parts": parts_summary(parts) or None,
        **memory_trends(totals, parts, since_ns=load_start_ns + round(config.soak.warmup_s * NS_PER_S)),
    }
    frames = {"samples": samples, "thread_samples": threads}
    if not parts.is_empty():
        frames["memory_parts"] = parts.with_columns(service=pl.lit(service))
    return fields, frames


def memory_trends(totals: pl.DataFrame, parts: pl.DataFrame, *, since_ns: int) -> dict[str, Any]:
    """The trend (`analysis.memory.memory_slope`, MiB per hour with its 95% interval) of RSS
    summed per tick (`totals`) and of each memory part (`parts`) in the steady state of what
    was sampled from `since_ns` (epoch ns: the end of the warm-up) on, as `SoakResult` fields."""
    found: dict[str, Any] = {}
    rss = memory_slope(totals.filter(pl.col("t_ns") >= since_ns), value="rss_bytes")
    if rss is not None:
        found["rss_slope_mib_per_h"] = rss["slope_per_h"] / MIB
        found["rss_slope_ci_mib_per_h"] = [bound / MIB for bound in rss["ci_per_h"]]
        found["rss_slope_window_s"] = rss["window_s"]
    if not parts.is_empty():
        found["memory_part_slopes"] = part_slopes(parts.filter(pl.col("t_ns") >= since_ns)) or None
    return found


def hold_segments(
    config: StudyConfig, run: Run, stack: Stack, service: ServiceName, *, rate_rps: float,
    limits: EngineLimits, label: str, rss_start: int, segments: list[Segment],
) -> tuple[SoakResult, dict[str, pl.DataFrame]]:
    """`hold_rate` for a hold of several `segments` (`experiments.segments.plan_segments`):
    one engine run per segment inside one `ProcessSampler`, each segment's request rows
    written to `run`'s `requests/<service>-<k>.parquet` and dropped (request ids
    `<service>-<label>-s<k>-...`), the topic's retention set for the hold
    (`long_hold_topic_config`); the rig's memory watched (`RigMemory`). Frames: samples,
    thread_samples, memory_parts, gc as `hold_rate`'s, and `segments` (one row per segment,
    `experiments.segments.with_gaps`) instead of requests."""
    process = stack.service(service)
    topic_config = long_hold_topic_config(config.soak.segment_s)
    topic_io.set_topic_configs(stack.bootstrap, stack.topic, topic_config)
    run.update_meta(long_hold_topic_config=topic_config)
    before = stack.topic_size()
    steps = run.path / "steps"
    records: list[dict[str, Any]] = []
    last_from: dict[int, int] = {}
    sampler = ProcessSampler(process, interval_s=config.soak.sample_interval_s, cores=config.cores.load,
                             threads_every=_threads_every(config))
    with RigMemory() as rig, sampler:
        for segment in segments:
            if segment.index == len(segments) - 1:  # its records are read back for e2e latency
                last_from = topic_io.end_offsets(stack.bootstrap, stack.topic)
            began = time.monotonic()
            result, rows = drive_step(config, url=process.ingest_url, rate_rps=rate_rps, step=segment.index,
                                      out_dir=steps, id_prefix=f"{service}-{label}-s{segment.index}",
                                      duration_s=segment.duration_s, warmup_s=segment.warmup_s, limits=limits,
                                      fallback=False, in_flight_s=config.soak.in_flight_s)
            call_s = time.monotonic() - began
            rows = rows.with_columns(service=pl.lit(service))
            run.write_frame_part("requests", f"{service}-{segment.index:04d}", rows)
            for written in steps.glob(f"step-{segment.index:03d}-*.parquet"):
                written.unlink()  # the engine's own copy of the rows
            records.append(segment_record(segment, result, rows, call_s=call_s, rig_rss_bytes=rig.read()))
            if segment.index < len(segments) - 1:
                del rows
    booked = with_gaps(records)
    totals = merge_segments(booked)
    delivered = stack.wait_for_records(before + totals["accepted"]) - before
    latency = scan_percentiles(run.scan_frame("requests", parts=f"{service}-[0-9]*"))
    last = rows.filter(pl.col("phase") == "measure")
    records_read = topic_io.read_topic(stack.bootstrap, stack.topic, from_offsets=last_from,
                                       timeout_s=60.0 + last.height / 10_000)
    e2e = e2e_summary(last, records_read)
    sampled, frames = sampled_fields(config, service, process.log_path, sampler,
                                     load_start_ns=totals["load_start_ns"], accepted=totals["accepted"])
    peaks = rig.peaks
    measured = {
        **sampled,
        "rate_rps": rate_rps,
        "duration_s": config.soak.duration_s,
        "engine": totals["engine"],
        "rss_start_mib": rss_start / MIB,
        **{key: latency[key][0] for key in ("p50_ms", "p95_ms", "p99_ms")},
        "e2e_p50_ms": e2e["e2e_p50_ms"],
        "e2e_p99_ms": e2e["e2e_p99_ms"],
        **{key: totals[key] for key in ("achieved_rps", "error_rate", "accepted", "engine_saturated",
                                        "engine_notes", "segments", "segment_gap_s", "segment_gap_share",
                                        "segments_saturated", "rig_rss_growth_mib")},
        "delivered": delivered,
        "lost": max(0, totals["accepted"] - delivered),
        "segment_s": segments[0].duration_s,
        "last_segment_only": list(LAST_SEGMENT_ONLY),
        "rig_rss_peak_mib": peaks.self_peak_mib,
        "engine_rss_peak_mib": peaks.engine_peak_mib,
    }
    frames["segments"] = booked.with_columns(service=pl.lit(service))
    if has_v8_trace(service):
        span = HoldSpan(totals["load_start_ns"], totals["measure_start_ns"], totals["end_ns"])
        gc_fields, frames["gc"] = node_gc(service, process.log_path, rows, hold=span)
        measured.update(gc_fields)
        measured["last_segment_only"] += list(LAST_SEGMENT_ONLY_GC)
    return SoakResult(**measured), frames


class HoldSpan(NamedTuple):
    """A segmented hold's span, epoch ns: its first slot, its first measured send, its last answer."""

    load_start_ns: int
    measure_start_ns: int
    end_ns: int


def memory_parts_of(reports: pl.DataFrame, window: pl.DataFrame) -> pl.DataFrame:
    """The service's memory parts over the sampled `window` (`analysis.memory_parts`), from
    its memory reports (`parse_memory_reports(...).frame`; empty when the stack did not ask
    for them: `StackConfig.memory_report_ms` 0)."""
    start = window["t_ns"].min()
    return parts_timeline(reports.filter(pl.col("t_ns") >= start), tree_totals(window))


def cgroup_memory(window: pl.DataFrame) -> dict[str, float | None]:
    """The container's memory as its cgroup charges it (anonymous + page cache + kernel),
    mean and peak over the measured window, in MB (10**6 bytes); {} for a native process
    (its samples have no cgroup columns)."""
    if "cgroup_memory_bytes" not in window.columns:
        return {}
    charged = window["cgroup_memory_bytes"].drop_nulls()
    if charged.is_empty():
        return {}
    return {"cgroup_mem_mean_mb": float(charged.mean()) / MB, "cgroup_mem_peak_mb": float(charged.max()) / MB}


def node_gc(service: ServiceName, log_path: Path, rows: pl.DataFrame, *, hold: HoldSpan | None = None
            ) -> tuple[dict[str, Any], pl.DataFrame]:
    """A Node program's GC over the soak, from its `--trace-gc` log: the GC fields of `SoakResult`
    (pauses in ms, heap in MiB) and the GC events frame. With `hold` (a segmented hold, whose
    `rows` are its last segment's) the pauses and the heap's pattern are the whole hold's, the
    requests' overlap with pauses and the heap's growth per request the last segment's."""
    trace = parse_gc_log(log_path)
    gc = trace.events.with_columns(service=pl.lit(service))
    gc_summary = gc_latency_summary(rows, gc)
    load_start_ns = rows["intended_start_ns"].min()
    if hold is not None:
        gc_summary.update(gc_pause_summary(gc, hold.measure_start_ns, hold.end_ns))
        load_start_ns = hold.load_start_ns
    heap = memory_pattern(
        heap_series(gc, climb_points=HEAP_CLIMB_POINTS).filter(pl.col("t_ns") >= load_start_ns),
        value="heap_bytes",
    )
    fields = {
        "gc_events": gc_summary["gc_events"],
        "gc_pause_p99_ms": gc_summary["gc_pause_p99_ms"],
        "gc_pause_max_ms": gc_summary["gc_pause_max_ms"],
        "gc_time_share": gc_summary["gc_time_share"],
        "gc_events_by_kind": gc_summary["events_by_kind"],
        "p99_outside_gc_ms": gc_summary["p99_outside_gc_ms"],
        "share_of_slow_requests_during_gc": gc_summary["share_of_slow_requests_during_gc"],
        "share_of_requests_during_gc": gc_summary["share_during_gc"],
        "heap_pattern": heap["classification"],
        "heap_mean_mib": heap["mean"] / MIB,
        "heap_peak_mib": heap["peak"] / MIB,
        "heap_period_s": heap["period_s"],
        "heap_growth_per_1000_requests_mib": heap_growth_per_1000_requests_mib(gc, rows),
        "gc_unparsed_lines": len(trace.unparsed),
        "gc_warnings": list(trace.warnings),
    }
    return fields, gc


def load_checks(service: str, s: SoakResult | CpuCoresResult) -> list[str]:
    """What a sampled constant-rate load found suspect about itself: records lost, the
    generator saturated, errors, the sampler over its budget."""
    found = []
    if s.lost:
        found.append(f"{service}: {s.lost} accepted requests missing from Kafka")
    if s.engine_saturated:
        found.append(f"{service}: load generator saturated: {'; '.join(s.engine_notes)}")
    if s.error_rate >= MAX_ERROR_RATE:
        found.append(f"{service}: error rate {100 * s.error_rate:.2f}% at {s.rate_rps} req/s")
    if s.sampler_overhead_core_pct >= 1.0:
        found.append(f"{service}: sampler used {s.sampler_overhead_core_pct:.2f}% of a core (budget 1%)")
    return found


def _checks(service: str, s: SoakResult) -> list[str]:
    found = load_checks(service, s)
    found += hold_checks(service, segment_gap_share=s.segment_gap_share,
                         rig_rss_growth_mib=s.rig_rss_growth_mib, segments=s.segments)
    if s.gc_unparsed_lines:
        found.append(f"{service}: {s.gc_unparsed_lines} GC trace lines could not be parsed")
    found += [f"{service}: {w}" for w in s.gc_warnings or []]
    return found


def hold_each_service(config: StudyConfig, run: Run, *, rate_rps: float, limits: EngineLimits,
                      label: str, one_stack: bool = False) -> tuple[dict[str, SoakResult], list[str]]:
    """`hold_rate` on each of `config.services` in turn, each with a broker of its own, or
    with `one_stack` all started at once with one broker (the others idle meanwhile: a
    broker start saved per service). Writes their frames into `run`; returns the results by
    service and what they found suspect (`_checks`)."""
    results: dict[str, SoakResult] = {}
    frames: dict[str, list[pl.DataFrame]] = {}
    found: list[str] = []

    def hold(stack: Stack, service: ServiceName) -> None:
        # A hold whose load generator was saturated measured the rig, not the service: it is
        # held again (`soak.saturation_repeats` times at most); only the last one is kept. A
        # segmented (long) hold is not: its saturated segments are counted instead.
        flagged: list[str] = []
        repeats = 0 if config.soak.duration_s > config.soak.segment_s else config.soak.saturation_repeats
        for attempt in range(repeats + 1):
            result, service_frames = hold_rate(config, run, stack, service, rate_rps=rate_rps, limits=limits,
                                               label=f"{label}-r{attempt}" if attempt else label)
            if not result.engine_saturated or attempt == repeats:
                break
            flagged.append(f"attempt {attempt + 1}: " + "; ".join(result.engine_notes))
        results[service] = dataclasses.replace(result, attempts=attempt + 1, repeated_because=flagged)
        found.extend(_checks(service, results[service]))
        if flagged:
            found.append(f"{service}: held {attempt + 1} times, the load generator saturated before: "
                         + " | ".join(flagged))
        for name, frame in service_frames.items():
            frames.setdefault(name, []).append(frame)

    if one_stack:
        with Stack(config, log_dir=run.logs_dir) as stack:
            for service in config.services:
                hold(stack, service)
    else:
        for service in config.services:
            with Stack(config, services=(service,), log_dir=run.logs_dir / service) as stack:
                hold(stack, service)
    for name, parts in frames.items():
        run.write_frame(name, pl.concat(parts, how="diagonal_relaxed"))
    shutil.rmtree(run.path / "steps", ignore_errors=True)
    return results, found


def soak(config: StudyConfig, *, rate: ComparisonRate, limits: EngineLimits) -> Run:
    """Hold `rate` (the study's soak rate, `inputs.comparison_rates`) on each service with the
    rig's calibration `limits`; summary: `SoakSummary`."""
    run = Run.create(config, "soak")
    run.update_meta(engine_limits=limits.as_dict(), soak_rate_rps=rate.rate_rps, soak_rate_source=rate.source)
    results, found = hold_each_service(config, run, rate_rps=rate.rate_rps, limits=limits, label="soak")
    summary = SoakSummary(services=results, rate_rps=rate.rate_rps, rate_source=rate.source,
                          engine_limits=limits.as_dict())
    run.write_summary(summary, warnings_found=found)
    return run
