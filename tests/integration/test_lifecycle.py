"""Start-up, graceful shutdown under load, and teardown that leaves nothing behind."""

from __future__ import annotations

import concurrent.futures
import time

import polars as pl
import psutil
import pytest

from ingestlab.analysis.delivery import counts_by_group, delivery_table
from ingestlab.load.burst import send_burst
from ingestlab.load.payloads import PayloadSet
from ingestlab.stack import Stack


def test_sigterm_during_a_burst_loses_no_accepted_record(stack, service_name):
    service = stack.start_service(service_name)  # a fresh process of its own
    payloads = PayloadSet(4000, size_bytes=2_000, seed=5, id_prefix=f"{service_name}-term")
    items = [(payloads.request_id(i), payloads.body(i)) for i in range(len(payloads))]
    before = stack.topic_size()
    try:
        with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
            burst = pool.submit(send_burst, service.ingest_url, items, concurrency=8, timeout_s=20)
            deadline = time.monotonic() + 20
            while stack.topic_size() < before + 200 and time.monotonic() < deadline:
                time.sleep(0.02)
            exit_code = service.stop(timeout_s=30)
            rows = burst.result().with_columns(service=pl.lit(service_name))
    finally:
        stack.start_service(service_name)  # the other tests share this stack
    accepted = int((rows["status"] == 202).sum())
    assert exit_code == 0, service.logs()
    assert 200 <= accepted < len(items), "SIGTERM should land in the middle of the burst"
    stack.wait_for_records(before + accepted)
    counts = counts_by_group(delivery_table(rows, stack.read_topic()))[service_name]
    assert counts["accepted"] == accepted
    assert counts["lost"] == 0 and counts["delivered"] == accepted


def _tree(stack) -> list[psutil.Process]:
    procs = [psutil.Process(pid) for pid in stack.pids().values() if pid is not None]
    return procs + [child for p in procs for child in p.children(recursive=True)]


@pytest.mark.parametrize("interruption", [None, RuntimeError, KeyboardInterrupt])
def test_stack_exit_leaves_no_process_behind(config, tmp_path, interruption):
    procs: list[psutil.Process] = []
    try:
        with Stack(config, log_dir=tmp_path) as running:
            procs = _tree(running)
            assert {p.name() for p in procs} >= {"java", "node", "ingest-rust"}
            if interruption is not None:
                raise interruption("cell interrupted")
    except (RuntimeError, KeyboardInterrupt) as exc:
        assert interruption is not None and isinstance(exc, interruption)
    _, alive = psutil.wait_procs(procs, timeout=5)
    assert alive == [], f"left behind: {[(p.pid, p.name()) for p in alive]}"
    assert len(procs) >= 3
