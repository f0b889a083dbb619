"""ingestlab.analysis.overload on hand-built request rows: the rates of a leg, the ledger
against records read back, the per-second timeline, memory over time, and whether the
generator (not the service) was late."""

from __future__ import annotations

import polars as pl
import pytest

from ingestlab.analysis.overload import (
    LEG_SCHEMA,
    late_with_free_workers,
    memory_timeline,
    overload_ledger,
    overload_timeline,
    rate_stats,
)
from ingestlab.units import MIB, NS_PER_MS, NS_PER_S

T0 = 1_800_000_000 * NS_PER_S  # the load's first intended start
RATE = 10.0  # req/s: one request every 100 ms
SCHEMA = {"service": pl.String, "offered_rps": pl.Float64, "request_id": pl.String, "phase": pl.String,
          "intended_start_ns": pl.Int64, "actual_start_ns": pl.Int64, "end_ns": pl.Int64, "status": pl.Int16,
          "error_class": pl.String}


def rows(seconds: float, answer, *, service: str = "node", warmup_s: float = 0.0) -> pl.DataFrame:
    """Request rows at RATE req/s for `seconds` from T0; `answer(i)` gives request i's
    (status, error_class, send lag ms or None when never sent, latency ms from the send)."""
    data = []
    for i in range(round(seconds * RATE)):
        status, error_class, lag_ms, latency_ms = answer(i)
        intended = T0 + i * NS_PER_S // round(RATE)
        sent = None if lag_ms is None else intended + round(lag_ms * NS_PER_MS)
        data.append({
            "service": service, "offered_rps": RATE, "request_id": f"{service}-{i:05d}",
            "phase": "warmup" if i < warmup_s * RATE else "measure", "intended_start_ns": intended,
            "actual_start_ns": sent, "end_ns": None if sent is None else sent + round(latency_ms * NS_PER_MS),
            "status": status, "error_class": error_class,
        })
    return pl.DataFrame(data, schema=SCHEMA)


def legs(seconds: float, *, service: str = "node") -> pl.DataFrame:
    return pl.DataFrame([{"service": service, "offered_rps": RATE, "start_ns": T0,
                          "end_ns": T0 + round(seconds * NS_PER_S)}], schema=LEG_SCHEMA)


def overloaded(i: int) -> tuple[int, str | None, float | None, float]:
    """Of every 10 requests: 6 accepted, 1 timed out, 1 answered 503, 2 dropped by the client."""
    kind = i % 10
    if kind < 6:
        return 202, None, 0.5, 20.0
    if kind == 6:
        return 0, "TimeoutError", 0.5, 2_000.0
    if kind == 7:
        return 503, None, 0.5, 5.0
    return 0, "client_backlog", None, 0.0


def test_rate_stats_count_the_measured_phase_and_tell_drops_from_errors() -> None:
    stats = rate_stats(rows(10, overloaded, warmup_s=1.0)).row(0, named=True)
    assert (stats["offered"], stats["sent"], stats["accepted"]) == (90, 72, 54)
    assert (stats["errors"], stats["timeouts"], stats["dropped"]) == (9, 9, 18)
    assert stats["achieved_rps"] == pytest.approx(RATE * 54 / 90)
    assert stats["error_rate"] == pytest.approx(9 / 72) and stats["timeout_rate"] == pytest.approx(9 / 72)
    assert stats["dropped_rate"] == pytest.approx(18 / 90)
    assert stats["p99_ms"] == pytest.approx(20.5)  # answered requests only: the timeouts are counted apart


