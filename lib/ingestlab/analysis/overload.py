"""A service held above its ceiling (`experiments.overload`), as pure polars functions of its
frames. Each leg is one service at one offered rate; the frames carry `service` and
`offered_rps` (req/s) to say which:

- `requests`: request rows (`load.rows.REQUEST_SCHEMA`);
- `legs`: one row per leg, `LEG_SCHEMA`: when its load was scheduled to start and end;
- `samples`: the service's own process sampled (`telemetry.sampler`);
- `gc`: a Node program's V8 GC events (`telemetry.gc_trace`);
- `records`: the topic read back (`stack.topic.RECORD_SCHEMA`).

Outcomes are those of the faults (`analysis.faults.OUTCOMES`), with the slots the client
dropped (every worker busy for over `max_lag_s`, never sent) told apart from the requests
that were sent and got no answer.
"""

from __future__ import annotations

import polars as pl

from ingestlab.analysis.faults import OUTCOMES, fault_ledger, outcome, timeline
from ingestlab.analysis.memory import heap_series
from ingestlab.load.engine import BACKLOG_ERROR, SATURATION_LAG_P99_MS
from ingestlab.quantiles import nearest_rank
from ingestlab.units import MIB, NS_PER_MS, NS_PER_S

LEG_KEYS: tuple[str, ...] = ("service", "offered_rps")
LEG_SCHEMA: dict[str, pl.DataType] = {
    "service": pl.String(),
    "offered_rps": pl.Float64(),
    "start_ns": pl.Int64(),  # the load's first intended start (wall-clock epoch ns)
    "end_ns": pl.Int64(),    # the end of its schedule
}
# A late send (send lag over SATURATION_LAG_P99_MS) is the generator's when fewer than this
# share of the other workers had a request outstanding: a worker was free but did not send on
# time. Above the ceiling the pool is full and each worker sends the moment its answer arrives.
FREE_POOL_SHARE = 0.9
# The share of sends late with workers free beyond which the generator held the rate back.
GENERATOR_LATE_SHARE = 0.01


def _as_faults(frame: pl.DataFrame) -> pl.DataFrame:
    """`frame` with each leg as a `fault` column: `analysis.faults` groups by service and fault."""
    return frame.with_columns(fault=pl.col("offered_rps").cast(pl.String))


def _from_faults(frame: pl.DataFrame) -> pl.DataFrame:
    """The reverse of `_as_faults` on a frame `analysis.faults` computed."""
    return frame.with_columns(offered_rps=pl.col("fault").cast(pl.Float64)).drop("fault")


def overload_ledger(requests: pl.DataFrame, records: pl.DataFrame) -> pl.DataFrame:
    """One row per leg (service, offered_rps) over all its requests, warm-up included:
    `sent` (slots), each outcome, `accepted`, `delivered`, `accepted_not_delivered` (202, no
    record), `delivered_after_client_error` (no 202, yet a record: an error, a timeout or no
    answer), `duplicated` (records beyond the first per request)
    (`analysis.faults.fault_ledger`)."""
    ledger = fault_ledger(_as_faults(requests), records).rename(
        {"lost": "accepted_not_delivered", "delivered_after_error": "delivered_after_client_error"})
    return _from_faults(ledger).select(*LEG_KEYS, pl.exclude(LEG_KEYS))


def rate_stats(requests: pl.DataFrame) -> pl.DataFrame:
    """One row per leg over its measured phase (`phase` "measure"): `offered` (slots),
    `sent`, `accepted`, `errors` (answered other than 202, or refused, reset or cut off),
    `timeouts`, `dropped` (slots the client never sent), `achieved_rps` (202s per second of
    the schedule: offered_rps x accepted / offered), `error_rate` and `timeout_rate` (of
    `sent`), `dropped_rate` (of `offered`), `p99_ms` (answered requests, from the intended
    start; null without any)."""
    latency_ms = (pl.col("end_ns") - pl.col("intended_start_ns")) / NS_PER_MS
    kind = pl.col("outcome")
    dropped = pl.col("error_class") == BACKLOG_ERROR
    return (
        requests.filter(pl.col("phase") == "measure")
        .with_columns(outcome=outcome())
        .group_by(LEG_KEYS, maintain_order=True)
        .agg(
            offered=pl.len(),
            sent=pl.col("actual_start_ns").is_not_null().sum(),
            accepted=(kind == "accepted").sum(),
            errors=(kind.is_in(["errors_4xx", "errors_5xx"]) | ((kind == "no_answer") & ~dropped)).sum(),
            timeouts=(kind == "timeouts").sum(),
            dropped=dropped.sum(),
            p99_ms=nearest_rank(latency_ms.filter(pl.col("status") > 0), 0.99),
        )
        .with_columns(pl.col("offered", "sent", "accepted", "errors", "timeouts", "dropped").cast(pl.Int64))
        .with_columns(
            achieved_rps=pl.col("offered_rps") * pl.col("accepted") / pl.col("offered"),
            error_rate=pl.col("errors") / pl.max_horizontal("sent", 1),
            timeout_rate=pl.col("timeouts") / pl.max_horizontal("sent", 1),
            dropped_rate=pl.col("dropped") / pl.col("offered"),
            p99_ms=pl.col("p99_ms").cast(pl.Float64),
        )
    )


