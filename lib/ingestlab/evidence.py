"""Which saved runs supply each of the article's claims, as repeated trials per service.

Maps the claims in data/article_claims.csv to summary numbers of saved runs (one trial per
run, or per cold start), in the claim's unit, and says why a claim cannot be measured here.
"""

from __future__ import annotations

from ingestlab.config import StudyConfig
from ingestlab.results import Run, check_comparable, find_runs

Trials = dict[str, dict[str, list[float]]]
# The services every claim compares: only runs that measured both supply a row.
SERVICES: tuple[str, ...] = ("node", "rust")

# claim key -> (experiment, summary field of each service, factor into the claim's unit)
FROM_SUMMARIES: dict[str, tuple[str, str, float]] = {
    "memory_sustained_mb": ("soak", "rss_mean_mb", 1.0),
    "p50_latency_ms": ("soak", "p50_ms", 1.0),
    "p95_latency_ms": ("soak", "p95_ms", 1.0),
    "p99_latency_ms": ("soak", "p99_ms", 1.0),
    "throughput_limit_rps": ("ceiling", "ceiling_rps", 1.0),
}
# claim key -> summary field of each service saying its value is only a lower bound (the
# ceiling search ended on a step the load generator could not drive)
LOWER_BOUND_FIELDS: dict[str, str] = {"throughput_limit_rps": "ceiling_lower_bound"}
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


def _supplying(runs: list[Run], field: str) -> list[Run]:
    """The runs with `field` for every service of SERVICES: a partial run never fills a
    two-service row, and both services' trials come from the same runs."""
    return [run for run in runs
            if all(run.summary.get(service, {}).get(field) is not None for service in SERVICES)]


def _summary_trials(runs: list[Run], field: str, factor: float) -> dict[str, list[float]]:
    """One trial per supplying run and service."""
    return {service: [float(run.summary[service][field]) * factor for run in _supplying(runs, field)]
            for service in SERVICES}


def _bounded_counts(runs: list[Run], field: str, flag: str) -> dict[str, int]:
    """Per service, how many of the supplying runs flag their value as only a lower bound."""
    return {service: sum(bool(run.summary[service].get(flag)) for run in _supplying(runs, field))
            for service in SERVICES}


EXACT = frozenset({"image_size_mb"})  # bytes on disk: one count, no sampling error


def collect_trials(
    config: StudyConfig, *, trials: int
) -> tuple[Trials, dict[str, str], list[str], dict[str, dict[str, int]]]:
    """(trials per claim key and service, reasons/notes per key, run ids used, and per key
    and service how many trials are only lower bounds (LOWER_BOUND_FIELDS)).

    Reads `config.runs_dir`: the `trials` newest soak and ceiling runs and the newest startup
    run of `config.profile` that measured both services (SERVICES) and, when
    `config.study_id` is set, were made for that study (otherwise of any study). Raises if
    they were measured in different environments (host, CPU, core layout).
    """
    found: Trials = {}
    bounded: dict[str, dict[str, int]] = {}
    used: list[Run] = []

    def runs_of(name: str, limit: int) -> list[Run]:
        return find_runs(config.runs_dir, name, profile=config.profile, services=SERVICES,
                         study_id=config.study_id, limit=limit)

    for key, (experiment, field, factor) in FROM_SUMMARIES.items():
        runs = runs_of(experiment, trials)
        used += runs
        found[key] = _summary_trials(runs, field, factor)
        if key in LOWER_BOUND_FIELDS:
            bounded[key] = _bounded_counts(runs, field, LOWER_BOUND_FIELDS[key])
    startup_runs = runs_of("startup", 1)  # each cold start of the newest startup run is a trial
    used += startup_runs
    for run in startup_runs:
        starts = run.read_frame("cold_starts")
        for key, (column, factor) in FROM_COLD_STARTS.items():
            found[key] = {
                s: [v * factor for v in starts.filter(service=s)[column].to_list()] for s in SERVICES
            }
    found["image_size_mb"] = _summary_trials(startup_runs, "footprint_bytes", 1e-6)  # see EXACT
    unique = list({run.run_id: run for run in used}.values())
    check_comparable(unique)
    reasons = {**NOTES, **NOT_MEASURABLE}
    return found, reasons, [run.run_id for run in unique], bounded
