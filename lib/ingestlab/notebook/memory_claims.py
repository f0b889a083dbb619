"""Notebook 03's closing table: the article's memory claims, point by point, each with its
own words (from data/, never written here) beside a sentence written from the measurements
(the soak, the backlog runs and the long soaks), and what was found instead where the claim
does not hold here. A size "holds" within the claims table's tolerance (x2) of the article's.
Memory in MiB."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import polars as pl

from ingestlab.analysis.claims import TOLERANCE
from ingestlab.analysis.memory_parts import PARTS
from ingestlab.config import StudyConfig
from ingestlab.notebook.article import article_claims, article_fact
from ingestlab.results import Run, find_runs
from ingestlab.variants import ARTICLE_SERVICES, variant


def article_words() -> dict[str, str]:
    """The article's words for each memory claim, from its table and facts as data
    (data/article_claims.csv, data/article_facts.csv)."""
    memory = article_claims()["memory_sustained_mb"]
    backpressure = article_fact("node_backpressure").quote
    queueing, _, oom = backpressure.partition(". ")
    table = f"{memory['metric']}: {{:,.0f}} {memory['unit']} ({{}})"
    return {
        "sustained": table.format(memory["node_value"], memory["node_note"]),
        "heap_peak": article_fact("node_heap_peak_mb").quote,
        "heap_queue": queueing + ".",
        "oom": oom,
        "flat": table.format(memory["rust_value"], memory["rust_note"]),
        "bounded": article_fact("rust_backpressure").quote,
    }


def _mib(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f} MiB"


# A trend fitted over less than this says nothing about a leak (a quick soak's 12 s gave
# "-1,642 MiB/h" here): the sentence leaves it out.
MIN_TREND_S = 600.0


def _slope(found: Any) -> str:
    """A soak's RSS trend as a phrase, or "" without one (or over less than MIN_TREND_S)."""
    ci = getattr(found, "rss_slope_ci_mib_per_h", None)
    if not ci or (found.duration_s or 0.0) < MIN_TREND_S:
        return ""
    return (f"; over {found.duration_s / 60:.0f} min its RSS moved {found.rss_slope_mib_per_h:+,.1f} MiB/h "
            f"[{ci[0]:+,.1f}, {ci[1]:+,.1f}]")


def _soak_sentence(found: Any, long: Any | None) -> str:
    parts = found.memory_parts or {}
    held = f", mostly {parts['largest_at_peak']} at its peak" if parts.get("largest_at_peak") else ""
    return (f"RSS {_mib(found.rss_mean_mib)} on average at {found.rate_rps:,.0f} req/s, "
            f"{found.memory_pattern}{held}" + _slope(long or found))


def _backlog(runs: Sequence[Run], service: str, *, limited: bool) -> list[Any]:
    """The service's backlog results, with a memory limit or without, newest first."""
    return [run.summary.services[service] for run in runs if service in run.summary.services
            and (run.summary.services[service].memory_limit_mb is not None) == limited]


def _held_in_heap(b: Any) -> str:
    """Whether a backlog result's largest part at its peak was the runtime's heap: "yes", "no",
    or "not measured" (no parts reported)."""
    if b.largest_at_peak is None:
        return "not measured"
    return "yes" if b.largest_at_peak in (PARTS["heap_total_bytes"], PARTS["external_bytes"]) else "no"


def _backlog_sentence(b: Any) -> str:
    """What a backlog result (one service, no memory limit) measured, as a sentence."""
    cap = (f"the queue reached librdkafka's {b.cap_reached} cap after {b.cap_reached_s:.0f} s"
           if b.cap_reached_s is not None else "the queue never reached librdkafka's caps")
    return (f"with Kafka taking half the offered bytes for {b.slow_s:.0f} s: RSS "
            f"{_mib(b.rss_before_mib)} -> {_mib(b.rss_peak_mib)}, mostly {b.largest_at_peak} at "
            f"its peak (queue {_mib(b.queue_peak_mib)}, V8 heap {_mib(b.heap_total_peak_mib)}); "
            f"{cap}; lost {b.lost}")


