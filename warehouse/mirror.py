"""A local working copy of a data root kept in a bucket: runs use it as a local data root; the bucket is the record.

Each machine keeps a working copy (a cache) of the sources it works on. A command
working on a source holds the source's `Lease` in the bucket, then:

1. `pull_source`: rolls forward a push a killed holder left (its journal), and makes
   the working copy's files and state rows of the source the bucket's, downloading only
   objects whose ETag changed since this copy last saw them; files the bucket does not
   have are removed (a local run killed before its push is discarded, not published).
2. runs exactly as on a local data root (local locks, journals, SQLite);
3. `push_source`: uploads what changed as one commit (below), state last in the same commit.

A push is a redo log in the bucket, as a local commit is on disk: every changed file is
uploaded under `.staging/<scope>/<push>/`, then the journal `.journal/<scope>.json`
naming them is put only if absent (the commit point, after checking the lease is still
held), then each target is replaced by one server-side copy (so a reader sees the old
object or the new one, never a part) and deleted files deleted, then the journal and the
staged objects go. A holder killed after the commit point leaves the journal; the next
holder of the lease applies it again (copies and deletes are idempotent).

State travels as files: a source's rows of the state and fetch databases exported to
`state/source=<s>/rows.sqlite`, and its learned-boilerplate database copied (SQLite's
backup API, consistent while open) to `state/source=<s>/boilerplate.sqlite`. The
duplicate index stays local: it is derived from the articles, and each machine
catches it up from the partitions the bucket gives it. Fetched bodies (`raw/objects/`,
content-addressed and never changed) are uploaded before the journal that makes rows
naming them visible, and downloaded when a pulled source's rows name one missing here.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import sqlite3
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from warehouse.atomic import locked
from warehouse.bucket import Bucket, Lease
from warehouse.db import Database, open_db
from warehouse.errors import JournalError, WarehouseError
from warehouse.layout import DataRoot, validate_source
from warehouse.raw import RawStore
from warehouse.state import StateStore

__all__ = ["DATASETS", "Scope", "Sync", "WorkingCopy"]

# The dataset folders whose files belong to one source (`<folder>/source=<s>/...`).
DATASETS = ("articles", "article_versions", "quarantine", "quarantine_current", "coverage", "runs", "boilerplate")
# Rows of these tables (each has a `source` column) are a source's state; database path -> tables.
_SOURCE_TABLES = {"state/newsflow.sqlite": ("files", "warc_files"), "raw/index.sqlite": ("fetches", "urls")}
# A source's rows: its own, and its WARC progress kept under a `progress_key` (source
# names have no spaces, and no GLOB wildcards).
_OWN_ROWS = "(source = ?1 OR source GLOB ?1 || ' *')"
_JOURNAL_FORMAT = 1

_MANIFEST = """
CREATE TABLE IF NOT EXISTS objects (
    rel TEXT PRIMARY KEY,
    etag TEXT NOT NULL,
    ino INTEGER NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL
) WITHOUT ROWID;
"""


@dataclass(frozen=True, slots=True)
class Scope:
    """What one lease covers: folders (ending in '/') and single files, relative to the data root."""

    name: str
    folders: tuple[str, ...]
    files: tuple[str, ...] = ()
    state: tuple[str, ...] = ()  # made at push time from the local databases, installed by a pull

    @classmethod
    def source(cls, source: str) -> Scope:
        """A source's files: its folder in every dataset, and its state files."""
        validate_source(source)
        return cls(f"source-{source}", tuple(f"{d}/source={source}/" for d in DATASETS), (), _state_files(source))

    @classmethod
    def corpus(cls, files: Sequence[str] = ()) -> Scope:
        """What the corpus-wide steps write: the clusters table (every source's), and `files` (the report)."""
        return cls("corpus", ("clusters/",), tuple(files))

    def holds(self, rel: str) -> bool:
        """Whether `rel` is one of the scope's files."""
        return rel in self.files or rel in self.state or any(rel.startswith(f) for f in self.folders)


def _state_files(source: str) -> tuple[str, str]:
    return (f"state/source={source}/rows.sqlite", f"state/source={source}/boilerplate.sqlite")


