"""Executing notebooks, rendering reports and the index (the notebooks' views: test_notebook_*)."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from types import SimpleNamespace

import nbformat
import pytest
from factories import summary
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
    created.write_summary(summary("ceiling", {"node": {"ceiling_rps": 6000.0}}))
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
            "from ingestlab.notebook.display import record_notebook_summary\n"
            "from ingestlab.results import Run\n"
            'print(f"hello from {message}")\n'
            'record_notebook_summary(Run.open(run_dir), "01_tiny", {"answer": 42})'
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
    assert run.notebook_records["01_tiny"]["numbers"] == {"answer": 42}


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


# --- what report.py holds ------------------------------------------------------------------


def test_report_holds_no_notebook_views_and_no_article_facts() -> None:
    """The views are in ingestlab.notebook, the article's facts in data/ (read by
    ingestlab.notebook.article): none of them is written down in report.py."""
    from ingestlab.notebook import article

    source = Path(report.__file__).read_text()
    for name in ("show_run", "Table", "record_notebook_summary", "latest_or_new_run", "article_claims"):
        assert not hasattr(report, name), name
    assert "ARTICLE_" not in source and "article_facts" not in source and "article_claims" not in source
    numbers = [fact.value for fact in article.article_facts().values() if fact.value is not None]
    for claim in article.article_claims().values():
        numbers += [claim["node_value"], claim["rust_value"]]
    for number in numbers:
        assert not re.search(rf"(?<![\w.]){re.escape(str(number))}(?![\w.])", source), number
        if number >= 1_000:  # also as written with separators: 10,000 or 10_000
            assert f"{number:,}" not in source and f"{number:_}" not in source, number
    for fact in article.article_facts().values():
        assert fact.text not in source and fact.quote not in source, fact.key
