"""End-to-end latency (analysis.e2e): intended send -> the broker's append time."""

from __future__ import annotations

import polars as pl
import pytest

from ingestlab.analysis.e2e import LOG_APPEND_TIME, e2e_latency, e2e_summary

MS = 1_000_000  # ns per ms
T0 = 1_700_000_000_000  # epoch ms


def _requests(*rows: tuple[str, int, int]) -> pl.DataFrame:
    ids, statuses, starts = zip(*rows, strict=True)
    return pl.DataFrame({"request_id": ids, "status": statuses, "intended_start_ns": starts,
                         "service": ["node"] * len(ids)})


def _records(*rows: tuple[str, int, int]) -> pl.DataFrame:
    ids, stamps, types = zip(*rows, strict=True)
    return pl.DataFrame({"request_id": ids, "timestamp_ms": stamps, "timestamp_type": types},
                        schema_overrides={"timestamp_type": pl.Int8})


def test_e2e_is_the_first_append_minus_the_intended_send():
    requests = _requests(("a", 202, T0 * MS), ("b", 202, (T0 + 5) * MS), ("c", 400, T0 * MS),
                         ("d", 202, T0 * MS))
    records = _records(("a", T0 + 12, LOG_APPEND_TIME), ("a", T0 + 40, LOG_APPEND_TIME),  # a duplicate
                       ("b", T0 + 6, LOG_APPEND_TIME), ("c", T0 + 1, LOG_APPEND_TIME))
    latency = e2e_latency(requests, records).sort("request_id")
    # c was not accepted, d never arrived: neither has an end-to-end time
    assert latency["request_id"].to_list() == ["a", "b"]
    assert latency["e2e_ms"].to_list() == [12.0, 1.0]
    assert latency["service"].to_list() == ["node", "node"]


def test_the_producers_create_time_is_not_used_and_clock_skew_is_clipped():
    requests = _requests(("a", 202, T0 * MS + MS // 2), ("b", 202, T0 * MS))
    records = _records(("a", T0, LOG_APPEND_TIME), ("b", T0 + 3, 1))
    latency = e2e_latency(requests, records)
    assert latency["request_id"].to_list() == ["a"]
    assert latency["e2e_ms"].to_list() == [0.0]  # appended within the same ms: not negative


def test_the_summary_gives_nearest_rank_percentiles_or_none():
    n = 200
    requests = _requests(*((f"r{i}", 202, T0 * MS) for i in range(n)))
    records = _records(*((f"r{i}", T0 + i + 1, LOG_APPEND_TIME) for i in range(n)))
    summary = e2e_summary(requests, records)
    assert summary == {"e2e_p50_ms": pytest.approx(100.0), "e2e_p99_ms": pytest.approx(198.0), "e2e_n": n}
    assert e2e_summary(requests, records.clear()) == {"e2e_p50_ms": None, "e2e_p99_ms": None, "e2e_n": 0}
