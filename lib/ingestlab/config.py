"""Study configuration: one immutable object passed explicitly to everything that runs.

No module reads global settings: a notebook builds a `StudyConfig` in its parameters cell and
hands it down, so rerunning a cell with other values cannot leak into another run.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from ingestlab.names import CONTAINER, IMAGE_FLAVOURS, MINIMAL, RUNTIMES, ImageFlavour, Runtime
from ingestlab.variants import ARTICLE_SERVICES, SERVICES, ServiceName

Profile = Literal["test", "quick", "full"]
PROFILES: tuple[Profile, ...] = ("test", "quick", "full")


def machine_cores() -> set[int]:
    """The machine's CPU numbers: what a child may be pinned to, whatever this process's own
    affinity (a study keeps its own process on the load cores)."""
    return set(range(os.cpu_count() or 1))


@dataclass(frozen=True)
class CoreLayout:
    """Which CPU cores each part of a run may use (Linux CPU numbers).

    On the 2-core study machine the service under test gets a core of its own (1) and the
    broker and load engine share the other (0), so the service's CPU is not stolen by the
    things that measure it.
    """

    service: tuple[int, ...] = (1,)
    broker: tuple[int, ...] = (0,)
    load: tuple[int, ...] = (0,)
    # The load generators' nice value. They share core 0 with the broker, whose JVM runs
    # dozens of threads: at equal priority the scheduler left the engine waiting for its core
    # (20-54% of a step measured here, send lag p99 past 5 ms at 1,000 req/s). At -10 the
    # instrument keeps its schedule and the broker gets the rest of the core.
    load_nice: int = -10

    def validate(self, available: set[int] | None = None) -> None:
        """Raise ValueError if a role has no core or names a core this machine does not have."""
        usable = available if available is not None else machine_cores()
        for role in ("service", "broker", "load"):
            cores = getattr(self, role)
            if not cores:
                raise ValueError(f"core layout: role {role!r} has no cores")
            missing = set(cores) - usable
            if missing:
                raise ValueError(
                    f"core layout: role {role!r} names cores {sorted(missing)}, "
                    f"but only {sorted(usable)} are available on this machine"
                )

    def as_dict(self) -> dict[str, object]:
        return {role: list(value) if isinstance(value, tuple) else value
                for role, value in dataclasses.asdict(self).items()}


# Core layouts by name; a run made in a named layout records the name (`core_layout` in its
# meta) beside the cores, which every run records.
# "service-both-cores": the service may run on either core (the article's 2-core row); the
# broker and the load engine stay on core 0 as in the default layout. So the one thing that
# changes is the service's freedom: whatever competes with it does so on core 0 only, where it
# is measured, and core 1 holds nothing else of the study's. Giving the broker both cores too
# would put its JVM's threads beside the service on core 1 and leave no core the service has
# to itself; moving the engine there would cost its schedule (see `load_nice`).
CORE_LAYOUTS: dict[str, CoreLayout] = {
    "default": CoreLayout(),
    "service-both-cores": CoreLayout(service=(0, 1), broker=(0,), load=(0,)),
}


@dataclass(frozen=True)
class StackConfig:
    """The broker and the services as the stack starts them."""

    partitions: int = 3
    kafka_heap_mib: int = 512  # the JVM's -Xms/-Xmx
    broker_start_timeout_s: float = 90.0
    service_start_timeout_s: float = 60.0
    # --trace-gc: one log line per V8 collection (telemetry.gc_trace parses them);
    # --max-old-space-size: the article's 1.5 GB cap ("to prevent OOM crashes").
    node_flags: tuple[str, ...] = ("--trace-gc", "--max-old-space-size=1536")
    # After the load stops: how long to wait for the last records to show up in Kafka.
    readback_timeout_s: float = 30.0
    # The images the container runtime runs (ignored by the native runtime).
    image_flavour: ImageFlavour = MINIMAL
    # > 0: every service prints its memory parts (librdkafka's queue, Node's V8 heap) every
    # this many ms (INGESTLAB_MEMORY_REPORT_MS, services/README.md "Memory reports");
    # 0 = off, the article's programs unchanged. The study asks for them at 1 Hz: the memory
    # claims are answered by the part that grew (analysis.memory_parts).
    memory_report_ms: int = 1_000

    def __post_init__(self) -> None:
        if self.partitions < 1:
            raise ValueError("partitions must be >= 1")
        if self.image_flavour not in IMAGE_FLAVOURS:
            raise ValueError(f"image_flavour must be one of {IMAGE_FLAVOURS}, got {self.image_flavour!r}")


@dataclass(frozen=True)
class LoadConfig:
    """What every load step shares: the bodies, the warm-up, the engines' connections."""

    # Payloads: the article speaks of ~10 KB JSON documents.
    payload_bytes: int = 10_000
    # Requests intended in the first `warmup_s` of a step are recorded but left out of the
    # analysis. The pool (= connections = most requests in flight) is sized per step as
    # rate x the p99 bound, between these limits: the engine's cost grows with its
    # connections, so a pool far larger than the step needs costs throughput.
    warmup_s: float = 1.0
    engine_pool_min: int = 32
    engine_pool_max: int = 1024
    # During a study the broker shares the load core with the engine and takes CPU in
    # proportion to the rate: a step gives an engine a rate only where, in the calibration,
    # the engine needed at most this much of the core (%); the broker has the rest. An
    # engine's CPU is not proportional to its rate (the asyncio engine: 39% at 4,000 req/s,
    # 97% at 40,000), so the budget is read off the measured curve, not scaled from the max.
    # A step the asyncio engine still cannot drive is repeated with oha.
    engine_cpu_budget_pct: float = 50.0
    # wrk is closed loop: its rate is bounded by connections / latency (Little), and Rust
    # answers only after Kafka acknowledged (>= queue.buffering.max.ms = 10 ms), so it needs many.
    wrk_connections: int = 256


