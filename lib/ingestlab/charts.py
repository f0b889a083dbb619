"""Altair charts of result frames: each a pure function, polars frame in, `alt.Chart` out.

Conventions shared by every chart:

- One color per service everywhere (`SERVICE_COLORS`): Node bluish green, Rust vermillion,
  from the Okabe-Ito palette, which stays distinguishable with the common color-vision
  deficiencies (a green/red pair would not).
- Axis titles carry units; tooltips show the numbers behind each mark.
- A ceiling step is "passed", "failed" or "inconclusive" (the load generator saturated, so the
  step says nothing about the service); the same shapes mark them in every chart.
- Altair embeds a chart's data in its spec (and so in the notebook and the report). Each
  function therefore aggregates or thins its input to at most `MAX_CHART_ROWS` rows, and the
  data transformer is set to refuse more (`alt.data_transformers`, max_rows), so a chart that
  would silently embed a million request rows fails loudly instead. Functions taking raw
  request rows (`latency_histogram`) bin them first; time series (`latency_over_time`,
  `memory_over_time`) merge consecutive points when too long (each function says how).

`use_static_renderer()` makes notebooks render charts as PNG images: reports are static HTML
read without network access, and altair's default renderer needs JavaScript from a CDN.
`save_png` / `save_svg` write files with vl-convert (no browser involved).
"""

from __future__ import annotations

import math
from pathlib import Path

import altair as alt
import polars as pl

from ingestlab.analysis.latency import WINDOW_VALUES, nearest_rank, with_timings
from ingestlab.analysis.memory import MIB

SERVICE_COLORS: dict[str, str] = {"node": "#009E73", "rust": "#D55E00"}
MAX_CHART_ROWS = 5_000
VERDICT_SHAPES: dict[str, str] = {"passed": "circle", "failed": "cross", "inconclusive": "triangle-up"}
NEUTRAL = "#555555"
WIDTH = 520
HEIGHT = 300
NS_PER_S = 1e9
# GC events without a service column are Node's: V8 is the only runtime whose GC is traced.
GC_DEFAULT_SERVICE = "node"
# The longest GC pauses drawn; a loaded Node service scavenges several times a second, and
# beyond this many rules the chart is a grey wall that hides the memory line.
MAX_GC_RULES = 1_000

# Refuse, rather than embed, charts with more rows than this (see the module docstring).
alt.data_transformers.enable("default", max_rows=MAX_CHART_ROWS)


def use_static_renderer(*, scale: float = 2.0) -> None:
    """Render charts displayed in a notebook as PNG images (vl-convert, in the kernel).

    The executed notebooks become static HTML reports; altair's default renderer emits
    JavaScript that loads Vega from a CDN, which a report read offline cannot run. PNG rather
    than inline SVG: every viewer shows an image alike, while inline SVGs share the page's id
    namespace (vl-convert names clip paths clip1, clip2, ... per process). `scale` is pixels
    per CSS pixel (2 = sharp on high-density screens, shown at the chart's own size).
    Tooltips need the interactive renderer: `alt.renderers.enable("default")` while
    exploring in JupyterLab.
    """
    # vl-convert multiplies pixels by ppi / 72, and altair shows the image at pixels / (ppi /
    # 72): so ppi alone doubles the pixels while the chart keeps its size on the page.
    alt.renderers.enable("png", scale_factor=1, ppi=round(72 * scale))


def _service_color(*, legend: bool = True) -> alt.Color:
    return alt.Color(
        "service:N",
        title="service",
        scale=alt.Scale(domain=list(SERVICE_COLORS), range=list(SERVICE_COLORS.values())),
        legend=alt.Legend() if legend else None,
    )


def _series_color(keys: list[str], *, legend: bool = True) -> alt.Color | alt.ValueChannelMixin:
    """The service color if `service` is among `keys`, else one neutral color."""
    return _service_color(legend=legend) if "service" in keys else alt.value(NEUTRAL)


# In the ceiling chart both services' points coincide wherever both kept up (on y = x): node
# is drawn first and wider, so its color shows as a ring around rust's instead of vanishing.
_SERVICE_POINT_SIZES = [180, 70]
_SERVICE_LINE_WIDTHS = [5, 2]


def _service_size() -> alt.Size:
    return alt.Size(
        "service:N", scale=alt.Scale(domain=list(SERVICE_COLORS), range=_SERVICE_POINT_SIZES), legend=None
    )


def _service_stroke_width() -> alt.StrokeWidth:
    return alt.StrokeWidth(
        "service:N", scale=alt.Scale(domain=list(SERVICE_COLORS), range=_SERVICE_LINE_WIDTHS), legend=None
    )


def _verdict_shape() -> alt.Shape:
    return alt.Shape(
        "verdict:N",
        title="step",
        scale=alt.Scale(domain=list(VERDICT_SHAPES), range=list(VERDICT_SHAPES.values())),
    )


def with_verdict(steps: pl.DataFrame) -> pl.DataFrame:
    """`steps` plus `verdict` from their `outcome`: passed, failed or inconclusive (the load
    generator could not drive the step)."""
    return steps.with_columns(
        verdict=pl.col("outcome").replace_strict({"pass": "passed", "fail": "failed",
                                                  "inconclusive": "inconclusive"})
    )


