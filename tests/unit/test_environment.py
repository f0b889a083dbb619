"""environment.yml (conda) and pyproject.toml (pip) must list the same Python dependencies."""

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _normalise(requirement: str) -> str:
    name, rest = re.match(r"\s*([A-Za-z0-9_.\-]+)(.*)", requirement).groups()
    return re.sub(r"[-_.]+", "-", name).lower() + rest.replace(" ", "")


def _pyproject_requirements() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    deps = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        deps.extend(extra)
    return {_normalise(d) for d in deps}


def _environment_pip_requirements() -> set[str]:
    lines = (ROOT / "environment.yml").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == "- pip:")
    indent = len(lines[start]) - len(lines[start].lstrip())
    reqs = set()
    for line in lines[start + 1:]:
        if line.strip() and len(line) - len(line.lstrip()) <= indent:
            break
        if line.strip().startswith("- "):
            reqs.add(_normalise(line.strip()[2:]))
    return reqs


def test_environment_yml_and_pyproject_agree():
    from_pyproject = _pyproject_requirements()
    from_conda = _environment_pip_requirements()
    assert from_pyproject, "pyproject.toml lists no dependencies?"
    assert from_conda == from_pyproject, (
        f"only in pyproject.toml: {sorted(from_pyproject - from_conda)}; "
        f"only in environment.yml: {sorted(from_conda - from_pyproject)}"
    )


def test_environment_yml_names_the_toolchains():
    text = (ROOT / "environment.yml").read_text()
    for tool in ("python=3.11", "nodejs", "rust", "openjdk", "maven"):
        assert f"- {tool}" in text
