"""Typed summaries: every experiment's summary survives JSON, and what cannot be read is refused."""

from __future__ import annotations

import json

import pytest
from factories import summary

from ingestlab.summaries import (
    SUMMARY_TYPES,
    SUMMARY_VERSION,
    PerService,
    SummaryFormatError,
    dump_summary,
    load_summary,
    rust_over_node,
)


@pytest.mark.parametrize("experiment", sorted(SUMMARY_TYPES))
def test_every_summary_survives_json(experiment: str) -> None:
    services = {"node": {}, "rust": {}} if issubclass(SUMMARY_TYPES[experiment], PerService) else None
    written = summary(experiment, services)
    data = json.loads(json.dumps(dump_summary(written, run_id="r1", warnings=["w"])))
    assert data["schema_version"] == SUMMARY_VERSION and data["experiment"] == experiment
    assert load_summary(data) == (written, ["w"])


def test_an_unknown_field_another_version_or_experiment_is_refused() -> None:
    data = json.loads(json.dumps(dump_summary(summary("ceiling", {"node": {}}), run_id="r1")))
    data["summary"]["services"]["node"]["ceiling_mb"] = 1
    with pytest.raises(SummaryFormatError, match="ceiling_mb"):
        load_summary(data)
    with pytest.raises(SummaryFormatError, match="version 1"):
        load_summary({**data, "schema_version": 1})
    with pytest.raises(SummaryFormatError, match="'bogus'"):
        load_summary({**data, "experiment": "bogus"})


def test_a_version_2_summary_reads_with_the_later_fields_at_their_defaults() -> None:
    data = json.loads(json.dumps(dump_summary(summary("soak", {"node": {}}), run_id="r1")))
    for name in ("runtime", "cgroup_mem_mean_mb", "cgroup_mem_peak_mb"):
        del data["summary"]["services"]["node"][name]  # added in version 3
    read, _ = load_summary({**data, "schema_version": 2})
    assert read.services["node"].runtime == "native" and read.services["node"].cgroup_mem_mean_mb is None


def test_rust_over_node_from_the_typed_fields() -> None:
    soak = summary("soak", {"node": {"rss_mean_mib": 120.0, "p99_ms": 20.0, "rss_start_mib": 60.0},
                            "rust": {"rss_mean_mib": 30.0, "p99_ms": 10.0, "rss_start_mib": 6.0}})
    assert soak.rust_over_node() == pytest.approx({"rss_mean_mib": 0.25, "rss_start_mib": 0.1, "p99_ms": 0.5})
    assert summary("soak", {"rust": {}}).rust_over_node() == {}  # one service: no ratio
    # a value missing or zero on Node's side gives no ratio for that field
    assert rust_over_node({"node": {"a": 0, "b": None, "c": 2.0}, "rust": {"a": 1, "b": 1, "c": 1.0}},
                          ("a", "b", "c")) == {"c": 0.5}
