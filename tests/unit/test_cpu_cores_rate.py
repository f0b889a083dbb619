"""experiments.cpu_cores.cpu_cores_rate from saved runs: set, derived from the study's first
ceiling run (with its engine limits), or the fallback; never a new ceiling run."""

from __future__ import annotations

from pathlib import Path

import pytest
from factories import summary

from ingestlab.config import StudyConfig
from ingestlab.experiments.cpu_cores import cpu_cores_rate
from ingestlab.experiments.steps import EngineLimits
from ingestlab.results import Run

LIMITS = EngineLimits(asyncio_rps=5_000.0, oha_rps=40_000.0, asyncio_usable_rps=3_000.0,
                      oha_usable_rps=20_000.0, cpu_budget_pct=50.0, source="calibration")


def _ceiling(config: StudyConfig, node: float) -> Run:
    run = Run.create(config, "ceiling")
    run.write_summary(summary("ceiling", {"node": {"ceiling_rps": node}, "rust": {"ceiling_rps": 16_000.0}},
                              engine_limits=LIMITS.as_dict()))
    return run


def test_rate_set_derived_or_fallback(tmp_path: Path) -> None:
    config = StudyConfig.for_profile("quick", runs_dir=tmp_path, study_id="S1")
    rate, why, limits = cpu_cores_rate(config)
    assert (rate, limits) == (1_000.0, None) and "no ceiling run" in why  # nothing measured here
    first = _ceiling(config, node=1_500.0)
    _ceiling(config, node=3_000.0)  # a later one of the study: the first sets the rate
    rate, why, limits = cpu_cores_rate(config)
    assert rate == pytest.approx(1_200.0) and limits == LIMITS
    assert first.run_id in why and "0.8 x node's ceiling" in why and "one core there" in why
    rate, why, limits = cpu_cores_rate(config.replace(cpu_cores={"rate_rps": 700}))
    assert (rate, limits) == (700.0, None) and "set in the configuration" in why
