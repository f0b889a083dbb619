"""Start-up and footprint probes: how long a fresh service takes to accept its first record,
how much memory it holds once ready, and how many bytes a deployment of it needs.

`cold_start` times what a client sees, not the service's own readiness flag: from the moment
the process is spawned until the first POST /api/ingest is answered 202. The two services mean
different things by that answer (services/README.md): Node answers 202 as soon as the record
is queued in librdkafka, even before the producer has connected; Rust only once Kafka has
acknowledged it, so its first 202 includes connecting to the broker.

`footprint` stands in for the article's container image sizes, which cannot be built here
from a registry's base images: it counts the files a deployment needs on top of a base image.
"""

from __future__ import annotations

import dataclasses
import http.client
import os
import re
import stat
import subprocess
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from ingestlab.config import ServiceName
from ingestlab.load.payloads import PayloadSet
from ingestlab.stack import artifacts
from ingestlab.stack.component import StartupError
from ingestlab.stack.ports import LOOPBACK
from ingestlab.stack.services import INGEST_PATH, ServiceProcess, node_spec, spec_for
from ingestlab.stack.stack import Stack
from ingestlab.telemetry.sampler import ProcMemory

MIB = 1 << 20
# Between attempts while nothing listens yet: the resolution of both start-up times.
POLL_INTERVAL_S = 0.002
# Memory is read this long after the first 202, with no load, so that "at ready" means at
# rest: start-up's transient allocations (module loading, the first connection to Kafka)
# have settled, and the one request served is long done.
SETTLE_S = 1.0

COLD_START_SCHEMA: dict[str, pl.DataType] = {
    "service": pl.String(),
    "run": pl.Int32(),
    "pid": pl.Int64(),
    "spawned_ns": pl.Int64(),          # wall-clock epoch ns of the spawn
    "port_open_ms": pl.Float64(),      # spawn -> first TCP connection accepted
    "cold_start_ms": pl.Float64(),     # spawn -> first 202 to POST /api/ingest
    "posts": pl.Int32(),               # POSTs answered until the first 202 (the 202 included)
    "rss_at_ready_mb": pl.Float64(),   # MiB, SETTLE_S after the first 202
    "uss_at_ready_mb": pl.Float64(),   # MiB, private memory at the same moment
}


class _NotListening(Exception):
    """Nothing accepts connections on the service's port yet."""


