"""The warehouse: Arrow schema, partitioned Parquet upserts read back by real engines, locks."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from normalizers import SCHEMA_VERSION, Article, SourceMeta, normalize_text
from normalizers.profile import SourceProfile
from pipeline.config import load_config
from warehouse import (
    ARTICLE_SCHEMA,
    QUARANTINE_SCHEMA,
    DataRoot,
    FileState,
    LockTimeout,
    Partition,
    PartitionError,
    QuarantineRecord,
    StateStore,
    TransientError,
    articles_to_table,
    atomic,
    read_partition,
    upsert_partition,
    write_quarantine,
    write_spill,
    writer,
)
from warehouse.atomic import locked
from warehouse.layout import published_day
from warehouse.query import QueryError, connect

REPO = Path(__file__).resolve().parent.parent
RUN = "run-0001"
INGESTED = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
MTIME = datetime(2024, 3, 9, 16, 0, tzinfo=UTC).timestamp()
SAMPLES = [
    ("anha", "samples/anha/000_db5c100688d27208.txt"),
    ("wire", "samples/wire/000_04a6711caa7c.txt"),
    ("wire", "samples/wire/002_06e5123e4ef7.txt"),
    ("wire", "samples/wire/005_08f793762792.txt"),
    ("wire", "samples/wire/003_06ee193de4bd.txt"),
    ("wire", "samples/wire/006_098bb3e96c0a.txt"),
    ("wire", "samples/wire/011_156770d676ce.txt"),
    ("wire", "samples/wire/012_1ace8c85aaee.txt"),
]


@pytest.fixture(scope="module")
def articles() -> list[Article]:
    """A few sample files normalised the way the pipeline does, stamped with a run."""
    config = load_config(REPO / "sources.toml")
    out = []
    for source, rel in SAMPLES:
        path = REPO / rel
        side = path.with_suffix(".json")
        sidecar = side.read_bytes() if side.exists() else None
        meta = SourceMeta(source, path.as_uri(), path.name, MTIME, sidecar)
        art = normalize_text(path.read_bytes(), meta, config.sources[source].profile)
        assert isinstance(art, Article), (rel, art)
        out.append(dataclasses.replace(art, run_id=RUN, ingested_at=INGESTED))
    # The set must exercise what the checks below look at.
    assert any(a.authors for a in out)
    assert any(a.url is None for a in out)
    assert len({_partition(a) for a in out}) >= 3
    return out


@pytest.fixture()
def root(tmp_path: Path) -> DataRoot:
    data = DataRoot(tmp_path / "data")
    data.root.mkdir()
    return data


def _partition(article: Article) -> Partition:
    assert article.published_at is not None
    return Partition.of_article(article.source, article)


def _write(root: DataRoot, articles: list[Article], run_id: str = RUN, name: str = "b0") -> None:
    groups: dict[Partition, list[Article]] = {}
    for art in articles:
        groups.setdefault(_partition(art), []).append(art)
    for part, items in sorted(groups.items()):
        spill = write_spill(root, run_id, part, name, articles_to_table(items))
        result = upsert_partition(root, part, [spill])
        assert result.upserted == len(items)


def _expected(article: Article) -> dict:
    return {
        "article_id": article.article_id,
        "source": article.source,
        "url": article.url,
        "title": article.title,
        "text": article.text,
        "byline": article.byline,
        "sections": [{"heading": s.heading, "paragraphs": list(s.paragraphs)} for s in article.sections],
        "authors": list(article.authors),
        "published_at": article.published_at,
        "word_count": article.word_count,
        "run_id": RUN,
        "ingested_at": INGESTED,
    }


def _by_id(rows: list[dict]) -> dict[str, dict]:
    return {r["article_id"]: {k: r[k] for k in _expected_keys()} for r in rows}


def _expected_keys() -> list[str]:
    return [
        "article_id",
        "source",
        "url",
        "title",
        "text",
        "byline",
        "sections",
        "authors",
        "published_at",
        "word_count",
        "run_id",
        "ingested_at",
    ]


def _glob(root: DataRoot) -> str:
    return str(root.articles / "**" / "*.parquet")


# --- schema ------------------------------------------------------------------------------------


def test_arrow_schema_is_derived_from_the_dataclass() -> None:
    assert ARTICLE_SCHEMA.names == [f.name for f in dataclasses.fields(Article)]
    assert ARTICLE_SCHEMA.metadata[b"newsflow.schema_version"] == str(SCHEMA_VERSION).encode()

    def check_docs(fields: list[pa.Field], where: str) -> None:
        for field in fields:
            desc = (field.metadata or {}).get(b"description", b"")
            assert desc.strip(), f"{where}{field.name} has no description"
            inner = field.type.value_type if pa.types.is_list(field.type) else field.type
            if pa.types.is_struct(inner):
                check_docs([inner.field(i) for i in range(inner.num_fields)], f"{field.name}.")

    check_docs(list(ARTICLE_SCHEMA), "")
    assert ARTICLE_SCHEMA.field("published_at").type == pa.timestamp("us", tz="UTC")
    assert ARTICLE_SCHEMA.field("ingested_at").type == pa.timestamp("us", tz="UTC")
    sections = ARTICLE_SCHEMA.field("sections").type
    assert pa.types.is_list(sections)
    assert pa.types.is_struct(sections.value_type)
    assert [f.name for f in sections.value_type] == ["heading", "paragraphs"]
    assert sections.value_type.field("heading").type == pa.string()
    assert sections.value_type.field("paragraphs").type == pa.list_(pa.string())
    stripped = ARTICLE_SCHEMA.field("stripped").type.value_type
    assert [f.name for f in stripped] == ["rule", "kind", "text", "line"]
    assert stripped.field("line").type == pa.int32()
    assert ARTICLE_SCHEMA.field("authors").type == pa.list_(pa.string())
    assert ARTICLE_SCHEMA.field("word_count").type == pa.int32()
    assert ARTICLE_SCHEMA.field("schema_version").type == pa.int16()
    # Optional fields are nullable, the rest are not.
    for name in ("url", "title", "lede", "byline", "published_at", "language", "run_id", "modified_at", "image_url"):
        assert ARTICLE_SCHEMA.field(name).nullable, name
    for name in ("article_id", "source", "text", "content_hash", "sections", "authors", "tags", "extraction"):
        assert not ARTICLE_SCHEMA.field(name).nullable, name


def test_quarantine_schema_is_derived_from_its_dataclass() -> None:
    assert QUARANTINE_SCHEMA.names == [f.name for f in dataclasses.fields(QuarantineRecord)]
    assert QUARANTINE_SCHEMA.field("quarantined_at").type == pa.timestamp("us", tz="UTC")
    assert QUARANTINE_SCHEMA.field("raw_sha256").nullable


def test_articles_to_table(articles: list[Article]) -> None:
    table = articles_to_table(articles)
    assert table.schema.equals(ARTICLE_SCHEMA, check_metadata=True)
    assert table.num_rows == len(articles)
    assert _by_id(table.to_pylist()) == {a.article_id: _expected(a) for a in articles}


def test_round_trip_duckdb(root: DataRoot, articles: list[Article]) -> None:
    _write(root, articles)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    rel = f"read_parquet('{_glob(root)}', hive_partitioning = true)"
    types = {r[0]: r[1] for r in con.execute(f"DESCRIBE SELECT * FROM {rel}").fetchall()}
    assert types["published_at"] == "TIMESTAMP WITH TIME ZONE"
    assert types["ingested_at"] == "TIMESTAMP WITH TIME ZONE"
    assert types["sections"] == "STRUCT(heading VARCHAR, paragraphs VARCHAR[])[]"
    assert types["authors"] == "VARCHAR[]"
    assert types["stripped"].startswith("STRUCT(")
    assert types["word_count"] == "INTEGER"
    assert con.execute(f"SELECT count(*) FROM {rel}").fetchone() == (len(articles),)
    cur = con.execute(f"SELECT * FROM {rel}")
    names = [d[0] for d in cur.description]
    rows = [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
    assert _by_id(rows) == {a.article_id: _expected(a) for a in articles}
    for row in rows:
        assert row["published_at"].utcoffset() is not None
        assert not row["published_at"].utcoffset()
        assert row["source"] in ("anha", "wire")
    # The documented query: pinned partition types, filter on a real timestamp, unnest sections.
    pinned = (
        f"read_parquet('{_glob(root)}', hive_partitioning = true, hive_types = {{'year': INTEGER, 'month': INTEGER}})"
    )
    march = con.execute(
        f"SELECT count(*) FROM {pinned} WHERE year = 2024 AND month = 3 "
        "AND published_at >= TIMESTAMPTZ '2024-03-01' AND published_at < TIMESTAMPTZ '2024-04-01'"
    ).fetchone()
    assert march == (sum(1 for a in articles if (_partition(a).year, _partition(a).month) == (2024, 3)),)
    headings = con.execute(
        f"SELECT article_id, s.heading, len(s.paragraphs) FROM {rel}, unnest(sections) AS t(s)"
    ).fetchall()
    assert sorted(headings, key=str) == sorted(
        ((a.article_id, s.heading, len(s.paragraphs)) for a in articles for s in a.sections), key=str
    )


def test_round_trip_pyarrow_dataset(root: DataRoot, articles: list[Article]) -> None:
    _write(root, articles)
    dataset = ds.dataset(str(root.articles), format="parquet", partitioning="hive")
    table = dataset.to_table()
    assert table.num_rows == len(articles)
    assert table.schema.field("published_at").type == pa.timestamp("us", tz="UTC")
    assert pa.types.is_integer(table.schema.field("year").type)
    assert pa.types.is_integer(table.schema.field("month").type)
    rows = table.to_pylist()
    assert _by_id(rows) == {a.article_id: _expected(a) for a in articles}
    for row in rows:
        when = row["published_at"]
        assert when.tzinfo is not None
        assert (row["year"], row["month"]) == (when.year, when.month)
    # Partition pruning works on the hive keys.
    anha = dataset.to_table(filter=ds.field("source") == "anha")
    assert anha.column("source").to_pylist() == ["anha"]


def test_round_trip_polars(root: DataRoot, articles: list[Article]) -> None:
    _write(root, articles)
    df = pl.scan_parquet(_glob(root), hive_partitioning=True).collect()
    assert df.height == len(articles)
    assert df.schema["published_at"] == pl.Datetime("us", "UTC")
    assert df.schema["authors"] == pl.List(pl.String)
    assert df.schema["sections"] == pl.List(pl.Struct({"heading": pl.String, "paragraphs": pl.List(pl.String)}))
    assert df.schema["year"].is_integer()
    assert df.schema["month"].is_integer()
    assert _by_id(df.to_dicts()) == {a.article_id: _expected(a) for a in articles}


def test_round_trip_pandas(root: DataRoot, articles: list[Article]) -> None:
    _write(root, articles)
    df = pd.read_parquet(root.articles, partitioning=ds.partitioning(flavor="hive"))
    assert len(df) == len(articles)
    assert str(df["published_at"].dtype) == "datetime64[us, UTC]"
    got = {}
    for rec in df.to_dict("records"):
        got[rec["article_id"]] = {
            "title": rec["title"],
            "text": rec["text"],
            "authors": list(rec["authors"]),
            "sections": [{"heading": s["heading"], "paragraphs": list(s["paragraphs"])} for s in rec["sections"]],
            "published_at": rec["published_at"].to_pydatetime(),
        }
    want = {
        a.article_id: {k: _expected(a)[k] for k in ("title", "text", "authors", "sections")}
        | {"published_at": a.published_at}
        for a in articles
    }
    assert got == want


def test_pandas_reads_the_dataset_folder_with_defaults(root: DataRoot, articles: list[Article]) -> None:
    # The call docs/querying.md shows. pandas' pyarrow engine infers hive keys as
    # dictionary<string>, which must not clash with the `source` column stored in each file.
    _write(root, articles)
    df = pd.read_parquet(root.articles)
    assert len(df) == len(articles)
    assert sorted(df["article_id"]) == sorted(a.article_id for a in articles)
    assert set(df["source"].astype(str)) == {"anha", "wire"}
    anha = pd.read_parquet(root.articles, filters=[("source", "=", "anha")])
    assert list(anha["article_id"]) == [a.article_id for a in articles if a.source == "anha"]


def test_query_views(root: DataRoot, articles: list[Article]) -> None:
    _write(root, articles)
    con = connect(root.root)
    types = {r[0]: r[1] for r in con.execute("DESCRIBE articles").fetchall()}
    assert types["year"] == "INTEGER"
    assert types["month"] == "INTEGER"
    assert types["published_at"] == "TIMESTAMP WITH TIME ZONE"
    got = con.execute("SELECT source, year, month, count(*) FROM articles GROUP BY ALL ORDER BY ALL").fetchall()
    want: dict[tuple[str, int, int], int] = {}
    for a in articles:
        p = _partition(a)
        want[(p.source, p.year, p.month)] = want.get((p.source, p.year, p.month), 0) + 1
    assert got == [(*k, n) for k, n in sorted(want.items())]
    # Typed partition columns compare as numbers (month=03 on disk).
    assert con.execute("SELECT count(*) FROM articles WHERE month = 3").fetchone()[0] >= 1
    assert con.execute("SELECT count(*) FROM quarantine").fetchone() == (0,)


def test_query_views_on_an_empty_root(root: DataRoot) -> None:
    con = connect(root.root)
    assert con.execute("SELECT count(*) FROM articles").fetchone() == (0,)
    assert con.execute("SELECT count(*) FROM quarantine").fetchone() == (0,)
    types = {r[0]: r[1] for r in con.execute("DESCRIBE articles").fetchall()}
    assert types["year"] == "INTEGER"
    assert types["month"] == "INTEGER"
    assert set(ARTICLE_SCHEMA.names) <= set(types)
    for view in ("quarantine", "quarantine_log"):
        assert set(QUARANTINE_SCHEMA.names) <= {r[0] for r in con.execute(f"DESCRIBE {view}").fetchall()}


def test_query_missing_root_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(QueryError, match="does not exist"):
        connect(tmp_path / "nope")


def test_quarantine_written_and_queried(root: DataRoot) -> None:
    when = datetime(2024, 5, 1, tzinfo=UTC)
    records = [
        QuarantineRecord("wire", "file:///w/bad_empty.txt", "e3b0", "empty", "file is empty", RUN, when),
        QuarantineRecord("wire", "file:///w/bad.txt", None, "read_error", "permission denied", RUN, when),
    ]
    assert write_quarantine(root, "wire", RUN, []) is None
    path = write_quarantine(root, "wire", "run/../x 1", records)
    assert path is not None
    assert path.parent == root.quarantine / "source=wire"
    assert path.name == "runx1.parquet"
    assert pq.read_table(path).num_rows == 2
    with pytest.raises(PartitionError):
        write_quarantine(root, "../evil", RUN, records)
    con = connect(root.root)
    con.execute("SET TimeZone = 'UTC'")
    sql = "SELECT source, reason, raw_sha256, quarantined_at FROM quarantine_log ORDER BY reason"
    assert con.execute(sql).fetchall() == [("wire", "empty", "e3b0", when), ("wire", "read_error", None, when)]
    types = {r[0]: r[1] for r in con.execute("DESCRIBE quarantine_log").fetchall()}
    assert types["quarantined_at"] == "TIMESTAMP WITH TIME ZONE"
    assert con.execute("SELECT count(*) FROM articles").fetchone() == (0,)


# --- upsert semantics --------------------------------------------------------------------------


def _one(articles: list[Article]) -> Article:
    return next(a for a in articles if a.source == "wire" and a.date_source == "mtime")


def _spill(root: DataRoot, part: Partition, name: str, items: list[Article]) -> Path:
    return write_spill(root, "run-x", part, name, articles_to_table(items))


def _texts(root: DataRoot, part: Partition) -> dict[str, str]:
    table = read_partition(root, part).select(["article_id", "text"])
    return dict(zip(table.column("article_id").to_pylist(), table.column("text").to_pylist(), strict=True))


def test_upsert_replaces_by_article_id(root: DataRoot, articles: list[Article]) -> None:
    art = _one(articles)
    part = _partition(art)
    first = upsert_partition(root, part, [_spill(root, part, "a", [art])])
    assert (first.rows_before, first.rows_after, first.upserted, first.removed) == (0, 1, 1, 0)
    changed = dataclasses.replace(art, text="new text")
    second = upsert_partition(root, part, [_spill(root, part, "b", [changed])])
    assert (second.rows_before, second.rows_after, second.upserted, second.removed) == (1, 1, 1, 0)
    assert second.partition == part.key
    assert _texts(root, part) == {art.article_id: "new text"}


def test_upsert_stamps_the_spilled_rows_with_the_run_and_keeps_old_rows_stamps(
    root: DataRoot, articles: list[Article]
) -> None:
    art = _one(articles)
    part = _partition(art)
    other = dataclasses.replace(art, article_id="0" * 32, run_id=None, ingested_at=None)
    upsert_partition(root, part, [_spill(root, part, "a", [art])])  # written as spilled: RUN, INGESTED
    later = datetime(2025, 1, 2, 3, 4, tzinfo=UTC)
    upsert_partition(root, part, [_spill(root, part, "b", [other])], run_id="run-2", ingested_at=later)
    upsert_partition(root, part, [_spill(root, part, "c", [other])], run_id="run-3")  # at the time of writing
    table = read_partition(root, part)
    ids, rows = table.column("article_id").to_pylist(), table.select(["run_id", "ingested_at"]).to_pylist()
    stamps = dict(zip(ids, rows, strict=True))
    assert stamps[art.article_id] == {"run_id": RUN, "ingested_at": INGESTED}
    assert stamps[other.article_id]["run_id"] == "run-3"
    assert stamps[other.article_id]["ingested_at"] > later


def test_small_spills_make_full_row_groups(
    root: DataRoot, articles: list[Article], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Row groups are ROW_GROUP_ROWS long whatever the spill sizes; the kept old rows count too."""
    monkeypatch.setattr(writer, "ROW_GROUP_ROWS", 16)
    art = _one(articles)
    part = _partition(art)
    copies = [dataclasses.replace(art, article_id=f"{i:032x}") for i in range(75)]
    spills = [_spill(root, part, f"s{i}", copies[i : i + 7]) for i in range(0, 70, 7)]  # ten spills of 7
    upsert_partition(root, part, spills)
    meta = pq.ParquetFile(root.partition_file(part)).metadata
    assert [meta.row_group(i).num_rows for i in range(meta.num_row_groups)] == [16, 16, 16, 16, 6]
    # Old rows and new rows share row groups too; the ids are unchanged and unique.
    upsert_partition(root, part, [_spill(root, part, "t", copies[70:])])
    meta = pq.ParquetFile(root.partition_file(part)).metadata
    assert [meta.row_group(i).num_rows for i in range(meta.num_row_groups)] == [16, 16, 16, 16, 11]
    assert sorted(_texts(root, part)) == [c.article_id for c in copies]


