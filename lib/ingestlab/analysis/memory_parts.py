"""A service's memory taken apart over time: which part holds it, which part grew.

Inputs: the service's own memory reports (`telemetry.memory_report`: librdkafka's producer
queue from its statistics, and for Node `process.memoryUsage()`) and the sampler's RSS
(`telemetry.sampler.tree_totals`: summed over the service's processes, with the cgroup's
charge in a container). Both are put on one clock in windows of `every` (1 s by default):
reports of several processes (a cluster's or Python's workers) are summed per window.

The parts, in bytes:

- `queue_bytes` (`queue_messages`): what librdkafka holds between produce() and the delivery
  report, native memory outside any language's heap (the article's own Node comment: "node-
  rdkafka buffers messages in native C++ memory");
- `heap_total_bytes` (`heap_used_bytes` within it): V8's heap, committed (Node only);
- `external_bytes`: C++ objects bound to JS objects, Buffers included (Node only);
- `rest_bytes` = RSS - heap_total - external - queue: code, stacks, the allocators' free
  lists and fragmentation, librdkafka's own buffers beyond the payload bytes. An estimate:
  the parts are each process's own account, not pages, so it can dip below 0 by a little.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from ingestlab.analysis.memory import memory_slope
from ingestlab.units import MIB

# The parts, in the order a stacked chart draws them (bottom first), and what each is.
PARTS: dict[str, str] = {
    "queue_bytes": "librdkafka producer queue",
    "heap_total_bytes": "V8 heap",
    "external_bytes": "V8 external (Buffers)",
    "rest_bytes": "the rest of RSS",
}
_SUMMED = ("queue_messages", "queue_bytes", "outbuf_messages", "waitresp_messages", "heap_used_bytes",
           "heap_total_bytes", "external_bytes")


def parts_timeline(reports: pl.DataFrame, totals: pl.DataFrame, *, every: str = "1s") -> pl.DataFrame:
    """One row per window of `every` with reports: `t_ns` (window start, epoch ns), `rss_bytes`
    (the sampler's, mean in the window), the cgroup's `cgroup_memory_bytes` where sampled,
    the report columns summed over the service's processes (each process's last report in
    the window; null where no report of the window carries the column), `queue_bytes_max`
    (the cap), and `rest_bytes`; empty without reports."""
    if reports.is_empty():
        return pl.DataFrame()
    window = pl.col("t_ns").cast(pl.Datetime("ns")).dt.truncate(every).cast(pl.Int64)
    per_process = (reports.with_columns(window.alias("window"))
                   .sort("t_ns")
                   .group_by("window", "pid", "source").agg(pl.all().exclude("t_ns").last()))
    # a column no report of the window carries (no librdkafka report in it: they come about once
    # a period, late when a process is busy) is null there, not a sum of nothing (0)
    parts = per_process.group_by("window").agg(
        *[pl.when(pl.col(c).is_not_null().any()).then(pl.col(c).sum()).alias(c) for c in _SUMMED],
        pl.col("queue_bytes_max").max(),
        has_v8=(pl.col("source") == "v8").any())
    memory = [c for c in ("rss_bytes", "cgroup_memory_bytes") if c in totals.columns]
    sampled = (totals.with_columns(window.alias("window"))
               .group_by("window").agg(pl.col(c).mean() for c in memory))
    timeline = parts.join(sampled, on="window", how="inner").rename({"window": "t_ns"}).sort("t_ns")
    v8 = pl.when(pl.col("has_v8"))
    return timeline.with_columns(
        **{c: v8.then(pl.col(c)) for c in ("heap_total_bytes", "heap_used_bytes", "external_bytes")},
    ).with_columns(
        rest_bytes=pl.col("rss_bytes") - pl.col("queue_bytes")
        - pl.col("heap_total_bytes").fill_null(0) - pl.col("external_bytes").fill_null(0),
    ).drop("has_v8")


def parts_summary(timeline: pl.DataFrame) -> dict[str, Any]:
    """The parts' mean and peak over `timeline` (MiB; messages as counts), the part that grew
    most from the first to the last fifth of the window (`grew_most`, with its growth in MiB),
    and the part that held the most at RSS's peak (`largest_at_peak`); {} without reports."""
    if timeline.is_empty():
        return {}
    found: dict[str, Any] = {}
    for column in ("rss_bytes", *PARTS, "heap_used_bytes"):
        values = timeline[column].drop_nulls()
        if values.is_empty():
            continue
        name = column.removesuffix("_bytes")
        found[f"{name}_mean_mib"] = float(values.mean()) / MIB
        found[f"{name}_peak_mib"] = float(values.max()) / MIB
    messages = timeline["queue_messages"].max()
    found["queue_messages_peak"] = None if messages is None else int(messages)
    growth = {}
    for part in PARTS:
        # a window without a report of the part has none (null): the fifths are of its reports
        values = timeline[part].drop_nulls()
        fifth = max(1, values.len() // 5)
        if not values.is_empty():
            growth[part] = (float(values.tail(fifth).mean()) - float(values.head(fifth).mean())) / MIB
    if growth:
        grew = max(growth, key=growth.get)
        found["grew_most"], found["grew_most_mib"] = PARTS[grew], growth[grew]
    # RSS's peak among the windows with every part the service reports: in a window without a
    # queue report the queue and the rest are null, and the heap alone would look the largest
    reported = [part for part in PARTS if timeline[part].null_count() < timeline.height]
    complete = timeline.drop_nulls(["rss_bytes", *reported])
    if reported and not complete.is_empty():
        at_peak = complete.row(int(complete["rss_bytes"].arg_max()), named=True)
        held = {part: at_peak[part] for part in reported}
        found["largest_at_peak"] = PARTS[max(held, key=held.get)]
    return found


def part_slopes(timeline: pl.DataFrame, **fit: Any) -> dict[str, Any]:
    """Each part's trend over `timeline` (`analysis.memory.memory_slope`, its keyword
    arguments in `fit`), MiB per hour: part name (`queue`, `heap_total`, `heap_used`,
    `external`, `rest`) -> `slope_mib_per_h`, `ci_mib_per_h` ([low, high]); a part without
    values or with too few windows is left out; {} without reports."""
    found: dict[str, Any] = {}
    if timeline.is_empty():
        return found
    for column in (*PARTS, "heap_used_bytes"):
        slope = memory_slope(timeline, value=column, **fit)
        if slope is not None:
            found[column.removesuffix("_bytes")] = {
                "slope_mib_per_h": slope["slope_per_h"] / MIB,
                "ci_mib_per_h": [bound / MIB for bound in slope["ci_per_h"]],
            }
    return found
