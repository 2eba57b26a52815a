"""Duplicates and syndication clusters: the index behind them and the `clusters` table.

The index (`state/dedup.sqlite`) holds, per article of the corpus, its exact-duplicate
key, MinHash signature and LSH band keys, and the near-duplicate links between
articles; an article is matched against the corpus through the band keys (a B-tree
lookup per band), never by reading other articles' text. It is derived data: deleting
it, or `newsflow dedup --rebuild`, builds it again from the articles.

The table (`clusters/source=<s>/year=<Y>/month=<M>/part-0.parquet`, partitioned as
the articles are; view `clusters`) has one row per article: its cluster (the connected
group of articles linked as near-duplicates), named after the cluster's original, and
for an exact copy the article it copies.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from itertools import chain
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from warehouse.atomic import publish_table
from warehouse.db import Database, open_db
from warehouse.layout import PARTITION_FILE, DataRoot, Partition
from warehouse.schema import arrow_schema

__all__ = ["CLUSTER_SCHEMA", "ClusterRow", "DedupStore", "Doc", "write_clusters"]


@dataclass(frozen=True, slots=True)
class ClusterRow:
    """One article's place among duplicates and near-duplicates."""

    article_id: str = field(metadata={"doc": "The article (joins `articles.article_id`)."})
    source: str = field(metadata={"doc": "Source name."})
    published_at: datetime | None = field(metadata={"doc": "The article's publication time (UTC)."})
    cluster_id: str = field(
        metadata={
            "doc": "The cluster's original's `article_id`: the earliest published article among those linked as "
            "near-duplicates (ties: the smaller `article_id`). An article with no near-duplicate is its own cluster."
        }
    )
    is_original: bool = field(metadata={"doc": "The article is its cluster's original."})
    similarity: float = field(
        metadata={
            "doc": "Estimated Jaccard similarity of the article's word 5-shingles with the original's (1 for the "
            "original and for exact copies).",
            "arrow": "float32",
        }
    )
    duplicate_of: str | None = field(
        metadata={
            "doc": "For an exact copy (the same words, whatever the title, case, spacing or punctuation), the "
            "earliest published article with those words (ties: the smaller `article_id`); null for that one."
        }
    )
    text_key: str = field(
        metadata={"doc": "Exact-duplicate key of the article's words (128-bit BLAKE2b of their 64-bit hashes, hex)."}
    )
    words: int = field(metadata={"doc": "Words the fingerprints were made of.", "arrow": "int32"})


CLUSTER_SCHEMA = arrow_schema(ClusterRow)
# Rows of a `clusters` file read from the index at once.
CLUSTER_SLICE = 10_000


@dataclass(slots=True)
class Doc:
    """One indexed article."""

    id: int
    article_id: str
    source: str
    partition: str
    published_at: str | None  # ISO 8601, UTC
    content_hash: str
    text_key: str
    words: int
    signature: np.ndarray | None  # None: too short to be matched other than exactly
    cluster: tuple[str, bool, float, str | None] | None = None  # cluster_id, original?, similarity, copy of


