"""A real single-node Apache Kafka broker (KRaft, combined broker+controller) on loopback.

`KafkaBroker` runs the JVM as a native child process; `ContainerKafkaBroker` runs the same
argv in a container of the kafka image (the JVM, the jars and the log4j2 config where
`build.layout` puts them: `/opt/java/bin/java`, `/opt/kafka/libs/`, `/opt/kafka/config/`),
with the broker's work dir (server.properties, data dir) bind-mounted at the same path, so
the config file means the same on both sides. Both share everything else (`_BrokerLogic`):
config, storage format, start with one retry on the quorum race, readiness by metadata
request, topic creation, and a restart on the same data dir and ports after a kill (the
`kill` fault of `experiments.faults`).

With `advertised_port` the broker tells clients to reach it at 127.0.0.1:<advertised_port>
(e.g. a `stack.slow_link.SlowLink` in front of it) while it listens on its own port.
"""

from __future__ import annotations

import base64
import contextlib
import queue
import shutil
import socket
import string
import subprocess
import threading
import time
import uuid
from pathlib import Path
from typing import Self

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from ingestlab.build import artifacts, layout
from ingestlab.engine.container import Bind, ContainerProcess
from ingestlab.engine.docker_engine import DockerEngine
from ingestlab.engine.labels import container_labels
from ingestlab.host.component import StartupError, port_taken, wait_until
from ingestlab.host.ports import LOOPBACK, free_ports
from ingestlab.host.process import NativeProcess, launch_argv

TOPIC = "data-ingestion"
# message.timestamp.type: each record's timestamp is when the broker appended it (ms, wall clock).
TOPIC_CONFIG = {"message.timestamp.type": "LogAppendTime"}
_TEMPLATE = artifacts.KAFKA_DIR / "server.properties.template"
# On first start a KRaft node occasionally gives up before its single-voter quorum has
# elected itself (the controller is not yet known when the broker registers). It is a race,
# not a configuration error: a second start with a fresh data dir succeeds.
QUORUM_RACE_MARKERS = (
    "Timed out waiting for the controller",
    "Unable to register the broker",
    "fatal error while waiting for the controller",
    "CONTROLLER_NOT_AVAILABLE",
)
# Kafka's default broker.session.timeout.ms (the template keeps it): a broker killed and
# started again cannot register with the controller (DUPLICATE_BROKER_REGISTRATION) until
# the session of its previous incarnation expired, so a restart takes up to this much longer
# than a start (measured here: 9 s of the 15 s a restart took).
BROKER_SESSION_TIMEOUT_S = 9.0
_HINT = ("check that java 17+ is on PATH, that the jars were fetched (make setup) and that "
         "the machine has free memory for the broker heap")
_IMAGE_HINT = (f"see the broker's log; the kafka image holds the JVM in {layout.JAVA_HOME} and the jars in "
               f"{layout.KAFKA_LIBS} (build.images.store.ensure_image builds it from the host's jars)")


# The quota shell (`QuotaShell`): a single Java source file run with the broker's jars.
QUOTA_SHELL_SOURCE = artifacts.KAFKA_DIR / "QuotaShell.java"
_QUOTA_READY, _QUOTA_OK, _QUOTA_ERROR = "ready", "ok ", "error "


def is_quorum_race(log_text: str) -> bool:
    """True if a failed start's log shows the known quorum-formation race."""
    return any(marker in log_text for marker in QUORUM_RACE_MARKERS)


def new_cluster_id() -> str:
    """A Kafka cluster id: 16 random bytes, base64url without padding (22 characters)."""
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()


