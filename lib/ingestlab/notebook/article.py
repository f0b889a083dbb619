"""The article's numbers and words, read from data/ and nowhere else written down.

- its results table, the claims the study judges: data/article_claims.csv
  (`article_claims`, through `analysis.claims.load_claims`);
- the facts around that table a notebook sets beside its measurements (the soak's rate and
  duration, the shape of Node's heap): data/article_facts.csv (`article_fact`), one row a
  fact: key (named with its unit, as everywhere), value (in `unit`; empty for a fact that
  is only words), unit, text (how a notebook states it) and quote (the article's sentence).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ingestlab.analysis.claims import load_claims
from ingestlab.paths import PROJECT_ROOT

FACTS_CSV = PROJECT_ROOT / "data" / "article_facts.csv"


@dataclass(frozen=True)
class ArticleFact:
    """One row of data/article_facts.csv. `value` is in `unit`, None if the fact is only words."""

    key: str
    value: int | float | None
    unit: str
    text: str
    quote: str


def _number(text: str) -> int | float | None:
    """A CSV cell as a number: an int where it is written as one (a rate stays an int, as in
    the runs' summaries), a float otherwise, None if empty."""
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        return float(text)


def article_facts(path: Path = FACTS_CSV) -> dict[str, ArticleFact]:
    """Every row of data/article_facts.csv (or `path`), by key."""
    with path.open(newline="", encoding="utf-8") as f:
        return {
            row["key"]: ArticleFact(row["key"], _number(row["value"]), row["unit"], row["text"], row["quote"])
            for row in csv.DictReader(f)
        }


def article_fact(key: str) -> ArticleFact:
    """The fact `key` of data/article_facts.csv; KeyError naming it if the file lacks it."""
    return article_facts()[key]


def article_claims() -> dict[str, dict[str, Any]]:
    """The article's table (data/article_claims.csv) keyed by claim key: node_value,
    rust_value, unit, node_note, rust_note, metric, conditions."""
    return {row["key"]: row for row in load_claims().iter_rows(named=True)}
