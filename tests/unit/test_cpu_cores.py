"""analysis.cpu_cores and telemetry.core_times' parser on small hand-made frames: per-core
shares by thread group, core busy time, contention, roles, means over trials."""

from __future__ import annotations

import polars as pl
import pytest

from ingestlab.analysis.claims import load_claims
from ingestlab.analysis.cpu_cores import (
    article_core_pct,
    core_busy,
    core_table,
    group_core_pct,
    group_means,
    load_by_core,
    measured_window,
    process_core_pct,
    role_means,
    thread_groups,
    with_roles,
)
from ingestlab.telemetry.core_times import CORE_TIMES_SCHEMA, parse_proc_stat
from ingestlab.telemetry.sampler import CLK_TCK, THREAD_SAMPLE_SCHEMA

S = 1_000_000_000  # ns


def _threads(rows: list[tuple]) -> pl.DataFrame:
    """Thread samples from (t_s, pid, tid, name, cpu_s, last_cpu): cumulative CPU, user only."""
    return pl.DataFrame(
        [(round(t * S), pid, tid, name, cpu, 0.0, core) for t, pid, tid, name, cpu, core in rows],
        schema=THREAD_SAMPLE_SCHEMA, orient="row")


# A Node process (pid 10) over 2 s: its event loop (tid 10) busy 50% on core 1, a pool thread
# ("node") 10% on core 0 for the first second and on core 1 for the second, librdkafka 5% on core 0.
NODE = _threads([
    (0, 10, 10, "node", 0.0, 1), (1, 10, 10, "node", 0.5, 1), (2, 10, 10, "node", 1.0, 1),
    (0, 10, 11, "node", 0.0, 0), (1, 10, 11, "node", 0.1, 0), (2, 10, 11, "node", 0.2, 1),
    (0, 10, 12, "rdk:broker1", 0.0, 0), (1, 10, 12, "rdk:broker1", 0.05, 0),
    (2, 10, 12, "rdk:broker1", 0.1, 0),
])


def test_thread_groups_by_program() -> None:
    node = thread_groups(NODE, "node").filter(pl.col("t_ns") == 0).sort("tid")["group"].to_list()
    assert node == ["event loop", "V8 and libuv pool", "librdkafka"]
    rust = _threads([(0, 20, 20, "ingest-rust", 0.0, 0), (0, 20, 21, "actix-rt|system", 0.0, 1),
                     (0, 20, 22, "actix-server ac", 0.0, 0), (0, 20, 23, "producer pollin", 0.0, 0),
                     (0, 20, 24, "rdk:main", 0.0, 0), (0, 20, 25, "tokio-x", 0.0, 0)])
    assert thread_groups(rust, "rust").sort("tid")["group"].to_list() == [
        "main", "actix workers", "actix acceptor", "rdkafka poller", "librdkafka", "other"]
    # a worker process of a per-core service: its main thread is an event loop too
    workers = _threads([(0, 30, 30, "python", 0.0, 0), (0, 31, 31, "python", 0.0, 1),
                        (0, 31, 32, "x", 0.0, 1)])
    groups = thread_groups(workers, "python").sort("tid")["group"].to_list()
    assert groups == ["event loop", "event loop", "other"]


