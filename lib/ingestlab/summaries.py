"""Typed run summaries: one frozen dataclass per experiment (per service where it measures
each service), written and read by one function pair, `dump_summary` and `load_summary`,
under a schema version, as pyperf keeps its result files.

A run's summary.json is an envelope around the summary:

```
{"schema_version": 2, "run_id": ..., "experiment": ..., "summary": {...}, "warnings": [...]}
```

Field names end in their unit (`ingestlab.units`). Readers use attributes
(`run.summary.services["node"].rss_mean_mib`), so a renamed field fails where it is read,
not silently as a missing dict key.

History of the summary schema (`SUMMARY_VERSION`):

1. Bare dicts written by each experiment (to 2026-11-30); per-service summaries at the top
   level beside shared keys; memory in MiB under names ending in `_mb`; `rust_over_node`
   stored by soak and startup.
2. This module. Per-service summaries under `services`; memory in MiB ends in `_mib`
   (`rss_mean_mib`, `rss_at_ready_mib`, `heap_peak_mib`, ...), `_mb` means 10**6 bytes
   only; Rust/Node ratios are computed on reading (`PerService.rust_over_node`), not stored;
   the claims summary keeps its rows under `claims`. Version-1 runs are not read (they
   are skipped by the run catalogue, as runs of another schema).
3. Optional fields for the container runtime: soak `runtime`, `cgroup_mem_mean_mb`,
   `cgroup_mem_peak_mb` (10**6 bytes, the container's memory as its cgroup charges it);
   startup `runtime`, `image_flavour`, `image_bytes`, `images` (per flavour: tag, bytes,
   parts). Version-2 summaries are still read (the new fields take their defaults).
   Startup `cgroup_mem_at_ready_mb` (the container's cgroup memory once ready, 10**6 bytes).
   Engine-capacity `stall_recovery_floor_s` (the shortest recovery the engine's measured
   maximum allows, see `analysis.engine_health`); absent in older runs.
   The `bad-input` summary (a new experiment; no field of another summary changed).
   The `faults` experiment's summary (`FaultsSummary`), a new type: no existing field changed.
4. Service names beyond the article's two (`ingestlab.variants`: node-acked, rust-enqueue,
   node-cluster, python, python-enqueue) may key `services`. Soak `e2e_p50_ms`, `e2e_p99_ms`
   (intended send to the record's append time in Kafka, `analysis.e2e`), `cpu_per_request_us`,
   `processes`; its RSS is now the sum over the service's processes. New summaries: the
   `contracts`, `overload` and `cpu-cores` experiments'. Versions 2 and 3 are still read (the new fields
   take defaults).
5. No single step decides a trial: ceiling `bound_by` ("rig" | "stall" | None), `searches`,
   `repeated_steps` (and per step `search`, `repeated`, `stall_signs`); soak `attempts`,
   `repeated_because`, `memory_parts` (also contracts'); cpu-cores `repeated_trials`. A new
   derived summary, `rates` (the
   study's comparison rates, chosen once). Versions 2-4 are still read (a lower bound there has
   `bound_by` None: `CeilingResult.is_ceiling` is False for it all the same).
   The `backlog` experiment's summary (`BacklogSummary`, per service `BacklogResult`), a new
   type: no existing field changed.
   Soak (and contracts) memory trends and long holds: `rss_slope_mib_per_h`,
   `rss_slope_ci_mib_per_h`, `rss_slope_window_s`, `memory_part_slopes`; `segments`,
   `segment_s`, `segment_gap_s`, `segment_gap_share`, `segments_saturated`,
   `last_segment_only`; `rig_rss_peak_mib`, `engine_rss_peak_mib`, `rig_rss_growth_mib`
   (all with defaults: older soaks read as one engine run without a trend).
   The `reporter-cost` experiment's summary (`ReporterCostSummary`), a new type.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, Literal, TypeVar

import dacite

from ingestlab.names import CONTAINER, NATIVE

SUMMARY_VERSION = 5
# Versions this code reads: each newer one only added fields with defaults.
READABLE_VERSIONS = frozenset({2, 3, 4, 5})
_DACITE = dacite.Config(strict=True, cast=[float])


class SummaryFormatError(ValueError):
    """A summary.json this version of ingestlab cannot read (other schema, unknown fields)."""


def rust_over_node(values: Mapping[str, Mapping[str, Any]], fields: Sequence[str]) -> dict[str, float]:
    """Rust / Node for each of `fields` of per-service values (`{"node": {...}, "rust": {...}}`);
    a field missing, None or zero on either side is left out."""
    if not {"node", "rust"} <= values.keys():
        return {}
    node, rust = values["node"], values["rust"]
    return {name: rust[name] / node[name] for name in fields if node.get(name) and rust.get(name) is not None}


S = TypeVar("S")


@dataclass(frozen=True)
class PerService(Generic[S]):
    """Mixin of summaries holding one `S` per service, under `services`."""

    services: dict[str, S]
    # the type of each service's summary (S), and its fields a Rust/Node ratio is reported for
    RESULT: ClassVar[type]
    RATIO_FIELDS: ClassVar[tuple[str, ...]] = ()

    def rust_over_node(self) -> dict[str, float]:
        values = {name: dataclasses.asdict(s) for name, s in self.services.items()}  # type: ignore[call-overload]
        return rust_over_node(values, self.RATIO_FIELDS)


# --- smoke --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DeliveryCounts:
    """One service's smoke burst (requests): `analysis.delivery.COUNT_COLUMNS`."""

    sent: int
    accepted: int
    rejected: int
    failed: int
    delivered: int
    lost: int
    duplicated: int
    unexpected: int


