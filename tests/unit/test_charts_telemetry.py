"""The charts of notebooks 03 and 04 (V8 heap, GC pauses, CPU per thread, footprint) and the
report helpers that feed them, on small hand-built frames."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from ingestlab import charts, report
from ingestlab.config import StudyConfig
from ingestlab.results import Run

T0_NS = 1_800_000_000_000_000_000
NS_PER_MS = 1_000_000
MIB = 2**20
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
            "heap_before_mb": [e[3] for e in events],
            "heap_after_mb": [e[4] for e in events],
            "committed_after_mb": [40.0] * len(events),
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


# --- report helpers behind the charts ------------------------------------------------------


def test_heap_series_before_and_after_with_optional_climb_points() -> None:
    gc = _gc([(10.0, "Scavenge", 1.0, 8.0, 4.0), (20.0, "Scavenge", 2.0, 12.0, 6.0)])
    plain = report.heap_series(gc)
    assert plain["heap_bytes"].to_list() == [8.0 * MIB, 4.0 * MIB, 12.0 * MIB, 6.0 * MIB]
    assert plain["t_ns"].to_list() == [
        T0_NS + 9 * NS_PER_MS,
        T0_NS + 10 * NS_PER_MS,
        T0_NS + 18 * NS_PER_MS,
        T0_NS + 20 * NS_PER_MS,
    ]
    climbing = report.heap_series(gc.drop("service"), climb_points=3)
    assert "service" not in climbing.columns
    # 3 points on the line from 4 MiB at 10 ms to 12 MiB at 18 ms
    assert [v / MIB for v in climbing["heap_bytes"]] == [8.0, 4.0, 6.0, 8.0, 10.0, 12.0, 6.0]
    assert climbing["t_ns"].is_sorted()


def test_memory_patterns_rss_flat_and_heap_sawtooth() -> None:
    n = 200  # 20 s at 10 Hz
    samples = pl.concat(
        [
            pl.DataFrame(
                {
                    "t_ns": [T0_NS + i * 100 * NS_PER_MS for i in range(n)],
                    "pid": [7] * n,
                    "rss_bytes": [100 * MIB + (i % 2) * MIB // 10 for i in range(n)],
                    "service": ["node"] * n,
                }
            ),
            # the service's child process (another pid) is not the service's own memory
            pl.DataFrame(
                {
                    "t_ns": [T0_NS + 50 + i * 100 * NS_PER_MS for i in range(n)],
                    "pid": [8] * n,
                    "rss_bytes": [900 * MIB] * n,
                    "service": ["node"] * n,
                }
            ),
        ]
    ).sort("t_ns")
    requests = pl.DataFrame({"service": ["node"], "intended_start_ns": [T0_NS]})
    # a collection every 0.5 s: 10 -> 30 MiB, back to 10
    gc = _gc([(500.0 * k, "Scavenge", 1.0, 30.0, 10.0) for k in range(1, 40)])
    patterns = report.memory_patterns(samples, requests, gc)
    rss = patterns.filter(series="RSS").row(0, named=True)
    assert rss["classification"] == "flat"
    assert rss["mean_mib"] == pytest.approx(100.05, abs=0.01)
    assert rss["peak_mib"] < 101
    heap = patterns.filter(series="V8 heap").row(0, named=True)
    assert heap["classification"] == "sawtooth"
    assert heap["period_s"] == pytest.approx(0.5, abs=0.01)
    assert heap["peak_mib"] == 30.0
    short = report.memory_patterns(samples.head(4), requests)
    assert short["classification"].to_list() == ["too few samples"]


def test_cpu_per_service_uses_each_services_own_window() -> None:
    rows = []
    for service, pid, t0, cpu in (("node", 1, 0, 0.5), ("rust", 2, 100, 0.1)):
        for k in range(11):  # 10 s at 1 Hz; node busy half a core, rust a tenth
            rows.append(
                {
                    "t_ns": T0_NS + (t0 + k) * 10**9,
                    "pid": pid,
                    "tid": pid,
                    "name": service,
                    "cpu_user_s": cpu * k,
                    "cpu_system_s": 0.0,
                    "last_cpu": 1,
                    "service": service,
                }
            )
    threads = pl.DataFrame(rows)
    cpu = report.cpu_by_thread_per_service(threads)
    assert cpu.columns[0] == "service"
    assert dict(zip(cpu["service"], cpu["core_pct"], strict=True)) == pytest.approx(
        {"node": 50.0, "rust": 10.0}
    )
    cores = report.cpu_by_core_per_service(threads)
    assert dict(zip(cores["service"], cores["core_pct"], strict=True)) == pytest.approx(
        {"node": 50.0, "rust": 10.0}
    )


def test_gc_in_flight_per_kind() -> None:
    in_flight = pl.DataFrame(
        {
            "kind": ["Scavenge", "Scavenge", "Mark-Compact"],
            "pause_ms": [1.0, 2.0, 9.0],
            "in_flight": [0, 4, 10],
        }
    )
    table = report.gc_in_flight(in_flight)
    assert table["kind"].to_list() == ["Mark-Compact", "Scavenge"]  # longest pauses first
    scavenge = table.filter(kind="Scavenge").row(0, named=True)
    assert (scavenge["pauses"], scavenge["pauses_with_requests"], scavenge["in_flight_max"]) == (2, 1, 4)
    assert scavenge["in_flight_mean"] == 2.0


def _run(tmp_path: Path, experiment: str, summary: dict[str, Any]) -> Run:
    run = Run.create(StudyConfig.for_profile("quick", runs_dir=tmp_path), experiment)
    run.write_summary(summary)
    return run


def test_soak_conditions_against_the_article(tmp_path: Path) -> None:
    service = {
        "rate_rps": 4000,
        "achieved_rps": 3999.0,
        "duration_s": 300.0,
        "engine": "oha",
        "accepted": 1_200_000,
        "lost": 0,
    }
    table = report.soak_conditions(_run(tmp_path, "soak", {"node": service, "rust": service}))
    row = table.row(0, named=True)
    assert row["rate_pct_of_article"] == 40.0
    assert row["duration_pct_of_article"] == pytest.approx(100 * 300 / (72 * 3600))


def test_soak_vs_article_reads_the_claims_file() -> None:
    patterns = pl.DataFrame(
        {
            "service": ["node", "rust", "node"],
            "series": ["RSS", "RSS", "V8 heap"],
            "classification": ["flat", "flat", "sawtooth"],
            "mean_mib": [128.0, 42.0, 20.0],
            "amplitude_mib": [5.0, 0.5, 15.0],
            "peak_mib": [140.0, 43.0, 43.0],
            "period_s": [None, None, 0.04],
        }
    )
    latency = pl.DataFrame({"service": ["node", "rust"], "p99_ms": [25.2, 13.3]})
    gc_summary = {
        "p99_outside_gc_ms": 15.0,
        "share_of_slow_requests_during_gc": 0.75,
        "share_during_gc": 0.135,
    }
    table = report.soak_vs_article(patterns, latency, gc_summary)
    rows = {row["claim"]: row for row in table.iter_rows(named=True)}
    memory = rows["average memory, sustained (MiB; the article says MB)"]
    assert (memory["node_article"], memory["rust_article"], memory["node_measured"]) == ("820", "42", "128.0")
    assert rows["memory pattern (RSS)"]["node_article"] == "Sawtooth pattern"
    assert rows["p99 latency (ms)"]["rust_measured"] == "13.30"
    assert "75% of the requests slower than p99" in rows["p99 cause"]["node_measured"]
    assert "a drop every 0.04 s" in rows["V8 heap pattern (Node only)"]["node_measured"]
    without_gc = report.soak_vs_article(patterns.filter(service="rust"), latency, None)
    assert without_gc.filter(claim="p99 cause")["node_measured"][0].startswith("p99 outside GC pauses —")


def test_startup_vs_article_and_footprint_parts(tmp_path: Path) -> None:
    parts = [{"kind": "executable", "name": "x", "path": "/x", "bytes": 10_000_000, "base": False}]
    run = _run(
        tmp_path,
        "startup",
        {
            "node": {
                "cold_start_ms": 200.0,
                "rss_at_ready_mb": 60.0,
                "footprint_bytes": 600_000_000,
                "footprint_parts": parts,
            },
            "rust": {
                "cold_start_ms": 20.0,
                "rss_at_ready_mb": 6.0,
                "footprint_bytes": 10_000_000,
                "footprint_parts": parts,
            },
        },
    )
    table = report.startup_vs_article(run)
    cold = table.row(0, named=True)
    assert (cold["unit"], cold["node_article"], cold["rust_article"]) == ("s", 1.4, 0.08)
    assert (cold["node_measured"], cold["rust_measured"]) == pytest.approx((0.2, 0.02))
    assert cold["measured_ratio"] == pytest.approx(0.1)
    assert table["article_ratio"][2] == pytest.approx(24 / 185)
    frame = report.footprint_parts(run)
    assert frame["service"].to_list() == ["node", "rust"] and frame["mb"].to_list() == [10.0, 10.0]


def test_node_modules_breakdown_separates_what_runs_from_the_build_tree(tmp_path: Path) -> None:
    modules = tmp_path / "node_modules"
    files = {
        "express/index.js": 100,
        "node-rdkafka/lib/producer.js": 50,
        "node-rdkafka/deps/librdkafka/src/rdkafka.c": 5_000,
        "node-rdkafka/build/deps/librdkafka.a": 2_000,
    }
    for name, size in files.items():
        path = modules / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x" * size)
    # node-gyp hard-links its outputs: one file, counted once
    os.link(modules / "node-rdkafka/build/deps/librdkafka.a", modules / "node-rdkafka/build/librdkafka.a")
    table = report.node_modules_breakdown(modules)
    sizes = dict(zip(table["group"], table["bytes"], strict=True))
    assert sizes == {
        "the other packages (express and its dependencies, nan, ...)": 100,
        "node-rdkafka: JavaScript, C++ sources, typings": 50,
        "node-rdkafka/deps/: librdkafka's sources and build tree": 5_000,
        "node-rdkafka/build/: object files and static archives": 2_000,
    }
    assert table.filter("needed_at_runtime")["bytes"].sum() == 150
    assert table["needed_at_runtime"].to_list() == [True, True, False, False]


# --- 00: one record, sent and stored -------------------------------------------------------


def test_compare_record_sees_reordered_and_dropped_keys() -> None:
    sent = json.dumps(
        {"event_type": "a", "timestamp": 1, "extra": 1, "data": {"z": 1, "a": {"y": 2, "b": 3}}},
        separators=(",", ":"),
    ).encode()
    stored = json.dumps(
        {"event_type": "a", "timestamp": 1, "data": {"a": {"b": 3, "y": 2}, "z": 1}}, separators=(",", ":")
    ).encode()
    found = report.compare_record(sent, stored)
    assert found["found"] and not found["byte_identical"] and not found["equal_as_json"]
    assert found["reordered_objects"] == ["data", "data.a"]
    assert found["missing_keys"] == ["extra"] and found["extra_keys"] == []
    same = report.compare_record(sent, sent)
    assert same["byte_identical"] and same["equal_as_json"] and same["same_key_order"]
    assert same["reordered_objects"] == []
    assert report.compare_record(sent, None) == {"found": False, "sent_bytes": len(sent)}


def test_sent_vs_stored_matches_records_by_request_id() -> None:
    body = json.dumps(
        {"event_type": "a", "timestamp": 1, "data": {"request_id": "r-1", "pad": "x" * 100}}
    ).encode()
    records = pl.DataFrame({"request_id": ["r-0", "r-1"], "value": [b"{}", body]})
    shown = report.sent_vs_stored({"node": ("r-1", body), "rust": ("r-2", body)}, records)
    assert shown.comparisons["node"]["byte_identical"]
    assert shown.comparisons["rust"] == {"found": False, "sent_bytes": len(body)}
    page = shown._repr_html_()
    assert "r-1" in page and "(100 characters)" in page and "no record with this request id" in page
    assert "byte for byte identical" in repr(shown)
