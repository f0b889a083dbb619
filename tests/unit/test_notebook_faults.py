"""Notebook 07's views and charts on a hand-built faults run and bad-input frames: the ledger,
the conclusions written from its numbers, the article beside them, and the charts' data."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from factories import fault_outcome, summary

from ingestlab import charts
from ingestlab.analysis.faults import WINDOW_SCHEMA, rss_timeline, timeline
from ingestlab.config import StudyConfig
from ingestlab.notebook.article import article_fact
from ingestlab.notebook.faults import (
    LEDGER_COLUMNS,
    against_article,
    bad_input_conclusions,
    bad_input_counts,
    bad_input_findings,
    bad_input_verdicts,
    conclusions,
    fault_conditions,
    ledger,
    status_table,
)
from ingestlab.results import Run
from ingestlab.units import MIB, NS_PER_S

T0 = 1_800_000_000 * NS_PER_S


@pytest.fixture
def faults_run(tmp_path: Path) -> Run:
    """Node accepts through everything and loses 7 records in the kill; Rust holds requests
    (timeouts) and delivers some of them anyway; both exit 0 on SIGTERM."""
    node = {"faults": {
        "pause": fault_outcome(accepted=5_000, timeouts=0, statuses={"202": 5_000}, delivered_after_error=0,
                               recovery_s=0.0),
        "kill": fault_outcome(accepted=5_000, timeouts=0, statuses={"202": 5_000}, delivered_after_error=0,
                              lost=7, restart_s=14.5),
        "shutdown": fault_outcome(sent=2_500, accepted=1_000, timeouts=0, no_answer=1_500,
                                  statuses={"202": 1_000, "0": 1_500}, delivered_after_error=0,
                                  recovery_s=None, exit_code=0, exit_s=0.13),
    }}
    rust = {"faults": {
        "pause": fault_outcome(accepted=4_262, timeouts=738, statuses={"202": 4_262, "0": 738},
                               delivered_after_error=738, recovery_s=0.0, rss_peak_mib=154.0),
        "kill": fault_outcome(accepted=1_004, timeouts=9_497, sent=10_501,
                              statuses={"202": 1_004, "0": 9_497}, delivered_after_error=9_497,
                              duplicated=4, recovery_s=None, restart_s=15.2),
        "shutdown": fault_outcome(sent=2_500, accepted=1_200, timeouts=0, no_answer=1_300,
                                  statuses={"202": 1_200, "0": 1_300}, delivered_after_error=0,
                                  recovery_s=None, exit_code=0, exit_s=1.5),
    }}
    run = Run.create(StudyConfig.for_profile("quick", runs_dir=tmp_path), "faults")
    run.write_summary(summary("faults", {"node": node, "rust": rust}, rate_source="500 req/s",
                              slow_link={"delay_ms": 100.0, "bandwidth_bytes_per_s": 2.5e6},
                              queue_full={"fill_rps": 5_000, "body_bytes": 1_000, "fill_timeout_s": 0.1,
                                          "probe_requests": 10, "probe_timeout_s": 8.0}))
    return run


def test_ledger_has_one_row_per_service_and_fault(faults_run: Run) -> None:
    rows = ledger(faults_run)
    assert rows.columns == list(LEDGER_COLUMNS)
    assert rows.select("service", "fault").rows() == [
        ("node", "pause"), ("node", "kill"), ("node", "shutdown"),
        ("rust", "pause"), ("rust", "kill"), ("rust", "shutdown")]
    statuses = status_table(rows, faults_run)
    assert statuses.columns == ["service", "fault", "0", "202"]
    assert statuses.filter(service="rust", fault="pause").row(0) == ("rust", "pause", 738, 4_262)
    assert statuses.filter(service="node", fault="pause")["0"][0] == 0


def test_conditions_state_the_rate_link_and_fill(faults_run: Run) -> None:
    row = fault_conditions(faults_run).row(0, named=True)
    assert row["rate_rps"] == 500.0 and row["request_timeout_s"] == 2.0
    assert row["slow_link"] == "+100 ms each way, at most 2.50 MB/s"
    assert row["queue_fill"].startswith("5,000 req/s of 1,000 B bodies, clients giving up after 0.1 s")


def test_conclusions_come_from_the_numbers(faults_run: Run) -> None:
    said = conclusions(ledger(faults_run))
    assert said[0] == "node lost 7 accepted requests: 7 in kill."
    assert "node answered 202 to every request through pause and kill." in said
    assert ("rust pushed back: pause: 738 timeouts, kill: 9,497 timeouts and shutdown: 1,300 "
            "without an answer.") in said
    assert any(s.startswith("rust: 10,235 records reached Kafka for requests whose client saw an error")
               for s in said)
    assert "rust: 4 records in Kafka are duplicates (4 in kill)." in said
    # every fault of the fixture has p99 1,500 ms during it against 20 ms before
    assert ("rust held its answers: pause p99 1,500 ms (20 ms before), kill p99 1,500 ms (20 ms before) "
            "and shutdown p99 1,500 ms (20 ms before).") in said
    kill = next(s for s in said if s.startswith("rust kill"))
    assert "not back to normal within the run" in kill and "restart took 15.2 s" in kill
    assert next(s for s in said if s.startswith("node shutdown")).count("exit code 0 after 0.13 s") == 1
    # nothing lost anywhere: said so, not left out
    clean = ledger(faults_run).with_columns(lost=pl.lit(0))
    assert conclusions(clean)[0].startswith("No service lost an accepted request")


def test_against_article_quotes_the_facts_file(faults_run: Run) -> None:
    table = against_article(ledger(faults_run))
    assert "shutdown" not in table["fault"].to_list()
    node = table.filter(service="node", fault="pause").row(0, named=True)
    assert node["article"] == article_fact("node_backpressure").text
    rust = table.filter(service="rust", fault="pause").row(0, named=True)
    assert rust["measured"] == ("the client saw 738 timeouts (4,262 of 5,000 accepted), p99 1,500 ms "
                                "(20 ms before); RSS 50 MiB before, up to +104 MiB during")


def _bad_input_run(tmp_path: Path) -> Path:
    """A finished bad-input run of 40 cases per service."""
    run = Run.create(StudyConfig.for_profile("quick", runs_dir=tmp_path), "bad-input")
    run.write_summary(summary("bad-input", {"node": {"cases": 40, "violations": 2, "crashes": 0},
                                            "rust": {"cases": 40, "violations": 1, "crashes": 0}}))
    return run.path


def test_bad_input_views(tmp_path: Path) -> None:
    run = Run.open(_bad_input_run(tmp_path))
    counts = bad_input_counts(run)
    assert counts.rows() == [("node", 40, 2, 0), ("rust", 40, 1, 0)]
    assert bad_input_conclusions(counts)[1] == (
        "rust: 40 malformed or hostile inputs, 1 answered against the contract, 0 crashes.")
    matrix = pl.DataFrame({
        "case": ["empty", "empty", "proto", "proto"], "category": ["json", "json", "keys", "keys"],
        "service": ["node", "rust", "node", "rust"], "status": [400, 400, 400, 202],
        "expected": ["400", "400", "400", "400"], "verdict": ["ok", "ok", "ok", "violation"],
        "reason": ["", "", "", "accepted"], "description": ["{}", "{}", "__proto__ key", "__proto__ key"],
    })
    verdicts = bad_input_verdicts(matrix)
    assert verdicts.rows() == [("json", "ok", 1, 1), ("keys", "ok", 1, 0), ("keys", "violation", 0, 1)]
    found = bad_input_findings(matrix)
    assert found.select("service", "case", "status").rows() == [("rust", "proto", 202)]


def test_fault_charts_embed_per_second_rows(faults_run: Run) -> None:
    requests = pl.DataFrame({
        "service": ["rust"] * 40, "fault": ["pause"] * 40, "request_id": [f"r{i}" for i in range(40)],
        "intended_start_ns": [T0 + i * NS_PER_S // 10 for i in range(40)],
        "end_ns": [T0 + i * NS_PER_S // 10 + 5_000_000 for i in range(40)],
        "status": [202] * 40, "error_class": [None] * 40,
    })
    windows = pl.DataFrame([{"service": "rust", "fault": "pause", "start_ns": T0 + NS_PER_S,
                             "end_ns": T0 + 2 * NS_PER_S, "load_start_ns": T0,
                             "load_end_ns": T0 + 4 * NS_PER_S}], schema=WINDOW_SCHEMA)
    spec = charts.fault_timeline(timeline(requests, windows), windows).to_dict()
    rows = spec["datasets"][spec["data"]["name"]]
    assert {r["kind"] for r in rows} == {"series", "window"}
    assert {r["series"] for r in rows if r["kind"] == "series"} == {"offered", *charts.OUTCOME_COLORS}
    window = next(r for r in rows if r["kind"] == "window")
    assert (window["t_s"], window["end_s"]) == (0.0, 1.0)
    assert spec["resolve"]["scale"]["y"] == "independent"
    samples = pl.DataFrame({"service": ["rust"] * 5, "t_ns": [T0 + i * NS_PER_S for i in range(5)],
                            "rss_bytes": [10 * MIB] * 5})
    rss = charts.fault_rss(rss_timeline(samples, windows), windows).to_dict()
    rss_rows = rss["datasets"][rss["data"]["name"]]
    assert [r["rss_mib"] for r in rss_rows if r["kind"] == "rss"] == [10.0] * 5