@dataclass(frozen=True)
class SmokeConfig:
    """The smoke burst: requests per service, how many deliberately invalid, in flight."""

    requests: int = 200
    invalid: int = 20
    concurrency: int = 16

    def __post_init__(self) -> None:
        if not 0 <= self.invalid <= self.requests:
            raise ValueError("smoke: invalid must be between 0 and requests")


@dataclass(frozen=True)
class CalibrationConfig:
    """The rig's own experiments.

    latency-accuracy: a fixed 5 ms endpoint at `accuracy_rate_rps`. engine-capacity: the
    highest rate each engine holds on schedule on the load core against nginx's `return 202`
    (a rate search: doubling, halving, bisection to `resolution`), `repeats` times for the
    asyncio engine, each step `step_s` long; it calibrates the rig on the machine it runs on
    (see experiments.steps.EngineLimits). The stall test pauses the engine for `stall_ms` at
    `stall_fraction` of its own measured maximum. Recovery can be no shorter than
    stall x f / (1 - f) (the backlog over the headroom): 0.8 s for 200 ms at 0.8, so the 1 s
    goal asks the engine to catch up at close to its measured maximum (with 400 ms the floor
    is 1.6 s, which no engine running at its maximum can beat).
    """

    accuracy_rate_rps: int = 1_000
    accuracy_duration_s: float = 30.0
    start_rps: int = 4_000
    native_start_rps: int = 16_000
    cap_rps: int = 256_000
    resolution: float = 1.15
    step_s: float = 5.0
    repeats: int = 3
    stall_fraction: float = 0.8
    stall_ms: float = 200.0


@dataclass(frozen=True)
class CeilingConfig:
    """A rate search per service: start, doubling until a step fails, halving when the first
    fails, then bisection until the limit is known within `resolution`; each step `step_s`
    long. Before the search each fresh service is loaded at half the start rate for
    `warmup_s`, unjudged (start-up transients are not the service's limit).

    No single step decides: a step that failed or was inconclusive with a sign of a stall of
    the machine (`analysis.stalls`) is repeated up to `stall_repeats` times; a search that
    still ends on an inconclusive step below `rig_bound_share` of the most any engine drives
    here (a stall, not the rig's reach) is run again up to `search_repeats` times."""

    start_rps: int = 1_000
    floor_rps: int = 50
    cap_rps: int = 64_000
    resolution: float = 1.1
    p99_bound_ms: float = 100.0
    warmup_s: float = 5.0
    step_s: float = 10.0
    stall_repeats: int = 2
    search_repeats: int = 1
    rig_bound_share: float = 0.5


