"""The claims table from repeated runs: make sure enough runs exist, judge every claim, and
keep the result as a run of its own.

```
config = StudyConfig.for_profile("quick", runs_dir=Path("data/runs"), study_id=new_study_id())
runs = ensure_evidence(config, trials=3)            # ceiling x3, soak x3, startup x1, cpu-cores x1
table, used = claims_report(config, trials=3)       # evidence.collect_trials + claims_table
write_claims_csv(table, Path("reports/claims.csv"))
claims = record_claims(config, table, used)         # data/runs/<id>-claims-<x>/
```

The claims run (`Run.create(config, "claims")`) is the notebook's own result: its
`claims.parquet` is the table, its `summary.json` holds `claims` (`claims_numbers`: one
entry per row of data/article_claims.csv, measured or "not measurable here" with the
reason), the ids of the runs the table was computed from, and as `warnings` every warning
those runs found about themselves. It is a derived run: it measures nothing, it records
which measurements a verdict rests on, so a report shows where each number came from.

One study, one evidence set: with `config.study_id` set (`ingestlab study` sets it), runs
are found and made for that study only (`results.find_runs(..., study_id=...)`), so a run
another command made (`ingestlab run startup --service rust`) never stands in for the
study's. Without it, the newest runs of the profile count, whichever study made them.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from ingestlab import evidence, inputs
from ingestlab.analysis.claims import (
    CLAIMS_COLUMNS,
    NOT_MEASURABLE,
    SequentialPlan,
    claims_table,
    load_claims,
    trials_needed,
)
from ingestlab.config import StudyConfig
from ingestlab.results import Run, find_runs
from ingestlab.summaries import ClaimsSummary

CLAIMS_EXPERIMENT = "claims"
# What the claims table needs: repeated ceiling and soak runs (one trial each), one startup
# run (each of its cold starts is a trial; its footprint is an exact count) and one cpu-cores
# run (its trials inside; config.CpuCoresConfig.trials). Made in this order: ceiling before
# soak and cpu-cores (their rate comes from the study's first ceiling run).
EVIDENCE: dict[str, str] = {"ceiling": "trials", "soak": "trials", "startup": "one", "cpu-cores": "one"}


# Runs made at most beyond `count` while some of them may feed no row (a stall, a saturated
# generator: `evidence.left_out_because`), before the study goes on with fewer trials.
MAX_EXTRA_RUNS = 2


def ensure_runs(config: StudyConfig, experiment: str, count: int, *, measure: bool = True) -> list[Run]:
    """The `count` newest finished runs of `experiment` of `config`'s profile that measured
    both services (`evidence.SERVICES`), may feed a row (`evidence.usable_runs`) and, if
    `config.study_id` is set, belong to that study; newest first. Runs the experiment (with
    its inputs resolved, `inputs.run_experiment`, for both services) until that many exist,
    making at most `MAX_EXTRA_RUNS` more for those left out. With `measure=False` nothing is
    run: whatever exists is returned, possibly fewer than `count`.

    Runs are reused: a study that already made two soak runs makes only the missing ones
    (without a study id, runs of any study count). Each new run takes the experiment's full
    time (a full soak: minutes per service).
    """
    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}")

    def found() -> list[Run]:
        runs = find_runs(config.runs_dir, experiment, profile=config.profile, services=evidence.SERVICES,
                         study_id=config.study_id)
        return evidence.usable_runs(runs)[0][:count]

    runs = found()
    both = config.replace(services=tuple(evidence.SERVICES))  # a claim compares the two
    made, most = 0, count - len(runs) + MAX_EXTRA_RUNS
    while measure and len(runs) < count and made < most:
        inputs.run_experiment(both, experiment)
        made += 1
        runs = found()
    return runs


def ensure_evidence(config: StudyConfig, *, trials: int, measure: bool = True) -> dict[str, list[Run]]:
    """The runs the claims table reads (see `EVIDENCE`, in its order), made if missing and
    `measure`: `trials` ceiling and soak runs and one startup and one cpu-cores run, per
    experiment newest first, of `config.study_id`'s study when it is set (see `ensure_runs`)."""
    return {
        experiment: ensure_runs(config, experiment, trials if need == "trials" else 1, measure=measure)
        for experiment, need in EVIDENCE.items()
    }


