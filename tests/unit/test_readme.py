"""The README's summary-key table is the typed summaries' fields (ingestlab.summaries)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from ingestlab.summaries import SUMMARY_TYPES, PerService

README = Path(__file__).resolve().parents[2] / "README.md"
START, END = "<!-- summary-keys: start -->", "<!-- summary-keys: end -->"


def _names(cls: type, *, skip: tuple[str, ...] = ()) -> str:
    return ", ".join(f"`{f.name}`" for f in dataclasses.fields(cls) if f.name not in skip)


def summary_keys_table() -> str:
    """The markdown table README.md holds between START and END."""
    rows = ["| experiment | summary | per service (`services[name]`) |", "|---|---|---|"]
    for experiment, cls in sorted(SUMMARY_TYPES.items()):
        if issubclass(cls, PerService):
            rows.append(f"| `{experiment}` | {_names(cls, skip=('services',)) or '-'} "
                        f"| {_names(cls.RESULT)} |")
        else:
            rows.append(f"| `{experiment}` | {_names(cls)} | - |")
    return "\n".join(rows)


def test_readme_lists_every_summary_field():
    text = README.read_text()
    assert START in text and END in text
    block = text.split(START, 1)[1].split(END, 1)[0].strip()
    assert block == summary_keys_table(), "replace the README's block with:\n" + summary_keys_table()
