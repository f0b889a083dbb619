"""GC pauses joined to requests, on hand-built frames: pause windows, overlap at the edges,
the latency summary and requests in flight per pause."""

from __future__ import annotations

import random

import polars as pl
import pytest

from ingestlab.analysis.gc import (
    gc_latency_summary,
    gc_pause_windows,
    in_flight_per_pause,
    requests_during_gc,
)
from ingestlab.load.rows import REQUEST_SCHEMA
from ingestlab.telemetry.gc_trace import GC_SCHEMA

T0_NS = 1_700_000_000_000_000_000
MS = 1_000_000


def gc_frame(pauses: list[tuple[float, float, str]]) -> pl.DataFrame:
    """GC events from (end_ms after T0, pause_ms, kind): the trace time is the pause's end."""
    rows = [
        {"pid": 1, "isolate": "0x1", "line_no": i + 1, "trace_ms": end_ms,
         "wall_ns": T0_NS + round(end_ms * MS), "kind": kind,
         "generation": "young" if kind == "Scavenge" else "full", "pause_ms": pause_ms}
        for i, (end_ms, pause_ms, kind) in enumerate(pauses)
    ]
    return pl.DataFrame(rows).with_columns(
        *(pl.lit(None).alias(name) for name in GC_SCHEMA if name not in rows[0])
    ).select(*GC_SCHEMA).cast(GC_SCHEMA)


def requests(spans_ms: list[tuple[float | None, float | None]], *, latency_ms: list[float] | None = None,
             phase: list[str] | None = None, status: list[int] | None = None) -> pl.DataFrame:
    """Request rows from (actual start, end) in ms after T0; intended start = end - latency
    (default: the actual start)."""
    n = len(spans_ms)

    def ns(v: float | None) -> int | None:
        return None if v is None else T0_NS + round(v * MS)

    intended = [
        ns(end - lat) if latency_ms and end is not None else ns(start) if start is not None else ns(end)
        for (start, end), lat in zip(spans_ms, latency_ms or [0.0] * n, strict=True)
    ]
    return pl.DataFrame(
        {
            "request_id": [f"r-{i}" for i in range(n)],
            "step": [0] * n,
            "phase": phase or ["measure"] * n,
            "intended_start_ns": intended,
            "actual_start_ns": [ns(s) for s, _ in spans_ms],
            "end_ns": [ns(e) for _, e in spans_ms],
            "status": status or [202] * n,
            "bytes_sent": [10_000] * n,
            "error_class": [None] * n,
        },
        schema=REQUEST_SCHEMA,
    )


def test_pause_window_ends_at_the_trace_time():
    windows = gc_pause_windows(gc_frame([(110.0, 10.0, "Mark-Compact"), (50.0, 0.25, "Scavenge")]))
    assert windows.select("kind", "start_ns", "end_ns").rows() == [
        ("Scavenge", T0_NS + 49_750_000, T0_NS + 50 * MS),
        ("Mark-Compact", T0_NS + 100 * MS, T0_NS + 110 * MS),
    ]


def test_pause_windows_refuse_events_without_wall_time():
    gc = gc_frame([(110.0, 10.0, "Scavenge")]).with_columns(wall_ns=pl.lit(None, pl.Int64))
    with pytest.raises(ValueError, match="no wall time"):
        gc_pause_windows(gc)


