"""Judging each answer to the bad-input corpus against the services' promises.

A case's answer is "ok" when it is what the case expects (202 for "accept"; a 4xx for
"reject") with a JSON error naming the problem that gives nothing away about the service's
insides. It is a "violation" on a 5xx, no answer or a dropped connection, the wrong class of
answer, an error body that is not `{"error": "..."}`, or one that leaks internals. It is a
"crash" when, after the case, the service's process was gone, its /healthz did not answer 200,
or a valid request was not accepted; a crash outranks a violation.
"""

from __future__ import annotations

import json
import re
from typing import Literal

import polars as pl

Verdict = Literal["ok", "violation", "crash"]
VERDICTS: tuple[Verdict, ...] = ("ok", "violation", "crash")
MATRIX_COLUMNS = ("case", "category", "service", "status", "expected", "verdict", "reason", "description")

# What an answer must not show a client: the service's code, files, libraries or versions.
LEAK_PATTERNS: dict[str, re.Pattern[str]] = {
    "a stack trace": re.compile(r"\bat \S.*\("),
    "a file path": re.compile(r"(?:^|[\s\"'(=])/(?:[\w.@-]+/)+[\w.@-]*"),
    "a source file": re.compile(r"\b[\w-]+\.(?:js|mjs|cjs|ts|rs)\b"),
    "a library name": re.compile(r"node_modules|actix|serde|rdkafka|express|body-parser|tokio|hyper|iconv",
                                 re.IGNORECASE),
    "a version": re.compile(r"\bv?\d+\.\d+\.\d+\b"),
    "a runtime error": re.compile(r"\b(?:Syntax|Range|Type|Reference)Error\b|panicked|backtrace",
                                  re.IGNORECASE),
}


def leaks(answer: str) -> list[str]:
    """What of `LEAK_PATTERNS` the answer body shows (their names), in the table's order."""
    return [name for name, pattern in LEAK_PATTERNS.items() if pattern.search(answer)]


def is_json_error(answer: str) -> bool:
    """True if `answer` is a JSON object whose `error` is a non-empty string."""
    try:
        doc = json.loads(answer)
    except ValueError:
        return False
    return isinstance(doc, dict) and isinstance(doc.get("error"), str) and bool(doc["error"].strip())


def judge(*, status: int, expected: str, answer: str, client_error: str | None = None,
          healthy_after: bool = True, health_note: str | None = None) -> tuple[Verdict, str]:
    """The verdict on one answer (`status` 0: none arrived) and why, per the module's rules."""
    if not healthy_after:
        return "crash", f"after this case: {health_note or 'the service stopped answering'}"
    problems = []
    if status == 0:
        problems.append(f"no answer ({client_error or 'connection dropped'})")
    elif status >= 500:
        problems.append(f"{status}: a server error for client input")
    elif expected == "accept" and status != 202:
        problems.append(f"expected 202, got {status}")
    elif expected == "reject" and not 400 <= status < 500:
        problems.append(f"expected a 4xx, got {status}")
    if status >= 400 and not is_json_error(answer):
        problems.append('the error body is not JSON {"error": "..."}')
    if found := leaks(answer):
        problems.append(f"the answer shows {', '.join(found)}")
    if problems:
        return "violation", "; ".join(problems)
    if status == 202:
        return "ok", "202, accepted"
    return "ok", f"{status}: {json.loads(answer)['error']}"


def classify(answers: pl.DataFrame) -> pl.DataFrame:
    """The matrix (`MATRIX_COLUMNS`): one row per case and service, judged.

    `answers` needs `case`, `category`, `service`, `description`, `expected`, `status`,
    `answer` (the body as text), `client_error`, `healthy_after` and `health_note`.
    """
    verdicts = [
        judge(status=row["status"], expected=row["expected"], answer=row["answer"],
              client_error=row["client_error"], healthy_after=row["healthy_after"],
              health_note=row["health_note"])
        for row in answers.iter_rows(named=True)
    ]
    return answers.with_columns(
        verdict=pl.Series([v for v, _ in verdicts], dtype=pl.String),
        reason=pl.Series([r for _, r in verdicts], dtype=pl.String),
    ).select(MATRIX_COLUMNS)


def verdict_counts(matrix: pl.DataFrame) -> dict[str, dict[str, int]]:
    """`{service: {"cases": n, "violations": n, "crashes": n}}` from a `classify` matrix."""
    counts = matrix.group_by("service", maintain_order=True).agg(
        pl.len().alias("cases"),
        (pl.col("verdict") == "violation").sum().alias("violations"),
        (pl.col("verdict") == "crash").sum().alias("crashes"),
    )
    return {row["service"]: {k: int(row[k]) for k in ("cases", "violations", "crashes")}
            for row in counts.iter_rows(named=True)}
