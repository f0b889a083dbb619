"""The stored notebooks: output-free, parameterised for papermill, logic in the library.

Notebooks are kept in git without outputs (outputs belong in reports/, rebuilt from runs), so
these checks read the files only; nothing is executed.
"""

from __future__ import annotations

import ast
from pathlib import Path

import nbformat
import pytest

from ingestlab.report import NOTEBOOK_NAME

NOTEBOOKS_DIR = Path(__file__).resolve().parents[2] / "notebooks"
NOTEBOOKS = sorted(NOTEBOOKS_DIR.glob("*.ipynb"))


def _read(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


def _code_cells(nb: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    return [cell for cell in nb.cells if cell.cell_type == "code"]


def test_the_study_has_numbered_notebooks() -> None:
    names = [path.name for path in NOTEBOOKS]
    assert "01_throughput_ceiling.ipynb" in names
    assert "02_latency_under_load.ipynb" in names
    assert all(NOTEBOOK_NAME.match(name) for name in names), names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_valid_nbformat_4(path: Path) -> None:
    nb = _read(path)
    nbformat.validate(nb)
    assert nb.nbformat == 4


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_stored_without_outputs(path: Path) -> None:
    for cell in _code_cells(_read(path)):
        assert cell.outputs == [], f"cell {cell.get('id')} has outputs"
        assert cell.execution_count is None, f"cell {cell.get('id')} has an execution count"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_one_parameters_cell_assigning_profile(path: Path) -> None:
    tagged = [cell for cell in _code_cells(_read(path)) if "parameters" in cell.metadata.get("tags", [])]
    assert len(tagged) == 1
    tree = ast.parse(tagged[0].source)
    assigned = {target.id for node in tree.body if isinstance(node, ast.Assign) for target in node.targets}
    assert "profile" in assigned
    # The study's default: `make study PROFILE=quick` overrides it through papermill.
    defaults = {
        node.targets[0].id: ast.literal_eval(node.value) for node in tree.body if isinstance(node, ast.Assign)
    }
    assert defaults["profile"] == "full"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_imports_from_ingestlab(path: Path) -> None:
    imported: set[str] = set()
    for cell in _code_cells(_read(path)):
        for node in ast.walk(ast.parse(cell.source)):
            if isinstance(node, ast.ImportFrom) and node.module:
                imported.add(node.module.split(".")[0])
            elif isinstance(node, ast.Import):
                imported.update(alias.name.split(".")[0] for alias in node.names)
    assert "ingestlab" in imported


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_no_functions_or_classes_defined_in_notebooks(path: Path) -> None:
    """Logic lives in lib/: a notebook calls it and displays the results."""
    for cell in _code_cells(_read(path)):
        for node in ast.walk(ast.parse(cell.source)):
            assert not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.Lambda), (
                f"cell {cell.get('id')} defines {type(node).__name__}"
            )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_starts_with_a_title_and_records_its_numbers(path: Path) -> None:
    nb = _read(path)
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# ")
    last_code = _code_cells(nb)[-1].source
    assert "record_notebook_summary(" in last_code and path.stem in last_code
