"""Notebooks 01 and 02: a ceiling run's steps for reading, the rates at which the services
can be compared, and the run's key numbers. Rates in req/s."""

from __future__ import annotations

from typing import Any

import polars as pl

from ingestlab.analysis.ceiling import decisive_steps, with_verdict
from ingestlab.notebook.display import Table
from ingestlab.results import Run
from ingestlab.summaries import CeilingSummary, RatesSummary


def steps_table(steps: pl.DataFrame) -> Table:
    """A ceiling run's steps for reading: rates in req/s, latencies in ms, error rate in %,
    the verdict (passed / failed / inconclusive) and why; for a run that repeated steps, each
    attempt with `repeated` and the signs of a stall that made it repeat."""
    repeats = [c for c in ("search", "repeated", "stall_signs") if c in steps.columns]
    readable = (
        with_verdict(steps)
        .select(
            "service",
            "step",
            "engine",
            "offered_rps",
            pl.col("achieved_rps").round(0),
            (100 * pl.col("error_rate")).round(3).alias("error_pct"),
            pl.col("p50_ms", "p99_ms", "max_ms").round(2),
            "lost",
            "verdict",
            "reasons",
            *repeats,
        )
        .sort("service", "step")
    )
    return Table(readable)


def common_passed_rates(steps: pl.DataFrame) -> list[float]:
    """Offered rates (req/s), ascending, at which the steps of every service in `steps` passed:
    where the services can be compared at the same load."""
    steps = decisive_steps(steps)
    services = steps["service"].n_unique()
    passed = (
        steps.filter(pl.col("passed"))
        .group_by("offered_rps")
        .agg(pl.col("service").n_unique().alias("services"))
        .filter(pl.col("services") == services)
    )
    return sorted(float(rate) for rate in passed["offered_rps"])


def comparison_rate(steps: pl.DataFrame) -> float:
    """The highest offered rate (req/s) at which every service passed its step; if there is
    none, the lowest rate offered (the steps' verdicts then say why the comparison is weak)."""
    return max(common_passed_rates(steps), default=float(steps["offered_rps"].min()))


def rates_table(rates: RatesSummary) -> pl.DataFrame:
    """The study's comparison rates (`inputs.comparison_rates`), one row per experiment: the
    rate (req/s) every trial of its rows is held at, and how it was chosen; below it, per
    service, the ceiling it rests on and the trials left out."""
    chosen = pl.DataFrame([{"experiment": name, "rate_rps": rate.rate_rps, "how": rate.source}
                           for name, rate in rates.rates.items()])
    rows = []
    for service, found in rates.ceilings.items():
        left_out = f"; left out: {'; '.join(found['left_out'])}" if found["left_out"] else ""
        rows.append({"experiment": f"ceiling of {service}", "rate_rps": found["ceiling_rps"],
                     "how": f"{found['kind']} from {len(found['runs'])} trial(s){left_out}"})
    ceilings = pl.DataFrame(rows)
    return pl.concat([chosen, ceilings])


def ceiling_numbers(run: Run) -> dict[str, Any]:
    """A ceiling run's key numbers, per service: `ceiling_rps` (highest passing step),
    `ceiling_engine`, `lower_bound` (the search ended on an inconclusive step or at its cap,
    so the true limit may be higher), `search` (how it ended), `wrk_rps` and `wrk_p99_ms`
    (closed-loop cross-check); and `rust_over_node` (`CeilingSummary.rust_over_node`: ratios
    of `ceiling_rps` and `wrk_rps`) when both services ran."""
    summary: CeilingSummary = run.summary
    numbers: dict[str, Any] = {
        service: {
            "ceiling_rps": found.ceiling_rps,
            "ceiling_engine": found.engine,
            "lower_bound": found.ceiling_lower_bound,
            "bound_by": found.bound_by,
            "searches": found.searches,
            "repeated_steps": found.repeated_steps,
            "search": found.search,
            "wrk_rps": found.wrk_rps,
            "wrk_p99_ms": found.wrk_p99_ms,
        }
        for service, found in summary.services.items()
    }
    if ratios := summary.rust_over_node():
        numbers["rust_over_node"] = ratios
    return numbers
