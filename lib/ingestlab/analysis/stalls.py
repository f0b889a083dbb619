"""Signs that a load step's bad outcome was the machine's, not the service's.

On a shared 2-core VM one short stall can fail a step that the service would hold: the load
engine waits for its core while the broker has it, the hypervisor takes a vCPU away
(steal), another process runs on the service's own core, or a single hiccup leaves every
slow request of the step in one short window. A step that failed or was inconclusive with one
of these signs says nothing certain about the service;
the ceiling search repeats it before it moves on (`experiments.ceiling`), and the run keeps
both attempts with the signs that caused the repeat.

A saturated service shows none of the last sign: its queue grows for the rest of the step,
so its slow requests spread over every window after the rate got too high.
"""

from __future__ import annotations

import polars as pl

from ingestlab.units import NS_PER_MS, NS_PER_S

# The engine was runnable but waiting for its core this share of the step (%): the broker or
# another process held the load core. Measured here: 15% in the step that failed Rust at
# 1,000 req/s on an AMD machine; at most a few % in steps that held.
STALL_WAIT_PCT = 10.0
# The hypervisor took this share of a core's time during the step (%). Typical steal on the
# study's VMs: 0-8% (/proc/stat); a burst above this is the host's, not the service's.
STALL_STEAL_PCT = 10.0
# Processes other than the service took this share of the service's own cores during the
# step (%): its core was not its own (another user of the machine, a build, a test run).
STALL_OTHERS_PCT = 20.0
# A burst is "confined" when at least this share of the step's slow or failed requests was
# intended in one window of `CONFINED_WINDOW_S`, and the measured phase spans at least
# `MIN_WINDOWS` windows (with fewer, every burst is "in one window").
CONFINED_SHARE = 0.8
CONFINED_WINDOW_S = 0.5
MIN_WINDOWS = 3


def steal_pct(core_times: pl.DataFrame, cores: tuple[int, ...]) -> float | None:
    """The highest share (%) of a core's accounted time that the hypervisor took, over the
    window `core_times` spans (`telemetry.core_times.CORE_TIMES_SCHEMA`), among `cores`;
    None without two readings of any of them."""
    times = core_times.filter(pl.col("core").is_in(list(cores))).sort("t_ns")
    if times.is_empty():
        return None
    delta = {c: pl.col(c).last() - pl.col(c).first() for c in ("busy_s", "idle_s", "steal_s")}
    per_core = times.group_by("core").agg(
        readings=pl.len(), accounted=delta["busy_s"] + delta["idle_s"] + delta["steal_s"],
        steal=delta["steal_s"],
    ).filter(pl.col("readings") >= 2, pl.col("accounted") > 0)
    if per_core.is_empty():
        return None
    return float(per_core.select((pl.col("steal") / pl.col("accounted") * 100).max()).item())


def others_pct(core_times: pl.DataFrame, cores: tuple[int, ...], service_cpu_s: float) -> float | None:
    """What processes other than the service used of the service's `cores` over the window
    `core_times` spans, % of those cores' accounted time: their busy time less the service's
    own CPU seconds `service_cpu_s`; None without two readings."""
    times = core_times.filter(pl.col("core").is_in(list(cores))).sort("t_ns")
    per_core = times.group_by("core").agg(
        readings=pl.len(), busy=pl.col("busy_s").last() - pl.col("busy_s").first(),
        accounted=pl.sum_horizontal(pl.col(c).last() - pl.col(c).first()
                                    for c in ("busy_s", "idle_s", "steal_s")),
    ).filter(pl.col("readings") >= 2)
    accounted = per_core["accounted"].sum()
    if per_core.is_empty() or not accounted:
        return None
    return max(0.0, 100 * (per_core["busy"].sum() - service_cpu_s) / accounted)


def confined_burst(rows: pl.DataFrame, *, bound_ms: float, window_s: float = CONFINED_WINDOW_S) -> str | None:
    """A sentence if the measured phase's slow (latency from the intended send >= `bound_ms`)
    or failed requests of `rows` (`load.rows.REQUEST_SCHEMA`) sit mostly in one window of
    `window_s`; None otherwise (none of them, or spread out, or too short a step to tell)."""
    measured = rows.filter(pl.col("phase") == "measure")
    if measured.is_empty():
        return None
    start = measured["intended_start_ns"].min()
    span_s = (measured["intended_start_ns"].max() - start) / NS_PER_S
    if span_s < MIN_WINDOWS * window_s:
        return None
    latency_ms = (pl.col("end_ns") - pl.col("intended_start_ns")) / NS_PER_MS
    bad = measured.filter((pl.col("status") != 202) | (latency_ms >= bound_ms))
    if bad.is_empty():
        return None
    window = ((pl.col("intended_start_ns") - start) / (window_s * NS_PER_S)).floor().cast(pl.Int64)
    counts = bad.group_by(window.alias("window")).len().sort("len", descending=True)
    worst, in_worst = counts.row(0)
    if in_worst < CONFINED_SHARE * bad.height:
        return None
    return (f"{in_worst} of its {bad.height} slow or failed requests were intended in one {window_s:g} s "
            f"window ({worst * window_s:g}-{(worst + 1) * window_s:g} s into the measured phase)")


def stall_signs(rows: pl.DataFrame, *, bound_ms: float, engine_wait_pct: float | None,
                steal: float | None, others: float | None = None) -> list[str]:
    """Why the machine, not the service, may have decided a step (empty: no sign): the
    engine's wait for its core (% of the step), the hypervisor's steal (%), other processes on
    the service's cores (`others_pct`, %), or a burst of slow requests confined to one window
    (`confined_burst`)."""
    signs = []
    if others is not None and others >= STALL_OTHERS_PCT:
        signs.append(f"other processes took {others:.0f}% of the service's core")
    if engine_wait_pct is not None and engine_wait_pct >= STALL_WAIT_PCT:
        signs.append(f"the load engine waited {engine_wait_pct:.0f}% of the step for its core")
    if steal is not None and steal >= STALL_STEAL_PCT:
        signs.append(f"the hypervisor took {steal:.0f}% of a core (steal)")
    if (burst := confined_burst(rows, bound_ms=bound_ms)) is not None:
        signs.append(burst)
    return signs
