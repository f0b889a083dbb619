"""ingestlab.inputs: what an experiment needs, resolved by the study from saved runs; one rate
per comparison, chosen once from conclusive ceilings; no experiment starts another."""

from __future__ import annotations

from pathlib import Path

import pytest
from factories import summary

from ingestlab import inputs
from ingestlab.config import StudyConfig
from ingestlab.evidence import left_out_because, usable_runs
from ingestlab.experiments.steps import EngineLimits
from ingestlab.results import Run

LIMITS = EngineLimits(asyncio_rps=5_000.0, oha_rps=40_000.0, asyncio_usable_rps=3_000.0,
                      oha_usable_rps=20_000.0, cpu_budget_pct=50.0, source="calibration")
RIG = {"ceiling_rps": 16_000.0, "ceiling_lower_bound": True, "bound_by": "rig", "first_failing_rps": None}
STALL = {"ceiling_rps": 380.0, "ceiling_lower_bound": True, "bound_by": "stall", "first_failing_rps": None,
         "search": "the load generator could not drive 500 req/s (inconclusive)"}


def _ceiling(config: StudyConfig, node: dict | float, rust: dict | float = RIG) -> Run:
    as_fields = {s: v if isinstance(v, dict) else {"ceiling_rps": v}
                 for s, v in (("node", node), ("rust", rust))}
    run = Run.create(config, "ceiling")
    run.write_summary(summary("ceiling", as_fields, engine_limits=LIMITS.as_dict()))
    return run


@pytest.fixture
def config(tmp_path: Path) -> StudyConfig:
    return StudyConfig.for_profile("quick", runs_dir=tmp_path, study_id="S1")


def test_rates_come_from_the_median_of_conclusive_ceilings(config: StudyConfig) -> None:
    runs = [_ceiling(config, 3_000.0), _ceiling(config, 2_000.0), _ceiling(config, 2_600.0)]
    chosen = inputs.choose_rates(config, runs)
    assert chosen.ceilings["node"]["ceiling_rps"] == 2_600.0 and chosen.ceilings["node"]["kind"] == "ceiling"
    assert chosen.ceilings["rust"]["kind"] == "rig bound"  # only "at least": never the slower one
    assert chosen.rates["soak"].rate_rps == 1_300.0  # 0.5 x 2,600
    assert chosen.rates["cpu-cores"].rate_rps == 2_100.0  # 0.8 x 2,600 = 2,080, two digits
    assert "median of 3 conclusive" in chosen.rates["soak"].source
    assert sorted(chosen.rates["soak"].ceiling_runs) == sorted(r.run_id for r in runs)


def test_a_stalled_trial_is_left_out_of_the_rate(config: StudyConfig) -> None:
    # the AMD case: Rust's search ended at 380 req/s on a stall; it must not become the rate
    runs = [_ceiling(config, 3_000.0, rust=16_000.0), _ceiling(config, 3_000.0, rust=STALL)]
    chosen = inputs.choose_rates(config, runs)
    assert chosen.ceilings["rust"]["ceiling_rps"] == 16_000.0
    left_out = chosen.ceilings["rust"]["left_out"]
    assert len(left_out) == 1 and runs[1].run_id in left_out[0]
    assert chosen.rates["soak"].rate_rps == 1_500.0


def test_no_rate_from_a_bound_of_the_slower_service(config: StudyConfig) -> None:
    runs = [_ceiling(config, node={**RIG, "ceiling_rps": 900.0}, rust=3_000.0)]
    with pytest.raises(inputs.InputsError, match="only the rig's lower bound"):
        inputs.choose_rates(config, runs)
    with pytest.raises(inputs.InputsError, match="no ceiling"):
        inputs.choose_rates(config, [_ceiling(config, node=STALL)])


def test_the_rate_is_chosen_once_per_study(config: StudyConfig, monkeypatch: pytest.MonkeyPatch) -> None:
    _ceiling(config, 3_000.0)
    first = inputs.comparison_rates(config)
    _ceiling(config, 1_000.0)  # a later trial of the study does not move the rate
    again = inputs.comparison_rates(config)
    assert again.rates["soak"].rate_rps == first.rates["soak"].rate_rps == 1_500.0
    other_study = config.replace(study_id="S2")
    _ceiling(other_study, 1_000.0)
    assert inputs.comparison_rates(other_study).rates["soak"].rate_rps == 500.0
    assert inputs.rate_for(config.replace(soak={"rate_rps": 700}), "soak").rate_rps == 700.0


