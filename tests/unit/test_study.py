"""study.py without the stack: finding and counting runs, judging claims from saved summaries,
the recorded numbers and the claims run."""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path

import polars as pl
import pytest
from factories import summary

from ingestlab import evidence, study
from ingestlab.analysis.claims import CLAIMS_COLUMNS, load_claims
from ingestlab.config import CORE_LAYOUTS, StudyConfig
from ingestlab.results import Run, RunFormatError, find_runs
from ingestlab.summaries import Summary


@pytest.fixture
def config(tmp_path: Path) -> StudyConfig:
    return StudyConfig.for_profile("quick", runs_dir=tmp_path / "runs")


def _run(config: StudyConfig, made: Summary, **frames: pl.DataFrame) -> Run:
    run = Run.create(config, made.EXPERIMENT)
    for name, frame in frames.items():
        run.write_frame(name, frame)
    run.write_summary(made)
    return run


def _soak(config: StudyConfig, *, node_rss: float = 120.0, rust_rss: float = 40.0) -> Run:
    return _run(config, summary("soak", {
        "node": {"rss_mean_mib": node_rss, "p50_ms": 1.0, "p95_ms": 5.0, "p99_ms": 20.0},
        "rust": {"rss_mean_mib": rust_rss, "p50_ms": 10.0, "p95_ms": 15.0, "p99_ms": 18.0},
    }))


def _ceiling(config: StudyConfig, *, node: float = 6000, rust: float = 16000) -> Run:
    return _run(config, summary("ceiling", {"node": {"ceiling_rps": node}, "rust": {"ceiling_rps": rust}}))


def _cpu_cores(config: StudyConfig, *, node: list[float] | None = None) -> Run:
    """A cpu-cores run of `config.services` in its own layout (as the experiment makes it):
    3 trials each, node's busiest-core shares `node` if given."""
    layout = config.replace(cores=CORE_LAYOUTS["service-both-cores"])
    values = {"node": {"busiest_core_pct_per_trial": node or [98.0, 99.0, 100.0],
                       "other_core_pct_per_trial": [10.0, 12.0, 14.0]},
              "rust": {"busiest_core_pct_per_trial": [43.0, 44.0, 45.0],
                       "other_core_pct_per_trial": [40.0, 41.0, 42.0]}}
    made = summary("cpu-cores", {s: values[s] for s in config.services}, layout="service-both-cores",
                   layout_cores=layout.cores.as_dict(), rate_rps=1_000.0, rate_source="set")
    return _run(layout, made)


def _startup(config: StudyConfig, *, cgroup_mb: list[float] | None = None,
             cold_ms: list[float] | None = None) -> Run:
    """A startup run of `config.services`: 3 cold starts and the footprint of each (with
    `cgroup_mb`: a container run's cgroup memory at ready, node's three then rust's; with
    `cold_ms` the cold starts, in the same order)."""
    columns = {
        "service": ["node"] * 3 + ["rust"] * 3,
        "cold_start_ms": cold_ms or [200.0, 210.0, 190.0, 20.0, 22.0, 21.0],
        "rss_at_ready_mib": [65.0, 66.0, 64.0, 6.5, 6.6, 6.7],
    }
    if cgroup_mb is not None:
        columns["cgroup_mem_at_ready_mb"] = cgroup_mb
    starts = pl.DataFrame(columns).filter(pl.col("service").is_in(list(config.services)))
    footprint = {"node": {"footprint_bytes": 600_000_000}, "rust": {"footprint_bytes": 10_000_000}}
    return _run(config, summary("startup", {s: footprint[s] for s in config.services}), cold_starts=starts)


# --- finding runs --------------------------------------------------------------------------


def test_ensure_runs_uses_finished_two_service_runs_of_the_profile_newest_first(config: StudyConfig) -> None:
    first, second = _soak(config), _soak(config)
    _soak(config.replace(profile="full"))
    _soak(config.replace(services=("rust",)))  # measured one service: never evidence
    Run.create(config, "soak")  # unfinished: no summary.json
    _ceiling(config)
    found = study.ensure_runs(config, "soak", 5, measure=False)
    assert [run.run_id for run in found] == [second.run_id, first.run_id]
    # a config of one service still reads (and would make) runs of both
    assert study.ensure_runs(config.replace(services=("rust",)), "soak", 5, measure=False) == found


