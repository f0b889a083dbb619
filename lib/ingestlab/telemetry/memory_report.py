"""Parser for the memory reports the services print when `INGESTLAB_MEMORY_REPORT_MS` is set.

With `StackConfig.memory_report_ms` = N > 0 the stack gives every service
`INGESTLAB_MEMORY_REPORT_MS=N` (`stack.services`), and each program prints to its log, every N
ms, one line per report (services/README.md, "Memory reports"):

    ingestlab-memory {"source":"librdkafka","t_ms":1765135519123,"pid":4242,"msg_cnt":12,...}
    ingestlab-memory {"source":"v8","t_ms":1765135519101,"pid":4242,"rss":61206528,...}

- `librdkafka` (every program, from librdkafka's statistics callback): the producer queue
  (`msg_cnt` messages, `msg_size` bytes: every message from produce() until its delivery report,
  so it includes those below), its caps (`msg_max`, `msg_size_max`: the article's
  `queue.buffering.max.messages` 100,000 and librdkafka's default 1 GiB), and summed over ALL
  brokers of the statistics, bootstrap and logical ones included (a request is held by one
  broker only, so nothing counts twice): requests and their messages waiting to be sent
  (`outbuf_cnt`, `outbuf_msg_cnt`) and sent but not yet answered (`waitresp_cnt`,
  `waitresp_msg_cnt`).
- `v8` (Node only, a timer on its event loop): `process.memoryUsage()` in bytes (`rss`,
  `heap_total`, `heap_used`, `external`, `array_buffers`; `external` includes `array_buffers`).

`t_ms` is wall-clock epoch ms when the line was printed; `pid` the printing process (each
worker of a cluster or of the Python service reports its own; in a container, the pid in the
container's namespace). The container runtime copies a service's output into the same
`log_path` as a native process writes (`engine.container`), so one parser reads either.

Which lines count: a line beginning with `REPORT_PREFIX` is a report; one whose rest is not a
JSON object of a known `source` with whole numbers for `t_ms`, `pid` and that source's fields
is kept in `MemoryReports.unparsed`, never dropped silently. Every other line (--trace-gc,
the services' own output) is ignored.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

# The variable a service reads (defined where the stack builds a service's env); re-exported.
from ingestlab.stack.services import MEMORY_REPORT_ENV as MEMORY_REPORT_ENV

REPORT_PREFIX = "ingestlab-memory "

# Each source's fields as printed -> their columns.
_LIBRDKAFKA_COLUMNS = {
    "msg_cnt": "queue_messages",  # messages in librdkafka's producer queue (incl. in flight)
    "msg_size": "queue_bytes",  # their payload bytes
    "msg_max": "queue_messages_max",  # queue.buffering.max.messages
    "msg_size_max": "queue_bytes_max",  # queue.buffering.max.kbytes, in bytes
    "outbuf_cnt": "outbuf_requests",  # requests waiting to be sent, all brokers
    "outbuf_msg_cnt": "outbuf_messages",  # messages in them
    "waitresp_cnt": "waitresp_requests",  # requests sent, awaiting the broker's answer
    "waitresp_msg_cnt": "waitresp_messages",  # messages in them
}
_V8_COLUMNS = {
    "rss": "rss_bytes",  # the process's resident set
    "heap_used": "heap_used_bytes",  # V8 heap objects
    "heap_total": "heap_total_bytes",  # V8 heap committed
    "external": "external_bytes",  # C++ objects bound to JS objects, array buffers included
    "array_buffers": "array_buffers_bytes",  # ArrayBuffers and Buffers
}
SOURCE_COLUMNS: dict[str, dict[str, str]] = {"librdkafka": _LIBRDKAFKA_COLUMNS, "v8": _V8_COLUMNS}

REPORT_SCHEMA: dict[str, pl.DataType] = {
    "t_ns": pl.Int64(),  # epoch ns (the report's whole ms)
    "pid": pl.Int64(),
    "source": pl.String(),  # "librdkafka" | "v8"
    # null where the row's source does not report the column
    **{column: pl.Int64() for columns in SOURCE_COLUMNS.values() for column in columns.values()},
}


@dataclass(frozen=True)
class MemoryReports:
    """A parsed log.

    Attributes:
        frame: one row per report, `REPORT_SCHEMA`, in log order.
        unparsed: (line number, line) of prefixed lines that are not a valid report.
    """

    frame: pl.DataFrame
    unparsed: list[tuple[int, str]] = field(default_factory=list)


def _is_whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _row(payload: str) -> dict[str, object] | None:
    """One schema row from a report's JSON, or None if it is not a valid report."""
    try:
        doc = json.loads(payload)
    except json.JSONDecodeError:
        return None
    if not isinstance(doc, dict):
        return None
    columns = SOURCE_COLUMNS.get(doc.get("source"))
    if columns is None or not all(_is_whole(doc.get(key)) for key in ("t_ms", "pid", *columns)):
        return None
    row: dict[str, object] = dict.fromkeys(REPORT_SCHEMA)
    row |= {"t_ns": doc["t_ms"] * 1_000_000, "pid": doc["pid"], "source": doc["source"]}
    row |= {column: doc[key] for key, column in columns.items()}
    return row


