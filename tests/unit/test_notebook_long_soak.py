"""Notebook 03's long soak (`ingestlab.notebook.soak`): the newest soak of this machine of 30
minutes or more, its table and its trends, and what to say when there is none."""

from __future__ import annotations

import json

import polars as pl
import pytest
from factories import summary

from ingestlab.config import StudyConfig
from ingestlab.notebook.soak import (
    long_soak_runs,
    long_soak_samples,
    long_soak_slopes,
    long_soak_table,
    long_soaks,
    no_long_soak,
)
from ingestlab.results import Run


@pytest.fixture
def config(tmp_path) -> StudyConfig:
    return StudyConfig.for_profile("full", runs_dir=tmp_path / "runs")


LONG = {"duration_s": 3600.0, "segments": 60, "segment_s": 60.0, "segment_gap_s": 59.0,
        "segment_gap_share": 59 / 3659, "rss_slope_mib_per_h": 3.0, "rss_slope_ci_mib_per_h": [1.0, 5.0],
        "memory_parts": {"grew_most": "V8 heap"}, "rig_rss_peak_mib": 250.0, "engine_rss_peak_mib": 180.0,
        "memory_part_slopes": {"heap_total": {"slope_mib_per_h": 2.5, "ci_mib_per_h": [0.5, 4.5]},
                               "queue": {"slope_mib_per_h": -0.1, "ci_mib_per_h": [-0.3, 0.1]}}}


def _soak(config: StudyConfig, services: dict, **changes) -> Run:
    run = Run.create(config.replace(**changes), "soak")
    run.write_summary(summary("soak", services))
    return run


def test_the_newest_long_soak_of_this_machine_any_profile_or_study(config):
    assert long_soak_runs(config) == []
    _soak(config, {"node": {"duration_s": 120.0}})
    older = _soak(config, {"node": LONG}, study_id="s1")
    newer = _soak(config, {"rust": {**LONG, "duration_s": 1800.0}}, profile="quick")
    _soak(config, {"node": {"duration_s": 1799.0}})
    assert [run.run_id for run in long_soak_runs(config)] == [newer.run_id, older.run_id]
    # another machine's run is left out
    meta = json.loads((newer.path / "meta.json").read_text())
    meta["environment"]["hostname"] = "elsewhere"
    (newer.path / "meta.json").write_text(json.dumps(meta))
    assert [run.run_id for run in long_soak_runs(config)] == [older.run_id]
    assert long_soak_runs(config, min_duration_s=4000) == []


def test_the_newest_long_soak_of_each_service(config):
    assert long_soaks(config) == {}
    node_old = _soak(config, {"node": LONG})
    rust = _soak(config, {"rust": LONG})
    node_new = _soak(config, {"node": LONG, "rust": {"duration_s": 120.0}})
    found = long_soaks(config)
    assert {service: run.run_id for service, run in found.items()} == {"node": node_new.run_id,
                                                                       "rust": rust.run_id}
    assert list(found) == ["node", "rust"]
    named = long_soaks(config, run_path=str(node_old.path))
    assert {service: run.run_id for service, run in named.items()} == {"node": node_old.run_id}
    for service, run in found.items():
        run.write_frame("samples", pl.DataFrame({"t_ns": [1, 2], "rss_bytes": [10, 20],
                                                 "service": [service, "other"]}))
    assert long_soak_samples(found)["service"].to_list() == ["node", "rust"]


def test_the_long_soaks_table_and_its_trends(config):
    run = _soak(config, {"node": LONG, "rust": {**LONG, "memory_part_slopes": None, "memory_parts": None,
                                                "rss_slope_mib_per_h": -0.2,
                                                "rss_slope_ci_mib_per_h": [-0.5, 0.1]}})
    soaks = {"node": run, "rust": run}
    table = long_soak_table(soaks)
    node = table.row(0, named=True)
    assert (node["service"], node["run"], node["segments"], node["grew_most"]) == ("node", run.run_id, 60,
                                                                                   "V8 heap")
    assert node["segment_gap_pct"] == pytest.approx(100 * 59 / 3659)
    trend = (node["slope_low_mib_per_h"], node["rss_slope_mib_per_h"], node["slope_high_mib_per_h"])
    assert trend == (1, 3, 5)
    assert (node["rig_rss_peak_mib"], node["engine_rss_peak_mib"]) == (250.0, 180.0)
    slopes = long_soak_slopes(soaks)
    assert slopes.select("service", "series", "verdict").rows() == [
        ("node", "RSS", "grows"), ("node", "part: heap_total", "grows"),
        ("node", "part: queue", "no trend shown"), ("rust", "RSS", "no trend shown")]


def test_a_soak_without_a_trend_has_no_verdict(config):
    run = _soak(config, {"node": {"duration_s": 12.0}})
    row = long_soak_slopes({"node": run}).row(0, named=True)
    assert (row["series"], row["slope_mib_per_h"], row["verdict"]) == ("RSS", None, None)
    assert long_soak_table({"node": run})["segments"].to_list() == [1]


def test_without_a_long_soak_the_notebook_says_how_to_make_one(config):
    text = no_long_soak(config)
    assert "30 minutes" in text and "ingestlab run soak --profile full --duration 1h" in text
    assert str(config.runs_dir) in text