def test_ensure_runs_reuses_and_makes_only_the_missing(config: StudyConfig, monkeypatch) -> None:
    made: list[str] = []

    def fake_run(cfg: StudyConfig, experiment: str) -> Run:
        made.append(experiment)
        return _soak(cfg)

    monkeypatch.setattr(study.inputs, "run_experiment", fake_run)
    existing = _soak(config)
    runs = study.ensure_runs(config, "soak", 3)
    assert made == ["soak", "soak"] and len(runs) == 3
    assert runs[-1].run_id == existing.run_id  # newest first
    assert len(study.ensure_runs(config, "soak", 2)) == 2 and made == ["soak", "soak"]
    assert len(study.ensure_runs(config, "soak", 5, measure=False)) == 3 and len(made) == 2
    with pytest.raises(ValueError):
        study.ensure_runs(config, "soak", -1)


def test_ensure_runs_replaces_flagged_runs_within_a_bound(config: StudyConfig, monkeypatch) -> None:
    made: list[str] = []

    def saturated_soak(cfg: StudyConfig, experiment: str) -> Run:
        made.append(experiment)
        return _run(cfg, summary("soak", {"node": {"engine_saturated": True, "engine_notes": ["lag"]},
                                          "rust": {}}))

    monkeypatch.setattr(study.inputs, "run_experiment", saturated_soak)
    # every new run is flagged: two are needed, at most two more are tried, then it stops
    assert study.ensure_runs(config, "soak", 2) == [] and len(made) == 2 + study.MAX_EXTRA_RUNS


def test_ensure_evidence_without_measuring(config: StudyConfig) -> None:
    _soak(config), _soak(config), _ceiling(config), _startup(config), _startup(config)
    found = study.ensure_evidence(config, trials=3, measure=False)
    # ceiling first: the soak's and cpu-cores' rate follows it
    assert list(found) == ["ceiling", "soak", "startup", "cpu-cores"]
    assert {k: len(v) for k, v in found.items()} == {"soak": 2, "ceiling": 1, "startup": 1, "cpu-cores": 0}
    overview = study.runs_overview(found)
    assert overview["experiment"].to_list() == ["ceiling", "soak", "soak", "startup"]
    assert overview["warnings"].to_list() == [0, 0, 0, 0]
    assert study.runs_overview([]).height == 0


def test_ensure_evidence_of_a_study_makes_the_missing_runs_for_that_study(
    config: StudyConfig, monkeypatch
) -> None:
    makers = {"soak": _soak, "ceiling": _ceiling, "startup": _startup, "cpu-cores": _cpu_cores}
    made: list[tuple[str, str | None, tuple[str, ...]]] = []

    def fake_run(cfg: StudyConfig, experiment: str) -> Run:
        made.append((experiment, cfg.study_id, cfg.services))
        return makers[experiment](cfg)

    monkeypatch.setattr(study.inputs, "run_experiment", fake_run)
    # runs of no study and of another study: not this study's evidence
    _soak(config), _soak(config), _ceiling(config), _startup(config)
    _ceiling(config.replace(study_id="other")), _startup(config.replace(study_id="other"))
    mine = config.replace(study_id="S1")
    _soak(mine)  # made by an earlier, interrupted run of the study: reused
    found = study.ensure_evidence(mine, trials=2)
    both = ("node", "rust")
    assert made == [("ceiling", "S1", both)] * 2 + [("soak", "S1", both), ("startup", "S1", both),
                                                    ("cpu-cores", "S1", both)]
    assert {k: len(v) for k, v in found.items()} == {"ceiling": 2, "soak": 2, "startup": 1, "cpu-cores": 1}
    for runs in found.values():
        assert all(run.meta["config"]["study_id"] == "S1" for run in runs)
    assert len(find_runs(config.runs_dir, "soak", study_id="S1")) == 2
    # the study complete: nothing more is made
    study.ensure_evidence(mine, trials=2)
    assert len(made) == 5


# --- judging claims ------------------------------------------------------------------------


def test_usable_trials_leaves_out_values_that_cannot_enter_a_ratio() -> None:
    found = {"throughput_limit_rps": {"node": [0.0, 6000.0, math.nan], "rust": [16000.0]}}
    usable, dropped = study.usable_trials(found)
    assert usable == {"throughput_limit_rps": {"node": [6000.0], "rust": [16000.0]}}
    assert dropped == {"throughput_limit_rps": {"node": 2}}


