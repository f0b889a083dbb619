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

from ingestlab.analysis.latency import WINDOW_VALUES, with_timings

SERVICE_COLORS: dict[str, str] = {"node": "#009E73", "rust": "#D55E00"}
MAX_CHART_ROWS = 5_000
VERDICT_SHAPES: dict[str, str] = {"passed": "circle", "failed": "cross", "inconclusive": "triangle-up"}
NEUTRAL = "#555555"
WIDTH = 520
HEIGHT = 300
MIB = 2**20
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
    """`steps` plus `verdict`: passed, inconclusive (generator saturated) or failed."""
    return steps.with_columns(
        verdict=pl.when(pl.col("passed"))
        .then(pl.lit("passed"))
        .when(pl.col("engine_saturated"))
        .then(pl.lit("inconclusive"))
        .otherwise(pl.lit("failed"))
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
    achieved_rps, p99_ms, error_rate, passed, engine_saturated, reasons. A service keeping up
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
