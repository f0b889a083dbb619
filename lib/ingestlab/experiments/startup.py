"""`startup`: cold start, memory once ready, and deployment footprint of each service.

The broker is started once and kept up; each service is then spawned `config.startup.runs`
times (`cold_start`: spawn to first 202). Footprint (`build.footprint`: bytes a deployment
needs: binary + shared libraries, or node + node_modules + sources) stands in for the
article's container image size until images are built.

`cold_start` times what a client sees, not the service's own readiness flag: from the moment
the process is spawned until the first POST /api/ingest is answered 202. The two services mean
different things by that answer (services/README.md): Node answers 202 as soon as the record
is queued in librdkafka, even before the producer has connected; Rust only once Kafka has
acknowledged it, so its first 202 includes connecting to the broker.
"""

from __future__ import annotations

import http.client
import time

import polars as pl

from ingestlab.build.footprint import footprint
from ingestlab.build.images.store import ensure_image, image_bytes, image_parts
from ingestlab.config import ServiceName, StudyConfig
from ingestlab.host.component import StartupError
from ingestlab.host.ports import LOOPBACK
from ingestlab.host.process import process_tree
from ingestlab.load.payloads import PayloadSet
from ingestlab.names import CONTAINER, IMAGE_FLAVOURS, NATIVE
from ingestlab.quantiles import nearest_rank
from ingestlab.results import Run
from ingestlab.stack import Stack
from ingestlab.stack.services import INGEST_PATH, RunningService
from ingestlab.stack.stack import ContainerRuntime
from ingestlab.summaries import StartupResult, StartupSummary
from ingestlab.telemetry.cgroup import Cgroup
from ingestlab.telemetry.sampler import ProcMemory
from ingestlab.units import MB, MIB, NS_PER_MS, NS_PER_S
from ingestlab.variants import program_of

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
    "rss_at_ready_mib": pl.Float64(),  # SETTLE_S after the first 202, summed over its processes
    "uss_at_ready_mib": pl.Float64(),  # private memory at the same moment
    # the container's memory as its cgroup charges it, same moment (10**6 bytes; null natively)
    "cgroup_mem_at_ready_mb": pl.Float64(),
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


def _poll_until_accepted(service: RunningService, payload: PayloadSet, *,
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
                           timeout_s=(deadline_ns - now_ns) / NS_PER_S, on_connect=connects)
        except _NotListening:
            time.sleep(POLL_INTERVAL_S)
            continue
        posts += 1
        if status == 202:
            return connects[0], time.monotonic_ns(), posts


def _one_cold_start(service: RunningService, run: int, payload: PayloadSet, *,
                    timeout_s: float) -> dict[str, object]:
    """Spawn `service`, poll until the first 202, read its memory at rest; always stop it."""
    try:
        spawned_ns = time.time_ns()
        t0_ns = time.monotonic_ns()
        service.start()
        port_ns, ready_ns, posts = _poll_until_accepted(service, payload,
                                                        deadline_ns=t0_ns + round(timeout_s * NS_PER_S))
        time.sleep(SETTLE_S)
        pid = service.pid
        if pid is None:
            raise StartupError(service.name, "exited right after its first 202", logs=service.logs())
        # the service's every process (a cluster's or Python's workers): a fresh source reads
        # smaps_rollup on its first call
        readings = [ProcMemory().read(p.pid) for p in process_tree(pid)]
        uss = [r.uss_bytes for r in readings]
        charged = (Cgroup.of_pid(pid).read().memory_bytes / MB
                   if getattr(service, "runtime", NATIVE) == CONTAINER else None)
        return {
            "service": service.name, "run": run, "pid": pid, "spawned_ns": spawned_ns,
            "port_open_ms": (port_ns - t0_ns) / NS_PER_MS, "cold_start_ms": (ready_ns - t0_ns) / NS_PER_MS,
            "posts": posts, "rss_at_ready_mib": sum(r.rss_bytes for r in readings) / MIB,
            "uss_at_ready_mib": sum(uss) / MIB if None not in uss else None,
            "cgroup_mem_at_ready_mb": charged,
        }
    finally:
        service.stop()


