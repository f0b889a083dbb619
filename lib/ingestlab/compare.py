"""Two studies' claims tables side by side: another run, another machine, another commit.

```
a_table, a = claims_of(Path("data/runs"), "20261130T151300Z-3fa9c1")    # a study id
b_table, b = claims_of(Path("data/runs"), "/mnt/other-machine/data/runs")  # a copied data/runs
frame = compare_claims(a_table, b_table)   # one row per claim key: A's and B's ratio, interval, verdict
header_table(a, b); header_warnings(a, b); agreement_line(frame)
list_studies(Path("data/runs"))            # what there is to compare
```

A side is the newest `claims` run (notebook 05's `study.record_claims`) of a study: its
summary.json holds one entry per claim key (`study.claims_numbers`), its meta.json the
environment, commit, profile and runtime it was made with. Nothing here measures or starts
anything: it reads run directories (`results`), so two studies made months apart, or on two
machines, compare as long as their run directories are at hand.

Comparing is not a test: the ratios of two machines are expected to differ somewhat. A row's
`agree` says whether the two verdicts are the same; `ratio_of_ratios` (B's ratio / A's) how
far the measured ratios moved, and its note says when the two 95% intervals do not overlap
(the move is larger than either study's own spread).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from ingestlab.results import Run, RunFormatError, find_runs

CLAIMS_EXPERIMENT = "claims"  # study.CLAIMS_EXPERIMENT (a sibling layer: not imported)
# The claims table of one study, as summary.json keeps it (`study.claims_numbers`), one row a key.
CLAIMS_SCHEMA: dict[str, Any] = {
    "key": pl.String,
    "metric": pl.String,
    "unit": pl.String,
    "verdict": pl.String,
    "claim_ratio": pl.Float64,
    "measured_ratio": pl.Float64,
    "ci_low": pl.Float64,
    "ci_high": pl.Float64,
    "node_measured": pl.Float64,
    "rust_measured": pl.Float64,
    "trials": pl.Int64,
    "reason": pl.String,
}
COMPARISON_COLUMNS = (
    "key", "metric", "unit", "claim_ratio",
    "a_ratio", "a_low", "a_high", "a_verdict",
    "b_ratio", "b_low", "b_high", "b_verdict",
    "agree", "ratio_of_ratios", "note",
)
# Two claim ratios closer than this (relative) are the same claim (the article's table as data).
SAME_CLAIM_REL = 1e-9
# How many studies an error message names at most.
NAMED_AT_MOST = 10


class StudyNotFound(LookupError):
    """No claims run answers to what was named; the message says what was looked for and what
    exists."""


@dataclass(frozen=True)
class ClaimsSource:
    """Where one side's claims table comes from: the claims run and what it was made with."""

    run_id: str
    path: Path
    found_by: str  # how the run was found, for the header ("newest claims run of study X in DIR")
    study_id: str | None
    profile: str | None
    runtime: str | None
    commit: str | None  # the git sha the claims run was made at
    dirty: bool  # the tree had uncommitted changes
    hostname: str | None
    cpu_model: str | None
    cpu_count: int | None
    created_utc: str | None

    @classmethod
    def of(cls, run: Run, found_by: str) -> ClaimsSource:
        meta = run.meta
        env, config = meta.get("environment", {}), meta.get("config", {})
        git = env.get("git") or {}
        return cls(run_id=run.run_id, path=run.path, found_by=found_by, study_id=config.get("study_id"),
                   profile=config.get("profile"), runtime=config.get("runtime"), commit=git.get("sha"),
                   dirty=bool(git.get("dirty")), hostname=env.get("hostname"), cpu_model=env.get("cpu_model"),
                   cpu_count=env.get("cpu_count"), created_utc=meta.get("created_utc"))

    @property
    def commit_text(self) -> str:
        """The commit, shortened to 10 hex digits, "(dirty)" after it when the tree was."""
        if not self.commit:
            return "unknown"
        return self.commit[:10] + (" (dirty)" if self.dirty else "")


# --- one side ------------------------------------------------------------------------------


def claims_frame(claims: Mapping[str, Mapping[str, Any]]) -> pl.DataFrame:
    """A claims summary's `claims` (key -> entry, `study.claims_numbers`) as a frame of
    `CLAIMS_SCHEMA`, in the summary's order; a field an entry lacks (a claim not measurable
    here has no ratio) is null."""
    rows = [{"key": key, **{k: v for k, v in entry.items() if k in CLAIMS_SCHEMA}}
            for key, entry in claims.items()]
    return pl.DataFrame(rows, schema=CLAIMS_SCHEMA)