def test_spill_buffer_bounds_memory_and_keeps_every_row(
    root: DataRoot, articles: list[Article], monkeypatch: pytest.MonkeyPatch
) -> None:
    from warehouse.writer import SpillBuffer

    parts = sorted({_partition(a) for a in articles})
    # Under its byte budget a batch makes one spill per partition ...
    buffer = SpillBuffer(root, "run-b", "b0")
    for a in articles:
        buffer.add(_partition(a), a)
    spills = buffer.finish()
    assert sorted(spills) == [p.key for p in parts]
    assert all(len(paths) == 1 for paths in spills.values())
    # ... and over it, spills early (here after every 3 articles), losing nothing.
    monkeypatch.setattr(SpillBuffer, "HOLD_ARTICLES", 3)
    monkeypatch.setattr(SpillBuffer, "SPILL_BYTES", 1)
    buffer = SpillBuffer(root, "run-c", "b0")
    for a in articles:
        buffer.add(_partition(a), a)
    spills = buffer.finish()
    assert sum(len(paths) for paths in spills.values()) > len(parts)
    ids = [
        i
        for paths in spills.values()
        for p in paths
        for i in writer.read_spill(Path(p), ["article_id"]).column(0).to_pylist()
    ]
    assert sorted(ids) == sorted(a.article_id for a in articles)


