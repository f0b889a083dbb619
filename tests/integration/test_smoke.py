"""`ingestlab smoke`: the README's main command, end to end."""

from __future__ import annotations

from pathlib import Path

from ingestlab.cli import main
from ingestlab.results import Run


def test_smoke_reports_every_accepted_record_delivered(tmp_path, capsys):
    code = main(["smoke", "--profile", "quick", "--runs-dir", str(tmp_path)])
    out = capsys.readouterr().out.strip().splitlines()
    assert code == 0, "\n".join(out)
    run = Run.open(Path(out[-1]))
    assert run.path.parent == tmp_path.resolve()
    for service in ("node", "rust"):
        counts = run.summary.services[service]
        assert counts.sent == 60
        assert counts.accepted == 54 and counts.rejected == 6
        assert counts.delivered == counts.accepted
        assert counts.lost == 0 and counts.failed == 0
    assert run.warnings == []
    assert any(line.startswith("| node ") for line in out)
    assert run.read_frame("requests").height == 120
    assert run.read_frame("deliveries").height >= 108
    assert set(run.meta["stack"]["services"]) == {"node", "rust"}
