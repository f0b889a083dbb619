"""`smoke`: stack up, a short burst to each service, every accepted record found in Kafka."""

from __future__ import annotations

import polars as pl

from ingestlab.analysis.delivery import counts_by_group, delivery_table
from ingestlab.config import ServiceName, StudyConfig
from ingestlab.load.burst import send_burst
from ingestlab.load.payloads import PayloadSet, invalid_bodies
from ingestlab.results import Run
from ingestlab.stack import Stack
from ingestlab.summaries import DeliveryCounts, SmokeSummary


def _smoke_items(
    config: StudyConfig, service: ServiceName, run_id: str
) -> tuple[list[tuple[str, bytes]], pl.DataFrame]:
    """Valid and deliberately invalid requests, interleaved; and what each expects
    (`request_id`, `expect`: "valid" or the field the service must reject)."""
    prefix = f"{service}-{run_id[-6:]}"
    valid = PayloadSet(
        config.smoke.requests - config.smoke.invalid,
        size_bytes=config.load.payload_bytes,
        seed=config.seed,
        id_prefix=prefix,
    )
    items = [(valid.request_id(i), valid.body(i)) for i in range(len(valid))]
    expects = ["valid"] * len(items)
    for k in range(config.smoke.invalid):
        request_id = f"{prefix}-bad-{k:05d}"
        field, body = list(invalid_bodies(request_id, seed=config.seed + k).items())[k % 3]
        position = (k * len(items)) // max(config.smoke.invalid, 1) + k
        items.insert(position, (request_id, body))
        expects.insert(position, field)
    return items, pl.DataFrame({"request_id": [rid for rid, _ in items], "expect": expects})


def smoke(config: StudyConfig) -> Run:
    """Stack up, a short burst to each service, every accepted record looked up in Kafka.

    Summary: per service sent / accepted / rejected / failed / delivered / lost /
    duplicated / unexpected, and warnings for anything lost, failed or wrongly judged.
    """
    run = Run.create(config, "smoke")
    frames = []
    with Stack(config, log_dir=run.logs_dir) as stack:
        for service in config.services:
            items, expects = _smoke_items(config, service, run.run_id)
            rows = send_burst(stack.service(service).ingest_url, items, concurrency=config.smoke.concurrency)
            # rows arrive in completion order: attach expectations by request id
            frames.append(
                rows.join(expects, on="request_id", how="left").with_columns(service=pl.lit(service))
            )
        requests = pl.concat(frames)
        stack.wait_for_records(int((requests["status"] == 202).sum()))
        records = stack.read_topic()
        run.update_meta(stack=stack.describe())
    run.write_frame("requests", requests)
    run.write_frame("deliveries", records)
    table = delivery_table(requests, records)
    counts = counts_by_group(table)
    found = []
    for service, c in counts.items():
        if c["lost"]:
            found.append(f"{service}: {c['lost']} accepted requests have no record in Kafka")
        if c["failed"]:
            found.append(f"{service}: {c['failed']} requests failed (5xx or no answer)")
    misjudged = requests.filter((pl.col("expect") == "valid") != (pl.col("status") == 202))
    for row in misjudged.group_by("service", "expect", "status").len().iter_rows(named=True):
        found.append(
            f"{row['service']}: {row['len']} requests expecting {row['expect']!r} got {row['status']}"
        )
    summary = SmokeSummary(services={service: DeliveryCounts(**c) for service, c in counts.items()})
    run.write_summary(summary, warnings_found=found)
    return run
