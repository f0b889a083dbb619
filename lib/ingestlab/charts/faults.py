"""Charts of broker faults under load (`experiments.faults`): what the client got each second
around a fault, and the service's memory meanwhile, the fault's window shaded."""

from __future__ import annotations

import altair as alt
import polars as pl

from ingestlab.charts.style import (
    CATEGORY_COLORS,
    NEUTRAL,
    SERVICE_COLORS,
    data_chart,
    service_color,
    time_tip,
    tip,
    tooltips,
)

# One color per outcome (`analysis.faults.OUTCOMES`), none of them a service's; the offered
# rate is the neutral dashed line.
OUTCOME_COLORS: dict[str, str] = {
    "accepted": CATEGORY_COLORS[0],
    "errors_4xx": CATEGORY_COLORS[4],
    "errors_5xx": CATEGORY_COLORS[3],
    "timeouts": CATEGORY_COLORS[1],
    "no_answer": CATEGORY_COLORS[5],
}
_PANEL_WIDTH = 300
_PANEL_HEIGHT = 120
_TIME_AXIS = "time from the fault's start (s)"


def _windows(windows: pl.DataFrame) -> pl.DataFrame:
    """Per service and fault, the fault's span on the chart's clock: 0 to `end_s` (s)."""
    return windows.select("service", "fault", t_s=pl.lit(0.0),
                          end_s=(pl.col("end_ns") - pl.col("start_ns")) / 1e9)


def _shade(color: alt.Color | alt.ValueChannelMixin) -> alt.Chart:
    """The fault's window, for a layer over the frame whose rows have `kind` "window"."""
    return (
        alt.Chart()
        .transform_filter(alt.datum.kind == "window")
        .mark_rect(opacity=0.15)
        .encode(x="t_s:Q", x2="end_s:Q", color=color,
                tooltip=tooltips("service", "fault:N", tip("end_s:Q", "fault over at (s)", ",.1f")))
    )


def fault_timeline(timeline: pl.DataFrame, windows: pl.DataFrame) -> alt.FacetChart:
    """Requests per second around each fault (rows) for each service (columns): offered
    (dashed) and each outcome the client learnt that second (`analysis.faults.timeline`,
    1-s windows), the fault's window shaded. Each panel has its own scales (a kill lasts
    longer than a pause; the queue's fill runs at ten times the rate of the others)."""
    outcomes = list(OUTCOME_COLORS)
    series = (
        timeline.unpivot(on=["offered", *outcomes], index=["service", "fault", "t_s"],
                         variable_name="series", value_name="requests")
        .with_columns(kind=pl.lit("series"))
    )
    frame = pl.concat([series, _windows(windows).with_columns(kind=pl.lit("window"))], how="diagonal_relaxed")
    data_chart(frame)  # the row limit
    x = alt.X("t_s:Q", title=_TIME_AXIS)
    outcome_color = alt.Color("series:N", title="outcome",
                              scale=alt.Scale(domain=outcomes, range=list(OUTCOME_COLORS.values())))
    lines = (
        alt.Chart()
        .transform_filter((alt.datum.kind == "series") & (alt.datum.series != "offered"))
        .mark_line(point=alt.OverlayMarkDef(size=12), strokeWidth=1.5)
        .encode(x=x, y=alt.Y("requests:Q", title="requests per second"), color=outcome_color,
                tooltip=tooltips("service", "fault:N", time_tip(), "series:N", tip("requests:Q", fmt=",")))
    )
    offered = (
        alt.Chart()
        .transform_filter(alt.datum.series == "offered")
        .mark_line(strokeDash=[4, 3], color=NEUTRAL, strokeWidth=1)
        .encode(x=x, y="requests:Q",
                tooltip=tooltips("fault:N", time_tip(), tip("requests:Q", "offered", ",")))
    )
    return (
        alt.layer(_shade(alt.value(NEUTRAL)), offered, lines, data=frame)
        .properties(width=_PANEL_WIDTH, height=_PANEL_HEIGHT)
        .facet(row=alt.Row("fault:N", title=None, sort=list(dict.fromkeys(windows["fault"]))),
               column=alt.Column("service:N", title=None, sort=list(SERVICE_COLORS)))
        .resolve_scale(x="independent", y="independent")
        .properties(title=alt.Title("What the client got, second by second",
                                    subtitle="offered (dashed) and each outcome per second; the fault's "
                                             "window shaded"))
    )


def fault_rss(rss: pl.DataFrame, windows: pl.DataFrame) -> alt.FacetChart:
    """Each service's RSS (MiB) around each fault (rows), on the fault's clock
    (`analysis.faults.rss_timeline`), the fault's window shaded in the service's color."""
    frame = pl.concat([rss.with_columns(kind=pl.lit("rss")),
                       _windows(windows).with_columns(kind=pl.lit("window"))], how="diagonal_relaxed")
    data_chart(frame)  # the row limit
    line = (
        alt.Chart()
        .transform_filter(alt.datum.kind == "rss")
        .mark_line(strokeWidth=1.5)
        .encode(x=alt.X("t_s:Q", title=_TIME_AXIS), y=alt.Y("rss_mib:Q", title="RSS (MiB)"),
                color=service_color(frame),
                tooltip=tooltips("service", "fault:N", time_tip(), tip("rss_mib:Q", "RSS (MiB)", ",.1f")))
    )
    return (
        alt.layer(_shade(service_color(frame, legend=False)), line, data=frame)
        .properties(width=2 * _PANEL_WIDTH, height=_PANEL_HEIGHT)
        .facet(row=alt.Row("fault:N", title=None, sort=list(dict.fromkeys(windows["fault"]))))
        .resolve_scale(x="independent", y="independent")
        .properties(title=alt.Title("Resident memory through each fault",
                                    subtitle="RSS of the service's process, 10 samples a second; the "
                                             "fault's window shaded"))
    )
