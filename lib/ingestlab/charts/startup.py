"""Charts of a service's start: cold-start time per start, and the deployment footprint by part."""

from __future__ import annotations

import altair as alt
import polars as pl

from ingestlab.charts.style import (
    SERVICE_COLORS,
    data_chart,
    listed_order,
    service_color,
    tip,
    titled,
    tooltips,
)
from ingestlab.units import MB

# Footprint parts, in stacking order; "base image libraries" are glibc / libgcc, which any
# glibc-based base image already holds (build.footprint._BASE_LIBRARY).
FOOTPRINT_CATEGORIES: dict[str, str] = {
    "executable": "executable",
    "shared-library": "shared libraries",
    "node_modules": "node_modules",
    "source": "sources",
    "base": "base image libraries (glibc, libgcc)",
}
_FOOTPRINT_COLORS = ("#0072B2", "#56B4E9", "#E69F00", "#CC79A7", "#BBBBBB")
_ARTICLE_PART = "article's container image (incl. base image)"
# Every part a footprint bar can stack, in stacking order, with its color.
_PART_COLORS = dict(
    zip([*FOOTPRINT_CATEGORIES.values(), _ARTICLE_PART], [*_FOOTPRINT_COLORS, "#EEEEEE"], strict=True)
)


def cold_start_distribution(runs: pl.DataFrame) -> alt.LayerChart:
    """Cold-start time (ms) per service: one tick per start, over a min-max box plot.

    `runs`: service, cold_start_ms (spawn to the first accepted request), one row per start.
    """
    base = data_chart(runs.select("service", "cold_start_ms")).encode(
        # Log scale: starts differ by an order of magnitude between runtimes, and each
        # service's spread should stay visible.
        x=alt.X(
            "cold_start_ms:Q",
            title="cold start: spawn to first 202 (ms, log scale)",
            scale=alt.Scale(type="log"),
        ),
        y=alt.Y("service:N", title=None, sort=list(SERVICE_COLORS)),
        color=service_color(runs),
    )
    box = base.mark_boxplot(extent="min-max", size=24, opacity=0.35)
    ticks = base.mark_tick(thickness=2, size=30).encode(
        tooltip=tooltips("service", tip("cold_start_ms:Q", "cold start (ms)", ",.1f"))
    )
    return titled(alt.layer(box, ticks), "Cold start", "each tick one start of a fresh process", height=140)


def _footprint_rows(parts: pl.DataFrame, article_mb: dict[str, float] | None) -> pl.DataFrame:
    """One row per bar (`row`) and part (`category`): its size `mb` (MB, 10^6 bytes), how many
    files or trees it sums (`parts`) and its stacking `order`."""
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
    frames = [measured]
    if article_mb:
        article = pl.DataFrame(
            {
                "service": list(article_mb),
                "category": [_ARTICLE_PART] * len(article_mb),
                "mb": [float(v) for v in article_mb.values()],
                "parts": [1] * len(article_mb),
            },
            schema_overrides={"parts": measured.schema["parts"]},
        )
        frames.append(article.with_columns(row=pl.format("{}: article's image", "service")))
    return (
        pl.concat(frames, how="vertical_relaxed")
        .with_columns(order=listed_order("category", list(_PART_COLORS)))
        .sort("service", "row", "order")
    )


def _part_color(data: pl.DataFrame) -> alt.Color:
    """The part color, with a legend of the parts `data` holds."""
    domain = [c for c in _PART_COLORS if c in set(data["category"])]
    return alt.Color(
        "category:N",
        title="part",
        scale=alt.Scale(domain=domain, range=[_PART_COLORS[c] for c in domain]),
        legend=alt.Legend(orient="bottom", columns=2, labelLimit=400),
    )


