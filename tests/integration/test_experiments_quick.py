"""The rig's own experiments end to end in the quick profile (`ingestlab run NAME`).

The calibration and the service experiments (engine-capacity, ceiling, soak, startup) run in
the notebook tests, which check their summaries (tests/notebooks/experiment_checks.py): the
same code paths, run once.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ingestlab.cli import main
from ingestlab.results import Run


def _run(capsys, *args) -> Run:
    code = main(["run", *args, "--profile", "quick"])
    captured = capsys.readouterr()
    out = captured.out.strip().splitlines()
    assert code == 0, "\n".join(out[-20:] + captured.err.strip().splitlines()[-40:])
    return Run.open(Path(out[-1]))


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory) -> str:
    return str(tmp_path_factory.mktemp("runs"))


def test_latency_accuracy(capsys, runs_dir):
    run = _run(capsys, "latency-accuracy", "--runs-dir", runs_dir)
    s = run.summary
    assert s.target_ms == 5.0 and s.rate_rps == 1000
    # the endpoint sleeps 5 ms after the body arrived: nothing can be faster
    assert 5.0 <= s.p50_ms <= s.p99_ms <= s.max_ms
    assert isinstance(s.goal["met"], bool)
    assert run.read_frame("requests").height == 5000
