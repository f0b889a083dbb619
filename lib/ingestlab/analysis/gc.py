"""GC pauses against request latency: which requests a V8 pause could have delayed.

Inputs are a GC frame (`ingestlab.telemetry.gc_trace.GC_SCHEMA`) and request rows
(`ingestlab.load.rows.REQUEST_SCHEMA`); every function is a pure function of them.

- A pause is the interval [wall_ns - pause_ms, wall_ns]: V8 prints a GC line right after
  the atomic pause ended, so the trace time is its end (see `telemetry.gc_trace`). The
  trace time is printed in whole ms and the wall anchor has ms resolution, so edges are
  good to about +-1 ms, provided the log's clock line carries v8_start_ms; without it
  every pause is placed tens of ms early (`GcTrace.warnings` says so). Incremental
  marking steps before a Mark-Compact's final pause are not in the window (their longest
  step is in `incremental_max_step_ms`).
- A request is on the wire during [actual_start_ns, end_ns]; it overlaps a pause when
  request start < pause end and request end > pause start. Merely touching does not count
  (a request that ended exactly when a pause began was not held up by it); a 0.00 ms pause
  counts when it falls strictly inside the request.
- Latency is end - intended start (`analysis.latency.with_timings`), over requests with an
  HTTP response, as everywhere in `analysis`.

Overlap is found with sorted searches, not a cross join: pauses are sorted and made
disjoint, each request's overlapping pauses are then one index range [first, last] found
by binary search, and only requests that overlap something are expanded to pairs. Cost is
O((requests + pauses) log pauses + overlapping pairs).
"""

from __future__ import annotations

from typing import Any

import polars as pl

from ingestlab.analysis.latency import with_timings
from ingestlab.quantiles import nearest_rank

NS_PER_MS = 1_000_000
_WINDOW_COLUMNS = ("start_ns", "end_ns", "pause_ms", "kind")


def gc_pause_windows(gc: pl.DataFrame) -> pl.DataFrame:
    """One row per GC event: pid, line_no, kind, variant, pause_ms, start_ns, end_ns
    (epoch ns: end = wall_ns, start = end - pause), sorted by start_ns.

    Raises ValueError if an event has no wall time: the log had no clock line for its
    process, so its pauses cannot be placed next to requests.
    """
    unplaced = gc.filter(pl.col("wall_ns").is_null()).height
    if unplaced:
        raise ValueError(f"{unplaced} GC events have no wall time (no `clock` line for their pid "
                         "in the log); cannot place their pauses")
    return gc.select(
        "pid",
        "line_no",
        "kind",
        "variant",
        "pause_ms",
        start_ns=pl.col("wall_ns") - (pl.col("pause_ms") * NS_PER_MS).round().cast(pl.Int64),
        end_ns=pl.col("wall_ns"),
    ).sort("start_ns", "end_ns")


def _disjoint(windows: pl.DataFrame) -> pl.DataFrame:
    """Windows merged where they overlap, so starts and ends are both ascending.

    Pauses of one isolate never overlap, but ms rounding can make neighbours overlap
    slightly, and two isolates (worker threads) pause independently. A merged window keeps the kind of its
    longest member (the earliest of equals) and the sum of the members' pauses.
    """
    ordered = windows.sort("start_ns", "end_ns")
    # A window opens a new group unless it starts before every earlier window has ended.
    earlier_end = pl.col("end_ns").cum_max().shift(1)
    grouped = ordered.with_columns(
        group=(earlier_end.is_null() | (pl.col("start_ns") >= earlier_end)).cum_sum()
    )
    return (
        grouped.group_by("group", maintain_order=True)
        .agg(
            start_ns=pl.col("start_ns").min(),
            end_ns=pl.col("end_ns").max(),
            pause_ms=pl.col("pause_ms").sum(),
            kind=pl.col("kind").sort_by("pause_ms", descending=True, maintain_order=True).first(),
        )
        .select(_WINDOW_COLUMNS)
    )


def requests_during_gc(requests: pl.DataFrame, gc: pl.DataFrame) -> pl.DataFrame:
    """Measured-phase request rows plus:

    - `during_gc` (bool): [actual_start, end] overlaps at least one pause. False for a
      request lacking either timestamp (never sent, or no outcome recorded).
    - `gc_kind`: kind of the pause that overlaps the request longest (the earlier one of
      equals); null if none.
    - `gc_pauses` (u32): how many (merged) pauses it overlaps.
    - `gc_overlap_ms`: total time it spent overlapping pauses, ms (0.0 if none).
    """
    windows = _disjoint(gc_pause_windows(gc)).with_row_index("window")
    rows = requests.filter(pl.col("phase") == "measure").with_row_index("__row")
    starts, ends = windows["start_ns"], windows["end_ns"]
    sent = rows.filter(pl.col("actual_start_ns").is_not_null() & pl.col("end_ns").is_not_null())
    # Overlap means start < request end and end > request start. With disjoint windows the
    # overlapping ones are the consecutive range first..last:
    # first = number of windows ending at or before the request's start,
    # last = (number of windows starting before the request's end) - 1.
    ranges = sent.select(
        "__row",
        "actual_start_ns",
        "end_ns",
        first=ends.search_sorted(sent["actual_start_ns"], side="right").cast(pl.Int64),
        last=starts.search_sorted(sent["end_ns"], side="left").cast(pl.Int64) - 1,
    ).filter(pl.col("last") >= pl.col("first"))
    pairs = (
        ranges.with_columns(window=pl.int_ranges("first", pl.col("last") + 1, dtype=pl.UInt32))
        .explode("window")
        .join(windows, on="window", how="left", suffix="_gc")
        .with_columns(
            overlap_ns=pl.min_horizontal("end_ns", "end_ns_gc")
            - pl.max_horizontal("actual_start_ns", "start_ns")
        )
    )
    per_request = pairs.group_by("__row").agg(
        gc_kind=pl.col("kind").sort_by("overlap_ns", descending=True, maintain_order=True).first(),
        gc_pauses=pl.len(),
        gc_overlap_ms=pl.col("overlap_ns").sum().cast(pl.Float64) / NS_PER_MS,
    )
    return (
        rows.join(per_request, on="__row", how="left")
        .with_columns(
            during_gc=pl.col("gc_pauses").is_not_null(),
            gc_pauses=pl.col("gc_pauses").fill_null(0),
            gc_overlap_ms=pl.col("gc_overlap_ms").fill_null(0.0),
        )
        .sort("__row")
        .select(*requests.columns, "during_gc", "gc_kind", "gc_pauses", "gc_overlap_ms")
    )


