"""The bad-input corpus: enough cases, every category the issue names, exact boundaries, and
requests framed and paced as each case says."""

from __future__ import annotations

import json
import math
from collections import Counter

import pytest

from ingestlab.config import BadInputConfig
from ingestlab.load.bad_input import (
    CATEGORIES,
    MAX_DEPTH,
    MAX_EVENT_TYPE_CHARS,
    MAX_TIMESTAMP,
    SLOW_UPLOAD_S,
    corpus,
    wire_request,
)
from ingestlab.stack.services import BODY_LIMIT_BYTES
from ingestlab.stack.topic import request_id_of
from ingestlab.variants import SERVICES, program_of

PREFIX = "bi-node-abc123"
CASES = corpus(PREFIX)
BY_ID = {c.case_id: c for c in CASES}


def _strict_json(body: bytes) -> object:
    """RFC 8259 JSON only: Python's parser also takes NaN and Infinity."""
    def refuse(name: str) -> None:
        raise ValueError(f"not JSON: {name}")
    return json.loads(body.decode("utf-8"), parse_constant=refuse)


def test_at_least_150_cases_with_unique_ids_in_every_category():
    assert len(CASES) >= 150
    assert len(BY_ID) == len(CASES)
    per_category = Counter(c.category for c in CASES)
    assert set(per_category) == set(CATEGORIES)
    assert Counter(c.expected for c in CASES)["accept"] >= 40  # enough to exercise the ledger


def test_request_ids_are_unique_and_what_the_read_back_finds():
    ids = [c.request_id for c in CASES if c.request_id is not None]
    assert len(ids) == len(set(ids))
    for case in CASES:
        if case.request_id is not None:
            assert case.request_id.startswith(PREFIX) and len(case.request_id) <= 64
        if case.expected == "accept" or dict(case.expected_by_program).get("rust") == "accept":
            assert case.request_id is not None, case.case_id
            # the service republishes the document compact; the first request_id is the case's
            record = json.dumps(_strict_json(case.body_bytes()), separators=(",", ":")).encode()
            assert request_id_of(record) == case.request_id, case.case_id


@pytest.mark.parametrize("case", [c for c in CASES if c.expected == "accept"], ids=lambda c: c.case_id)
def test_every_accept_case_keeps_the_rules(case):
    doc = _strict_json(case.body_bytes())
    assert len(case.body_bytes()) <= BODY_LIMIT_BYTES
    assert isinstance(doc, dict) and isinstance(doc["data"], dict)
    assert 1 <= len(doc["event_type"]) <= MAX_EVENT_TYPE_CHARS  # code points
    timestamp = doc["timestamp"]
    assert float(timestamp).is_integer() and 1 <= timestamp <= MAX_TIMESTAMP
    assert case.content_type is None or case.content_type.lower().startswith("application/json")


def test_the_issue_list_is_covered():
    for case_id in [
        "event_type-empty", "event_type-ascii-100-raw", "event_type-ascii-101-raw",
        "event_type-2byte-100-raw", "event_type-2byte-101-raw", "event_type-emoji-100-escaped",
        "timestamp-negative", "timestamp-zero", "timestamp-fraction", "timestamp-2pow53-plus-1",
        "timestamp-beyond-u64", "data-empty-array", "data-string", "data-number", "data-missing",
        "nesting-100000-arrays", "numbers-10000-digits", "dup-event_type", "proto-proto-top",
        "proto-constructor-data", "proto-prototype-array", "unicode-lone-high", "unicode-invalid-byte-ff",
        "json-trailing-comma-object", "json-single-quotes", "json-nan", "json-utf8-bom",
        "json-raw-nul", "ctype-missing", "ctype-text-plain", "empty-empty-length-0", "slow-trickle",
        "slow-stall-mid-body",
    ]:
        assert case_id in BY_ID


