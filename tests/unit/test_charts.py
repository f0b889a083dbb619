"""Charts on small hand-built frames: encodings, titles with units, colors, embedded data."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import altair as alt
import polars as pl
import pytest

from ingestlab import charts
from ingestlab.analysis.latency import hdr_table, windows
from ingestlab.units import NS_PER_MS

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
T0_NS = 1_800_000_000_000_000_000


# --- helpers -------------------------------------------------------------------------------


def _views(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """Every unit view of a spec (through layer, vconcat and facet), in order."""
    if "layer" in spec:
        return [v for child in spec["layer"] for v in _views(child)]
    if "vconcat" in spec:
        return [v for child in spec["vconcat"] for v in _views(child)]
    if "spec" in spec:  # facet
        return _views(spec["spec"])
    return [spec]


def _data(spec: dict[str, Any], view: dict[str, Any]) -> list[dict[str, Any]]:
    """The rows a view embeds (its own data, else the top level's)."""
    name = (view.get("data") or spec["data"])["name"]
    return spec["datasets"][name]


def _view_with(spec: dict[str, Any], channel: str, field: str) -> dict[str, Any]:
    found = [v for v in _views(spec) if v.get("encoding", {}).get(channel, {}).get("field") == field]
    assert found, f"no view encodes {channel}={field}"
    return found[0]


def _assert_service_colors(view: dict[str, Any]) -> None:
    color = view["encoding"]["color"]
    assert color["field"] == "service"
    assert color["scale"] == {
        "domain": ["node", "rust"],
        "range": [charts.SERVICE_COLORS["node"], charts.SERVICE_COLORS["rust"]],
    }


def _steps() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "service": ["node", "node", "rust", "rust"],
            "step": [0, 1, 0, 1],
            "engine": ["asyncio", "oha", "asyncio", "oha"],
            "offered_rps": [1000, 2000, 1000, 2000],
            "achieved_rps": [1000.0, 1500.0, 1000.0, 1990.0],
            "p50_ms": [0.5, 900.0, 8.0, 9.0],
            "p99_ms": [6.0, 1400.0, 15.0, None],
            "error_rate": [0.0, 0.02, 0.0, 0.0],
            "passed": [True, False, True, False],
            "outcome": ["pass", "fail", "pass", "inconclusive"],
            "reasons": ["", "achieved 1500 of 2000 req/s", "", "load generator saturated"],
        }
    )


def _requests(latencies_ms: dict[str, list[float]], *, offered_rps: float = 1000.0) -> pl.DataFrame:
    """Request rows, one per latency, 1 ms apart, answered 202, all in the measured phase."""
    rows = []
    for service, values in latencies_ms.items():
        for i, latency in enumerate(values):
            start = T0_NS + i * NS_PER_MS
            rows.append(
                {
                    "service": service,
                    "step": 0,
                    "offered_rps": offered_rps,
                    "phase": "measure",
                    "intended_start_ns": start,
                    "actual_start_ns": start,
                    "end_ns": start + round(latency * NS_PER_MS),
                    "status": 202,
                }
            )
    return pl.DataFrame(rows)


# --- throughput ceiling --------------------------------------------------------------------


def test_ceiling_steps_marks_verdicts_and_draws_the_diagonal() -> None:
    spec = charts.ceiling_steps(_steps().reverse()).to_dict()  # rust first: the chart puts node first
    assert spec["title"]["text"] == "Throughput ceiling: achieved vs offered rate"
    points = _view_with(spec, "shape", "verdict")
    assert points["encoding"]["x"] == {
        "field": "offered_rps",
        "type": "quantitative",
        "title": "offered rate (req/s)",
    }
    assert points["encoding"]["y"]["title"] == "achieved rate (req/s)"
    assert points["encoding"]["shape"]["scale"]["domain"] == ["passed", "failed", "inconclusive"]
    _assert_service_colors(points)
    verdicts = {(row["service"], row["step"]): row["verdict"] for row in _data(spec, points)}
    assert verdicts == {
        ("node", 0): "passed",
        ("node", 1): "failed",
        ("rust", 0): "passed",
        ("rust", 1): "inconclusive",
    }
    assert {t["field"] for t in points["encoding"]["tooltip"]} >= {"reasons", "engine", "p99_ms"}
    # where both kept up the points coincide: node drawn first and larger, a ring around rust's
    size = points["encoding"]["size"]["scale"]
    assert size["domain"] == ["node", "rust"] and size["range"][0] > size["range"][1]
    assert [row["service"] for row in _data(spec, points)] == ["node", "node", "rust", "rust"]
    diagonal = _view_with(spec, "x", "rate_rps")
    assert diagonal["encoding"]["y"]["field"] == "rate_rps"  # y = x
    assert [row["rate_rps"] for row in _data(spec, diagonal)] == [0.0, 2000.0]


