"""Which saved runs supply each of the article's claims, as repeated trials per service.

Maps the claims in data/article_claims.csv to summary numbers of saved runs (one trial per
run, or per cold start), in the claim's unit, and says why a claim cannot be measured here.
"""

from __future__ import annotations

from pathlib import Path

from ingestlab.results import Run, check_comparable, latest_runs

Trials = dict[str, dict[str, list[float]]]

# claim key -> (experiment, summary field of each service, factor into the claim's unit)
FROM_SUMMARIES: dict[str, tuple[str, str, float]] = {
    "memory_sustained_mb": ("soak", "rss_mean_mb", 1.0),
    "p50_latency_ms": ("soak", "p50_ms", 1.0),
    "p95_latency_ms": ("soak", "p95_ms", 1.0),
    "p99_latency_ms": ("soak", "p99_ms", 1.0),
    "throughput_limit_rps": ("ceiling", "ceiling_rps", 1.0),
}
# claim key -> (column of cold_starts.parquet, factor into the claim's unit)
FROM_COLD_STARTS: dict[str, tuple[str, float]] = {
    "memory_startup_mb": ("rss_at_ready_mb", 1.0),
    "cold_start_s": ("cold_start_ms", 1e-3),
}
NOT_MEASURABLE = {
    "cpu_busiest_core_pct": "the study layout pins each service to one core (CoreLayout.service=(1,)); the "
    "article's 2-core split needs a layout giving the service both cores",
    "cpu_other_core_pct": "as the busiest-core row: one core per service in this layout",
}
NOTES = {
    "image_size_mb": "deployment footprint stands in for the image size (no container engine in the study); "
    "Node's counts node_modules as npm ci leaves it, build tree included",
    "memory_sustained_mb": "RSS mean over the soak, at the soak's rate (below the article's 10,000 req/s)",
    "p50_latency_ms": "at the soak rate; Rust answers after Kafka acknowledged (>= linger 10 ms), "
    "Node before",
    "p95_latency_ms": "at the soak rate (one rate for both services)",
    "p99_latency_ms": "at the soak rate (one rate for both services)",
}


def _summary_trials(runs: list[Run], field: str, factor: float) -> dict[str, list[float]]:
    trials: dict[str, list[float]] = {}
    for run in runs:
        for service in ("node", "rust"):
            value = run.summary.get(service, {}).get(field)
            if value is not None:
                trials.setdefault(service, []).append(float(value) * factor)
    return trials


EXACT = frozenset({"image_size_mb"})  # bytes on disk: one count, no sampling error


def collect_trials(
    runs_dir: Path, *, trials: int, profile: str | None = None
) -> tuple[Trials, dict[str, str], list[str]]:
    """(trials per claim key and service, reasons/notes per key, run ids used).

    Uses the `trials` newest runs of each experiment (soak, ceiling, startup) of `profile`;
    raises if they were measured in different environments (host, CPU, core layout).
    """
    found: Trials = {}
    used: list[Run] = []

    def runs_of(name: str) -> list[Run]:
        return latest_runs(runs_dir, name, trials, profile=profile)

    for key, (experiment, field, factor) in FROM_SUMMARIES.items():
        runs = runs_of(experiment)
        used += runs
        found[key] = _summary_trials(runs, field, factor)
    startup_runs = runs_of("startup")
    used += startup_runs
    for run in startup_runs[:1]:  # each cold start of the newest startup run is a trial
        starts = run.read_frame("cold_starts")
        for key, (column, factor) in FROM_COLD_STARTS.items():
            found[key] = {
                s: [v * factor for v in starts.filter(service=s)[column].to_list()] for s in ("node", "rust")
            }
    found["image_size_mb"] = _summary_trials(startup_runs[:1], "footprint_bytes", 1e-6)  # see EXACT
    unique = list({run.run_id: run for run in used}.values())
    check_comparable(unique)
    reasons = {**NOTES, **NOT_MEASURABLE}
    return found, reasons, [run.run_id for run in unique]
