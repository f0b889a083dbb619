"""ingestlab.analysis.faults on hand-built request rows: outcomes, the per-second timeline,
the time to recover, the ledger against records read back, and RSS around a fault."""

from __future__ import annotations

import polars as pl
import pytest

from ingestlab.analysis.faults import (
    WINDOW_SCHEMA,
    fault_ledger,
    latency_around,
    outcome,
    recovery_s,
    rss_around,
    rss_timeline,
    status_counts,
    timeline,
)
from ingestlab.units import MIB, NS_PER_MS, NS_PER_S

T0 = 1_800_000_000 * NS_PER_S  # the load's first intended start
RATE = 10  # req/s: one request every 100 ms


def rows(seconds: float, answer, *, service: str = "rust", fault: str = "pause") -> pl.DataFrame:
    """Request rows at RATE req/s for `seconds` from T0; `answer(t_s)` gives each request's
    (status, error_class, latency_ms or None when it was never sent)."""
    data = []
    for i in range(round(seconds * RATE)):
        t_s = i / RATE
        status, error_class, latency_ms = answer(t_s)
        intended = T0 + i * NS_PER_S // RATE
        data.append({
            "service": service, "fault": fault, "request_id": f"{service}-{fault}-{i:05d}",
            "intended_start_ns": intended,
            "actual_start_ns": None if latency_ms is None else intended,
            "end_ns": None if latency_ms is None else intended + round(latency_ms * NS_PER_MS),
            "status": status, "error_class": error_class,
        })
    return pl.DataFrame(data, schema={"service": pl.String, "fault": pl.String, "request_id": pl.String,
                                      "intended_start_ns": pl.Int64, "actual_start_ns": pl.Int64,
                                      "end_ns": pl.Int64, "status": pl.Int16, "error_class": pl.String})


def window(start_s: float, end_s: float, load_s: float, *, service: str = "rust",
           fault: str = "pause") -> pl.DataFrame:
    return pl.DataFrame([{"service": service, "fault": fault, "start_ns": T0 + round(start_s * NS_PER_S),
                          "end_ns": T0 + round(end_s * NS_PER_S), "load_start_ns": T0,
                          "load_end_ns": T0 + round(load_s * NS_PER_S)}], schema=WINDOW_SCHEMA)


def paused_rust(t_s: float) -> tuple[int, str | None, float | None]:
    """A broker paused from 2 s to 5 s in front of a service that answers after the broker
    acknowledged, to a client that waits 2 s: requests of 2.0-3.0 s time out, those of
    3.0-5.0 s are answered when the broker is back, the rest in 5 ms."""
    if 2.0 <= t_s < 3.0:
        return 0, "TimeoutError", 2_000.0
    if 3.0 <= t_s < 5.0:
        return 202, None, (5.0 - t_s) * 1000 + 5
    return 202, None, 5.0


def test_outcome_of_each_status() -> None:
    no_answer = ["TimeoutError", "ConnectionRefusedError", "client_backlog"]
    frame = pl.DataFrame({"status": [202, 400, 413, 500, 503, 200, 0, 0, 0],
                          "error_class": [None] * 6 + no_answer})
    assert frame.select(outcome().alias("outcome"))["outcome"].to_list() == [
        "accepted", "errors_4xx", "errors_4xx", "errors_5xx", "errors_5xx", "errors_5xx",
        "timeouts", "no_answer", "no_answer"]


def test_timeline_counts_offered_by_intent_and_outcomes_when_learnt() -> None:
    requests = rows(10, paused_rust)
    line = timeline(requests, window(2.0, 5.0, 10.0))
    by_t = {r["t_s"]: r for r in line.iter_rows(named=True)}
    assert by_t[-2.0]["offered"] == by_t[-2.0]["accepted"] == RATE  # before the fault
    # the first second of the pause: offered as ever, nothing answered, no timeout yet
    assert by_t[0.0]["offered"] == RATE and by_t[0.0]["accepted"] == 0 and by_t[0.0]["errors"] == 0
    # the requests of 2.0-3.0 s time out 2 s later, in 4.0-5.0 s (t_s 2.0)
    assert by_t[2.0]["timeouts"] == RATE and by_t[2.0]["errors"] == RATE
    # at the resume every held request is answered at once: 20 held + the second's own 10
    assert by_t[3.0]["accepted"] == 3 * RATE
    assert line["offered"].sum() == requests.height
    assert line["accepted"].sum() + line["timeouts"].sum() == requests.height
    assert by_t[3.0]["p99_ms"] == pytest.approx(5.0)
    assert line["t_s"].is_sorted()


