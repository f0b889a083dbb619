"""The ingestion services under test (the article's two and their variants, `variants`), as
native processes (`ServiceProcess`) or in containers (`ContainerService`): the same env (PORT,
KAFKA_BROKERS, ACK_MODE, RUST_LOG, and INGESTLAB_MEMORY_REPORT_MS when memory reports are
asked for), node flags and readiness (`/healthz`) either way; only where the program comes from
differs (`spec_for`: the host's build; `container_spec_for`: the image's layout)."""

from __future__ import annotations

import subprocess
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from ingestlab.build import artifacts, layout
from ingestlab.config import ServiceName
from ingestlab.engine.container import ContainerProcess
from ingestlab.engine.docker_engine import DockerEngine
from ingestlab.engine.labels import container_labels
from ingestlab.host.component import wait_until
from ingestlab.host.ports import LOOPBACK, free_port
from ingestlab.host.process import NativeProcess
from ingestlab.variants import Program, Variant, program_of, variant

INGEST_PATH = "/api/ingest"
HEALTH_PATH = "/healthz"
# Both services' body limit, 1 MiB (the article's express.json '1mb'; services/README.md).
BODY_LIMIT_BYTES = 1_048_576
# Every program prints its memory parts every this many ms when set (services/README.md,
# "Memory reports"; telemetry.memory_report parses them); unset, it behaves as the article's.
MEMORY_REPORT_ENV = "INGESTLAB_MEMORY_REPORT_MS"


@dataclass(frozen=True)
class ServiceSpec:
    """How to launch one service. `argv` is complete; the port and brokers come by env.

    For a container, `image` is its image tag and `argv`, `cwd` are paths inside it.
    """

    name: ServiceName
    argv: tuple[str, ...]
    cwd: Path
    env: tuple[tuple[str, str], ...] = ()
    hint: str = ""
    image: str | None = None


# How each program starts, natively and in its image (build.images builds those, at the paths of
# build.layout; WORKDIR /app).
# node-cluster's primary forks one server.js worker per core it may run on (services/node).
NODE_ENTRY = {"one": "server.js", "per-core": "cluster.js"}
PYTHON_ENTRY = "serve.py"
_HINTS: dict[Program, str] = {
    "node": "the Node service is ready once its Kafka producer connected; see its log for "
            "librdkafka errors, or rerun `make setup` if node-rdkafka fails to load",
    "rust": "see the log for the bind or producer error; rerun `make setup` after changing the sources",
    "python": "the Python service is ready once every worker's producer connected; see its log, "
              "or rerun `make setup` if aiohttp or confluent_kafka fail to import",
}
_IMAGE_HINTS: dict[Program, str] = {
    "node": f"the image holds node, server.js, cluster.js and node_modules in {layout.APP_DIR}",
    "rust": f"the image holds {layout.RUST_BINARY} (build.images.store.ensure_image rebuilds it when the "
            "sources change)",
    "python": "the image holds python3, its standard library and site-packages, and "
              f"{layout.APP_DIR}/{PYTHON_ENTRY}",
}


def _spec_env(v: Variant, memory_report_ms: int) -> tuple[tuple[str, str], ...]:
    """What tells a program which variant it is: ACK_MODE (enqueue | acked), and Rust's log
    level; and, if `memory_report_ms` > 0, to report its memory parts that often."""
    env: tuple[tuple[str, str], ...] = (("ACK_MODE", v.promise),)
    if v.program == "rust":
        env += (("RUST_LOG", "info"),)
    return (*env, (MEMORY_REPORT_ENV, str(memory_report_ms))) if memory_report_ms > 0 else env


def spec_for(name: ServiceName, *, node_flags: tuple[str, ...] = (),
             memory_report_ms: int = 0) -> ServiceSpec:
    """How `name` (any of variants.SERVICES) runs from the host's build. `node_flags` apply to
    Node programs only (a cluster's workers inherit them); `memory_report_ms` > 0 has it print
    its memory parts every that many ms (`MEMORY_REPORT_ENV`)."""
    v = variant(name)
    if v.program == "node":
        artifacts.require(artifacts.NODE_DIR / "node_modules" / "node-rdkafka",
                          "the Node service's node_modules")
        argv: tuple[str, ...] = (artifacts.node_executable(), *node_flags, NODE_ENTRY[v.processes])
        cwd = artifacts.NODE_DIR
    elif v.program == "rust":
        binary = artifacts.require(artifacts.rust_binary(), "the Rust service binary (current sources)")
        argv = (str(binary),)
        cwd = artifacts.RUST_DIR
    else:
        argv = (str(artifacts.python_interpreter()), PYTHON_ENTRY)
        cwd = artifacts.PYTHON_DIR
    return ServiceSpec(name=name, argv=argv, cwd=cwd, env=_spec_env(v, memory_report_ms),
                       hint=_HINTS[v.program])


