"""Request bodies: exact sizes, determinism, unique traceable ids."""

from __future__ import annotations

import json

import pytest

from ingestlab.load.payloads import (
    ID_WIDTH,
    MIN_SIZE_BYTES,
    SIZES_BYTES,
    PayloadSet,
    invalid_bodies,
)
from ingestlab.stack.topic import request_id_of


@pytest.mark.parametrize("size_bytes", sorted(SIZES_BYTES.values()))
def test_every_body_has_the_target_size_and_the_article_shape(size_bytes: int) -> None:
    # 4 templates (the default 64 costs a second at 100 KB): bodies cycle through them.
    payloads = PayloadSet(130, size_bytes=size_bytes, templates=4)
    for index in (0, 1, 3, 4, 5, 129):
        body = payloads.body(index)
        assert len(body) == size_bytes
        doc = json.loads(body)
        assert set(doc) == {"event_type", "timestamp", "data"}
        assert isinstance(doc["data"], dict)
        assert doc["data"]["request_id"] == payloads.request_id(index)


def test_same_arguments_give_the_same_bytes() -> None:
    first = PayloadSet(50, size_bytes=1_000, seed=7)
    again = PayloadSet(50, size_bytes=1_000, seed=7)
    other = PayloadSet(50, size_bytes=1_000, seed=8)
    assert list(first) == list(again)
    assert first.body(3) != other.body(3)
    assert first.request_id(3) == other.request_id(3)  # ids do not depend on the seed


def test_ids_are_unique_fixed_width_and_found_again_in_the_body() -> None:
    payloads = PayloadSet(1_000, size_bytes=1_000, id_prefix="node")
    ids = [payloads.request_id(i) for i in range(len(payloads))]
    assert len(set(ids)) == 1_000
    assert {len(i) for i in ids} == {ID_WIDTH}
    assert all(i.startswith("node-") for i in ids)
    assert all(request_id_of(payloads.body(i)) == ids[i] for i in range(0, 1_000, 37))


def test_templates_repeat_with_only_the_id_changed() -> None:
    payloads = PayloadSet(200, size_bytes=1_000, templates=64)
    a, b = payloads.body(5), payloads.body(5 + 64)
    assert a != b
    assert a.replace(payloads.request_id(5).encode(), b"") == b.replace(payloads.request_id(69).encode(), b"")
    assert payloads.body(5) != payloads.body(6)  # neighbours use different templates


def test_iteration_and_bounds() -> None:
    payloads = PayloadSet(3, size_bytes=1_000)
    assert len(payloads) == 3
    assert len(list(payloads)) == 3
    with pytest.raises(IndexError):
        payloads.body(3)
    with pytest.raises(IndexError):
        payloads.body(-1)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"count": -1}, "count"),
        ({"count": 1, "size_bytes": MIN_SIZE_BYTES - 1}, "size_bytes"),
        # The prefix fits 10 ids (index 9 fills the slot) but not 11.
        ({"count": 11, "id_prefix": "x" * (ID_WIDTH - 2)}, "id_prefix"),
    ],
)
def test_bad_arguments_are_refused(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        PayloadSet(**kwargs)


def test_invalid_bodies_break_exactly_the_named_field() -> None:
    bodies = invalid_bodies("bad-7", seed=3)
    assert set(bodies) == {"event_type", "timestamp", "data"}
    assert json.loads(bodies["event_type"])["event_type"] == ""
    assert json.loads(bodies["timestamp"])["timestamp"] == "yesterday"
    assert json.loads(bodies["data"])["data"] == "not-an-object"
    # Still traceable in Kafka wherever `data` is an object.
    assert request_id_of(bodies["event_type"]) == "bad-7"
    assert request_id_of(bodies["timestamp"]) == "bad-7"
    assert request_id_of(bodies["data"]) is None
    assert invalid_bodies("bad-7", seed=3) == bodies


def test_request_id_of_a_record_without_id() -> None:
    assert request_id_of(b'{"event_type":"x","data":{}}') is None