def test_step_latency_is_log_scale_with_both_percentiles_and_the_bound() -> None:
    spec = charts.step_latency(_steps(), p99_bound_ms=100).to_dict()
    lines = _view_with(spec, "strokeDash", "percentile")
    y = lines["encoding"]["y"]
    assert y["scale"] == {"type": "log"} and "(ms" in y["title"]
    _assert_service_colors(lines)
    rows = _data(spec, lines)
    # rust step 1 has no p99: left out rather than drawn at zero on a log axis
    assert len(rows) == 7
    assert {row["percentile"] for row in rows} == {"p50", "p99"}
    bound = [v for v in _views(spec) if v["mark"]["type"] == "rule"]
    assert [row["latency_ms"] for row in _data(spec, bound[0])] == [100.0]
    assert not [v for v in _views(charts.step_latency(_steps()).to_dict()) if v["mark"]["type"] == "rule"]


# --- latency distributions -----------------------------------------------------------------


def test_latency_percentiles_hdr_axis() -> None:
    rows = _requests({"node": [float(i) for i in range(1, 2001)], "rust": [1.0] * 2000})
    spec = charts.latency_percentiles(hdr_table(rows, by="service")).to_dict()
    x = spec["encoding"]["x"]
    assert x["field"] == "one_over_one_minus_p"
    assert x["scale"]["type"] == "log"
    assert x["axis"]["values"] == [2.0, 10.0, 100.0, 1000.0, 10000.0]  # up to p99.99 (1 / 0.0001)
    assert x["axis"]["labelExpr"] == "format(100 - 100 / datum.value, '.4~f') + '%'"
    assert spec["encoding"]["y"]["scale"] == {"type": "log"} and "(ms" in spec["encoding"]["y"]["title"]
    _assert_service_colors(spec)
    data = _data(spec, spec)
    assert 100.0 not in {row["percentile"] for row in data}  # the max has no place on the axis
    node_p99 = [row["latency_ms"] for row in data if row["service"] == "node" and row["percentile"] == 99.0]
    assert node_p99 == [1980.0]


def test_latency_percentiles_one_panel_per_rate() -> None:
    rows = pl.concat(
        [_requests({"node": [1.0, 2.0], "rust": [3.0, 4.0]}, offered_rps=r) for r in (1000.0, 4000.0)]
    )
    spec = charts.latency_percentiles(hdr_table(rows, by=["service", "offered_rps"])).to_dict()
    assert spec["facet"]["field"] == "offered_rps"
    assert spec["facet"]["title"] == "offered rate (req/s)"
    assert spec["spec"]["encoding"]["color"]["field"] == "service"
    with pytest.raises(ValueError, match="at most one key besides service"):
        charts.latency_percentiles(hdr_table(rows, by=["service", "offered_rps", "step"]))


def test_latency_histogram_embeds_bins_not_requests() -> None:
    rows = _requests({"node": [1.0] * 900 + [100.0] * 100, "rust": [5.0] * 10})
    spec = charts.latency_histogram(rows, bins_per_decade=10).to_dict()
    assert spec["encoding"]["x"]["scale"] == {"type": "log"} and "(ms" in spec["encoding"]["x"]["title"]
    assert spec["encoding"]["y"] == {
        "field": "share_pct",
        "type": "quantitative",
        "title": "share of requests (%)",
    }
    _assert_service_colors(spec)
    data = _data(spec, spec)
    assert len(data) == 3  # node: two bins; rust: one
    shares = {(row["service"], row["requests"]): row["share_pct"] for row in data}
    assert shares == {("node", 900): 90.0, ("node", 100): 10.0, ("rust", 10): 100.0}
    for row in data:  # each bin's centre lies inside it
        assert row["low_ms"] < row["latency_ms"] < row["high_ms"]


def test_latency_over_time_two_panels_with_units() -> None:
    rows = _requests({"node": [2.0] * 3000, "rust": [1.0] * 3000})
    spec = charts.latency_over_time(windows(rows, by=["service", "step"], every="1s")).to_dict()
    latency, rates = spec["vconcat"]
    assert latency["encoding"]["y"]["title"] == "p99 latency (ms, log scale)"
    assert latency["encoding"]["y"]["scale"] == {"type": "log"}
    assert latency["encoding"]["x"]["title"] == "time since the service's first request (s)"
    assert rates["encoding"]["y"]["title"] == "rate (req/s)"
    assert rates["encoding"]["strokeDash"]["scale"]["domain"] == ["answered 2xx", "offered"]
    _assert_service_colors(latency)
    # 3,000 requests 1 ms apart: windows at 0, 1 and 2 s per service, times per service
    assert sorted(row["t_s"] for row in _data(spec, latency) if row["service"] == "rust") == [0.0, 1.0, 2.0]