V2_COLUMNS = ("extraction", "modified_at", "site_name", "description", "tags", "image_url", "warnings")


def test_partition_of_an_older_schema_version_is_upgraded_on_rewrite(root: DataRoot, articles: list[Article]) -> None:
    same = [a for a in articles if _partition(a) == _partition(_one(articles))]
    part = _partition(same[0])
    # A partition file as schema version 1 wrote it: without the version-2 columns.
    old = articles_to_table(same[:1]).drop_columns(["source", *V2_COLUMNS])
    old = old.set_column(old.schema.get_field_index("schema_version"), "schema_version", pa.array([1], pa.int16()))
    target = root.partition_file(part)
    target.parent.mkdir(parents=True)
    pq.write_table(old, target)
    # DuckDB reads old and new partition files side by side before any rewrite.
    other = next(a for a in articles if _partition(a) != part)
    _write(root, [other])
    con = connect(root.root)
    assert con.execute("SELECT count(*), count(extraction) FROM articles").fetchone() == (2, 1)
    # The rewrite carries the old row over with the new columns at their defaults.
    upsert_partition(root, part, [_spill(root, part, "b", same[1:])])
    table = read_partition(root, part)
    assert table.schema.names == ARTICLE_SCHEMA.names
    row = next(r for r in table.to_pylist() if r["article_id"] == same[0].article_id)
    assert (row["schema_version"], row["extraction"], row["tags"], row["warnings"]) == (1, "text", [], [])
    assert row["text"] == same[0].text and row["site_name"] is None