@dataclass(frozen=True)
class SoakConfig:
    """A constant rate held for `duration_s`, the same for both services.

    The article held 10,000 req/s for 72 h, above what Node holds on one core here; with
    `rate_rps` None the soak runs at `rate_fraction` of the slower service's ceiling measured
    on this machine (chosen once per study from its conclusive ceilings,
    `inputs.comparison_rates`), so latency and memory are compared at a rate both hold. A
    fresh broker answers its first produce requests slowly (Rust, which waits for the
    acknowledgement, took 0.5 s per request for the first 2 s of a quick soak):
    requests intended in the first `warmup_s` are recorded but left out of the numbers. The
    service is sampled every `sample_interval_s` (RSS, PSS/USS, CPU per thread).
    """

    rate_rps: int | None = None
    rate_fraction: float = 0.5
    duration_s: float = 120.0
    warmup_s: float = 5.0
    sample_interval_s: float = 0.1
    # The threads' CPU and the open fds every this many seconds (memory and the process's CPU
    # every `sample_interval_s`): reading every thread at 10 Hz took the sampler past its 1%
    # budget (telemetry.sampler.ProcessSampler, threads_every).
    thread_interval_s: float = 0.5
    # A hold whose load generator saturated is held again, at most this many times.
    saturation_repeats: int = 2
    # Connections = requests the engine keeps in flight: enough for `in_flight_s` of the rate,
    # so that a pause of the service (a GC, a broker hiccup) shorter than that queues at the
    # service, not in the generator. With the ceiling's 100 ms a 133 ms pause of Node at
    # 2,000 req/s left every worker busy and the send lag p99 at 134 ms (quick soak, here).
    in_flight_s: float = 0.5
    # A hold longer than this is held as consecutive engine runs ("segments") of at most this
    # long, in one sampler, each segment's request rows written to disk and dropped, so the
    # rig's memory does not grow with the hold (`experiments.segments.plan_segments`); a hold of
    # at most this long is one engine run, as always.
    segment_s: float = 60.0


@dataclass(frozen=True)
class ContractsConfig:
    """Every service held at one rate (`experiments.contracts`), to compare promises.

    1,000 req/s is under every service's ceiling measured here (quick ceilings in containers,
    one core each: node-cluster 2,000 req/s the lowest, node and node-acked 3,000, python and
    python-enqueue 4,000, rust at least 16,000), so each answers at its own pace rather than
    queueing; requests intended in the first `warmup_s` are left out, as in the soak.
    """

    rate_rps: int = 1000
    duration_s: float = 30.0
    warmup_s: float = 3.0


@dataclass(frozen=True)
class CpuCoresConfig:
    """CPU per core with the service free to use both cores (`experiments.cpu_cores`).

    The article's row ("CPU Core Distribution (2 Cores)": Node 100% / 12%, Rust 44% / 41% at a
    sustained 10,000 req/s) needs a service that may use both cores: the run uses
    `CORE_LAYOUTS[layout]`, whatever the study's own layout. 10,000 req/s is beyond Node on
    this machine, so the rate is one both services hold: `rate_fraction` of the slower
    service's ceiling, chosen once per study from its conclusive ceilings as the soak's
    (`inputs.comparison_rates`; high, because the article's Node row is a saturated event
    loop), or `rate_rps` if set. Per service one broker, then `trials` trials, each on a
    freshly started service: `warmup_s` of load left out, then `duration_s` measured, with
    the service's threads sampled every `sample_interval_s` (CPU time and the core each last
    ran on), the broker's every `broker_interval_s` (pinned to one core, it needs no finer
    sampling), and every core's busy time (/proc/stat) every `sample_interval_s`.
    """

    layout: str = "service-both-cores"
    rate_rps: int | None = None
    rate_fraction: float = 0.8
    trials: int = 5
    # A trial whose load generator saturated is run again, at most this many times per trial.
    saturation_repeats: int = 2
    duration_s: float = 30.0
    warmup_s: float = 5.0
    sample_interval_s: float = 0.1
    broker_interval_s: float = 0.5
    # requests in flight, as the soak's (`SoakConfig.in_flight_s`)
    in_flight_s: float = 0.5

    def __post_init__(self) -> None:
        if self.layout not in CORE_LAYOUTS:
            raise ValueError(f"cpu_cores: layout must be one of {sorted(CORE_LAYOUTS)}, got {self.layout!r}")
        if self.trials < 1:
            raise ValueError("cpu_cores: trials must be >= 1")