def gc_latency_summary(requests: pl.DataFrame, gc: pl.DataFrame) -> dict[str, Any]:
    """How much of the latency tail coincides with GC pauses.

    Latency keys (ms, nearest rank, measured phase, requests with an HTTP response):
    `requests`, `requests_during_gc`, `share_during_gc` (of all those requests), `p99_ms`
    (all), `p99_outside_gc_ms` (requests overlapping no pause), `p99_during_gc_ms`, and
    `share_of_slow_requests_during_gc`: of the requests slower than the overall p99, the
    fraction that overlapped a pause (null if none is slower). Compare it with
    `share_during_gc`: a slow request overlaps some pause more often just by lasting
    longer, and when the service is saturated (requests of seconds) nearly every slow
    request does, whatever the cause.

    GC keys, over the pauses that overlap the measured requests' span (first actual start
    to last end), so start-up collections do not count: `gc_events`, `gc_pause_p99_ms`,
    `gc_pause_max_ms`, `gc_pause_total_ms`, `gc_time_share` (total pause / span), and per
    kind `pause_total_ms_by_kind` and `events_by_kind`.
    """
    rows = with_timings(requests_during_gc(requests, gc)).filter(pl.col("status") > 0)
    latency = pl.col("latency_ms")
    stats = rows.select(
        requests=pl.len(),
        requests_during_gc=pl.col("during_gc").sum(),
        share_during_gc=pl.col("during_gc").mean(),
        p99_ms=nearest_rank(latency, 0.99),
        p99_outside_gc_ms=nearest_rank(latency.filter(~pl.col("during_gc")), 0.99),
        p99_during_gc_ms=nearest_rank(latency.filter(pl.col("during_gc")), 0.99),
    ).row(0, named=True)
    slow = rows.filter(latency > stats["p99_ms"]) if stats["p99_ms"] is not None else rows.clear()
    share = slow["during_gc"].mean() if slow.height else None

    measured = requests.filter(pl.col("phase") == "measure")
    return {
        **stats,
        "share_of_slow_requests_during_gc": share,
        **gc_pause_summary(gc, measured["actual_start_ns"].min(), measured["end_ns"].max()),
    }


def gc_pause_summary(gc: pl.DataFrame, span_start_ns: int | None, span_end_ns: int | None) -> dict[str, Any]:
    """The GC keys of `gc_latency_summary` over the pauses that overlap the span from
    `span_start_ns` to `span_end_ns` (epoch ns; None: no span, no pauses): `gc_events`,
    `gc_pause_p99_ms`, `gc_pause_max_ms`, `gc_pause_total_ms`, `gc_time_share` (total pause
    / span), `pause_total_ms_by_kind` and `events_by_kind`."""
    pauses = gc_pause_windows(gc)
    if span_start_ns is None or span_end_ns is None:
        pauses, span_ms = pauses.clear(), None
    else:
        pauses = pauses.filter((pl.col("start_ns") < span_end_ns) & (pl.col("end_ns") > span_start_ns))
        span_ms = (span_end_ns - span_start_ns) / NS_PER_MS
    by_kind = pauses.group_by("kind").agg(total=pl.col("pause_ms").sum(), events=pl.len()).sort("kind")
    total_ms = float(pauses["pause_ms"].sum())
    return {
        "gc_events": pauses.height,
        "gc_pause_p99_ms": pauses.select(nearest_rank(pl.col("pause_ms"), 0.99)).item(),
        "gc_pause_max_ms": pauses["pause_ms"].max(),
        "gc_pause_total_ms": total_ms,
        "gc_time_share": total_ms / span_ms if span_ms else None,
        "pause_total_ms_by_kind": dict(zip(by_kind["kind"], by_kind["total"], strict=True)),
        "events_by_kind": dict(zip(by_kind["kind"], by_kind["events"], strict=True)),
    }


def in_flight_per_pause(requests: pl.DataFrame, gc: pl.DataFrame) -> pl.DataFrame:
    """`gc_pause_windows(gc)` plus `in_flight`: requests on the wire during the pause.

    A request counts when [actual_start, end] overlaps the pause as in
    `requests_during_gc`. All phases count (a warm-up request in flight is still held
    up); requests lacking either timestamp do not. Computed as
    #(start < pause end) - #(end <= pause start): every request ending before the pause
    began also started before it ended, so the difference is exactly the overlapping ones.
    """
    windows = gc_pause_windows(gc)
    sent = requests.filter(pl.col("actual_start_ns").is_not_null() & pl.col("end_ns").is_not_null())
    started = sent["actual_start_ns"].sort()
    ended = sent["end_ns"].sort()
    return windows.with_columns(
        in_flight=(
            started.search_sorted(windows["end_ns"], side="left").cast(pl.Int64)
            - ended.search_sorted(windows["start_ns"], side="right").cast(pl.Int64)
        )
    )
