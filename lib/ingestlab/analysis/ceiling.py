"""Throughput-ceiling steps judged for tables and charts: each step's verdict from its outcome.

A steps frame is a ceiling run's steps.parquet, one row per constant-rate step and service:
offered_rps and achieved_rps in requests per second, p50_ms and p99_ms in milliseconds from
the intended send time, error_rate a fraction (0 to 1), and `outcome` ("pass", "fail" or
"inconclusive") with its `reasons`.
"""

from __future__ import annotations

import polars as pl

# "inconclusive": the load generator could not drive the step, so it says nothing about the service.
_VERDICTS = {"pass": "passed", "fail": "failed", "inconclusive": "inconclusive"}


def with_verdict(steps: pl.DataFrame) -> pl.DataFrame:
    """`steps` plus `verdict` from their `outcome`: passed, failed or inconclusive (the load
    generator could not drive the step). Other columns and their units are left as they are."""
    return steps.with_columns(verdict=pl.col("outcome").replace_strict(_VERDICTS))
