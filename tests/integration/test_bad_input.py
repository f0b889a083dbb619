"""The bad-input corpus against the Python programs, on the session's stack: every case keeps
the promises (services/README.md), every 202 is in Kafka, and the services listen on loopback
only. The article's two are checked on notebook 07's run (tests/notebooks/experiment_checks.py);
the other variants share their programs' input handling."""

from __future__ import annotations

from ingestlab.experiments.bad_input import problems_found, run_corpus
from ingestlab.host.exposure import off_loopback
from ingestlab.load.bad_input import corpus
from ingestlab.stack.topic import BROKER_MESSAGE_MAX_BYTES


def test_every_case_keeps_the_promises_and_every_202_is_in_kafka(stack, config):
    services = ("python", "python-enqueue")
    summary, matrix = run_corpus(stack, config.replace(services=services), tag="itest").judged()
    cases = len(corpus("x"))
    assert matrix.height == len(services) * cases
    failed = matrix.filter(matrix["verdict"] != "ok").select("service", "case", "verdict", "reason")
    assert failed.height == 0, failed.to_dicts()
    for service in services:
        result = summary.services[service]
        assert (result.cases, result.violations, result.crashes) == (cases, 0, 0)
        assert result.accepted > 40 and result.delivered == result.accepted
        assert (result.lost, result.duplicated, result.unexpected) == (0, 0, 0)
        assert result.boundary_delivered
        assert result.listen_addresses and off_loopback(result.listen_addresses) == []
    assert summary.topic_max_message_bytes == BROKER_MESSAGE_MAX_BYTES
    assert problems_found(summary, matrix) == []
