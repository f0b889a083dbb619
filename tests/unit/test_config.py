import json

import pytest

from ingestlab.config import CoreLayout, StudyConfig


def test_profiles_differ_and_overrides_apply():
    quick = StudyConfig.for_profile("quick")
    full = StudyConfig.for_profile("full")
    assert quick.profile == "quick" and full.profile == "full"
    assert quick.smoke_requests < full.smoke_requests
    rust_only = StudyConfig.for_profile("quick", services=("rust",))
    assert rust_only.services == ("rust",)
    assert rust_only.smoke_requests == quick.smoke_requests


@pytest.mark.parametrize("bad", [
    {"profile": "medium"},
    {"services": ("go",)},
    {"services": ()},
    {"partitions": 0},
    {"smoke_requests": 5, "smoke_invalid": 6},
])
def test_invalid_configs_are_refused(bad):
    with pytest.raises(ValueError):
        StudyConfig(**bad)


def test_config_is_json_ready_and_records_the_core_layout():
    config = StudyConfig(cores=CoreLayout(service=(1,), broker=(0,), load=(0,)))
    data = json.loads(json.dumps(config.as_dict()))
    assert data["cores"] == {"service": [1], "broker": [0], "load": [0], "load_nice": -10}
    assert data["runs_dir"] == "data/runs"


def test_replace_returns_a_new_config():
    config = StudyConfig()
    other = config.replace(partitions=6)
    assert other.partitions == 6 and config.partitions == 3


def test_core_layout_validation_names_the_role_and_cores():
    layout = CoreLayout(service=(7,), broker=(0,), load=(0,))
    with pytest.raises(ValueError, match=r"'service' names cores \[7\]"):
        layout.validate(available={0, 1})
    with pytest.raises(ValueError, match="has no cores"):
        CoreLayout(service=()).validate(available={0, 1})
    CoreLayout().validate(available={0, 1})
