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

Profile = Literal["quick", "full"]
ServiceName = Literal["node", "rust"]
SERVICES: tuple[ServiceName, ...] = ("node", "rust")
PROFILES: tuple[Profile, ...] = ("quick", "full")


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


@dataclass(frozen=True)
class StudyConfig:
    """Everything a run depends on. Units are in the field names.

    Use `StudyConfig.for_profile("quick")` for tests and smoke checks (seconds) and
    `"full"` for the real study (minutes).
    """

    profile: Profile = "full"
    services: tuple[ServiceName, ...] = SERVICES
    cores: CoreLayout = field(default_factory=CoreLayout)
    # Kafka
    partitions: int = 3
    kafka_heap_mb: int = 512
    broker_start_timeout_s: float = 90.0
    # Services
    service_start_timeout_s: float = 60.0
    # --trace-gc: one log line per V8 collection (telemetry.gc_trace parses them);
    # --max-old-space-size: the article's 1.5 GB cap ("to prevent OOM crashes").
    node_flags: tuple[str, ...] = ("--trace-gc", "--max-old-space-size=1536")
    # Smoke burst: requests per service, and how many of them are deliberately invalid.
    smoke_requests: int = 200
    smoke_invalid: int = 20
    smoke_concurrency: int = 16
    # Payloads: the article speaks of ~10 KB JSON documents.
    payload_bytes: int = 10_000
    seed: int = 1
    # The study a run belongs to (`ingestlab study` makes one with results.new_study_id);
    # the claims then use only that study's runs. None: no study.
    study_id: str | None = None
    # After the load stops: how long to wait for the last records to show up in Kafka.
    readback_timeout_s: float = 30.0
    runs_dir: Path = Path("data/runs")
    # Load engine. Requests intended in the first `warmup_s` of a step are recorded but left
    # out of the analysis. The pool (= connections = most requests in flight) is sized per
    # run as rate x the p99 bound, between these limits: the engine's cost grows with its
    # connections, so a pool far larger than the run needs costs throughput.
    warmup_s: float = 1.0
    engine_pool_min: int = 32
    engine_pool_max: int = 1024
    # latency-accuracy: a fixed 5 ms endpoint at 1,000 req/s.
    accuracy_rate_rps: int = 1_000
    accuracy_duration_s: float = 30.0
    # engine-capacity: the highest rate each engine holds on schedule on the load core against
    # nginx's `return 202` (a rate search: doubling, halving, bisection to `capacity_resolution`),
    # `repeats` times for the asyncio engine; each step `capacity_step_s` long. It calibrates
    # the rig on the machine it runs on (see EngineLimits).
    capacity_start_rps: int = 4_000
    native_start_rps: int = 16_000
    capacity_cap_rps: int = 256_000
    capacity_resolution: float = 1.15
    capacity_step_s: float = 5.0
    repeats: int = 3
    # The stall test pauses the engine at this fraction of its own measured maximum.
    stall_fraction: float = 0.8
    stall_ms: float = 400.0
    # During a study the broker shares the load core with the engine and takes CPU in
    # proportion to the rate: a step gives an engine a rate only where, in the calibration,
    # the engine needed at most this much of the core (%); the broker has the rest. An
    # engine's CPU is not proportional to its rate (the asyncio engine: 39% at 4,000 req/s,
    # 97% at 40,000), so the budget is read off the measured curve, not scaled from the max.
    # A step the asyncio engine still cannot drive is repeated with oha.
    engine_cpu_budget_pct: float = 50.0
    # ceiling: a rate search per service (start, doubling until a step fails, halving when the
    # first fails, then bisection until the limit is known within `ceiling_resolution`).
    ceiling_start_rps: int = 1_000
    ceiling_floor_rps: int = 50
    ceiling_cap_rps: int = 64_000
    ceiling_resolution: float = 1.1
    ceiling_p99_bound_ms: float = 100.0
    # Before the search, each fresh service is loaded at half the start rate for this long,
    # unjudged (start-up transients are not the service's limit).
    ceiling_warmup_s: float = 5.0
    step_s: float = 10.0
    # Telemetry: process samples every `sample_interval_s` (RSS, PSS/USS, CPU per thread).
    sample_interval_s: float = 0.1
    # soak: a constant rate held for `soak_duration_s`, the same for both services. The article
    # held 10,000 req/s for 72 h, above what Node holds on one core here; None: the soak runs
    # at `soak_rate_fraction` of the slower service's ceiling measured on this machine (the
    # study's first ceiling run), so latency and memory are compared at a rate both hold.
    soak_rate_rps: int | None = None
    soak_rate_fraction: float = 0.5
    soak_duration_s: float = 120.0
    # A fresh broker answers its first produce requests slowly (Rust, which waits for the
    # acknowledgement, took 0.5 s per request for the first 2 s of a quick soak): requests
    # intended in the first `soak_warmup_s` are recorded but left out of the numbers.
    soak_warmup_s: float = 5.0
    # The claims table: runs of ceiling and soak per claim (each one trial of each service).
    trials: int = 5
    # startup: cold starts per service (spawn to first 202, broker already up).
    startup_runs: int = 10
    # wrk is closed loop: its rate is bounded by connections / latency (Little), and Rust answers
    # only after Kafka acknowledged (>= queue.buffering.max.ms = 10 ms), so it needs many.
    wrk_connections: int = 256

    def __post_init__(self) -> None:
        if self.profile not in PROFILES:
            raise ValueError(f"profile must be one of {PROFILES}, got {self.profile!r}")
        unknown = set(self.services) - set(SERVICES)
        if unknown or not self.services:
            raise ValueError(f"services must be a non-empty subset of {SERVICES}, got {self.services!r}")
        if self.partitions < 1:
            raise ValueError("partitions must be >= 1")
        if not 0 <= self.smoke_invalid <= self.smoke_requests:
            raise ValueError("smoke_invalid must be between 0 and smoke_requests")

    @classmethod
    def for_profile(cls, profile: Profile, **overrides: object) -> StudyConfig:
        """The defaults of a profile, with keyword overrides (e.g. `services=("rust",)`)."""
        base: dict[str, object] = {"profile": profile}
        if profile == "quick":
            base.update(smoke_requests=60, smoke_invalid=6, warmup_s=0.5, accuracy_duration_s=5.0,
                        capacity_step_s=2.0, capacity_resolution=1.3, repeats=1, ceiling_resolution=1.5,
                        step_s=2.0, ceiling_warmup_s=2.0, soak_duration_s=25.0, startup_runs=3,
                        trials=3)
        base.update(overrides)
        return cls(**base)  # type: ignore[arg-type]

    def replace(self, **changes: object) -> StudyConfig:
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    def as_dict(self) -> dict[str, object]:
        """JSON-ready form, recorded in every run's meta.json."""
        d = dataclasses.asdict(self)
        d["cores"] = self.cores.as_dict()
        d["runs_dir"] = str(self.runs_dir)
        for name, value in d.items():
            if isinstance(value, tuple):
                d[name] = list(value)
        return d
