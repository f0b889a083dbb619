"""Kafka slower than the intake for minutes (`experiments.backlog`), as pure polars functions of
its frames. Each service's run has four stages (`STAGES`): `warmup` (unjudged: a fresh broker
and service), `before` (Kafka keeps up), `slow` (the broker throttles the producer below the
intake: the queue grows) and `drain` (Kafka catches up while the load goes on). The frames
carry `service`:

- `windows`: one row per service, `WINDOW_SCHEMA`: the load's span, the slow stage's and,
  if the service died, when;
- `requests`: request rows (`load.rows.REQUEST_SCHEMA`);
- `parts`: the service's memory parts per second (`analysis.memory_parts.parts_timeline`);
- `reports`: its memory reports (`telemetry.memory_report.REPORT_SCHEMA`), for the queue's caps;
- `samples`: its processes' RSS summed per tick (`telemetry.sampler.tree_totals`);
- `records`: the topic read back (`stack.topic.RECORD_SCHEMA`): `timestamp_ms` is when the
  broker appended each record (the topic keeps LogAppendTime), so what Kafka took per second;
- `gc`: a Node program's V8 GC events (`telemetry.gc_trace.GC_SCHEMA`).

Times on the timeline are seconds from the slow stage's start (negative before it). Outcomes
are those of the faults (`analysis.faults.OUTCOMES`), with the slots the client dropped (every
worker busy for over a second, never sent) counted apart, as in the overload analysis.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from ingestlab.analysis.faults import fault_ledger, timeline
from ingestlab.analysis.memory_parts import PARTS, parts_summary
from ingestlab.load.engine import BACKLOG_ERROR
from ingestlab.quantiles import nearest_rank
from ingestlab.units import MB, MIB, NS_PER_MS, NS_PER_S

STAGES: tuple[str, ...] = ("warmup", "before", "slow", "drain")
WINDOW_SCHEMA: dict[str, pl.DataType] = {
    "service": pl.String(),
    "load_start_ns": pl.Int64(),   # the load's first intended start (wall-clock epoch ns)
    "before_start_ns": pl.Int64(),  # the warm-up over
    "slow_start_ns": pl.Int64(),   # the quota in force (its command returned)
    "slow_end_ns": pl.Int64(),     # the quota lifted (its command returned)
    "load_end_ns": pl.Int64(),     # the end of the load's schedule
    "died_ns": pl.Int64(),         # the service's process ended on its own (null: it did not)
}
# A queue at this share of one of librdkafka's caps has reached it: librdkafka refuses a message
# that would pass a cap ("Local: Queue full"), and at 1 Hz a report of a full queue finds it a
# few messages short while the broker takes some.
CAP_SHARE = 0.99
# Errors have begun in the first second of the slow stage or after it in which more than this
# share of the offered requests got an error, a timeout or no answer (a stray error is not it).
ERROR_ONSET_SHARE = 0.01
# The queue has drained once it holds no more than it did before the slowdown (its most in a
# second then), or this many messages if that was fewer (at 10 ms linger it holds tens).
DRAINED_MESSAGES = 1_000
# Kafka measures a client's rate over `quota.window.num` (11) windows of
# `quota.window.size.seconds` (1): in a quota's first 11 s the rate it measures still holds
# seconds from before the quota, so it throttles less than the quota says.
QUOTA_WINDOW_S = 11.0
# RSS "at the end": the mean over the last seconds of the load.
END_S = 5.0
_BOUNDS = ("before_start_ns", "slow_start_ns", "slow_end_ns")


def _stage(t: pl.Expr, before: pl.Expr, slow: pl.Expr, end: pl.Expr) -> pl.Expr:
    """The stage of `t` given the stages' bounds (of the same unit)."""
    return (pl.when(t < before).then(pl.lit("warmup")).when(t < slow).then(pl.lit("before"))
            .when(t < end).then(pl.lit("slow")).otherwise(pl.lit("drain")))


def with_stage(requests: pl.DataFrame, windows: pl.DataFrame) -> pl.DataFrame:
    """`requests` with `stage`: the stage (`STAGES`) of each request's intended start."""
    joined = requests.join(windows.select("service", *_BOUNDS), on="service")
    stage = _stage(pl.col("intended_start_ns"), *map(pl.col, _BOUNDS))
    return joined.with_columns(stage=stage).drop(*_BOUNDS)


