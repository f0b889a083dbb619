"""The run directory: one experiment's data, versioned and self-describing (pyperf style).

```
data/runs/<run-id>/
  meta.json        schema version, git sha, host, CPU, core layout, tool versions, config
  summary.json     the key numbers (a typed summary: ingestlab.summaries), and `warnings`
                   the run found about itself
  notebooks.json   numbers the notebooks that analysed the run recorded, per notebook
  <name>.parquet   frames: requests, samples, gc, deliveries, ...
  <name>/*.parquet a frame too large to hold at once, stored as parts (a long soak's
                   requests: one part per service and segment); read or scan it by its name
  logs/            stdout/stderr of every component
```
Charts and tables are functions of a run directory, so reports rebuild without rerunning.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import socket
import subprocess
import uuid
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from ingestlab.config import StudyConfig
from ingestlab.paths import PROJECT_ROOT
from ingestlab.summaries import Summary, dump_summary, load_summary

# The run directory's version. 2: summary.json holds a typed summary (ingestlab.summaries,
# whose docstring keeps the history of its fields); 1: bare-dict summaries.
SCHEMA_VERSION = 2
# Runs that differ in any of these cannot be compared as if measured together.
ENVIRONMENT_KEYS = ("hostname", "cpu_model", "cpu_count", "cores")


class RunFormatError(ValueError):
    """A directory is not a run, or was written by an incompatible schema version."""


def _command_output(argv: list[str]) -> str | None:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=20, cwd=PROJECT_ROOT)
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = (done.stdout or done.stderr).strip()
    return text.splitlines()[0] if done.returncode == 0 and text else None


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _mem_total_bytes() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        return None


def capture_environment() -> dict[str, Any]:
    """Host, CPU and tool versions: what makes numbers from two runs comparable or not."""
    import confluent_kafka

    sha = _command_output(["git", "rev-parse", "HEAD"])
    dirty = _command_output(["git", "status", "--porcelain", "--untracked-files=no"])
    return {
        "hostname": socket.gethostname(),
        "platform": platform.platform(),
        "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "mem_total_bytes": _mem_total_bytes(),
        "git": {"sha": sha, "dirty": bool(dirty)},
        "tools": {
            "python": platform.python_version(),
            "java": _command_output(["java", "-version"]),
            "node": _command_output(["node", "--version"]),
            "rustc": _command_output(["rustc", "--version"]),
            "confluent_kafka": confluent_kafka.version()[0],
            "librdkafka_python": confluent_kafka.libversion()[0],
            "polars": pl.__version__,
        },
    }


def new_run_id(experiment: str) -> str:
    """`<UTC time to the millisecond>-<experiment>-<random>`: sorts in creation order."""
    now = dt.datetime.now(dt.UTC)
    stamp = now.strftime("%Y%m%dT%H%M%S") + f"{now.microsecond // 1000:03d}Z"
    return f"{stamp}-{experiment}-{uuid.uuid4().hex[:6]}"


@dataclass(frozen=True)
class Run:
    """A run directory. Create with `Run.create`, reopen with `Run.open`."""

    path: Path

    @classmethod
    def create(cls, config: StudyConfig, experiment: str, *, runs_dir: Path | None = None) -> Run:
        run_id = new_run_id(experiment)
        path = (runs_dir or config.runs_dir) / run_id
        (path / "logs").mkdir(parents=True)
        meta = {
            "schema_version": SCHEMA_VERSION,
            "run_id": run_id,
            "experiment": experiment,
            "created_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "environment": capture_environment(),
            "cores": config.cores.as_dict(),
            "config": config.as_dict(),
        }
        run = cls(path.resolve())
        run._write_json("meta.json", meta)
        return run

    @classmethod
    def open(cls, path: Path | str) -> Run:
        run = cls(Path(path).resolve())
        if not (run.path / "meta.json").exists():
            raise RunFormatError(f"{run.path} is not a run directory (no meta.json)")
        version = run.meta.get("schema_version")
        if version != SCHEMA_VERSION:
            raise RunFormatError(f"{run.path} has schema version {version}; this ingestlab reads "
                                 f"version {SCHEMA_VERSION}")
        return run

    # --- files ---------------------------------------------------------------------------
    @property
    def run_id(self) -> str:
        return self.path.name

    @property
    def logs_dir(self) -> Path:
        return self.path / "logs"

    @property
    def meta(self) -> dict[str, Any]:
        return json.loads((self.path / "meta.json").read_text())

    @property
    def summary(self) -> Summary:
        """The run's typed summary (raises FileNotFoundError before the run wrote it)."""
        return self._summary_and_warnings()[0]

    @property
    def warnings(self) -> list[str]:
        """What the run found suspect about itself (empty before it wrote its summary)."""
        if not (self.path / "summary.json").exists():
            return []
        return self._summary_and_warnings()[1]

    def _summary_and_warnings(self) -> tuple[Summary, list[str]]:
        path = self.path / "summary.json"
        if not path.exists():
            raise FileNotFoundError(f"run {self.run_id} has no summary.json (still running, or failed)")
        return load_summary(json.loads(path.read_text()))

    def _write_json(self, name: str, data: dict[str, Any]) -> None:
        tmp = self.path / f".{name}.tmp"
        tmp.write_text(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")
        tmp.replace(self.path / name)

    def update_meta(self, **fields: Any) -> None:
        self._write_json("meta.json", {**self.meta, **fields})

    def write_summary(self, summary: Summary, *, warnings_found: Sequence[str] = ()) -> None:
        """Write summary.json; `warnings_found` (the run's checks on itself) are also shown."""
        if self.meta["experiment"] != summary.EXPERIMENT:
            raise ValueError(f"a {summary.EXPERIMENT} summary for a {self.meta['experiment']} run")
        self._write_json("summary.json", dump_summary(summary, run_id=self.run_id, warnings=warnings_found))
        for text in warnings_found:
            warnings.warn(f"{self.run_id}: {text}", RunWarning, stacklevel=2)

    @property
    def notebook_records(self) -> dict[str, dict[str, Any]]:
        """What notebooks recorded (`record_notebook`): name -> {"recorded_utc", "numbers"}."""
        path = self.path / "notebooks.json"
        return json.loads(path.read_text()) if path.exists() else {}

    def record_notebook(self, name: str, numbers: dict[str, Any]) -> dict[str, Any]:
        """Keep a notebook's key numbers in notebooks.json under `name` (replacing its earlier
        entry) and return them as stored. `numbers` must be plain JSON (units in the key
        names): a NaN or an object raises rather than being written as a string."""
        stored = json.loads(json.dumps(numbers, allow_nan=False))
        records = self.notebook_records
        records[name] = {"recorded_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                         "numbers": stored}
        self._write_json("notebooks.json", records)
        return stored

    def write_frame(self, name: str, frame: pl.DataFrame) -> Path:
        path = self.path / f"{name}.parquet"
        frame.write_parquet(path)
        return path

    def write_frame_part(self, name: str, part: str, frame: pl.DataFrame) -> Path:
        """Write one part of the frame `name`, stored as a directory of parts
        (`<name>/<part>.parquet`), for frames too large to hold at once; parts are read back
        in the order of their names (zero-pad numbers)."""
        path = self.path / name / f"{part}.parquet"
        path.parent.mkdir(exist_ok=True)
        frame.write_parquet(path)
        return path

    def frame_parts(self, name: str, *, parts: str = "*") -> list[Path]:
        """The files of frame `name`: `<name>.parquet`, or the parts in `<name>/` whose names
        match the glob `parts` (e.g. "node-[0-9]*": one service's), sorted by name."""
        single = self.path / f"{name}.parquet"
        if single.exists():
            return [single]
        found = sorted((self.path / name).glob(f"{parts}.parquet")) if (self.path / name).is_dir() else []
        if not found:
            raise FileNotFoundError(f"run {self.run_id} has no {name}.parquet "
                                    f"(nor parts {parts!r} in {name}/)")
        return found

    def has_frame(self, name: str) -> bool:
        try:
            self.frame_parts(name)
        except FileNotFoundError:
            return False
        return True

    def scan_frame(self, name: str, *, parts: str = "*") -> pl.LazyFrame:
        """The frame `name` as a lazy scan (one file, or its parts matching `parts` in order;
        parts whose columns differ are aligned, missing columns null): for frames too large
        to read whole, select the columns and rows needed before collecting."""
        scans = [pl.scan_parquet(path) for path in self.frame_parts(name, parts=parts)]
        return scans[0] if len(scans) == 1 else pl.concat(scans, how="diagonal_relaxed")

    def read_frame(self, name: str) -> pl.DataFrame:
        """The frame `name`, whole: `<name>.parquet`, or its parts in `<name>/` concatenated
        (aligned as `scan_frame` does)."""
        frames = [pl.read_parquet(path) for path in self.frame_parts(name)]
        return frames[0] if len(frames) == 1 else pl.concat(frames, how="diagonal_relaxed")

    @staticmethod
    def environment_of(config: StudyConfig) -> dict[str, Any]:
        """The environment key (see `environment_key`) a run made now with `config` would have."""
        return {"hostname": socket.gethostname(), "cpu_model": _cpu_model(), "cpu_count": os.cpu_count(),
                "cores": config.cores.as_dict()}

    def environment_key(self) -> dict[str, Any]:
        meta = self.meta
        env = meta["environment"]
        return {"hostname": env["hostname"], "cpu_model": env["cpu_model"],
                "cpu_count": env["cpu_count"], "cores": meta["cores"]}


class RunWarning(UserWarning):
    """A run's result is suspect: too few samples, a saturated generator, errors, lost records."""


def check_comparable(runs: list[Run]) -> None:
    """Raise if the runs were measured on different hosts or core layouts."""
    keys = {json.dumps(r.environment_key(), sort_keys=True): r.run_id for r in runs}
    if len(keys) > 1:
        raise RunFormatError("runs measured in different environments cannot be merged: "
                             + "; ".join(f"{rid}: {k}" for k, rid in keys.items()))


def find_runs(
    runs_dir: Path,
    experiment: str,
    *,
    profile: str | None = None,
    services: Sequence[str] | None = None,
    study_id: str | None = None,
    complete: bool = True,
    limit: int | None = None,
) -> list[Run]:
    """The runs of `experiment` under `runs_dir`, newest first: the one run catalogue.

    Each filter applies only when given: `profile` (the run's config profile), `services`
    (the run measured all of them: a node+rust run serves ("rust",) and ("node", "rust"), a
    one-service run never serves a two-service request), `study_id` (the run was made for
    that study; None: any study or none). `complete`: only finished runs (with summary.json,
    written last); False also returns runs still running or that failed before their
    results. Directories that are not runs of this schema version are skipped silently
    (not comparable). `limit`: at most that many.
    """
    if isinstance(services, str):
        raise TypeError(f"services must be a sequence of service names, not the string {services!r}")
    if limit is not None and limit < 0:
        raise ValueError(f"limit must be >= 0, got {limit}")
    wanted = set(services or ())
    found: list[Run] = []
    # run ids start with their UTC creation time, so names sort in creation order
    for path in sorted(runs_dir.glob(f"*-{experiment}-*"), reverse=True):
        if limit is not None and len(found) >= limit:
            break
        if complete and not (path / "summary.json").exists():
            continue  # still running, or failed before writing its results
        try:
            run = Run.open(path)
        except RunFormatError:
            continue
        meta = run.meta
        made_with = meta.get("config", {})
        if (
            meta.get("experiment") == experiment  # "*-capacity-*" also matches engine-capacity
            and (profile is None or made_with.get("profile") == profile)
            and wanted <= set(made_with.get("services", ()))
            and (study_id is None or made_with.get("study_id") == study_id)
        ):
            found.append(run)
    return found


def new_study_id() -> str:
    """`<UTC time to the second>-<random>`, e.g. `20261130T151300Z-3fa9c1`: the id of one
    study (`StudyConfig.study_id`), recorded in the config of every run made for it."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{uuid.uuid4().hex[:6]}"
