"""The workbook's reports: execute the numbered notebooks (papermill), render them to HTML
(nbconvert), and write reports/index.html.

```
notebooks/NN_name.ipynb      stored without outputs; one cell tagged `parameters`
reports/NN_name.ipynb        the executed copy (outputs, papermill metadata)
reports/NN_name.html         the rendered report: static HTML, charts as embedded PNG
reports/index.html           one line per notebook: title, status, profile, date, runs used
```

Everything the index says comes from the executed notebooks themselves (data first): the
title from the first markdown heading, profile and date from papermill's metadata, and the
run directories from outputs the notebook displayed with `show_run` or
`record_notebook_summary`, which carry the run's path in a mimetype of their own
(`RUN_MIMETYPE`) beside their HTML and text. So an index can be rebuilt from executed
notebooks alone, and a notebook that failed halfway still names the run it was reading.

Kernel: notebooks run in a kernel of *this* interpreter (`kernel_name`), so a fresh
`pip install -e .[dev]` needs no `ipykernel install` step.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import os
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
import papermill
import polars as pl
from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbconvert import HTMLExporter
from papermill.exceptions import PapermillExecutionError

from ingestlab.charts import with_verdict
from ingestlab.config import StudyConfig
from ingestlab.results import Run, RunFormatError

# Outputs carrying {"run_dir": ..., "run_id": ...}: which runs an executed notebook used.
RUN_MIMETYPE = "application/vnd.ingestlab.run+json"
NOTEBOOK_NAME = re.compile(r"^\d{2}_[\w-]+\.ipynb$")
NATIVE_KERNEL = "python3"
FALLBACK_KERNEL = "ingestlab"


class NotebookError(RuntimeError):
    """A notebook failed while executing; its partially executed copy is at `executed`."""

    def __init__(self, message: str, *, notebook: Path, executed: Path) -> None:
        super().__init__(message)
        self.notebook = notebook
        self.executed = executed


# --- kernel --------------------------------------------------------------------------------


def _runs_this_interpreter(argv: Sequence[str]) -> bool:
    """Whether a kernelspec's command starts this interpreter.

    jupyter_client replaces a bare `python`, `python3` or `python3.X` with sys.executable
    when it launches a kernel; an absolute path must be this one. Not resolved through
    symlinks: a venv's python is a link to the base interpreter, which lacks the venv.
    """
    major, minor = sys.version_info[:2]
    if not argv:
        return False
    return argv[0] in {"python", f"python{major}", f"python{major}.{minor}"} or argv[0] == sys.executable


def kernel_name() -> str:
    """The name of a Jupyter kernel that runs this interpreter (so this venv's ingestlab).

    Normally `python3`: installing ipykernel (a jupyterlab dependency) puts a `python3`
    kernelspec into the venv whose command is a bare `python`, which jupyter_client runs as
    sys.executable, and inside a venv Jupyter looks at the venv's kernels before the
    user's. If a `python3` spec that starts another interpreter shadows it anyway (e.g.
    JUPYTER_PREFER_ENV_PATH=0 and a user-level spec), a spec named `ingestlab` pointing at
    sys.executable is installed into the venv (sys.prefix; nothing outside it) and used.
    """
    specs = KernelSpecManager()
    try:
        if _runs_this_interpreter(specs.get_kernel_spec(NATIVE_KERNEL).argv):
            return NATIVE_KERNEL
    except NoSuchKernel:
        pass
    from ipykernel.kernelspec import install

    install(kernel_name=FALLBACK_KERNEL, display_name="Python (ingestlab)", prefix=sys.prefix)
    argv = KernelSpecManager().get_kernel_spec(FALLBACK_KERNEL).argv
    if not _runs_this_interpreter(argv):
        raise RuntimeError(
            f"no Jupyter kernel runs {sys.executable}: kernel {FALLBACK_KERNEL!r} starts {argv[0]} "
            "(a user-level kernelspec shadows the venv's; `jupyter kernelspec list` shows where)"
        )
    return FALLBACK_KERNEL


# --- executing and rendering ---------------------------------------------------------------


def execute_notebook(
    path: Path | str,
    out_path: Path | str,
    parameters: Mapping[str, Any],
    *,
    cwd: Path | str | None = None,
    timeout_s: float | None = None,
) -> Path:
    """Execute the notebook at `path` with papermill, writing the executed copy to `out_path`.

    `parameters` replace the values of the cell tagged `parameters`. The kernel runs in
    `cwd` (default: the notebook's directory, so relative paths in a notebook mean the same
    in JupyterLab and here). `timeout_s` bounds each cell (None: no bound; a full-profile
    experiment cell runs for many minutes). The copy is saved after every cell, so a
    failure leaves it with the outputs up to the failing cell.

    Raises NotebookError naming the notebook and the failing cell.
    """
    path, out_path = Path(path), Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        papermill.execute_notebook(
            str(path),
            str(out_path),
            parameters=dict(parameters),
            kernel_name=kernel_name(),
            cwd=str(cwd or path.parent),
            progress_bar=False,
            log_output=False,
            request_save_on_cell_execute=True,
            execution_timeout=timeout_s,
        )
    except PapermillExecutionError as err:
        raise NotebookError(
            f"notebook {path.name} failed in cell [{err.exec_count}]: {err.ename}: {err.evalue}",
            notebook=path,
            executed=out_path,
        ) from err
    except (CellTimeoutError, DeadKernelError) as err:
        raise NotebookError(
            f"notebook {path.name} failed: {type(err).__name__}: {err}", notebook=path, executed=out_path
        ) from err
    return out_path


def notebook_title(nb: nbformat.NotebookNode, default: str) -> str:
    """The first markdown heading of `nb` (any level), or `default`."""
    for cell in nb.cells:
        if cell.cell_type != "markdown":
            continue
        for line in cell.source.splitlines():
            if line.startswith("#"):
                return line.lstrip("#").strip()
    return default


def render_html(executed_path: Path | str, out_dir: Path | str) -> Path:
    """Render an executed notebook to `out_dir/<name>.html`; returns its path.

    Without the In/Out prompts (noise for a reader); images referenced from markdown are
    embedded, and outputs (charts as PNG, see `charts.use_static_renderer`) already are,
    so the page is one self-contained file.
    """
    executed_path, out_dir = Path(executed_path), Path(out_dir)
    nb = nbformat.read(executed_path, as_version=4)
    exporter = HTMLExporter(
        template_name="lab", exclude_input_prompt=True, exclude_output_prompt=True, embed_images=True
    )
    body, _ = exporter.from_notebook_node(
        nb,
        resources={
            "metadata": {"name": notebook_title(nb, executed_path.stem), "path": str(executed_path.parent)}
        },
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / f"{executed_path.stem}.html"
    out.write_text(body, encoding="utf-8")
    return out


# --- the index -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ReportEntry:
    """One notebook's line in the index. `executed_utc` is ISO 8601 (papermill's end time)."""

    notebook: str
    title: str
    html: Path
    profile: str | None
    executed_utc: str | None
    runs: tuple[Path, ...]
    error: str | None = None

    @property
    def failed(self) -> bool:
        return self.error is not None


def _run_dirs(nb: nbformat.NotebookNode) -> tuple[Path, ...]:
    """Run directories named by RUN_MIMETYPE outputs, in order of appearance, once each."""
    found: dict[str, None] = {}
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            record = output.get("data", {}).get(RUN_MIMETYPE)
            if record:
                found[record["run_dir"]] = None
    return tuple(Path(p) for p in found)


def _first_error(nb: nbformat.NotebookNode) -> str | None:
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            if output.output_type == "error":
                return f"{output.ename}: {output.evalue}"
    return None


def report_entry(executed_path: Path | str, html_path: Path | str) -> ReportEntry:
    """The index line of an executed notebook and its rendered report."""
    executed_path = Path(executed_path)
    nb = nbformat.read(executed_path, as_version=4)
    meta = nb.metadata.get("papermill", {})
    failed = bool(meta.get("exception"))
    return ReportEntry(
        notebook=executed_path.stem,
        title=notebook_title(nb, executed_path.stem),
        html=Path(html_path),
        profile=meta.get("parameters", {}).get("profile"),
        executed_utc=meta.get("end_time") or meta.get("start_time"),
        runs=_run_dirs(nb),
        error=(_first_error(nb) or "execution failed") if failed else None,
    )


_INDEX_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 64rem; color: #222; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: .45rem .6rem; border-bottom: 1px solid #ddd; vertical-align: top; }
th { background: #f3f3f3; }
.failed { color: #b00020; font-weight: 600; }
.ok { color: #1b7f3b; }
.note { color: #666; font-size: .9rem; }
code { font-size: .85rem; }
"""


