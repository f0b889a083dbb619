"""The claims chart: the article's Rust/Node ratios beside the measured ones with their intervals."""

from __future__ import annotations

import altair as alt
import polars as pl

from ingestlab.charts.style import data_chart, tip, titled, tooltips

_X_TITLE = "ratio (log scale; 1 = no difference)"
_SOURCES = ["article claims", "measured"]


def _claim_points(claims: pl.DataFrame) -> pl.DataFrame:
    """One row per metric and source (article claims, measured) with its `ratio` (> 0)."""
    return (
        claims.unpivot(
            on=["claim_ratio", "measured_ratio"], index="metric", variable_name="source", value_name="ratio"
        )
        .with_columns(
            pl.col("source").replace_strict({"claim_ratio": _SOURCES[0], "measured_ratio": _SOURCES[1]})
        )
        .filter(pl.col("ratio") > 0)
    )


def _interval_rules(claims: pl.DataFrame, y: alt.Y) -> alt.Chart:
    """The measured ratio's interval per metric, where it has one (bounds > 0)."""
    intervals = claims.filter(
        pl.col("ci_low").is_not_null() & pl.col("ci_high").is_not_null() & (pl.col("ci_low") > 0)
    )
    return (
        data_chart(intervals)
        .mark_rule(strokeWidth=2, color="#0072B2")
        .encode(
            x=alt.X("ci_low:Q", title=_X_TITLE),
            x2="ci_high:Q",
            y=y,
            tooltip=tooltips(
                "metric:N", tip("ci_low:Q", "interval from", ".3~g"), tip("ci_high:Q", "interval to", ".3~g")
            ),
        )
    )


def _ratio_dots(claims: pl.DataFrame, y: alt.Y) -> alt.Chart:
    """The claimed (grey diamond) and measured (blue dot) ratio per metric, on a log axis."""
    return (
        data_chart(_claim_points(claims))
        .mark_point(size=90, filled=True, opacity=1)
        .encode(
            x=alt.X("ratio:Q", title=_X_TITLE, scale=alt.Scale(type="log")),
            y=y,
            color=alt.Color(
                "source:N", title=None, scale=alt.Scale(domain=_SOURCES, range=["#999999", "#0072B2"])
            ),
            shape=alt.Shape(
                "source:N", title=None, scale=alt.Scale(domain=_SOURCES, range=["diamond", "circle"])
            ),
            tooltip=tooltips("metric:N", "source:N", tip("ratio:Q", fmt=".3~g")),
        )
    )


def claims_ratios(claims: pl.DataFrame) -> alt.LayerChart:
    """The article's claimed ratio beside the measured one (with its interval), per metric.

    `claims`: metric, claim_ratio, measured_ratio, ci_low, ci_high (dimensionless ratios,
    e.g. Rust / Node; interval bounds may be null). Log x axis, so 0.5 and 2 are as far from
    1.0 (no difference, marked) as each other. Metrics keep the frame's order.
    """
    y = alt.Y("metric:N", title=None, sort=claims["metric"].to_list())
    one = (
        data_chart(pl.DataFrame({"ratio": [1.0]}))
        .mark_rule(color="#999999", strokeDash=[4, 4])
        .encode(x=alt.X("ratio:Q", title=_X_TITLE))
    )
    return titled(
        alt.layer(one, _interval_rules(claims, y), _ratio_dots(claims, y)),
        "Claims vs measured",
        "measured ratio with its interval; dashed line: no difference",
        height=alt.Step(28),
    )
