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

    def validate(self, available: set[int] | None = None) -> None:
        """Raise ValueError if a role has no core or names a core this process cannot use."""
        usable = available if available is not None else os.sched_getaffinity(0)
        for role, cores in dataclasses.asdict(self).items():
            if not cores:
                raise ValueError(f"core layout: role {role!r} has no cores")
            missing = set(cores) - usable
            if missing:
                raise ValueError(
                    f"core layout: role {role!r} names cores {sorted(missing)}, "
                    f"but only {sorted(usable)} are available on this machine"
                )

    def as_dict(self) -> dict[str, list[int]]:
        return {role: list(cores) for role, cores in dataclasses.asdict(self).items()}


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
    node_flags: tuple[str, ...] = ()
    # Smoke burst: requests per service, and how many of them are deliberately invalid.
    smoke_requests: int = 200
    smoke_invalid: int = 20
    smoke_concurrency: int = 16
    # Payloads: the article speaks of ~10 KB JSON documents.
    payload_bytes: int = 10_000
    seed: int = 1
    # After the load stops: how long to wait for the last records to show up in Kafka.
    readback_timeout_s: float = 30.0
    runs_dir: Path = Path("data/runs")

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
            base.update(smoke_requests=60, smoke_invalid=6)
        base.update(overrides)
        return cls(**base)  # type: ignore[arg-type]

    def replace(self, **changes: object) -> StudyConfig:
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    def as_dict(self) -> dict[str, object]:
        """JSON-ready form, recorded in every run's meta.json."""
        d = dataclasses.asdict(self)
        d["cores"] = self.cores.as_dict()
        d["runs_dir"] = str(self.runs_dir)
        d["services"] = list(self.services)
        d["node_flags"] = list(self.node_flags)
        return d