@dataclass(frozen=True)
class SmokeSummary(PerService[DeliveryCounts]):
    EXPERIMENT: ClassVar[str] = "smoke"
    RESULT: ClassVar[type] = DeliveryCounts


# --- latency-accuracy and engine-capacity (the rig) ---------------------------------------------
@dataclass(frozen=True)
class LatencyAccuracySummary:
    """The engine against a fixed-delay endpoint: measured percentiles vs the known delay (ms)."""

    EXPERIMENT: ClassVar[str] = "latency-accuracy"
    target_ms: float
    p50_ms: float | None
    p99_ms: float | None
    max_ms: float | None
    rate_rps: float
    body_bytes: int
    goal: dict[str, Any]
    step: dict[str, Any]


@dataclass(frozen=True)
class EngineCapacitySummary:
    """The rig's calibration: what each engine holds on the load core (req/s), the asyncio
    engine's share of wrk's closed-loop rate, and its recovery from a stall (s)."""

    EXPERIMENT: ClassVar[str] = "engine-capacity"
    engine_max_rps: float | None
    engine_max_rps_per_repeat: list[float | None]
    engine_lag_p99_ms: float | None
    engine_cpu_pct_at_max: float | None
    engine_pool: int
    engine_share_of_wrk: float | None
    wrk_rps: float
    wrk_errors: int
    wrk_connections: int
    native_max_rps: float | None
    native_engine: str
    native_connections: int
    body_bytes: int
    repeats: int
    stall_ms: float
    stall_rate_rps: float | None
    stall_recovery_s: float | None
    stall_dropped: int | None
    goal: dict[str, Any]
    stall_recovery_floor_s: float | None = None


# --- ceiling ------------------------------------------------------------------------------------
# What ended a search that found only a lower bound: the rig's reach, or a stall of the machine
# below it (`experiments.ceiling.bound_kind`).
BoundKind = Literal["rig", "stall"]


@dataclass(frozen=True)
class CeilingResult:
    """One service's rate search: its ceiling (req/s; None: no rate held), whether that is
    only a lower bound (the search ended on a step the rig could not drive) and what bound it
    (`bound_by`), how many searches and repeated steps it took, and wrk's closed-loop
    cross-check."""

    ceiling_rps: float | None
    ceiling_lower_bound: bool
    first_failing_rps: float | None
    search: str
    engine: str | None
    p99_bound_ms: float
    wrk_rps: float
    wrk_errors: int
    wrk_connections: int
    wrk_p99_ms: float | None
    wrk_lost: int
    steps: list[dict[str, Any]]
    # None: the limit was found (or, in a run before schema 5, not recorded; see `is_ceiling`)
    bound_by: BoundKind | None = None
    searches: int = 1
    repeated_steps: int = 0

    @property
    def is_ceiling(self) -> bool:
        """A limit the search found: a rate held, and no bound of the rig or a stall."""
        return bool(self.ceiling_rps) and not self.ceiling_lower_bound

    @property
    def stalled(self) -> bool:
        """The trial ended on a stall of the machine: no ceiling, no bound, left out."""
        return self.bound_by == "stall"


@dataclass(frozen=True)
class CeilingSummary(PerService[CeilingResult]):
    EXPERIMENT: ClassVar[str] = "ceiling"
    RESULT: ClassVar[type] = CeilingResult
    RATIO_FIELDS: ClassVar[tuple[str, ...]] = ("ceiling_rps", "wrk_rps")
    engine_limits: dict[str, Any] = field(default_factory=dict)