@dataclass(slots=True)
class Sync:
    """What a pull or a push moved."""

    downloaded: int = 0
    uploaded: int = 0
    removed: int = 0
    rolled_forward: int = 0
    bytes: int = 0
    notes: list[str] = field(default_factory=list)

    def line(self) -> str:
        """One line for logs."""
        moved = f"{self.downloaded} downloaded, {self.uploaded} uploaded, {self.removed} removed, {self.bytes:,} bytes"
        return moved + (
            f"; a killed push of {self.rolled_forward} file(s) rolled forward" if self.rolled_forward else ""
        )


FileId = tuple[int, int, int]


def _file_id(path: Path) -> FileId | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def _md5(path: Path) -> str:
    # S3's ETag of an object put whole (not multipart, not SSE-KMS) is its MD5; anything
    # else only makes an unchanged file look changed, and it is uploaded again.
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


class WorkingCopy(Database):
    """A bucket's working copy in `local`: `root` is the local data root commands use."""

    def __init__(self, bucket: Bucket, local: Path) -> None:
        self.bucket = bucket
        self.root = DataRoot(local)
        self.meta = local / ".mirror"
        self.meta.mkdir(parents=True, exist_ok=True)
        self._db = open_db(self.meta / "manifest.sqlite", _MANIFEST)

    # -- the manifest: what this copy last knew of each object -----------------------

    def _known(self, scope: Scope) -> dict[str, tuple[str, FileId]]:
        """What the manifest holds of the scope's files (looked up by prefix: it also lists every fetched body)."""
        query = "SELECT rel, etag, ino, size, mtime_ns FROM objects WHERE "
        rows = [
            row
            for folder in scope.folders
            for row in self._db.execute(query + "rel >= ? AND rel < ?", (folder, _after(folder)))
        ]
        for rel in (*scope.files, *scope.state):
            rows += self._db.execute(query + "rel = ?", (rel,)).fetchall()
        return {r[0]: (r[1], (r[2], r[3], r[4])) for r in rows}

    def _remember(self, rel: str, etag: str, fid: FileId) -> None:
        self._db.execute("INSERT OR REPLACE INTO objects VALUES (?, ?, ?, ?, ?)", (rel, etag, *fid))

    def _forget(self, rel: str) -> None:
        self._db.execute("DELETE FROM objects WHERE rel = ?", (rel,))

    # -- pull ------------------------------------------------------------------------

    def pull(self, scope: Scope, lease: Lease | None) -> Sync:
        """Make the scope's local files the bucket's (rolling a killed push forward first when holding `lease`)."""
        sync = Sync()
        if lease is not None:
            sync.rolled_forward = self.roll_forward(scope)
        listed = {o.rel: o for prefix in scope.folders for o in self.bucket.list(prefix) if _plain(o.rel)}
        for rel in scope.files:
            if (obj := self.bucket.head(rel)) is not None:
                listed[rel] = obj
        known = {rel: v for rel, v in self._known(scope).items() if rel not in scope.state}
        here = {rel: _file_id(self.root.root / rel) for rel in self._local_files(scope)}
        for rel, obj in sorted(listed.items()):
            mine = known.get(rel)
            fid = here.get(rel)
            if mine is not None and mine[0] == obj.etag and fid == mine[1]:
                continue
            path = self.root.root / rel
            if fid is not None and _md5(path) == obj.etag:  # already the same bytes (a copy seeded by hand)
                self._remember(rel, obj.etag, fid)
                continue
            etag = self.bucket.download(rel, path)
            if etag is None:  # deleted since the listing: as if never listed
                path.unlink(missing_ok=True)
                self._forget(rel)
                continue
            self._remember(rel, etag, _file_id(path) or (0, 0, 0))
            sync.downloaded += 1
            sync.bytes += obj.size
        for rel in sorted(set(here) - set(listed)):
            (self.root.root / rel).unlink(missing_ok=True)
            self._forget(rel)
            sync.removed += 1
        for rel in set(known) - set(listed):
            self._forget(rel)
        return sync

    def pull_source(self, source: str, lease: Lease) -> Sync:
        """A source's files and state as the bucket has them (the caller holds the source's local lock and `lease`)."""
        scope = Scope.source(source)
        sync = self.pull(scope, lease)
        rows_rel, boiler_rel = _state_files(source)
        rows = self._fetch_state(rows_rel, sync)
        try:
            _import_rows(self.root, source, rows)
        except sqlite3.DatabaseError as exc:
            raise WarehouseError(
                f"{self.bucket.url.url}/{rows_rel} cannot be read ({exc}); the source's state in the bucket is"
                " damaged: restore the object from a version, or delete it to start the source afresh"
            ) from None
        boiler = self._fetch_state(boiler_rel, sync)
        local_boiler = self.root.state / "boilerplate" / f"{source}.sqlite"
        for suffix in ("", "-wal", "-shm"):
            local_boiler.with_name(local_boiler.name + suffix).unlink(missing_ok=True)
        if boiler is not None:
            local_boiler.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(boiler, local_boiler)
        if rows is not None:
            sync.downloaded += self._fetch_bodies(source, sync)
        return sync

    def _fetch_state(self, rel: str, sync: Sync) -> Path | None:
        """The bucket's state file `rel` in this copy's inbox (downloaded when its ETag changed), None if absent."""
        path = self.meta / "in" / rel
        obj = self.bucket.head(rel)
        if obj is None:
            path.unlink(missing_ok=True)
            self._forget(rel)
            return None
        mine = self._known(Scope("one", (), (), (rel,))).get(rel)
        if mine is None or mine[0] != obj.etag or _file_id(path) != mine[1]:
            etag = self.bucket.download(rel, path)
            if etag is None:
                return None
            self._remember(rel, etag, _file_id(path) or (0, 0, 0))
            sync.downloaded += 1
            sync.bytes += obj.size
        return path

    def _fetch_bodies(self, source: str, sync: Sync) -> int:
        """Download the fetched bodies the source's rows name that this copy lacks."""
        got = 0
        with RawStore(self.root) as raw:
            for path in self._bodies(raw, source):
                if path.exists():
                    continue
                rel = path.relative_to(self.root.root).as_posix()
                if self.bucket.download(rel, path) is not None:
                    got += 1
                    sync.bytes += path.stat().st_size
        return got

    # -- push ------------------------------------------------------------------------

    def push_source(self, source: str, lease: Lease) -> Sync:
        """Publish the source's local changes to the bucket as one commit (the caller holds `lease`)."""
        scope = Scope.source(source)
        out = self.meta / "out" / f"source={source}"
        out.mkdir(parents=True, exist_ok=True)
        rows_rel, boiler_rel = _state_files(source)
        # Under the source's journal lock, no local commit is half applied while the
        # files and the state rows are read.
        with locked(self.root.journal_lock(source)):
            generated = {rows_rel: _export_rows(self.root, source, out / "rows.sqlite")}
            boiler = _backup(self.root.state / "boilerplate" / f"{source}.sqlite", out / "boilerplate.sqlite")
            if boiler is not None:
                generated[boiler_rel] = boiler
            bodies = self._unsent_bodies(source)
            return self._push(scope, lease, generated, bodies)

    def push_corpus(self, scope: Scope, lease: Lease) -> Sync:
        """Publish the corpus scope's local changes (clusters, report) to the bucket as one commit."""
        return self._push(scope, lease, {}, [])

    def _unsent_bodies(self, source: str) -> list[str]:
        if not (self.root.root / "raw" / "index.sqlite").exists():
            return []
        sent = set(self._known(Scope("bodies", ("raw/objects/",))))
        with RawStore(self.root, read_only=True) as raw:
            rels = (p.relative_to(self.root.root).as_posix() for p in self._bodies(raw, source))
            return [rel for rel in rels if rel not in sent]

    def _bodies(self, raw: RawStore, source: str) -> list[Path]:
        """Where the fetched bodies the source's fetch records name live (a malformed digest names none)."""
        index = self.root.root / "raw" / "index.sqlite"
        db = sqlite3.connect(f"file:{index}?mode=ro", uri=True)
        try:
            query = "SELECT DISTINCT raw_sha256 FROM fetches WHERE source = ? AND raw_sha256 IS NOT NULL"
            shas = [r[0] for r in db.execute(query, (source,))]
        finally:
            db.close()
        paths = []
        for sha in shas:
            with contextlib.suppress(ValueError, TypeError):
                paths.append(raw.path(sha))
        return paths

    def _push(self, scope: Scope, lease: Lease, generated: dict[str, Path], bodies: Sequence[str]) -> Sync:
        sync = Sync()
        known = self._known(scope)
        local = {rel: self.root.root / rel for rel in self._local_files(scope)}
        local.update(generated)
        changed: list[tuple[str, Path, FileId, str]] = []
        for rel, path in sorted(local.items()):
            fid = _file_id(path)
            if fid is None:
                continue
            mine = known.get(rel)
            if mine is not None and mine[1] == fid and rel not in generated:
                continue
            md5 = _md5(path)
            if mine is not None and mine[0] == md5:
                self._remember(rel, md5, fid)
                continue
            changed.append((rel, path, fid, md5))
        deleted = sorted(set(known) - set(local))
        for rel in bodies:  # immutable and content-addressed: put once, before any journal names rows using it
            path = self.root.root / rel
            if path.exists():
                self.bucket.put(rel, path.read_bytes(), if_absent=True)
                self._remember(rel, "", _file_id(path) or (0, 0, 0))
                sync.uploaded += 1
        if not changed and not deleted:
            return sync
        push = uuid.uuid4().hex
        staged: list[dict[str, str | None]] = []
        for n, (rel, path, _fid, _md5sum) in enumerate(changed):
            key = f".staging/{scope.name}/{push}/{n:06d}"
            self.bucket.upload(path, key)
            staged.append({"target": rel, "staged": key})
            sync.bytes += path.stat().st_size
        staged.extend({"target": rel, "staged": None} for rel in deleted)
        lease.check()
        body = json.dumps({"format": _JOURNAL_FORMAT, "scope": scope.name, "push": push, "changes": staged}).encode()
        if self.bucket.put(_journal(scope), body, if_absent=True) is None:
            raise JournalError(
                f"{self.bucket.url.url}/{_journal(scope)} exists: a push of {scope.name} is pending; "
                "the next command that takes the lease rolls it forward"
            )
        etags = self._apply(scope, staged)
        for rel, _path, fid, md5 in changed:
            self._remember(rel, etags.get(rel) or md5, fid)
        for rel in deleted:
            self._forget(rel)
        sync.uploaded += len(changed)
        sync.removed += len(deleted)
        return sync

    def roll_forward(self, scope: Scope) -> int:
        """Apply the journal a killed push of `scope` left in the bucket, and remove stray staged objects."""
        got = self.bucket.read(_journal(scope))
        applied = 0
        if got is not None:
            try:
                body = json.loads(got[0])
                if body.get("format") != _JOURNAL_FORMAT or body.get("scope") != scope.name:
                    raise ValueError(f"format {body.get('format')!r} of scope {body.get('scope')!r}")
                changes = [{"target": str(c["target"]), "staged": c["staged"]} for c in body["changes"]]
            except (ValueError, KeyError, TypeError) as exc:
                raise JournalError(f"{self.bucket.url.url}/{_journal(scope)} cannot be read: {exc}") from None
            for c in changes:
                staged = c["staged"]
                if (
                    not scope.holds(c["target"])
                    or not _plain(c["target"])
                    or (staged is not None and not str(staged).startswith(f".staging/{scope.name}/"))
                ):
                    raise JournalError(f"{self.bucket.url.url}/{_journal(scope)} is refused: {c} is outside its scope")
            self._apply(scope, changes)
            applied = len(changes)
        for obj in list(self.bucket.list(f".staging/{scope.name}/")):
            self.bucket.delete(obj.rel)
        return applied

    def _apply(self, scope: Scope, changes: Iterable[dict[str, str | None]]) -> dict[str, str]:
        """Copy each staged object onto its target, delete the deleted, then drop the journal and the staged objects."""
        etags: dict[str, str] = {}
        todo = list(changes)
        for c in todo:
            target, staged = str(c["target"]), c["staged"]
            if staged is None:
                self.bucket.delete(target)
            elif (etag := self.bucket.copy(str(staged), target)) is not None:
                etags[target] = etag
        self.bucket.delete(_journal(scope))
        for c in todo:
            if c["staged"] is not None:
                self.bucket.delete(str(c["staged"]))
        return etags

    # -- local files -----------------------------------------------------------------

    def _local_files(self, scope: Scope) -> Iterator[str]:
        """The scope's files in the working copy (not the temporary files being written)."""
        base = self.root.root
        for folder in scope.folders:
            top = base / folder
            if not top.is_dir():
                continue
            for dirpath, _dirs, names in os.walk(top):
                for name in names:
                    if not name.startswith("."):
                        yield (Path(dirpath) / name).relative_to(base).as_posix()
        for rel in scope.files:
            if (base / rel).is_file():
                yield rel


