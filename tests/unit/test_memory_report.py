"""The memory reports' parser (telemetry.memory_report), and how the stack asks for reports.

fixtures/memory/*.log hold lines the services printed with INGESTLAB_MEMORY_REPORT_MS=500
(native): node.log a few of Node's own and --trace-gc lines with reports between them, then a
report cut short (a process killed mid-write) and one of a source the parser does not know;
rust.log a report with its keys sorted (serde_json without preserve_order); python.log a
worker's report.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from ingestlab.stack.services import container_spec_for, spec_for
from ingestlab.telemetry.memory_report import (
    MEMORY_REPORT_ENV,
    REPORT_SCHEMA,
    memory_parts,
    parse_memory_reports,
)
from ingestlab.variants import SERVICES

FIXTURES = Path(__file__).parent / "fixtures" / "memory"
MS = 1_000_000


def test_reports_become_rows_and_everything_else_is_ignored():
    frame = parse_memory_reports(FIXTURES / "node.log").frame
    assert frame.schema == pl.Schema(REPORT_SCHEMA)
    assert frame["source"].to_list() == ["v8", "librdkafka", "v8", "librdkafka"]
    assert frame["pid"].unique().to_list() == [22469]
    first_v8, first_queue = frame.row(0, named=True), frame.row(1, named=True)
    assert {k: v for k, v in first_v8.items() if v is not None} == {
        "t_ns": 1796671561854 * MS, "pid": 22469, "source": "v8", "rss_bytes": 75702272,
        "heap_used_bytes": 12066512, "heap_total_bytes": 17801216, "external_bytes": 2572301,
        "array_buffers_bytes": 293372,
    }
    assert {k: v for k, v in first_queue.items() if v is not None} == {
        "t_ns": 1796671561932 * MS, "pid": 22469, "source": "librdkafka",
        "queue_messages": 94, "queue_bytes": 188000, "queue_messages_max": 100000,
        "queue_bytes_max": 1073741824, "outbuf_requests": 0, "outbuf_messages": 0,
        "waitresp_requests": 5, "waitresp_messages": 65,
    }


def test_a_broken_or_unknown_report_is_kept_not_dropped():
    unparsed = parse_memory_reports(FIXTURES / "node.log").unparsed
    assert [line_no for line_no, _ in unparsed] == [8, 9]
    assert unparsed[0][1].endswith('"msg_si') and '"jvm"' in unparsed[1][1]


@pytest.mark.parametrize("report", [
    '[1, 2]',
    '{"source":"v8","t_ms":1,"pid":1,"rss":1,"heap_total":1,"heap_used":1,"external":1}',
    '{"source":"v8","t_ms":1.5,"pid":1,"rss":1,"heap_total":1,"heap_used":1,"external":1,"array_buffers":1}',
    '{"source":"librdkafka","t_ms":1,"pid":true,"msg_cnt":0,"msg_size":0,"msg_max":1,"msg_size_max":1,'
    '"outbuf_cnt":0,"outbuf_msg_cnt":0,"waitresp_cnt":0,"waitresp_msg_cnt":0}',
], ids=["not an object", "a field missing", "a fraction", "a bool"])
def test_a_report_needs_whole_numbers_for_every_field_of_its_source(tmp_path, report):
    log = tmp_path / "service.log"
    log.write_text(f"ingestlab-memory {report}\n")
    reports = parse_memory_reports(log)
    assert reports.frame.height == 0 and len(reports.unparsed) == 1


def test_a_log_without_reports_is_an_empty_frame(tmp_path):
    log = tmp_path / "service.log"
    log.write_text("ingestlab-memory-ish line\nhello\n")
    reports = parse_memory_reports(log)
    assert reports.frame.height == 0 and reports.frame.schema == pl.Schema(REPORT_SCHEMA)
    assert reports.unparsed == []


def test_every_programs_reports_parse_whatever_the_key_order():
    rust = parse_memory_reports(FIXTURES / "rust.log").frame
    python = parse_memory_reports(FIXTURES / "python.log").frame
    assert rust.select("pid", "queue_messages", "waitresp_messages").row(0) == (22484, 16, 16)
    assert python.select("pid", "queue_messages_max", "rss_bytes").row(0) == (22496, 100000, None)


def test_parts_put_the_nearest_v8_report_beside_each_queue_report():
    node = parse_memory_reports(FIXTURES / "node.log").frame
    rust = parse_memory_reports(FIXTURES / "rust.log").frame
    parts = memory_parts(pl.concat([rust, node]))
    assert parts.columns[:2] == ["pid", "t_ns"] and "source" not in parts.columns
    assert parts.select("pid", "queue_messages", "rss_bytes", "v8_offset_ms").rows() == [
        (22469, 94, 75702272, -78),  # the v8 report 78 ms before is nearer than the one 422 ms after
        (22469, 0, 78987264, -78),
        (22484, 16, None, None),  # Rust has no V8
    ]


@pytest.mark.parametrize("name", SERVICES)
def test_the_stack_asks_for_reports_only_when_configured(name):
    for spec in (spec_for(name), container_spec_for(name, image="i")):
        assert MEMORY_REPORT_ENV not in dict(spec.env)
    asked = (spec_for(name, memory_report_ms=500), container_spec_for(name, image="i", memory_report_ms=500))
    for spec in asked:
        assert dict(spec.env)[MEMORY_REPORT_ENV] == "500"
