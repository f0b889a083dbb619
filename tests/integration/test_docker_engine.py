"""The workbook's own Docker engine and its six images (needs root and what `make setup`
installs: docker.io, debootstrap, busybox-static; the images build once, then are cached).

Every container here runs with host networking and carries the workbook's label; none is left
behind, and the shared engine stops its dockerd when the test process exits."""

from __future__ import annotations

import contextlib
import json
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator

import pytest

from ingestlab.build import artifacts
from ingestlab.build.images import contents, store
from ingestlab.engine.docker_engine import DockerEngine, shared_engine
from ingestlab.engine.labels import CONTAINER_LABEL, IMAGE_COMPONENT_LABEL, IMAGE_FLAVOUR_LABEL
from ingestlab.host.ports import LOOPBACK, free_port
from ingestlab.names import CONVENTIONAL, IMAGE_FLAVOURS
from ingestlab.stack.kafka import KafkaBroker

# This session's containers (other sessions may share the engine at the same time).
SESSION_LABEL = f"{CONTAINER_LABEL}.test-session"
SESSION = uuid.uuid4().hex


@pytest.fixture(scope="module")
def engine() -> DockerEngine:
    return shared_engine()


@pytest.fixture(scope="module")
def tags(engine: DockerEngine) -> dict[str, str]:
    return store.build_images(engine)


@contextlib.contextmanager
def running(engine: DockerEngine, tag: str, command: list[str] | None = None,
            env: dict[str, str] | None = None) -> Iterator:
    """A container of `tag` with host networking, as root, labelled; removed on leaving."""
    container = engine.client().containers.run(
        tag, command, detach=True, network_mode="host", user="root", environment=env or {},
        labels={CONTAINER_LABEL: "1", f"{CONTAINER_LABEL}.component": "test", SESSION_LABEL: SESSION})
    try:
        yield container
    finally:
        container.remove(force=True)


def get_json(url: str, timeout_s: float) -> tuple[int, dict]:
    """Poll GET `url` until it answers 200 or `timeout_s` passes; (status, body) of the last."""
    deadline = time.monotonic() + timeout_s
    status, body = 0, {}
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as err:
            status, body = err.code, json.loads(err.read() or b"{}")
        except OSError:
            pass
        time.sleep(0.1)
    return status, body


def test_the_engine_makes_no_bridge(engine: DockerEngine) -> None:
    assert engine.client().ping()
    assert engine.bridges() == []
    drivers = {network.attrs["Driver"] for network in engine.client().networks.list()}
    assert "bridge" not in drivers, drivers
    assert engine.environ()["DOCKER_HOST"] == engine.docker_host


def test_six_images_minimal_smaller_than_conventional(engine: DockerEngine, tags: dict[str, str]) -> None:
    assert sorted(tags) == sorted(f"{c}:{f}" for c in contents.COMPONENTS for f in IMAGE_FLAVOURS)
    for component in contents.COMPONENTS:
        sizes = {}
        for flavour in IMAGE_FLAVOURS:
            tag = tags[f"{component}:{flavour}"]
            assert tag == contents.format_tag(component, flavour, tag.rsplit("-", 1)[1])
            labels = engine.client().images.get(tag).labels
            assert labels[IMAGE_COMPONENT_LABEL] == component and labels[IMAGE_FLAVOUR_LABEL] == flavour
            sizes[flavour] = store.image_bytes(engine, tag)
            parts = store.image_parts(engine, tag)
            assert sum(part["bytes"] for part in parts) == sizes[flavour], parts
            assert (parts[0]["part"] == store.BASE_PART) == (flavour == CONVENTIONAL)
        assert 0 < sizes["minimal"] < sizes["conventional"], (component, sizes)
    # A second pass finds every image by its tag and builds nothing.
    begin = time.monotonic()
    assert store.build_images(engine) == tags
    assert time.monotonic() - begin < 20


def test_rust_minimal_runs_with_host_networking(engine: DockerEngine, tags: dict[str, str]) -> None:
    port = free_port()
    env = {"PORT": str(port), "KAFKA_BROKERS": f"{LOOPBACK}:{free_port()}", "RUST_LOG": "warn"}
    with running(engine, tags["rust:minimal"], env=env) as container:
        status, body = get_json(f"http://{LOOPBACK}:{port}/healthz", timeout_s=20)
        container.reload()
        assert (status, body) == (200, {"status": "ok"}), container.logs().decode(errors="replace")
        assert container.attrs["HostConfig"]["NetworkMode"] == "host"
        assert set(container.attrs["NetworkSettings"]["Networks"]) == {"host"}
        assert engine.bridges() == []


def test_node_minimal_connects_to_a_real_broker(engine: DockerEngine, tags: dict[str, str], tmp_path) -> None:
    port = free_port()
    with KafkaBroker(work_dir=tmp_path) as broker:
        broker.create_topic()
        env = {"PORT": str(port), "KAFKA_BROKERS": broker.bootstrap}
        with running(engine, tags["node:minimal"], env=env) as container:
            status, body = get_json(f"http://{LOOPBACK}:{port}/healthz", timeout_s=30)
            assert (status, body) == (200, {"status": "ok"}), container.logs().decode(errors="replace")


@pytest.mark.parametrize("flavour", IMAGE_FLAVOURS)
def test_kafka_images_hold_a_jvm_and_a_shell(engine: DockerEngine, tags: dict[str, str], flavour) -> None:
    config = f"/opt/kafka/config/{artifacts.KAFKA_LOG4J.name}"
    script = f"test -f {config} && ls /opt/kafka/libs | grep -c '^kafka_2.13-' && /opt/java/bin/java -version"
    with running(engine, tags[f"kafka:{flavour}"], ["/bin/sh", "-c", script]) as container:
        result = container.wait(timeout=60)
        output = container.logs().decode(errors="replace")
    assert result["StatusCode"] == 0, output
    assert 'openjdk version "17' in output


def test_no_container_of_this_session_is_left(engine: DockerEngine) -> None:
    left = engine.client().containers.list(all=True, filters={"label": f"{SESSION_LABEL}={SESSION}"})
    assert left == []