def _post(port: int, body: bytes, *, timeout_s: float, on_connect: list[int]) -> int:
    """Status of one POST to the ingest path on a fresh connection.

    Appends the monotonic ns at which the connection was accepted to `on_connect`; raises
    `_NotListening` when the connection is refused.
    """
    conn = http.client.HTTPConnection(LOOPBACK, port, timeout=timeout_s)
    try:
        try:
            conn.connect()
        except ConnectionRefusedError as exc:
            raise _NotListening from exc
        on_connect.append(time.monotonic_ns())
        conn.request("POST", INGEST_PATH, body=body, headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def _poll_until_accepted(service: ServiceProcess, payload: PayloadSet, *,
                         deadline_ns: int) -> tuple[int, int, int]:
    """POST until the first 202: (monotonic ns of the first accepted connection, of the 202,
    POSTs answered)."""
    connects: list[int] = []
    posts = 0
    while True:
        now_ns = time.monotonic_ns()
        if not service.is_running():
            raise StartupError(service.name, "exited before answering 202", logs=service.logs(),
                               hint=service.spec.hint)
        if now_ns > deadline_ns:
            raise StartupError(service.name, "no 202 before the start-up timeout", logs=service.logs(),
                               hint=service.spec.hint)
        try:
            status = _post(service.port, payload.body(posts % len(payload)),
                           timeout_s=(deadline_ns - now_ns) / 1e9, on_connect=connects)
        except _NotListening:
            time.sleep(POLL_INTERVAL_S)
            continue
        posts += 1
        if status == 202:
            return connects[0], time.monotonic_ns(), posts


def _one_cold_start(service: ServiceProcess, run: int, payload: PayloadSet, *,
                    timeout_s: float) -> dict[str, object]:
    """Spawn `service`, poll until the first 202, read its memory at rest; always stop it."""
    try:
        spawned_ns = time.time_ns()
        t0_ns = time.monotonic_ns()
        service.start()
        port_ns, ready_ns, posts = _poll_until_accepted(service, payload,
                                                        deadline_ns=t0_ns + round(timeout_s * 1e9))
        time.sleep(SETTLE_S)
        pid = service.pid
        if pid is None:
            raise StartupError(service.name, "exited right after its first 202", logs=service.logs())
        memory = ProcMemory().read(pid)  # a fresh source reads smaps_rollup on its first call
        return {
            "service": service.name, "run": run, "pid": pid, "spawned_ns": spawned_ns,
            "port_open_ms": (port_ns - t0_ns) / 1e6, "cold_start_ms": (ready_ns - t0_ns) / 1e6,
            "posts": posts, "rss_at_ready_mb": memory.rss_bytes / MIB,
            "uss_at_ready_mb": memory.uss_bytes / MIB if memory.uss_bytes is not None else None,
        }
    finally:
        service.stop()


def cold_start(stack: Stack, service: ServiceName, *, runs: int = 5,
               payload: PayloadSet | None = None) -> pl.DataFrame:
    """Cold-start time and memory at ready of `service`, one row per run (COLD_START_SCHEMA).

    Needs a running `stack` (the broker). Each run spawns a fresh process, pinned like the
    stack's services, and polls POST /api/ingest every POLL_INTERVAL_S (2 ms) while the
    connection is refused; once connected each POST waits for its answer. Times are
    monotonic, in ms from just before the spawn (fork + exec included); the port is seen
    open within ~2 ms of it opening, and the first 202 includes that request's own service
    time (for Rust, the broker's acknowledgement).
    Memory is read SETTLE_S (1 s) after the first 202. Each run's process is stopped
    before the next, also on errors; logs go to `<stack.log_dir>/cold-start/<service>-<run>/`.

    The stack's own instance of the service is stopped for the duration (two instances
    would compete for the core) and, if it was running before, restarted at the end (and
    waited until ready), so the stack is left as it was found.
    `payload` supplies valid bodies (a fresh one per POST, cycled); by default 1 KB ones
    with request ids `cold-<service>-<n>`.
    """
    if runs < 1:
        raise ValueError("runs must be >= 1")
    if payload is None:
        payload = PayloadSet(64, size_bytes=1_000, id_prefix=f"cold-{service}")
    if len(payload) == 0:
        raise ValueError("payload holds no bodies")
    spec = spec_for(service, node_flags=stack.config.node_flags)
    existing = stack.services.get(service)
    was_running = existing is not None and existing.is_running()
    if existing is not None:
        existing.stop()
    rows = []
    try:
        for run in range(runs):
            process = ServiceProcess(spec, brokers=stack.bootstrap,
                                     log_dir=stack.log_dir / "cold-start" / f"{service}-{run}",
                                     cores=stack.config.cores.service)
            rows.append(_one_cold_start(process, run, payload,
                                        timeout_s=stack.config.service_start_timeout_s))
    finally:
        if was_running:
            stack.start_service(service)
    return pl.DataFrame(rows, schema=COLD_START_SCHEMA)


# --- footprint --------------------------------------------------------------------------------
# Shared libraries every glibc-based base image already holds (glibc itself and the GCC
# runtime), so they are not part of what a deployment adds. libstdc++ is not among them:
# distroless/cc-style images do not all ship it.
_BASE_LIBRARY = re.compile(r"^(ld-linux[\w.-]*|lib(c|m|dl|pthread|rt|resolv|util|gcc_s))\.so")
# ldd lines: "libz.so.1 => /lib/x86_64-linux-gnu/libz.so.1 (0x...)", "/lib64/ld-linux-x86-64.so.2
# (0x...)"; "linux-vdso.so.1 (0x...)" is in the kernel and "=> not found" has no file.
_LDD_LINE = re.compile(r"^\s*(?:(\S+)\s+=>\s+)?(/\S+)\s+\(0x[0-9a-f]+\)", re.MULTILINE)


def shared_libraries(binary: Path) -> dict[str, Path]:
    """The shared libraries `binary` loads (soname -> resolved file), from `ldd`."""
    out = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, check=True).stdout
    return parse_ldd(out)


def parse_ldd(output: str) -> dict[str, Path]:
    """soname -> real path of each library with a file in `ldd` output (symlinks resolved)."""
    return {(name or Path(path).name): Path(path).resolve() for name, path in _LDD_LINE.findall(output)}


def tree_bytes(root: Path) -> int:
    """Bytes of the regular files under `root` (apparent sizes, as a tar layer stores them),
    each hard-linked file counted once, symlinks inside not followed."""
    return _tree_bytes(root, seen=set())


