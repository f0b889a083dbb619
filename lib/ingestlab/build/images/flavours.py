"""What each flavour adds to a recipe's entries or leaves out of them: `minimal` (`FROM scratch`)
adds a skeleton (`/etc/passwd` and `/etc/group`, which `docker run --user root` looks the name
up in, and `/tmp`); `conventional` (on the Debian minbase root, `minbase`) leaves out the shell
and every library the base already has."""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

from ingestlab.build.images.contents import Entry, Recipe
from ingestlab.build.layout import SHELL
from ingestlab.names import MINIMAL, ImageFlavour

_PASSWD = f"root:x:0:0:root:/root:{SHELL}\n"
_GROUP = "root:x:0:\n"


def skeleton() -> list[Entry]:
    """The files a `FROM scratch` image needs besides the program's."""
    return [Entry("/etc/passwd", "skeleton", kind="text", text=_PASSWD),
            Entry("/etc/group", "skeleton", kind="text", text=_GROUP),
            Entry("/tmp", "skeleton", kind="dir", mode=0o1777)]


def flavour_entries(recipe: Recipe, flavour: ImageFlavour, base_root: Path | None = None) -> list[Entry]:
    """The entries an image of `flavour` gets: minimal adds the skeleton; conventional leaves
    out the shell and every library `base_root` already has."""
    if flavour == MINIMAL:
        return [*skeleton(), *recipe.entries]
    if base_root is None:
        raise ValueError("the conventional flavour needs the base root to see what it has")
    return [e for e in recipe.entries
            if e.part != "shell" and not (e.library and base_has_library(base_root, e.dest))]


def base_has_library(base_root: Path, dest: str) -> bool:
    """True if the base root has a file (or a link to one) at `dest` or under its name in one
    of the loader's directories."""
    name = PurePosixPath(dest).name
    parent = PurePosixPath(dest).parent
    dirs = {parent, *(PurePosixPath(d) / parent.name for d in ("/lib", "/usr/lib")), PurePosixPath("/lib64")}
    return any(_exists_in_root(base_root, str(d / name)) for d in dirs)


def _exists_in_root(root: Path, dest: str) -> bool:
    """`dest` exists in `root`, resolving symlinks (relative or absolute) inside `root`, never
    outside it."""
    pending = [p for p in PurePosixPath(dest).parts if p != "/"]
    resolved: list[str] = []
    for _hop in range(200):
        if not pending:
            return root.joinpath(*resolved).exists()
        head = pending.pop(0)
        if head in ("", "."):
            continue
        if head == "..":
            if resolved:
                resolved.pop()
            continue
        candidate = root.joinpath(*resolved, head)
        if candidate.is_symlink():
            target = PurePosixPath(os.readlink(candidate))
            if target.is_absolute():
                resolved = []
            pending = [p for p in target.parts if p != "/"] + pending
            continue
        if not candidate.exists():
            return False
        resolved.append(head)
    return False  # a symlink loop
