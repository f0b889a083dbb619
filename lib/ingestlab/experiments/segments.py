"""A long soak held as segments: its plan, each segment's bookkeeping and their sum.

The load engine (`load.engine`) keeps one run's request rows in preallocated arrays and writes
them once at its end, so an hour at 2,000 req/s in one run would hold 7.2 million rows in the
engine and then in the measuring process. A hold longer than `SoakConfig.segment_s` is
instead held as consecutive engine runs of at most that long ("segments") inside one sampler
(`experiments.soak.hold_segments`): each segment's rows go to a part of the run's `requests`
frame on disk and are dropped. Between two segments no load is offered while the engine
process ends and the next one starts: each gap is measured here (`with_gaps`) from the
schedules, and reported.

Pure functions of numbers and frames, so the bookkeeping is tested without services.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import polars as pl

from ingestlab.experiments.steps import StepResult
from ingestlab.units import MIB, NS_PER_S

# A long hold's topic keeps only its newest records, or an hour at 2,000 req/s of 10 KB
# bodies (72 GB) would fill the disk: Kafka deletes a partition's oldest closed log segments
# beyond `retention.bytes` or older than `retention.ms`, at its retention check (every 5
# minutes: the broker's `log.retention.check.interval.ms` default), so the topic holds about
# partitions x 2 GiB plus what 5 minutes bring. Log segments of 256 MiB or a segment's length
# give deletion something to delete. Delivery is still counted from the end offsets, which
# deletion does not move; the last segment's records (read back for its e2e latency) are
# far within the retention.
RETENTION_BYTES_PER_PARTITION = 2 * 2**30
LOG_SEGMENT_BYTES = 256 * 2**20
MIN_RETENTION_S = 600.0
# The measuring process's RSS growing more than this from the end of the first segment to the
# end of the last one: the rig's memory grows with the hold's length (warned).
RIG_GROWTH_WARN_MIB = 64.0
# Gaps between segments taking more than this share of the hold (warned).
GAP_SHARE_WARN = 0.05


@dataclass(frozen=True)
class Segment:
    """One engine run of a hold: its index (from 0), length (s) and unjudged warm-up (s)."""

    index: int
    duration_s: float
    warmup_s: float


def plan_segments(duration_s: float, segment_s: float, warmup_s: float) -> list[Segment]:
    """The engine runs that hold `duration_s` (s): one run when `duration_s` <= `segment_s`,
    else the fewest runs of equal length at most `segment_s` (an hour in minutes: 60 x 60 s;
    100 s: 2 x 50 s). Only the first has the warm-up `warmup_s`, which must be shorter than it."""
    if duration_s <= 0 or segment_s <= 0:
        raise ValueError(f"duration_s and segment_s must be > 0, got {duration_s!r} and {segment_s!r}")
    count = 1 if duration_s <= segment_s else math.ceil(duration_s / segment_s - 1e-9)
    length = duration_s / count
    if not 0 <= warmup_s < length:
        raise ValueError(f"the warm-up ({warmup_s} s) must be shorter than a segment ({length:g} s)")
    return [Segment(k, length, warmup_s if k == 0 else 0.0) for k in range(count)]


def long_hold_topic_config(segment_s: float) -> dict[str, str]:
    """The topic configs a segmented hold sets (see `RETENTION_BYTES_PER_PARTITION`): the
    newest 2 GiB per partition, at most `MIN_RETENTION_S` or three segments old, in log
    segments rolled at 256 MiB or a segment's length."""
    keep_s = max(MIN_RETENTION_S, 3 * segment_s)
    return {
        "retention.bytes": str(RETENTION_BYTES_PER_PARTITION),
        "retention.ms": str(round(keep_s * 1000)),
        "segment.bytes": str(LOG_SEGMENT_BYTES),
        "segment.ms": str(round(segment_s * 1000)),
    }


def segment_record(segment: Segment, result: StepResult, rows: pl.DataFrame, *, call_s: float,
                   rig_rss_bytes: int) -> dict[str, Any]:
    """One row of a hold's `segments` frame: the segment's plan, its schedule's first slot
    (`start_ns`, epoch ns), its first measured send and last answer, its counts (`accepted`:
    every 202, warm-up included, as Kafka holds them all; `measured`: requests of the measured
    phase, answered or not), the engine's health, how long the engine call took (`call_s`),
    and the measuring process's RSS after it (`rig_rss_bytes`)."""
    measured = rows.filter(pl.col("phase") == "measure")
    return {
        "segment": segment.index,
        "duration_s": segment.duration_s,
        "warmup_s": segment.warmup_s,
        "engine": result.engine,
        "start_ns": rows["intended_start_ns"].min(),
        "measure_start_ns": measured["actual_start_ns"].min(),
        "end_ns": rows["end_ns"].max(),
        "sent": result.sent,
        "accepted": int((rows["status"] == 202).sum()),
        "measured": result.accepted + result.errors,
        "errors": result.errors,
        "dropped": result.dropped,
        "achieved_rps": result.achieved_rps,
        "engine_cpu_pct": result.engine_cpu_pct,
        "engine_lag_p99_ms": result.engine_lag_p99_ms,
        "saturated": result.engine_saturated,
        "notes": "; ".join(result.engine_notes),
        "call_s": call_s,
        "rig_rss_bytes": rig_rss_bytes,
    }


