"""The overload experiment against the real broker and Node service (`experiments.overload`):
the quick profile's 10,000 req/s for 6 s, far above what Node holds on one core here. About
25 s.

What Node promised is checked in Kafka: every request it answered 202 has its record, however
far behind it fell; and the summary a notebook reads is filled in.
"""

from __future__ import annotations

import polars as pl
import pytest

from ingestlab.config import StudyConfig
from ingestlab.experiments.overload import overload
from ingestlab.results import Run
from ingestlab.summaries import OverloadRate, OverloadSummary


@pytest.fixture(scope="module")
def run(config: StudyConfig) -> Run:
    return overload(config.replace(services=("node",)))


@pytest.fixture(scope="module")
def leg(run: Run) -> OverloadRate:
    summary: OverloadSummary = run.summary
    assert list(summary.services) == ["node"] and list(summary.services["node"].rates) == ["10000"]
    return summary.services["node"].rates["10000"]


def test_nothing_accepted_above_the_ceiling_is_lost(leg: OverloadRate) -> None:
    assert leg.accepted > 0
    assert leg.accepted_not_delivered == 0, f"{leg.accepted_not_delivered} 202s have no record in Kafka"
    assert leg.delivered == leg.accepted


def test_the_summary_is_filled_in(leg: OverloadRate, run: Run) -> None:
    assert leg.offered_rps == 10_000.0 and leg.duration_s == 6.0 and leg.offered == 50_000
    assert 0 < leg.sent <= leg.offered and leg.achieved_rps is not None and leg.achieved_rps > 0
    for rate in (leg.error_rate, leg.timeout_rate, leg.dropped_rate):
        assert 0.0 <= rate <= 1.0
    assert 0 < leg.rss_start_mib <= leg.rss_peak_mib and leg.rss_mean_mib <= leg.rss_peak_mib
    assert leg.memory_pattern in {"flat", "sawtooth", "irregular"}
    assert leg.heap_pattern in {"flat", "sawtooth", "irregular"} and leg.heap_peak_mib
    assert leg.delivered_after_client_error >= 0 and leg.duplicated >= 0
    assert leg.engine_notes or not leg.engine_saturated
    assert leg.share_of_ceiling is None  # no ceiling run in this test's runs dir
    requests, legs = run.read_frame("requests"), run.read_frame("legs")
    assert requests.height == leg.offered + 10_000  # the warm-up's second is in the ledger too
    assert legs.select("service", "offered_rps").rows() == [("node", 10_000.0)]
    assert run.read_frame("gc").height > 0 and run.read_frame("samples").height > 0
    assert run.read_frame("deliveries").filter(pl.col("request_id").is_not_null()).height >= leg.accepted
