"""Executing notebooks, rendering reports and the index, and the notebook helpers."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from types import SimpleNamespace

import nbformat
import polars as pl
import pytest
from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from ingestlab import report
from ingestlab.config import StudyConfig
from ingestlab.results import Run


def _write_notebook(path: Path, *, title: str, body: str, parameters: str = 'message = "default"') -> Path:
    params = new_code_cell(parameters)
    params.metadata["tags"] = ["parameters"]
    nb = new_notebook(
        cells=[new_markdown_cell(f"# {title}\n\nA throwaway notebook."), params, new_code_cell(body)]
    )
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


@pytest.fixture
def run(tmp_path: Path) -> Run:
    created = Run.create(StudyConfig.for_profile("quick", runs_dir=tmp_path / "runs"), "ceiling")
    created.write_summary({"node": {"ceiling_rps": 6000}})
    return created


# --- kernel --------------------------------------------------------------------------------


def test_kernel_runs_this_interpreter() -> None:
    major, minor = sys.version_info[:2]
    assert report._runs_this_interpreter(["python", "-m", "ipykernel_launcher"])
    assert report._runs_this_interpreter([f"python{major}.{minor}", "-m", "ipykernel_launcher"])
    assert report._runs_this_interpreter([sys.executable, "-m", "ipykernel_launcher"])
    assert not report._runs_this_interpreter(["/opt/other/bin/python3", "-m", "ipykernel_launcher"])
    assert not report._runs_this_interpreter([])
    assert report._runs_this_interpreter(KernelSpecManager().get_kernel_spec(report.kernel_name()).argv)


class _FakeSpecs:
    """Kernelspecs by name -> argv, standing in for Jupyter's search path."""

    specs: dict[str, list[str]] = {}

    def get_kernel_spec(self, name: str) -> SimpleNamespace:
        if name not in self.specs:
            raise NoSuchKernel(name)
        return SimpleNamespace(argv=self.specs[name])


@pytest.mark.parametrize(
    ("installed_argv", "expected"),
    [([sys.executable], "ingestlab"), (["/opt/other/bin/python3"], None)],
    ids=["installs-into-the-venv", "still-shadowed"],
)
def test_kernel_falls_back_to_an_ingestlab_spec_when_python3_is_another_interpreter(
    monkeypatch: pytest.MonkeyPatch, installed_argv: list[str], expected: str | None
) -> None:
    import ipykernel.kernelspec

    _FakeSpecs.specs = {"python3": ["/usr/bin/python3", "-m", "ipykernel_launcher"]}
    installs: list[dict[str, object]] = []

    def install(**kwargs: object) -> str:
        installs.append(kwargs)
        _FakeSpecs.specs[str(kwargs["kernel_name"])] = installed_argv
        return ""

    monkeypatch.setattr(report, "KernelSpecManager", _FakeSpecs)
    monkeypatch.setattr(ipykernel.kernelspec, "install", install)
    if expected is None:
        with pytest.raises(RuntimeError, match="shadows the venv's"):
            report.kernel_name()
    else:
        assert report.kernel_name() == expected
    # installed into this interpreter's prefix (the venv), never the user's directories
    assert installs == [
        {"kernel_name": "ingestlab", "display_name": "Python (ingestlab)", "prefix": sys.prefix}
    ]


# --- executing and rendering ---------------------------------------------------------------


def test_execute_and_render_a_parameterised_notebook(tmp_path: Path, run: Run) -> None:
    source = _write_notebook(
        tmp_path / "01_tiny.ipynb",
        title="Tiny & small",
        body=(
            "from ingestlab import report\n"
            "from ingestlab.results import Run\n"
            'print(f"hello from {message}")\n'
            'report.record_notebook_summary(Run.open(run_dir), "01_tiny", {"answer": 42})'
        ),
        parameters='message = "default"\nrun_dir = ""',
    )
    executed = report.execute_notebook(
        source, tmp_path / "out" / "01_tiny.ipynb", {"message": "papermill", "run_dir": str(run.path)}
    )
    nb = nbformat.read(executed, as_version=4)
    streams = [
        o.text for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "stream"
    ]
    assert streams == ["hello from papermill\n"]
    assert nbformat.read(source, as_version=4).cells[2].outputs == []  # the source is untouched

    page = report.render_html(executed, tmp_path / "reports")
    assert page == tmp_path / "reports" / "01_tiny.html"
    text = page.read_text()
    assert "hello from papermill" in text
    assert "<title>Tiny &amp; small</title>" in text
    assert "In&nbsp;[" not in text  # no prompts
    assert 'class="jp-InputPrompt' not in text and 'class="jp-OutputPrompt' not in text

    entry = report.report_entry(executed, page)
    assert entry.title == "Tiny & small" and entry.notebook == "01_tiny"
    assert entry.runs == (run.path,) and not entry.failed
    assert run.summary["notebook"]["01_tiny"]["numbers"] == {"answer": 42}


