"""The images in the engine: each component's image in each flavour built where its tag is
missing (`ensure_image`, `build_images`), the minbase image imported (`ensure_base`), and an
image's size by part from the engine's layer history (`image_parts`)."""

from __future__ import annotations

import re
import subprocess
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from ingestlab.build.images.contents import COMPONENTS, Recipe, content_key, format_tag
from ingestlab.build.images.context import build_context
from ingestlab.build.images.flavours import flavour_entries
from ingestlab.build.images.minbase import base_key, base_tag, build_base_root
from ingestlab.build.images.recipes import recipe
from ingestlab.engine.docker_engine import DockerEngine, shared_engine
from ingestlab.engine.labels import (
    IMAGE_BASE_LABEL,
    IMAGE_COMPONENT_LABEL,
    IMAGE_FLAVOUR_LABEL,
    IMAGE_KEY_LABEL,
    IMAGE_PARTS_LABEL,
)
from ingestlab.names import CONVENTIONAL, IMAGE_FLAVOURS, ImageFlavour
from ingestlab.paths import cache_root
from ingestlab.units import MB

BASE_PART = "base root"


def _has_image(engine: DockerEngine, tag: str) -> bool:
    import docker.errors

    try:
        engine.client().images.get(tag)
        return True
    except docker.errors.ImageNotFound:
        return False


def image_tag(component: str, flavour: ImageFlavour) -> str:
    """The tag of `component`'s image in `flavour` for the artifacts on disk now, e.g.
    "ingestlab/rust:minimal-<key>" (Kafka's may build the jlink JRE first: about a minute)."""
    return format_tag(component, flavour, _key(recipe(component), flavour))


def _key(rec: Recipe, flavour: ImageFlavour) -> str:
    return content_key(rec, flavour, base_key() if flavour == CONVENTIONAL else "")


def ensure_image(engine: DockerEngine, component: str, flavour: ImageFlavour) -> str:
    """`component`'s image in `flavour`, built if its tag is missing; returns the tag. About a
    second when it exists (the inputs' digests); a build takes 5-60 s."""
    rec = recipe(component)
    return _ensure(engine, rec, flavour)


def _ensure(engine: DockerEngine, rec: Recipe, flavour: ImageFlavour) -> str:
    key = _key(rec, flavour)
    tag = format_tag(rec.component, flavour, key)
    if _has_image(engine, tag):
        return tag
    begin = time.monotonic()
    base = base_root = None
    if flavour == CONVENTIONAL:
        base = ensure_base(engine)
        base_root = build_base_root()  # kept since the base was made (made again if deleted)
    entries = flavour_entries(rec, flavour, base_root)
    work = cache_root() / "images" / "contexts"
    work.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=work, prefix=f"{rec.component}-{flavour}-") as context:
        parts = build_context(Path(context), entries, rec, base)
        labels = {IMAGE_COMPONENT_LABEL: rec.component, IMAGE_FLAVOUR_LABEL: flavour, IMAGE_KEY_LABEL: key,
                  IMAGE_PARTS_LABEL: ",".join(parts)}
        if base:
            labels[IMAGE_BASE_LABEL] = base
        engine.client().images.build(path=context, tag=tag, labels=labels, rm=True, forcerm=True)
    print(f"  built {tag} in {time.monotonic() - begin:.1f} s ({image_bytes(engine, tag) / MB:.1f} MB)",
          flush=True)
    return tag


def build_images(engine: DockerEngine | None = None,
                 flavours: Iterable[ImageFlavour] = IMAGE_FLAVOURS) -> dict[str, str]:
    """Every component's image in each flavour (eight by default), built where missing;
    returns {"<component>:<flavour>": tag}. Without `engine`, the shared engine."""
    if engine is None:
        engine = shared_engine()
    flavours = tuple(flavours)
    tags = {}
    for component in COMPONENTS:
        rec = recipe(component)
        for flavour in flavours:
            tags[f"{component}:{flavour}"] = _ensure(engine, rec, flavour)
    return tags


def image_bytes(engine: DockerEngine, tag: str) -> int:
    """The image's size in bytes as the engine reports it (uncompressed, base layers included)."""
    return int(engine.client().images.get(tag).attrs["Size"])


def image_parts(engine: DockerEngine, tag: str) -> list[dict]:
    """The image's size by part, from the engine's layer history: {"part": str, "bytes": int},
    in layer order; the base image's layers (conventional) as one part, "base root"."""
    client = engine.client()
    labels = client.images.get(tag).labels or {}
    names = [name for name in labels.get(IMAGE_PARTS_LABEL, "").split(",") if name]
    return parts_from_history(client.api.history(tag), names)


def parts_from_history(history: Sequence[Mapping], names: Sequence[str]) -> list[dict]:
    """Pair the COPY layers of `history` (newest first, as the engine gives it) with `names`
    (oldest first); every other layer with bytes counts as "base root"."""
    base = 0
    copies = []
    for layer in reversed(history):
        created_by = layer.get("CreatedBy") or ""
        size = int(layer.get("Size") or 0)
        if re.search(r"\bCOPY\b", created_by):
            copies.append(size)
        else:
            base += size
    if len(copies) != len(names):
        raise ValueError(f"{len(copies)} COPY layers but {len(names)} part names ({names})")
    parts = [{"part": BASE_PART, "bytes": base}] if base else []
    return parts + [{"part": name, "bytes": size} for name, size in zip(names, copies, strict=True)]


def ensure_base(engine: DockerEngine) -> str:
    """`ingestlab/debian-minbase:<key>`, made once: debootstrap into the cache, then `docker
    import` of its tar (about 30 s cold, a second to import again from the kept root)."""
    tag = base_tag()
    if _has_image(engine, tag):
        return tag
    root = build_base_root()
    begin = time.monotonic()
    with tempfile.TemporaryDirectory(dir=root.parent, prefix="import-") as work:
        archive = Path(work) / "root.tar"
        subprocess.run(["tar", "--numeric-owner", "--one-file-system", "-C", str(root),
                        "--exclude=./dev/*", "--exclude=./proc/*", "--exclude=./sys/*",
                        "-cf", str(archive), "."], check=True)
        repository, key = tag.rsplit(":", 1)
        engine.client().api.import_image_from_file(str(archive), repository=repository, tag=key)
    print(f"  imported {tag} in {time.monotonic() - begin:.1f} s ({image_bytes(engine, tag) / MB:.1f} MB)",
          flush=True)
    return tag
