"""`Stack`: a Kafka broker and the services under test, started together and always torn down.

How they run is the stack's runtime, chosen in one place (`runtime_for`, from
`StudyConfig.runtime`): `NativeRuntime` (child processes of this Python) or `ContainerRuntime`
(containers of the workbook's Docker engine, host networking, the images of
`config.stack.image_flavour`). Both make the same broker and services with the same argv,
env, pinning and readiness checks; the rest of the stack does not know which one it has.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

import polars as pl

from ingestlab.build.images.store import ensure_image
from ingestlab.config import ServiceName, StudyConfig
from ingestlab.engine.container import prepare_testcontainers, remove_containers, remove_orphans
from ingestlab.engine.docker_engine import DockerEngine, shared_engine
from ingestlab.engine.labels import STACK_LABEL
from ingestlab.host.component import Component, StartupError, port_taken
from ingestlab.names import CONTAINER, MINIMAL, NATIVE, ImageFlavour, Runtime
from ingestlab.stack import topic as topic_io
from ingestlab.stack.kafka import TOPIC, ContainerKafkaBroker, KafkaBroker
from ingestlab.stack.services import (
    ContainerService,
    RunningService,
    ServiceProcess,
    container_spec_for,
    spec_for,
)
from ingestlab.stack.slow_link import SlowLink
from ingestlab.variants import program_of

Broker = KafkaBroker | ContainerKafkaBroker


# --- runtimes ----------------------------------------------------------------------------------
class StackRuntime(Protocol):
    """Makes a stack's broker and services (not started); knows nothing else about the stack."""

    name: Runtime

    def prepare(self, services: Sequence[ServiceName]) -> None:
        """Get ready to run the broker and `services` (containers: the engine and the images),
        so that none of that counts in a component's start-up time."""

    def broker(self, *, work_dir: Path, log_dir: Path, heap_mib: int, partitions: int,
               cores: tuple[int, ...], start_timeout_s: float, advertised_port: int | None) -> Broker: ...

    def service(self, name: ServiceName, *, brokers: str, log_dir: Path, cores: tuple[int, ...],
                node_flags: tuple[str, ...], memory_report_ms: int,
                memory_limit_bytes: int | None = None) -> RunningService:
        """A service, not started; `memory_limit_bytes` (None: none) limits its memory, swap
        included (a runtime that cannot raises ValueError)."""

    def describe(self) -> dict[str, object]: ...

    def close(self) -> None:
        """Clean up after the stack's components were stopped (safe to call twice)."""


class NativeRuntime:
    """Broker and services as child processes of this Python (`host.process`)."""

    name: Runtime = NATIVE

    def prepare(self, services: Sequence[ServiceName]) -> None:
        pass  # `make setup` built everything; ArtifactMissing names what is not there

    def broker(self, *, work_dir: Path, log_dir: Path, heap_mib: int, partitions: int,
               cores: tuple[int, ...], start_timeout_s: float, advertised_port: int | None) -> KafkaBroker:
        return KafkaBroker(work_dir=work_dir, log_dir=log_dir, heap_mib=heap_mib, partitions=partitions,
                           cores=cores, start_timeout_s=start_timeout_s, advertised_port=advertised_port)

    def service(self, name: ServiceName, *, brokers: str, log_dir: Path, cores: tuple[int, ...],
                node_flags: tuple[str, ...], memory_report_ms: int,
                memory_limit_bytes: int | None = None) -> ServiceProcess:
        if memory_limit_bytes is not None:
            raise ValueError("a memory limit needs the container runtime (a container's cgroup); "
                             "the native runtime runs the service without one")
        spec = spec_for(name, node_flags=node_flags, memory_report_ms=memory_report_ms)
        return ServiceProcess(spec, brokers=brokers, log_dir=log_dir, cores=cores)

    def describe(self) -> dict[str, object]:
        return {"name": self.name}

    def close(self) -> None:
        pass