def runs_overview(runs: Mapping[str, Sequence[Run]] | Sequence[Run]) -> pl.DataFrame:
    """One row per run: run_id, experiment, profile, services, created_utc, warnings (their
    count) and warning_text (all of them, joined)."""
    flat = [run for group in runs.values() for run in group] if isinstance(runs, Mapping) else list(runs)
    rows = []
    for run in flat:
        meta, warnings = run.meta, run.warnings
        rows.append(
            {
                "run_id": run.run_id,
                "experiment": meta["experiment"],
                "profile": meta["config"]["profile"],
                "services": ", ".join(meta["config"]["services"]),
                "created_utc": meta["created_utc"],
                "warnings": len(warnings),
                "warning_text": "; ".join(warnings),
            }
        )
    schema = {
        "run_id": pl.String,
        "experiment": pl.String,
        "profile": pl.String,
        "services": pl.String,
        "created_utc": pl.String,
        "warnings": pl.Int64,
        "warning_text": pl.String,
    }
    return pl.DataFrame(rows, schema=schema)


@dataclass(frozen=True)
class ClaimsReport:
    """What `claims_report` computed: the table, the ids of the runs it rests on, and the
    study whose runs those are (`None`: no study given, the newest runs of the profile).

    Unpacks as `table, used = claims_report(...)`."""

    table: pl.DataFrame
    used: list[str]
    study_id: str | None

    def __iter__(self) -> Iterator[Any]:
        return iter((self.table, self.used))


def claims_report(config: StudyConfig, trials: int, *, level: float = 0.95) -> ClaimsReport:
    """The claims table, the ids of the runs it was computed from, and the study id used.

    `evidence.collect_trials(config, ...)` over `config.runs_dir` (the `trials` newest soak and
    ceiling runs and the startup and cpu-cores runs, pooled, of the profile that measured both
    services, of `config.study_id`'s study when it is set) and `analysis.claims.claims_table` with
    `evidence.EXACT`. One row per row of data/article_claims.csv, with `key`, the columns
    of `analysis.claims.CLAIMS_COLUMNS`, `unit`, `trials` and `decided`; intervals at `level`.
    """
    found, notes, used, bounded = evidence.collect_trials(config, trials=trials)
    usable, dropped = usable_trials(found)
    claims = load_claims()
    reasons = explain_reasons(claims["key"].to_list(), usable, notes, dropped=dropped)
    table = claims_table(claims, usable, reasons, exact=evidence.EXACT, lower_bounds=bounded, level=level)
    return ClaimsReport(table=table, used=used, study_id=config.study_id)


def sequential_experiments(config: StudyConfig) -> frozenset[str]:
    """The experiments whose extra runs add trials to the rows they feed (`evidence.FED_BY`):
    with a study id every one (the study's startup and cpu-cores runs are pooled), without one
    those of one trial per run (only the newest startup or cpu-cores run is read then)."""
    fed = frozenset(evidence.FED_BY.values())
    return fed if config.study_id is not None else fed - evidence.ONE_RUN


@dataclass(frozen=True)
class SequentialClaims:
    """What `sequential_claims` found: the table (each row as it stood at the look that
    decided it, or at the last look), the runs it rests on, and one row per look: the trials
    of each service then, and the rows still undecided."""

    table: pl.DataFrame
    used: list[str]
    looks: pl.DataFrame
    plan: SequentialPlan


