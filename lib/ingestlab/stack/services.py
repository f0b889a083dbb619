"""The two ingestion services under test, as native processes (`ServiceProcess`) or in
containers (`ContainerService`): the same env (PORT, KAFKA_BROKERS, RUST_LOG), node flags and
readiness (`/healthz`) either way; only where the program comes from differs (`spec_for`:
the host's build; `container_spec_for`: the image's layout)."""

from __future__ import annotations

import shutil
import subprocess
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ingestlab.config import ServiceName
from ingestlab.stack import artifacts
from ingestlab.stack.component import wait_until
from ingestlab.stack.container import ContainerProcess, container_labels
from ingestlab.stack.ports import LOOPBACK, free_port
from ingestlab.stack.process import NativeProcess

if TYPE_CHECKING:
    from ingestlab.stack.docker_engine import DockerEngine

INGEST_PATH = "/api/ingest"
HEALTH_PATH = "/healthz"
# Both services' body limit, 1 MiB (the article's express.json '1mb'; services/README.md).
BODY_LIMIT_BYTES = 1_048_576


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


def node_spec(node_flags: tuple[str, ...] = ()) -> ServiceSpec:
    artifacts.require(artifacts.NODE_DIR / "node_modules" / "node-rdkafka", "the Node service's node_modules")
    return ServiceSpec(
        name="node",
        argv=(shutil.which("node") or "node", *node_flags, "server.js"),
        cwd=artifacts.NODE_DIR,
        hint="the Node service is ready once its Kafka producer connected; see its log for "
             "librdkafka errors, or rerun `make setup` if node-rdkafka fails to load",
    )


def rust_spec() -> ServiceSpec:
    binary = artifacts.require(artifacts.rust_binary(), "the Rust service binary (for the current sources)")
    return ServiceSpec(
        name="rust",
        argv=(str(binary),),
        cwd=artifacts.RUST_DIR,
        env=(("RUST_LOG", "info"),),
        hint="see the log for the bind or producer error; rerun `make setup` after changing the sources",
    )


def spec_for(name: ServiceName, *, node_flags: tuple[str, ...] = ()) -> ServiceSpec:
    if name == "node":
        return node_spec(node_flags)
    if name == "rust":
        return rust_spec()
    raise ValueError(f"unknown service {name!r}")


# The images' layouts (stack.images builds them); WORKDIR is /app in both.
IMAGE_WORKDIR = Path("/app")
IMAGE_NODE = "/usr/local/bin/node"
IMAGE_RUST_BINARY = "/app/ingest-rust"
_IMAGE_HINTS = {
    "node": "the Node service is ready once its Kafka producer connected; see its log for "
            "librdkafka errors; the image holds node, server.js and node_modules in /app",
    "rust": "see the log for the bind or producer error; the image holds /app/ingest-rust "
            "(stack.images.ensure_image rebuilds it when the sources change)",
}


def container_spec_for(name: ServiceName, *, image: str, node_flags: tuple[str, ...] = ()) -> ServiceSpec:
    """`name` as its image `image` runs it: the same command and env as natively, with the
    image's paths (node: `/usr/local/bin/node <flags> server.js` in /app; rust:
    `/app/ingest-rust`)."""
    if name == "node":
        argv: tuple[str, ...] = (IMAGE_NODE, *node_flags, "server.js")
        env: tuple[tuple[str, str], ...] = ()
    elif name == "rust":
        argv, env = (IMAGE_RUST_BINARY,), (("RUST_LOG", "info"),)
    else:
        raise ValueError(f"unknown service {name!r}")
    return ServiceSpec(name=name, argv=argv, cwd=IMAGE_WORKDIR, env=env, hint=_IMAGE_HINTS[name],
                       image=image)


def service_env(spec: ServiceSpec, *, port: int, brokers: str) -> dict[str, str]:
    """The variables a service reads: PORT, KAFKA_BROKERS, and its spec's own (RUST_LOG)."""
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
    listening on 127.0.0.1:`port` of the host (host networking)."""

    def __init__(self, spec: ServiceSpec, *, brokers: str, log_dir: Path,
                 cores: tuple[int, ...] | None = None, port: int | None = None,
                 engine: DockerEngine | None = None, stack_id: str | None = None) -> None:
        if spec.image is None:
            raise ValueError(f"{spec.name}: a container service needs a spec with an image "
                             "(container_spec_for)")
        self.spec = spec
        self.port = port or free_port()
        ContainerProcess.__init__(self, spec.name, spec.argv, image=spec.image,
                                  log_path=log_dir / f"{spec.name}.log",
                                  env=service_env(spec, port=self.port, brokers=brokers), cwd=spec.cwd,
                                  cores=cores, endpoint=f"{LOOPBACK}:{self.port}",
                                  labels=container_labels(spec.name, stack_id=stack_id), engine=engine)
        self.ready_s: float | None = None

    def describe(self) -> dict[str, object]:
        # The images hold the host's builds (stack.images copies them): the same versions.
        return {**ContainerProcess.describe(self), "port": self.port,
                "version": service_version(self.spec.name)}


def service_version(name: ServiceName) -> str:
    """Runtime version behind a service: node's `--version`, or the Rust binary's build key."""
    if name == "node":
        return subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
    return f"ingest-rust {artifacts.rust_binary().parent.name}"


# Either runtime's service: what `Stack.service()` returns.
RunningService = ServiceProcess | ContainerService
