"""Typed summaries for tests that need a saved run but not a measurement: every field has a
plausible default, and a test names only the fields it is about."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ingestlab.summaries import (
    SUMMARY_TYPES,
    BacklogResult,
    BadInputResult,
    CeilingResult,
    ComparisonRate,
    CoreShare,
    CpuCoresResult,
    DeliveryCounts,
    FaultOutcome,
    FaultsResult,
    GroupShare,
    OverloadRate,
    OverloadResult,
    PerService,
    ReporterCostResult,
    SoakResult,
    StartupResult,
    Summary,
)

RESULT_DEFAULTS: dict[type, dict[str, Any]] = {
    DeliveryCounts: dict(sent=10, accepted=9, rejected=1, failed=0, delivered=9, lost=0, duplicated=0,
                         unexpected=0),
    CeilingResult: dict(ceiling_rps=1_000.0, ceiling_lower_bound=False, first_failing_rps=1_100.0,
                        search="held 1,000 req/s, not 1,100", engine="asyncio", p99_bound_ms=100.0,
                        wrk_rps=2_000.0, wrk_errors=0, wrk_connections=256, wrk_p99_ms=50.0, wrk_lost=0,
                        steps=[]),
    SoakResult: dict(rate_rps=500.0, duration_s=25.0, engine="asyncio", rss_start_mib=50.0,
                     rss_mean_mib=60.0, rss_peak_mib=70.0, rss_amplitude_mib=5.0, memory_pattern="flat",
                     memory_period_s=None, memory_bounds={}, p50_ms=1.0, p95_ms=5.0, p99_ms=20.0,
                     achieved_rps=500.0, error_rate=0.0, accepted=12_500, delivered=12_500, lost=0,
                     engine_saturated=False, engine_notes=[], sampler_overhead_core_pct=0.3,
                     sampler_mean_interval_s=0.1, cpu_by_thread=[], cpu_by_core=[]),
    StartupResult: dict(cold_start_ms=100.0, cold_start_min_ms=90.0, cold_start_max_ms=120.0,
                        cold_start_p90_ms=115.0, port_open_ms=50.0, rss_at_ready_mib=40.0,
                        uss_at_ready_mib=30.0, cold_start_runs=3, footprint_bytes=10_000_000,
                        footprint_without_base_bytes=8_000_000, footprint_parts=[]),
    BadInputResult: dict(cases=200, violations=0, crashes=0, accepted=80, delivered=80, lost=0, duplicated=0,
                         unexpected=0, boundary_delivered=True, listen_addresses=["127.0.0.1:3000"]),
}
FAULT_OUTCOME_DEFAULTS: dict[str, Any] = dict(
    start_s=2.0, duration_s=3.0, sent=5_000, accepted=4_900, errors_4xx=0, errors_5xx=0, timeouts=100,
    no_answer=0, statuses={"202": 4_900, "0": 100}, lost=0, delivered_after_error=100, duplicated=0,
    recovery_s=1.0, p99_before_ms=20.0, p99_during_ms=1_500.0, rss_before_mib=50.0, rss_peak_mib=80.0)


def fault_outcome(**fields: Any) -> FaultOutcome:
    """A `FaultOutcome` with plausible defaults and `fields` replaced."""
    return FaultOutcome(**{**FAULT_OUTCOME_DEFAULTS, **fields})


RESULT_DEFAULTS[CpuCoresResult] = dict(
    rate_rps=1_000.0, duration_s=3.0, trials=3, busiest_core_pct=40.0, other_core_pct=10.0,
    busiest_core_pct_per_trial=[38.0, 40.0, 42.0], other_core_pct_per_trial=[9.0, 10.0, 11.0],
    busiest_core_per_trial=[1, 1, 1], service_total_pct=50.0,
    by_role=[CoreShare(role="busiest", service_pct=40.0, broker_pct=0.0, load_pct=0.0, rest_pct=5.0,
                       busy_pct=45.0, steal_pct=0.0),
             CoreShare(role="other", service_pct=10.0, broker_pct=20.0, load_pct=15.0, rest_pct=5.0,
                       busy_pct=50.0, steal_pct=0.0)],
    by_group=[GroupShare(role="busiest", group="event loop", core_pct=35.0)],
    achieved_rps=1_000.0, error_rate=0.0, p99_ms=20.0, accepted=9_000, delivered=9_000, lost=0,
    engine="asyncio", engine_saturated=False, engine_notes=[], sampler_overhead_core_pct=0.5,
    allowed_cores=[0, 1])
RESULT_DEFAULTS[FaultsResult] = dict(rate_rps=500.0, request_timeout_s=2.0,
                                     faults={"pause": fault_outcome()})
OVERLOAD_RATE_DEFAULTS: dict[str, Any] = dict(
    offered_rps=10_000.0, rate_source="10,000 req/s: set in the configuration", share_of_ceiling=2.5,
    duration_s=6.0, request_timeout_s=2.0, max_in_flight=1024, offered=50_000, sent=20_000,
    achieved_rps=4_000.0, sent_rps=4_200.0, error_rate=0.0, timeout_rate=0.05, dropped_rate=0.6,
    p99_ms=2_000.0, rss_start_mib=65.0, rss_mean_mib=140.0, rss_peak_mib=170.0, memory_pattern="sawtooth",
    memory_period_s=2.0,
    accepted=24_000, delivered=24_000, accepted_not_delivered=0, delivered_after_client_error=1_000,
    duplicated=0, engine_saturated=True, engine_notes=["behind schedule"], generator_limited=False,
    generator_notes=[], heap_pattern="sawtooth", heap_mean_mib=25.0, heap_peak_mib=45.0)


def overload_rate(**fields: Any) -> OverloadRate:
    """An `OverloadRate` with plausible defaults and `fields` replaced."""
    return OverloadRate(**{**OVERLOAD_RATE_DEFAULTS, **fields})


RESULT_DEFAULTS[OverloadResult] = dict(ceiling_rps=4_000.0, ceiling_source="4,000 req/s, ceiling run r0",
                                       rates={"10000": overload_rate()})
RESULT_DEFAULTS[BacklogResult] = dict(
    rate_rps=1_000.0, request_timeout_s=2.0, max_in_flight=2_064, quota_bytes_per_s=5e6, before_s=5.0,
    slow_s=30.0, drain_s=16.0, quota_set_s=0.1, quota_cleared_s=0.05,
    per_stage={"before": {"offered": 1_000.0, "accepted": 1_000.0, "delivered": 1_000.0}},
    cap_reached_s=None, cap_reached=None, cap_messages=None, cap_mib=None, queue_messages_max=100_000,
    queue_bytes_max_mib=1_024.0, errors_began_s=None, drained_s=5.0, rss_start_mib=60.0, rss_before_mib=100.0,
    rss_peak_mib=270.0, rss_peak_s=32.0, largest_at_peak="the rest of RSS", rss_end_mib=200.0,
    rss_returned_share=0.4, queue_peak_messages=15_000, queue_peak_mib=143.0, heap_used_peak_mib=28.0,
    heap_total_peak_mib=52.0, external_peak_mib=8.0, cgroup_mem_peak_mb=240.0, offered=55_000,
    accepted=55_000, errors_5xx=0, timeouts=0, no_answer=0, dropped=0, p99_before_ms=20.0, p99_slow_ms=30.0,
    delivered=55_000, lost=0, delivered_after_error=0, duplicated=0, ledger_by_stage={},
    engine_saturated=False, engine_notes=[])
RESULT_DEFAULTS[ReporterCostResult] = dict(
    cpu_per_request_off_us=[100.0, 102.0], cpu_per_request_on_us=[101.0, 103.0], overhead_pct=1.0,
    overhead_ci_pct=[0.5, 1.5], idle_cpu_off_pct=[0.2, 0.3], idle_cpu_on_pct=[0.3, 0.4], idle_cost_pct=0.25,
    idle_cost_ci_pct=[0.1, 0.4])
SUMMARY_DEFAULTS: dict[str, dict[str, Any]] = {
    "engine-capacity": dict(engine_max_rps=20_000.0, engine_max_rps_per_repeat=[20_000.0],
                            engine_lag_p99_ms=1.0, engine_cpu_pct_at_max=95.0, engine_pool=32,
                            engine_share_of_wrk=0.3, wrk_rps=60_000.0, wrk_errors=0, wrk_connections=256,
                            native_max_rps=50_000.0, native_engine="oha", native_connections=64,
                            body_bytes=10_000, repeats=1, stall_ms=400.0, stall_rate_rps=16_000.0,
                            stall_recovery_s=0.5, stall_dropped=0, goal={}),
    "latency-accuracy": dict(target_ms=5.0, p50_ms=5.1, p99_ms=5.9, max_ms=7.0, rate_rps=1_000.0,
                             body_bytes=10_000, goal={}, step={}),
    "claims": dict(claims={}, runs_used=[]),
    "rates": dict(rates={"soak": ComparisonRate(rate_rps=1_500.0, source="0.5 x node's ceiling",
                                                ceiling_runs=["c1"])},
                  ceilings={"node": {"ceiling_rps": 3_000.0, "kind": "ceiling", "runs": ["c1"],
                                     "left_out": []}}),
}


def summary(experiment: str, services: Mapping[str, Mapping[str, Any]] | None = None,
            **fields: Any) -> Summary:
    """A summary of `experiment`: per service (for per-service experiments) the defaults with
    `services[name]`'s fields replaced, and the summary's own `fields` replaced."""
    cls = SUMMARY_TYPES[experiment]
    if issubclass(cls, PerService):
        made = {name: cls.RESULT(**{**RESULT_DEFAULTS[cls.RESULT], **values})
                for name, values in (services or {}).items()}
        return cls(services=made, **fields)
    return cls(**{**SUMMARY_DEFAULTS[experiment], **fields})

