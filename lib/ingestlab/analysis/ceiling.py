"""Throughput-ceiling steps judged for tables and charts: each step's verdict from its outcome.

A steps frame is a ceiling run's steps.parquet, one row per constant-rate step and service:
offered_rps and achieved_rps in requests per second, p50_ms and p99_ms in milliseconds from
the intended send time, error_rate a fraction (0 to 1), and `outcome` ("pass", "fail" or
"inconclusive") with its `reasons`. Since summary schema 5 a step may have several attempts
(`repeated`: True on the attempts a stall of the machine made the search run again) and a
search several passes (`search`: 0, 1, ...); `decisive_steps` keeps what decided the result.
"""

from __future__ import annotations

import polars as pl

# "inconclusive": the load generator could not drive the step, so it says nothing about the service.
_VERDICTS = {"pass": "passed", "fail": "failed", "inconclusive": "inconclusive"}


def decisive_steps(steps: pl.DataFrame) -> pl.DataFrame:
    """The steps that decided a ceiling: per service, the last search's last attempt at each
    rate (older runs, without `search` and `repeated`, are returned whole)."""
    if "repeated" not in steps.columns:
        return steps
    last = pl.col("search") == pl.col("search").max().over("service")
    return steps.filter(last, ~pl.col("repeated"))


def with_verdict(steps: pl.DataFrame) -> pl.DataFrame:
    """`steps` plus `verdict` from their `outcome`: passed, failed or inconclusive (the load
    generator could not drive the step). Other columns and their units are left as they are."""
    return steps.with_columns(verdict=pl.col("outcome").replace_strict(_VERDICTS))