def test_upsert_keeps_other_rows(root: DataRoot, articles: list[Article]) -> None:
    same = [a for a in articles if _partition(a) == _partition(_one(articles))]
    assert len(same) >= 2
    part = _partition(same[0])
    upsert_partition(root, part, [_spill(root, part, "a", same)])
    changed = dataclasses.replace(same[0], text="changed")
    result = upsert_partition(root, part, [_spill(root, part, "b", [changed])])
    assert (result.rows_before, result.rows_after) == (len(same), len(same))
    texts = _texts(root, part)
    assert texts[same[0].article_id] == "changed"
    for a in same[1:]:
        assert texts[a.article_id] == a.text


def test_delete_ids_removes_a_row(root: DataRoot, articles: list[Article]) -> None:
    same = [a for a in articles if _partition(a) == _partition(_one(articles))]
    part = _partition(same[0])
    upsert_partition(root, part, [_spill(root, part, "a", same)])
    result = upsert_partition(root, part, [], delete_ids=[same[0].article_id, "not-there"])
    assert (result.rows_before, result.rows_after, result.removed) == (len(same), len(same) - 1, 1)
    assert set(_texts(root, part)) == {a.article_id for a in same[1:]}


def test_delete_ids_remove_old_and_spilled_rows_alike(root: DataRoot, articles: list[Article]) -> None:
    # The pipeline only deletes an id from partitions that must not hold it
    # (pipeline.ingest.assign_partitions), so a delete wins over a spilled row.
    art = _one(articles)
    part = _partition(art)
    upsert_partition(root, part, [_spill(root, part, "a", [art])])
    changed = dataclasses.replace(art, text="again")
    result = upsert_partition(root, part, [_spill(root, part, "b", [changed])], delete_ids=[art.article_id])
    assert (result.rows_after, result.removed, result.upserted) == (0, 1, 0)
    assert not root.partition_file(part).exists()


