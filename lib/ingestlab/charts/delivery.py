"""The delivery chart: requests accepted by each service against the records found in Kafka."""

from __future__ import annotations

import altair as alt
import polars as pl

from ingestlab.charts.style import data_chart, service_color, services_of, tip, titled, tooltips


def delivery_bars(table: pl.DataFrame) -> alt.LayerChart:
    """Accepted, delivered (found in Kafka) and lost requests per service, as grouped bars.

    `table` comes from `analysis.delivery.delivery_table` (service, accepted, delivered,
    lost, ...). Each bar is labelled with its count, so a zero (no loss) is visible.
    """
    measures = ["accepted", "delivered", "lost"]
    data = table.select("service", *measures).unpivot(
        on=measures, index="service", variable_name="outcome", value_name="requests"
    )
    base = data_chart(data).encode(
        x=alt.X("outcome:N", title=None, sort=measures, axis=alt.Axis(labelAngle=0)),
        xOffset=alt.XOffset("service:N", scale=alt.Scale(domain=services_of(data))),
        y=alt.Y("requests:Q", title="requests"),
    )
    bars = base.mark_bar().encode(
        color=service_color(data), tooltip=tooltips("service", "outcome:N", tip("requests:Q", fmt=","))
    )
    labels = base.mark_text(dy=-6, fontSize=11).encode(text=alt.Text("requests:Q", format=","))
    return titled(
        alt.layer(bars, labels),
        "Accepted requests found in Kafka",
        "accepted = answered 202; lost = accepted but no record in the topic",
        width=360,
    )
