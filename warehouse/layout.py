"""Where things live under the data root, and validated partition keys."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from normalizers.schema import Article
from warehouse.errors import PartitionError

__all__ = ["JOURNAL_FILE", "SOURCE_NAME", "DataRoot", "Partition", "published_day", "run_file_stem", "validate_source"]

# Source names become directory names: a strict pattern means no input can write
# outside the data root (no '/', '..', NUL or leading dot).
SOURCE_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
PARTITION_FILE = "part-0.parquet"
JOURNAL_FILE = "journal.json"
# Where a run leaves the corpus report, under the data root.
REPORT_FILE = "report.html"


def validate_source(name: str) -> str:
    """Return `name` if it is a valid source name, else raise `PartitionError`."""
    if not isinstance(name, str) or not SOURCE_NAME.fullmatch(name):
        raise PartitionError(
            f"invalid source name {name!r}: use 1-64 of a-z, 0-9, '_' or '-', starting with a letter or digit"
        )
    return name


def run_file_stem(run_id: str) -> str:
    """A run id as part of a file name: run ids come from Prefect (UUIDs); only characters safe in a name are kept."""
    return "".join(c for c in run_id if c.isalnum() or c in "-_") or "run"


@dataclass(frozen=True, slots=True, order=True)
class Partition:
    """One `source=/year=/month=` partition of the articles dataset."""

    source: str
    year: int
    month: int

    def __post_init__(self) -> None:
        validate_source(self.source)
        if not (isinstance(self.year, int) and 1 <= self.year <= 9999):
            raise PartitionError(f"invalid partition year {self.year!r}")
        if not (isinstance(self.month, int) and 1 <= self.month <= 12):
            raise PartitionError(f"invalid partition month {self.month!r}")

    @classmethod
    def of(cls, source: str, day: date) -> Partition:
        """The partition holding an article of `source` published on calendar day `day`."""
        return cls(source, day.year, day.month)

    @classmethod
    def of_article(cls, source: str, article: Article) -> Partition:
        """The partition holding `article` (which has a date): the month of its day as published."""
        return cls.of(source, published_day(article))

    @classmethod
    def parse(cls, key: str) -> Partition:
        """Inverse of `key`: `source/YYYY-MM`."""
        try:
            source, ym = key.split("/")
            year, month = ym.split("-")
            return cls(source, int(year), int(month))
        except ValueError as exc:
            raise PartitionError(f"invalid partition key {key!r}") from exc

    @property
    def period(self) -> str:
        """The month as `YYYY-MM`."""
        return f"{self.year:04d}-{self.month:02d}"

    @property
    def key(self) -> str:
        """Compact, sortable text form `source/YYYY-MM`."""
        return f"{self.source}/{self.period}"

    @property
    def relpath(self) -> str:
        """Hive-style directory below the dataset folder."""
        return f"source={self.source}/year={self.year:04d}/month={self.month:02d}"


def published_day(article: Article) -> date:
    """The calendar date an article's partition follows: its date as published, not its UTC date.

    `2024-02-01T01:00:00+03:00` is 1 February where it was published and 31 January in
    UTC; a reader looking for February's articles expects it in February. A date known only
    to the day is that day. A record without `published_date` (none the normalisers make)
    falls back to the UTC date.
    """
    if article.published_date is not None:
        return article.published_date
    assert article.published_at is not None, "only an article with a date has a partition"
    return article.published_at.date()


@dataclass(frozen=True, slots=True)
class DataRoot:
    """The data root and its fixed layout.

    Only `articles/`, `article_versions/`, `quarantine/`, `quarantine_current/`,
    `clusters/`, `coverage/`, `boilerplate/` and `runs/` hold dataset files; staging, locks and state
    live beside them so that a `**/*.parquet` glob over a dataset never sees a
    half-written file.
    """

    root: Path

    @property
    def articles(self) -> Path:
        """Hive-partitioned article dataset."""
        return self.root / "articles"

    @property
    def quarantine(self) -> Path:
        """Quarantine table (one file per run and source)."""
        return self.root / "quarantine"

    @property
    def quarantine_current(self) -> Path:
        """The inputs failing now (one file per source)."""
        return self.root / "quarantine_current"

    @property
    def article_versions(self) -> Path:
        """Earlier versions of articles whose content changed (one file per run and partition)."""
        return self.root / "article_versions"

    @property
    def coverage(self) -> Path:
        """What each run of each source found and did (one file per run and source)."""
        return self.root / "coverage"

    @property
    def clusters(self) -> Path:
        """Duplicates and syndication clusters, one file per source (derived from the articles)."""
        return self.root / "clusters"

    @property
    def boilerplate(self) -> Path:
        """The blocks each source's boilerplate learning has learned (one file per source)."""
        return self.root / "boilerplate"

    @property
    def runs(self) -> Path:
        """Run ledger (one file per partition a backfill or re-normalisation worked on)."""
        return self.root / "runs"

    @property
    def state(self) -> Path:
        """Incremental state database folder."""
        return self.root / "state"

    @property
    def staging(self) -> Path:
        """Scratch space for files being written (same file system, so renames are atomic)."""
        return self.root / ".staging"

    @property
    def spill_runs(self) -> Path:
        """Spill folders, one per run (or per batch normalised ahead of a run), under staging."""
        return self.staging / "runs"

    @property
    def raw_staging(self) -> Path:
        """Raw-store objects being written, under staging."""
        return self.staging / "raw"

    def spills(self, run_id: str) -> Path:
        """The spill folder of run `run_id`: removed when the run ends, or once its owner is dead."""
        return self.spill_runs / run_id

    @property
    def commits(self) -> Path:
        """Multi-file commits being staged and their journals, one folder per source, under staging."""
        return self.staging / "commits"

    def commit_staging(self, source: str) -> Path:
        """The folder of `source`'s staged commits and of its journal while one is being published."""
        return self.commits / validate_source(source)

    def journal(self, source: str) -> Path:
        """The intent journal of `source`: present only while a commit is published (or left by a killed one)."""
        return self.commit_staging(source) / JOURNAL_FILE

    def journal_lock(self, source: str) -> Path:
        """The lock file serialising publishes (and recoveries) of `source`'s commits."""
        return self.locks / validate_source(source) / "journal.lock"

    @property
    def locks(self) -> Path:
        """Lock files, one per partition."""
        return self.root / ".locks"

    def partition_file(self, partition: Partition) -> Path:
        """The single Parquet file of a partition."""
        return self.articles / partition.relpath / PARTITION_FILE

    def source_lock(self, source: str) -> Path:
        """The lock file a run holds while it works on a source (ingest, backfill, re-normalisation)."""
        return self.locks / validate_source(source) / "source.lock"

    def lock_file(self, partition: Partition) -> Path:
        """The lock file serialising writers of a partition."""
        return self.locks / partition.source / f"{partition.period}.lock"
