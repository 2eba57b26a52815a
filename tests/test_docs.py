"""docs/schema.md shows the schema the code actually writes."""

from __future__ import annotations

import re
from pathlib import Path

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


def test_every_reason_code_is_documented() -> None:
    from normalizers.errors import RejectReason

    text = DOC.read_text(encoding="utf-8")
    missing = [r.value for r in RejectReason if f"| `{r.value}` |" not in text]
    assert not missing
