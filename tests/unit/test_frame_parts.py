"""A frame stored as a directory of parts (a long soak's requests, one part per service and
segment): read whole, scanned lazily, one service's parts alone; and the percentiles of a
scan equal those of the whole frame."""

from __future__ import annotations

import polars as pl
import pytest

from ingestlab.analysis.latency import percentiles, scan_percentiles
from ingestlab.config import StudyConfig
from ingestlab.load.rows import REQUEST_SCHEMA
from ingestlab.results import Run


@pytest.fixture
def run(tmp_path) -> Run:
    return Run.create(StudyConfig.for_profile("quick", runs_dir=tmp_path / "runs"), "soak")


def _rows(service: str, segment: int, count: int = 50) -> pl.DataFrame:
    start = 1_700_000_000_000_000_000 + segment * 10**10
    return pl.DataFrame({
        "request_id": [f"{service}-s{segment}-{i}" for i in range(count)],
        "step": [segment] * count,
        "phase": ["warmup" if segment == 0 and i < 5 else "measure" for i in range(count)],
        "intended_start_ns": [start + i * 10**7 for i in range(count)],
        "actual_start_ns": [start + i * 10**7 + 1000 for i in range(count)],
        "end_ns": [start + i * 10**7 + (i % 17 + segment) * 10**6 for i in range(count)],
        "status": [202 if i % 11 else 0 for i in range(count)],
        "bytes_sent": [10_000] * count,
        "error_class": [None if i % 11 else "TimeoutError" for i in range(count)],
    }, schema=REQUEST_SCHEMA).with_columns(service=pl.lit(service))


def test_a_frame_of_parts_reads_whole_in_the_order_of_its_parts(run):
    parts = {(service, k): _rows(service, k) for service in ("node", "node-acked") for k in range(12)}
    for (service, k), frame in parts.items():
        path = run.write_frame_part("requests", f"{service}-{k:04d}", frame)
        assert path == run.path / "requests" / f"{service}-{k:04d}.parquet"
    assert not (run.path / "requests.parquet").exists() and run.has_frame("requests")
    # by name: "node-0000" sorts before "node-acked-0000"
    expected = pl.concat([parts[(service, k)] for service in ("node", "node-acked") for k in range(12)])
    assert run.read_frame("requests").equals(expected)
    assert run.scan_frame("requests").collect().equals(expected)
    # one service's parts: "node-[0-9]*" leaves node-acked's out
    node = run.scan_frame("requests", parts="node-[0-9]*").collect()
    assert node.equals(pl.concat([parts[("node", k)] for k in range(12)]))


def test_a_single_file_still_reads_as_before_and_wins_over_parts(run):
    frame = _rows("rust", 0)
    run.write_frame("requests", frame)
    assert run.frame_parts("requests") == [run.path / "requests.parquet"]
    assert run.read_frame("requests").equals(frame)
    assert run.scan_frame("requests").collect().equals(frame)


def test_parts_with_other_columns_are_aligned(run):
    run.write_frame_part("samples", "a", pl.DataFrame({"t_ns": [1], "rss_bytes": [10]}))
    run.write_frame_part("samples", "b", pl.DataFrame({"t_ns": [2], "rss_bytes": [20], "cgroup_bytes": [30]}))
    assert run.read_frame("samples").to_dicts() == [
        {"t_ns": 1, "rss_bytes": 10, "cgroup_bytes": None}, {"t_ns": 2, "rss_bytes": 20, "cgroup_bytes": 30}]


def test_a_missing_frame_says_so(run):
    assert not run.has_frame("gc")
    with pytest.raises(FileNotFoundError, match="no gc.parquet"):
        run.read_frame("gc")
    run.write_frame_part("requests", "node-0000", _rows("node", 0))
    with pytest.raises(FileNotFoundError, match="rust"):
        run.scan_frame("requests", parts="rust-[0-9]*")


def test_percentiles_of_a_scan_equal_those_of_the_frame(run):
    for k in range(5):
        run.write_frame_part("requests", f"node-{k:04d}", _rows("node", k, count=301))
    whole = percentiles(run.read_frame("requests"))
    assert scan_percentiles(run.scan_frame("requests")).equals(whole)
    assert scan_percentiles(run.scan_frame("requests"), include_warmup=True).equals(
        percentiles(run.read_frame("requests"), include_warmup=True))