def cold_start(stack: Stack, service: ServiceName, *, runs: int = 5,
               payload: PayloadSet | None = None) -> pl.DataFrame:
    """Cold-start time and memory at ready of `service`, one row per run (COLD_START_SCHEMA).

    Needs a running `stack` (the broker). Each run starts a fresh instance in the stack's
    runtime (a process, or a container: then from the container's creation, its image
    already built), pinned like the stack's services, and polls POST /api/ingest every
    POLL_INTERVAL_S (2 ms) while the connection is refused; once connected each POST waits
    for its answer. Times are monotonic, in ms from just before the start (native: fork +
    exec included, and the ~2 ms of the launch programs that pin it:
    `host.process.launch_argv`); the port is seen
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
    existing = stack.services.get(service)
    was_running = existing is not None and existing.is_running()
    if existing is not None:
        existing.stop()
    rows = []
    try:
        for run in range(runs):
            log_dir = stack.log_dir / "cold-start" / f"{service}-{run}"
            process = stack.new_service(service, log_dir=log_dir)
            rows.append(_one_cold_start(process, run, payload,
                                        timeout_s=stack.config.stack.service_start_timeout_s))
    finally:
        if was_running:
            stack.start_service(service)
    return pl.DataFrame(rows, schema=COLD_START_SCHEMA)


def _images(runtime: object, service: ServiceName) -> dict[str, dict[str, object]]:
    """`service`'s image of each flavour (tag, bytes, parts) when the stack runs containers;
    {} in the native runtime (no engine is started for it)."""
    if not isinstance(runtime, ContainerRuntime):
        return {}
    engine = runtime.engine
    found = {}
    for flavour in IMAGE_FLAVOURS:
        tag = ensure_image(engine, program_of(service), flavour)  # a variant runs its program's image
        found[flavour] = {"tag": tag, "bytes": image_bytes(engine, tag), "parts": image_parts(engine, tag)}
    return found


def startup(config: StudyConfig) -> Run:
    """Cold starts of each service in `config.services` (cold_starts.parquet), in
    `config.runtime`; with the container runtime also the size of each service's images, both
    flavours (bytes as the engine reports them, with their parts). Summary: `StartupSummary`."""
    run = Run.create(config, "startup")
    frames = []
    with Stack(config, services=(), log_dir=run.logs_dir) as stack:
        for service in config.services:
            frames.append(cold_start(stack, service, runs=config.startup.runs))
        run.update_meta(stack=stack.describe())
    runs = pl.concat(frames)
    run.write_frame("cold_starts", runs)
    results: dict[str, StartupResult] = {}
    for service in config.services:
        mine = runs.filter(service=service)
        stats = mine.select(
            cold_start_ms=pl.col("cold_start_ms").median(),
            cold_start_min_ms=pl.col("cold_start_ms").min(),
            cold_start_max_ms=pl.col("cold_start_ms").max(),
            cold_start_p90_ms=nearest_rank(pl.col("cold_start_ms"), 0.9),
            port_open_ms=pl.col("port_open_ms").median(),
            rss_at_ready_mib=pl.col("rss_at_ready_mib").median(),
            uss_at_ready_mib=pl.col("uss_at_ready_mib").median(),
            cgroup_mem_at_ready_mb=pl.col("cgroup_mem_at_ready_mb").median(),
        ).row(0, named=True)
        size = footprint(service)
        images = _images(stack.runtime, service)
        flavour = config.stack.image_flavour if images else None
        results[service] = StartupResult(
            **stats,
            cold_start_runs=mine.height,
            footprint_bytes=size["total_bytes"],
            footprint_without_base_bytes=size["total_without_base_bytes"],
            footprint_parts=size["parts"],
            runtime=config.runtime,
            image_flavour=flavour,
            image_bytes=images[flavour]["bytes"] if flavour else None,
            images=images,
        )
    run.write_summary(StartupSummary(services=results))
    return run
