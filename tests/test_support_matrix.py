"""The supported Python and Django versions are stated three times; they must agree.

noxfile.py's ``MATRIX`` is what CI tests; the pyproject classifiers (what PyPI
shows) and the README's table (what a reader sees) must list exactly that.
"""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def nox_matrix() -> dict[str, tuple[str, ...]]:
    """noxfile.MATRIX, read without importing nox (not a test dependency)."""
    tree = ast.parse((ROOT / "noxfile.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.AnnAssign | ast.Assign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id == "MATRIX" for t in targets):
                assert node.value is not None
                matrix: dict[str, tuple[str, ...]] = ast.literal_eval(node.value)
                return matrix
    raise AssertionError("noxfile.py defines no MATRIX")


def classifier_versions(prefix: str) -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return {
        c.removeprefix(prefix)
        for c in project["classifiers"]
        if c.startswith(prefix) and re.fullmatch(r"\d+\.\d+", c.removeprefix(prefix))
    }


def test_python_classifiers_are_the_tested_pythons() -> None:
    """One ``Programming Language :: Python :: 3.X`` classifier per tested Python, no other."""
    assert classifier_versions("Programming Language :: Python :: ") == set(nox_matrix())


def test_django_classifiers_are_the_tested_djangos() -> None:
    """One ``Framework :: Django :: X.Y`` classifier per tested Django, no other."""
    tested = {django for djangos in nox_matrix().values() for django in djangos}
    assert classifier_versions("Framework :: Django :: ") == tested


def test_requires_python_admits_the_oldest_tested_python() -> None:
    """``requires-python`` is ``>=`` the oldest tested Python."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    oldest = min(nox_matrix(), key=lambda v: tuple(map(int, v.split("."))))
    assert project["requires-python"] == f">={oldest}"


def test_readme_table_is_the_nox_matrix() -> None:
    """The README's Python/Django table has one row per tested Python, with its Djangos."""
    readme = (ROOT / "README.md").read_text()
    rows = re.findall(r"^\| (3\.\d+) \| ([\d., ]+?) \|$", readme, flags=re.MULTILINE)
    assert {python: tuple(djangos.split(", ")) for python, djangos in rows} == nox_matrix()
    assert len(rows) == len(nox_matrix())
