"""Parser for V8's `--trace-gc` output, as the Node service writes it to its log.

One line per collection. Node 20 (V8 11.3) prints, from the format string in its binary,
`[%d:%p] %8.0f ms: %s%s %.1f (%.1f) -> %.1f (%.1f) MB, %.2f / %.2f ms %s (average mu =
%.3f, current mu = %.3f) %s; %s`, e.g. (one line in the log):

    [14990:0x4237bce0]     1357 ms: Mark-Compact 9.7 (17.0) -> 7.7 (17.7) MB, 3.53 / 0.00 ms
      (+ 6.9 ms in 12 steps since start of marking, biggest step 6.0 ms, walltime since start
      of marking 15 ms) (average mu = 1.000, current mu = 1.000) finalize incremental marking
      via task; GC in old space requested

The fields: `[pid:isolate]`, ms since the isolate was initialised (rounded to whole ms),
the collector and its variant (Node 20: only " (reduce)"), heap objects (committed heap)
before -> after in MB, the main-thread pause / time of it in external callbacks in ms, for
an incremental Mark-Compact the marking done before the final pause, mutator utilisation,
the GC reason and, after ";", the collector reason (often empty). Other V8 versions add
`pooled: N MB, ` (newer), " (interleaved)" (newer), print one decimal and no ";" (older)
or "Mark-sweep" (much older); the grammar here accepts all of them.

When the time is taken: V8 prints the line right after the atomic pause has ended and reads
"ms since init" then, so `trace_ms` marks the END of the pause. Measured with forced GCs of
25-190 ms (`node --trace-gc --expose-gc`): performance.now() after gc() minus the trace
time was the same for every pause length (within the 1 ms rounding), while "before" minus
trace time varied by the pause. `ingestlab.analysis.gc` places a pause at
[trace - pause, trace].

Wall time: at listen time the service prints `clock epoch_ms=<Date.now()>
uptime_ms=<performance.now()>` and, if present, `v8_start_ms=<performance.nodeTiming.v8Start>`.
performance.now() counts from Node's process start but the trace counts from the isolate's
initialisation, which comes after V8 is started: the same experiment put trace time 0 at
v8Start + 0.9 ms, with v8Start 38-67 ms on the study machine. So
`wall_ms = epoch_ms - uptime_ms + v8_start_ms + trace_ms`, good to about 1 ms; without
v8_start_ms the wall times are early by Node's start-up before V8, and `GcTrace.warnings`
says so.

Which lines count:

- a line matching the full grammar is one GC event;
- a line that looks like a GC event but does not match (it has " ms: " and either a known
  collector name or a "before -> after ... MB" transition, or it is a `clock ` line that
  does not parse) is kept in `GcTrace.unparsed`, never dropped silently;
- other V8 lines with the `[pid:isolate] N ms: ` prefix (e.g. `[IncrementalMarking] ...`
  from --trace-incremental-marking, whatever it names) are counted in
  `GcTrace.other_trace_lines`;
- everything else (Express, console, librdkafka output) is ignored.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

GC_SCHEMA: dict[str, pl.DataType] = {
    "pid": pl.Int32(),
    "isolate": pl.String(),  # V8 isolate address, e.g. "0x4237bce0": worker threads have their own
    "line_no": pl.Int32(),  # 1-based line in the log
    "trace_ms": pl.Float64(),  # ms since the isolate started, at the END of the pause
    "wall_ns": pl.Int64(),  # trace_ms as epoch ns (null without a clock line for this pid)
    "kind": pl.String(),  # as printed: "Scavenge", "Mark-Compact", "Mark-Sweep", "Minor Mark-Sweep"...
    "generation": pl.String(),  # "young" | "full" | null (unknown kind)
    "variant": pl.String(),  # "reduce", "interleaved", several joined by ",", or null
    "heap_before_mib": pl.Float64(),  # size of heap objects
    "committed_before_mib": pl.Float64(),  # memory the heap holds from the OS
    "heap_after_mib": pl.Float64(),
    "committed_after_mib": pl.Float64(),
    "pooled_mib": pl.Float64(),  # pooled pages (newer V8 only), else null
    "pause_ms": pl.Float64(),  # main-thread pause
    "external_ms": pl.Float64(),  # of which in external (embedder) callbacks
    "incremental_ms": pl.Float64(),  # incremental marking steps before the final pause
    "incremental_steps": pl.Int32(),
    "incremental_max_step_ms": pl.Float64(),  # longest of those steps (also a main-thread pause)
    "marking_walltime_ms": pl.Float64(),  # from start of marking to the end of the pause
    "reason": pl.String(),  # GC reason, e.g. "allocation failure", "task"
    "collector_reason": pl.String(),  # after ";", e.g. "GC in old space requested"; null if none
}

_NUM = r"\d+(?:\.\d+)?"
_PREFIX = re.compile(rf"^\s*\[(?P<pid>\d+):(?P<isolate>0x[0-9a-fA-F]+)\]\s+(?P<trace_ms>{_NUM}) ms: ")
_EVENT = re.compile(
    # Collector name: words joined by " " or "-" ("Scavenge", "Mark-Compact", "Minor Mark-Sweep").
    r"(?P<kind>[A-Z][A-Za-z]*(?:[ -][A-Za-z]+)*)"
    r"(?P<variants>(?: \([a-z][a-z ]*\))*) "
    rf"(?P<heap_before>{_NUM}) \((?P<committed_before>{_NUM})\) -> "
    rf"(?P<heap_after>{_NUM}) \((?P<committed_after>{_NUM})\) MB, "
    rf"(?:pooled: (?P<pooled>{_NUM}) MB, )?"
    rf"(?P<pause>{_NUM}) / (?P<external>{_NUM}) ms"
    r"(?: +\(\+ (?P<incremental>[^)]*)\))?"
    rf"(?: +\(average mu = {_NUM}, current mu = {_NUM}\))?"
    r"(?P<reason>.*)$"
)
_INCREMENTAL = re.compile(rf"^(?P<ms>{_NUM}) ms in (?P<steps>\d+) steps since start of marking")
_BIGGEST = re.compile(rf"biggest step (?P<ms>{_NUM}) ms")
_WALLTIME = re.compile(rf"walltime since start of marking (?P<ms>{_NUM}) ms")
_VARIANT = re.compile(r"\(([a-z][a-z ]*)\)")
_CLOCK = re.compile(
    rf"^clock epoch_ms=(?P<epoch>\d+) uptime_ms=(?P<uptime>{_NUM})(?: v8_start_ms=(?P<v8_start>{_NUM}))?\s*$"
)
# Collector names V8 has printed over the years (ToString(Event::Type) / TypeName); any of
# them in a line with " ms: " marks a GC line that must parse.
_KNOWN_KINDS = ("Scavenge", "Mark-Compact", "Mark-Sweep", "Mark-sweep", "Minor Mark-Sweep",
               "Minor Mark-Compact")
_YOUNG_KINDS = {"Scavenge", "Minor Mark-Sweep", "Minor Mark-Compact"}
_FULL_KINDS = {"Mark-Compact", "Mark-Sweep", "Mark-sweep"}
# A GC line names a known collector or shows a "before -> after ... MB" transition.
_LOOKS_LIKE_GC = re.compile("|".join(re.escape(kind) for kind in _KNOWN_KINDS) + r"|-> .*MB")
# GC and collector reasons are plain words ("allocation failure", "GC in old space
# requested"); brackets there mean the line was cut or merged with another one.
_NOT_A_REASON = re.compile(r"[()\[\]]")


@dataclass(frozen=True)
class GcTrace:
    """A parsed log.

    Attributes:
        events: one row per GC event, `GC_SCHEMA`, in log order.
        unparsed: (line number, line) of lines that look like GC lines but did not parse.
        clock_anchors: pid -> epoch ns at that process's trace time 0, from its clock line
            (epoch_ms - uptime_ms + v8_start_ms).
        other_trace_lines: V8 lines with the trace prefix that are not GC events.
        warnings: what makes the wall times doubtful: a process without a clock line (its
            wall_ns are null), a clock line without v8_start_ms (wall times early by Node's
            start-up before V8), unparsed lines.
    """

    events: pl.DataFrame
    unparsed: list[tuple[int, str]] = field(default_factory=list)
    clock_anchors: dict[int, int] = field(default_factory=dict)
    other_trace_lines: int = 0
    warnings: list[str] = field(default_factory=list)


def _generation(kind: str) -> str | None:
    if kind in _YOUNG_KINDS:
        return "young"
    return "full" if kind in _FULL_KINDS else None


def _event(line_no: int, prefix: re.Match[str], m: re.Match[str]) -> dict[str, object] | None:
    """One schema row (wall_ns still null) from a matched line, or None if a part is malformed."""
    if _NOT_A_REASON.search(m["reason"]):
        return None
    incremental = steps = max_step = walltime = None
    if m["incremental"] is not None:
        block = _INCREMENTAL.match(m["incremental"])
        if block is None:
            return None
        incremental, steps = float(block["ms"]), int(block["steps"])
        biggest = _BIGGEST.search(m["incremental"])
        wall = _WALLTIME.search(m["incremental"])
        max_step = float(biggest["ms"]) if biggest else None
        walltime = float(wall["ms"]) if wall else None
    variants = _VARIANT.findall(m["variants"])
    # "gc reason; collector reason" (V8 >= ~9) or just "gc reason" (older V8, no ";").
    reason, _, collector = m["reason"].partition(";")
    return {
        "pid": int(prefix["pid"]),
        "isolate": prefix["isolate"],
        "line_no": line_no,
        "trace_ms": float(prefix["trace_ms"]),
        "wall_ns": None,
        "kind": m["kind"],
        "generation": _generation(m["kind"]),
        "variant": ",".join(variants) or None,
        "heap_before_mib": float(m["heap_before"]),
        "committed_before_mib": float(m["committed_before"]),
        "heap_after_mib": float(m["heap_after"]),
        "committed_after_mib": float(m["committed_after"]),
        "pooled_mib": float(m["pooled"]) if m["pooled"] is not None else None,
        "pause_ms": float(m["pause"]),
        "external_ms": float(m["external"]),
        "incremental_ms": incremental,
        "incremental_steps": steps,
        "incremental_max_step_ms": max_step,
        "marking_walltime_ms": walltime,
        "reason": reason.strip() or None,
        "collector_reason": collector.strip() or None,
    }


@dataclass(frozen=True)
class _Clock:
    line_no: int
    anchor_ns: int  # epoch ns at trace time 0
    has_v8_start: bool


def _assign_clocks(clocks: list[_Clock], event_lines: list[int], event_pids: list[int]) -> dict[int, _Clock]:
    """pid -> its clock: each clock line belongs to the process whose GC lines surround it.

    A log opened in append mode may hold several processes (a restarted service), and a
    clock line carries no pid. It is given the pid of the nearest GC line before it, unless
    there is none or that pid already has a clock (a process that had not collected before
    listening), then the pid of the nearest GC line after it. `event_lines` is ascending.
    """
    assigned: dict[int, _Clock] = {}
    for clock in clocks:
        i = bisect.bisect_left(event_lines, clock.line_no)
        before = event_pids[i - 1] if i > 0 else None
        after = event_pids[i] if i < len(event_pids) else None
        if before is not None and before not in assigned:
            assigned[before] = clock
        elif after is not None and after not in assigned:
            assigned[after] = clock
    return assigned


def _parse_clock(line_no: int, m: re.Match[str]) -> _Clock:
    # Integer ns: Date.now() is whole ms; the performance timestamps have µs resolution.
    anchor_ns = int(m["epoch"]) * 1_000_000 - round(float(m["uptime"]) * 1e6)
    if m["v8_start"] is not None:
        anchor_ns += round(float(m["v8_start"]) * 1e6)
    return _Clock(line_no, anchor_ns, has_v8_start=m["v8_start"] is not None)


def _warnings(events: pl.DataFrame, clocks: dict[int, _Clock], unparsed: int) -> list[str]:
    notes = []
    for pid, count in events.group_by("pid").len().sort("pid").iter_rows():
        clock = clocks.get(pid)
        if clock is None:
            notes.append(f"pid {pid}: no clock line, so its {count} GC events have no wall time")
        elif not clock.has_v8_start:
            notes.append(f"pid {pid}: the clock line (line {clock.line_no}) has no v8_start_ms, so wall "
                         "times are early by the time Node took to start V8 (38-67 ms measured here)")
    if unparsed:
        notes.append(f"{unparsed} lines look like GC lines but did not parse (GcTrace.unparsed)")
    return notes


def parse_gc_trace(text: str) -> GcTrace:
    """Parse a log's text (see the module docstring for which lines count)."""
    events: list[dict[str, object]] = []
    unparsed: list[tuple[int, str]] = []
    clocks: list[_Clock] = []
    other = 0
    for line_no, line in enumerate(text.splitlines(), start=1):
        if line.startswith("clock "):
            clock = _CLOCK.match(line)
            if clock is None:
                unparsed.append((line_no, line))
            else:
                clocks.append(_parse_clock(line_no, clock))
            continue
        prefix = _PREFIX.match(line)
        if prefix is not None:
            m = _EVENT.match(line, prefix.end())
            event = _event(line_no, prefix, m) if m is not None else None
            if event is not None:
                events.append(event)
            elif not line.startswith("[", prefix.end()) and _LOOKS_LIKE_GC.search(line, prefix.end()):
                # (A "[Tag] ..." message such as "[IncrementalMarking] Scavenge during marking."
                # is another tracer's line even when it names a collector.)
                unparsed.append((line_no, line))
            else:
                other += 1
        elif " ms: " in line and _LOOKS_LIKE_GC.search(line):
            unparsed.append((line_no, line))
    frame = pl.DataFrame(events, schema=GC_SCHEMA, orient="row") if events else pl.DataFrame(schema=GC_SCHEMA)
    assigned = _assign_clocks(clocks, frame["line_no"].to_list(), frame["pid"].to_list())
    anchors = {pid: clock.anchor_ns for pid, clock in assigned.items()}
    anchor_ns = pl.col("pid").replace_strict(anchors, default=None, return_dtype=pl.Int64)
    frame = frame.with_columns(wall_ns=anchor_ns + (pl.col("trace_ms") * 1e6).round().cast(pl.Int64))
    return GcTrace(events=frame, unparsed=unparsed, clock_anchors=anchors, other_trace_lines=other,
                   warnings=_warnings(frame, assigned, len(unparsed)))


def parse_gc_log(path: str | Path) -> GcTrace:
    """Parse a log file (e.g. a run's `logs/node.log`); undecodable bytes are replaced."""
    return parse_gc_trace(Path(path).read_text(errors="replace"))
