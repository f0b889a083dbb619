"""Reading the study's topic back, to prove what the services said they accepted."""

from __future__ import annotations

import re
import time
import uuid

import polars as pl
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, ResourceType

from ingestlab.stack.services import BODY_LIMIT_BYTES

# Each record's `data.request_id` (load.payloads writes it) ties it to the request that sent it.
_REQUEST_ID_RE = re.compile(rb'"request_id"\s*:\s*"([^"\\]{1,64})"')

RECORD_SCHEMA = {
    "partition": pl.Int32,
    "offset": pl.Int64,
    "timestamp_ms": pl.Int64,
    # confluent_kafka's TIMESTAMP_* code: 1 the producer's create time, 2 the broker's append
    # time (the study's topic: stack.kafka.TOPIC_CONFIG)
    "timestamp_type": pl.Int8,
    "request_id": pl.String,
    "value_bytes": pl.Int32,
}
# librdkafka hands records over in batches; this bounds one poll.
_BATCH = 5_000

# Kafka's limits, set to carry what the services' HTTP limit admits (services/README.md): a
# record is at most as large as a body (the services answer 413 beyond); librdkafka counts at
# most 36 bytes of framing per record against the producers' message.max.bytes
# (RD_KAFKAP_MESSAGE_V2_MAX_OVERHEAD); the broker's message.max.bytes, which the topic's
# max.message.bytes defaults to, also counts the 61-byte record batch header.
RECORD_LIMIT_BYTES = BODY_LIMIT_BYTES
PRODUCER_MESSAGE_MAX_BYTES = RECORD_LIMIT_BYTES + 36
BROKER_MESSAGE_MAX_BYTES = PRODUCER_MESSAGE_MAX_BYTES + 61


def request_id_of(record_value: bytes) -> str | None:
    """The `data.request_id` of a record as stored in Kafka, or None if it has none.

    A regular expression rather than a JSON parse: read-back handles hundreds of thousands
    of 10 KB records, and both services write the id as a plain string without escapes.
    """
    match = _REQUEST_ID_RE.search(record_value)
    return match.group(1).decode() if match else None


def _consumer(bootstrap: str) -> Consumer:
    return Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": f"ingestlab-readback-{uuid.uuid4().hex[:8]}",
        "enable.auto.commit": False,
        "enable.partition.eof": True,
        "auto.offset.reset": "earliest",
    })


# Right after a topic is created a partition's leader can still be moving into place, and a
# fresh client's metadata can lag: these errors clear after a short wait. (The KafkaError
# that get_watermark_offsets raises does not carry librdkafka's retriable flag, so the codes
# are listed.)
_TRANSIENT = frozenset({
    KafkaError.NOT_LEADER_FOR_PARTITION,
    KafkaError.LEADER_NOT_AVAILABLE,
    KafkaError.UNKNOWN_TOPIC_OR_PART,
    KafkaError.REQUEST_TIMED_OUT,
    KafkaError._TIMED_OUT,
    KafkaError._TRANSPORT,
})
_WATERMARK_ATTEMPTS = 8
_WATERMARK_BACKOFF_S = 0.2


def _end_offsets(consumer: Consumer, topic: str) -> dict[int, int]:
    """High watermark of every partition of `topic` (transient broker errors are retried,
    with a growing wait: 0.2 s, 0.4 s, ... about 5.6 s in all)."""
    attempt = 1
    while True:
        try:
            partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
            return {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
                    for p in partitions}
        except KafkaException as exc:
            if attempt >= _WATERMARK_ATTEMPTS or exc.args[0].code() not in _TRANSIENT:
                raise
            time.sleep(_WATERMARK_BACKOFF_S * attempt)
            attempt += 1


def end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    """High watermark of every partition of `topic` (see `_end_offsets`)."""
    consumer = _consumer(bootstrap)
    try:
        return _end_offsets(consumer, topic)
    finally:
        consumer.close()


