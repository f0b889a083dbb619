"""The container runtime end to end: the broker and both services in containers of the
workbook's engine (host networking), records read back from Kafka, nothing left behind.

Needs Debian's docker.io (dockerd) and the images' inputs (make setup); the images are built
on first use (`build.images.store.ensure_image`) and cached in the engine's data root.
"""

from __future__ import annotations

import time

import docker.errors
import polars as pl
import pytest

from ingestlab.engine.container import ContainerProcess
from ingestlab.engine.docker_engine import shared_engine
from ingestlab.engine.labels import CONTAINER_LABEL, OWNER_LABEL, STACK_LABEL, owner_value
from ingestlab.host.component import ArtifactMissing
from ingestlab.load.payloads import PayloadSet
from ingestlab.stack import Stack
from ingestlab.telemetry.cgroup import CGROUP_SAMPLE_SCHEMA
from ingestlab.telemetry.sampler import ProcessSampler

REQUESTS_PER_SERVICE = 5


@pytest.fixture(scope="module")
def engine():
    try:
        return shared_engine()
    except ArtifactMissing as exc:  # dockerd not installed: no container engine on this machine
        pytest.skip(str(exc))


@pytest.fixture
def container_config(config):
    return config.replace(runtime="container")


def _ours(client, stack_id: str) -> list:
    return client.containers.list(all=True, filters={"label": f"{STACK_LABEL}={stack_id}"})


def test_a_container_stack_delivers_to_kafka_on_host_networking_and_leaves_nothing(
        engine, container_config, tmp_path, post):
    client = engine.client()
    with Stack(container_config, log_dir=tmp_path) as stack:
        runtime = stack.runtime
        components = stack.components()
        assert [c.name for c in components] == ["kafka", "node", "rust"]
        ids = {}
        for component in components:
            assert isinstance(component, ContainerProcess)
            attrs = client.containers.get(component.container_id).attrs
            ids[component.name] = component.container_id
            assert attrs["HostConfig"]["NetworkMode"] == "host"
            assert attrs["NetworkSettings"]["Networks"].keys() <= {"host"}
            layout = container_config.cores
            cores = layout.broker if component.name == "kafka" else layout.service
            assert attrs["HostConfig"]["CpusetCpus"] == ",".join(map(str, cores))
            assert attrs["State"]["Pid"] == component.pid  # a host pid: /proc telemetry works
            labels = attrs["Config"]["Labels"]
            assert labels[CONTAINER_LABEL] == "1" and labels[OWNER_LABEL] == owner_value()
            assert labels[STACK_LABEL] == runtime.stack_id
        assert len(_ours(client, runtime.stack_id)) == 3  # the one-shot format container is gone
        assert engine.bridges() == []

        described = stack.describe()
        assert described["runtime"]["name"] == "container"
        assert set(described["runtime"]["images"]) == {"kafka", "node", "rust"}
        assert described["kafka"]["container_id"] == ids["kafka"]
        assert {n: s["container_id"] for n, s in described["services"].items()} == {
            "node": ids["node"], "rust": ids["rust"]}

        # a few valid requests to each service, each record found in Kafka by its request id
        sent = []
        for name in ("node", "rust"):
            payloads = PayloadSet(REQUESTS_PER_SERVICE, size_bytes=1_000, seed=3, id_prefix=f"ctr-{name}")
            for i in range(len(payloads)):
                status, answer = post(stack.service(name).ingest_url, payloads.body(i))
                assert (status, answer) == (202, {"status": "Accepted"}), stack.service(name).logs()
                sent.append(payloads.request_id(i))
        assert stack.wait_for_records(len(sent)) == len(sent)
        found = stack.read_topic()["request_id"].to_list()
        assert sorted(found) == sorted(sent)

        # the sampler reads the container's cgroup beside /proc
        with ProcessSampler(stack.service("rust"), interval_s=0.05) as sampler:
            time.sleep(0.3)
        main = sampler.samples().filter(pl.col("pid") == sampler.pid)
        assert set(CGROUP_SAMPLE_SCHEMA) <= set(main.columns)
        assert (main["cgroup_memory_bytes"] > 0).all() and main["cgroup_cpu_ns"].null_count() == 0

        # SIGTERM reaches each service (pid 1 of its container): it flushes and exits 0
        for name in ("node", "rust"):
            assert stack.service(name).stop(timeout_s=20) == 0, stack.service(name).logs()

    for cid in ids.values():
        with pytest.raises(docker.errors.NotFound):
            client.containers.get(cid)
    assert _ours(client, runtime.stack_id) == []
    assert engine.bridges() == []
    # the logs outlive the containers
    assert "Kafka Server started" in (tmp_path / "kafka.log").read_text()
    assert (tmp_path / "node.log").stat().st_size > 0 and (tmp_path / "rust.log").stat().st_size > 0


@pytest.mark.parametrize("interruption", [RuntimeError, KeyboardInterrupt])
def test_an_interrupted_container_stack_leaves_no_container(engine, container_config, tmp_path,
                                                            interruption):
    client = engine.client()
    runtime_id = None
    with pytest.raises(interruption), Stack(container_config, services=("rust",), log_dir=tmp_path) as stack:
        runtime_id = stack.runtime.stack_id
        assert len(_ours(client, runtime_id)) == 2
        raise interruption("cell interrupted")
    assert runtime_id is not None and _ours(client, runtime_id) == []


def test_a_container_that_exits_fails_its_start_with_its_log_tail_and_is_removed(engine, tmp_path):
    from ingestlab.build.images.store import ensure_image
    from ingestlab.host.component import StartupError, wait_until

    image = ensure_image(engine, "kafka", "minimal")  # it has a shell (busybox)
    proc = ContainerProcess("doomed", ["/bin/sh", "-c", "echo boom on $MARK; exit 3"], image=image,
                            log_path=tmp_path / "doomed.log", env={"MARK": "purpose"}, cores=(0,),
                            engine=engine)
    with proc, pytest.raises(StartupError, match="exited while waiting") as info:
        wait_until(lambda: False, component=proc, timeout_s=30, what="never")
    assert "boom on purpose" in info.value.log_tail
    assert proc.returncode == 3
    with pytest.raises(docker.errors.NotFound):
        engine.client().containers.get(proc.container_id)
    assert (tmp_path / "doomed.log").read_text() == "boom on purpose\n"
