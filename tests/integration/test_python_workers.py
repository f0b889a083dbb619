"""The Python service beyond the shared contract (SIGTERM during a burst is
test_lifecycle's, for every service): several workers sharing the port, and its image on the
container runtime answering 202 with the records in Kafka."""

from __future__ import annotations

import psutil
import pytest

from ingestlab.config import StudyConfig
from ingestlab.engine.docker_engine import shared_engine
from ingestlab.host.component import ArtifactMissing
from ingestlab.host.exposure import listening_addresses
from ingestlab.load.payloads import PayloadSet
from ingestlab.stack import Stack


def test_workers_share_the_port_and_each_is_ready(config: StudyConfig, tmp_path, monkeypatch, post) -> None:
    monkeypatch.setenv("WORKERS", "3")  # the service inherits the environment
    with Stack(config.replace(services=("python",)), log_dir=tmp_path) as stack:
        service = stack.service("python")
        assert service.pid is not None
        workers = psutil.Process(service.pid).children()
        assert len(workers) == 3
        assert listening_addresses(service.pid) == [f"127.0.0.1:{service.port}"]
        payloads = PayloadSet(30, size_bytes=1_000, id_prefix="py-workers")
        assert {post(service.ingest_url, payloads.body(i))[0] for i in range(len(payloads))} == {202}
        assert stack.wait_for_records(30) >= 30
        exit_code = service.stop(timeout_s=20)
    assert exit_code == 0
    assert not any(w.is_running() and w.status() != psutil.STATUS_ZOMBIE for w in workers)


def test_the_python_image_answers_202_and_the_records_reach_kafka(config: StudyConfig, tmp_path,
                                                                  post) -> None:
    try:
        shared_engine()
    except ArtifactMissing as exc:  # dockerd not installed: no container engine on this machine
        pytest.skip(str(exc))
    with Stack(config.replace(runtime="container", services=("python", "python-enqueue")),
               log_dir=tmp_path) as stack:
        sent: set[str] = set()
        for name in ("python", "python-enqueue"):
            payloads = PayloadSet(5, size_bytes=1_000, id_prefix=f"{name}-image")
            assert [post(stack.service(name).ingest_url, payloads.body(i))[0] for i in range(5)] == [202] * 5
            sent |= {payloads.request_id(i) for i in range(5)}
        stack.wait_for_records(10)
        found = set(stack.read_topic()["request_id"].drop_nulls())
    assert found == sent
