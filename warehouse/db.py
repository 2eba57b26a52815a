"""The SQLite settings every warehouse database uses."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Self

from warehouse.atomic import locked

__all__ = ["Database", "open_db"]


def open_db(path: Path, schema: str, any_thread: bool = False) -> sqlite3.Connection:
    """Open (creating if needed) a database with `schema`, in autocommit mode and WAL journal.

    WAL lets readers go on while one writer commits; the 60 s timeout makes concurrent
    runs (different sources, several fetch tasks) wait for the writer instead of failing.
    With `any_thread`, the connection may be used from another thread than its opener's
    (one at a time).
    """
    # Switching a new database to WAL takes an exclusive lock and SQLite reports
    # "database is locked" at once, without its busy wait, when two connections
    # create the file together (parallel backfill units on an empty data root):
    # openers take turns through a file lock instead.
    with locked(path.with_name(path.name + ".open-lock"), timeout=60):
        db = sqlite3.connect(path, timeout=60, isolation_level=None, check_same_thread=not any_thread)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.executescript(schema)
        except BaseException:
            db.close()
            raise
    return db


class Database:
    """A store over one SQLite connection (`_db`): closed by `close()`, or at the end of a `with` block."""

    _db: sqlite3.Connection

    def _select_in(self, query: str, values: Sequence[object], *before: object) -> Iterator[tuple[Any, ...]]:
        """The rows of `query`, whose `{}` is an `IN` list over `values`, a slice of values at a time.

        `before` are the parameters ahead of the list. Slices of 500 stay under SQLite's
        bound-parameter limit.
        """
        for i in range(0, len(values), 500):
            chunk = values[i : i + 500]
            yield from self._db.execute(query.format(",".join("?" * len(chunk))), (*before, *chunk))

    def close(self) -> None:
        """Close the database."""
        self._db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
