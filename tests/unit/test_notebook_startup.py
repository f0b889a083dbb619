"""ingestlab.notebook.startup: a startup run beside the article, footprint parts, and what
node_modules holds."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from factories import summary

from ingestlab.config import StudyConfig
from ingestlab.notebook.startup import footprint_parts, node_modules_breakdown, startup_vs_article
from ingestlab.results import Run


def _startup_run(tmp_path: Path, services: dict[str, dict[str, object]]) -> Run:
    config = StudyConfig.for_profile("quick", runs_dir=tmp_path, services=tuple(services))
    run = Run.create(config, "startup")
    run.write_summary(summary("startup", services))
    return run


def test_startup_vs_article_and_footprint_parts(tmp_path: Path) -> None:
    parts = [{"kind": "executable", "name": "x", "path": "/x", "bytes": 10_000_000, "base": False}]
    run = _startup_run(
        tmp_path,
        {
            "node": {"cold_start_ms": 200.0, "rss_at_ready_mib": 60.0, "footprint_bytes": 600_000_000,
                     "footprint_parts": parts},
            "rust": {"cold_start_ms": 20.0, "rss_at_ready_mib": 6.0, "footprint_bytes": 10_000_000,
                     "footprint_parts": parts},
        },
    )
    table = startup_vs_article(run)
    cold = table.row(0, named=True)
    assert (cold["unit"], cold["node_article"], cold["rust_article"]) == ("s", 1.4, 0.08)
    assert (cold["node_measured"], cold["rust_measured"]) == pytest.approx((0.2, 0.02))
    assert cold["measured_ratio"] == pytest.approx(0.1)
    memory = table.row(1, named=True)
    assert (memory["unit"], memory["node_measured"], memory["rust_measured"]) == ("MiB", 60.0, 6.0)
    footprint = table.row(2, named=True)
    assert (footprint["unit"], footprint["node_measured"], footprint["rust_measured"]) == ("MB", 600.0, 10.0)
    assert table["article_ratio"][2] == pytest.approx(24 / 185)
    frame = footprint_parts(run)
    assert frame["service"].to_list() == ["node", "rust"] and frame["mb"].to_list() == [10.0, 10.0]


def test_startup_vs_article_of_one_service_has_no_measured_ratio(tmp_path: Path) -> None:
    table = startup_vs_article(_startup_run(tmp_path, {"rust": {"cold_start_ms": 20.0}}))
    assert table["node_measured"].to_list() == [None, None, None]
    assert table["measured_ratio"].to_list() == [None, None, None]
    assert table["rust_measured"][0] == pytest.approx(0.02)


def test_node_modules_breakdown_separates_what_runs_from_the_build_tree(tmp_path: Path) -> None:
    modules = tmp_path / "node_modules"
    files = {
        "express/index.js": 100,
        "node-rdkafka/lib/producer.js": 50,
        "node-rdkafka/deps/librdkafka/src/rdkafka.c": 5_000,
        "node-rdkafka/build/deps/librdkafka.a": 2_000,
        ".package-lock.json": 30,  # npm's, in no package: not counted
    }
    for name, size in files.items():
        path = modules / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x" * size)
    # node-gyp hard-links its outputs: one file, counted once
    os.link(modules / "node-rdkafka/build/deps/librdkafka.a", modules / "node-rdkafka/build/librdkafka.a")
    table = node_modules_breakdown(modules)
    sizes = dict(zip(table["group"], table["bytes"], strict=True))
    assert sizes == {
        "the other packages (express and its dependencies, nan, ...)": 100,
        "node-rdkafka: JavaScript, C++ sources, typings": 50,
        "node-rdkafka/deps/: librdkafka's sources and build tree": 5_000,
        "node-rdkafka/build/: object files and static archives": 2_000,
    }
    assert table.filter("needed_at_runtime")["bytes"].sum() == 150
    assert table["needed_at_runtime"].to_list() == [True, True, False, False]
    assert table["mb"].to_list() == pytest.approx([b / 1e6 for b in table["bytes"]])
