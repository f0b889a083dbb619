"""Parsers of the native load tools: wrk's text report (real outputs captured against the
nginx reference endpoint) and oha's SQLite table -> request rows."""

import contextlib
import sqlite3
from pathlib import Path

import polars as pl
import pytest

from ingestlab.host.component import ArtifactMissing
from ingestlab.load.native import oha_frame, oha_path, schedule_lag_ms
from ingestlab.load.rows import REQUEST_SCHEMA
from ingestlab.load.wrk import parse_wrk_output, post_script

FIXTURES = Path(__file__).parent / "fixtures" / "wrk"


def test_wrk_report_of_a_clean_run():
    # wrk -t1 -c16 -d2s --latency -s post.lua (10 KB JSON body) against nginx /accept
    result = parse_wrk_output((FIXTURES / "accept_10k.txt").read_text())
    assert result.requests == 82812
    assert result.duration_s == pytest.approx(2.02)
    assert result.requests_per_s == pytest.approx(41069.46)
    assert result.latency_mean_ms == pytest.approx(1.18)
    assert result.latency_stdev_ms == pytest.approx(1.78)
    assert result.latency_max_ms == pytest.approx(12.18)
    assert result.latency_percentiles_ms == pytest.approx({50: 0.142, 75: 1.74, 90: 3.87, 99: 7.79})
    assert result.errors == 0 and result.non_2xx_3xx == 0


def test_wrk_report_counts_error_statuses():
    result = parse_wrk_output((FIXTURES / "not_found.txt").read_text())
    assert result.requests == 24369
    assert result.non_2xx_3xx == 24369
    assert result.errors == 24369
    assert result.duration_s == pytest.approx(1.0)


def test_wrk_report_counts_socket_timeouts():
    # nginx was paused (SIGSTOP) for 2 s of the 4 s run: each of the 8 connections timed out once
    result = parse_wrk_output((FIXTURES / "paused_timeouts.txt").read_text())
    assert (result.connect_errors, result.read_errors, result.write_errors, result.timeouts) == (0, 0, 0, 8)
    assert result.errors == 8
    assert result.latency_mean_ms == pytest.approx(0.72863)


def test_wrk_report_without_latency_distribution_is_refused():
    text = (FIXTURES / "accept_10k.txt").read_text()
    without = "\n".join(line for line in text.splitlines() if "%  " not in line or "Latency" in line)
    with pytest.raises(ValueError, match="--latency"):
        parse_wrk_output(without)
    with pytest.raises(ValueError, match="Requests/sec|requests in|Latency"):
        parse_wrk_output("unable to connect to 127.0.0.1:9 Connection refused\n")


def test_wrk_post_script_posts_the_body_file(tmp_path):
    script = post_script(tmp_path / "body", "application/json")
    assert 'wrk.method = "POST"' in script
    assert f"io.open([==[{tmp_path / 'body'}]==]" in script
    assert 'wrk.headers["Content-Type"] = [==[application/json]==]' in script


OHA_TABLE = """CREATE TABLE oha (
    url TEXT NOT NULL, start REAL NOT NULL, start_latency_correction REAL, end REAL NOT NULL,
    duration REAL NOT NULL, status INTEGER NOT NULL, len_bytes INTEGER NOT NULL, run INTEGER NOT NULL)"""


def _oha_db(path: Path, rows: list[tuple[float, float | None, float, int]]) -> Path:
    """An SQLite file as oha 1.16 writes it: (start, start_latency_correction, end, status)."""
    with contextlib.closing(sqlite3.connect(path)) as db, db:  # close, after committing
        db.execute(OHA_TABLE)
        db.executemany(
            "INSERT INTO oha VALUES ('http://127.0.0.1:1/accept', ?, ?, ?, ?, ?, 21, 1764000000)",
            [(start, intended, end, end - start, status) for start, intended, end, status in rows],
        )
    return path


def test_oha_rows_become_request_rows_on_the_wall_clock(tmp_path):
    t0 = 1_764_000_000_000_000_000
    db = _oha_db(tmp_path / "oha.db", [
        (0.0125, 0.0120, 0.0150, 202),  # stored in completion order, not schedule order
        (0.0021, 0.0020, 0.0100, 503),
        (0.0300, None, 0.0310, 202),  # no latency correction: intended = actual
    ])
    frame = oha_frame(db, t0_wall_ns=t0, bytes_sent=10240, step=3, phase="warmup")
    assert frame.schema == pl.Schema(REQUEST_SCHEMA)
    assert frame["intended_start_ns"].to_list() == [t0 + 2_000_000, t0 + 12_000_000, t0 + 30_000_000]
    assert frame["actual_start_ns"].to_list() == [t0 + 2_100_000, t0 + 12_500_000, t0 + 30_000_000]
    assert frame["end_ns"].to_list() == [t0 + 10_000_000, t0 + 15_000_000, t0 + 31_000_000]
    assert frame["status"].to_list() == [503, 202, 202]
    assert frame["bytes_sent"].to_list() == [10240] * 3
    assert frame["step"].to_list() == [3] * 3 and frame["phase"].to_list() == ["warmup"] * 3
    assert frame["request_id"].null_count() == 3 and frame["error_class"].null_count() == 3


def test_oha_db_without_answers_gives_an_empty_frame(tmp_path):
    frame = oha_frame(_oha_db(tmp_path / "oha.db", []), t0_wall_ns=0, bytes_sent=1)
    assert frame.height == 0 and frame.schema == pl.Schema(REQUEST_SCHEMA)


def test_schedule_lag_is_measured_from_the_first_release():
    # 1000 req/s: slots every 1 ms from the first release; the third came 0.5 ms late,
    # the fifth 4 ms late.
    intended = pl.Series([10.0, 10.001, 10.0025, 10.003, 10.008])
    p99, worst = schedule_lag_ms(intended.reverse(), 1000.0)
    assert worst == pytest.approx(4.0)
    assert 0.5 < p99 <= 4.0


def test_schedule_lag_leaves_the_warm_up_out():
    # 1000 req/s: stuck for 20 ms while connections opened, then slots 1-20 at once and on
    # time from slot 21
    intended = pl.Series([0.0] + [0.020] * 20 + [0.021, 0.022, 0.023, 0.024]) + 10.0
    assert schedule_lag_ms(intended, 1000.0)[1] == pytest.approx(19.0)
    p99, worst = schedule_lag_ms(intended, 1000.0, skip_s=0.020)
    assert worst == pytest.approx(0.0, abs=1e-6) and p99 == pytest.approx(0.0, abs=1e-6)


def test_oha_path_prefers_the_pinned_build(tmp_path, monkeypatch):
    binary = tmp_path / "tools" / "oha-1.16.0" / "bin" / "oha"
    binary.parent.mkdir(parents=True)
    binary.write_text("#!/bin/sh\n")
    monkeypatch.setenv("INGESTLAB_CACHE", str(tmp_path))
    assert oha_path() == binary


def test_missing_oha_names_the_setup_command(tmp_path, monkeypatch):
    monkeypatch.setenv("INGESTLAB_CACHE", str(tmp_path))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ArtifactMissing, match="run `make setup`"):
        oha_path()
