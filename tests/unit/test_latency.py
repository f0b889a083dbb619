"""Latency analysis on hand-built request rows: nearest-rank percentiles, coordinated
omission, errors, windows and the HDR table."""

from __future__ import annotations

import random

import polars as pl
import pytest

from ingestlab.analysis.latency import (
    hdr_table,
    nearest_rank,
    percentiles,
    windows,
    with_timings,
)
from ingestlab.load.rows import REQUEST_SCHEMA

T0_NS = 1_700_000_000_000_000_000  # an arbitrary wall-clock epoch, whole seconds
MS = 1_000_000


def rows(
    intended_ms: list[float],
    actual_ms: list[float | None],
    end_ms: list[float | None],
    *,
    status: list[int] | None = None,
    phase: list[str] | None = None,
    service: list[str] | None = None,
) -> pl.DataFrame:
    """Request rows with times in ms after T0_NS (None = not recorded)."""
    n = len(intended_ms)

    def ns(values: list[float | None]) -> list[int | None]:
        return [None if v is None else T0_NS + round(v * MS) for v in values]

    status = status or [202] * n
    frame = pl.DataFrame(
        {
            "request_id": [f"r-{i}" for i in range(n)],
            "step": [0] * n,
            "phase": phase or ["measure"] * n,
            "intended_start_ns": ns(intended_ms),
            "actual_start_ns": ns(actual_ms),
            "end_ns": ns(end_ms),
            "status": status,
            "bytes_sent": [0 if a is None else 1000 for a in actual_ms],
            "error_class": [None if s > 0 else "ConnectionRefusedError" for s in status],
        },
        schema=REQUEST_SCHEMA,
    )
    if service is not None:
        frame = frame.with_columns(service=pl.Series(service))
    return frame


def test_with_timings_splits_latency_into_lag_and_service_time() -> None:
    df = with_timings(rows([0, 10], [2, None], [7, None], status=[202, 0]))
    first, dropped = df.row(0, named=True), df.row(1, named=True)
    assert (first["latency_ms"], first["lag_ms"], first["service_time_ms"]) == (7.0, 2.0, 5.0)
    assert df.schema["latency_ms"] == pl.Float64
    assert dropped["latency_ms"] is None and dropped["lag_ms"] is None


def test_percentiles_are_nearest_rank() -> None:
    latencies = list(range(1, 101))  # 1..100 ms
    random.Random(4).shuffle(latencies)
    df = rows([0.0] * 100, [0.0] * 100, [float(v) for v in latencies])
    result = percentiles(df).row(0, named=True)
    # rank ceil(q * 100) of 1..100 is the value itself; p99.9 -> rank 100
    assert result["p50_ms"] == 50
    assert result["p90_ms"] == 90
    assert result["p95_ms"] == 95
    assert result["p99_ms"] == 99
    assert result["p99_9_ms"] == 100
    assert result["max_ms"] == 100
    assert (result["count"], result["ok"], result["errors"], result["error_rate"]) == (
        100,
        100,
        0,
        0.0,
    )
    ten = percentiles(rows([0.0] * 10, [0.0] * 10, [float(v) for v in range(1, 11)]))
    # n = 10: p50 -> rank 5, p90 -> rank 9, p95 -> rank ceil(9.5) = 10
    assert ten.select("p50_ms", "p90_ms", "p95_ms").row(0) == (5.0, 9.0, 10.0)


def test_nearest_rank_is_exact_where_q_times_n_is_whole() -> None:
    values = pl.DataFrame({"x": [float(v) for v in range(1000, 0, -1)] + [None]})
    # 0.999 * 1000 is 999.0000000000001 in floats; the rank is still 999
    picked = values.select(*(nearest_rank(pl.col("x"), q).alias(str(q)) for q in (0, 0.001, 0.5, 0.999, 1)))
    assert picked.row(0) == (1.0, 1.0, 500.0, 999.0, 1000.0)
    assert (
        pl.DataFrame({"x": []}, schema={"x": pl.Float64}).select(nearest_rank(pl.col("x"), 0.5)).item()
        is None
    )
    with pytest.raises(ValueError, match="q must be"):
        nearest_rank(pl.col("x"), 99)


def test_a_stall_shows_in_latency_from_the_intended_start_not_in_service_time() -> None:
    """Request 0 takes 500 ms; a closed-loop client holds requests 1..49 (due every 10 ms)
    back until it returns, then each takes 1 ms. Measured from the actual send they all look
    fast; measured from their intended start they waited for the stall."""
    intended = [10.0 * i for i in range(50)]
    actual = [0.0] + [500.0] * 49
    end = [500.0] + [501.0] * 49
    df = rows(intended, actual, end)
    result = percentiles(df).row(0, named=True)
    # latencies: 500 for request 0, 501 - 10 i for i = 1..49 (11, 21, ... 491);
    # nearest rank 25 of 50 is the 25th smallest: 11 + 10 * 24 = 251
    assert result["p50_ms"] == 251
    assert result["max_ms"] == 500
    timed = with_timings(df)
    assert timed["service_time_ms"].median() == 1.0
    assert timed["lag_ms"].max() == 490.0


