"""Notebook 06's views (notebook.contracts): the decomposition of a Rust/Node ratio into the
promise and the language, on small frames of trials."""

from __future__ import annotations

import math

import polars as pl
import pytest

from ingestlab import charts
from ingestlab.notebook.contracts import (
    COMPARISONS,
    contract_links,
    contract_sentences,
    decomposition,
    design_share,
    service_table,
    variants_table,
)
from ingestlab.variants import SERVICES


def _trials(values: dict[str, list[float]], metric: str = "p50_ms") -> pl.DataFrame:
    return pl.DataFrame([
        {"run_id": f"r{i}", "service": service, "metric": metric, "value": value, "rate_rps": 1000.0,
         "runtime": "container"}
        for service, per_trial in values.items() for i, value in enumerate(per_trial)
    ])


# Rust answers after Kafka's ack (~10 ms), Node before (~1 ms); matched, Rust is a little faster.
P50 = {"node": [1.0, 1.1, 0.9], "rust": [10.0, 11.0, 9.0], "node-acked": [12.0, 13.0, 11.0],
       "rust-enqueue": [0.5, 0.55, 0.45]}


def test_the_article_ratio_is_the_promise_when_the_matched_pairs_differ_little():
    decomp = decomposition(_trials(P50))
    by = {row["comparison"]: row for row in decomp.iter_rows(named=True)}
    assert set(by) == {"article's contracts", "both acked", "both enqueue"}  # no python trials
    assert by["article's contracts"]["ratio"] == pytest.approx(10.0, rel=0.01)
    assert by["both acked"]["ratio"] == pytest.approx(10 / 12, rel=0.01)
    assert by["both enqueue"]["ratio"] == pytest.approx(0.5, rel=0.01)
    for row in by.values():
        assert row["ci_low"] < row["ratio"] < row["ci_high"] and row["trials"] == 3
    # only the article's own comparison carries its claimed ratio (p50: 7 / 60)
    assert by["article's contracts"]["article_ratio"] == pytest.approx(7 / 60, rel=0.01)
    assert by["both acked"]["article_ratio"] is None
    share = {row["comparison"]: row["language_share"] for row in design_share(decomp).iter_rows(named=True)}
    assert share["both acked"] == pytest.approx(math.log(10 / 12) / math.log(10), rel=0.01)
    assert share["both acked"] < 0  # matched, the sign flips: the promise made the difference


def test_a_comparison_needs_two_trials_of_each_service():
    decomp = decomposition(_trials({"node": [1.0, 1.2], "rust": [10.0], "node-acked": [12.0, 11.0]}))
    assert decomp.is_empty()


def test_sentences_and_the_chart_come_from_the_numbers():
    decomp = decomposition(_trials(P50))
    said = contract_sentences(decomp)
    assert len(said) == 1 and said[0].startswith("HTTP p50 (ms): Rust/Node 10")
    assert "Rust higher" in said[0] and "when both acked" in said[0]
    spec = charts.contract_decomposition(decomp).to_dict()
    assert spec["title"]["text"] == "Language or design?"


def test_the_service_table_has_medians_in_the_services_order():
    table = service_table(_trials(P50))
    assert table["service"].to_list() == ["node", "rust", "node-acked", "rust-enqueue"]
    assert table.filter(service="rust")["p50_ms"].item() == 10.0
    assert table.filter(service="node-acked")["promise"].item() == "acked"
    assert variants_table()["service"].to_list() == list(SERVICES)
    assert {c.numerator for c in COMPARISONS} | {c.denominator for c in COMPARISONS} <= set(SERVICES)


def test_notebook_05_links_only_the_contract_rows_not_reproduced():
    claims = pl.DataFrame({
        "key": ["p50_latency_ms", "p99_latency_ms", "cold_start_s", "memory_sustained_mb"],
        "metric": ["p50 latency", "p99 latency", "cold start", "memory"],
        "verdict": ["not reproduced", "reproduced", "not reproduced", "direction only"],
    })
    text = contract_links(claims)
    assert "- p50 latency" in text and "p99" not in text and "cold start" not in text
    assert "(06_language_or_design.html)" in text
    assert contract_links(claims.filter(pl.col("key") == "cold_start_s")) == ""
