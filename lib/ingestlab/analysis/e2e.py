"""End-to-end latency: from a request's intended send to the moment its record was safe in
Kafka, the broker's append time (the topic's LogAppendTime, `stack.kafka.TOPIC_CONFIG`).

An HTTP percentile says when the client heard back; a service that answers before Kafka has
the record (the article's Node) looks faster by it than one that answers after (its Rust).
This one measures both by the same end: when the data is safe.

Clocks: `intended_start_ns` is wall-clock epoch ns (the load engine's one monotonic->wall
anchor per run) and the append time wall-clock epoch ms of the broker on the same host, so
the difference holds to about 1 ms (the append time's resolution); it is clipped at 0.
"""

from __future__ import annotations

import polars as pl

from ingestlab.quantiles import nearest_rank

LOG_APPEND_TIME = 2  # confluent_kafka.TIMESTAMP_LOG_APPEND_TIME


def e2e_latency(requests: pl.DataFrame, records: pl.DataFrame) -> pl.DataFrame:
    """One row per accepted request (202) whose record is in `records` with the broker's
    append time: `request_id`, `e2e_ms` (append time of its first copy minus its intended
    send) and the columns of `requests` kept (`service`, ...).

    `requests` needs `request_id`, `status`, `intended_start_ns`; `records` needs
    `request_id`, `timestamp_ms`, `timestamp_type`. Records with the producer's create
    time are left out: they do not say when the broker had them.
    """
    appended = (
        records.filter(pl.col("timestamp_type") == LOG_APPEND_TIME)
        .group_by("request_id")
        .agg(pl.col("timestamp_ms").min().alias("append_ms"))
    )
    return (
        requests.filter(pl.col("status") == 202)
        .join(appended, on="request_id", how="inner")
        .with_columns(
            # in integer ns first: epoch ns as a float keeps only ~0.25 us
            e2e_ms=((pl.col("append_ms") * 1_000_000 - pl.col("intended_start_ns")) / 1e6)
            .clip(lower_bound=0.0)
        )
        .drop("append_ms")
    )


def e2e_summary(requests: pl.DataFrame, records: pl.DataFrame) -> dict[str, float | int | None]:
    """`e2e_p50_ms`, `e2e_p99_ms` (nearest rank, ms) and `e2e_n` (requests measured) over
    `requests`; the percentiles are None when no accepted request has an appended record."""
    latency = e2e_latency(requests, records)
    if latency.is_empty():
        return {"e2e_p50_ms": None, "e2e_p99_ms": None, "e2e_n": 0}
    e2e = pl.col("e2e_ms")
    stats = latency.select(p50=nearest_rank(e2e, 0.50), p99=nearest_rank(e2e, 0.99))
    return {"e2e_p50_ms": stats["p50"][0], "e2e_p99_ms": stats["p99"][0], "e2e_n": latency.height}
