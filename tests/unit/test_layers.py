"""The import-linter contract in pyproject.toml: dependencies point one way, down the layers."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _lint_imports(lib: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(lib)}
    return subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def test_the_library_keeps_its_layers():
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    done = _lint_imports(ROOT / "lib", ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{len(contracts)} kept, 0 broken" in done.stdout


@pytest.mark.parametrize(("module", "imported"), [
    ("units", "ingestlab.cli"),  # the lowest layer importing the entry point
    # two edges of the circle that ran through stack/ before it was split by lifecycle
    ("engine/docker_engine", "ingestlab.build.artifacts"),  # the engine importing the build
    ("build/artifacts", "ingestlab.build.images.store"),  # inside build: artifacts importing images
])
def test_an_upward_import_breaks_the_contract(tmp_path, module, imported):
    """The contracts bite, even for an import inside a function: `module` importing `imported`
    (a layer above its own) fails them."""
    shutil.copytree(ROOT / "lib" / "ingestlab", tmp_path / "lib" / "ingestlab",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    path = tmp_path / "lib" / "ingestlab" / f"{module}.py"
    path.write_text(path.read_text() + f"\n\ndef _upward() -> None:\n    import {imported}  # noqa: F401\n")
    done = _lint_imports(tmp_path / "lib", tmp_path)
    assert done.returncode != 0
    assert f"ingestlab.{module.replace('/', '.')} -> {imported}" in done.stdout
