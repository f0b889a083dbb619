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
import functools
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

from ingestlab.analysis.memory import HEAP_CLIMB_POINTS, MIB, heap_series
from ingestlab.charts import with_verdict
from ingestlab.config import StudyConfig
from ingestlab.results import Run, find_runs

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
    """The newest complete run of `experiment` in `config.runs_dir` of `config`'s profile
    that measured its services and, if `config.study_id` is set, belongs to that study
    (`results.find_runs`); a new run (`EXPERIMENTS[experiment](config)`) if there is none.

    For notebooks that analyse what an earlier notebook of the study measured, instead of
    repeating minutes of load. Complete = has summary.json (written last). The notebook
    shows which run it used (`show_run`), with its date.
    """
    found = find_runs(config.runs_dir, experiment, profile=config.profile, services=config.services,
                      study_id=config.study_id, limit=1)
    if found:
        return found[0]
    # Imported here: rendering reports from saved runs should not need the stack's modules.
    from ingestlab.experiments import EXPERIMENTS

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
    `ceiling_engine`, `lower_bound` (the search ended on an inconclusive step or at its cap,
    so the true limit may be higher), `search` (how it ended), `wrk_rps` and `wrk_p99_ms`
    (closed-loop cross-check); and `rust_over_node` (ratios of ceiling and wrk rates) when
    both services ran."""
    summary = run.summary
    numbers: dict[str, Any] = {}
    for service in run.meta["config"]["services"]:
        found = summary[service]
        numbers[service] = {
            "ceiling_rps": found["ceiling_rps"],
            "ceiling_engine": found["engine"],
            "lower_bound": found["ceiling_lower_bound"],
            "search": found["search"],
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


# --- helpers for notebooks 00, 03 and 04 ---------------------------------------------------
#
# Pure functions of run frames (polars in, polars out), so each is testable on small frames;
# the notebooks wrap the frames in `Table` to display them whole.

# The article's soak conditions (its table: "a sustained load of 10,000 requests per second",
# "a 72-hour period"); the claims themselves come from data/article_claims.csv.
ARTICLE_SOAK_RATE_RPS = 10_000
ARTICLE_SOAK_DURATION_H = 72.0


def article_claims() -> dict[str, dict[str, Any]]:
    """The article's table (data/article_claims.csv) keyed by claim key: node_value,
    rust_value, unit, node_note, rust_note, metric, conditions."""
    from ingestlab.analysis.claims import load_claims

    return {row["key"]: row for row in load_claims().iter_rows(named=True)}


# --- 00 quickstart: one record, as sent and as stored --------------------------------------


def _shorten(value: Any, limit: int) -> Any:
    """`value` with every string longer than `limit` cut, saying how long it was."""
    if isinstance(value, dict):
        return {k: _shorten(v, limit) for k, v in value.items()}
    if isinstance(value, list):
        return [_shorten(v, limit) for v in value]
    if isinstance(value, str) and len(value) > limit:
        return f"{value[:limit]}… ({len(value)} characters)"
    return value


def _key_paths(value: Any, prefix: str = "") -> list[str]:
    """Every object key, depth first in document order, as a dotted path."""
    paths: list[str] = []
    if isinstance(value, dict):
        for key, child in value.items():
            path = f"{prefix}{key}"
            paths.append(path)
            paths += _key_paths(child, path + ".")
    elif isinstance(value, list):
        for i, child in enumerate(value):
            paths += _key_paths(child, f"{prefix}{i}.")
    return paths


def compare_record(sent: bytes, stored: bytes | None) -> dict[str, Any]:
    """How a record stored in Kafka differs from the body that was POSTed.

    `byte_identical`; `equal_as_json` (same values, key order ignored); `same_key_order`
    (every object's keys in the same order); `reordered_objects`: dotted paths of the
    objects whose keys come in another order (the document root is ""); `missing_keys` /
    `extra_keys`: key paths only in the body sent / only in the record; and both sizes in
    bytes. With `stored` None (no record found) only `found` (False) and `sent_bytes`.
    """
    if stored is None:
        return {"found": False, "sent_bytes": len(sent)}
    a, b = json.loads(sent), json.loads(stored)
    paths_a, paths_b = _key_paths(a), _key_paths(b)

    def objects(value: Any, path: str = "") -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        if isinstance(value, dict):
            found[path] = list(value)
            for key, child in value.items():
                found |= objects(child, f"{path}.{key}" if path else key)
        elif isinstance(value, list):
            for i, child in enumerate(value):
                found |= objects(child, f"{path}.{i}" if path else str(i))
        return found

    keys_a, keys_b = objects(a), objects(b)
    reordered = [
        path for path, keys in keys_a.items()
        if path in keys_b and keys != keys_b[path] and sorted(keys) == sorted(keys_b[path])
    ]
    return {
        "found": True,
        "byte_identical": sent == stored,
        "equal_as_json": a == b,
        "same_key_order": paths_a == paths_b,
        "reordered_objects": reordered,
        "missing_keys": sorted(set(paths_a) - set(paths_b)),
        "extra_keys": sorted(set(paths_b) - set(paths_a)),
        "sent_bytes": len(sent),
        "stored_bytes": len(stored),
    }


@dataclass(frozen=True)
class SentVsStored:
    """Per service: the JSON body sent beside the record read back from Kafka, and how
    they differ (`compare_record`). Long strings are cut in the display only."""

    documents: tuple[tuple[str, str, bytes, bytes | None], ...]  # service, request id, sent, stored
    comparisons: dict[str, dict[str, Any]]
    shorten_at: int = 48

    def _pretty(self, raw: bytes | None) -> str:
        if raw is None:
            return "(no record with this request id in the topic)"
        return json.dumps(_shorten(json.loads(raw), self.shorten_at), indent=2, ensure_ascii=False)

    def _facts(self, service: str) -> str:
        c = self.comparisons[service]
        if not c["found"]:
            return "no record found"
        facts = [
            "byte for byte identical" if c["byte_identical"] else "not byte for byte identical",
            "equal as JSON" if c["equal_as_json"] else "NOT equal as JSON",
            "keys in the same order" if c["same_key_order"] else "keys reordered in: "
            + ", ".join(p or "(root)" for p in c["reordered_objects"]),
            f"{c['sent_bytes']:,} bytes sent, {c['stored_bytes']:,} stored",
        ]
        if c["missing_keys"]:
            facts.append("dropped: " + ", ".join(c["missing_keys"]))
        if c["extra_keys"]:
            facts.append("added: " + ", ".join(c["extra_keys"]))
        return "; ".join(facts)

    def _repr_html_(self) -> str:
        e = html.escape
        parts = []
        cell = "vertical-align:top;text-align:left;padding:.3em .8em;font-size:.8em"
        for service, request_id, sent, stored in self.documents:
            parts.append(
                f"<h4>{e(service)}: request <code>{e(request_id)}</code></h4>"
                f"<p>{e(self._facts(service))}</p>"
                f"<table><tr><th style='{cell}'>sent (POST body)</th>"
                f"<th style='{cell}'>stored (record in Kafka)</th></tr>"
                f"<tr><td style='{cell}'><pre>{e(self._pretty(sent))}</pre></td>"
                f"<td style='{cell}'><pre>{e(self._pretty(stored))}</pre></td></tr></table>"
            )
        return "".join(parts)

    def __repr__(self) -> str:
        lines = []
        for service, request_id, sent, stored in self.documents:
            lines += [f"== {service}: {request_id}: {self._facts(service)}", "-- sent", self._pretty(sent),
                      "-- stored", self._pretty(stored)]
        return "\n".join(lines)


def sent_vs_stored(sent: Mapping[str, tuple[str, bytes]], records: pl.DataFrame) -> SentVsStored:
    """`sent`: service -> (request id, body POSTed); `records`: the topic read back with
    values (`Stack.read_topic(keep_values=True)`: request_id, value). Each body is matched to
    the first record carrying its request id."""
    documents = []
    comparisons = {}
    for service, (request_id, body) in sent.items():
        found = records.filter(pl.col("request_id") == request_id)
        stored = found["value"][0] if found.height else None
        documents.append((service, request_id, body, stored))
        comparisons[service] = compare_record(body, stored)
    return SentVsStored(tuple(documents), comparisons)


# --- 03 memory and GC ----------------------------------------------------------------------


def soak_conditions(run: Run) -> pl.DataFrame:
    """Per service of a soak run: the rate held (req/s), how it was chosen, for how long (s),
    with which generator, what was achieved, and the same as a share (%) of the article's
    10,000 req/s for 72 hours."""
    rows = []
    for service in run.meta["config"]["services"]:
        s = run.summary.get(service, {})
        rows.append({
            "service": service,
            "rate_rps": s.get("rate_rps"),
            "rate_source": run.summary.get("rate_source"),
            "achieved_rps": s.get("achieved_rps"),
            "duration_s": s.get("duration_s"),
            "engine": s.get("engine"),
            "accepted": s.get("accepted"),
            "lost": s.get("lost"),
            "article_rate_rps": ARTICLE_SOAK_RATE_RPS,
            "article_duration_s": ARTICLE_SOAK_DURATION_H * 3600,
        })
    frame = pl.DataFrame(rows, infer_schema_length=None)
    return frame.with_columns(
        rate_pct_of_article=100 * pl.col("rate_rps") / pl.col("article_rate_rps"),
        duration_pct_of_article=100 * pl.col("duration_s") / pl.col("article_duration_s"),
    )


def _per_service(frame: pl.DataFrame, compute: Any) -> pl.DataFrame:
    parts = [
        compute(frame.filter(pl.col("service") == service)).with_columns(service=pl.lit(service))
        for service in frame["service"].unique(maintain_order=True)
    ]
    return pl.concat(parts, how="diagonal_relaxed").select("service", pl.exclude("service"))


def cpu_by_thread_per_service(thread_samples: pl.DataFrame, *, by: str = "name") -> pl.DataFrame:
    """`telemetry.sampler.cpu_by_thread` of each service's thread samples, with `service`.

    Per service, because the services of a run are sampled one after the other: over the
    frame as a whole each one's CPU would be divided by both windows."""
    from ingestlab.telemetry.sampler import cpu_by_thread

    return _per_service(thread_samples, functools.partial(cpu_by_thread, by=by))


def cpu_by_core_per_service(thread_samples: pl.DataFrame) -> pl.DataFrame:
    """`telemetry.sampler.cpu_by_core` of each service's thread samples, with `service`."""
    from ingestlab.telemetry.sampler import cpu_by_core

    return _per_service(thread_samples, cpu_by_core)


_PATTERN_COLUMNS = ("classification", "mean", "p5", "p95", "amplitude", "amplitude_pct", "peak", "drops",
                    "period_s", "samples", "steady_samples")


def memory_patterns(samples: pl.DataFrame, requests: pl.DataFrame, gc: pl.DataFrame | None = None
                    ) -> pl.DataFrame:
    """`analysis.memory.memory_pattern` per service of a soak run, in MiB: the RSS of each
    service's own process and, from `gc`, Node's V8 heap (objects, before and after each
    collection, with `HEAP_CLIMB_POINTS` points on each climb between collections: see
    `heap_series`; `samples` counts them).

    Only samples from the service's first request on count (the soak samples from before the
    load starts); the pattern's own warm-up (its first 20%) is then left out of the steady
    state. The main process is the pid of the service's first sample (the sampler reads it
    first). One row per service and series: service, series ("RSS" or "V8 heap"),
    classification (flat / sawtooth / irregular), mean_mib, p5_mib, p95_mib, amplitude_mib,
    amplitude_pct, peak_mib, drops, period_s, samples, steady_samples. A series with too
    few samples gets classification "too few samples".
    """
    from ingestlab.analysis.memory import memory_pattern

    starts = requests.group_by("service").agg(load_ns=pl.col("intended_start_ns").min())
    main = samples.filter(pl.col("pid") == pl.col("pid").sort_by("t_ns").first().over("service"))
    series = [("RSS", main.join(starts, on="service"), "rss_bytes")]
    if gc is not None and gc.height:
        named = gc if "service" in gc.columns else gc.with_columns(service=pl.lit("node"))
        heap = heap_series(named, climb_points=HEAP_CLIMB_POINTS)
        series.append(("V8 heap", heap.join(starts, on="service"), "heap_bytes"))
    rows = []
    for name, frame, value in series:
        for service in frame["service"].unique(maintain_order=True):
            mine = frame.filter((pl.col("service") == service) & (pl.col("t_ns") >= pl.col("load_ns")))
            try:
                found = memory_pattern(mine, value=value)
            except ValueError:
                rows.append({"service": service, "series": name, "classification": "too few samples",
                             "samples": mine.height})
                continue
            row = {"service": service, "series": name}
            for key in _PATTERN_COLUMNS:
                v = found[key]
                unit = key in ("mean", "p5", "p95", "amplitude", "peak")
                row[f"{key}_mib" if unit else key] = v / MIB if unit and v is not None else v
            rows.append(row)
    return pl.DataFrame(rows, infer_schema_length=None)


def gc_in_flight(in_flight: pl.DataFrame) -> pl.DataFrame:
    """Per GC kind, from `analysis.gc.in_flight_per_pause`: pauses, how many caught at
    least one request on the wire, the requests in flight per pause (mean, p99, max) and the
    pause length (p99, max, ms)."""
    from ingestlab.analysis.latency import nearest_rank

    return (
        in_flight.group_by("kind")
        .agg(
            pauses=pl.len(),
            pauses_with_requests=(pl.col("in_flight") > 0).sum(),
            in_flight_mean=pl.col("in_flight").mean(),
            in_flight_p99=nearest_rank(pl.col("in_flight"), 0.99),
            in_flight_max=pl.col("in_flight").max(),
            pause_p99_ms=nearest_rank(pl.col("pause_ms"), 0.99),
            pause_max_ms=pl.col("pause_ms").max(),
        )
        .sort("pause_max_ms", descending=True)
    )


def _fmt(value: Any, spec: str = ",.1f", unit: str = "") -> str:
    return "—" if value is None else f"{value:{spec}}{unit}"


def soak_vs_article(patterns: pl.DataFrame, latency: pl.DataFrame, gc_summary: Mapping[str, Any] | None
                    ) -> pl.DataFrame:
    """The article's memory and p99 claims beside a soak's measurements, as text to read.

    `patterns`: `memory_patterns`; `latency`: `analysis.latency.percentiles(requests,
    by="service")`; `gc_summary`: `analysis.gc.gc_latency_summary` of Node's requests and
    GC events (None without Node). Columns: claim, node_article, rust_article,
    node_measured, rust_measured.
    """
    claims = article_claims()
    memory, p99 = claims["memory_sustained_mb"], claims["p99_latency_ms"]

    def pattern(service: str, series: str) -> dict[str, Any]:
        found = patterns.filter((pl.col("service") == service) & (pl.col("series") == series))
        return found.row(0, named=True) if found.height else {}

    def p99_of(service: str) -> float | None:
        found = latency.filter(pl.col("service") == service)
        return found["p99_ms"][0] if found.height else None

    rss = {s: pattern(s, "RSS") for s in ("node", "rust")}
    heap = pattern("node", "V8 heap")
    gc = gc_summary or {}
    share_slow, share_all = gc.get("share_of_slow_requests_during_gc"), gc.get("share_during_gc")
    rows = [
        ("average memory, sustained (MiB; the article says MB)", _fmt(memory["node_value"], ",.0f"),
         _fmt(memory["rust_value"], ",.0f"), _fmt(rss["node"].get("mean_mib")),
         _fmt(rss["rust"].get("mean_mib"))),
        ("memory pattern (RSS)", memory["node_note"], memory["rust_note"],
         rss["node"].get("classification", "—"), rss["rust"].get("classification", "—")),
        ("RSS swing p5-p95 (MiB)", "—", "—", _fmt(rss["node"].get("amplitude_mib")),
         _fmt(rss["rust"].get("amplitude_mib"))),
        ("V8 heap pattern (Node only)", "sawtooth: climbs to ~800 MB, then an old-generation GC", "no GC",
         f"{heap.get('classification', '—')}"
         + (f" (a drop every {heap['period_s']:.2f} s)" if heap.get("period_s") is not None else "")
         + f", mean {_fmt(heap.get('mean_mib'))} MiB, peak {_fmt(heap.get('peak_mib'))} MiB", "no GC"),
        ("p99 latency (ms)", _fmt(p99["node_value"], ",.1f"), _fmt(p99["rust_value"], ",.1f"),
         _fmt(p99_of("node"), ",.2f"), _fmt(p99_of("rust"), ",.2f")),
        ("p99 cause", p99["node_note"], p99["rust_note"],
         f"p99 outside GC pauses {_fmt(gc.get('p99_outside_gc_ms'), ',.2f')} ms; "
         f"{_fmt(None if share_slow is None else 100 * share_slow, '.0f')}% of the requests slower than "
         f"p99 overlapped a pause, against {_fmt(None if share_all is None else 100 * share_all, '.1f')}% "
         "of all requests", "no GC (its tail has other causes)"),
    ]
    columns = ["claim", "node_article", "rust_article", "node_measured", "rust_measured"]
    return pl.DataFrame(rows, schema=columns, orient="row")


# --- 04 start-up and footprint -------------------------------------------------------------


def footprint_parts(run: Run) -> pl.DataFrame:
    """A startup run's deployment footprint, one row per part: service, kind (executable,
    shared-library, node_modules, source), name, path, bytes, mb (10^6 bytes), base (a
    glibc / libgcc library any glibc-based base image already has)."""
    rows = [
        {"service": service, **part}
        for service in run.meta["config"]["services"]
        for part in run.summary.get(service, {}).get("footprint_parts", [])
    ]
    return pl.DataFrame(rows, infer_schema_length=None).with_columns(mb=pl.col("bytes") / 1e6)


def startup_vs_article(run: Run) -> pl.DataFrame:
    """A startup run's medians beside the article's claims: cold start (s), memory once
    ready (RSS, MiB; the article says MB) and the deployment footprint (MB, standing in for
    the container image). Columns: metric, unit, node_article, rust_article,
    node_measured, rust_measured, article_ratio, measured_ratio (rust / node)."""
    claims = article_claims()
    summary = run.summary
    metrics = [
        ("cold_start_s", "cold start: spawn to first 202", "s", "cold_start_ms", 1e-3),
        ("memory_startup_mb", "memory once ready (RSS)", "MiB", "rss_at_ready_mb", 1.0),
        ("image_size_mb", "deployment footprint (article: image size)", "MB", "footprint_bytes", 1e-6),
    ]
    rows = []
    for key, metric, unit, field, factor in metrics:
        claim = claims[key]
        node = summary.get("node", {}).get(field)
        rust = summary.get("rust", {}).get(field)
        node = None if node is None else node * factor
        rust = None if rust is None else rust * factor
        rows.append({
            "metric": metric,
            "unit": unit,
            "node_article": float(claim["node_value"]),
            "rust_article": float(claim["rust_value"]),
            "node_measured": node,
            "rust_measured": rust,
            "article_ratio": claim["rust_value"] / claim["node_value"],
            "measured_ratio": rust / node if node and rust is not None else None,
        })
    return pl.DataFrame(rows, infer_schema_length=None)


_NODE_RDKAFKA_BUILD = {
    "build": "node-rdkafka/build/: object files and static archives",
    "deps": "node-rdkafka/deps/: librdkafka's sources and build tree",
}


def node_modules_breakdown(node_modules: Path | None = None) -> pl.DataFrame:
    """What the Node service's node_modules holds, in groups a deployment would keep or drop.

    Read from the installed tree (`ingestlab build node` puts it in the build cache), not
    from a run. Each file is counted once (node-gyp hard-links its outputs) in the first
    group it belongs to:

    - native addons (`*.node`) and the shared libraries they load from inside node_modules
      (librdkafka, found with ldd): needed at run time;
    - everything of the other packages, and node-rdkafka outside `build/` and `deps/` (its
      JavaScript, C++ sources, typings): needed at run time (the sources only by a rebuild);
    - node-rdkafka's `build/` (object files, static archives) and `deps/` (librdkafka's
      sources and its build tree): left by `npm ci`, needed only to build.

    Columns: group, needed_at_runtime, files, bytes, mb (10^6 bytes).
    """
    from ingestlab.stack import artifacts
    from ingestlab.telemetry.startup import shared_libraries

    root = (node_modules or artifacts.NODE_DIR / "node_modules").resolve(strict=True)
    seen: set[tuple[int, int]] = set()
    totals: dict[tuple[str, bool], list[int]] = {}

    def count(group: str, runtime: bool, path: Path) -> None:
        st = path.lstat()
        if not path.is_file() or path.is_symlink() or (st.st_dev, st.st_ino) in seen:
            return
        seen.add((st.st_dev, st.st_ino))
        entry = totals.setdefault((group, runtime), [0, 0])
        entry[0] += 1
        entry[1] += st.st_size

    addons = sorted(root.rglob("*.node"))
    for addon in addons:
        count("native addons (*.node)", True, addon)
    for addon in addons:
        for library in shared_libraries(addon).values():
            if library.is_relative_to(root):
                count("shared libraries the addons load (librdkafka)", True, library)
    for package in sorted(root.iterdir()):
        for dirpath, _dirs, files in os.walk(package):
            here = Path(dirpath)
            relative = here.relative_to(root).parts
            if package.name == "node-rdkafka" and len(relative) > 1 and relative[1] in ("build", "deps"):
                group, runtime = _NODE_RDKAFKA_BUILD[relative[1]], False
            elif package.name == "node-rdkafka":
                group, runtime = "node-rdkafka: JavaScript, C++ sources, typings", True
            else:
                group, runtime = "the other packages (express and its dependencies, nan, ...)", True
            for name in files:
                count(group, runtime, here / name)
    rows = [
        {"group": group, "needed_at_runtime": runtime, "files": files, "bytes": size}
        for (group, runtime), (files, size) in totals.items()
    ]
    return (
        pl.DataFrame(rows)
        .with_columns(mb=pl.col("bytes") / 1e6)
        .sort("needed_at_runtime", "bytes", descending=[True, True])
    )
