"""`make setup` stops with one clear line when a toolchain is missing."""

import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ("python3", "java", "mvn", "node", "npm", "cargo", "cmake", "make", "g++")


def test_missing_toolchain_is_named_in_one_line(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in (*TOOLS, "dirname"):
        if tool in ("java", "cargo"):
            continue  # pretend these two are not installed
        found = shutil.which(tool)
        assert found, f"{tool} should exist on the study machine"
        (bin_dir / tool).symlink_to(found)
    done = subprocess.run(["/bin/bash", str(ROOT / "infra" / "setup.sh")], capture_output=True, text=True,
                          env={**os.environ, "PATH": str(bin_dir)}, timeout=60)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert lines == ["setup: missing toolchain(s): java cargo (install them; README.md lists versions)"]
