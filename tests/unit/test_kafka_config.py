import base64
import string
from pathlib import Path

import pytest

from ingestlab.build import artifacts
from ingestlab.stack.kafka import QUORUM_RACE_MARKERS, KafkaBroker, is_quorum_race, new_cluster_id

# Every character a base64url cluster id can begin with.
BASE64URL = string.ascii_letters + string.digits + "-_"


def test_cluster_id_is_16_bytes_base64url():
    cid = new_cluster_id()
    assert len(cid) == 22
    assert len(base64.urlsafe_b64decode(cid + "==")) == 16
    assert new_cluster_id() != cid


def test_quorum_race_is_recognised_and_other_failures_are_not():
    for marker in QUORUM_RACE_MARKERS:
        assert is_quorum_race(f"[2026-01-01] ERROR something: {marker} after 30000ms")
    assert not is_quorum_race("java.net.BindException: Address already in use")
    assert not is_quorum_race("")


def test_template_fills_every_placeholder_and_listens_on_loopback_only():
    template = string.Template((artifacts.KAFKA_DIR / "server.properties.template").read_text())
    text = template.substitute(broker_port=1, advertised_port=4, controller_port=2, data_dir="/tmp/x",
                               partitions=3)
    assert "$" not in text
    props = dict(line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#"))
    assert props["process.roles"] == "broker,controller"
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:1,CONTROLLER://127.0.0.1:2"
    assert props["advertised.listeners"] == "PLAINTEXT://127.0.0.1:4"
    assert props["num.partitions"] == "3"


@pytest.mark.parametrize("advertised", [None, 45678])
def test_clients_are_told_the_advertised_port_or_the_broker_s_own(advertised, tmp_path: Path):
    """A proxy in front of the broker (stack.slow_link) stays in the clients' path only if the
    broker advertises the proxy's port."""
    broker = KafkaBroker(work_dir=tmp_path, advertised_port=advertised)
    broker._write_config()
    props = dict(line.split("=", 1) for line in broker.config_path.read_text().splitlines()
                 if line and not line.startswith("#"))
    assert props["advertised.listeners"] == f"PLAINTEXT://127.0.0.1:{advertised or broker.broker_port}"
    assert props["listeners"].startswith(f"PLAINTEXT://127.0.0.1:{broker.broker_port},")


@pytest.mark.parametrize("first", BASE64URL)
def test_format_passes_any_cluster_id_as_one_token(first, tmp_path: Path):
    """Regression: an id beginning with '-' (1 in 64) was read as an option by StorageTool."""
    cid = first + new_cluster_id()[1:]
    argv = KafkaBroker(work_dir=tmp_path).format_storage_argv(cid)
    assert f"--cluster-id={cid}" in argv
    assert cid not in argv  # never a token of its own