def test_explain_reasons() -> None:
    found = {
        "p99_latency_ms": {"node": [1.0, 2.0, 3.0], "rust": [1.0, 2.0, 3.0]},
        "memory_sustained_mb": {"node": [1.0], "rust": [1.0, 2.0]},
        "image_size_mb": {"node": [600.0], "rust": [10.0]},
    }
    notes = {"p99_latency_ms": "at the soak rate", "memory_sustained_mb": "RSS mean"}
    keys = [*found, "cpu_busiest_core_pct", "throughput_limit_rps"]
    reasons = study.explain_reasons(keys, found, notes, dropped={"throughput_limit_rps": {"node": 3}})
    assert reasons["p99_latency_ms"] == "at the soak rate"  # measured: the note only
    assert (
        reasons["memory_sustained_mb"]
        == "1 trial(s) of node and 2 of rust found, 3 of each needed (RSS mean)"
    )
    assert "image_size_mb" not in reasons  # one exact count suffices, no note
    assert reasons["cpu_busiest_core_pct"] == evidence.NOT_MEASURABLE["cpu_busiest_core_pct"]
    assert reasons["throughput_limit_rps"] == (
        "0 trial(s) of node and 0 of rust found, 3 of each needed "
        "(trials with no positive value left out (3 of node))"
    )


def test_claims_report_from_saved_runs(config: StudyConfig) -> None:
    for rss in (120.0, 125.0, 130.0):
        _soak(config, node_rss=rss)
    _ceiling(config), _ceiling(config, node=0), _ceiling(config, node=5000)
    _startup(config)
    result = study.claims_report(config, 3)
    table, used = result
    assert result.study_id is None and result.table is table and result.used == used
    assert table["key"].to_list() == load_claims()["key"].to_list()
    assert set(CLAIMS_COLUMNS) <= set(table.columns)
    rows = {row["key"]: row for row in table.iter_rows(named=True)}
    assert rows["memory_sustained_mb"]["verdict"] == "direction only"  # 40/125 = 0.32 vs claimed 0.05
    # the ratio of geometric means (analysis.claims.INTERVAL_METHOD)
    node_mean = statistics.geometric_mean([120.0, 125.0, 130.0])
    assert rows["memory_sustained_mb"]["measured_ratio"] == pytest.approx(40 / node_mean)
    assert rows["cold_start_s"]["verdict"] == "reproduced"  # about 0.105 against 0.057: within x2
    assert (
        rows["image_size_mb"]["trials"] == 1
        and rows["image_size_mb"]["ci_low"] == rows["image_size_mb"]["ci_high"]
    )
    # a ceiling of 0 (no step passed) is no trial: 2 of 3 left, too few
    throughput = rows["throughput_limit_rps"]
    assert throughput["verdict"] == study.NOT_MEASURABLE
    assert "left out (1 of node)" in throughput["reason"]
    assert rows["cpu_busiest_core_pct"]["reason"] == evidence.NOT_MEASURABLE["cpu_busiest_core_pct"]
    assert len(used) == 3 + 3 + 1


def test_cpu_rows_come_from_the_newest_cpu_cores_run_in_its_own_layout(config: StudyConfig) -> None:
    for _ in range(3):
        _soak(config), _ceiling(config)
    _startup(config)
    _cpu_cores(config, node=[1.0, 2.0, 3.0])  # older: not read
    newest = _cpu_cores(config)
    table, used = study.claims_report(config, 3)
    rows = {row["key"]: row for row in table.iter_rows(named=True)}
    busiest, other = rows["cpu_busiest_core_pct"], rows["cpu_other_core_pct"]
    assert busiest["trials"] == 3 and busiest["node_measured"] == pytest.approx(99.0)
    assert busiest["verdict"] == "reproduced"  # 44 / 99 against the claimed 0.44
    assert other["rust_measured"] == pytest.approx(41.0) and other["verdict"] != study.NOT_MEASURABLE
    # the note replaces "not measurable here": the layout, the rate and what others took of each core
    assert "service-both-cores" in busiest["reason"] and newest.run_id in busiest["reason"]
    # factories' defaults: broker + load + rest = 0 + 0 + 5 on the busiest core, 20 + 15 + 5 on the other
    assert "node: 5% of its busiest core, 40% of its other core" in busiest["reason"]
    assert newest.run_id in used and len(used) == 3 + 3 + 1 + 1


