"""Where the built services and broker jars live, and how `make setup` builds them.

Expensive outputs live outside the work tree, under `~/.cache/ingestlab` (or
`$INGESTLAB_CACHE`), keyed by the files that determine them, so a fresh clone (CI) reuses
them and a changed lock file rebuilds:

- Kafka jars:  kafka/<hash of infra/kafka/pom.xml>/*.jar
- Node deps:   node/<hash of package-lock.json + node version>/node_modules, linked
               into services/node/node_modules (node-rdkafka's compiled librdkafka lives there)
- Rust binaries: rust/<hash of Cargo.toml, Cargo.lock, src/>/<name>, for the Rust service and
               the delay server, built with a shared cargo target dir (cargo-target/) so
               dependency crates compile once.
- Tools:       tools/oha-<version>/bin/oha (cargo install --locked)
- Images:      the container images, built from the above into the workbook's own Docker
               engine (state in docker/; jlink JRE, Debian minbase root and build contexts in
               images/; build.images, engine.docker_engine)

`ingestlab build` (called by `make setup`) builds whatever is missing (`build.builders`).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

from ingestlab.host.component import ArtifactMissing
from ingestlab.paths import PROJECT_ROOT, cache_root

NODE_DIR = PROJECT_ROOT / "services" / "node"
RUST_DIR = PROJECT_ROOT / "services" / "rust"
PYTHON_DIR = PROJECT_ROOT / "services" / "python"
KAFKA_DIR = PROJECT_ROOT / "infra" / "kafka"
# The broker's log4j2 config: the native broker's, and (same file name) its image's.
KAFKA_LOG4J = KAFKA_DIR / "log4j2.properties"
DELAY_SERVER_DIR = PROJECT_ROOT / "infra" / "delay-server"
RUST_BINARY_NAME = "ingest-rust"
OHA_VERSION = "1.16.0"
SETUP_HINT = "run `make setup` to build the services and fetch the broker"


def _digest(paths: Iterable[Path], extra: str = "") -> str:
    h = hashlib.sha256(extra.encode())
    for p in sorted(paths):
        h.update(str(p.relative_to(PROJECT_ROOT)).encode())
        h.update(p.read_bytes())
    return h.hexdigest()[:16]


def _tool_version(argv: list[str]) -> str:
    return subprocess.run(argv, capture_output=True, text=True, check=True).stdout.strip()


# --- locations ------------------------------------------------------------------------------
def kafka_libs_dir() -> Path:
    return cache_root() / "kafka" / _digest([KAFKA_DIR / "pom.xml"])


def node_modules_dir() -> Path:
    key = _digest([NODE_DIR / "package-lock.json"], extra=_tool_version(["node", "--version"]))
    return cache_root() / "node" / key / "node_modules"


def _crate_binary(crate_dir: Path, name: str) -> Path:
    sources = [crate_dir / "Cargo.toml", crate_dir / "Cargo.lock", *(crate_dir / "src").rglob("*.rs")]
    return cache_root() / "rust" / _digest(sources) / name


def rust_binary() -> Path:
    """The Rust ingestion service, built from the current sources."""
    return _crate_binary(RUST_DIR, RUST_BINARY_NAME)


def delay_server_binary() -> Path:
    """The fixed-delay reference endpoint (infra/delay-server)."""
    return _crate_binary(DELAY_SERVER_DIR, "delay-server")


def oha_root() -> Path:
    return cache_root() / "tools" / f"oha-{OHA_VERSION}"


def node_executable() -> str:
    """The `node` the Node service runs with natively: the one on PATH (its name if none)."""
    return shutil.which("node") or "node"


def python_interpreter() -> Path:
    """The Python service's interpreter natively: this one (the project's environment holds
    aiohttp and confluent-kafka, environment.yml)."""
    return Path(sys.executable)


def require(path: Path, what: str) -> Path:
    """`path` if it exists, else `ArtifactMissing` with the set-up hint."""
    if not path.exists():
        raise ArtifactMissing(f"{what} not found at {path}: {SETUP_HINT}")
    return path


def kafka_classpath() -> str:
    libs = require(kafka_libs_dir(), "Kafka broker jars")
    return str(libs / "*")


def kafka_version() -> str:
    """Version of the kafka_2.13 jar on the classpath, e.g. "4.1.1"."""
    jars = sorted(require(kafka_libs_dir(), "Kafka broker jars").glob("kafka_2.13-*.jar"))
    if not jars:
        raise ArtifactMissing(f"no kafka_2.13 jar in {kafka_libs_dir()}: {SETUP_HINT}")
    return jars[0].stem.removeprefix("kafka_2.13-")


# --- builders -------------------------------------------------------------------------------
def _run(argv: list[str], cwd: Path, env: dict[str, str] | None = None) -> None:
    print(f"  $ {' '.join(argv)}  (in {cwd})", flush=True)
    subprocess.run(argv, cwd=cwd, env={**os.environ, **(env or {})}, check=True)


def _publish(staging: Path, final: Path) -> None:
    """Move a finished build into place; a concurrent identical build may have won."""
    final.parent.mkdir(parents=True, exist_ok=True)
    try:
        staging.rename(final)
    except OSError:
        if not final.exists():
            raise
        shutil.rmtree(staging, ignore_errors=True)


def _staging(final: Path) -> Path:
    path = final.parent / f".{final.name}.{os.getpid()}.partial"
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


# The build steps build.images reuses: print and run a command, build into a
# staging directory beside the final one, move it into place.
def run(argv: list[str], cwd: Path, env: dict[str, str] | None = None) -> None:
    """Print `argv` and run it in `cwd`; raises CalledProcessError if it fails."""
    _run(argv, cwd, env)


def staging_dir(final: Path) -> Path:
    """An empty directory beside `final` to build it in (this process's own)."""
    return _staging(final)


def publish(staging: Path, final: Path) -> None:
    """Move a finished build from `staging` to `final` (a concurrent identical build may have
    won: then `staging` is removed)."""
    _publish(staging, final)


def build_kafka() -> Path:
    final = kafka_libs_dir()
    if final.exists():
        return final
    staging = _staging(final)
    _run(["mvn", "-q", "-B", "-f", str(KAFKA_DIR / "pom.xml"), "dependency:copy-dependencies",
          "-DincludeScope=runtime", f"-DoutputDirectory={staging}"], cwd=KAFKA_DIR)
    _publish(staging, final)
    return final


def build_node() -> Path:
    final = node_modules_dir()
    if not final.exists():
        staging = _staging(final.parent)
        for name in ("package.json", "package-lock.json"):
            shutil.copy2(NODE_DIR / name, staging / name)
        # --foreground-scripts: node-rdkafka compiles librdkafka in its install script.
        _run(["npm", "ci", "--no-audit", "--no-fund", "--foreground-scripts"], cwd=staging)
        require(staging / "node_modules" / "node-rdkafka" / "build" / "Release" / "node-librdkafka.node",
                "node-rdkafka's native module (its install script did not build it)")
        _publish(staging, final.parent)
    link = NODE_DIR / "node_modules"
    if link.is_symlink() or link.exists():
        if link.resolve() == final.resolve():
            return final
        if link.is_symlink():
            link.unlink()
        else:
            shutil.rmtree(link)
    link.symlink_to(final, target_is_directory=True)
    return final


def _build_crate(crate_dir: Path, final: Path) -> Path:
    if final.exists():
        return final
    target_dir = cache_root() / "cargo-target"
    _run(["cargo", "build", "--release", "--locked"], cwd=crate_dir,
         env={"CARGO_TARGET_DIR": str(target_dir)})
    staging = _staging(final.parent)
    shutil.copy2(target_dir / "release" / final.name, staging / final.name)
    _publish(staging, final.parent)
    return final


def build_rust() -> Path:
    return _build_crate(RUST_DIR, rust_binary())


def build_delay_server() -> Path:
    return _build_crate(DELAY_SERVER_DIR, delay_server_binary())


def build_oha() -> Path:
    """oha, the native open-loop generator (about 3.5 min to compile on 2 cores)."""
    final = oha_root() / "bin" / "oha"
    if final.exists():
        return final
    staging = _staging(oha_root())
    _run(["cargo", "install", "oha", "--version", OHA_VERSION, "--locked", "--root", str(staging)],
         cwd=PROJECT_ROOT, env={"CARGO_TARGET_DIR": str(cache_root() / "cargo-install-target")})
    _publish(staging, oha_root())
    return final
