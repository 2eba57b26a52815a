"""The SQLite settings every warehouse database uses."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from warehouse.atomic import locked

__all__ = ["open_db"]


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
