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


def _modules(path: Path) -> set[str]:
    """The dotted names of the modules `path` imports (at any depth of the file)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_the_feed_parser_and_the_html_normaliser_share_parts_but_import_neither_the_other() -> None:
    """Dates (`normalizers.dates`) and URLs (`normalizers.urls`) are neutral modules both use."""
    feeds = _modules(REPO / "normalizers" / "feeds.py")
    assert not {m for m in feeds if m.startswith("normalizers.html")}, sorted(feeds)
    html = {f"{f.name} imports {m}" for f in (REPO / "normalizers" / "html").rglob("*.py") for m in _modules(f)}
    assert not {line for line in html if line.endswith("normalizers.feeds")}, sorted(html)
    for shared in ("dates", "urls"):
        assert not {m for m in _modules(REPO / "normalizers" / f"{shared}.py") if m.startswith("normalizers.html")}