def test_the_size_boundaries_are_exact():
    sizes = {name: len(BY_ID[name].body_bytes()) for name in
             ("size-limit-minus-1", "size-limit-exact", "size-limit-plus-1", "size-chunked-limit-exact",
              "size-chunked-limit-plus-1")}
    assert sizes == {"size-limit-minus-1": BODY_LIMIT_BYTES - 1, "size-limit-exact": BODY_LIMIT_BYTES,
                     "size-limit-plus-1": BODY_LIMIT_BYTES + 1, "size-chunked-limit-exact": BODY_LIMIT_BYTES,
                     "size-chunked-limit-plus-1": BODY_LIMIT_BYTES + 1}
    grows = BY_ID["size-record-grows"].body_bytes()
    assert len(grows) < BODY_LIMIT_BYTES
    # JavaScript writes 1e21 as 1e+21: one byte more per number, past the limit
    assert len(grows) + grows.count(b"1e21") > BODY_LIMIT_BYTES


def test_nesting_depths_count_the_top_level_object_as_one():
    def depth(text: bytes) -> int:
        level = deepest = 0
        for byte in text:
            level += byte in b"[{"
            level -= byte in b"]}"
            deepest = max(deepest, level)
        return deepest
    assert depth(BY_ID[f"nesting-{MAX_DEPTH}"].body_bytes()) == MAX_DEPTH
    assert depth(BY_ID[f"nesting-{MAX_DEPTH + 1}"].body_bytes()) == MAX_DEPTH + 1
    assert depth(BY_ID["nesting-100000-arrays"].body_bytes()) == 100_000


def test_only_the_documented_difference_is_per_program_and_variants_inherit_it():
    differing = {c.case_id for c in CASES if c.expected_by_program}
    assert differing == {c.case_id for c in CASES if c.category == "prototype"}
    proto = BY_ID["proto-proto-data"]
    expected = {service: proto.expected_for(service) for service in SERVICES}
    assert expected == {service: "reject" if program_of(service) == "node" else "accept"
                        for service in SERVICES}


def test_a_request_has_its_head_framing_and_body():
    case = BY_ID["valid-trailing-newline"]
    request = wire_request(case, port=8080)
    head = request.head.decode()
    assert head.startswith("POST /api/ingest HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n")
    assert "Content-Type: application/json\r\n" in head and head.endswith("Connection: close\r\n\r\n")
    assert f"Content-Length: {len(case.body_bytes())}\r\n" in head
    assert b"".join(request.pieces) == case.body_bytes() and request.gap_s == 0
    assert "Content-Type" not in wire_request(BY_ID["ctype-missing"], port=1).head.decode()
    assert "Content-Length: 10\r\n" in wire_request(BY_ID["size-declared-shorter"], port=1).head.decode()


def test_chunked_framing_decodes_to_the_body():
    case = BY_ID["framing-one-byte-chunks"]
    request = wire_request(case, port=1)
    assert "Transfer-Encoding: chunked" in request.head.decode()
    assert "Content-Length" not in request.head.decode()
    framed, body = b"".join(request.pieces), bytearray()
    while True:
        size_line, framed = framed.split(b"\r\n", 1)
        size = int(size_line, 16)
        if size == 0:
            break
        body += framed[:size]
        assert size == 1 and framed[size:size + 2] == b"\r\n"
        framed = framed[size + 2:]
    assert bytes(body) == case.body_bytes() and framed == b"\r\n"


def test_slow_cases_are_paced_and_bounded():
    slow = [c for c in CASES if c.slow]
    assert {c.case_id for c in slow} >= {"slow-trickle", "slow-stall-after-head", "slow-stall-mid-body"}
    bound_s = BadInputConfig().answer_timeout_s
    for case in slow:
        request = wire_request(case, port=1)
        assert request.gap_s * max(len(request.pieces) - 1, 0) <= SLOW_UPLOAD_S + 1e-9 < bound_s
    trickle = wire_request(BY_ID["slow-trickle"], port=1)
    assert len(trickle.pieces) == 10 and math.isclose(trickle.gap_s * 9, SLOW_UPLOAD_S)
    stalled = wire_request(BY_ID["slow-stall-mid-body"], port=1)
    assert stalled.body_bytes == 5_000 and "Content-Length: 10000\r\n" in stalled.head.decode()
    assert wire_request(BY_ID["slow-stall-after-head"], port=1).pieces == ()
