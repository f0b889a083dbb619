"""Memory taken apart: each service's RSS as stacked parts over time, V8's stop-the-world
collections marked (`analysis.memory_parts`)."""

from __future__ import annotations

import altair as alt
import polars as pl

from ingestlab.analysis.memory_parts import PARTS
from ingestlab.charts.style import CATEGORY_COLORS, WIDTH, data_chart, listed_order, time_tip, tip, tooltips
from ingestlab.units import MIB, NS_PER_S

# The collections that stop the world for the old generation: the article's "stop-the-world
# old-generation GC" (scavenges are marked by the GC charts of their own).
MAJOR_KINDS = ("Mark-Compact", "Mark-Sweep")


def memory_parts_over_time(parts: pl.DataFrame, gc: pl.DataFrame | None = None) -> alt.FacetChart | alt.Chart:
    """Per service (one row each), RSS as stacked parts (MiB) over the seconds since its first
    report: librdkafka's producer queue, V8's heap and external memory, the rest. `parts`:
    `analysis.memory_parts.parts_timeline` frames with `service`. `gc` (optional, Node's GC
    events with `wall_ns`, `kind`, `pause_ms`, `service`): its old-generation collections as
    rules. A part below 0 (the rest, an estimate) is drawn at 0."""
    starts = parts.group_by("service").agg(t0_ns=pl.col("t_ns").min())
    long = (
        parts.join(starts, on="service")
        .with_columns(t_s=(pl.col("t_ns") - pl.col("t0_ns")) / NS_PER_S)
        .unpivot(index=["service", "t_s"], on=list(PARTS), variable_name="part", value_name="bytes")
        .drop_nulls("bytes")
        .with_columns(mib=pl.col("bytes").clip(lower_bound=0) / MIB, order=listed_order("part", list(PARTS)))
        .with_columns(part=pl.col("part").replace_strict(PARTS))
    )
    x = alt.X("t_s:Q", title="time since the service's first memory report (s)")
    area = (
        alt.Chart()
        .mark_area()
        .encode(
            x=x,
            y=alt.Y("mib:Q", stack="zero", title="memory (MiB)"),
            color=alt.Color("part:N", title="part of RSS", sort=list(PARTS.values()),
                            scale=alt.Scale(domain=list(PARTS.values()),
                                            range=list(CATEGORY_COLORS[:len(PARTS)]))),
            order=alt.Order("order:Q"),
            tooltip=tooltips("service", "part", time_tip(), tip("mib:Q", "MiB", ",.1f")),
        )
    )
    layers = [area]
    data = long.select("service", "t_s", "part", "mib", "order")
    if gc is not None and not gc.is_empty() and "service" in gc.columns:
        major = (gc.filter(pl.col("kind").is_in(MAJOR_KINDS), pl.col("wall_ns").is_not_null())
                 .join(starts, on="service")
                 .select("service", "kind", "pause_ms", t_s=(pl.col("wall_ns") - pl.col("t0_ns")) / NS_PER_S)
                 .filter(pl.col("t_s") >= 0))
        if not major.is_empty():
            data = pl.concat([data, major], how="diagonal_relaxed")
            layers.append(alt.Chart().mark_rule(color="black", strokeDash=[3, 3]).encode(
                x=x, tooltip=tooltips("service", "kind", tip("pause_ms:Q", "pause (ms)", ",.1f"), time_tip()),
            ).transform_filter(alt.datum.kind != None))  # noqa: E711 (a Vega expression, not Python)
    title = alt.Title("Memory taken apart",
                      subtitle="stacked: librdkafka's queue, V8 heap and external memory, the rest of RSS; "
                               "dashed: V8 old-generation collections")
    return (
        alt.layer(*layers, data=data_chart(data).data)
        .properties(width=WIDTH, height=160)
        .facet(row=alt.Row("service:N", title=None))
        .resolve_scale(y="independent")
        .properties(title=title)
    )
