"""Short open-loop runs against the real services, checked against what lands in Kafka."""

from __future__ import annotations

import polars as pl

from ingestlab.analysis.delivery import counts_by_group, delivery_table
from ingestlab.analysis.latency import percentiles
from ingestlab.experiments.steps import drive_step


def test_constant_rate_run_is_all_accepted_and_all_delivered(stack, service_name, config, tmp_path):
    before = stack.topic_size()
    result, rows = drive_step(config, url=stack.service(service_name).ingest_url, rate_rps=200, step=0,
                              out_dir=tmp_path, id_prefix=f"{service_name}-open", engine="asyncio",
                              duration_s=2.0)
    assert rows.height == 400  # one row per scheduled request, warm-up included
    assert rows.filter(pl.col("phase") == "warmup").height == 100  # 0.5 s at 200 req/s
    assert set(rows["status"]) == {202}
    assert result.accepted == result.sent - 100 and result.errors == 0
    assert result.p50_ms is not None and 0 < result.p50_ms <= result.p99_ms
    stack.wait_for_records(before + rows.height)
    counts = counts_by_group(delivery_table(rows.with_columns(service=pl.lit(service_name)),
                                            stack.read_topic()))[service_name]
    assert counts["delivered"] == counts["accepted"] == 400
    assert counts["lost"] == counts["duplicated"] == 0


def test_oha_step_rows_and_delivery_count(stack, service_name, config, tmp_path):
    before = stack.topic_size()
    result, rows = drive_step(config, url=stack.service(service_name).ingest_url, rate_rps=500, step=1,
                              out_dir=tmp_path, id_prefix="unused", engine="oha", duration_s=2.0)
    assert result.engine == "oha" and result.sent == 1000
    assert rows.height == 1000 and set(rows["status"]) == {202}
    assert rows["request_id"].null_count() == rows.height  # oha cannot tag requests
    assert (rows["intended_start_ns"] <= rows["actual_start_ns"]).all()
    assert (rows["actual_start_ns"] <= rows["end_ns"]).all()
    assert percentiles(rows)["count"][0] == rows.filter(pl.col("phase") == "measure").height
    assert stack.wait_for_records(before + 1000) - before == 1000