def topic_configs(bootstrap: str, topic: str, *, timeout_s: float = 10.0) -> dict[str, str]:
    """Every config of `topic` with its value, as the broker reports it now."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    resource = ConfigResource(ResourceType.TOPIC, topic)
    configs = admin.describe_configs([resource])[resource].result(timeout=timeout_s)
    return {name: entry.value for name, entry in configs.items()}


def max_message_bytes(bootstrap: str, topic: str, *, timeout_s: float = 10.0) -> int:
    """The largest record batch (bytes) `topic` takes, as the broker reports it now."""
    return int(topic_configs(bootstrap, topic, timeout_s=timeout_s)["max.message.bytes"])


def set_topic_configs(bootstrap: str, topic: str, configs: dict[str, str], *,
                      timeout_s: float = 10.0) -> None:
    """Set `configs` on the existing `topic` (an incremental change: its other configs keep
    their values), e.g. a retention so that a long hold's records do not fill the disk."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    entries = [ConfigEntry(name, value, incremental_operation=AlterConfigOpType.SET)
               for name, value in configs.items()]
    resource = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=entries)
    for future in admin.incremental_alter_configs([resource]).values():
        future.result(timeout=timeout_s)


def wait_for_records(bootstrap: str, topic: str, *, expected: int, timeout_s: float,
                     settle_s: float = 1.0) -> int:
    """Wait until `topic` holds at least `expected` records, or stops growing.

    Producers flush in the background after the HTTP answer (the Node service answers 202
    before Kafka has the record), so read-back waits for the count to reach what was
    accepted. If it never does, it returns once the count has been stable for `settle_s`
    (records are lost, not late) or `timeout_s` passed.
    """
    deadline = time.monotonic() + timeout_s
    last, stable_since = -1, time.monotonic()
    consumer = _consumer(bootstrap)  # one client for the whole wait, not one per poll
    try:
        while True:
            total = sum(_end_offsets(consumer, topic).values())
            now = time.monotonic()
            if total >= expected or now > deadline:
                return total
            if total != last:
                last, stable_since = total, now
            elif now - stable_since > settle_s:
                return total
            time.sleep(0.2)
    finally:
        consumer.close()


def read_topic(bootstrap: str, topic: str, *, timeout_s: float = 60.0,
               keep_values: bool = False, from_offsets: dict[int, int] | None = None) -> pl.DataFrame:
    """Every record now in `topic` (up to the high watermarks taken at the start), or with
    `from_offsets` (partition -> offset, e.g. `end_offsets` taken earlier) those from there on.

    One row per record with its request id; columns in `RECORD_SCHEMA`, plus the record
    bytes as `value` with `keep_values` (for content checks; a long run's values are GBs).
    Raises TimeoutError if the records cannot all be read within `timeout_s`.
    """
    schema = {**RECORD_SCHEMA, "value": pl.Binary} if keep_values else RECORD_SCHEMA
    columns: dict[str, list] = {name: [] for name in schema}
    starts = from_offsets or {}
    consumer = _consumer(bootstrap)
    try:
        ends = _end_offsets(consumer, topic)
        pending = {p for p, end in ends.items() if end > starts.get(p, 0)}
        consumer.assign([TopicPartition(topic, p, starts.get(p, OFFSET_BEGINNING)) for p in pending])
        deadline = time.monotonic() + timeout_s
        while pending:
            if time.monotonic() > deadline:
                raise TimeoutError(f"read-back of {topic!r} incomplete after {timeout_s} s: "
                                   f"partitions {sorted(pending)} not at their end offsets {ends}")
            for msg in consumer.consume(num_messages=_BATCH, timeout=0.5):
                err = msg.error()
                if err is not None:
                    if err.code() != KafkaError._PARTITION_EOF:
                        raise RuntimeError(f"read-back of {topic!r} failed: {err}")
                    continue
                p, offset = msg.partition(), msg.offset()
                if offset >= ends[p]:
                    continue
                value = msg.value() or b""
                columns["partition"].append(p)
                columns["offset"].append(offset)
                timestamp_type, timestamp_ms = msg.timestamp()
                columns["timestamp_ms"].append(timestamp_ms)
                columns["timestamp_type"].append(timestamp_type)
                columns["request_id"].append(request_id_of(value))
                columns["value_bytes"].append(len(value))
                if keep_values:
                    columns["value"].append(value)
                if offset + 1 >= ends[p]:
                    pending.discard(p)
    finally:
        consumer.close()
    return pl.DataFrame(columns, schema=schema)

