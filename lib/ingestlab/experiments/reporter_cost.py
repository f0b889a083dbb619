"""`reporter-cost`: what the services' memory reports cost, in CPU per request.

The study turns the memory reports on (`StackConfig.memory_report_ms`): each service then
reads librdkafka's statistics (and Node its `process.memoryUsage()`) that often and prints a
line. The article's programs run without them. This measures the price at one rate
(`contracts.rate_rps`): `pairs` pairs of contracts runs, one with the reports off and one
with them on, the order alternating from pair to pair (off-on, on-off, ...) so that a drift
of the machine falls on both arms alike. Per service: CPU per request (us) of each arm, and
the reports' overhead as the geometric mean of the pairs' on/off ratios with a 95% t-interval
on their logs (`analysis.claims.paired_ratio_interval`). The arms are contracts runs of their
own under this run's `arms/`, out of the study's catalogue: notebook 06 never mixes them in.
"""

from __future__ import annotations

from ingestlab.analysis.claims import paired_ratio_interval
from ingestlab.config import StudyConfig
from ingestlab.experiments.contracts import contracts
from ingestlab.experiments.steps import EngineLimits
from ingestlab.results import Run
from ingestlab.summaries import ReporterCostResult, ReporterCostSummary

# The reports are meant to cost under this much CPU per request (%, issue 18's goal).
GOAL_PCT = 2.0


def arm_order(pair: int, report_ms: int) -> tuple[int, int]:
    """The `memory_report_ms` of pair `pair`'s two arms, in the order they run: off first in
    even pairs, on first in odd ones."""
    return (0, report_ms) if pair % 2 == 0 else (report_ms, 0)


def overhead(services: list[str], arms: list[Run], report_ms: list[int]) -> dict[str, ReporterCostResult]:
    """Per service, CPU per request with the reports off and on (pairs in order: arms 2k and
    2k + 1 are pair k) and the overhead of the reports with its interval."""
    results = {}
    for service in services:
        off, on = [], []
        for arm, ms in zip(arms, report_ms, strict=True):
            (on if ms else off).append(arm.summary.services[service].cpu_per_request_us)
        point, low, high = paired_ratio_interval(off, on)
        results[service] = ReporterCostResult(
            cpu_per_request_off_us=off, cpu_per_request_on_us=on, overhead_pct=100 * (point - 1),
            overhead_ci_pct=[100 * (low - 1), 100 * (high - 1)])
    return results


def _checks(results: dict[str, ReporterCostResult]) -> list[str]:
    return [f"{service}: the memory reports cost {r.overhead_pct:.1f}% CPU per request "
            f"[{r.overhead_ci_pct[0]:.1f}, {r.overhead_ci_pct[1]:.1f}], above the {GOAL_PCT:g}% goal"
            for service, r in results.items() if r.overhead_ci_pct[0] > GOAL_PCT]


def reporter_cost(config: StudyConfig, *, limits: EngineLimits) -> Run:
    """`config.reporter_cost.pairs` pairs of contracts runs (reports off and on) of
    `config.services` at `config.contracts.rate_rps` for `reporter_cost.duration_s` each, with
    the rig's calibration `limits`; summary: `ReporterCostSummary`."""
    c = config.reporter_cost
    report_ms = config.stack.memory_report_ms or 1_000
    run = Run.create(config, "reporter-cost")
    run.update_meta(engine_limits=limits.as_dict())
    arms: list[Run] = []
    arm_ms: list[int] = []
    for pair in range(c.pairs):
        for ms in arm_order(pair, report_ms):
            print(f"reporter-cost: pair {pair + 1}/{c.pairs}, memory reports "
                  f"{f'every {ms} ms' if ms else 'off'}", flush=True)
            arm = config.replace(runs_dir=run.path / "arms", stack={"memory_report_ms": ms},
                                 contracts={"duration_s": c.duration_s})
            arms.append(contracts(arm, limits=limits))
            arm_ms.append(ms)
    results = overhead(list(config.services), arms, arm_ms)
    summary = ReporterCostSummary(services=results, rate_rps=config.contracts.rate_rps,
                                  duration_s=c.duration_s, memory_report_ms=report_ms,
                                  arms=[a.run_id for a in arms], arm_report_ms=arm_ms)
    found = _checks(results) + [f"arm {a.run_id}: {w}" for a in arms for w in a.warnings]
    run.write_summary(summary, warnings_found=found)
    return run
