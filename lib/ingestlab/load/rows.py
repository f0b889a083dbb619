"""The one-row-per-request format every load generator writes (requests.parquet).

Timestamps are wall-clock epoch nanoseconds derived from one monotonic clock reading per
request (t0_wall + (mono - t0_mono)), so differences between them are exact durations.
Latency is `end_ns - intended_start_ns` (coordinated omission corrected); service time is
`end_ns - actual_start_ns`. `status` 0 means no HTTP response (see `error_class`).
"""

from __future__ import annotations

import time

import polars as pl

from ingestlab.units import NS_PER_S

REQUEST_SCHEMA: dict[str, pl.DataType] = {
    "request_id": pl.String(),
    "step": pl.Int32(),
    "phase": pl.String(),  # "warmup" | "measure"
    "intended_start_ns": pl.Int64(),
    "actual_start_ns": pl.Int64(),
    "end_ns": pl.Int64(),
    "status": pl.Int16(),
    "bytes_sent": pl.Int32(),
    "error_class": pl.String(),
}


class WallClock:
    """Maps monotonic readings to wall-clock epoch ns, fixed at construction."""

    def __init__(self) -> None:
        self.t0_wall_ns = time.time_ns()
        self.t0_mono_ns = time.monotonic_ns()

    def wall_ns(self, mono_ns: int) -> int:
        return self.t0_wall_ns + (mono_ns - self.t0_mono_ns)


def phase_of(offset_ns: pl.Expr, warmup_s: float) -> pl.Expr:
    """The `phase` column: "warmup" for requests intended in the first `warmup_s` seconds
    (`offset_ns`: ns since the run's first intended start), recorded but left out of the
    numbers; "measure" for the rest."""
    return (pl.when(offset_ns < round(warmup_s * NS_PER_S))
            .then(pl.lit("warmup")).otherwise(pl.lit("measure")))


def send_rate_rps(actual_start_ns: pl.Series) -> float | None:
    """Requests sent per second: n sends spaced evenly over a span cover n - 1 intervals, so
    (n - 1) / (last - first actual start); None with fewer than two sends or no span."""
    starts = actual_start_ns.drop_nulls()
    span_ns = starts.max() - starts.min() if starts.len() >= 2 else 0
    return (starts.len() - 1) / (span_ns * 1e-9) if span_ns > 0 else None
