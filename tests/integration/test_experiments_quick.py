"""The rig's own experiments end to end in the quick profile (`ingestlab run NAME`).

The service experiments (ceiling, soak, startup) run in the notebook tests, which check their
summaries (tests/notebooks/test_notebooks_run.py): the same code paths, run once.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
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


def test_engine_capacity(capsys, runs_dir):
    run = _run(capsys, "engine-capacity", "--runs-dir", runs_dir)
    s = run.summary
    assert s.engine_lag_p99_ms is not None and s.stall_recovery_s is not None
    assert s.body_bytes == 10_000 and s.repeats == 1
    # a measurement, whatever the machine: never 0, and found by the search
    assert s.engine_max_rps > 0 and s.native_max_rps > 0
    assert s.wrk_rps > 0 and s.wrk_errors == 0
    assert s.engine_share_of_wrk == pytest.approx(s.engine_max_rps / s.wrk_rps)
    assert s.stall_rate_rps == pytest.approx(0.8 * s.engine_max_rps)
    steps = run.read_frame("steps")
    assert set(steps["series"]) == {"asyncio-0", "oha"}
    held = steps.filter(pl.col("series") == "asyncio-0", pl.col("sustained"))
    assert held["offered_rps"].max() == s.engine_max_rps
    assert (run.path / "logs" / "nginx.log").exists()