def test_requests_straddling_pause_edges():
    gc = gc_frame([(110.0, 10.0, "Mark-Compact")])  # pause [100, 110] ms
    spans = [
        (90, 100),  # ends exactly as the pause starts: not held up
        (90, 101),  # runs 1 ms into it
        (105, 107),  # inside it
        (109, 120),  # started 1 ms before it ended
        (110, 120),  # starts exactly as it ends: not held up
        (50, 200),  # spans all of it
        (120, 130),  # after it
        (None, None),  # never sent
        (95, None),  # sent, no outcome recorded
    ]
    out = requests_during_gc(requests(spans), gc)
    assert out["during_gc"].to_list() == [False, True, True, True, False, True, False, False, False]
    assert out["gc_overlap_ms"].to_list() == [0.0, 1.0, 2.0, 1.0, 0.0, 10.0, 0.0, 0.0, 0.0]
    assert out["gc_kind"].to_list() == [None, *["Mark-Compact"] * 3, None, "Mark-Compact", None, None, None]
    assert out["gc_pauses"].to_list() == [0, 1, 1, 1, 0, 1, 0, 0, 0]
    assert out.columns == [*REQUEST_SCHEMA, "during_gc", "gc_kind", "gc_pauses", "gc_overlap_ms"]


def test_only_measured_requests_are_annotated():
    gc = gc_frame([(110.0, 10.0, "Scavenge")])
    out = requests_during_gc(requests([(95, 105), (96, 106)], phase=["warmup", "measure"]), gc)
    assert out["request_id"].to_list() == ["r-1"]
    assert out["during_gc"].to_list() == [True]


def test_request_over_several_pauses_takes_the_kind_it_overlaps_longest():
    gc = gc_frame([(102.0, 2.0, "Scavenge"), (120.0, 5.0, "Mark-Compact"), (131.0, 1.0, "Scavenge")])
    out = requests_during_gc(requests([(101, 130.5), (119.5, 140), (119, 140)]), gc)
    assert out.select("gc_kind", "gc_pauses", "gc_overlap_ms").rows() == [
        ("Mark-Compact", 3, 6.5),  # 1 ms of [100,102], all 5 ms of [115,120], 0.5 ms of [130,131]
        ("Scavenge", 2, 1.5),  # 0.5 ms of the longer pause [115,120], 1 ms of [130,131]
        ("Mark-Compact", 2, 2.0),  # 1 ms of each: a tie goes to the earlier pause
    ]


def test_overlapping_pauses_are_merged():
    # Two isolates pausing at once: [100, 110] and [105, 108]; one stretch of 10 ms.
    gc = gc_frame([(110.0, 10.0, "Mark-Compact"), (108.0, 3.0, "Scavenge")])
    out = requests_during_gc(requests([(104, 106), (109, 115), (111, 115)]), gc)
    assert out.select("during_gc", "gc_kind", "gc_pauses", "gc_overlap_ms").rows() == [
        (True, "Mark-Compact", 1, 2.0),
        (True, "Mark-Compact", 1, 1.0),
        (False, None, 0, 0.0),
    ]


def test_overlap_matches_brute_force():
    rng = random.Random(7)
    pauses = []
    t = 0.0
    for _ in range(300):  # disjoint pauses, as one isolate makes them
        t += rng.uniform(0.5, 20.0)
        pause = rng.choice([0.0, rng.uniform(0.1, 3.0), rng.uniform(3.0, 15.0)])
        t += pause
        pauses.append((round(t, 3), round(pause, 3), rng.choice(["Scavenge", "Mark-Compact"])))
    spans = []
    for _ in range(3000):
        start = rng.uniform(0, t)
        spans.append((round(start, 3), round(start + rng.expovariate(1 / 8.0), 3)))
    out = requests_during_gc(requests(spans), gc_frame(pauses))

    windows = [(round((end - p) * MS), round(end * MS)) for end, p, _ in pauses]
    expected_count, expected_overlap = [], []
    for start, end in spans:
        a, e = round(start * MS), round(end * MS)
        hits = [(s, w_end) for s, w_end in windows if s < e and w_end > a]
        expected_count.append(len(hits))
        expected_overlap.append(sum(min(e, w_end) - max(a, s) for s, w_end in hits) / MS)
    assert out["gc_pauses"].to_list() == expected_count
    assert out["gc_overlap_ms"].to_list() == pytest.approx(expected_overlap, abs=1e-9)
    assert 0 < sum(out["during_gc"]) < len(spans)