def claims_of(runs_dir: Path | str, study: str | Path) -> tuple[pl.DataFrame, ClaimsSource]:
    """(the claims table, where it comes from) of `study`, which is one of:

    - a claims run id in `runs_dir`, or the path of a claims run directory: that run;
    - the id or path of another run of a study: the newest claims run of its study beside it;
    - the path of a runs directory (e.g. another machine's data/runs, copied): its newest
      claims run, of whichever study;
    - a study id: the newest finished claims run of that study in `runs_dir`.

    Raises `StudyNotFound` naming what was looked for and the studies that exist there.
    """
    run, found_by = _claims_run(Path(runs_dir), str(study))
    return claims_frame(run.summary.claims), ClaimsSource.of(run, found_by)


def _claims_run(runs_dir: Path, study: str) -> tuple[Run, str]:
    as_path = Path(study).expanduser()
    for candidate in (runs_dir / study, as_path):
        if (candidate / "meta.json").is_file():
            return _from_run_dir(candidate)
    if as_path.is_dir() and study not in (".", ""):
        return _newest(as_path, None)
    return _newest(runs_dir, study)


def _from_run_dir(path: Path) -> tuple[Run, str]:
    try:
        run = Run.open(path)
    except RunFormatError as exc:
        raise StudyNotFound(f"cannot read {path}: {exc}") from exc
    meta = run.meta
    if meta.get("experiment") == CLAIMS_EXPERIMENT:
        if not (run.path / "summary.json").exists():
            raise StudyNotFound(f"claims run {run.path} has no summary.json (still running, or failed)")
        return run, f"claims run {run.path}"
    study_id = meta.get("config", {}).get("study_id")
    if not study_id:
        raise StudyNotFound(f"{run.path} is a {meta.get('experiment')} run of no study: name a claims "
                            "run, a study id or a runs directory")
    return _newest(run.path.parent, study_id)


def _newest(runs_dir: Path, study_id: str | None) -> tuple[Run, str]:
    wanted = f"study {study_id}" if study_id else "any study"
    if not runs_dir.is_dir():
        raise StudyNotFound(f"no claims run of {wanted}: {study_id!r} is not a path, and the runs "
                            f"directory {runs_dir} does not exist (--runs-dir)")
    found = find_runs(runs_dir, CLAIMS_EXPERIMENT, study_id=study_id, limit=1)
    if found:
        return found[0], f"newest claims run of {wanted} in {runs_dir}"
    raise StudyNotFound(_missing(runs_dir, study_id))


def _missing(runs_dir: Path, study_id: str | None) -> str:
    studies = list_studies(runs_dir)
    looked = (f"no finished claims run of study {study_id!r} in {runs_dir} (nor is it a run id there, "
              "or a path)" if study_id else f"no finished claims run in {runs_dir}")
    mine = studies.filter(pl.col("study_id") == study_id) if study_id else studies.clear()
    if mine.height:
        row = mine.row(0, named=True)
        looked += (f"; the study has {row['runs']} run(s) ({row['experiments']}) but no claims run: "
                   f"notebook 05 records it (`ingestlab study --study-id {study_id}`)")
    if not studies.height:
        return f"{looked}; {runs_dir} holds no study's runs"
    named = [f"{r['study_id']} ({r['profile']}, {'claims' if r['claims_run'] else 'no claims run'})"
             for r in studies.head(NAMED_AT_MOST).iter_rows(named=True)]
    more = f" and {studies.height - NAMED_AT_MOST} more" if studies.height > NAMED_AT_MOST else ""
    return f"{looked}; studies there, newest first: {', '.join(named)}{more} (`ingestlab studies`)"


# --- the studies of a runs directory --------------------------------------------------------

STUDIES_SCHEMA: dict[str, Any] = {
    "study_id": pl.String,
    "profile": pl.String,
    "created_utc": pl.String,
    "commit": pl.String,
    "cpu_model": pl.String,
    "hostname": pl.String,
    "runs": pl.Int64,
    "experiments": pl.String,
    "claims_run": pl.String,
}


