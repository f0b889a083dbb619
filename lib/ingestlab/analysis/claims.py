"""The article's table beside this machine's measurements, as Rust/Node ratios with verdicts.

Absolute numbers from the article's c6g.large cannot be compared with this machine's, so
every row is judged on the ratio rust/node: the claim's ratio against the measured one and
its 95% confidence interval from repeated trials (`INTERVAL_METHOD`).

The measured ratio is the ratio of geometric means, exp(mean(log rust) - mean(log node)),
and its interval a Welch t-interval (unequal variances, Welch-Satterthwaite degrees of
freedom) on the difference of the log values, exponentiated. With the 3 to 5 trials per
service a row rests on, a percentile bootstrap is not honest: resampling 3 values gives
only 10 distinct means, all between their minimum and maximum, so its interval is close to
the min-max range, narrower than the sampling error warrants; the t-interval widens with the
t quantile at few degrees of freedom. Working on logs makes the interval multiplicative (as ratios
are) and keeps it positive. It is deterministic: a report rebuilds the same. All values
must be > 0 (study.usable_trials leaves out those that are not). Two special cases: when
both services' values are constant (e.g. exact counts, one value each) the interval is
the point itself; when only one is constant, the interval rests on the other's spread
alone.

Verdicts:
- "reproduced": the interval lies on the claimed side of 1 and overlaps the band
  [claim / TOLERANCE, claim x TOLERANCE];
- "direction only": on the claimed side of 1, but the size is off by more than TOLERANCE;
- "not reproduced": the interval includes 1 or lies on the other side;
- "not measurable here": no measurement (the reason says why).

Trials where the verdict is in doubt (`SequentialPlan`): a row's trials are not fixed. It
starts with `MIN_TRIALS` of each service; after each look, a row whose interval lies inside
one verdict's region (no boundary of the verdicts, `verdict_boundaries`, inside it: the
verdict cannot change as the interval narrows) is `decided` and gets no more trials; one that
straddles a boundary gets another trial, up to a cap. Looking again and again at a 95%
interval and stopping when it suits would make it less than 95%: each look uses the level
1 - 0.05 / K for the K looks the plan allows at most (Bonferroni over the looks), so the
chance that any of the intervals a row was judged on misses its true ratio stays at most 5%
whenever it stopped. The price: a slightly wider interval at each look.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import polars as pl
from scipy import stats

from ingestlab.paths import PROJECT_ROOT

# How far the measured ratio may be from the claimed one and still count as reproduced.
TOLERANCE = 2.0
# How the interval of the measured ratio is computed (printed by notebooks/05).
INTERVAL_METHOD = "Welch t-interval on log values (ratio of geometric means)"
MIN_TRIALS = 3
CLAIMS_CSV = PROJECT_ROOT / "data" / "article_claims.csv"
NOT_MEASURABLE = "not measurable here"
CLAIMS_COLUMNS = (
    "metric",
    "node_claim",
    "rust_claim",
    "node_measured",
    "rust_measured",
    "claim_ratio",
    "measured_ratio",
    "ci_low",
    "ci_high",
    "verdict",
    "reason",
)


def load_claims(path: Path = CLAIMS_CSV) -> pl.DataFrame:
    """The article's table (data/article_claims.csv): one row per claim, keyed by `key`."""
    return pl.read_csv(path)


def _logs(values: Sequence[float], service: str) -> list[float]:
    bad = [v for v in values if not (math.isfinite(v) and v > 0)]
    if bad:
        raise ValueError(f"{service}: every value must be finite and > 0 for a log ratio, got {bad}")
    return [math.log(v) for v in values]


def _log_mean(values: Sequence[float], logs: Sequence[float]) -> float:
    # a constant sample's log mean is exactly the log of its value (no rounding in a sum)
    return logs[0] if min(values) == max(values) else math.fsum(logs) / len(logs)


def _one_sample_interval(logs: Sequence[float], centre: float, level: float) -> tuple[float, float]:
    n = len(logs)
    half = stats.t.ppf((1 + level) / 2, n - 1) * statistics.stdev(logs) / math.sqrt(n)
    return centre - half, centre + half


