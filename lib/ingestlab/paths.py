"""Where the project's own files are: one root for every module that reads or builds them."""

from __future__ import annotations

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
