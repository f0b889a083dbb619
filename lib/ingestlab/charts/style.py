"""What every chart shares: colors, sizes, the encodings and tooltips of common fields, the row
limit and the thinning that keeps charts under it, and how charts are rendered and saved."""

from __future__ import annotations

import math
from pathlib import Path

import altair as alt
import polars as pl

# A variant takes its program's hue, lighter or darker (ingestlab.variants); Python is blue.
SERVICE_COLORS: dict[str, str] = {"node": "#009E73", "rust": "#D55E00", "node-acked": "#66C2A5",
                                  "node-cluster": "#00573F", "rust-enqueue": "#F4A582", "python": "#0072B2",
                                  "python-enqueue": "#56B4E9"}
VERDICT_SHAPES: dict[str, str] = {"passed": "circle", "failed": "cross", "inconclusive": "triangle-up"}
NEUTRAL = "#555555"
# Okabe-Ito colors (as SERVICE_COLORS) for categories that are not services.
CATEGORY_COLORS = ("#0072B2", "#E69F00", "#56B4E9", "#CC79A7", "#F0E442", "#000000")
# Default plot size in CSS pixels.
WIDTH = 520
HEIGHT = 300
# The most rows one chart's data may hold (see `data_chart`).
MAX_CHART_ROWS = 5_000


# --- the row limit -------------------------------------------------------------------------


class TooManyRowsError(alt.MaxRowsError):
    """A chart would embed more than `MAX_CHART_ROWS` rows (an `alt.MaxRowsError`, which is what
    altair's own row limit raises)."""


def data_chart(data: pl.DataFrame) -> alt.Chart:
    """`alt.Chart(data)`, refusing `data` of more than `MAX_CHART_ROWS` rows.

    Altair embeds a chart's data in its spec (and so in the notebook and the report): a chart
    that would silently embed a million request rows fails loudly here instead. The check is
    ours, not altair's data transformer (`alt.data_transformers`, max_rows): that setting is
    process-wide, and neither importing the charts nor a notebook changing it should move it.
    """
    if data.height > MAX_CHART_ROWS:
        raise TooManyRowsError(
            f"a chart would embed {data.height:,} rows, more than MAX_CHART_ROWS ({MAX_CHART_ROWS:,}); "
            "aggregate or thin them first"
        )
    return alt.Chart(data)


def thin(frame: pl.DataFrame, *, keys: list[str], max_rows: int, aggs: list[pl.Expr]) -> pl.DataFrame:
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


# --- shared data shaping -------------------------------------------------------------------


def log_bin(column: str, bins_per_decade: int) -> pl.Expr:
    """The index of each value's logarithmic bin, `bins_per_decade` bins to a factor of ten
    (values must be > 0)."""
    return (pl.col(column).log10() * bins_per_decade).floor()


def log_bin_edges(bins_per_decade: int) -> dict[str, pl.Expr]:
    """`low_ms` and `high_ms`: the bounds (ms) of the bin whose index (`log_bin`) is in `bin`."""
    return {
        "low_ms": 10 ** (pl.col("bin") / bins_per_decade),
        "high_ms": 10 ** ((pl.col("bin") + 1) / bins_per_decade),
    }


def listed_order(column: str, names: list[str] | dict[str, str]) -> pl.Expr:
    """Each value's position in `names`; values not listed come after all listed ones."""
    return pl.col(column).replace_strict(
        {name: i for i, name in enumerate(names)}, default=len(names), return_dtype=pl.Int64
    )


# --- encodings -----------------------------------------------------------------------------


def services_of(data: pl.DataFrame) -> list[str]:
    """The services in `data["service"]`, in `SERVICE_COLORS` order (unknown names last)."""
    present = set(data["service"].unique()) if "service" in data.columns else set()
    return [s for s in SERVICE_COLORS if s in present] + sorted(present - set(SERVICE_COLORS))


def service_color(data: pl.DataFrame, *, legend: bool = True) -> alt.Color:
    """One color per service in every chart (`SERVICE_COLORS`); the scale and legend hold the
    services in `data` only, so a node/rust chart does not list every variant."""
    services = services_of(data)
    return alt.Color(
        "service:N",
        title="service",
        scale=alt.Scale(domain=services, range=[SERVICE_COLORS.get(s, NEUTRAL) for s in services]),
        legend=alt.Legend() if legend else None,
    )