def ratio_interval(
    node: Sequence[float], rust: Sequence[float], *, level: float = 0.95
) -> tuple[float, float, float]:
    """(ratio of geometric means rust/node, low, high) with a Welch t-interval on the logs.

    See the module docstring. Raises ValueError for a value that is not > 0 (naming the
    service), or for fewer than 2 values of a service unless both services' values are
    constant, in which case the interval is the point itself.
    """
    if not 0 < level < 1:
        raise ValueError(f"level must be between 0 and 1, got {level}")
    if not node or not rust:
        raise ValueError("both services need at least one trial")
    log_node, log_rust = _logs(node, "node"), _logs(rust, "rust")
    constant_node, constant_rust = min(node) == max(node), min(rust) == max(rust)
    log_point = _log_mean(rust, log_rust) - _log_mean(node, log_node)
    point = math.exp(log_point)
    if constant_node and constant_rust:
        return point, point, point
    for service, values in (("node", node), ("rust", rust)):
        if len(values) < 2:
            raise ValueError(
                f"{service}: {len(values)} value(s); an interval needs at least 2 of each service "
                "unless both services' values are constant"
            )
    if constant_node or constant_rust:
        # Welch's interval when one sample has no spread: the standard error and the degrees
        # of freedom (n - 1) are the other sample's alone, i.e. a one-sample t-interval on it.
        # Computed directly: scipy warns of precision loss on a constant sample.
        low, high = _one_sample_interval(log_rust if constant_node else log_node, log_point, level)
    else:
        interval = stats.ttest_ind(log_rust, log_node, equal_var=False).confidence_interval(
            confidence_level=level
        )
        low, high = float(interval.low), float(interval.high)
        if not (math.isfinite(low) and math.isfinite(high)):
            raise ValueError(f"no finite interval for node={list(node)}, rust={list(rust)}")
    return point, math.exp(low), math.exp(high)


def paired_difference_interval(
    before: Sequence[float], after: Sequence[float], *, level: float = 0.95
) -> tuple[float, float, float]:
    """(mean of after[i] - before[i], low, high) for paired measurements (the same pair's two
    arms, e.g. a service with and without a reporter): a one-sample t-interval on the
    differences (the point itself when every difference is the same). Raises ValueError for
    unpaired lengths or fewer than 2 pairs."""
    if len(before) != len(after):
        raise ValueError(f"need as many values after as before, got {len(before)} and {len(after)}")
    if len(before) < 2:
        raise ValueError("an interval needs at least 2 pairs")
    differences = [a - b for b, a in zip(before, after, strict=True)]
    if min(differences) == max(differences):
        return differences[0], differences[0], differences[0]
    centre = math.fsum(differences) / len(differences)
    return centre, *_one_sample_interval(differences, centre, level)


def paired_ratio_interval(
    before: Sequence[float], after: Sequence[float], *, level: float = 0.95
) -> tuple[float, float, float]:
    """(geometric mean of after[i] / before[i], low, high): `paired_difference_interval` on
    the logs, exponentiated. Raises ValueError as it does, and for a value not > 0."""
    logs = _logs(before, "before"), _logs(after, "after")
    centre, low, high = paired_difference_interval(*logs, level=level)
    return math.exp(centre), math.exp(low), math.exp(high)


def verdict(claim_ratio: float, low: float, high: float) -> tuple[str, str]:
    """Verdict and its reason for one row (see the module docstring)."""
    claimed_below = claim_ratio < 1
    same_side = high < 1 if claimed_below else low > 1
    if not same_side:
        return "not reproduced", f"95% CI [{low:.3g}, {high:.3g}] is not on the claimed side of 1"
    band_low, band_high = claim_ratio / TOLERANCE, claim_ratio * TOLERANCE
    if high >= band_low and low <= band_high:
        return "reproduced", (
            f"95% CI [{low:.3g}, {high:.3g}] within x{TOLERANCE:g} of the claimed {claim_ratio:.3g}"
        )
    return "direction only", (
        f"95% CI [{low:.3g}, {high:.3g}] on the claimed side of 1 but more than "
        f"x{TOLERANCE:g} from the claimed {claim_ratio:.3g}"
    )