def _plain(rel: str) -> bool:
    """Whether an object's path is one a working copy can hold: no '..', '.', empty or hidden segment, no NUL.

    Keys are the bucket's, and anyone who can write to it chooses them: a key such as
    `articles/source=x/../../../etc/x` must never become a path outside the copy.
    """
    parts = rel.split("/")
    return "\0" not in rel and all(p and p not in (".", "..") and not p.startswith(".") for p in parts)


def _after(prefix: str) -> str:
    """The least string after every string starting with `prefix` (a range on the key finds them by index)."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


def _journal(scope: Scope) -> str:
    return f".journal/{scope.name}.json"


def _export_rows(root: DataRoot, source: str, out: Path) -> Path:
    """Write the source's rows of every state table to a fresh SQLite file at `out`."""
    tmp = out.with_name(out.name + ".tmp")
    tmp.unlink(missing_ok=True)
    _ensure_state(root)
    db = sqlite3.connect(tmp, isolation_level=None)
    try:
        for n, (rel, tables) in enumerate(_SOURCE_TABLES.items()):
            db.execute(f"ATTACH DATABASE ? AS s{n}", (str(root.root / rel),))
            for table in tables:
                db.execute(f"CREATE TABLE {table} AS SELECT * FROM s{n}.{table} WHERE {_OWN_ROWS}", (source,))
            db.execute(f"DETACH DATABASE s{n}")
    finally:
        db.close()
    os.replace(tmp, out)
    return out


