"""The backlog experiment's slowdown on a real broker: `QuotaShell` sets the default producer
byte-rate quota that Kafka's own `kafka-configs` reads back, a producer past it is throttled,
and the quota lifts (about 25 s: a broker's start, two JVMs)."""

from __future__ import annotations

import contextlib
import json
import subprocess
import time
from pathlib import Path

from confluent_kafka import Producer

from ingestlab.build import artifacts
from ingestlab.stack.kafka import KafkaBroker


def _described(broker: KafkaBroker) -> str:
    """What Kafka's ConfigCommand says of the default client-id's quotas."""
    argv = ["java", "-cp", artifacts.kafka_classpath(), "kafka.admin.ConfigCommand", "--bootstrap-server",
            broker.bootstrap, "--describe", "--entity-type", "clients", "--entity-default"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def _throttle_ms(broker: KafkaBroker, *, seconds: float = 3.0) -> int:
    """The most a producer sending 10 KB records as fast as it can for `seconds` was told to
    wait by the broker (librdkafka's statistics, `brokers[*].throttle.max`, ms)."""
    seen: list[int] = [0]

    def stats(text: str) -> None:
        for found in json.loads(text)["brokers"].values():
            seen.append(int(found.get("throttle", {}).get("max", 0)))

    producer = Producer({"bootstrap.servers": broker.bootstrap, "statistics.interval.ms": 500,
                         "stats_cb": stats, "linger.ms": 5})
    body = b"x" * 10_000
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with contextlib.suppress(BufferError):  # a full queue: the broker is what is throttled
            producer.produce("quota", body)
        producer.poll(0.01)
    producer.purge()
    producer.flush(5)
    return max(seen)


def test_the_quota_is_kafkas_and_throttles_a_producer(tmp_path: Path) -> None:
    with KafkaBroker(work_dir=tmp_path / "kafka", cores=(0,)) as broker:
        broker.create_topic("quota", partitions=1)
        with broker.quota_shell(log_path=tmp_path / "quota-shell.log") as shell:
            assert shell.set(100_000) < 5.0
            assert "producer_byte_rate=100000.0" in _described(broker)
            assert _throttle_ms(broker) > 0  # 10 KB records far faster than 100 KB/s
            assert shell.clear() < 5.0
            assert "producer_byte_rate" not in _described(broker)
        assert shell._popen is None  # its JVM ended with the block