def late_with_free_workers(rows: pl.DataFrame, *, max_in_flight: int,
                           lag_bound_ms: float = SATURATION_LAG_P99_MS) -> float:
    """The share of one leg's measured sends that went out over `lag_bound_ms` late while
    fewer than `FREE_POOL_SHARE` of the other `max_in_flight` - 1 workers had a request
    outstanding (0.0 without sends): lateness of the generator, not of a full pool waiting on
    the service.

    In flight at a send: requests sent before it (actual start) and not yet finished (end).
    """
    sent = rows.filter(pl.col("actual_start_ns").is_not_null())
    measured = sent.filter(pl.col("phase") == "measure")
    if measured.is_empty():
        return 0.0
    starts = sent["actual_start_ns"].sort()
    # a request cut off by the engine's deadline never ended: it stays in flight
    ends = sent["end_ns"].drop_nulls().sort()
    at = measured["actual_start_ns"]
    in_flight = starts.search_sorted(at, side="left") - ends.search_sorted(at, side="right")
    lag_ms = (measured["actual_start_ns"] - measured["intended_start_ns"]) / NS_PER_MS
    late_and_free = (lag_ms > lag_bound_ms) & (in_flight < FREE_POOL_SHARE * (max_in_flight - 1))
    return float(late_and_free.sum()) / measured.height


def overload_timeline(requests: pl.DataFrame, legs: pl.DataFrame, *, every_s: float = 1.0) -> pl.DataFrame:
    """Per leg and window of `every_s` seconds: `t_s` (its start, s after the load's start),
    `offered` (requests intended in it), the requests of each outcome the client learnt in it
    (`analysis.faults.OUTCOMES`: accepted, errors_4xx, errors_5xx, timeouts, no_answer),
    `dropped` (slots intended in it that the client dropped, taken out of no_answer), `errors`
    (all but accepted, drops included) and `p99_ms` (`analysis.faults.timeline`). Sorted by
    service, offered_rps and t_s."""
    windows = _as_faults(legs.select(*LEG_KEYS, "start_ns", "end_ns", load_start_ns="start_ns",
                                     load_end_ns="end_ns"))
    found = timeline(_as_faults(requests), windows, every_s=every_s)
    # a dropped slot was never sent: the client learnt its outcome at its intended start
    drops = timeline(_as_faults(requests.filter(pl.col("error_class") == BACKLOG_ERROR)), windows,
                     every_s=every_s).select("service", "fault", "t_s", dropped="no_answer")
    return (
        _from_faults(
            found.join(drops, on=["service", "fault", "t_s"], how="left")
            .with_columns(pl.col("dropped").fill_null(0))
            .with_columns(no_answer=pl.col("no_answer") - pl.col("dropped"))
        )
        .select(*LEG_KEYS, "t_s", "offered", *OUTCOMES, "dropped", "errors", "p99_ms")
        .sort(*LEG_KEYS, "t_s")
    )


def memory_timeline(samples: pl.DataFrame, legs: pl.DataFrame, gc: pl.DataFrame | None = None
                    ) -> pl.DataFrame:
    """The service's memory over each leg, long: service, offered_rps, `series` ("RSS"; with
    cgroup samples "cgroup", the container's charge; with `gc`, "V8 heap": the objects
    before and after each collection, `analysis.memory.heap_series`), `t_s` (s after the
    load's start; negative while the service rested before it) and `mib`. Sorted by leg,
    series and t_s."""
    parts = [samples.select(*LEG_KEYS, "t_ns", series=pl.lit("RSS"), value="rss_bytes")]
    if "cgroup_memory_bytes" in samples.columns:
        parts.append(samples.select(*LEG_KEYS, "t_ns", series=pl.lit("cgroup"), value="cgroup_memory_bytes"))
    if gc is not None and not gc.is_empty():
        # heap_series keeps `service` alone: one leg at a time, to keep its rate
        parts += [
            heap_series(leg).select("service", offered_rps=pl.lit(rate, pl.Float64), t_ns="t_ns",
                                    series=pl.lit("V8 heap"), value="heap_bytes")
            for (_, rate), leg in gc.partition_by(LEG_KEYS, as_dict=True).items()
        ]
    return (
        pl.concat(parts, how="vertical_relaxed")
        .drop_nulls("value")
        .join(legs.select(*LEG_KEYS, "start_ns"), on=list(LEG_KEYS))
        .select(*LEG_KEYS, "series", t_s=(pl.col("t_ns") - pl.col("start_ns")) / NS_PER_S,
                mib=pl.col("value") / MIB)
        .sort(*LEG_KEYS, "series", "t_s")
    )
