"""ingestlab.notebook.display: the run a notebook reads, whole tables, recorded numbers."""

from __future__ import annotations

import json
import math
from pathlib import Path

import polars as pl
import pytest
from factories import summary

from ingestlab.config import StudyConfig
from ingestlab.notebook.display import (
    RUN_MIMETYPE,
    Table,
    latest_or_new_run,
    record_notebook_summary,
    show_run,
)
from ingestlab.results import Run


@pytest.fixture
def run(tmp_path: Path) -> Run:
    created = Run.create(StudyConfig.for_profile("quick", runs_dir=tmp_path / "runs"), "ceiling")
    created.write_summary(summary("ceiling", {"node": {"ceiling_rps": 6000.0}}))
    return created


def test_record_notebook_summary_keeps_the_summary_and_refuses_non_json(run: Run) -> None:
    measured = run.summary
    record = record_notebook_summary(run, "01_throughput_ceiling", {"ceiling_rps": {"node": 6000}})
    assert run.summary == measured and run.warnings == []  # the typed summary as it was
    entry = run.notebook_records["01_throughput_ceiling"]
    assert entry["numbers"] == {"ceiling_rps": {"node": 6000}} and entry["recorded_utc"]
    record_notebook_summary(run, "02_latency_under_load", {"p99_ms": 12.5})
    assert set(run.notebook_records) == {"01_throughput_ceiling", "02_latency_under_load"}
    bundle = record._repr_mimebundle_()
    assert bundle[RUN_MIMETYPE] == {"run_dir": str(run.path), "run_id": run.run_id}
    with pytest.raises(ValueError):
        record_notebook_summary(run, "bad", {"p99_ms": math.nan})
    with pytest.raises(TypeError):
        record_notebook_summary(run, "bad", {"frame": pl.DataFrame({"a": [1]})})
    assert "bad" not in run.notebook_records
    assert json.loads((run.path / "notebooks.json").read_text()) == run.notebook_records


def test_show_run_puts_warnings_first(run: Run) -> None:
    plain = show_run(run)._repr_mimebundle_()
    assert "No warnings" in plain["text/html"]
    with pytest.warns(UserWarning):
        run.write_summary(run.summary, warnings_found=["rust: 3 accepted requests have no record in Kafka"])
    bundle = show_run(run)._repr_mimebundle_()
    assert "1 warning(s)" in bundle["text/html"]
    assert "rust: 3 accepted requests have no record in Kafka" in bundle["text/html"]
    assert "WARNING: rust: 3 accepted" in bundle["text/plain"]
    assert bundle[RUN_MIMETYPE]["run_dir"] == str(run.path)


def test_table_shows_every_row_and_whole_strings() -> None:
    frame = pl.DataFrame({"step": list(range(30)), "reason": ["x" * 120] * 30})
    shown = repr(Table(frame))
    assert "│ 29 " in shown and "x" * 120 in shown and "…" not in shown


def test_latest_or_new_run_reuses_a_matching_complete_run(tmp_path: Path) -> None:
    quick = StudyConfig.for_profile("quick", runs_dir=tmp_path)
    older = Run.create(quick, "ceiling")
    older.write_summary(summary("ceiling"))
    other_services = Run.create(quick.replace(services=("rust",)), "ceiling")
    other_services.write_summary(summary("ceiling"))
    Run.create(quick, "ceiling")  # newest, but incomplete: no summary.json
    assert latest_or_new_run(quick, "ceiling") == older


def test_latest_or_new_run_of_a_study_takes_only_that_studys_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ingestlab import experiments

    quick = StudyConfig.for_profile("quick", runs_dir=tmp_path)
    mine = quick.replace(study_id="S1")
    studys = Run.create(mine, "ceiling")
    studys.write_summary(summary("ceiling"))
    newer = Run.create(quick, "ceiling")  # of no study
    newer.write_summary(summary("ceiling"))
    assert latest_or_new_run(mine, "ceiling") == studys
    assert latest_or_new_run(quick, "ceiling") == newer  # no study id: any study
    made: list[StudyConfig] = []

    def fake_ceiling(cfg: StudyConfig) -> Run:
        made.append(cfg)
        run = Run.create(cfg, "ceiling")
        run.write_summary(summary("ceiling"))
        return run

    monkeypatch.setitem(experiments.EXPERIMENTS, "ceiling", fake_ceiling)
    other = quick.replace(study_id="S2")
    new = latest_or_new_run(other, "ceiling")  # S2 has none yet: measured for S2
    assert made == [other] and new.meta["config"]["study_id"] == "S2"