def test_last_spill_wins_for_a_repeated_id(root: DataRoot, articles: list[Article]) -> None:
    art = _one(articles)
    part = _partition(art)
    v1, v2, v3 = (dataclasses.replace(art, text=t) for t in ("v1", "v2", "v3"))
    s1 = _spill(root, part, "s1", [v1])
    s2 = _spill(root, part, "s2", [v2])
    result = upsert_partition(root, part, [s1, s2])
    assert (result.rows_after, result.upserted) == (1, 1)
    assert _texts(root, part) == {art.article_id: "v2"}
    # Within one spill too, the later row wins.
    s3 = _spill(root, part, "s3", [v3, v1])
    upsert_partition(root, part, [s3])
    assert _texts(root, part) == {art.article_id: "v1"}


def test_upsert_leaving_nothing_removes_the_file(root: DataRoot, articles: list[Article]) -> None:
    art = _one(articles)
    part = _partition(art)
    upsert_partition(root, part, [_spill(root, part, "a", [art])])
    assert root.partition_file(part).exists()
    result = upsert_partition(root, part, [], delete_ids=[art.article_id])
    assert (result.rows_before, result.rows_after, result.removed) == (1, 0, 1)
    assert not root.partition_file(part).exists()
    assert read_partition(root, part).num_rows == 0
    assert read_partition(root, part).schema.equals(ARTICLE_SCHEMA)
    # An empty upsert of a missing partition creates nothing.
    empty = upsert_partition(root, part, [])
    assert (empty.rows_before, empty.rows_after) == (0, 0)
    assert not root.partition_file(part).exists()
    assert not list(root.staging.glob("*.parquet"))


