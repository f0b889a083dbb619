"""Memory over time: steady level, swing, sawtooth or flat, and heap growth per request.

`memory_pattern` describes a sampled series (a frame with `t_ns`, epoch ns, and a value
column such as `rss_bytes`); its results are in the value column's unit. Definitions:

- Steady state: samples from `warmup_fraction` (default 0.2) of the way between the first
  and the last sample on. Before that RSS and heap still grow for reasons that say nothing
  about the pattern (code being compiled, the heap sizing itself to the load, pools
  filling).
- `mean`, `min`, `p5`, `p95` are of the steady state (p5/p95 nearest rank);
  `amplitude` = p95 - p5, so a few outlier samples do not make the swing; `peak` is the
  highest sample of the whole series (the footprint a host has to provide).
- Flat: amplitude < `flat_bound_pct` % of the steady mean.
- A drop: the value falls between two consecutive samples by more than `drop_pct` % of
  the steady mean (a GC or an allocator returning memory, seen within one sample interval).
- A cycle: the samples after one drop up to and including the next drop. It is a tooth
  when the value climbed back gradually and then fell sharply: its rises add up to at
  least half the drop that ends it, and no single rise is as large as half that drop.
- Sawtooth: not flat, at least `min_drops` drops, and at least half of the cycles are
  teeth. Noise that jumps up and down, or isolated spikes, rise as sharply as they fall
  and are not teeth.
- Otherwise "irregular" (e.g. steady growth without drops, a step, large noise).
- `period_s`: median time between consecutive drops, seconds; null unless sawtooth.

The sampling interval bounds what can be seen: a tooth needs at least three samples
(two rises, one drop), so a cycle shorter than about three sample intervals is missed.

`memory_slope` gives the trend instead: how fast a series grows, per hour, with an interval
(a leak or a slow climb, which a soak of minutes cannot show; see its docstring).
"""

from __future__ import annotations

import math
from typing import Any

import polars as pl
from scipy import stats

from ingestlab.quantiles import nearest_rank
from ingestlab.units import MIB, NS_PER_MS, NS_PER_S

# Fewer steady samples than this cannot show a pattern (three teeth of three samples).
_MIN_STEADY_SAMPLES = 10
# `memory_slope`: windows of a minute on a long series; a shorter one gets this many windows.
SLOPE_WINDOW_S = 60.0
SLOPE_MIN_WINDOWS = 10


def memory_pattern(
    samples: pl.DataFrame,
    *,
    value: str = "rss_bytes",
    flat_bound_pct: float = 10.0,
    drop_pct: float = 5.0,
    min_drops: int = 3,
    warmup_fraction: float = 0.2,
) -> dict[str, Any]:
    """Describe `samples[value]` over `samples["t_ns"]` (see the module docstring).

    Returns a dict: value (the column), samples, steady_samples, steady_start_ns, mean,
    min, p5, p95, amplitude, amplitude_pct (of mean), peak, classification ("flat",
    "sawtooth" or "irregular"), drops, period_s, and the bounds used: flat_bound_pct,
    drop_pct, min_drops, warmup_fraction.

    Raises ValueError if the steady state has fewer than 10 samples.
    """
    if not 0 <= warmup_fraction < 1:
        raise ValueError(f"warmup_fraction must be in [0, 1), got {warmup_fraction!r}")
    series = samples.select("t_ns", value).drop_nulls().sort("t_ns")
    t = series["t_ns"]
    steady_start_ns = t[0] + round(warmup_fraction * (t[-1] - t[0])) if series.height else 0
    steady = series.filter(pl.col("t_ns") >= steady_start_ns)
    if steady.height < _MIN_STEADY_SAMPLES:
        raise ValueError(f"{steady.height} steady-state samples of {value!r} (of {series.height}); "
                         f"need at least {_MIN_STEADY_SAMPLES}")
    v = pl.col(value)
    stats = steady.select(
        mean=v.mean(),
        min=v.min(),
        p5=nearest_rank(v, 0.05),
        p95=nearest_rank(v, 0.95),
    ).row(0, named=True)
    mean = float(stats["mean"])
    amplitude = float(stats["p95"] - stats["p5"])
    drops, teeth = _teeth(steady, value, threshold=drop_pct / 100 * mean)
    flat = amplitude < flat_bound_pct / 100 * mean
    sawtooth = not flat and drops.len() >= min_drops and teeth >= 0.5
    median_gap_ns = drops.diff().median()
    period_s = median_gap_ns / NS_PER_S if sawtooth and median_gap_ns is not None else None
    return {
        "value": value,
        "samples": series.height,
        "steady_samples": steady.height,
        "steady_start_ns": steady_start_ns,
        **stats,
        "amplitude": amplitude,
        "amplitude_pct": 100 * amplitude / mean if mean else None,
        "peak": series[value].max(),
        "classification": "flat" if flat else "sawtooth" if sawtooth else "irregular",
        "drops": drops.len(),
        "period_s": period_s,
        "flat_bound_pct": flat_bound_pct,
        "drop_pct": drop_pct,
        "min_drops": min_drops,
        "warmup_fraction": warmup_fraction,
    }


