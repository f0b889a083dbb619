"""The overload experiment's pure parts on hand-built runs and frames: the rates it holds
(from the newest ceiling run here), notebook 06's tables and sentences, and the charts' data."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from factories import overload_rate, summary

from ingestlab.charts.overload import overload_memory, overload_requests
from ingestlab.charts.style import MAX_CHART_ROWS
from ingestlab.config import OverloadConfig, StudyConfig
from ingestlab.experiments.overload import Ceiling, latest_ceilings, overload_rates
from ingestlab.notebook.overload import (
    CONDITION_COLUMNS,
    RESULT_COLUMNS,
    overload_conclusions,
    overload_conditions,
    overload_results,
    sawtooth_hypothesis,
)
from ingestlab.results import Run


def saved(config: StudyConfig, experiment: str, services: dict[str, dict], **fields) -> Run:
    run = Run.create(config, experiment)
    run.write_summary(summary(experiment, services, **fields))
    return run


# --- the rates ----------------------------------------------------------------------------------
def test_rates_are_the_ceiling_times_each_factor_and_the_absolute_ones() -> None:
    config = StudyConfig.for_profile("full", overload={"ceiling_factors": (1.5, 2.0),
                                                       "absolute_rps": (10_000,)})
    rates = overload_rates(config, Ceiling(2_350.0, False, "2,350 req/s, ceiling run r1"))
    assert list(rates) == [3_500.0, 4_700.0, 10_000.0]  # 1.5 x 2,350 = 3,525, rounded; sorted
    assert "1.5 x the ceiling 2,350 req/s, ceiling run r1" in rates[3_500.0]
    assert "overload.absolute_rps" in rates[10_000.0]


def test_a_rate_asked_for_twice_is_held_once() -> None:
    config = StudyConfig.for_profile("full", overload={"ceiling_factors": (2.0,), "absolute_rps": (10_000,)})
    rates = overload_rates(config, Ceiling(5_000.0, False, "run r1"))
    assert list(rates) == [10_000.0]
    assert "2 x the ceiling" in rates[10_000.0] and "absolute" in rates[10_000.0]


def test_a_factor_without_a_ceiling_or_a_leg_too_large_is_refused() -> None:
    config = StudyConfig.for_profile("full")
    with pytest.raises(ValueError, match="needs a ceiling"):
        overload_rates(config, Ceiling(None, False, "no ceiling run here"))
    huge = config.replace(overload={"ceiling_factors": (), "absolute_rps": (100_000,), "duration_s": 600.0})
    with pytest.raises(ValueError, match="max_requests"):
        overload_rates(huge, Ceiling(None, False, "none"))


def test_the_config_refuses_rates_that_are_no_overload() -> None:
    with pytest.raises(ValueError, match="above the ceiling"):
        OverloadConfig(ceiling_factors=(0.5,))
    with pytest.raises(ValueError, match="at least one rate"):
        OverloadConfig(ceiling_factors=(), absolute_rps=())
    quick = StudyConfig.for_profile("quick").overload
    assert quick.ceiling_factors == () and quick.duration_s <= 10


def test_the_newest_ceiling_run_that_measured_the_service_is_used(tmp_path: Path) -> None:
    config = StudyConfig.for_profile("quick", runs_dir=tmp_path, services=("node", "rust"))
    assert latest_ceilings(config) == {"node": None, "rust": None}
    saved(config, "ceiling", {"node": {"ceiling_rps": 2_000.0}, "rust": {"ceiling_rps": 8_000.0}})
    node_only = config.replace(services=("node",))
    newer = saved(node_only, "ceiling", {"node": {"ceiling_rps": 3_000.0, "ceiling_lower_bound": True}})
    saved(node_only, "ceiling", {"node": {"ceiling_rps": None}})  # newest, but it held no rate
    found = latest_ceilings(config)
    assert found["node"] == Ceiling(3_000.0, True, f"3,000 req/s (a lower bound), ceiling run {newer.run_id}")
    assert found["rust"] is not None and found["rust"].rps == 8_000.0


# --- notebook 06's tables -----------------------------------------------------------------------
@pytest.fixture
def overload_run(tmp_path: Path) -> Run:
    """Node above its ceiling in a sawtooth, with records its client never saw accepted;
    Rust at a rate it holds, flat, nothing lost."""
    config = StudyConfig.for_profile("quick", runs_dir=tmp_path)
    node = {"rates": {"6000": overload_rate(offered_rps=6_000.0, share_of_ceiling=1.5, memory_pattern="flat"),
                      "10000": overload_rate(delivered_after_client_error=3_652, accepted_not_delivered=5)}}
    rust = {"ceiling_rps": 12_000.0,
            "rates": {"10000": overload_rate(share_of_ceiling=0.8, memory_pattern="flat", heap_pattern=None,
                                             heap_peak_mib=None, timeout_rate=0.0, dropped_rate=0.0,
                                             achieved_rps=10_000.0, delivered_after_client_error=0,
                                             generator_limited=True, generator_notes=["CPU"])}}
    return saved(config, "overload", {"node": node, "rust": rust}, absolute_rps=[10_000.0])


def test_results_hold_one_row_per_service_and_rate(overload_run: Run) -> None:
    results = overload_results(overload_run)
    assert results.columns == list(RESULT_COLUMNS)
    assert results.select("service", "offered_rps").rows() == [("node", 6_000.0), ("node", 10_000.0),
                                                               ("rust", 10_000.0)]
    assert results["heap_pattern"].to_list() == ["sawtooth", "sawtooth", None]
    assert results["cgroup_mem_mean_mb"].dtype == pl.Float64  # all None: still a number column
    assert overload_conditions(overload_run).columns == list(CONDITION_COLUMNS)


def test_conclusions_say_what_was_lost_and_each_leg(overload_run: Run) -> None:
    found = overload_conclusions(overload_results(overload_run))
    assert found[0] == "Accepted but not in Kafka: node at 10,000 req/s: 5."
    node = found[2]
    assert node.startswith("node at 10,000 req/s (2.5x its ceiling): 4,000 req/s accepted,")
    assert "3,652 in Kafka though the client saw an error or gave up" in node and "sawtooth" in node
    assert "held back by the load generator" in found[3]


def test_the_hypothesis_is_tested_on_nodes_rss_only(overload_run: Run) -> None:
    table = sawtooth_hypothesis(overload_results(overload_run))
    assert table["service"].to_list() == ["node", "node"]
    assert table["rss_sawtooth"].to_list() == [False, True]  # flat at 1.5x, a sawtooth at 2.5x
    assert table["article"][0].startswith("sawtooth")


# --- the charts' data ---------------------------------------------------------------------------
def test_charts_facet_by_rate_and_service_within_the_row_limit() -> None:
    timeline = pl.DataFrame({"service": ["node", "rust"], "offered_rps": [10_000.0] * 2, "t_s": [0.0, 0.0],
                             "offered": [10_000] * 2, "accepted": [4_000, 10_000], "errors_4xx": [0, 0],
                             "errors_5xx": [10, 0], "timeouts": [100, 0], "no_answer": [5, 0],
                             "dropped": [5_000, 0], "errors": [5_115, 0], "p99_ms": [1_500.0, 20.0]})
    spec = overload_requests(timeline).to_dict()
    values = next(iter(spec["datasets"].values()))
    assert {v["series"] for v in values} == {"offered", "accepted", "errors", "timeouts", "dropped"}
    assert {v["requests"] for v in values if v["series"] == "errors" and v["service"] == "node"} == {15}
    assert spec["facet"]["row"]["field"] == "rate" and values[0]["rate"] == "10,000 req/s"
    n = 3 * MAX_CHART_ROWS
    memory = pl.DataFrame({"service": ["node"] * n, "offered_rps": [10_000.0] * n, "series": ["RSS"] * n,
                           "t_s": [i / 10 for i in range(n)], "mib": [100.0] * n})
    spec = overload_memory(memory).to_dict()
    assert len(next(iter(spec["datasets"].values()))) <= MAX_CHART_ROWS

