"""Charts of a throughput-ceiling run's steps: achieved vs offered rate, and latency per step."""

from __future__ import annotations

import altair as alt
import polars as pl

from ingestlab.analysis.ceiling import with_verdict
from ingestlab.charts.style import (
    data_chart,
    service_color,
    services_of,
    tip,
    titled,
    tooltips,
    verdict_shape,
)

# In the ceiling chart the services' points coincide wherever they kept up (on y = x): the
# first (node) is drawn first and widest, each next one narrower, so every color shows as a
# ring around the next instead of vanishing. Sizes and widths from the first to the last.
_SERVICE_POINT_SIZES = (180, 70)
_SERVICE_LINE_WIDTHS = (5, 2)
_X_TITLE = "offered rate (req/s)"
_Y_TITLE = "achieved rate (req/s)"


def _by_service(data: pl.DataFrame, widest: float, narrowest: float) -> alt.Scale:
    """A scale from `widest` (the first service in `data`) down to `narrowest` (the last)."""
    services = services_of(data)
    step = (widest - narrowest) / max(1, len(services) - 1)
    return alt.Scale(domain=services, range=[widest - i * step for i in range(len(services))])


def _service_size(data: pl.DataFrame) -> alt.Size:
    return alt.Size("service:N", scale=_by_service(data, *_SERVICE_POINT_SIZES), legend=None)


def _service_stroke_width(data: pl.DataFrame) -> alt.StrokeWidth:
    return alt.StrokeWidth("service:N", scale=_by_service(data, *_SERVICE_LINE_WIDTHS), legend=None)


def _diagonal_layers(top_rps: float) -> list[alt.Chart]:
    """The dashed line achieved = offered from 0 to `top_rps` (req/s), labelled at its end."""
    x, y = alt.X("rate_rps:Q", title=_X_TITLE), alt.Y("rate_rps:Q", title=_Y_TITLE)
    diagonal = (
        data_chart(pl.DataFrame({"rate_rps": [0.0, top_rps]}))
        .mark_line(color="#999999", strokeDash=[4, 4])
        .encode(x=x, y=y)
    )
    label = (
        data_chart(pl.DataFrame({"rate_rps": [top_rps], "text": ["achieved = offered"]}))
        .mark_text(align="right", dx=-4, dy=-8, color="#777777")
        .encode(x=x, y=y, text="text:N")
    )
    return [diagonal, label]


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
    base = data_chart(data).encode(
        x=alt.X("offered_rps:Q", title=_X_TITLE),
        y=alt.Y("achieved_rps:Q", title=_Y_TITLE),
        color=service_color(data),
    )
    lines = base.mark_line().encode(strokeWidth=_service_stroke_width(data))
    points = base.mark_point(filled=True, opacity=1).encode(
        shape=verdict_shape(),
        size=_service_size(data),
        tooltip=tooltips(
            "service",
            "step",
            "engine",
            "offered_rps",
            tip("achieved_rps:Q", "achieved (req/s)", ",.0f"),
            tip("p99_ms:Q", "p99 (ms)", ",.1f"),
            tip("error_rate:Q", "errors", ".2%"),
            "verdict:N",
            "reasons:N",
        ),
    )
    return titled(
        alt.layer(*_diagonal_layers(top), lines, points),
        "Throughput ceiling: achieved vs offered rate",
        "each point is one constant-rate step; on the dashed line the service kept up",
    )


def _step_percentiles(steps: pl.DataFrame) -> pl.DataFrame:
    """One row per step, service and percentile (p50, p99) with its `latency_ms` (> 0)."""
    return (
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


def _bound_layers(p99_bound_ms: float) -> list[alt.Chart]:
    """The p99 pass line at `p99_bound_ms` (ms), labelled."""
    bound = pl.DataFrame({"latency_ms": [float(p99_bound_ms)], "text": [f"p99 bound {p99_bound_ms:g} ms"]})
    rule = data_chart(bound).encode(y="latency_ms:Q")
    return [
        rule.mark_rule(color="#777777", strokeDash=[2, 2]),
        rule.mark_text(align="left", dx=4, dy=-6, color="#777777").encode(x=alt.value(0), text="text:N"),
    ]


def step_latency(steps: pl.DataFrame, *, p99_bound_ms: float | None = None) -> alt.LayerChart:
    """p50 and p99 latency (ms, log scale) vs offered rate (req/s) per ceiling step and service.

    `steps` as for `ceiling_steps` (needs p50_ms, p99_ms). Latency is from the intended send
    time (coordinated-omission corrected). `p99_bound_ms`, if given, is drawn as the pass line.
    """
    percentiles = _step_percentiles(steps)
    base = data_chart(percentiles).encode(
        x=alt.X("offered_rps:Q", title=_X_TITLE),
        y=alt.Y(
            "latency_ms:Q", title="latency from intended send (ms, log scale)", scale=alt.Scale(type="log")
        ),
        color=service_color(percentiles),
    )
    # The dash only on the lines: on the points too, the legend would show dots for it.
    lines = base.mark_line(strokeWidth=2).encode(
        strokeDash=alt.StrokeDash(
            "percentile:N", title="percentile", scale=alt.Scale(domain=["p50", "p99"], range=[[1, 0], [5, 3]])
        ),
    )
    points = base.mark_point(size=70, filled=True, opacity=1).encode(
        shape=verdict_shape(),
        tooltip=tooltips(
            "service", "step", "engine", "offered_rps", "percentile:N", "latency_ms", "verdict:N"
        ),
    )
    layers: list[alt.Chart] = [lines, points]
    if p99_bound_ms is not None:
        layers += _bound_layers(p99_bound_ms)
    return titled(
        alt.layer(*layers),
        "Latency per ceiling step",
        "p50 solid, p99 dashed; latency counted from when the request was due",
    )