def test_run_study_stops_at_the_first_failing_notebook(tmp_path: Path) -> None:
    notebooks, reports = tmp_path / "notebooks", tmp_path / "reports"
    notebooks.mkdir()
    _write_notebook(
        notebooks / "01_fine.ipynb",
        title="Fine",
        body='print("fine", profile)',
        parameters='profile = "full"',
    )
    _write_notebook(
        notebooks / "02_broken.ipynb",
        title="Broken",
        body='print("before the failure")\nraise ValueError("no steps in this run")',
        parameters='profile = "full"',
    )
    _write_notebook(
        notebooks / "03_later.ipynb", title="Later", body='print("never")', parameters='profile = "full"'
    )
    _write_notebook(notebooks / "scratch.ipynb", title="Not part of the study", body="1", parameters="x = 1")

    with pytest.raises(
        report.NotebookError, match=r"02_broken\.ipynb.*ValueError: no steps in this run"
    ) as err:
        report.run_study("quick", notebooks, reports)
    assert err.value.notebook == notebooks / "02_broken.ipynb"
    assert "02_broken.html" in str(err.value)

    assert not (reports / "03_later.ipynb").exists()  # stopped there
    broken = (reports / "02_broken.html").read_text()
    assert "before the failure" in broken and "no steps in this run" in broken
    index = (reports / "index.html").read_text()
    assert '<a href="01_fine.html">Fine</a>' in index
    assert '<a href="02_broken.html">Broken</a>' in index
    assert "failed: ValueError: no steps in this run" in index
    assert "Later" not in index and "scratch" not in index
    fine = nbformat.read(reports / "01_fine.ipynb", as_version=4)
    assert fine.cells[-1].outputs[0].text == "fine quick\n"  # the profile reached the notebook


# --- the index -----------------------------------------------------------------------------