def test_a_cpu_cores_run_of_another_machine_is_refused(config: StudyConfig) -> None:
    for _ in range(3):
        _soak(config), _ceiling(config)
    run = _cpu_cores(config)
    meta = run.meta
    meta["environment"]["hostname"] = "elsewhere"
    (run.path / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(RunFormatError, match="different machines"):
        study.claims_report(config, 3)


def test_claims_of_a_study_use_its_runs_not_a_newer_one_service_run(config: StudyConfig) -> None:
    """The bug: `ingestlab run startup --service rust` after the study made its startup run
    was taken as the study's startup evidence, and the Node values went missing."""
    mine = config.replace(study_id="S1")
    for rss in (120.0, 125.0, 130.0):
        _soak(mine, node_rss=rss)
    studys_startup = _startup(mine)
    rust_only = _startup(config.replace(services=("rust",)))  # newer, no study id
    _soak(config, node_rss=999.0)  # newer soak of no study: not the study's either
    result = study.claims_report(mine, 3)
    assert result.study_id == "S1"
    assert studys_startup.run_id in result.used and rust_only.run_id not in result.used
    assert all(Run.open(config.runs_dir / rid).meta["config"]["study_id"] == "S1" for rid in result.used)
    rows = {row["key"]: row for row in result.table.iter_rows(named=True)}
    for key in ("memory_startup_mb", "cold_start_s", "image_size_mb", "memory_sustained_mb"):
        assert rows[key]["node_measured"] is not None and rows[key]["rust_measured"] is not None, key
    assert rows["memory_startup_mb"]["node_measured"] == pytest.approx(65.0)
    assert rows["memory_sustained_mb"]["node_measured"] == pytest.approx(125.0)  # not 999
    # without a study id: the newest runs of the profile, but still never a one-service run
    found, _, used, _ = evidence.collect_trials(config, trials=3)
    assert rust_only.run_id not in used and studys_startup.run_id in used
    assert len(found["cold_start_s"]["node"]) == 3 and len(found["image_size_mb"]["node"]) == 1


def test_startup_memory_is_the_cgroup_s_where_the_run_had_containers(config: StudyConfig) -> None:
    _startup(config, cgroup_mb=[50.0, 51.0, 52.0, 9.0, 9.5, 10.0])
    found, reasons, _, _ = evidence.collect_trials(config, trials=3)
    assert found["memory_startup_mb"] == {"node": [50.0, 51.0, 52.0], "rust": [9.0, 9.5, 10.0]}
    assert "cgroup" in reasons["memory_startup_mb"]


def test_startup_memory_is_the_rss_of_a_native_run(config: StudyConfig) -> None:
    _startup(config, cgroup_mb=[None] * 6)  # native: the column is there, empty
    found, _, _, _ = evidence.collect_trials(config, trials=3)
    assert found["memory_startup_mb"]["node"] == [65.0, 66.0, 64.0]


def test_a_run_missing_one_service_value_is_no_trial_of_either(config: StudyConfig) -> None:
    _run(config, summary("ceiling", {"node": {"ceiling_rps": 6000}, "rust": {"ceiling_rps": None}}))
    _ceiling(config)
    found, _, used, _ = evidence.collect_trials(config, trials=3)
    assert found["throughput_limit_rps"] == {"node": [6000.0], "rust": [16000.0]}
    assert len(used) == 2


# --- recording -----------------------------------------------------------------------------


def _table() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "key": ["p99_latency_ms", "cpu_busiest_core_pct"],
            "metric": ["p99", "cpu"],
            "node_claim": [248.0, 100.0],
            "rust_claim": [11.8, 44.0],
            "node_measured": [20.0, None],
            "rust_measured": [18.0, None],
            "claim_ratio": [11.8 / 248, 0.44],
            "measured_ratio": [0.9, None],
            "ci_low": [0.8, None],
            "ci_high": [float("nan"), None],
            "verdict": ["not reproduced", study.NOT_MEASURABLE],
            "reason": ["includes 1", "one core per service"],
            "unit": ["ms", "%"],
            "trials": [3, 0],
        }
    )


def test_claims_numbers_one_json_safe_entry_per_claim() -> None:
    numbers = study.claims_numbers(_table())
    assert numbers["p99_latency_ms"]["measured_ratio"] == 0.9
    assert numbers["p99_latency_ms"]["ci_high"] is None  # NaN is not JSON
    assert numbers["p99_latency_ms"]["verdict"] == "not reproduced"
    cpu = numbers["cpu_busiest_core_pct"]
    assert cpu["verdict"] == study.NOT_MEASURABLE and cpu["reason"] == "one core per service"
    assert "measured_ratio" not in cpu


