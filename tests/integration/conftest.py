"""Integration tier: the real Kafka broker and the real services (built by `make setup`)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable

import pytest

from ingestlab.config import StudyConfig
from ingestlab.stack import Stack


def pytest_collection_modifyitems(items):
    for item in items:
        item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def config(tmp_path_factory) -> StudyConfig:
    # Native processes: these tests check the services, the rig and the experiments; the
    # container runtime has its own tests (test_container_stack) and runs the notebooks' study.
    return StudyConfig.for_profile("quick", runs_dir=tmp_path_factory.mktemp("runs"), runtime="native")


# The contract holds for every service name (variants.SERVICES, services/README.md).
CONTRACT_SERVICES = ("node", "rust", "node-acked", "rust-enqueue", "node-cluster", "python", "python-enqueue")


@pytest.fixture(scope="session")
def stack(config, tmp_path_factory):
    """One broker and every service for the contract tests (about 5 s to start)."""
    contract = config.replace(services=CONTRACT_SERVICES)
    with Stack(contract, log_dir=tmp_path_factory.mktemp("logs")) as running:
        yield running


@pytest.fixture(params=CONTRACT_SERVICES)
def service_name(request) -> str:
    return request.param


Post = Callable[[str, bytes], tuple[int, dict]]


@pytest.fixture
def post() -> Post:
    """POST `body` as JSON to `url`; returns (status, parsed JSON answer)."""

    def _post(url: str, body: bytes) -> tuple[int, dict]:
        request = urllib.request.Request(url, data=body, method="POST",
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=15) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read() or b"null")

    return _post