def _when(iso: str | None) -> str:
    if not iso:
        return "—"
    try:
        return dt.datetime.fromisoformat(iso).astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    except ValueError:
        return iso


def _index_row(reports_dir: Path, entry: ReportEntry) -> str:
    e = html.escape
    link = os.path.relpath(entry.html, reports_dir) if entry.html.is_absolute() else str(entry.html)
    runs = (
        "<br>".join(
            f'<a href="{e(os.path.relpath(run, reports_dir))}"><code>{e(run.name)}</code></a>'
            for run in entry.runs
        )
        or "—"
    )
    status = (
        f'<span class="failed">failed: {e(entry.error)}</span>'
        if entry.failed
        else '<span class="ok">ok</span>'
    )
    return (
        f'<tr><td><a href="{e(link)}">{e(entry.title)}</a><br>'
        f'<span class="note">{e(entry.notebook)}</span></td>'
        f"<td>{status}</td><td>{e(entry.profile or '—')}</td><td>{e(_when(entry.executed_utc))}</td>"
        f"<td>{runs}</td></tr>"
    )


def render_index(reports_dir: Path | str, entries: Sequence[ReportEntry]) -> Path:
    """Write `reports_dir/index.html`: one row per entry (plain HTML, no JavaScript)."""
    reports_dir = Path(reports_dir)
    reports_dir.mkdir(parents=True, exist_ok=True)
    written = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    rows = "\n".join(_index_row(reports_dir, entry) for entry in entries)
    page = f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>ingestlab reports</title>
