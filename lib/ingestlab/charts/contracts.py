"""Language or design: the Rust/Node ratio of each metric under the article's contracts and
under matched ones (notebook 06), each with its interval."""

from __future__ import annotations

import altair as alt
import polars as pl

from ingestlab.charts.style import CATEGORY_COLORS, data_chart, tip, titled, tooltips

_X_TITLE = "ratio (log scale; 1 = no difference)"


def contract_decomposition(decomp: pl.DataFrame) -> alt.LayerChart:
    """Per metric (rows) the ratio numerator/denominator of each comparison (colors, offset
    within the row) with its interval, the article's claimed ratio (black diamond) where it
    has one, and 1 (dashed).

    `decomp`: `notebook.contracts.decomposition` (label, comparison, numerator,
    denominator, ratio, ci_low, ci_high, trials, article_ratio). Where the article's bar and
    a matched pair's bar are far apart, the promise made the difference; where they agree,
    the language and its runtime did.
    """
    comparisons = list(dict.fromkeys(decomp["comparison"]))
    labels = list(dict.fromkeys(decomp["label"]))
    y = alt.Y("label:N", title=None, sort=labels)
    offset = alt.YOffset("comparison:N", sort=comparisons)
    color = alt.Color("comparison:N", title="comparison", sort=comparisons,
                      scale=alt.Scale(domain=comparisons, range=list(CATEGORY_COLORS[:len(comparisons)])))
    x = alt.X("ratio:Q", title=_X_TITLE, scale=alt.Scale(type="log"))
    base = data_chart(decomp)
    intervals = base.mark_rule(strokeWidth=2).encode(
        x=alt.X("ci_low:Q", title=_X_TITLE, scale=alt.Scale(type="log")), x2="ci_high:Q", y=y, yOffset=offset,
        color=color)
    dots = base.mark_point(size=70, filled=True, opacity=1).encode(
        x=x, y=y, yOffset=offset, color=color,
        tooltip=tooltips("label:N", "comparison:N", "numerator:N", "denominator:N",
                         tip("ratio:Q", fmt=".3~g"), tip("ci_low:Q", "interval from", ".3~g"),
                         tip("ci_high:Q", "interval to", ".3~g"), "trials:Q"))
    claimed = (
        data_chart(decomp.filter(pl.col("article_ratio").is_not_null()))
        .mark_point(shape="diamond", size=110, filled=True, color="black")
        .encode(x=alt.X("article_ratio:Q", title=_X_TITLE, scale=alt.Scale(type="log")), y=y,
                tooltip=tooltips("label:N", tip("article_ratio:Q", "the article's ratio", ".3~g")))
    )
    one = data_chart(pl.DataFrame({"ratio": [1.0]})).mark_rule(color="#999999", strokeDash=[4, 4]).encode(x=x)
    return titled(
        alt.layer(one, intervals, dots, claimed),
        "Language or design?",
        "ratio of each pair with its 95% interval; black diamond: the article's Rust/Node",
        height=alt.Step(14),
    )