def sequential_claims(config: StudyConfig, plan: SequentialPlan, *, measure: bool = True) -> SequentialClaims:
    """The claims table with trials where the verdict is in doubt (`analysis.claims`,
    `SequentialPlan`): `plan.min_trials` of every experiment (`ensure_evidence`), then, while
    a row whose runs can add trials (`sequential_experiments`) is undecided and the cap allows,
    one more run of the experiments that feed the undecided rows (a startup or cpu-cores run
    adds all its cold starts or trials at once). A row decided at a look is kept
    as it stood then (more trials for its neighbours do not re-judge it). With `measure` False
    nothing is run: the looks stop at what exists."""
    trials = plan.min_trials
    evidence_runs = ensure_evidence(config, trials=trials, measure=measure)
    runs_made = {experiment: len(runs) for experiment, runs in evidence_runs.items()}
    sequential = sequential_experiments(config)
    kept: dict[str, dict[str, Any]] = {}
    used: set[str] = set()
    looks = []
    while True:
        report = claims_report(config, trials, level=plan.level)
        used |= set(report.used)
        open_rows = []
        for row in report.table.iter_rows(named=True):
            if row["key"] in kept:
                continue
            if (row["decided"] or row["key"] in evidence.EXACT
                    or evidence.FED_BY.get(row["key"]) not in sequential):
                kept[row["key"]] = row
            else:
                open_rows.append(row)
        looks.append({"look": len(looks) + 1, "trials": trials,
                      "undecided": ", ".join(row["key"] for row in open_rows)})
        if not open_rows or trials >= plan.max_trials or not measure:
            kept |= {row["key"]: row for row in open_rows}
            break
        trials += 1
        for experiment in sorted({evidence.FED_BY[row["key"]] for row in open_rows}):
            runs_made[experiment] += 1
            ensure_runs(config, experiment, runs_made[experiment])
    table = pl.DataFrame([kept[key] for key in report.table["key"]], schema=report.table.schema)
    return SequentialClaims(table=table, used=sorted(used), looks=pl.DataFrame(looks), plan=plan)


def usable_trials(found: evidence.Trials) -> tuple[evidence.Trials, dict[str, dict[str, int]]]:
    """(the trials with every value that cannot enter a ratio left out, how many were left
    out per key and service).

    Every claim is a positive quantity (MB, ms, s, req/s), so a value <= 0 or not finite is
    not a measurement of it: a ceiling of 0 req/s means no step of the ramp passed (e.g. the
    load generator saturated on the first step), not a service that handles nothing. Left
    in, one such trial makes the ratio of means infinite, or zero, or divides by zero.
    """
    usable: evidence.Trials = {}
    dropped: dict[str, dict[str, int]] = {}
    for key, services in found.items():
        for service, values in services.items():
            kept = [v for v in values if math.isfinite(v) and v > 0]
            usable.setdefault(key, {})[service] = kept
            if len(kept) < len(values):
                dropped.setdefault(key, {})[service] = len(values) - len(kept)
    return usable, dropped


def explain_reasons(
    keys: Sequence[str],
    found: evidence.Trials,
    notes: Mapping[str, str],
    *,
    exact: frozenset[str] = evidence.EXACT,
    dropped: Mapping[str, Mapping[str, int]] | None = None,
) -> dict[str, str]:
    """The reason given for each claim key: `notes[key]` where the key has enough trials
    (`claims_table` appends it to the verdict's reason); where it has not, why not: the
    reason of `evidence.NOT_MEASURABLE` (when nothing was found), or how many trials of each
    service were found against the number needed, followed by the note. `dropped` (key -> service -> count,
    from `usable_trials`) adds how many trials were left out as not positive.

    `claims_table` alone would give a key with a note but too few trials its note as the
    reason ("RSS mean over the soak ..."), which hides that the runs are missing.
    """
    reasons = {}
    for key in keys:
        measured = found.get(key, {})
        node, rust = len(measured.get("node", [])), len(measured.get("rust", []))
        needed = trials_needed(key, exact)
        note = notes.get(key)
        left_out = (dropped or {}).get(key, {})
        if left_out:
            counts = ", ".join(f"{n} of {service}" for service, n in sorted(left_out.items()))
            note = "; ".join(filter(None, [f"trials with no positive value left out ({counts})", note]))
        if min(node, rust) >= needed:
            if note:
                reasons[key] = note
        elif key in evidence.NOT_MEASURABLE and not (node or rust or left_out):
            reasons[key] = evidence.NOT_MEASURABLE[key]
        else:
            why = f"{node} trial(s) of node and {rust} of rust found, {needed} of each needed"
            reasons[key] = f"{why} ({note})" if note else why
    return reasons