<style>{_INDEX_STYLE}</style>
</head>
<body>
<h1>ingestlab reports</h1>
<p class="note">Node.js (Express) vs Rust (Actix-Web) ingestion into Kafka: the article's claims,
measured. Index written {written}. Each report is an executed notebook; its runs are the data it
read (<code>data/runs/&lt;run-id&gt;/</code>).</p>
<table>
<thead><tr><th>report</th><th>status</th><th>profile</th><th>executed</th><th>runs used</th></tr></thead>
<tbody>
{rows}
</tbody>
</table>
</body>
</html>
"""
    out = reports_dir / "index.html"
    out.write_text(page, encoding="utf-8")
    return out


def study_notebooks(notebooks_dir: Path | str) -> list[Path]:
    """The study's notebooks, `NN_name.ipynb`, in their numbered order."""
    return sorted(p for p in Path(notebooks_dir).glob("*.ipynb") if NOTEBOOK_NAME.match(p.name))


def run_study(
    profile: str,
    notebooks_dir: Path | str,
    reports_dir: Path | str,
    *,
    parameters: Mapping[str, Any] | None = None,
    timeout_s: float | None = None,
) -> list[ReportEntry]:
    """Execute the numbered notebooks in order with `profile`, render each, write the index.

    `parameters` are passed to every notebook besides `profile`. Stops at the first
    notebook that fails: its partially executed copy is rendered too (a reader sees where it
    failed), the index lists it as failed, and NotebookError names it and its report.
    """
    notebooks_dir, reports_dir = Path(notebooks_dir), Path(reports_dir)
    notebooks = study_notebooks(notebooks_dir)
    if not notebooks:
        raise FileNotFoundError(f"no notebooks named NN_name.ipynb in {notebooks_dir}")
    entries: list[ReportEntry] = []
    for notebook in notebooks:
        executed = reports_dir / notebook.name
        executed.unlink(missing_ok=True)  # never render a previous study's copy as this one's
        try:
            execute_notebook(
                notebook, executed, {**(parameters or {}), "profile": profile}, timeout_s=timeout_s
            )
        except NotebookError as err:
            if not executed.exists():  # the kernel never ran a cell: nothing to render
                render_index(reports_dir, entries)
                raise
            page = render_html(executed, reports_dir)
            entries.append(report_entry(executed, page))
            render_index(reports_dir, entries)
            raise NotebookError(
                f"{err}; the study stopped there. Partial report: {page}",
                notebook=notebook,
                executed=executed,
            ) from err
        entries.append(report_entry(executed, render_html(executed, reports_dir)))
    render_index(reports_dir, entries)
    return entries


