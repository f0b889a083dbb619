"""`startup`: cold start, memory once ready, and deployment footprint of each service.

The broker is started once and kept up; each service is then spawned `config.startup_runs`
times (`telemetry.startup.cold_start`: spawn to first 202). Footprint (bytes a deployment
needs: binary + shared libraries, or node + node_modules + sources) stands in for the
article's container image size until images are built.
"""

from __future__ import annotations

import polars as pl

from ingestlab.analysis.latency import nearest_rank
from ingestlab.config import StudyConfig
from ingestlab.results import Run
from ingestlab.stack import Stack
from ingestlab.telemetry.startup import cold_start, footprint


def startup(config: StudyConfig) -> Run:
    """Summary per service: `cold_start_ms` (median), spread, `cold_start_runs`,
    `rss_at_ready_mb` (median), `footprint_bytes` (and without base-image libraries)."""
    run = Run.create(config, "startup")
    frames = []
    with Stack(config, services=(), log_dir=run.logs_dir) as stack:
        for service in config.services:
            frames.append(cold_start(stack, service, runs=config.startup_runs))
        run.update_meta(stack=stack.describe())
    runs = pl.concat(frames)
    run.write_frame("cold_starts", runs)
    summary: dict = {}
    for service in config.services:
        mine = runs.filter(service=service)
        stats = mine.select(
            cold_start_ms=pl.col("cold_start_ms").median(),
            cold_start_min_ms=pl.col("cold_start_ms").min(),
            cold_start_max_ms=pl.col("cold_start_ms").max(),
            cold_start_p90_ms=nearest_rank(pl.col("cold_start_ms"), 0.9),
            port_open_ms=pl.col("port_open_ms").median(),
            rss_at_ready_mb=pl.col("rss_at_ready_mb").median(),
            uss_at_ready_mb=pl.col("uss_at_ready_mb").median(),
        ).row(0, named=True)
        size = footprint(service)
        summary[service] = {
            **stats,
            "cold_start_runs": mine.height,
            "footprint_bytes": size["total_bytes"],
            "footprint_without_base_bytes": size["total_without_base_bytes"],
            "footprint_parts": size["parts"],
        }
    if {"node", "rust"} <= set(config.services):
        summary["rust_over_node"] = {
            key: summary["rust"][key] / summary["node"][key]
            for key in ("cold_start_ms", "rss_at_ready_mb", "footprint_bytes")
        }
    run.write_summary(summary)
    return run