def _number(value: Any) -> float | None:
    """A JSON-safe float: None for null, NaN or infinity."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def claims_numbers(table: pl.DataFrame) -> dict[str, dict[str, Any]]:
    """One entry per claim (row of `table`), keyed by claim key, JSON-ready.

    Measured: metric, unit, verdict, claim_ratio, measured_ratio, ci_low, ci_high,
    node_measured, rust_measured, trials, reason. Otherwise: metric, unit, verdict
    "not measurable here" and the reason, plus whatever was measured (a claim with too
    few trials may still have a mean)."""
    numbers: dict[str, dict[str, Any]] = {}
    for row in table.iter_rows(named=True):
        entry: dict[str, Any] = {
            "metric": row["metric"],
            "unit": row["unit"],
            "verdict": row["verdict"],
            "claim_ratio": _number(row["claim_ratio"]),
        }
        if row["verdict"] != NOT_MEASURABLE:
            entry |= {k: _number(row[k]) for k in ("measured_ratio", "ci_low", "ci_high")}
        entry |= {
            "node_measured": _number(row["node_measured"]),
            "rust_measured": _number(row["rust_measured"]),
            "trials": int(row["trials"]),
            "reason": row["reason"],
        }
        numbers[row["key"]] = entry
    return numbers


def missing_claims(numbers: Mapping[str, Mapping[str, Any]], claims: pl.DataFrame | None = None) -> list[str]:
    """Claim keys of data/article_claims.csv (or `claims`) with neither a measured ratio and
    a verdict nor "not measurable here" and a reason in `numbers`: what a report would
    silently leave out. Empty when every claim is accounted for."""
    keys = (claims if claims is not None else load_claims())["key"].to_list()
    missing = []
    for key in keys:
        entry = numbers.get(key) or {}
        measured = entry.get("measured_ratio") is not None and bool(entry.get("verdict"))
        explained = entry.get("verdict") == NOT_MEASURABLE and bool(entry.get("reason"))
        if not (measured or explained):
            missing.append(key)
    return missing


def write_claims_csv(table: pl.DataFrame, path: Path | str) -> Path:
    """Write the claims table as CSV (`key`, CLAIMS_COLUMNS, `unit`, `trials`); returns the
    path. The directory is created if needed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    columns = [c for c in ("key", *CLAIMS_COLUMNS, "unit", "trials") if c in table.columns]
    table.select(columns).write_csv(path)
    return path


def record_claims(config: StudyConfig, table: pl.DataFrame, used: Sequence[str]) -> Run:
    """Keep the claims table as a run of its own (see the module docstring): a new
    `claims` run in `config.runs_dir` with claims.parquet and summary.json: `claims`
    (`claims_numbers(table)`), `runs_used` (`used`, run ids) and `warnings`: those of the
    runs used, each prefixed by its run id, and one per claim of data/article_claims.csv
    the table leaves unaccounted for (`missing_claims`)."""
    run = Run.create(config, CLAIMS_EXPERIMENT)
    run.write_frame("claims", table)
    numbers = claims_numbers(table)
    found = []
    for run_id in used:
        path = config.runs_dir / run_id
        warned = Run.open(path).warnings if (path / "meta.json").exists() else []
        found += [f"{run_id}: {w}" for w in warned]
    found += [f"claim {key!r} has no measurement and no reason" for key in missing_claims(numbers)]
    run.write_summary(ClaimsSummary(claims=numbers, runs_used=list(used)), warnings_found=found)
    return run
