"""Kafka slower than the intake (`experiments.backlog`): per second, librdkafka's queue, the
service's memory taken apart and what its clients got, one column per service, the slow stage
shaded (`analysis.backlog.backlog_timeline`)."""

from __future__ import annotations

import altair as alt
import polars as pl

from ingestlab.analysis.memory_parts import PARTS
from ingestlab.charts.faults import OUTCOME_COLORS
from ingestlab.charts.style import (
    CATEGORY_COLORS,
    MAX_CHART_ROWS,
    NEUTRAL,
    SERVICE_COLORS,
    data_chart,
    listed_order,
    service_color,
    thin,
    time_tip,
    tip,
    tooltips,
)
from ingestlab.units import MIB, NS_PER_S

# What the client got each second: 202s, 5xx, timeouts, and no answer (refused, reset: a dead
# service) with the slots the client dropped; offered is the neutral dashed line.
ANSWERS: dict[str, str] = {"accepted": "202", "errors_5xx": "5xx", "timeouts": "timeouts",
                           "no_answer": "no answer or dropped"}
ANSWER_COLORS: dict[str, str] = {label: OUTCOME_COLORS[name] for name, label in ANSWERS.items()}
_PANEL_WIDTH = 330
_PANEL_HEIGHT = 120
_TIME_AXIS = "time from the slowdown's start (s)"


def _shaded(windows: pl.DataFrame) -> pl.DataFrame:
    """Per service the slow stage on the chart's clock (0 to `end_s`), as `kind` "window"."""
    return windows.select("service", kind=pl.lit("window"), t_s=pl.lit(0.0),
                          end_s=(pl.col("slow_end_ns") - pl.col("slow_start_ns")) / NS_PER_S)


def _shade() -> alt.Chart:
    return (
        alt.Chart()
        .transform_filter(alt.datum.kind == "window")
        .mark_rect(opacity=0.12, color=NEUTRAL)
        .encode(x="t_s:Q", x2="end_s:Q",
                tooltip=tooltips("service", tip("end_s:Q", "Kafka caught up at (s)", ",.1f")))
    )


def _panel(frame: pl.DataFrame, *layers: alt.Chart, title: str) -> alt.FacetChart:
    """`layers` over the shaded slow stage, one column per service, its own y scale."""
    data_chart(frame)  # the row limit
    services = [s for s in SERVICE_COLORS if s in set(frame["service"])]
    return (
        alt.layer(_shade(), *layers, data=frame)
        .properties(width=_PANEL_WIDTH, height=_PANEL_HEIGHT, title=title)
        .facet(column=alt.Column("service:N", title=None, sort=services or None))
        .resolve_scale(y="independent")
    )


def _thinned(long: pl.DataFrame, keys: list[str], value: str, budget: int) -> pl.DataFrame:
    """`long` (time-ordered within `keys`) merged into at most `budget` rows: each merged row
    the first second of its run and the mean `value`."""
    return thin(long.sort(*keys, "t_s"), keys=keys, max_rows=budget,
                aggs=[pl.col("t_s").first(), pl.col(value).mean()])


def backlog_over_time(timeline: pl.DataFrame, windows: pl.DataFrame) -> alt.VConcatChart:
    """Three panels per service (columns), seconds from the slowdown's start, the slow stage
    shaded: librdkafka's queue (messages); RSS as stacked parts (MiB: the queue's payload
    bytes, V8's heap and external memory, the rest); what the client got each second (202s,
    5xx, timeouts, no answer) against what was offered (dashed). `timeline`:
    `analysis.backlog.backlog_timeline` (with its memory columns); `windows`:
    `analysis.backlog.WINDOW_SCHEMA`. A long run's seconds are merged (means) to stay within
    the row limit; a service that died has no memory after its death."""
    shade = _shaded(windows)
    budget = MAX_CHART_ROWS - shade.height
    x = alt.X("t_s:Q", title=_TIME_AXIS)

    queue = _thinned(timeline.select("service", "t_s", "queue_messages").drop_nulls("queue_messages"),
                     ["service"], "queue_messages", budget)
    queue_line = alt.Chart().transform_filter(alt.datum.kind == "queue").mark_line(strokeWidth=1.5).encode(
        x=x, y=alt.Y("queue_messages:Q", title="queue (messages)"), color=service_color(queue, legend=False),
        tooltip=tooltips("service", time_tip(), tip("queue_messages:Q", "messages", ",.0f")))

    parts = [p for p in PARTS if p in timeline.columns]
    memory = _thinned(
        timeline.select("service", "t_s", *parts).drop_nulls(parts[0])
        .unpivot(index=["service", "t_s"], on=parts, variable_name="part", value_name="bytes")
        .drop_nulls("bytes"),
        ["service", "part"], "bytes", budget,
    ).with_columns(mib=pl.col("bytes").clip(lower_bound=0) / MIB, order=listed_order("part", list(PARTS)),
                   part=pl.col("part").replace_strict(PARTS)).drop("bytes")
    labels = list(PARTS.values())
    area = alt.Chart().transform_filter(alt.datum.kind == "memory").mark_area().encode(
        x=x, y=alt.Y("mib:Q", stack="zero", title="memory (MiB)"),
        color=alt.Color("part:N", title="part of RSS", sort=labels,
                        scale=alt.Scale(domain=labels, range=list(CATEGORY_COLORS[:len(labels)]))),
        order=alt.Order("order:Q"),
        tooltip=tooltips("service", "part:N", time_tip(), tip("mib:Q", "MiB", ",.1f")))

    answers = _thinned(
        timeline.select("service", "t_s", "offered", "accepted", "errors_5xx", "timeouts",
                        no_answer=pl.col("no_answer") + pl.col("dropped"))
        .rename(ANSWERS)
        .unpivot(index=["service", "t_s"], variable_name="series", value_name="requests"),
        ["service", "series"], "requests", budget,
    )
    lines = alt.Chart().transform_filter(
        (alt.datum.kind == "answers") & (alt.datum.series != "offered")).mark_line(strokeWidth=1.2).encode(
        x=x, y=alt.Y("requests:Q", title="requests per second"),
        color=alt.Color("series:N", title="answer",
                        scale=alt.Scale(domain=list(ANSWER_COLORS), range=list(ANSWER_COLORS.values()))),
        tooltip=tooltips("service", time_tip(), "series:N", tip("requests:Q", fmt=",.0f")))
    offered = alt.Chart().transform_filter(alt.datum.series == "offered").mark_line(
        strokeDash=[4, 3], color=NEUTRAL, strokeWidth=1).encode(
        x=x, y="requests:Q", tooltip=tooltips("service", time_tip(), tip("requests:Q", "offered", ",.0f")))

    def framed(frame: pl.DataFrame, kind: str) -> pl.DataFrame:
        return pl.concat([frame.with_columns(kind=pl.lit(kind)), shade], how="diagonal_relaxed")

    return alt.vconcat(
        _panel(framed(queue, "queue"), queue_line, title="librdkafka's queue (messages)"),
        _panel(framed(memory, "memory"), area, title="RSS taken apart (MiB)"),
        _panel(framed(answers, "answers"), offered, lines, title="what the clients got per second"),
    ).resolve_scale(color="independent").properties(
        title=alt.Title("Kafka slower than the intake, then catching up",
                        subtitle="shaded: the slow stage, the broker taking less than the load offers"))
