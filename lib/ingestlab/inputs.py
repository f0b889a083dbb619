"""What each experiment needs before it runs, resolved by the study and handed in.

An experiment never starts another to find its inputs. This module does, in a fixed order and
out loud (each run it starts is announced, with why):

1. the rig's calibration (`engine-capacity` -> `EngineLimits`), once per study;
2. the services' ceilings (`ceiling` runs of the study);
3. the comparison rates (`comparison_rates`): one rate per comparison, chosen once per study
   from conclusive ceilings and kept as a derived run of its own (`rates`), so every trial of
   a row, in every notebook and every later session of the study, is measured at that rate.

```
config = StudyConfig.for_profile("quick", study_id=new_study_id())
rates = comparison_rates(config)          # calibrates and measures a ceiling first if needed
run = run_experiment(config, "soak")      # soak(config, rate=rates.rates["soak"], limits=...)
```

How a rate is chosen: per service, the median of the ceilings its conclusive trials found
(`CeilingResult.is_ceiling`). A trial that ended on a stall of the machine is left out; a
trial bound by the rig's reach says only "at least". The slower service must have a
conclusive ceiling, and every other service's value (a ceiling or a bound) must be at least
as high; the rate is `rate_fraction` of the slower one's, rounded to two digits.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from typing import Any

from ingestlab import progress_channel
from ingestlab.config import ServiceName, StudyConfig
from ingestlab.experiments import EXPERIMENTS, ceiling, engine_capacity, overload
from ingestlab.experiments.engine_bench import limits_of, saved_engine_limits
from ingestlab.experiments.overload import Ceiling, ceiling_of, latest_ceilings
from ingestlab.experiments.search import nice_rate
from ingestlab.experiments.steps import EngineLimits
from ingestlab.results import Run, find_runs
from ingestlab.summaries import ComparisonRate, RatesSummary
from ingestlab.variants import ARTICLE_SERVICES

RATES_EXPERIMENT = "rates"
# Ceiling runs made at most to find a conclusive ceiling for the slower service before the
# study gives up with an error (each trial already repeats its stalled steps and searches).
MAX_CEILING_RUNS = 3


class InputsError(RuntimeError):
    """What an experiment needs could not be had (e.g. no conclusive ceiling), and why."""


def announce(experiment: str, why: str) -> None:
    """Say that an input is being measured now: a reader of the notebook or the terminal
    sees every run the study starts on its own. Under a study also on its progress channel
    (`ingestlab.progress_channel`), so the study's terminal says it while it runs; the line
    stays in the notebook too, as a record of what it measured."""
    progress_channel.emit("announce", experiment=experiment, why=why)
    print(f"ingestlab: running {experiment}: {why}", flush=True)


def engine_limits(config: StudyConfig) -> EngineLimits:
    """The rig's calibration on this machine: the study's engine-capacity run, measured now
    (announced) if there is none."""
    saved = saved_engine_limits(config)
    if saved is not None:
        return saved
    announce("engine-capacity", "the load engines' calibration on this machine (none in this study yet)")
    return limits_of(engine_capacity(config), cpu_budget_pct=config.load.engine_cpu_budget_pct)


def _ceiling_values(runs: list[Run], service: ServiceName) -> dict[str, Any]:
    """A service's ceilings over `runs`: conclusive ones, the rig's bounds, and the trials
    left out (a stall of the machine), each with its run."""
    conclusive, bounds, left_out = [], [], []
    for run in runs:
        result = run.summary.services[service]
        if result.is_ceiling:
            conclusive.append((result.ceiling_rps, run.run_id))
        elif result.stalled or not result.ceiling_rps:
            left_out.append(f"{run.run_id}: {result.search}")
        else:
            bounds.append((result.ceiling_rps, run.run_id))
    return {"conclusive": conclusive, "bounds": bounds, "left_out": left_out}


def choose_rates(config: StudyConfig, runs: list[Run]) -> RatesSummary:
    """The comparison rates from the ceiling runs `runs` (see the module doc); raises
    InputsError when the slower service has no conclusive ceiling there."""
    ceilings: dict[str, dict[str, Any]] = {}
    for service in ARTICLE_SERVICES:
        found = _ceiling_values(runs, service)
        if found["conclusive"]:
            value, kind = statistics.median(v for v, _ in found["conclusive"]), "ceiling"
            used = [rid for _, rid in found["conclusive"]]
        elif found["bounds"]:
            value, kind = min(v for v, _ in found["bounds"]), "rig bound"
            used = [rid for _, rid in found["bounds"]]
        else:
            raise InputsError(f"{service}: no ceiling in the ceiling runs {[r.run_id for r in runs]}: "
                              + "; ".join(found["left_out"]))
        ceilings[service] = {"ceiling_rps": value, "kind": kind, "runs": used, "left_out": found["left_out"]}
    slower = min(ceilings, key=lambda s: ceilings[s]["ceiling_rps"])
    base = ceilings[slower]
    if base["kind"] != "ceiling":
        raise InputsError(f"{slower} is the slower service but has only the rig's lower bound "
                          f"{base['ceiling_rps']:,.0f} req/s: no rate can be derived from a bound")
    how = (f"{slower}'s ceiling {base['ceiling_rps']:,.0f} req/s (median of {len(base['runs'])} conclusive "
           f"trial(s): {', '.join(base['runs'])})")
    others = "; ".join(f"{s}: {c['kind']} {c['ceiling_rps']:,.0f} req/s" for s, c in ceilings.items()
                       if s != slower)
    rates = {}
    for experiment, part in (("soak", config.soak), ("cpu-cores", config.cpu_cores)):
        rate = nice_rate(part.rate_fraction * base["ceiling_rps"])
        rates[experiment] = ComparisonRate(
            rate_rps=rate, source=f"{rate:,.0f} req/s = {part.rate_fraction:g} x {how}, rounded; {others}",
            ceiling_runs=list(base["runs"]))
    return RatesSummary(rates=rates, ceilings=ceilings)


def comparison_rates(config: StudyConfig) -> RatesSummary:
    """The study's comparison rates: its `rates` run if it has one (chosen once, kept), else
    chosen now from its ceiling runs (one is measured, announced, while none has a conclusive
    ceiling for the slower service, at most `MAX_CEILING_RUNS`) and kept as a `rates` run."""
    here = Run.environment_of(config)
    article = config.replace(services=ARTICLE_SERVICES)
    for run in find_runs(config.runs_dir, RATES_EXPERIMENT, profile=config.profile, study_id=config.study_id):
        if run.environment_key() == here:
            return run.summary
    made = 0
    while True:
        runs = [run for run in find_runs(config.runs_dir, "ceiling", profile=config.profile,
                                         services=ARTICLE_SERVICES, study_id=config.study_id)
                if run.environment_key() == here]
        try:
            summary = choose_rates(config, runs)
            break
        except InputsError as why:
            if made >= MAX_CEILING_RUNS:
                raise InputsError(f"no comparison rate after {made} ceiling runs: {why}") from why
            announce("ceiling", f"the comparison rates need a conclusive ceiling of the slower service "
                                f"({why if runs else 'no ceiling run in this study yet'})")
            ceiling(article, limits=engine_limits(config))
            made += 1
    record = Run.create(article, RATES_EXPERIMENT)
    record.write_summary(summary)
    return summary


def rate_for(config: StudyConfig, experiment: str) -> ComparisonRate:
    """The rate of `experiment` ("soak" or "cpu-cores"): set in its part of the configuration
    (`rate_rps`), else the study's (`comparison_rates`)."""
    part = {"soak": config.soak, "cpu-cores": config.cpu_cores}[experiment]
    if part.rate_rps:
        return ComparisonRate(rate_rps=float(part.rate_rps),
                              source=f"{part.rate_rps:,} req/s, set in the configuration")
    return comparison_rates(config).rates[experiment]