def _teeth(steady: pl.DataFrame, value: str, *, threshold: float) -> tuple[pl.Series, float]:
    """Times of the drops (falls > `threshold` between consecutive samples) and the share
    of complete cycles that are teeth (0.0 if there is no complete cycle)."""
    change = pl.col(value) - pl.col(value).shift(1)
    steps = steady.with_columns(change=change).with_columns(drop=-pl.col("change") > threshold)
    # A drop belongs to the cycle it ends: cycle k holds the samples after drop k up to drop k+1.
    steps = steps.with_columns(cycle=pl.col("drop").cum_sum() - pl.col("drop").cast(pl.UInt32))
    drops = steps.filter("drop")["t_ns"]
    rise = pl.col("change").filter(~pl.col("drop") & (pl.col("change") > 0))
    cycles = (
        steps.filter(pl.col("cycle").is_between(1, drops.len() - 1))  # complete cycles only
        .group_by("cycle")
        .agg(climbed=rise.sum(), largest_rise=rise.max(), fall=-pl.col("change").filter("drop").first())
        .select(
            tooth=(pl.col("climbed") >= pl.col("fall") / 2)
            & (pl.col("largest_rise") < pl.col("fall") / 2)
        )
    )
    return drops, float(cycles["tooth"].mean()) if cycles.height else 0.0


def heap_growth_per_1000_requests_mib(gc: pl.DataFrame, requests: pl.DataFrame) -> float | None:
    """How much the live V8 heap grows per 1,000 answered requests, MiB (negative: shrinks).

    The least-squares slope of `heap_after_mib` of full collections (generation "full",
    e.g. Mark-Compact) against the number of requests answered (any HTTP status) by the
    time of each collection, times 1000. After a full collection only reachable objects
    are left, so this floor is what the service retains; after a Scavenge the old space
    still holds garbage, which would show the sawtooth rather than the trend. Only full
    collections within the measured phase's span (first actual start to last end) count.

    None if fewer than two such collections happened, or the request count did not change
    between them.
    """
    measured = requests.filter(pl.col("phase") == "measure")
    span_start, span_end = measured["actual_start_ns"].min(), measured["end_ns"].max()
    if span_start is None or span_end is None:
        return None
    full = gc.filter(
        (pl.col("generation") == "full") & pl.col("wall_ns").is_between(span_start, span_end)
    ).sort("wall_ns")
    answered = requests.filter(pl.col("status") > 0)["end_ns"].drop_nulls().sort()
    points = pl.DataFrame({
        "requests": answered.search_sorted(full["wall_ns"], side="right").cast(pl.Float64),
        "heap_mib": full["heap_after_mib"],
    })
    if points.height < 2 or points["requests"].n_unique() < 2:
        return None
    slope = points.select(pl.cov("requests", "heap_mib") / pl.col("requests").var()).item()
    return float(slope) * 1000


# Points on each climb between two collections (see heap_series): four rises per climb, so
# a climb about as high as the drop that ends it is gradual in memory_pattern's terms.
HEAP_CLIMB_POINTS = 3


def heap_series(gc: pl.DataFrame, *, climb_points: int = 0) -> pl.DataFrame:
    """The V8 heap over time from a GC frame: `t_ns` (epoch ns) and `heap_bytes`, the heap
    objects before each collection (at the start of its pause) and after it (at its end);
    with `service` if `gc` has it. V8's trace prints MB meaning MiB.

    The trace sees the heap only at collections. With `climb_points` > 0, that many points
    are added on the straight line between each collection's "after" and the next one's
    "before": under a constant load V8 allocates continuously, so the heap climbs between
    collections rather than jumping. `analysis.memory.memory_pattern` needs this to see a
    tooth (a gradual climb, then a sharp drop): from the trace's two points per collection
    every climb is a single step, as sharp as the drop, and the series reads as irregular.
    """
    keys = ["service"] if "service" in gc.columns else []
    start = pl.col("wall_ns") - (pl.col("pause_ms") * NS_PER_MS).round().cast(pl.Int64)
    series = (
        pl.concat([
            gc.select(*keys, t_ns=start, heap_bytes=pl.col("heap_before_mib") * MIB, point=pl.lit(0)),
            gc.select(*keys, t_ns="wall_ns", heap_bytes=pl.col("heap_after_mib") * MIB, point=pl.lit(1)),
        ])
        .drop_nulls()
        .sort(*keys, "t_ns", "point")
    )
    if climb_points > 0:
        def following(column: str) -> pl.Expr:
            shifted = pl.col(column).shift(-1)
            return shifted.over(keys) if keys else shifted

        fractions = [i / (climb_points + 1) for i in range(1, climb_points + 1)]
        climbs = (
            series.with_columns(next_t=following("t_ns"), next_v=following("heap_bytes"),
                                next_point=following("point"))
            .filter((pl.col("point") == 1) & (pl.col("next_point") == 0))
            .with_columns(f=pl.lit(fractions))
            .explode("f")
            .select(
                *keys,
                t_ns=(pl.col("t_ns") + pl.col("f") * (pl.col("next_t") - pl.col("t_ns")))
                .round()
                .cast(pl.Int64),
                heap_bytes=pl.col("heap_bytes") + pl.col("f") * (pl.col("next_v") - pl.col("heap_bytes")),
                point=pl.lit(2),
            )
        )
        series = pl.concat([series, climbs], how="vertical_relaxed").sort(*keys, "t_ns", "point")
    return series.drop("point")