SEGMENT_SCHEMA: dict[str, pl.DataType] = {
    "segment": pl.Int32(), "duration_s": pl.Float64(), "warmup_s": pl.Float64(), "engine": pl.String(),
    "start_ns": pl.Int64(), "measure_start_ns": pl.Int64(), "end_ns": pl.Int64(), "sent": pl.Int64(),
    "accepted": pl.Int64(), "measured": pl.Int64(), "errors": pl.Int64(), "dropped": pl.Int64(),
    "achieved_rps": pl.Float64(), "engine_cpu_pct": pl.Float64(), "engine_lag_p99_ms": pl.Float64(),
    "saturated": pl.Boolean(), "notes": pl.String(), "call_s": pl.Float64(), "rig_rss_bytes": pl.Int64(),
}


def with_gaps(records: list[dict[str, Any]]) -> pl.DataFrame:
    """The `segments` frame of a hold's `segment_record`s, in order, plus `gap_before_s`: the
    time from the end of the previous segment's schedule (its first slot + its length) to this
    one's first slot, when no load was offered (0 for the first segment; null where a segment
    sent nothing)."""
    frame = pl.DataFrame(records, schema=SEGMENT_SCHEMA, orient="row").sort("segment")
    scheduled_end = pl.col("start_ns") + (pl.col("duration_s") * NS_PER_S).round().cast(pl.Int64)
    gap = (pl.col("start_ns") - scheduled_end.shift(1)) / NS_PER_S
    return frame.with_columns(gap_before_s=pl.when(pl.int_range(pl.len()) == 0).then(0.0).otherwise(gap))


def merge_segments(segments: pl.DataFrame) -> dict[str, Any]:
    """A hold's totals from its `segments` frame (`with_gaps`): counts summed (`sent`,
    `accepted`, `measured`, `errors`, `dropped`), `error_rate` (errors / measured),
    `achieved_rps` (each segment's rate weighted by its length: the gaps left out),
    `engine` (the engines used), `engine_saturated` and `segments_saturated`, `engine_notes`
    (each saturated segment's), `segment_gap_s` (all gaps) and `segment_gap_share` (of the
    time from the first slot to the end of the last schedule), `load_start_ns` (first
    slot), `measure_start_ns` (first measured send), `end_ns` (last answer), and
    `rig_rss_growth_mib` (the measuring process's RSS after the last segment less after the
    first)."""
    if segments.is_empty():
        raise ValueError("a hold has at least one segment")
    last = segments.row(segments.height - 1, named=True)
    first = segments.row(0, named=True)
    measured = int(segments["measured"].sum())
    span_s = None
    if first["start_ns"] is not None and last["start_ns"] is not None:
        span_s = (last["start_ns"] - first["start_ns"]) / NS_PER_S + last["duration_s"]
    gap_s = float(segments["gap_before_s"].fill_null(0.0).sum())
    saturated = segments.filter(pl.col("saturated"))
    return {
        "segments": segments.height,
        "sent": int(segments["sent"].sum()),
        "accepted": int(segments["accepted"].sum()),
        "measured": measured,
        "errors": int(segments["errors"].sum()),
        "dropped": int(segments["dropped"].sum()),
        "error_rate": int(segments["errors"].sum()) / measured if measured else 0.0,
        "achieved_rps": float((segments["achieved_rps"] * segments["duration_s"]).sum()
                              / segments["duration_s"].sum()),
        "engine": ", ".join(segments["engine"].drop_nulls().unique(maintain_order=True)) or "none",
        "engine_saturated": saturated.height > 0,
        "segments_saturated": saturated.height,
        "engine_notes": [f"segment {row['segment']}: {row['notes']}"
                         for row in saturated.iter_rows(named=True)],
        "segment_gap_s": gap_s,
        "segment_gap_share": gap_s / span_s if span_s else None,
        "load_start_ns": first["start_ns"],
        "measure_start_ns": segments["measure_start_ns"].drop_nulls().min(),
        "end_ns": segments["end_ns"].max(),
        "rig_rss_growth_mib": (last["rig_rss_bytes"] - first["rig_rss_bytes"]) / MIB,
    }


def hold_checks(service: str, *, segment_gap_share: float | None, rig_rss_growth_mib: float | None,
                segments: int) -> list[str]:
    """What a segmented hold found suspect about the rig: gaps taking over `GAP_SHARE_WARN`
    of the hold, the measuring process growing over `RIG_GROWTH_WARN_MIB`."""
    found = []
    if segment_gap_share is not None and segment_gap_share > GAP_SHARE_WARN:
        found.append(f"{service}: the {segments - 1} gaps between segments took "
                     f"{100 * segment_gap_share:.1f}% of the hold (no load offered meanwhile)")
    if rig_rss_growth_mib is not None and rig_rss_growth_mib > RIG_GROWTH_WARN_MIB:
        found.append(f"{service}: the measuring process's RSS grew {rig_rss_growth_mib:,.0f} MiB over the "
                     f"hold (> {RIG_GROWTH_WARN_MIB:g} MiB): the rig's memory grows with the hold's length")
    return found
