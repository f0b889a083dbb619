"""How a load generator itself behaved: recovery after a stall, from its request rows."""

from __future__ import annotations

import polars as pl

from ingestlab.quantiles import nearest_rank
from ingestlab.units import NS_PER_MS


def stall_recovery_s(
    rows: pl.DataFrame, *, resumed_ns: int, lag_bound_ms: float = 5.0, window_ms: float = 100.0,
    hold_ms: float = 500.0,
) -> float | None:
    """Seconds from `resumed_ns` until the engine is back on schedule, None if it never is.

    Requests are grouped into `window_ms` windows by intended start; a window is on schedule
    when its send-lag p99 (actual - intended start) is under `lag_bound_ms` and nothing in it
    was dropped. The engine has recovered at the start of the first window after the resume
    that begins `hold_ms` of windows all on schedule: the backlog is gone and stays gone. A
    later, unrelated excursion (steal time, a page fault) is not part of the recovery.
    Returns 0.0 when the windows right after the resume already hold.
    """
    window_ns = round(window_ms * 1e6)
    hold = max(1, round(hold_ms / window_ms))
    after = rows.filter(pl.col("intended_start_ns") >= resumed_ns).with_columns(
        window=(pl.col("intended_start_ns") - resumed_ns) // window_ns,
        lag_ms=(pl.col("actual_start_ns") - pl.col("intended_start_ns")) / NS_PER_MS,
    )
    if after.height == 0:
        return None
    ok = (
        after.group_by("window")
        .agg(
            lag_p99_ms=nearest_rank(pl.col("lag_ms").drop_nulls(), 0.99),
            dropped=pl.col("actual_start_ns").is_null().sum(),
        )
        .sort("window")
        .select(
            "window",
            ok=(pl.col("lag_p99_ms") < lag_bound_ms).fill_null(False) & (pl.col("dropped") == 0),
        )
    )
    # `held`: this window and the next hold - 1 are all on schedule (a window without
    # requests counts as not on schedule: nothing shows the engine kept up there)
    windows = pl.DataFrame({"window": range(ok["window"].max() + 1)}).join(ok, on="window", how="left")
    held = windows.with_columns(
        held=pl.col("ok").fill_null(False).cast(pl.Int32).reverse().rolling_sum(hold).reverse() == hold
    ).filter(pl.col("held"))
    return None if held.height == 0 else held["window"].min() * window_ms / 1000


def stall_recovery_floor_s(*, stall_s: float, rate_rps: float, capacity_rps: float) -> float | None:
    """The shortest possible recovery (s) from a `stall_s` pause at `rate_rps` for an engine
    that catches up no faster than `capacity_rps`: the backlog (stall_s x rate) is cleared with the
    headroom (capacity - rate), so stall_s x rate / (capacity - rate). None without headroom."""
    headroom = capacity_rps - rate_rps
    return stall_s * rate_rps / headroom if headroom > 0 else None
