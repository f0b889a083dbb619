"""CPU per core of a `cpu-cores` run: per service its busiest and other core as stacked bars,
the service's thread groups below what the broker, the load engine and the rest took of the
same core, with the article's value for the service marked."""

from __future__ import annotations

import altair as alt
import polars as pl

from ingestlab.analysis.claims import load_claims
from ingestlab.analysis.cpu_cores import ROLES, article_core_pct, group_means, role_means
from ingestlab.charts.style import CATEGORY_COLORS, data_chart, listed_order, tip, tooltips

# The parts of a core that are not the service's, lightest last (drawn above its threads).
CONTENTION_PARTS: dict[str, tuple[str, str]] = {
    "broker_pct": ("broker", "#888888"),
    "load_pct": ("load engine", "#B0B0B0"),
    "rest_pct": ("rest (other processes, interrupts)", "#D8D8D8"),
}
_ROLE_LABELS = {role: f"{role} core" for role in ROLES}


def core_parts(cores: pl.DataFrame, core_groups: pl.DataFrame) -> pl.DataFrame:
    """Per service, core role and part the mean share of that core over the trials (`core_pct`,
    % of the core): the service's thread groups (`kind` "service") and the contention parts
    (`kind` "others", `CONTENTION_PARTS`), with `order` (the service's groups first, biggest
    first, then broker, load engine, rest). `cores`, `core_groups`: the run's frames."""
    groups = group_means(core_groups, cores).select(
        "service", "role", part=pl.col("group"), kind=pl.lit("service"), core_pct=pl.col("core_pct"))
    others = role_means(cores).unpivot(on=list(CONTENTION_PARTS), index=["service", "role"],
                                       variable_name="part", value_name="core_pct").with_columns(
        pl.col("part").replace_strict({k: label for k, (label, _) in CONTENTION_PARTS.items()}),
        kind=pl.lit("others"))
    parts = pl.concat([groups, others.select(groups.columns)])
    rank = pl.col("core_pct").rank("ordinal", descending=True).over("service", "role", "kind")
    offset = pl.when(pl.col("kind") == "service").then(0).otherwise(1_000)
    labels = [label for label, _ in CONTENTION_PARTS.values()]
    return parts.with_columns(order=offset + pl.when(pl.col("kind") == "service").then(rank)
                              .otherwise(listed_order("part", labels)))


def _part_colors(parts: pl.DataFrame) -> alt.Scale:
    """Service thread groups in category colors (in the order first drawn), contention in greys."""
    groups = parts.filter(pl.col("kind") == "service").sort("order")["part"].unique(maintain_order=True)
    domain = [*groups, *(label for label, _ in CONTENTION_PARTS.values())]
    colors = [CATEGORY_COLORS[i % len(CATEGORY_COLORS)] for i in range(len(groups))]
    return alt.Scale(domain=domain, range=[*colors, *(color for _, color in CONTENTION_PARTS.values())])


def cpu_cores_bars(
    cores: pl.DataFrame, core_groups: pl.DataFrame, *, claims: pl.DataFrame | None = None
) -> alt.HConcatChart:
    """One panel per service: its busiest and other core (ranked in each trial by its share),
    each a stacked bar of % of that core (means over the trials): the service's thread groups
    at the bottom (`analysis.cpu_cores.thread_groups`), then what the broker, the load engine
    and the rest took of the core (greys), so a bar's height is the core's busy time; a black
    tick marks the article's value for the service's share (data/article_claims.csv, or
    `claims`), where the article names the service.

    `cores`, `core_groups`: a cpu-cores run's frames."""
    parts = core_parts(cores, core_groups).with_columns(core=pl.col("role").replace_strict(_ROLE_LABELS))
    article = article_core_pct(claims if claims is not None else load_claims()).with_columns(
        core=pl.col("role").replace_strict(_ROLE_LABELS))
    x = alt.X("core:N", title=None, sort=list(_ROLE_LABELS.values()), axis=alt.Axis(labelAngle=0))
    y_title, y_scale = "% of the core", alt.Scale(domain=[0, 100])
    color = alt.Color("part:N", title="used by", scale=_part_colors(parts))
    panels = []
    for service in parts["service"].unique(maintain_order=True):
        bars = (
            data_chart(parts.filter(pl.col("service") == service))
            .mark_bar()
            .encode(x=x, y=alt.Y("sum(core_pct):Q", title=y_title, scale=y_scale), color=color,
                    order=alt.Order("order:Q"),
                    tooltip=tooltips("service", tip("core:N", "core"), tip("part:N", "used by"),
                                     tip("core_pct:Q", "% of the core", ".1f")))
        )
        ticks = (
            data_chart(article.filter(pl.col("service") == service))
            .mark_tick(color="black", thickness=3, size=40)
            .encode(x=x, y=alt.Y("article_pct:Q", title=y_title, scale=y_scale),
                    tooltip=tooltips("service", tip("core:N", "core"),
                                     tip("article_pct:Q", "article: the service's % of the core", ".0f")))
        )
        panels.append(alt.layer(bars, ticks).properties(title=service, width=160, height=260))
    subtitle = ("the service's threads by group, then what others took of the same core (means over "
                "trials); black tick: the article's value")
    return alt.hconcat(*panels).properties(title=alt.Title("CPU per core", subtitle=subtitle))
