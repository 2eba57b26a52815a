"""The quarantine: a log of every rejected input with its reason, and the inputs failing now.

The log (`quarantine/source=<s>/<run_id>.parquet`, view `quarantine_log`) keeps every
record of every run, so it says when an input failed and how often. The current table
(`quarantine_current/source=<s>/current.parquet`, view `quarantine`) holds each input
failing now once, with its latest record: an input a later run wrote, or read again
and rejected, leaves or replaces its row in the same commit as the run's data.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from warehouse.atomic import publish_table
from warehouse.journal import Change, Commit, FileId
from warehouse.layout import DataRoot, run_file_stem, validate_source
from warehouse.schema import arrow_schema, records_to_table

__all__ = [
    "QUARANTINE_SCHEMA",
    "QuarantineRecord",
    "current_file",
    "stage_current",
    "stage_quarantine",
    "write_quarantine",
]

CURRENT_FILE = "current.parquet"


@dataclass(frozen=True, slots=True)
class QuarantineRecord:
    """One input that did not become an article."""

    source: str = field(metadata={"doc": "Source name."})
    source_uri: str = field(metadata={"doc": "Where the input was read from."})
    raw_sha256: str | None = field(metadata={"doc": "SHA-256 of the raw bytes; null if they could not be read."})
    reason: str = field(metadata={"doc": "Reason code (see docs/schema.md): empty, binary, invalid_utf8, ..."})
    message: str = field(metadata={"doc": "Human-readable explanation."})
    run_id: str = field(metadata={"doc": "Run that quarantined the input."})
    quarantined_at: datetime = field(metadata={"doc": "When (UTC)."})
    input: str | None = field(
        default=None,
        metadata={
            "doc": "The input's key in the run state: a file's path under the source folder, a page's canonical "
            "URL; null for a feed, sitemap or URL list, or the source itself."
        },
    )


QUARANTINE_SCHEMA = arrow_schema(QuarantineRecord)


def write_quarantine(root: DataRoot, source: str, run_id: str, records: Sequence[QuarantineRecord]) -> Path | None:
    """Write one run's rejects for a source as `quarantine/source=<s>/<run_id>.parquet`."""
    if not records:
        return None
    target = _target(root, source, run_id)
    publish_table(_table(records), root.staging, target, "quarantine", compression="zstd")
    return target


def stage_quarantine(commit: Commit, run_id: str, records: Sequence[QuarantineRecord]) -> Change | None:
    """Stage one run's rejects of the commit's source in `commit` (see `write_quarantine`); None if there are none."""
    if not records:
        return None
    return commit.stage_table(_table(records), _target(commit.root, commit.source, run_id), compression="zstd")


def current_file(root: DataRoot, source: str) -> Path:
    """The file of the inputs of `source` failing now."""
    validate_source(source)
    return root.quarantine_current / f"source={source}" / CURRENT_FILE


def stage_current(
    commit: Commit, read: Collection[str], records: Sequence[QuarantineRecord], listings: bool = False
) -> Change | None:
    """Stage the source's inputs failing once `commit` is published; None when nothing changes.

    A row stays unless its input is among `read` (the state keys of the inputs the
    commit's run read, whatever came of them) or, with `listings` (the run read every
    feed, sitemap and URL list again), it is a listing's; then `records` are added. The
    change names the file as it was read, so a concurrent commit of the same source
    makes this one restage instead of losing that one's rows.
    """
    target = current_file(commit.root, commit.source)
    old, base = _read_current(target)
    before = old.num_rows if old is not None else 0
    if old is not None and (read or listings):
        inputs = old.column("input")
        gone = pc.is_in(inputs, value_set=pa.array(sorted(read), pa.string()))
        if listings:
            gone = pc.or_kleene(gone, pc.is_null(inputs))
        old = old.filter(pc.invert(pc.fill_null(gone, False)))
    if not records and (old is None or old.num_rows == before):
        return None
    table = pa.concat_tables([t for t in (old, _table(records) if records else None) if t is not None])
    if table.num_rows == 0:
        return commit.change(target, None, base)
    staged = commit.staged_path("quarantine-current")
    pq.write_table(table, str(staged), compression="zstd")
    return commit.change(target, staged, base)


def _read_current(target: Path) -> tuple[pa.Table | None, FileId | None]:
    """The current table and the identity of the file it was read from (None, None when there is none)."""
    try:
        fh = open(target, "rb")  # noqa: SIM115 - the identity must be the open file's, read before it closes
    except FileNotFoundError:
        return None, None
    with fh:
        st = os.fstat(fh.fileno())
        table = pq.read_table(fh, schema=QUARANTINE_SCHEMA)
    return table, (st.st_ino, st.st_size, st.st_mtime_ns)


def _target(root: DataRoot, source: str, run_id: str) -> Path:
    validate_source(source)
    return root.quarantine / f"source={source}" / f"{run_file_stem(run_id)}.parquet"


def _table(records: Sequence[QuarantineRecord]) -> pa.Table:
    return records_to_table(records, QuarantineRecord, QUARANTINE_SCHEMA)
