"""The load experiments end to end in the quick profile (`ingestlab run NAME`)."""

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


def test_latency_accuracy(capsys, tmp_path):
    run = _run(capsys, "latency-accuracy", "--runs-dir", str(tmp_path))
    s = run.summary
    assert s["target_ms"] == 5.0 and s["rate_rps"] == 1000
    # the endpoint sleeps 5 ms after the body arrived: nothing can be faster
    assert 5.0 <= s["p50_ms"] <= s["p99_ms"] <= s["max_ms"]
    assert isinstance(s["goal"]["met"], bool)
    assert run.read_frame("requests").height == 5000


def test_engine_capacity(capsys, tmp_path):
    run = _run(capsys, "engine-capacity", "--runs-dir", str(tmp_path))
    s = run.summary
    for key in (
        "engine_max_rps",
        "engine_lag_p99_ms",
        "wrk_rps",
        "native_max_rps",
        "body_bytes",
        "repeats",
        "stall_recovery_s",
    ):
        assert key in s, key
    assert s["body_bytes"] == 10_000 and s["repeats"] == 1
    assert s["engine_max_rps"] in (0, 4_000, 8_000)
    assert s["wrk_rps"] > 0 and s["wrk_errors"] == 0
    steps = run.read_frame("steps")
    assert set(steps["series"]) >= {"aiohttp-0", "oha"}
    assert (run.path / "logs" / "nginx.log").exists()


@pytest.mark.parametrize("service", ["node", "rust"])
def test_ceiling(capsys, tmp_path, service):
    run = _run(capsys, "ceiling", "--service", service, "--runs-dir", str(tmp_path))
    s = run.summary[service]
    assert s["ceiling_rps"] in (0, 500, 2_000, 4_000)
    assert s["wrk_rps"] > 0 and s["wrk_lost"] == 0
    steps = s["steps"]
    assert [step["offered_rps"] for step in steps] == [500, 2_000, 4_000][: len(steps)]
    assert all(step["lost"] == 0 for step in steps)
    engines = {step["offered_rps"]: step["engine"] for step in steps}
    assert engines.get(500) == "aiohttp" and engines.get(4_000, "oha") == "oha"
    assert (run.path / "logs" / service / "kafka.log").exists()


def test_soak(capsys, tmp_path):
    run = _run(capsys, "soak", "--runs-dir", str(tmp_path))
    for service in ("node", "rust"):
        s = run.summary[service]
        for key in (
            "rss_start_mb",
            "rss_mean_mb",
            "rss_peak_mb",
            "memory_pattern",
            "sampler_overhead_core_pct",
            "p99_ms",
        ):
            assert s[key] is not None, key
        assert 0 < s["rss_start_mb"] <= s["rss_peak_mb"]
        assert s["memory_pattern"] in ("flat", "sawtooth", "irregular")
        assert s["lost"] == 0 and s["accepted"] > 0
        assert s["sampler_overhead_core_pct"] >= 0
    node = run.summary["node"]
    for key in ("gc_pause_p99_ms", "gc_events", "p99_outside_gc_ms", "share_of_slow_requests_during_gc"):
        assert key in node, key
    assert node["gc_events"] > 0 and node["gc_unparsed_lines"] == 0
    samples = run.read_frame("samples")
    assert set(samples["service"]) == {"node", "rust"}
    assert run.read_frame("gc").height >= node["gc_events"]
    threads = run.read_frame("thread_samples")
    assert "node" in set(threads.filter(service="node")["name"])


def test_startup(capsys, tmp_path):
    run = _run(capsys, "startup", "--runs-dir", str(tmp_path))
    for service in ("node", "rust"):
        s = run.summary[service]
        assert s["cold_start_runs"] == 3
        assert 0 < s["cold_start_min_ms"] <= s["cold_start_ms"] <= s["cold_start_max_ms"]
        assert s["rss_at_ready_mb"] > 0 and s["footprint_bytes"] > 1_000_000
    assert run.summary["node"]["footprint_bytes"] > run.summary["rust"]["footprint_bytes"]
    assert run.read_frame("cold_starts").height == 6
