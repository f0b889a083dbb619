"""Notebook 07: broker faults under load (a `faults` run) and the services' answers to bad
input (the newest `bad-input` run, if there is one).

Pure functions of runs and frames, so each is testable on small ones; the notebook wraps the
frames in `display.Table`. The conclusions are sentences built from the numbers, never
written in advance: a rerun that measures something else says something else.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

import polars as pl

from ingestlab.notebook.article import article_fact
from ingestlab.results import Run
from ingestlab.summaries import FaultsSummary

# The ledger's columns, in the order a reader needs them: what the client saw, what Kafka
# holds, how the service fared.
LEDGER_COLUMNS: tuple[str, ...] = (
    "service", "fault", "duration_s", "sent", "accepted", "errors_4xx", "errors_5xx", "timeouts", "no_answer",
    "lost", "delivered_after_error", "duplicated", "recovery_s", "p99_before_ms", "p99_during_ms",
    "rss_before_mib", "rss_peak_mib", "restart_s", "exit_code", "exit_s",
)
# Answers this many times slower (p99) during a fault than before it were held, not just slow.
HELD_FACTOR = 10
CLIENT_ERRORS: tuple[str, ...] = ("errors_4xx", "errors_5xx", "timeouts", "no_answer")
BAD_INPUT_COUNTS: tuple[str, ...] = ("cases", "violations", "crashes")
# The verdict of a case the service answered as its contract says (`bad-input`'s matrix).
OK_VERDICT = "ok"


# --- the faults run -----------------------------------------------------------------------------
def fault_conditions(run: Run) -> pl.DataFrame:
    """Per service: the rate (req/s), the client's timeout (s), how the rate relates to the
    ceilings here, and what the slow fault and the queue's fill did (one column each)."""
    summary: FaultsSummary = run.summary
    link, queue = summary.slow_link, summary.queue_full
    return pl.DataFrame([
        {
            "service": service,
            "rate_rps": result.rate_rps,
            "request_timeout_s": result.request_timeout_s,
            "rate_source": summary.rate_source,
            "slow_link": f"+{link.get('delay_ms', 0):g} ms each way, at most "
                         f"{link.get('bandwidth_bytes_per_s', 0) / 1e6:,.2f} MB/s",
            "queue_fill": f"{queue.get('fill_rps', 0):,} req/s of {queue.get('body_bytes', 0):,} B bodies, "
                          f"clients giving up after {queue.get('fill_timeout_s', 0):g} s; "
                          f"{queue.get('probe_requests', 0)} probes waiting "
                          f"{queue.get('probe_timeout_s', 0):g} s",
        }
        for service, result in summary.services.items()
    ])


def ledger(run: Run) -> pl.DataFrame:
    """One row per service and fault (`LEDGER_COLUMNS`) from the run's summary."""
    summary: FaultsSummary = run.summary
    rows = [
        {"service": service, "fault": fault, **dataclasses.asdict(outcome)}
        for service, result in summary.services.items()
        for fault, outcome in result.faults.items()
    ]
    return pl.DataFrame(rows, infer_schema_length=None).select(LEDGER_COLUMNS)


def status_table(ledger_rows: pl.DataFrame, run: Run) -> pl.DataFrame:
    """Requests per HTTP status (0: no answer) as columns, one row per service and fault."""
    summary: FaultsSummary = run.summary
    rows = [
        {"service": service, "fault": fault, "status": int(status), "requests": count}
        for service, result in summary.services.items()
        for fault, outcome in result.faults.items()
        for status, count in outcome.statuses.items()
    ]
    wide = pl.DataFrame(rows).sort("status").pivot("status", index=["service", "fault"], values="requests")
    return ledger_rows.select("service", "fault").join(wide, on=["service", "fault"], how="left").fill_null(0)


def _count(n: int, what: str) -> str:
    return f"{n:,} {what}"


def _listing(parts: Iterable[str]) -> str:
    items = list(parts)
    return ", ".join(items[:-1]) + f" and {items[-1]}" if len(items) > 1 else "".join(items)


_ERROR_NAMES = {"errors_4xx": "4xx", "errors_5xx": "5xx", "timeouts": "timeouts",
                "no_answer": "without an answer"}


def _client_saw(row: Mapping[str, Any]) -> str:
    """What the client got besides 202s, e.g. "738 timeouts and 12 5xx", or "only 202s"."""
    seen = [_count(row[c], _ERROR_NAMES[c]) for c in CLIENT_ERRORS if row[c]]
    return _listing(seen) if seen else "only 202s"


def _per_fault(rows: pl.DataFrame, column: str) -> str:
    """ "5 in pause and 3 in kill": `column` of each row of `rows`."""
    return _listing(f"{r[column]:,} in {r['fault']}" for r in rows.iter_rows(named=True))


def conclusions(ledger_rows: pl.DataFrame) -> list[str]:
    """What the ledger says, as sentences from its numbers: who lost accepted records, who
    pushed back and how, what reached Kafka although the client saw an error, duplicates,
    and each fault in one line."""
    found = []
    lost = ledger_rows.filter(pl.col("lost") > 0)
    if lost.is_empty():
        found.append("No service lost an accepted request in any fault: every 202 has its record in Kafka.")
    for service in lost["service"].unique(maintain_order=True):
        mine = lost.filter(pl.col("service") == service)
        found.append(f"{service} lost {int(mine['lost'].sum()):,} accepted requests: "
                     f"{_per_fault(mine, 'lost')}.")
    for service in ledger_rows["service"].unique(maintain_order=True):
        found += _service_conclusions(service, ledger_rows.filter(pl.col("service") == service))
    found += [_fault_line(r) for r in ledger_rows.iter_rows(named=True)]
    return found


