"""What goes into an image: its entries (files, generated text, directories, host trees), in
parts that become its layers, and the key and tag that name all of it.

An image's tag carries the key (a digest of everything that went in: file contents, the keys of
cached trees, the recipe), so `store.ensure_image` builds only when an input changed.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Literal

from ingestlab.names import IMAGE_FLAVOURS, ImageFlavour

COMPONENTS = ("kafka", "node", "rust", "python")

# Raise when what goes into an image changes in a way the inputs' digests do not show (the
# layout, the trimming rules, the Dockerfile): every tag changes with it.
RECIPE_VERSION = 1
REPOSITORY = "ingestlab"

# Parts, in the order of their layers.
PART_ORDER = ("skeleton", "shared-libraries", "shell", "jre", "executable", "stdlib", "site-packages",
              "node_modules", "jars", "config", "sources")


@dataclass(frozen=True)
class Entry:
    """One thing in an image: a host file, a generated text file, an empty directory, or a
    host tree (copied with `keep`, its content named by `tree_key`)."""

    dest: str  # absolute path in the image
    part: str  # one of PART_ORDER
    kind: Literal["file", "text", "dir", "tree"] = "file"
    source: Path | None = None
    text: str | None = None
    mode: int = 0o644
    strip: bool = False  # file: strip symbols and debug sections on the way in
    tree_key: str | None = None  # tree: a digest of its content (a keyed cache dir's name)
    keep: Callable[[PurePosixPath], bool] | None = dataclasses.field(default=None, compare=False)
    library: str | None = None  # shared library: its soname (skipped where the base has it)

    def digest(self) -> str:
        """What this entry contributes to the image key."""
        if self.kind == "file":
            assert self.source is not None
            content = _file_digest(self.source)
        elif self.kind == "text":
            content = hashlib.sha256((self.text or "").encode()).hexdigest()
        elif self.kind == "tree":
            content = f"tree:{self.tree_key}"
        else:
            content = "dir"
        return f"{self.dest}|{self.part}|{self.kind}|{self.mode:o}|{int(self.strip)}|{content}"


@dataclass(frozen=True)
class Recipe:
    """Everything one component's image needs, before the flavour is chosen."""

    component: str
    entries: tuple[Entry, ...]
    workdir: str
    cmd: tuple[str, ...]
    env: tuple[tuple[str, str], ...] = ()


@functools.lru_cache(maxsize=512)
def _digest_of(path: str, size: int, mtime_ns: int, inode: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _file_digest(path: Path) -> str:
    """sha256 of a file's content (remembered per path, size, mtime and inode: node is 99 MB)."""
    st = path.stat()
    return _digest_of(str(path), st.st_size, st.st_mtime_ns, st.st_ino)


def file_entry(dest: str, part: str, source: Path, *, strip: bool = False) -> Entry:
    return Entry(dest, part, source=source, mode=source.stat().st_mode & 0o7777, strip=strip)


def content_key(recipe: Recipe, flavour: ImageFlavour, base_key: str = "") -> str:
    """16 hex digits naming everything that goes into `recipe`'s image in `flavour`."""
    h = hashlib.sha256()
    header = [RECIPE_VERSION, recipe.component, flavour, base_key, recipe.workdir, list(recipe.cmd),
              [list(pair) for pair in recipe.env]]
    h.update(json.dumps(header).encode())
    for entry in sorted(recipe.entries, key=lambda e: (e.dest, e.part)):
        h.update(b"\n" + entry.digest().encode())
    return h.hexdigest()[:16]


def format_tag(component: str, flavour: ImageFlavour, key: str) -> str:
    """"ingestlab/<component>:<flavour>-<key>", e.g. "ingestlab/rust:minimal-0123456789abcdef"."""
    if component not in COMPONENTS:
        raise ValueError(f"unknown component {component!r}; choose from {COMPONENTS}")
    if flavour not in IMAGE_FLAVOURS:
        raise ValueError(f"unknown flavour {flavour!r}; choose from {IMAGE_FLAVOURS}")
    return f"{REPOSITORY}/{component}:{flavour}-{key}"


def listing_key(root: Path, files: Iterable[Path]) -> str:
    """16 hex digits naming the files of a host tree that is no keyed cache (the interpreter's
    standard library, site-packages) by their paths under `root`, sizes and modification times:
    a reinstall or an upgrade changes it, without reading every byte on each `ensure_image`."""
    h = hashlib.sha256()
    for path in sorted(files):
        st = path.stat()
        h.update(f"{path.relative_to(root)}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]