def container_spec_for(name: ServiceName, *, image: str, node_flags: tuple[str, ...] = (),
                       memory_report_ms: int = 0) -> ServiceSpec:
    """`name` as its program's image `image` runs it: the same command and env as natively,
    with the image's paths."""
    v = variant(name)
    if v.program == "node":
        argv: tuple[str, ...] = (layout.NODE_BINARY, *node_flags, NODE_ENTRY[v.processes])
    elif v.program == "rust":
        argv = (layout.RUST_BINARY,)
    else:
        argv = (layout.PYTHON_BINARY, PYTHON_ENTRY)
    return ServiceSpec(name=name, argv=argv, cwd=Path(layout.APP_DIR), env=_spec_env(v, memory_report_ms),
                       hint=f"{_HINTS[v.program]}; {_IMAGE_HINTS[v.program]}", image=image)


def service_env(spec: ServiceSpec, *, port: int, brokers: str) -> dict[str, str]:
    """The variables a service reads: PORT, KAFKA_BROKERS, and its spec's own (ACK_MODE, ...)."""
    return {"PORT": str(port), "KAFKA_BROKERS": brokers, **dict(spec.env)}


class _ServiceLogic:
    """Readiness and addresses of a service, whatever runs it: a mixin placed before a runtime
    class (NativeProcess or ContainerProcess)."""

    spec: ServiceSpec
    port: int
    name: str
    argv: list[str]
    cores: tuple[int, ...] | None

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def ingest_url(self) -> str:
        return self.url + INGEST_PATH

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(self.url + HEALTH_PATH, timeout=1.0) as response:
                return response.status == 200
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return False

    def wait_ready(self, timeout_s: float = 60.0) -> float:
        """Seconds from now until /healthz answers 200 (Node: producer connected)."""
        self.ready_s = wait_until(self.healthy, component=self,  # type: ignore[arg-type]
                                  timeout_s=timeout_s, what=f"healthy on {self.url}{HEALTH_PATH}",
                                  hint=self.spec.hint)
        return self.ready_s


class ServiceProcess(_ServiceLogic, NativeProcess):
    """A started ingestion service listening on 127.0.0.1:`port`."""

    def __init__(self, spec: ServiceSpec, *, brokers: str, log_dir: Path,
                 cores: tuple[int, ...] | None = None, port: int | None = None) -> None:
        self.spec = spec
        self.port = port or free_port()
        NativeProcess.__init__(self, spec.name, spec.argv, log_path=log_dir / f"{spec.name}.log",
                               env=service_env(spec, port=self.port, brokers=brokers), cwd=spec.cwd,
                               cores=cores, endpoint=f"{LOOPBACK}:{self.port}")
        self.ready_s: float | None = None

    def describe(self) -> dict[str, object]:
        return {"argv": list(self.argv), "port": self.port, "cores": self.cores,
                "version": service_version(self.spec.name)}


class ContainerService(_ServiceLogic, ContainerProcess):
    """A started ingestion service in a container of `spec.image` (`container_spec_for`),
    listening on 127.0.0.1:`port` of the host (host networking); `memory_limit_bytes` (None:
    none) limits its container's memory, swap included."""

    def __init__(self, spec: ServiceSpec, *, brokers: str, log_dir: Path,
                 cores: tuple[int, ...] | None = None, port: int | None = None,
                 engine: DockerEngine | None = None, stack_id: str | None = None,
                 memory_limit_bytes: int | None = None) -> None:
        if spec.image is None:
            raise ValueError(f"{spec.name}: a container service needs a spec with an image "
                             "(container_spec_for)")
        self.spec = spec
        self.port = port or free_port()
        ContainerProcess.__init__(self, spec.name, spec.argv, image=spec.image,
                                  log_path=log_dir / f"{spec.name}.log",
                                  env=service_env(spec, port=self.port, brokers=brokers), cwd=spec.cwd,
                                  cores=cores, endpoint=f"{LOOPBACK}:{self.port}",
                                  labels=container_labels(spec.name, stack_id=stack_id), engine=engine,
                                  memory_limit_bytes=memory_limit_bytes)
        self.ready_s: float | None = None

    def describe(self) -> dict[str, object]:
        # The images hold the host's builds (build.images copies them): the same versions.
        return {**ContainerProcess.describe(self), "port": self.port,
                "version": service_version(self.spec.name)}


def service_version(name: ServiceName) -> str:
    """Runtime version behind a service: node's or python's `--version`, or the Rust binary's
    build key."""
    program = program_of(name)
    if program == "rust":
        return f"ingest-rust {artifacts.rust_binary().parent.name}"
    command = ["node"] if program == "node" else [str(artifacts.python_interpreter())]
    return subprocess.run([*command, "--version"], capture_output=True, text=True).stdout.strip()


# Either runtime's service: what `Stack.service()` returns.
RunningService = ServiceProcess | ContainerService
