"""What a study shows in its terminal (ingestlab.study_progress) and keeps out of its reports:
the kernel's progress goes to the side channel, never into the executed notebook; the index
says how long each notebook took."""

from __future__ import annotations

import datetime as dt
import io
import os
from pathlib import Path

import nbformat
import pytest
from bs4 import BeautifulSoup
from factories import summary
from test_report import _write_notebook

from ingestlab import report, study_progress
from ingestlab.config import StudyConfig
from ingestlab.progress_channel import ENV_VAR, ChannelReader
from ingestlab.results import Run
from ingestlab.study_progress import StudyProgress, study_left_s, typical_duration_s

# A cell that does what a measuring cell does for its progress: the load engine's display,
# and a tqdm.auto bar of its own as engine-capacity's searches have (without ipywidgets,
# importing tqdm.auto warned "IProgress not found" into the outputs; with it, the bar is a
# widget).
PROGRESS_CELL = """
import json
from ipykernel import get_connection_info
from tqdm.auto import tqdm
from ingestlab.load.progress import make_display
for _ in tqdm(range(3), desc="engine-capacity", unit="search", disable=None):
    display = make_display("auto", total=3000, desc="load constant")
    for done in (0, 1500, 3000):
        display.update({"sent": done, "dropped": 0, "errors": 0, "offered_rps": 1000.0,
                        "achieved_rps": 1000.0, "elapsed_s": done / 1000})
    display.close()
print("result", 42)
print(json.loads(get_connection_info())["transport"])
"""


def _outputs(executed: Path) -> list[dict]:
    nb = nbformat.read(executed, as_version=4)
    return [output for cell in nb.cells if cell.cell_type == "code" for output in cell.outputs]


# --- the kernel's progress stays out of the notebook ----------------------------------------


def test_an_executed_notebook_holds_results_and_its_progress_goes_to_the_channel(tmp_path: Path) -> None:
    source = _write_notebook(tmp_path / "01_load.ipynb", title="Load", body=PROGRESS_CELL)
    channel = tmp_path / "channel.jsonl"
    executed = report.execute_notebook(source, tmp_path / "out" / "01_load.ipynb", {}, progress_file=channel)

    outputs = _outputs(executed)
    assert [o.output_type for o in outputs] == ["stream"]
    # the results only: no progress line, no warning about progress; the kernel is on Unix
    # sockets (IPC), so it has no "running over TCP without encryption" warning to give
    assert outputs[0].name == "stdout" and outputs[0].text == "result 42\nipc\n"
    assert "widgets" not in nbformat.read(executed, as_version=4).metadata
    events = ChannelReader(channel).read()
    assert [e["kind"] for e in events] == (["progress"] * 4 + ["end"]) * 3
    assert events[-2]["done"] == events[-2]["total"] == 3000
    assert events[-2]["label"] == "load constant"

    page = BeautifulSoup(report.render_html(executed, tmp_path / "reports").read_text(), "html.parser")
    shown = [area.get_text() for area in page.select(".jp-OutputArea-output")]
    assert [text.strip() for text in shown] == ["result 42\nipc"]
    assert not page.select(".jp-RenderedText[data-mime-type='application/vnd.jupyter.stderr']")

    entry = report.report_entry(executed, tmp_path / "reports" / "01_load.html")
    assert entry.duration_s is not None and 0 < entry.duration_s < 120


def test_without_a_progress_file_the_kernel_still_shows_no_progress(tmp_path: Path) -> None:
    assert ENV_VAR not in os.environ  # only the kernel gets it
    source = _write_notebook(tmp_path / "01_load.ipynb", title="Load", body=PROGRESS_CELL)
    executed = report.execute_notebook(source, tmp_path / "out" / "01_load.ipynb", {})
    assert [o.get("text") for o in _outputs(executed)] == ["result 42\nipc\n"]


# --- the study's display -------------------------------------------------------------------


