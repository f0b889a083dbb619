"""Notebook 06: services held above their ceiling (an `overload` run), and the hypothesis that
the article's Node sawtooth came from a soak above Node's ceiling.

Pure functions of a run and of frames, so each is testable on small ones; the notebook wraps
the frames in `display.Table` and the charts come from `charts.overload`. Sentences are
built from the numbers, never written in advance.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import polars as pl

from ingestlab.analysis.overload import memory_timeline, overload_timeline
from ingestlab.notebook.article import article_fact
from ingestlab.results import Run
from ingestlab.summaries import OverloadSummary
from ingestlab.variants import program_of

# The results' columns, in the order a reader needs them: the rate and how it relates to
# the ceiling, what the client got, memory, the ledger, whether the generator held the rate.
RESULT_COLUMNS: tuple[str, ...] = (
    "service", "offered_rps", "share_of_ceiling", "achieved_rps", "error_rate", "timeout_rate",
    "dropped_rate", "p99_ms", "rss_start_mib", "rss_mean_mib", "rss_peak_mib", "memory_pattern",
    "heap_pattern", "heap_peak_mib", "cgroup_mem_mean_mb", "cgroup_mem_peak_mb", "accepted",
    "accepted_not_delivered", "delivered_after_client_error", "duplicated", "generator_limited",
)
CONDITION_COLUMNS: tuple[str, ...] = ("service", "offered_rps", "rate_source", "duration_s",
                                      "request_timeout_s", "max_in_flight", "runtime")


# Fields of `OverloadRate` that may all be None in a run (no ceiling run, no Node, no container).
_OPTIONAL_NUMBERS = ("share_of_ceiling", "heap_mean_mib", "heap_peak_mib", "heap_period_s", "gc_pause_max_ms",
                     "gc_time_share", "cgroup_mem_mean_mb", "cgroup_mem_peak_mb", "memory_period_s", "p99_ms")


def _rows(run: Run) -> pl.DataFrame:
    """Every field of every leg (`OverloadRate`), with `service`."""
    summary: OverloadSummary = run.summary
    return pl.DataFrame(
        [{"service": service, **dataclasses.asdict(leg)}
         for service, result in summary.services.items() for leg in result.rates.values()],
        infer_schema_length=None,
    ).with_columns(pl.col(_OPTIONAL_NUMBERS).cast(pl.Float64), pl.col("heap_pattern").cast(pl.String))


def overload_conditions(run: Run) -> pl.DataFrame:
    """Per service and rate: the rate (req/s), how it was chosen, for how long (s), the
    client's timeout (s) and its most requests in flight, the runtime."""
    return _rows(run).select(CONDITION_COLUMNS)


def overload_results(run: Run) -> pl.DataFrame:
    """Per service and rate (`RESULT_COLUMNS`): offered and achieved req/s, the share of the
    ceiling, error, timeout and drop rates, p99 (ms), RSS and its pattern (MiB), Node's heap
    pattern, cgroup memory (MB) in a container, the ledger, whether the generator limited
    the rate."""
    return _rows(run).select(RESULT_COLUMNS)


def overload_frames(run: Run) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The run's per-second requests (`analysis.overload.overload_timeline`) and memory
    (`analysis.overload.memory_timeline`), for `charts.overload`."""
    legs = run.read_frame("legs")
    gc = run.read_frame("gc") if (run.path / "gc.parquet").exists() else None
    return (overload_timeline(run.read_frame("requests"), legs),
            memory_timeline(run.read_frame("samples"), legs, gc))


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f}%"


def _leg_line(r: Mapping[str, Any]) -> str:
    """One service at one rate in a sentence."""
    share = "" if r["share_of_ceiling"] is None else f" ({r['share_of_ceiling']:.1f}x its ceiling)"
    heap = "" if r["heap_pattern"] is None else (
        f"; V8 heap {r['heap_pattern']}, at most {r['heap_peak_mib']:,.0f} MiB")
    limited = (" (held back by the load generator: a bound, not the service's)"
               if r["generator_limited"] else "")
    return (f"{r['service']} at {r['offered_rps']:,.0f} req/s{share}: {r['achieved_rps'] or 0:,.0f} req/s "
            f"accepted{limited}, {_pct(r['error_rate'])} errors, {_pct(r['timeout_rate'])} timeouts, "
            f"{_pct(r['dropped_rate'])} of the slots dropped by the client; "
            f"RSS {r['rss_start_mib']:,.0f} MiB at rest, {r['rss_mean_mib']:,.0f} MiB on average, "
            f"{r['rss_peak_mib']:,.0f} MiB at most, "
            f"{r['memory_pattern']}{heap}; {r['accepted_not_delivered']:,} accepted but not in Kafka, "
            f"{r['delivered_after_client_error']:,} in Kafka though the client saw an error or gave up, "
            f"{r['duplicated']:,} duplicated.")


def overload_conclusions(results: pl.DataFrame) -> list[str]:
    """What `overload_results` says: whether anything accepted was lost, then each leg in a
    sentence."""
    lost = results.filter(pl.col("accepted_not_delivered") > 0)
    found = ["No service lost an accepted request above its ceiling: every 202 has its record in Kafka."
             if lost.is_empty() else
             "Accepted but not in Kafka: " + ", ".join(
                 f"{r['service']} at {r['offered_rps']:,.0f} req/s: {r['accepted_not_delivered']:,}"
                 for r in lost.iter_rows(named=True)) + "."]
    return found + [_leg_line(r) for r in results.iter_rows(named=True)]


def sawtooth_hypothesis(results: pl.DataFrame) -> pl.DataFrame:
    """The hypothesis that the article's Node sawtooth (data/article_facts.csv:
    `node_heap_peak_mb`) came from a soak above Node's ceiling, against each leg of a Node
    program (`variants.program_of`): the rate and its share of the ceiling, the RSS pattern
    and peak (MiB) and the V8 heap's beside it. `rss_sawtooth`: the process's memory
    rose and fell as the article's did. The heap alone is no test: scavenges of the young
    generation make a heap sawtooth of tens of milliseconds at any rate. Columns: service,
    offered_rps, share_of_ceiling, article, rss_pattern, rss_peak_mib, heap_pattern,
    heap_peak_mib, rss_sawtooth."""
    fact = article_fact("node_heap_peak_mb")
    node = [s for s in results["service"].unique() if program_of(s) == "node"]
    return results.filter(pl.col("service").is_in(node)).select(
        "service", "offered_rps", "share_of_ceiling",
        article=pl.lit(f"{fact.text} ({fact.value:,.0f} {fact.unit})"),
        rss_pattern="memory_pattern", rss_peak_mib="rss_peak_mib", heap_pattern="heap_pattern",
        heap_peak_mib="heap_peak_mib", rss_sawtooth=pl.col("memory_pattern") == "sawtooth",
    )
