"""The one file walker: regular files under a tree, each inode once.

node-gyp hard-links its build outputs and npm may link packages, so a size that counts
paths instead of inodes counts some bytes twice.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Iterator
from pathlib import Path


class DistinctFiles:
    """Yields regular files (path, size in bytes) not yet seen by this walker: one walker shared
    over several trees counts a file hard-linked into two of them once. Symlinks are not
    followed."""

    def __init__(self) -> None:
        self._seen: set[tuple[int, int]] = set()

    def _first_time(self, path: Path) -> int | None:
        st = os.lstat(path)
        key = (st.st_dev, st.st_ino)
        if not stat.S_ISREG(st.st_mode) or key in self._seen:
            return None
        self._seen.add(key)
        return st.st_size

    def paths(self, paths: Iterable[Path]) -> Iterator[tuple[Path, int]]:
        """The regular files among `paths`, sorted, each inode once."""
        for path in sorted(paths):
            size = self._first_time(path)
            if size is not None:
                yield path, size

    def tree(self, root: Path) -> Iterator[tuple[Path, int]]:
        """Every regular file under `root` (or `root` itself if it is a file)."""
        if not root.is_dir() or root.is_symlink():
            yield from self.paths([root])
            return
        for dirpath, _dirs, files in os.walk(root):
            yield from self.paths(Path(dirpath) / name for name in files)

    def tree_bytes(self, root: Path) -> int:
        """Bytes (apparent sizes, as a tar layer stores them) of the files under `root`."""
        return sum(size for _path, size in self.tree(root))


def tree_bytes(root: Path) -> int:
    """Bytes of the regular files under `root`, each hard-linked file counted once."""
    return DistinctFiles().tree_bytes(root)