# The faults of `experiments.faults`, in the order they are injected into each service's stack
# (shutdown last: it ends the service).
FaultName = Literal["pause", "kill", "slow", "queue_full", "shutdown"]
FAULTS: tuple[FaultName, ...] = ("pause", "kill", "slow", "queue_full", "shutdown")


@dataclass(frozen=True)
class FaultsConfig:
    """Broker faults under a constant load, one service at a time (`experiments.faults`).

    Every fault but `queue_full` is one open-loop run at `rate_rps` with the article's 10 KB
    bodies: `before_s` of normal service, the fault, then `after_s` to recover. `rate_rps` is
    meant to be far under both services' ceilings (the run states its share of the slower
    one's in the newest ceiling run here), so what the runs show is the fault, not overload. The client
    gives up on a request after `request_timeout_s`: far above either service's answers at
    this rate (milliseconds), so a timeout means the fault held the request.

    - pause: the broker's process tree SIGSTOPped for `fault_s`, then SIGCONT.
    - kill: SIGKILL, `kill_down_s` with no broker, then a restart on the same data dir and
      ports (its time is the broker's own; the run lasts as long as the first start took plus
      Kafka's broker session timeout and librdkafka's longest reconnect backoff on top, so
      the restart and the producers' return fit).
    - slow: for `fault_s` the path between service and broker (a proxy, `stack.slow_link`) adds
      `slow_delay_ms` each way and carries at most `slow_bandwidth_share` of the body bytes
      the load offers per second.
    - queue_full: librdkafka's queue (both services: `queue.buffering.max.messages` =
      `queue_messages`) filled while the broker is paused: `queue_fill_rps` with
      `queue_body_bytes` bodies (the limit counts messages; small bodies fill it at a tenth
      of the memory), a client giving up after `queue_fill_timeout_s` (Rust answers only
      once Kafka acknowledged, so only abandoned requests can fill its queue), then
      `queue_probe_requests` probes with a client that waits `queue_probe_timeout_s` (longer
      than Rust's 5 s wait for room in a full queue), in rounds (`experiments.faults`); the
      broker resumed, and `after_s` at `rate_rps`. The service sets how fast its queue
      fills: Node took 45-80 s here, so the quick profile leaves this fault out.
    - shutdown: SIGTERM to the service `before_s` into the run, which lasts `fault_s` more;
      the service must exit with 0 within `shutdown_bound_s`.
    """

    faults: tuple[FaultName, ...] = FAULTS
    rate_rps: int = 500
    before_s: float = 5.0
    fault_s: float = 15.0
    after_s: float = 20.0
    request_timeout_s: float = 2.0
    kill_down_s: float = 2.0
    slow_delay_ms: float = 100.0
    slow_bandwidth_share: float = 0.5
    queue_messages: int = 100_000
    queue_fill_rps: int = 5_000
    queue_fill_timeout_s: float = 0.1
    queue_body_bytes: int = 1_000
    queue_probe_requests: int = 10
    queue_probe_timeout_s: float = 8.0
    shutdown_bound_s: float = 10.0
    sample_interval_s: float = 0.1

    def __post_init__(self) -> None:
        unknown = set(self.faults) - set(FAULTS)
        if unknown or not self.faults:
            raise ValueError(f"faults must be a non-empty subset of {FAULTS}, got {self.faults!r}")


@dataclass(frozen=True)
class StartupConfig:
    """Cold starts per service (spawn to first 202, broker already up)."""

    runs: int = 10


