"""The backlog experiment's pure parts: the per-second timeline from request rows, records, memory
parts and GC events; when the queue reached a cap and errors began; the drain; memory; the
ledger per stage; the summary; the chart and the notebook's views; the config and the
container's memory limit."""

from __future__ import annotations

import dataclasses
import importlib
from types import SimpleNamespace

import polars as pl
import pytest

from ingestlab import charts
from ingestlab.analysis.backlog import (
    STAGES,
    WINDOW_SCHEMA,
    backlog_timeline,
    drained_s,
    error_onset_s,
    gc_share_by_stage,
    memory_findings,
    queue_cap,
    stage_ledger,
    stage_rates,
    throttled_bytes_per_s,
    with_stage,
)
from ingestlab.analysis.memory_parts import parts_timeline
from ingestlab.config import BacklogConfig, StudyConfig
from ingestlab.engine.container import container_kwargs
from ingestlab.experiments.backlog import (
    Leg,
    backlog_result,
    leg_timeline,
    quota_bytes_per_s,
    requests_per_service,
)
from ingestlab.load.engine import BACKLOG_ERROR
from ingestlab.load.rows import REQUEST_SCHEMA
from ingestlab.notebook.backlog import TABLE_COLUMNS, backlog_findings, backlog_numbers, backlog_table
from ingestlab.stack.stack import NativeRuntime
from ingestlab.stack.topic import RECORD_SCHEMA
from ingestlab.summaries import BacklogSummary, dump_summary, load_summary
from ingestlab.telemetry.memory_report import REPORT_SCHEMA
from ingestlab.units import MIB, NS_PER_MS, NS_PER_S

# the module (`experiments.backlog` the package's attribute is the experiment's function)
backlog_experiment = importlib.import_module("ingestlab.experiments.backlog")
T0 = 1_765_000_000 * NS_PER_S
S = NS_PER_S
# warm-up 0-2 s, before 2-4 s, slow 4-8 s, drain 8-10 s (seconds after T0)
WINDOW = {"service": "node", "load_start_ns": T0, "before_start_ns": T0 + 2 * S, "slow_start_ns": T0 + 4 * S,
          "slow_end_ns": T0 + 8 * S, "load_end_ns": T0 + 10 * S, "died_ns": None}


def _windows(**changes) -> pl.DataFrame:
    return pl.DataFrame([{**WINDOW, **changes}], schema=WINDOW_SCHEMA)


def _requests() -> pl.DataFrame:
    """10 requests a second for 10 s: 202s answered in 5 ms, except: from 6 s on the slow stage
    answers 500; one request times out (2 s); one slot is dropped by the client."""
    rows = []
    for i in range(100):
        intended = T0 + i * S // 10
        status, error, end = 202, None, intended + 5 * NS_PER_MS
        if 60 <= i < 80:
            status = 500
        if i == 25:
            status, error, end = 0, "TimeoutError", intended + 2 * S
        if i == 26:
            status, error, end = 0, BACKLOG_ERROR, None
        rows.append({"request_id": f"r-{i:03d}", "step": 0, "phase": "warmup" if i < 20 else "measure",
                     "intended_start_ns": intended, "actual_start_ns": None if i == 26 else intended,
                     "end_ns": end, "status": status, "bytes_sent": 10_000, "error_class": error})
    return pl.DataFrame(rows, schema=REQUEST_SCHEMA).with_columns(service=pl.lit("node"))


