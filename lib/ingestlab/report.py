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
`record_notebook_summary` (`ingestlab.notebook.display`), which carry the run's path in a
mimetype of their own (`RUN_MIMETYPE`) beside their HTML and text. So an index can be
rebuilt from executed notebooks alone, and a notebook that failed halfway still names the
run it was reading. The notebooks' views of runs are in `ingestlab.notebook`; this module
only executes and renders.

Kernel: notebooks run in a kernel of *this* interpreter (`kernel_name`), so a fresh
`pip install -e .[dev]` needs no `ipykernel install` step. It talks to papermill over Unix
sockets in a private directory (IPC, not TCP: no port, and no "running over TCP without
encryption" warning in the terminal), and its progress goes to a side channel
(`ingestlab.progress_channel`), never into its outputs: `run_study` draws it in the
terminal (`ingestlab.study_progress`), so a report holds results only.
"""

from __future__ import annotations

import ast
import datetime as dt
import html
import os
import re
import sys
import tempfile
import threading
from collections.abc import Callable as CallableType
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import nbformat
import papermill
from jupyter_client import AsyncKernelManager
from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbconvert import HTMLExporter
from papermill.exceptions import PapermillExecutionError
from traitlets import Dict
from traitlets.config import Config

# The notebook views display it (show_run, record_notebook_summary); the index reads it.
from ingestlab.notebook.display import RUN_MIMETYPE
from ingestlab.progress_channel import ENV_VAR as PROGRESS_ENV_VAR
from ingestlab.study_progress import StudyProgress

NOTEBOOK_NAME = re.compile(r"^\d{2}_[\w-]+\.ipynb$")
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
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


# What a kernel itself writes to its stderr (a cell's output goes to the notebook) that is
# known noise under papermill: jupyter_client interrupts every kernel just before it shuts it
# down, and one that was idle logs it; a kernel on TCP warns that TCP is not encrypted.
KERNEL_NOISE = re.compile(r"KeyboardInterrupt caught in kernel|Kernel is running over TCP without encryption")


def _to_stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


class StudyKernelManager(AsyncKernelManager):
    """nbclient's kernel manager, plus `kernel_env`: variables added to the kernel's
    environment (which is otherwise this process's), and the kernel's own stderr read line
    by line: known noise (`KERNEL_NOISE`) dropped, every other line handed to `stderr_line`
    (e.g. a line above the study's progress bars)."""

    kernel_env = Dict(help="environment variables added for the kernel").tag(config=True)
    # Not a trait: nbclient copies its config, and a callable may hold what cannot be copied.
    stderr_line: CallableType[[str], None] = staticmethod(_to_stderr)

    @classmethod
    def sending_stderr_to(cls, stderr_line: CallableType[[str], None] | None) -> type[StudyKernelManager]:
        """This class, or a subclass whose kernels' stderr lines go to `stderr_line`."""
        if stderr_line is None:
            return cls
        return type(cls.__name__, (cls,), {"stderr_line": staticmethod(stderr_line)})

    async def start_kernel(self, **kw: Any) -> None:  # type: ignore[override]
        kw["env"] = {**kw.get("env", os.environ), **self.kernel_env}
        read_end, write_end = os.pipe()
        try:
            await super().start_kernel(stderr=write_end, **kw)
        except BaseException:
            os.close(read_end)
            raise
        finally:
            os.close(write_end)  # the kernel holds it now: the pipe ends when the kernel does
        threading.Thread(target=self._forward, args=(read_end,), name="ingestlab-kernel-stderr",
                         daemon=True).start()

    def _forward(self, read_end: int) -> None:
        with open(read_end, encoding="utf-8", errors="replace") as lines:
            for line in lines:
                if line.strip() and not KERNEL_NOISE.search(line):
                    self.stderr_line(line.rstrip("\n"))


def _kernel_config(sockets_dir: Path, progress_file: Path) -> Config:
    """IPC sockets in `sockets_dir` (an absolute path: the kernel runs in another working
    directory) and the progress channel in the kernel's environment."""
    config = Config()
    config.StudyKernelManager.transport = "ipc"
    config.StudyKernelManager.ip = str(sockets_dir / "kernel")
    config.StudyKernelManager.kernel_env = {PROGRESS_ENV_VAR: str(progress_file)}
    return config


# --- executing and rendering ---------------------------------------------------------------


def execute_notebook(
    path: Path | str,
    out_path: Path | str,
    parameters: Mapping[str, Any],
    *,
    cwd: Path | str | None = None,
    timeout_s: float | None = None,
    progress_file: Path | str | None = None,
    kernel_stderr: CallableType[[str], None] | None = None,
) -> Path:
    """Execute the notebook at `path` with papermill, writing the executed copy to `out_path`.

    `parameters` replace the values of the cell tagged `parameters`. The kernel runs in
    `cwd` (default: the notebook's directory, so relative paths in a notebook mean the same
    in JupyterLab and here). `timeout_s` bounds each cell (None: no bound; a full-profile
    experiment cell runs for many minutes). The copy is saved after every cell, so a
    failure leaves it with the outputs up to the failing cell.

    The kernel's progress (`ingestlab.progress_channel`: the load engine's bar, what is
    measured on the way) is appended to `progress_file` for a reader such as
    `StudyProgress`; None: to a temporary file, discarded. Either way not to the outputs;
    and widgets (tqdm.auto's bar in code that draws its own) are taken out of the copy
    (`drop_widgets`). What the kernel process itself writes to stderr, less known noise
    (`KERNEL_NOISE`), goes line by line to `kernel_stderr` (None: this process's stderr).

    Raises NotebookError naming the notebook and the failing cell.
    """
    path, out_path = Path(path), Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="ingestlab-kernel-") as private:
        channel = Path(progress_file).resolve() if progress_file else Path(private) / "progress.jsonl"
        try:
            _execute(path, out_path, parameters, cwd=cwd, timeout_s=timeout_s,
                     config=_kernel_config(Path(private), channel),
                     kernel_manager=StudyKernelManager.sending_stderr_to(kernel_stderr))
        finally:
            if out_path.exists():
                drop_widgets(out_path)
    return out_path


def drop_widgets(executed_path: Path) -> None:
    """Take widget views and the widget state out of an executed notebook.

    The only widgets these notebooks make are progress bars (tqdm.auto draws one in a kernel
    with ipywidgets); in a saved copy a widget cannot run, its text fallback is a progress
    line frozen at its first update, and rendering its state would load JavaScript from
    elsewhere. The results are in the other outputs.
    """
    nb = nbformat.read(executed_path, as_version=4)
    changed = nb.metadata.pop("widgets", None) is not None
    for cell in nb.cells:
        outputs = cell.get("outputs", [])
        kept = [output for output in outputs if WIDGET_VIEW not in output.get("data", {})]
        if len(kept) != len(outputs):
            cell.outputs, changed = kept, True
    if changed:
        nbformat.write(nb, executed_path)


def _execute(path: Path, out_path: Path, parameters: Mapping[str, Any], *, cwd: Path | str | None,
             timeout_s: float | None, config: Config, kernel_manager: type[AsyncKernelManager]) -> None:
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
            kernel_manager_class=kernel_manager,
            config=config,
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
    """One notebook's line in the index. `executed_utc` is ISO 8601 (papermill's end time);
    `duration_s` how long it took to execute (None: not recorded)."""

    notebook: str
    title: str
    html: Path
    profile: str | None
    executed_utc: str | None
    runs: tuple[Path, ...]
    error: str | None = None
    duration_s: float | None = None

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


def execution_duration_s(nb: nbformat.NotebookNode) -> float | None:
    """How long an executed notebook took: papermill's `duration` (start to end, kernel
    start included), else the sum of its cells' durations (a copy saved before the end)."""
    total = nb.metadata.get("papermill", {}).get("duration")
    if total is not None:
        return float(total)
    cells = [cell.metadata.get("papermill", {}).get("duration") for cell in nb.cells]
    known = [float(d) for d in cells if d is not None]
    return sum(known) if known else None


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
        duration_s=execution_duration_s(nb),
    )


def previous_durations(reports_dir: Path | str, profile: str) -> dict[str, float]:
    """How long each notebook took in the study that last executed it into `reports_dir`
    with `profile` and finished it (by notebook name): what the next study expects."""
    found = {}
    for executed in study_notebooks(reports_dir):
        nb = nbformat.read(executed, as_version=4)
        meta = nb.metadata.get("papermill", {})
        duration = execution_duration_s(nb)
        if meta.get("parameters", {}).get("profile") == profile and not meta.get("exception") and duration:
            found[executed.stem] = duration
    return found


_INDEX_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 64rem; color: #222; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: .45rem .6rem; border-bottom: 1px solid #ddd; vertical-align: top; }
th { background: #f3f3f3; }
.failed { color: #b00020; font-weight: 600; }
.ok { color: #1b7f3b; }
.note { color: #666; font-size: .9rem; }
.took { font-variant-numeric: tabular-nums; white-space: nowrap; }
code { font-size: .85rem; }
"""


def _when(iso: str | None) -> str:
    if not iso:
        return "—"
    try:
        return dt.datetime.fromisoformat(iso).astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    except ValueError:
        return iso


def took(seconds: float) -> str:
    """A duration for the index: `45 s`, `7 min 02 s`, `1 h 03 min`."""
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


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
    duration = took(entry.duration_s) if entry.duration_s is not None else "—"
    return (
        f'<tr><td><a href="{e(link)}">{e(entry.title)}</a><br>'
        f'<span class="note">{e(entry.notebook)}</span></td>'
        f"<td>{status}</td><td>{e(entry.profile or '—')}</td><td>{e(_when(entry.executed_utc))}</td>"
        f'<td class="took">{duration}</td><td>{runs}</td></tr>'
    )


def render_index(reports_dir: Path | str, entries: Sequence[ReportEntry]) -> Path:
    """Write `reports_dir/index.html`: one row per entry (plain HTML, no JavaScript)."""
    reports_dir = Path(reports_dir)
    reports_dir.mkdir(parents=True, exist_ok=True)
    written = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    rows = "\n".join(_index_row(reports_dir, entry) for entry in entries)
    durations = [entry.duration_s for entry in entries if entry.duration_s is not None]
    total = f" The notebooks took {took(sum(durations))} in all." if durations else ""
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
read (<code>data/runs/&lt;run-id&gt;/</code>).{total}</p>
<table>
<thead><tr><th>report</th><th>status</th><th>profile</th><th>executed</th><th>took</th>
<th>runs used</th></tr></thead>
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


def _runs_dir(notebook: Path, parameters: Mapping[str, Any]) -> Path | None:
    """Where `notebook` writes its runs: its `runs_dir` parameter (given, else its default),
    relative to the notebook's directory (the kernel's); None if it has none."""
    value = parameters.get("runs_dir")
    if value is None:
        default = papermill.inspect_notebook(str(notebook)).get("runs_dir", {}).get("default")
        try:
            value = ast.literal_eval(default) if default else None
        except (ValueError, SyntaxError):  # an expression, not a literal: not known before it runs
            return None
    return (notebook.parent / str(value)).resolve() if isinstance(value, str | Path) else None


def run_study(
    profile: str,
    notebooks_dir: Path | str,
    reports_dir: Path | str,
    *,
    parameters: Mapping[str, Any] | None = None,
    timeout_s: float | None = None,
    progress_to: TextIO | None = None,
) -> list[ReportEntry]:
    """Execute the numbered notebooks in order with `profile`, render each, write the index.

    `parameters` are passed to every notebook besides `profile`. Stops at the first
    notebook that fails: its partially executed copy is rendered too (a reader sees where it
    failed), the index lists it as failed, and NotebookError names it and its report.

    Progress (`StudyProgress`: each notebook, its experiments, the load engine's bar, the
    time left, estimated from this profile's previous study in `reports_dir`) is written to
    `progress_to` (default: stderr).
    """
    notebooks_dir, reports_dir = Path(notebooks_dir), Path(reports_dir)
    notebooks = study_notebooks(notebooks_dir)
    if not notebooks:
        raise FileNotFoundError(f"no notebooks named NN_name.ipynb in {notebooks_dir}")
    all_parameters = {**(parameters or {}), "profile": profile}
    progress = StudyProgress([nb.stem for nb in notebooks], previous_durations(reports_dir, profile),
                             profile=profile, file=progress_to)
    with progress, tempfile.TemporaryDirectory(prefix="ingestlab-study-") as channels:
        return _run_notebooks(notebooks, reports_dir, all_parameters, timeout_s=timeout_s,
                              progress=progress, channels=Path(channels))


def _run_notebooks(notebooks: Sequence[Path], reports_dir: Path, parameters: Mapping[str, Any], *,
                   timeout_s: float | None, progress: StudyProgress, channels: Path) -> list[ReportEntry]:
    entries: list[ReportEntry] = []
    for notebook in notebooks:
        executed = reports_dir / notebook.name
        executed.unlink(missing_ok=True)  # never render a previous study's copy as this one's
        channel = channels / f"{notebook.stem}.jsonl"
        try:
            with progress.notebook(notebook.stem, channel=channel, runs_dir=_runs_dir(notebook, parameters)):
                execute_notebook(notebook, executed, parameters, timeout_s=timeout_s, progress_file=channel,
                                 kernel_stderr=progress.line)
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