# --- helpers for the notebooks -------------------------------------------------------------


def latest_or_new_run(config: StudyConfig, experiment: str) -> Run:
    """The newest complete run of `experiment` in `config.runs_dir` made with the same profile
    and services; a new run (`EXPERIMENTS[experiment](config)`) if there is none.

    For notebooks that analyse what an earlier notebook of the study measured, instead of
    repeating minutes of load. Complete = has summary.json (written last). The notebook
    shows which run it used (`show_run`), with its date.
    """
    # Imported here: rendering reports from saved runs should not need the stack's modules.
    from ingestlab.experiments import EXPERIMENTS

    candidates = sorted(p for p in config.runs_dir.glob(f"*-{experiment}-*") if (p / "summary.json").exists())
    for path in reversed(candidates):
        try:
            run = Run.open(path)
        except RunFormatError:  # another schema version: not comparable, not usable
            continue
        made_with = run.meta["config"]
        if made_with["profile"] == config.profile and tuple(made_with["services"]) == config.services:
            return run
    return EXPERIMENTS[experiment](config)


_BOX = "padding:.5em 1em;margin:.4em 0;border-left:6px solid "


@dataclass(frozen=True)
class RunOverview:
    """What a notebook reads: a run's identity and its warnings, shown prominently.

    Displays as HTML (the warnings in a box of their own) and as text, and carries the run's
    path for the index.
    """

    run_id: str
    run_dir: str
    experiment: str
    created_utc: str
    profile: str
    services: tuple[str, ...]
    git: str
    warnings: tuple[str, ...]

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        e = html.escape
        facts = (
            f"<b>{e(self.experiment)}</b> run <code>{e(self.run_id)}</code>, "
            f"profile <b>{e(self.profile)}</b>, "
            f"services {e(', '.join(self.services))}, created {e(self.created_utc)}, git {e(self.git)}"
        )
        if self.warnings:
            items = "".join(f"<li>{e(w)}</li>" for w in self.warnings)
            box = (
                f'<div style="{_BOX}#d97706;background:#fff7e6">'
                f"<b>&#9888; {len(self.warnings)} warning(s) about this run</b><ul>{items}</ul></div>"
            )
        else:
            box = (
                f'<div style="{_BOX}#1b7f3b;background:#eef8f0">'
                "No warnings: the run's checks on itself all passed.</div>"
            )
        text = [f"{self.experiment} run {self.run_id} ({self.run_dir}), profile {self.profile}"]
        text += [f"WARNING: {w}" for w in self.warnings] or ["no warnings"]
        return {
            "text/html": f"<p>{facts}</p>{box}",
            "text/plain": "\n".join(text),
            RUN_MIMETYPE: {"run_dir": self.run_dir, "run_id": self.run_id, "experiment": self.experiment},
        }


def show_run(run: Run) -> RunOverview:
    """A run's identity and warnings (from meta.json and summary.json), for display."""
    meta = run.meta
    git = meta["environment"]["git"]
    return RunOverview(
        run_id=run.run_id,
        run_dir=str(run.path),
        experiment=meta["experiment"],
        created_utc=meta["created_utc"],
        profile=meta["config"]["profile"],
        services=tuple(meta["config"]["services"]),
        git=f"{(git.get('sha') or 'unknown')[:10]}{' (dirty)' if git.get('dirty') else ''}",
        warnings=tuple(run.summary.get("warnings", [])),
    )


@dataclass(frozen=True)
class Table:
    """A frame displayed whole: polars shows 10 rows and cuts long strings by default, which
    in a report hides the very rows (the failing steps) and reasons a reader looks for."""

    frame: pl.DataFrame
    max_rows: int = 200

    def _config(self) -> pl.Config:
        return pl.Config(tbl_rows=self.max_rows, tbl_cols=-1, fmt_str_lengths=1_000, tbl_width_chars=200)

    def _repr_html_(self) -> str:
        with self._config():
            return self.frame._repr_html_()

    def __repr__(self) -> str:
        with self._config():
            return repr(self.frame)


