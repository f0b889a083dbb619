"""The native load tools against the nginx reference endpoint: real nginx, wrk and oha.

Layout as in the study: nginx on the last core, the load tool on the first.
"""

import json
import os
import shutil
import time
import urllib.error
import urllib.request
from pathlib import Path

import polars as pl
import psutil
import pytest

from ingestlab.host.component import ArtifactMissing
from ingestlab.load.native import oha_path, run_oha
from ingestlab.load.rows import REQUEST_SCHEMA
from ingestlab.load.wrk import run_wrk
from ingestlab.stack.nginx import ECHO_MODULE, ReferenceEndpoint

CORES = sorted(os.sched_getaffinity(0))
LOAD_CORES = (CORES[0],)
SERVER_CORES = (CORES[-1],)
BODY_10K = json.dumps({"device_id": "d-1", "data": {"payload": "x" * 10_200}}).encode()


def _have_oha() -> bool:
    try:
        oha_path()
    except ArtifactMissing:
        return False
    return True


needs_nginx = pytest.mark.skipif(
    not ((shutil.which("nginx") or Path("/usr/sbin/nginx").exists()) and ECHO_MODULE.exists()),
    reason="nginx or its echo module missing: apt-get install nginx-light libnginx-mod-http-echo")
needs_wrk = pytest.mark.skipif(not shutil.which("wrk"), reason="wrk missing: apt-get install wrk")
needs_oha = pytest.mark.skipif(not _have_oha(), reason="oha missing: cargo install oha --version 1.16.0 "
                               "--locked --root ~/.cache/ingestlab/tools/oha-1.16.0")


@pytest.fixture(scope="module")
def nginx(tmp_path_factory):
    with ReferenceEndpoint(work_dir=tmp_path_factory.mktemp("nginx"), cores=SERVER_CORES) as endpoint:
        yield endpoint
    assert not endpoint.is_running()


def _request(url: str, body: bytes | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, method="POST" if body is not None else "GET",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


@needs_nginx
def test_accept_answers_202_to_a_10k_post(nginx):
    assert len(BODY_10K) > 10_000
    status, answer = _request(nginx.accept_url, BODY_10K)
    assert status == 202
    assert json.loads(answer) == {"status": "accepted"}
    assert _request(nginx.accept_url)[0] == 405  # GET
    assert _request(nginx.accept_url, b"x" * 200_000)[0] == 413  # beyond the in-memory buffer


@needs_nginx
def test_nginx_is_pinned_and_cleans_up(nginx, tmp_path):
    assert nginx.describe()["version"].startswith("nginx/")
    assert psutil.Process(nginx.pid).cpu_affinity() == list(SERVER_CORES)
    workers = psutil.Process(nginx.pid).children()
    assert len(workers) == 1 and workers[0].cpu_affinity() == list(SERVER_CORES)
    with ReferenceEndpoint(work_dir=tmp_path, cores=SERVER_CORES) as second:
        tree = [second.pid, *(p.pid for p in psutil.Process(second.pid).children())]
    assert not any(psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
                   for pid in tree)


@needs_nginx
@needs_oha
def test_oha_open_loop_rows(nginx, tmp_path):
    out = tmp_path / "requests.parquet"
    before_ns = time.time_ns()
    result = run_oha(url=nginx.accept_url, rate_rps=500, duration_s=2, body=BODY_10K, out_path=out,
                     cores=LOAD_CORES, connections=16, timeout_s=30)
    frame = result.requests
    assert result.errors == {}
    assert result.planned == result.sent == frame.height == 1000
    assert frame.schema == pl.Schema(REQUEST_SCHEMA)
    assert pl.read_parquet(out).equals(frame)
    assert frame["status"].unique().to_list() == [202]
    assert frame["bytes_sent"].unique().to_list() == [len(BODY_10K)]
    assert frame["request_id"].null_count() == frame.height  # oha cannot tag requests
    ordered = frame.filter((pl.col("intended_start_ns") <= pl.col("actual_start_ns"))
                           & (pl.col("actual_start_ns") <= pl.col("end_ns")))
    assert ordered.height == frame.height
    # wall-clock epoch ns, within this test's run
    assert before_ns <= frame["intended_start_ns"].min() <= frame["end_ns"].max() <= time.time_ns()
    # the schedule: 1000 releases 2 ms apart (a release is never early)
    span_s = (frame["intended_start_ns"].max() - frame["intended_start_ns"].min()) / 1e9
    assert 1.99 <= span_s < 3.0
    assert result.achieved_rps > 0 and result.cpu_percent > 0
    assert result.schedule_lag_max_ms is not None
    assert result.version == "oha 1.16.0"


@needs_nginx
@needs_oha
def test_oha_counts_unanswered_requests(tmp_path):
    with ReferenceEndpoint(work_dir=tmp_path / "nginx", cores=SERVER_CORES) as frozen:
        frozen.pause()  # keeps its socket, answers nothing: every request times out
        result = run_oha(url=frozen.accept_url, rate_rps=20, duration_s=1, body=b"{}",
                         out_path=tmp_path / "r.parquet", cores=LOAD_CORES, connections=20,
                         timeout_s=30, request_timeout_s=0.3)
    assert result.requests.height == 0  # oha stores answered requests only
    assert result.errors == {"timeout": 20}
    assert result.sent == result.planned == 20
    assert result.schedule_lag_max_ms is None


@needs_nginx
@needs_wrk
def test_wrk_closed_loop(nginx):
    result = run_wrk(url=nginx.accept_url, duration_s=2, body=BODY_10K, connections=16, cores=LOAD_CORES)
    assert result.requests > 0 and result.requests_per_s > 0
    assert result.errors == 0
    assert set(result.latency_percentiles_ms) == {50, 75, 90, 99}
    assert result.latency_percentiles_ms[50] <= result.latency_percentiles_ms[99] <= result.latency_max_ms
    assert result.cpu_percent is not None and result.cpu_percent > 0


@pytest.mark.parametrize("url", ["http://10.0.0.1:8080/accept", "http://example.com/accept"])
def test_non_loopback_targets_are_refused(url, tmp_path):
    with pytest.raises(ValueError, match="only loopback"):
        run_oha(url=url, rate_rps=10, duration_s=1, body=b"{}", out_path=tmp_path / "r.parquet",
                cores=LOAD_CORES, connections=1, timeout_s=10)
    with pytest.raises(ValueError, match="only loopback"):
        run_wrk(url=url, duration_s=1, body=b"{}", connections=1, cores=LOAD_CORES)
    assert not (tmp_path / "r.parquet").exists()