@dataclass(frozen=True)
class BadInputConfig:
    """The bad-input corpus (`load.bad_input`) against each service.

    Every wait is bounded: a case's whole exchange by `answer_timeout_s` (the services answer a
    stalled upload 408 after 5 s, Node checking its timers every 0.5 s), a /healthz probe after
    each case by `health_timeout_s`. A valid request follows every `valid_probe_every` cases
    (and the last), to show the service still accepts.
    """

    answer_timeout_s: float = 8.0
    health_timeout_s: float = 2.0
    valid_probe_every: int = 1

    def __post_init__(self) -> None:
        if self.valid_probe_every < 1:
            raise ValueError("bad_input: valid_probe_every must be >= 1")


@dataclass(frozen=True)
class OverloadConfig:
    """Rates held above a service's ceiling (`experiments.overload`), one fresh stack per
    service and rate.

    The rates: each of `ceiling_factors` times the service's ceiling (the study's newest
    ceiling run for it here, measured first if there is none), and each of `absolute_rps`
    (the article's soak held 10,000 req/s). Each is held for `duration_s`; requests
    intended in the first `warmup_s` are recorded, kept in the ledger and left out of the
    rates. The asyncio engine drives every rate (its request ids match each record in Kafka
    to what its client was told) with at most `max_in_flight` requests outstanding: above the
    ceiling the service answers slower than requests come, and a slot that finds every
    worker busy for over a second is dropped by the client instead of joining a backlog that
    would grow without bound. The client gives up on an answer after `request_timeout_s`.
    A leg's requests (rate x duration) may not exceed `max_requests`: the engine keeps one row
    per request in memory.
    """

    ceiling_factors: tuple[float, ...] = (1.5,)
    absolute_rps: tuple[int, ...] = (10_000,)
    duration_s: float = 120.0
    warmup_s: float = 5.0
    request_timeout_s: float = 2.0
    max_in_flight: int = 1024
    sample_interval_s: float = 0.1
    max_requests: int = 2_000_000

    def __post_init__(self) -> None:
        if not (self.ceiling_factors or self.absolute_rps):
            raise ValueError("overload: needs at least one rate (ceiling_factors or absolute_rps)")
        if any(f <= 1 for f in self.ceiling_factors):
            raise ValueError(f"overload: ceiling_factors must be > 1 (above the ceiling), "
                             f"got {self.ceiling_factors}")
        if any(r <= 0 for r in self.absolute_rps):
            raise ValueError(f"overload: absolute_rps must be > 0, got {self.absolute_rps}")
        if not 0 <= self.warmup_s < self.duration_s:
            raise ValueError("overload: warmup_s must be >= 0 and shorter than duration_s")
        if self.max_in_flight < 1 or self.request_timeout_s <= 0:
            raise ValueError("overload: max_in_flight must be >= 1 and request_timeout_s > 0")


