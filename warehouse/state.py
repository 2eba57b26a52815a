"""Incremental state: what each input looked like when it was last processed.

SQLite (stdlib, transactional, one file) rather than Parquet: state is updated
row by row and read by key, which is what a B-tree is for.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import NamedTuple

from warehouse.db import Database, open_db

__all__ = ["FileState", "StateStore", "WarcProgress", "progress_key", "progress_source"]


class FileState(NamedTuple):
    """The last processed version of one input file and where its output went.

    Immutable like the other records, but a named tuple rather than a frozen dataclass:
    100k of these are made in the workers, pickled back in batches and written as
    database rows at the end of a run, on the path every run waits on. A tuple is built
    in ~0.27 us against ~1.25 us (a frozen dataclass sets each field through
    `object.__setattr__`), unpickles ~3x faster, and its fields are in the table's
    column order, so a state is its own row.
    """

    source: str
    path: str
    size: int
    mtime_ns: int
    sidecar: str
    raw_sha256: str | None
    article_id: str | None
    partition: str | None
    status: str
    normalizer_version: str | None
    run_id: str


def progress_key(source: str, what: str) -> str:
    """The key of progress through `source`'s WARC files kept apart from its runs' (a backfill's): "<source> <what>"."""
    return f"{source} {what}"


def progress_source(key: str) -> str:
    """The source whose WARC progress is kept under `key`: its name, or a `progress_key` of it."""
    return key.split(" ", 1)[0]


class WarcProgress(NamedTuple):
    """How far a WARC source's runs have read one of its WARC files."""

    source: str
    file: str  # path under the source folder
    size: int  # the file as it was read
    mtime_ns: int
    offset: int  # where the next record to read starts (its ordinal counts when the file cannot be sought in)
    ordinal: int  # its number in the file, from 0
    record_id: str  # its WARC-Record-ID, to recognise it ("" when not known)
    done: bool  # read to its end
    cut: bool  # it ends inside a record: read on from there once the file grows


_SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    source TEXT NOT NULL,
    path TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    sidecar TEXT NOT NULL,
    raw_sha256 TEXT,
    article_id TEXT,
    partition TEXT,
    status TEXT NOT NULL,
    normalizer_version TEXT,
    run_id TEXT NOT NULL,
    PRIMARY KEY (source, path)
) WITHOUT ROWID;
-- A backfill unit finds the other copies of the articles it writes by id.
CREATE INDEX IF NOT EXISTS files_article ON files (source, article_id);
CREATE TABLE IF NOT EXISTS warc_files (
    source TEXT NOT NULL,
    file TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    offset INTEGER NOT NULL,
    ordinal INTEGER NOT NULL,
    record_id TEXT NOT NULL,
    done INTEGER NOT NULL,
    cut INTEGER NOT NULL,
    PRIMARY KEY (source, file)
) WITHOUT ROWID;
"""


class StateStore(Database):
    """Per-source file state in `state/newsflow.sqlite` under the data root."""

    FILE = "newsflow.sqlite"

    def __init__(self, folder: Path, any_thread: bool = False) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / self.FILE
        self._db = open_db(self.path, _SCHEMA, any_thread=any_thread)

    @classmethod
    def existing(cls, folder: Path) -> StateStore | None:
        """The store in `folder` when its database exists, else None (and nothing is created)."""
        return cls(folder) if (folder / cls.FILE).is_file() else None

    def data_version(self) -> int:
        """A number that changes when another connection (of any process) commits to the database."""
        row = self._db.execute("PRAGMA data_version").fetchone()
        return int(row[0])

    def load(self, source: str) -> dict[str, FileState]:
        """All known files of a source, by path."""
        rows = self._db.execute(
            "SELECT source, path, size, mtime_ns, sidecar, raw_sha256, article_id, partition, status,"
            " normalizer_version, run_id FROM files WHERE source = ?",
            (source,),
        )
        return {row[1]: FileState(*row) for row in rows}

    def stat_index(self, source: str) -> dict[str, tuple[int, int, str]]:
        """`path -> (size, mtime_ns, sidecar)` of a source: all a no-op run needs, without building objects."""
        rows = self._db.execute("SELECT path, size, mtime_ns, sidecar FROM files WHERE source = ?", (source,))
        return {path: (size, mtime_ns, sidecar) for path, size, mtime_ns, sidecar in rows}

    def get(self, source: str, paths: Iterable[str]) -> dict[str, FileState]:
        """Full state of the given paths of a source (unknown paths are absent)."""
        query = (
            "SELECT source, path, size, mtime_ns, sidecar, raw_sha256, article_id, partition, status,"
            " normalizer_version, run_id FROM files WHERE source = ? AND path IN ({})"
        )
        return {row[1]: FileState(*row) for row in self._select_in(query, list(paths), source)}

    def save(self, states: Iterable[FileState]) -> int:
        """Insert or replace file states in one transaction, consumed as they come; returns how many."""
        saved = 0

        def counted() -> Iterator[FileState]:
            nonlocal saved
            for state in states:
                saved += 1
                yield state

        with self._db:  # one transaction: all of a run's outcomes land together or not at all
            self._db.execute("BEGIN")
            self._db.executemany("INSERT OR REPLACE INTO files VALUES (?,?,?,?,?,?,?,?,?,?,?)", counted())
        return saved

    def save_progress(self, rows: Iterable[WarcProgress]) -> None:
        """Record how far WARC files were read (in one transaction)."""
        with self._db:
            self._db.execute("BEGIN")
            self._db.executemany("INSERT OR REPLACE INTO warc_files VALUES (?,?,?,?,?,?,?,?,?)", list(rows))

    def forget_progress(self, source: str) -> None:
        """Forget how far the WARC files of `source` were read: the next run reads them from their start."""
        with self._db:
            self._db.execute("BEGIN")
            self._db.execute("DELETE FROM warc_files WHERE source = ?", (source,))

    def warc_progress(self, source: str) -> dict[str, WarcProgress]:
        """How far each WARC file of `source` was read, by file."""
        rows = self._db.execute(
            "SELECT source, file, size, mtime_ns, offset, ordinal, record_id, done, cut"
            " FROM warc_files WHERE source = ?",
            (source,),
        )
        return {
            file: WarcProgress(src, file, size, mtime, offset, ordinal, rid, bool(done), bool(cut))
            for src, file, size, mtime, offset, ordinal, rid, done, cut in rows
        }

    def delete(self, source: str, paths: Iterable[str]) -> int:
        """Forget the given paths of a source in one transaction (the next run sees them as new)."""
        rows = [(source, p) for p in paths]
        if not rows:
            return 0
        with self._db:
            self._db.execute("BEGIN")
            self._db.executemany("DELETE FROM files WHERE source = ? AND path = ?", rows)
        return len(rows)

    def paths_in(self, source: str, partition: str) -> set[str]:
        """Paths of `source` whose written article lives in `partition`."""
        rows = self._db.execute(
            "SELECT path FROM files WHERE source = ? AND partition = ? AND status = 'written'", (source, partition)
        )
        return {p for (p,) in rows}

    def placements(self, source: str, article_ids: Iterable[str] | None = None) -> list[tuple[str, str, str]]:
        """`(path, article_id, partition)` of every file of `source` whose article is written (one of `article_ids`)."""
        if article_ids is None:
            rows = self._db.execute(
                "SELECT path, article_id, partition FROM files WHERE source = ? AND status = 'written'", (source,)
            )
            return [(p, a, k) for p, a, k in rows if a is not None and k is not None]
        query = (
            "SELECT path, article_id, partition FROM files WHERE source = ? AND status = 'written'"
            " AND article_id IN ({}) AND partition IS NOT NULL"
        )
        return [(p, a, k) for p, a, k in self._select_in(query, sorted(set(article_ids)), source)]

    def counts(self) -> dict[str, dict[str, int]]:
        """Files per source and status."""
        out: dict[str, dict[str, int]] = {}
        for source, status, n in self._db.execute(
            "SELECT source, status, count(*) FROM files GROUP BY source, status ORDER BY source, status"
        ):
            out.setdefault(source, {})[status] = n
        return out
