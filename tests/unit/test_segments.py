"""A long soak's segments without services: the plan, each segment's record, the gaps, the
totals, the topic's retention and the checks (`experiments.segments`)."""

from __future__ import annotations

import polars as pl
import pytest

from ingestlab.experiments.segments import (
    GAP_SHARE_WARN,
    RIG_GROWTH_WARN_MIB,
    Segment,
    hold_checks,
    long_hold_topic_config,
    merge_segments,
    plan_segments,
    segment_record,
    with_gaps,
)
from ingestlab.experiments.steps import StepResult
from ingestlab.load.rows import REQUEST_SCHEMA
from ingestlab.units import MIB

T0_NS = 1_700_000_000_000_000_000
S = 1_000_000_000


def test_a_hold_no_longer_than_a_segment_is_one_engine_run():
    assert plan_segments(120.0, 120.0, 5.0) == [Segment(0, 120.0, 5.0)]
    assert plan_segments(12.0, 60.0, 3.0) == [Segment(0, 12.0, 3.0)]


def test_a_long_hold_is_the_fewest_equal_segments_with_the_warmup_in_the_first():
    hour = plan_segments(3600.0, 60.0, 5.0)
    assert len(hour) == 60 and {s.duration_s for s in hour} == {60.0}
    assert [s.index for s in hour] == list(range(60))
    assert hour[0].warmup_s == 5.0 and {s.warmup_s for s in hour[1:]} == {0.0}
    assert [s.duration_s for s in plan_segments(100.0, 60.0, 5.0)] == [50.0, 50.0]
    assert [s.duration_s for s in plan_segments(6.0, 2.0, 1.0)] == [2.0, 2.0, 2.0]
    assert sum(s.duration_s for s in plan_segments(3601.0, 60.0, 5.0)) == pytest.approx(3601.0)


def test_a_plan_refuses_a_warmup_as_long_as_a_segment_and_nonsense():
    with pytest.raises(ValueError, match="warm-up"):
        plan_segments(6.0, 2.0, 2.0)
    with pytest.raises(ValueError):
        plan_segments(0.0, 60.0, 0.0)
    with pytest.raises(ValueError):
        plan_segments(60.0, 0.0, 0.0)


def _result(**fields) -> StepResult:
    values = dict(step=0, engine="asyncio", offered_rps=100.0, achieved_rps=100.0, sent=200, accepted=190,
                  errors=0, error_rate=0.0, dropped=0, p50_ms=1.0, p95_ms=2.0, p99_ms=3.0, max_ms=4.0,
                  service_p99_ms=3.0, engine_lag_p99_ms=0.5, engine_cpu_pct=10.0, engine_saturated=False,
                  engine_notes=())
    return StepResult(**{**values, **fields})