def test_latency_summary():
    # 200 requests 10 ms apart; each lasts its latency (sent on time). Requests 10, 30, ..., 110
    # are slow (31..36 ms) and each overlaps one pause placed 16 ms after its start, where no
    # fast request (5 ms) is in flight. Slow requests outside GC: three of 21 ms, one of 40 ms.
    latency = [5.0] * 200
    during = {10: 31.0, 30: 32.0, 50: 33.0, 70: 34.0, 90: 35.0, 110: 36.0}
    outside = {130: 21.0, 150: 21.0, 170: 21.0, 190: 40.0}
    latency = [during.get(i, outside.get(i, 5.0)) for i in range(200)]
    spans = [(i * 10.0, i * 10.0 + lat) for i, lat in enumerate(latency)]
    kinds = ["Scavenge", "Mark-Compact", "Scavenge", "Mark-Compact", "Scavenge", "Scavenge"]
    pause_ms = [1.0, 2.5, 1.0, 2.5, 1.0, 1.0]
    pauses = [(i * 10.0 + 16 + p, p, kind) for i, p, kind in zip(during, pause_ms, kinds, strict=True)]
    pauses.append((-10_000.0, 50.0, "Mark-Compact"))  # start-up, long before the measured span
    rows = pl.concat([
        requests(spans, latency_ms=latency),
        requests([(-5_000.0, -4_000.0)], phase=["warmup"]),  # slow warm-up request: left out
    ])
    summary = gc_latency_summary(rows, gc_frame(pauses))
    assert summary["requests"] == 200
    assert summary["requests_during_gc"] == 6
    assert summary["share_during_gc"] == 0.03
    # sorted latencies: 190 x 5, 3 x 21, 31..36, 40 -> rank 198 of 200 is 35
    assert summary["p99_ms"] == 35.0
    assert summary["p99_outside_gc_ms"] == 21.0  # rank 193 of 194
    assert summary["p99_during_gc_ms"] == 36.0
    assert summary["share_of_slow_requests_during_gc"] == 0.5  # of 36 (GC) and 40 (not)
    assert summary["gc_events"] == 6
    assert summary["gc_pause_p99_ms"] == 2.5
    assert summary["gc_pause_max_ms"] == 2.5
    assert summary["gc_pause_total_ms"] == 9.0
    assert summary["pause_total_ms_by_kind"] == {"Mark-Compact": 5.0, "Scavenge": 4.0}
    assert summary["events_by_kind"] == {"Mark-Compact": 2, "Scavenge": 4}
    assert summary["gc_time_share"] == pytest.approx(9.0 / 1995.0)  # span: 0 .. 1995 ms


def test_latency_summary_without_pauses():
    summary = gc_latency_summary(requests([(0, 5), (10, 15)]), gc_frame([(-1.0, 1.0, "Scavenge")]))
    assert summary["requests_during_gc"] == 0
    assert summary["p99_during_gc_ms"] is None
    assert summary["share_of_slow_requests_during_gc"] is None  # nothing slower than the p99
    assert (summary["gc_events"], summary["gc_pause_total_ms"], summary["gc_time_share"]) == (0, 0.0, 0.0)
    assert summary["pause_total_ms_by_kind"] == {}


def test_in_flight_per_pause():
    gc = gc_frame([(110.0, 10.0, "Mark-Compact"), (200.0, 0.0, "Scavenge")])  # [100,110], [200,200]
    spans = [(90, 100), (90, 101), (105, 107), (109, 120), (110, 120), (50, 250), (150, 200),
             (199, 201), (None, None)]
    out = in_flight_per_pause(requests(spans, phase=["warmup"] + ["measure"] * 8), gc)
    # [100,110]: (90,101), (105,107), (109,120), (50,250); the warm-up one ending at 100 does not count.
    # [200,200]: a 0 ms pause strictly inside (50,250) and (199,201); (150,200) merely touches it.
    assert out.select("kind", "in_flight").rows() == [("Mark-Compact", 4), ("Scavenge", 2)]
