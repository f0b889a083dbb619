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
# Segments shorter than this (seconds) are float leftovers of cutting periods, not steps.
_EPSILON_S = 1e-9


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


def step_ramp(start_rps: float, step_rps: float, steps: int, step_duration_s: float) -> Schedule:
    """A staircase: step `k` (0-based) offers `start_rps + k * step_rps` req/s for
    `step_duration_s` seconds. Used to find the rate at which a service saturates.
    """
    _check_positive(start_rps=start_rps, step_duration_s=step_duration_s)
    if not (isinstance(step_rps, int | float) and math.isfinite(step_rps) and step_rps >= 0):
        raise ValueError(f"step_rps must be a finite number >= 0, got {step_rps!r}")
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be an integer >= 1, got {steps!r}")
    return _build("step_ramp", [(start_rps + k * step_rps, step_duration_s) for k in range(steps)])


def bursts(base_rps: float, spike_rps: float, period_s: float, spike_s: float, duration_s: float) -> Schedule:
    """`base_rps` with a spike of `spike_rps` for the last `spike_s` seconds of every
    `period_s`-second period, for `duration_s` seconds in all.

    Each period is two steps (base, then spike), so `step` tells base and spike requests
    apart; a last, incomplete period is cut at `duration_s`. `base_rps` may be 0 (silence
    between spikes). The spike comes at the end of a period so the run starts at base load.
    """
    _check_positive(spike_rps=spike_rps, period_s=period_s, spike_s=spike_s, duration_s=duration_s)
    if not (isinstance(base_rps, int | float) and math.isfinite(base_rps) and base_rps >= 0):
        raise ValueError(f"base_rps must be a finite number >= 0, got {base_rps!r}")
    if spike_s >= period_s:
        raise ValueError(f"spike_s ({spike_s}) must be shorter than period_s ({period_s})")
    segments: list[tuple[float, float]] = []
    start_s = 0.0
    while start_s < duration_s - _EPSILON_S:
        for rate, length in ((base_rps, period_s - spike_s), (spike_rps, spike_s)):
            length = min(length, duration_s - start_s)
            if length > _EPSILON_S:
                segments.append((rate, length))
                start_s += length
    return _build("bursts", segments)