class ContainerRuntime:
    """Broker and services in containers (`engine.container`) of `engine` (default: the
    process's shared engine, started on first use), from the images of `flavour`, each built
    on first use if missing (`build.images.store.ensure_image`, before the component's start is
    timed).

    Every container carries this runtime's id (`STACK_LABEL`); `close()` removes whatever still
    carries it. On first use it also removes containers left by processes that no longer
    exist (`container.remove_orphans`).
    """

    name: Runtime = CONTAINER

    def __init__(self, flavour: ImageFlavour = MINIMAL, *, engine: DockerEngine | None = None) -> None:
        self.flavour = flavour
        self.stack_id = uuid.uuid4().hex[:12]
        self.images: dict[str, str] = {}
        self.timings_s: dict[str, float] = {}
        self.orphans_removed: list[str] = []
        self.leftovers_removed: list[str] = []
        self._engine = engine
        self._prepared = False

    @property
    def engine(self) -> DockerEngine:
        if self._engine is None:
            began = time.monotonic()
            self._engine = shared_engine()
            self.timings_s["engine"] = time.monotonic() - began
        if not self._prepared:
            prepare_testcontainers(self._engine)
            self.orphans_removed = remove_orphans(self._engine.client())
            self._prepared = True
        return self._engine

    def prepare(self, services: Sequence[ServiceName]) -> None:
        for component in dict.fromkeys(("kafka", *(program_of(s) for s in services))):
            self.image(component)

    def image(self, component: str) -> str:
        """The tag of `component`'s image ("kafka", or a program: "node", "rust", "python"),
        built if missing."""
        if component not in self.images:
            began = time.monotonic()
            self.images[component] = ensure_image(self.engine, component, self.flavour)
            self.timings_s[f"image_{component}"] = time.monotonic() - began
        return self.images[component]

    def broker(self, *, work_dir: Path, log_dir: Path, heap_mib: int, partitions: int,
               cores: tuple[int, ...], start_timeout_s: float,
               advertised_port: int | None) -> ContainerKafkaBroker:
        return ContainerKafkaBroker(image=self.image("kafka"), work_dir=work_dir, log_dir=log_dir,
                                    heap_mib=heap_mib, partitions=partitions, cores=cores,
                                    start_timeout_s=start_timeout_s, engine=self.engine,
                                    stack_id=self.stack_id, advertised_port=advertised_port)

    def service(self, name: ServiceName, *, brokers: str, log_dir: Path, cores: tuple[int, ...],
                node_flags: tuple[str, ...], memory_report_ms: int,
                memory_limit_bytes: int | None = None) -> ContainerService:
        spec = container_spec_for(name, image=self.image(program_of(name)), node_flags=node_flags,
                                  memory_report_ms=memory_report_ms)
        return ContainerService(spec, brokers=brokers, log_dir=log_dir, cores=cores, engine=self.engine,
                                stack_id=self.stack_id, memory_limit_bytes=memory_limit_bytes)

    def describe(self) -> dict[str, object]:
        return {"name": self.name, "image_flavour": self.flavour, "images": dict(self.images),
                "docker_host": self._engine.docker_host if self._engine else None,
                "stack_label": self.stack_id, "timings_s": dict(self.timings_s),
                "orphans_removed": list(self.orphans_removed),
                "leftovers_removed": list(self.leftovers_removed)}

    def close(self) -> None:
        if self._engine is None:
            return  # never used: nothing can carry its label
        self.leftovers_removed += remove_containers(self._engine.client(), {STACK_LABEL: self.stack_id})


# The one place a runtime is chosen.
RUNTIMES: dict[Runtime, Callable[[StudyConfig], StackRuntime]] = {
    NATIVE: lambda config: NativeRuntime(),
    CONTAINER: lambda config: ContainerRuntime(config.stack.image_flavour),
}


