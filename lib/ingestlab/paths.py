"""Where the project's own files are (one root for every module that reads or builds them), and
where what is built from them lives: the build cache, outside the work tree."""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def cache_root() -> Path:
    """The build cache: `$INGESTLAB_CACHE`, else `~/.cache/ingestlab`. `make setup`'s builds
    (`build.artifacts`), the images' inputs (`build.images`) and the Docker engine's state
    (`engine.docker_engine`) live under it."""
    return Path(os.environ.get("INGESTLAB_CACHE", Path.home() / ".cache" / "ingestlab"))