# --- soak ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SoakResult:
    """One service held at the soak rate: memory (MiB) and its pattern, latency (ms), the
    delivery ledger, the sampler's own cost, CPU; the GC fields only for Node."""

    rate_rps: float
    duration_s: float
    engine: str
    rss_start_mib: float
    rss_mean_mib: float
    rss_peak_mib: float
    rss_amplitude_mib: float
    memory_pattern: str
    memory_period_s: float | None
    memory_bounds: dict[str, Any]
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    achieved_rps: float | None
    error_rate: float
    accepted: int
    delivered: int
    lost: int
    engine_saturated: bool
    engine_notes: list[str]
    sampler_overhead_core_pct: float
    sampler_mean_interval_s: float | None
    cpu_by_thread: list[dict[str, Any]]
    cpu_by_core: list[dict[str, Any]]
    gc_events: int | None = None
    gc_pause_p99_ms: float | None = None
    gc_pause_max_ms: float | None = None
    gc_time_share: float | None = None
    gc_events_by_kind: dict[str, int] | None = None
    p99_outside_gc_ms: float | None = None
    share_of_slow_requests_during_gc: float | None = None
    share_of_requests_during_gc: float | None = None
    heap_pattern: str | None = None
    heap_mean_mib: float | None = None
    heap_peak_mib: float | None = None
    heap_period_s: float | None = None
    heap_growth_per_1000_requests_mib: float | None = None
    gc_unparsed_lines: int | None = None
    gc_warnings: list[str] | None = None
    runtime: str = NATIVE
    cgroup_mem_mean_mb: float | None = None
    cgroup_mem_peak_mb: float | None = None
    # From the intended send to the record's append time in Kafka (analysis.e2e), ms.
    e2e_p50_ms: float | None = None
    e2e_p99_ms: float | None = None
    # CPU time of all the service's processes per accepted request (us); processes sampled.
    cpu_per_request_us: float | None = None
    processes: int = 1
    # The memory's parts (`analysis.memory_parts.parts_summary`: each part's mean and peak in
    # MiB, the queue's peak in messages, the part that grew most and the one largest at RSS's
    # peak); None when the service printed no memory reports.
    memory_parts: dict[str, Any] | None = None
    # Holds made (> 1: the load generator saturated in the earlier ones, each said why).
    attempts: int = 1
    repeated_because: list[str] = field(default_factory=list)
    # The trend over the steady state (`analysis.memory.memory_slope`: the measured phase less
    # its first 20%): RSS summed over the service's processes, MiB per hour, with its 95%
    # interval [low, high], fitted on means of `rss_slope_window_s` (a minute, or a tenth of a
    # shorter soak); None: too few windows.
    rss_slope_mib_per_h: float | None = None
    rss_slope_ci_mib_per_h: list[float] | None = None
    rss_slope_window_s: float | None = None
    # The same per memory part (`analysis.memory_parts.part_slopes`: part -> slope_mib_per_h,
    # ci_mib_per_h); None without memory reports.
    memory_part_slopes: dict[str, Any] | None = None
    # A hold longer than `SoakConfig.segment_s` is held as `segments` engine runs of
    # `segment_s` each (`experiments.segments.plan_segments`); between two, no load is offered
    # while one engine process ends and the next starts: `segment_gap_s` in all (s), and its
    # share of the hold; segments whose load generator saturated. None: one engine run.
    segments: int = 1
    segment_s: float | None = None
    segment_gap_s: float | None = None
    segment_gap_share: float | None = None
    segments_saturated: int | None = None
    # The fields measured over the last segment only in a segmented hold (e2e latency, the
    # requests' overlap with GC pauses, heap growth per request); empty: the whole hold.
    last_segment_only: list[str] = field(default_factory=list)
    # The rig's own memory over a segmented hold (`telemetry.rig_memory`), MiB: the measuring
    # process's peak RSS, the largest load engine process's, and how much the measuring
    # process's RSS grew from the end of the first segment to the end of the last.
    rig_rss_peak_mib: float | None = None
    engine_rss_peak_mib: float | None = None
    rig_rss_growth_mib: float | None = None


@dataclass(frozen=True)
class SoakSummary(PerService[SoakResult]):
    EXPERIMENT: ClassVar[str] = "soak"
    RESULT: ClassVar[type] = SoakResult
    RATIO_FIELDS: ClassVar[tuple[str, ...]] = ("rss_mean_mib", "rss_start_mib", "p99_ms",
                                               "cgroup_mem_mean_mb")
    rate_rps: float = 0.0
    rate_source: str = ""
    engine_limits: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ContractsSummary(PerService[SoakResult]):
    """Every service held at one rate (`experiments.contracts`): a soak's fields per service."""

    EXPERIMENT: ClassVar[str] = "contracts"
    RESULT: ClassVar[type] = SoakResult
    RATIO_FIELDS: ClassVar[tuple[str, ...]] = ("p50_ms", "p99_ms", "e2e_p50_ms", "e2e_p99_ms", "rss_mean_mib",
                                               "cpu_per_request_us")
    rate_rps: float = 0.0
    duration_s: float = 0.0


