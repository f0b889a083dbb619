"""Notebook 03's backlog section: Kafka slower than the intake for minutes (a `backlog` run).

Pure functions of a run, so each is testable on small ones; the notebook wraps the frames in
`display.Table` and the chart comes from `charts.backlog`. Sentences are built from the
numbers, never written in advance.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import polars as pl

from ingestlab.results import Run
from ingestlab.summaries import BacklogResult, BacklogSummary

# The summary's columns a reader needs first, in order: the conditions, when the queue hit its
# cap and errors began, memory and the part that held it, the drain, the ledger, the end.
TABLE_COLUMNS: tuple[str, ...] = (
    "service", "rate_rps", "quota_bytes_per_s", "slow_s", "cap_reached_s", "cap_reached", "errors_began_s",
    "queue_peak_messages", "queue_peak_mib", "rss_before_mib", "rss_peak_mib", "largest_at_peak",
    "heap_total_peak_mib", "rss_end_mib", "rss_returned_share", "drained_s", "flushed_s", "rss_flushed_mib",
    "accepted", "lost",
    "delivered_after_error", "duplicated", "memory_limit_mb", "died_s", "oom_killed",
)


def backlog_table(run: Run) -> pl.DataFrame:
    """One row per service of a backlog run (`TABLE_COLUMNS`, `summaries.BacklogResult`'s
    units: s, MiB, bytes/s, requests)."""
    summary: BacklogSummary = run.summary
    rows = [{"service": service, **dataclasses.asdict(result)}
            for service, result in summary.services.items()]
    return pl.DataFrame(rows, infer_schema_length=None).select(TABLE_COLUMNS)


def backlog_frames(run: Run) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The run's per-second timeline and its windows, for `charts.backlog_over_time`."""
    return run.read_frame("timeline"), run.read_frame("windows")


def _s(value: float | None) -> str:
    return "never" if value is None else f"{value:,.0f} s after the slowdown began"


def _from(value: float | None) -> str:
    return "none" if value is None else f"from {value:,.0f} s after the slowdown began"


def service_findings(service: str, r: BacklogResult) -> list[str]:
    """What one service did, in sentences with its numbers."""
    lines = []
    if r.cap_reached_s is not None:
        lines.append(f"{service}: librdkafka's queue reached its {r.cap_reached} cap {_s(r.cap_reached_s)} "
                     f"({r.cap_messages:,} messages, {r.cap_mib:,.0f} MiB).")
    else:
        lines.append(f"{service}: librdkafka's queue never reached a cap (at most "
                     f"{r.queue_peak_messages or 0:,} of {r.queue_messages_max or 0:,} messages, "
                     f"{r.queue_peak_mib or 0:,.0f} MiB).")
    lines.append(f"{service}: errors (over 1% of a second's requests not answered 202): "
                 f"{_from(r.errors_began_s)} (5xx: {_from(r.errors_5xx_began_s)}; timeouts: "
                 f"{_from(r.timeouts_began_s)}); in all {r.errors_5xx:,} 5xx, {r.timeouts:,} timeouts, "
                 f"{r.no_answer + r.dropped:,} without an answer.")
    if r.rss_peak_mib is not None:
        part = f"; its largest part then: {r.largest_at_peak}" if r.largest_at_peak else ""
        lines.append(f"{service}: RSS from {r.rss_before_mib or 0:,.0f} MiB before to a peak of "
                     f"{r.rss_peak_mib:,.0f} MiB {_s(r.rss_peak_s)}{part}.")
    if r.died_s is not None:
        how = "OOM-killed by its container's memory limit" if r.oom_killed else f"exit code {r.exit_code}"
        limit = f", {r.memory_limit_mb:,} MB" if r.memory_limit_mb is not None else ""
        lines.append(f"{service}: died {_s(r.died_s)} ({how}{limit}), with "
                     f"{r.queue_messages_at_death or 0:,} messages in its queue.")
    elif r.rss_end_mib is not None:
        back = ("" if r.rss_returned_share is None
                else f", {100 * r.rss_returned_share:.0f}% of its growth given back")
        drained = ("the queue did not drain within the load" if r.drained_s is None
                   else f"the queue drained {r.drained_s:,.0f} s after Kafka caught up")
        lines.append(f"{service}: {drained}; RSS at the load's end {r.rss_end_mib:,.0f} MiB{back}.")
        if r.flushed_s is not None and r.rss_flushed_mib is not None:
            lines.append(f"{service}: Kafka had every accepted record {r.flushed_s:,.0f} s after the load "
                         f"ended; RSS then {r.rss_flushed_mib:,.0f} MiB.")
    lines.append(f"{service}: of {r.accepted:,} requests answered 202, {r.lost:,} never reached Kafka; "
                 f"{r.delivered_after_error:,} reached it after their client saw an error or gave up; "
                 f"{r.duplicated:,} duplicates.")
    return lines


def backlog_findings(run: Run) -> list[str]:
    """Every service's `service_findings`."""
    summary: BacklogSummary = run.summary
    return [line for service, r in summary.services.items() for line in service_findings(service, r)]


def backlog_numbers(run: Run) -> dict[str, Any]:
    """The numbers notebook 03 records of a backlog run: per service the table's row."""
    return {"run": run.run_id, "rate_rps": run.summary.rate_rps, "quota_share": run.summary.quota_share,
            "services": {row["service"]: row for row in backlog_table(run).to_dicts()}}
