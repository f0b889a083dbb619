"""An image's build context: one directory per part (hard links into the build cache where it
can, else copies) and the Dockerfile, one COPY layer per part, so the engine's own history
gives the size of each part (`store.image_parts`)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path, PurePosixPath

from ingestlab.build.images.contents import PART_ORDER, Entry, Recipe


def dockerfile(entries: Sequence[Entry], recipe: Recipe, base: str | None) -> tuple[str, list[str]]:
    """The Dockerfile for `entries` (one COPY layer per part, in PART_ORDER) and the parts in
    layer order."""
    parts = [part for part in PART_ORDER if any(e.part == part for e in entries)]
    unknown = {e.part for e in entries} - set(PART_ORDER)
    if unknown:
        raise ValueError(f"entries with unknown parts {sorted(unknown)}")
    lines = [f"FROM {base or 'scratch'}"]
    lines += [f"COPY {part}/ /" for part in parts]
    lines += [f"ENV {name}={value}" for name, value in recipe.env]
    lines += [f"WORKDIR {recipe.workdir}", f"CMD {json.dumps(list(recipe.cmd))}"]
    return "\n".join(lines) + "\n", parts


def link_or_copy(source: Path, dest: Path) -> None:
    """Hard-link `source` at `dest` (same file system as the cache: no copy), else copy it."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, dest)  # same file system as the cache: no copy
    except OSError:
        shutil.copy2(source, dest)


def _materialise(entry: Entry, part_dir: Path) -> None:
    target = part_dir / entry.dest.lstrip("/")
    if entry.kind == "dir":
        target.mkdir(parents=True, exist_ok=True)
        target.chmod(entry.mode)
    elif entry.kind == "text":
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(entry.text or "")
        target.chmod(entry.mode)
    elif entry.kind == "file":
        assert entry.source is not None
        target.parent.mkdir(parents=True, exist_ok=True)
        if entry.strip:
            subprocess.run(["strip", "-o", str(target), str(entry.source)], check=True)
            target.chmod(entry.mode)
        else:
            link_or_copy(entry.source, target)
    else:
        assert entry.source is not None
        _copy_tree(entry.source, target, entry.keep)


def _copy_tree(source: Path, target: Path, keep: Callable[[PurePosixPath], bool] | None) -> None:
    target.mkdir(parents=True, exist_ok=True)
    for dirpath, dirnames, filenames in os.walk(source):
        here = Path(dirpath)
        for name in [*filenames, *(d for d in dirnames if (here / d).is_symlink())]:
            path = here / name
            relative = path.relative_to(source)
            if keep is not None and not keep(PurePosixPath(relative.as_posix())):
                continue
            dest = target / relative
            dest.parent.mkdir(parents=True, exist_ok=True)
            if path.is_symlink():
                os.symlink(os.readlink(path), dest)
            elif path.is_file():
                link_or_copy(path, dest)


def build_context(directory: Path, entries: Sequence[Entry], recipe: Recipe, base: str | None) -> list[str]:
    """Write the build context into `directory` (one subdirectory per part, and the
    Dockerfile); returns the parts in layer order."""
    text, parts = dockerfile(entries, recipe, base)
    for entry in entries:
        _materialise(entry, directory / entry.part)
    (directory / "Dockerfile").write_text(text)
    return parts
