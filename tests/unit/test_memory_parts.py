"""analysis.memory_parts: the parts of a service's memory on one clock, and which one grew."""

from __future__ import annotations

import polars as pl
import pytest

from ingestlab.analysis.memory_parts import parts_summary, parts_timeline
from ingestlab.telemetry.memory_report import REPORT_SCHEMA
from ingestlab.units import MIB, NS_PER_S

T0 = 1_765_000_000 * NS_PER_S


def _reports(rows: list[dict]) -> pl.DataFrame:
    return pl.DataFrame([{**dict.fromkeys(REPORT_SCHEMA), **row} for row in rows], schema=REPORT_SCHEMA)


def _queue(t_s: float, pid: int, queue_mib: float) -> dict:
    return {"t_ns": T0 + int(t_s * NS_PER_S), "pid": pid, "source": "librdkafka", "queue_messages": 100,
            "queue_bytes": int(queue_mib * MIB), "queue_messages_max": 100_000, "queue_bytes_max": 2**30,
            "outbuf_messages": 10, "waitresp_messages": 5}


def _v8(t_s: float, pid: int, heap_mib: float) -> dict:
    return {"t_ns": T0 + int(t_s * NS_PER_S), "pid": pid, "source": "v8", "rss_bytes": 0,
            "heap_used_bytes": int(heap_mib * MIB / 2), "heap_total_bytes": int(heap_mib * MIB),
            "external_bytes": 2 * MIB, "array_buffers_bytes": MIB}


def _totals(rss_mib: list[float]) -> pl.DataFrame:
    return pl.DataFrame({"t_ns": [T0 + i * NS_PER_S + NS_PER_S // 2 for i in range(len(rss_mib))],
                         "rss_bytes": [int(m * MIB) for m in rss_mib]})


def test_node_parts_add_up_to_rss_and_the_queue_is_what_grew() -> None:
    rows = [r for i in range(5) for r in (_queue(i + 0.1, 7, queue_mib=10 * i), _v8(i + 0.2, 7, heap_mib=20))]
    timeline = parts_timeline(_reports(rows), _totals([60, 70, 80, 90, 100]))
    assert timeline.height == 5
    first = timeline.row(0, named=True)
    assert first["rest_bytes"] == (60 - 0 - 20 - 2) * MIB  # RSS - queue - heap - external
    summary = parts_summary(timeline)
    assert summary["grew_most"] == "librdkafka producer queue"
    assert summary["grew_most_mib"] == pytest.approx(40.0)
    assert summary["queue_peak_mib"] == pytest.approx(40.0)
    assert summary["rss_peak_mib"] == pytest.approx(100.0)
    assert summary["heap_total_mean_mib"] == pytest.approx(20.0)
    assert summary["largest_at_peak"] == "librdkafka producer queue"


def test_a_program_without_v8_has_no_heap_and_workers_are_summed() -> None:
    rows = [_queue(i + 0.1, pid, queue_mib=1.0) for i in range(3) for pid in (11, 12)]
    timeline = parts_timeline(_reports(rows), _totals([30, 30, 30]))
    assert timeline["queue_bytes"].to_list() == [2 * MIB] * 3  # two workers' queues
    assert timeline["heap_total_bytes"].null_count() == 3
    assert timeline["rest_bytes"].to_list() == [28 * MIB] * 3
    summary = parts_summary(timeline)
    assert "heap_total_mean_mib" not in summary and summary["largest_at_peak"] == "the rest of RSS"


def test_no_reports_no_parts() -> None:
    assert parts_timeline(_reports([]), _totals([30])).is_empty()
    assert parts_summary(pl.DataFrame()) == {}


def test_the_chart_stacks_the_parts_and_marks_major_collections(tmp_path) -> None:
    from ingestlab import charts

    node = [r for i in range(5)
            for r in (_queue(i + 0.1, 7, queue_mib=10 * i), _v8(i + 0.2, 7, heap_mib=20))]
    parts = pl.concat([
        parts_timeline(_reports(node), _totals([60, 70, 80, 90, 100])).with_columns(service=pl.lit("node")),
        parts_timeline(_reports([_queue(i + 0.1, 9, 1.0) for i in range(5)]), _totals([10] * 5))
        .with_columns(service=pl.lit("rust")),
    ], how="diagonal_relaxed")
    gc = pl.DataFrame({"service": ["node", "node"], "kind": ["Scavenge", "Mark-Compact"],
                       "pause_ms": [1.0, 40.0], "wall_ns": [T0 + NS_PER_S, T0 + 2 * NS_PER_S]})
    chart = charts.memory_parts_over_time(parts, gc)
    spec = chart.to_dict()
    values = next(iter(spec["datasets"].values()))
    assert {v.get("part") for v in values} >= {"librdkafka producer queue", "V8 heap", "the rest of RSS"}
    assert [v["kind"] for v in values if v.get("kind")] == ["Mark-Compact"]  # scavenges are not marked
    charts.save_png(chart, tmp_path / "parts.png")
    assert (tmp_path / "parts.png").stat().st_size > 0


def test_windows_without_a_queue_report_do_not_break_the_summary() -> None:
    # the first windows had no librdkafka report yet (a fresh producer): the queue is null there
    rows = [_v8(i + 0.2, 7, heap_mib=20) for i in range(5)] + [_queue(i + 0.1, 7, 5.0 * i) for i in (3, 4)]
    timeline = parts_timeline(_reports(rows), _totals([60, 60, 60, 70, 80]))
    summary = parts_summary(timeline)
    assert summary["queue_peak_mib"] == pytest.approx(20.0)
    assert summary["grew_most"] in ("librdkafka producer queue", "the rest of RSS", "V8 heap")
    only_nulls = timeline.with_columns(pl.lit(None, pl.Int64).alias("queue_messages"))
    assert parts_summary(only_nulls)["queue_messages_peak"] is None


def test_the_part_largest_at_the_peak_is_judged_where_every_part_was_reported() -> None:
    # second 2 has the highest RSS but no queue report (late): its queue and rest are unknown
    rows = [r for i in range(4) for r in (_queue(i + 0.1, 7, queue_mib=100), _v8(i + 0.2, 7, heap_mib=20))
            if not (i == 2 and r["source"] == "librdkafka")]
    timeline = parts_timeline(_reports(rows), _totals([150, 160, 400, 170]))
    assert timeline["queue_bytes"][2] is None
    # judged at 170 MiB (queue 100, heap 20, rest 48), not at 400 MiB where only the heap is known
    assert parts_summary(timeline)["largest_at_peak"] == "librdkafka producer queue"
