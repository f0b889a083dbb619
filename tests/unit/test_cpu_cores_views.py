"""notebook.cpu_cores and charts.cpu_cores on small frames: the table beside the article, the
conditions, and the stacked bars' data."""

from __future__ import annotations

import polars as pl
import pytest
from factories import summary
from test_cpu_cores import _trials

from ingestlab.charts import cpu_cores_bars
from ingestlab.charts.cpu_cores import core_parts
from ingestlab.notebook.cpu_cores import TABLE_COLUMNS, cpu_cores_conditions, cpu_cores_table


def test_table_puts_the_article_beside_each_role_with_the_contention() -> None:
    cores, _ = _trials()
    table = cpu_cores_table(cores)
    assert table.columns == list(TABLE_COLUMNS)
    busiest, other = table.to_dicts()
    assert (busiest["role"], busiest["article_pct"], other["article_pct"]) == ("busiest", 100.0, 12.0)
    # others on the busiest core: broker 15 + load 10 + rest 5 (means of the two trials)
    assert busiest["others_pct"] == pytest.approx(30.0)
    # a service the article does not name has no article value
    variant = cpu_cores_table(cores.with_columns(service=pl.lit("node-acked")))
    assert variant["article_pct"].null_count() == 2


def test_conditions_per_service() -> None:
    made = summary("cpu-cores", {"node": {}, "rust": {}}, layout="service-both-cores",
                   layout_cores={"service": [0, 1], "broker": [0], "load": [0], "load_nice": -10},
                   rate_rps=1_000.0, rate_source="set")
    conditions = cpu_cores_conditions(made)
    assert conditions["service"].to_list() == ["node", "rust"]
    row = conditions.row(0, named=True)
    assert (row["layout"], row["service_cores"], row["broker_cores"], row["rate_rps"]) == (
        "service-both-cores", "0, 1", "0", 1_000.0)


def test_bars_stack_the_service_below_the_others_and_mark_the_article() -> None:
    cores, groups = _trials()
    parts = core_parts(cores, groups)
    busiest = parts.filter(pl.col("role") == "busiest").sort("order")
    assert busiest["part"].to_list() == ["event loop", "librdkafka", "broker", "load engine",
                                         "rest (other processes, interrupts)"]
    assert busiest["kind"].to_list() == ["service"] * 2 + ["others"] * 3
    # the bar is the core's busy time in the mean: service 65 + 5, broker 15, load 10, rest 5
    assert busiest["core_pct"].sum() == pytest.approx(100.0)
    spec = cpu_cores_bars(cores, groups).to_dict()
    assert len(spec["hconcat"]) == 1 and spec["title"]["text"] == "CPU per core"
    marks = [layer["mark"]["type"] for layer in spec["hconcat"][0]["layer"]]
    assert marks == ["bar", "tick"]


def test_checks_warn_of_a_service_narrower_than_the_layout_and_of_others_on_its_cores() -> None:
    from ingestlab.config import CORE_LAYOUTS, StudyConfig
    from ingestlab.experiments.cpu_cores import _checks

    config = StudyConfig.for_profile("quick", cores=CORE_LAYOUTS["service-both-cores"])
    cores, _ = _trials()
    fine = summary("cpu-cores", {"node": {}}).services["node"]
    assert _checks(config, "node", fine, cores) == [
        "node, trial 1: 30% of core 1 went to none of the service, the broker and the load engine "
        "(another user of the machine?)"]
    pinned = summary("cpu-cores", {"node": {"allowed_cores": [0]}}).services["node"]
    found = _checks(config, "node", pinned, cores)
    assert "could run on cores [0] only, not on the layout's [0, 1]" in found[0]