def test_rerunning_an_upsert_is_idempotent(root: DataRoot, articles: list[Article]) -> None:
    same = [a for a in articles if _partition(a) == _partition(_one(articles))]
    part = _partition(same[0])
    upsert_partition(root, part, [_spill(root, part, "old", same[:1])])
    spills = [_spill(root, part, "a", same[1:]), _spill(root, part, "b", same[:1])]
    upsert_partition(root, part, spills)
    first_rows = read_partition(root, part).to_pylist()
    first_bytes = root.partition_file(part).read_bytes()
    again = upsert_partition(root, part, spills)
    assert (again.rows_before, again.rows_after) == (len(same), len(same))
    second_rows = read_partition(root, part).to_pylist()

    def key(rows: list[dict]) -> list[dict]:
        return sorted(rows, key=lambda r: r["article_id"])

    assert key(second_rows) == key(first_rows)
    assert len(second_rows) == len(same)
    assert root.partition_file(part).read_bytes() == first_bytes


# --- atomicity ----------------------------------------------------------------------------------


def test_stale_staged_file_is_removed_on_next_upsert(root: DataRoot, articles: list[Article]) -> None:
    art = _one(articles)
    part = _partition(art)
    other = Partition(part.source, part.year, 12 if part.month != 12 else 1)
    root.staging.mkdir(parents=True)
    prefix = f"{part.source}.{part.year:04d}-{part.month:02d}."
    stale = root.staging / f"{prefix}99999.deadbeef.parquet"
    stale.write_bytes(b"half-written")
    not_ours = root.staging / f"{other.source}.{other.year:04d}-{other.month:02d}.1.x.parquet"
    not_ours.write_bytes(b"someone else's")
    upsert_partition(root, part, [_spill(root, part, "a", [art])])
    assert not stale.exists()
    assert not_ours.exists()
    assert not [p for p in root.staging.iterdir() if p.name.startswith(prefix)]


def test_what_dead_processes_left_in_staging_goes_once_a_day_old(root: DataRoot) -> None:
    from warehouse.writer import clean_stale_staging

    day_old = time.time() - 86_400 - 60
    old, fresh = [], []
    for name in ("run-dead", "ahead-dead", "run-live"):
        folder = root.spills(name) / "wire" / "2024-03"
        folder.mkdir(parents=True)
        (folder / "b000000-0.arrow").write_bytes(b"rows")
        (old if name.endswith("dead") else fresh).append(root.spills(name))
    (root.staging / "raw").mkdir()
    for name in ("quarantine.1.a.parquet", "ledger.1.b.parquet", "wire.2024-03.1.c.parquet", "raw/ab.1.d.gz"):
        (root.staging / name).write_bytes(b"half-written")
        old.append(root.staging / name)
    (root.staging / "quarantine.2.e.parquet").write_bytes(b"being written")
    fresh.append(root.staging / "quarantine.2.e.parquet")
    for path in old:
        os.utime(path, (day_old, day_old))

    assert clean_stale_staging(root) == len(old)
    assert [p for p in old if p.exists()] == []
    assert all(p.exists() for p in fresh)
    assert clean_stale_staging(root) == 0


