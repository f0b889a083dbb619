"""What `ingestlab build` (called by `make setup`) builds, by name: the artifacts
(`build.artifacts`), then the images made from them (`build.images`) in the workbook's own
Docker engine."""

from __future__ import annotations

from collections.abc import Callable

from ingestlab.build import artifacts
from ingestlab.build.images import store
from ingestlab.engine.docker_engine import shared_engine


def build_images() -> dict[str, str]:
    """Every component's image (kafka, node, rust, python) in each flavour (minimal and
    conventional) in the workbook's own Docker engine, built where their inputs changed;
    {"<component>:<flavour>": tag}. Needs root (dockerd), debootstrap and busybox-static
    (installed by `make setup`)."""
    return store.build_images(shared_engine())


BUILDERS: dict[str, Callable[[], object]] = {
    "kafka": artifacts.build_kafka, "node": artifacts.build_node, "rust": artifacts.build_rust,
    "delay-server": artifacts.build_delay_server, "oha": artifacts.build_oha, "images": build_images}
# Artifacts made from the others' results: built after them.
BUILT_FROM_OTHERS = frozenset({"images"})
