"""ingestlab.notebook.article: the article's facts come from data/ and nowhere else; and the
views package keeps to its layer."""

from __future__ import annotations

import ast
import csv
from pathlib import Path

import pytest

from ingestlab.analysis.claims import load_claims
from ingestlab.notebook import article

DATA = Path(__file__).resolve().parents[2] / "data"
NOTEBOOK_PACKAGE = Path(article.__file__).parent


def test_facts_are_the_rows_of_the_facts_csv() -> None:
    with (DATA / "article_facts.csv").open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    facts = article.article_facts()
    assert article.FACTS_CSV == DATA / "article_facts.csv"
    assert list(facts) == [row["key"] for row in rows]
    for row in rows:
        fact = facts[row["key"]]
        assert (fact.unit, fact.text, fact.quote) == (row["unit"], row["text"], row["quote"])
        assert fact.value == (float(row["value"]) if row["value"] else None)
        assert fact.quote, f"{fact.key}: every fact quotes the article"
        if fact.value is not None and fact.text:
            assert f"{fact.value:,}" in fact.text, f"{fact.key}: its text states its value"


def test_the_soak_facts_are_numbers_in_their_units() -> None:
    rate, duration = article.article_fact("soak_rate_rps"), article.article_fact("soak_duration_h")
    assert (rate.value, rate.unit, duration.value, duration.unit) == (10_000, "req/s", 72, "h")
    assert isinstance(rate.value, int)  # as the runs' summaries hold a rate
    with pytest.raises(KeyError):
        article.article_fact("no such fact")


def test_claims_are_the_rows_of_the_claims_csv() -> None:
    claims = article.article_claims()
    assert list(claims) == load_claims()["key"].to_list()
    assert claims["image_size_mb"]["node_value"] == 185 and claims["image_size_mb"]["unit"] == "MB"


def _imported_modules(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


@pytest.mark.parametrize("path", sorted(NOTEBOOK_PACKAGE.glob("*.py")), ids=lambda p: p.name)
def test_views_import_nothing_above_them(path: Path) -> None:
    """Views sit below report, study and cli (which execute notebooks and tie studies together)."""
    above = ("ingestlab.report", "ingestlab.study", "ingestlab.cli")
    imported = _imported_modules(path)
    assert not [m for m in imported if m.startswith(above)], imported


@pytest.mark.parametrize("path", sorted(NOTEBOOK_PACKAGE.glob("*.py")), ids=lambda p: p.name)
def test_views_write_down_no_article_number(path: Path) -> None:
    """Numbers and the sentences stating them; a fact that is only words ("no GC") may well be
    said of a measurement too."""
    source = path.read_text()
    for fact in article.article_facts().values():
        if fact.value is not None:
            assert fact.text not in source, fact.key
            assert f"{fact.value:,}" not in source and f"{fact.value:_}" not in source, fact.key
