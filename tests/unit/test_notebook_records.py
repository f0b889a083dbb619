"""ingestlab.notebook.records: one record as sent and as stored in Kafka."""

from __future__ import annotations

import json

import polars as pl

from ingestlab.notebook.records import compare_record, sent_vs_stored


def test_compare_record_sees_reordered_and_dropped_keys() -> None:
    sent = json.dumps(
        {"event_type": "a", "timestamp": 1, "extra": 1, "data": {"z": 1, "a": {"y": 2, "b": 3}}},
        separators=(",", ":"),
    ).encode()
    stored = json.dumps(
        {"event_type": "a", "timestamp": 1, "data": {"a": {"b": 3, "y": 2}, "z": 1}}, separators=(",", ":")
    ).encode()
    found = compare_record(sent, stored)
    assert found["found"] and not found["byte_identical"] and not found["equal_as_json"]
    assert found["reordered_objects"] == ["data", "data.a"]
    assert found["missing_keys"] == ["extra"] and found["extra_keys"] == []
    same = compare_record(sent, sent)
    assert same["byte_identical"] and same["equal_as_json"] and same["same_key_order"]
    assert same["reordered_objects"] == []
    assert compare_record(sent, None) == {"found": False, "sent_bytes": len(sent)}


def test_compare_record_names_the_root_and_objects_in_lists() -> None:
    sent = b'{"b": 1, "a": [{"x": 1, "y": 2}]}'
    stored = b'{"a": [{"y": 2, "x": 1}], "b": 1}'
    found = compare_record(sent, stored)
    assert found["equal_as_json"] and not found["same_key_order"]
    assert found["reordered_objects"] == ["", "a.0"]


def test_sent_vs_stored_matches_records_by_request_id() -> None:
    body = json.dumps(
        {"event_type": "a", "timestamp": 1, "data": {"request_id": "r-1", "pad": "x" * 100}}
    ).encode()
    records = pl.DataFrame({"request_id": ["r-0", "r-1"], "value": [b"{}", body]})
    shown = sent_vs_stored({"node": ("r-1", body), "rust": ("r-2", body)}, records)
    assert shown.comparisons["node"]["byte_identical"]
    assert shown.comparisons["rust"] == {"found": False, "sent_bytes": len(body)}
    page = shown._repr_html_()
    assert "r-1" in page and "(100 characters)" in page and "no record with this request id" in page
    assert "byte for byte identical" in repr(shown)
