"""Judging answers to the bad-input corpus: each broken promise is caught, and the services'
own error messages pass."""

from __future__ import annotations

import re
from pathlib import Path

import polars as pl
import pytest

from ingestlab.analysis.bad_input import MATRIX_COLUMNS, classify, judge, leaks, verdict_counts

SERVICES_DIR = Path(__file__).resolve().parents[2] / "services"
JSON_400 = '{"error":"Invalid JSON body."}'


_MESSAGE = re.compile(r"""(['"`])((?:Invalid|Unsupported|Payload|Request|Not found|The body|Malformed|Bad|"""
                      r"""Unreadable|Internal)[^'"`]*)\1""")


def _service_messages() -> list[str]:
    """Every error message literal in the two services' sources."""
    sources = [SERVICES_DIR / "node" / "server.js", SERVICES_DIR / "rust" / "src" / "main.rs"]
    return [m.group(2) for path in sources for m in _MESSAGE.finditer(path.read_text())]


def test_the_services_own_messages_show_nothing_internal():
    messages = _service_messages()
    assert len(messages) >= 15
    for message in messages:
        assert leaks(message) == [], message


@pytest.mark.parametrize(("answer", "found"), [
    ('{"error":"TypeError: x is not a function\\n    at validate (/app/server.js:10:5)"}',
     ["a stack trace", "a file path", "a source file", "a runtime error"]),
    ('{"error":"Cannot find module express"}', ["a library name"]),
    ('{"error":"failed in /work/node_modules/body-parser/lib/read.js"}',
     ["a file path", "a source file", "a library name"]),
    ('{"error":"Json deserialize error: expected value (serde_json)"}', ["a library name"]),
    ('{"error":"rdkafka: Local: Queue full"}', ["a library name"]),
    ('{"error":"actix-web 4.18.1"}', ["a library name", "a version"]),
    ("thread 'actix-rt' panicked at src/main.rs:5", ["a source file", "a library name", "a runtime error"]),
    ('{"error":"Unsupported Content-Type: send \'application/json\'."}', []),
])
def test_leaks_are_found(answer, found):
    assert leaks(answer) == found


@pytest.mark.parametrize(("kwargs", "verdict", "reason"), [
    (dict(status=202, expected="accept", answer='{"status":"Accepted"}'), "ok", "202, accepted"),
    (dict(status=400, expected="reject", answer=JSON_400), "ok", "400: Invalid JSON body."),
    (dict(status=408, expected="reject", answer='{"error":"Request not received within 5000 ms."}'), "ok",
     "408"),
    (dict(status=500, expected="reject", answer='{"error":"Internal pipeline error"}'), "violation",
     "500: a server error"),
    (dict(status=0, expected="reject", answer="", client_error="connection closed"), "violation",
     "no answer (connection closed)"),
    (dict(status=202, expected="reject", answer='{"status":"Accepted"}'), "violation", "expected a 4xx"),
    (dict(status=400, expected="accept", answer=JSON_400), "violation", "expected 202, got 400"),
    (dict(status=400, expected="reject", answer=""), "violation", "not JSON"),
    (dict(status=400, expected="reject", answer="<html><body>Bad Request</body></html>"), "violation",
     "not JSON"),
    (dict(status=404, expected="reject", answer='{"message":"missing"}'), "violation", "not JSON"),
    (dict(status=400, expected="reject", answer='{"error":"Unexpected token in JSON at position 2 '
                                               '(/app/node_modules/body-parser/lib/types/json.js)"}'),
     "violation", "shows a stack trace, a file path, a source file, a library name"),
    (dict(status=400, expected="reject", answer=JSON_400, healthy_after=False,
          health_note="the process exited"), "crash", "after this case: the process exited"),
    (dict(status=0, expected="accept", answer="", healthy_after=False,
          health_note="/healthz answered nothing"), "crash", "/healthz"),
])
def test_judge(kwargs, verdict, reason):
    got, why = judge(**kwargs)
    assert got == verdict and reason in why


def test_classify_writes_the_matrix_and_counts_per_service():
    answers = pl.DataFrame([
        dict(case="a", category="json-syntax", service="node", description="d", expected="reject",
             status=400, answer=JSON_400, client_error=None, elapsed_s=0.01, request_id="r1",
             healthy_after=True, health_note=None),
        dict(case="b", category="size", service="node", description="d", expected="accept",
             status=500, answer='{"error":"Internal pipeline error"}', client_error=None, elapsed_s=0.01,
             request_id="r2", healthy_after=True, health_note=None),
        dict(case="a", category="json-syntax", service="rust", description="d", expected="reject",
             status=0, answer="", client_error="timed out", elapsed_s=8.0, request_id="r3",
             healthy_after=False, health_note="the process exited"),
    ])
    matrix = classify(answers)
    assert matrix.columns == list(MATRIX_COLUMNS)
    assert matrix["verdict"].to_list() == ["ok", "violation", "crash"]
    assert verdict_counts(matrix) == {"node": {"cases": 2, "violations": 1, "crashes": 0},
                                      "rust": {"cases": 1, "violations": 0, "crashes": 1}}
