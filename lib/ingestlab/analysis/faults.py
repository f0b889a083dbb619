"""What a fault did to a service (`experiments.faults`), as pure polars functions of its frames.

- `requests`: request rows (`load.rows.REQUEST_SCHEMA`) with `service` and `fault`;
- `windows`: one row per service and fault, `WINDOW_SCHEMA`: when the fault began and ended,
  and when its load began and was scheduled to end (wall-clock epoch ns, as the rows);
- `samples`: the service's own process sampled (`telemetry.sampler`), with `service`;
- `records`: the topic read back (`stack.topic.RECORD_SCHEMA`).

Every request has one outcome (`OUTCOMES`): `accepted` (202), `errors_4xx`, `errors_5xx` (a
5xx, or any other answer that is not 202: the services send none), `timeouts` (no answer within
the client's timeout) or `no_answer` (refused, reset, closed, or dropped by the client as too
late to send). Offered requests are counted in the second of their intended start, outcomes in
the second the client learnt them (the answer's arrival; the intended start for a request
never sent): during a pause the 202s stop while requests keep being offered.
"""

from __future__ import annotations

import polars as pl

from ingestlab.analysis.delivery import with_copies
from ingestlab.quantiles import nearest_rank
from ingestlab.units import MIB, NS_PER_MS, NS_PER_S

OUTCOMES: tuple[str, ...] = ("accepted", "errors_4xx", "errors_5xx", "timeouts", "no_answer")
ERRORS: tuple[str, ...] = OUTCOMES[1:]
# The error_class the load engine records for a request that got no answer in time.
TIMEOUT_ERROR = "TimeoutError"
# Recovered: 202s at least this share of the offered requests in a second, and no errors.
RECOVERED_SHARE = 0.95

WINDOW_SCHEMA: dict[str, pl.DataType] = {
    "service": pl.String(),
    "fault": pl.String(),
    "start_ns": pl.Int64(),       # fault injected
    "end_ns": pl.Int64(),         # fault over (resumed, restarted, cleared, exited)
    "load_start_ns": pl.Int64(),  # first intended start of the fault's load
    "load_end_ns": pl.Int64(),    # end of its schedule (the last run's start + duration)
}


def outcome() -> pl.Expr:
    """The outcome (`OUTCOMES`) of each request row, from `status` and `error_class`."""
    status = pl.col("status")
    return (
        pl.when(status == 202).then(pl.lit("accepted"))
        .when(status.is_between(400, 499)).then(pl.lit("errors_4xx"))
        .when(status > 0).then(pl.lit("errors_5xx"))
        .when(pl.col("error_class") == TIMEOUT_ERROR).then(pl.lit("timeouts"))
        .otherwise(pl.lit("no_answer"))
    )


def _learnt_ns() -> pl.Expr:
    """When the client learnt a request's outcome: its end, or its intended start if it was
    never sent (no end)."""
    return pl.coalesce("end_ns", "intended_start_ns")


def _window(column: pl.Expr, origin_ns: pl.Expr | int, every_s: float) -> pl.Expr:
    """The index of the `every_s` window, counted from `origin_ns`, that `column` (ns) falls
    in (negative before the origin)."""
    return (column - origin_ns) // round(every_s * NS_PER_S)