@dataclass(frozen=True)
class BacklogConfig:
    """Kafka slower than the intake for minutes (`experiments.backlog`), one fresh stack per
    service, the load (the study's soak rate, which each service holds while Kafka keeps up)
    open loop throughout.

    `warmup_s` of unjudged load (a fresh broker answers its first produce requests slowly, a
    fresh service compiles its hot paths), `before_s` with Kafka keeping up; then for `slow_s`
    the broker takes from the producer at
    most `quota_share` of the body bytes the load offers per second (a producer byte-rate
    client quota, `producer_byte_rate`: Kafka throttles the producer by delaying its
    answers), so the producer's queue grows by about (1 - `quota_share`) x the rate per
    second; then the quota is lifted and `drain_s` more of the same load shows the drain.
    After the load the service runs on, up to `flush_wait_s`, until Kafka holds every record
    it accepted and the topic stops growing (its queue drained), and only then is stopped: a
    SIGTERM with a backlog would lose what its flush timeout leaves (28,339 202s of Node's in
    a run here that stopped it with 50,000 messages queued).
    The quota is set and lifted through Kafka's Admin API from a JVM started before the load
    (`stack.kafka.QuotaShell`; a change took 0.04-0.6 s here): the load runs
    `quota_command_budget_s` longer per change, so the drain keeps its length.
    The client gives up on an answer after `request_timeout_s` (as overload's and the
    faults'), with enough workers that every request can be held that long
    (rate x timeout + slack): the clients keep arriving whatever the service does. The
    service is sampled every `sample_interval_s` (RSS, CPU, the cgroup's charge). A service's
    requests (rate x its whole load) may not exceed `max_requests`: the engine keeps one row
    per request in memory. `memory_limit_mb` (10**6 bytes; None: no limit): the service's
    container gets that memory limit, swap included (`memswap_limit` equal), the container
    runtime only.
    """

    # a fresh broker on this machine's busy core acknowledged slowly for the first 20-30 s here
    warmup_s: float = 30.0
    before_s: float = 30.0
    slow_s: float = 300.0
    drain_s: float = 120.0
    quota_share: float = 0.5
    quota_command_budget_s: float = 1.0
    request_timeout_s: float = 2.0
    sample_interval_s: float = 0.5
    max_requests: int = 2_000_000
    memory_limit_mb: int | None = None
    flush_wait_s: float = 300.0

    def __post_init__(self) -> None:
        if min(self.before_s, self.slow_s, self.drain_s) <= 0 or self.warmup_s < 0:
            raise ValueError("backlog: before_s, slow_s and drain_s must be > 0, warmup_s >= 0")
        if not 0 < self.quota_share < 1:
            raise ValueError(f"backlog: quota_share must be between 0 and 1, got {self.quota_share}")
        if (self.request_timeout_s <= 0 or self.sample_interval_s <= 0 or self.quota_command_budget_s < 0
                or self.flush_wait_s < 0):
            raise ValueError("backlog: request_timeout_s and sample_interval_s must be > 0, "
                             "quota_command_budget_s and flush_wait_s >= 0")
        if self.memory_limit_mb is not None and self.memory_limit_mb <= 0:
            raise ValueError(f"backlog: memory_limit_mb must be > 0 or None, got {self.memory_limit_mb}")

    @property
    def load_s(self) -> float:
        """The length of one service's load (s): its stages and the quota's two changes."""
        return self.warmup_s + self.before_s + self.slow_s + self.drain_s + 2 * self.quota_command_budget_s


@dataclass(frozen=True)
class ReporterCostConfig:
    """What the memory reports cost (`experiments.reporter_cost`): `pairs` pairs of contracts
    runs at `contracts.rate_rps`, reports off and on, `duration_s` measured each (after the
    contracts' warm-up); `idle_pairs` pairs of stacks at rest, `idle_s` each. At least 2 pairs
    of each: an interval needs two."""

    pairs: int = 4
    duration_s: float = 20.0
    idle_pairs: int = 4
    idle_s: float = 30.0

    def __post_init__(self) -> None:
        if min(self.pairs, self.idle_pairs) < 2 or min(self.duration_s, self.idle_s) <= 0:
            raise ValueError(f"reporter_cost: need pairs and idle_pairs >= 2, duration_s and idle_s > 0, "
                             f"got {self.pairs}, {self.idle_pairs}, {self.duration_s}, {self.idle_s}")