def test_study_left_is_the_previous_studys_durations_less_what_has_run() -> None:
    names = ["00_a", "01_b", "02_c"]
    expected = {"00_a": 60.0, "01_b": 600.0, "02_c": 300.0}
    assert study_left_s(names, expected, current=0, elapsed_s=0.0) == 960.0
    assert study_left_s(names, expected, current=1, elapsed_s=100.0) == 800.0
    assert study_left_s(names, expected, current=1, elapsed_s=900.0) == 300.0  # over: what follows
    # a notebook the previous study did not run: the mean of this study's finished ones
    assert study_left_s(names, {"00_a": 60.0}, current=1, elapsed_s=0.0, finished_s=[90.0]) == 180.0
    # nothing finished yet: the median of the known ones
    assert study_left_s(names, {"00_a": 60.0, "02_c": 300.0}, current=0, elapsed_s=0.0) == 540.0
    assert study_left_s(names, {}, current=0, elapsed_s=0.0) is None


def _run(runs_dir: Path, experiment: str, *, services: tuple[str, ...], took_s: float | None) -> Run:
    config = StudyConfig.for_profile("quick", runs_dir=runs_dir, services=services)
    run = Run.create(config, experiment)
    if took_s is not None:
        run.write_summary(summary(experiment, {s: {} for s in services}))
        created = dt.datetime.fromisoformat(run.meta["created_utc"]).timestamp()
        os.utime(run.path / "summary.json", (created + took_s, created + took_s))
    return run