def series_color(keys: list[str], data: pl.DataFrame, *,
                 legend: bool = True) -> alt.Color | alt.ValueChannelMixin:
    """The service color if `service` is among `keys`, else one neutral color."""
    return service_color(data, legend=legend) if "service" in keys else alt.value(NEUTRAL)


def verdict_shape() -> alt.Shape:
    """The same shape for a passed, failed or inconclusive ceiling step in every chart."""
    return alt.Shape(
        "verdict:N",
        title="step",
        scale=alt.Scale(domain=list(VERDICT_SHAPES), range=list(VERDICT_SHAPES.values())),
    )


# --- tooltips ------------------------------------------------------------------------------

# Fields that mean the same in several charts: (shorthand, title, number format).
_SHARED_TIPS: dict[str, tuple[str, str | None, str | None]] = {
    "service": ("service:N", None, None),
    "step": ("step:Q", None, None),
    "engine": ("engine:N", "generator", None),
    "offered_rps": ("offered_rps:Q", "offered (req/s)", ",.0f"),
    "latency_ms": ("latency_ms:Q", "latency (ms)", ",.2f"),
    "kind": ("kind:N", "GC kind", None),
    "pause_ms": ("pause_ms:Q", "pause (ms)", ",.2f"),
    "low_ms": ("low_ms:Q", "from (ms)", ",.3~f"),
    "high_ms": ("high_ms:Q", "to (ms)", ",.3~f"),
}


def tip(shorthand: str, title: str | None = None, fmt: str | None = None) -> alt.Tooltip:
    """One tooltip: `shorthand` ("field:type"), a title with the unit, a d3 number format."""
    options = {"title": title, "format": fmt}
    return alt.Tooltip(shorthand, **{k: v for k, v in options.items() if v is not None})


def tooltips(*fields: str | alt.Tooltip) -> list[alt.Tooltip]:
    """The tooltips of a mark, in order: a field named in `_SHARED_TIPS` ("service",
    "offered_rps", ...) with its shared title and format; any other string is a shorthand
    shown as it is ("verdict:N"); an `alt.Tooltip` (see `tip`) is kept."""
    return [
        (tip(*_SHARED_TIPS[f]) if f in _SHARED_TIPS else tip(f)) if isinstance(f, str) else f for f in fields
    ]


def time_tip(fmt: str = ",.1f") -> alt.Tooltip:
    """The tooltip of `t_s`, seconds on a chart's time axis."""
    return tip("t_s:Q", "time (s)", fmt)


def titled(
    chart: alt.TopLevelMixin,
    title: str,
    subtitle: str,
    *,
    width: int = WIDTH,
    height: int | alt.Step = HEIGHT,
) -> alt.TopLevelMixin:
    """`chart` with a title and subtitle at the given size (CSS pixels)."""
    return chart.properties(title=alt.Title(title, subtitle=subtitle), width=width, height=height)


# --- rendering and files -------------------------------------------------------------------


def use_static_renderer(*, scale: float = 2.0) -> None:
    """Render charts displayed in a notebook as PNG images (vl-convert, in the kernel).

    The executed notebooks become static HTML reports; altair's default renderer emits
    JavaScript that loads Vega from a CDN, which a report read offline cannot run. PNG rather
    than inline SVG: every viewer shows an image alike, while inline SVGs share the page's id
    namespace (vl-convert names clip paths clip1, clip2, ... per process). `scale` is pixels
    per CSS pixel (2 = sharp on high-density screens, shown at the chart's own size).
    Tooltips need the interactive renderer: `alt.renderers.enable("default")` while
    exploring in JupyterLab. This changes altair's renderer for the whole process: called by
    a notebook, never on import.
    """
    # vl-convert multiplies pixels by ppi / 72, and altair shows the image at pixels / (ppi /
    # 72): so ppi alone doubles the pixels while the chart keeps its size on the page.
    alt.renderers.enable("png", scale_factor=1, ppi=round(72 * scale))


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
