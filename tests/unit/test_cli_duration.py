"""`ingestlab run soak --duration`: the parser and what it sets (the profiles keep their lengths)."""

from __future__ import annotations

import argparse

import pytest

from ingestlab.cli import _config, build_parser, main, parse_duration


@pytest.mark.parametrize(("text", "seconds"), [
    ("1h", 3600.0), ("90m", 5400.0), ("3600s", 3600.0), ("3600", 3600.0), ("1.5h", 5400.0), ("45", 45.0),
    ("2M", 120.0), (" 10s ", 10.0), ("0.5", 0.5),
])
def test_durations_in_hours_minutes_or_seconds(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "h", "1d", "1h30m", "-5", "0", "0s", "one hour", "1 hour"])
def test_what_is_not_a_duration_is_a_usage_error(text):
    with pytest.raises(argparse.ArgumentTypeError, match="not a duration"):
        parse_duration(text)


def test_run_takes_the_duration_the_others_do_not(capsys):
    args = build_parser().parse_args(["run", "soak", "--duration", "90m", "--profile", "full"])
    assert args.duration == 5400.0
    assert build_parser().parse_args(["run", "soak"]).duration is None
    for command in (["smoke", "--duration", "1h"], ["study", "--duration", "1h"]):
        with pytest.raises(SystemExit):
            build_parser().parse_args(command)
    with pytest.raises(SystemExit):
        build_parser().parse_args(["run", "soak", "--duration", "soon"])
    assert "not a duration" in capsys.readouterr().err


def test_the_profiles_keep_their_lengths():
    # --duration changes this run's config only (cmd_run replaces it); _config is the profile's
    args = build_parser().parse_args(["run", "soak", "--duration", "1h", "--profile", "full"])
    assert _config(args).soak.duration_s == 120.0
    assert _config(build_parser().parse_args(["run", "soak"])).soak.duration_s == 12.0


def test_a_duration_for_another_experiment_is_refused_before_anything_runs(capsys, tmp_path):
    assert main(["run", "ceiling", "--duration", "1h", "--runs-dir", str(tmp_path)]) == 2
    assert "--duration sets the soak's length" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())
