"""The CPU-per-core views of a `cpu-cores` run (notebook 06): the conditions it ran in, and per
service its busiest and other core beside the article's, with what else used each core.

Pure functions of the run's frames (`cores`, `core_groups`) and summary; percentages are % of
one core over the measured window (`analysis.cpu_cores`). The service's threads by group per
core role come from `analysis.cpu_cores.group_means(core_groups, cores)`, the chart from
`charts.cpu_cores_bars(cores, core_groups)`.
"""

from __future__ import annotations

import polars as pl

from ingestlab.analysis.claims import load_claims
from ingestlab.analysis.cpu_cores import article_core_pct, role_means
from ingestlab.summaries import CpuCoresSummary

TABLE_COLUMNS = ("service", "role", "cores", "trials", "service_pct", "service_min_pct", "service_max_pct",
                 "article_pct", "others_pct", "broker_pct", "load_pct", "rest_pct", "busy_pct", "steal_pct")


def cpu_cores_table(cores: pl.DataFrame, *, claims: pl.DataFrame | None = None) -> pl.DataFrame:
    """Per service and core role ("busiest", "other": ranked in each trial by the service's
    share) the columns of `TABLE_COLUMNS`: the core numbers that had the role, the trials, the
    service's share of that core (mean, lowest, highest over the trials), the article's value
    (data/article_claims.csv, or `claims`; null for a service the article does not name), and
    the contention, means over the trials: what the broker, the load engine and the rest took
    of the core (`others_pct` their sum), its busy time in all (/proc/stat) and the
    hypervisor's steal.

    `cores`: the run's `cores` frame (`analysis.cpu_cores.core_table` rows with `service`,
    `trial`, `role`)."""
    article = article_core_pct(claims if claims is not None else load_claims())
    return (
        role_means(cores)
        .join(article, on=["service", "role"], how="left")
        .with_columns(others_pct=pl.col("broker_pct") + pl.col("load_pct") + pl.col("rest_pct"))
        .select(TABLE_COLUMNS)
    )


def cpu_cores_conditions(summary: CpuCoresSummary) -> pl.DataFrame:
    """Per service what the run held: the core layout (by name and cores), the rate (req/s)
    and how it was chosen, trials and measured seconds each, what was achieved (req/s mean,
    p99 ms and error rate at worst), the records lost, the generator and whether it saturated,
    and the service's CPU in all (% of one core, mean over trials)."""
    cores = summary.layout_cores
    rows = [
        {
            "service": service,
            "layout": summary.layout,
            "service_cores": ", ".join(map(str, cores.get("service", []))),
            "broker_cores": ", ".join(map(str, cores.get("broker", []))),
            "load_cores": ", ".join(map(str, cores.get("load", []))),
            "rate_rps": found.rate_rps,
            "rate_source": summary.rate_source,
            "trials": found.trials,
            "duration_s": found.duration_s,
            "achieved_rps": found.achieved_rps,
            "p99_ms": found.p99_ms,
            "error_rate": found.error_rate,
            "lost": found.lost,
            "engine": found.engine,
            "engine_saturated": found.engine_saturated,
            "service_total_pct": found.service_total_pct,
        }
        for service, found in summary.services.items()
    ]
    return pl.DataFrame(rows, infer_schema_length=None)
