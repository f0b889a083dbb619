"""ingestlab.notebook.ceiling: a ceiling run's steps and the rates the services share."""

from __future__ import annotations

from pathlib import Path

import polars as pl
from factories import summary

from ingestlab.config import StudyConfig
from ingestlab.notebook.ceiling import (
    ceiling_numbers,
    common_passed_rates,
    comparison_rate,
    rates_table,
    steps_table,
)
from ingestlab.results import Run


def _steps(rows: list[tuple[str, int, bool, bool]]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=["service", "offered_rps", "passed", "engine_saturated"], orient="row")


def test_common_passed_rates_and_the_comparison_rate() -> None:
    steps = _steps(
        [
            ("node", 1000, True, False),
            ("node", 2000, True, False),
            ("node", 4000, False, False),
            ("rust", 1000, True, False),
            ("rust", 2000, True, False),
            ("rust", 4000, True, False),
        ]
    )
    assert common_passed_rates(steps) == [1000.0, 2000.0]
    assert comparison_rate(steps) == 2000.0
    nothing_shared = _steps(
        [("node", 1000, False, False), ("rust", 1000, True, False), ("rust", 2000, True, False)]
    )
    assert common_passed_rates(nothing_shared) == []
    assert comparison_rate(nothing_shared) == 1000.0


def test_steps_table_reads_rates_percent_and_the_verdict() -> None:
    steps = pl.DataFrame(
        {
            "service": ["rust", "node"],
            "step": [0, 0],
            "engine": ["oha", "oha"],
            "offered_rps": [1000, 1000],
            "achieved_rps": [999.6, 990.2],
            "error_rate": [0.0, 0.0125],
            "p50_ms": [1.234, 2.345],
            "p99_ms": [3.456, 4.567],
            "max_ms": [5.678, 6.789],
            "lost": [0, 0],
            "outcome": ["pass", "fail"],
            "reasons": ["", "p99 above the bound"],
        }
    )
    frame = steps_table(steps).frame
    assert frame["service"].to_list() == ["node", "rust"]
    node = frame.row(0, named=True)
    assert (node["verdict"], node["error_pct"]) == ("failed", 1.25)  # a share as %
    assert (node["achieved_rps"], node["p99_ms"]) == (990.0, 4.57)  # rounded for reading


def test_ceiling_numbers_per_service_and_the_ratios(tmp_path: Path) -> None:
    run = Run.create(StudyConfig.for_profile("quick", runs_dir=tmp_path), "ceiling")
    run.write_summary(
        summary(
            "ceiling",
            {"node": {"ceiling_rps": 2_000.0, "wrk_rps": 4_000.0},
             "rust": {"ceiling_rps": 6_000.0, "wrk_rps": 10_000.0, "ceiling_lower_bound": True,
                      "bound_by": "rig", "searches": 1, "repeated_steps": 2}},
        )
    )
    numbers = ceiling_numbers(run)
    assert numbers["rust"] == {
        "ceiling_rps": 6_000.0,
        "ceiling_engine": "asyncio",
        "lower_bound": True,
        "bound_by": "rig",
        "searches": 1,
        "repeated_steps": 2,
        "search": "held 1,000 req/s, not 1,100",
        "wrk_rps": 10_000.0,
        "wrk_p99_ms": 50.0,
    }
    assert numbers["rust_over_node"] == {"ceiling_rps": 3.0, "wrk_rps": 2.5}
    alone = Run.create(StudyConfig.for_profile("quick", runs_dir=tmp_path, services=("rust",)), "ceiling")
    alone.write_summary(summary("ceiling", {"rust": {}}))
    assert set(ceiling_numbers(alone)) == {"rust"}  # no ratio without both services


def test_only_the_deciding_attempts_set_the_common_rates() -> None:
    steps = pl.DataFrame({
        "service": ["node", "node", "node", "rust", "rust"],
        "offered_rps": [1_000.0, 2_000.0, 2_000.0, 1_000.0, 2_000.0],
        "passed": [True, False, True, True, True],
        "search": [0, 0, 0, 0, 0],
        # node's first try at 2,000 failed in a stall and was repeated: the repeat decides
        "repeated": [False, True, False, False, False],
    })
    assert common_passed_rates(steps) == [1_000.0, 2_000.0]
    searched_again = steps.with_columns(search=pl.Series([0, 1, 1, 0, 0]))
    # node's last search holds 2,000 only; its earlier search no longer counts
    assert common_passed_rates(searched_again) == [2_000.0]


def test_rates_table_says_how_each_rate_was_chosen() -> None:
    rates = summary("rates")
    table = rates_table(rates)
    assert table["experiment"].to_list() == ["soak", "ceiling of node"]
    assert table["rate_rps"].to_list() == [1_500.0, 3_000.0]
    assert "node's ceiling" in table["how"][0] and "ceiling from 1 trial" in table["how"][1]
