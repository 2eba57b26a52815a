"""Where a command's data root lives: a local folder, or a bucket worked on through a local working copy.

Commands take the same steps either way; with a bucket (`s3://bucket/prefix`) each step
is bracketed by the bucket's leases and syncs (see `warehouse.mirror`):

- `source(name)`: hold the source's lease, pull the source, run, push (also after a
  failure: what the run committed is whole and is kept, as on a local root);
- `corpus()`: hold the corpus lease around the steps that read every source and write
  the clusters and the report;
- `refresh()`: bring every source's dataset files up to the bucket's, for readers.

The working copy sits in `$NEWSFLOW_CACHE` (default `./.cache/newsflow`), under
`s3/<bucket>/<prefix>`. Leases last `$NEWSFLOW_LEASE_SECONDS` (default 60) without
renewal; a command waits at most `$NEWSFLOW_LEASE_WAIT` seconds (default 600) for one.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path

from pipeline.errors import UserError
from warehouse.atomic import locked
from warehouse.bucket import Bucket, BucketUrl, Lease, LeaseLost, is_bucket_url
from warehouse.errors import LockTimeout, WarehouseError
from warehouse.layout import REPORT_FILE, SOURCE_NAME, DataRoot
from warehouse.mirror import DATASETS, Scope, WorkingCopy

__all__ = ["BucketStorage", "LocalStorage", "Storage", "is_bucket_url", "open_storage"]

log = logging.getLogger("newsflow.storage")

Checkpoint = Callable[[], None]


def _noop() -> None:
    """Nothing to publish: a local data root is published by each commit."""


class LocalStorage:
    """A data root that is a local folder: every step is the commit itself."""

    def __init__(self, path: Path) -> None:
        self.root = DataRoot(path)
        self.location = str(path)

    @contextlib.contextmanager
    def source(self, name: str) -> Iterator[Checkpoint]:
        """Work on a source (the caller holds its local lock)."""
        yield _noop

    @contextlib.contextmanager
    def corpus(self) -> Iterator[None]:
        """Run the corpus-wide steps."""
        yield

    def refresh(self) -> DataRoot:
        """The data root, for readers."""
        return self.root


class BucketStorage:
    """A data root in a bucket, worked on through this machine's working copy."""

    def __init__(self, url: str, cache: Path | None = None, bucket: Bucket | None = None) -> None:
        try:
            self.url = BucketUrl.parse(url)
        except WarehouseError as exc:
            raise UserError(str(exc)) from None
        self.location = self.url.url
        base = cache or Path(os.environ.get("NEWSFLOW_CACHE") or ".cache/newsflow")
        self.root = DataRoot((base / "s3" / self.url.bucket / (self.url.prefix or "_")).resolve())
        self._bucket = bucket
        self.ttl = _seconds("NEWSFLOW_LEASE_SECONDS", 60.0)
        self.wait = _seconds("NEWSFLOW_LEASE_WAIT", 600.0)

    @property
    def bucket(self) -> Bucket:
        """The bucket's client (made on first use, so a process that never touches it needs no credentials)."""
        if self._bucket is None:
            self._bucket = Bucket(self.url)
        return self._bucket

    def check(self) -> None:
        """Raise a `UserError` saying why when the bucket cannot be listed (credentials, endpoint, name)."""
        try:
            self.bucket.check()
        except WarehouseError as exc:
            raise UserError(str(exc)) from None

    def _copy(self) -> WorkingCopy:
        self.root.root.mkdir(parents=True, exist_ok=True)
        return WorkingCopy(self.bucket, self.root.root)

    @contextlib.contextmanager
    def source(self, name: str) -> Iterator[Checkpoint]:
        """Hold the source's lease, pull it, yield a checkpoint (push now), push at the end (caller holds its lock)."""
        with self._copy() as copy, Lease(self.bucket, f"source-{name}", ttl=self.ttl, wait=self.wait) as lease:
            if lease.took_over is not None:
                log.warning("%s: took over the lease of a holder that stopped renewing it: %s", name, lease.took_over)
            pulled = copy.pull_source(name, lease)
            log.info("%s: pulled from %s: %s", name, self.location, pulled.line())

            def checkpoint() -> None:
                pushed = copy.push_source(name, lease)
                log.info("%s: pushed to %s: %s", name, self.location, pushed.line())

            try:
                yield checkpoint
            except LeaseLost:
                raise
            except BaseException:
                with contextlib.suppress(Exception):  # the run's own error is the one to report
                    checkpoint()
                raise
            checkpoint()

    @contextlib.contextmanager
    def corpus(self) -> Iterator[None]:
        """Hold the corpus lease with every source's articles current; push the clusters and the report after."""
        scope = Scope.corpus((REPORT_FILE,))
        with Lease(self.bucket, "corpus", ttl=self.ttl, wait=self.wait) as lease, self._copy() as copy:
            self._refresh(copy)
            copy.pull(scope, lease)
            yield
            copy.push_corpus(scope, lease)

    def refresh(self) -> DataRoot:
        """Bring every source's dataset files (and the corpus files) to the bucket's; the working copy's root.

        A source a command on this machine is working on (its local lock held) is left
        as it is: that command pushes it when it is done.
        """
        with self._copy() as copy:
            self._refresh(copy)
        return self.root

    def _refresh(self, copy: WorkingCopy) -> None:
        for source in self._sources():
            try:
                with locked(self.root.source_lock(source), timeout=0):
                    folders = tuple(f"{d}/source={source}/" for d in DATASETS)
                    copy.pull(Scope(f"read-{source}", folders), None)
            except LockTimeout:
                continue
        copy.pull(Scope("read-corpus", ("clusters/",), (REPORT_FILE,)), None)

    def _sources(self) -> list[str]:
        """The sources the bucket or the working copy has files of."""
        names: set[str] = set()
        for obj in self.bucket.list("state/source="):
            names.add(obj.rel.split("/")[1].removeprefix("source="))
        for obj in self.bucket.list("articles/source="):
            names.add(obj.rel.split("/")[1].removeprefix("source="))
        if self.root.articles.is_dir():
            names.update(p.name.removeprefix("source=") for p in self.root.articles.glob("source=*"))
        return sorted(n for n in names if SOURCE_NAME.fullmatch(n))


Storage = LocalStorage | BucketStorage


def open_storage(data: str | Path) -> Storage:
    """The storage a data root names: `s3://bucket/prefix`, else a local folder."""
    if isinstance(data, str) and is_bucket_url(data):
        return BucketStorage(data)
    return LocalStorage(Path(data))


def _seconds(variable: str, default: float) -> float:
    value = os.environ.get(variable)
    if not value:
        return default
    try:
        seconds = float(value)
    except ValueError:
        raise UserError(f"{variable}={value!r} is not a number of seconds") from None
    if seconds <= 0:
        raise UserError(f"{variable} must be more than 0 seconds")
    return seconds