def test_render_index_lists_reports_with_titles_links_profiles_dates_and_runs(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    run_dir = tmp_path / "data" / "runs" / "20261126T043920240Z-ceiling-5ac113"
    entries = [
        report.ReportEntry(
            notebook="01_throughput_ceiling",
            title="Throughput <ceiling> & more",
            html=reports / "01_throughput_ceiling.html",
            profile="full",
            executed_utc="2026-11-26T04:56:52.177861+00:00",
            runs=(run_dir,),
        ),
        report.ReportEntry(
            notebook="02_latency_under_load",
            title="Latency under load",
            html=reports / "02_latency_under_load.html",
            profile="quick",
            executed_utc=None,
            runs=(),
            error="KeyError: 'p99_ms'",
        ),
    ]
    index = report.render_index(reports, entries)
    assert index == reports / "index.html"
    text = index.read_text()
    assert '<a href="01_throughput_ceiling.html">Throughput &lt;ceiling&gt; &amp; more</a>' in text
    assert '<a href="02_latency_under_load.html">Latency under load</a>' in text
    assert "2026-11-26 04:56 UTC" in text
    assert "<td>full</td>" in text and "<td>quick</td>" in text
    assert '<a href="../data/runs/20261126T043920240Z-ceiling-5ac113">' in text
    assert "failed: KeyError: &#x27;p99_ms&#x27;" in text
    assert text.count("<tr>") == 3  # header + two entries
    assert "<script" not in text


# --- helpers for the notebooks -------------------------------------------------------------


def test_record_notebook_summary_keeps_the_summary_and_refuses_non_json(run: Run) -> None:
    record = report.record_notebook_summary(run, "01_throughput_ceiling", {"ceiling_rps": {"node": 6000}})
    summary = run.summary
    assert summary["node"] == {"ceiling_rps": 6000} and summary["warnings"] == []
    entry = summary["notebook"]["01_throughput_ceiling"]
    assert entry["numbers"] == {"ceiling_rps": {"node": 6000}} and entry["recorded_utc"]
    report.record_notebook_summary(run, "02_latency_under_load", {"p99_ms": 12.5})
    assert set(run.summary["notebook"]) == {"01_throughput_ceiling", "02_latency_under_load"}
    bundle = record._repr_mimebundle_()
    assert bundle[report.RUN_MIMETYPE] == {"run_dir": str(run.path), "run_id": run.run_id}
    with pytest.raises(ValueError):
        report.record_notebook_summary(run, "bad", {"p99_ms": math.nan})
    with pytest.raises(TypeError):
        report.record_notebook_summary(run, "bad", {"frame": pl.DataFrame({"a": [1]})})
    assert "bad" not in run.summary["notebook"]
    assert json.loads((run.path / "summary.json").read_text()) == run.summary


def test_show_run_puts_warnings_first(run: Run) -> None:
    plain = report.show_run(run)._repr_mimebundle_()
    assert "No warnings" in plain["text/html"]
    with pytest.warns(UserWarning):
        run.write_summary({}, warnings_found=["rust: 3 accepted requests have no record in Kafka"])
    bundle = report.show_run(run)._repr_mimebundle_()
    assert "1 warning(s)" in bundle["text/html"]
    assert "rust: 3 accepted requests have no record in Kafka" in bundle["text/html"]
    assert "WARNING: rust: 3 accepted" in bundle["text/plain"]
    assert bundle[report.RUN_MIMETYPE]["run_dir"] == str(run.path)


def _steps(rows: list[tuple[str, int, bool, bool]]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=["service", "offered_rps", "passed", "engine_saturated"], orient="row")


def test_common_passed_rates_and_the_comparison_rate() -> None:
    steps = _steps(
        [
            ("node", 1000, True, False),
            ("node", 2000, True, False),
            ("node", 4000, False, False),
            ("rust", 1000, True, False),
            ("rust", 2000, True, False),
            ("rust", 4000, True, False),
        ]
    )
    assert report.common_passed_rates(steps) == [1000.0, 2000.0]
    assert report.comparison_rate(steps) == 2000.0
    nothing_shared = _steps(
        [("node", 1000, False, False), ("rust", 1000, True, False), ("rust", 2000, True, False)]
    )
    assert report.common_passed_rates(nothing_shared) == []
    assert report.comparison_rate(nothing_shared) == 1000.0


def test_latest_or_new_run_reuses_a_matching_complete_run(tmp_path: Path) -> None:
    quick = StudyConfig.for_profile("quick", runs_dir=tmp_path)
    older = Run.create(quick, "ceiling")
    older.write_summary({})
    other_services = Run.create(quick.replace(services=("rust",)), "ceiling")
    other_services.write_summary({})
    Run.create(quick, "ceiling")  # newest, but incomplete: no summary.json
    assert report.latest_or_new_run(quick, "ceiling") == older


def test_latest_or_new_run_of_a_study_takes_only_that_studys_runs(tmp_path: Path, monkeypatch) -> None:
    from ingestlab import experiments

    quick = StudyConfig.for_profile("quick", runs_dir=tmp_path)
    mine = quick.replace(study_id="S1")
    studys = Run.create(mine, "ceiling")
    studys.write_summary({})
    newer = Run.create(quick, "ceiling")  # of no study
    newer.write_summary({})
    assert report.latest_or_new_run(mine, "ceiling") == studys
    assert report.latest_or_new_run(quick, "ceiling") == newer  # no study id: any study
    made: list[StudyConfig] = []

    def fake_ceiling(cfg: StudyConfig) -> Run:
        made.append(cfg)
        run = Run.create(cfg, "ceiling")
        run.write_summary({})
        return run

    monkeypatch.setitem(experiments.EXPERIMENTS, "ceiling", fake_ceiling)
    other = quick.replace(study_id="S2")
    new = report.latest_or_new_run(other, "ceiling")  # S2 has none yet: measured for S2
    assert made == [other] and new.meta["config"]["study_id"] == "S2"
