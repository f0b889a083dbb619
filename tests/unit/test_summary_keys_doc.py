"""docs/summary-keys.md lists the typed summaries' fields (ingestlab.summaries), and stays equal
to them: the table of every experiment's summary, and the table of the records nested in them."""

from __future__ import annotations

import dataclasses
import inspect
from pathlib import Path

from ingestlab import summaries
from ingestlab.summaries import SUMMARY_TYPES, PerService

DOC = Path(__file__).resolve().parents[2] / "docs" / "summary-keys.md"

# The records a summary holds below `services[name]`, and where.
NESTED = {
    "FaultOutcome": "`faults`: `services[name].faults[fault]`",
    "OverloadRate": "`overload`: `services[name].rates[rate]`",
    "CoreShare": "`cpu-cores`: `services[name].by_role[i]`",
    "GroupShare": "`cpu-cores`: `services[name].by_group[i]`",
    "ComparisonRate": "`rates`: `rates[experiment]`",
}


def _names(cls: type, *, skip: tuple[str, ...] = ()) -> str:
    return ", ".join(f"`{f.name}`" for f in dataclasses.fields(cls) if f.name not in skip)


def summary_keys_table() -> str:
    """The markdown table docs/summary-keys.md holds between its summary-keys markers."""
    rows = ["| experiment | summary | per service (`services[name]`) |", "|---|---|---|"]
    for experiment, cls in sorted(SUMMARY_TYPES.items()):
        if issubclass(cls, PerService):
            rows.append(f"| `{experiment}` | {_names(cls, skip=('services',)) or '-'} "
                        f"| {_names(cls.RESULT)} |")
        else:
            rows.append(f"| `{experiment}` | {_names(cls)} | - |")
    return "\n".join(rows)


def nested_types() -> set[str]:
    """Dataclasses of `ingestlab.summaries` that are neither a summary nor a per-service result."""
    top = set(SUMMARY_TYPES.values())
    results = {cls.RESULT for cls in top if issubclass(cls, PerService)}
    return {name for name, cls in inspect.getmembers(summaries, inspect.isclass)
            if dataclasses.is_dataclass(cls) and cls.__module__ == summaries.__name__
            and cls not in top and cls not in results and cls is not PerService}


def nested_keys_table() -> str:
    """The markdown table docs/summary-keys.md holds between its nested-keys markers."""
    rows = ["| record | where | fields |", "|---|---|---|"]
    for name, where in NESTED.items():
        rows.append(f"| `{name}` | {where} | {_names(getattr(summaries, name))} |")
    return "\n".join(rows)


def _block(text: str, marker: str) -> str:
    start, end = f"<!-- {marker}: start -->", f"<!-- {marker}: end -->"
    assert start in text and end in text, f"docs/summary-keys.md has no {start} ... {end} block"
    return text.split(start, 1)[1].split(end, 1)[0].strip()


def test_doc_lists_every_summary_field():
    block = _block(DOC.read_text(), "summary-keys")
    assert block == summary_keys_table(), ("replace the summary-keys block of docs/summary-keys.md with:\n"
                                           + summary_keys_table())


def test_doc_lists_every_nested_record():
    assert nested_types() == set(NESTED), (
        "a record type was added to or removed from ingestlab.summaries: name it in NESTED "
        f"(here) with where it sits; found {sorted(nested_types())}")
    block = _block(DOC.read_text(), "nested-keys")
    assert block == nested_keys_table(), ("replace the nested-keys block of docs/summary-keys.md with:\n"
                                          + nested_keys_table())
