"""The memory reports' cost: the paired interval, the arms' order, and the overhead computed
from saved contracts runs (experiments.reporter_cost)."""

from __future__ import annotations

import math
import statistics
from pathlib import Path

import pytest
from factories import summary

from ingestlab.analysis.claims import paired_ratio_interval
from ingestlab.config import StudyConfig
from ingestlab.experiments.reporter_cost import GOAL_PCT, _checks, arm_order, overhead
from ingestlab.results import Run


def test_paired_interval_is_the_geometric_mean_of_the_ratios():
    before, after = [100.0, 120.0, 90.0, 110.0], [101.0, 123.0, 90.5, 112.0]
    point, low, high = paired_ratio_interval(before, after)
    ratios = [a / b for b, a in zip(before, after, strict=True)]
    assert point == pytest.approx(statistics.geometric_mean(ratios))
    assert low < point < high
    # pairing removes the spread between pairs: far narrower than the arms' own spread
    assert high / low < 1.05 < max(before) / min(before)


def test_paired_interval_of_equal_ratios_is_the_point_and_needs_two_pairs():
    assert paired_ratio_interval([10.0, 20.0], [11.0, 22.0]) == pytest.approx((1.1, 1.1, 1.1))
    with pytest.raises(ValueError, match="2 pairs"):
        paired_ratio_interval([10.0], [11.0])
    with pytest.raises(ValueError, match="as many"):
        paired_ratio_interval([10.0, 11.0], [11.0])
    with pytest.raises(ValueError, match="> 0"):
        paired_ratio_interval([10.0, 0.0], [11.0, 12.0])


def test_arms_alternate_their_order():
    assert [arm_order(pair, 1000) for pair in range(3)] == [(0, 1000), (1000, 0), (0, 1000)]


def _arm(tmp_path: Path, cpu: dict[str, float]) -> Run:
    run = Run.create(StudyConfig.for_profile("quick", runs_dir=tmp_path), "contracts")
    run.write_summary(summary("contracts", {s: {"cpu_per_request_us": v} for s, v in cpu.items()}))
    return run


def test_overhead_pairs_each_arm_by_its_reports(tmp_path: Path):
    # pair 1 off then on, pair 2 on then off; node pays 10%, rust 1%
    cpus = [{"node": 100.0, "rust": 20.0}, {"node": 110.0, "rust": 20.2},
            {"node": 132.0, "rust": 25.25}, {"node": 120.0, "rust": 25.0}]
    arms = [_arm(tmp_path, cpu) for cpu in cpus]
    # at rest node's reports take 0.5-0.7% of a core (pairs: off, on; on, off)
    idle = [{"node": 1.0, "rust": 0.5}, {"node": 1.5, "rust": 0.6}, {"node": 1.7, "rust": 0.6},
            {"node": 1.0, "rust": 0.5}]
    order = [0, 1000, 1000, 0]
    results = overhead(["node", "rust"], list(zip(order, arms, strict=True)),
                       list(zip(order, idle, strict=True)), rate_rps=1000)
    assert results["node"].idle_cpu_off_pct == [1.0, 1.0] and results["node"].idle_cpu_on_pct == [1.5, 1.7]
    # 0.6% of a core against 110 us x 1,000 req/s = 11% of a core
    assert results["node"].idle_cost_pct == pytest.approx(100 * 0.6 / 11)
    low, high = results["node"].idle_cost_ci_pct
    assert low < results["node"].idle_cost_pct < high
    assert results["rust"].idle_cost_ci_pct == pytest.approx([100 * 0.1 / 2.25] * 2)
    assert results["node"].cpu_per_request_off_us == [100.0, 120.0]
    assert results["node"].cpu_per_request_on_us == [110.0, 132.0]
    assert results["node"].overhead_pct == pytest.approx(10.0)
    assert results["rust"].overhead_pct == pytest.approx(1.0)
    assert results["rust"].overhead_ci_pct == pytest.approx([1.0, 1.0])
    warned = _checks(results)
    # warned where the whole interval lies above the goal: node's 10% under load, rust's 4.4%
    # at rest (node's 5.5% at rest rests on two pairs 0.2 apart: its interval reaches below 0)
    assert [w.split(" [")[0] for w in warned] == [
        "node: the memory reports cost 10.0% CPU per request under load",
        "rust: the memory reports cost 4.4% CPU per request from their CPU at rest"]
    assert all(f"{GOAL_PCT:g}% goal" in w for w in warned)
    assert not math.isnan(results["node"].overhead_ci_pct[0])