def bounded_verdict(
    label: str, why: str, *, claim_ratio: float, low: float, high: float,
    bounded: Mapping[str, int], trials: int,
) -> tuple[str, str]:
    """The verdict of a row some of whose values are only bounds (e.g. a ceiling the load
    generator could not push a service past): `bounded` maps service -> how many of its
    `trials` values are lower bounds of the true value.

    Rust's lower bounds make the ratio rust/node a lower bound, Node's an upper one. A verdict
    stands only when the bound can push the ratio nowhere but deeper into the verdict's region:
    "direction only" beyond the band on the side the bound points (a lower bound above
    claim x TOLERANCE). A "reproduced" interval does not stand (the true ratio may lie beyond the
    band), nor one across 1: the row is "not measurable here", with the direction stated when
    the interval lies on the claimed side of 1.
    """
    counts = ", ".join(f"{service} in {n} of {trials} trials" for service, n in sorted(bounded.items()) if n)
    rust_bounded, node_bounded = bounded.get("rust", 0) > 0, bounded.get("node", 0) > 0
    kind = {(True, False): "lower", (False, True): "upper"}.get((rust_bounded, node_bounded))
    claimed_above = claim_ratio > 1
    claimed_side = (kind == "lower" and claimed_above and low > 1) or (kind == "upper" and not claimed_above
                                                                        and high < 1)
    beyond_band = low > claim_ratio * TOLERANCE if kind == "lower" else high < claim_ratio / TOLERANCE
    if claimed_side and label == "direction only" and beyond_band:
        return label, f"{why}; the measured ratio is a {kind} bound (value only a lower bound: {counts})"
    if claimed_side:
        return NOT_MEASURABLE, (f"values only lower bounds ({counts}), so the ratio is a {kind} bound: "
                                f"{'at least' if kind == 'lower' else 'at most'} "
                                f"[{low:.3g}, {high:.3g}], on the claimed side of 1, but within or beyond "
                                f"x{TOLERANCE:g} of the claimed {claim_ratio:.3g} cannot be judged")
    return NOT_MEASURABLE, (f"values only lower bounds ({counts}), so the ratio [{low:.3g}, {high:.3g}] "
                            f"is {'a ' + kind + ' bound' if kind else 'unbounded'} and cannot be judged")


def verdict_boundaries(claim_ratio: float) -> tuple[float, ...]:
    """The ratios at which the verdict of a row with this claim changes (see `verdict`): 1,
    and the edges of the band [claim / TOLERANCE, claim x TOLERANCE] on the claimed side."""
    edges = (claim_ratio / TOLERANCE, claim_ratio * TOLERANCE)
    claimed_below = claim_ratio < 1
    return (1.0, *sorted(e for e in edges if (e < 1) == claimed_below))


def decided(claim_ratio: float, low: float, high: float) -> bool:
    """Whether the interval [low, high] lies inside one verdict's region: no boundary
    (`verdict_boundaries`) strictly inside it, so more trials could not change the verdict
    (only narrow the interval)."""
    return not any(low < edge < high for edge in verdict_boundaries(claim_ratio))


@dataclass(frozen=True)
class SequentialPlan:
    """How many trials a row may take: from `min_trials` up to `max_trials` of each service,
    one more per look while undecided; `alpha` is shared over the looks (Bonferroni)."""

    min_trials: int = MIN_TRIALS
    max_trials: int = 6
    alpha: float = 0.05

    def __post_init__(self) -> None:
        if not MIN_TRIALS <= self.min_trials <= self.max_trials:
            raise ValueError(f"need {MIN_TRIALS} <= min_trials <= max_trials, got {self}")

    @property
    def looks(self) -> int:
        """The most looks a row can take (one at each trial count from min to max)."""
        return self.max_trials - self.min_trials + 1

    @property
    def level(self) -> float:
        """The confidence level of each look's interval: 1 - alpha / looks."""
        return 1 - self.alpha / self.looks

    def describe(self) -> str:
        return (f"{self.min_trials} to {self.max_trials} trials per service, one more while a row's interval "
                f"straddles a verdict boundary; each look a {100 * self.level:.2f}% {INTERVAL_METHOD} "
                f"(1 - {self.alpha:g} / {self.looks} looks, Bonferroni), so the stopped row's interval "
                f"covers its ratio with at least {100 * (1 - self.alpha):g}% confidence")