class _BrokerLogic:
    """The broker, whatever runs its JVM: a mixin placed before a runtime class (NativeProcess
    or ContainerProcess), whose `start()`/`kill()`/`logs()` it calls.

    A runtime subclass says where the JVM, the jars and the log4j2 config are (`java`,
    `classpath()`, `log4j()`), how a one-shot command runs (`_run_once`), and how to forget a
    killed process before starting a new one (`_forget_process`).
    """

    java: str
    cores: tuple[int, ...] | None
    _endpoint: str | None

    def _init_broker(self, *, work_dir: Path, heap_mib: int, partitions: int, start_timeout_s: float,
                     cluster_id: str | None, advertised_port: int | None) -> None:
        self.work_dir = work_dir
        # None: a new random id for every attempt (each formats a fresh data dir).
        self.cluster_id = cluster_id
        self.heap_mib = heap_mib
        self.partitions = partitions
        self.start_timeout_s = start_timeout_s
        self.broker_port, self.controller_port = free_ports(2)
        self.advertised_port = advertised_port
        self.startup_s: float | None = None
        self.attempts = 0
        self.restarts_s: list[float] = []
        self._topics: dict[str, int] = {}

    # the runtime's part
    def classpath(self) -> str:
        raise NotImplementedError

    def log4j(self) -> str:
        raise NotImplementedError

    def _run_once(self, argv: list[str], timeout_s: float) -> tuple[int, str]:
        raise NotImplementedError

    def _forget_process(self) -> None:
        raise NotImplementedError

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
            f"-Dlog4j2.configurationFile={self.log4j()}",
        ]

    def _argv(self) -> list[str]:
        return [self.java, *self._jvm_opts(), "-cp", self.classpath(),
                "kafka.Kafka", str(self.config_path)]

    def _write_config(self) -> None:
        shutil.rmtree(self.data_dir, ignore_errors=True)
        self.work_dir.mkdir(parents=True, exist_ok=True)
        text = string.Template(_TEMPLATE.read_text()).substitute(
            broker_port=self.broker_port,
            advertised_port=self.advertised_port or self.broker_port,
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
        return [self.java, "-Xmx256m", f"-Dlog4j2.configurationFile={self.log4j()}",
                "-cp", self.classpath(), "kafka.tools.StorageTool", "format",
                f"--cluster-id={cluster_id}", "-c", str(self.config_path)]

    def _format_storage(self) -> None:
        argv = self.format_storage_argv(self.cluster_id or new_cluster_id())
        returncode, output = self._run_once(argv, 120.0)
        if returncode != 0:
            raise StartupError("kafka", "formatting the KRaft storage failed",
                               logs=output[-4000:], hint=self.hint)

    @property
    def hint(self) -> str:
        return _HINT

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

    def start(self) -> Self:
        """Format, launch, wait for metadata; one retry on the quorum-formation race or on a
        port taken since it was picked (then with new ports)."""
        started = time.monotonic()
        for attempt in (1, 2):
            self.attempts = attempt
            self._write_config()
            self._format_storage()
            super().start()  # type: ignore[misc]  # the runtime class after this mixin
            try:
                wait_until(self.answers_metadata, component=self,  # type: ignore[arg-type]
                           timeout_s=self.start_timeout_s, what="answering metadata requests",
                           hint=self.hint)
                break
            except StartupError as error:
                race = is_quorum_race(self.logs(tail_lines=None))  # type: ignore[attr-defined]
                taken = port_taken(error)
                self.kill()  # type: ignore[attr-defined]
                if attempt == 2 or not (race or taken):
                    raise
                if taken:
                    self.broker_port, self.controller_port = free_ports(2)
                    self._endpoint = f"{LOOPBACK}:{self.broker_port}"
                self._forget_process()  # start afresh: new data dir, new process
        self.startup_s = time.monotonic() - started
        return self

    def create_topic(self, name: str = TOPIC, partitions: int | None = None,
                     timeout_s: float = 30.0) -> None:
        """Create `name` and wait until every partition has a leader.

        Its records carry the broker's append time (LogAppendTime), not the producer's: the
        end-to-end latency (`analysis.e2e`) is the time from a request's intended send to that.
        """
        count = partitions or self.partitions
        admin = self.admin()  # must outlive the future, or librdkafka destroys the request
        futures = admin.create_topics([NewTopic(name, num_partitions=count, replication_factor=1,
                                                config=TOPIC_CONFIG)])
        futures[name].result(timeout=timeout_s)
        self._topics[name] = count
        self._wait_for_leaders(admin, name, count, timeout_s)

    def _wait_for_leaders(self, admin: AdminClient, name: str, count: int, timeout_s: float) -> None:
        """Wait until each of the `count` partitions of `name` has a leader."""

        def has_leaders() -> bool:
            try:
                topic = admin.list_topics(topic=name, timeout=1.0).topics.get(name)
            except KafkaException:
                return False  # e.g. a restarted broker not answering yet
            return (topic is not None and topic.error is None and len(topic.partitions) == count
                    and all(p.leader >= 0 for p in topic.partitions.values()))

        wait_until(has_leaders, component=self,  # type: ignore[arg-type]
                   timeout_s=timeout_s, what=f"serving all {count} partitions of {name!r}")

    def quota_shell(self, *, log_path: Path | None = None) -> QuotaShell:
        """A `QuotaShell` on this broker (not started), its JVM on the broker's cores; its
        output goes to `log_path` (default: `work_dir/quota-shell.log`)."""
        return QuotaShell(self.bootstrap, cores=self.cores,
                          log_path=log_path or self.work_dir / "quota-shell.log")

    def restart(self) -> float:
        """Start the broker again after `kill()` (or `stop()`): the same config, data dir and
        ports, no new format, so it recovers the log it had. Returns the seconds from this
        call until it answers metadata requests and leads every partition of the topics it
        created (also kept in `restarts_s`).

        A killed broker leaves its log unflushed in the page cache, not lost: only the
        machine's crash would lose it. KRaft recovers the unclean shutdown from the log
        segments and its metadata log, and the single voter elects itself again (its log
        names it "an unclean election": the only replica leads again, nothing is truncated).

        Natively the new JVM gets the parent-death signal of the calling *thread* (see
        `host.process.launch_argv`): call this from a thread that outlives the broker.
        """
        if self.is_running():  # type: ignore[attr-defined]
            raise RuntimeError("the broker is running: kill() or stop() it before restart()")
        began = time.monotonic()
        self._forget_process()
        super().start()  # type: ignore[misc]  # the runtime class after this mixin
        wait_until(self.answers_metadata, component=self,  # type: ignore[arg-type]
                   timeout_s=self.start_timeout_s, what="answering metadata requests after a restart",
                   hint=self.hint)
        admin = self.admin()
        for name, count in self._topics.items():
            self._wait_for_leaders(admin, name, count, self.start_timeout_s)
        took = time.monotonic() - began
        self.restarts_s.append(took)
        return took

    def describe(self) -> dict[str, object]:
        """What a run records about its broker (meta.json)."""
        return {"version": artifacts.kafka_version(), "heap_mib": self.heap_mib,
                "partitions": self.partitions, "bootstrap": self.bootstrap, "cores": self.cores,
                "advertised_port": self.advertised_port, "startup_s": self.startup_s,
                "start_attempts": self.attempts, "restarts_s": list(self.restarts_s)}


class KafkaBroker(_BrokerLogic, NativeProcess):
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
        advertised_port: int | None = None,
    ) -> None:
        self._init_broker(work_dir=work_dir, heap_mib=heap_mib, partitions=partitions,
                          start_timeout_s=start_timeout_s, cluster_id=cluster_id,
                          advertised_port=advertised_port)
        self.java = shutil.which(java) or java
        NativeProcess.__init__(
            self,
            "kafka",
            self._argv(),
            log_path=(log_dir or work_dir) / "kafka.log",
            cores=cores,
            endpoint=f"{LOOPBACK}:{self.broker_port}",
        )

    def classpath(self) -> str:
        return artifacts.kafka_classpath()

    def log4j(self) -> str:
        return str(artifacts.KAFKA_LOG4J)

    def _run_once(self, argv: list[str], timeout_s: float) -> tuple[int, str]:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s)
        return done.returncode, done.stdout + done.stderr

    def _forget_process(self) -> None:
        self._popen = None


