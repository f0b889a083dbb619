"""Charts of request latency: by percentile (HDR style), as a distribution, and over time."""

from __future__ import annotations

import altair as alt
import polars as pl

from ingestlab.analysis.latency import WINDOW_VALUES, with_timings
from ingestlab.charts.style import (
    MAX_CHART_ROWS,
    WIDTH,
    data_chart,
    log_bin,
    log_bin_edges,
    series_color,
    thin,
    time_tip,
    tip,
    titled,
    tooltips,
)
from ingestlab.units import NS_PER_S

_HDR_COLUMNS = ("percentile", "latency_ms", "one_over_one_minus_p", "count")
_KEY_TITLES = {"offered_rps": "offered rate (req/s)", "step": "step", "service": "service"}
# 1 / (1 - p) at 50%, 90%, 99%, ...: the ticks of an HDR-style percentile axis. The minimum
# (p0, at 1) gets no tick: its label would collide with 50%'s (at 2) and one of them be hidden.
_HDR_TICKS = (2.0, 10.0, 100.0, 1_000.0, 10_000.0, 100_000.0, 1_000_000.0)


def _key_tips(keys: list[str]) -> list[alt.Tooltip]:
    """Tooltips of a frame's grouping keys, titled with their units."""
    return [tip(f"{k}:N", _KEY_TITLES.get(k, k)) for k in keys]


# --- by percentile -------------------------------------------------------------------------


def _percentile_axis(top: float) -> alt.X:
    """The HDR x axis: 1 / (1 - p) on a log scale up to `top`, labelled as percentiles."""
    ticks = [t for t in _HDR_TICKS if t <= top * 1.000001] or [_HDR_TICKS[0]]
    return alt.X(
        "one_over_one_minus_p:Q",
        title="percentile (log scale of 1 / (1 - p))",
        scale=alt.Scale(type="log", domain=[1, max(ticks[-1], top)]),
        axis=alt.Axis(values=ticks, labelExpr="format(100 - 100 / datum.value, '.4~f') + '%'"),
    )


def latency_percentiles(hdr: pl.DataFrame) -> alt.Chart | alt.FacetChart:
    """HDR-style latency by percentile: latency (ms, log) vs percentile on a 1/(1-p) log axis.

    `hdr` comes from `analysis.latency.hdr_table(rows, by=...)`. `service`, if among its keys,
    is the line color; one other key (e.g. `offered_rps`) makes one panel per value. The
    p100 row (the maximum) is left out: 1/(1-p) is infinite there. A percentile beyond what
    the sample count supports (p99.99 from fewer than 10,000 samples) is just the maximum;
    the tooltip shows the count.
    """
    keys = [c for c in hdr.columns if c not in _HDR_COLUMNS]
    panels = [k for k in keys if k != "service"]
    if len(panels) > 1:
        raise ValueError(f"latency_percentiles: at most one key besides service, got {keys}")
    data = hdr.filter(pl.col("one_over_one_minus_p").is_not_null() & (pl.col("latency_ms") > 0))
    chart = (
        data_chart(data)
        .mark_line(point=True, strokeWidth=2)
        .encode(
            x=_percentile_axis(float(data["one_over_one_minus_p"].max() or 1.0)),
            y=alt.Y("latency_ms:Q", title="latency (ms, log scale)", scale=alt.Scale(type="log")),
            color=series_color(keys, data),
            tooltip=tooltips(
                *_key_tips(keys),
                tip("percentile:Q", "percentile (%)", ".3~f"),
                "latency_ms",
                tip("count:Q", "samples", ","),
            ),
        )
    )
    title = "Latency by percentile"
    subtitle = "HDR style: the tail to the right; from the intended send time"
    if not panels:
        return titled(chart, title, subtitle)
    panel = panels[0]
    return chart.properties(width=230, height=180).facet(
        facet=alt.Facet(
            f"{panel}:O",
            title=_KEY_TITLES.get(panel, panel),
            header=alt.Header(format=",", formatType="number")
            if hdr[panel].dtype.is_numeric()
            else alt.Header(),
        ),
        columns=3,
        title=alt.Title(title, subtitle=subtitle),
    )


# --- distribution --------------------------------------------------------------------------


def _latency_bins(
    rows: pl.DataFrame, keys: list[str], bins_per_decade: int, include_warmup: bool
) -> pl.DataFrame:
    """Answered requests counted per `keys` group and logarithmic latency bin (ms), with each
    bin's share (%) of its group and its geometric centre `latency_ms`."""
    timed = with_timings(rows)
    if not include_warmup:
        timed = timed.filter(pl.col("phase") == "measure")
    group = keys or ["__all"]
    return (
        timed.filter((pl.col("status") > 0) & (pl.col("latency_ms") > 0))
        .with_columns(pl.lit(0).alias("__all"), bin=log_bin("latency_ms", bins_per_decade))
        .group_by([*group, "bin"])
        .agg(requests=pl.len())
        .with_columns(
            share_pct=100 * pl.col("requests") / pl.col("requests").sum().over(group),
            **log_bin_edges(bins_per_decade),
        )
        # The bin's geometric centre: where it sits on the log axis.
        .with_columns(latency_ms=(pl.col("low_ms") * pl.col("high_ms")).sqrt())
        .sort([*group, "bin"])
        .select(*keys, "latency_ms", "low_ms", "high_ms", "requests", "share_pct")
    )


