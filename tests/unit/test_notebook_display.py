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


