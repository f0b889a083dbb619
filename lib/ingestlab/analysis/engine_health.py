"""How a load generator itself behaved: recovery after a stall, from its request rows."""

from __future__ import annotations

import polars as pl

from ingestlab.quantiles import nearest_rank
from ingestlab.units import NS_PER_MS


def stall_recovery_s(
    rows: pl.DataFrame, *, resumed_ns: int, lag_bound_ms: float = 5.0, window_ms: float = 100.0
) -> float | None:
    """Seconds from `resumed_ns` until the engine is back on schedule, None if it never is.

    Requests are grouped into `window_ms` windows by intended start; the engine has
    recovered at the start of the first window after the resume from which every later
    window's send-lag p99 (actual - intended start) is under `lag_bound_ms` and nothing is
    dropped. Returns 0.0 when the first window after the resume is already fine.
    """
    window_ns = round(window_ms * 1e6)
    after = rows.filter(pl.col("intended_start_ns") >= resumed_ns).with_columns(
        window=(pl.col("intended_start_ns") - resumed_ns) // window_ns,
        lag_ms=(pl.col("actual_start_ns") - pl.col("intended_start_ns")) / NS_PER_MS,
    )
    if after.height == 0:
        return None
    per_window = (
        after.group_by("window")
        .agg(
            lag_p99_ms=nearest_rank(pl.col("lag_ms").drop_nulls(), 0.99),
            dropped=pl.col("actual_start_ns").is_null().sum(),
        )
        .sort("window")
        .with_columns(
            bad=(pl.col("lag_p99_ms") >= lag_bound_ms)
            | (pl.col("dropped") > 0)
            | pl.col("lag_p99_ms").is_null()
        )
    )
    bad = per_window.filter(pl.col("bad"))
    if bad.height == 0:
        return 0.0
    last_bad = bad["window"].max()
    if last_bad == per_window["window"].max():
        return None  # still behind in the last window: never recovered within the run
    return (last_bad + 1) * window_ms / 1000