def test_ledger_finds_lost_late_and_duplicated_records() -> None:
    requests = rows(2, overloaded)  # 20 requests: 12 accepted
    ids = requests["request_id"]
    kept = [i for i in range(20) if i % 10 < 6 and i not in (0, 1)]  # two 202s never reached Kafka
    records = pl.DataFrame({"request_id": [ids[i] for i in [*kept, 2, 6, 7, 16]] + ["other-run-1"]})
    ledger = overload_ledger(requests, records).row(0, named=True)
    assert (ledger["service"], ledger["offered_rps"]) == ("node", RATE)
    assert (ledger["sent"], ledger["accepted"], ledger["delivered"]) == (20, 12, 10)
    assert ledger["accepted_not_delivered"] == 2
    # a timed-out request (6, 16) and a 503 (7) produced anyway
    assert ledger["delivered_after_client_error"] == 3
    assert ledger["duplicated"] == 1  # request 2 twice


def test_timeline_counts_each_second_with_drops_apart() -> None:
    line = overload_timeline(rows(3, overloaded), legs(3))
    first = line.filter(pl.col("t_s") == 0.0).row(0, named=True)
    assert first["offered"] == 10 and first["accepted"] == 6 and first["dropped"] == 2
    assert first["errors_5xx"] == 1 and first["no_answer"] == 0
    # the timeout of request 6 (sent at 0.6 s) is learnt 2 s later
    assert line.filter(pl.col("t_s") == 2.0)["timeouts"].item() == 1
    assert first["errors"] == first["errors_5xx"] + first["dropped"] + first["timeouts"]
    assert line.columns[:4] == ["service", "offered_rps", "t_s", "offered"]


def test_memory_timeline_puts_rss_cgroup_and_heap_on_the_load_clock() -> None:
    samples = pl.DataFrame({
        "service": ["node"] * 3, "offered_rps": [RATE] * 3,
        "t_ns": [T0 - NS_PER_S, T0, T0 + NS_PER_S], "rss_bytes": [50 * MIB, 60 * MIB, 70 * MIB],
        "cgroup_memory_bytes": [None, 40 * MIB, 45 * MIB],
    })
    gc = pl.DataFrame({"service": ["node"], "offered_rps": [RATE], "wall_ns": [T0 + 2 * NS_PER_S],
                       "pause_ms": [10.0], "heap_before_mib": [40.0], "heap_after_mib": [10.0]})
    memory = memory_timeline(samples, legs(3), gc)
    rss = memory.filter(pl.col("series") == "RSS")
    assert rss["t_s"].to_list() == [-1.0, 0.0, 1.0] and rss["mib"].to_list() == [50.0, 60.0, 70.0]
    assert memory.filter(pl.col("series") == "cgroup")["mib"].to_list() == [40.0, 45.0]
    heap = memory.filter(pl.col("series") == "V8 heap")
    assert heap["mib"].to_list() == [40.0, 10.0] and heap["t_s"].to_list() == pytest.approx([1.99, 2.0])
    assert set(memory["offered_rps"]) == {RATE}


def test_memory_timeline_without_gc_or_cgroup_has_rss_alone() -> None:
    samples = pl.DataFrame({"service": ["rust"], "offered_rps": [RATE], "t_ns": [T0], "rss_bytes": [MIB]})
    assert memory_timeline(samples, legs(1, service="rust"))["series"].to_list() == ["RSS"]


def test_late_sends_with_a_full_pool_are_the_services() -> None:
    # two workers, each answer 400 ms, 10 req/s offered: a worker sends the moment its answer
    # is in (request i at 400 ms x (i // 2) + 100 ms x (i % 2)), ever later
    def full(i: int) -> tuple[int, str | None, float | None, float]:
        return 202, None, 400.0 * (i // 2) + 100.0 * (i % 2) - 100.0 * i, 400.0

    pool = rows(2, full)
    assert late_with_free_workers(pool, max_in_flight=2) == 0.0
    # the same late sends from a pool of 100 workers: the generator's own lateness
    assert late_with_free_workers(pool, max_in_flight=100) == pytest.approx(18 / 20)


def test_on_time_sends_are_never_late() -> None:
    assert late_with_free_workers(rows(2, lambda i: (202, None, 0.5, 5.0)), max_in_flight=1) == 0.0
    assert late_with_free_workers(rows(1, overloaded).filter(pl.col("status") < 0), max_in_flight=1) == 0.0
