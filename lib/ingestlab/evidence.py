"""Which saved runs supply each of the article's claims, as repeated trials per service.

Maps the claims in data/article_claims.csv to summary numbers of saved runs (one trial per
run, or per cold start, or per trial inside a cpu-cores run), in the claim's unit, and says
why a claim cannot be measured here.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any

import polars as pl

from ingestlab.config import StudyConfig
from ingestlab.results import Run, RunFormatError, check_comparable, find_runs
from ingestlab.units import MB, MS_PER_S
from ingestlab.variants import ARTICLE_SERVICES

Trials = dict[str, dict[str, list[float]]]
# The services every claim compares (the article's two): only runs that measured both supply a row.
SERVICES: tuple[str, ...] = ARTICLE_SERVICES

# A service's value in the claim's unit, read off its typed summary (None: not measured).
# The article's memory "MB" is compared with MiB (it does not say which it means).
Reader = Callable[[Any], float | None]

# claim key -> (experiment, the value of one service's summary)
FROM_SUMMARIES: dict[str, tuple[str, Reader]] = {
    # SoakResult: the container's memory as its cgroup charges it where the study ran
    # containers (MB), else the process's RSS (MiB)
    "memory_sustained_mb": ("soak", lambda s: s.cgroup_mem_mean_mb if s.cgroup_mem_mean_mb is not None
                            else s.rss_mean_mib),
    "p50_latency_ms": ("soak", lambda s: s.p50_ms),
    "p95_latency_ms": ("soak", lambda s: s.p95_ms),
    "p99_latency_ms": ("soak", lambda s: s.p99_ms),
    "throughput_limit_rps": ("ceiling", lambda s: s.ceiling_rps),  # CeilingResult
    # StartupResult: the image's size as the engine reports it, else the deployment footprint
    "image_size_mb": ("startup", lambda s: (s.image_bytes if s.image_bytes is not None
                                            else s.footprint_bytes) / MB),  # see EXACT
}
# claim key -> whether a service's value is only a lower bound (the ceiling search ended on
# a step the load generator could not drive)
LOWER_BOUNDS: dict[str, Callable[[Any], bool]] = {
    "throughput_limit_rps": lambda s: s.ceiling_lower_bound,
}
# claim key -> (columns of cold_starts.parquet, the first with values wins; factor into the
# claim's unit). Startup memory: the container's cgroup memory (MB) where the study ran
# containers, else the process's RSS (MiB).
FROM_COLD_STARTS: dict[str, tuple[tuple[str, ...], float]] = {
    "memory_startup_mb": (("cgroup_mem_at_ready_mb", "rss_at_ready_mib"), 1.0),
    "cold_start_s": (("cold_start_ms",), 1 / MS_PER_S),
}

# claim key -> (experiment, the values of one service's summary, one per trial): experiments
# whose one run holds several trials (the study's runs are pooled, as startup's)
FROM_TRIAL_LISTS: dict[str, tuple[str, Callable[[Any], list[float]]]] = {
    "cpu_busiest_core_pct": ("cpu-cores", lambda s: s.busiest_core_pct_per_trial),  # CpuCoresResult
    "cpu_other_core_pct": ("cpu-cores", lambda s: s.other_core_pct_per_trial),
}
# Experiments whose runs each hold several trials (cold starts, cpu-cores trials): of a study
# every usable run is evidence, their trials pooled (the sequential rule adds runs); without a
# study id only the newest run is, as runs of different studies never mix.
ONE_RUN = frozenset({"startup", "cpu-cores"})
# Experiments run in a core layout of their own on purpose (the CPU rows need the service on
# both cores): compared with each other, and with the rest by machine only; their notes say so.
OWN_LAYOUT = frozenset({"cpu-cores"})

NOT_MEASURABLE = {
    "cpu_busiest_core_pct": "no cpu-cores run: the study's layout pins each service to one core "
    "(CoreLayout.service=(1,)); `ingestlab run cpu-cores` measures the row in a layout giving the service "
    "both cores",
    "cpu_other_core_pct": "as the busiest-core row: no cpu-cores run",
}
NOTES = {
    "image_size_mb": "with the container runtime: the image's size as the engine reports it (the study's "
    "flavour, see startup's `image_flavour`); with native processes the deployment footprint stands in "
    "(node_modules as npm ci leaves it, build tree included)",
    "memory_startup_mb": "once ready (1 s after the first 202): the container's cgroup memory with the "
    "container runtime, the process's RSS with native processes",
    "memory_sustained_mb": "mean over the soak at the soak's rate (below the article's 10,000 req/s): the "
    "container's cgroup memory with the container runtime, the process's RSS with native processes",
    "p50_latency_ms": "at the soak rate; Rust answers after Kafka acknowledged (>= linger 10 ms), "
    "Node before",
    "p95_latency_ms": "at the soak rate (one rate for both services)",
    "p99_latency_ms": "at the soak rate (one rate for both services)",
}


def left_out_because(run: Run) -> str | None:
    """Why a run of the study may not feed any row (None: it may): a soak whose load generator
    saturated for a service (it measured the rig, not the service), a ceiling run in which a
    service's trial ended on a stall of the machine (no ceiling, only the hiccup)."""
    experiment = run.meta["experiment"]
    found = []
    for service in SERVICES:
        result = run.summary.services.get(service) if hasattr(run.summary, "services") else None
        if result is None:
            continue
        if experiment == "soak" and result.engine_saturated:
            found.append(f"{service}'s load generator saturated ({'; '.join(result.engine_notes)})")
        if experiment == "ceiling" and result.stalled:
            found.append(f"{service}'s search ended on a stall of the machine ({result.search})")
    return f"run {run.run_id} left out: " + "; ".join(found) if found else None