def test_only_partition_files_ever_appear_under_articles(root: DataRoot, articles: list[Article]) -> None:
    _write(root, articles)
    art = _one(articles)
    part = _partition(art)
    upsert_partition(root, part, [_spill(root, part, "x", [dataclasses.replace(art, text="y")])])
    upsert_partition(root, part, [], delete_ids=[art.article_id])
    files = [p for p in root.articles.rglob("*") if p.is_file()]
    assert files
    assert {p.name for p in files} == {"part-0.parquet"}
    for path in files:
        rel = path.relative_to(root.articles).parts
        assert rel[0].startswith("source=")
        assert rel[1].startswith("year=")
        assert rel[2].startswith("month=")
        assert len(rel) == 4
    # Nothing half-written is left in staging either.
    assert not list(root.staging.glob("*.parquet"))
    assert not list(root.staging.rglob("*.tmp"))


@contextlib.contextmanager
def _held_by_thread(lock: Path) -> Iterator[None]:
    """Hold `lock` in another thread for the duration of the block."""
    held, release = threading.Event(), threading.Event()

    def holder() -> None:
        with locked(lock):
            held.set()
            release.wait(10)

    thread = threading.Thread(target=holder)
    thread.start()
    try:
        assert held.wait(5)
        yield
    finally:
        release.set()
        thread.join(10)


