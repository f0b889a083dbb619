"""The two ingestion services under test, as native processes."""

from __future__ import annotations

import shutil
import subprocess
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from ingestlab.config import ServiceName
from ingestlab.stack import artifacts
from ingestlab.stack.component import wait_until
from ingestlab.stack.ports import LOOPBACK, free_port
from ingestlab.stack.process import NativeProcess

INGEST_PATH = "/api/ingest"
HEALTH_PATH = "/healthz"


@dataclass(frozen=True)
class ServiceSpec:
    """How to launch one service. `argv` is complete; the port and brokers come by env."""

    name: ServiceName
    argv: tuple[str, ...]
    cwd: Path
    env: tuple[tuple[str, str], ...] = ()
    hint: str = ""


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


class ServiceProcess(NativeProcess):
    """A started ingestion service listening on 127.0.0.1:`port`."""

    def __init__(self, spec: ServiceSpec, *, brokers: str, log_dir: Path,
                 cores: tuple[int, ...] | None = None, port: int | None = None) -> None:
        self.spec = spec
        self.port = port or free_port()
        env = {"PORT": str(self.port), "KAFKA_BROKERS": brokers, **dict(spec.env)}
        super().__init__(spec.name, spec.argv, log_path=log_dir / f"{spec.name}.log", env=env,
                         cwd=spec.cwd, cores=cores, endpoint=f"{LOOPBACK}:{self.port}")
        self.ready_s: float | None = None

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
        self.ready_s = wait_until(self.healthy, component=self, timeout_s=timeout_s,
                                  what=f"healthy on {self.url}{HEALTH_PATH}", hint=self.spec.hint)
        return self.ready_s

    def describe(self) -> dict[str, object]:
        return {"argv": list(self.argv), "port": self.port, "cores": self.cores,
                "version": service_version(self.spec.name)}


def service_version(name: ServiceName) -> str:
    """Runtime version behind a service: node's `--version`, or the Rust binary's build key."""
    if name == "node":
        return subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
    return f"ingest-rust {artifacts.rust_binary().parent.name}"