# --- startup ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class StartupResult:
    """One service's cold starts (ms; median unless named), memory once ready (MiB, median)
    and deployment footprint (bytes, with a per-part breakdown)."""

    cold_start_ms: float
    cold_start_min_ms: float
    cold_start_max_ms: float
    cold_start_p90_ms: float
    port_open_ms: float
    rss_at_ready_mib: float
    uss_at_ready_mib: float | None
    cold_start_runs: int
    footprint_bytes: int
    footprint_without_base_bytes: int
    footprint_parts: list[dict[str, Any]]
    runtime: str = NATIVE
    image_flavour: str | None = None
    image_bytes: int | None = None
    images: dict[str, dict[str, Any]] = field(default_factory=dict)
    cgroup_mem_at_ready_mb: float | None = None


@dataclass(frozen=True)
class StartupSummary(PerService[StartupResult]):
    EXPERIMENT: ClassVar[str] = "startup"
    RESULT: ClassVar[type] = StartupResult
    RATIO_FIELDS: ClassVar[tuple[str, ...]] = ("cold_start_ms", "rss_at_ready_mib", "footprint_bytes",
                                               "image_bytes")


# --- bad-input ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class BadInputResult:
    """One service against the bad-input corpus: cases sent and their verdicts
    (`analysis.bad_input`: violations, crashes); the delivery ledger of every request it
    answered 202 (the cases and the valid probes between them; `analysis.delivery`:
    `unexpected` is a record of a request the client saw refused); whether the 1 MiB boundary
    body reached Kafka; the TCP addresses its process listened on (`host.exposure`)."""

    cases: int
    violations: int
    crashes: int
    accepted: int
    delivered: int
    lost: int
    duplicated: int
    unexpected: int
    boundary_delivered: bool
    listen_addresses: list[str]


@dataclass(frozen=True)
class BadInputSummary(PerService[BadInputResult]):
    """Per service a `BadInputResult`; and the largest record batch (bytes) the run's topic
    took (`stack.topic.max_message_bytes`)."""

    EXPERIMENT: ClassVar[str] = "bad-input"
    RESULT: ClassVar[type] = BadInputResult
    topic_max_message_bytes: int | None = None


# --- faults -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FaultOutcome:
    """One fault injected under load into one service's path to the broker
    (`experiments.faults`): what the client was told, what Kafka holds, how long the service
    took to recover and its memory.

    Requests: `sent` (every slot of the fault's load runs), `accepted` (202), `errors_4xx`,
    `errors_5xx` (and any other answer that is not 202), `timeouts` (no answer within the
    client's timeout), `no_answer` (connection refused or reset, or dropped by the client as
    too late to send); `statuses`: requests per status code ("0": no answer). Ledger, from
    the topic read back once the service had stopped (its producer flushed): `lost`
    (accepted, no record), `delivered_after_error` (not accepted, yet a record: the client
    saw an error or gave up, the service produced it anyway), `duplicated` (records beyond
    the first per request). `start_s`: the fault's start, s after its load began (about 0 for
    `queue_full`, which pauses the broker as its fill starts);
    `duration_s`: from injection to its end (resumed, restarted and answering, link
    cleared, queue drained of the pause, process exited). `recovery_s`: from the end of the
    fault to the first second from which every second has 202s >= 95% of the offered
    requests and no errors (whole seconds; None: not within the run, or no load after it).
    `p99_before_ms`, `p99_during_ms`: the p99 latency (from the intended start, answered
    requests) of the requests intended before the fault and during it. `rss_before_mib`:
    the service's RSS just before the fault; `rss_peak_mib`: its highest from the fault's
    start to the end of its load. Shutdown only: `exit_code`, `exit_s` (SIGTERM to exit, a
    container's removal included). Kill only: `restart_s` (the broker's restart until it
    answered and led every partition).
    """

    start_s: float
    duration_s: float
    sent: int
    accepted: int
    errors_4xx: int
    errors_5xx: int
    timeouts: int
    no_answer: int
    statuses: dict[str, int]
    lost: int
    delivered_after_error: int
    duplicated: int
    recovery_s: float | None
    p99_before_ms: float | None
    p99_during_ms: float | None
    rss_before_mib: float | None
    rss_peak_mib: float | None
    exit_code: int | None = None
    exit_s: float | None = None
    restart_s: float | None = None