def list_studies(runs_dir: Path | str) -> pl.DataFrame:
    """One row per study with runs in `runs_dir`, newest first (`STUDIES_SCHEMA`): its id, its
    profile(s), when its first run was made, the commit(s) (10 hex digits), CPU model(s) and
    host(s) its runs were made with, how many runs and of which experiments, and its newest
    finished claims run (null: none, nothing to compare yet). Runs of no study, and
    directories that are not runs of this schema version, are left out."""
    runs_dir = Path(runs_dir)
    studies: dict[str, dict[str, Any]] = {}
    paths = sorted(p for p in runs_dir.iterdir() if (p / "meta.json").is_file()) if runs_dir.is_dir() else []
    for path in paths:  # run ids sort in creation order
        try:
            meta = Run.open(path).meta
        except RunFormatError:
            continue
        config, env = meta.get("config", {}), meta.get("environment", {})
        study_id = config.get("study_id")
        if not study_id:
            continue
        seen = studies.setdefault(study_id, {"created_utc": meta.get("created_utc"), "runs": 0,
                                             **{k: {} for k in ("profile", "commit", "cpu_model", "hostname",
                                                                "experiments")}})
        seen["runs"] += 1
        sha = (env.get("git") or {}).get("sha")
        for field, value in (("profile", config.get("profile")), ("commit", sha and sha[:10]),
                             ("cpu_model", env.get("cpu_model")), ("hostname", env.get("hostname")),
                             ("experiments", meta.get("experiment"))):
            if value:
                seen[field][value] = None  # an ordered set
    claims = {run.meta["config"].get("study_id"): run.run_id
              for run in reversed(find_runs(runs_dir, CLAIMS_EXPERIMENT))} if runs_dir.is_dir() else {}
    rows = [
        {"study_id": study_id, "created_utc": seen["created_utc"], "runs": seen["runs"],
         **{k: ", ".join(seen[k]) for k in ("profile", "commit", "cpu_model", "hostname", "experiments")},
         "claims_run": claims.get(study_id)}
        for study_id, seen in studies.items()
    ]
    return pl.DataFrame(rows, schema=STUDIES_SCHEMA).sort("created_utc", "study_id", descending=True,
                                                          nulls_last=True)


# --- two sides -----------------------------------------------------------------------------


def _side(table: pl.DataFrame, prefix: str) -> pl.DataFrame:
    return table.select(
        "key",
        pl.int_range(pl.len()).alias(f"{prefix}_order"),
        pl.col("metric").alias(f"{prefix}_metric"),
        pl.col("unit").alias(f"{prefix}_unit"),
        pl.col("claim_ratio").alias(f"{prefix}_claim"),
        pl.col("measured_ratio").alias(f"{prefix}_ratio"),
        pl.col("ci_low").alias(f"{prefix}_low"),
        pl.col("ci_high").alias(f"{prefix}_high"),
        pl.col("verdict").alias(f"{prefix}_verdict"),
    )


def compare_claims(a: pl.DataFrame, b: pl.DataFrame) -> pl.DataFrame:
    """One row per claim key of either table (A's order, then keys only B has), with the
    columns of `COMPARISON_COLUMNS`: the claim (metric, unit, the article's ratio rust/node),
    each side's measured ratio rust/node and its 95% interval and verdict, `agree` (both
    sides have the key and the same verdict), `ratio_of_ratios` (B's ratio / A's: 1.0 is no
    change) and `note`: a key one side lacks, two intervals that do not overlap, and a claim
    ratio the two sides disagree on (the article's table changed between them).

    `a` and `b` are claims tables as `claims_of` returns them (`CLAIMS_SCHEMA`)."""
    both = _side(a, "a").join(_side(b, "b"), on="key", how="full", coalesce=True)
    in_a, in_b = pl.col("a_order").is_not_null(), pl.col("b_order").is_not_null()
    a_low, a_high, b_low, b_high = (pl.col(c) for c in ("a_low", "a_high", "b_low", "b_high"))
    claims_differ = (pl.col("a_claim") - pl.col("b_claim")).abs() > SAME_CLAIM_REL * pl.col("a_claim").abs()
    notes = [
        pl.when(~in_a).then(pl.lit("no row in A")),
        pl.when(~in_b).then(pl.lit("no row in B")),
        pl.when(b_low > a_high).then(pl.lit("intervals do not overlap: B's ratio is higher")),
        pl.when(b_high < a_low).then(pl.lit("intervals do not overlap: B's ratio is lower")),
        pl.when(claims_differ).then(pl.format("claim ratio differs: A {}, B {}", "a_claim", "b_claim")),
    ]
    return (
        both.sort("a_order", "b_order", nulls_last=True)
        .with_columns(
            pl.coalesce("a_metric", "b_metric").alias("metric"),
            pl.coalesce("a_unit", "b_unit").alias("unit"),
            pl.coalesce("a_claim", "b_claim").alias("claim_ratio"),
            (in_a & in_b & (pl.col("a_verdict") == pl.col("b_verdict"))).fill_null(False).alias("agree"),
            pl.when(pl.col("a_ratio") > 0).then(pl.col("b_ratio") / pl.col("a_ratio"))
            .alias("ratio_of_ratios"),
            pl.concat_str(notes, separator="; ", ignore_nulls=True).alias("note"),
        )
        .select(COMPARISON_COLUMNS)
    )


