"""Atomic file replacement and inter-process partition locks."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from warehouse.errors import LockTimeout

__all__ = ["fsync_dir", "locked", "publish", "publish_table"]


def fsync_dir(path: Path) -> None:
    """Flush a directory entry so a rename inside it survives a crash."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def publish(staged: Path, target: Path) -> None:
    """Move a fully written, fsynced staged file into place atomically.

    `os.replace` is atomic on POSIX when both paths are on one file system, so a
    reader opens either the old file or the new one, never a partial one.
    """
    with open(staged, "rb") as fh:
        os.fsync(fh.fileno())
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(staged, target)
    fsync_dir(target.parent)


def publish_table(table: pa.Table, staging: Path, target: Path, kind: str, **options: Any) -> None:
    """Write `table` as Parquet at `target` atomically: staged in `staging` (named after `kind`), then published.

    `options` go to `pyarrow.parquet.write_table` (compression...).
    """
    staging.mkdir(parents=True, exist_ok=True)
    staged = staging / f"{kind}.{os.getpid()}.{uuid.uuid4().hex}.parquet"
    pq.write_table(table, str(staged), **options)
    publish(staged, target)


@contextlib.contextmanager
def locked(lock_path: Path, timeout: float = 600.0, poll: float = 0.05) -> Iterator[None]:
    """Hold an exclusive lock on `lock_path`, waiting at most `timeout` seconds.

    `flock` locks belong to the open file description, so the kernel releases them
    when the holder dies: a lock left by a killed process never blocks anyone.
    """
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
                if time.monotonic() >= deadline:
                    raise LockTimeout(f"{lock_path} is held by another writer (waited {timeout:.0f} s)") from exc
                time.sleep(poll)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