def test_recovery_is_zero_when_the_first_second_after_the_fault_is_normal() -> None:
    requests = rows(10, paused_rust)
    assert recovery_s(requests, fault_end_ns=T0 + 5 * NS_PER_S, load_end_ns=T0 + 10 * NS_PER_S) == 0.0


def test_recovery_waits_until_errors_stop_for_good() -> None:
    def flapping(t_s: float) -> tuple[int, str | None, float | None]:
        # after a fault ending at 2 s: 500s in 2-4 s, one good second, a last 500 in 5-6 s
        bad = 2.0 <= t_s < 4.0 or 5.0 <= t_s < 5.15
        return (500, None, 1.0) if bad else (202, None, 1.0)

    requests = rows(10, flapping)
    assert recovery_s(requests, fault_end_ns=T0 + 2 * NS_PER_S, load_end_ns=T0 + 10 * NS_PER_S) == 4.0


def test_recovery_needs_95_percent_of_the_offered_202s() -> None:
    # one request in twenty answered 202 only after the load's end: 19 of 20 in each 2-s window
    def late(t_s: float) -> tuple[int, str | None, float | None]:
        return (202, None, 20_000.0) if round(t_s * RATE) % 20 == 0 else (202, None, 1.0)

    requests = rows(8, late)
    end, load_end = T0 + 2 * NS_PER_S, T0 + 8 * NS_PER_S
    assert recovery_s(requests, fault_end_ns=end, load_end_ns=load_end, every_s=2.0) == 0.0
    assert recovery_s(requests, fault_end_ns=end, load_end_ns=load_end, every_s=2.0, share=0.96) is None


def test_recovery_has_no_answer_without_a_whole_window_after_the_fault() -> None:
    requests = rows(5, paused_rust)
    assert recovery_s(requests, fault_end_ns=T0 + 4_500 * NS_PER_MS, load_end_ns=T0 + 5 * NS_PER_S) is None


def test_ledger_matches_requests_to_records() -> None:
    requests = pl.concat([
        rows(1, lambda t: (202, None, 1.0)),  # 10 accepted
        rows(1, lambda t: (0, "TimeoutError", 2_000.0), fault="kill"),  # 10 timed out
    ])
    ids = requests["request_id"].to_list()
    records = pl.DataFrame({"request_id": [
        *ids[:9],                 # pause: 9 of 10 accepted delivered: 1 lost
        ids[0], ids[1],           # pause: 2 duplicates
        *ids[10:13],              # kill: 3 timed out yet delivered
        "other-run-00001",        # another run's record: ignored
    ]})
    ledger = {r["fault"]: r for r in fault_ledger(requests, records).iter_rows(named=True)}
    expected = {"sent": 10, "accepted": 10, "delivered": 9, "lost": 1, "duplicated": 2,
                "delivered_after_error": 0, "timeouts": 0}
    assert {k: ledger["pause"][k] for k in expected} == expected
    assert ledger["kill"]["timeouts"] == 10 and ledger["kill"]["accepted"] == 0
    assert ledger["kill"]["delivered_after_error"] == 3 and ledger["kill"]["lost"] == 0
    assert status_counts(requests).to_dicts() == [
        {"service": "rust", "fault": "kill", "status": 0, "requests": 10},
        {"service": "rust", "fault": "pause", "status": 202, "requests": 10},
    ]


def test_latency_before_and_during_the_fault() -> None:
    def slow_after(t_s: float) -> tuple[int, str | None, float | None]:
        # a slow answer after the fault belongs to no window of latency_around
        return (202, None, 9_000.0) if t_s >= 8.0 else paused_rust(t_s)

    found = latency_around(rows(10, slow_after), window(2.0, 5.0, 10.0)).row(0, named=True)
    assert found["p99_before_ms"] == pytest.approx(5.0)
    # the requests of 2.0-3.0 s got no answer; of those answered, the one of 3.0 s waited longest
    assert found["p99_during_ms"] == pytest.approx(2_005.0)


def test_rss_before_and_peak_around_the_fault() -> None:
    samples = pl.DataFrame({
        "service": ["rust"] * 12,
        "t_ns": [T0 + i * NS_PER_S for i in range(12)],
        "rss_bytes": [m * MIB for m in (10, 11, 12, 50, 90, 70, 20, 15, 15, 15, 15, 300)],
    })
    windows = window(2.5, 5.0, 10.0)
    found = rss_around(samples, windows).row(0, named=True)
    assert found["rss_before_mib"] == 12.0  # the last sample before 2.5 s
    assert found["rss_peak_mib"] == 90.0  # 3-10 s; the 300 MiB at 11 s is after the load
    series = rss_timeline(samples, windows)
    assert series["t_s"].to_list()[0] == -2.5 and series.height == 11
