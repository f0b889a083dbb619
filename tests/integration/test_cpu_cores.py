"""`ingestlab run cpu-cores` in the quick profile, native processes, both services (about a
minute on a quiet machine): the layout giving the service both cores, the summary filled and
plausible, the contention measured."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from ingestlab.cli import main
from ingestlab.config import CORE_LAYOUTS
from ingestlab.results import Run

SERVICES = ("node", "rust")
# The service's share of a core is put on the core each thread last ran on (analysis.cpu_cores):
# a little over 100 is possible when threads moved; a core's busy time (/proc/stat) is not.
ATTRIBUTION_SLACK_PCT = 10.0


def test_cpu_cores_quick(capsys, tmp_path: Path) -> None:
    code = main(["run", "cpu-cores", "--profile", "quick", "--runtime", "native", "--runs-dir", str(tmp_path),
                 *(arg for s in SERVICES for arg in ("--service", s))])
    out = capsys.readouterr().out.strip().splitlines()
    assert code == 0, "\n".join(out[-20:])
    run = Run.open(Path(out[-1]))
    meta, s = run.meta, run.summary
    assert meta["core_layout"] == s.layout == "service-both-cores"
    assert meta["cores"] == CORE_LAYOUTS["service-both-cores"].as_dict() == s.layout_cores
    assert s.rate_rps == 1_000 and "no ceiling run" in s.rate_source  # a fresh runs dir
    for service in SERVICES:
        r = s.services[service]
        assert r.trials == 3 and len(r.busiest_core_pct_per_trial) == len(r.other_core_pct_per_trial) == 3
        assert set(r.busiest_core_per_trial) <= {0, 1}
        assert 0 < r.busiest_core_pct <= 100 + ATTRIBUTION_SLACK_PCT
        assert 0 <= r.other_core_pct <= r.busiest_core_pct
        assert r.accepted > 0 and r.lost == 0
        assert r.allowed_cores == [0, 1]  # natively taskset gives the service both cores
        assert {share.role for share in r.by_role} == {"busiest", "other"}
        assert {g.group for g in r.by_group} & {"event loop", "actix workers"}
    cores = run.read_frame("cores")
    # both cores named in every trial, one busiest and one other
    per_trial = cores.group_by("service", "trial").agg(pl.col("core").sort(), pl.col("role").sort()).to_dict(
        as_series=False)
    assert len(per_trial["trial"]) == 2 * 3
    assert all(c == [0, 1] for c in per_trial["core"])
    assert all(r == ["busiest", "other"] for r in per_trial["role"])
    assert cores["busy_pct"].is_between(0, 100.5).all() and cores["steal_pct"].is_between(0, 100.5).all()
    # the contention: the broker and the load engine are pinned to core 0 and measured there only
    on_core = cores.group_by("core").agg(pl.col("broker_pct", "load_pct").mean()).sort("core")
    broker, load = on_core["broker_pct"].to_list(), on_core["load_pct"].to_list()
    assert broker[0] > 0 and load[0] > 0 and broker[1] == load[1] == 0
    for name in ("requests", "thread_samples", "broker_thread_samples", "core_times", "core_groups"):
        assert set(run.read_frame(name)["service"]) == set(SERVICES), name