def test_an_experiments_typical_duration_is_the_median_of_its_runs_like_it(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    for took in (100.0, 300.0, 200.0):
        _run(runs, "ceiling", services=("node", "rust"), took_s=took)
    _run(runs, "ceiling", services=("node",), took_s=5.0)  # another set of services
    _run(runs, "ceiling", services=("node", "rust"), took_s=None)  # still running
    assert typical_duration_s(runs, "ceiling", profile="quick", services=["node", "rust"]) == 200.0
    assert typical_duration_s(runs, "ceiling", profile="full", services=["node", "rust"]) is None
    assert typical_duration_s(runs, "soak", profile="quick", services=["node", "rust"]) is None


def test_the_study_says_what_runs_in_a_pipe(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a terminal: lines only, and a line a minute (here: every poll) on where it is."""
    monkeypatch.setattr(study_progress, "HEARTBEAT_S", 0.0)
    runs, channel, out = tmp_path / "runs", tmp_path / "channel.jsonl", io.StringIO()
    _run(runs, "soak", services=("node", "rust"), took_s=120.0)  # an earlier one: typically 2:00
    with StudyProgress(["00_a", "01_b"], {"00_a": 30.0, "01_b": 600.0}, profile="quick", file=out) as shown:
        assert not shown.interactive
        with shown.notebook("00_a", channel=tmp_path / "none.jsonl", runs_dir=runs):
            pass
        with shown.notebook("01_b", channel=channel, runs_dir=runs):
            monkeypatch.setenv(ENV_VAR, str(channel))
            from ingestlab.inputs import announce

            announce("soak", "a comparison rate")
            soak = _run(runs, "soak", services=("node", "rust"), took_s=None)
            from ingestlab.load.progress import make_display

            make_display("auto", total=3000, desc="load constant").update(
                {"sent": 2100, "dropped": 0, "errors": 0, "offered_rps": 1000.0, "achieved_rps": 990.0,
                 "elapsed_s": 2.1})
            shown._poll(ChannelReader(channel), None)  # the heartbeat (the watch would take the run)
    said = out.getvalue().splitlines()
    heartbeat = [line for line in said if line.startswith("      ... 01_b")][-1]
    assert "load constant 2100/3000 offered 1000/s, achieved 990/s, errors 0, dropped 0" in heartbeat
    assert "about 10 min left" in heartbeat
    lines = [line for line in said if not line.startswith("      ... ")]
    assert lines[0] == "study: 2 notebooks, profile quick, about 10 min (the previous quick study's " \
                       "durations in reports/)"
    assert lines[1].startswith("[1/2] 00_a: started (it took 0:30 last time; about 10 min left in the study)")
    assert lines[2].startswith("[1/2] 00_a: done in 0:0")
    assert lines[3].startswith("[2/2] 01_b: started (it took 10:00 last time; about 10 min left")
    assert "      running soak: a comparison rate" in lines
    assert f"      soak started: {soak.run_id}" in lines
    assert lines[-1].startswith("[2/2] 01_b: done in 0:0")
    assert not any("\r" in line or "%|" in line for line in said)  # no bars in a pipe


def test_the_study_draws_bars_in_a_terminal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runs, channel, out = tmp_path / "runs", tmp_path / "channel.jsonl", io.StringIO()
    _run(runs, "soak", services=("node", "rust"), took_s=120.0)
    monkeypatch.setenv(ENV_VAR, str(channel))
    shown = StudyProgress(["01_b"], {"01_b": 600.0}, profile="quick", file=out, interactive=True)
    with shown, shown.notebook("01_b", channel=channel, runs_dir=runs):
        watch = study_progress.RunsWatch(runs)
        _run(runs, "soak", services=("node", "rust"), took_s=None)
        from ingestlab.load.progress import make_display

        make_display("auto", total=3000, desc="load constant").update(
            {"sent": 1500, "dropped": 0, "errors": 0, "offered_rps": 1000.0, "achieved_rps": 990.0,
             "elapsed_s": 1.5})
        shown._poll(ChannelReader(channel), watch)
    screen = out.getvalue()
    assert "study [1/1] 01_b:   0%|" in screen and "about 10 min left" in screen
    assert "  soak:   0%|" in screen and "(typically 2:00)" in screen
    assert "  load constant:  50%|" in screen and "1500/3000" in screen and "achieved=990/s" in screen


# --- the study's reports -------------------------------------------------------------------


def test_the_index_says_how_long_each_notebook_took_and_the_next_study_expects_it(tmp_path: Path) -> None:
    notebooks, reports = tmp_path / "notebooks", tmp_path / "reports"
    notebooks.mkdir()
    _write_notebook(notebooks / "01_first.ipynb", title="First", body="import time\ntime.sleep(0.5)",
                    parameters='profile = "full"')
    _write_notebook(notebooks / "02_second.ipynb", title="Second", body='print("two")',
                    parameters='profile = "full"')
    out = io.StringIO()
    entries = report.run_study("quick", notebooks, reports, progress_to=out)

    assert all(entry.duration_s and entry.duration_s > 0 for entry in entries)
    assert entries[0].duration_s > 0.5  # the cell's sleep, at least
    index = (reports / "index.html").read_text()
    assert "<th>took</th>" in index
    for entry in entries:
        assert f'<td class="took">{report.took(entry.duration_s)}</td>' in index
    assert f"The notebooks took {report.took(sum(e.duration_s for e in entries))} in all." in index
    said = out.getvalue()
    assert "study: 2 notebooks, profile quick, no earlier quick study in reports/" in said
    assert "[2/2] 02_second: done in" in said
    # the next study of this profile expects these durations (and nothing for another profile)
    assert report.previous_durations(reports, "quick") == {e.notebook: e.duration_s for e in entries}
    assert report.previous_durations(reports, "full") == {}


def test_took_reads_like_a_duration() -> None:
    assert report.took(4.4) == "4 s"
    assert report.took(422) == "7 min 02 s"
    assert report.took(3780) == "1 h 03 min"


def test_a_failed_notebook_is_not_what_the_next_study_expects(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    reports.mkdir()
    nb = nbformat.v4.new_notebook()
    nb.metadata["papermill"] = {"parameters": {"profile": "full"}, "duration": 12.5, "exception": True}
    nbformat.write(nb, reports / "03_broken.ipynb")
    nb.metadata["papermill"] = {"parameters": {"profile": "full"}, "duration": 40.0, "exception": None}
    nbformat.write(nb, reports / "04_fine.ipynb")
    assert report.previous_durations(reports, "full") == {"04_fine": 40.0}
    assert report.previous_durations(reports, "quick") == {}


def test_the_kernels_own_stderr_reaches_the_terminal_without_the_known_noise() -> None:
    said: list[str] = []
    manager = report.StudyKernelManager.sending_stderr_to(said.append)()
    read_end, write_end = os.pipe()
    with open(write_end, "w") as kernel_stderr:
        kernel_stderr.write(
            "[IPKernelApp] WARNING | Kernel is running over TCP without encryption. All communication ...\n"
            "[IPKernelApp] ERROR | KeyboardInterrupt caught in kernel.\n"
            "\n"
            "Traceback (most recent call last):\n"
            "MemoryError\n"
        )
    manager._forward(read_end)
    assert said == ["Traceback (most recent call last):", "MemoryError"]
