"""The load experiments end to end in the quick profile (`ingestlab run NAME`).

They share one runs directory, in the order a study makes them: the ceiling uses the
engine-capacity calibration, the soak the ceiling's result (run alone, each makes what it needs).
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


def test_ceiling(capsys, runs_dir):
    run = _run(capsys, "ceiling", "--runs-dir", runs_dir)
    limits = run.summary.engine_limits
    assert limits["asyncio_rps"] > 0 and limits["oha_rps"] > 0
    for service in ("node", "rust"):
        s = run.summary.services[service]
        assert s.ceiling_rps and s.ceiling_rps > 0, s.search
        assert s.wrk_rps > 0 and s.wrk_lost == 0
        steps = s.steps
        assert steps[0]["offered_rps"] == 1_000
        assert all(step["lost"] == 0 for step in steps)
        for step in steps:  # each engine only where the calibration gives it room
            room = limits["asyncio_usable_rps"]
            if step["offered_rps"] <= room:
                assert step["engine"] == "asyncio" or "repeated with oha" in step["engine_notes"]
            else:
                assert step["engine"] in ("oha", None)
        held = [step["offered_rps"] for step in steps if step["outcome"] == "pass"]
        assert s.ceiling_rps == max(held)
        assert (run.path / "logs" / service / "kafka.log").exists()


def test_soak(capsys, runs_dir):
    run = _run(capsys, "soak", "--runs-dir", runs_dir)
    ceiling = next(Path(runs_dir).glob("*-ceiling-*"))
    assert ceiling.name in run.summary.rate_source
    assert run.summary.rate_rps > 0
    for service in ("node", "rust"):
        s = run.summary.services[service]
        assert s.p99_ms is not None and s.rss_mean_mib > 0
        assert 0 < s.rss_start_mib <= s.rss_peak_mib
        assert s.memory_pattern in ("flat", "sawtooth", "irregular")
        assert s.lost == 0 and s.accepted > 0
        assert s.rate_rps == run.summary.rate_rps  # one rate for both services
        assert not s.engine_saturated, s.engine_notes
        assert s.sampler_overhead_core_pct >= 0
    node = run.summary.services["node"]
    for value in (node.gc_pause_p99_ms, node.p99_outside_gc_ms, node.share_of_slow_requests_during_gc):
        assert value is not None
    assert node.gc_events > 0 and node.gc_unparsed_lines == 0
    samples = run.read_frame("samples")
    assert set(samples["service"]) == {"node", "rust"}
    assert run.read_frame("gc").height >= node.gc_events
    threads = run.read_frame("thread_samples")
    assert "node" in set(threads.filter(service="node")["name"])


def test_startup(capsys, runs_dir):
    run = _run(capsys, "startup", "--runs-dir", runs_dir)
    services = run.summary.services
    for service in ("node", "rust"):
        s = services[service]
        assert s.cold_start_runs == 3
        assert 0 < s.cold_start_min_ms <= s.cold_start_ms <= s.cold_start_max_ms
        assert s.rss_at_ready_mib > 0 and s.footprint_bytes > 1_000_000
    assert services["node"].footprint_bytes > services["rust"].footprint_bytes
    assert run.summary.rust_over_node()["footprint_bytes"] < 1
    assert run.read_frame("cold_starts").height == 6
