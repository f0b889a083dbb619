import polars as pl
import pytest

from ingestlab.analysis.claims import CLAIMS_COLUMNS, claims_table, load_claims, ratio_interval, verdict


def test_the_article_table_is_complete():
    claims = load_claims()
    assert claims.height == 10
    row = claims.filter(key="p99_latency_ms").row(0, named=True)
    assert (row["node_value"], row["rust_value"], row["unit"]) == (248, 11.8, "ms")
    assert claims.filter(key="throughput_limit_rps")["rust_value"][0] == 16_800


def test_ratio_interval_brackets_the_point_and_is_reproducible():
    node, rust = [100.0, 110.0, 90.0], [10.0, 12.0, 11.0]
    point, low, high = ratio_interval(node, rust)
    assert point == pytest.approx(11.0 / 100.0)
    assert low <= point <= high
    assert ratio_interval(node, rust) == (point, low, high)
    assert ratio_interval([5.0] * 3, [5.0] * 3) == (1.0, 1.0, 1.0)


@pytest.mark.parametrize(
    ("claim", "low", "high", "expected"),
    [
        (0.05, 0.04, 0.06, "reproduced"),
        (0.05, 0.08, 0.09, "reproduced"),  # within x2 of 0.05
        (0.05, 0.3, 0.5, "direction only"),  # lower, but far from x0.05
        (0.05, 0.9, 1.1, "not reproduced"),  # includes 1
        (2.3, 3.5, 4.5, "reproduced"),  # throughput: higher is the claim
        (2.3, 0.4, 0.6, "not reproduced"),  # the other side of 1
    ],
)
def test_verdicts(claim, low, high, expected):
    label, reason = verdict(claim, low, high)
    assert label == expected
    assert f"{low:.3g}" in reason


def test_table_marks_missing_rows_not_measurable_with_the_reason():
    claims = load_claims()
    trials = {
        "cold_start_s": {"node": [0.16, 0.17, 0.18], "rust": [0.02, 0.022, 0.021]},
        "p50_latency_ms": {"node": [1.0, 1.1], "rust": [9.0, 9.1, 9.2]},
    }
    table = claims_table(claims, trials, reasons={"image_size_mb": "no container engine"})
    assert table.columns[: len(CLAIMS_COLUMNS) + 1] == ["key", *CLAIMS_COLUMNS]
    assert table.height == claims.height
    rows = {r["key"]: r for r in table.iter_rows(named=True)}
    assert rows["cold_start_s"]["verdict"] == "direction only"  # 0.125 vs claimed 0.057: > x2
    assert rows["cold_start_s"]["trials"] == 3
    assert rows["p50_latency_ms"]["verdict"] == "not measurable here"  # two node trials only
    assert rows["image_size_mb"] == rows["image_size_mb"] | {
        "verdict": "not measurable here",
        "reason": "no container engine",
    }
    assert set(table["verdict"]) <= {"reproduced", "direction only", "not reproduced", "not measurable here"}
    assert table.filter(pl.col("verdict") != "not measurable here")["ci_low"].null_count() == 0


def test_exact_counts_need_one_value_and_have_no_interval_width():
    trials = {"image_size_mb": {"node": [674.1], "rust": [10.4]}}
    table = claims_table(load_claims(), trials, exact=frozenset({"image_size_mb"}))
    row = table.filter(key="image_size_mb").row(0, named=True)
    assert row["ci_low"] == row["ci_high"] == pytest.approx(10.4 / 674.1)
    assert row["verdict"] == "direction only"  # 0.0154 vs claimed 0.13: more than x2 smaller