def test_latency_over_time_merges_long_series_keeping_the_worst_p99() -> None:
    n = 6_000
    frame = pl.DataFrame(
        {
            "service": ["node"] * n,
            "window_start": pl.datetime_range(
                pl.datetime(2026, 1, 1),
                pl.datetime(2026, 1, 1) + pl.duration(seconds=n - 1),
                "1s",
                eager=True,
                time_zone="UTC",
            ),
            "t_s": [float(i) for i in range(n)],
            "count": [100] * n,
            "offered_rps": [100.0] * n,
            "throughput_rps": [100.0] * n,
            "p99_ms": [500.0 if i == 4_321 else 5.0 for i in range(n)],
        }
    )
    spec = charts.latency_over_time(frame).to_dict()
    latency, rates = spec["vconcat"]
    rows = _data(spec, latency)
    assert len(rows) <= charts.MAX_CHART_ROWS // 2
    assert max(row["p99_ms"] for row in rows) == 500.0  # a spike survives the merge
    assert {row["rps"] for row in _data(spec, rates)} == {100.0}


# --- delivery, memory, start-up, claims ----------------------------------------------------


def test_delivery_bars_counts_per_service() -> None:
    table = pl.DataFrame(
        {
            "service": ["node", "rust"],
            "sent": [10, 10],
            "accepted": [9, 8],
            "delivered": [9, 7],
            "lost": [0, 1],
        }
    )
    spec = charts.delivery_bars(table).to_dict()
    bars = _view_with(spec, "xOffset", "service")
    assert bars["mark"]["type"] == "bar"
    assert bars["encoding"]["y"]["title"] == "requests"
    assert bars["encoding"]["x"]["sort"] == ["accepted", "delivered", "lost"]
    _assert_service_colors(bars)
    counts = {(row["service"], row["outcome"]): row["requests"] for row in _data(spec, bars)}
    assert counts == {
        ("node", "accepted"): 9,
        ("node", "delivered"): 9,
        ("node", "lost"): 0,
        ("rust", "accepted"): 8,
        ("rust", "delivered"): 7,
        ("rust", "lost"): 1,
    }
    assert any(v["mark"]["type"] == "text" for v in _views(spec))  # a zero is labelled, not invisible


def test_memory_over_time_with_gc_pauses() -> None:
    samples = pl.DataFrame(
        {
            "t_ns": [T0_NS, T0_NS + 10**9, T0_NS + 2 * 10**9, T0_NS + 50 * 10**9, T0_NS + 51 * 10**9],
            "rss_bytes": [100 * 2**20, 150 * 2**20, 120 * 2**20, 20 * 2**20, 21 * 2**20],
            "service": ["node", "node", "node", "rust", "rust"],
        }
    )
    gc = pl.DataFrame({"wall_ns": [T0_NS + 1_500_000_000], "pause_ms": [12.5], "kind": ["Mark-Compact"]})
    spec = charts.memory_over_time(samples, gc).to_dict()
    memory, pauses = spec["vconcat"]
    assert memory["encoding"]["y"]["title"] == "resident memory, RSS (MiB)"
    assert memory["encoding"]["x"]["title"] == "time since the service's first sample (s)"
    _assert_service_colors(memory)
    rss = {(row["service"], row["t_s"]): row["rss_mib"] for row in _data(spec, memory)}
    assert rss == {
        ("node", 0.0): 100.0,
        ("node", 1.0): 150.0,
        ("node", 2.0): 120.0,
        ("rust", 0.0): 20.0,
        ("rust", 1.0): 21.0,
    }
    assert pauses["mark"]["type"] == "rule"
    assert pauses["encoding"]["y"]["title"] == "GC pause (ms)"
    # no service column: V8's GC, so node's, placed on node's clock
    assert _data(spec, pauses) == [{"service": "node", "kind": "Mark-Compact", "pause_ms": 12.5, "t_s": 1.5}]
    assert spec["resolve"]["scale"]["x"] == "shared"
    without_gc = charts.memory_over_time(samples).to_dict()
    assert "vconcat" not in without_gc and without_gc["mark"]["type"] == "line"


def test_memory_over_time_thins_long_series_keeping_the_peak() -> None:
    n = 12_000
    samples = pl.DataFrame(
        {
            "t_ns": [T0_NS + i * 10_000_000 for i in range(n)],
            "rss_bytes": [(900 if i == 7_777 else 100) * 2**20 for i in range(n)],
            "service": ["node"] * n,
        }
    )
    spec = charts.memory_over_time(samples).to_dict()
    rows = _data(spec, spec)
    assert len(rows) <= charts.MAX_CHART_ROWS
    assert max(row["rss_mib"] for row in rows) == 900.0


