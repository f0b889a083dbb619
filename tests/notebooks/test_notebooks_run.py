"""Every notebook, executed in its numbered order with papermill in the test profile (the quick
one, shorter: `config.PROFILE_CHANGES`), against the
real stack (Kafka broker and both services, built by `make setup`).

The notebooks share one temporary runs directory, as in a study: 02 reads the ceiling run 01
made, 05 adds soak and ceiling runs to those of 01 and 03 until it has `trials` (3) of each.
Each notebook must finish without an error, record its numbers into a run, and leave no
process behind: every process a notebook's kernel starts inherits a token in its environment
(the kernel gets this process's environment), and after each notebook no live process may
carry it. About 11 minutes in all with containers on a 2-core AMD EPYC (05: 3.5 min for its
extra trials and cpu-cores, 03: 2.8 min with its backlog).
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import nbformat
import polars as pl
import psutil
import pytest
from experiment_checks import CHECKS

from ingestlab import report
from ingestlab.analysis.claims import CLAIMS_COLUMNS, load_claims
from ingestlab.results import Run, new_study_id
from ingestlab.study import NOT_MEASURABLE, missing_claims

pytestmark = [pytest.mark.notebooks, pytest.mark.integration]

NOTEBOOKS_DIR = Path(__file__).resolve().parents[2] / "notebooks"
NOTEBOOKS = report.study_notebooks(NOTEBOOKS_DIR)
TOKEN_VARIABLE = "INGESTLAB_NOTEBOOK_TEST_TOKEN"
# A cell may run a whole experiment (05: a soak or a ceiling run, ~1 min each).
CELL_TIMEOUT_S = 900
VERDICTS = {"reproduced", "direction only", "not reproduced"}
STUDY_ID = new_study_id()


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The directories the notebooks share: runs, reports (claims.csv), executed copies."""
    root = tmp_path_factory.mktemp("study")
    dirs = {name: root / name for name in ("runs", "reports", "executed")}
    for path in dirs.values():
        path.mkdir()
    return dirs


@pytest.fixture(scope="module")
def token() -> Iterator[str]:
    """A token in the environment of every process the notebooks start (see module doc)."""
    value = uuid.uuid4().hex
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(TOKEN_VARIABLE, value)
        yield value


def _carrying(token: str) -> list[psutil.Process]:
    """Live processes started with `token` in their environment (not this one: /proc shows
    the environment a process was started with, and the token was set after)."""
    found = []
    for process in psutil.process_iter():
        if process.pid == os.getpid():
            continue
        try:
            if process.environ().get(TOKEN_VARIABLE) == token and process.status() != psutil.STATUS_ZOMBIE:
                found.append(process)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return found


def _assert_nothing_left(token: str, *, grace_s: float = 15.0) -> None:
    """Wait up to `grace_s` for the kernel and its children to exit; kill and fail if not."""
    deadline = time.monotonic() + grace_s
    left = _carrying(token)
    while left and time.monotonic() < deadline:
        time.sleep(0.5)
        left = _carrying(token)
    described = []
    for process in left:
        try:
            described.append(f"{process.pid} {' '.join(process.cmdline())[:120]}")
            process.kill()
        except psutil.NoSuchProcess:
            continue
    assert not described, f"processes left behind: {described}"


def _parameters(notebook: Path, study: dict[str, Path]) -> dict[str, object]:
    # one study id for all of them, as `make study` gives: they share its runs and its rates
    # the test profile: quick, shorter, no look beyond the claims' 3 trials (the sequential
    # rule's looks are tested in tests/unit/test_study.py on saved runs)
    parameters: dict[str, object] = {"profile": "test", "runs_dir": str(study["runs"]),
                                     "study_id": STUDY_ID}
    if notebook.stem == "05_claims_vs_measured":
        parameters |= {"reports_dir": str(study["reports"])}
    if notebook.stem == "06_language_or_design":
        # two trials of the profile's four services (the article's two and the promise-matched
        # pair; the variants' ceilings and cold starts are the full study's), overload on Node
        parameters |= {"trials": 2, "overload_services": ["node"]}
    return parameters


def _recorded_run(executed: Path) -> Path:
    """The run directory the notebook's last code cell recorded its numbers into."""
    nb = nbformat.read(executed, as_version=4)
    last = [cell for cell in nb.cells if cell.cell_type == "code"][-1]
    runs = [
        output["data"][report.RUN_MIMETYPE]["run_dir"]
        for output in last.get("outputs", [])
        if report.RUN_MIMETYPE in output.get("data", {})
    ]
    assert runs, "the last cell displayed no run: record_notebook_summary did not run"
    return Path(runs[0])


@pytest.mark.timeout(1800)
@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_in_the_test_profile(notebook: Path, study: dict[str, Path], token: str) -> None:
    executed = study["executed"] / notebook.name
    try:
        report.execute_notebook(notebook, executed, _parameters(notebook, study), timeout_s=CELL_TIMEOUT_S)
    finally:
        _assert_nothing_left(token)
    run = Run.open(_recorded_run(executed))
    assert notebook.stem in run.notebook_records, f"{notebook.stem} recorded nothing in {run.path}"
    if notebook.stem in CHECKS:
        CHECKS[notebook.stem](study["runs"])
    if notebook.stem == "05_claims_vs_measured":
        _check_claims(run, study["reports"] / "claims.csv")


def _check_claims(run: Run, csv_path: Path) -> None:
    """Every claim of data/article_claims.csv is in the recorded numbers, measured (a ratio
    and a verdict) or "not measurable here" with a reason; claims.csv has every column."""
    claims = load_claims()
    numbers = run.notebook_records["05_claims_vs_measured"]["numbers"]
    assert set(numbers) == set(claims["key"])
    assert missing_claims(numbers, claims) == []
    for key, entry in numbers.items():
        if entry["verdict"] == NOT_MEASURABLE:
            assert entry["reason"], key
        else:
            assert entry["verdict"] in VERDICTS, (key, entry["verdict"])
            assert entry["measured_ratio"] is not None and entry["measured_ratio"] > 0, key
    assert run.meta["experiment"] == "claims"
    assert (run.path / "claims.parquet").exists()
    written = pl.read_csv(csv_path)
    assert set(CLAIMS_COLUMNS) <= set(written.columns)
    assert sorted(written["key"]) == sorted(claims["key"])