def parse_memory_reports(log_path: Path) -> MemoryReports:
    """The memory reports in a service's log (e.g. a run's `logs/node.log`); see the module
    docstring for which lines count. Undecodable bytes are replaced."""
    rows: list[dict[str, object]] = []
    unparsed: list[tuple[int, str]] = []
    for line_no, line in enumerate(Path(log_path).read_text(errors="replace").splitlines(), start=1):
        if not line.startswith(REPORT_PREFIX):
            continue
        row = _row(line.removeprefix(REPORT_PREFIX))
        if row is None:
            unparsed.append((line_no, line))
        else:
            rows.append(row)
    return MemoryReports(frame=pl.DataFrame(rows, schema=REPORT_SCHEMA, orient="row"), unparsed=unparsed)


def memory_parts(reports: pl.DataFrame) -> pl.DataFrame:
    """One row per librdkafka report (`pid`, `t_ns`, its queue columns) with the same
    process's nearest V8 report in time beside it (`rss_bytes` ... `array_buffers_bytes`, all
    bytes) and `v8_offset_ms`, that report's time minus this one's (ms); the V8 columns are
    null for programs without V8 (Rust, Python). The two reports come from different timers
    of the same period, so they are at most about half a period apart unless the process
    stalled. Sorted by pid, then time; a process without librdkafka reports has no rows.

    The parts overlap rather than add up: `queue_*` counts a message until its delivery report,
    so it includes `outbuf_messages` and `waitresp_messages`; `external_bytes` includes
    `array_buffers_bytes`; `rss_bytes` is the whole process's resident memory.
    """
    queue_columns = list(_LIBRDKAFKA_COLUMNS.values())
    v8_columns = list(_V8_COLUMNS.values())
    queue = (reports.filter(source="librdkafka")
             .select("pid", "t_ns", *queue_columns)
             .sort("t_ns"))
    v8 = (reports.filter(source="v8")
          .select("pid", pl.col("t_ns").alias("v8_t_ns"), *v8_columns)
          .sort("v8_t_ns"))
    # Both sorted by time above, so within each pid too (which polars cannot check itself).
    joined = queue.join_asof(v8, left_on="t_ns", right_on="v8_t_ns", by="pid", strategy="nearest",
                             check_sortedness=False)
    offset_ms = ((pl.col("v8_t_ns") - pl.col("t_ns")) // 1_000_000).alias("v8_offset_ms")
    return joined.select("pid", "t_ns", *queue_columns, *v8_columns, offset_ms).sort("pid", "t_ns")