_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS docs (
    id INTEGER PRIMARY KEY,
    article_id TEXT NOT NULL UNIQUE,
    source TEXT NOT NULL,
    partition TEXT NOT NULL,
    published_at TEXT,
    content_hash TEXT NOT NULL,
    text_key TEXT NOT NULL,
    words INTEGER NOT NULL,
    signature BLOB,
    cluster_id TEXT,
    is_original INTEGER,
    similarity REAL,
    duplicate_of TEXT
);
CREATE INDEX IF NOT EXISTS docs_text_key ON docs (text_key);
CREATE INDEX IF NOT EXISTS docs_partition ON docs (partition);
CREATE INDEX IF NOT EXISTS docs_source ON docs (source);
CREATE INDEX IF NOT EXISTS docs_unclustered ON docs (id) WHERE cluster_id IS NULL;
CREATE TABLE IF NOT EXISTS bands (key INTEGER NOT NULL, doc INTEGER NOT NULL, PRIMARY KEY (key, doc)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS links (a INTEGER NOT NULL, b INTEGER NOT NULL, PRIMARY KEY (a, b)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS partitions (key TEXT PRIMARY KEY, file TEXT NOT NULL);
-- Articles whose cluster must be computed again: kept on disk, so an update killed
-- before its clusters leaves them to the next one.
CREATE TABLE IF NOT EXISTS pending (id INTEGER PRIMARY KEY);
-- Articles that lost a link (to an article removed or changed): matched again before the
-- clusters are computed, so a family stays whole; on disk for the same reason.
CREATE TABLE IF NOT EXISTS relink (id INTEGER PRIMARY KEY);
"""

_DOC_COLUMNS = (
    "id, article_id, source, partition, published_at, content_hash, text_key, words, signature,"
    " cluster_id, is_original, similarity, duplicate_of"
)


class DedupStore(Database):
    """The duplicate index of a data root (see the module docstring)."""

    FILE = "dedup.sqlite"

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / self.FILE
        self._db = open_db(self.path, _SCHEMA)
        # The band index is read and written at random keys: 64 MB of page cache (SQLite's
        # default is 2 MB) keeps an index of some hundred thousand articles in memory.
        self._db.execute("PRAGMA cache_size = -65536")
        # Articles last seen in a partition that no longer lists them: gone, unless a later
        # partition of the same update lists them (one update's working set, however large).
        self._db.execute("CREATE TEMP TABLE IF NOT EXISTS leaving (id INTEGER PRIMARY KEY, partition TEXT NOT NULL)")
        # The articles of the cluster being computed (`gather`): a family can be huge.
        self._db.execute("CREATE TEMP TABLE IF NOT EXISTS members (id INTEGER PRIMARY KEY)")

    def transaction(self) -> sqlite3.Connection:
        """A context manager for one transaction (`with store.transaction(): ...`)."""
        self._db.execute("BEGIN")
        return self._db

    def version(self) -> str | None:
        """The fingerprint version the stored signatures were made with."""
        row = self._db.execute("SELECT value FROM meta WHERE key = 'version'").fetchone()
        return None if row is None else str(row[0])

    def reset(self, version: str) -> None:
        """Forget everything (signatures of another version, or a rebuild) and record `version`."""
        with self.transaction():
            for table in ("docs", "bands", "links", "partitions", "pending", "relink", "meta"):
                self._db.execute(f"DELETE FROM {table}")
            self._db.execute("INSERT INTO meta VALUES ('version', ?)", (version,))

    def partition_files(self) -> dict[str, str]:
        """The identity of each partition file as last indexed, by partition key."""
        return dict(self._db.execute("SELECT key, file FROM partitions"))

    def set_partition_files(self, files: dict[str, str | None]) -> None:
        """Record partition file identities (None: the partition is gone)."""
        for key, file in files.items():
            if file is None:
                self._db.execute("DELETE FROM partitions WHERE key = ?", (key,))
            else:
                self._db.execute("INSERT OR REPLACE INTO partitions VALUES (?, ?)", (key, file))

    def docs_by_article(self, article_ids: Iterable[str], signatures: bool = True) -> dict[str, Doc]:
        """The indexed articles among `article_ids` (without their signatures, unless asked)."""
        return {d.article_id: d for d in self._select("article_id", list(article_ids), signatures)}

    def docs_in_partitions(self, keys: Iterable[str], signatures: bool = True) -> list[Doc]:
        """The indexed articles of the given partitions (without their signatures, unless asked)."""
        return list(self._select("partition", list(keys), signatures))

    def docs_by_id(self, ids: Iterable[int], signatures: bool = True) -> list[Doc]:
        """The indexed articles with the given row ids (without their signatures, unless asked)."""
        return list(self._select("id", list(ids), signatures))

    def gather(self, start: int) -> None:
        """Make the articles linked to `start`, directly or through others, the cluster the next calls read."""
        self._db.execute("DELETE FROM temp.members")
        self._db.execute(
            "INSERT INTO temp.members WITH RECURSIVE linked(id) AS"
            " (SELECT ? UNION SELECT l.b FROM links l JOIN linked ON l.a = linked.id) SELECT id FROM linked",
            (start,),
        )

    def gathered(self, size: int) -> Iterator[list[int]]:
        """The gathered cluster's articles, in slices of `size` row ids (in id order)."""
        last = -(1 << 63)
        while ids := [
            r[0]
            for r in self._db.execute(
                "SELECT id FROM temp.members WHERE id > ? ORDER BY id LIMIT ?", (last, size)
            ).fetchall()
        ]:
            yield ids
            last = ids[-1]

    def first_gathered(self, undated: str) -> int | None:
        """The gathered cluster's earliest published article (ties: the smaller `article_id`; undated: `undated`)."""
        row = self._db.execute(
            "SELECT d.id FROM temp.members m JOIN docs d ON d.id = m.id"
            " ORDER BY coalesce(d.published_at, ?), d.article_id LIMIT 1",
            (undated,),
        ).fetchone()
        return None if row is None else int(row[0])

    def first_copies(self, keys: Iterable[str], undated: str) -> dict[str, str]:
        """Per exact-duplicate key among `keys` that several articles hold, the earliest published of them.

        Ties: the smaller `article_id`; undated articles sort as `undated`. Every article
        holding a key is linked to the first indexed with it, so they share one cluster.
        """
        sql = (
            "SELECT text_key, article_id FROM (SELECT text_key, article_id, row_number() OVER"
            " (PARTITION BY text_key ORDER BY coalesce(published_at, ?), article_id) AS place,"
            " count(*) OVER (PARTITION BY text_key) AS held FROM docs WHERE text_key IN ({}))"
            " WHERE place = 1 AND held > 1"
        )
        return {str(k): str(a) for k, a in self._select_in(sql, sorted(set(keys)), undated)}

    def unmark_gathered(self) -> None:
        """Forget the gathered cluster's articles as marked (`mark`)."""
        self._db.execute("DELETE FROM pending WHERE id IN (SELECT id FROM temp.members)")

    def docs_of_source(self, source: str) -> list[Doc]:
        """Every indexed article of a source."""
        return list(self._select("source", [source]))

    def mark_unclustered(self) -> None:
        """Mark the articles given no cluster yet (new ones; in SQL, as a backfill brings millions)."""
        self._db.execute("INSERT OR IGNORE INTO pending SELECT id FROM docs WHERE cluster_id IS NULL")

    def first_with_text_key(self, key: str, limit: int) -> list[int]:
        """Row ids of the first `limit` articles indexed with an exact-duplicate key."""
        return [
            r[0] for r in self._db.execute("SELECT id FROM docs WHERE text_key = ? ORDER BY id LIMIT ?", (key, limit))
        ]

    def add(self, doc: Doc) -> int:
        """Insert an article (its `id` is ignored); returns its row id."""
        cur = self._db.execute(
            "INSERT INTO docs (article_id, source, partition, published_at, content_hash, text_key, words, signature)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (*_facts(doc),),
        )
        assert cur.lastrowid is not None
        return int(cur.lastrowid)

    def update(self, doc: Doc) -> None:
        """Replace an article's facts (not its cluster, which `set_clusters` sets)."""
        self._db.execute(
            "UPDATE docs SET article_id = ?, source = ?, partition = ?, published_at = ?, content_hash = ?,"
            " text_key = ?, words = ?, signature = ? WHERE id = ?",
            (*_facts(doc), doc.id),
        )

    def move(self, doc: Doc) -> None:
        """Record where an article now is (its partition, publication time and source)."""
        self._db.execute(
            "UPDATE docs SET partition = ?, published_at = ?, source = ? WHERE id = ?",
            (doc.partition, doc.published_at, doc.source, doc.id),
        )

    def start_update(self) -> None:
        """Empty an update's working set of articles left out (`leave`)."""
        self._db.execute("DELETE FROM temp.leaving")

    def mark(self, ids: Iterable[int]) -> None:
        """Note articles whose cluster must be computed again."""
        self._db.executemany("INSERT OR IGNORE INTO pending VALUES (?)", [(i,) for i in ids])

    def unmark(self, ids: Iterable[int]) -> None:
        """Forget articles whose cluster was computed."""
        self._db.executemany("DELETE FROM pending WHERE id = ?", [(i,) for i in ids])

    def lost_links(self, ids: Iterable[int]) -> None:
        """Note articles that lost a link, to be matched again (`take_lost_links`)."""
        self._db.executemany("INSERT OR IGNORE INTO relink VALUES (?)", [(i,) for i in ids])

    def take_lost_links(self) -> list[int]:
        """The articles noted by `lost_links` (forgotten when the transaction commits)."""
        ids = [r[0] for r in self._db.execute("SELECT id FROM relink ORDER BY id")]
        self._db.execute("DELETE FROM relink")
        return ids

    def next_marked(self) -> int | None:
        """The first article still marked, if any."""
        row = self._db.execute("SELECT min(id) FROM pending").fetchone()
        return None if row[0] is None else int(row[0])

    def leave(self, docs: Iterable[Doc]) -> None:
        """Note articles their partition no longer lists: gone, unless another partition lists them."""
        self._db.executemany("INSERT OR REPLACE INTO temp.leaving VALUES (?, ?)", [(d.id, d.partition) for d in docs])

    def gone(self, partitions: Sequence[str]) -> list[int]:
        """The articles gone: still in a vanished partition, or still where their partition left them out."""
        sql = "SELECT d.id FROM temp.leaving l JOIN docs d ON d.id = l.id AND d.partition = l.partition"
        ids = {r[0] for r in self._db.execute(sql)}
        ids.update(r[0] for r in self._select_in("SELECT id FROM docs WHERE partition IN ({})", partitions))
        return sorted(ids)

    def remove(self, ids: Sequence[int]) -> None:
        """Delete articles (their bands and links go with `unindex`, called first)."""
        self._db.executemany("DELETE FROM docs WHERE id = ?", [(i,) for i in ids])

    def index(self, entries: Iterable[tuple[int, Sequence[int]]]) -> None:
        """Add articles' band keys: (row id, keys) each."""
        # In key order: the B-tree's pages are then visited once each, in order, not at random.
        rows = sorted((int(k), doc_id) for doc_id, keys in entries for k in keys)
        self._db.executemany("INSERT OR IGNORE INTO bands VALUES (?, ?)", rows)

    def unindex(self, doc_id: int, keys: np.ndarray | None) -> list[int]:
        """Remove an article's band keys and links; returns the articles it was linked to."""
        if keys is not None:
            self._db.executemany("DELETE FROM bands WHERE key = ? AND doc = ?", [(int(k), doc_id) for k in keys])
        linked = self.links_of(doc_id)
        self._db.execute("DELETE FROM links WHERE a = ?", (doc_id,))
        self._db.executemany("DELETE FROM links WHERE a = ? AND b = ?", [(b, doc_id) for b in linked])
        return linked

    def postings(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The articles holding any of the band `keys`: (key, article) pairs as two int64 arrays, in key order."""
        wanted = np.unique(keys).tolist()  # in key order, as `index` writes them
        rows = self._select_in("SELECT key, doc FROM bands WHERE key IN ({})", wanted)
        pairs = np.fromiter(chain.from_iterable(rows), dtype=np.int64).reshape(-1, 2)
        order = np.argsort(pairs[:, 0], kind="stable")
        return pairs[order, 0], pairs[order, 1]

    def signatures(self, ids: Iterable[int]) -> tuple[np.ndarray, np.ndarray]:
        """The row ids and signatures (one row of uint32 each) of those of the articles `ids` that have one."""
        found: list[int] = []
        blobs: list[bytes] = []
        sql = "SELECT id, signature FROM docs WHERE id IN ({}) AND signature IS NOT NULL"
        for doc_id, blob in self._select_in(sql, list(ids)):
            found.append(doc_id)
            blobs.append(blob)
        width = len(blobs[0]) // 4 if blobs else 0
        return np.array(found, dtype=np.int64), np.frombuffer(b"".join(blobs), dtype="<u4").reshape(len(blobs), width)

    def link(self, pairs: Iterable[tuple[int, int]]) -> None:
        """Link articles as near-duplicates (both directions)."""
        rows = [(a, b) for x, y in pairs if x != y for a, b in ((x, y), (y, x))]
        self._db.executemany("INSERT OR IGNORE INTO links VALUES (?, ?)", rows)

    def links_of(self, doc_id: int) -> list[int]:
        """The articles linked to one."""
        return [r[0] for r in self._db.execute("SELECT b FROM links WHERE a = ?", (doc_id,))]

    def set_clusters(self, docs: Iterable[Doc]) -> None:
        """Store the cluster fields of articles."""
        rows = []
        for d in docs:
            assert d.cluster is not None
            cid, original, similarity, copy_of = d.cluster
            rows.append((cid, int(original), similarity, copy_of, d.id))
        self._db.executemany(
            "UPDATE docs SET cluster_id = ?, is_original = ?, similarity = ?, duplicate_of = ? WHERE id = ?",
            rows,
        )

    def cluster_table(self, partition: str) -> pa.Table:
        """A partition's `clusters` rows (without the hive `source` column), by `article_id`, read as columns."""
        # Straight from the rows into Arrow, CLUSTER_SLICE at a time: a month of a million-article
        # corpus holds tens of thousands, and an object per row and field was the update's peak.
        cursor = self._db.execute(
            "SELECT article_id, published_at, cluster_id, is_original, similarity, duplicate_of, text_key, words"
            " FROM docs WHERE partition = ? ORDER BY article_id",
            (partition,),
        )
        schema = CLUSTER_SCHEMA.remove(CLUSTER_SCHEMA.get_field_index("source"))
        batches = []
        while rows := cursor.fetchmany(CLUSTER_SLICE):
            columns = list(zip(*rows, strict=True))
            if any(c is None for c in columns[2]):
                raise ValueError(f"{partition}: an indexed article has no cluster yet")
            arrays = [pa.array(c) for c in columns]
            arrays[1] = arrays[1].cast(pa.string()).cast(schema.field("published_at").type)  # ISO 8601 in UTC
            arrays[3] = arrays[3].cast(pa.bool_())
            batches.append(
                pa.RecordBatch.from_arrays([a.cast(f.type) for a, f in zip(arrays, schema, strict=True)], schema=schema)
            )
        return pa.Table.from_batches(batches, schema=schema)

    def count(self) -> tuple[int, int, int]:
        """(articles, articles in a cluster of more than one, exact copies) in the index (a scan of it)."""
        row = self._db.execute(
            "SELECT count(*), count(*) FILTER (WHERE NOT is_original OR cluster_id IN"
            " (SELECT cluster_id FROM docs WHERE NOT is_original)), count(duplicate_of) FROM docs"
        ).fetchone()
        return int(row[0]), int(row[1] or 0), int(row[2] or 0)

    def _select(self, column: str, values: list[object], signatures: bool = True) -> Iterator[Doc]:
        columns = _DOC_COLUMNS if signatures else _DOC_COLUMNS.replace("signature", "NULL")
        for row in self._select_in(f"SELECT {columns} FROM docs WHERE {column} IN ({{}})", values):
            yield _doc(row)


def _facts(doc: Doc) -> tuple[object, ...]:
    signature = None if doc.signature is None else doc.signature.astype("<u4").tobytes()
    return (
        doc.article_id,
        doc.source,
        doc.partition,
        doc.published_at,
        doc.content_hash,
        doc.text_key,
        doc.words,
        signature,
    )


def _doc(row: tuple[Any, ...]) -> Doc:
    (i, aid, source, part, published, chash, key, words, sig, cid, original, similarity, copy_of) = row
    signature = None if sig is None else np.frombuffer(sig, dtype="<u4")
    cluster = None if cid is None else (cid, bool(original), float(similarity), copy_of)
    return Doc(i, aid, source, part, published, chash, key, words, signature, cluster)


def write_clusters(root: DataRoot, partition: Partition, store: DedupStore) -> Path | None:
    """Replace the `clusters` file of an article partition with its indexed articles' rows (none: removed)."""
    target = root.clusters / partition.relpath / PARTITION_FILE
    table = store.cluster_table(partition.key)
    if table.num_rows == 0:
        target.unlink(missing_ok=True)
        return None
    publish_table(table, root.staging, target, "clusters", compression="zstd")
    return target
