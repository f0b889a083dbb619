"""Charts of services held above their ceiling (`experiments.overload`): what the client got
each second, and the service's memory meanwhile, one panel per service (columns) and offered
rate (rows)."""

from __future__ import annotations

import altair as alt
import polars as pl

from ingestlab.charts.style import (
    CATEGORY_COLORS,
    MAX_CHART_ROWS,
    NEUTRAL,
    SERVICE_COLORS,
    data_chart,
    thin,
    time_tip,
    tip,
    tooltips,
)

# What the client got each second (`analysis.overload.overload_timeline`): the answers, and
# the slots it never sent; the offered rate is the neutral dashed line.
ANSWER_COLORS: dict[str, str] = {
    "accepted": CATEGORY_COLORS[0],
    "errors": CATEGORY_COLORS[3],
    "timeouts": CATEGORY_COLORS[1],
    "dropped": CATEGORY_COLORS[5],
}
# The memory series (`analysis.overload.memory_timeline`).
MEMORY_COLORS: dict[str, str] = {"RSS": CATEGORY_COLORS[0], "V8 heap": CATEGORY_COLORS[1],
                                 "cgroup": CATEGORY_COLORS[3]}
_PANEL_WIDTH = 300
_PANEL_HEIGHT = 130
_TIME_AXIS = "time from the load's start (s)"


def _rate_label(frame: pl.DataFrame) -> pl.DataFrame:
    """`frame` with `rate`, its offered rate as a facet label ("10,000 req/s")."""
    return frame.with_columns(
        rate=pl.col("offered_rps").map_elements(lambda r: f"{r:,.0f} req/s", return_dtype=pl.String))


def _facets(chart: alt.LayerChart | alt.Chart, frame: pl.DataFrame, *, title: str, subtitle: str
            ) -> alt.FacetChart:
    """`chart` faceted by offered rate (rows, ascending) and service (columns)."""
    rates = frame.sort("offered_rps")["rate"].unique(maintain_order=True).to_list()
    return (
        chart.properties(width=_PANEL_WIDTH, height=_PANEL_HEIGHT)
        .facet(row=alt.Row("rate:N", title=None, sort=rates),
               column=alt.Column("service:N", title=None, sort=list(SERVICE_COLORS)))
        .resolve_scale(y="independent")
        .properties(title=alt.Title(title, subtitle=subtitle))
    )


def overload_requests(timeline: pl.DataFrame) -> alt.FacetChart:
    """Requests per second while each rate was held on each service
    (`analysis.overload.overload_timeline`): offered (dashed), and what the client learnt
    each second: 202s (`accepted`), `errors` (other answers, refused or reset), `timeouts`,
    and the slots it `dropped` (every worker busy waiting on the service)."""
    errors = pl.col("errors_4xx") + pl.col("errors_5xx") + pl.col("no_answer")
    series = ["offered", *ANSWER_COLORS]
    frame = _rate_label(
        timeline.with_columns(errors=errors)
        .unpivot(on=series, index=["service", "offered_rps", "t_s"], variable_name="series",
                 value_name="requests")
    )
    lines = (
        data_chart(frame)
        .mark_line(point=alt.OverlayMarkDef(size=12), strokeWidth=1.5)
        .encode(x=alt.X("t_s:Q", title=_TIME_AXIS), y=alt.Y("requests:Q", title="requests per second"),
                color=alt.Color("series:N", title="requests", scale=alt.Scale(
                    domain=series, range=[NEUTRAL, *ANSWER_COLORS.values()])),
                # the offered rate dashed, what the client got solid
                strokeDash=alt.condition(alt.datum.series == "offered", alt.value([4, 3]), alt.value([1, 0])),
                tooltip=tooltips("service", "rate:N", time_tip(), "series:N", tip("requests:Q", fmt=",")))
    )
    return _facets(lines, frame,
                   title="Above the ceiling, second by second",
                   subtitle="offered (dashed) and what the client got each second")


def overload_memory(memory: pl.DataFrame, *, max_rows: int = MAX_CHART_ROWS) -> alt.FacetChart:
    """The service's memory (MiB) while each rate was held (`analysis.overload.memory_timeline`):
    RSS of its process, Node's V8 heap (before and after each collection) and, in a
    container, its cgroup's charge; from the rest before the load (negative times) to the
    end. Runs of consecutive points are merged (their highest value) to stay within
    `max_rows`."""
    keys = ["service", "offered_rps", "series"]
    frame = _rate_label(thin(memory, keys=keys, max_rows=max_rows,
                             aggs=[pl.col("t_s").first(), pl.col("mib").max()]))
    series = [name for name in MEMORY_COLORS if name in set(frame["series"])]
    line = (
        data_chart(frame)
        .mark_line(strokeWidth=1.2)
        .encode(x=alt.X("t_s:Q", title=_TIME_AXIS), y=alt.Y("mib:Q", title="MiB"),
                color=alt.Color("series:N", title="memory", scale=alt.Scale(
                    domain=series, range=[MEMORY_COLORS[name] for name in series])),
                tooltip=tooltips("service", "rate:N", "series:N", time_tip(), tip("mib:Q", "MiB", ",.1f")))
    )
    return _facets(line, frame, title="Memory above the ceiling",
                   subtitle="RSS of the service's process, 10 samples a second; Node's V8 heap at each "
                            "collection")
