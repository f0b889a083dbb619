"""compare.py and `ingestlab compare` / `ingestlab studies` on claims runs written by hand:
agreeing and disagreeing verdicts, a key one side lacks, another machine's runs directory,
a study with no claims run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import pytest
from factories import summary

from ingestlab import cli, compare
from ingestlab.config import StudyConfig
from ingestlab.results import Run

REPRODUCED, NOT_REPRODUCED = "reproduced", "not reproduced"


def _entry(ratio: float | None, low: float | None, high: float | None, verdict: str, *,
           claim: float = 0.05) -> dict[str, Any]:
    """One claim as `study.claims_numbers` writes it (a ratio rust/node and its interval)."""
    entry: dict[str, Any] = {"metric": "Average Memory Usage", "unit": "MB", "verdict": verdict,
                             "claim_ratio": claim, "node_measured": 100.0, "rust_measured": 10.0,
                             "trials": 3, "reason": "why"}
    if ratio is not None:
        entry |= {"measured_ratio": ratio, "ci_low": low, "ci_high": high}
    return entry


def _claims_run(runs_dir: Path, study_id: str | None, claims: dict[str, dict[str, Any]], *,
                profile: str = "quick", environment: dict[str, Any] | None = None) -> Run:
    config = StudyConfig.for_profile(profile, runs_dir=runs_dir, study_id=study_id)
    run = Run.create(config, "claims")
    run.write_summary(summary("claims", claims=claims, runs_used=[]))
    if environment:
        run.update_meta(environment={**run.meta["environment"], **environment})
    return run


def _other_run(runs_dir: Path, study_id: str, experiment: str = "soak") -> Run:
    run = Run.create(StudyConfig.for_profile("quick", runs_dir=runs_dir, study_id=study_id), experiment)
    run.write_summary(summary(experiment, {"node": {}, "rust": {}}))
    return run


def _compare(runs: Path) -> pl.DataFrame:
    (a, _), (b, _) = compare.claims_of(runs, "study-a"), compare.claims_of(runs, "study-b")
    return compare.compare_claims(a, b)


BASE = {
    "memory_sustained_mb": _entry(0.1, 0.08, 0.12, REPRODUCED),
    "p99_latency_ms": _entry(0.9, 0.7, 1.1, NOT_REPRODUCED, claim=0.048),
}


# p99 reproduced in B, its interval below A's
LOWER = {"p99_latency_ms": _entry(0.05, 0.04, 0.06, REPRODUCED, claim=0.048)}


@pytest.fixture
def runs(tmp_path: Path) -> Path:
    return tmp_path / "runs"


def test_same_verdicts_agree(runs: Path) -> None:
    _claims_run(runs, "study-a", BASE)
    _claims_run(runs, "study-b", BASE | {"memory_sustained_mb": _entry(0.11, 0.09, 0.13, REPRODUCED)})
    a_table, a = compare.claims_of(runs, "study-a")
    b_table, b = compare.claims_of(runs, "study-b")
    assert a.study_id == "study-a" and b.study_id == "study-b" and a.profile == "quick"
    assert a_table.schema == pl.Schema(compare.CLAIMS_SCHEMA)
    frame = compare.compare_claims(a_table, b_table)
    assert frame.columns == list(compare.COMPARISON_COLUMNS)
    assert frame["key"].to_list() == ["memory_sustained_mb", "p99_latency_ms"]
    assert frame["agree"].to_list() == [True, True]
    assert frame["ratio_of_ratios"].to_list() == pytest.approx([1.1, 1.0])
    assert frame["note"].to_list() == ["", ""]  # the intervals overlap
    assert compare.agreement_line(frame) == "2 of 2 verdicts agree"
    assert compare.header_warnings(a, b) == []  # same machine, profile and runtime


def test_a_disagreeing_verdict_and_intervals_apart(runs: Path) -> None:
    _claims_run(runs, "study-a", BASE)
    _claims_run(runs, "study-b", BASE | LOWER)
    frame = _compare(runs)
    row = frame.row(1, named=True)
    assert (row["a_verdict"], row["b_verdict"], row["agree"]) == (NOT_REPRODUCED, REPRODUCED, False)
    assert row["ratio_of_ratios"] == pytest.approx(0.05 / 0.9)
    assert row["note"] == "intervals do not overlap: B's ratio is lower"
    assert compare.agreement_line(frame) == "1 of 2 verdicts agree"


def test_a_key_one_side_lacks_is_a_row_that_does_not_agree(runs: Path) -> None:
    _claims_run(runs, "study-a", BASE)
    only_b = {"cold_start_s": _entry(0.02, 0.015, 0.025, REPRODUCED, claim=0.057)}
    _claims_run(runs, "study-b", {"memory_sustained_mb": BASE["memory_sustained_mb"]} | only_b)
    frame = _compare(runs)
    # A's order, then what only B has
    assert frame["key"].to_list() == ["memory_sustained_mb", "p99_latency_ms", "cold_start_s"]
    missing_in_b, only_in_b = frame.row(1, named=True), frame.row(2, named=True)
    assert missing_in_b["b_verdict"] is None and missing_in_b["b_ratio"] is None
    assert missing_in_b["agree"] is False and missing_in_b["note"] == "no row in B"
    assert missing_in_b["claim_ratio"] == pytest.approx(0.048) and missing_in_b["ratio_of_ratios"] is None
    assert only_in_b["note"] == "no row in A" and only_in_b["claim_ratio"] == pytest.approx(0.057)
    assert compare.agreement_line(frame) == "1 of 3 verdicts agree"


def test_not_measurable_on_both_sides_agrees_without_a_ratio(runs: Path) -> None:
    gone = {"image_size_mb": _entry(None, None, None, "not measurable here", claim=0.13)}
    _claims_run(runs, "study-a", gone)
    _claims_run(runs, "study-b", gone)
    frame = _compare(runs)
    assert frame.select("a_ratio", "b_ratio", "ratio_of_ratios", "agree").row(0) == (None, None, None, True)


def test_another_machines_runs_dir_and_its_differences_are_stated(tmp_path: Path, runs: Path) -> None:
    _claims_run(runs, "study-a", BASE, profile="full")
    other = tmp_path / "copied" / "data" / "runs"
    _claims_run(other, "older-study", BASE)
    newest = _claims_run(other, "study-b", BASE, environment={"hostname": "epyc-box",
                                                              "cpu_model": "Imaginary CPU 9000",
                                                              "git": {"sha": "f" * 40, "dirty": True}})
    a_table, a = compare.claims_of(runs, "study-a")
    for named in (str(other), newest.run_id, str(newest.path)):  # a runs dir: its newest claims run
        b_table, b = compare.claims_of(other, named)
        assert b.run_id == newest.run_id and b.hostname == "epyc-box"
    assert compare.claims_of(other, "older-study")[1].study_id == "older-study"
    said = compare.header_warnings(a, b)
    assert any(s.startswith("the profiles differ (A full, B quick)") for s in said)
    machine = [s for s in said if "another machine" in s]
    assert machine and "epyc-box" in machine[0] and "Imaginary CPU 9000" in machine[0]
    header = compare.header_table(a, b)
    assert header.columns == ["", "A", "B"]
    fields = dict(zip(header[""], header["B"], strict=True))
    assert fields["commit"] == "ffffffffff (dirty)" and fields["host"] == "epyc-box"
    assert fields["study"] == "study-b" and fields["profile"] == "quick"


def test_a_run_of_the_study_leads_to_its_claims_run(runs: Path) -> None:
    soak = _other_run(runs, "study-a")
    claims = _claims_run(runs, "study-a", BASE)
    _claims_run(runs, "study-b", BASE)  # newer, another study: not this one's
    assert compare.claims_of(runs, soak.run_id)[1].run_id == claims.run_id
    assert compare.claims_of(runs, claims.run_id)[1].run_id == claims.run_id


def test_a_missing_study_names_what_was_looked_for_and_what_exists(tmp_path: Path, runs: Path) -> None:
    _claims_run(runs, "study-a", BASE)
    _other_run(runs, "study-b")  # measured, but notebook 05 never recorded its claims
    with pytest.raises(compare.StudyNotFound) as caught:
        compare.claims_of(runs, "study-b")
    text = str(caught.value)
    assert "no finished claims run of study 'study-b'" in text and str(runs) in text
    assert "the study has 1 run(s) (soak) but no claims run" in text
    assert "study-a (quick, claims)" in text and "study-b (quick, no claims run)" in text
    with pytest.raises(compare.StudyNotFound, match="no-such-study"):
        compare.claims_of(runs, "no-such-study")
    (tmp_path / "empty").mkdir()
    with pytest.raises(compare.StudyNotFound, match="holds no study's runs"):
        compare.claims_of(runs, tmp_path / "empty")  # a runs directory with nothing in it
    with pytest.raises(compare.StudyNotFound, match="does not exist"):
        compare.claims_of(tmp_path / "nowhere", "study-a")


def test_list_studies(runs: Path) -> None:
    _other_run(runs, "study-a")
    claims = _claims_run(runs, "study-a", BASE)
    _other_run(runs, "study-b", "ceiling")
    Run.create(StudyConfig.for_profile("quick", runs_dir=runs), "soak")  # of no study: not listed
    studies = compare.list_studies(runs)
    assert studies["study_id"].to_list() == ["study-b", "study-a"]  # newest first
    a = studies.row(1, named=True)
    assert a["runs"] == 2 and a["experiments"] == "soak, claims" and a["claims_run"] == claims.run_id
    assert a["profile"] == "quick" and len(a["commit"]) in (0, 10)
    assert studies.row(0, named=True)["claims_run"] is None
    assert compare.list_studies(runs / "nowhere").height == 0


# --- the command line ----------------------------------------------------------------------


def test_cli_compare_prints_the_header_the_table_and_the_agreement(
    tmp_path: Path, runs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _claims_run(runs, "study-a", BASE)
    other = tmp_path / "other"
    _claims_run(other, "study-b", BASE | LOWER,
                environment={"hostname": "epyc-box"})
    csv = tmp_path / "out" / "compare.csv"
    code = cli.main(["compare", "study-a", "study-b", "--runs-dir", str(runs), "--runs-dir-b", str(other),
                     "--csv", str(csv)])
    out = capsys.readouterr().out
    assert code == 0  # a disagreement is a finding, not a failure
    assert "| study " in out and "study-a" in out and "study-b" in out
    assert "WARNING: B was measured on another machine" in out
    assert "| p99_latency_ms " in out and "0.9 [0.7, 1.1]" in out and "0.05 [0.04, 0.06]" in out
    assert "1 of 2 verdicts agree" in out
    written = pl.read_csv(csv)
    assert written.columns == list(compare.COMPARISON_COLUMNS) and written.height == 2


def test_cli_compare_exits_2_on_a_missing_study(runs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _claims_run(runs, "study-a", BASE)
    assert cli.main(["compare", "study-a", "study-x", "--runs-dir", str(runs)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ingestlab compare: no finished claims run of study 'study-x'")
    assert "study-a (quick, claims)" in err


def test_cli_studies_lists_what_there_is_to_compare(runs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["studies", "--runs-dir", str(runs)]) == 0
    assert "no study's runs in" in capsys.readouterr().out
    claims = _claims_run(runs, "study-a", BASE)
    _other_run(runs, "study-b")
    assert cli.main(["studies", "--runs-dir", str(runs)]) == 0
    out = capsys.readouterr().out
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in out.splitlines()
            if line.startswith("| study-")]
    assert [(row[0], row[1], row[-2], row[-1]) for row in rows] == [
        ("study-b", "quick", "1", "no"), ("study-a", "quick", "1", claims.run_id)]
