"""The charts of notebooks 03 and 04 (V8 heap, GC pauses, CPU per thread, footprint) and the
heap series of `analysis.memory`, on small hand-built frames. (The report helpers once tested
here moved to `ingestlab.notebook`, and their tests to tests/unit/test_notebook_*.py.)"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import pytest

from ingestlab import charts
from ingestlab.analysis.memory import heap_series
from ingestlab.units import MIB, NS_PER_MS

T0_NS = 1_800_000_000_000_000_000
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _views(spec: dict[str, Any]) -> list[dict[str, Any]]:
    if "layer" in spec:
        return [v for child in spec["layer"] for v in _views(child)]
    if "vconcat" in spec:
        return [v for child in spec["vconcat"] for v in _views(child)]
    return [spec]


def _data(spec: dict[str, Any], view: dict[str, Any]) -> list[dict[str, Any]]:
    name = (view.get("data") or spec["data"])["name"]
    return spec["datasets"][name]


def _mark(view: dict[str, Any]) -> str:
    return view["mark"]["type"] if isinstance(view["mark"], dict) else view["mark"]


def _gc(events: list[tuple[float, str, float, float, float]], *, service: bool = True) -> pl.DataFrame:
    """GC rows from (end of the pause in ms after T0, kind, pause ms, heap before MB, after MB)."""
    frame = pl.DataFrame(
        {
            "wall_ns": [T0_NS + round(t * NS_PER_MS) for t, *_ in events],
            "kind": [kind for _, kind, *_ in events],
            "generation": ["full" if kind == "Mark-Compact" else "young" for _, kind, *_ in events],
            "pause_ms": [e[2] for e in events],
            "heap_before_mib": [e[3] for e in events],
            "heap_after_mib": [e[4] for e in events],
            "committed_after_mib": [40.0] * len(events),
        }
    )
    return frame.with_columns(service=pl.lit("node")) if service else frame


# --- V8 heap -------------------------------------------------------------------------------


def test_heap_over_time_draws_the_sawtooth_on_the_samples_clock() -> None:
    gc = _gc(
        [
            (-500.0, "Scavenge", 1.0, 5.0, 3.0),
            (1_000.0, "Scavenge", 2.0, 20.0, 10.0),
            (2_000.0, "Mark-Compact", 4.0, 25.0, 8.0),
        ]
    )
    samples = pl.DataFrame(
        {"t_ns": [T0_NS, T0_NS + 10**9], "rss_bytes": [100 * MIB] * 2, "service": ["node"] * 2}
    )
    spec = charts.heap_over_time(gc, samples).to_dict()
    line = next(v for v in _views(spec) if _mark(v) == "line" and v["encoding"]["y"]["field"] == "heap_mib")
    assert line["encoding"]["y"]["title"] == "V8 heap (MiB)"
    assert line["encoding"]["x"]["title"] == "time since the service's first sample (s)"
    # the start-up collection (before the first sample) is left out; before at the pause's start
    saw = [(round(row["t_s"], 4), row["heap_mib"]) for row in _data(spec, line)]
    assert saw == [(0.998, 20.0), (1.0, 10.0), (1.996, 25.0), (2.0, 8.0)]
    dots = next(v for v in _views(spec) if _mark(v) == "point")
    assert dots["encoding"]["color"]["scale"]["domain"] == ["Scavenge", "Mark-Compact"]  # young first
    colors = dict(
        zip(
            dots["encoding"]["color"]["scale"]["domain"],
            dots["encoding"]["color"]["scale"]["range"],
            strict=True,
        )
    )
    assert colors == {k: charts.GC_KIND_COLORS[k] for k in ("Mark-Compact", "Scavenge")}
    # without samples, time counts from the first traced collection (and GC without service is node's)
    spec = charts.heap_over_time(gc.drop("service")).to_dict()
    line = next(v for v in _views(spec) if _mark(v) == "line" and v["encoding"]["y"]["field"] == "heap_mib")
    assert line["encoding"]["x"]["title"] == "time since the first traced GC (s)"
    assert _data(spec, line)[0]["t_s"] == pytest.approx(-0.001)


def test_heap_over_time_windows_a_busy_heap_keeping_its_envelope() -> None:
    n = charts.MAX_HEAP_EVENTS * 3
    events = [
        (10.0 * i, "Scavenge", 1.0, 30.0 if i == 777 else 20.0, 2.0 if i == 1_234 else 10.0) for i in range(n)
    ]
    spec = charts.heap_over_time(_gc(events)).to_dict()
    band = next(v for v in _views(spec) if _mark(v) == "area")
    rows = _data(spec, band)
    assert len(rows) <= charts.MAX_HEAP_WINDOWS
    assert max(row["peak_mib"] for row in rows) == 30.0
    assert min(row["floor_mib"] for row in rows) == 2.0
    assert sum(row["collections"] for row in rows) == n
    assert "windows" in spec["title"]["subtitle"]
    total_rows = sum(len(rows) for rows in spec["datasets"].values())
    assert total_rows <= charts.MAX_CHART_ROWS


# --- GC pauses -----------------------------------------------------------------------------


def test_gc_pause_distribution_one_panel_per_kind_with_its_numbers() -> None:
    gc = _gc(
        [(float(i), "Scavenge", p, 20.0, 10.0) for i, p in enumerate([0.0, 1.0, 1.1, 2.0, 30.0])]
        + [(100.0, "Mark-Compact", 5.0, 30.0, 8.0)]
    )
    spec = charts.gc_pause_distribution(gc, bins_per_decade=10).to_dict()
    panels = spec["vconcat"]
    titles = [panel["title"]["text"] for panel in panels]
    # young generation first; the count, p50, p99 and longest pause in each title
    assert titles[0].startswith("Scavenge: 5 pauses; p50 1.10 ms, p99 30.00 ms, longest 30.00 ms")
    assert titles[1].startswith("Mark-Compact: 1 pauses")
    bars = panels[0]["layer"][0]
    assert bars["encoding"]["x"]["scale"]["type"] == "log"
    assert bars["encoding"]["x"]["title"] == "pause (ms, log scale)"
    rows = _data(spec, bars)
    assert sum(row["pauses"] for row in rows) == 5
    assert min(row["low_ms"] for row in rows) == pytest.approx(0.01)  # a 0.00 ms pause is drawn at 0.01
    for row in rows:
        assert row["high_ms"] == pytest.approx(row["low_ms"] * 10**0.1)
    assert bars["mark"]["color"] == charts.GC_KIND_COLORS["Scavenge"]
    with pytest.raises(ValueError, match="no GC events"):
        charts.gc_pause_distribution(gc.clear())


# --- CPU by thread -------------------------------------------------------------------------


def _cpu() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "service": ["node"] * 4 + ["rust"] * 2,
            "pid": [1] * 4 + [2] * 2,
            "main_thread": [True, False, False, False, False, True],
            "name": ["node", "node", "rdk:broker1", "rdk:main", "actix-rt|system", "ingest-rust"],
            "threads": [1, 10, 1, 1, 1, 1],
            "cpu_user_s": [50.0, 10.0, 2.0, 0.0, 15.0, 0.0],
            "cpu_system_s": [10.0, 0.0, 1.0, 0.0, 5.0, 0.0],
            "core_pct": [60.0, 10.0, 3.0, 0.0, 20.0, 0.0],
        }
    )


def test_cpu_by_thread_bars_labels_rows_and_sums_the_idle_ones() -> None:
    spec = charts.cpu_by_thread_bars(_cpu()).to_dict()
    bars = next(v for v in _views(spec) if _mark(v) == "bar")
    assert bars["encoding"]["x"]["title"] == "CPU (% of one core)"
    assert bars["encoding"]["color"]["field"] == "service"
    rows = {row["row"]: row["core_pct"] for row in _data(spec, bars)}
    assert rows == {
        "node · node (main)": 60.0,
        "node · node x 10": 10.0,
        "node · rdk:broker1": 3.0,
        "node · other threads x 1": 0.0,
        "rust · actix-rt|system": 20.0,
        "rust · other threads x 1": 0.0,
    }
    assert bars["encoding"]["y"]["sort"][:2] == ["node · node (main)", "node · node x 10"]
    one_core = next(v for v in _views(spec) if _mark(v) == "rule")
    assert _data(spec, one_core) == [{"core_pct": 100.0}]
    top_one = charts.cpu_by_thread_bars(_cpu(), top=1).to_dict()
    rows = {row["row"] for row in _data(top_one, next(v for v in _views(top_one) if _mark(v) == "bar"))}
    assert rows == {
        "node · node (main)",
        "node · other threads x 12",
        "rust · actix-rt|system",
        "rust · other threads x 1",
    }


# --- footprint -----------------------------------------------------------------------------


def _parts() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "service": ["node", "node", "node", "node", "rust", "rust"],
            "kind": [
                "executable",
                "shared-library",
                "node_modules",
                "shared-library",
                "executable",
                "shared-library",
            ],
            "name": ["node", "libc.so.6", "node_modules", "libssl.so.3", "ingest-rust", "libc.so.6"],
            "bytes": [100_000_000, 2_000_000, 500_000_000, 1_000_000, 8_000_000, 2_000_000],
            "base": [False, True, False, False, False, True],
        }
    )


def test_footprint_bars_stack_parts_beside_the_article_images() -> None:
    spec = charts.footprint_bars(_parts(), article_mb={"node": 185, "rust": 24}).to_dict()
    bars = next(v for v in _views(spec) if _mark(v) == "bar")
    assert bars["encoding"]["x"]["title"] == "deployment footprint (MB)"
    mb = {(row["row"], row["category"]): row["mb"] for row in _data(spec, bars)}
    assert mb == {
        ("node: measured footprint", "executable"): 100.0,
        ("node: measured footprint", "shared libraries"): 1.0,
        ("node: measured footprint", "node_modules"): 500.0,
        ("node: measured footprint", "base image libraries (glibc, libgcc)"): 2.0,
        ("rust: measured footprint", "executable"): 8.0,
        ("rust: measured footprint", "base image libraries (glibc, libgcc)"): 2.0,
        ("node: article's image", "article's container image (incl. base image)"): 185.0,
        ("rust: article's image", "article's container image (incl. base image)"): 24.0,
    }
    assert bars["encoding"]["y"]["sort"] == [
        "node: measured footprint",
        "node: article's image",
        "rust: measured footprint",
        "rust: article's image",
    ]
    labels = next(v for v in _views(spec) if _mark(v) == "text")
    totals = {row["row"]: row["mb"] for row in _data(spec, labels)}
    assert totals["node: measured footprint"] == 603.0 and totals["rust: measured footprint"] == 10.0
    plain = charts.footprint_bars(_parts()).to_dict()
    rows = {row["row"] for row in _data(plain, next(v for v in _views(plain) if _mark(v) == "bar"))}
    assert rows == {"node: measured footprint", "rust: measured footprint"}


def test_new_charts_render_to_png(tmp_path: Path) -> None:
    gc = _gc([(float(10 * i), "Scavenge", 1.0 + i % 3, 20.0, 10.0) for i in range(20)])
    for name, chart in {
        "heap": charts.heap_over_time(gc),
        "pauses": charts.gc_pause_distribution(gc),
        "cpu": charts.cpu_by_thread_bars(_cpu()),
        "footprint": charts.footprint_bars(_parts(), article_mb={"node": 185, "rust": 24}),
    }.items():
        path = charts.save_png(chart, tmp_path / f"{name}.png")
        assert path.read_bytes()[:8] == PNG_MAGIC


# --- the heap series behind the memory pattern ---------------------------------------------


def test_heap_series_before_and_after_with_optional_climb_points() -> None:
    gc = _gc([(10.0, "Scavenge", 1.0, 8.0, 4.0), (20.0, "Scavenge", 2.0, 12.0, 6.0)])
    plain = heap_series(gc)
    assert plain["heap_bytes"].to_list() == [8.0 * MIB, 4.0 * MIB, 12.0 * MIB, 6.0 * MIB]
    assert plain["t_ns"].to_list() == [
        T0_NS + 9 * NS_PER_MS,
        T0_NS + 10 * NS_PER_MS,
        T0_NS + 18 * NS_PER_MS,
        T0_NS + 20 * NS_PER_MS,
    ]
    climbing = heap_series(gc.drop("service"), climb_points=3)
    assert "service" not in climbing.columns
    # 3 points on the line from 4 MiB at 10 ms to 12 MiB at 18 ms
    assert [v / MIB for v in climbing["heap_bytes"]] == [8.0, 4.0, 6.0, 8.0, 10.0, 12.0, 6.0]
    assert climbing["t_ns"].is_sorted()