def _rows(start_ns: int, count: int, *, warmup: int = 0, every_ns: int = S // 100) -> pl.DataFrame:
    """`count` requests every `every_ns` from `start_ns`, the first `warmup` in the warm-up,
    each answered 202 in 1 ms."""
    return pl.DataFrame({
        "request_id": [f"r-{i}" for i in range(count)],
        "step": [0] * count,
        "phase": ["warmup" if i < warmup else "measure" for i in range(count)],
        "intended_start_ns": [start_ns + i * every_ns for i in range(count)],
        "actual_start_ns": [start_ns + i * every_ns + 1000 for i in range(count)],
        "end_ns": [start_ns + i * every_ns + 1_000_000 for i in range(count)],
        "status": [202] * count,
        "bytes_sent": [10_000] * count,
        "error_class": [None] * count,
    }, schema=REQUEST_SCHEMA)


def test_a_segment_record_counts_every_202_and_the_measured_phase():
    rows = _rows(T0_NS, 200, warmup=10)
    record = segment_record(Segment(0, 2.0, 0.1), _result(sent=200, accepted=190, errors=0), rows,
                            call_s=3.1, rig_rss_bytes=200 * MIB)
    assert record["accepted"] == 200  # the warm-up's records are in Kafka too
    assert record["measured"] == 190
    assert record["start_ns"] == T0_NS
    assert record["measure_start_ns"] == T0_NS + 10 * S // 100 + 1000
    assert record["end_ns"] == T0_NS + 199 * S // 100 + 1_000_000
    assert (record["call_s"], record["rig_rss_bytes"]) == (3.1, 200 * MIB)


def _three_segments() -> list[dict]:
    """Three 2 s segments at 100 req/s; the second starts 0.5 s after the first's schedule
    ended, the third 1.5 s after the second's; the second saturated; the rig grows 80 MiB."""
    starts = [T0_NS, T0_NS + 2_500_000_000, T0_NS + 6_000_000_000]
    records = []
    for k, start in enumerate(starts):
        saturated = k == 1
        result = _result(step=k, sent=200, accepted=190 if k == 0 else 199, errors=0 if k == 0 else 1,
                         achieved_rps=90.0 if saturated else 100.0, engine_saturated=saturated,
                         engine_notes=("send lag p99 9 ms",) if saturated else ())
        records.append(segment_record(Segment(k, 2.0, 0.1 if k == 0 else 0.0), result,
                                      _rows(start, 200, warmup=10 if k == 0 else 0),
                                      call_s=3.0, rig_rss_bytes=(200 + 40 * k) * MIB))
    return records


def test_gaps_are_measured_from_the_schedules():
    booked = with_gaps(list(reversed(_three_segments())))  # order restored by segment
    assert booked["segment"].to_list() == [0, 1, 2]
    assert booked["gap_before_s"].to_list() == pytest.approx([0.0, 0.5, 1.5])


def test_merged_counts_add_up_and_the_gaps_are_a_share_of_the_hold():
    booked = with_gaps(_three_segments())
    totals = merge_segments(booked)
    assert totals["segments"] == 3
    assert totals["sent"] == 600 and totals["accepted"] == 600
    assert totals["measured"] == 190 + 200 + 200 and totals["errors"] == 2
    assert totals["error_rate"] == pytest.approx(2 / 590)
    assert totals["achieved_rps"] == pytest.approx((100 + 90 + 100) / 3)
    assert totals["segment_gap_s"] == pytest.approx(2.0)
    assert totals["segment_gap_share"] == pytest.approx(2.0 / 8.0)  # first slot to the last schedule's end
    assert totals["engine"] == "asyncio"
    assert (totals["engine_saturated"], totals["segments_saturated"]) == (True, 1)
    assert totals["engine_notes"] == ["segment 1: send lag p99 9 ms"]
    assert totals["load_start_ns"] == T0_NS
    assert totals["measure_start_ns"] == T0_NS + 10 * S // 100 + 1000
    assert totals["end_ns"] == T0_NS + 6 * S + 199 * S // 100 + 1_000_000
    assert totals["rig_rss_growth_mib"] == pytest.approx(80.0)


def test_one_segment_merges_to_itself_without_gaps():
    totals = merge_segments(with_gaps(_three_segments()[:1]))
    assert (totals["segments"], totals["segment_gap_s"], totals["rig_rss_growth_mib"]) == (1, 0.0, 0.0)
    with pytest.raises(ValueError):
        merge_segments(with_gaps([]))


def test_the_long_holds_topic_keeps_its_newest_records_only():
    config = long_hold_topic_config(60.0)
    assert config == {"retention.bytes": str(2 * 2**30), "retention.ms": "600000",
                      "segment.bytes": str(256 * 2**20), "segment.ms": "60000"}
    assert long_hold_topic_config(600.0)["retention.ms"] == "1800000"  # three segments


def test_hold_checks_warn_of_long_gaps_and_a_growing_rig():
    assert hold_checks("node", segment_gap_share=None, rig_rss_growth_mib=None, segments=1) == []
    quiet = hold_checks("node", segment_gap_share=GAP_SHARE_WARN / 2, rig_rss_growth_mib=1.0, segments=60)
    assert quiet == []
    found = hold_checks("node", segment_gap_share=0.1, rig_rss_growth_mib=RIG_GROWTH_WARN_MIB + 1,
                        segments=60)
    assert len(found) == 2
    assert "59 gaps" in found[0] and "10.0%" in found[0]
    assert "grew 65 MiB" in found[1]
