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

from ingestlab.config import StudyConfig
from ingestlab.experiments.engine_bench import engine_limits
from ingestlab.experiments.soak import hold_each_service
from ingestlab.results import Run
from ingestlab.summaries import ContractsSummary


def contracts(config: StudyConfig) -> Run:
    """Hold `config.contracts.rate_rps` on each service for `duration_s`; summary:
    `ContractsSummary`."""
    c = config.contracts
    held = config.replace(soak={"rate_rps": c.rate_rps, "duration_s": c.duration_s, "warmup_s": c.warmup_s})
    limits = engine_limits(config)
    run = Run.create(config, "contracts")
    run.update_meta(engine_limits=limits.as_dict())
    results, found = hold_each_service(held, run, rate_rps=c.rate_rps, limits=limits, label="contracts",
                                       one_stack=True)
    run.write_summary(ContractsSummary(services=results, rate_rps=c.rate_rps, duration_s=c.duration_s),
                      warnings_found=found)
    return run
