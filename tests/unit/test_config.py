import dataclasses
import json

import pytest

from ingestlab.config import PROFILE_CHANGES, CoreLayout, StudyConfig


def test_profiles_differ_and_overrides_apply():
    quick = StudyConfig.for_profile("quick")
    full = StudyConfig.for_profile("full")
    assert quick.profile == "quick" and full.profile == "full"
    assert quick.smoke.requests < full.smoke.requests
    assert quick.trials == 3 and full.trials == 5
    rust_only = StudyConfig.for_profile("quick", services=("rust",))
    assert rust_only.services == ("rust",)
    assert rust_only.smoke == quick.smoke


def test_a_parts_overrides_merge_into_its_profile():
    quick = StudyConfig.for_profile("quick", ceiling={"p99_bound_ms": 50.0})
    assert quick.ceiling.p99_bound_ms == 50.0
    assert quick.ceiling.step_s == PROFILE_CHANGES["quick"]["ceiling"]["step_s"]  # the rest: the profile's
    assert quick.replace(soak={"duration_s": 3.0}).soak == dataclasses.replace(quick.soak, duration_s=3.0)
    with pytest.raises(TypeError):
        quick.replace(soak={"duration": 3.0})


@pytest.mark.parametrize("bad", [
    {"profile": "medium"},
    {"services": ("go",)},
    {"services": ()},
    {"stack": {"partitions": 0}},
    {"smoke": {"requests": 5, "invalid": 6}},
])
def test_invalid_configs_are_refused(bad):
    with pytest.raises(ValueError):
        StudyConfig().replace(**bad)


def test_an_unknown_profile_is_refused():
    with pytest.raises(ValueError, match="medium"):
        StudyConfig.for_profile("medium")


def test_config_is_json_ready_and_records_the_core_layout():
    config = StudyConfig(cores=CoreLayout(service=(1,), broker=(0,), load=(0,)))
    data = json.loads(json.dumps(config.as_dict()))
    assert data["cores"] == {"service": [1], "broker": [0], "load": [0], "load_nice": -10}
    assert data["runs_dir"] == "data/runs"
    assert data["stack"]["node_flags"] == list(config.stack.node_flags)
    assert data["ceiling"]["p99_bound_ms"] == 100.0


def test_replace_returns_a_new_config():
    config = StudyConfig()
    other = config.replace(stack={"partitions": 6})
    assert other.stack.partitions == 6 and config.stack.partitions == 3


def test_core_layout_validation_names_the_role_and_cores():
    layout = CoreLayout(service=(7,), broker=(0,), load=(0,))
    with pytest.raises(ValueError, match=r"'service' names cores \[7\]"):
        layout.validate(available={0, 1})
    with pytest.raises(ValueError, match="has no cores"):
        CoreLayout(service=()).validate(available={0, 1})
    CoreLayout().validate(available={0, 1})
