"""The one percentile definition of the project: nearest rank, as HdrHistogram and wrk report.

Interpolating quantiles (polars' default) invent latencies nobody measured between two
samples; a nearest-rank percentile is always a value that was observed.
"""

from __future__ import annotations

import polars as pl

# Relative slack on q * n before rounding up, so float error in an exactly whole q * n
# (0.999 * 1000) does not push the rank up by one; far below any real fractional part.
_RANK_SLACK = 1e-12


def nearest_rank(values: pl.Expr, q: float) -> pl.Expr:
    """The nearest-rank q-quantile (0 <= q <= 1) of `values`, nulls ignored; null if empty."""
    if not 0 <= q <= 1:
        raise ValueError(f"q must be between 0 and 1, got {q!r}")
    ordered = values.drop_nulls().sort()
    rank = (ordered.len() * q * (1 - _RANK_SLACK)).ceil().cast(pl.Int64).clip(lower_bound=1)
    return ordered.get(rank - 1, null_on_oob=True)
