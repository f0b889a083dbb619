import polars as pl
import pytest

from ingestlab.config import CeilingConfig, LoadConfig, StudyConfig
from ingestlab.experiments.ceiling import step_verdict
from ingestlab.experiments.engine_bench import usable_rate
from ingestlab.experiments.steps import EngineLimits, StepResult, pool_size


def _result(**overrides) -> StepResult:
    base = dict(
        step=0,
        engine="asyncio",
        offered_rps=1000.0,
        achieved_rps=1000.0,
        sent=1000,
        accepted=1000,
        errors=0,
        error_rate=0.0,
        dropped=0,
        p50_ms=2.0,
        p95_ms=5.0,
        p99_ms=10.0,
        max_ms=20.0,
        service_p99_ms=9.0,
        engine_lag_p99_ms=0.5,
        engine_cpu_pct=20.0,
        engine_saturated=False,
        engine_notes=(),
    )
    return StepResult(**{**base, **overrides})


def test_pool_covers_the_p99_bound_within_limits():
    config = StudyConfig(ceiling=CeilingConfig(p99_bound_ms=100.0),
                         load=LoadConfig(engine_pool_min=32, engine_pool_max=1024))
    assert pool_size(config, 100) == 32  # 10 needed, clamped up
    assert pool_size(config, 2_000) == 200
    assert pool_size(config, 50_000) == 1024  # 5000 needed, clamped down
    assert pool_size(config, 1_000, in_flight_s=0.5) == 500  # the soak: half a second of the rate


def test_engine_is_chosen_from_the_measured_limits_within_the_cpu_budget():
    limits = EngineLimits(asyncio_rps=40_000, oha_rps=60_000, asyncio_usable_rps=4_000,
                          oha_usable_rps=30_000, cpu_budget_pct=50, source="run-x")
    assert limits.choose(4_000) == "asyncio"
    assert limits.choose(4_001) == "oha"
    assert limits.choose(30_000) == "oha"
    assert limits.choose(30_001) is None


def test_the_usable_rate_is_read_off_the_cpu_curve():
    steps = pl.DataFrame({"offered_rps": [4_000.0, 8_000.0, 8_000.0, 16_000.0],
                          "engine_cpu_pct": [40.0, 70.0, 80.0, 97.0]})
    # 50% lies between 4,000 (40%) and 8,000 (75%, the mean of two steps)
    assert usable_rate(steps, cpu_budget_pct=50) == pytest.approx(4_000 + 4_000 * 10 / 35)
    assert usable_rate(steps, cpu_budget_pct=30) == pytest.approx(3_000)
    assert usable_rate(steps, cpu_budget_pct=99) == 16_000  # never beyond what was held
    assert usable_rate(steps.clear(), cpu_budget_pct=50) is None


def test_a_clean_step_passes():
    assert step_verdict(_result(), p99_bound_ms=100, lost=0) == ("pass", [])


def test_the_services_own_failures_are_named_with_their_numbers():
    outcome, reasons = step_verdict(
        _result(errors=12, error_rate=0.012, service_p99_ms=250.0, engine_saturated=True,
                engine_notes=("schedule lag p99 is 80 ms",)),
        p99_bound_ms=100,
        lost=3,
    )
    assert outcome == "fail"  # a slow service exhausts the pool: its fault, not the rig's
    text = " | ".join(reasons)
    assert "error rate 1.20%" in text
    assert "p99 from the actual send 250.0 ms (bound 100 ms)" in text
    assert "3 accepted records missing" in text


def test_a_late_generator_with_a_fast_service_is_inconclusive():
    outcome, reasons = step_verdict(
        _result(achieved_rps=900.0, p99_ms=250.0, service_p99_ms=8.0, errors=40, dropped=40,
                engine_saturated=True, engine_notes=("schedule lag p99 is 400 ms",)),
        p99_bound_ms=100,
        lost=0,
    )
    assert outcome == "inconclusive"
    assert "sent 900 of 1,000 req/s" in reasons[0] and "40 requests dropped" in reasons[0]


def test_generator_lateness_within_a_fifth_of_the_bound_does_not_decide():
    # steal time on this VM: 12 ms late at p99 with the generator's CPU to spare
    assert step_verdict(_result(engine="oha", engine_lag_p99_ms=12.0, engine_saturated=True),
                        p99_bound_ms=100, lost=0) == ("pass", [])
    outcome, reasons = step_verdict(_result(engine="oha", engine_lag_p99_ms=25.0), p99_bound_ms=100, lost=0)
    assert outcome == "inconclusive" and "oha schedule lag p99 25.0 ms (> 20 ms)" in reasons[0]
    outcome, reasons = step_verdict(_result(engine="oha", engine_cpu_pct=85.0), p99_bound_ms=100, lost=0)
    assert outcome == "inconclusive" and "oha CPU 85%" in reasons[0]


def test_slow_from_the_intended_send_fails_when_the_generator_kept_up():
    outcome, reasons = step_verdict(_result(p99_ms=250.0), p99_bound_ms=100, lost=0)
    assert outcome == "fail" and reasons == ["p99 250.0 ms (bound 100 ms)"]


def test_a_step_without_latencies_does_not_pass():
    outcome, reasons = step_verdict(_result(p99_ms=None, service_p99_ms=None), p99_bound_ms=100, lost=0)
    assert outcome == "fail" and "p99 None" in reasons[0]