def timeline(requests: pl.DataFrame, windows: pl.DataFrame, *, every_s: float = 1.0) -> pl.DataFrame:
    """Per service, fault and window of `every_s` seconds: `t_s` (its start, s after the
    fault's start; negative before it), `offered` (requests intended in it), the requests of
    each outcome learnt in it (`OUTCOMES`), `errors` (all but accepted) and `p99_ms`
    (latency from the intended start of the requests intended in it that got an answer).
    Every window from a fault's first to its last is there (zeros where nothing happened).
    Sorted by service, fault and t_s."""
    keys = ["service", "fault"]
    rows = requests.join(windows.select(*keys, "start_ns"), on=keys).with_columns(outcome=outcome())
    latency_ms = (pl.col("end_ns") - pl.col("intended_start_ns")) / NS_PER_MS
    offered = (
        rows.group_by(*keys, w=_window(pl.col("intended_start_ns"), pl.col("start_ns"), every_s))
        .agg(offered=pl.len(), p99_ms=nearest_rank(latency_ms.filter(pl.col("status") > 0), 0.99))
    )
    learnt = (
        rows.group_by(*keys, w=_window(_learnt_ns(), pl.col("start_ns"), every_s))
        .agg(**{name: (pl.col("outcome") == name).sum() for name in OUTCOMES})
    )
    found = offered.join(learnt, on=[*keys, "w"], how="full", coalesce=True)
    # Every window from a fault's first to its last, so a gap in the load shows as zeros.
    grid = (
        found.group_by(keys)
        .agg(w=pl.int_range(pl.col("w").min(), pl.col("w").max() + 1))
        .explode("w")
    )
    counts = ["offered", *OUTCOMES]
    return (
        grid.join(found, on=[*keys, "w"], how="left")
        .with_columns(pl.col(counts).fill_null(0).cast(pl.Int64),
                      t_s=(pl.col("w") * every_s).cast(pl.Float64))
        .with_columns(errors=pl.sum_horizontal(ERRORS))
        .select(*keys, "t_s", *counts, "errors", "p99_ms")
        .sort(*keys, "t_s")
    )


