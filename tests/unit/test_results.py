import json
import re
import time

import polars as pl
import pytest
from factories import summary

from ingestlab.config import CoreLayout, StudyConfig
from ingestlab.results import (
    SCHEMA_VERSION,
    Run,
    RunFormatError,
    RunWarning,
    check_comparable,
    find_runs,
    new_study_id,
)


@pytest.fixture
def config(tmp_path):
    return StudyConfig.for_profile("quick", runs_dir=tmp_path / "runs")


def test_run_directory_has_versioned_meta_with_environment(config):
    run = Run.create(config, "smoke")
    meta = run.meta
    assert meta["schema_version"] == SCHEMA_VERSION
    assert meta["experiment"] == "smoke" and meta["run_id"] == run.run_id
    assert meta["cores"] == config.cores.as_dict()
    assert meta["config"]["profile"] == "quick"
    env = meta["environment"]
    assert env["cpu_count"] >= 1 and env["cpu_model"]
    assert env["tools"]["python"].startswith("3.")
    assert run.logs_dir.is_dir()


def test_frames_and_summary_round_trip_and_warnings_are_raised(config):
    run = Run.create(config, "smoke")
    frame = pl.DataFrame({"request_id": ["a", "b"], "status": [202, 400]})
    run.write_frame("requests", frame)
    assert run.read_frame("requests").equals(frame)
    written = summary("smoke", {"rust": {"lost": 2}})
    with pytest.warns(RunWarning, match="2 lost"):
        run.write_summary(written, warnings_found=["rust: 2 lost"])
    reopened = Run.open(run.path)
    assert reopened.summary == written and reopened.summary.services["rust"].lost == 2
    assert reopened.warnings == ["rust: 2 lost"]
    with pytest.raises(ValueError, match="a soak summary for a smoke run"):
        run.write_summary(summary("soak"))
    with pytest.raises(FileNotFoundError, match="no gc.parquet"):
        run.read_frame("gc")


def test_open_refuses_other_schema_versions_and_non_runs(config, tmp_path):
    run = Run.create(config, "smoke")
    meta = run.meta
    meta["schema_version"] = SCHEMA_VERSION + 1
    (run.path / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(RunFormatError, match="schema version"):
        Run.open(run.path)
    with pytest.raises(RunFormatError, match="not a run directory"):
        Run.open(tmp_path)


def test_runs_with_different_core_layouts_are_not_merged(config):
    a = Run.create(config, "smoke")
    b = Run.create(config, "smoke")
    check_comparable([a, b])
    c = Run.create(config.replace(cores=CoreLayout(service=(0,), broker=(1,), load=(1,))), "smoke")
    with pytest.raises(RunFormatError, match="different environments"):
        check_comparable([a, c])


def _finished(config, experiment="soak", **changes):
    time.sleep(0.002)  # run ids sort by their millisecond time stamp: one per run
    run = Run.create(config.replace(**changes) if changes else config, experiment)
    run.write_summary(summary(experiment))
    return run


def _ids(runs):
    return [run.run_id for run in runs]


def test_find_runs_newest_first_complete_only_and_limited(config):
    assert find_runs(config.runs_dir, "smoke") == []
    older = _finished(config, "smoke")
    _finished(config, "soak")  # another experiment
    time.sleep(0.002)  # run ids sort by their millisecond time stamp
    newest = _finished(config, "smoke")
    time.sleep(0.002)
    running = Run.create(config, "smoke")  # no summary.json yet
    assert _ids(find_runs(config.runs_dir, "smoke")) == [newest.run_id, older.run_id]
    assert _ids(find_runs(config.runs_dir, "smoke", limit=1)) == [newest.run_id]
    assert find_runs(config.runs_dir, "smoke", limit=0) == []
    assert _ids(find_runs(config.runs_dir, "smoke", complete=False)) == [
        running.run_id, newest.run_id, older.run_id
    ]
    with pytest.raises(ValueError):
        find_runs(config.runs_dir, "smoke", limit=-1)


def test_find_runs_filters_by_profile_and_study_id(config):
    none = _finished(config)
    a = _finished(config, study_id="A")
    b = _finished(config, study_id="B")
    full_a = _finished(config, profile="full", study_id="A")
    runs_dir = config.runs_dir
    assert _ids(find_runs(runs_dir, "soak")) == _ids([full_a, b, a, none])
    assert _ids(find_runs(runs_dir, "soak", study_id="A")) == _ids([full_a, a])
    assert _ids(find_runs(runs_dir, "soak", profile="quick", study_id="A")) == _ids([a])
    assert _ids(find_runs(runs_dir, "soak", profile="quick")) == _ids([b, a, none])
    assert find_runs(runs_dir, "soak", study_id="C") == []
    assert a.meta["config"]["study_id"] == "A" and none.meta["config"]["study_id"] is None


def test_find_runs_services_means_the_run_measured_all_of_them(config):
    both = _finished(config)
    rust = _finished(config, services=("rust",))
    runs_dir = config.runs_dir
    assert _ids(find_runs(runs_dir, "soak", services=("node", "rust"))) == _ids([both])
    assert _ids(find_runs(runs_dir, "soak", services=("rust", "node"))) == _ids([both])
    assert _ids(find_runs(runs_dir, "soak", services=("rust",))) == _ids([rust, both])
    assert _ids(find_runs(runs_dir, "soak", services=("node",))) == _ids([both])
    assert _ids(find_runs(runs_dir, "soak", services=None)) == _ids([rust, both])
    with pytest.raises(TypeError):
        find_runs(runs_dir, "soak", services="rust")


def test_find_runs_skips_other_schema_versions_non_runs_and_other_experiments(config):
    current = _finished(config)
    old = _finished(config)
    meta = old.meta
    meta["schema_version"] = SCHEMA_VERSION + 1
    (old.path / "meta.json").write_text(json.dumps(meta))
    (config.runs_dir / "29991231T000000000Z-soak-000000").mkdir()  # looks like a run, is none
    _finished(config, "engine-capacity")
    assert _ids(find_runs(config.runs_dir, "soak", complete=False)) == _ids([current])
    assert find_runs(config.runs_dir, "capacity") == []  # the glob matches engine-capacity too
    assert len(find_runs(config.runs_dir, "engine-capacity")) == 1


def test_new_study_id_is_utc_time_and_random_hex():
    first, second = new_study_id(), new_study_id()
    assert re.fullmatch(r"\d{8}T\d{6}Z-[0-9a-f]{6}", first), first
    assert first != second
