"""Notebook 06: language or design? The `contracts` runs (every service at one rate) turned
into ratios under the article's contracts and under matched ones, with 95% intervals.

The article's Node answers 202 once a record is queued, its Rust once Kafka acknowledged it.
A ratio rust/node under those contracts mixes the language with that design choice; the
same ratio between services that keep the same promise (`variants.MATCHED_PAIRS`: both
acked, both enqueue) leaves the language and its runtime. Each `contracts` run is one trial
of each service; the interval is `analysis.claims.ratio_interval` over the trials (a Welch
t-interval on log values), as in notebook 05.

Pure functions of runs and frames; sentences are built from the numbers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import polars as pl

from ingestlab.analysis.claims import ratio_interval
from ingestlab.notebook.article import article_claims
from ingestlab.results import Run
from ingestlab.variants import MATCHED_PAIRS, SERVICES, VARIANTS, variant

# What each service's summary gives per trial, in reading order: (field, label with unit).
METRICS: dict[str, str] = {
    "p50_ms": "HTTP p50 (ms)",
    "p99_ms": "HTTP p99 (ms)",
    "e2e_p50_ms": "end-to-end p50 (ms)",
    "e2e_p99_ms": "end-to-end p99 (ms)",
    "rss_mean_mib": "RSS mean (MiB)",
    "cgroup_mem_mean_mb": "cgroup memory mean (MB)",
    "cpu_per_request_us": "CPU per request (us)",
}
# The article's row for a metric, where it has one (data/article_claims.csv keys).
CLAIM_OF_METRIC: dict[str, str] = {"p50_ms": "p50_latency_ms", "p99_ms": "p99_latency_ms",
                                   "rss_mean_mib": "memory_sustained_mb",
                                   "cgroup_mem_mean_mb": "memory_sustained_mb"}


@dataclass(frozen=True)
class Comparison:
    """numerator / denominator, and what the pair holds equal."""

    name: str
    numerator: str
    denominator: str
    holds_equal: str


COMPARISONS: tuple[Comparison, ...] = (
    Comparison("article's contracts", "rust", "node", "nothing: Rust acked vs Node enqueue"),
    Comparison("both acked", MATCHED_PAIRS["acked"][1], MATCHED_PAIRS["acked"][0],
               "the promise (202 after Kafka's ack)"),
    Comparison("both enqueue", MATCHED_PAIRS["enqueue"][1], MATCHED_PAIRS["enqueue"][0],
               "the promise (202 once queued)"),
    Comparison("Python / Rust, both acked", "python", "rust",
               "the promise; Python runs a process per core"),
    Comparison("Python / Node, both enqueue", "python-enqueue", "node",
               "the promise; Python runs a process per core"),
    Comparison("node-cluster / node", "node-cluster", "node", "the program; cluster adds a process per core"),
)


def trial_values(runs: Sequence[Run]) -> pl.DataFrame:
    """One row per run, service and metric with a value: run_id, service, metric, value
    (in the metric's unit, `METRICS`), rate_rps, runtime."""
    rows = []
    for run in runs:
        summary = run.summary
        for service, result in summary.services.items():
            for metric in METRICS:
                value = getattr(result, metric, None)
                if value is not None and math.isfinite(value) and value > 0:
                    rows.append({"run_id": run.run_id, "service": service, "metric": metric,
                                 "value": float(value), "rate_rps": summary.rate_rps,
                                 "runtime": result.runtime})
    schema = {"run_id": pl.String, "service": pl.String, "metric": pl.String, "value": pl.Float64,
              "rate_rps": pl.Float64, "runtime": pl.String}
    return pl.DataFrame(rows, schema=schema)


def service_table(trials: pl.DataFrame) -> pl.DataFrame:
    """Per service (in `variants.SERVICES` order): its program, promise and processes, the
    trials, and each metric's median over the trials (one column per metric)."""
    if trials.is_empty():
        return pl.DataFrame()
    medians = (trials.group_by("service", "metric").agg(pl.col("value").median())
               .pivot("metric", index="service", values="value"))
    counts = trials.group_by("service").agg(pl.col("run_id").n_unique().alias("trials"))
    described = pl.DataFrame([{"service": s, "program": variant(s).program, "promise": variant(s).promise,
                               "processes": variant(s).processes} for s in medians["service"]])
    order = {s: i for i, s in enumerate(SERVICES)}
    columns = [m for m in METRICS if m in medians.columns]
    return (described.join(counts, on="service").join(medians, on="service")
            .select("service", "program", "promise", "processes", "trials", *columns)
            .sort(pl.col("service").replace_strict(order, return_dtype=pl.Int64)))


def decomposition(trials: pl.DataFrame, *, level: float = 0.95) -> pl.DataFrame:
    """Per metric and comparison (`COMPARISONS`) whose two services both have at least two
    trials: the ratio of geometric means numerator/denominator with its `level` interval,
    the trials, and the article's claimed ratio for that metric (null where it has none or
    for a comparison other than its own contracts)."""
    claims = article_claims()
    rows = []
    for metric in METRICS:
        values = {s: trials.filter(service=s, metric=metric)["value"].to_list()
                  for s in trials.filter(metric=metric)["service"].unique()}
        for c in COMPARISONS:
            top, bottom = values.get(c.numerator, []), values.get(c.denominator, [])
            if len(top) < 2 or len(bottom) < 2:
                continue
            ratio, low, high = ratio_interval(bottom, top, level=level)
            claim = claims.get(CLAIM_OF_METRIC.get(metric, ""))
            rows.append({
                "metric": metric, "label": METRICS[metric], "comparison": c.name,
                "numerator": c.numerator, "denominator": c.denominator, "ratio": ratio,
                "ci_low": low, "ci_high": high, "trials": min(len(top), len(bottom)),
                "article_ratio": (float(claim["rust_value"]) / float(claim["node_value"])
                                  if claim and c.name == COMPARISONS[0].name else None),
            })
    schema = {"metric": pl.String, "label": pl.String, "comparison": pl.String, "numerator": pl.String,
              "denominator": pl.String, "ratio": pl.Float64, "ci_low": pl.Float64, "ci_high": pl.Float64,
              "trials": pl.Int64, "article_ratio": pl.Float64}
    return pl.DataFrame(rows, schema=schema)


def _ratio(row: dict) -> str:
    return f"{row['ratio']:.3g} [{row['ci_low']:.3g}, {row['ci_high']:.3g}]"


def _side(low: float, high: float) -> str:
    if high < 1:
        return "lower"
    if low > 1:
        return "higher"
    return "no different (its interval holds 1)"


def design_share(decomp: pl.DataFrame) -> pl.DataFrame:
    """Per metric with the article's contracts and a matched pair: how much of the article's
    log ratio remains when the promise is matched (`language_share` = log matched / log
    article, 1: all of it is the language, 0: none of it). Rows for both matched pairs."""
    article = (decomp.filter(comparison=COMPARISONS[0].name)
               .select("metric", article_log=pl.col("ratio").log()))
    matched = decomp.filter(pl.col("comparison").is_in([c.name for c in COMPARISONS[1:3]]))
    return (matched.join(article, on="metric")
            .with_columns(language_share=pl.col("ratio").log() / pl.col("article_log"))
            .select("metric", "label", "comparison", "ratio", "language_share"))


def contract_sentences(decomp: pl.DataFrame) -> list[str]:
    """One plain sentence per metric: the article-contract ratio and what is left of it when
    both services keep the same promise."""
    sentences = []
    for metric, label in METRICS.items():
        rows = {r["comparison"]: r for r in decomp.filter(metric=metric).iter_rows(named=True)}
        article = rows.get(COMPARISONS[0].name)
        if article is None:
            continue
        parts = [f"{label}: Rust/Node {_ratio(article)} under the article's contracts "
                 f"(Rust {_side(article['ci_low'], article['ci_high'])})"]
        for c in COMPARISONS[1:3]:
            r = rows.get(c.name)
            if r is not None:
                parts.append(f"{_ratio(r)} when {c.name} ({r['numerator']} / {r['denominator']}: "
                             f"Rust {_side(r['ci_low'], r['ci_high'])})")
        sentences.append("; ".join(parts) + ".")
    return sentences


def variants_table() -> pl.DataFrame:
    """Every service name (`variants.VARIANTS`): program, promise, processes, and what it
    changes against the article's program in its language."""
    return pl.DataFrame([{"service": v.name, "program": v.program, "promise": v.promise,
                          "processes": v.processes, "differs": v.differs} for v in VARIANTS.values()])


def variants_overview(services: Sequence[str], medians: pl.DataFrame, ceilings: Mapping[str, Run],
                      startups: Mapping[str, Run]) -> pl.DataFrame:
    """One row per service: its ceiling (req/s; `ceiling_is_lower_bound`: the rig could not
    drive it further), the medians at the common rate (`service_table`: HTTP p50/p99, e2e
    p99 in ms, RSS in MiB, CPU per request in us), its median cold start (ms) and memory once
    ready (MiB). Null where no run measured it."""
    at_rate = {row["service"]: row for row in medians.iter_rows(named=True)} if medians.height else {}
    rows = []
    for service in services:
        ceiling = ceilings[service].summary.services[service] if service in ceilings else None
        start = startups[service].summary.services[service] if service in startups else None
        measured = at_rate.get(service, {})
        rows.append({
            "service": service,
            "ceiling_rps": ceiling.ceiling_rps if ceiling else None,
            "ceiling_is_lower_bound": ceiling.ceiling_lower_bound if ceiling else None,
            **{metric: measured.get(metric) for metric in ("p50_ms", "p99_ms", "e2e_p99_ms", "rss_mean_mib",
                                                           "cpu_per_request_us")},
            "cold_start_ms": start.cold_start_ms if start else None,
            "rss_at_ready_mib": start.rss_at_ready_mib if start else None,
        })
    return pl.DataFrame(rows, infer_schema_length=None).with_columns(
        pl.exclude("service", "ceiling_is_lower_bound").cast(pl.Float64))


# The article's rows its two programs' promises enter (Rust holds each request until Kafka
# acknowledged it, Node answers once it is queued): latency, and so the throughput and the
# memory of held requests.
CONTRACT_ROWS: tuple[str, ...] = ("p50_latency_ms", "p95_latency_ms", "p99_latency_ms",
                                  "throughput_limit_rps", "memory_sustained_mb")
NOTEBOOK_06 = "06_language_or_design"


def contract_links(claims: pl.DataFrame, *, link: str = f"{NOTEBOOK_06}.html") -> str:
    """Markdown for notebook 05: the rows of `claims` (its table: key, metric, verdict) in
    `CONTRACT_ROWS` that were not reproduced, each linked to notebook 06 (`link`, its
    rendered report), which measures them under matched promises; "" when there are none."""
    rows = claims.filter(pl.col("key").is_in(CONTRACT_ROWS) & (pl.col("verdict") == "not reproduced"))
    if rows.is_empty():
        return ""
    listed = "\n".join(f"- {row['metric']}" for row in rows.iter_rows(named=True))
    return (f"Not reproduced, and measured by different promises (Node answers 202 once the record is "
            f"queued, Rust once Kafka acknowledged it):\n\n{listed}\n\n[Notebook 06, language or "
            f"design]({link}) holds these with the promise matched (`node-acked` against `rust`, "
            f"`node` against `rust-enqueue`) and says how much of each ratio is the promise.")
