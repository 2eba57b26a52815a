"""Coverage: what each ingest of each source found and did, one row per run (view `coverage`: per source and day).

Rows are written in the commit of the run's articles (`coverage/source=<s>/<finished>-<run_id>.parquet`),
so a row exists exactly for the runs whose data was published. The view adds, per
source and day, the duplicates among the articles written (from `clusters`) and the
quarantined inputs by reason (from `quarantine_log`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

from warehouse.journal import Change, Commit
from warehouse.layout import DataRoot, run_file_stem, validate_source
from warehouse.schema import arrow_schema, records_to_table

__all__ = ["COVERAGE_SCHEMA", "CoverageRecord", "stage_coverage"]


@dataclass(frozen=True, slots=True)
class CoverageRecord:
    """One ingest run of one source, as its summary counted it."""

    source: str = field(metadata={"doc": "Source name."})
    run_id: str = field(metadata={"doc": "The run (Prefect flow run id)."})
    day: date = field(metadata={"doc": "The day (UTC) the run's data was published."})
    finished_at: datetime = field(metadata={"doc": "When (UTC)."})
    expected: int = field(
        metadata={"doc": "Inputs found: files in the folder, or entries the feeds, sitemaps and URL lists listed."}
    )
    read: int = field(metadata={"doc": "Inputs read this run (files read, pages fetched): new and changed ones."})
    written: int = field(metadata={"doc": "Articles written (new or changed rows)."})
    unchanged: int = field(metadata={"doc": "Inputs unchanged since the last run (not read again)."})
    superseded: int = field(metadata={"doc": "Articles another input of the run gave too (the same `article_id`)."})
    quarantined: int = field(metadata={"doc": "Inputs quarantined (reasons in `quarantine_log`)."})
    deferred: int = field(metadata={"doc": "Inputs left for a later run (robots.txt down, a 429, a 404's wait...)."})


COVERAGE_SCHEMA = arrow_schema(CoverageRecord)


def stage_coverage(commit: Commit, record: CoverageRecord) -> Change:
    """Stage a run's coverage row in the commit of its data."""
    return commit.stage_table(records_to_table([record], CoverageRecord, COVERAGE_SCHEMA), _target(commit.root, record))


def _target(root: DataRoot, record: CoverageRecord) -> Path:
    validate_source(record.source)
    stem = f"{record.finished_at:%Y%m%dT%H%M%S%f}-{run_file_stem(record.run_id)}"
    return root.coverage / f"source={record.source}" / f"{stem}.parquet"
