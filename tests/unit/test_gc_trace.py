"""The V8 --trace-gc parser: real Node 20 logs captured from the service, plus synthetic
lines for the variants other V8 versions print (and garbled ones that must not vanish)."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from ingestlab.telemetry.gc_trace import GC_SCHEMA, parse_gc_log, parse_gc_trace

FIXTURES = Path(__file__).parent / "fixtures" / "gc"
# Wall-clock span of each capture (time.time_ns() before the Stack started and after it was
# torn down); every GC of the service happened inside it.
CAPTURES_NS = {
    "node-10kb": (1795668286887786233, 1795668333340826082),
    "node-100kb": (1795668333341303539, 1795668365669931687),
    "node-64mb": (1795668365670617247, 1795668395395254700),
}
MS = 1_000_000


def events_by_kind(name: str) -> dict[tuple[str, str | None], int]:
    events = parse_gc_log(FIXTURES / f"{name}.log").events
    return {(kind, variant): n for kind, variant, n in events.group_by("kind", "variant").len().rows()}


# --- real logs -----------------------------------------------------------------------------
def test_real_logs_events_by_kind():
    assert events_by_kind("node-10kb") == {("Scavenge", None): 59, ("Mark-Compact", None): 12,
                                           ("Mark-Compact", "reduce"): 2}
    assert events_by_kind("node-100kb") == {("Scavenge", None): 135, ("Mark-Compact", None): 10}
    assert events_by_kind("node-64mb") == {("Scavenge", None): 194, ("Mark-Compact", None): 13}


@pytest.mark.parametrize("name", sorted(CAPTURES_NS))
def test_real_logs_parse_every_gc_line(name):
    path = FIXTURES / f"{name}.log"
    trace = parse_gc_log(path)
    gc_lines = [i for i, line in enumerate(path.read_text().splitlines(), 1) if " ms: " in line]
    assert trace.unparsed == []
    assert trace.other_trace_lines == 0
    assert trace.events["line_no"].to_list() == gc_lines
    assert trace.events.schema == pl.Schema(GC_SCHEMA)
    assert trace.events["generation"].to_list() == [
        "young" if kind == "Scavenge" else "full" for kind in trace.events["kind"]
    ]


@pytest.mark.parametrize("name", sorted(CAPTURES_NS))
def test_real_logs_wall_times_fall_in_the_capture_window(name):
    trace = parse_gc_log(FIXTURES / f"{name}.log")
    start_ns, end_ns = CAPTURES_NS[name]
    wall = trace.events["wall_ns"]
    assert wall.null_count() == 0
    assert start_ns < wall.min() and wall.max() < end_ns
    # Trace times only grow within a process, and so do the wall times derived from them.
    assert wall.is_sorted()
    # The service's clock line has no v8_start_ms yet: the trace says its wall times are early.
    assert len(trace.warnings) == 1 and "no v8_start_ms" in trace.warnings[0]


def test_real_scavenge_line_values():
    # line 49: "[21677:0x3b897ce0]     6463 ms: Scavenge 25.5 (42.7) -> 10.4 (43.0) MB,
    #           32.25 / 0.03 ms  (average mu = 0.991, current mu = 0.990) allocation failure; "
    events = parse_gc_log(FIXTURES / "node-100kb.log").events
    row = events.filter(pl.col("line_no") == 49).row(0, named=True)
    anchor_ns = 1795668342754 * MS - 496_499_000  # clock epoch_ms=1795668342754 uptime_ms=496.499
    assert row == {
        "pid": 21677, "isolate": "0x3b897ce0", "line_no": 49, "trace_ms": 6463.0,
        "wall_ns": anchor_ns + 6463 * MS, "kind": "Scavenge", "generation": "young", "variant": None,
        "heap_before_mib": 25.5, "committed_before_mib": 42.7, "heap_after_mib": 10.4,
        "committed_after_mib": 43.0, "pooled_mib": None, "pause_ms": 32.25, "external_ms": 0.03,
        "incremental_ms": None, "incremental_steps": None, "incremental_max_step_ms": None,
        "marking_walltime_ms": None, "reason": "allocation failure", "collector_reason": None,
    }


def test_real_mark_compact_lines_values():
    events = parse_gc_log(FIXTURES / "node-100kb.log").events
    # line 59: "... 6840 ms: Mark-Compact 25.8 (45.5) -> 8.9 (46.5) MB, 2.59 / 0.02 ms  (+ 3.6 ms in
    # 13 steps since start of marking, biggest step 3.2 ms, walltime since start of marking 10 ms)
    # (average mu = 0.997, current mu = 0.998) finalize incremental marking via stack guard;
    # GC in old space requested"
    row = events.filter(pl.col("line_no") == 59).row(0, named=True)
    assert (row["kind"], row["variant"], row["generation"]) == ("Mark-Compact", None, "full")
    assert (row["heap_before_mib"], row["heap_after_mib"], row["pause_ms"], row["external_ms"]) == (
        25.8, 8.9, 2.59, 0.02)
    assert (row["incremental_ms"], row["incremental_steps"], row["incremental_max_step_ms"],
            row["marking_walltime_ms"]) == (3.6, 13, 3.2, 10.0)
    assert row["reason"] == "finalize incremental marking via stack guard"
    assert row["collector_reason"] == "GC in old space requested"

    # The memory reducer's collections after the load stopped: "Mark-Compact (reduce)".
    reduced = parse_gc_log(FIXTURES / "node-10kb.log").events.filter(pl.col("variant") == "reduce")
    assert reduced.select("trace_ms", "heap_before_mib", "committed_after_mib", "pause_ms").rows() == [
        (32529.0, 12.1, 9.5, 11.0), (33139.0, 7.7, 9.2, 3.39)]


def test_logs_of_two_processes_get_one_clock_each():
    # A restarted service appends to the same log: two real logs back to back.
    first = (FIXTURES / "node-10kb.log").read_text()
    second = (FIXTURES / "node-100kb.log").read_text()
    trace = parse_gc_trace(first + second)
    alone = [parse_gc_log(FIXTURES / f"{name}.log") for name in ("node-10kb", "node-100kb")]
    assert trace.clock_anchors == {**alone[0].clock_anchors, **alone[1].clock_anchors}
    assert trace.events["wall_ns"].to_list() == pl.concat([a.events for a in alone])["wall_ns"].to_list()


# --- synthetic lines -----------------------------------------------------------------------
P = "[12345:0x5f3c2c0]"
CLOCK = "clock epoch_ms=1700000000000 uptime_ms=150.500 v8_start_ms=40.250"
ANCHOR_NS = 1_700_000_000_000 * MS - 150_500_000 + 40_250_000

VARIANT_LINES = {
    # the format of Node 20 (V8 11.3), as in the real logs
    "scavenge": f"{P}     1234 ms: Scavenge 4.2 (5.0) -> 3.9 (6.0) MB, 1.23 / 0.00 ms  "
                "(average mu = 1.000, current mu = 1.000) allocation failure; ",
    "mark_compact": f"{P}     5678 ms: Mark-Compact 20.1 (25.3) -> 15.2 (24.1) MB, 12.34 / 0.01 ms  "
                    "(+ 5.6 ms in 12 steps since start of marking, biggest step 1.2 ms, walltime since "
                    "start of marking 50 ms) (average mu = 0.99, current mu = 0.98) finalize incremental "
                    "marking via stack guard; GC in old space requested",
    "reduce": f"{P}     6000 ms: Mark-Compact (reduce) 12.1 (48.0) -> 7.7 (9.5) MB, 11.00 / 0.03 ms  "
              "(average mu = 0.999, current mu = 0.999) memory reducer; ",
    # newer V8: "(interleaved)", "pooled: N MB", "Minor Mark-Sweep"
    "interleaved": f"{P}     7000 ms: Scavenge (interleaved) 30.0 (40.0) -> 20.0 (40.0) MB, pooled: 1 MB, "
                   "2.50 / 0.00 ms  (average mu = 0.990, current mu = 0.980) allocation failure; ",
    "mc_interleaved": f"{P}     7100 ms: Mark-Compact (interleaved) 30.0 (40.0) -> 20.0 (40.0) MB, "
                      "4.00 / 0.00 ms  (average mu = 0.990, current mu = 0.980) task; ",
    "minor_ms": f"{P}     7200 ms: Minor Mark-Sweep 10.0 (12.0) -> 8.0 (12.0) MB, pooled: 2 MB, "
                "0.80 / 0.00 ms  (average mu = 1.000, current mu = 1.000) allocation failure; ",
    # older V8: one decimal, no ";" between the reasons, no mu block, "Mark-sweep"/"Mark-Sweep"
    "one_decimal": f"{P}     8000 ms: Scavenge 2.2 (4.2) -> 1.9 (5.2) MB, 1.0 / 0.0 ms  allocation failure ",
    "mark_sweep_old": f"{P}     8100 ms: Mark-sweep 5.0 (8.0) -> 4.0 (8.0) MB, 3.2 / 0.0 ms  "
                      "(+ 1.1 ms in 5 steps since start of marking, biggest step 0.4 ms, walltime since "
                      "start of marking 7 ms) finalize incremental marking via task "
                      "GC in old space requested",
    "mark_sweep": f"{P}     8200 ms: Mark-Sweep 5.0 (8.0) -> 4.0 (8.0) MB, 3.25 / 0.00 ms  "
                  "(average mu = 0.950, current mu = 0.900) last resort; testing",
}


def parse_one(line: str) -> dict[str, object]:
    trace = parse_gc_trace(f"{CLOCK}\n{line}\n")
    assert trace.unparsed == []
    assert trace.events.height == 1
    return trace.events.row(0, named=True)


def test_synthetic_scavenge_and_clock():
    row = parse_one(VARIANT_LINES["scavenge"])
    assert (row["pid"], row["isolate"], row["line_no"], row["trace_ms"]) == (12345, "0x5f3c2c0", 2, 1234.0)
    # wall = epoch_ms - uptime_ms + v8_start_ms + trace_ms
    assert row["wall_ns"] == ANCHOR_NS + 1234 * MS
    assert (row["kind"], row["variant"], row["pause_ms"], row["external_ms"]) == ("Scavenge", None, 1.23, 0.0)
    assert (row["reason"], row["collector_reason"]) == ("allocation failure", None)


def test_clock_with_v8_start_gives_no_warning():
    trace = parse_gc_trace(f"{VARIANT_LINES['scavenge']}\n{CLOCK}\n")
    assert trace.clock_anchors == {12345: ANCHOR_NS}
    assert trace.warnings == []


def test_synthetic_incremental_block():
    row = parse_one(VARIANT_LINES["mark_compact"])
    assert (row["kind"], row["generation"], row["pause_ms"], row["external_ms"]) == (
        "Mark-Compact", "full", 12.34, 0.01)
    assert (row["heap_before_mib"], row["committed_before_mib"], row["heap_after_mib"],
            row["committed_after_mib"]) == (20.1, 25.3, 15.2, 24.1)
    assert (row["incremental_ms"], row["incremental_steps"], row["incremental_max_step_ms"],
            row["marking_walltime_ms"]) == (5.6, 12, 1.2, 50.0)
    assert (row["reason"], row["collector_reason"]) == (
        "finalize incremental marking via stack guard", "GC in old space requested")


@pytest.mark.parametrize(
    ("name", "kind", "variant", "generation", "pause_ms", "pooled_mib", "reason", "collector_reason"),
    [
        ("reduce", "Mark-Compact", "reduce", "full", 11.0, None, "memory reducer", None),
        ("interleaved", "Scavenge", "interleaved", "young", 2.5, 1.0, "allocation failure", None),
        ("mc_interleaved", "Mark-Compact", "interleaved", "full", 4.0, None, "task", None),
        ("minor_ms", "Minor Mark-Sweep", None, "young", 0.8, 2.0, "allocation failure", None),
        ("one_decimal", "Scavenge", None, "young", 1.0, None, "allocation failure", None),
        ("mark_sweep_old", "Mark-sweep", None, "full", 3.2, None,
         "finalize incremental marking via task GC in old space requested", None),
        ("mark_sweep", "Mark-Sweep", None, "full", 3.25, None, "last resort", "testing"),
    ],
)
def test_synthetic_variants(name, kind, variant, generation, pause_ms, pooled_mib, reason, collector_reason):
    row = parse_one(VARIANT_LINES[name])
    assert (row["kind"], row["variant"], row["generation"], row["pause_ms"], row["pooled_mib"]) == (
        kind, variant, generation, pause_ms, pooled_mib)
    assert (row["reason"], row["collector_reason"]) == (reason, collector_reason)


def test_both_variants_are_kept():
    row = parse_one(f"{P}  10 ms: Scavenge (reduce) (interleaved) 3.0 (4.0) -> 2.0 (4.0) MB, 0.50 / 0.00 ms  "
                    "(average mu = 1.000, current mu = 1.000) task; ")
    assert (row["kind"], row["variant"]) == ("Scavenge", "reduce,interleaved")


GARBLED = [
    # cut off inside the mu block
    f"{P}     1234 ms: Scavenge 4.2 (5.0) -> 3.9 (6.0) MB, 1.23 / 0.00 ms  (average mu = 1.0",
    # committed size missing
    f"{P}     1234 ms: Scavenge 4.2 (5.0) -> 3.9 MB, 1.23 / 0.00 ms  "
    "(average mu = 1.000, current mu = 1.000) task; ",
    # cut off inside the incremental block
    f"{P}     5678 ms: Mark-Compact 20.1 (25.3) -> 15.2 (24.1) MB, 12.34 / 0.01 ms  (+ 5.6 ms in 12 st",
    # an unknown collector whose numbers do not fit the grammar
    f"{P}     5700 ms: Full Sweep 20.1 -> 15.2 MB, 12 ms",
    # the prefix lost (two writers interleaved on the same line)
    "Kafka producer r     5678 ms: Mark-Compact 20.1 (25.3) -> 15.2 (24.1) MB, 12.34 / 0.01 ms",
    # a clock line that does not parse
    "clock epoch_ms=soon uptime_ms=12",
]


def test_garbled_gc_lines_are_counted_not_dropped():
    noise = [
        "Ingestion microservice running on http://127.0.0.1:3000",
        "Kafka producer ready",
        "%7|1700000000.123|BROKER|rdkafka#producer-1| [thrd:app]: 127.0.0.1:9092/bootstrap: Added new broker",
        "Ingestion production failure: Local: Queue full",
        f"{P}     5000 ms: [IncrementalMarking] Start (idle task): (size of objects 12.3 MB)",
        f"{P}     5001 ms: [IncrementalMarking] Scavenge during marking.",
    ]
    text = "\n".join([CLOCK, VARIANT_LINES["scavenge"], *GARBLED, *noise, VARIANT_LINES["mark_compact"]])
    trace = parse_gc_trace(text)
    assert trace.events["line_no"].to_list() == [2, 3 + len(GARBLED) + len(noise)]
    assert trace.unparsed == [(3 + i, line) for i, line in enumerate(GARBLED)]
    assert trace.other_trace_lines == 2
    assert any(f"{len(GARBLED)} lines look like GC lines" in w for w in trace.warnings)


def test_without_clock_wall_time_is_null_and_said():
    trace = parse_gc_trace(VARIANT_LINES["scavenge"] + "\n")
    assert trace.events["wall_ns"].to_list() == [None]
    assert trace.clock_anchors == {}
    assert trace.warnings == ["pid 12345: no clock line, so its 1 GC events have no wall time"]


def test_empty_log():
    trace = parse_gc_trace("Kafka producer ready\n")
    assert trace.events.is_empty() and trace.events.schema == pl.Schema(GC_SCHEMA)
    assert trace.unparsed == [] and trace.warnings == []
