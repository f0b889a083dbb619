"""Open-loop send schedules: when each request is meant to start, fixed before the run begins.

A schedule is data, not a loop: every function here returns the intended send times as
offsets in seconds from the run start. The engine sends request `i` at `offsets_s[i]` whether
or not earlier requests have been answered, and latency is measured from that intended time
(coordinated-omission corrected).

Within a step, arrivals are evenly spaced at exactly `1 / rate` seconds, starting at the
step's start; a step of `d` seconds at `r` req/s holds `ceil(r * d)` arrivals (all strictly
inside the step), so a whole number of requests per step gives exactly `r * d`.
"""

from __future__ import annotations

import math
from array import array
from dataclasses import dataclass

# Relative slack on `rate * duration` before rounding up, so float error in a whole number
# of arrivals (0.1 * 30 = 3.0000000000000004) keeps it 3 instead of 4.
_COUNT_SLACK = 1e-12


@dataclass(frozen=True)
class Schedule:
    """Intended send times of an open-loop run.

    Attributes:
        offsets_s: intended start of each request, seconds from the run start, ascending.
            An `array('d')`; treat it as read-only.
        step: index of the step each request belongs to (`array('i')`, same length).
        step_rates_rps: offered rate of each step, requests per second.
        step_starts_s: start of each step, seconds from the run start.
        duration_s: length of the whole schedule in seconds (end of the last step).
        kind: the function that built it, e.g. "constant".
    """

    offsets_s: array
    step: array
    step_rates_rps: tuple[float, ...]
    step_starts_s: tuple[float, ...]
    duration_s: float
    kind: str

    @property
    def count(self) -> int:
        """Number of requests in the schedule."""
        return len(self.offsets_s)

    @property
    def offered_rps(self) -> float:
        """Average offered rate over the whole schedule, requests per second."""
        return self.count / self.duration_s

    def __len__(self) -> int:
        return self.count


def _check_positive(**values: float) -> None:
    for name, value in values.items():
        if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
            raise ValueError(f"{name} must be a positive finite number, got {value!r}")


def _build(kind: str, segments: list[tuple[float, float]]) -> Schedule:
    """A schedule from consecutive `(rate_rps, duration_s)` segments, one step each."""
    offsets = array("d")
    steps = array("i")
    starts: list[float] = []
    start_s = 0.0
    for index, (rate_rps, duration_s) in enumerate(segments):
        starts.append(start_s)
        n = math.ceil(rate_rps * duration_s * (1 - _COUNT_SLACK)) if rate_rps > 0 else 0
        offsets.extend(start_s + k / rate_rps for k in range(n))
        steps.extend(index for _ in range(n))
        start_s += duration_s
    return Schedule(
        offsets_s=offsets,
        step=steps,
        step_rates_rps=tuple(float(rate) for rate, _ in segments),
        step_starts_s=tuple(starts),
        duration_s=start_s,
        kind=kind,
    )


def constant(rate_rps: float, duration_s: float) -> Schedule:
    """`rate_rps` requests per second for `duration_s` seconds, evenly spaced (one step)."""
    _check_positive(rate_rps=rate_rps, duration_s=duration_s)
    return _build("constant", [(rate_rps, duration_s)])