def _import_rows(root: DataRoot, source: str, rows: Path | None) -> None:
    """Replace the source's rows of every state table by those of `rows` (None: the source has none)."""
    _ensure_state(root)
    for rel, tables in _SOURCE_TABLES.items():
        db = sqlite3.connect(root.root / rel, timeout=60, isolation_level=None)
        try:
            if rows is not None:
                db.execute("ATTACH DATABASE ? AS x", (str(rows),))
            db.execute("BEGIN IMMEDIATE")
            for table in tables:
                db.execute(f"DELETE FROM main.{table} WHERE {_OWN_ROWS}", (source,))
                if rows is None:
                    continue
                mine = [r[1] for r in db.execute(f"PRAGMA main.table_info({table})")]
                theirs = {r[1] for r in db.execute(f"PRAGMA x.table_info({table})")}
                if "source" not in theirs:
                    continue  # not a table of source rows (an older or a foreign file): nothing to take
                cols = ", ".join(c for c in mine if c in theirs)
                # Rows of another source in the file would be someone else's state: only the source's are taken.
                db.execute(
                    f"INSERT INTO main.{table} ({cols}) SELECT {cols} FROM x.{table} WHERE {_OWN_ROWS}", (source,)
                )
            db.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                db.execute("ROLLBACK")
            raise
        finally:
            db.close()


def _ensure_state(root: DataRoot) -> None:
    """Create the state and fetch databases with their schemas if this copy has none yet."""
    root.state.mkdir(parents=True, exist_ok=True)
    StateStore(root.state).close()
    RawStore(root).close()


def _backup(db_path: Path, out: Path) -> Path | None:
    """A consistent copy of the SQLite database at `db_path` (open elsewhere or not) at `out`; None if there is none."""
    if not db_path.exists():
        out.unlink(missing_ok=True)
        return None
    tmp = out.with_name(out.name + ".tmp")
    tmp.unlink(missing_ok=True)
    src = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    dst = sqlite3.connect(tmp)
    try:
        src.backup(dst)
    finally:
        dst.close()
        src.close()
    os.replace(tmp, out)
    return out
