"""The broker starts whatever its random cluster id looks like (regression: 1 start in 64
failed when the id began with '-')."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from ingestlab.stack.kafka import KafkaBroker, new_cluster_id


@pytest.mark.parametrize("first", ["-", "_", "A", "z", "7"])
def test_storage_format_takes_an_id_beginning_with(first: str, tmp_path: Path) -> None:
    broker = KafkaBroker(work_dir=tmp_path, cluster_id=first + new_cluster_id()[1:])
    broker._write_config()
    done = subprocess.run(broker.format_storage_argv(broker.cluster_id), capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (broker.data_dir / "meta.properties").read_text().count(broker.cluster_id) == 1


def test_broker_starts_with_an_id_beginning_with_a_dash(tmp_path: Path) -> None:
    with KafkaBroker(work_dir=tmp_path, cluster_id="-" + new_cluster_id()[1:]) as broker:
        assert broker.answers_metadata()
        assert broker.attempts == 1
    assert not broker.is_running()
