"""A real single-node Apache Kafka broker (KRaft, combined broker+controller) on loopback."""

from __future__ import annotations

import base64
import shutil
import socket
import string
import subprocess
import time
import uuid
from pathlib import Path

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from ingestlab.stack import artifacts
from ingestlab.stack.component import StartupError, port_taken, wait_until
from ingestlab.stack.ports import LOOPBACK, free_ports
from ingestlab.stack.process import NativeProcess

TOPIC = "data-ingestion"
_TEMPLATE = artifacts.KAFKA_DIR / "server.properties.template"
_LOG4J = artifacts.KAFKA_DIR / "log4j2.properties"
# On first start a KRaft node occasionally gives up before its single-voter quorum has
# elected itself (the controller is not yet known when the broker registers). It is a race,
# not a configuration error: a second start with a fresh data dir succeeds.
QUORUM_RACE_MARKERS = (
    "Timed out waiting for the controller",
    "Unable to register the broker",
    "fatal error while waiting for the controller",
    "CONTROLLER_NOT_AVAILABLE",
)
_HINT = ("check that java 17+ is on PATH, that the jars were fetched (make setup) and that "
         "the machine has free memory for the broker heap")


def is_quorum_race(log_text: str) -> bool:
    """True if a failed start's log shows the known quorum-formation race."""
    return any(marker in log_text for marker in QUORUM_RACE_MARKERS)


def new_cluster_id() -> str:
    """A Kafka cluster id: 16 random bytes, base64url without padding (22 characters)."""
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()


class KafkaBroker(NativeProcess):
    """`java -cp <jars> kafka.Kafka` with a fresh data dir under `work_dir`.

    `start()` formats storage, launches the JVM pinned to `cores`, waits until the broker
    answers metadata requests and returns; `create_topic()` makes the study's topic. Its
    log goes to `log_dir/kafka.log` (default: `work_dir`).
    """

    def __init__(
        self,
        *,
        work_dir: Path,
        log_dir: Path | None = None,
        heap_mib: int = 512,
        partitions: int = 3,
        cores: tuple[int, ...] | None = None,
        start_timeout_s: float = 90.0,
        java: str = "java",
        cluster_id: str | None = None,
    ) -> None:
        self.work_dir = work_dir
        # None: a new random id for every attempt (each formats a fresh data dir).
        self.cluster_id = cluster_id
        self.heap_mib = heap_mib
        self.partitions = partitions
        self.start_timeout_s = start_timeout_s
        self.java = shutil.which(java) or java
        self.broker_port, self.controller_port = free_ports(2)
        self.startup_s: float | None = None
        self.attempts = 0
        super().__init__(
            "kafka",
            self._argv(),
            log_path=(log_dir or work_dir) / "kafka.log",
            cores=cores,
            endpoint=f"{LOOPBACK}:{self.broker_port}",
        )

    @property
    def bootstrap(self) -> str:
        return f"{LOOPBACK}:{self.broker_port}"

    @property
    def data_dir(self) -> Path:
        return self.work_dir / "kafka-data"

    @property
    def config_path(self) -> Path:
        return self.work_dir / "server.properties"

    def _jvm_opts(self) -> list[str]:
        return [
            f"-Xms{self.heap_mib}m", f"-Xmx{self.heap_mib}m",
            "-XX:+UseG1GC", "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={_LOG4J}",
        ]

    def _argv(self) -> list[str]:
        return [self.java, *self._jvm_opts(), "-cp", artifacts.kafka_classpath(),
                "kafka.Kafka", str(self.config_path)]

    def _write_config(self) -> None:
        shutil.rmtree(self.data_dir, ignore_errors=True)
        self.work_dir.mkdir(parents=True, exist_ok=True)
        text = string.Template(_TEMPLATE.read_text()).substitute(
            broker_port=self.broker_port,
            controller_port=self.controller_port,
            data_dir=self.data_dir,
            partitions=self.partitions,
        )
        self.config_path.write_text(text)

    def format_storage_argv(self, cluster_id: str) -> list[str]:
        """The `StorageTool format` command for `cluster_id`.

        The id goes in as `--cluster-id=<id>`, one token: base64url ids may begin with `-`
        (1 in 64 random ids do), and as a separate token such an id is read as an option
        ("argument --cluster-id/-t: expected one argument").
        """
        return [self.java, "-Xmx256m", f"-Dlog4j2.configurationFile={_LOG4J}",
                "-cp", artifacts.kafka_classpath(), "kafka.tools.StorageTool", "format",
                f"--cluster-id={cluster_id}", "-c", str(self.config_path)]

    def _format_storage(self) -> None:
        argv = self.format_storage_argv(self.cluster_id or new_cluster_id())
        done = subprocess.run(argv, capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise StartupError("kafka", "formatting the KRaft storage failed",
                               logs=(done.stdout + done.stderr)[-4000:], hint=_HINT)

    def admin(self) -> AdminClient:
        return AdminClient({"bootstrap.servers": self.bootstrap, "socket.timeout.ms": 2000})

    def answers_metadata(self) -> bool:
        # A plain TCP connect first: a Kafka client pointed at a closed port logs an error
        # line per reconnect, which would bury the broker's own start-up messages.
        try:
            socket.create_connection((LOOPBACK, self.broker_port), timeout=0.5).close()
        except OSError:
            return False
        try:
            return bool(self.admin().list_topics(timeout=1.0).brokers)
        except KafkaException:
            return False

    def start(self) -> KafkaBroker:
        """Format, launch, wait for metadata; one retry on the quorum-formation race or on a
        port taken since it was picked (then with new ports)."""
        started = time.monotonic()
        for attempt in (1, 2):
            self.attempts = attempt
            self._write_config()
            self._format_storage()
            super().start()
            try:
                wait_until(self.answers_metadata, component=self, timeout_s=self.start_timeout_s,
                           what="answering metadata requests", hint=_HINT)
                break
            except StartupError as error:
                race = is_quorum_race(self.logs(tail_lines=None))
                taken = port_taken(error)
                self.kill()
                if attempt == 2 or not (race or taken):
                    raise
                if taken:
                    self.broker_port, self.controller_port = free_ports(2)
                    self._endpoint = f"{LOOPBACK}:{self.broker_port}"
                self._popen = None  # start afresh: new data dir, new process
        self.startup_s = time.monotonic() - started
        return self

    def create_topic(self, name: str = TOPIC, partitions: int | None = None,
                     timeout_s: float = 30.0) -> None:
        """Create `name` and wait until every partition has a leader."""
        count = partitions or self.partitions
        admin = self.admin()  # must outlive the future, or librdkafka destroys the request
        futures = admin.create_topics([NewTopic(name, num_partitions=count, replication_factor=1)])
        futures[name].result(timeout=timeout_s)

        def has_leaders() -> bool:
            topic = admin.list_topics(topic=name, timeout=1.0).topics.get(name)
            return (topic is not None and topic.error is None and len(topic.partitions) == count
                    and all(p.leader >= 0 for p in topic.partitions.values()))

        wait_until(has_leaders, component=self, timeout_s=timeout_s,
                   what=f"serving all {count} partitions of {name!r}")

    def describe(self) -> dict[str, object]:
        """What a run records about its broker (meta.json)."""
        return {"version": artifacts.kafka_version(), "heap_mib": self.heap_mib,
                "partitions": self.partitions, "bootstrap": self.bootstrap, "cores": self.cores,
                "startup_s": self.startup_s, "start_attempts": self.attempts}
