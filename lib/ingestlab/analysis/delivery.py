"""Matching what the services answered to what Kafka holds: nothing accepted may be lost."""

from __future__ import annotations

import polars as pl

COUNT_COLUMNS = ("sent", "accepted", "rejected", "failed", "delivered", "lost", "duplicated", "unexpected")


def delivery_table(requests: pl.DataFrame, records: pl.DataFrame, *, by: str = "service") -> pl.DataFrame:
    """One row per `by` group with the counts in `COUNT_COLUMNS`.

    - accepted: answered 202; rejected: 4xx; failed: 5xx or no answer (status 0)
    - delivered / lost: accepted requests with at least one / no record in Kafka
    - duplicated: records beyond the first for the same request id
    - unexpected: records whose request was not accepted (e.g. a 500 after all produced)

    `requests` needs `request_id`, `status` and the `by` column; `records` needs `request_id`.
    Records of request ids not in `requests` (other runs) are ignored.
    """
    status = pl.col("status")
    accepted = status == 202
    joined = with_copies(requests.select(by, "request_id", "status"), records)
    return (
        joined.group_by(by, maintain_order=True)
        .agg(
            pl.len().alias("sent"),
            accepted.sum().alias("accepted"),
            status.is_between(400, 499).sum().alias("rejected"),
            ((status >= 500) | (status == 0)).sum().alias("failed"),
            (accepted & (pl.col("copies") > 0)).sum().alias("delivered"),
            (accepted & (pl.col("copies") == 0)).sum().alias("lost"),
            (pl.col("copies") - 1).clip(lower_bound=0).sum().alias("duplicated"),
            pl.col("copies").filter(~accepted).sum().alias("unexpected"),
        )
        .with_columns(pl.col(c).cast(pl.Int64) for c in COUNT_COLUMNS)
    )


def with_copies(requests: pl.DataFrame, records: pl.DataFrame) -> pl.DataFrame:
    """`requests` with `copies`: how many records in `records` carry each one's request id
    (0: none). Records of request ids not in `requests` are ignored."""
    copies = records.group_by("request_id").agg(pl.len().cast(pl.Int64).alias("copies"))
    return requests.join(copies, on="request_id", how="left").with_columns(pl.col("copies").fill_null(0))


def counts_by_group(table: pl.DataFrame, *, by: str = "service") -> dict[str, dict[str, int]]:
    """`{group: {count: value}}` from a `delivery_table`, for summary.json."""
    return {row[by]: {c: int(row[c]) for c in COUNT_COLUMNS} for row in table.iter_rows(named=True)}