@dataclass(frozen=True)
class FaultsResult:
    """One service's faults, by name (`config.FAULTS`), at `rate_rps` (req/s) with a client
    that waits `request_timeout_s` (s)."""

    rate_rps: float
    request_timeout_s: float
    faults: dict[str, FaultOutcome]


@dataclass(frozen=True)
class FaultsSummary(PerService[FaultsResult]):
    """`rate_source`: how the rate relates to the services' ceilings here; `slow_link`: what
    the slow fault did to the path (`delay_ms` each way, `bandwidth_bytes_per_s`);
    `queue_full`: how the queue was filled (messages, rate, body bytes, client timeouts)."""

    EXPERIMENT: ClassVar[str] = "faults"
    RESULT: ClassVar[type] = FaultsResult
    rate_source: str = ""
    slow_link: dict[str, Any] = field(default_factory=dict)
    queue_full: dict[str, Any] = field(default_factory=dict)


# --- overload -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class OverloadRate:
    """One rate held on one fresh service (`experiments.overload`).

    The rate: `offered_rps` (req/s), how it was chosen (`rate_source`), its share of the
    service's ceiling here (`share_of_ceiling`; None: no ceiling run), for `duration_s`,
    with a client that waits `request_timeout_s` and keeps at most `max_in_flight` requests
    outstanding. Requests of the measured phase (after the warm-up): `offered` (slots),
    `sent`, `achieved_rps` (202s per second: what the service took), `sent_rps` (what the
    engine sent per second), `error_rate` (sent requests answered other than 202, or refused
    or reset), `timeout_rate` (sent requests unanswered within the timeout), `dropped_rate`
    (slots the client dropped, every worker busy: of `offered`), `p99_ms` (answered, from the
    intended start). Memory (MiB) of the service's own process: `rss_start_mib` (at rest once
    ready), mean and peak over the load and `memory_pattern` ("flat", "sawtooth" or
    "irregular", `analysis.memory.memory_pattern`; `memory_period_s` for a sawtooth); for a
    Node program the V8 heap's (`heap_*`, from its GC trace) and GC pauses; in a container
    its cgroup's charge (`cgroup_mem_*_mb`, 10**6 bytes). The ledger, over every request of
    the leg, from the topic read back after the service stopped (its producer flushed):
    `accepted`, `delivered`, `accepted_not_delivered` (202, no record),
    `delivered_after_client_error` (no 202: an error, a timeout or no answer, yet a record),
    `duplicated` (records beyond the first per request). `engine_saturated`/`engine_notes`:
    the engine's own report (above the ceiling it is behind schedule by design: every
    worker waits on the service); `generator_limited`/`generator_notes`: the engine itself
    could not hold the rate (its CPU, or late sends while workers were free), so
    `achieved_rps` is a bound set by the client, not the service.
    """

    offered_rps: float
    rate_source: str
    share_of_ceiling: float | None
    duration_s: float
    request_timeout_s: float
    max_in_flight: int
    offered: int
    sent: int
    achieved_rps: float | None
    sent_rps: float | None
    error_rate: float
    timeout_rate: float
    dropped_rate: float
    p99_ms: float | None
    rss_start_mib: float
    rss_mean_mib: float
    rss_peak_mib: float
    memory_pattern: str
    memory_period_s: float | None
    accepted: int
    delivered: int
    accepted_not_delivered: int
    delivered_after_client_error: int
    duplicated: int
    engine_saturated: bool
    engine_notes: list[str]
    generator_limited: bool
    generator_notes: list[str]
    runtime: str = NATIVE
    heap_pattern: str | None = None
    heap_mean_mib: float | None = None
    heap_peak_mib: float | None = None
    heap_period_s: float | None = None
    gc_pause_max_ms: float | None = None
    gc_time_share: float | None = None
    cgroup_mem_mean_mb: float | None = None
    cgroup_mem_peak_mb: float | None = None


@dataclass(frozen=True)
class OverloadResult:
    """One service's rates, keyed by the offered rate as a whole number of req/s ("10000"),
    and the ceiling they were judged against (`ceiling_rps`, req/s; None: no ceiling run
    here) with where it came from (`ceiling_source`)."""

    ceiling_rps: float | None
    ceiling_source: str
    rates: dict[str, OverloadRate]


