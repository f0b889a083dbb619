"""Memory reports (INGESTLAB_MEMORY_REPORT_MS): every program prints them when the stack asks,
and none when it does not."""

from __future__ import annotations

import time

from ingestlab.config import StudyConfig
from ingestlab.load.burst import send_burst
from ingestlab.load.payloads import PayloadSet
from ingestlab.stack import Stack
from ingestlab.telemetry.memory_report import REPORT_PREFIX, SOURCE_COLUMNS, parse_memory_reports

PROGRAMS = ("node", "rust", "python")
REPORT_MS = 500
# The article's queue.buffering.max.messages, which every program sets.
QUEUE_MESSAGES_MAX = 100_000


def _burst(stack: Stack, name: str) -> None:
    payloads = PayloadSet(200, size_bytes=2_000, id_prefix=f"{name}-memory")
    items = [(payloads.request_id(i), payloads.body(i)) for i in range(len(payloads))]
    rows = send_burst(stack.service(name).ingest_url, items, concurrency=8)
    assert rows["status"].to_list() == [202] * len(items)


def test_every_program_reports_its_memory_parts_when_asked(config: StudyConfig, tmp_path) -> None:
    with Stack(config.replace(services=PROGRAMS, stack={"memory_report_ms": REPORT_MS}),
               log_dir=tmp_path) as stack:
        for name in PROGRAMS:
            _burst(stack, name)
        time.sleep(4 * REPORT_MS / 1000)
        logs = {name: stack.service(name).log_path for name in PROGRAMS}
        pids = {name: stack.service(name).pid for name in PROGRAMS}
    for name, log in logs.items():
        reports = parse_memory_reports(log)
        assert reports.unparsed == [], name
        frame = reports.frame
        queue = frame.filter(source="librdkafka")
        assert queue.height >= 2, f"{name}: {queue.height} librdkafka reports"
        assert (queue["queue_messages_max"] == QUEUE_MESSAGES_MAX).all(), name
        numbers = queue.select(SOURCE_COLUMNS["librdkafka"].values())
        assert numbers.null_count().sum_horizontal().item() == 0, name
        assert (numbers.min_horizontal() >= 0).all(), name
        v8 = frame.filter(source="v8")
        if name == "node":
            assert v8.height >= 2 and (v8["rss_bytes"] > v8["heap_used_bytes"]).all()
            assert set(frame["pid"]) == {pids["node"]}
        else:
            assert v8.height == 0, name
    # Python's reports come from its worker, a child of the process the stack started.
    assert set(parse_memory_reports(logs["python"]).frame["pid"]) != {pids["python"]}


def test_no_report_unless_asked(config: StudyConfig, tmp_path) -> None:
    with Stack(config.replace(services=PROGRAMS, stack={"memory_report_ms": 0}), log_dir=tmp_path) as stack:
        for name in PROGRAMS:
            _burst(stack, name)
        time.sleep(2 * REPORT_MS / 1000)
        logs = [stack.service(name).log_path for name in PROGRAMS]
    for log in logs:
        assert REPORT_PREFIX.strip() not in log.read_text(), log.name
