"""The raw store: every fetched body, compressed and content-addressed, kept before normalisation.

Layout under the data root:

    raw/objects/<aa>/<sha256>.gz   the body as received (transfer encoding removed), gzip
    raw/index.sqlite               fetch records and per-URL state

A body is stored once however many URLs or fetches produced it (its SHA-256 names
it), and written atomically (staged, fsynced, renamed), so a reader never sees a
partial object and a killed writer leaves at most a stray staged file. Normalisers
read from here, so re-normalising never fetches.

gzip rather than zstd: the stdlib has it, objects are read whole, and pages compress
~4-6x with it; the store is written once per fetched page, not on a hot path.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import sqlite3
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from warehouse.atomic import publish
from warehouse.db import Database, open_db
from warehouse.layout import DataRoot

__all__ = ["FetchRecord", "RawStore", "UrlState"]

_SHA256_HEX = frozenset("0123456789abcdef")


@dataclass(frozen=True, slots=True)
class FetchRecord:
    """One fetch of one URL: what was asked, what came back, and which body it was."""

    source: str
    url: str
    final_url: str
    status: int
    fetched_at: datetime
    raw_sha256: str | None
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class UrlState:
    """What the next fetch of a URL needs to know: validators, last outcome, when it may run."""

    source: str
    url: str
    etag: str | None = None
    last_modified: str | None = None
    raw_sha256: str | None = None
    last_status: int | None = None
    last_outcome: str | None = None
    fetched_at: datetime | None = None
    next_fetch_at: datetime | None = None


_SCHEMA = """
CREATE TABLE IF NOT EXISTS fetches (
    source TEXT NOT NULL,
    url TEXT NOT NULL,
    final_url TEXT NOT NULL,
    status INTEGER NOT NULL,
    fetched_at TEXT NOT NULL,
    raw_sha256 TEXT,
    headers TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS fetches_url ON fetches (source, url, fetched_at);
CREATE TABLE IF NOT EXISTS urls (
    source TEXT NOT NULL,
    url TEXT NOT NULL,
    etag TEXT,
    last_modified TEXT,
    raw_sha256 TEXT,
    last_status INTEGER,
    last_outcome TEXT,
    fetched_at TEXT,
    next_fetch_at TEXT,
    PRIMARY KEY (source, url)
) WITHOUT ROWID;
"""


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _dt(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


class RawStore(Database):
    """Content-addressed raw bodies and their fetch records under `<data root>/raw`."""

    def __init__(self, root: DataRoot, read_only: bool = False) -> None:
        self.folder = root.root / "raw"
        self.objects = self.folder / "objects"
        self._staging = root.raw_staging
        self.read_only = read_only
        index = self.folder / "index.sqlite"
        if read_only:
            # A dry run reads what is stored and creates nothing: a missing store reads as empty.
            if index.exists():
                self._db = sqlite3.connect(f"{index.resolve().as_uri()}?mode=ro", uri=True, timeout=60)
            else:
                self._db = sqlite3.connect(":memory:")
                self._db.executescript(_SCHEMA)
            return
        self.objects.mkdir(parents=True, exist_ok=True)
        self._staging.mkdir(parents=True, exist_ok=True)
        self._db = open_db(index, _SCHEMA)

    def path(self, sha256: str) -> Path:
        """Where the object with this digest lives (whether or not it exists)."""
        if len(sha256) != 64 or not set(sha256) <= _SHA256_HEX:
            raise ValueError(f"not a SHA-256 hex digest: {sha256!r}")
        return self.objects / sha256[:2] / f"{sha256}.gz"

    def put(self, body: bytes) -> str:
        """Store `body` (once: an existing object is kept); returns its SHA-256."""
        if self.read_only:
            raise PermissionError("the raw store was opened read-only")
        sha = hashlib.sha256(body).hexdigest()
        target = self.path(sha)
        if target.exists():
            return sha
        staged = self._staging / f"{sha}.{os.getpid()}.{uuid.uuid4().hex}.gz"
        try:
            # mtime=0: the same body always compresses to the same bytes.
            with open(staged, "wb") as fh, gzip.GzipFile(fileobj=fh, mode="wb", compresslevel=6, mtime=0) as gz:
                gz.write(body)
            publish(staged, target)
        finally:
            staged.unlink(missing_ok=True)
        return sha

    def get(self, sha256: str) -> bytes:
        """The body with this digest; raises FileNotFoundError if absent, ValueError if corrupt."""
        with gzip.open(self.path(sha256), "rb") as gz:
            body = gz.read()
        if hashlib.sha256(body).hexdigest() != sha256:
            raise ValueError(f"raw object {sha256} is corrupt (its content has another digest)")
        return body

    def has(self, sha256: str) -> bool:
        """True if the object is stored."""
        return self.path(sha256).exists()

    def record(self, fetch: FetchRecord, state: UrlState) -> None:
        """Append a fetch record and replace the URL's state, in one transaction."""
        self._db.execute("BEGIN")
        try:
            self._db.execute(
                "INSERT INTO fetches VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    fetch.source,
                    fetch.url,
                    fetch.final_url,
                    fetch.status,
                    fetch.fetched_at.isoformat(),
                    fetch.raw_sha256,
                    json.dumps(dict(fetch.headers), sort_keys=True),
                ),
            )
            self._db.execute(
                "INSERT OR REPLACE INTO urls VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    state.source,
                    state.url,
                    state.etag,
                    state.last_modified,
                    state.raw_sha256,
                    state.last_status,
                    state.last_outcome,
                    _iso(state.fetched_at),
                    _iso(state.next_fetch_at),
                ),
            )
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def url_state(self, source: str, url: str) -> UrlState | None:
        """The stored state of one URL, if it was ever fetched."""
        row = self._db.execute(
            "SELECT source, url, etag, last_modified, raw_sha256, last_status, last_outcome, fetched_at,"
            " next_fetch_at FROM urls WHERE source = ? AND url = ?",
            (source, url),
        ).fetchone()
        if row is None:
            return None
        src, address, etag, last_modified, sha, status, outcome, fetched_at, next_fetch_at = row
        return UrlState(src, address, etag, last_modified, sha, status, outcome, _dt(fetched_at), _dt(next_fetch_at))

    def forget_validators(self, source: str, urls: list[str]) -> None:
        """Drop the ETag and Last-Modified of URLs, so their next fetch is unconditional (a full body)."""
        with self._db:
            self._db.execute("BEGIN")
            self._db.executemany(
                "UPDATE urls SET etag = NULL, last_modified = NULL WHERE source = ? AND url = ?",
                [(source, u) for u in urls],
            )

    def fetches(self, source: str, url: str) -> list[FetchRecord]:
        """Every recorded fetch of one URL, oldest first."""
        rows = self._db.execute(
            "SELECT source, url, final_url, status, fetched_at, raw_sha256, headers FROM fetches"
            " WHERE source = ? AND url = ? ORDER BY fetched_at",
            (source, url),
        )
        return [
            FetchRecord(s, u, f, st, datetime.fromisoformat(at), sha, json.loads(h)) for s, u, f, st, at, sha, h in rows
        ]