def latency_histogram(
    rows: pl.DataFrame, *, by: str | None = "service", bins_per_decade: int = 20, include_warmup: bool = False
) -> alt.Chart:
    """Distribution of request latency (ms, log bins) as the share of requests (%) per bin.

    `rows` are request rows (`REQUEST_SCHEMA`, plus `by`). They are binned here, on
    logarithmic bins `bins_per_decade` to a factor of ten, so the chart embeds one row per
    bin and group, never the requests. Shares are per group, so services with different
    request counts compare. Latency is from the intended send, over requests with an answer;
    warm-up requests are left out unless `include_warmup`.
    """
    keys = [by] if by else []
    bins = _latency_bins(rows, keys, bins_per_decade, include_warmup)
    chart = (
        data_chart(bins)
        .mark_line(point=alt.OverlayMarkDef(size=20), strokeWidth=2)
        .encode(
            x=alt.X(
                "latency_ms:Q",
                title="latency from intended send (ms, log scale)",
                scale=alt.Scale(type="log"),
            ),
            y=alt.Y("share_pct:Q", title="share of requests (%)"),
            color=series_color(keys, bins) if by in (None, "service") else alt.Color(f"{by}:N"),
            tooltip=tooltips(
                *(f"{k}:N" for k in keys),
                "low_ms",
                "high_ms",
                tip("requests:Q", fmt=","),
                tip("share_pct:Q", "share (%)", ".2f"),
            ),
        )
    )
    return titled(chart, "Latency distribution", f"{bins_per_decade} logarithmic bins per decade")


# --- over time -----------------------------------------------------------------------------


def _windows_since_start(windows: pl.DataFrame, keys: list[str]) -> pl.DataFrame:
    """`windows` with `t_s` (seconds since each service's first window) and `__line` (one line
    per `keys` group), thinned for two panels (the throughput panel draws two rows a window)."""
    start = pl.col("window_start").min()
    data = (
        windows.sort([*keys, "window_start"])
        .with_columns(
            t_s=(pl.col("window_start") - (start.over("service") if "service" in keys else start))
            .dt.total_nanoseconds()
            .cast(pl.Float64)
            / NS_PER_S
        )
        .select(*keys, "t_s", "p99_ms", "throughput_rps", "offered_rps")
    )
    return thin(
        data,
        keys=keys,
        max_rows=MAX_CHART_ROWS // 2,
        aggs=[pl.col("t_s").min(), pl.col("p99_ms").max(), pl.col("throughput_rps", "offered_rps").mean()],
    ).with_columns(
        # One line per group: no line joins the end of one step to the start of the next.
        __line=pl.concat_str([pl.col(k).cast(pl.String) for k in keys], separator="/") if keys else pl.lit("")
    )


def _p99_panel(data: pl.DataFrame, keys: list[str], x: alt.X) -> alt.Chart:
    """p99 latency (ms, log scale) per window; windows without an answer left out."""
    return (
        data_chart(data.filter(pl.col("p99_ms") > 0))
        .mark_line(point=alt.OverlayMarkDef(size=12), strokeWidth=1.5)
        .encode(
            x=x,
            y=alt.Y("p99_ms:Q", title="p99 latency (ms, log scale)", scale=alt.Scale(type="log")),
            color=series_color(keys, data),
            detail="__line:N",
            tooltip=tooltips(*_key_tips(keys), time_tip(), tip("p99_ms:Q", "p99 (ms)", ",.2f")),
        )
        .properties(width=WIDTH, height=200)
    )


def _rates_panel(data: pl.DataFrame, keys: list[str], x: alt.X) -> alt.Chart:
    """Answered (2xx) and offered rate (req/s) per window, solid and dashed."""
    rates = data.unpivot(
        on=["throughput_rps", "offered_rps"],
        index=[*keys, "__line", "t_s"],
        variable_name="rate",
        value_name="rps",
    ).with_columns(
        pl.col("rate").replace_strict({"throughput_rps": "answered 2xx", "offered_rps": "offered"})
    )
    return (
        data_chart(rates)
        .mark_line(strokeWidth=1.5)
        .encode(
            x=x,
            y=alt.Y("rps:Q", title="rate (req/s)"),
            color=series_color(keys, rates, legend=False),
            detail="__line:N",
            strokeDash=alt.StrokeDash(
                "rate:N",
                title="rate",
                scale=alt.Scale(domain=["answered 2xx", "offered"], range=[[1, 0], [4, 3]]),
            ),
            tooltip=tooltips(*_key_tips(keys), time_tip(), "rate:N", tip("rps:Q", "req/s", ",.0f")),
        )
        .properties(width=WIDTH, height=160)
    )


def latency_over_time(windows: pl.DataFrame) -> alt.VConcatChart:
    """Per-window p99 latency (ms, log) above throughput and offered rate (req/s), over time.

    `windows` comes from `analysis.latency.windows(rows, by=...)`. Time is seconds since each
    service's first window (the services of a run are measured one after the other); keys
    other than `service` (e.g. `step`) only break the lines between their groups. Over
    2,500 windows, consecutive windows of a group are merged: rates averaged (exact for
    equal windows), p99 the highest of the merged ones (an upper envelope: percentiles of
    windows cannot be combined into the merged window's percentile).
    """
    keys = [c for c in windows.columns if c not in WINDOW_VALUES]
    data = _windows_since_start(windows, keys)
    x = alt.X("t_s:Q", title="time since the service's first request (s)")
    return (
        alt.vconcat(_p99_panel(data, keys, x), _rates_panel(data, keys, x))
        .resolve_scale(x="shared")
        .properties(
            title=alt.Title(
                "Latency and throughput over time",
                subtitle="p99 per window (by intended send) above requests answered per second",
            )
        )
    )
