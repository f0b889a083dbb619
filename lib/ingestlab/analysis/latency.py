"""Latency analysis of request rows (`ingestlab.load.rows.REQUEST_SCHEMA`), in polars.

Every function is a pure function of the rows frame. Three durations per request, in ms:

- `latency_ms` = end - intended start: what a client on the schedule experienced, waiting
  included (coordinated-omission corrected). This is the latency every table here reports.
- `service_time_ms` = end - actual start: the request's own round trip.
- `lag_ms` = actual start - intended start: how late the load engine sent it.

Percentiles are nearest-rank (`nearest_rank`): the q-quantile of n samples is the sample of
rank ceil(q * n) in ascending order (at least rank 1), always an observed value, never an
interpolation between two. It is computed here rather than with polars' `quantile`, whose
closest method ("equiprobable") takes ceil of the float product q * n and so returns rank
1000 instead of 999 for p99.9 of 1000 samples (0.999 * 1000 = 999.0000000000001).

Which requests count:

- `count` is every row (request scheduled) in the group; `ok` is those answered 2xx;
  `errors` = count - ok (no response, client drops and non-2xx answers alike), and
  `error_rate` = errors / count.
- Latency percentiles are over requests that got an HTTP response (status > 0), whatever
  its status: a request that failed without one (timeout, refused, dropped by the client)
  has no latency to report and shows up in `errors` instead.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import polars as pl

from ingestlab.quantiles import nearest_rank
from ingestlab.units import NS_PER_MS

# Summary percentiles: column name -> quantile.
PERCENTILES: dict[str, float] = {
    "p50_ms": 0.5,
    "p90_ms": 0.9,
    "p95_ms": 0.95,
    "p99_ms": 0.99,
    "p99_9_ms": 0.999,
}
# The value columns of `windows` (besides its group keys).
WINDOW_VALUES: tuple[str, ...] = (
    "window_start", "t_s", "count", "offered_rps", "throughput_rps", "ok", "errors", "error_rate",
    *PERCENTILES, "max_ms",
)
# HdrHistogram-style table, in percent.
HDR_PERCENTILES: tuple[float, ...] = (0.0, 50.0, 75.0, 90.0, 95.0, 99.0, 99.9, 99.99, 100.0)

_REQUIRED = ("phase", "intended_start_ns", "actual_start_ns", "end_ns", "status")
_DURATION_PART = re.compile(r"(\d+)(ns|us|ms|s|m|h)")
_UNIT_S = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}

By = str | Sequence[str] | None


def _check(df: pl.DataFrame) -> None:
    missing = [name for name in _REQUIRED if name not in df.columns]
    if missing:
        raise ValueError(f"request rows lack columns {missing}; expected the engine's row schema")


def _keys(by: By) -> list[str]:
    if by is None:
        return []
    return [by] if isinstance(by, str) else list(by)


def with_timings(df: pl.DataFrame) -> pl.DataFrame:
    """`df` plus `latency_ms`, `service_time_ms` and `lag_ms` (float64, milliseconds).

    A duration is null where a timestamp is (e.g. a request the client dropped unsent).
    """
    _check(df)
    return df.with_columns(
        latency_ms=(pl.col("end_ns") - pl.col("intended_start_ns")).cast(pl.Float64) / NS_PER_MS,
        service_time_ms=(pl.col("end_ns") - pl.col("actual_start_ns")).cast(pl.Float64) / NS_PER_MS,
        lag_ms=(pl.col("actual_start_ns") - pl.col("intended_start_ns")).cast(pl.Float64) / NS_PER_MS,
    )


def _summary_exprs() -> list[pl.Expr]:
    """count, ok, errors, error_rate, latency percentiles and max (see module docstring)."""
    count = pl.len().cast(pl.Int64)
    ok = pl.col("status").is_between(200, 299).sum().cast(pl.Int64)
    latency = pl.col("latency_ms").filter(pl.col("status") > 0)
    return [
        count.alias("count"),
        ok.alias("ok"),
        (count - ok).alias("errors"),
        pl.when(count > 0).then((count - ok) / count).alias("error_rate"),
        *(nearest_rank(latency, q).alias(name) for name, q in PERCENTILES.items()),
        latency.max().alias("max_ms"),
    ]


def _measured(df: pl.DataFrame, include_warmup: bool) -> pl.DataFrame:
    rows = with_timings(df)
    return rows if include_warmup else rows.filter(pl.col("phase") == "measure")


def percentiles(df: pl.DataFrame, *, by: By = None, include_warmup: bool = False) -> pl.DataFrame:
    """One row per group (or one row): count, ok, errors, error_rate, p50_ms, p90_ms,
    p95_ms, p99_ms, p99_9_ms, max_ms.

    Latencies are from the intended start (coordinated-omission corrected), nearest-rank,
    over requests with an HTTP response. Warmup rows are left out unless `include_warmup`.
    """
    rows = _measured(df, include_warmup)
    keys = _keys(by)
    if not keys:
        return rows.select(_summary_exprs())
    return rows.group_by(keys).agg(_summary_exprs()).sort(keys)


def scan_percentiles(rows: pl.LazyFrame, *, include_warmup: bool = False) -> pl.DataFrame:
    """`percentiles` (no groups) of request rows too many to hold at once, e.g. a long soak's
    parts (`results.Run.scan_frame`): the same numbers, reading only the columns they need
    (phase, status, intended start, end); the latencies of the measured requests (8 bytes
    each) are the only thing held in full."""
    latency = (pl.col("end_ns") - pl.col("intended_start_ns")).cast(pl.Float64) / NS_PER_MS
    selected = rows.select("phase", "status", latency.alias("latency_ms"))
    if not include_warmup:
        selected = selected.filter(pl.col("phase") == "measure")
    return selected.select(_summary_exprs()).collect()


def _duration_s(every: str) -> float:
    """Seconds in a fixed-length polars duration string such as "1s", "500ms" or "1m30s"."""
    parts = _DURATION_PART.findall(every)
    if not parts or "".join(n + unit for n, unit in parts) != every:
        raise ValueError(
            f"every must be a fixed-length duration like '1s', '250ms' or '1m' "
            f"(units ns, us, ms, s, m, h), got {every!r}"
        )
    seconds = sum(int(n) * _UNIT_S[unit] for n, unit in parts)
    if seconds <= 0:
        raise ValueError(f"every must be longer than zero, got {every!r}")
    return seconds


def windows(df: pl.DataFrame, *, every: str = "1s", by: By = None) -> pl.DataFrame:
    """Time series in windows of `every` (e.g. "1s", "250ms"), warmup included.

    Columns: the `by` keys, `window_start` (UTC datetime), `t_s` (seconds from the group's
    first window), `count`, `offered_rps` (requests whose intended start falls in the
    window, per second), `throughput_rps` (2xx responses that completed in the window, per
    second), and the `percentiles()` columns over requests intended in the window.

    Latency belongs to the window of the intended start, throughput to the window of the
    end: during a stall, throughput drops to zero while the requests scheduled then show
    the stall in their latency. Windows without any request are present with zero counts.
    """
    every_s = _duration_s(every)
    keys = _keys(by)
    # A constant key lets one code path handle the ungrouped case.
    group = keys or ["__all"]
    rows = with_timings(df).with_columns(
        pl.lit(0).alias("__all"),
        intended_at=pl.col("intended_start_ns").cast(pl.Datetime("ns", "UTC")),
        ended_at=pl.col("end_ns").cast(pl.Datetime("ns", "UTC")),
    )
    by_intent = (
        rows.sort("intended_at")
        .group_by_dynamic("intended_at", every=every, group_by=group)
        .agg(_summary_exprs())
        .rename({"intended_at": "window_start"})
    )
    done = (
        rows.filter(pl.col("status").is_between(200, 299))
        .sort("ended_at")
        .group_by_dynamic("ended_at", every=every, group_by=group)
        .agg(completed_ok=pl.len().cast(pl.Int64))
        .rename({"ended_at": "window_start"})
    )
    # Every window from a group's first to its last, so gaps show as zeros, not as nothing.
    on = [*group, "window_start"]
    grid = (
        pl.concat([by_intent.select(on), done.select(on)])
        .group_by(group)
        .agg(first=pl.col("window_start").min(), last=pl.col("window_start").max())
        .select(*group, window_start=pl.datetime_ranges("first", "last", interval=every))
        .explode("window_start")
    )
    counts = ["count", "ok", "errors", "completed_ok"]
    table = (
        grid.join(by_intent, on=on, how="left")
        .join(done, on=on, how="left")
        .with_columns(pl.col(counts).fill_null(0))
        .with_columns(
            t_s=(pl.col("window_start") - pl.col("window_start").min().over(group))
            .dt.total_nanoseconds()
            .cast(pl.Float64)
            / 1e9,
            offered_rps=pl.col("count") / every_s,
            throughput_rps=pl.col("completed_ok") / every_s,
        )
        .sort(on)
    )
    return table.select(*keys, *WINDOW_VALUES)


def hdr_table(df: pl.DataFrame, *, by: By = None, include_warmup: bool = False) -> pl.DataFrame:
    """Latency at the percentiles in `HDR_PERCENTILES`, long format, for HDR-style plots.

    Columns: the `by` keys, `percentile` (0-100), `latency_ms` (nearest-rank, from the
    intended start, over requests with an HTTP response), `one_over_one_minus_p` =
    1 / (1 - percentile / 100) for a log x axis (1 at p0, 100 at p99, 10000 at p99.99; null at
    p100, which a log axis cannot place), and `count` (samples behind the group's values:
    a p99.99 from fewer than 10 000 samples is just the maximum).
    """
    rows = _measured(df, include_warmup).filter(pl.col("status") > 0)
    keys = _keys(by)
    group = keys or ["__all"]
    names = [f"{i}" for i in range(len(HDR_PERCENTILES))]
    wide = (
        rows.with_columns(pl.lit(0).alias("__all"))
        .group_by(group)
        .agg(
            pl.len().cast(pl.Int64).alias("count"),
            *(
                nearest_rank(pl.col("latency_ms"), p / 100).alias(name)
                for name, p in zip(names, HDR_PERCENTILES, strict=True)
            ),
        )
    )
    percent = dict(zip(names, HDR_PERCENTILES, strict=True))
    long = wide.unpivot(
        on=names, index=[*group, "count"], variable_name="index", value_name="latency_ms"
    ).with_columns(
        percentile=pl.col("index").replace_strict(percent, return_dtype=pl.Float64),
    )
    return (
        long.with_columns(
            one_over_one_minus_p=pl.when(pl.col("percentile") < 100).then(
                1 / (1 - pl.col("percentile") / 100)
            ),
        )
        .sort([*keys, "percentile"])
        .select(*keys, "percentile", "latency_ms", "one_over_one_minus_p", "count")
    )
