"""The SQLite settings every warehouse database uses."""

from __future__ import annotations

import sqlite3
from pathlib import Path

__all__ = ["open_db"]


def open_db(path: Path, schema: str) -> sqlite3.Connection:
    """Open (creating if needed) a database with `schema`, in autocommit mode and WAL journal.

    WAL lets readers go on while one writer commits; the 60 s timeout makes concurrent
    runs (different sources, several fetch tasks) wait for the writer instead of failing.
    """
    db = sqlite3.connect(path, timeout=60, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.executescript(schema)
    return db