def test_missing_claims_names_what_a_report_would_leave_out() -> None:
    claims = pl.DataFrame({"key": ["a", "b", "c", "d"]})
    numbers = {
        "a": {"verdict": "reproduced", "measured_ratio": 0.1},
        "b": {"verdict": study.NOT_MEASURABLE, "reason": "why"},
        "c": {"verdict": study.NOT_MEASURABLE, "reason": ""},
    }
    assert study.missing_claims(numbers, claims) == ["c", "d"]
    full = study.claims_numbers(pl.concat([_table()] * 1))
    assert study.missing_claims(full, pl.DataFrame({"key": ["p99_latency_ms", "cpu_busiest_core_pct"]})) == []


def test_write_claims_csv(tmp_path: Path) -> None:
    path = study.write_claims_csv(_table(), tmp_path / "reports" / "claims.csv")
    written = pl.read_csv(path)
    assert written.columns == ["key", *CLAIMS_COLUMNS, "unit", "trials"]
    assert written.height == 2


def test_record_claims_keeps_the_table_and_its_provenance(config: StudyConfig) -> None:
    warned = Run.create(config, "soak")
    with pytest.warns(UserWarning):
        warned.write_summary(summary("soak"), warnings_found=["rust: load generator saturated"])
    with pytest.warns(UserWarning):  # the claims run repeats the warnings of the runs it used
        run = study.record_claims(config, _table(), [warned.run_id])
    assert run.meta["experiment"] == "claims" and run.run_id.split("-")[1] == "claims"
    assert run.read_frame("claims").height == 2
    assert run.summary.runs_used == [warned.run_id]
    assert set(run.summary.claims) == {"p99_latency_ms", "cpu_busiest_core_pct"}
    assert f"{warned.run_id}: rust: load generator saturated" in run.warnings
    # every claim of data/article_claims.csv missing from this two-row table is named
    missing = [w for w in run.warnings if w.startswith("claim ")]
    assert len(missing) == load_claims().height - 2
    # a claims run is not mistaken for an experiment's run
    assert [r.run_id for r in find_runs(config.runs_dir, "soak")] == [warned.run_id]
    assert [r.run_id for r in find_runs(config.runs_dir, "claims")] == [run.run_id]


def test_stalled_and_saturated_trials_never_feed_a_row(config: StudyConfig) -> None:
    for node in (5_000.0, 6_000.0, 5_500.0):
        _ceiling(config, node=node)
    # newest: Rust's search ended on a stall at 380 req/s; it must not be averaged in
    _run(config, summary("ceiling", {"node": {"ceiling_rps": 6_000.0},
                                     "rust": {"ceiling_rps": 380.0, "ceiling_lower_bound": True,
                                              "bound_by": "stall", "search": "stalled at 500 req/s"}}))
    for rss in (120.0, 125.0, 130.0):
        _soak(config, node_rss=rss)
    flagged = _run(config, summary("soak", {"node": {"rss_mean_mib": 900.0, "engine_saturated": True,
                                                     "engine_notes": ["schedule lag p99 5.2 ms"]},
                                            "rust": {"rss_mean_mib": 40.0}}))
    _startup(config)
    table, used = study.claims_report(config, 3)
    rows = {row["key"]: row for row in table.iter_rows(named=True)}
    throughput = rows["throughput_limit_rps"]
    assert throughput["trials"] == 3 and throughput["rust_measured"] == pytest.approx(16_000.0)
    assert "rust's search ended on a stall" in throughput["reason"]
    memory = rows["memory_sustained_mb"]
    assert memory["node_measured"] == pytest.approx(125.0)  # the flagged soak's 900 MiB is not in it
    assert f"run {flagged.run_id} left out" in memory["reason"] and "schedule lag" in memory["reason"]
    assert flagged.run_id not in used