def test_without_a_conclusive_ceiling_the_study_measures_one_out_loud(
    config: StudyConfig, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    made: list[StudyConfig] = []

    def fake_ceiling(cfg: StudyConfig, *, limits: EngineLimits) -> Run:
        made.append(cfg)
        return _ceiling(cfg, 2_000.0)

    monkeypatch.setattr(inputs, "ceiling", fake_ceiling)
    monkeypatch.setattr(inputs, "engine_limits", lambda cfg: LIMITS)
    _ceiling(config, node=STALL)  # the study's only trial stalled
    assert inputs.comparison_rates(config).rates["soak"].rate_rps == 1_000.0
    assert len(made) == 1 and made[0].services == ("node", "rust")
    assert "ingestlab: running ceiling" in capsys.readouterr().out


def test_run_experiment_hands_the_study_rate_and_limits_to_the_soak(
    config: StudyConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ingestlab import experiments

    seen: dict[str, object] = {}

    def fake_soak(cfg: StudyConfig, *, rate: object, limits: EngineLimits) -> Run:
        seen.update(rate=rate, limits=limits)
        run = Run.create(cfg, "soak")
        run.write_summary(summary("soak", {"node": {}, "rust": {}}))
        return run

    monkeypatch.setitem(experiments.EXPERIMENTS, "soak", fake_soak)
    monkeypatch.setattr(inputs, "engine_limits", lambda cfg: LIMITS)
    _ceiling(config, 2_400.0)
    inputs.run_experiment(config, "soak")
    assert seen["limits"] == LIMITS and seen["rate"].rate_rps == 1_200.0  # type: ignore[union-attr]


def test_latest_or_new_run_reuses_a_matching_complete_run(tmp_path: Path) -> None:
    quick = StudyConfig.for_profile("quick", runs_dir=tmp_path)
    older = Run.create(quick, "ceiling")
    older.write_summary(summary("ceiling"))
    other_services = Run.create(quick.replace(services=("rust",)), "ceiling")
    other_services.write_summary(summary("ceiling"))
    Run.create(quick, "ceiling")  # newest, but incomplete: no summary.json
    assert inputs.latest_or_new_run(quick, "ceiling") == older


def test_latest_or_new_run_of_a_study_takes_only_that_studys_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ingestlab import experiments

    quick = StudyConfig.for_profile("quick", runs_dir=tmp_path)
    mine = quick.replace(study_id="S1")
    studys = Run.create(mine, "startup")
    studys.write_summary(summary("startup"))
    newer = Run.create(quick, "startup")  # of no study
    newer.write_summary(summary("startup"))
    assert inputs.latest_or_new_run(mine, "startup") == studys
    assert inputs.latest_or_new_run(quick, "startup") == newer  # no study id: any study
    made: list[StudyConfig] = []

    def fake_startup(cfg: StudyConfig) -> Run:
        made.append(cfg)
        run = Run.create(cfg, "startup")
        run.write_summary(summary("startup"))
        return run

    monkeypatch.setitem(experiments.EXPERIMENTS, "startup", fake_startup)
    other = quick.replace(study_id="S2")
    new = inputs.latest_or_new_run(other, "startup")  # S2 has none yet: measured for S2
    assert made == [other] and new.meta["config"]["study_id"] == "S2"


def test_flagged_runs_feed_no_row(config: StudyConfig) -> None:
    soak = Run.create(config, "soak")
    soak.write_summary(summary("soak", {"node": {"engine_saturated": True, "engine_notes": ["lag 5 ms"]},
                                        "rust": {}}))
    clean = Run.create(config, "soak")
    clean.write_summary(summary("soak", {"node": {}, "rust": {}}))
    stalled = _ceiling(config, 3_000.0, rust=STALL)
    rig = _ceiling(config, 3_000.0)
    assert "node's load generator saturated (lag 5 ms)" in left_out_because(soak)
    assert "rust's search ended on a stall" in left_out_because(stalled)
    assert left_out_because(rig) is None and left_out_because(clean) is None
    kept, why = usable_runs([soak, clean, stalled, rig])
    assert kept == [clean, rig] and len(why) == 2