# Each part of a StudyConfig that is a config of its own, by field name.
_PARTS: dict[str, type] = {
    "stack": StackConfig, "load": LoadConfig, "smoke": SmokeConfig, "calibration": CalibrationConfig,
    "ceiling": CeilingConfig, "soak": SoakConfig, "startup": StartupConfig, "bad_input": BadInputConfig,
    "faults": FaultsConfig, "contracts": ContractsConfig, "overload": OverloadConfig,
    "cpu_cores": CpuCoresConfig, "backlog": BacklogConfig, "reporter_cost": ReporterCostConfig,
}
# The profiles, as data: what each changes from the defaults (a dict per part it changes).
_QUICK: dict[str, object] = {
    "trials": 3,
    "max_trials": 5,
    "compared_services": ("node", "rust", "node-acked", "rust-enqueue"),
    "measure_variants": False,
    "smoke": {"requests": 60, "invalid": 6},
    "load": {"warmup_s": 0.5},
    "calibration": {"accuracy_duration_s": 5.0, "step_s": 2.0, "resolution": 1.3, "repeats": 1},
    "ceiling": {"resolution": 1.5, "step_s": 2.0, "warmup_s": 2.0},
    # a fresh broker's slow first 2 s stay in the warm-up
    "soak": {"duration_s": 12.0, "warmup_s": 3.0},
    "startup": {"runs": 3},
    "bad_input": {"valid_probe_every": 10},
    # queue_full is left out: its fill alone took 45-80 s per service here (see FaultsConfig);
    # kill too: its restart waits out the broker's 9 s session (35-40 s per service; the
    # integration tests kill and restart a broker under load)
    "faults": {"faults": ("pause", "slow", "shutdown"), "before_s": 2.0, "fault_s": 3.0,
               "after_s": 5.0, "kill_down_s": 1.0},
    "contracts": {"duration_s": 5.0, "warmup_s": 2.0},
    # the article's rate only (no ceiling to find first), 6 s: node and rust in under a minute
    "overload": {"ceiling_factors": (), "duration_s": 6.0, "warmup_s": 1.0},
    # 3 trials: what a claim's interval needs (analysis.claims.MIN_TRIALS)
    "cpu_cores": {"trials": 3, "duration_s": 3.0, "warmup_s": 1.0},
    # the queue grows for 30 s, not to librdkafka's caps (about 2 minutes per service here)
    "backlog": {"warmup_s": 3.0, "before_s": 5.0, "slow_s": 30.0, "drain_s": 15.0, "flush_wait_s": 30.0},
    "reporter_cost": {"pairs": 2, "duration_s": 5.0, "idle_pairs": 2, "idle_s": 10.0},
}
# The notebook tests' (`make test`): the quick profile, shorter wherever a notebook's checks
# still hold: ceilings to within 2x (no bisection), half-length holds, no look beyond the
# claims' 3 trials. The backlog keeps the quick one's 30 s slow stage: with 20 s at 250 req/s
# Kafka's quota (which throttles after the fact) did not slow Rust's records at all here.
_TEST: dict[str, object] = {
    "max_trials": 3,
    "calibration": {"accuracy_duration_s": 3.0, "step_s": 1.5},
    # no step above 16,000 req/s (a service that holds it is bound by the cap: the test checks
    # the search, not Rust's reach; such a step's records alone took seconds to read back)
    "ceiling": {"resolution": 2.0, "step_s": 1.5, "warmup_s": 1.0, "cap_rps": 16_000},
    "soak": {"duration_s": 6.0, "warmup_s": 2.0},
    # the faults notebook 07's checks hold the services to (the slow link is integration-tested)
    "faults": {"faults": ("pause", "shutdown"), "before_s": 1.0, "fault_s": 2.0, "after_s": 3.0},
    "contracts": {"duration_s": 3.0, "warmup_s": 1.0},
    "overload": {"duration_s": 4.0},
    "cpu_cores": {"duration_s": 2.0},
    "backlog": {"warmup_s": 2.0, "before_s": 4.0, "drain_s": 8.0},
}


def _merged(base: dict[str, object], changes: dict[str, object]) -> dict[str, object]:
    """`base` with `changes`, a part's dict merged into the part's."""
    return base | {key: base[key] | value if isinstance(value, dict) and isinstance(base.get(key), dict)
                   else value for key, value in changes.items()}


PROFILE_CHANGES: dict[Profile, dict[str, object]] = {
    "full": {}, "quick": _QUICK, "test": _merged(_QUICK, _TEST),
}