def _service_conclusions(service: str, mine: pl.DataFrame) -> list[str]:
    """How one service pushed back (errors, held answers), what it delivered after an error
    and what twice."""
    found = []
    errors = pl.sum_horizontal(CLIENT_ERRORS)
    pushed, quiet = mine.filter(errors > 0), mine.filter(errors == 0)["fault"].to_list()
    if not pushed.is_empty():
        told = _listing(f"{r['fault']}: {_client_saw(r)}" for r in pushed.iter_rows(named=True))
        found.append(f"{service} pushed back: {told}.")
    held = mine.filter(pl.col("p99_during_ms") >= HELD_FACTOR * pl.col("p99_before_ms"))
    if not held.is_empty():
        slowed = _listing(f"{r['fault']} p99 {_ms(r['p99_during_ms'])} ({_ms(r['p99_before_ms'])} before)"
                          for r in held.iter_rows(named=True))
        found.append(f"{service} held its answers: {slowed}.")
    if quiet:
        found.append(f"{service} answered 202 to every request through {_listing(quiet)}.")
    after_error = mine.filter(pl.col("delivered_after_error") > 0)
    if not after_error.is_empty():
        total = int(after_error["delivered_after_error"].sum())
        found.append(f"{service}: {total:,} records reached Kafka for requests whose client saw an error "
                     f"or gave up ({_per_fault(after_error, 'delivered_after_error')}): a client that "
                     "retried them would have duplicated them.")
    duplicated = mine.filter(pl.col("duplicated") > 0)
    if not duplicated.is_empty():
        total = int(duplicated["duplicated"].sum())
        found.append(f"{service}: {total:,} records in Kafka are duplicates "
                     f"({_per_fault(duplicated, 'duplicated')}).")
    return found


def _fault_line(r: Mapping[str, Any]) -> str:
    """One fault of one service in a sentence."""
    recovery = ("" if r["fault"] == "shutdown" else
                "; not back to normal within the run" if r["recovery_s"] is None else
                f"; back to normal {r['recovery_s']:g} s after the fault ended")
    extra = ""
    if r.get("restart_s") is not None:
        extra = f"; the broker's restart took {r['restart_s']:.1f} s"
    if r.get("exit_code") is not None:
        extra = f"; exit code {r['exit_code']} after {r['exit_s']:.2f} s"
    return (f"{r['service']} {r['fault']} ({r['duration_s']:.1f} s): {r['accepted']:,} of {r['sent']:,} "
            f"requests accepted, the client saw {_client_saw(r)}, p99 latency {_ms(r['p99_during_ms'])} "
            f"during the fault ({_ms(r['p99_before_ms'])} before); {r['lost']:,} accepted lost, "
            f"{r['delivered_after_error']:,} delivered after an error, {r['duplicated']:,} duplicated"
            f"{recovery}{extra}; RSS {_mib(r['rss_before_mib'])} before, {_mib(r['rss_peak_mib'])} at most.")


def _mib(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f} MiB"


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f} ms"


def against_article(ledger_rows: pl.DataFrame) -> pl.DataFrame:
    """What the article says each service does when Kafka cannot keep up
    (data/article_facts.csv: `node_backpressure`, `rust_backpressure`) beside what each did
    in each fault that keeps the broker from taking records (pause, kill, slow, queue_full):
    the client's answers and the service's memory. Columns: service, article, fault, measured."""
    rows = []
    for r in ledger_rows.filter(pl.col("fault") != "shutdown").iter_rows(named=True):
        grew = (r["rss_peak_mib"] or 0) - (r["rss_before_mib"] or 0)
        rows.append({
            "service": r["service"],
            "article": article_fact(f"{r['service']}_backpressure").text,
            "fault": r["fault"],
            "measured": f"the client saw {_client_saw(r)} ({r['accepted']:,} of {r['sent']:,} accepted), "
                        f"p99 {_ms(r['p99_during_ms'])} ({_ms(r['p99_before_ms'])} before); "
                        f"RSS {_mib(r['rss_before_mib'])} before, up to {grew:+,.0f} MiB during",
        })
    return pl.DataFrame(rows, schema=["service", "article", "fault", "measured"])


# --- the bad-input run --------------------------------------------------------------------------
def bad_input_counts(run: Run) -> pl.DataFrame:
    """Per service of a `bad-input` run: `cases`, `violations`, `crashes` from its summary."""
    return pl.DataFrame([{"service": service, **{k: getattr(result, k) for k in BAD_INPUT_COUNTS}}
                         for service, result in run.summary.services.items()])


def bad_input_verdicts(matrix: pl.DataFrame) -> pl.DataFrame:
    """Cases per category and verdict, one column per service (from the run's `matrix`)."""
    return (
        matrix.group_by("category", "verdict", "service").agg(cases=pl.len())
        .sort("service")
        .pivot("service", index=["category", "verdict"], values="cases")
        .fill_null(0)
        .sort("category", "verdict")
    )


def bad_input_findings(matrix: pl.DataFrame) -> pl.DataFrame:
    """The cases whose verdict is not `OK_VERDICT`, with what was expected, what the service
    answered and why."""
    return (
        matrix.filter(pl.col("verdict") != OK_VERDICT)
        .select("service", "category", "case", "status", "expected", "verdict", "reason", "description")
        .sort("service", "category", "case")
    )


def bad_input_conclusions(counts: pl.DataFrame) -> list[str]:
    """One sentence per service from `bad_input_counts`."""
    return [
        f"{r['service']}: {r['cases']} malformed or hostile inputs, {r['violations']} answered against the "
        f"contract, {r['crashes']} crashes." for r in counts.iter_rows(named=True)
    ]