def runtime_for(config: StudyConfig) -> StackRuntime:
    """The runtime `config.runtime` names, set up from `config`."""
    return RUNTIMES[config.runtime](config)


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
    The broker and services run as `config.runtime` says (`runtime_for`), or in `runtime`.

    With `broker_link=True` the services reach the broker through a `SlowLink` (`link`): a
    proxy on loopback, started before the broker, which advertises the proxy's port, so every
    byte between a service and the broker passes it (see `stack.slow_link`). It passes bytes
    through unchanged until its `shape` is changed (the `slow` fault of `experiments.faults`).

    `service_memory_limit_bytes` (None: none) limits each service's memory, swap included
    (the container runtime only: its container's cgroup; `experiments.backlog`).

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
        runtime: StackRuntime | None = None,
        broker_link: bool = False,
        service_memory_limit_bytes: int | None = None,
    ) -> None:
        self.config = config
        self.runtime = runtime if runtime is not None else runtime_for(config)
        # services=() starts the broker alone (e.g. to time the services' cold starts)
        self.service_names: tuple[ServiceName, ...] = tuple(config.services if services is None else services)
        self.topic = topic
        self._tmp = Path(tempfile.mkdtemp(prefix="ingestlab-stack-"))
        self.log_dir = log_dir or self._tmp / "logs"
        self.kafka: Broker | None = None
        self.broker_link = broker_link
        self.service_memory_limit_bytes = service_memory_limit_bytes
        self.link: SlowLink | None = None
        self.services: dict[ServiceName, RunningService] = {}
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
        self.runtime.prepare(self.service_names)
        if self.broker_link:
            self.link = SlowLink().start()  # listening before the broker advertises it
        self.kafka = self.runtime.broker(
            work_dir=self._tmp / "kafka",
            log_dir=self.log_dir,
            heap_mib=self.config.stack.kafka_heap_mib,
            partitions=self.config.stack.partitions,
            cores=self.config.cores.broker,
            start_timeout_s=self.config.stack.broker_start_timeout_s,
            advertised_port=self.link.port if self.link else None,
        )
        if self.link is not None:
            # Before the start: clients learn the link's address from the broker's first
            # metadata answer, and a start waits for such an answer (84 s more in a container
            # here when the link led nowhere yet).
            self.link.target_port = self.kafka.broker_port
        self.kafka.start()
        if self.link is not None:
            self.link.target_port = self.kafka.broker_port  # a retry on a taken port moves it
        self.timings_s["kafka_start"] = self.kafka.startup_s or 0.0
        self.kafka.create_topic(self.topic)
        for name in self.service_names:
            self.start_service(name)

    def new_service(self, name: ServiceName, *, log_dir: Path | None = None) -> RunningService:
        """A new, not yet started instance of `name` against the running broker, run by this
        stack's runtime and pinned like its services (e.g. for cold starts); the caller starts
        and stops it. Logs go to `log_dir` (default: the stack's)."""
        if self.kafka is None:
            raise RuntimeError("the broker is not running: enter the Stack first")
        brokers = self.link.address if self.link else self.kafka.bootstrap
        # only when set: a runtime without limits need not know the argument
        limit = ({"memory_limit_bytes": self.service_memory_limit_bytes}
                 if self.service_memory_limit_bytes is not None else {})
        return self.runtime.service(name, brokers=brokers, log_dir=log_dir or self.log_dir,
                                    cores=self.config.cores.service,
                                    node_flags=self.config.stack.node_flags,
                                    memory_report_ms=self.config.stack.memory_report_ms,
                                    **limit)

    def start_service(self, name: ServiceName) -> RunningService:
        """Start (or restart) one service against the running broker; returns once ready."""
        if self.kafka is None:
            raise RuntimeError("the broker is not running: enter the Stack first")
        old = self.services.pop(name, None)
        if old is not None:
            old.stop()
        self.runtime.prepare((name,))  # e.g. an image to build: not part of the start-up time
        started = time.monotonic()
        for attempt in (1, 2):
            service = self.new_service(name)
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
        try:
            self.runtime.close()  # containers: remove whatever still carries the stack's label
        except BaseException as exc:
            errors.append(exc)
        if self.link is not None:
            self.link.close()
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

    def service(self, name: ServiceName) -> RunningService:
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
        """Every record now in the topic (`stack.topic.read_topic`), given as long as its size
        needs: 60 s plus 1 s per 10,000 records (a 60 s overload of Rust left 900,000 records
        of 10 KB, more than 60 s of reading)."""
        timeout_s = 60.0 + self.topic_size() / 10_000
        return topic_io.read_topic(self.bootstrap, self.topic, keep_values=keep_values, timeout_s=timeout_s)

    def describe(self) -> dict[str, object]:
        """What a run records about its stack (meta.json)."""
        return {
            "runtime": self.runtime.describe(),
            "topic": self.topic,
            "kafka": self.kafka.describe() if self.kafka else None,
            "broker_link": self.link.describe() if self.link else None,
            "services": {name: s.describe() for name, s in self.services.items()},
            "cores": self.config.cores.as_dict(),
            "timings_s": dict(self.timings_s),
        }
