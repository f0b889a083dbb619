"""Cold start, memory at ready and deployment footprint of both services (real broker)."""

from __future__ import annotations

import os
import time

import polars as pl
import psutil
import pytest

from ingestlab.build.footprint import footprint, parse_ldd
from ingestlab.experiments.startup import COLD_START_SCHEMA, cold_start
from ingestlab.files import tree_bytes
from ingestlab.stack import Stack
from ingestlab.telemetry.sampler import ProcessSampler, cpu_by_thread
from ingestlab.units import MB


@pytest.fixture(scope="module")
def startup_stack(config, tmp_path_factory):
    """A broker and both services of this module's own: cold starts restart the services."""
    with Stack(config, log_dir=tmp_path_factory.mktemp("startup-logs")) as running:
        yield running


@pytest.mark.parametrize("service", ["node", "rust"])
def test_cold_start_of_each_service(startup_stack, service):
    before = startup_stack.service(service).pid
    rows = cold_start(startup_stack, service, runs=3)
    print(f"\n{rows}")
    assert rows.schema == pl.Schema(COLD_START_SCHEMA) and rows["run"].to_list() == [0, 1, 2]
    assert rows["cold_start_ms"].is_between(0, 30_000, closed="none").all()
    assert (rows["port_open_ms"] > 0).all() and (rows["port_open_ms"] <= rows["cold_start_ms"]).all()
    assert (rows["posts"] >= 1).all() and (rows["rss_at_ready_mib"] > 0).all()
    assert (rows["uss_at_ready_mib"] <= rows["rss_at_ready_mib"]).all()
    # Every run's process is gone; the stack's own service was restarted and serves again.
    assert not any(psutil.pid_exists(pid) for pid in rows["pid"]), "a cold-start process was left behind"
    restored = startup_stack.service(service)
    assert restored.is_running() and restored.pid != before and restored.healthy()


@pytest.mark.parametrize("service", ["node", "rust"])
def test_sampler_sees_the_services_threads(startup_stack, service):
    with ProcessSampler(startup_stack.service(service), interval_s=0.1) as sampler:
        time.sleep(1.0)
    names = set(sampler.thread_samples()["name"])
    assert {"rdk:main", "rdk:broker1"} <= names, names  # librdkafka names its threads in both
    assert ("node" in names) if service == "node" else any(n.startswith("actix") for n in names)
    main = cpu_by_thread(sampler.thread_samples()).filter("main_thread")
    assert main.height == 1 and sampler.stats.ticks >= 10 and sampler.overhead_core_pct >= 0


def test_footprint_of_both_services():
    rust, node = footprint("rust"), footprint("node")
    print(f"\nrust {rust['total_bytes']:,} B ({rust['total_without_base_bytes']:,} without base libraries), "
          f"node {node['total_bytes']:,} B ({node['total_without_base_bytes']:,})")
    binary = [p for p in rust["parts"] if p["kind"] == "executable"]
    assert len(binary) == 1 and binary[0]["bytes"] > 1 * MB
    assert node["total_bytes"] > rust["total_bytes"]
    for fp in (rust, node):
        assert fp["total_bytes"] == sum(p["bytes"] for p in fp["parts"])
        assert 0 < fp["total_without_base_bytes"] < fp["total_bytes"]
        assert any(p["name"].startswith("libc.so") and p["base"] for p in fp["parts"])
    assert {p["kind"] for p in node["parts"]} == {"executable", "shared-library", "node_modules", "source"}
    assert {"server.js", "package.json"} <= {p["name"] for p in node["parts"]}
    assert "node-rdkafka" in node["packages"] and "express" in node["packages"]
    assert rust["packages"] == {}


def test_ldd_output_is_parsed_to_files(tmp_path):
    lib = tmp_path / "libz.so.1.2.13"
    lib.write_bytes(b"x")
    (tmp_path / "libz.so.1").symlink_to(lib)
    output = (f"\tlinux-vdso.so.1 (0x00007ffd)\n"
              f"\tlibz.so.1 => {tmp_path}/libz.so.1 (0x00007fa98440e000)\n"
              f"\tlibrdkafka.so.1 => not found\n"
              f"\t/lib64/ld-linux-x86-64.so.2 (0x00007fa984440000)\n")
    libraries = parse_ldd(output)
    assert set(libraries) == {"libz.so.1", "ld-linux-x86-64.so.2"}
    assert libraries["libz.so.1"] == lib


def test_tree_bytes_counts_hard_links_once_and_skips_symlinks(tmp_path):
    (tmp_path / "a").write_bytes(b"x" * 1000)
    os.link(tmp_path / "a", tmp_path / "b")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "c").write_bytes(b"y" * 234)
    (tmp_path / "link").symlink_to(tmp_path / "sub" / "c")
    assert tree_bytes(tmp_path) == 1234
