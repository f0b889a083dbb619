"""notebook.memory_claims: the article's memory claims, point by point, from saved runs."""

from __future__ import annotations

from pathlib import Path

from factories import summary

from ingestlab.config import StudyConfig
from ingestlab.notebook.memory_claims import article_words, backlog_runs_here, memory_claims
from ingestlab.results import Run

PARTS = {"heap_used_peak_mib": 24.0, "heap_total_peak_mib": 47.0, "largest_at_peak": "the rest of RSS"}


def _run(config: StudyConfig, experiment: str, services: dict) -> Run:
    run = Run.create(config, experiment)
    run.write_summary(summary(experiment, services))
    return run


def test_each_claim_gets_a_sentence_from_the_runs(tmp_path: Path) -> None:
    config = StudyConfig.for_profile("quick", runs_dir=tmp_path)
    soak = _run(config, "soak", {
        "node": {"rss_mean_mib": 103.0, "memory_pattern": "flat", "memory_parts": PARTS,
                 "gc_events_by_kind": {"Scavenge": 56, "Mark-Compact": 14}, "duration_s": 12.0,
                 "rss_slope_mib_per_h": -1642.3, "rss_slope_ci_mib_per_h": [-2771.2, -513.5]},
        "rust": {"rss_mean_mib": 18.0, "memory_pattern": "flat", "rss_slope_mib_per_h": 0.5,
                 "rss_slope_ci_mib_per_h": [-1.0, 2.0], "duration_s": 3_600.0}})
    free = _run(config, "backlog", {
        "node": {"largest_at_peak": "librdkafka producer queue", "queue_peak_mib": 900.0,
                 "cap_reached_s": 40.0, "cap_reached": "messages"},
        "rust": {"largest_at_peak": "the rest of RSS", "queue_peak_mib": 20.0}})
    oom = _run(config, "backlog", {"node": {"memory_limit_mb": 300, "oom_killed": True, "died_s": 25.0,
                                            "lost": 1_200}})
    runs = backlog_runs_here(config, free)
    assert [r.run_id for r in runs] == [free.run_id, oom.run_id]
    table = memory_claims(soak, runs)
    ARTICLE = article_words()
    rows = {row["claim"]: row for row in table.iter_rows(named=True)}
    assert set(rows) == set(ARTICLE.values())
    assert rows[ARTICLE["sustained"]]["holds"] == "no" and "103 MiB" in rows[ARTICLE["sustained"]]["measured"]
    assert "MiB/h" not in rows[ARTICLE["sustained"]]["measured"]  # a 12 s trend says nothing
    assert "14 old-generation collections" in rows[ARTICLE["heap_peak"]]["measured"]
    heap_queue = rows[ARTICLE["heap_queue"]]
    assert heap_queue["holds"] == "no" and "librdkafka producer queue" in heap_queue["measured"]
    assert "messages cap after 40 s" in heap_queue["measured"]
    oom_row = rows[ARTICLE["oom"]]
    assert oom_row["holds"] == "yes" and "1200 accepted records lost" in oom_row["measured"]
    assert rows[ARTICLE["bounded"]]["holds"] == "yes"
    flat = rows[ARTICLE["flat"]]
    assert flat["holds"] == "yes" and "+0.5 MiB/h [-1.0, +2.0]" in flat["measured"]


def test_without_backlog_runs_the_claims_are_not_measured(tmp_path: Path) -> None:
    config = StudyConfig.for_profile("quick", runs_dir=tmp_path)
    soak = _run(config, "soak", {"node": {"memory_pattern": "sawtooth", "rss_mean_mib": 820.0},
                                 "rust": {}})
    table = memory_claims(soak)
    assert table.filter(table["holds"] == "not measured").height == 3
    assert table.filter(table["claim"] == article_words()["sustained"])["holds"][0] == "yes"
    assert "OOM" in article_words()["oom"] and "heap memory" in article_words()["heap_queue"]


def test_a_variants_backlog_run_gets_a_row_under_the_heap_queueing_claim(tmp_path: Path) -> None:
    config = StudyConfig.for_profile("quick", runs_dir=tmp_path)
    soak = _run(config, "soak", {"node": {}, "rust": {}})
    article = _run(config, "backlog", {"node": {"largest_at_peak": "librdkafka producer queue"}})
    _run(config, "backlog", {
        "node-acked": {"largest_at_peak": "V8 heap", "heap_total_peak_mib": 318.0},
        "rust-enqueue": {"largest_at_peak": "librdkafka producer queue"},
        "python": {"largest_at_peak": None}})
    table = memory_claims(soak, backlog_runs_here(config, article))
    heap_queue = table.filter(table["claim"] == article_words()["heap_queue"])
    holds = dict(zip(heap_queue["service"], heap_queue["holds"], strict=True))
    assert holds == {"node": "no", "node-acked": "yes", "rust-enqueue": "no", "python": "not measured"}
    acked = heap_queue.filter(heap_queue["service"] == "node-acked")["measured"][0]
    assert acked.startswith("acked variant, ") and "V8 heap 318 MiB" in acked
