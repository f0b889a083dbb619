"""What every notebook shows: the run it reads (and its warnings), tables shown whole, and the
key numbers it records into the run.

`show_run` and `record_notebook_summary` display with a mimetype of their own
(`RUN_MIMETYPE`) carrying the run's path, from which `ingestlab.report` lists the runs an
executed notebook used.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import polars as pl

from ingestlab.results import Run

# Outputs carrying {"run_dir": ..., "run_id": ...}: which runs an executed notebook used.
RUN_MIMETYPE = "application/vnd.ingestlab.run+json"

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

    def _warnings_box(self) -> str:
        e = html.escape
        if not self.warnings:
            return (
                f'<div style="{_BOX}#1b7f3b;background:#eef8f0">'
                "No warnings: the run's checks on itself all passed.</div>"
            )
        items = "".join(f"<li>{e(w)}</li>" for w in self.warnings)
        return (
            f'<div style="{_BOX}#d97706;background:#fff7e6">'
            f"<b>&#9888; {len(self.warnings)} warning(s) about this run</b><ul>{items}</ul></div>"
        )

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        e = html.escape
        facts = (
            f"<b>{e(self.experiment)}</b> run <code>{e(self.run_id)}</code>, "
            f"profile <b>{e(self.profile)}</b>, "
            f"services {e(', '.join(self.services))}, created {e(self.created_utc)}, git {e(self.git)}"
        )
        text = [f"{self.experiment} run {self.run_id} ({self.run_dir}), profile {self.profile}"]
        text += [f"WARNING: {w}" for w in self.warnings] or ["no warnings"]
        return {
            "text/html": f"<p>{facts}</p>{self._warnings_box()}",
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
        warnings=tuple(run.warnings),
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


@dataclass(frozen=True)
class Bullets:
    """Sentences shown as a bulleted list (e.g. conclusions written from a run's numbers)."""

    lines: tuple[str, ...]

    def _repr_html_(self) -> str:
        return "<ul>" + "".join(f"<li>{html.escape(line)}</li>" for line in self.lines) + "</ul>"

    def __repr__(self) -> str:
        return "\n".join(f"- {line}" for line in self.lines)


@dataclass(frozen=True)
class NotebookRecord:
    """What `record_notebook_summary` wrote; displays as text and carries the run's path."""

    run_dir: str
    run_id: str
    name: str
    numbers: dict[str, Any]

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        pretty = json.dumps(self.numbers, indent=2)
        where = f"{self.run_dir}/notebooks.json, under {self.name}.numbers"
        return {
            "text/plain": f"Recorded in {where}:\n{pretty}",
            "text/html": f"<p>Recorded in <code>{html.escape(where)}</code>:</p>"
            f"<pre>{html.escape(pretty)}</pre>",
            RUN_MIMETYPE: {"run_dir": self.run_dir, "run_id": self.run_id},
        }


def record_notebook_summary(run: Run, name: str, numbers: Mapping[str, Any]) -> NotebookRecord:
    """Keep a notebook's key numbers with the run (`Run.record_notebook`: notebooks.json, beside
    the experiment's own summary, which stays as the experiment wrote it) and display them.
    Rerunning the notebook replaces its own entry."""
    stored = run.record_notebook(name, dict(numbers))
    return NotebookRecord(run_dir=str(run.path), run_id=run.run_id, name=name, numbers=stored)
