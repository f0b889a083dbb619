"""The HTTP body limit and Kafka's limits agree, in every place that sets one
(services/README.md, "Promises": what the HTTP limit admits, the pipeline carries)."""

from __future__ import annotations

import re
import string

from ingestlab.build import artifacts
from ingestlab.stack.services import BODY_LIMIT_BYTES
from ingestlab.stack.topic import BROKER_MESSAGE_MAX_BYTES, PRODUCER_MESSAGE_MAX_BYTES, RECORD_LIMIT_BYTES


def test_the_numbers_follow_from_the_body_limit():
    assert BODY_LIMIT_BYTES == RECORD_LIMIT_BYTES == 2**20
    assert PRODUCER_MESSAGE_MAX_BYTES == 1_048_612  # + librdkafka's largest record framing (36)
    assert BROKER_MESSAGE_MAX_BYTES == 1_048_673  # + the record batch header (61)


def test_the_broker_takes_a_batch_of_one_record_at_the_limit():
    template = string.Template((artifacts.KAFKA_DIR / "server.properties.template").read_text())
    text = template.substitute(broker_port=1, advertised_port=1, controller_port=2, data_dir="/tmp/x",
                               partitions=3)
    props = dict(line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#"))
    assert int(props["message.max.bytes"]) == BROKER_MESSAGE_MAX_BYTES


def test_both_services_set_the_same_limits():
    node = (artifacts.NODE_DIR / "server.js").read_text()
    rust = (artifacts.RUST_DIR / "src" / "main.rs").read_text()
    assert re.search(r"const BODY_LIMIT_BYTES = 1048576;", node)
    assert re.search(r"const BODY_LIMIT_BYTES: usize = 1_048_576;", rust)
    for source in (node, rust):
        assert re.search(r"RECORD_LIMIT_BYTES\b.*= BODY_LIMIT_BYTES;", source)
        assert re.search(r"PRODUCER_MESSAGE_MAX_BYTES\b.*= RECORD_LIMIT_BYTES \+ 36;", source)
    assert "'message.max.bytes': PRODUCER_MESSAGE_MAX_BYTES" in node
    assert '.set("message.max.bytes", PRODUCER_MESSAGE_MAX_BYTES.to_string())' in rust
