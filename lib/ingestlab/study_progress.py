"""What `make study` shows in its terminal while it works: which notebook and experiment
run, how far along they are, and about how long is left.

```
study: 8 notebooks, profile full, about 58 min (the previous full study's durations in reports/)
[2/8] 01_throughput_ceiling: started (it took 7:10 last time; about 57 min left in the study)
      running engine-capacity: the load engines' calibration on this machine (none in this study yet)
      engine-capacity started: 20261207T193051123Z-engine-capacity-1a2b3c
      engine-capacity done in 1:58
      ceiling started: 20261207T193249301Z-ceiling-4d5e6f
study [2/8] 01_throughput_ceiling:  21%|████▏               | 12:40 elapsed, about 47 min left
  ceiling:  38%|███████▌            | 1:55 elapsed, about 3:10 left (typically 5:05)
  load constant:  41%|████████▏           | 24600/60000 [00:12<00:17, offered=2000/s, achieved=...]
```

Three sources, none of them the notebook's outputs: the study's own clock and the
notebooks' durations in the previous study of the same profile (the bar over notebooks and
its estimate); the run directories appearing in the notebook's runs directory (each
experiment writes one, `results.Run.create`; its typical duration comes from the earlier
runs of that experiment, profile and services); and the kernel's progress channel
(`ingestlab.progress_channel`: the load engine's bar, what the study measures on the way).
In a terminal the lines scroll above three tqdm bars; in a pipe or CI (no terminal, or
`CI` set) there are no bars, and a line every minute says where the study is.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import statistics
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from tqdm import tqdm

from ingestlab.progress_channel import ChannelReader
from ingestlab.results import find_runs

# How often the study process reads the channel and the runs directory, and redraws.
POLL_S = 0.5
# Without a terminal: one line this often says where the study is.
HEARTBEAT_S = 60.0
# Earlier runs of an experiment that make its typical duration (the newest ones).
TYPICAL_OF_RUNS = 5
# A bar of time: how much of the expected duration has passed, then what the status says.
_TIME_BAR = "{desc}: {percentage:3.0f}%|{bar:20}| "
# The load engine's bar: slots dealt with, time left at the rate so far, the engine's numbers.
_LOAD_BAR = "{desc}: {percentage:3.0f}%|{bar:20}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}{postfix}]"
_INDENT = "      "


def clock(seconds: float) -> str:
    """`m:ss`, or `h:mm:ss` from an hour."""
    seconds = max(int(round(seconds)), 0)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def about(seconds: float) -> str:
    """A duration as a person says it: `40 s`, `12 min`, `1 h 05 min`."""
    if seconds < 90:
        return f"{max(seconds, 0):.0f} s"
    minutes = int(round(seconds / 60))
    return f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{minutes} min"


def study_left_s(
    notebooks: Sequence[str],
    expected_s: Mapping[str, float],
    *,
    current: int,
    elapsed_s: float,
    finished_s: Sequence[float] = (),
) -> float | None:
    """Seconds left in the study while notebook `current` (an index) has run `elapsed_s`.

    Each notebook is expected to take what it took in the previous study (`expected_s`);
    one without a previous duration takes the mean of those this study finished
    (`finished_s`), else the median of the known ones. The running one has what is left of
    its expectation (nothing once it runs over). None: nothing to estimate from yet.
    """
    fallback = (
        statistics.fmean(finished_s)
        if finished_s
        else statistics.median(expected_s.values())
        if expected_s
        else None
    )
    expected = [expected_s.get(name, fallback) for name in notebooks[current:]]
    if not expected or any(value is None for value in expected):
        return None
    first, *rest = expected
    return max(first - elapsed_s, 0.0) + sum(rest)  # type: ignore[operator]


def typical_duration_s(runs_dir: Path, experiment: str, *, profile: str | None,
                       services: Sequence[str]) -> float | None:
    """The median duration of the newest finished runs of `experiment` with this profile and
    exactly these services (created -> summary.json written); None without any."""
    durations = []
    for run in find_runs(runs_dir, experiment, profile=profile, services=services, limit=4 * TYPICAL_OF_RUNS):
        meta = run.meta
        if set(meta.get("config", {}).get("services", ())) != set(services):
            continue
        created = dt.datetime.fromisoformat(meta["created_utc"]).timestamp()
        durations.append((run.path / "summary.json").stat().st_mtime - created)
        if len(durations) == TYPICAL_OF_RUNS:
            break
    return statistics.median(durations) if durations else None


@dataclass
class _Experiment:
    """A run directory that appeared while a notebook ran: an experiment at work."""

    name: str
    path: Path
    started: float  # this process's clock (time.monotonic)
    typical_s: float | None

    def status(self, now: float) -> str:
        elapsed = now - self.started
        if self.typical_s is None:
            return f"{clock(elapsed)} elapsed (no earlier {self.name} run like it)"
        if elapsed > self.typical_s:
            return f"{clock(elapsed)} elapsed, over its typical {clock(self.typical_s)}"
        return f"{clock(elapsed)} elapsed, about {about(self.typical_s - elapsed)} left " \
               f"(typically {clock(self.typical_s)})"


class RunsWatch:
    """New run directories under `runs_dir` (experiments starting) and their summary.json
    (experiments done), since the watch was made."""

    def __init__(self, runs_dir: Path) -> None:
        self.runs_dir = runs_dir
        self._seen = set(self._names())
        self._running: dict[Path, dict[str, Any]] = {}

    def _names(self) -> list[str]:
        try:
            return [entry.name for entry in os.scandir(self.runs_dir) if entry.is_dir()]
        except FileNotFoundError:
            return []

    def poll(self) -> tuple[list[tuple[Path, dict[str, Any]]], list[Path]]:
        """(runs started: path and meta, runs finished: path) since the last poll."""
        started = []
        for name in self._names():
            path = self.runs_dir / name
            if name in self._seen:
                continue
            try:
                meta = json.loads((path / "meta.json").read_text())
            except (FileNotFoundError, json.JSONDecodeError):
                continue  # created a moment ago: meta.json is written next (next poll)
            self._seen.add(name)
            self._running[path] = meta
            started.append((path, meta))
        finished = [path for path in self._running if (path / "summary.json").exists()]
        for path in finished:
            del self._running[path]
        return started, finished


class StudyProgress:
    """The study's terminal display: one `notebook(...)` block per notebook, in order.

    `expected_s`: each notebook's duration in the previous study of this profile (by
    notebook name; `report.previous_durations`). `file`: where it writes (the study's
    stderr); bars only when it is a terminal and `CI` is unset, unless `interactive` says.
    """

    def __init__(self, notebooks: Sequence[str], expected_s: Mapping[str, float], *, profile: str,
                 file: TextIO | None = None, interactive: bool | None = None) -> None:
        self.notebooks = list(notebooks)
        self.expected_s = dict(expected_s)
        self.profile = profile
        self.file = file or sys.stderr
        self.interactive = (self.file.isatty() and not os.environ.get("CI")) if interactive is None \
            else interactive
        self.finished_s: list[float] = []
        self._clock = time.monotonic
        self._study_started = self._clock()
        self._bars: dict[str, tqdm] = {}
        self._current = -1
        self._notebook_started = 0.0
        self._experiment: _Experiment | None = None
        self._load: dict[str, Any] | None = None
        self._last_heartbeat = 0.0

    # --- lines and bars ------------------------------------------------------------------

    def line(self, text: str) -> None:
        """A line above the bars (or alone without them)."""
        if self._bars:
            tqdm.write(text, file=self.file)
        else:
            print(text, file=self.file, flush=True)

    def _bar(self, key: str, position: int, **kwargs: Any) -> tqdm:
        if key not in self._bars:
            self._bars[key] = tqdm(file=self.file, position=position, leave=False, dynamic_ncols=True,
                                   **kwargs)
        return self._bars[key]

    def _time_bar(self, key: str, position: int, desc: str, status: str, *, done_s: float,
                  expected_s: float | None) -> None:
        """A bar over `expected_s` seconds (None: only the status), `done_s` of them passed."""
        text = status.replace("{", "{{").replace("}", "}}")
        fmt = (_TIME_BAR if expected_s else "{desc}: ") + text
        total = max(int(expected_s), 1) if expected_s else None
        done = int(min(done_s, total)) if total else 0
        bar = self._bars.get(key)
        if bar is None:
            self._bar(key, position, desc=desc, bar_format=fmt, total=total, initial=done)
            return
        bar.desc, bar.bar_format, bar.total, bar.n = desc, fmt, total, done
        bar.refresh()

    def _close(self, key: str) -> None:
        bar = self._bars.pop(key, None)
        if bar is not None:
            bar.close()

    def left_s(self, now: float) -> float | None:
        return study_left_s(self.notebooks, self.expected_s, current=max(self._current, 0),
                            elapsed_s=now - self._notebook_started if self._current >= 0 else 0.0,
                            finished_s=self.finished_s)

    def _study_status(self, now: float) -> str:
        left = self.left_s(now)
        elapsed = clock(now - self._study_started)
        if left is None:
            return f"{elapsed} elapsed, no estimate yet"
        return f"{elapsed} elapsed, " + (f"about {about(left)} left" if left >= 1 else "past the estimate")

    def _where(self) -> str:
        return f"[{self._current + 1}/{len(self.notebooks)}] {self.notebooks[self._current]}"

    def _draw(self, now: float) -> None:
        """Redraw the bars (a terminal) or, every HEARTBEAT_S, say where the study is."""
        if not self.interactive:
            if now - self._last_heartbeat >= HEARTBEAT_S:
                self._last_heartbeat = now
                self.line(self._heartbeat(now))
            return
        left = self.left_s(now)
        elapsed = now - self._study_started
        self._time_bar("study", 0, f"study {self._where()}", self._study_status(now), done_s=elapsed,
                       expected_s=None if left is None else elapsed + left)
        experiment = self._experiment
        if experiment is None:
            self._close("experiment")
            return
        self._time_bar("experiment", 1, f"  {experiment.name}", experiment.status(now),
                       done_s=now - experiment.started, expected_s=experiment.typical_s)

    def _heartbeat(self, now: float) -> str:
        parts = [f"{_INDENT}... {self.notebooks[self._current]} {clock(now - self._notebook_started)}"]
        if self._experiment is not None:
            parts.append(f"{self._experiment.name} {self._experiment.status(now)}")
        if self._load is not None:
            info = ", ".join(f"{k} {v}" for k, v in (self._load.get("info") or {}).items())
            parts.append(f"{self._load['label']} {self._load['done']}/{self._load['total']} {info}".rstrip())
        parts.append(self._study_status(now))
        return "; ".join(parts)

    # --- what happens --------------------------------------------------------------------

    def _on_event(self, event: dict[str, Any]) -> None:
        kind = event.get("kind")
        if kind == "announce":
            self.line(f"{_INDENT}running {event['experiment']}: {event['why']}")
        elif kind == "progress":
            if self._load is None or self._load["id"] != event["id"]:
                self._close("load")
            self._load = event
            if self.interactive:
                bar = self._bar("load", 2, total=event["total"], initial=event["done"],
                                desc=f"  {event['label']}", bar_format=_LOAD_BAR, smoothing=0.1)
                bar.update(max(event["done"] - bar.n, 0))
                bar.set_postfix(event.get("info") or {}, refresh=False)
        elif kind == "end" and self._load is not None and self._load["id"] == event["id"]:
            self._load = None
            self._close("load")

    def _on_runs(self, watch: RunsWatch, now: float) -> None:
        started, finished = watch.poll()
        for path, meta in started:
            name = meta.get("experiment", path.name)
            config = meta.get("config", {})
            typical = typical_duration_s(watch.runs_dir, name, profile=config.get("profile"),
                                         services=config.get("services", ()))
            self._experiment = _Experiment(name, path, now, typical)
            self.line(f"{_INDENT}{name} started: {path.name}")
        for path in finished:
            if self._experiment is not None and self._experiment.path == path:
                self.line(f"{_INDENT}{self._experiment.name} done in {clock(now - self._experiment.started)}")
                self._experiment = None

    def _poll(self, reader: ChannelReader, watch: RunsWatch | None) -> None:
        now = self._clock()
        for event in reader.read():
            self._on_event(event)
        if watch is not None:
            self._on_runs(watch, now)
        self._draw(now)

    # --- the study -----------------------------------------------------------------------

    def start(self) -> None:
        """The study's first line: how many notebooks, and about how long."""
        left = study_left_s(self.notebooks, self.expected_s, current=0, elapsed_s=0.0)
        known = sum(name in self.expected_s for name in self.notebooks)
        if left is None:
            estimate = f"no earlier {self.profile} study in reports/ to estimate from"
        else:
            of = f", {known} of {len(self.notebooks)} notebooks" if known < len(self.notebooks) else ""
            estimate = f"about {about(left)} (the previous {self.profile} study's durations in reports/{of})"
        count = f"{len(self.notebooks)} notebook" + ("s" if len(self.notebooks) != 1 else "")
        self.line(f"study: {count}, profile {self.profile}, {estimate}")

    @contextmanager
    def notebook(self, name: str, *, channel: Path, runs_dir: Path | None) -> Iterator[None]:
        """Show notebook `name` while the block executes it: its kernel writes to `channel`,
        its experiments write run directories under `runs_dir` (None: not watched)."""
        self._current = self.notebooks.index(name)
        self._notebook_started = self._clock()
        self._last_heartbeat = self._notebook_started
        before, left = self.expected_s.get(name), self.left_s(self._notebook_started)
        said = ([f"it took {clock(before)} last time"] if before else []) + \
            ([f"about {about(left)} left in the study"] if left is not None else [])
        self.line(f"{self._where()}: started" + (f" ({'; '.join(said)})" if said else ""))
        reader, watch = ChannelReader(channel), (RunsWatch(runs_dir) if runs_dir is not None else None)
        stop = threading.Event()

        def poll_until_stopped() -> None:
            while not stop.wait(POLL_S):
                self._poll(reader, watch)

        poller = threading.Thread(target=poll_until_stopped, name="ingestlab-study-progress", daemon=True)
        poller.start()
        outcome = "failed after"
        try:
            yield
            outcome = "done in"
        finally:
            stop.set()
            poller.join()
            self._poll(reader, watch)  # what came last
            took = self._clock() - self._notebook_started
            self.finished_s.append(took)
            self._experiment, self._load = None, None
            for key in ("load", "experiment"):
                self._close(key)
            self.line(f"{self._where()}: {outcome} {clock(took)}")

    def close(self) -> None:
        for key in list(self._bars):
            self._close(key)

    def __enter__(self) -> StudyProgress:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
