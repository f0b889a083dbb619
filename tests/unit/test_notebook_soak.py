"""ingestlab.notebook.soak: a soak run's conditions, CPU, memory patterns and GC, and the
article's memory and p99 claims beside them, on small hand-built frames."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from factories import summary

from ingestlab.config import StudyConfig
from ingestlab.notebook.article import article_fact
from ingestlab.notebook.soak import (
    cpu_by_core_per_service,
    cpu_by_thread_per_service,
    gc_in_flight,
    memory_patterns,
    soak_conditions,
    soak_vs_article,
)
from ingestlab.results import Run
from ingestlab.units import MIB, NS_PER_MS, NS_PER_S

T0_NS = 1_800_000_000_000_000_000


def test_memory_patterns_rss_flat_and_heap_sawtooth() -> None:
    n = 200  # 20 s at 10 Hz
    samples = pl.concat(
        [
            pl.DataFrame(
                {
                    "t_ns": [T0_NS + i * 100 * NS_PER_MS for i in range(n)],
                    "pid": [7] * n,
                    "rss_bytes": [100 * MIB + (i % 2) * MIB // 10 for i in range(n)],
                    "service": ["node"] * n,
                }
            ),
            # the service's child process (another pid) is not the service's own memory
            pl.DataFrame(
                {
                    "t_ns": [T0_NS + 50 + i * 100 * NS_PER_MS for i in range(n)],
                    "pid": [8] * n,
                    "rss_bytes": [900 * MIB] * n,
                    "service": ["node"] * n,
                }
            ),
        ]
    ).sort("t_ns")
    requests = pl.DataFrame({"service": ["node"], "intended_start_ns": [T0_NS]})
    # a collection every 0.5 s: 10 -> 30 MiB, back to 10 (MiB)
    collections = range(1, 40)
    gc = pl.DataFrame(
        {
            "wall_ns": [T0_NS + k * 500 * NS_PER_MS for k in collections],
            "pause_ms": [1.0] * len(collections),
            "heap_before_mib": [30.0] * len(collections),
            "heap_after_mib": [10.0] * len(collections),
            "service": ["node"] * len(collections),
        }
    )
    patterns = memory_patterns(samples, requests, gc)
    rss = patterns.filter(series="RSS").row(0, named=True)
    assert rss["classification"] == "flat"
    assert rss["mean_mib"] == pytest.approx(100.05, abs=0.01)
    assert rss["peak_mib"] < 101
    heap = patterns.filter(series="V8 heap").row(0, named=True)
    assert heap["classification"] == "sawtooth"
    assert heap["period_s"] == pytest.approx(0.5, abs=0.01)
    assert heap["peak_mib"] == 30.0
    short = memory_patterns(samples.head(4), requests)
    assert short["classification"].to_list() == ["too few samples"]


def test_cpu_per_service_uses_each_services_own_window() -> None:
    rows = []
    for service, pid, t0, cpu in (("node", 1, 0, 0.5), ("rust", 2, 100, 0.1)):
        for k in range(11):  # 10 s at 1 Hz; node busy half a core, rust a tenth
            rows.append(
                {
                    "t_ns": T0_NS + (t0 + k) * NS_PER_S,
                    "pid": pid,
                    "tid": pid,
                    "name": service,
                    "cpu_user_s": cpu * k,
                    "cpu_system_s": 0.0,
                    "last_cpu": 1,
                    "service": service,
                }
            )
    threads = pl.DataFrame(rows)
    cpu = cpu_by_thread_per_service(threads)
    assert cpu.columns[0] == "service"
    assert dict(zip(cpu["service"], cpu["core_pct"], strict=True)) == pytest.approx(
        {"node": 50.0, "rust": 10.0}
    )
    cores = cpu_by_core_per_service(threads)
    assert dict(zip(cores["service"], cores["core_pct"], strict=True)) == pytest.approx(
        {"node": 50.0, "rust": 10.0}
    )


def test_gc_in_flight_per_kind() -> None:
    in_flight = pl.DataFrame(
        {
            "kind": ["Scavenge", "Scavenge", "Mark-Compact"],
            "pause_ms": [1.0, 2.0, 9.0],
            "in_flight": [0, 4, 10],
        }
    )
    table = gc_in_flight(in_flight)
    assert table["kind"].to_list() == ["Mark-Compact", "Scavenge"]  # longest pauses first
    scavenge = table.filter(kind="Scavenge").row(0, named=True)
    assert (scavenge["pauses"], scavenge["pauses_with_requests"], scavenge["in_flight_max"]) == (2, 1, 4)
    assert scavenge["in_flight_mean"] == 2.0


def test_soak_conditions_against_the_article(tmp_path: Path) -> None:
    service = {
        "rate_rps": 4000.0,
        "achieved_rps": 3999.0,
        "duration_s": 300.0,
        "engine": "oha",
        "accepted": 1_200_000,
        "lost": 0,
    }
    run = Run.create(StudyConfig.for_profile("quick", runs_dir=tmp_path), "soak")
    run.write_summary(summary("soak", {"node": service, "rust": service}, rate_source="ceiling"))
    table = soak_conditions(run)
    row = table.row(0, named=True)
    assert (row["service"], row["rate_source"], row["engine"]) == ("node", "ceiling", "oha")
    assert (row["accepted"], row["lost"]) == (1_200_000, 0)
    # the article's soak: data/article_facts.csv
    assert (row["article_rate_rps"], row["article_duration_s"]) == (10_000, 72 * 3600.0)
    assert row["rate_pct_of_article"] == 40.0
    assert row["duration_pct_of_article"] == pytest.approx(100 * 300 / (72 * 3600))


def test_soak_vs_article_reads_the_claims_and_facts_files() -> None:
    patterns = pl.DataFrame(
        {
            "service": ["node", "rust", "node"],
            "series": ["RSS", "RSS", "V8 heap"],
            "classification": ["flat", "flat", "sawtooth"],
            "mean_mib": [128.0, 42.0, 20.0],
            "amplitude_mib": [5.0, 0.5, 15.0],
            "peak_mib": [140.0, 43.0, 43.0],
            "period_s": [None, None, 0.04],
        }
    )
    latency = pl.DataFrame({"service": ["node", "rust"], "p99_ms": [25.2, 13.3]})
    gc_summary = {
        "p99_outside_gc_ms": 15.0,
        "share_of_slow_requests_during_gc": 0.75,
        "share_during_gc": 0.135,
    }
    table = soak_vs_article(patterns, latency, gc_summary)
    rows = {row["claim"]: row for row in table.iter_rows(named=True)}
    memory = rows["average memory, sustained (MiB; the article says MB)"]
    assert (memory["node_article"], memory["rust_article"], memory["node_measured"]) == ("820", "42", "128.0")
    assert rows["memory pattern (RSS)"]["node_article"] == "Sawtooth pattern"
    assert rows["p99 latency (ms)"]["rust_measured"] == "13.30"
    assert "75% of the requests slower than p99" in rows["p99 cause"]["node_measured"]
    heap = rows["V8 heap pattern (Node only)"]
    assert heap["node_measured"] == "sawtooth (a drop every 0.04 s), mean 20.0 MiB, peak 43.0 MiB"
    assert heap["node_article"] == "sawtooth: climbs to ~800 MB, then an old-generation GC"
    assert (heap["node_article"], heap["rust_article"]) == (
        article_fact("node_heap_peak_mb").text,
        article_fact("rust_heap").text,
    )
    without_gc = soak_vs_article(patterns.filter(service="rust"), latency, None)
    assert without_gc.filter(claim="p99 cause")["node_measured"][0].startswith("p99 outside GC pauses —")
    no_heap = without_gc.filter(claim="V8 heap pattern (Node only)")["node_measured"][0]
    assert no_heap == "—, mean — MiB, peak — MiB"
