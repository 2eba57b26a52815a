"""docs/schema.md shows the schema the code actually writes; docs/querying.md's queries run and agree."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from warehouse.boilerplate import LEARNED_SCHEMA
from warehouse.coverage import COVERAGE_SCHEMA
from warehouse.dedup import CLUSTER_SCHEMA
from warehouse.ledger import LEDGER_SCHEMA
from warehouse.quarantine import QUARANTINE_SCHEMA
from warehouse.schema import ARTICLE_SCHEMA, schema_markdown

DOC = Path(__file__).resolve().parent.parent / "docs" / "schema.md"


def _generated(name: str) -> str:
    text = DOC.read_text(encoding="utf-8")
    m = re.search(rf"<!-- generated: {name} -->\n(.*?)\n<!-- end generated -->", text, re.S)
    assert m, f"no generated block {name!r} in {DOC}"
    return m.group(1)


def test_schema_doc_is_current() -> None:
    # To refresh: paste schema_markdown(ARTICLE_SCHEMA), (QUARANTINE_SCHEMA), (LEDGER_SCHEMA) between the markers.
    assert _generated("articles") == schema_markdown(ARTICLE_SCHEMA)
    assert _generated("quarantine") == schema_markdown(QUARANTINE_SCHEMA)
    assert _generated("runs") == schema_markdown(LEDGER_SCHEMA)
    assert _generated("clusters") == schema_markdown(CLUSTER_SCHEMA)
    assert _generated("coverage") == schema_markdown(COVERAGE_SCHEMA)
    assert _generated("boilerplate") == schema_markdown(LEARNED_SCHEMA)


def test_every_reason_code_is_documented() -> None:
    from normalizers.errors import RejectReason

    text = DOC.read_text(encoding="utf-8")
    missing = [r.value for r in RejectReason if f"| `{r.value}` |" not in text]
    assert not missing


QUERYING = DOC.with_name("querying.md")


def _questions() -> dict[str, list[tuple[str, str]]]:
    """The four questions of docs/querying.md: per heading, (tool, code) of each snippet."""
    text = QUERYING.read_text(encoding="utf-8")
    part = text.split("## Four questions in five tools", 1)[1].split("\nDuckDB reads the sections too", 1)[0]
    out: dict[str, list[tuple[str, str]]] = {}
    for section in part.split("\n### ")[1:]:
        heading = section.splitlines()[0]
        blocks = re.findall(r"```(?:sql|python)\n(.*?)```", section, re.S)
        out[heading] = [(code.splitlines()[0].lstrip("-# ").strip(), code) for code in blocks]
    return out


def _norm(value: object) -> object:
    import datetime as dt

    if hasattr(value, "to_pydatetime"):
        value = value.to_pydatetime()
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC)
    if hasattr(value, "item"):  # a NumPy scalar
        return value.item()
    return value


def _rows(tool: str, result: object) -> list[tuple[object, ...]]:
    """A tool's result as rows, each of its values in a canonical order (the tools name and order columns apart)."""
    if tool == "polars":
        rows = result.rows()  # type: ignore[attr-defined]
    elif tool == "pandas":
        rows = list(result.itertuples(index=False, name=None))  # type: ignore[attr-defined]
    elif tool == "pyarrow":
        rows = [tuple(r.values()) for r in result.to_pylist()]  # type: ignore[attr-defined]
    else:
        rows = result.fetchall()  # type: ignore[attr-defined]
    return sorted(tuple(sorted((_norm(v) for v in row), key=repr)) for row in rows)


def test_every_query_of_the_docs_runs_and_the_tools_agree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """docs/querying.md: each of the four questions in DuckDB, polars, pandas and pyarrow gives the same rows."""
    import json

    import duckdb

    from pipeline.config import load_config
    from pipeline.dedup import update_clusters
    from pipeline.run import LocalRunner, run_source
    from warehouse.layout import DataRoot

    repo = DOC.parent.parent
    root = DataRoot(tmp_path / "data")
    for src in load_config(repo / "sources.toml").select(None):
        run_source(src, root, "r1", runner=LocalRunner(1))
    copies = tmp_path / "copies"  # two wire stories carried by another outlet a day later: clusters of the week
    copies.mkdir()
    # And one carried months earlier: its cluster is named after that copy, outside the week.
    dated = {"003_06ee193de4bd": "2019-11-21", "006_098bb3e96c0a": "2019-11-21", "000_04a6711caa7c": "2019-06-01"}
    for i, (name, day) in enumerate(dated.items()):
        (copies / f"{name}.txt").write_text((repo / "samples" / "wire" / f"{name}.txt").read_text(encoding="utf-8"))
        sidecar = {"url": f"https://copies.example/{i}", "published_at": f"{day}T12:00:00Z"}
        (copies / f"{name}.json").write_text(json.dumps(sidecar), encoding="utf-8")
    (tmp_path / "copies.toml").write_text(f'[sources.copies]\npath = "{copies}"\n', encoding="utf-8")
    run_source(load_config(tmp_path / "copies.toml").sources["copies"], root, "r2", runner=LocalRunner(1))
    update_clusters(root)
    monkeypatch.chdir(tmp_path)

    questions = _questions()
    assert len(questions) == 4
    for heading, snippets in questions.items():
        tools = [tool for tool, _ in snippets]
        assert tools == ["DuckDB", "polars", "pandas", "pyarrow", "Spark"], (heading, tools)
        expected = _rows("DuckDB", duckdb.connect().sql(snippets[0][1]))
        assert expected, f"{heading}: no rows on the samples, so the comparison would prove nothing"
        for tool, code in snippets[1:4]:
            scope: dict[str, object] = {}
            exec(compile(code, f"querying.md: {heading} ({tool})", "exec"), scope)
            assert _rows(tool, scope["result"]) == expected, (heading, tool)
