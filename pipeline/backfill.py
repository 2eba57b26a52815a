"""Backfills: rebuild a source's partitions over a date range, one month (partition) at a time.

A backfill plans first: every input of the source is given the month its article
resolves to (its date as the normaliser finds it; for HTTP sources, the date the feed
or sitemap gives), and the months of the requested range become *units*. Running a
unit re-normalises all of its inputs and replaces the partition with exactly the rows
they produce, atomically: a row whose input vanished or now resolves elsewhere is
gone, and other months are not rewritten. Each unit's outcome goes to the run ledger
(`warehouse.ledger`) with a fingerprint of its inputs, which is what lets a re-run
skip the units that already completed on the same inputs.

Two inputs can give one article (the same URL in two sidecars) dated in different
months. As in an ingest, the article lives where the last of them in path order puts
it: the plan names that input its *owner*, and a unit leaves out the articles its
inputs share with an owner in another month (`Unit.elsewhere`), so no backfill puts
an `article_id` in two partitions.

The range is rounded out to whole months: a partition is the unit of replacement,
and rebuilding part of a month would have to keep the rows outside the range anyway.

The plan is not held in memory: inputs are placed into a temporary SQLite file
(`PlanStore`) as the walk and the resolution go, a wave at a time, and a unit reads its
month's inputs when it runs, so a backfill's memory does not grow with the source.
"""

from __future__ import annotations

import calendar
import contextlib
import dataclasses
import hashlib
import pickle
import shutil
import sqlite3
import tempfile
import uuid
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, NamedTuple

import pyarrow.parquet as pq

from normalizers.dispatch import normalizer_for
from normalizers.errors import Rejection
from normalizers.schema import SCHEMA_VERSION
from pipeline.config import HTTP_KINDS, SourceConfig
from pipeline.discover import ListedFile, file_input, walk_files
from pipeline.ingest import normalize_input, read_input
from pipeline.inputs import FetchedInput, FileInput, Input, is_current, stamp
from warehouse.layout import DataRoot, Partition
from warehouse.ledger import LedgerEntry, latest_entries
from warehouse.raw import RawStore
from warehouse.staging import mark_owner
from warehouse.state import FileState, StateStore

__all__ = [
    "MAX_MONTHS",
    "REDO_CHOICES",
    "BackfillPlan",
    "PlanStore",
    "Resolved",
    "Unit",
    "build_plan",
    "check_redo",
    "choose",
    "copies_elsewhere",
    "describe",
    "fingerprint",
    "forget_validators",
    "month_range",
    "plan_files_backfill",
    "plan_store",
    "resolve_batch",
    "stale_copies",
    "stored_states",
    "unit_state",
    "whole_months",
]

REDO_CHOICES = ("none", "failed", "all")


