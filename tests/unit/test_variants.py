"""The service names (ingestlab.variants) and how the stack turns each into a command."""

from __future__ import annotations

import pytest

from ingestlab.config import StudyConfig
from ingestlab.stack.services import spec_for
from ingestlab.variants import ARTICLE_SERVICES, MATCHED_PAIRS, SERVICES, has_v8_trace, program_of, variant


def test_every_variant_changes_one_thing_against_its_program():
    for name in SERVICES:
        v = variant(name)
        article = variant(v.program) if v.program in ARTICLE_SERVICES else None
        if article is not None and name != v.program:
            assert (v.promise != article.promise) + (v.processes != article.processes) == 1, name
    # each matched pair keeps one promise across the two languages
    for promise, (node, rust) in MATCHED_PAIRS.items():
        assert variant(node).promise == variant(rust).promise == promise
        assert (program_of(node), program_of(rust)) == ("node", "rust")


def test_an_unknown_name_is_refused_with_the_known_ones():
    with pytest.raises(ValueError, match="node-acked"):
        variant("deno")
    with pytest.raises(ValueError, match="subset"):
        StudyConfig(services=("deno",))  # type: ignore[arg-type]
    assert StudyConfig().services == ARTICLE_SERVICES


def test_the_v8_trace_is_read_for_a_single_node_process_only():
    assert [s for s in SERVICES if has_v8_trace(s)] == ["node", "node-acked"]


@pytest.mark.parametrize("name", SERVICES)
def test_the_promise_reaches_the_program_by_env(name):
    spec = spec_for(name, node_flags=("--trace-gc",))
    assert dict(spec.env)["ACK_MODE"] == variant(name).promise
    assert ("--trace-gc" in spec.argv) == (program_of(name) == "node")