def steps_table(steps: pl.DataFrame) -> Table:
    """A ceiling run's steps for reading: rates in req/s, latencies in ms, error rate in %,
    the verdict (passed / failed / inconclusive) and why."""
    readable = (
        with_verdict(steps)
        .select(
            "service",
            "step",
            "engine",
            "offered_rps",
            pl.col("achieved_rps").round(0),
            (100 * pl.col("error_rate")).round(3).alias("error_pct"),
            pl.col("p50_ms", "p99_ms", "max_ms").round(2),
            "lost",
            "verdict",
            "reasons",
        )
        .sort("service", "step")
    )
    return Table(readable)


def common_passed_rates(steps: pl.DataFrame) -> list[float]:
    """Offered rates (req/s), ascending, at which the steps of every service in `steps` passed:
    where the services can be compared at the same load."""
    services = steps["service"].n_unique()
    passed = (
        steps.filter(pl.col("passed"))
        .group_by("offered_rps")
        .agg(pl.col("service").n_unique().alias("services"))
        .filter(pl.col("services") == services)
    )
    return sorted(float(rate) for rate in passed["offered_rps"])


def comparison_rate(steps: pl.DataFrame) -> float:
    """The highest offered rate (req/s) at which every service passed its step; if there is
    none, the lowest rate offered (the steps' verdicts then say why the comparison is weak)."""
    return max(common_passed_rates(steps), default=float(steps["offered_rps"].min()))


def ceiling_numbers(run: Run) -> dict[str, Any]:
    """A ceiling run's key numbers, per service: `ceiling_rps` (highest passing step),
    `ceiling_engine`, `lower_bound` (the ramp ended on a passing or inconclusive step, so the
    true limit is higher), `wrk_rps` and `wrk_p99_ms` (closed-loop cross-check); and
    `rust_over_node` (ratios of ceiling and wrk rates) when both services ran."""
    summary = run.summary
    numbers: dict[str, Any] = {}
    for service in run.meta["config"]["services"]:
        found = summary[service]
        last = found["steps"][-1]
        numbers[service] = {
            "ceiling_rps": found["ceiling_rps"],
            "ceiling_engine": found["engine"],
            "lower_bound": bool(last["passed"] or last["engine_saturated"]),
            "wrk_rps": found["wrk_rps"],
            "wrk_p99_ms": found["wrk_p99_ms"],
        }
    if "rust_over_node" in summary:
        numbers["rust_over_node"] = summary["rust_over_node"]
    return numbers


@dataclass(frozen=True)
class NotebookRecord:
    """What `record_notebook_summary` wrote; displays as text and carries the run's path."""

    run_dir: str
    run_id: str
    name: str
    numbers: dict[str, Any]

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        pretty = json.dumps(self.numbers, indent=2)
        where = f"{self.run_dir}/summary.json, under notebook.{self.name}.numbers"
        return {
            "text/plain": f"Recorded in {where}:\n{pretty}",
            "text/html": f"<p>Recorded in <code>{html.escape(where)}</code>:</p>"
            f"<pre>{html.escape(pretty)}</pre>",
            RUN_MIMETYPE: {"run_dir": self.run_dir, "run_id": self.run_id},
        }


def record_notebook_summary(run: Run, name: str, numbers: Mapping[str, Any]) -> NotebookRecord:
    """Write a notebook's key numbers into the run's summary.json, under
    `notebook.<name>` = {"recorded_utc": ..., "numbers": numbers}, keeping everything else.

    `numbers` must be plain JSON (units in the key names, as everywhere); anything else
    (a NaN, a polars object) raises rather than being written as a string. Rerunning the
    notebook replaces its own entry.
    """
    numbers = json.loads(json.dumps(dict(numbers), allow_nan=False))
    summary = run.summary
    summary.setdefault("notebook", {})[name] = {
        "recorded_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "numbers": numbers,
    }
    # Same layout as Run writes it; replaced atomically so a crash never leaves half a file.
    tmp = run.path / ".summary.json.tmp"
    tmp.write_text(json.dumps(summary, indent=2) + "\n")
    tmp.replace(run.path / "summary.json")
    return NotebookRecord(run_dir=str(run.path), run_id=run.run_id, name=name, numbers=numbers)
