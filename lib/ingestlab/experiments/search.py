"""Finding the highest rate that holds: up by doubling, down by halving, then bisection.

Used for a service's ceiling and for a load engine's capacity alike. A rate is tried as one
constant-rate step whose outcome is one of:

- "pass": the target kept up;
- "fail": it did not (the rate is above its limit);
- "inconclusive": the step says nothing about the target (the load generator could not
  drive it). Nothing above an inconclusive rate is tried, and the search reports its
  result as a lower bound, never as the target's limit.

The search never ends at nothing while a rate above `floor_rps` is left to try: when the
first step fails it halves the rate until one holds. Pure functions, so the policy is tested
without a machine.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

Outcome = Literal["pass", "fail", "inconclusive"]


@dataclass(frozen=True)
class SearchPolicy:
    """How a rate search moves (rates in req/s).

    `resolution`: the search stops once the lowest failing rate is within this factor of the
    highest passing one (1.1: the limit is known to 10%).
    """

    start_rps: float
    floor_rps: float
    cap_rps: float
    resolution: float = 1.1

    def __post_init__(self) -> None:
        if not 0 < self.floor_rps <= self.start_rps <= self.cap_rps:
            raise ValueError(f"need 0 < floor <= start <= cap, got {self}")
        if self.resolution <= 1:
            raise ValueError(f"resolution must be > 1, got {self.resolution}")


def nice_rate(rate: float) -> float:
    """`rate` rounded to two significant digits (2,350 -> 2,400): readable step rates."""
    digits = 10 ** max(0, math.floor(math.log10(rate)) - 1)
    return float(round(rate / digits) * digits)


def next_rate(history: Sequence[tuple[float, Outcome]], policy: SearchPolicy) -> float | None:
    """The next rate to try after `history` ((rate, outcome) in the order tried); None: done."""
    if not history:
        return policy.start_rps
    passed = [rate for rate, outcome in history if outcome == "pass"]
    low = max(passed) if passed else None
    above = [rate for rate, outcome in history if outcome != "pass" and (low is None or rate > low)]
    high = min(above) if above else None
    tried = {rate for rate, _ in history}
    if high is None:  # everything tried held: go up
        if low >= policy.cap_rps:
            return None
        candidate = min(nice_rate(low * 2), policy.cap_rps)
    elif low is None:  # nothing held yet: go down
        candidate = nice_rate(high / 2)
        if candidate < policy.floor_rps:
            return None
    else:
        if high / low <= policy.resolution:
            return None
        candidate = nice_rate((low + high) / 2)
    return None if candidate in tried else candidate


@dataclass(frozen=True)
class SearchResult:
    """What a finished search found (req/s)."""

    best_rps: float | None  # highest passing rate below every failing or inconclusive one
    limit_rps: float | None  # lowest failing rate above it (None: none failed)
    lower_bound: bool  # True: the target may hold more (ramp hit the cap or an inconclusive step)
    reason: str
    # the inconclusive rate that ended the search (req/s; None: it ended otherwise)
    inconclusive_rps: float | None = None


def summarize(history: Sequence[tuple[float, Outcome]], policy: SearchPolicy) -> SearchResult:
    """The result of a search given its whole history (see `next_rate`)."""
    passed = [rate for rate, outcome in history if outcome == "pass"]
    best = max(passed) if passed else None
    above = [(rate, outcome) for rate, outcome in history
             if outcome != "pass" and (best is None or rate > best)]
    if not above:
        if best is None:
            return SearchResult(None, None, True, "no step was run")
        why = f"held every rate tried, up to the cap {policy.cap_rps:,.0f} req/s"
        return SearchResult(best, None, True, why)
    limit_rate, limit_outcome = min(above)
    if limit_outcome == "inconclusive":
        why = (f"the load generator could not drive {limit_rate:,.0f} req/s (inconclusive); "
               "the limit is at least the best rate")
        return SearchResult(best, None, True, why, inconclusive_rps=limit_rate)
    if best is None:
        return SearchResult(None, limit_rate, False,
                            f"no rate held, down to {min(rate for rate, _ in history):,.0f} req/s")
    return SearchResult(best, limit_rate, False, f"held {best:,.0f} req/s, not {limit_rate:,.0f}")


def run_search(policy: SearchPolicy, try_rate: Callable[[float, int], Outcome]) -> SearchResult:
    """Search as `next_rate` directs: `try_rate(rate_rps, k)` runs the k-th step (0-based) at
    `rate_rps` and returns its outcome; the result is `summarize` of the whole history."""
    history: list[tuple[float, Outcome]] = []
    while (rate := next_rate(history, policy)) is not None:
        history.append((rate, try_rate(rate, len(history))))
    return summarize(history, policy)