def trials_needed(key: str, exact: Collection[str]) -> int:
    """Trials of each service a claim needs: one for an exact count (`exact`), else MIN_TRIALS."""
    return 1 if key in exact else MIN_TRIALS


def claims_table(
    claims: pl.DataFrame,
    trials: Mapping[str, Mapping[str, Sequence[float]]],
    reasons: Mapping[str, str] | None = None,
    exact: frozenset[str] = frozenset(),
    lower_bounds: Mapping[str, Mapping[str, int]] | None = None,
    level: float = 0.95,
) -> pl.DataFrame:
    """One row per claim with the columns in `CLAIMS_COLUMNS` (plus `key`, `unit`, `trials`).

    `node_measured` and `rust_measured` are the arithmetic means of the trials (in the
    claim's unit); `measured_ratio` is the ratio of geometric means rust/node and
    `ci_low`/`ci_high` its interval, both from `ratio_interval` (`INTERVAL_METHOD`), so
    `measured_ratio` may differ slightly from rust_measured / node_measured.

    `trials[key]` = {"node": [...], "rust": [...]}: measured values in the claim's unit, one per
    repeated trial. A key without trials (or with fewer than MIN_TRIALS for either service)
    is "not measurable here", with `reasons[key]` (or a default) as the reason; a measured
    row may also carry a `reasons[key]` note (e.g. what stands in for the metric). Keys in
    `exact` are counts without sampling error (e.g. bytes on disk): one value each suffices
    and the interval is the point itself. `lower_bounds[key]` (service -> count) marks trials
    whose value is only a lower bound (`bounded_verdict`). `level`: each interval's confidence
    (a sequential study's looks use `SequentialPlan.level`); `decided` says whether a measured
    row's interval lies inside one verdict's region.
    """
    reasons = reasons or {}
    rows = []
    for claim in claims.iter_rows(named=True):
        key = claim["key"]
        measured = trials.get(key, {})
        node, rust = list(measured.get("node", [])), list(measured.get("rust", []))
        claim_ratio = claim["rust_value"] / claim["node_value"]
        row = {
            "key": key,
            "metric": claim["metric"],
            "unit": claim["unit"],
            "node_claim": float(claim["node_value"]),
            "rust_claim": float(claim["rust_value"]),
            "claim_ratio": claim_ratio,
            "trials": min(len(node), len(rust)),
        }
        needed = trials_needed(key, exact)
        if min(len(node), len(rust)) < needed:
            why = reasons.get(key) or f"fewer than {needed} trials of each service"
            rows.append(
                {
                    **row,
                    "node_measured": statistics.fmean(node) if node else None,
                    "rust_measured": statistics.fmean(rust) if rust else None,
                    "measured_ratio": None,
                    "ci_low": None,
                    "ci_high": None,
                    "verdict": NOT_MEASURABLE,
                    "reason": why,
                    "decided": False,
                }
            )
            continue
        point, low, high = ratio_interval(node, rust, level=level)
        label, why = verdict(claim_ratio, low, high)
        bounded = (lower_bounds or {}).get(key, {})
        # more trials narrow an interval; they cannot lift a bound set by the rig
        settled = decided(claim_ratio, low, high) or any(bounded.values())
        if any(bounded.values()):
            label, why = bounded_verdict(label, why, claim_ratio=claim_ratio, low=low, high=high,
                                         bounded=bounded, trials=row["trials"])
        note = reasons.get(key)
        rows.append(
            {
                **row,
                "node_measured": statistics.fmean(node),
                "rust_measured": statistics.fmean(rust),
                "measured_ratio": point,
                "ci_low": low,
                "ci_high": high,
                "verdict": label,
                "reason": f"{why}; {note}" if note else why,
                "decided": settled,
            }
        )
    return pl.DataFrame(rows).select("key", *CLAIMS_COLUMNS, "unit", "trials", "decided")