def service_ceilings(config: StudyConfig) -> dict[ServiceName, Ceiling]:
    """Per service, its ceiling in the study's newest ceiling run that measured it; with
    overload `ceiling_factors` set, the services without one are measured first (announced,
    one ceiling run for them all)."""
    found = latest_ceilings(config)
    missing = tuple(service for service, known in found.items() if known is None)
    if missing and config.overload.ceiling_factors:
        announce("ceiling", f"overload's rates are multiples of the ceiling, none known for {list(missing)}")
        run = ceiling(config.replace(services=missing), limits=engine_limits(config))
        found.update({service: ceiling_of(run, service) for service in missing})
    return {service: known or Ceiling(None, False, "no ceiling run here") for service, known in found.items()}


def run_experiment(config: StudyConfig, experiment: str) -> Run:
    """Run `experiment` (a name of `experiments.EXPERIMENTS`) with its inputs resolved here:
    the calibration for every experiment that drives load with a chosen engine, the study's
    comparison rate for the soak and cpu-cores (and the soak's for backlog), the ceilings for
    overload."""
    if experiment in ("ceiling", "contracts", "reporter-cost"):
        return EXPERIMENTS[experiment](config, limits=engine_limits(config))
    if experiment in ("soak", "cpu-cores"):
        rate = rate_for(config, experiment)
        return EXPERIMENTS[experiment](config, rate=rate, limits=engine_limits(config))
    if experiment == "overload":
        return overload(config, ceilings=service_ceilings(config))
    if experiment == "backlog":  # the rate each service holds while Kafka keeps up
        return EXPERIMENTS[experiment](config, rate=rate_for(config, "soak"))
    return EXPERIMENTS[experiment](config)


def runner(experiment: str) -> Callable[[StudyConfig], Run]:
    """`run_experiment` for one experiment, as a function of the config (for callers that
    measure what is missing, e.g. `experiments.contracts.runs_by_service`)."""
    return lambda config: run_experiment(config, experiment)


def latest_or_new_run(config: StudyConfig, experiment: str) -> Run:
    """The newest complete run of `experiment` in `config.runs_dir` of `config`'s profile
    that measured its services and, if `config.study_id` is set, belongs to that study
    (`results.find_runs`); a new run (`run_experiment`) if there is none.

    For notebooks that analyse what an earlier notebook of the study measured, instead of
    repeating minutes of load. Complete = has summary.json (written last). The notebook
    shows which run it used (`show_run`), with its date.
    """
    found = find_runs(config.runs_dir, experiment, profile=config.profile, services=config.services,
                      study_id=config.study_id, limit=1)
    return found[0] if found else run_experiment(config, experiment)