def memory_slope(
    samples: pl.DataFrame,
    *,
    value: str = "rss_bytes",
    window_s: float | None = None,
    min_windows: int = SLOPE_MIN_WINDOWS,
    level: float = 0.95,
    warmup_fraction: float = 0.2,
) -> dict[str, Any] | None:
    """The trend of `samples[value]` over `samples["t_ns"]` (epoch ns) in its steady state:
    the least-squares slope in the value's unit per hour, with its `level` (95%) confidence
    interval.

    The steady state is `memory_pattern`'s: from `warmup_fraction` (0.2) of the way between
    the first and the last sample on. Before that memory climbs to its level (Node's RSS from
    63 to about 310 MiB in its first minute at 800 req/s here), which is no trend: with its
    first minute in the fit, an hour of Node read as growing (1.40 MiB/h, interval [0.08,
    2.73]); over its steady state it was flat (-0.13 MiB/h, [-1.02, 0.77]).

    The fit is on window means, not on the samples: samples 0.1 s apart are strongly
    autocorrelated (RSS at one tick is RSS at the previous one plus a little), so an
    ordinary least-squares interval over them would be far too narrow. The series is cut
    into windows of `window_s` seconds from its first sample (default: one minute,
    `SLOPE_WINDOW_S`, or, for a series shorter than `min_windows` minutes, a tenth of its
    span, so that a short soak still gets `min_windows` windows); a last, partial window is
    merged into the one before. Each window gives one point, the mean time and the mean value
    of its samples, and the slope and its Student-t interval (n - 2 degrees of freedom) are
    those of the ordinary least-squares line through the points. Means of a minute still
    carry any cycle longer than a minute (a GC cycle of several minutes, a periodic flush):
    the interval assumes independent windows and is then too narrow; a sawtooth much shorter
    than a window averages out.

    Returns a dict: `slope_per_h`, `ci_per_h` ([low, high]), `windows` (points fitted),
    `window_s`, `span_s` (the steady state's first to last sample), `level`,
    `warmup_fraction`; None when the steady state has fewer than `min_windows` windows (too
    short, or too few samples) to fit a trend with an interval.
    """
    if not 0 < level < 1:
        raise ValueError(f"level must be between 0 and 1, got {level!r}")
    if not 0 <= warmup_fraction < 1:
        raise ValueError(f"warmup_fraction must be in [0, 1), got {warmup_fraction!r}")
    series = samples.select("t_ns", value).drop_nulls().sort("t_ns")
    if series.height:
        first, last = series["t_ns"][0], series["t_ns"][-1]
        series = series.filter(pl.col("t_ns") >= first + round(warmup_fraction * (last - first)))
    if series.height < min_windows:
        return None
    t0, t1 = series["t_ns"][0], series["t_ns"][-1]
    span_s = (t1 - t0) / NS_PER_S
    if window_s is None:
        window_s = SLOPE_WINDOW_S if span_s >= min_windows * SLOPE_WINDOW_S else span_s / min_windows
    if window_s <= 0:
        return None
    count = max(1, math.floor(span_s / window_s + 1e-9))  # whole windows; the rest joins the last
    points = (
        series.with_columns(
            window=((pl.col("t_ns") - t0) / (window_s * NS_PER_S)).floor().cast(pl.Int64).clip(0, count - 1),
        )
        .group_by("window")
        .agg(t_h=((pl.col("t_ns") - t0) / (3600 * NS_PER_S)).mean(), y=pl.col(value).cast(pl.Float64).mean())
        .sort("window")
    )
    if points.height < min_windows:
        return None
    # Ordinary least squares, written out: scipy's linregress gives no standard error for a
    # constant series (its correlation is 0 / 0), whose slope and interval are both 0.
    x, y = points["t_h"].to_numpy(), points["y"].to_numpy()
    dx = x - x.mean()
    sxx = float((dx * dx).sum())
    slope = float((dx * (y - y.mean())).sum()) / sxx
    residuals = y - y.mean() - slope * dx
    stderr = math.sqrt(float((residuals * residuals).sum()) / (points.height - 2) / sxx)
    half = float(stats.t.ppf(0.5 + level / 2, points.height - 2)) * stderr
    return {
        "slope_per_h": slope,
        "ci_per_h": [slope - half, slope + half],
        "windows": points.height,
        "window_s": window_s,
        "span_s": span_s,
        "level": level,
        "warmup_fraction": warmup_fraction,
    }