class ContainerKafkaBroker(_BrokerLogic, ContainerProcess):
    """The same broker in a container of the kafka image `image` (see the module's doc).

    The storage format runs first as a one-shot container of the same image, with the same
    mount; its output goes to `work_dir/kafka-format.log` (and into StartupError on failure).
    """

    java = layout.JAVA_BINARY

    def __init__(
        self,
        *,
        image: str,
        work_dir: Path,
        log_dir: Path | None = None,
        heap_mib: int = 512,
        partitions: int = 3,
        cores: tuple[int, ...] | None = None,
        start_timeout_s: float = 90.0,
        cluster_id: str | None = None,
        engine: DockerEngine | None = None,
        stack_id: str | None = None,
        advertised_port: int | None = None,
    ) -> None:
        self._init_broker(work_dir=work_dir, heap_mib=heap_mib, partitions=partitions,
                          start_timeout_s=start_timeout_s, cluster_id=cluster_id,
                          advertised_port=advertised_port)
        self.stack_id = stack_id
        ContainerProcess.__init__(
            self,
            "kafka",
            self._argv(),
            image=image,
            log_path=(log_dir or work_dir) / "kafka.log",
            cores=cores,
            endpoint=f"{LOOPBACK}:{self.broker_port}",
            mounts=[Bind.same_path(work_dir)],
            labels=container_labels("kafka", stack_id=stack_id),
            engine=engine,
        )

    def classpath(self) -> str:
        return layout.KAFKA_CLASSPATH

    def log4j(self) -> str:
        return layout.KAFKA_LOG4J

    @property
    def hint(self) -> str:
        return _IMAGE_HINT

    def _run_once(self, argv: list[str], timeout_s: float) -> tuple[int, str]:
        # Unpinned, like the native format (subprocess.run without taskset).
        one_shot = ContainerProcess("kafka-format", argv, image=self.image,
                                    log_path=self.work_dir / "kafka-format.log",
                                    mounts=self.mounts, engine=self._engine,
                                    labels=container_labels("kafka-format", stack_id=self.stack_id))
        return one_shot.run(timeout_s)

    def _forget_process(self) -> None:
        pass  # kill() removed the container; start() makes a new one

    def describe(self) -> dict[str, object]:
        return {**super().describe(), **ContainerProcess.describe(self)}


