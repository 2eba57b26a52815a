"""The gap check: after an ingest, compare a source's last days with its usual volume and quarantine rate.

Media collections learn of missing weeks after the fact; this says so in the run's
summary (and its Prefect artifact) the day after. It reads the source's `coverage`
rows of the last weeks (one small file per run).
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping
from datetime import date, timedelta

import pyarrow.parquet as pq

from pipeline.ingest import SourceSummary
from warehouse.layout import DataRoot

__all__ = ["GAP_SHARE", "HISTORY_DAYS", "MIN_HISTORY_DAYS", "gap", "gap_notes"]

# The days a source's usual volume is the median of, and the fewest that make a usual.
HISTORY_DAYS = 28
MIN_HISTORY_DAYS = 7
# A day under this share of the usual daily articles is a gap (when the usual is at least
# MIN_USUAL_DAILY: a source of one article a week has quiet days, not gaps).
GAP_SHARE = 0.25
MIN_USUAL_DAILY = 5
# A run quarantining over this share of what it read, and over QUARANTINE_FACTOR times the
# source's usual share, is flagged (when it read at least MIN_READ inputs).
QUARANTINE_SHARE = 0.2
QUARANTINE_FACTOR = 3.0
MIN_READ = 20


def gap_notes(root: DataRoot, done: SourceSummary, today: date) -> list[str]:
    """Notes on yesterday's volume and this run's quarantine rate against the source's usual ones (none if usual)."""
    daily, read, quarantined = _history(root, done.source, today)
    notes = []
    yesterday = today - timedelta(days=1)
    found = gap(daily, yesterday)
    if found is not None:
        usual, days = found
        notes.append(
            f"coverage gap: {daily.get(yesterday, 0)} articles written on {yesterday}, far below the usual "
            f"{usual:g} a day (median of the {days} days before); check the source for missing items"
        )
    processed = done.new + done.changed
    if processed >= MIN_READ and read >= MIN_READ:
        share, usual_share = done.quarantined / processed, quarantined / read
        if share > max(QUARANTINE_SHARE, QUARANTINE_FACTOR * usual_share):
            notes.append(
                f"quarantine rate: {done.quarantined} of {processed} inputs read this run ({share:.0%}), "
                f'usually {usual_share:.0%}; see `newsflow query "SELECT reason, count(*) FROM quarantine '
                f"WHERE source = '{done.source}' GROUP BY ALL\"`"
            )
    return notes


def gap(daily: Mapping[date, int], day: date) -> tuple[float, int] | None:
    """(the usual volume, the days it is the median of) when `day` is a gap in a source's articles per day; else None.

    The usual is the median of the up to HISTORY_DAYS days before `day` since the source's
    first day with articles (no usual with fewer than MIN_HISTORY_DAYS).
    """
    first = min(daily, default=day)
    start = max(first, day - timedelta(days=HISTORY_DAYS))
    before = [daily.get(start + timedelta(days=i), 0) for i in range((day - start).days)]
    if len(before) < MIN_HISTORY_DAYS:
        return None
    usual = statistics.median(before)
    if usual >= MIN_USUAL_DAILY and daily.get(day, 0) < GAP_SHARE * usual:
        return usual, len(before)
    return None


def _history(root: DataRoot, source: str, today: date) -> tuple[dict[date, int], int, int]:
    """Articles written per day over the last HISTORY_DAYS + 1 days before today, and inputs read and quarantined.

    The read and quarantined totals leave out today's runs, this one included.
    """
    folder = root.coverage / f"source={source}"
    since = (today - timedelta(days=HISTORY_DAYS + 1)).strftime("%Y%m%d")
    try:
        # File names start with the run's finish time: the history is chosen by name, not read whole.
        paths = sorted(str(p) for p in folder.glob("*.parquet") if p.name[:8] >= since)
    except OSError:
        return {}, 0, 0
    daily: dict[date, int] = {}
    read = quarantined = 0
    if not paths:
        return daily, read, quarantined
    table = pq.ParquetDataset(paths, partitioning=None).read(columns=["day", "read", "written", "quarantined"])
    for day, n_read, written, n_quarantined in zip(
        *(table.column(c).to_pylist() for c in table.column_names), strict=True
    ):
        daily[day] = daily.get(day, 0) + written
        if day < today:
            read += n_read
            quarantined += n_quarantined
    return daily, read, quarantined
