"""The quarantine table: every rejected input with its reason code."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pyarrow as pa

from warehouse.atomic import publish_table
from warehouse.journal import Change, Commit
from warehouse.layout import DataRoot, validate_source
from warehouse.schema import arrow_schema, records_to_table

__all__ = ["QUARANTINE_SCHEMA", "QuarantineRecord", "stage_quarantine", "write_quarantine"]


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


def _target(root: DataRoot, source: str, run_id: str) -> Path:
    validate_source(source)
    return root.quarantine / f"source={source}" / f"{_safe(run_id)}.parquet"


def _table(records: Sequence[QuarantineRecord]) -> pa.Table:
    return records_to_table(records, QuarantineRecord, QUARANTINE_SCHEMA)


def _safe(run_id: str) -> str:
    """Run ids come from Prefect (UUIDs); keep only characters safe in a file name."""
    return "".join(c for c in run_id if c.isalnum() or c in "-_") or "run"