@dataclass(frozen=True)
class StudyConfig:
    """Everything a run depends on: the study's own fields, and one small config per part
    (`stack`, `load`, and one per experiment). Units are in the field names.

    Use `StudyConfig.for_profile("quick")` for tests and smoke checks (seconds) and
    `"full"` for the real study (minutes). `for_profile` and `replace` take a part's changes
    as a dict, merged into it: `config.replace(ceiling={"step_s": 5.0})`.
    """

    profile: Profile = "full"
    # Any of variants.SERVICES; the study's default is the article's two.
    services: tuple[ServiceName, ...] = ARTICLE_SERVICES
    cores: CoreLayout = field(default_factory=CoreLayout)
    # Native processes or containers (the same broker, services and pinning either way).
    runtime: Runtime = CONTAINER
    seed: int = 1
    # The study a run belongs to (`ingestlab study` makes one with results.new_study_id);
    # the claims then use only that study's runs. None: no study.
    study_id: str | None = None
    runs_dir: Path = Path("data/runs")
    # The claims table: runs of ceiling and soak per claim (each one trial of each service), at
    # least `trials`, and up to `max_trials` while a row's verdict is in doubt
    # (analysis.claims.SequentialPlan).
    trials: int = 5
    max_trials: int = 8
    # Notebook 06's (language or design) services when it names none, and whether it measures
    # the ceilings and cold starts of those without one in the study: the full study compares
    # all seven; the quick look the article's two and their promise-matched twins, from the
    # contracts runs alone (each variant's ceiling is a search of its own).
    compared_services: tuple[ServiceName, ...] = SERVICES
    measure_variants: bool = True
    stack: StackConfig = field(default_factory=StackConfig)
    load: LoadConfig = field(default_factory=LoadConfig)
    smoke: SmokeConfig = field(default_factory=SmokeConfig)
    calibration: CalibrationConfig = field(default_factory=CalibrationConfig)
    ceiling: CeilingConfig = field(default_factory=CeilingConfig)
    soak: SoakConfig = field(default_factory=SoakConfig)
    startup: StartupConfig = field(default_factory=StartupConfig)
    bad_input: BadInputConfig = field(default_factory=BadInputConfig)
    faults: FaultsConfig = field(default_factory=FaultsConfig)
    contracts: ContractsConfig = field(default_factory=ContractsConfig)
    overload: OverloadConfig = field(default_factory=OverloadConfig)
    cpu_cores: CpuCoresConfig = field(default_factory=CpuCoresConfig)
    backlog: BacklogConfig = field(default_factory=BacklogConfig)
    reporter_cost: ReporterCostConfig = field(default_factory=ReporterCostConfig)

    def __post_init__(self) -> None:
        if self.profile not in PROFILES:
            raise ValueError(f"profile must be one of {PROFILES}, got {self.profile!r}")
        for name in ("services", "compared_services"):
            chosen = getattr(self, name)
            if set(chosen) - set(SERVICES) or not chosen:
                raise ValueError(f"{name} must be a non-empty subset of {SERVICES}, got {chosen!r}")
        if self.runtime not in RUNTIMES:
            raise ValueError(f"runtime must be one of {RUNTIMES}, got {self.runtime!r}")
        if not 3 <= self.trials <= self.max_trials:
            raise ValueError(f"need 3 <= trials <= max_trials, got {self.trials} and {self.max_trials}")

    @classmethod
    def for_profile(cls, profile: Profile, **overrides: object) -> StudyConfig:
        """The defaults of a profile (PROFILE_CHANGES), with `overrides` as in `replace`
        (e.g. `services=("rust",)`, `soak={"duration_s": 10.0}`)."""
        if profile not in PROFILE_CHANGES:
            raise ValueError(f"profile must be one of {PROFILES}, got {profile!r}")
        return cls(profile=profile).replace(**PROFILE_CHANGES[profile]).replace(**overrides)

    def replace(self, **changes: object) -> StudyConfig:
        """A copy with `changes`; a part's changes may be a dict, merged into that part."""
        merged = {
            name: dataclasses.replace(getattr(self, name), **value)
            if name in _PARTS and isinstance(value, dict) else value
            for name, value in changes.items()
        }
        return dataclasses.replace(self, **merged)  # type: ignore[arg-type]

    def as_dict(self) -> dict[str, object]:
        """JSON-ready form, recorded in every run's meta.json."""
        return _json_ready(dataclasses.asdict(self))


def _json_ready(value: object) -> object:
    if isinstance(value, dict):
        return {name: _json_ready(item) for name, item in value.items()}
    if isinstance(value, tuple | list):
        return [_json_ready(item) for item in value]
    return str(value) if isinstance(value, Path) else value
