"""Imports point one way: flows -> pipeline -> warehouse -> normalizers; only flows/ imports Prefect."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
FORBIDDEN = {
    "normalizers": {"warehouse", "flows", "prefect", "httpx", "duckdb", "pyarrow"},
    "warehouse": {"flows", "pipeline", "prefect", "httpx"},
    "pipeline": {"flows", "prefect"},
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_one_way_imports(package: str) -> None:
    files = sorted((REPO / package).rglob("*.py"))
    assert files
    offenders = {f"{f.relative_to(REPO)} imports {bad}" for f in files for bad in _imports(f) & FORBIDDEN[package]}
    assert not offenders, sorted(offenders)


def test_normalizers_do_no_io() -> None:
    """Normalisers are pure: no file, network, clock or randomness modules."""
    impure = {"os", "io", "socket", "time", "random", "subprocess", "pathlib", "shutil", "tempfile", "urllib3"}
    offenders = {
        f"{f.name} imports {bad}" for f in (REPO / "normalizers").rglob("*.py") for bad in _imports(f) & impure
    }
    assert not offenders, sorted(offenders)
