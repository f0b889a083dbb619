"""The import-linter contract in pyproject.toml: dependencies point one way, down the layers."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _lint_imports(lib: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(lib)}
    return subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def test_the_library_keeps_its_layers():
    done = _lint_imports(ROOT / "lib", ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 kept, 0 broken" in done.stdout


def test_an_upward_import_breaks_the_contract(tmp_path):
    """The contract bites: units (the lowest layer) importing the CLI fails it."""
    shutil.copytree(ROOT / "lib" / "ingestlab", tmp_path / "lib" / "ingestlab",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    units = tmp_path / "lib" / "ingestlab" / "units.py"
    units.write_text(units.read_text() + "\nimport ingestlab.cli  # noqa: E402,F401\n")
    done = _lint_imports(tmp_path / "lib", tmp_path)
    assert done.returncode != 0
    assert "ingestlab.units -> ingestlab.cli" in done.stdout
