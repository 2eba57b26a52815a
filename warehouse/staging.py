"""Who owns the work in progress under `.staging/`, and removing what dead processes left there.

Staging holds spill folders of runs (one subfolder per source), staged commits (one
folder per source, see `warehouse.journal`), and staged partition, quarantine, ledger
and raw-store files. A run's spill subfolder and a commit's folder carry an owner file
naming the process that will use them: its host, pid and start time (so that a pid
the system reused is not taken for the owner). What a dead owner left can go at once,
whatever its age; what has no owner file, or one from another host (a data root on a
shared file system), goes by age only.
"""

from __future__ import annotations

import contextlib
import functools
import json
import multiprocessing
import os
import shutil
import socket
import time
import uuid
from pathlib import Path

from warehouse.layout import JOURNAL_FILE, DataRoot, validate_source

__all__ = ["OWNER_FILE", "clean_source_staging", "clean_stale_staging", "mark_owner", "owner_alive"]

OWNER_FILE = ".owner"


def _started(pid: int) -> str | None:
    """When process `pid` started (Linux: clock ticks since boot; elsewhere ""), None when it is not running.

    A zombie counts as not running: it has exited, and only its exit status waits to be collected.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except FileNotFoundError:
        if Path("/proc/self/stat").exists():
            return None
        try:  # no /proc (not Linux): existence only, so a reused pid passes for the owner and keeps its folder
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass
        return ""
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may hold spaces: fields are counted after its ")".
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] in ("Z", "X"):
        return None
    return fields[19]  # field 22, starttime


@functools.cache
def _owner(pid: int) -> str:
    """The owner file's text for the run whose process is `pid` (cached per process: /proc is read once)."""
    return json.dumps({"host": socket.gethostname(), "pid": pid, "started": _started(pid)})


def _run_process() -> int:
    """The process a run belongs to: in a worker of the run's pool, the process that started the pool."""
    parent = multiprocessing.parent_process()
    return parent.pid if parent is not None and parent.pid is not None else os.getpid()


def mark_owner(folder: Path) -> None:
    """Create `folder` if missing and record the current run's process as its owner, unless it has one."""
    marker = folder / OWNER_FILE
    if marker.exists():
        return
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f"{OWNER_FILE}.{os.getpid()}.{uuid.uuid4().hex}.tmp"
    tmp.write_text(_owner(_run_process()), encoding="utf-8")
    os.replace(tmp, marker)  # whole or absent: a reader never sees half an owner


def owner_alive(folder: Path) -> bool | None:
    """Whether the process owning `folder` runs: None when that cannot be told (no owner file, another host)."""
    try:
        owner = json.loads((folder / OWNER_FILE).read_text(encoding="utf-8"))
        host, pid, started = owner["host"], int(owner["pid"]), owner["started"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if host != socket.gethostname():
        return None
    now = _started(pid)
    return now is not None and (started is None or now == started)


def _remove(path: Path) -> int:
    """Remove a file or a folder tree; 1 if something was there."""
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    except FileNotFoundError:  # another clean-up got there first
        return 0
    return 1


def _pid_of_staged(rest: str) -> int | None:
    """The writer's pid in a staged partition file's name after `<source>.`: `<period>.<pid>.<uuid>.parquet`."""
    parts = rest.split(".")
    return int(parts[1]) if len(parts) == 4 and parts[1].isdigit() else None


def clean_source_staging(root: DataRoot, source: str) -> int:
    """Remove what dead processes staged for `source`, whatever its age; returns how many entries went.

    That is the source's spill folder in each run's folder (the run's folder too once
    empty), its commit folders, and its staged partition files. Entries whose owner
    runs (this process, or another one on this host) are kept. Call it holding the
    source's lock (`DataRoot.source_lock`) and before the run stages anything, so that
    no live writer of the source can be using an entry without an owner file. Commit
    folders stay while the source has a journal: `warehouse.journal.recover` rolls
    that forward first (and then calls this).
    """
    validate_source(source)
    removed = 0
    if root.spill_runs.is_dir():
        for run in os.scandir(root.spill_runs):
            folder = Path(run.path) / source
            if run.is_dir(follow_symlinks=False) and folder.is_dir() and owner_alive(folder) is not True:
                removed += _remove(folder)
                with contextlib.suppress(OSError):  # not empty: other sources' spills, or a live run's
                    os.rmdir(run.path)
    commits = root.commit_staging(source)
    if commits.is_dir() and not root.journal(source).exists():
        for entry in os.scandir(commits):
            if entry.is_dir(follow_symlinks=False) and owner_alive(Path(entry.path)) is not True:
                removed += _remove(Path(entry.path))
    if root.staging.is_dir():
        prefix = f"{source}."
        for entry in os.scandir(root.staging):
            if entry.name.startswith(prefix) and entry.name.endswith(".parquet") and entry.is_file():
                pid = _pid_of_staged(entry.name[len(prefix) :])
                if pid is None or _started(pid) is None:
                    removed += _remove(Path(entry.path))
    return removed


def clean_stale_staging(root: DataRoot, max_age_s: float = 86_400.0) -> int:
    """Delete what dead processes left in staging more than `max_age_s` ago; returns how many entries.

    That is spill folders of runs (and of batches normalised ahead), commit folders of
    sources with no journal, and staged files: partition, quarantine and ledger Parquet
    files in `.staging/`, raw-store objects in `.staging/raw/`. An entry whose owner
    file names a live process stays whatever its age. Otherwise a live writer keeps
    writing to its staged file and a live run publishes or removes its spills when it
    ends, so the age threshold must only exceed the longest run; a day is far beyond
    any run seen. A source's own leftovers can go sooner: `clean_source_staging`
    (through `warehouse.journal.recover`) removes them whatever their age.
    """
    cutoff = time.time() - max_age_s
    removed = 0
    if root.spill_runs.is_dir():
        for entry in os.scandir(root.spill_runs):
            if entry.is_dir(follow_symlinks=False) and entry.stat().st_mtime < cutoff:
                run = Path(entry.path)
                with contextlib.suppress(FileNotFoundError):  # another clean-up got there first
                    if not any(owner_alive(sub) for sub in run.iterdir() if sub.is_dir()):
                        removed += _remove(run)
    if root.commits.is_dir():
        for source in os.scandir(root.commits):
            folder = Path(source.path)
            if not source.is_dir(follow_symlinks=False) or (folder / JOURNAL_FILE).exists():
                continue
            for entry in os.scandir(folder):
                commit = Path(entry.path)
                old = entry.is_dir(follow_symlinks=False) and entry.stat().st_mtime < cutoff
                if old and owner_alive(commit) is not True:
                    removed += _remove(commit)
    for folder in (root.staging, root.raw_staging):
        if not folder.is_dir():
            continue
        for entry in os.scandir(folder):
            if entry.is_file(follow_symlinks=False) and entry.stat().st_mtime < cutoff:
                removed += _remove(Path(entry.path))
    return removed