def test_cold_start_distribution() -> None:
    runs = pl.DataFrame(
        {"service": ["node"] * 3 + ["rust"] * 3, "cold_start_ms": [900.0, 950.0, 1000.0, 50, 55, 60]}
    )
    spec = charts.cold_start_distribution(runs).to_dict()
    marks = [v["mark"]["type"] if isinstance(v["mark"], dict) else v["mark"] for v in _views(spec)]
    assert marks == ["boxplot", "tick"]
    ticks = _views(spec)[1]
    assert ticks["encoding"]["x"]["title"] == "cold start: spawn to first 202 (ms, log scale)"
    assert ticks["encoding"]["x"]["scale"] == {"type": "log"}
    _assert_service_colors(ticks)


def test_claims_ratios_dots_intervals_and_the_line_at_one() -> None:
    claims = pl.DataFrame(
        {
            "metric": ["p99 latency", "throughput limit"],
            "claim_ratio": [0.05, 2.33],
            "measured_ratio": [0.8, 4.0],
            "ci_low": [0.6, None],
            "ci_high": [1.1, None],
        }
    )
    spec = charts.claims_ratios(claims).to_dict()
    one, intervals, dots = _views(spec)
    assert _data(spec, one) == [{"ratio": 1.0}]
    assert dots["encoding"]["x"]["scale"] == {"type": "log"}
    assert "1 = no difference" in dots["encoding"]["x"]["title"]
    assert dots["encoding"]["y"]["sort"] == ["p99 latency", "throughput limit"]
    assert {(row["metric"], row["source"]) for row in _data(spec, dots)} == {
        ("p99 latency", "article claims"),
        ("p99 latency", "measured"),
        ("throughput limit", "article claims"),
        ("throughput limit", "measured"),
    }
    assert intervals["encoding"]["x2"]["field"] == "ci_high"
    assert [row["metric"] for row in _data(spec, intervals)] == ["p99 latency"]  # no interval: no bar


# --- limits and files ----------------------------------------------------------------------


def test_more_rows_than_the_limit_are_refused_whatever_altairs_own_limit() -> None:
    n = charts.MAX_CHART_ROWS
    runs = pl.DataFrame({"service": ["node"] * n, "cold_start_ms": [float(i + 1) for i in range(n)]})
    assert charts.cold_start_distribution(runs).to_dict()  # the limit itself is allowed
    too_many = pl.concat([runs, runs.head(1)])
    # the charts check the rows themselves: no process-wide altair setting turns the check off
    with alt.data_transformers.disable_max_rows(), pytest.raises(charts.TooManyRowsError, match="5,001 rows"):
        charts.cold_start_distribution(too_many)
    assert issubclass(charts.TooManyRowsError, alt.MaxRowsError)  # what altair's own limit raised


def test_importing_the_charts_changes_no_altair_setting() -> None:
    # In a fresh interpreter: in this one the charts are imported already.
    probe = """
import json
import altair as alt
def settings():
    return {
        "data transformer": [alt.data_transformers.active, alt.data_transformers.options],
        "renderer": [alt.renderers.active, alt.renderers.options],
        "theme": [alt.theme.active, alt.theme.options],
    }
before = settings()
import ingestlab.charts
print(json.dumps({"before": before, "after": settings(), "file": ingestlab.charts.__file__}))
"""
    lib = str(Path(charts.__file__).parents[2])  # the lib folder these tests import from
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (lib, os.environ.get("PYTHONPATH")) if p)}
    done = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True)
    found = json.loads(done.stdout.splitlines()[-1])
    assert found["file"] == charts.__file__
    assert found["after"] == found["before"]


def test_save_png_and_svg(tmp_path: Path) -> None:
    chart = charts.ceiling_steps(_steps())
    png = charts.save_png(chart, tmp_path / "out" / "ceiling.png")
    data = png.read_bytes()
    assert data[:8] == PNG_MAGIC
    width = int.from_bytes(data[16:20], "big")
    assert width > 2 * charts.WIDTH  # scale 2: twice the CSS pixels of the plot, plus axes
    svg = charts.save_svg(chart, tmp_path / "ceiling.svg").read_text()
    assert svg.lstrip().startswith("<svg") and "offered rate (req/s)" in svg


def test_static_renderer_emits_sharp_png_at_the_chart_size() -> None:
    chart = (
        alt.Chart(pl.DataFrame({"x": [1, 2]})).mark_point().encode(x="x:Q").properties(width=200, height=100)
    )
    try:
        charts.use_static_renderer(scale=2)
        bundle, metadata = alt.renderers.get()(chart.to_dict())
    finally:
        alt.renderers.enable("default")
    png = bundle["image/png"]
    assert png[:8] == PNG_MAGIC
    pixels = int.from_bytes(png[16:20], "big")
    assert metadata["image/png"]["width"] == pixels / 2
