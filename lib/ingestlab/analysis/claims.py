"""The article's table beside this machine's measurements, as Rust/Node ratios with verdicts.

Absolute numbers from the article's c6g.large cannot be compared with this machine's, so
every row is judged on the ratio rust/node: the claim's ratio against the measured one,
whose 95% confidence interval comes from repeated trials (percentile bootstrap of the ratio
of means, resampling each service's trials independently; seeded, so a report rebuilds the
same).

Verdicts:
- "reproduced": the interval lies on the claimed side of 1 and overlaps the band
  [claim / TOLERANCE, claim x TOLERANCE];
- "direction only": on the claimed side of 1, but the size is off by more than TOLERANCE;
- "not reproduced": the interval includes 1 or lies on the other side;
- "not measurable here": no measurement (the reason says why).
"""

from __future__ import annotations

import random
import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path

import polars as pl

# How far the measured ratio may be from the claimed one and still count as reproduced.
TOLERANCE = 2.0
BOOTSTRAP_SAMPLES = 2_000
MIN_TRIALS = 3
CLAIMS_CSV = Path(__file__).resolve().parents[3] / "data" / "article_claims.csv"
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


def ratio_interval(
    node: Sequence[float], rust: Sequence[float], *, level: float = 0.95, seed: int = 0
) -> tuple[float, float, float]:
    """(ratio of means rust/node, low, high) with a percentile-bootstrap interval."""
    if not node or not rust:
        raise ValueError("both services need at least one trial")
    point = statistics.fmean(rust) / statistics.fmean(node)
    rng = random.Random(seed)
    ratios = sorted(
        statistics.fmean(rng.choices(rust, k=len(rust))) / statistics.fmean(rng.choices(node, k=len(node)))
        for _ in range(BOOTSTRAP_SAMPLES)
    )
    tail = (1 - level) / 2
    return point, ratios[int(tail * (len(ratios) - 1))], ratios[int((1 - tail) * (len(ratios) - 1))]


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


def claims_table(
    claims: pl.DataFrame,
    trials: Mapping[str, Mapping[str, Sequence[float]]],
    reasons: Mapping[str, str] | None = None,
    exact: frozenset[str] = frozenset(),
) -> pl.DataFrame:
    """One row per claim with the columns in `CLAIMS_COLUMNS` (plus `key`, `unit`, `trials`).

    `trials[key]` = {"node": [...], "rust": [...]}: measured values in the claim's unit, one per
    repeated trial. A key without trials (or with fewer than MIN_TRIALS for either service)
    is "not measurable here", with `reasons[key]` (or a default) as the reason; a measured
    row may also carry a `reasons[key]` note (e.g. what stands in for the metric). Keys in
    `exact` are counts without sampling error (e.g. bytes on disk): one value each suffices
    and the interval is the point itself.
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
        needed = 1 if key in exact else MIN_TRIALS
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
                    "verdict": "not measurable here",
                    "reason": why,
                }
            )
            continue
        point, low, high = ratio_interval(node, rust)
        label, why = verdict(claim_ratio, low, high)
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
            }
        )
    return pl.DataFrame(rows).select("key", *CLAIMS_COLUMNS, "unit", "trials")
