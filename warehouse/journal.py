"""Multi-file commits: the files a run changes in a source become visible together, or not at all.

Each partition file is replaced by its own atomic rename, so a run that changes several
(an article that moved from March to April is written into April and deleted from
March) could be killed between two renames and leave the article in both months. A
commit closes that gap with an intent journal (a redo log):

1. Stage: each new file is written whole and fsynced in the commit's folder under
   `.staging/commits/<source>/` (`upsert_partition(..., stage=commit)` does this in any
   process, e.g. a pool worker); nothing under the dataset changes.
2. Publish (`publish`): the renames (staged file -> final path) and deletions are written
   to `journal.json` beside the commits, fsynced, and renamed into place; the folder
   is fsynced. That rename is the commit point.
3. The renames and deletions are applied, the folders they touched fsynced, and the
   commit's folder and the journal removed.

A process killed before the commit point leaves staged files only, which `recover`
removes: the dataset is as before. Killed after it, `recover` applies the journal
again, idempotently (a staged file already moved is skipped, a deletion already done is
done): the dataset is as after. Every command therefore calls `recover` for a source
before it reads or writes the source's data, and readers call `settle` (`newsflow
query` does), which applies a leftover journal without touching staging. Publishes
(and recoveries) of one source are serialised by its journal lock, so a source has at
most one journal, and one found while holding that lock belongs to a dead process.

Renames are atomic one by one, not as a set: a reader that lists and opens files during
the milliseconds a publish applies its renames can still see some new and some old.
What starts after a publish, or after a recovery, sees the whole commit.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import shutil
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from types import TracebackType
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from warehouse.atomic import fsync_dir, locked
from warehouse.errors import CommitConflict, JournalError, LockTimeout
from warehouse.layout import JOURNAL_FILE, PARTITION_FILE, DataRoot, Partition, validate_source
from warehouse.staging import clean_source_staging, mark_owner
from warehouse.state import FileState, StateStore, WarcProgress, progress_source

__all__ = [
    "Change",
    "Commit",
    "Fault",
    "FileId",
    "Recovery",
    "file_id",
    "pending",
    "publish",
    "recover",
    "settle",
]

# What identifies one version of a file: inode, size and modification time (ns). A
# replaced file has another inode; a reused inode number has another mtime.
FileId = tuple[int, int, int]

# Fault injection for tests: called with the name of each step as it is reached
# ("staged", "journal-written", "journal-placed", "applied <target>", "synced",
# "cleaned", "done"); raising (or dying) there simulates a crash at that point.
Fault = Callable[[str], None]

_FORMAT = 1
_STATE_FORMAT = 2
_STATE_SLICE = 2000  # state rows per line of a staged state update


def _no_fault(step: str) -> None:
    """The default fault hook: no fault."""


def file_id(path: Path) -> FileId | None:
    """The identity of the file at `path` now, None when there is none."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


@dataclass(frozen=True, slots=True)
class Change:
    """One file of a commit: `staged` replaces `target`, or with `staged` None, `target` is deleted.

    Paths are relative to the data root. `base` is the target the change was made
    from (None: there was none); `publish` refuses the commit if the target is another
    file by then, which would otherwise be lost.
    """

    target: str
    staged: str | None
    base: FileId | None