def memory_claims(soak: Run, backlog_runs: Sequence[Run] = (), long: Mapping[str, Run] | None = None
                  ) -> pl.DataFrame:
    """One row per memory claim of the article: `claim` (its words), `service`, `measured` (a
    sentence from `soak`, the backlog runs `backlog_runs` and the long soaks by service
    `long`), `holds` ("yes", "no", or "not measured"). A variant with a backlog run here gets
    a row of its own under the heap-queueing claim."""
    long = long or {}
    services = soak.summary.services
    words = article_words()
    # A size holds within the claims table's tolerance of the article's (analysis.claims).
    node_mb = article_claims()["memory_sustained_mb"]["node_value"]
    heap_mb = article_fact("node_heap_peak_mb").value
    rows: list[dict[str, str]] = []

    def add(key: str, service: str, measured: str, holds: str) -> None:
        rows.append({"claim": words[key], "service": service, "measured": measured, "holds": holds})

    node, rust = services.get("node"), services.get("rust")
    long_node = long["node"].summary.services["node"] if "node" in long else None
    long_rust = long["rust"].summary.services["rust"] if "rust" in long else None
    if node is not None:
        add("sustained", "node", _soak_sentence(node, long_node),
            "yes" if node.memory_pattern == "sawtooth" and node.rss_mean_mib >= node_mb / TOLERANCE else "no")
        parts = node.memory_parts or {}
        majors = sum(n for kind, n in (node.gc_events_by_kind or {}).items() if kind != "Scavenge")
        add("heap_peak", "node",
            f"V8's heap held {_mib(parts.get('heap_used_peak_mib') or node.heap_peak_mib)} of objects "
            "at most "
            f"({_mib(parts.get('heap_total_peak_mib'))} committed), with {majors} old-generation collections "
            f"in {node.duration_s:.0f} s",
            "yes" if (parts.get("heap_used_peak_mib") or node.heap_peak_mib or 0) >= heap_mb / TOLERANCE
            else "no")
    for service, key_first in (("node", "heap_queue"), ("rust", "bounded")):
        free = _backlog(backlog_runs, service, limited=False)
        if not free:
            add(key_first, service, "no backlog run here (`ingestlab run backlog`)", "not measured")
            continue
        b = free[0]
        if service == "node":
            holds = _held_in_heap(b)
        else:
            holds = "yes" if b.cap_reached_s is None and (b.queue_peak_mib or 0) < 100 else "no"
        add(key_first, service, _backlog_sentence(b), holds)
    # The variants (made by hand: `ingestlab run backlog --service node-acked ...`) show whether
    # the promise or the runtime puts the queued payloads in the heap.
    for name in dict.fromkeys(name for run in backlog_runs for name in run.summary.services):
        if name in ARTICLE_SERVICES or not (free := _backlog(backlog_runs, name, limited=False)):
            continue
        add("heap_queue", name, f"{variant(name).promise} variant, {_backlog_sentence(free[0])}",
            _held_in_heap(free[0]))
    limited = _backlog(backlog_runs, "node", limited=True)
    if limited:
        sentences = [f"limit {b.memory_limit_mb:,} MB: "
                     + (f"OOM-killed {b.died_s:.0f} s into the slowdown, {b.lost} accepted records lost"
                        if b.oom_killed else f"ran on, peak {_mib(b.rss_peak_mib)}")
                     for b in limited]
        add("oom", "node", "; ".join(sentences), "yes" if any(b.oom_killed for b in limited) else "no")
    else:
        add("oom", "node", "no backlog run with a memory limit here", "not measured")
    if rust is not None:
        add("flat", "rust", _soak_sentence(rust, long_rust),
            "yes" if rust.memory_pattern == "flat" else "no")
    return pl.DataFrame(rows, schema={"claim": pl.String, "service": pl.String, "measured": pl.String,
                                      "holds": pl.String})


def backlog_runs_here(config: StudyConfig, first: Run) -> list[Run]:
    """`first` (the study's backlog run), then every other backlog run measured on this machine
    (any profile or study: the memory-limit runs are made by hand), newest first."""
    here = Run.environment_of(config)
    others = [run for run in find_runs(config.runs_dir, "backlog")
              if run.run_id != first.run_id and run.environment_key() == here]
    return [first, *others]