def test_sequential_claims_add_trials_only_where_the_verdict_is_in_doubt(config: StudyConfig,
                                                                          monkeypatch) -> None:
    from ingestlab.analysis.claims import SequentialPlan

    made: list[str] = []
    # Node's p99 spread so wide that Rust's steady 18 ms straddles 1 for a few trials, memory
    # clearly "direction only" from the first look
    node_p99 = iter([10.0, 40.0, 15.0, 30.0, 35.0, 32.0, 31.0])

    def fake_run(cfg: StudyConfig, experiment: str) -> Run:
        made.append(experiment)
        if experiment == "soak":
            return _run(cfg, summary("soak", {
                "node": {"rss_mean_mib": 120.0 + len(made), "p50_ms": 1.0, "p95_ms": 5.0,
                         "p99_ms": next(node_p99)},
                "rust": {"rss_mean_mib": 40.0, "p50_ms": 10.0, "p95_ms": 15.0,
                         "p99_ms": 18.0 + len(made) / 100},
            }))
        return {"ceiling": _ceiling, "startup": _startup, "cpu-cores": _cpu_cores}[experiment](cfg)

    monkeypatch.setattr(study.inputs, "run_experiment", fake_run)
    plan = SequentialPlan(min_trials=3, max_trials=5)
    found = study.sequential_claims(config, plan)
    rows = {row["key"]: row for row in found.table.iter_rows(named=True)}
    assert rows["memory_sustained_mb"]["decided"] and rows["memory_sustained_mb"]["trials"] == 3
    assert rows["image_size_mb"]["trials"] == 1  # an exact count needs no trials
    looks = found.looks.to_dicts()
    assert looks[0]["trials"] == 3 and "p99_latency_ms" in looks[0]["undecided"]
    assert "memory_sustained_mb" not in looks[0]["undecided"]
    assert made.count("soak") <= plan.max_trials and made.count("soak") > plan.min_trials
    assert found.looks.height == made.count("soak") - plan.min_trials + 1
    # no more looks after the cap, and none at all without measuring
    assert study.sequential_claims(config, plan, measure=False).looks.height >= 1


def test_a_study_pools_its_startup_and_cpu_cores_runs(config: StudyConfig) -> None:
    mine = config.replace(study_id="S1")
    for _ in range(3):
        _soak(mine), _ceiling(mine)
    first, second = _startup(mine), _startup(mine, cold_ms=[300.0, 310.0, 290.0, 30.0, 32.0, 31.0])
    older, newer = _cpu_cores(mine, node=[90.0, 91.0, 92.0]), _cpu_cores(mine)
    found, reasons, used, _ = evidence.collect_trials(mine, trials=3)
    assert found["cold_start_s"]["node"] == pytest.approx([0.3, 0.31, 0.29, 0.2, 0.21, 0.19])  # newest first
    assert len(found["memory_startup_mb"]["rust"]) == 6
    assert found["cpu_busiest_core_pct"]["node"] == [98.0, 99.0, 100.0, 90.0, 91.0, 92.0]
    assert "pooled with 1 earlier run(s)" in reasons["cpu_busiest_core_pct"] and newer.run_id in reasons[
        "cpu_busiest_core_pct"]
    assert len(found["image_size_mb"]["node"]) == 1  # an exact count: the newest run's
    assert {first.run_id, second.run_id, older.run_id, newer.run_id} <= set(used)
    # without a study id only the newest of each is read: runs of different studies never mix
    found, _, _, _ = evidence.collect_trials(config, trials=3)
    assert len(found["cold_start_s"]["node"]) == 3 and len(found["cpu_busiest_core_pct"]["node"]) == 3


def test_a_study_adds_startup_runs_while_the_cold_start_row_is_in_doubt(config: StudyConfig,
                                                                         monkeypatch) -> None:
    from ingestlab.analysis.claims import SequentialPlan

    mine = config.replace(study_id="S1")
    for _ in range(3):
        _soak(mine), _ceiling(mine)
    made: list[str] = []
    # the first run's cold starts straddle a ratio of 1; later ones are steady
    steady = [1000.0, 1100.0, 1050.0, 100.0, 110.0, 105.0]
    cold = iter([[200.0, 2000.0, 300.0, 150.0, 160.0, 170.0]] + [steady] * 5)

    def fake_run(cfg: StudyConfig, experiment: str) -> Run:
        made.append(experiment)
        if experiment == "startup":
            return _startup(cfg, cold_ms=next(cold))
        return {"ceiling": _ceiling, "soak": _soak, "cpu-cores": _cpu_cores}[experiment](cfg)

    monkeypatch.setattr(study.inputs, "run_experiment", fake_run)
    found = study.sequential_claims(mine, SequentialPlan(min_trials=3, max_trials=5))
    looks = found.looks.to_dicts()
    assert "cold_start_s" in looks[0]["undecided"]
    startups = made.count("startup")
    assert 2 <= startups <= 3  # one per look while in doubt, at most max - min more
    cold_row = found.table.filter(pl.col("key") == "cold_start_s").row(0, named=True)
    assert cold_row["trials"] == 3 * startups  # every cold start of the study's runs, pooled
    assert made.count("soak") == 0 and made.count("ceiling") == 0  # their rows were decided