def _records(requests: pl.DataFrame) -> pl.DataFrame:
    """Every 202 appended 10 ms after its answer but one (r-050: lost); the timed-out r-025
    appended anyway; r-051 twice."""
    chosen = requests.filter(((pl.col("status") == 202) & (pl.col("request_id") != "r-050"))
                             | (pl.col("request_id") == "r-025"))
    chosen = pl.concat([chosen, chosen.filter(pl.col("request_id") == "r-051")])
    return pl.DataFrame({
        "partition": [0] * chosen.height,
        "offset": list(range(chosen.height)),
        "timestamp_ms": ((chosen["intended_start_ns"] + 15 * NS_PER_MS) // NS_PER_MS).to_list(),
        "timestamp_type": [2] * chosen.height,
        "request_id": chosen["request_id"].to_list(),
        "value_bytes": [10_000] * chosen.height,
    }, schema=RECORD_SCHEMA).with_columns(service=pl.lit("node"))


def _report_rows(queue: list[int]) -> list[dict]:
    """One librdkafka and one V8 report per second (at +0.2 s and +0.4 s) of a queue of `queue[k]`
    messages of 10,000 bytes in second k."""
    rows = []
    for k, messages in enumerate(queue):
        base = {**dict.fromkeys(REPORT_SCHEMA), "pid": 1}
        rows.append({**base, "t_ns": T0 + k * S + S // 5, "source": "librdkafka",
                     "queue_messages": messages, "queue_bytes": messages * 10_000,
                     "queue_messages_max": 100_000, "queue_bytes_max": 2**30,
                     "outbuf_messages": 0, "waitresp_messages": 0})
        rows.append({**base, "t_ns": T0 + k * S + 2 * S // 5, "source": "v8", "rss_bytes": 0,
                     "heap_used_bytes": 10 * MIB, "heap_total_bytes": 20 * MIB, "external_bytes": 2 * MIB,
                     "array_buffers_bytes": MIB})
    return rows


QUEUE = [10, 10, 20, 10, 1_000, 2_000, 3_000, 4_000, 500, 10]


def _reports() -> pl.DataFrame:
    return pl.DataFrame(_report_rows(QUEUE), schema=REPORT_SCHEMA).with_columns(service=pl.lit("node"))


def _totals(rss_mib: list[float] | None = None) -> pl.DataFrame:
    """RSS sampled twice a second: 100 MiB, then the queue's bytes on top, 30 MiB kept at the end."""
    rss_mib = rss_mib or [100 + q * 10_000 / MIB + (30 if k >= 8 else 0) for k, q in enumerate(QUEUE)]
    return pl.DataFrame({
        "t_ns": [T0 + k * S + half for k in range(len(rss_mib)) for half in (S // 4, 3 * S // 4)],
        "rss_bytes": [int(m * MIB) for m in rss_mib for _ in (0, 1)],
    })


def _gc() -> pl.DataFrame:
    return pl.DataFrame({"service": ["node"] * 3, "kind": ["Scavenge", "Scavenge", "Mark-Compact"],
                         "pause_ms": [10.0, 20.0, 100.0],
                         "wall_ns": [T0 + 3 * S, T0 + 5 * S, T0 + 5 * S + S // 2]})


def _timeline() -> pl.DataFrame:
    requests = with_stage(_requests(), _windows())
    parts = parts_timeline(_reports(), _totals()).with_columns(service=pl.lit("node"))
    return backlog_timeline(requests, _windows(), parts=parts, records=_records(requests), gc=_gc())


# --- the timeline -------------------------------------------------------------------------------
def test_the_timeline_has_every_second_of_the_load_with_its_stage() -> None:
    timeline = _timeline()
    assert timeline["t_s"].to_list() == [float(t) for t in range(-4, 6)]
    assert timeline["stage"].to_list() == ["warmup"] * 2 + ["before"] * 2 + ["slow"] * 4 + ["drain"] * 2
    assert timeline["offered"].to_list() == [10] * 10


def test_the_timeline_counts_what_the_client_got_each_second() -> None:
    by_second = {row["t_s"]: row for row in _timeline().iter_rows(named=True)}
    assert by_second[-2.0]["dropped"] == 1 and by_second[-2.0]["no_answer"] == 0  # r-026, never sent
    assert by_second[-2.0]["accepted"] == 8  # r-025 timed out: learnt 2 s later
    assert by_second[0.0]["timeouts"] == 1
    assert by_second[2.0]["errors_5xx"] == 10 and by_second[2.0]["errors"] == 10
    assert by_second[-4.0]["p50_ms"] == pytest.approx(5.0) and by_second[-4.0]["p99_ms"] == pytest.approx(5.0)


def test_the_timeline_puts_what_kafka_appended_memory_and_gc_on_the_same_seconds() -> None:
    by_second = {row["t_s"]: row for row in _timeline().iter_rows(named=True)}
    assert by_second[-4.0]["delivered"] == 10 and by_second[-4.0]["delivered_bytes"] == 100_000
    assert by_second[2.0]["delivered"] == 0  # 500s: nothing produced
    assert by_second[3.0]["queue_messages"] == 4_000  # the report of the slow stage's last second
    assert by_second[0.0]["heap_total_bytes"] == 20 * MIB
    assert by_second[0.0]["rss_bytes"] == pytest.approx((100 + 1_000 * 10_000 / MIB) * MIB)
    assert by_second[-1.0]["gc_events"] == 1 and by_second[1.0]["gc_events"] == 2
    assert by_second[1.0]["gc_pause_ms"] == pytest.approx(120.0)
    assert by_second[2.0]["gc_pause_ms"] == 0.0


def test_a_second_without_a_queue_report_has_no_queue_not_an_empty_one() -> None:
    rows = [r for r in _report_rows([5, 5, 5])
            if not (r["source"] == "librdkafka" and r["t_ns"] // S == T0 // S + 1)]
    parts = parts_timeline(pl.DataFrame(rows, schema=REPORT_SCHEMA), _totals([100, 100, 100]))
    assert parts["queue_messages"].to_list() == [5, None, 5]
    assert parts["rest_bytes"][1] is None and parts["heap_total_bytes"][1] == 20 * MIB


# --- events -------------------------------------------------------------------------------------
def test_the_queue_reaches_the_message_cap_first_with_the_articles_settings() -> None:
    rows = _report_rows([50_000, 99_000, 99_995, 100_000])
    found = queue_cap(pl.DataFrame(rows, schema=REPORT_SCHEMA), since_ns=T0)
    assert found == {"t_ns": T0 + S + S // 5, "cap": "messages", "messages": 99_000, "bytes": 990_000_000}
    assert queue_cap(pl.DataFrame(rows, schema=REPORT_SCHEMA), since_ns=T0, share=1.0)["messages"] == 100_000
    assert queue_cap(pl.DataFrame(_report_rows([10, 20]), schema=REPORT_SCHEMA), since_ns=T0) is None


def test_the_byte_cap_is_found_too() -> None:
    rows = [{**r, "queue_bytes": 2**30 - 5_000} if r["source"] == "librdkafka" else r
            for r in _report_rows([60_000])]
    assert queue_cap(pl.DataFrame(rows, schema=REPORT_SCHEMA), since_ns=T0)["cap"] == "bytes"


def test_errors_begin_with_the_first_second_over_one_percent_after_the_slowdown() -> None:
    timeline = _timeline()
    assert error_onset_s(timeline) == 0.0  # the timeout learnt in the slow stage's first second
    assert error_onset_s(timeline, share=0.5) == 2.0  # the 500s
    assert error_onset_s(timeline.with_columns(errors=pl.lit(0))) is None


def test_errors_of_one_kind_begin_on_their_own() -> None:
    timeline = _timeline()
    assert error_onset_s(timeline, column="errors_5xx") == 2.0
    assert error_onset_s(timeline, column="timeouts") == 0.0


def test_kafka_has_flushed_once_the_topic_holds_the_202s_and_stops_growing(monkeypatch) -> None:
    clock = [0.0]
    monkeypatch.setattr(backlog_experiment.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(backlog_experiment.time, "sleep", lambda s: clock.__setitem__(0, clock[0] + s))

    def stack(sizes: list[int]) -> SimpleNamespace:
        return SimpleNamespace(topic_size=lambda: sizes.pop(0) if len(sizes) > 1 else sizes[0])

    # grows to 100 at 2 s, then to 120 (abandoned requests' records) at 4 s, then quiet
    assert backlog_experiment._wait_for_flush(stack([50, 80, 100, 100, 120]), accepted=100,
                                              timeout_s=60) == 4.0
    # a dead service's topic stops short of its 202s: no flush
    assert backlog_experiment._wait_for_flush(stack([50, 60]), accepted=100, timeout_s=60) is None
    assert backlog_experiment._wait_for_flush(stack(list(range(1000))), accepted=10**6, timeout_s=30) is None


def test_the_drain_ends_when_the_queue_is_back_to_its_level_before() -> None:
    timeline = _timeline()
    assert drained_s(timeline, slow_s=4.0, floor_messages=100) == 1.0  # 500 at 4 s, 10 at 5 s
    assert drained_s(timeline, slow_s=4.0, floor_messages=1_000) == 0.0
    stuck = timeline.with_columns(queue_messages=pl.when(pl.col("t_s") >= 0).then(5_000)
                                  .otherwise(pl.col("queue_messages")))
    assert drained_s(stuck, slow_s=4.0) is None


def test_memory_findings_say_how_much_came_back_and_which_part_held_the_peak() -> None:
    found = memory_findings(_timeline(), _totals(), WINDOW)
    assert found["rss_before_mib"] == pytest.approx(100 + 15 * 10_000 / MIB)
    peak = 100 + 4_000 * 10_000 / MIB
    assert found["rss_peak_mib"] == pytest.approx(peak)
    assert found["rss_peak_s"] == pytest.approx(3.25)
    end = 100 + 30 + (500 * 3 + 10 * 2) / 5 * 10_000 / MIB  # the last 5 s of samples: 8-10 s
    assert found["rss_end_mib"] == pytest.approx(end, rel=0.05)
    given_back = (peak - found["rss_end_mib"]) / (peak - found["rss_before_mib"])
    assert found["rss_returned_share"] == pytest.approx(given_back)
    assert found["queue_peak_messages"] == 4_000 and found["queue_peak_mib"] == pytest.approx(4e7 / MIB)
    assert found["largest_at_peak"] == "the rest of RSS"  # 100 MiB of rest against 38 MiB of queue
    assert found["heap_total_peak_mib"] == pytest.approx(20.0) and found["cgroup_mem_peak_mb"] is None


def test_the_part_largest_at_the_peak_is_judged_on_a_second_with_every_part() -> None:
    timeline = _timeline()
    peak = timeline.with_columns(  # the peak second's queue report missing: no queue, no rest
        queue_bytes=pl.when(pl.col("t_s") == 3).then(None).otherwise(pl.col("queue_bytes")),
        rest_bytes=pl.when(pl.col("t_s") == 3).then(None).otherwise(pl.col("rest_bytes")),
        rss_bytes=pl.when(pl.col("t_s") == 3).then(2_000 * MIB).otherwise(pl.col("rss_bytes")))
    assert memory_findings(peak, _totals(), WINDOW)["largest_at_peak"] == "the rest of RSS"


def test_a_service_that_died_has_no_memory_at_the_end() -> None:
    found = memory_findings(_timeline(), _totals(), {**WINDOW, "died_ns": T0 + 7 * S})
    assert found["rss_end_mib"] is None and found["rss_returned_share"] is None


def test_the_ledger_per_stage() -> None:
    requests = with_stage(_requests(), _windows())
    ledger = {row["stage"]: row for row in stage_ledger(requests, _records(requests)).iter_rows(named=True)}
    assert list(ledger) == list(STAGES)
    assert ledger["before"]["timeouts"] == 1 and ledger["before"]["delivered_after_error"] == 1  # r-025
    assert ledger["slow"]["lost"] == 1 and ledger["slow"]["duplicated"] == 1  # r-050, r-051
    assert ledger["slow"]["errors_5xx"] == 20 and ledger["drain"]["accepted"] == 20


def test_rates_gc_and_the_throttled_bytes_per_stage() -> None:
    timeline = _timeline()
    assert gc_share_by_stage(timeline) == pytest.approx({"warmup": 0.0, "before": 0.005, "slow": 0.03,
                                                         "drain": 0.0})
    rates = stage_rates(timeline)
    assert rates["slow"]["offered"] == 10 and rates["slow"]["accepted"] == pytest.approx(5.0)
    assert throttled_bytes_per_s(timeline, settle_s=2.0) == pytest.approx(0.0)
    assert throttled_bytes_per_s(timeline, settle_s=0.0) == pytest.approx(50_000.0)
    assert throttled_bytes_per_s(timeline) is None  # the stage is shorter than Kafka's quota window


# --- the summary --------------------------------------------------------------------------------
def _leg(**changes) -> Leg:
    requests = with_stage(_requests(), _windows(**{k: v for k, v in changes.items() if k == "died_ns"}))
    parts = parts_timeline(_reports(), _totals()).with_columns(service=pl.lit("node"))
    fields = dict(requests=requests, samples=_totals().with_columns(service=pl.lit("node")), parts=parts,
                  reports=_reports(), gc=_gc(), records=_records(requests), window={**WINDOW},
                  health={"saturated": False, "saturated_reasons": []}, rss_start_bytes=60 * MIB,
                  quota_set_s=0.1, quota_cleared_s=0.05, exit_state=None, max_in_flight=84, stack={})
    leg = Leg(**fields)
    if "died_ns" in changes:
        leg = dataclasses.replace(leg, window={**WINDOW, "died_ns": changes["died_ns"]},
                                  exit_state={"oom_killed": True, "exit_code": 137, "finished_at": None})
    return leg


CONFIG = StudyConfig.for_profile("quick")


def test_the_result_of_a_service_that_kept_up() -> None:
    leg = _leg()
    r = backlog_result(CONFIG, leg, leg_timeline(leg), rate_rps=10.0)
    assert (r.before_s, r.slow_s, r.drain_s) == (2.0, 4.0, 2.0)
    assert r.quota_bytes_per_s == 0.5 * 10 * 10_000
    assert r.cap_reached_s is None and r.queue_messages_max == 100_000 and r.queue_bytes_max_mib == 1024.0
    assert r.errors_began_s == 0.0
    assert (r.offered, r.accepted, r.errors_5xx, r.timeouts, r.no_answer, r.dropped) == (100, 78, 20, 1, 0, 1)
    assert (r.delivered, r.lost, r.delivered_after_error, r.duplicated) == (77, 1, 1, 1)
    assert r.ledger_by_stage["slow"]["lost"] == 1 and set(r.ledger_by_stage) == set(STAGES)
    assert r.p99_before_ms == pytest.approx(5.0)  # answered requests: the timeout is counted apart
    assert r.died_s is None and not r.oom_killed and r.gc_pause_max_ms == 100.0
    assert r.gc_time_share["slow"] == pytest.approx(0.03)


def test_the_result_of_a_service_killed_by_its_memory_limit() -> None:
    leg = _leg(died_ns=T0 + 6 * S + S // 2)
    limited = CONFIG.replace(backlog={"memory_limit_mb": 150})
    r = backlog_result(limited, leg, leg_timeline(leg), rate_rps=10.0)
    assert r.died_s == 2.5 and r.oom_killed and r.exit_code == 137 and r.memory_limit_mb == 150
    assert r.queue_messages_at_death == 3_000  # the last report before the death
    assert r.rss_end_mib is None


def test_the_summary_round_trips_and_the_notebook_shows_it() -> None:
    leg = _leg()
    result = backlog_result(CONFIG, leg, leg_timeline(leg), rate_rps=10.0)
    summary = BacklogSummary(services={"node": result}, rate_rps=10.0, rate_source="set", quota_share=0.5)
    loaded, warnings = load_summary(dump_summary(summary, run_id="r1", warnings=["w"]))
    assert loaded == summary and warnings == ["w"]
    run = SimpleNamespace(summary=summary, run_id="r1")
    table = backlog_table(run)
    assert table.columns == list(TABLE_COLUMNS) and table["lost"].to_list() == [1]
    findings = "\n".join(backlog_findings(run))
    assert "never reached a cap (at most 4,000 of 100,000 messages" in findings
    assert "of 78 requests answered 202, 1 never reached Kafka; 1 reached it after" in findings
    assert backlog_numbers(run)["services"]["node"]["accepted"] == 78


def test_the_chart_draws_each_panel_within_the_row_limit() -> None:
    timeline = pl.concat([_timeline(), _timeline().with_columns(service=pl.lit("rust"))])
    windows = pl.concat([_windows(), _windows(service="rust")])
    spec = charts.backlog_over_time(timeline, windows).to_dict()
    assert len(spec["vconcat"]) == 3
    for panel in spec["vconcat"]:
        values = spec["datasets"][panel["data"]["name"]]
        assert 0 < len(values) <= charts.MAX_CHART_ROWS
        assert {v["kind"] for v in values} >= {"window"}


def test_a_long_run_is_thinned_to_the_row_limit() -> None:
    seconds = 3_000
    long = pl.DataFrame({"service": ["node"] * seconds, "t_s": [float(t) for t in range(seconds)],
                         "offered": [10] * seconds, "accepted": [10] * seconds, "errors_5xx": [0] * seconds,
                         "timeouts": [0] * seconds, "no_answer": [0] * seconds, "dropped": [0] * seconds,
                         "queue_messages": [5.0] * seconds, "queue_bytes": [5e4] * seconds,
                         "heap_total_bytes": [2e7] * seconds, "external_bytes": [1e6] * seconds,
                         "rest_bytes": [5e7] * seconds})
    charts.backlog_over_time(long, _windows()).to_dict()  # no TooManyRowsError


# --- config, limits -----------------------------------------------------------------------------
def test_the_config_and_its_quick_profile() -> None:
    quick = StudyConfig.for_profile("quick").backlog
    assert (quick.warmup_s, quick.before_s, quick.slow_s, quick.drain_s) == (3.0, 5.0, 30.0, 15.0)
    full = StudyConfig.for_profile("full").backlog
    assert full.slow_s >= 300 and full.memory_limit_mb is None
    stages = full.warmup_s + full.before_s + full.slow_s + full.drain_s
    assert full.load_s == stages + 2 * full.quota_command_budget_s
    for bad in ({"quota_share": 1.0}, {"slow_s": 0}, {"memory_limit_mb": 0}, {"warmup_s": -1}):
        with pytest.raises(ValueError):
            BacklogConfig(**bad)


def test_the_quota_and_the_size_of_a_run() -> None:
    assert quota_bytes_per_s(CONFIG, 1_000) == 0.5 * 1_000 * 10_000
    assert requests_per_service(CONFIG, 1_000) == 1_000 * CONFIG.backlog.load_s
    with pytest.raises(ValueError, match="max_requests"):
        requests_per_service(CONFIG.replace(backlog={"max_requests": 10}), 1_000)


def test_a_container_memory_limit_counts_swap_too() -> None:
    kwargs = container_kwargs("node", ["node"], image="i", memory_limit_bytes=400_000_000)
    assert kwargs["mem_limit"] == kwargs["memswap_limit"] == 400_000_000
    assert "mem_limit" not in container_kwargs("node", ["node"], image="i")
    with pytest.raises(ValueError):
        container_kwargs("node", ["node"], image="i", memory_limit_bytes=0)


def test_native_services_have_no_memory_limit(tmp_path) -> None:
    with pytest.raises(ValueError, match="container runtime"):
        NativeRuntime().service("node", brokers="127.0.0.1:9", log_dir=tmp_path, cores=(1,), node_flags=(),
                                memory_report_ms=0, memory_limit_bytes=10**9)