def recovery_s(rows: pl.DataFrame, *, fault_end_ns: int, load_end_ns: int, every_s: float = 1.0,
               share: float = RECOVERED_SHARE) -> float | None:
    """Seconds from the end of a fault to the first window from which every window has
    202s >= `share` of the offered requests and no errors; 0.0 if the first already does.

    `rows` are one fault's request rows. Windows of `every_s` start at `fault_end_ns`; only
    whole windows before `load_end_ns` (the end of the load's schedule) count, since answers
    after it have no offered requests to match. None when no whole window fits, or the last
    one still fails (not recovered within the run).
    """
    windows = int((load_end_ns - fault_end_ns) / NS_PER_S // every_s)
    if windows < 1:
        return None
    offered = (
        rows.filter(pl.col("intended_start_ns") >= fault_end_ns)
        .group_by(k=_window(pl.col("intended_start_ns"), fault_end_ns, every_s))
        .agg(offered=pl.len())
    )
    learnt = (
        rows.with_columns(at=_learnt_ns(), outcome=outcome())
        .filter(pl.col("at") >= fault_end_ns)
        .group_by(k=_window(pl.col("at"), fault_end_ns, every_s))
        .agg(accepted=(pl.col("outcome") == "accepted").sum(), errors=(pl.col("outcome") != "accepted").sum())
    )
    grid = (
        pl.DataFrame({"k": range(windows)}, schema={"k": pl.Int64})
        .join(offered, on="k", how="left")
        .join(learnt, on="k", how="left")
        .fill_null(0)
    )
    failing = grid.filter((pl.col("accepted") < share * pl.col("offered")) | (pl.col("errors") > 0))["k"]
    if failing.is_empty():
        return 0.0
    last_failing = int(failing.max())  # type: ignore[arg-type]
    return None if last_failing == windows - 1 else (last_failing + 1) * every_s


def fault_ledger(requests: pl.DataFrame, records: pl.DataFrame) -> pl.DataFrame:
    """One row per service and fault: `sent`, each outcome (`OUTCOMES`), `delivered`
    (accepted, found in Kafka), `lost` (accepted, not found), `delivered_after_error` (not
    accepted, found: the client saw an error or gave up, the service produced it anyway)
    and `duplicated` (records beyond the first per request). Records of other request ids
    are ignored."""
    rows = with_copies(requests.select("service", "fault", "request_id", "status", "error_class"), records)
    accepted = pl.col("outcome") == "accepted"
    found = pl.col("copies") > 0
    return (
        rows.with_columns(outcome=outcome())
        .group_by("service", "fault", maintain_order=True)
        .agg(
            sent=pl.len(),
            **{name: (pl.col("outcome") == name).sum() for name in OUTCOMES},
            delivered=(accepted & found).sum(),
            lost=(accepted & ~found).sum(),
            delivered_after_error=(~accepted & found).sum(),
            duplicated=(pl.col("copies") - 1).clip(lower_bound=0).sum(),
        )
        .with_columns(pl.exclude("service", "fault").cast(pl.Int64))
    )


def status_counts(requests: pl.DataFrame) -> pl.DataFrame:
    """Requests per service, fault and HTTP status (0: no answer), as `requests`."""
    return (
        requests.group_by("service", "fault", "status")
        .agg(requests=pl.len().cast(pl.Int64))
        .sort("service", "fault", "status")
    )


def latency_around(requests: pl.DataFrame, windows: pl.DataFrame) -> pl.DataFrame:
    """Per service and fault: `p99_before_ms`, the p99 latency of the requests intended
    before the fault began, and `p99_during_ms`, of those intended from its start to its end
    (ms from the intended start, over requests with an answer; null without any)."""
    keys = ["service", "fault"]
    latency_ms = (pl.col("end_ns") - pl.col("intended_start_ns")) / NS_PER_MS
    intended = pl.col("intended_start_ns")
    during = intended.is_between(pl.col("fault_start_ns"), pl.col("fault_end_ns"))
    # the window's end under a name of its own: the rows' `end_ns` is each request's
    fault = windows.select(*keys, fault_start_ns="start_ns", fault_end_ns="end_ns")
    answered = requests.filter(pl.col("status") > 0).join(fault, on=keys)
    found = answered.group_by(keys).agg(
        p99_before_ms=nearest_rank(latency_ms.filter(intended < pl.col("fault_start_ns")), 0.99),
        p99_during_ms=nearest_rank(latency_ms.filter(during), 0.99),
    )
    return (
        windows.select(keys)
        .join(found, on=keys, how="left")
        .with_columns(pl.col("p99_before_ms", "p99_during_ms").cast(pl.Float64))
    )


def rss_around(samples: pl.DataFrame, windows: pl.DataFrame) -> pl.DataFrame:
    """Per service and fault: `rss_before_mib`, the last sample before the fault began, and
    `rss_peak_mib`, the highest from its start to the end of its load or of the fault,
    whichever is later (MiB; null without samples there)."""
    keys = ["service", "fault"]
    joined = samples.select("service", "t_ns", "rss_bytes").join(windows, on="service")
    before = (
        joined.filter(pl.col("t_ns") < pl.col("start_ns"))
        .group_by(keys)
        .agg(rss_before_mib=pl.col("rss_bytes").sort_by("t_ns").last() / MIB)
    )
    until = pl.max_horizontal("load_end_ns", "end_ns")
    during = (
        joined.filter(pl.col("t_ns").is_between(pl.col("start_ns"), until))
        .group_by(keys)
        .agg(rss_peak_mib=pl.col("rss_bytes").max() / MIB)
    )
    return (
        windows.select(keys)
        .join(before, on=keys, how="left")
        .join(during, on=keys, how="left")
        .with_columns(pl.col("rss_before_mib", "rss_peak_mib").cast(pl.Float64))
    )


def rss_timeline(samples: pl.DataFrame, windows: pl.DataFrame) -> pl.DataFrame:
    """The service's RSS (MiB) over each fault's load: service, fault, `t_s` (s after the
    fault's start), `rss_mib`; the samples from the load's start to the end of its load or
    of the fault, whichever is later."""
    until = pl.max_horizontal("load_end_ns", "end_ns")
    return (
        samples.select("service", "t_ns", "rss_bytes")
        .join(windows, on="service")
        .filter(pl.col("t_ns").is_between(pl.col("load_start_ns"), until))
        .select("service", "fault", t_s=(pl.col("t_ns") - pl.col("start_ns")) / NS_PER_S,
                rss_mib=pl.col("rss_bytes") / MIB)
        .sort("service", "fault", "t_s")
    )