def usable_runs(runs: list[Run]) -> tuple[list[Run], list[str]]:
    """(the runs that may feed a row, why each other one may not: `left_out_because`)."""
    usable, reasons = [], []
    for run in runs:
        why = left_out_because(run)
        if why is None:
            usable.append(run)
        else:
            reasons.append(why)
    return usable, reasons


def _supplying(runs: list[Run], value: Reader) -> list[Run]:
    """The runs with a value for every service of SERVICES: a partial run never fills a
    two-service row, and both services' trials come from the same runs."""
    return [run for run in runs
            if all(service in run.summary.services and value(run.summary.services[service]) is not None
                   for service in SERVICES)]


def _first_measured(starts: pl.DataFrame, columns: tuple[str, ...], factor: float) -> list[float]:
    """The values of the first of `columns` that `starts` has with no null (older runs lack
    the newer columns), times `factor`; [] if none."""
    for column in columns:
        if column in starts.columns and starts.height and starts[column].null_count() == 0:
            return [v * factor for v in starts[column].to_list()]
    return []


def _summary_trials(runs: list[Run], value: Reader) -> dict[str, list[float]]:
    """One trial per supplying run and service."""
    return {service: [float(value(run.summary.services[service])) for run in _supplying(runs, value)]
            for service in SERVICES}


def _bounded_counts(runs: list[Run], value: Reader, bounded: Callable[[Any], bool]) -> dict[str, int]:
    """Per service, how many of the supplying runs flag their value as only a lower bound."""
    return {service: sum(bool(bounded(run.summary.services[service])) for run in _supplying(runs, value))
            for service in SERVICES}


def _list_trials(runs: list[Run], values: Callable[[Any], list[float]]
                 ) -> tuple[dict[str, list[float]], list[Run]]:
    """The trials inside `runs` that have values for every service of SERVICES, pooled in
    the runs' order, and those runs."""
    pooled: dict[str, list[float]] = {s: [] for s in SERVICES}
    supplying = []
    for run in runs:
        found = {s: values(run.summary.services[s]) if s in run.summary.services else [] for s in SERVICES}
        if all(found.values()):
            supplying.append(run)
            for s in SERVICES:
                pooled[s] += [float(v) for v in found[s]]
    return pooled, supplying


def cpu_note(run: Run) -> str:
    """What the CPU rows' values are, from the cpu-cores run `run`: the layout, the rate, and
    per service what the others took of its busiest and other core (% of that core)."""
    s = run.summary
    cores = s.layout_cores
    others = "; ".join(
        f"{name}: " + ", ".join(f"{c.broker_pct + c.load_pct + c.rest_pct:.0f}% of its {c.role} core"
                                for c in result.by_role)
        for name, result in s.services.items())
    allowed = ", ".join(f"{name} {result.allowed_cores}" for name, result in s.services.items())
    return (f"the service's own share of each core (its threads' CPU put on the core each last ran on), "
            f"layout {s.layout} (service on cores {cores.get('service')}, broker {cores.get('broker')}, "
            f"load engine {cores.get('load')}; the services could run on: {allowed}), {s.rate_rps:,.0f} "
            f"req/s ({s.rate_source}); the broker, the load engine and the rest took {others} "
            f"(run {run.run_id})")