@dataclass(frozen=True)
class OverloadSummary(PerService[OverloadResult]):
    """`ceiling_factors` and `absolute_rps`: the rates asked for (`config.OverloadConfig`)."""

    EXPERIMENT: ClassVar[str] = "overload"
    RESULT: ClassVar[type] = OverloadResult
    ceiling_factors: list[float] = field(default_factory=list)
    absolute_rps: list[float] = field(default_factory=list)
# --- cpu-cores ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class CoreShare:
    """One of the service's cores by `role` ("busiest", "other": ranked in each trial by the
    service's share), means over the trials, in % of that core: the service's share, what the
    broker, the load engine and the rest (the measuring process, interrupts, other users)
    used on it, its busy time in all (/proc/stat), and the time the hypervisor took (steal)."""

    role: str
    service_pct: float
    broker_pct: float
    load_pct: float
    rest_pct: float
    busy_pct: float
    steal_pct: float


@dataclass(frozen=True)
class GroupShare:
    """The service's threads of one group (`analysis.cpu_cores.thread_groups`) on the core of
    `role`: % of that core, the mean over the trials."""

    role: str
    group: str
    core_pct: float


@dataclass(frozen=True)
class CpuCoresResult:
    """One service free to use both cores at `rate_rps` (req/s), `trials` trials of
    `duration_s` (s) each on a fresh process: its busiest and other core (% of that core;
    mean, and per trial with the busiest core's number), its CPU in all (% of one core), per
    core role what else used the core (`by_role`) and its threads by group (`by_group`); the
    load held (answers, latency in ms, delivery by count, summed or worst over the trials),
    the sampler's own cost (% of one core, the highest of the trials), and the cores the
    service's processes were allowed to run on (their CPU affinity, over all trials: a
    container inherits its engine's, which may be narrower than the layout)."""

    rate_rps: float
    duration_s: float
    trials: int
    busiest_core_pct: float
    other_core_pct: float | None
    busiest_core_pct_per_trial: list[float]
    other_core_pct_per_trial: list[float]
    busiest_core_per_trial: list[int]
    service_total_pct: float
    by_role: list[CoreShare]
    by_group: list[GroupShare]
    achieved_rps: float | None
    error_rate: float
    p99_ms: float | None
    accepted: int
    delivered: int
    lost: int
    engine: str
    engine_saturated: bool
    engine_notes: list[str]
    sampler_overhead_core_pct: float
    allowed_cores: list[int]
    runtime: str = NATIVE
    # Trials run again because their load generator saturated (each with why); the flagged
    # ones are not among the per-trial values.
    repeated_trials: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class CpuCoresSummary(PerService[CpuCoresResult]):
    """Per service a `CpuCoresResult`; the rate (req/s) and how it was chosen; the core layout
    by name (`config.CORE_LAYOUTS`) and its cores; the engine limits used, if any."""

    EXPERIMENT: ClassVar[str] = "cpu-cores"
    RESULT: ClassVar[type] = CpuCoresResult
    RATIO_FIELDS: ClassVar[tuple[str, ...]] = ("busiest_core_pct", "other_core_pct", "service_total_pct")
    rate_rps: float = 0.0
    rate_source: str = ""
    layout: str = ""
    layout_cores: dict[str, Any] = field(default_factory=dict)
    engine_limits: dict[str, Any] = field(default_factory=dict)