def _second(t_ns: pl.Expr, every_s: float) -> pl.Expr:
    """`t_s`: the start of the `every_s` window of `t_ns` counted from the row's
    `slow_start_ns` (s; negative before it)."""
    step = round(every_s * NS_PER_S)
    return ((t_ns - pl.col("slow_start_ns")) // step * every_s).cast(pl.Float64).alias("t_s")


def backlog_timeline(requests: pl.DataFrame, windows: pl.DataFrame, *, parts: pl.DataFrame | None = None,
                     records: pl.DataFrame | None = None, gc: pl.DataFrame | None = None,
                     every_s: float = 1.0) -> pl.DataFrame:
    """Per service and window of `every_s` seconds, from the load's first to its last:

    - `t_s` (the window's start, s after the slowdown began) and `stage` (of that start);
    - the requests: `offered` (intended in it), the outcomes learnt in it (`accepted`,
      `errors_4xx`, `errors_5xx`, `timeouts`, `no_answer`), `dropped` (slots the client
      dropped, taken out of `no_answer`), `errors` (all but accepted, drops included),
      `p50_ms` and `p99_ms` (latency from the intended start of the requests intended in it
      that got an answer; null without any);
    - with `records`: `delivered` (records the broker appended in it) and `delivered_bytes`;
    - with `parts`: the memory (bytes, from the window in which the parts' own 1-s window's
      middle falls): `rss_bytes`, `cgroup_memory_bytes` in a container, `queue_messages`,
      `queue_bytes`, `heap_used_bytes`, `heap_total_bytes`, `external_bytes`, `rest_bytes`
      (null in a second without a report: the service had died, or was not asked for them);
    - with `gc`: `gc_events` and `gc_pause_ms` (collections that ended in it; 0 without).

    Sorted by service and t_s."""
    keyed = windows.select("service", *_BOUNDS)
    fault_windows = windows.select("service", fault=pl.lit("backlog"), start_ns="slow_start_ns",
                                   end_ns="slow_end_ns", load_start_ns="load_start_ns",
                                   load_end_ns="load_end_ns")
    found = timeline(requests.with_columns(fault=pl.lit("backlog")), fault_windows, every_s=every_s)
    found = found.drop("fault")
    latency_ms = (pl.col("end_ns") - pl.col("intended_start_ns")) / NS_PER_MS
    by_intended = (
        requests.join(keyed, on="service")
        .group_by("service", _second(pl.col("intended_start_ns"), every_s))
        .agg(p50_ms=nearest_rank(latency_ms.filter(pl.col("status") > 0), 0.5).cast(pl.Float64),
             dropped=(pl.col("error_class") == BACKLOG_ERROR).sum().cast(pl.Int64))
    )
    found = (
        found.join(by_intended, on=["service", "t_s"], how="left")
        .with_columns(pl.col("dropped").fill_null(0))
        # a dropped slot was never sent: the client learnt its outcome at its intended start
        .with_columns(no_answer=pl.col("no_answer") - pl.col("dropped"))
    )
    if records is not None:
        appended = (
            records.join(keyed, on="service")
            .group_by("service", _second(pl.col("timestamp_ms") * NS_PER_MS, every_s))
            .agg(delivered=pl.len().cast(pl.Int64),
                 delivered_bytes=pl.col("value_bytes").sum().cast(pl.Int64))
        )
        found = found.join(appended, on=["service", "t_s"], how="left").with_columns(
            pl.col("delivered", "delivered_bytes").fill_null(0))
    if parts is not None and not parts.is_empty():
        memory = [c for c in ("rss_bytes", "cgroup_memory_bytes", "queue_messages", "queue_bytes",
                              "heap_used_bytes", "heap_total_bytes", "external_bytes", "rest_bytes")
                  if c in parts.columns]
        half = round(0.5 * NS_PER_S)
        per_second = (
            parts.join(keyed, on="service")
            .with_columns(_second(pl.col("t_ns") + half, every_s))
            .group_by("service", "t_s").agg(pl.col(memory).mean())
        )
        found = found.join(per_second, on=["service", "t_s"], how="left")
    if gc is not None and not gc.is_empty():
        collections = (
            gc.filter(pl.col("wall_ns").is_not_null()).join(keyed, on="service")
            .group_by("service", _second(pl.col("wall_ns"), every_s))
            .agg(gc_events=pl.len().cast(pl.Int64), gc_pause_ms=pl.col("pause_ms").sum())
        )
        found = found.join(collections, on=["service", "t_s"], how="left").with_columns(
            pl.col("gc_events").fill_null(0), pl.col("gc_pause_ms").fill_null(0.0))
    # each second's stage is that of its start, on the seconds' clock
    bounds = windows.select("service", *[((pl.col(c) - pl.col("slow_start_ns")) / NS_PER_S).alias(c)
                                          for c in _BOUNDS])
    return (
        found.join(bounds, on="service")
        .with_columns(stage=_stage(pl.col("t_s"), *map(pl.col, _BOUNDS)))
        .drop(*_BOUNDS)
        .select("service", "t_s", "stage", pl.exclude("service", "t_s", "stage"))
        .sort("service", "t_s")
    )


def queue_cap(reports: pl.DataFrame, *, since_ns: int, share: float = CAP_SHARE) -> dict[str, Any] | None:
    """The first librdkafka report at or after `since_ns` (epoch ns) of a queue at one of its
    caps (`share` of `queue_messages_max` messages or of `queue_bytes_max` bytes, of the
    reporting process: each process has its queue): `t_ns`, `cap` ("messages" or "bytes",
    "messages" when both), `messages` and `bytes` then; None if the queue never got there."""
    full_messages = pl.col("queue_messages") >= share * pl.col("queue_messages_max")
    full_bytes = pl.col("queue_bytes") >= share * pl.col("queue_bytes_max")
    found = (
        reports.filter(pl.col("source") == "librdkafka", pl.col("t_ns") >= since_ns,
                       full_messages | full_bytes)
        .sort("t_ns")
        .head(1)
        .with_columns(cap=pl.when(full_messages).then(pl.lit("messages")).otherwise(pl.lit("bytes")))
    )
    if found.is_empty():
        return None
    row = found.row(0, named=True)
    return {"t_ns": row["t_ns"], "cap": row["cap"], "messages": row["queue_messages"],
            "bytes": row["queue_bytes"]}


def error_onset_s(timeline: pl.DataFrame, *, column: str = "errors",
                  share: float = ERROR_ONSET_SHARE) -> float | None:
    """The start (s after the slowdown began) of the first second from the slowdown on in which
    more than `share` of the offered requests got no 202 (`column` "errors": errors,
    timeouts, no answer, drops; or one outcome of them, e.g. "errors_5xx"); None if none
    did. `timeline`: one service's `backlog_timeline`."""
    found = timeline.filter(pl.col("t_s") >= 0, pl.col(column) > share * pl.max_horizontal("offered", 1))
    return None if found.is_empty() else float(found["t_s"].min())


def drained_s(timeline: pl.DataFrame, *, slow_s: float,
              floor_messages: int = DRAINED_MESSAGES) -> float | None:
    """Seconds from the end of the slowdown (`slow_s` after its start) to the start of the first
    second from then on whose queue holds no more messages than the most of any second
    before the slowdown, or `floor_messages` if that was fewer (0.0: already then); None
    without reports or if the queue never got back there within the run. `timeline`: one
    service's `backlog_timeline` with its memory columns."""
    if "queue_messages" not in timeline.columns:
        return None
    before = timeline.filter(pl.col("stage") == "before")["queue_messages"].drop_nulls()
    bound = max(floor_messages, float(before.max()) if not before.is_empty() else 0)
    # the second the slowdown ended in counts as after it
    after = timeline.filter(pl.col("t_s") > slow_s - 1, pl.col("queue_messages") <= bound)
    return None if after.is_empty() else max(0.0, float(after["t_s"].min()) - slow_s)


def memory_findings(timeline: pl.DataFrame, totals: pl.DataFrame, window: dict[str, Any], *,
                    end_s: float = END_S) -> dict[str, Any]:
    """One service's memory over its run (MiB): `rss_before_mib` (the mean over the before
    stage), `rss_peak_mib` (the highest sample) and `rss_peak_s` (when, s after
    the slowdown began), `rss_end_mib` (the mean over the last `end_s` of the load; None if
    the service had died), `rss_returned_share` (of what RSS grew from before to its peak,
    the share given back by the end; None without growth or end), the queue's peak
    (`queue_peak_messages`, `queue_peak_mib`), V8's (`heap_used_peak_mib`,
    `heap_total_peak_mib`, `external_peak_mib`; None without V8), the container's charge
    (`cgroup_mem_peak_mb`, 10**6 bytes; None natively) and the part that held the most of RSS
    at its peak second (`largest_at_peak`, `analysis.memory_parts.PARTS`' names; None without
    reports). `timeline`: the service's `backlog_timeline`; `totals`: its `tree_totals`
    samples; `window`: its `WINDOW_SCHEMA` row."""
    start, slow_start = window["load_start_ns"], window["slow_start_ns"]
    t = pl.col("t_ns")
    before = totals.filter(t >= window["before_start_ns"], t < slow_start)["rss_bytes"]
    loaded = totals.filter(t >= start)
    peak = loaded.row(int(loaded["rss_bytes"].arg_max()), named=True) if not loaded.is_empty() else None
    end_ns = window["load_end_ns"]
    end = loaded.filter(t >= end_ns - round(end_s * NS_PER_S), t <= end_ns)["rss_bytes"]
    if window.get("died_ns") is not None:
        end = end.clear()
    found: dict[str, Any] = {
        "rss_before_mib": float(before.mean()) / MIB if not before.is_empty() else None,
        "rss_peak_mib": peak["rss_bytes"] / MIB if peak else None,
        "rss_peak_s": (peak["t_ns"] - slow_start) / NS_PER_S if peak else None,
        "rss_end_mib": float(end.mean()) / MIB if not end.is_empty() else None,
    }
    grew = (found["rss_peak_mib"] or 0) - (found["rss_before_mib"] or 0)
    found["rss_returned_share"] = (
        (found["rss_peak_mib"] - found["rss_end_mib"]) / grew
        if grew > 0 and found["rss_end_mib"] is not None and found["rss_before_mib"] is not None else None)
    for column, name in (("queue_bytes", "queue_peak_mib"), ("heap_used_bytes", "heap_used_peak_mib"),
                         ("heap_total_bytes", "heap_total_peak_mib"),
                         ("external_bytes", "external_peak_mib")):
        peak_of = _peak(timeline, column)
        found[name] = peak_of / MIB if peak_of is not None else None
    queue = _peak(timeline, "queue_messages")
    found["queue_peak_messages"] = int(queue) if queue is not None else None
    charged = _peak(loaded, "cgroup_memory_bytes")
    found["cgroup_mem_peak_mb"] = charged / MB if charged is not None else None
    # the seconds with every part: a second without a queue report has no queue, no rest
    with_parts = (timeline.drop_nulls(["rss_bytes", "queue_bytes", "rest_bytes"])
                  if set(PARTS) <= set(timeline.columns) else pl.DataFrame())
    found["largest_at_peak"] = (parts_summary(with_parts).get("largest_at_peak")
                                if not with_parts.is_empty() else None)
    return found


def _peak(frame: pl.DataFrame, column: str) -> float | None:
    """The most of `column` in `frame` (None: no such column, or no value)."""
    if column not in frame.columns:
        return None
    values = frame[column].drop_nulls()
    return float(values.max()) if not values.is_empty() else None


def stage_ledger(requests: pl.DataFrame, records: pl.DataFrame) -> pl.DataFrame:
    """Per service and stage (`stage`, of each request's intended start; `with_stage`), the
    ledger over every request (`analysis.faults.fault_ledger`): `sent` (slots), each outcome,
    `delivered`, `lost` (202, no record), `delivered_after_error` (no 202, yet a record),
    `duplicated` (records beyond the first per request). Sorted by service, then in stage order."""
    ledger = fault_ledger(requests.rename({"stage": "fault"}), records).rename({"fault": "stage"})
    order = {stage: i for i, stage in enumerate(STAGES)}
    return ledger.sort("service", pl.col("stage").replace_strict(order, default=len(STAGES)))


def gc_share_by_stage(timeline: pl.DataFrame) -> dict[str, float]:
    """Per stage, the share of its time V8 paused the service for collections (`gc_pause_ms`
    summed over the stage's seconds, over their length); {} without GC columns. `timeline`:
    one service's `backlog_timeline`."""
    if "gc_pause_ms" not in timeline.columns:
        return {}
    shares = (
        timeline.group_by("stage")
        .agg(share=pl.col("gc_pause_ms").sum() / (pl.len() * 1_000.0))
    )
    return {row["stage"]: float(row["share"]) for row in shares.iter_rows(named=True)}


def stage_rates(timeline: pl.DataFrame) -> dict[str, dict[str, float]]:
    """Per stage (s), the mean per second of `offered`, `accepted` and, with records,
    `delivered` (records Kafka appended) and `delivered_bytes`: what was offered, what the
    service took, what Kafka took. `timeline`: one service's `backlog_timeline`."""
    columns = [c for c in ("offered", "accepted", "delivered", "delivered_bytes") if c in timeline.columns]
    means = timeline.group_by("stage").agg(pl.col(columns).mean())
    return {row["stage"]: {c: float(row[c]) for c in columns} for row in means.iter_rows(named=True)}


def throttled_bytes_per_s(timeline: pl.DataFrame, *, settle_s: float = QUOTA_WINDOW_S) -> float | None:
    """The bytes of records Kafka appended per second over the slow stage's seconds from
    `settle_s` on (the quota's measuring window then holds only throttled seconds); None
    without such seconds or without records. `timeline`: one service's `backlog_timeline`."""
    if "delivered_bytes" not in timeline.columns:
        return None
    found = timeline.filter(pl.col("stage") == "slow", pl.col("t_s") >= settle_s)["delivered_bytes"]
    return float(found.mean()) if not found.is_empty() else None
