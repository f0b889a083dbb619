from ingestlab.config import StudyConfig
from ingestlab.experiments.ceiling import step_verdict
from ingestlab.experiments.steps import StepResult, engine_for, pool_size


def _result(**overrides) -> StepResult:
    base = dict(
        step=0,
        engine="aiohttp",
        offered_rps=1000.0,
        achieved_rps=1000.0,
        sent=1000,
        accepted=1000,
        errors=0,
        error_rate=0.0,
        p50_ms=2.0,
        p95_ms=5.0,
        p99_ms=10.0,
        max_ms=20.0,
        engine_lag_p99_ms=0.5,
        engine_cpu_pct=20.0,
        engine_saturated=False,
        engine_notes=(),
    )
    return StepResult(**{**base, **overrides})


def test_pool_covers_the_p99_bound_within_limits():
    config = StudyConfig(ceiling_p99_bound_ms=100.0, engine_pool_min=32, engine_pool_max=1024)
    assert pool_size(config, 100) == 32  # 10 needed, clamped up
    assert pool_size(config, 2_000) == 200
    assert pool_size(config, 50_000) == 1024  # 5000 needed, clamped down


def test_engine_is_chosen_by_rate():
    config = StudyConfig(aiohttp_max_rps=2_000)
    assert engine_for(config, 2_000) == "aiohttp"
    assert engine_for(config, 2_001) == "oha"


def test_a_clean_step_passes():
    assert step_verdict(_result(), p99_bound_ms=100, lost=0) == (True, [])


def test_each_failure_is_named_with_its_number():
    passed, reasons = step_verdict(
        _result(
            achieved_rps=900.0,
            error_rate=0.01,
            p99_ms=250.0,
            engine_saturated=True,
            engine_notes=("engine CPU was 97% of one core",),
        ),
        p99_bound_ms=100,
        lost=3,
    )
    assert not passed
    text = " | ".join(reasons)
    assert "inconclusive" in text and "97%" in text
    assert "achieved 900 of 1000" in text
    assert "error rate 1.00%" in text
    assert "p99 250.0 ms (bound 100 ms)" in text
    assert "3 accepted records missing" in text


def test_a_step_without_latencies_does_not_pass():
    passed, reasons = step_verdict(_result(p99_ms=None), p99_bound_ms=100, lost=0)
    assert not passed and "p99 None" in reasons[0]