# --- backlog ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class BacklogResult:
    """One service while Kafka was slower than its intake (`experiments.backlog`), on a fresh
    stack, at `rate_rps` (req/s) throughout, with a client that waits `request_timeout_s`
    (s) and keeps at most `max_in_flight` requests outstanding.

    The stages as they ran (s), after an unjudged warm-up: `before_s` (Kafka keeping up),
    `slow_s` (the producer quota `quota_bytes_per_s` in force, from its command's return to
    the return of the one lifting it, which took `quota_set_s` and `quota_cleared_s`),
    `drain_s` (the load after it). Per stage (`warmup`, `before`, `slow`, `drain`) the mean
    per second of what was `offered`, `accepted`
    (202s) and `delivered` (records Kafka appended) and their bytes (`per_stage`), and the
    share of the time V8 paused the service for collections (`gc_time_share`; Node only);
    `throttled_bytes_per_s`: the record bytes Kafka appended per second in the slow stage once
    its quota's 11-s measuring window held only throttled seconds (None: the stage was shorter).
    After the load the service runs on until Kafka holds what it accepted: `flushed_s` (s after
    the load's end until the topic last grew; None: not within `flush_wait_s`, or it stopped
    short: a dead service) and `rss_flushed_mib`, its RSS then (None: it had died).
    Times of events are seconds after the slowdown began: the queue at one of librdkafka's
    caps (`cap_reached_s`; None: never), which (`cap_reached`: "messages" or "bytes"), the
    queue then (`cap_messages`, `cap_mib`) and the caps (`queue_messages_max`,
    `queue_bytes_max_mib`); errors began (`errors_began_s`: the first second with over 1% of
    the offered requests not answered 202; `errors_5xx_began_s`, `timeouts_began_s`: of 5xx
    answers, of timeouts alone); the queue back to its level before
    (`drained_s`, s after the quota was lifted; None: not within the run). Memory (MiB):
    `rss_before_mib`, `rss_peak_mib` at `rss_peak_s`, the part holding the most of it then
    (`largest_at_peak`, `analysis.memory_parts.PARTS`), `rss_end_mib` (the last 5 s of the
    load) and the share of the growth given back by then (`rss_returned_share`), the queue's
    and V8's peaks, the cgroup's charge (`cgroup_mem_peak_mb`, 10**6 bytes). Requests over
    the whole run: `offered`, `accepted`, `errors_5xx`, `timeouts`, `no_answer`, `dropped`
    (never sent: every worker busy); `p99_before_ms`, `p99_slow_ms` (answered requests by
    intended start). The ledger, from the topic read back after the service stopped:
    `delivered`, `lost` (202, no record), `delivered_after_error` (no 202, yet a record),
    `duplicated`, and per stage (`ledger_by_stage`). A memory limit (`memory_limit_mb`, 10**6
    bytes; None: none) and how the service ended: `died_s` (its process ended on its own;
    None: it ran to the end), `exit_code`, `oom_killed` (the container's OOM kill: its
    limit reached), `queue_messages_at_death` (the last report before it).
    """

    rate_rps: float
    request_timeout_s: float
    max_in_flight: int
    quota_bytes_per_s: float
    before_s: float
    slow_s: float
    drain_s: float
    quota_set_s: float
    quota_cleared_s: float
    per_stage: dict[str, dict[str, float]]
    cap_reached_s: float | None
    cap_reached: str | None
    cap_messages: int | None
    cap_mib: float | None
    queue_messages_max: int | None
    queue_bytes_max_mib: float | None
    errors_began_s: float | None
    drained_s: float | None
    rss_start_mib: float
    rss_before_mib: float | None
    rss_peak_mib: float | None
    rss_peak_s: float | None
    largest_at_peak: str | None
    rss_end_mib: float | None
    rss_returned_share: float | None
    queue_peak_messages: int | None
    queue_peak_mib: float | None
    heap_used_peak_mib: float | None
    heap_total_peak_mib: float | None
    external_peak_mib: float | None
    cgroup_mem_peak_mb: float | None
    offered: int
    accepted: int
    errors_5xx: int
    timeouts: int
    no_answer: int
    dropped: int
    p99_before_ms: float | None
    p99_slow_ms: float | None
    delivered: int
    lost: int
    delivered_after_error: int
    duplicated: int
    ledger_by_stage: dict[str, dict[str, int]]
    engine_saturated: bool
    engine_notes: list[str]
    runtime: str = CONTAINER
    memory_limit_mb: int | None = None
    died_s: float | None = None
    exit_code: int | None = None
    oom_killed: bool = False
    queue_messages_at_death: int | None = None
    gc_time_share: dict[str, float] = field(default_factory=dict)
    gc_pause_max_ms: float | None = None
    throttled_bytes_per_s: float | None = None
    errors_5xx_began_s: float | None = None
    timeouts_began_s: float | None = None
    flushed_s: float | None = None
    rss_flushed_mib: float | None = None


@dataclass(frozen=True)
class BacklogSummary(PerService[BacklogResult]):
    """Per service a `BacklogResult`; the rate (req/s) and how it was chosen; the quota as a
    share of the body bytes the load offers (`quota_share`); the memory limit (10**6 bytes;
    None: none); how the broker was made slower (`mechanism`, a sentence)."""

    EXPERIMENT: ClassVar[str] = "backlog"
    RESULT: ClassVar[type] = BacklogResult
    RATIO_FIELDS: ClassVar[tuple[str, ...]] = ("rss_peak_mib", "queue_peak_messages")
    rate_rps: float = 0.0
    rate_source: str = ""
    quota_share: float = 0.0
    memory_limit_mb: int | None = None
    mechanism: str = ""