def _thin(frame: pl.DataFrame, *, keys: list[str], max_rows: int, aggs: list[pl.Expr]) -> pl.DataFrame:
    """Merge consecutive rows of each `keys` group k at a time so at most `max_rows` remain.

    Rows must be in time order within a group. `aggs` say how a merged row is computed.
    """
    if frame.height <= max_rows:
        return frame
    group = keys or ["__all"]
    frame = frame.with_columns(pl.lit(0).alias("__all"))
    groups = frame.select(group).n_unique()
    if groups >= max_rows:
        raise ValueError(f"{groups} groups cannot be drawn in {max_rows} rows; select fewer")
    # Each group's last bucket may be partial: one row per group of slack keeps the bound exact.
    k = math.ceil(frame.height / (max_rows - groups))
    return (
        frame.with_columns(__bucket=pl.int_range(pl.len()).over(group) // k)
        .group_by([*group, "__bucket"], maintain_order=True)
        .agg(aggs)
        .drop("__bucket", *([] if keys else ["__all"]))
    )


# --- throughput ceiling --------------------------------------------------------------------


def ceiling_steps(steps: pl.DataFrame) -> alt.LayerChart:
    """Achieved vs offered rate (req/s) per ceiling step and service, with the y = x line.

    `steps` is a ceiling run's steps.parquet: service, step, engine, offered_rps,
    achieved_rps, p99_ms, error_rate, outcome, reasons. A service keeping up
    lies on the diagonal; failed (x) and inconclusive (triangle) steps are marked.
    """
    data = (
        with_verdict(steps)
        .select(
            "service",
            "step",
            "engine",
            "offered_rps",
            "achieved_rps",
            "p99_ms",
            "error_rate",
            "verdict",
            "reasons",
        )
        .sort("service", "step")  # node first: drawn beneath rust (see _SERVICE_POINT_SIZES)
    )
    top = float(max(data["offered_rps"].max(), data["achieved_rps"].max()))
    x_title, y_title = "offered rate (req/s)", "achieved rate (req/s)"
    diagonal = (
        alt.Chart(pl.DataFrame({"rate_rps": [0.0, top]}))
        .mark_line(color="#999999", strokeDash=[4, 4])
        .encode(x=alt.X("rate_rps:Q", title=x_title), y=alt.Y("rate_rps:Q", title=y_title))
    )
    label = (
        alt.Chart(pl.DataFrame({"rate_rps": [top], "text": ["achieved = offered"]}))
        .mark_text(align="right", dx=-4, dy=-8, color="#777777")
        .encode(x=alt.X("rate_rps:Q", title=x_title), y=alt.Y("rate_rps:Q", title=y_title), text="text:N")
    )
    base = alt.Chart(data).encode(
        x=alt.X("offered_rps:Q", title=x_title),
        y=alt.Y("achieved_rps:Q", title=y_title),
        color=_service_color(),
    )
    lines = base.mark_line().encode(strokeWidth=_service_stroke_width())
    points = base.mark_point(filled=True, opacity=1).encode(
        shape=_verdict_shape(),
        size=_service_size(),
        tooltip=[
            alt.Tooltip("service:N"),
            alt.Tooltip("step:Q"),
            alt.Tooltip("engine:N", title="generator"),
            alt.Tooltip("offered_rps:Q", title="offered (req/s)", format=",.0f"),
            alt.Tooltip("achieved_rps:Q", title="achieved (req/s)", format=",.0f"),
            alt.Tooltip("p99_ms:Q", title="p99 (ms)", format=",.1f"),
            alt.Tooltip("error_rate:Q", title="errors", format=".2%"),
            alt.Tooltip("verdict:N"),
            alt.Tooltip("reasons:N"),
        ],
    )
    return alt.layer(diagonal, label, lines, points).properties(
        title=alt.Title(
            "Throughput ceiling: achieved vs offered rate",
            subtitle="each point is one constant-rate step; on the dashed line the service kept up",
        ),
        width=WIDTH,
        height=HEIGHT,
    )


def step_latency(steps: pl.DataFrame, *, p99_bound_ms: float | None = None) -> alt.LayerChart:
    """p50 and p99 latency (ms, log scale) vs offered rate (req/s) per ceiling step and service.

    `steps` as for `ceiling_steps` (needs p50_ms, p99_ms). Latency is from the intended send
    time (coordinated-omission corrected). `p99_bound_ms`, if given, is drawn as the pass line.
    """
    data = (
        with_verdict(steps)
        .select("service", "step", "engine", "offered_rps", "verdict", "p50_ms", "p99_ms")
        .unpivot(
            on=["p50_ms", "p99_ms"],
            index=["service", "step", "engine", "offered_rps", "verdict"],
            variable_name="percentile",
            value_name="latency_ms",
        )
        .with_columns(pl.col("percentile").replace_strict({"p50_ms": "p50", "p99_ms": "p99"}))
        # A log axis cannot place zero; a step with no answered request has no latency.
        .filter(pl.col("latency_ms") > 0)
    )
    base = alt.Chart(data).encode(
        x=alt.X("offered_rps:Q", title="offered rate (req/s)"),
        y=alt.Y(
            "latency_ms:Q", title="latency from intended send (ms, log scale)", scale=alt.Scale(type="log")
        ),
        color=_service_color(),
    )
    # The dash only on the lines: on the points too, the legend would show dots for it.
    lines = base.mark_line(strokeWidth=2).encode(
        strokeDash=alt.StrokeDash(
            "percentile:N", title="percentile", scale=alt.Scale(domain=["p50", "p99"], range=[[1, 0], [5, 3]])
        ),
    )
    points = base.mark_point(size=70, filled=True, opacity=1).encode(
        shape=_verdict_shape(),
        tooltip=[
            alt.Tooltip("service:N"),
            alt.Tooltip("step:Q"),
            alt.Tooltip("engine:N", title="generator"),
            alt.Tooltip("offered_rps:Q", title="offered (req/s)", format=",.0f"),
            alt.Tooltip("percentile:N"),
            alt.Tooltip("latency_ms:Q", title="latency (ms)", format=",.2f"),
            alt.Tooltip("verdict:N"),
        ],
    )
    layers: list[alt.Chart] = [lines, points]
    if p99_bound_ms is not None:
        bound = pl.DataFrame(
            {"latency_ms": [float(p99_bound_ms)], "text": [f"p99 bound {p99_bound_ms:g} ms"]}
        )
        rule = alt.Chart(bound).encode(y="latency_ms:Q")
        layers += [
            rule.mark_rule(color="#777777", strokeDash=[2, 2]),
            rule.mark_text(align="left", dx=4, dy=-6, color="#777777").encode(x=alt.value(0), text="text:N"),
        ]
    return alt.layer(*layers).properties(
        title=alt.Title(
            "Latency per ceiling step",
            subtitle="p50 solid, p99 dashed; latency counted from when the request was due",
        ),
        width=WIDTH,
        height=HEIGHT,
    )


# --- latency distributions -----------------------------------------------------------------

_HDR_COLUMNS = ("percentile", "latency_ms", "one_over_one_minus_p", "count")
_KEY_TITLES = {"offered_rps": "offered rate (req/s)", "step": "step", "service": "service"}
# 1 / (1 - p) at 50%, 90%, 99%, ...: the ticks of an HDR-style percentile axis. The minimum
# (p0, at 1) gets no tick: its label would collide with 50%'s (at 2) and one of them be hidden.
_HDR_TICKS = (2.0, 10.0, 100.0, 1_000.0, 10_000.0, 100_000.0, 1_000_000.0)


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
    top = float(data["one_over_one_minus_p"].max() or 1.0)
    ticks = [t for t in _HDR_TICKS if t <= top * 1.000001] or [_HDR_TICKS[0]]
    chart = (
        alt.Chart(data)
        .mark_line(point=True, strokeWidth=2)
        .encode(
            x=alt.X(
                "one_over_one_minus_p:Q",
                title="percentile (log scale of 1 / (1 - p))",
                scale=alt.Scale(type="log", domain=[1, max(ticks[-1], top)]),
                axis=alt.Axis(values=ticks, labelExpr="format(100 - 100 / datum.value, '.4~f') + '%'"),
            ),
            y=alt.Y("latency_ms:Q", title="latency (ms, log scale)", scale=alt.Scale(type="log")),
            color=_series_color(keys),
            tooltip=[
                *(alt.Tooltip(f"{k}:N", title=_KEY_TITLES.get(k, k)) for k in keys),
                alt.Tooltip("percentile:Q", title="percentile (%)", format=".3~f"),
                alt.Tooltip("latency_ms:Q", title="latency (ms)", format=",.2f"),
                alt.Tooltip("count:Q", title="samples", format=","),
            ],
        )
    )
    title = alt.Title(
        "Latency by percentile", subtitle="HDR style: the tail to the right; from the intended send time"
    )
    if not panels:
        return chart.properties(title=title, width=WIDTH, height=HEIGHT)
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
        title=title,
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
    timed = with_timings(rows)
    if not include_warmup:
        timed = timed.filter(pl.col("phase") == "measure")
    keys = [by] if by else []
    group = keys or ["__all"]
    binned = (
        timed.filter((pl.col("status") > 0) & (pl.col("latency_ms") > 0))
        .with_columns(pl.lit(0).alias("__all"), bin=(pl.col("latency_ms").log10() * bins_per_decade).floor())
        .group_by([*group, "bin"])
        .agg(requests=pl.len())
        .with_columns(
            share_pct=100 * pl.col("requests") / pl.col("requests").sum().over(group),
            low_ms=10 ** (pl.col("bin") / bins_per_decade),
            high_ms=10 ** ((pl.col("bin") + 1) / bins_per_decade),
        )
        # The bin's geometric centre: where it sits on the log axis.
        .with_columns(latency_ms=(pl.col("low_ms") * pl.col("high_ms")).sqrt())
        .sort([*group, "bin"])
        .select(*keys, "latency_ms", "low_ms", "high_ms", "requests", "share_pct")
    )
    return (
        alt.Chart(binned)
        .mark_line(point=alt.OverlayMarkDef(size=20), strokeWidth=2)
        .encode(
            x=alt.X(
                "latency_ms:Q",
                title="latency from intended send (ms, log scale)",
                scale=alt.Scale(type="log"),
            ),
            y=alt.Y("share_pct:Q", title="share of requests (%)"),
            color=_series_color(keys) if by in (None, "service") else alt.Color(f"{by}:N"),
            tooltip=[
                *(alt.Tooltip(f"{k}:N") for k in keys),
                alt.Tooltip("low_ms:Q", title="from (ms)", format=",.3~f"),
                alt.Tooltip("high_ms:Q", title="to (ms)", format=",.3~f"),
                alt.Tooltip("requests:Q", format=","),
                alt.Tooltip("share_pct:Q", title="share (%)", format=".2f"),
            ],
        )
        .properties(
            title=alt.Title(
                "Latency distribution", subtitle=f"{bins_per_decade} logarithmic bins per decade"
            ),
            width=WIDTH,
            height=HEIGHT,
        )
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
    # Each panel embeds its own rows; the throughput panel two per window (offered, answered).
    data = _thin(
        data,
        keys=keys,
        max_rows=MAX_CHART_ROWS // 2,
        aggs=[pl.col("t_s").min(), pl.col("p99_ms").max(), pl.col("throughput_rps", "offered_rps").mean()],
    ).with_columns(
        # One line per group: no line joins the end of one step to the start of the next.
        __line=pl.concat_str([pl.col(k).cast(pl.String) for k in keys], separator="/") if keys else pl.lit("")
    )
    x = alt.X("t_s:Q", title="time since the service's first request (s)")
    key_tips = [alt.Tooltip(f"{k}:N", title=_KEY_TITLES.get(k, k)) for k in keys]
    latency = (
        alt.Chart(data.filter(pl.col("p99_ms") > 0))
        .mark_line(point=alt.OverlayMarkDef(size=12), strokeWidth=1.5)
        .encode(
            x=x,
            y=alt.Y("p99_ms:Q", title="p99 latency (ms, log scale)", scale=alt.Scale(type="log")),
            color=_series_color(keys),
            detail="__line:N",
            tooltip=[
                *key_tips,
                alt.Tooltip("t_s:Q", title="time (s)", format=",.1f"),
                alt.Tooltip("p99_ms:Q", title="p99 (ms)", format=",.2f"),
            ],
        )
        .properties(width=WIDTH, height=200)
    )
    rates = data.unpivot(
        on=["throughput_rps", "offered_rps"],
        index=[*keys, "__line", "t_s"],
        variable_name="rate",
        value_name="rps",
    ).with_columns(
        pl.col("rate").replace_strict({"throughput_rps": "answered 2xx", "offered_rps": "offered"})
    )
    throughput = (
        alt.Chart(rates)
        .mark_line(strokeWidth=1.5)
        .encode(
            x=x,
            y=alt.Y("rps:Q", title="rate (req/s)"),
            color=_series_color(keys, legend=False),
            detail="__line:N",
            strokeDash=alt.StrokeDash(
                "rate:N",
                title="rate",
                scale=alt.Scale(domain=["answered 2xx", "offered"], range=[[1, 0], [4, 3]]),
            ),
            tooltip=[
                *key_tips,
                alt.Tooltip("t_s:Q", title="time (s)", format=",.1f"),
                alt.Tooltip("rate:N"),
                alt.Tooltip("rps:Q", title="req/s", format=",.0f"),
            ],
        )
        .properties(width=WIDTH, height=160)
    )
    return (
        alt.vconcat(latency, throughput)
        .resolve_scale(x="shared")
        .properties(
            title=alt.Title(
                "Latency and throughput over time",
                subtitle="p99 per window (by intended send) above requests answered per second",
            )
        )
    )


# --- delivery ------------------------------------------------------------------------------


def delivery_bars(table: pl.DataFrame) -> alt.LayerChart:
    """Accepted, delivered (found in Kafka) and lost requests per service, as grouped bars.

    `table` comes from `analysis.delivery.delivery_table` (service, accepted, delivered,
    lost, ...). Each bar is labelled with its count, so a zero (no loss) is visible.
    """
    measures = ["accepted", "delivered", "lost"]
    data = table.select("service", *measures).unpivot(
        on=measures, index="service", variable_name="outcome", value_name="requests"
    )
    base = alt.Chart(data).encode(
        x=alt.X("outcome:N", title=None, sort=measures, axis=alt.Axis(labelAngle=0)),
        xOffset=alt.XOffset("service:N", scale=alt.Scale(domain=list(SERVICE_COLORS))),
        y=alt.Y("requests:Q", title="requests"),
    )
    bars = base.mark_bar().encode(
        color=_service_color(),
        tooltip=[alt.Tooltip("service:N"), alt.Tooltip("outcome:N"), alt.Tooltip("requests:Q", format=",")],
    )
    labels = base.mark_text(dy=-6, fontSize=11).encode(text=alt.Text("requests:Q", format=","))
    return alt.layer(bars, labels).properties(
        title=alt.Title(
            "Accepted requests found in Kafka",
            subtitle="accepted = answered 202; lost = accepted but no record in the topic",
        ),
        width=360,
        height=HEIGHT,
    )


# --- memory, start-up, claims --------------------------------------------------------------


def memory_over_time(samples: pl.DataFrame, gc: pl.DataFrame | None = None) -> alt.Chart | alt.VConcatChart:
    """Resident memory (MiB) over time per service; below it, GC pauses (ms) as rules.

    `samples`: t_ns (epoch ns), rss_bytes, service. `gc` (optional): wall_ns (epoch ns, the
    end of the pause), pause_ms, kind, and `service` (taken as "node" when absent: only V8's
    GC is traced). Time is seconds since each service's first sample, on one axis for both
    panels. Over 5,000 samples, consecutive samples are merged keeping the highest RSS (the
    envelope a host must provide); only the `MAX_GC_RULES` longest pauses are drawn. The
    pauses get a panel of their own because a loaded Node process collects several times a
    second: rules across the memory line would hide it.
    """
    per_service = MAX_CHART_ROWS - (MAX_GC_RULES if gc is not None else 0)
    starts = samples.group_by("service").agg(t0_ns=pl.col("t_ns").min())
    data = (
        samples.sort("service", "t_ns")
        .join(starts, on="service")
        .select(
            "service", t_s=(pl.col("t_ns") - pl.col("t0_ns")) / NS_PER_S, rss_mib=pl.col("rss_bytes") / MIB
        )
    )
    data = _thin(
        data, keys=["service"], max_rows=per_service, aggs=[pl.col("t_s").min(), pl.col("rss_mib").max()]
    )
    x = alt.X("t_s:Q", title="time since the service's first sample (s)")
    title = alt.Title("Memory over time", subtitle="resident set size (RSS) sampled from /proc")
    memory = (
        alt.Chart(data)
        .mark_line(strokeWidth=2)
        .encode(
            x=x,
            y=alt.Y("rss_mib:Q", title="resident memory, RSS (MiB)"),
            color=_service_color(),
            tooltip=[
                alt.Tooltip("service:N"),
                alt.Tooltip("t_s:Q", title="time (s)", format=",.1f"),
                alt.Tooltip("rss_mib:Q", title="RSS (MiB)", format=",.1f"),
            ],
        )
        .properties(width=WIDTH, height=HEIGHT)
    )
    if gc is None or gc.height == 0:
        return memory.properties(title=title)
    if "service" not in gc.columns:
        gc = gc.with_columns(service=pl.lit(GC_DEFAULT_SERVICE))
    pauses = (
        gc.join(starts, on="service")  # a pause of a service without samples has no place
        .select("service", "kind", "pause_ms", t_s=(pl.col("wall_ns") - pl.col("t0_ns")) / NS_PER_S)
        .sort("pause_ms", descending=True)
        .head(MAX_GC_RULES)
    )
    # Light to dark grey by each kind's longest pause: the kind that stops longest is darkest.
    kinds = pauses.group_by("kind").agg(pl.col("pause_ms").max()).drop_nulls("kind").sort("pause_ms")["kind"]
    kinds = kinds.to_list()
    rules = (
        alt.Chart(pauses)
        .mark_rule(strokeWidth=1.5)
        .encode(
            x=x,
            y=alt.Y("pause_ms:Q", title="GC pause (ms)"),
            y2=alt.datum(0),
            color=alt.Color(
                "kind:N", title="GC kind", scale=alt.Scale(domain=kinds, scheme="greys"), legend=alt.Legend()
            ),
            tooltip=[
                alt.Tooltip("service:N"),
                alt.Tooltip("kind:N", title="GC kind"),
                alt.Tooltip("pause_ms:Q", title="pause (ms)", format=",.2f"),
                alt.Tooltip("t_s:Q", title="time (s)", format=",.2f"),
            ],
        )
        .properties(width=WIDTH, height=90)
    )
    note = f"; below: GC pauses (the {MAX_GC_RULES:,} longest at most)"
    return (
        alt.vconcat(memory, rules)
        .resolve_scale(x="shared", color="independent")
        .properties(title=alt.Title(title.text, subtitle=title.subtitle + note))
    )


def cold_start_distribution(runs: pl.DataFrame) -> alt.LayerChart:
    """Cold-start time (ms) per service: one tick per start, over a min-max box plot.

    `runs`: service, cold_start_ms (spawn to the first accepted request), one row per start.
    """
    base = alt.Chart(runs.select("service", "cold_start_ms")).encode(
        # Log scale: starts differ by an order of magnitude between runtimes, and each
        # service's spread should stay visible.
        x=alt.X(
            "cold_start_ms:Q",
            title="cold start: spawn to first 202 (ms, log scale)",
            scale=alt.Scale(type="log"),
        ),
        y=alt.Y("service:N", title=None, sort=list(SERVICE_COLORS)),
        color=_service_color(),
    )
    box = base.mark_boxplot(extent="min-max", size=24, opacity=0.35)
    ticks = base.mark_tick(thickness=2, size=30).encode(
        tooltip=[
            alt.Tooltip("service:N"),
            alt.Tooltip("cold_start_ms:Q", title="cold start (ms)", format=",.1f"),
        ]
    )
    return alt.layer(box, ticks).properties(
        title=alt.Title("Cold start", subtitle="each tick one start of a fresh process"),
        width=WIDTH,
        height=140,
    )


def claims_ratios(claims: pl.DataFrame) -> alt.LayerChart:
    """The article's claimed ratio beside the measured one (with its interval), per metric.

    `claims`: metric, claim_ratio, measured_ratio, ci_low, ci_high (dimensionless ratios,
    e.g. Rust / Node; interval bounds may be null). Log x axis, so 0.5 and 2 are as far from
    1.0 (no difference, marked) as each other. Metrics keep the frame's order.
    """
    order = claims["metric"].to_list()
    points = claims.unpivot(
        on=["claim_ratio", "measured_ratio"], index="metric", variable_name="source", value_name="ratio"
    ).with_columns(
        pl.col("source").replace_strict({"claim_ratio": "article claims", "measured_ratio": "measured"})
    )
    points = points.filter(pl.col("ratio") > 0)
    intervals = claims.filter(
        pl.col("ci_low").is_not_null() & pl.col("ci_high").is_not_null() & (pl.col("ci_low") > 0)
    )
    x_title = "ratio (log scale; 1 = no difference)"
    y = alt.Y("metric:N", title=None, sort=order)
    one = (
        alt.Chart(pl.DataFrame({"ratio": [1.0]}))
        .mark_rule(color="#999999", strokeDash=[4, 4])
        .encode(x=alt.X("ratio:Q", title=x_title))
    )
    bars = (
        alt.Chart(intervals)
        .mark_rule(strokeWidth=2, color="#0072B2")
        .encode(
            x=alt.X("ci_low:Q", title=x_title),
            x2="ci_high:Q",
            y=y,
            tooltip=[
                alt.Tooltip("metric:N"),
                alt.Tooltip("ci_low:Q", title="interval from", format=".3~g"),
                alt.Tooltip("ci_high:Q", title="interval to", format=".3~g"),
            ],
        )
    )
    dots = (
        alt.Chart(points)
        .mark_point(size=90, filled=True, opacity=1)
        .encode(
            x=alt.X("ratio:Q", title=x_title, scale=alt.Scale(type="log")),
            y=y,
            color=alt.Color(
                "source:N",
                title=None,
                scale=alt.Scale(domain=["article claims", "measured"], range=["#999999", "#0072B2"]),
            ),
            shape=alt.Shape(
                "source:N",
                title=None,
                scale=alt.Scale(domain=["article claims", "measured"], range=["diamond", "circle"]),
            ),
            tooltip=[alt.Tooltip("metric:N"), alt.Tooltip("source:N"), alt.Tooltip("ratio:Q", format=".3~g")],
        )
    )
    return alt.layer(one, bars, dots).properties(
        title=alt.Title(
            "Claims vs measured", subtitle="measured ratio with its interval; dashed line: no difference"
        ),
        width=WIDTH,
        height=alt.Step(28),
    )


# --- V8 heap, GC pauses, CPU per thread, deployment footprint ---------------------------

# Okabe-Ito colors (as SERVICE_COLORS) for categories that are not services.
_CATEGORY_COLORS = ("#0072B2", "#E69F00", "#56B4E9", "#CC79A7", "#F0E442", "#000000")
# One color per V8 collector in every chart; kinds not listed take the remaining colors.
GC_KIND_COLORS: dict[str, str] = {
    "Scavenge": "#0072B2",
    "Mark-Compact": "#E69F00",
    "Minor Mark-Sweep": "#56B4E9",
    "Mark-Sweep": "#CC79A7",
}
# Collections drawn one by one up to this many per service; beyond, per time window.
MAX_HEAP_EVENTS = 1_500
# Time windows of the windowed heap chart, at most.
MAX_HEAP_WINDOWS = 600


def _kind_order(kinds: list[str]) -> list[str]:
    """`kinds` in the order of GC_KIND_COLORS (young generation first), others after by name."""
    known = list(GC_KIND_COLORS)
    return sorted(kinds, key=lambda kind: (known.index(kind) if kind in known else len(known), kind))


def _kind_colors(kinds: list[str]) -> list[str]:
    spare = iter(c for c in _CATEGORY_COLORS if c not in GC_KIND_COLORS.values())
    return [GC_KIND_COLORS.get(kind) or next(spare, NEUTRAL) for kind in kinds]


def _gc_with_service(gc: pl.DataFrame) -> pl.DataFrame:
    return gc if "service" in gc.columns else gc.with_columns(service=pl.lit(GC_DEFAULT_SERVICE))


def _gc_times(gc: pl.DataFrame, samples: pl.DataFrame | None) -> tuple[pl.DataFrame, str]:
    """`gc` (with `service`) plus `t_s`: the end of each pause in seconds since the service's
    first sample (only pauses from then on) if `samples` is given, else since its first
    event; and the axis title."""
    gc = _gc_with_service(gc).filter(pl.col("wall_ns").is_not_null())
    if samples is not None:
        starts = samples.group_by("service").agg(t0_ns=pl.col("t_ns").min())
        title = "time since the service's first sample (s)"
    else:
        starts = gc.group_by("service").agg(t0_ns=pl.col("wall_ns").min())
        title = "time since the first traced GC (s)"
    timed = (
        gc.join(starts, on="service")
        .with_columns(t_s=(pl.col("wall_ns") - pl.col("t0_ns")) / NS_PER_S)
        .filter(pl.col("t_s") >= 0)
        .sort("service", "wall_ns")
    )
    return timed, title


def heap_over_time(gc: pl.DataFrame, samples: pl.DataFrame | None = None) -> alt.LayerChart:
    """The V8 heap (MiB) before and after each collection, over time: the heap's sawtooth.

    `gc` is a GC frame (`telemetry.gc_trace.GC_SCHEMA`: wall_ns at the end of each pause,
    pause_ms, kind, heap_before_mb / heap_after_mb = heap objects, committed_after_mb =
    memory the heap holds from the OS; V8 prints MB meaning MiB). With `samples` (the same
    run's process samples) time is seconds since the service's first sample, the axis of
    `memory_over_time`, and collections before it (start-up) are left out.

    Up to `MAX_HEAP_EVENTS` collections per service, each is drawn: the solid line joins a
    collection's "before" (at the start of its pause) to its "after" (at its end), so
    allocation shows as climbs and collections as drops; dots mark each "after", coloured
    by kind (`GC_KIND_COLORS`). A loaded service collects many times a second, too often to
    draw one by one: then time is cut into equal windows (at most `MAX_HEAP_WINDOWS`) and
    each window shows the band from the lowest "after" to the highest "before" (the
    sawtooth's envelope) and, as dots, the lowest "after" of each kind. The dashed line is
    the committed heap (its highest per window).
    """
    timed, x_title = _gc_times(gc, samples)
    events = timed.select(
        "service",
        "kind",
        "t_s",
        "pause_ms",
        start_s=pl.col("t_s") - pl.col("pause_ms") / 1_000,
        before_mib=pl.col("heap_before_mb"),
        after_mib=pl.col("heap_after_mb"),
        committed_mib=pl.col("committed_after_mb"),
    )
    kinds = _kind_order(events["kind"].drop_nulls().unique().to_list())
    kind_color = alt.Color(
        "kind:N", title="GC kind", scale=alt.Scale(domain=kinds, range=_kind_colors(kinds))
    )
    x = alt.X("t_s:Q", title=x_title)
    y_title = "V8 heap (MiB)"
    per_service = events.group_by("service").len()["len"].max() or 0
    tooltip_common = [alt.Tooltip("service:N"), alt.Tooltip("t_s:Q", title="time (s)", format=",.2f")]
    if per_service <= MAX_HEAP_EVENTS:
        saw = (
            pl.concat(
                [
                    events.select("service", t_s="start_s", heap_mib="before_mib", order=pl.lit(0)),
                    events.select("service", "t_s", heap_mib="after_mib", order=pl.lit(1)),
                ]
            )
            .drop_nulls("heap_mib")
            .sort("service", "t_s", "order")
            .drop("order")
        )
        body = (
            alt.Chart(saw)
            .mark_line(strokeWidth=1.2, color=SERVICE_COLORS["node"])
            .encode(x=x, y=alt.Y("heap_mib:Q", title=y_title), detail="service:N")
        )
        committed_data = events.select("service", "t_s", "committed_mib")
        dots_data = events.drop("start_s")
        subtitle = "heap objects before -> after each collection (solid); dashed: heap committed from the OS"
    else:
        span = float(events["t_s"].max() or 0.0)
        window_s = max(span / MAX_HEAP_WINDOWS, 0.001)
        nice = 10 ** math.floor(math.log10(window_s))
        window_s = next(m * nice for m in (1, 2, 5, 10) if m * nice >= window_s)
        windowed = events.with_columns(window=(pl.col("t_s") / window_s).floor())
        band = (
            windowed.group_by("service", "window")
            .agg(
                floor_mib=pl.col("after_mib").min(),
                peak_mib=pl.col("before_mib").max(),
                committed_mib=pl.col("committed_mib").max(),
                collections=pl.len(),
            )
            .with_columns(t_s=(pl.col("window") + 0.5) * window_s)
            .sort("service", "t_s")
        )
        body = (
            alt.Chart(band)
            .mark_area(color=SERVICE_COLORS["node"], opacity=0.45)
            .encode(
                x=x,
                y=alt.Y("floor_mib:Q", title=y_title),
                y2="peak_mib:Q",
                detail="service:N",
                tooltip=[
                    *tooltip_common,
                    alt.Tooltip("collections:Q"),
                    alt.Tooltip("floor_mib:Q", title="lowest after (MiB)", format=",.1f"),
                    alt.Tooltip("peak_mib:Q", title="highest before (MiB)", format=",.1f"),
                ],
            )
        )
        committed_data = band.select("service", "t_s", "committed_mib")
        dots_data = (
            windowed.group_by("service", "window", "kind")
            .agg(
                after_mib=pl.col("after_mib").min(),
                before_mib=pl.col("before_mib").max(),
                pause_ms=pl.col("pause_ms").max(),
                committed_mib=pl.col("committed_mib").max(),
            )
            .with_columns(t_s=(pl.col("window") + 0.5) * window_s)
            .drop("window")
            .sort("service", "t_s")
        )
        subtitle = (
            f"{events.height:,} collections in {window_s:g}-s windows: the band spans each window's lowest "
            "'after' to highest 'before'; dots: the lowest 'after' per kind; dashed: heap committed"
        )
    committed = (
        alt.Chart(committed_data.drop_nulls())
        .mark_line(strokeWidth=1.2, strokeDash=[4, 3], color="#777777")
        .encode(x=x, y=alt.Y("committed_mib:Q", title=y_title), detail="service:N")
    )
    dots = (
        alt.Chart(dots_data)
        .mark_point(filled=True, opacity=0.9, size=22)
        .encode(
            x=x,
            y=alt.Y("after_mib:Q", title=y_title),
            color=kind_color,
            tooltip=[
                *tooltip_common,
                alt.Tooltip("kind:N", title="GC kind"),
                alt.Tooltip("before_mib:Q", title="heap before (MiB)", format=",.1f"),
                alt.Tooltip("after_mib:Q", title="heap after (MiB)", format=",.1f"),
                alt.Tooltip("committed_mib:Q", title="committed (MiB)", format=",.1f"),
                alt.Tooltip("pause_ms:Q", title="pause (ms)", format=",.2f"),
            ],
        )
    )
    return alt.layer(committed, body, dots).properties(
        title=alt.Title("V8 heap over time (Node)", subtitle=subtitle), width=WIDTH, height=HEIGHT
    )


def gc_pause_distribution(gc: pl.DataFrame, *, bins_per_decade: int = 10) -> alt.VConcatChart:
    """How long V8's pauses are, per kind: a histogram of pause lengths on log bins, one
    panel per kind on a shared axis.

    `gc` is a GC frame (kind, pause_ms). Binned here (`bins_per_decade` bins to a factor of
    ten), so the chart embeds one row per bin and kind. Pauses printed as 0.00 ms go into
    the bin of 0.01 ms (a log axis cannot place 0). Each panel's title gives the kind's
    count, p50, p99 and longest pause (nearest rank); a dashed rule marks its p99. The
    count axis is symlog, so a few long pauses stay visible beside thousands of short ones.
    Kinds come in the order of `GC_KIND_COLORS` (young generation first), others after.
    """
    floor_ms = 0.01  # V8 prints pauses to 0.01 ms
    pauses = gc.select("kind", pause_ms=pl.col("pause_ms").clip(lower_bound=floor_ms)).drop_nulls()
    if pauses.height == 0:
        raise ValueError("gc_pause_distribution: no GC events with a kind and a pause")
    stats = (
        pauses.group_by("kind")
        .agg(
            events=pl.len(),
            p50_ms=nearest_rank(pl.col("pause_ms"), 0.5),
            p99_ms=nearest_rank(pl.col("pause_ms"), 0.99),
            max_ms=pl.col("pause_ms").max(),
        )
        .with_columns(order=pl.col("kind").replace_strict(
            {k: i for i, k in enumerate(GC_KIND_COLORS)}, default=len(GC_KIND_COLORS), return_dtype=pl.Int64
        ))
        .sort("order", "kind")
    )
    binned = (
        pauses.with_columns(bin=(pl.col("pause_ms").log10() * bins_per_decade).floor())
        .group_by("kind", "bin")
        .agg(pauses=pl.len())
        .with_columns(
            low_ms=10 ** (pl.col("bin") / bins_per_decade),
            high_ms=10 ** ((pl.col("bin") + 1) / bins_per_decade),
        )
        .sort("kind", "bin")
        .drop("bin")
    )
    low = float(binned["low_ms"].min() or floor_ms)
    high = float(binned["high_ms"].max() or 1.0)
    x = alt.X(
        "low_ms:Q",
        title="pause (ms, log scale)",
        scale=alt.Scale(type="log", domain=[low, high], nice=False),
    )
    panels = []
    colors = dict(zip(stats["kind"], _kind_colors(stats["kind"].to_list()), strict=True))
    most = int(binned["pauses"].max() or 1)
    ticks = [0, *(10**e for e in range(0, len(str(most)) + 1) if 10**e <= most * 3)]
    for row in stats.iter_rows(named=True):
        color = colors[row["kind"]]
        mine = binned.filter(pl.col("kind") == row["kind"])
        bars = (
            alt.Chart(mine)
            .mark_bar(color=color, opacity=0.85, stroke="white", strokeWidth=0.5)
            .encode(
                x=x,
                x2="high_ms:Q",
                # symlog: a handful of long pauses stays visible next to thousands of short ones
                y=alt.Y(
                    "pauses:Q",
                    title="pauses (log scale)",
                    scale=alt.Scale(type="symlog"),
                    axis=alt.Axis(values=ticks, labelExpr="format(datum.value, ',.0f')"),
                ),
                y2=alt.datum(0),
                tooltip=[
                    alt.Tooltip("kind:N", title="GC kind"),
                    alt.Tooltip("low_ms:Q", title="from (ms)", format=",.3~f"),
                    alt.Tooltip("high_ms:Q", title="to (ms)", format=",.3~f"),
                    alt.Tooltip("pauses:Q", format=","),
                ],
            )
        )
        p99 = pl.DataFrame({"low_ms": [row["p99_ms"]], "text": [f"p99 {row['p99_ms']:.2f} ms"]})
        rule = alt.Chart(p99).encode(x=x)
        title = (
            f"{row['kind']}: {row['events']:,} pauses; p50 {row['p50_ms']:.2f} ms, "
            f"p99 {row['p99_ms']:.2f} ms, longest {row['max_ms']:.2f} ms"
        )
        panels.append(
            alt.layer(
                bars,
                rule.mark_rule(color="#333333", strokeDash=[4, 3]),
                rule.mark_text(align="left", dx=4, dy=-4, baseline="top", color="#333333")
                .encode(y=alt.value(0), text="text:N"),
            ).properties(title=alt.Title(title, fontSize=12, anchor="start"), width=WIDTH, height=110)
        )
    return (
        alt.vconcat(*panels)
        .resolve_scale(x="shared")
        .properties(
            title=alt.Title(
                "GC pauses by kind",
                subtitle=f"main-thread pause per collection; {bins_per_decade} log bins per decade; "
                "dashed: the kind's p99",
            )
        )
    )


def cpu_by_thread_bars(cpu: pl.DataFrame, *, top: int = 8, min_core_pct: float = 0.1) -> alt.LayerChart:
    """CPU per thread (% of one core) per service, as horizontal bars, busiest first.

    `cpu` is `telemetry.sampler.cpu_by_thread` of one service's thread samples (by "tid"
    or "name"), with a `service` column added (`report.cpu_by_thread_per_service`). A row
    is labelled with the thread name, "(main)" for the thread whose tid is the pid (Node's
    event loop) and "x N" for N same-named threads summed. Per service the `top` busiest
    rows using at least `min_core_pct` are drawn and the rest summed into one "other
    threads" row (idle threads are noise next to the ones doing the work). The dashed rule
    at 100% is one core: a thread cannot pass it, and a single-threaded service is capped
    by it.
    """
    threads = pl.col("threads") if "threads" in cpu.columns else pl.lit(1)
    labelled = cpu.with_columns(
        label=pl.concat_str(
            pl.col("name"),
            pl.when(pl.col("main_thread")).then(pl.lit(" (main)")).otherwise(pl.lit("")),
            pl.when(threads > 1).then(pl.format(" x {}", threads)).otherwise(pl.lit("")),
        ),
        threads=threads,
        rank=pl.col("core_pct").rank("ordinal", descending=True).over("service"),
    )
    drawn = (pl.col("rank") <= top) & (pl.col("core_pct") >= min_core_pct)
    shown = labelled.filter(drawn)
    rest = (
        labelled.filter(~drawn)
        .group_by("service")
        .agg(
            pl.col("threads").sum(),
            pl.col("cpu_user_s", "cpu_system_s", "core_pct").sum(),
            rank=pl.lit(top + 1),
        )
        .with_columns(label=pl.format("other threads x {}", "threads"))
    )
    data = pl.concat(
        [
            shown.select("service", "label", "threads", "cpu_user_s", "cpu_system_s", "core_pct", "rank"),
            rest.select("service", "label", "threads", "cpu_user_s", "cpu_system_s", "core_pct", "rank"),
        ],
        how="vertical_relaxed",
    ).with_columns(row=pl.format("{} · {}", "service", "label"))
    order = data.sort("service", "rank")["row"].to_list()
    top_pct = max(100.0, float(data["core_pct"].max() or 0.0)) * 1.12
    y = alt.Y("row:N", title=None, sort=order)
    x = alt.X("core_pct:Q", title="CPU (% of one core)", scale=alt.Scale(domain=[0, top_pct]))
    bars = (
        alt.Chart(data)
        .mark_bar()
        .encode(
            x=x,
            y=y,
            color=_service_color(),
            tooltip=[
                alt.Tooltip("service:N"),
                alt.Tooltip("label:N", title="thread"),
                alt.Tooltip("threads:Q"),
                alt.Tooltip("core_pct:Q", title="CPU (% of a core)", format=".1f"),
                alt.Tooltip("cpu_user_s:Q", title="user (s)", format=".2f"),
                alt.Tooltip("cpu_system_s:Q", title="system (s)", format=".2f"),
            ],
        )
    )
    text = (
        alt.Chart(data)
        .mark_text(align="left", dx=3, fontSize=10)
        .encode(x=x, y=y, text=alt.Text("core_pct:Q", format=".1f"))
    )
    one_core = (
        alt.Chart(pl.DataFrame({"core_pct": [100.0]}))
        .mark_rule(color="#777777", strokeDash=[4, 3])
        .encode(x=x)
    )
    return alt.layer(bars, text, one_core).properties(
        title=alt.Title(
            "CPU by thread",
            subtitle="CPU time over the sampled window; dashed: one full core",
        ),
        width=WIDTH,
        height=alt.Step(18),
    )


# Footprint parts, in stacking order; "base image libraries" are glibc / libgcc, which any
# glibc-based base image already holds (telemetry.startup._BASE_LIBRARY).
FOOTPRINT_CATEGORIES: dict[str, str] = {
    "executable": "executable",
    "shared-library": "shared libraries",
    "node_modules": "node_modules",
    "source": "sources",
    "base": "base image libraries (glibc, libgcc)",
}
_FOOTPRINT_COLORS = ("#0072B2", "#56B4E9", "#E69F00", "#CC79A7", "#BBBBBB")
MB = 1e6


def footprint_bars(parts: pl.DataFrame, *, article_mb: dict[str, float] | None = None) -> alt.LayerChart:
    """Deployment footprint per service (MB, 10^6 bytes) as bars stacked by part.

    `parts`: service, kind (executable, shared-library, node_modules, source), bytes, base
    (a library any glibc-based base image holds), one row per file or tree (the startup
    run's `footprint_parts`, see `report.footprint_parts`). Parts are summed per category;
    each bar is labelled with its total. `article_mb` (service -> MB), if given, adds a
    grey bar under each service's: the article's container image, which includes a base
    image (Node alpine, distroless cc) the footprint does not.
    """
    category = (
        pl.when(pl.col("base"))
        .then(pl.lit(FOOTPRINT_CATEGORIES["base"]))
        .otherwise(pl.col("kind").replace_strict(FOOTPRINT_CATEGORIES, default=pl.col("kind")))
    )
    measured = (
        parts.with_columns(category=category)
        .group_by("service", "category")
        .agg(mb=pl.col("bytes").sum() / MB, parts=pl.len())
        .with_columns(row=pl.format("{}: measured footprint", "service"))
    )
    article_label = "article's container image (incl. base image)"
    frames = [measured]
    if article_mb:
        frames.append(
            pl.DataFrame(
                {
                    "service": list(article_mb),
                    "category": [article_label] * len(article_mb),
                    "mb": [float(v) for v in article_mb.values()],
                    "parts": [1] * len(article_mb),
                },
                schema_overrides={"parts": measured.schema["parts"]},
            ).with_columns(row=pl.format("{}: article's image", "service"))
        )
    names = [*FOOTPRINT_CATEGORIES.values(), article_label]
    data = (
        pl.concat(frames, how="vertical_relaxed")
        .with_columns(
            order=pl.col("category").replace_strict(
                {c: i for i, c in enumerate(names)}, default=len(names), return_dtype=pl.Int64
            )
        )
        .sort("service", "row", "order")
    )
    totals = data.group_by("service", "row").agg(mb=pl.col("mb").sum())
    rows = data.select("service", "row").unique().sort(
        pl.col("service").replace_strict({s: i for i, s in enumerate(SERVICE_COLORS)}, default=99),
        "row",
        descending=[False, True],
    )["row"].to_list()
    palette = dict(zip(names, [*_FOOTPRINT_COLORS, "#EEEEEE"], strict=True))
    domain = [c for c in names if c in set(data["category"])]
    y = alt.Y("row:N", title=None, sort=rows)
    x_title = "deployment footprint (MB)"
    bars = (
        alt.Chart(data)
        .mark_bar(stroke="#555555", strokeWidth=0.5)
        .encode(
            x=alt.X("mb:Q", title=x_title, stack="zero"),
            y=y,
            color=alt.Color(
                "category:N",
                title="part",
                scale=alt.Scale(domain=domain, range=[palette[c] for c in domain]),
                legend=alt.Legend(orient="bottom", columns=2, labelLimit=400),
            ),
            order=alt.Order("order:Q"),
            tooltip=[
                alt.Tooltip("service:N"),
                alt.Tooltip("category:N", title="part"),
                alt.Tooltip("parts:Q", title="files / trees"),
                alt.Tooltip("mb:Q", title="MB", format=",.1f"),
            ],
        )
    )
    labels = (
        alt.Chart(totals)
        .mark_text(align="left", dx=4, fontSize=11)
        .encode(x=alt.X("mb:Q", title=x_title), y=y, text=alt.Text("mb:Q", format=",.1f"))
    )
    subtitle = "the files a deployment adds on top of a base image, by part"
    if article_mb:
        subtitle += "; grey: the article's image size"
    return alt.layer(bars, labels).properties(
        title=alt.Title("Deployment footprint", subtitle=subtitle), width=WIDTH, height=alt.Step(30)
    )


# --- files ---------------------------------------------------------------------------------


def save_png(chart: alt.TopLevelMixin, path: Path | str, *, scale: float = 2.0) -> Path:
    """Write `chart` as a PNG (vl-convert, no browser); `scale` = pixels per CSS pixel."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    chart.save(path, format="png", scale_factor=scale)
    return path


def save_svg(chart: alt.TopLevelMixin, path: Path | str) -> Path:
    """Write `chart` as an SVG (vl-convert, no browser)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    chart.save(path, format="svg")
    return path