class QuotaShell:
    """Sets and lifts a broker's default producer byte-rate quota (`producer_byte_rate` for
    every client id without one of its own) through Kafka's own Admin API
    (`alterClientQuotas`, what `kafka-configs.sh` calls), from one JVM started once
    (`infra/kafka/QuotaShell.java`, run as a source file with the broker's jars on the host),
    so that a change costs a round trip to the broker: `kafka-configs.sh` per change took 3-8 s
    on the study's busy broker core, most of it the JVM's start, and disturbed the load it
    shares the core with.

    ```
    with broker.quota_shell() as quota:    # the JVM starts, its client connects
        took_s = quota.set(5e6)            # bytes/s; returns once the broker has it
        ...
        quota.clear()
    ```
    A producer past its quota is throttled: the broker answers its produce requests with a
    throttle time and keeps its connection muted that long (KIP-219), so on average it sends
    no more than the quota (measured over `quota.window.num` x `quota.window.size.seconds`,
    11 x 1 s by default). The JVM runs pinned to `cores` with a parent-death signal; `close()`
    (leaving the block) ends it, by pid if it does not exit when its stdin closes.
    """

    def __init__(self, bootstrap: str, *, cores: tuple[int, ...] | None, log_path: Path,
                 start_timeout_s: float = 90.0, command_timeout_s: float = 30.0) -> None:
        self.bootstrap = bootstrap
        self.cores = cores
        self.log_path = log_path
        self.start_timeout_s = start_timeout_s
        self.command_timeout_s = command_timeout_s
        self.startup_s: float | None = None
        self._popen: subprocess.Popen[str] | None = None
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._reader: threading.Thread | None = None

    def argv(self) -> list[str]:
        """The JVM's command: a small heap, the client compiler and the serial GC (a client
        that sends two requests), the broker's log4j2 config (its loggers print to stdout,
        which the protocol's lines share: `QuotaShell` keeps only those)."""
        return [shutil.which("java") or "java", "-Xmx128m", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC",
                f"-Dlog4j2.configurationFile={artifacts.KAFKA_LOG4J}", "-cp", artifacts.kafka_classpath(),
                str(QUOTA_SHELL_SOURCE), self.bootstrap]

    def start(self) -> QuotaShell:
        """Start the JVM and wait until its Admin client is made."""
        if self._popen is not None:
            raise RuntimeError("this quota shell was already started")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        began = time.monotonic()
        with self.log_path.open("a") as log:
            self._popen = subprocess.Popen(launch_argv(self.argv(), cores=self.cores), stdin=subprocess.PIPE,
                                           stdout=subprocess.PIPE, stderr=log, text=True, bufsize=1)
        self._reader = threading.Thread(target=self._read, name="ingestlab-quota-shell", daemon=True)
        self._reader.start()
        self._expect(_QUOTA_READY, self.start_timeout_s)
        self.startup_s = time.monotonic() - began
        return self

    def set(self, bytes_per_s: float) -> float:
        """Set the quota (bytes/s, >= 1); returns the seconds until the broker had it."""
        if bytes_per_s < 1:
            raise ValueError(f"a producer quota must be >= 1 byte/s, got {bytes_per_s!r}")
        return self._command(f"set {bytes_per_s:.0f}")

    def clear(self) -> float:
        """Lift the quota; returns the seconds until the broker had it."""
        return self._command("clear")

    def close(self) -> None:
        """End the JVM: stdin closed, then SIGKILL by pid if it has not exited in 5 s."""
        popen, self._popen = self._popen, None
        if popen is None:
            return
        with contextlib.suppress(OSError):
            popen.stdin.close()  # type: ignore[union-attr]
        try:
            popen.wait(timeout=5.0)
        except subprocess.TimeoutExpired:
            popen.kill()
            popen.wait()
        if self._reader is not None:
            self._reader.join(5.0)

    def __enter__(self) -> QuotaShell:
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _read(self) -> None:
        """The JVM's stdout: protocol lines into the queue, the rest into its log."""
        popen = self._popen
        assert popen is not None and popen.stdout is not None
        with self.log_path.open("a") as log:
            for line in popen.stdout:
                line = line.rstrip("\n")
                if line == _QUOTA_READY or line.startswith((_QUOTA_OK, _QUOTA_ERROR)):
                    self._lines.put(line)
                else:
                    log.write(line + "\n")
        self._lines.put(None)  # it exited

    def _expect(self, what: str, timeout_s: float) -> str:
        try:
            line = self._lines.get(timeout=timeout_s)
        except queue.Empty:
            raise RuntimeError(f"the quota shell said nothing within {timeout_s:g} s "
                               f"(see {self.log_path})") from None
        if line is None:
            raise RuntimeError(f"the quota shell exited (see {self.log_path})")
        if not line.startswith(what):
            raise RuntimeError(f"the quota shell answered {line!r}")
        return line

    def _command(self, line: str) -> float:
        popen = self._popen
        if popen is None or popen.stdin is None:
            raise RuntimeError("the quota shell is not running: start() it first")
        began = time.monotonic()
        popen.stdin.write(line + "\n")
        popen.stdin.flush()
        self._expect(_QUOTA_OK, self.command_timeout_s)
        return time.monotonic() - began