# --- reporter-cost ------------------------------------------------------------------------------
@dataclass(frozen=True)
class ReporterCostResult:
    """One service's CPU per request (us) in each pair's arm without and with the memory
    reports, and their overhead (% of CPU per request; geometric mean of the pairs' ratios)
    with its 95% interval [low, high]; its CPU at rest (% of a core) in each idle pair's arm
    without and with, and what the difference costs at the rate (% of its CPU per second
    there, reports off) with its 95% interval."""

    cpu_per_request_off_us: list[float]
    cpu_per_request_on_us: list[float]
    overhead_pct: float
    overhead_ci_pct: list[float]
    idle_cpu_off_pct: list[float]
    idle_cpu_on_pct: list[float]
    idle_cost_pct: float
    idle_cost_ci_pct: list[float]


@dataclass(frozen=True)
class ReporterCostSummary(PerService[ReporterCostResult]):
    """`experiments.reporter_cost`: per service a `ReporterCostResult`; the rate (req/s), each
    arm's measured length (s), the reports' interval when on (ms), and the arms' run ids
    (under the run's `arms/`) with each one's `memory_report_ms` (0: off), in the order run;
    each idle arm's length (s) and `memory_report_ms`, in the order run."""

    EXPERIMENT: ClassVar[str] = "reporter-cost"
    RESULT: ClassVar[type] = ReporterCostResult
    rate_rps: float = 0.0
    duration_s: float = 0.0
    memory_report_ms: int = 0
    arms: list[str] = field(default_factory=list)
    arm_report_ms: list[int] = field(default_factory=list)
    idle_s: float = 0.0
    idle_report_ms: list[int] = field(default_factory=list)


# --- rates --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ComparisonRate:
    """One rate (req/s) for every trial of a comparison, chosen once per study, a sentence
    saying how, and the ceiling runs it was derived from (none when set in the configuration)."""

    rate_rps: float
    source: str
    ceiling_runs: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class RatesSummary:
    """The study's comparison rates (`inputs.comparison_rates`), by experiment ("soak",
    "cpu-cores"), and per service the ceiling they rest on: `ceiling_rps` (the median of the
    conclusive ceilings found; for a service whose every trial was bound by the rig, the
    lowest bound), `kind` ("ceiling" | "rig bound"), and the trials left out with why."""

    EXPERIMENT: ClassVar[str] = "rates"
    rates: dict[str, ComparisonRate]
    ceilings: dict[str, dict[str, Any]]


# --- claims -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ClaimsSummary:
    """The claims table of a study (`study.claims_numbers`: one entry per claim key) and the
    run ids it was computed from."""

    EXPERIMENT: ClassVar[str] = "claims"
    claims: dict[str, dict[str, Any]]
    runs_used: list[str]


Summary = (SmokeSummary | LatencyAccuracySummary | EngineCapacitySummary | CeilingSummary | SoakSummary
           | StartupSummary | BadInputSummary | FaultsSummary | ClaimsSummary
           | OverloadSummary | CpuCoresSummary | RatesSummary | BacklogSummary | ReporterCostSummary)
SUMMARY_TYPES: dict[str, type] = {
    cls.EXPERIMENT: cls
    for cls in (SmokeSummary, LatencyAccuracySummary, EngineCapacitySummary, CeilingSummary, SoakSummary,
                StartupSummary, BadInputSummary, FaultsSummary, ContractsSummary, OverloadSummary,
                CpuCoresSummary, RatesSummary, BacklogSummary, ReporterCostSummary,
                ClaimsSummary)
}


def dump_summary(summary: Summary, *, run_id: str, warnings: Sequence[str] = ()) -> dict[str, Any]:
    """The JSON-ready envelope of `summary` (see the module docstring)."""
    return {"schema_version": SUMMARY_VERSION, "run_id": run_id, "experiment": summary.EXPERIMENT,
            "summary": dataclasses.asdict(summary), "warnings": list(warnings)}


def load_summary(data: Mapping[str, Any]) -> tuple[Summary, list[str]]:
    """(summary, warnings) from an envelope written by `dump_summary`; raises
    SummaryFormatError for another schema version, an unknown experiment or unknown fields."""
    version = data.get("schema_version")
    if version not in READABLE_VERSIONS:
        raise SummaryFormatError(f"summary schema version {version}; this ingestlab reads "
                                 f"{sorted(READABLE_VERSIONS)}")
    experiment = data.get("experiment")
    cls = SUMMARY_TYPES.get(str(experiment))
    if cls is None:
        raise SummaryFormatError(f"no summary type for experiment {experiment!r}")
    try:
        summary = dacite.from_dict(cls, data["summary"], config=_DACITE)
    except dacite.DaciteError as exc:
        raise SummaryFormatError(f"{experiment} summary of run {data.get('run_id')}: {exc}") from exc
    return summary, list(data.get("warnings", []))