@dataclass(frozen=True, slots=True)
class Commit:
    """The staging folder of one commit of a source (picklable: pool workers stage into it).

    Stage every file of the commit, then `publish` their changes once; the folder goes
    with the publish. As a context manager, what is still staged when the block ends
    (nothing was published, or it failed before the commit point) is discarded.
    """

    root: DataRoot
    source: str
    id: str

    @classmethod
    def begin(cls, root: DataRoot, source: str) -> Commit:
        """A new, empty commit of `source`, owned by the current run's process."""
        commit = cls(root, validate_source(source), uuid.uuid4().hex)
        mark_owner(commit.folder)
        return commit

    @property
    def folder(self) -> Path:
        """Where this commit's files are staged."""
        return self.root.commit_staging(self.source) / self.id

    def staged_path(self, stem: str, suffix: str = ".parquet") -> Path:
        """A fresh path in the commit's folder for a file being staged."""
        return self.folder / f"{stem}.{uuid.uuid4().hex}{suffix}"

    def change(self, target: Path, staged: Path | None, base: FileId | None) -> Change:
        """The change putting `staged` (a file of this commit) at `target`, or deleting `target` when None."""
        rel = target.relative_to(self.root.root).as_posix()
        return Change(rel, None if staged is None else staged.relative_to(self.root.root).as_posix(), base)

    def stage_table(self, table: pa.Table, target: Path, **options: Any) -> Change:
        """Stage `table` as the Parquet file to put at `target` (fsynced); `options` go to `pq.write_table`."""
        base = file_id(target)
        staged = self.staged_path(target.stem)
        pq.write_table(table, str(staged), **options)
        _fsync_file(staged)
        return self.change(target, staged, base)

    def stage_state(
        self, save: Iterable[FileState], delete: Sequence[str] = (), progress: Sequence[WarcProgress] = ()
    ) -> str:
        """Stage the state rows the commit saves and the paths it forgets (fsynced); publish them with `state=`."""
        staged = self.staged_path("state", ".jsonl")
        staged.parent.mkdir(parents=True, exist_ok=True)
        # JSON lines, a header and then the rows a slice per line, so neither staging nor
        # applying holds a whole run's rows as one text (100,000 rows are ~30 MB of JSON).
        with open(staged, "wb") as fh:
            head = {"format": _STATE_FORMAT, "delete": list(delete), "progress": [list(p) for p in progress]}
            fh.write(json.dumps(head).encode() + b"\n")
            rows = iter(save)
            while chunk := list(itertools.islice(rows, _STATE_SLICE)):
                fh.write(json.dumps(chunk).encode() + b"\n")
            fh.flush()
            os.fsync(fh.fileno())
        return staged.relative_to(self.root.root).as_posix()

    def discard(self) -> None:
        """Remove the commit's folder, unless a journal of the source may still need its files."""
        with locked(self.root.journal_lock(self.source)):
            if not self.root.journal(self.source).exists():  # else `recover` decides, after rolling it forward
                shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> Commit:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.folder.exists():
            self.discard()


@dataclass(frozen=True, slots=True)
class Recovery:
    """What `recover` did for a source."""

    rolled_forward: int  # files a killed publish's journal changed (0: no journal was left)
    removed: int  # staging entries of dead runs removed


def publish(
    root: DataRoot,
    source: str,
    changes: Iterable[Change],
    *,
    state: str | None = None,
    lock_timeout: float = 600.0,
    fault: Fault | None = None,
) -> int:
    """Make `changes` (files staged by commits of `source`) visible as one; returns how many files changed.

    With `state` (what `Commit.stage_state` staged), the state database takes the
    commit's rows in the same commit: a publish killed after its commit point is rolled
    forward with them, so the state never tells of partitions other than the data's.
    Raises `CommitConflict` (nothing changed) when a target is no longer the file its
    change was made from. Holds the source's journal lock and the partition locks of
    the targets meanwhile; a journal a killed publish left is rolled forward first.
    """
    hook = fault or _no_fault
    todo = list(changes)
    _check(root, source, todo)
    if state is not None and (problem := _path_problem(root, source, None, state)) is not None:
        raise ValueError(problem)
    with locked(root.journal_lock(source), timeout=lock_timeout):
        _roll_forward(root, source, _no_fault, lock_timeout)
        if not todo and state is None:
            return 0
        with _partition_locks(root, todo, lock_timeout):
            moved = [c.target for c in todo if file_id(root.root / c.target) != c.base]
            if moved:
                raise CommitConflict(
                    f"{len(moved)} file(s) of {source} changed since the commit staged them "
                    f"(first: {moved[0]}); stage them again from the current files"
                )
            staged = [root.root / c.staged for c in todo if c.staged is not None]
            if state is not None:
                staged.append(root.root / state)
            for path in staged:
                _fsync_file(path)  # also proves it is there: a journal must not name a missing file
            for folder in sorted({p.parent for p in staged}):
                fsync_dir(folder)
            hook("staged")
            _write_journal(root, source, todo, state, hook)
            _apply(root, source, todo, state, hook)
    return len(todo)


def recover(root: DataRoot, source: str, *, lock_timeout: float = 600.0, fault: Fault | None = None) -> Recovery:
    """Finish what a killed command left for `source`: roll its journal forward, remove dead runs' staging.

    Call it holding the source's lock (`DataRoot.source_lock`), before the command reads
    the source's data or stages anything for it. Idempotent, and cheap when nothing was
    left (a few directory lookups).
    """
    validate_source(source)
    with locked(root.journal_lock(source), timeout=lock_timeout):
        applied = _roll_forward(root, source, fault or _no_fault, lock_timeout)
    return Recovery(applied, clean_source_staging(root, source))


