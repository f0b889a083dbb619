"""The HTTP contract of both services, checked against what really lands in Kafka."""

from __future__ import annotations

import json
import time

import polars as pl
import pytest

from ingestlab.analysis.e2e import LOG_APPEND_TIME
from ingestlab.load.payloads import PayloadSet, invalid_bodies
from ingestlab.stack.topic import request_id_of
from ingestlab.variants import program_of, variant

BODY_LIMIT = 1_048_576  # 1 MiB, both services


def _record_for(stack, request_id: str, timeout_s: float = 15.0) -> bytes:
    """The one record carrying `request_id` (Node answers before Kafka has it: poll)."""
    deadline = time.monotonic() + timeout_s
    while True:
        records = stack.read_topic(keep_values=True).filter(request_id=request_id)
        if records.height or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert records.height == 1, f"expected one record for {request_id}, found {records.height}"
    return records["value"][0]


def test_valid_payload_is_accepted_and_the_same_json_arrives(stack, service_name, post):
    payloads = PayloadSet(1, seed=11, id_prefix=f"{service_name}-valid")
    status, answer = post(stack.service(service_name).ingest_url, payloads.body(0))
    assert (status, answer) == (202, {"status": "Accepted"})
    stored = _record_for(stack, payloads.request_id(0))
    assert json.loads(stored) == json.loads(payloads.body(0))


@pytest.mark.parametrize("field", ["event_type", "timestamp", "data"])
def test_each_invalid_field_is_rejected_naming_it(stack, service_name, post, field):
    request_id = f"{service_name}-invalid-{field}"
    status, answer = post(stack.service(service_name).ingest_url, invalid_bodies(request_id)[field])
    assert status == 400
    assert f"'{field}'" in answer["error"]


def test_malformed_json_is_a_json_400(stack, service_name, post):
    status, answer = post(stack.service(service_name).ingest_url, b'{"event_type": "x", ')
    assert status == 400 and "JSON" in answer["error"]


def test_body_one_byte_over_one_mib_is_413(stack, service_name, post):
    body = PayloadSet(1, size_bytes=BODY_LIMIT + 1, id_prefix="big").body(0)
    assert len(body) == BODY_LIMIT + 1
    status, answer = post(stack.service(service_name).ingest_url, body)
    assert status == 413 and "error" in answer


def test_escaped_strings_are_accepted_and_preserved(stack, service_name, post):
    request_id = f"{service_name}-escaped"
    doc = {"event_type": 'sensor "quoted" \\ caf\u00e9 \u2603 \n',
           "timestamp": 1_730_000_000_000,
           "data": {"request_id": request_id, "note": "tab\there \U0001F600 \"q\"", "n": [1, 2.5, -3]}}
    body = json.dumps(doc).encode()  # ASCII with \\u escapes: the Rust side cannot borrow these
    assert b"\\u00e9" in body
    status, _ = post(stack.service(service_name).ingest_url, body)
    assert status == 202
    stored = _record_for(stack, request_id)
    assert request_id_of(stored) == request_id
    assert json.loads(stored) == doc


def test_prototype_keys_rejected_by_node_only(stack, service_name, post):
    """The article's text: Node rejects __proto__/constructor keys (so do its variants). Its
    Rust code has no such rule."""
    for key in ("__proto__", "constructor", "prototype"):
        body = json.dumps({"event_type": "x", "timestamp": 1,
                           "data": {"request_id": f"proto-{service_name}-{key}",
                                    "nested": {key: {"admin": True}}}}).encode()
        status, answer = post(stack.service(service_name).ingest_url, body)
        if program_of(service_name) == "node":
            assert status == 400 and key in answer["error"]
        else:
            assert status == 202


def test_the_services_agree_on_the_articles_rules(stack, service_name, post):
    """services/README.md ("Promises"): a positive timestamp; event_type counted in characters
    (code points), not UTF-16 units (Node's `length`) or UTF-8 bytes (Rust's `len()`)."""
    def send(service, event_type, timestamp):
        body = json.dumps({"event_type": event_type, "timestamp": timestamp,
                           "data": {"request_id": f"rule-{service}-{timestamp}-{len(event_type)}"}}).encode()
        return post(stack.service(service).ingest_url, body)[0]

    assert send(service_name, "x", 0) == 400
    assert send(service_name, "\u00e9" * 100, 5) == 202  # 100 characters, 200 UTF-8 bytes
    assert send(service_name, "\U0001F600" * 100, 6) == 202  # 200 UTF-16 units
    assert send(service_name, "\u00e9" * 101, 7) == 400


def test_the_202_keeps_the_services_promise(stack, service_name, post):
    """services/README.md: an acked service answers 202 only after the broker appended the record
    (its LogAppendTime is no later than the answer); an enqueue service answers first (the
    producer lingers 10 ms before it sends a batch, so its records are appended after)."""
    answered_ms: dict[str, float] = {}
    for i in range(20):
        payloads = PayloadSet(1, seed=i, id_prefix=f"{service_name}-promise-{i}")
        status, _ = post(stack.service(service_name).ingest_url, payloads.body(0))
        answered_ms[payloads.request_id(0)] = time.time() * 1000
        assert status == 202
    deadline = time.monotonic() + 15.0
    while True:  # an enqueue service's last records may still be on their way
        records = stack.read_topic().filter(pl.col("request_id").is_in(list(answered_ms)))
        if records.height >= 20 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert records.height == 20 and set(records["timestamp_type"]) == {LOG_APPEND_TIME}
    # appended no later than the client had the answer (1 ms: the append time's resolution)
    before = sum(row["timestamp_ms"] <= answered_ms[row["request_id"]] + 1
                 for row in records.iter_rows(named=True))
    if variant(service_name).promise == "acked":
        assert before == 20, "an acked service answered before the broker appended the record"
    else:
        assert before <= 5, f"{before} of 20 records were appended before an enqueue service answered"
