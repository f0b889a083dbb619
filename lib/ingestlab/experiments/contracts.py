"""`contracts`: every service at one common rate, so that promises can be compared.

The article's Node answers 202 once a record is queued, its Rust once Kafka acknowledged it;
their latency rows compare different things. This holds each of `config.services` (the
article's two, their promise-matched twins `node-acked` and `rust-enqueue`, the others) at
`config.contracts.rate_rps`, far below every one's ceiling, and measures what the client
heard (HTTP p50/p99), when the data was safe (end-to-end p50/p99 to the broker's append
time, `analysis.e2e`), memory summed over the service's processes, and CPU per request.
Each run is one trial of each service; notebook 06 runs it several times, rotating the order.

It is a soak (`experiments.soak.hold_rate`) with its own rate and length, kept apart from the
study's soak runs so the claims never mix the two.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ingestlab.config import ServiceName, StudyConfig
from ingestlab.experiments.soak import hold_each_service
from ingestlab.experiments.steps import EngineLimits
from ingestlab.results import Run, find_runs
from ingestlab.summaries import ContractsSummary


def contracts(config: StudyConfig, *, limits: EngineLimits) -> Run:
    """Hold `config.contracts.rate_rps` on each service for `duration_s` with the rig's
    calibration `limits`; summary: `ContractsSummary`."""
    c = config.contracts
    held = config.replace(soak={"rate_rps": c.rate_rps, "duration_s": c.duration_s, "warmup_s": c.warmup_s})
    run = Run.create(config, "contracts")
    run.update_meta(engine_limits=limits.as_dict())
    results, found = hold_each_service(held, run, rate_rps=c.rate_rps, limits=limits, label="contracts",
                                       one_stack=True)
    run.write_summary(ContractsSummary(services=results, rate_rps=c.rate_rps, duration_s=c.duration_s),
                      warnings_found=found)
    return run


def _comparable(run: Run, config: StudyConfig) -> bool:
    """Measured on this host and core layout, with `config`'s runtime."""
    return (run.environment_key() == Run.environment_of(config)
            and run.meta["config"]["runtime"] == config.runtime)


def contract_runs(config: StudyConfig, trials: int, *, limits: EngineLimits) -> list[Run]:
    """`trials` contracts runs of `config.services` at `config.contracts.rate_rps`: the
    study's (profile's) own runs made here with the same runtime, newest first, then new
    ones for the rest. The i-th new run holds the services in an order rotated by i, so that
    no service always goes first after the broker started."""
    if trials < 1:
        raise ValueError(f"trials must be >= 1, got {trials}")
    found = [run for run in find_runs(config.runs_dir, "contracts", profile=config.profile,
                                      services=config.services, study_id=config.study_id)
             if _comparable(run, config) and run.summary.rate_rps == config.contracts.rate_rps]
    runs = found[:trials]
    services = list(config.services)
    for i in range(len(runs), trials):
        turn = i % len(services)
        rotated = config.replace(services=tuple(services[turn:] + services[:turn]))
        runs.append(contracts(rotated, limits=limits))
    return runs


def runs_by_service(config: StudyConfig, experiment: str, services: Sequence[ServiceName], *,
                    measure: Callable[[StudyConfig], Run] | None) -> dict[str, Run]:
    """The newest comparable run of `experiment` (e.g. "ceiling", "startup") that measured
    each of `services`, of `config`'s profile and study; with `measure` (the experiment with
    its inputs resolved, `inputs.runner`), one new run of the services none has measured yet
    (without: they are left out)."""
    found: dict[str, Run] = {}
    for service in services:
        for run in find_runs(config.runs_dir, experiment, profile=config.profile, services=(service,),
                             study_id=config.study_id):
            if _comparable(run, config):
                found[service] = run
                break
    missing = tuple(s for s in services if s not in found)
    if measure is not None and missing:
        run = measure(config.replace(services=missing))
        found |= {service: run for service in missing}
    return found