class PlanStore:
    """A backfill plan's inputs by month, in a SQLite file under the data root's staging.

    Held in memory, the plan of a million inputs costs about a gigabyte; here a unit
    reads its month's inputs only when it runs. Inputs are pickled (named tuples of
    plain values): the file is written and read by this process alone, in a folder it
    owns (`mark_owner`), and removed by `close` or, after a kill, with a dead
    process's staging. A dry run writes nothing under the data root: its plan goes to
    the system's temporary folder (`root` None). Each call opens its own connection,
    so a plan made in one thread (a Prefect task) is read in another.
    """

    _SCHEMA = """
    CREATE TABLE placed (
        period TEXT NOT NULL,
        rel TEXT NOT NULL,
        stamp TEXT NOT NULL,
        article_id TEXT,
        prev_partition TEXT,
        prev_article_id TEXT,
        input BLOB NOT NULL,
        PRIMARY KEY (period, rel)
    ) WITHOUT ROWID;
    """

    def __init__(self, root: DataRoot | None) -> None:
        if root is None:
            self.folder = Path(tempfile.mkdtemp(prefix="newsflow-plan-"))
            self.path = self.folder / "plan.sqlite"
        else:
            # In a subfolder carrying the owner file, as a run's spills: the staging
            # clean-up leaves it while this process lives, however long the backfill.
            self.folder = root.spills(f"plan-{uuid.uuid4().hex}")
            mark_owner(self.folder / "plan")
            self.path = self.folder / "plan" / "plan.sqlite"
        with self._connect() as db:
            db.executescript(self._SCHEMA)

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        # A scratch file: a crash loses the plan, which the next backfill makes again.
        db = sqlite3.connect(self.path, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=OFF")
            db.execute("PRAGMA synchronous=OFF")
            yield db
        finally:
            db.close()

    def add(self, placed: Iterable[tuple[str, Input, str | None]]) -> None:
        """Place inputs: (month, input, id of its article when known)."""
        rows = [
            (
                period,
                c.rel,
                stamp(c),
                aid,
                c.prev.partition if c.prev is not None else None,
                c.prev.article_id if c.prev is not None else None,
                pickle.dumps(c, protocol=pickle.HIGHEST_PROTOCOL),
            )
            for period, c, aid in placed
        ]
        with self._connect() as db:
            db.execute("BEGIN")
            db.executemany("INSERT OR REPLACE INTO placed VALUES (?,?,?,?,?,?,?)", rows)
            db.execute("COMMIT")

    def counts(self) -> dict[str, int]:
        """Inputs per month."""
        with self._connect() as db:
            return {p: n for p, n in db.execute("SELECT period, count(*) FROM placed GROUP BY period")}

    def stamps(self, period: str) -> Iterator[tuple[str, str]]:
        """(rel, stamp) of the month's inputs, in path order."""
        with self._connect() as db:
            yield from db.execute("SELECT rel, stamp FROM placed WHERE period = ? ORDER BY rel", (period,))

    def items(self, period: str) -> tuple[Input, ...]:
        """The month's inputs, in path order."""
        with self._connect() as db:
            rows = db.execute("SELECT input FROM placed WHERE period = ? ORDER BY rel", (period,))
            return tuple(pickle.loads(blob) for (blob,) in rows)

    def elsewhere(self, period: str) -> list[tuple[str, str]]:
        """(article_id, owner's month) of the month's articles whose owner is in another month, sorted.

        The owner of an article is the last input in path order that gives it, as an
        ingest places it.
        """
        with self._connect() as db:
            # Made once the inputs are all in (cheaper than keeping it up as they come).
            db.execute("CREATE INDEX IF NOT EXISTS placed_article ON placed (article_id, rel)")
            rows = db.execute(
                "SELECT DISTINCT p.article_id, o.period FROM placed p JOIN placed o ON o.article_id = p.article_id"
                " AND o.rel = (SELECT max(rel) FROM placed WHERE article_id = p.article_id)"
                " WHERE p.period = ? AND p.article_id IS NOT NULL AND o.period != p.period"
                " ORDER BY p.article_id, o.period",
                (period,),
            )
            return [(aid, owner) for aid, owner in rows]

    def moving(self, source: str, periods: Collection[str]) -> dict[str, set[str]]:
        """Per month, the articles it holds that inputs placed in one of `periods` move elsewhere."""
        out: dict[str, set[str]] = {}
        with self._connect() as db:
            rows = db.execute(
                "SELECT period, prev_partition, prev_article_id FROM placed"
                " WHERE prev_article_id IS NOT NULL AND prev_partition IS NOT NULL"
            )
            for period, part, aid in rows:
                if period in periods and part != f"{source}/{period}":
                    out.setdefault(Partition.parse(part).period, set()).add(aid)
        return out

    def close(self) -> None:
        """Remove the file."""
        shutil.rmtree(self.folder, ignore_errors=True)


@contextlib.contextmanager
def plan_store(root: DataRoot, dry_run: bool) -> Iterator[PlanStore]:
    """A new plan store (under `root`, or the system's temporary folder for a dry run), removed if planning fails.

    The plan made from it owns it from then on (`BackfillPlan.close`).
    """
    store = PlanStore(None if dry_run else root)
    try:
        yield store
    except BaseException:
        store.close()
        raise


@dataclass(frozen=True, slots=True)
class Unit:
    """One partition of a backfill: its inputs and what the plan decided to do with it."""

    period: str  # YYYY-MM
    count: int  # how many inputs
    inputs: str  # fingerprint of the items (and the normaliser and schema versions)
    rows: int  # rows the partition holds now (what a run replaces)
    action: str  # "run", "skip" (completed before on the same inputs), "skip-failed" or "empty" (nothing there)
    last: str | None = None  # status of the last backfill of this partition, if any
    # Articles the unit's inputs give whose owner (the last input in path order giving
    # them) is in another month: (article_id, that month), left out of this one.
    elsewhere: tuple[tuple[str, str], ...] = ()
    store: PlanStore | None = None  # where the plan keeps the inputs, until `load`ed
    loaded: tuple[Input, ...] | None = None

    @property
    def items(self) -> tuple[Input, ...]:
        """The unit's inputs, in path order (a listed URL only until the unit's fetch)."""
        if self.loaded is not None:
            return self.loaded
        return self.store.items(self.period) if self.store is not None else ()

    def load(self) -> Unit:
        """The unit holding its inputs itself (what is sent to the process or machine that runs it)."""
        return dataclasses.replace(self, loaded=self.items, store=None)


@dataclass(frozen=True, slots=True)
class BackfillPlan:
    """What a backfill of one source over a range will do."""

    source: str
    start: date  # first day of the first month
    end: date  # last day of the last month
    units: tuple[Unit, ...]
    outside: int = 0  # inputs whose article falls outside the range
    rejected: dict[str, int] = field(default_factory=dict)  # inputs that give no article, by reason
    store: PlanStore | None = None

    def to_run(self) -> list[Unit]:
        """The units the run will work on, in plan order."""
        return [u for u in self.units if u.action == "run"]

    def close(self) -> None:
        """Remove the plan's store of inputs (the units that hold theirs keep them)."""
        if self.store is not None:
            self.store.close()

    def __enter__(self) -> BackfillPlan:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# The widest range one backfill takes: a hundred years of months (a wider one is a typo
# more often than a plan, and its plan alone would list every month).
MAX_MONTHS = 1200


def month_range(start: date, end: date) -> list[str]:
    """The months `YYYY-MM` from `start`'s to `end`'s, inclusive (at most `MAX_MONTHS`)."""
    if end < start:
        raise ValueError(f"end {end} is before start {start}")
    span = (end.year - start.year) * 12 + end.month - start.month + 1
    if span > MAX_MONTHS:
        raise ValueError(f"{start} .. {end} spans {span} months; a backfill takes at most {MAX_MONTHS} (100 years)")
    months = []
    year, month = start.year, start.month
    while (year, month) <= (end.year, end.month):
        months.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months


def check_redo(redo: str) -> None:
    """Raise ValueError unless `redo` is one of REDO_CHOICES (checked before any planning work)."""
    if redo not in REDO_CHOICES:
        raise ValueError(f"redo must be one of {', '.join(REDO_CHOICES)}, not {redo!r}")


def whole_months(start: date, end: date) -> tuple[date, date]:
    """The first day of `start`'s month and the last day of `end`'s."""
    return start.replace(day=1), end.replace(day=calendar.monthrange(end.year, end.month)[1])


class Resolved(NamedTuple):
    """Where one input's article goes: its month and id, or the reason it gives none."""

    period: str | None  # YYYY-MM
    reason: str | None  # the rejection reason when there is no article
    article_id: str | None = None


def resolve_batch(src: SourceConfig, root: DataRoot, items: Sequence[FileInput | FetchedInput]) -> list[Resolved]:
    """Per input: the month (`YYYY-MM`) and id of its article, or the rejection reason.

    Runs the normaliser itself, so a plan places every input where a run would.
    """
    out: list[Resolved] = []
    store = RawStore(root) if any(isinstance(c, FetchedInput) for c in items) else None
    now = datetime.now(UTC)  # the time of ingest, as process_batch reads it: once per batch
    try:
        for cand in items:
            loaded = read_input(src, cand, store)
            result = loaded if isinstance(loaded, Rejection) else normalize_input(src, cand, *loaded, as_of=now)
            if isinstance(result, Rejection):
                out.append(Resolved(None, result.reason.value))
            else:
                assert result.published_at is not None
                out.append(Resolved(Partition.of_article(src.name, result).period, None, result.article_id))
    finally:
        if store is not None:
            store.close()
    return out


Resolver = Callable[[list[FileInput]], list[Resolved]]

# Inputs a plan takes in at once: the walk's entries, their states and their resolution
# are in memory a wave at a time, so the plan's memory does not grow with the source.
WAVE = 50_000


def plan_files_backfill(
    src: SourceConfig,
    root: DataRoot,
    start: date,
    end: date,
    redo: str,
    resolve: Resolver,
    newest_first: bool = False,
    dry_run: bool = False,
) -> BackfillPlan:
    """Plan a backfill of a `files` source: place every file in its month, pick the range's units.

    A file whose size, mtime and sidecar match its state, and whose row was written by
    the current normaliser, keeps the month the state records; every other file is
    normalised (through `resolve`, which runs `resolve_batch` over the worker pool).
    """
    check_redo(redo)
    first, last = whole_months(start, end)
    rejected: Counter[str] = Counter()
    with plan_store(root, dry_run) as store, contextlib.ExitStack() as stack:
        states = StateStore.existing(root.state)
        if states is not None:
            stack.enter_context(states)
        wave: list[ListedFile] = []
        for listed in walk_files(src):
            wave.append(listed)
            if len(wave) >= WAVE:
                store.add(_place_wave(src, states, wave, rejected, resolve))
                wave = []
        store.add(_place_wave(src, states, wave, rejected, resolve))
        return build_plan(src, root, first, last, store, rejected, redo, newest_first)


def _place_wave(
    src: SourceConfig,
    states: StateStore | None,
    wave: list[ListedFile],
    rejected: Counter[str],
    resolve: Resolver,
) -> list[tuple[str, Input, str | None]]:
    """(month, input, article id) of a wave of listed files; those giving no article counted in `rejected`."""
    prevs = states.get(src.name, [listed[0] for listed in wave]) if states is not None and wave else {}
    placed: list[tuple[str, Input, str | None]] = []
    unknown: list[FileInput] = []
    for listed in wave:
        rel, problem = listed[0], listed[6]
        prev = prevs.get(rel)
        cand = file_input(listed, prev)
        if problem is not None:  # gives no article; the next ingest quarantines it
            rejected[problem[0]] += 1
            continue
        if prev is not None and is_current(cand, prev, normalizer_for(src.format, rel)[1]):
            if prev.status == "written" and prev.partition is not None:
                placed.append((Partition.parse(prev.partition).period, cand, prev.article_id))
                continue
            if prev.status == "quarantined":
                rejected["quarantined before"] += 1
                continue
        unknown.append(cand)
    for cand, (period, reason, article_id) in zip(unknown, resolve(unknown) if unknown else [], strict=True):
        if period is None:
            rejected[reason or "rejected"] += 1
        else:
            placed.append((period, cand, article_id))
    return placed


def build_plan(
    src: SourceConfig,
    root: DataRoot,
    first: date,
    last: date,
    store: PlanStore,
    rejected: Counter[str],
    redo: str,
    newest_first: bool,
) -> BackfillPlan:
    """The plan from the inputs placed in `store`: one unit per month of first..last, decided against the ledger."""
    months = month_range(first, last)
    counts = store.counts()
    outside = sum(n for k, n in counts.items() if k not in set(months))
    latest = latest_entries(root, src.name, kind="backfill")
    units = []
    for period in reversed(months) if newest_first else months:
        n = counts.get(period, 0)
        elsewhere = store.elsewhere(period) if n else []
        inputs = fingerprint(src, store.stamps(period), elsewhere)
        prior = latest.get(period)
        rows = partition_rows(root, Partition.parse(f"{src.name}/{period}"))
        # A month with no inputs and no rows has nothing to rebuild: it is not run, and
        # leaves no ledger entry (a wide range is mostly such months).
        action = "empty" if not n and rows == 0 else choose(prior, inputs, redo)
        last_status = prior.status if prior else None
        units.append(Unit(period, n, inputs, rows, action, last_status, tuple(elsewhere), store))
    return BackfillPlan(src.name, first, last, tuple(units), outside, dict(sorted(rejected.items())), store)


def stored_states(root: DataRoot, source: str) -> dict[str, FileState]:
    """The source's state rows; empty, and nothing created, when the data root has no state yet."""
    store = StateStore.existing(root.state)
    if store is None:
        return {}
    with store:
        return store.load(source)


def fingerprint(src: SourceConfig, stamps: Iterable[tuple[str, str]], elsewhere: Sequence[tuple[str, str]] = ()) -> str:
    """A digest of a unit's inputs as the plan saw them (`(rel, stamp)` in path order), versions, what it leaves out."""
    h = hashlib.sha256(f"schema {SCHEMA_VERSION}\n".encode())
    for rel, stamped in stamps:
        version = normalizer_for(src.format, rel)[1]
        h.update(f"{rel}\t{stamped}\t{version}\n".encode())
    for aid, period in elsewhere:  # a unit leaving out nothing keeps the digest it had before this line
        h.update(f"elsewhere\t{aid}\t{period}\n".encode())
    return h.hexdigest()


def choose(prior: LedgerEntry | None, inputs: str, redo: str) -> str:
    """Run a unit unless its last backfill finished on the same inputs (a failure re-runs with `redo=failed`)."""
    if redo == "all" or prior is None or prior.inputs != inputs:
        return "run"
    if prior.status == "completed":
        return "skip"
    return "run" if redo == "failed" else "skip-failed"


def partition_rows(root: DataRoot, partition: Partition) -> int:
    """Rows a partition holds now (from the Parquet footer; 0 when it has no file)."""
    path = root.partition_file(partition)
    if not path.exists():
        return 0
    try:
        return int(pq.ParquetFile(str(path)).metadata.num_rows)
    except (OSError, ValueError):  # unreadable: the unit's run reports it
        return -1


def stale_copies(items: Sequence[Input], key: str, here: set[str]) -> dict[str, list[str]]:
    """Per other partition, the old copies of articles that moved into partition `key` (their inputs in `here`)."""
    stale: dict[str, set[str]] = {}
    for c in items:
        prev = c.prev
        # Written here now, and held by another month before: that copy is stale.
        if c.rel in here and prev is not None and prev.article_id is not None and prev.partition not in (None, key):
            stale.setdefault(prev.partition, set()).add(prev.article_id)
    return {k: sorted(ids) for k, ids in sorted(stale.items())}


def copies_elsewhere(
    root: DataRoot, source: str, ids: Collection[str], inputs: Collection[str], key: str
) -> dict[str, list[str]]:
    """Per other partition, the articles of `ids` that the state places there through inputs not in `inputs`.

    A unit that writes an article deletes such copies: its owner is here now.
    """
    if not ids:
        return {}
    with StateStore(root.state) as store:
        rows = store.placements(source, ids)
    stale: dict[str, set[str]] = {}
    for path, aid, part in rows:
        if part != key and path not in inputs:
            stale.setdefault(part, set()).add(aid)
    return {k: sorted(v) for k, v in sorted(stale.items())}


def unit_state(
    root: DataRoot,
    src: SourceConfig,
    part: Partition,
    keep: list[FileState],
    moved: list[FileState],
    held: Collection[str] = (),
) -> tuple[list[FileState], list[str]]:
    """A backfill unit's state update: its outcomes to save, and the inputs that left the partition to forget.

    Forgotten inputs are placed anew by the next ingest. An input whose article the
    partition still `held` (for another month of the backfill to move) keeps its state:
    the partition still has its row, and whoever moves it (that month, or the next
    ingest) must know where to delete it.
    """
    with StateStore(root.state) as store:
        placed = store.paths_in(src.name, part.key)
        gone = (placed - {s.path for s in keep}) | {s.path for s in moved}
        if held:
            wanted = set(held)
            gone -= {path for path, s in store.get(src.name, sorted(gone)).items() if s.article_id in wanted}
    return keep, sorted(gone)


def forget_validators(root: DataRoot, src: SourceConfig, moved: list[FileState]) -> None:
    """Drop the fetch validators of pages that left their month, so the next fetch is a full one and places them."""
    if moved and src.kind in HTTP_KINDS:
        with RawStore(root) as raw:
            raw.forget_validators(src.name, [s.path for s in moved])


def describe(plan: BackfillPlan) -> dict[str, Any]:
    """The plan as plain data (for --json and the Prefect artifact)."""
    return {
        "source": plan.source,
        "start": plan.start.isoformat(),
        "end": plan.end.isoformat(),
        "outside": plan.outside,
        "rejected": plan.rejected,
        "units": [
            {"partition": u.period, "items": u.count, "rows": u.rows, "action": u.action, "last": u.last}
            for u in plan.units
        ],
    }
