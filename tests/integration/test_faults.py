"""A broker killed and restarted on its data and port (`stack.kafka`), against the real broker
and services. The pause and the SIGTERM under load are checked on notebook 07's `faults` run
(tests/notebooks/experiment_checks.py), which the quick profile runs without the kill.

The kill is not run under load here: a Node 202 given while the broker is dead is only as safe
as librdkafka's retries (`ingestlab run faults` measures it; docs/limits.md, "Faults", says
what it found).
"""

from __future__ import annotations

from ingestlab.config import StudyConfig
from ingestlab.load.payloads import PayloadSet
from ingestlab.stack import Stack


def test_a_killed_broker_restarts_on_its_data_and_port(config: StudyConfig, tmp_path, post) -> None:
    with Stack(config.replace(services=("rust",)), log_dir=tmp_path) as stack:
        broker = stack.kafka
        assert broker is not None
        port, url = broker.broker_port, stack.service("rust").ingest_url
        payloads = PayloadSet(20, size_bytes=1_000, id_prefix="kill")
        assert {post(url, payloads.body(i))[0] for i in range(len(payloads))} == {202}
        broker.kill()
        took_s = broker.restart()
        assert broker.broker_port == port and broker.is_running()
        assert took_s < config.stack.broker_start_timeout_s
        kept = stack.read_topic()["request_id"].sort().to_list()
        assert kept == [payloads.request_id(i) for i in range(len(payloads))]
        # and the service produces through the restarted broker again
        assert post(url, PayloadSet(1, size_bytes=1_000, id_prefix="again").body(0))[0] == 202