def agreement_line(frame: pl.DataFrame) -> str:
    """"N of M verdicts agree": M counts every claim key of either side (a key one side
    lacks does not agree)."""
    return f"{int(frame['agree'].sum())} of {frame.height} verdicts agree"


def header_table(a: ClaimsSource, b: ClaimsSource) -> pl.DataFrame:
    """The two sides' provenance as a frame of strings: one row per field (study, claims run,
    found as, profile, runtime, commit, CPU, host, claims made), columns `""`, `A`, `B`."""

    def fields(side: ClaimsSource) -> dict[str, str]:
        cpu = f"{side.cpu_model or 'unknown'} ({side.cpu_count or '?'} CPUs)"
        return {"study": side.study_id or "(none)", "claims run": side.run_id, "found as": side.found_by,
                "profile": side.profile or "unknown", "runtime": side.runtime or "unknown",
                "commit": side.commit_text, "CPU": cpu, "host": side.hostname or "unknown",
                "claims made (UTC)": side.created_utc or "unknown"}

    left, right = fields(a), fields(b)
    return pl.DataFrame({"": list(left), "A": list(left.values()), "B": list(right.values())})


def header_warnings(a: ClaimsSource, b: ClaimsSource) -> list[str]:
    """What a reader must know before reading the rows: the same claims run on both sides; a
    different profile (a quick and a full study are not the same experiment); a different
    runtime; another machine (allowed: stated)."""
    said = []
    if a.path == b.path:
        said.append(f"A and B are the same claims run ({a.run_id})")
    if a.profile != b.profile:
        said.append(f"the profiles differ (A {a.profile}, B {b.profile}): a quick and a full study are not "
                    "the same experiment (fewer trials, shorter steps), a verdict may differ for that alone")
    if a.runtime != b.runtime:
        said.append(f"the runtimes differ (A {a.runtime}, B {b.runtime}): containers and native processes")
    machine = [f"{name} {x} vs {y}" for name, x, y in (("host", a.hostname, b.hostname),
                                                       ("CPU", a.cpu_model, b.cpu_model),
                                                       ("CPUs", a.cpu_count, b.cpu_count)) if x != y]
    if machine:
        said.append(f"B was measured on another machine ({'; '.join(machine)}): allowed, the ratios "
                    "compare; absolute numbers do not")
    return said


def _number(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "-"
    return f"{value:,.0f}" if abs(value) >= 1_000 else f"{value:.3g}"


def _side_text(row: Mapping[str, Any], side: str) -> dict[str, str]:
    ratio, low, high = (row[f"{side.lower()}_{k}"] for k in ("ratio", "low", "high"))
    text = "-" if ratio is None else f"{_number(ratio)} [{_number(low)}, {_number(high)}]"
    return {f"{side} rust/node [95%]": text, f"{side} verdict": row[f"{side.lower()}_verdict"] or "-"}


def comparison_view(frame: pl.DataFrame) -> pl.DataFrame:
    """`compare_claims`' frame as strings to print: claim (key), unit, article (the claimed
    ratio rust/node), A and B (ratio [95% interval]) and their verdicts, agree (yes/no),
    B/A and the note; numbers to 3 significant digits."""
    rows = [
        {"claim": r["key"], "unit": r["unit"], "article": _number(r["claim_ratio"]),
         **_side_text(r, "A"), **_side_text(r, "B"),
         "agree": "yes" if r["agree"] else "no", "B/A": _number(r["ratio_of_ratios"]), "note": r["note"]}
        for r in frame.iter_rows(named=True)
    ]
    columns = ["claim", "unit", "article", "A rust/node [95%]", "A verdict", "B rust/node [95%]", "B verdict",
               "agree", "B/A", "note"]
    return pl.DataFrame(rows, schema=dict.fromkeys(columns, pl.String))
