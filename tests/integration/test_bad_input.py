"""`ingestlab run bad-input`: the whole corpus against both real services, end to end.

Its own stack rather than the session's: the ledger needs a topic holding only this run's
records (the session topic also holds the other tests', and Node's last records arrive after
its 202s: the run waits for the topic to hold as many records as were accepted).
"""

from __future__ import annotations

from pathlib import Path

from ingestlab.cli import main
from ingestlab.load.bad_input import corpus
from ingestlab.results import Run
from ingestlab.stack.exposure import off_loopback
from ingestlab.stack.topic import BROKER_MESSAGE_MAX_BYTES


def test_every_case_keeps_the_promises_and_every_202_is_in_kafka(tmp_path, capsys):
    code = main(["run", "bad-input", "--profile", "quick", "--runtime", "native",
                 "--runs-dir", str(tmp_path)])
    out = capsys.readouterr().out.strip().splitlines()
    assert code == 0, "\n".join(out)
    run = Run.open(Path(out[-1]))
    matrix = run.read_frame("matrix")
    assert matrix.height == 2 * len(corpus("x"))
    failed = matrix.filter(matrix["verdict"] != "ok").select("service", "case", "verdict", "reason")
    assert failed.height == 0, failed.to_dicts()
    for service in ("node", "rust"):
        result = run.summary.services[service]
        assert (result.cases, result.violations, result.crashes) == (len(corpus("x")), 0, 0)
        assert result.accepted > 40 and result.delivered == result.accepted
        assert (result.lost, result.duplicated, result.unexpected) == (0, 0, 0)
        assert result.boundary_delivered
        assert result.listen_addresses and off_loopback(result.listen_addresses) == []
    assert run.summary.topic_max_message_bytes == BROKER_MESSAGE_MAX_BYTES
    assert run.warnings == []
