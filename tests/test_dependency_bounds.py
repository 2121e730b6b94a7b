"""Every dependency of pyproject.toml (runtime and every extra) has an upper bound, and the version
installed here, the one the suite tests, lies within its range: a new major release is adopted on
purpose, never by a fresh install."""

from __future__ import annotations

import tomllib
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"
UPPER = {"<", "<=", "==", "~=", "==="}


def requirements(text: str) -> list[Requirement]:
    project = tomllib.loads(text)["project"]
    lines = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        lines += extra
    return [Requirement(line) for line in lines]


def unbounded(specifier: SpecifierSet) -> bool:
    return not any(spec.operator in UPPER for spec in specifier)


def problems(reqs: list[Requirement]) -> list[str]:
    found = []
    for req in reqs:
        if unbounded(req.specifier):
            found.append(f"{req}: no upper bound")
            continue
        try:
            installed = version(req.name)
        except PackageNotFoundError:
            found.append(f"{req}: not installed, so its range is untested")
            continue
        if not req.specifier.contains(installed, prereleases=True):
            found.append(f"{req}: the tested version {installed} is outside the range")
    return found


def test_every_dependency_has_a_tested_upper_bound() -> None:
    assert problems(requirements(PYPROJECT.read_text())) == []


@pytest.mark.parametrize(
    ("line", "why"),
    [("pytest>=8", "no upper bound"), ("pytest>=8,<8.0.1", "outside the range"), ("no-such-dist-x<2", "not installed")],
)
def test_a_loose_or_untested_range_is_found(line: str, why: str) -> None:
    (problem,) = problems([Requirement(line)])

    assert why in problem