def pending(root: DataRoot) -> list[str]:
    """Sources with a journal left (a publish in progress or killed); looks only, writes nothing."""
    if not root.commits.is_dir():
        return []
    return sorted(e.name for e in os.scandir(root.commits) if (Path(e.path) / JOURNAL_FILE).exists())


def settle(root: DataRoot, *, lock_timeout: float = 30.0) -> list[str]:
    """Roll forward the journals killed commands left, for readers; returns the sources it settled.

    Safe beside running commands (it takes each journal's lock and touches no staging)
    and one directory lookup when nothing is pending. A journal it cannot apply now
    (the lock held past `lock_timeout`, a read-only data root, an unreadable journal)
    is left for the source's next command, whose `recover` applies it or says why not.
    """
    settled = []
    for source in pending(root):
        try:
            with locked(root.journal_lock(source), timeout=lock_timeout):
                if _roll_forward(root, source, _no_fault, lock_timeout):
                    settled.append(source)
        except (LockTimeout, JournalError, OSError):
            continue
    return settled


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as fh:
        os.fsync(fh.fileno())


def _check(root: DataRoot, source: str, changes: Sequence[Change]) -> None:
    """Raise ValueError unless every change stays within `source`'s files and staging, each target once."""
    for c in changes:
        problem = _path_problem(root, source, c.target, c.staged)
        if problem is not None:
            raise ValueError(problem)
    targets = [c.target for c in changes]
    if len(set(targets)) != len(targets):
        raise ValueError(f"a commit of {source} changes a file twice")


def _path_problem(root: DataRoot, source: str, target: str | None, staged: str | None) -> str | None:
    """What is wrong with a change's paths, None when both are where a commit of `source` may write."""
    dataset = {
        root.articles.name,
        root.article_versions.name,
        root.quarantine.name,
        root.quarantine_current.name,
        root.coverage.name,
        root.runs.name,
    }
    t = PurePosixPath(target).parts if target is not None else ("articles", f"source={source}", "x")
    if len(t) < 3 or t[0] not in dataset or t[1] != f"source={source}" or not _plain(t):
        return f"{target!r} is not a file of source {source}'s dataset"
    if staged is not None:
        home = root.commit_staging(source).relative_to(root.root).parts
        s = PurePosixPath(staged).parts
        if len(s) != len(home) + 2 or s[: len(home)] != home or not _plain(s):
            return f"{staged!r} is not a file staged by a commit of source {source}"
    return None


def _plain(parts: tuple[str, ...]) -> bool:
    return all(p not in ("", ".", "..") and "/" not in p and "\0" not in p for p in parts)


def _partition_of(target: str) -> Partition | None:
    """The partition whose file `target` is (`articles/source=S/year=Y/month=M/part-0.parquet`), else None."""
    parts = PurePosixPath(target).parts
    if len(parts) != 5 or parts[4] != PARTITION_FILE:
        return None
    try:
        year, month = int(parts[2].removeprefix("year=")), int(parts[3].removeprefix("month="))
        return Partition(parts[1].removeprefix("source="), year, month)
    except ValueError:
        return None


@contextlib.contextmanager
def _partition_locks(root: DataRoot, changes: Sequence[Change], timeout: float) -> Iterator[None]:
    """Hold the partition locks of the changed partition files (in one order, so two holders never deadlock)."""
    partitions = sorted({p for c in changes if (p := _partition_of(c.target)) is not None})
    with contextlib.ExitStack() as held:
        for part in partitions:
            held.enter_context(locked(root.lock_file(part), timeout=timeout))
        yield


def _write_journal(root: DataRoot, source: str, changes: Sequence[Change], state: str | None, hook: Fault) -> None:
    """Write the journal whole and fsynced under a temporary name, then rename it into place (the commit point)."""
    path = root.journal(source)
    tmp = path.with_name(f"{JOURNAL_FILE}.{os.getpid()}.{uuid.uuid4().hex}.tmp")
    body = {
        "format": _FORMAT,
        "source": source,
        "changes": [{"target": c.target, "staged": c.staged} for c in changes],
        "state": state,
    }
    with open(tmp, "wb") as fh:
        fh.write(json.dumps(body, indent=1).encode())
        fh.flush()
        os.fsync(fh.fileno())
    hook("journal-written")
    os.replace(tmp, path)
    fsync_dir(path.parent)
    hook("journal-placed")


