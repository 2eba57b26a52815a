"""The run ledger: one record per partition a backfill or re-normalisation worked on.

Records are append-only Parquet files under `runs/source=<s>/`, one per partition
attempt, written atomically like every dataset file. Appending never rewrites a
shared file, so concurrent backfills cannot lose each other's records, and
`newsflow query` reads the ledger as the view `runs`.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pyarrow as pa

from warehouse.atomic import publish_table
from warehouse.layout import DataRoot, validate_source
from warehouse.schema import arrow_schema, records_to_table

__all__ = ["LEDGER_SCHEMA", "LedgerEntry", "latest_entries", "read_ledger", "write_ledger"]


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """The outcome of one partition of one backfill or re-normalisation run."""

    source: str = field(metadata={"doc": "Source name."})
    partition: str = field(metadata={"doc": "Month of the partition, `YYYY-MM`."})
    kind: str = field(metadata={"doc": "`backfill` or `renormalize`."})
    status: str = field(metadata={"doc": "`completed` or `failed`."})
    run_id: str = field(metadata={"doc": "Prefect flow run that did the work."})
    items: int = field(metadata={"doc": "Inputs planned for the partition."})
    written: int = field(metadata={"doc": "Rows the partition holds after the run (0 when failed)."})
    quarantined: int = field(metadata={"doc": "Inputs quarantined while rebuilding it."})
    moved: int = field(metadata={"doc": "Inputs that resolved to another month when re-read (left to the next run)."})
    removed: int = field(metadata={"doc": "Rows the partition held before that the run no longer produced."})
    rows_before: int = field(metadata={"doc": "Rows the partition held before the run."})
    normalizer_version: str = field(metadata={"doc": "Normaliser version(s) that produced the rows, `;`-joined."})
    inputs: str = field(metadata={"doc": "Fingerprint of the planned inputs; a re-run skips a completed one."})
    range_start: str | None = field(metadata={"doc": "First day of the requested range (null: unbounded)."})
    range_end: str | None = field(metadata={"doc": "Last day of the requested range (null: unbounded)."})
    started_at: datetime = field(metadata={"doc": "When work on the partition started (UTC)."})
    finished_at: datetime = field(metadata={"doc": "When it ended (UTC)."})
    error: str | None = field(default=None, metadata={"doc": "Why it failed (null when completed)."})


LEDGER_SCHEMA = arrow_schema(LedgerEntry)


def write_ledger(root: DataRoot, entries: Sequence[LedgerEntry]) -> list[Path]:
    """Append entries, one file per entry, as `runs/source=<s>/<finished>-<partition>-<id>.parquet`."""
    paths = []
    for entry in entries:
        validate_source(entry.source)
        folder = root.runs / f"source={entry.source}"
        stamp = entry.finished_at.strftime("%Y%m%dT%H%M%S%f")
        target = folder / f"{stamp}-{entry.partition}-{uuid.uuid4().hex[:12]}.parquet"
        publish_table(records_to_table([entry], LedgerEntry, LEDGER_SCHEMA), root.staging, target, "ledger")
        paths.append(target)
    return paths


def read_ledger(root: DataRoot, source: str | None = None) -> pa.Table:
    """All ledger records (of one source when given), oldest first; empty when there are none."""
    folder = root.runs if source is None else root.runs / f"source={validate_source(source)}"
    files = sorted(str(p) for p in folder.glob("**/*.parquet")) if folder.is_dir() else []
    if not files:
        return LEDGER_SCHEMA.empty_table()
    # Imported here: pyarrow.dataset costs ~0.3 s and 40 MB to load, and every run
    # imports this module while only backfill plans and queries read the ledger.
    import pyarrow.dataset as ds

    table = ds.dataset(files, schema=LEDGER_SCHEMA, format="parquet").to_table()
    return table.sort_by([("finished_at", "ascending")])


def latest_entries(root: DataRoot, source: str, kind: str | None = None) -> dict[str, LedgerEntry]:
    """The most recent record of each partition of `source` (of one `kind` when given)."""
    latest: dict[str, LedgerEntry] = {}
    for row in read_ledger(root, source).to_pylist():
        if kind is None or row["kind"] == kind:
            latest[row["partition"]] = LedgerEntry(**row)
    return latest
