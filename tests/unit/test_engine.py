"""The open-loop engine against a real aiohttp server on 127.0.0.1 (ephemeral port) in a thread.

No assertion is about absolute speed: the rates are low (200 req/s) and what is checked is
that every scheduled request has its row, that stalls land where they belong (latency for a
server stall, lag and client drops for an engine stall), and that no process is left over.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import polars as pl
import psutil
import pytest
from aiohttp import web

from ingestlab.analysis.latency import percentiles, with_timings
from ingestlab.load import engine
from ingestlab.load.engine import BACKLOG_ERROR, run_load
from ingestlab.load.payloads import PayloadSet
from ingestlab.load.progress import make_display, resolve_mode
from ingestlab.load.rows import REQUEST_SCHEMA
from ingestlab.load.schedules import constant

PAYLOAD_BYTES = 1_000


class StubServer:
    """Answers every POST with 202; can stall every request for a while, like a GC pause."""

    def __init__(self) -> None:
        self.received = 0
        self.json_requests = 0
        self._stall_after: int | None = None
        self._stall_s = 0.0
        self._stall_until = 0.0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="stub-server", daemon=True)
        self.port = 0

    def reset(self, *, stall_after: int | None = None, stall_s: float = 0.0) -> None:
        """Zero the counters; optionally stall `stall_s` seconds from request `stall_after`."""
        self.received = self.json_requests = 0
        self._stall_after, self._stall_s, self._stall_until = stall_after, stall_s, 0.0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/telemetry"

    async def _handle(self, request: web.Request) -> web.Response:
        await request.read()
        self.received += 1
        self.json_requests += request.content_type == "application/json"
        if self.received == self._stall_after:
            self._stall_until = time.monotonic() + self._stall_s
        delay = self._stall_until - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        return web.Response(status=202)

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application(client_max_size=1 << 20)
        app.router.add_post("/telemetry", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        self._loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        self._loop.run_until_complete(site.start())
        self.port = self._runner.addresses[0][1]
        self._ready.set()
        self._loop.run_forever()
        self._loop.run_until_complete(self._runner.cleanup())
        self._loop.close()

    def __enter__(self) -> StubServer:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("stub server did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


@pytest.fixture(scope="module")
def server() -> Iterator[StubServer]:
    with StubServer() as running:
        yield running


@pytest.fixture(autouse=True)
def no_leftover_engine() -> Iterator[None]:
    """Fail a test that leaves an engine process behind (and kill it)."""
    yield
    leftovers = _engine_children()
    for child in leftovers:
        child.kill()
    assert not leftovers, f"engine processes left running: {leftovers}"


def _engine_children() -> list[psutil.Process]:
    found = []
    for child in psutil.Process().children():
        try:
            if any("spawn_main" in part for part in child.cmdline()):
                found.append(child)
        except psutil.NoSuchProcess:
            pass
    return found


def _wait_for(condition: Callable[[], bool], timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        time.sleep(0.01)


def _last_core() -> int:
    return max(os.sched_getaffinity(0))


def test_constant_run_records_every_scheduled_request(
    server: StubServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server.reset()
    schedule = constant(200, 2)
    payloads = PayloadSet(schedule.count, size_bytes=PAYLOAD_BYTES, id_prefix="t")
    result = run_load(
        url=server.url,
        schedule=schedule,
        payloads=payloads,
        out_path=tmp_path / "requests.parquet",
        cores=(_last_core(),),
        warmup_s=0.5,
        progress="log",
    )
    df = result.frame()
    assert result.rows == df.height == 400
    assert server.received == server.json_requests == 400
    assert df.schema == pl.Schema(REQUEST_SCHEMA)
    assert df["request_id"].to_list() == [payloads.request_id(i) for i in range(400)]
    assert set(df["status"]) == {202}
    assert df["error_class"].null_count() == 400
    assert set(df["bytes_sent"]) == {PAYLOAD_BYTES}
    assert df["phase"].to_list() == ["warmup"] * 100 + ["measure"] * 300
    assert set(df["intended_start_ns"].diff().drop_nulls()) == {5_000_000}  # 1 / 200 s
    timed = with_timings(df)
    assert timed["lag_ms"].min() >= 0  # never sent before its time
    assert timed["service_time_ms"].min() >= 0
    assert (df["intended_start_ns"][0] - result.settings["t0_wall_ns"]) == 0
    health = result.health
    assert (health["sent"], health["responses"], health["errors"], health["dropped"]) == (
        400,
        400,
        0,
        0,
    )
    assert health["offered_rps"] == 200
    assert health["achieved_rps"] == pytest.approx(200, rel=0.05)
    assert health["engine_cpu_pct"] > 0
    assert isinstance(health["saturated"], bool)
    assert result.settings["cores"] == [_last_core()]
    assert result.settings["pid"] != os.getpid()
    # connections as the load needs them (a few at 200 req/s of sub-ms answers), not one per
    # worker of the 256: idle connections are reused
    assert result.settings["workers"] == 256
    assert 1 <= result.settings["connections_opened"] <= 32
    assert "load constant:" in capsys.readouterr().err  # progress as plain log lines


def test_a_server_stall_shows_in_latency_while_the_engine_keeps_the_schedule(
    server: StubServer, tmp_path: Path
) -> None:
    server.reset(stall_after=100, stall_s=0.4)  # 0.5 s into the run, for 0.4 s
    schedule = constant(200, 2.5)
    result = run_load(
        url=server.url,
        schedule=schedule,
        payloads=PayloadSet(schedule.count, size_bytes=PAYLOAD_BYTES),
        out_path=tmp_path / "requests.parquet",
        cores=None,
        progress=False,
    )
    df = with_timings(result.frame())
    assert df.height == 500
    assert set(df["status"]) == {202}
    assert result.health["dropped"] == 0
    slowest = df.sort("latency_ms").row(-1, named=True)
    assert slowest["latency_ms"] >= 350  # it waited for the stall...
    assert slowest["lag_ms"] < 50  # ...after being sent on time (open loop)
    assert df["lag_ms"].max() < 50
    summary = percentiles(df).row(0, named=True)
    assert summary["max_ms"] >= 350
    assert summary["p50_ms"] < summary["max_ms"] / 5


def test_the_engine_recovers_from_a_stall_of_its_own_process(server: StubServer, tmp_path: Path) -> None:
    server.reset()
    schedule = constant(200, 3)
    max_lag_s = 0.2
    with ThreadPoolExecutor(max_workers=1) as pool:
        future = pool.submit(
            run_load,
            url=server.url,
            schedule=schedule,
            payloads=PayloadSet(schedule.count, size_bytes=PAYLOAD_BYTES),
            out_path=tmp_path / "requests.parquet",
            cores=None,
            max_lag_s=max_lag_s,
            progress=False,
        )
        _wait_for(lambda: server.received >= 100)
        (child,) = _engine_children()
        stopped_ns = time.time_ns()
        child.send_signal(signal.SIGSTOP)
        try:
            time.sleep(0.4)
        finally:
            child.send_signal(signal.SIGCONT)
        resumed_ns = time.time_ns()
        result = future.result(timeout=60)

    df = with_timings(result.frame())
    assert df.height == result.rows == 600  # nothing lost
    dropped = df.filter(pl.col("error_class") == BACKLOG_ERROR)
    assert dropped.height > 0
    assert dropped.height == result.health["dropped"]
    assert set(dropped["status"]) == {0}
    assert dropped["actual_start_ns"].null_count() == dropped.height
    assert set(dropped["bytes_sent"]) == {0}
    # only requests that came due during the stall were dropped
    assert dropped["intended_start_ns"].min() >= stopped_ns - 50_000_000
    assert dropped["intended_start_ns"].max() <= resumed_ns
    sent = df.filter(pl.col("actual_start_ns").is_not_null())
    assert set(sent["status"]) == {202}
    assert sent["lag_ms"].max() < max_lag_s * 1000 + 50  # late ones went out within max_lag
    recovered = sent.filter(pl.col("intended_start_ns") >= resumed_ns + 300_000_000)
    assert recovered.height > 100
    assert recovered["lag_ms"].median() < 5
    assert result.health["saturated"]
    assert any("dropped" in reason for reason in result.health["saturated_reasons"])


def test_transport_errors_become_rows(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    schedule = constant(50, 0.2)
    result = run_load(
        url=f"http://127.0.0.1:{port}/telemetry",
        schedule=schedule,
        payloads=PayloadSet(schedule.count, size_bytes=PAYLOAD_BYTES),
        out_path=tmp_path / "requests.parquet",
        cores=None,
        request_timeout_s=2.0,
        progress=False,
    )
    df = result.frame()
    assert df.height == 10
    assert set(df["status"]) == {0}
    assert set(df["error_class"]) == {"ConnectionRefusedError"}
    assert df["end_ns"].null_count() == 0
    assert result.health["errors"] == 10
    assert result.health["responses"] == 0


def test_ctrl_c_in_the_parent_ends_the_engine_process(server: StubServer, tmp_path: Path) -> None:
    server.reset()
    # Python's own Ctrl-C handler, as in a terminal or a notebook; restored below.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    pids: list[int] = []

    def interrupt() -> None:
        _wait_for(lambda: server.received >= 20)
        pids.extend(child.pid for child in _engine_children())
        os.kill(os.getpid(), signal.SIGINT)

    schedule = constant(200, 5)
    out_path = tmp_path / "requests.parquet"
    interrupter = threading.Thread(target=interrupt)
    interrupter.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            run_load(
                url=server.url,
                schedule=schedule,
                payloads=PayloadSet(schedule.count, size_bytes=PAYLOAD_BYTES),
                out_path=out_path,
                cores=None,
                progress=False,
            )
    finally:
        interrupter.join()
        signal.signal(signal.SIGINT, previous)
    assert len(pids) == 1
    assert not psutil.pid_exists(pids[0])
    assert not out_path.exists()  # no half-written results


def test_an_engine_that_overstays_is_killed(
    server: StubServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server.reset()
    # Only the parent sees this: its deadline passes as soon as the child has started.
    monkeypatch.setattr(engine, "FINISH_TIMEOUT_S", -1_000.0)
    schedule = constant(200, 5)
    with pytest.raises(TimeoutError, match=r"process \d+ overstayed") as raised:
        run_load(
            url=server.url,
            schedule=schedule,
            payloads=PayloadSet(schedule.count, size_bytes=PAYLOAD_BYTES),
            out_path=tmp_path / "requests.parquet",
            cores=None,
            progress=False,
        )
    pid = int(re.search(r"process (\d+)", str(raised.value)).group(1))
    assert not psutil.pid_exists(pid)


def test_the_engine_stops_by_itself_when_its_parent_dies(server: StubServer, tmp_path: Path) -> None:
    server.reset()
    script = textwrap.dedent(
        f"""
        from pathlib import Path
        from ingestlab.load.engine import run_load
        from ingestlab.load.payloads import PayloadSet
        from ingestlab.load.schedules import constant

        schedule = constant(200, 10)
        run_load(
            url={server.url!r},
            schedule=schedule,
            payloads=PayloadSet(schedule.count, size_bytes={PAYLOAD_BYTES}),
            out_path=Path({str(tmp_path / "requests.parquet")!r}),
            cores=None,
            progress=False,
        )
        """
    )
    parent = subprocess.Popen([sys.executable, "-c", script])
    orphans: list[psutil.Process] = []
    try:
        _wait_for(lambda: server.received >= 20)
        orphans = [
            child
            for child in psutil.Process(parent.pid).children()
            if any("spawn_main" in part for part in child.cmdline())
        ]
        assert len(orphans) == 1
        parent.kill()  # no chance to clean up
        parent.wait(10)
        # The engine notices within one progress interval and exits.
        gone, alive = psutil.wait_procs(orphans, timeout=3 * engine.PROGRESS_INTERVAL_S + 2)
        assert not alive
        assert server.received < 10 * 200  # it did not run its whole schedule
    finally:
        parent.kill()
        parent.wait(10)
        for orphan in orphans:
            if orphan.is_running():
                orphan.kill()


@pytest.mark.parametrize(
    "url",
    [
        "http://10.0.0.1:8080/telemetry",
        "http://example.com/telemetry",
        "http://127.0.0.2:8080/telemetry",
        "http://0.0.0.0:8080/telemetry",
    ],
)
def test_non_loopback_targets_are_refused(url: str, tmp_path: Path) -> None:
    schedule = constant(10, 1)
    with pytest.raises(ValueError, match="loopback"):
        run_load(
            url=url,
            schedule=schedule,
            payloads=PayloadSet(schedule.count, size_bytes=PAYLOAD_BYTES),
            out_path=tmp_path / "requests.parquet",
            cores=None,
        )
    assert not (tmp_path / "requests.parquet").exists()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"payloads": PayloadSet(5, size_bytes=PAYLOAD_BYTES)}, "payloads"),
        ({"warmup_s": 1.0}, "warmup_s"),
        ({"warmup_s": -0.1}, "warmup_s"),
        ({"max_in_flight": 0}, "max_in_flight"),
        ({"request_timeout_s": 0.0}, "request_timeout_s"),
        ({"max_lag_s": float("nan")}, "max_lag_s"),
        ({"cores": (100_000,)}, "cores"),
        ({"cores": ()}, "cores"),
    ],
)
def test_bad_arguments_are_refused_before_anything_starts(
    overrides: dict, message: str, tmp_path: Path
) -> None:
    schedule = constant(10, 1)
    kwargs = {
        "url": "http://127.0.0.1:9/telemetry",
        "schedule": schedule,
        "payloads": PayloadSet(schedule.count, size_bytes=PAYLOAD_BYTES),
        "out_path": tmp_path / "requests.parquet",
        "cores": None,
    }
    with pytest.raises(ValueError, match=message):
        run_load(**{**kwargs, **overrides})


def test_progress_mode_follows_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    # pytest captures stdout, so it is not a terminal here
    assert resolve_mode("auto") == "log"
    assert resolve_mode(True) == "log"
    monkeypatch.setattr("sys.stdout.isatty", lambda: True)
    assert resolve_mode("auto") == "bar"
    monkeypatch.setenv("CI", "true")
    assert resolve_mode(True) == "log"
    assert resolve_mode("bar") == "bar"
    assert resolve_mode(False) == "off"
    with pytest.raises(ValueError, match="progress"):
        resolve_mode("loud")  # type: ignore[arg-type]


def test_progress_bar_and_log_lines_show_the_rates(capsys: pytest.CaptureFixture[str]) -> None:
    event = {
        "elapsed_s": 1.0,
        "sent": 90.0,
        "responses": 88.0,
        "errors": 2.0,
        "dropped": 10.0,
        "offered_rps": 200.0,
        "achieved_rps": 180.0,
    }
    bar = make_display("bar", total=400, desc="load test")
    bar.update(event)
    bar.close()
    log = make_display("log", total=400, desc="load test")
    log.update(event)
    log.update(event)  # within LOG_INTERVAL_S of the first: not printed again
    log.close()
    err = capsys.readouterr().err
    assert "100/400" in err  # sent + dropped slots, in the bar and the log line
    assert "achieved=180/s" in err and "errors=2" in err
    assert err.count("offered 200/s achieved 180/s") == 1