def check_same_machine(runs: list[Run]) -> None:
    """Raise if `runs` were measured on different machines (host, CPU), whatever their layouts."""
    machines = {json.dumps({k: v for k, v in r.environment_key().items() if k != "cores"}, sort_keys=True):
                r.run_id for r in runs}
    if len(machines) > 1:
        raise RunFormatError("runs measured on different machines cannot be merged: "
                             + "; ".join(f"{rid}: {k}" for k, rid in machines.items()))


EXACT = frozenset({"image_size_mb"})  # bytes on disk: one count, no sampling error
# claim key -> the experiment whose runs feed it (what the sequential rule runs again)
FED_BY: dict[str, str] = {
    **{key: experiment for key, (experiment, _) in FROM_SUMMARIES.items()},
    **dict.fromkeys(FROM_COLD_STARTS, "startup"),
    **{key: experiment for key, (experiment, _) in FROM_TRIAL_LISTS.items()},
}


def collect_trials(
    config: StudyConfig, *, trials: int
) -> tuple[Trials, dict[str, str], list[str], dict[str, dict[str, int]]]:
    """(trials per claim key and service, reasons/notes per key, run ids used, and per key
    and service how many trials are only lower bounds (LOWER_BOUNDS)).

    Reads `config.runs_dir`: the `trials` newest soak and ceiling runs and the startup and
    cpu-cores runs (`ONE_RUN`: with a study id all of the study's, their trials pooled; without
    one the newest) of `config.profile` that measured both services (SERVICES) and, when
    `config.study_id` is set, were made for that study (otherwise of any study), leaving out
    those that may feed no row (`left_out_because`; the rows' notes say which and why). Raises if
    they were measured in different environments (host, CPU, core layout; the cpu-cores run
    has a layout of its own, `OWN_LAYOUT`, and must share only the machine). The CPU rows'
    note (`cpu_note`) replaces their `NOT_MEASURABLE` reason when a cpu-cores run supplied
    them.
    """
    found: Trials = {}
    bounded: dict[str, dict[str, int]] = {}
    used: list[Run] = []
    left_out: dict[str, list[str]] = {}

    @functools.cache  # each experiment's runs are read once, whichever rows they feed
    def runs_of(name: str) -> list[Run]:
        # each cold start of a startup run is a trial, so is each trial of a cpu-cores run; of
        # the others, each run. Runs that may feed no row are left out, and why is kept for
        # the rows they would have fed.
        usable, reasons = usable_runs(find_runs(config.runs_dir, name, profile=config.profile,
                                                services=SERVICES, study_id=config.study_id))
        limit = (None if config.study_id is not None else 1) if name in ONE_RUN else trials
        left_out[name] = reasons
        return usable[:limit]

    for key, (experiment, value) in FROM_SUMMARIES.items():
        runs = runs_of(experiment)[:1] if key in EXACT else runs_of(experiment)
        used += runs
        found[key] = _summary_trials(runs, value)
        if key in LOWER_BOUNDS:
            bounded[key] = _bounded_counts(runs, value, LOWER_BOUNDS[key])
    startups = runs_of("startup")
    if startups:
        starts = pl.concat([run.read_frame("cold_starts") for run in startups], how="diagonal_relaxed")
        used += startups
        for key, (columns, factor) in FROM_COLD_STARTS.items():
            found[key] = {s: _first_measured(starts.filter(service=s), columns, factor) for s in SERVICES}
    notes = dict(NOTES)
    for key, (experiment, _) in FROM_SUMMARIES.items():
        if left_out.get(experiment):
            notes[key] = "; ".join(filter(None, [notes.get(key), *left_out[experiment]]))
    for key, (experiment, values) in FROM_TRIAL_LISTS.items():
        found[key], supplying = _list_trials(runs_of(experiment), values)
        if supplying:
            used += supplying
            notes[key] = cpu_note(supplying[0]) + (f"; pooled with {len(supplying) - 1} earlier run(s) of "
                                                  f"the study" if len(supplying) > 1 else "")
    unique = list({run.run_id: run for run in used}.values())
    for own in (False, True):
        check_comparable([run for run in unique if (run.meta["experiment"] in OWN_LAYOUT) == own])
    check_same_machine(unique)
    reasons = {**NOT_MEASURABLE, **notes}
    return found, reasons, [run.run_id for run in unique], bounded