def footprint_bars(parts: pl.DataFrame, *, article_mb: dict[str, float] | None = None) -> alt.LayerChart:
    """Deployment footprint per service (MB, 10^6 bytes) as bars stacked by part.

    `parts`: service, kind (executable, shared-library, node_modules, source), bytes, base
    (a library any glibc-based base image holds), one row per file or tree (the startup
    run's `footprint_parts`, see `notebook.startup.footprint_parts`). Parts are summed per category;
    each bar is labelled with its total. `article_mb` (service -> MB), if given, adds a
    grey bar under each service's: the article's container image, which includes a base
    image (Node alpine, distroless cc) the footprint does not.
    """
    data = _footprint_rows(parts, article_mb)
    totals = data.group_by("service", "row").agg(mb=pl.col("mb").sum())
    # Services in their usual order; under each, the measured bar above the article's.
    rows = (
        data.select("service", "row")
        .unique()
        .sort(listed_order("service", SERVICE_COLORS), "row", descending=[False, True])["row"]
        .to_list()
    )
    y = alt.Y("row:N", title=None, sort=rows)
    x_title = "deployment footprint (MB)"
    bars = (
        data_chart(data)
        .mark_bar(stroke="#555555", strokeWidth=0.5)
        .encode(
            x=alt.X("mb:Q", title=x_title, stack="zero"),
            y=y,
            color=_part_color(data),
            order=alt.Order("order:Q"),
            tooltip=tooltips(
                "service",
                tip("category:N", "part"),
                tip("parts:Q", "files / trees"),
                tip("mb:Q", "MB", ",.1f"),
            ),
        )
    )
    labels = (
        data_chart(totals)
        .mark_text(align="left", dx=4, fontSize=11)
        .encode(x=alt.X("mb:Q", title=x_title), y=y, text=alt.Text("mb:Q", format=",.1f"))
    )
    subtitle = "the files a deployment adds on top of a base image, by part"
    if article_mb:
        subtitle += "; grey: the article's image size"
    return titled(alt.layer(bars, labels), "Deployment footprint", subtitle, height=alt.Step(30))


def image_bars(parts: pl.DataFrame, *, article_mb: dict[str, float] | None = None) -> alt.LayerChart:
    """Container image size per service and flavour (MB, 10^6 bytes), bars stacked by part.

    `parts`: service, flavour (minimal, conventional), part, mb: one row per part of an image
    (`notebook.startup.image_parts`). Each bar is labelled with its total; `article_mb`
    (service -> MB), if given, adds the article's image size as a black tick on each
    service's bars.
    """
    data = parts.with_columns(row=pl.col("service") + " · " + pl.col("flavour"))
    totals = data.group_by("service", "row").agg(mb=pl.col("mb").sum())
    rows = totals.sort(listed_order("service", SERVICE_COLORS), "row")["row"].to_list()
    y = alt.Y("row:N", title=None, sort=rows)
    x_title = "image size (MB)"
    bars = (
        data_chart(data.select("service", "flavour", "row", "part", "mb"))
        .mark_bar(stroke="#555555", strokeWidth=0.5)
        .encode(
            x=alt.X("mb:Q", title=x_title, stack="zero"),
            y=y,
            color=alt.Color("part:N", title="part", legend=alt.Legend(orient="bottom", columns=3)),
            tooltip=tooltips("service", tip("flavour:N"), tip("part:N"), tip("mb:Q", "MB", ",.1f")),
        )
    )
    labels = (
        data_chart(totals)
        .mark_text(align="left", dx=4, fontSize=11)
        .encode(x=alt.X("mb:Q", title=x_title), y=y, text=alt.Text("mb:Q", format=",.1f"))
    )
    layers = [bars, labels]
    if article_mb:
        claimed = totals.select("row", "service").with_columns(
            mb=pl.col("service").replace_strict(article_mb, default=None, return_dtype=pl.Float64)
        ).drop_nulls("mb")
        layers.append(
            data_chart(claimed)
            .mark_tick(color="black", thickness=3, size=26)
            .encode(x=alt.X("mb:Q", title=x_title), y=y,
                    tooltip=tooltips("service", tip("mb:Q", "article's image (MB)", ",.0f")))
        )
    subtitle = "as the engine reports each image, by part"
    if article_mb:
        subtitle += "; black: the article's image"
    return titled(alt.layer(*layers), "Container images", subtitle, height=alt.Step(30))