def test_group_core_pct_puts_each_interval_on_the_core_last_run_on() -> None:
    found = group_core_pct(NODE, program="node", start_ns=0, end_ns=2 * S).sort("group", "core")
    rows = {(r["group"], r["core"]): r["core_pct"] for r in found.iter_rows(named=True)}
    assert rows == pytest.approx({("V8 and libuv pool", 0): 5.0, ("V8 and libuv pool", 1): 5.0,
                                  ("event loop", 1): 50.0, ("librdkafka", 0): 5.0})
    assert found.filter(pl.col("group") == "event loop")["threads"].to_list() == [1]
    # the window: only the ticks within it count, and % is of that window
    second = group_core_pct(NODE, program="node", start_ns=1 * S, end_ns=2 * S)
    assert second.filter(pl.col("group") == "event loop")["core_pct"].item() == pytest.approx(50.0)
    assert second.filter(pl.col("group") == "V8 and libuv pool")["core"].to_list() == [1]
    with pytest.raises(ValueError, match="two ticks"):
        group_core_pct(NODE, program="node", start_ns=0, end_ns=S // 2)


def test_core_busy_and_process_core_pct() -> None:
    # core 0: 1.8 s busy, 0.1 s idle, 0.1 s stolen; core 1: 0.5 s busy, 1.5 s idle (the 2 s window)
    ticks = [(0, 0, 10.0, 90.0, 1.0), (0, 1, 20.0, 80.0, 0.0), (2 * S, 0, 11.8, 90.1, 1.1),
             (2 * S, 1, 20.5, 81.5, 0.0), (3 * S, 0, 99.0, 0.0, 0.0), (3 * S, 1, 99.0, 0.0, 0.0)]
    times = pl.DataFrame(ticks, schema=CORE_TIMES_SCHEMA, orient="row")
    busy = core_busy(times, start_ns=0, end_ns=2 * S)  # the tick at 3 s is outside
    assert busy["core"].to_list() == [0, 1]
    assert busy["busy_pct"].to_list() == pytest.approx([90.0, 25.0])
    assert busy["steal_pct"].to_list() == pytest.approx([5.0, 0.0])
    # % of the accounted time, not of the wall time: with half the idle booked, busy is 0.5 of 1.25 s
    late = times.with_columns(
        idle_s=pl.when(pl.col("core") == 1).then(pl.col("idle_s") / 2).otherwise("idle_s"))
    assert core_busy(late, start_ns=0, end_ns=2 * S)["busy_pct"][1] == pytest.approx(0.5 / 1.25 * 100)
    broker = _threads([(0, 5, 5, "java", 0.0, 0), (2, 5, 5, "java", 0.6, 0), (0, 5, 6, "java", 0.0, 0),
                       (2, 5, 6, "java", 0.2, 0)])
    found = process_core_pct(broker, start_ns=0, end_ns=2 * S).to_dicts()
    assert found == [{"core": 0, "core_pct": pytest.approx(40.0)}]


def _table() -> pl.DataFrame:
    groups = group_core_pct(NODE, program="node", start_ns=0, end_ns=2 * S)
    busy = pl.DataFrame({"core": [0, 1], "busy_pct": [90.0, 50.0], "steal_pct": [1.0, 0.0]},
                        schema={"core": pl.Int32, "busy_pct": pl.Float64, "steal_pct": pl.Float64})
    broker = pl.DataFrame({"core": [0], "core_pct": [40.0]},
                          schema={"core": pl.Int32, "core_pct": pl.Float64})
    return core_table(groups, busy, broker, load_by_core(30.0, (0,)))


def test_core_table_states_the_contention_on_each_core() -> None:
    table = _table()
    assert table.columns == ["core", "service_pct", "broker_pct", "load_pct", "rest_pct", "busy_pct",
                             "steal_pct"]
    core0, core1 = table.to_dicts()
    # core 0: service 10 (pool 5 + librdkafka 5), broker 40, load engine 30: the rest of the 90 is 10
    assert core0 == pytest.approx({"core": 0, "service_pct": 10.0, "broker_pct": 40.0, "load_pct": 30.0,
                                   "rest_pct": 10.0, "busy_pct": 90.0, "steal_pct": 1.0})
    # core 1: the service's 55 by last core is more than the core's 50 busy: the rest is clipped at 0
    assert core1["service_pct"] == pytest.approx(55.0) and core1["rest_pct"] == 0.0
    assert load_by_core(30.0, (0, 1)) == {0: 15.0, 1: 15.0}


def test_roles_rank_the_service_cores_by_its_share() -> None:
    roles = with_roles(_table(), (0, 1))
    assert dict(zip(roles["core"], roles["role"], strict=True)) == {0: "other", 1: "busiest"}
    # a core the service may not use has no role; ties go to the lower core number
    alone = with_roles(_table(), (0,))
    assert alone["role"].to_list() == ["busiest", None]
    tied = with_roles(_table().with_columns(service_pct=pl.lit(5.0)), (0, 1))
    assert tied["role"].to_list() == ["busiest", "other"]


def _trials() -> tuple[pl.DataFrame, pl.DataFrame]:
    """Two trials of node: the busiest core is core 1, then core 0."""
    cores = pl.DataFrame({
        "service": ["node"] * 4, "trial": [0, 0, 1, 1], "core": [0, 1, 0, 1],
        "role": ["other", "busiest", "busiest", "other"],
        "service_pct": [10.0, 60.0, 80.0, 20.0], "broker_pct": [40.0, 0.0, 30.0, 0.0],
        "load_pct": [20.0, 0.0, 20.0, 0.0], "rest_pct": [5.0, 10.0, 0.0, 30.0],
        "busy_pct": [75.0, 70.0, 100.0, 50.0], "steal_pct": [0.0, 0.0, 0.0, 0.0]})
    groups = pl.DataFrame({
        "service": ["node"] * 4, "trial": [0, 0, 1, 1], "core": [1, 1, 0, 1],
        "role": ["busiest", "busiest", "busiest", "other"],
        "group": ["event loop", "librdkafka", "event loop", "librdkafka"],
        "core_pct": [50.0, 10.0, 80.0, 20.0]})
    return cores, groups


def test_role_means_over_trials() -> None:
    cores, _ = _trials()
    busiest, other = role_means(cores).to_dicts()
    assert busiest["role"] == "busiest" and busiest["cores"] == [0, 1] and busiest["trials"] == 2
    assert busiest["service_pct"] == pytest.approx(70.0)
    assert (busiest["service_min_pct"], busiest["service_max_pct"]) == (60.0, 80.0)
    assert busiest["broker_pct"] == pytest.approx(15.0) and busiest["rest_pct"] == pytest.approx(5.0)
    assert other["role"] == "other" and other["service_pct"] == pytest.approx(15.0)


def test_group_means_count_a_trial_without_the_group_as_zero() -> None:
    cores, groups = _trials()
    means = {(r["role"], r["group"]): r["core_pct"] for r in group_means(groups, cores).iter_rows(named=True)}
    # event loop on the busiest core: 50 and 80; librdkafka there: 10 in one trial of two
    assert means == pytest.approx({("busiest", "event loop"): 65.0, ("busiest", "librdkafka"): 5.0,
                                   ("other", "librdkafka"): 10.0})


def test_measured_window_is_the_measured_phase() -> None:
    rows = pl.DataFrame({"phase": ["warmup", "measure", "measure"], "intended_start_ns": [1, 5, 9]})
    assert measured_window(rows) == (5, 9)
    with pytest.raises(ValueError, match="measured phase"):
        measured_window(rows.filter(pl.col("phase") == "warmup"))


def test_article_core_pct_reads_the_article_table() -> None:
    article = article_core_pct(load_claims())
    found = {(r["service"], r["role"]): r["article_pct"] for r in article.iter_rows(named=True)}
    assert found == {("node", "busiest"): 100.0, ("rust", "busiest"): 44.0, ("node", "other"): 12.0,
                     ("rust", "other"): 41.0}


def test_parse_proc_stat() -> None:
    raw = (b"cpu  300 0 30 900 10 0 6 4 0 0\n"
           b"cpu0 200 0 20 400 5 0 4 2 7 0\n"
           b"cpu1 100 0 10 500 5 0 2 2 0 0\n"
           b"intr 12345 0 0\nctxt 999\n")
    assert parse_proc_stat(raw) == [
        (0, 224 / CLK_TCK, 405 / CLK_TCK, 2 / CLK_TCK),  # guest (7) is inside user already
        (1, 112 / CLK_TCK, 505 / CLK_TCK, 2 / CLK_TCK),
    ]