class _FakeTime:
    """`time` as `warehouse.atomic` sees it: sleeps are recorded and move the clock, at once."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_lock_times_out_while_held(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lock = tmp_path / "locks" / "p.lock"
    with _held_by_thread(lock):
        fake = _FakeTime()
        monkeypatch.setattr(atomic, "time", fake)
        with pytest.raises(LockTimeout) as info, locked(lock, timeout=2.0, poll=0.25):
            pass
        monkeypatch.undo()
        assert fake.sleeps == [0.25] * 8  # tried again every `poll` until `timeout`, then gave up
        assert isinstance(info.value, TransientError)
        assert str(lock) in str(info.value)
    with locked(lock, timeout=0):
        pass


def test_upsert_waits_for_the_partition_lock(root: DataRoot, articles: list[Article]) -> None:
    art = _one(articles)
    part = _partition(art)
    spill = _spill(root, part, "a", [art])
    with _held_by_thread(root.lock_file(part)):
        with pytest.raises(LockTimeout):
            upsert_partition(root, part, [spill], lock_timeout=0.1)
        assert not root.partition_file(part).exists()
    assert upsert_partition(root, part, [spill], lock_timeout=1).rows_after == 1


@pytest.fixture()
def lock_holder(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    lock = tmp_path / "locks" / "p.lock"
    code = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from warehouse.atomic import locked\n"
        "with locked(Path(sys.argv[1])):\n"
        "    print('held', flush=True)\n"
        "    time.sleep(60)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code, str(lock)], cwd=REPO, stdout=subprocess.PIPE)
    try:
        yield proc, lock
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
        assert proc.stdout is not None
        proc.stdout.close()


def test_lock_of_a_killed_process_is_free(lock_holder) -> None:
    proc, lock = lock_holder
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == b"held"
    with pytest.raises(LockTimeout), locked(lock, timeout=0.1):
        pass
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait(10) == -signal.SIGKILL
    with locked(lock, timeout=0):  # free at the first try: a timeout of 0 waits for nothing
        pass


# --- partition keys ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "year", "month"),
    [
        ("../etc", 2024, 1),
        ("A", 2024, 1),
        ("x", 2024, 13),
        ("x", 2024, 0),
        ("x", 0, 1),
        ("x", 10000, 1),
        ("a/b", 2024, 1),
        ("..", 2024, 1),
        ("a\x00b", 2024, 1),
        ("Wire", 2024, 1),
        ("a" * 65, 2024, 1),
        ("", 2024, 1),
        (".hidden", 2024, 1),
        ("-x", 2024, 1),
        ("x", "2024", 1),
        ("x", 2024, 1.0),
    ],
)
def test_invalid_partition_raises(source, year, month) -> None:
    with pytest.raises(PartitionError):
        Partition(source, year, month)


def test_partition_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="invalid source name"):
        Partition("a/b", 2024, 1)


@pytest.mark.parametrize(
    ("source", "relpath", "key"),
    [
        ("x", "source=x/year=2024/month=03", "x/2024-03"),
        ("a" * 64, f"source={'a' * 64}/year=2024/month=03", f"{'a' * 64}/2024-03"),
        ("0wire_feed-2", "source=0wire_feed-2/year=2024/month=03", "0wire_feed-2/2024-03"),
    ],
)
def test_valid_partition_paths(source: str, relpath: str, key: str, tmp_path: Path) -> None:
    part = Partition(source, 2024, 3)
    assert part.relpath == relpath
    assert part.key == key
    assert Partition.parse(key) == part
    assert Partition.of(source, datetime(2024, 3, 31, 23, 59, tzinfo=UTC)) == part
    data = DataRoot(tmp_path)
    assert data.partition_file(part) == tmp_path / "articles" / relpath / "part-0.parquet"
    assert data.lock_file(part).is_relative_to(data.locks)


@pytest.mark.parametrize("key", ["x/2024", "x-2024-03", "../x/2024-03", "x/2024-13", "x/yyyy-mm"])
def test_invalid_partition_key_raises(key: str) -> None:
    with pytest.raises(PartitionError):
        Partition.parse(key)


# --- state ------------------------------------------------------------------------------------


def _state(path: str, status: str = "written", **changes) -> FileState:
    base = FileState(
        source="wire",
        path=path,
        size=10,
        mtime_ns=1_700_000_000_000_000_000,
        sidecar="",
        raw_sha256="ab" * 32,
        article_id="0" * 32,
        partition="wire/2024-03",
        status=status,
        normalizer_version="1.0.0",
        run_id=RUN,
    )
    return base._replace(**changes)


def test_state_store_round_trip(tmp_path: Path) -> None:
    states = [
        _state("a.txt"),
        _state("b.txt", status="quarantined", raw_sha256=None, article_id=None, partition=None),
        _state("sub/c.txt", status="skipped", sidecar="c.json:5:123"),
        _state("x.txt", source="anha", status="written"),
    ]
    with StateStore(tmp_path / "state") as store:
        assert store.load("wire") == {}
        assert store.save([]) == 0
        assert store.save(states) == 4
        assert store.load("wire") == {s.path: s for s in states if s.source == "wire"}
        assert store.load("anha") == {"x.txt": states[3]}
        assert store.stat_index("wire") == {s.path: (s.size, s.mtime_ns, s.sidecar) for s in states[:3]}
        assert store.get("wire", ["sub/c.txt", "missing.txt", "x.txt"]) == {"sub/c.txt": states[2]}
        many = [f"p{i}.txt" for i in range(1200)]  # more than one IN (...) chunk
        assert store.get("wire", [*many, "a.txt"]) == {"a.txt": states[0]}
        assert store.placements("wire") == [("a.txt", "0" * 32, "wire/2024-03")]
        assert store.counts() == {
            "anha": {"written": 1},
            "wire": {"quarantined": 1, "skipped": 1, "written": 1},
        }
        # Saving a path again replaces its row.
        newer = _state("a.txt", status="quarantined", size=99, run_id="run-2")
        assert store.save([newer]) == 1
        assert store.load("wire")["a.txt"] == newer
        assert store.counts()["wire"] == {"quarantined": 2, "skipped": 1}
    # Persisted: a new store on the same folder sees the rows.
    with StateStore(tmp_path / "state") as again:
        assert again.load("wire")["a.txt"] == newer
        assert len(again.load("wire")) == 3


def test_state_stores_opened_together_on_a_new_folder_all_work(tmp_path: Path) -> None:
    # Parallel backfill units on an empty data root create the database together;
    # SQLite fails one of them at once ("database is locked") unless openers take turns.
    errors: list[str] = []
    for trial in range(20):
        folder = tmp_path / f"t{trial}" / "state"
        start = threading.Barrier(4)

        def save(k: int, folder: Path = folder, start: threading.Barrier = start) -> None:
            try:
                start.wait()
                with StateStore(folder) as store:
                    store.save([_state(f"p{k}.txt")])
            except Exception as exc:  # collected: an exception in a thread would otherwise vanish
                errors.append(repr(exc))

        threads = [threading.Thread(target=save, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        with StateStore(folder) as store:
            assert sorted(store.load("wire")) == [f"p{k}.txt" for k in range(4)]
    assert errors == []


def _dated_article(sidecar_date: str, source: str = "wire") -> Article:
    meta = SourceMeta(source, "file:///x/a.txt", "a.txt", None, json.dumps({"published_at": sidecar_date}).encode())
    art = normalize_text(b"Title\n\nLede.\n", meta, SourceProfile(name=source))
    assert isinstance(art, Article), art
    return art


@pytest.mark.parametrize(
    ("stated", "period", "utc_day"),
    [
        ("2024-02-01T01:00:00+03:00", "2024-02", "2024-01-31"),  # February where published, January in UTC
        ("2024-01-31T23:30:00-05:00", "2024-01", "2024-02-01"),  # the other way round
        ("2024-03-01", "2024-03", "2024-03-01"),  # a day: midnight UTC of that day
        ("2023-12-31T23:59:59+14:00", "2023-12", "2023-12-31"),
        ("2024-01-01T00:00:00-10:00", "2024-01", "2024-01-01"),
    ],
)
def test_an_article_is_partitioned_by_its_calendar_date_as_published(stated: str, period: str, utc_day: str) -> None:
    art = _dated_article(stated)
    assert art.published_at is not None and art.published_at.date().isoformat() == utc_day
    assert published_day(art).isoformat()[:7] == period
    assert Partition.of_article("wire", art) == Partition.parse(f"wire/{period}")


def test_the_partition_of_a_record_without_published_date_is_its_utc_month() -> None:
    art = dataclasses.replace(_dated_article("2024-02-01T01:00:00+03:00"), published_date=None)
    assert Partition.of_article("wire", art).period == "2024-01"
