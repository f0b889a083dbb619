"""`Stack`: a Kafka broker and the services under test, started together and always torn down."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import polars as pl

from ingestlab.config import ServiceName, StudyConfig
from ingestlab.stack import topic as topic_io
from ingestlab.stack.component import Component, StartupError, port_taken
from ingestlab.stack.kafka import TOPIC, KafkaBroker
from ingestlab.stack.services import ServiceProcess, spec_for


class Stack:
    """Kafka + one or more ingestion services, pinned to the config's core layout.

    ```
    with Stack(config, log_dir=run.logs_dir) as stack:
        url = stack.service("rust").ingest_url
        ...
        records = stack.read_topic()
    ```
    Entering starts the broker, creates the topic and starts every service, each waited on
    until ready; leaving (also on an exception or Ctrl-C) stops the services first, so they
    can flush their producers, then the broker, and removes the broker's data directory.
    Logs go to `log_dir`; without one they live in a temporary directory removed on leaving.

    While the stack runs, the calling thread (and every thread it starts, such as Kafka
    clients' and the sampler's) is kept on the load cores, so the code driving a measurement
    never takes CPU from the service under test; its affinity is restored on leaving.
    (`ingestlab study` pins the whole notebook kernel the same way.)
    """

    def __init__(
        self,
        config: StudyConfig,
        *,
        services: Sequence[ServiceName] | None = None,
        log_dir: Path | None = None,
        topic: str = TOPIC,
    ) -> None:
        self.config = config
        # services=() starts the broker alone (e.g. to time the services' cold starts)
        self.service_names: tuple[ServiceName, ...] = tuple(config.services if services is None else services)
        self.topic = topic
        self._tmp = Path(tempfile.mkdtemp(prefix="ingestlab-stack-"))
        self.log_dir = log_dir or self._tmp / "logs"
        self.kafka: KafkaBroker | None = None
        self.services: dict[ServiceName, ServiceProcess] = {}
        self.timings_s: dict[str, float] = {}
        self._caller_cores: set[int] | None = None

    # --- lifecycle -----------------------------------------------------------------------
    def __enter__(self) -> Stack:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        self.config.cores.validate()
        self._caller_cores = os.sched_getaffinity(0)
        os.sched_setaffinity(0, self.config.cores.load)
        self.kafka = KafkaBroker(
            work_dir=self._tmp / "kafka",
            log_dir=self.log_dir,
            heap_mib=self.config.stack.kafka_heap_mib,
            partitions=self.config.stack.partitions,
            cores=self.config.cores.broker,
            start_timeout_s=self.config.stack.broker_start_timeout_s,
        )
        self.kafka.start()
        self.timings_s["kafka_start"] = self.kafka.startup_s or 0.0
        self.kafka.create_topic(self.topic)
        for name in self.service_names:
            self.start_service(name)

    def start_service(self, name: ServiceName) -> ServiceProcess:
        """Start (or restart) one service against the running broker; returns once ready."""
        if self.kafka is None:
            raise RuntimeError("the broker is not running: enter the Stack first")
        old = self.services.pop(name, None)
        if old is not None:
            old.stop()
        started = time.monotonic()
        for attempt in (1, 2):
            service = ServiceProcess(spec_for(name, node_flags=self.config.stack.node_flags),
                                     brokers=self.kafka.bootstrap, log_dir=self.log_dir,
                                     cores=self.config.cores.service)
            self.services[name] = service
            service.start()
            try:
                service.wait_ready(self.config.stack.service_start_timeout_s)
                break
            except StartupError as error:
                service.stop()
                if attempt == 2 or not port_taken(error):
                    raise
        self.timings_s[f"{name}_start"] = time.monotonic() - started
        return service

    def close(self) -> None:
        """Stop everything this stack started; safe to call twice."""
        errors: list[BaseException] = []
        for component in [*self.services.values(), *([self.kafka] if self.kafka else [])]:
            try:
                component.stop()
            except BaseException as exc:  # keep tearing down the rest, re-raise after
                errors.append(exc)
        # The broker's data dir, and the logs too unless the caller gave a log_dir to keep them.
        shutil.rmtree(self._tmp, ignore_errors=True)
        if self._caller_cores is not None:
            os.sched_setaffinity(0, self._caller_cores)
            self._caller_cores = None
        if errors:
            raise errors[0]

    # --- access --------------------------------------------------------------------------
    @property
    def bootstrap(self) -> str:
        if self.kafka is None:
            raise RuntimeError("the broker is not running")
        return self.kafka.bootstrap

    def service(self, name: ServiceName) -> ServiceProcess:
        try:
            return self.services[name]
        except KeyError:
            raise KeyError(f"service {name!r} is not part of this stack "
                           f"({', '.join(self.services) or 'none started'})") from None

    def components(self) -> list[Component]:
        return [*([self.kafka] if self.kafka else []), *self.services.values()]

    def pids(self) -> dict[str, int | None]:
        return {c.name: c.pid for c in self.components()}

    def topic_size(self) -> int:
        """Records now in the topic (sum of the partitions' end offsets)."""
        return sum(topic_io.end_offsets(self.bootstrap, self.topic).values())

    def wait_for_records(self, expected: int, timeout_s: float | None = None) -> int:
        return topic_io.wait_for_records(self.bootstrap, self.topic, expected=expected,
                                         timeout_s=timeout_s or self.config.stack.readback_timeout_s)

    def read_topic(self, *, keep_values: bool = False) -> pl.DataFrame:
        return topic_io.read_topic(self.bootstrap, self.topic, keep_values=keep_values)

    def describe(self) -> dict[str, object]:
        """What a run records about its stack (meta.json)."""
        return {
            "topic": self.topic,
            "kafka": self.kafka.describe() if self.kafka else None,
            "services": {name: s.describe() for name, s in self.services.items()},
            "cores": self.config.cores.as_dict(),
            "timings_s": dict(self.timings_s),
        }