def _read_journal(root: DataRoot, source: str, raw: bytes) -> tuple[list[Change], str | None]:
    """The changes and state update a journal lists, checked like a publish's (never trusted to point elsewhere)."""
    try:
        body = json.loads(raw)
        if body["format"] != _FORMAT or body["source"] != source:
            raise ValueError(f"format {body['format']!r} of source {body['source']!r}")
        changes = [
            Change(str(c["target"]), None if c["staged"] is None else str(c["staged"]), None) for c in body["changes"]
        ]
        state = body.get("state")
        if state is not None and not isinstance(state, str):
            raise ValueError(f"state {state!r}")
    except (ValueError, KeyError, TypeError) as exc:
        raise JournalError(f"the journal {root.journal(source)} cannot be read: {exc}") from None
    for c in changes:
        if (problem := _path_problem(root, source, c.target, c.staged)) is not None:
            raise JournalError(f"the journal {root.journal(source)} is refused: {problem}")
    if state is not None and (problem := _path_problem(root, source, None, state)) is not None:
        raise JournalError(f"the journal {root.journal(source)} is refused: {problem}")
    return changes, state


def _roll_forward(root: DataRoot, source: str, hook: Fault, lock_timeout: float) -> int:
    """Apply the journal a killed publish left, if any (the caller holds the journal lock); returns its changes."""
    folder = root.commit_staging(source)
    if not folder.is_dir():
        return 0
    for entry in os.scandir(folder):  # journals never renamed into place: their publish never committed
        if entry.name.startswith(f"{JOURNAL_FILE}.") and entry.name.endswith(".tmp"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(entry.path)
    try:
        raw = root.journal(source).read_bytes()
    except FileNotFoundError:
        return 0
    changes, state = _read_journal(root, source, raw)
    with _partition_locks(root, changes, lock_timeout):
        _apply(root, source, changes, state, hook)
    return len(changes)


def _apply(root: DataRoot, source: str, changes: Sequence[Change], state: str | None, hook: Fault) -> None:
    """Apply a committed journal's changes and state update, sync, then remove the commits' folders and the journal.

    Idempotent, so a recovery can run it again from any point: a staged file that is
    gone was moved by an earlier attempt, a target already deleted stays deleted, and
    the state rows are saved (replaced) and forgotten again.
    """
    for c in changes:
        target = root.root / c.target
        if c.staged is None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(target)
        else:
            staged = root.root / c.staged
            if staged.exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(staged, target)
        hook(f"applied {c.target}")
    for folder in _folders_to_sync(root, [root.root / c.target for c in changes]):
        fsync_dir(folder)
    hook("synced")
    if state is not None and (root.root / state).exists():  # gone: applied, and its folder cleaned, before
        _apply_state(root, source, root.root / state)
        hook("state")
    staged_in = [c.staged for c in changes if c.staged is not None] + ([state] if state is not None else [])
    for folder in sorted({(root.root / p).parent for p in staged_in}):
        shutil.rmtree(folder, ignore_errors=True)
    hook("cleaned")
    journal = root.journal(source)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(journal)
    fsync_dir(journal.parent)
    hook("done")


def _apply_state(root: DataRoot, source: str, staged: Path) -> None:
    """Save and forget the state rows a commit staged (its source's only), reading them a slice at a time."""

    def checked(rows: Iterable[list[Any]]) -> Iterator[FileState]:
        for row in rows:
            state = FileState(*row)
            if state.source != source:
                raise JournalError(f"the state update {staged} holds rows of another source than {source}")
            yield state

    with open(staged, "rb") as fh, StateStore(root.state) as store:
        head = json.loads(fh.readline())
        if "save" in head:  # a whole-object update, as staged before JSON lines
            store.save(checked(head["save"]))
        elif head.get("format") == _STATE_FORMAT:
            store.save(checked(row for line in fh for row in json.loads(line)))
        else:
            raise JournalError(f"the state update {staged} has an unknown format")
        store.delete(source, [str(p) for p in head["delete"]])
        progress = [WarcProgress(*row) for row in head.get("progress", ())]
        if any(progress_source(p.source) != source for p in progress):
            raise JournalError(f"the state update {staged} holds progress of another source than {source}")
        store.save_progress(progress)


def _folders_to_sync(root: DataRoot, targets: Iterable[Path]) -> list[Path]:
    """The folders holding `targets` and their parents up to the data root (a new month folder is an entry too)."""
    folders: set[Path] = set()
    for target in targets:
        folder = target.parent
        while folder not in folders and (folder == root.root or root.root in folder.parents):
            folders.add(folder)
            folder = folder.parent
    return sorted(f for f in folders if f.is_dir())
