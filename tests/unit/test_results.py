import json
import time

import polars as pl
import pytest

from ingestlab.config import CoreLayout, StudyConfig
from ingestlab.results import SCHEMA_VERSION, Run, RunFormatError, RunWarning, check_comparable, latest_run


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
    with pytest.warns(RunWarning, match="2 lost"):
        run.write_summary({"rust": {"lost": 2}}, warnings_found=["rust: 2 lost"])
    reopened = Run.open(run.path)
    assert reopened.summary["rust"] == {"lost": 2}
    assert reopened.summary["warnings"] == ["rust: 2 lost"]
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


def test_latest_run_picks_the_newest_of_an_experiment(config):
    assert latest_run(config.runs_dir, "smoke") is None
    Run.create(config, "smoke")
    Run.create(config, "other")
    time.sleep(0.002)
    time.sleep(0.002)  # run ids sort by their millisecond time stamp
    newest = Run.create(config, "smoke")
    assert latest_run(config.runs_dir, "smoke") == newest
