"""No single step decides a trial: signs of a stall (analysis.stalls), the repeat of a step
(experiments.ceiling.decided_outcome) and what bound a search (bound_kind)."""

from __future__ import annotations

import polars as pl
import pytest

from ingestlab.analysis.stalls import confined_burst, stall_signs, steal_pct
from ingestlab.experiments.ceiling import bound_kind, decided_outcome
from ingestlab.experiments.search import SearchResult
from ingestlab.experiments.steps import EngineLimits
from ingestlab.units import NS_PER_MS, NS_PER_S

LIMITS = EngineLimits(asyncio_rps=5_000.0, oha_rps=40_000.0, asyncio_usable_rps=3_000.0,
                      oha_usable_rps=20_000.0, cpu_budget_pct=50.0, source="calibration")


def _rows(latencies_ms: list[float], *, rate_rps: float = 1_000.0) -> pl.DataFrame:
    """Measured rows, one per request sent every 1/rate s, answered 202 after its latency."""
    gap = int(NS_PER_S / rate_rps)
    starts = [i * gap for i in range(len(latencies_ms))]
    return pl.DataFrame({
        "phase": ["measure"] * len(starts), "status": [202] * len(starts),
        "intended_start_ns": starts,
        "end_ns": [s + int(ms * NS_PER_MS) for s, ms in zip(starts, latencies_ms, strict=True)],
    })


def test_a_hiccup_in_one_window_is_a_stall() -> None:
    latencies = [2.0] * 2_000
    latencies[700:800] = [150.0] * 100  # 0.1 s of slow answers, inside the 0.5-1.0 s window
    burst = confined_burst(_rows(latencies), bound_ms=100.0)
    assert burst is not None and "100 of its 100" in burst and "0.5-1 s" in burst


def test_a_saturated_service_is_not_a_stall() -> None:
    # the queue grows for the rest of the step: slow answers in every window after 0.5 s
    latencies = [2.0] * 500 + [100.0 + i * 0.2 for i in range(1_500)]
    assert confined_burst(_rows(latencies), bound_ms=100.0) is None
    assert confined_burst(_rows([2.0] * 2_000), bound_ms=100.0) is None  # nothing slow
    assert confined_burst(_rows([150.0] * 1_000), bound_ms=100.0) is None  # 1 s: too short to tell


def test_signs_name_the_wait_and_the_steal() -> None:
    rows = _rows([2.0] * 2_000)
    signs = stall_signs(rows, bound_ms=100.0, engine_wait_pct=15.0, steal=12.0)
    assert signs == ["the load engine waited 15% of the step for its core",
                     "the hypervisor took 12% of a core (steal)"]
    assert stall_signs(rows, bound_ms=100.0, engine_wait_pct=3.0, steal=None) == []


def test_steal_is_the_worst_core_share() -> None:
    times = pl.DataFrame({"t_ns": [0, 0, 1, 1], "core": [0, 1, 0, 1], "busy_s": [0.0, 0.0, 0.5, 0.8],
                          "idle_s": [0.0, 0.0, 0.3, 0.2], "steal_s": [0.0, 0.0, 0.2, 0.0]})
    assert steal_pct(times, (0, 1)) == pytest.approx(20.0)
    assert steal_pct(times, (1,)) == pytest.approx(0.0)
    assert steal_pct(times.head(2), (0,)) is None  # one reading: no interval


def test_a_step_with_a_stall_is_repeated_until_it_decides() -> None:
    attempts = iter([("fail", ["the load engine waited 15% of the step for its core"], {"n": 1}),
                     ("inconclusive", ["steal"], {"n": 2}), ("pass", [], {"n": 3})])
    outcome, rows = decided_outcome(lambda: next(attempts), repeats=2)
    assert outcome == "pass" and [r["n"] for r in rows] == [1, 2, 3]
    assert [r["repeated"] for r in rows] == [True, True, False]


def test_a_failure_without_a_sign_stands_and_repeats_are_bounded() -> None:
    outcome, rows = decided_outcome(lambda: ("fail", [], {}), repeats=2)
    assert outcome == "fail" and len(rows) == 1
    outcome, rows = decided_outcome(lambda: ("fail", ["steal"], {}), repeats=2)
    assert outcome == "fail" and len(rows) == 3 and not rows[-1]["repeated"]


def test_a_bound_below_the_rigs_reach_is_a_stall() -> None:
    found = SearchResult(best_rps=380.0, limit_rps=None, lower_bound=True, reason="", inconclusive_rps=500.0)
    assert bound_kind(found, LIMITS, rig_share=0.5) == "stall"
    at_reach = SearchResult(best_rps=16_000.0, limit_rps=None, lower_bound=True, reason="",
                            inconclusive_rps=18_000.0)
    assert bound_kind(at_reach, LIMITS, rig_share=0.5) == "rig"
    beyond = SearchResult(best_rps=16_000.0, limit_rps=None, lower_bound=True, reason="",
                          inconclusive_rps=32_000.0)  # no engine has room for it
    assert bound_kind(beyond, LIMITS, rig_share=0.5) == "rig"
    capped = SearchResult(best_rps=64_000.0, limit_rps=None, lower_bound=True, reason="")
    assert bound_kind(capped, LIMITS, rig_share=0.5) == "rig"
    found_it = SearchResult(best_rps=3_000.0, limit_rps=3_300.0, lower_bound=False, reason="")
    assert bound_kind(found_it, LIMITS, rig_share=0.5) is None


def test_other_processes_on_the_service_core_are_a_stall() -> None:
    from ingestlab.analysis.stalls import others_pct

    # core 1 busy 0.9 s of 1 s, the service used 0.4 s of it: others took 50%
    times = pl.DataFrame({"t_ns": [0, 1], "core": [1, 1], "busy_s": [0.0, 0.9], "idle_s": [0.0, 0.1],
                          "steal_s": [0.0, 0.0]})
    assert others_pct(times, (1,), 0.4) == pytest.approx(50.0)
    assert others_pct(times, (1,), 0.95) == 0.0  # rounding of /proc's ticks: never below 0
    signs = stall_signs(_rows([2.0] * 2_000), bound_ms=100.0, engine_wait_pct=None, steal=None, others=50.0)
    assert signs == ["other processes took 50% of the service's core"]