def test_errors_count_in_the_rate_but_only_answered_requests_have_latency() -> None:
    df = rows(
        [0, 10, 20, 30],
        [0, 10, 20, None],  # the last was dropped by the client, never sent
        [5, 900, 25, None],
        status=[202, 0, 503, 0],  # 900 ms: a timeout without a response
    )
    result = percentiles(df).row(0, named=True)
    assert (result["count"], result["ok"], result["errors"]) == (4, 1, 3)
    assert result["error_rate"] == 0.75
    # latency over the two answered requests (202: 5 ms, 503: 5 ms); the timeout is an error
    assert result["max_ms"] == 5.0


def test_warmup_is_left_out_unless_asked_for_and_groups_are_separate() -> None:
    df = rows(
        [0, 10, 20, 30],
        [0, 10, 20, 30],
        [100, 11, 21, 32],
        phase=["warmup", "measure", "measure", "measure"],
        service=["node", "node", "rust", "rust"],
    )
    assert percentiles(df)["max_ms"].item() == 2.0
    assert percentiles(df, include_warmup=True)["max_ms"].item() == 100.0
    by_service = percentiles(df, by="service")
    assert by_service["service"].to_list() == ["node", "rust"]
    assert by_service["count"].to_list() == [1, 2]
    assert by_service["p50_ms"].to_list() == [1.0, 1.0]


def test_windows_put_latency_at_the_intended_time_and_throughput_at_the_end() -> None:
    # 10 req/s for 4 s. Requests due in second 1 are held until 2.5 s (a stall); second 3 has
    # no requests at all.
    intended = [i * 100.0 for i in range(30)]  # seconds 0, 1, 2
    end = [t + 2 if not 1000 <= t < 2000 else 2500.0 for t in intended]
    df = rows(intended, intended, end)
    extra = rows([4000.0], [4000.0], [4001.0]).with_columns(request_id=pl.lit("r-late"))
    table = windows(pl.concat([df, extra]), every="1s")
    assert table["t_s"].to_list() == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert table["count"].to_list() == [10, 10, 10, 0, 1]
    assert table["offered_rps"].to_list() == [10.0, 10.0, 10.0, 0.0, 1.0]
    # throughput by completion: nothing completes in second 1, its ten complete at 2.5 s
    assert table["throughput_rps"].to_list() == [10.0, 0.0, 20.0, 0.0, 1.0]
    assert table["max_ms"][1] == 1500.0  # due at 1.0 s, answered at 2.5 s
    assert table["p50_ms"][0] == 2.0
    assert table["p50_ms"][3] is None
    half = windows(df, every="500ms")
    assert half["offered_rps"].to_list() == [10.0] * 6


def test_windows_by_group_and_bad_durations() -> None:
    df = rows([0, 100, 1500], [0, 100, 1500], [1, 101, 1501], service=["a", "a", "b"])
    table = windows(df, every="1s", by="service")
    assert table.select("service", "t_s", "count").rows() == [("a", 0.0, 2), ("b", 0.0, 1)]
    for bad in ("1mo", "0s", "fast", "1s2"):
        with pytest.raises(ValueError, match="every"):
            windows(df, every=bad)


def test_hdr_table_has_the_log_axis_column() -> None:
    n = 1000
    df = rows([0.0] * n, [0.0] * n, [float(v) for v in range(1, n + 1)])
    table = hdr_table(df)
    assert table["percentile"].to_list() == [0, 50, 75, 90, 95, 99, 99.9, 99.99, 100]
    assert table["latency_ms"].to_list() == [1, 500, 750, 900, 950, 990, 999, 1000, 1000]
    expected = [1, 2, 4, 10, 20, 100, 1000, 10000]
    assert table["one_over_one_minus_p"][:-1].to_list() == pytest.approx(expected)
    assert table["one_over_one_minus_p"][-1] is None
    assert set(table["count"]) == {n}


def test_hdr_table_by_group() -> None:
    df = rows([0, 0, 0], [0, 0, 0], [1, 2, 3], service=["a", "b", "b"])
    table = hdr_table(df, by="service")
    assert table.height == 18
    assert table.filter(pl.col("service") == "b", pl.col("percentile") == 100)["latency_ms"].item() == 3.0


def test_rows_without_the_engine_columns_are_refused() -> None:
    with pytest.raises(ValueError, match="intended_start_ns"):
        percentiles(pl.DataFrame({"phase": ["measure"], "status": [202]}))