def _tree_bytes(root: Path, *, seen: set[tuple[int, int]]) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            st = os.lstat(os.path.join(dirpath, name))
            if stat.S_ISREG(st.st_mode) and (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                total += st.st_size
    return total


def _package_bytes(node_modules: Path) -> dict[str, int]:
    """Bytes per top-level package of `node_modules` (a scope's packages each on their own)."""
    seen: set[tuple[int, int]] = set()
    sizes: dict[str, int] = {}
    for entry in sorted(node_modules.iterdir()):
        packages = sorted(entry.iterdir()) if entry.name.startswith("@") and entry.is_dir() else [entry]
        for package in packages:
            name = str(package.relative_to(node_modules))
            sizes[name] = (_tree_bytes(package, seen=seen) if package.is_dir() and not package.is_symlink()
                           else os.lstat(package).st_size)
    return dict(sorted(sizes.items(), key=lambda item: -item[1]))


@dataclass(frozen=True)
class Part:
    """One file or tree a deployment needs; `base` if any glibc-based base image has it."""

    kind: str  # executable, shared-library, node_modules, source
    name: str
    path: str
    bytes: int
    base: bool = False

    @classmethod
    def of(cls, kind: str, path: Path, size: int | None = None, *, name: str | None = None,
           base: bool = False) -> Part:
        return cls(kind, name or path.name, str(path), path.stat().st_size if size is None else size, base)


def _library_parts(binaries: list[Path], *, inside: Path | None = None) -> list[Part]:
    """One part per distinct library the binaries load, except files under `inside` (counted
    already)."""
    libraries: dict[Path, str] = {}
    for binary in binaries:
        for soname, path in shared_libraries(binary).items():
            if inside is None or not path.is_relative_to(inside):
                libraries.setdefault(path, soname)
    return [Part.of("shared-library", path, name=soname, base=bool(_BASE_LIBRARY.match(soname)))
            for path, soname in sorted(libraries.items(), key=lambda item: item[1])]


def _distinct_files(paths: Iterable[Path]) -> list[Path]:
    """Regular files among `paths`, one per inode (node-gyp hard-links its build outputs)."""
    seen: set[tuple[int, int]] = set()
    distinct = []
    for path in sorted(paths):
        st = path.stat()
        if stat.S_ISREG(st.st_mode) and (st.st_dev, st.st_ino) not in seen:
            seen.add((st.st_dev, st.st_ino))
            distinct.append(path)
    return distinct


def footprint(service: ServiceName) -> dict[str, object]:
    """Bytes a deployment of `service` needs, with a per-part breakdown.

    Rust: the release binary and the shared libraries it links. Node: the `node` executable
    and its shared libraries, node_modules (through its symlink; every file, as `npm ci`
    leaves it, which for node-rdkafka includes librdkafka's sources and build tree), the
    libraries its native addons link from outside node_modules, and the service's sources.

    Returns `service`, `total_bytes`, `total_without_base_bytes` (without the glibc and GCC
    runtime libraries any base image has), `parts` (a list of `Part` as dicts) and
    `packages` (Node: bytes per top-level package, largest first; Rust: empty).
    """
    packages: dict[str, int] = {}
    if service == "rust":
        binary = artifacts.require(artifacts.rust_binary(), "the Rust service binary")
        parts = [Part.of("executable", binary), *_library_parts([binary])]
    elif service == "node":
        executable = Path(node_spec().argv[0]).resolve(strict=True)
        node_modules = (artifacts.NODE_DIR / "node_modules").resolve(strict=True)
        addons = _distinct_files(node_modules.rglob("*.node"))
        packages = _package_bytes(node_modules)
        parts = [
            Part.of("executable", executable),
            *_library_parts([executable, *addons], inside=node_modules),
            Part.of("node_modules", node_modules, tree_bytes(node_modules)),
            *(Part.of("source", artifacts.NODE_DIR / name)
              for name in ("server.js", "package.json", "package-lock.json")),
        ]
    else:
        raise ValueError(f"unknown service {service!r}")
    total = sum(part.bytes for part in parts)
    base = sum(part.bytes for part in parts if part.base)
    return {"service": service, "total_bytes": total, "total_without_base_bytes": total - base,
            "parts": [dataclasses.asdict(part) for part in parts], "packages": packages}
