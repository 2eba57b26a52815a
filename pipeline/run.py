"""Run a source end to end: the one place the stage sequence is written.

`run_source()` takes a source through plan, normalise, merge, place, write and finish,
for each kind of run (`Ingest`, `Renormalize`, one `Backfill` unit). How the stages run
is the caller's: a `Runner` calls the in-process stages and spreads the CPU-bound ones
(normalising a batch, writing a partition). `LocalRunner` uses this machine's process
pool; `flows.flow` records each stage as a Prefect task run; other engines (Dask) fit
the same two methods. HTTP sources take an injected transport, as httpx does.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import os
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Protocol, TypeVar

import httpx

from normalizers.dispatch import normalizer_for
from pipeline.backfill import (
    BackfillPlan,
    Resolved,
    Unit,
    check_redo,
    copies_elsewhere,
    forget_validators,
    plan_files_backfill,
    resolve_batch,
    stale_copies,
    unit_state,
)
from pipeline.boilerplate import learn_from_run, with_learned
from pipeline.config import HTTP_KINDS, SourceConfig
from pipeline.coverage import gap_notes
from pipeline.discover import Plan, plan_source
from pipeline.errors import ConfigError
from pipeline.ingest import (
    BATCH_SIZE,
    BatchResult,
    SourceSummary,
    assign_partitions,
    finish_source,
    in_batches,
    merge_batches,
    process_batch,
    stage_outcomes,
    write_partition,
)
from pipeline.inputs import ListedUrl
from pipeline.renormalize import plan_renormalize_source
from pipeline.warc import files_read, plan_segment
from pipeline.workers import default_workers, run_in_pool, submit_in_pool
from warehouse.atomic import locked
from warehouse.boilerplate import Counted
from warehouse.errors import CommitConflict, LockTimeout
from warehouse.journal import Commit, publish, recover
from warehouse.layout import DataRoot, Partition
from warehouse.ledger import LedgerEntry, write_ledger
from warehouse.state import StateStore, progress_key
from warehouse.writer import PartitionWrite

__all__ = [
    "COMMIT_ATTEMPTS",
    "SOURCE_LOCK_TIMEOUT_S",
    "Backfill",
    "Ingest",
    "LocalRunner",
    "Mode",
    "Progress",
    "Renormalize",
    "Runner",
    "WarcBackfill",
    "backfill_units",
    "describe_warc_backfill",
    "plan_backfill",
    "run_source",
    "source_lock",
]

R = TypeVar("R")


class Runner(Protocol):
    """How `run_source` runs its stages."""

    parallel: int  # how many CPU-bound calls it runs at once

    def call(self, stage: str, fn: Callable[..., R], *args: Any) -> R:
        """Run one stage in this process (planning, fetching, finishing) and return its result."""
        ...

    def map(self, stage: str, fn: Callable[..., R], calls: Sequence[tuple[Any, ...]]) -> Iterator[tuple[int, R]]:
        """Run `fn(*call)` for every call, as parallel as the runner allows; yield (index, result) as each ends."""
        ...


class LocalRunner:
    """Stages in this process, CPU-bound calls in this machine's pool of `workers` processes (inline at 1)."""

    def __init__(self, workers: int = 0) -> None:
        self.workers = workers or default_workers()
        self.parallel = self.workers

    def call(self, stage: str, fn: Callable[..., R], *args: Any) -> R:
        """Run one stage here."""
        return fn(*args)

    def run(self, fn: Callable[..., R], *args: Any) -> R:
        """Run one CPU-bound call in the pool and wait for it."""
        return run_in_pool(self.workers, fn, *args)

    def map(self, stage: str, fn: Callable[..., R], calls: Sequence[tuple[Any, ...]]) -> Iterator[tuple[int, R]]:
        """Spread the calls over the pool; yield (index, result) in the order they end."""
        if self.workers <= 1:
            for i, args in enumerate(calls):
                yield i, fn(*args)
            return
        futures = {}
        for i, args in enumerate(calls):
            future = submit_in_pool(self.workers, fn, *args)
            assert future is not None  # workers > 1: there is a pool
            futures[future] = i
        for future in as_completed(futures):
            yield futures[future], future.result()


@dataclass(frozen=True, slots=True)
class Ingest:
    """Find the source's inputs (list the folder, or fetch) and write what is new or changed."""

    force: bool = False  # normalise unchanged inputs too


@dataclass(frozen=True, slots=True)
class Renormalize:
    """Rebuild the rows whose normaliser version is not the current one, for articles of start..end."""

    start: date | None = None
    end: date | None = None
    # Instead, exactly these inputs' stored articles (by state key), whatever their version.
    inputs: frozenset[str] | None = None


@dataclass(frozen=True, slots=True)
class Backfill:
    """Rebuild one partition (a month) whole from its planned inputs; the outcome goes to the ledger."""

    unit: Unit
    window: tuple[str | None, str | None]  # the backfill's start and end days, for the ledger
    # Articles the month holds whose inputs the plan moved to another month it rebuilds:
    # kept until that month's commit moves them, so no kill between the two loses them.
    keep: frozenset[str] = frozenset()


def backfill_units(plan: BackfillPlan, window: tuple[str | None, str | None]) -> Iterator[Backfill]:
    """The plan's units to run, each as a `run_source` mode holding its inputs (read from the plan as it is asked for).

    Each carries the articles it must keep for another unit: what a running unit will
    delete elsewhere as stale copies is what those months must keep; so is an article
    a month leaves out for its owner's month, when that month runs too.
    """
    units = plan.to_run()
    running = {unit.period for unit in units}
    moving = plan.store.moving(plan.source, running) if plan.store is not None else {}
    for unit in units:
        moving.setdefault(unit.period, set()).update(aid for aid, owner in unit.elsewhere if owner in running)
    for unit in units:
        yield Backfill(unit.load(), window, frozenset(moving.get(unit.period, ())))


@dataclass(frozen=True, slots=True)
class WarcBackfill:
    """Read a WARC source's records captured start..end (days, by WARC-Date) again, normalising every one.

    Articles are upserted, not whole partitions replaced: partitions go by publication
    date, and a record captured outside the window may hold an article of a month inside
    it. The backfill keeps its own progress through the files (apart from `run`'s), so a
    killed one resumes at its last committed record and a completed one is not read
    again unless `redo` is "all".
    """

    start: date
    end: date
    redo: str = "none"

    def key(self, source: str) -> str:
        """The name its progress through the source's WARC files is kept under."""
        return progress_key(source, f"backfill {self.start.isoformat()}..{self.end.isoformat()}")


def describe_warc_backfill(
    src: SourceConfig, root: DataRoot, mode: WarcBackfill, ran: SourceSummary | None = None
) -> dict[str, Any]:
    """A WARC backfill as plain data, shaped as `describe`'s plan.

    Before it runs: the WARC files it reads, and how many a backfill of the window read
    to their end (passed over unless redo is "all"). After (`ran`): the records captured
    outside the window, those not taken by reason, and the rows written per partition.
    """
    plan: dict[str, Any] = {
        "source": src.name,
        "start": mode.start.isoformat(),
        "end": mode.end.isoformat(),
        "outside": 0,
        "rejected": {},
        "units": [],
    }
    if ran is None:
        files, done = files_read(src, root, mode.key(src.name))
        return plan | {"warc_files": files, "warc_files_read": 0 if mode.redo == "all" else done}
    skipped = dict(ran.skipped)
    plan["outside"] = skipped.pop("date", 0)  # captured outside the window (or the source's own dates)
    plan["rejected"] = skipped
    months: dict[str, dict[str, Any]] = {}
    for entry in ran.ledger:
        unit = months.setdefault(
            entry.partition,
            {"partition": entry.partition, "items": 0, "rows": entry.rows_before, "action": "run", "last": None},
        )
        unit["items"] += entry.items
    plan["units"] = [months[k] for k in sorted(months)]
    return plan


Mode = Ingest | Renormalize | Backfill | WarcBackfill
# Told (inputs normalised so far, inputs to normalise) as batches end.
Progress = Callable[[int, int], None]


def run_source(
    src: SourceConfig,
    root: DataRoot,
    run_id: str,
    mode: Mode | None = None,
    *,
    runner: Runner | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    progress: Progress | None = None,
    batch_size: int = BATCH_SIZE,
    checkpoint: Callable[[], None] | None = None,
) -> SourceSummary:
    """Take one source through every stage of a run; its counts, partitions and ledger entries in the summary.

    The caller holds the source's lock (`source_lock`). A backfill unit's failure is
    its ledger entry's (status `failed`); other failures raise. `checkpoint` is called
    after each commit of a run made of several (a WARC source's segments), so that the
    storage can publish it (a bucket's push) before the next begins.
    """
    mode = mode or Ingest()
    runner = runner or LocalRunner()
    started = datetime.now(UTC)
    if src.kind == "warc":
        if not isinstance(mode, Ingest | WarcBackfill):
            raise ConfigError(
                f"source {src.name}: a warc source is read by `newsflow run` and `newsflow backfill`"
                " (`newsflow run --force` reads its WARC files again with the current normaliser)"
            )
        return _run_warc(src, root, run_id, mode, runner, progress, batch_size, started, checkpoint)
    if isinstance(mode, WarcBackfill):
        raise ConfigError(f"source {src.name}: only a warc source is backfilled by capture date")
    if isinstance(mode, Backfill):
        try:
            return _run(src, root, run_id, mode, runner, transport, progress, batch_size, started)
        except BrokenProcessPool:
            # The command was stopped (its workers terminated) or the system killed a worker:
            # not the month's failure. No ledger entry, so the next backfill runs it again.
            raise
        except Exception as exc:  # a unit's failure is recorded, and the other units go on
            entry = _unit_entry(src, mode, run_id, started, "failed", f"{type(exc).__name__}: {str(exc)[:1000]}")
            write_ledger(root, [entry])
            return SourceSummary(src.name, discovered=len(mode.unit.items), ledger=[entry], error=entry.error)
    return _run(src, root, run_id, mode, runner, transport, progress, batch_size, started)


def _run_warc(
    src: SourceConfig,
    root: DataRoot,
    run_id: str,
    mode: Ingest | WarcBackfill,
    runner: Runner,
    progress: Progress | None,
    batch_size: int,
    started: datetime,
    checkpoint: Callable[[], None] | None = None,
) -> SourceSummary:
    """A WARC source's run: one commit per segment of its records, each with the files' progress (see pipeline.warc).

    A backfill is the same run over the records captured in its window, its progress
    kept under its own name.
    """
    key: str | None = None
    if isinstance(mode, WarcBackfill):
        check_redo(mode.redo)
        key = mode.key(src.name)
        since = max(d for d in (src.warc.since, mode.start) if d is not None)
        until = min(d for d in (src.warc.until, mode.end) if d is not None)
        src = dataclasses.replace(src, warc=dataclasses.replace(src.warc, since=since, until=until))
    # Every file read from its start again (a run killed meanwhile reads them again too).
    # Otherwise a backfill resumes where one of the same window stopped, which is also
    # what redo "failed" asks for: one that completed reads nothing new.
    if mode.force if isinstance(mode, Ingest) else mode.redo == "all":
        with StateStore(root.state) as store:
            store.forget_progress(key or src.name)
    total: SourceSummary | None = None
    skipped: Counter[str] = Counter()
    passed: set[str] = set()  # files found cut short: read on by the next run, not the next segment
    for index in itertools.count():
        spool = root.spills(run_id) / src.name / f"warc-{index:05d}.spool"
        try:
            seg = runner.call("discover", plan_segment, src, root, spool, index == 0, frozenset(passed), key)
            skipped.update(seg.skipped)
            passed.update(p.file for p in seg.progress if p.cut)
            early = BatchResult(notes=seg.notes, progress=seg.progress)
            summary = _run(src, root, run_id, mode, runner, None, progress, batch_size, started, (seg.plan, early))
        finally:
            spool.unlink(missing_ok=True)
        total = summary if total is None else _added(total, summary)
        if not seg.more or summary.error:
            break
        if checkpoint is not None:
            checkpoint()
    assert total is not None
    total.skipped = dict(sorted(skipped.items()))
    if skipped:
        shown = ", ".join(f"{n} {why}" for why, n in skipped.most_common())
        total.notes.append(f"WARC records not taken: {shown}")
    return total


def _added(a: SourceSummary, b: SourceSummary) -> SourceSummary:
    """Two consecutive commits' summaries of one source as one."""
    counts = ("discovered", "new", "changed", "unchanged", "written", "superseded", "quarantined", "deferred")
    merged = dataclasses.replace(a, **{k: getattr(a, k) + getattr(b, k) for k in counts})
    merged.partitions = sorted(set(a.partitions) | set(b.partitions))
    merged.reasons = dict(Counter(a.reasons) + Counter(b.reasons))
    merged.deferrals = dict(Counter(a.deferrals) + Counter(b.deferrals))
    merged.notes = a.notes + [n for n in b.notes if n not in a.notes]  # a gap check speaks after every segment
    merged.learned = a.learned + b.learned
    merged.ledger = a.ledger + b.ledger
    merged.restripped = a.restripped + b.restripped
    merged.error, merged.user_error = b.error or a.error, b.user_error or a.user_error
    return merged


def _run(
    src: SourceConfig,
    root: DataRoot,
    run_id: str,
    mode: Mode,
    runner: Runner,
    transport: httpx.AsyncBaseTransport | None,
    progress: Progress | None,
    batch_size: int,
    started: datetime,
    planned: tuple[Plan, BatchResult] | None = None,
) -> SourceSummary:
    # 1. Plan: what to normalise, and what fetching already decided (`early`), with the
    # boilerplate the source has learned so far (a WARC source's segment comes planned).
    src, generation, lost = with_learned(src, root)
    early: BatchResult | None
    if planned is not None:
        (plan, early), force = planned, mode.force if isinstance(mode, Ingest) else isinstance(mode, WarcBackfill)
    else:
        plan, early, force = _plan(src, root, run_id, mode, runner, transport)
    summary = SourceSummary(src.name, plan.discovered, plan.new, plan.changed, plan.unchanged)
    # 2. Normalise, in batches spread over the runner.
    prefix = f"bf{mode.unit.period}-" if isinstance(mode, Backfill) else "l" if _relearn(mode) else "b"
    batches = in_batches(plan.todo, _batch_size(len(plan.todo), batch_size, runner.parallel))
    calls = [(src, root, run_id, f"{prefix}{i:06d}", batch, force) for i, batch in enumerate(batches)]
    results: dict[int, BatchResult] = {}
    done = 0
    if progress:
        progress(0, len(plan.todo))
    for i, result in runner.map("normalize-batch", process_batch, calls):
        results[i] = result
        done += len(batches[i])
        if progress:
            progress(done, len(plan.todo))
    # 3. Merge, and 4. place every article in one partition.
    merged = merge_batches(([early] if early else []) + [results[i] for i in range(len(batches))])
    replace: str | None = None
    moved: list[Any] = []
    spilled: list[list[str]] = []
    if isinstance(mode, Backfill):
        replace = f"{src.name}/{mode.unit.period}"
        here = {s.path for s in merged.states if s.status == "written" and s.partition == replace}
        moved = [s for s in merged.states if s.status == "written" and s.partition != replace]
        # Only this month is rebuilt: an article that now belongs to another month is
        # written nowhere (the next ingest places it), an old copy of one that came here
        # is deleted where it was.
        spilled = list(merged.spills.values())
        merged.spills = {replace: merged.spills.get(replace, [])}
        merged.deletes = stale_copies(mode.unit.items, replace, here)
        # An article another month owns is left out here (its old row stays while that
        # month, running in the same backfill, has yet to take it: `keep`); one written
        # here is deleted where other inputs' rows put it before.
        left_out = {aid for aid, _ in mode.unit.elsewhere}
        if left_out:
            merged.deletes[replace] = sorted(left_out)
        written = {s.article_id for s in merged.states if s.path in here and s.article_id} - left_out
        inputs = {c.rel for c in mode.unit.items}
        for part, ids in copies_elsewhere(root, src.name, written, inputs, replace).items():
            merged.deletes[part] = sorted(set(merged.deletes.get(part, ())) | set(ids))
    elif merged.states:
        assign_partitions(root, src.name, merged)
    # 5. Stage the partitions' new files in one commit, and 6. finish: publish them with
    # the quarantine as one, then the state and the ledger. A publish that finds a
    # partition changed since it was staged (a concurrent unit of the same backfill
    # deleted a moved article there) changes nothing: the partitions are staged again.
    keys = sorted(set(merged.spills) | set(merged.deletes))
    keep = mode.keep if isinstance(mode, Backfill) else frozenset()
    try:
        for attempt in range(1, COMMIT_ATTEMPTS + 1):
            with Commit.begin(root, src.name) as commit:
                staging = [
                    (root, k, merged.spills.get(k, []), merged.deletes.get(k, []), run_id, commit, k == replace, keep)
                    for k in keys
                ]
                writes: list[PartitionWrite] = [
                    w for _, w in sorted(runner.map("write-partition", write_partition, staging))
                ]
                try:
                    if isinstance(mode, Backfill):
                        unit_args = (root, src, run_id, mode, merged, writes, moved, started, commit)
                        summary = runner.call("finish-source", _finish_unit, *unit_args)
                    else:
                        ingest = isinstance(mode, Ingest)
                        listings = ingest and src.kind in HTTP_KINDS  # every listing read again
                        log = f"{run_id}-learned" if _relearn(mode) else run_id
                        finish_args = (root, src, run_id, merged, writes, summary, commit, listings, ingest, log)
                        summary = runner.call("finish-source", finish_source, *finish_args)
                except CommitConflict:
                    if attempt == COMMIT_ATTEMPTS:
                        raise
                    continue
            # 7. Learn the source's boilerplate from what was written; an ingest then
            # normalises again the stored articles that carry blocks learned since.
            # (In this process, not a stage of its own: a few SQLite statements per run.)
            learning = learn_from_run(*_counted(root, src, merged, replace, generation))
            summary.notes += [note for note in (lost, learning.error) if note]
            summary.learned = learning.lines
            if learning.lines:
                shown = "; ".join(repr(t if len(t) <= 60 else t[:57] + "...") for t in learning.lines[:5])
                more = f" and {len(learning.lines) - 5} more" if len(learning.lines) > 5 else ""
                summary.notes.append(f"learned {len(learning.lines)} boilerplate block(s): {shown}{more}")
            if isinstance(mode, Ingest) and learning.stale:
                if src.kind == "warc":  # its inputs are records read once in file order, not files to open again
                    summary.notes.append(
                        f"{len(learning.stale)} stored article(s) carry boilerplate learned since they were written;"
                        " WARC records are not read again by a run: `newsflow run --force` or `newsflow backfill`"
                        " over their capture days strips it"
                    )
                else:
                    summary = _restrip(src, root, run_id, summary, learning.stale, runner, progress, batch_size)
            if isinstance(mode, Renormalize | WarcBackfill) and not _relearn(mode):
                summary.ledger = _partition_ledger(root, src, run_id, merged, writes, mode, started)
            elif isinstance(mode, Ingest):
                summary.notes += _gap_notes(root, summary)
            return summary
        raise AssertionError("unreachable: the last attempt returns or raises")
    finally:
        for paths in spilled:  # a backfill's other units go on in the same spill folder
            for path in paths:
                with contextlib.suppress(OSError):
                    os.unlink(path)


def _relearn(mode: Mode) -> bool:
    """Whether the run normalises stored articles again for boilerplate learned since they were written."""
    return isinstance(mode, Renormalize) and mode.inputs is not None


def _counted(
    root: DataRoot, src: SourceConfig, merged: BatchResult, replace: str | None, generation: int
) -> tuple[DataRoot, SourceConfig, list[Counted], list[str], int]:
    """`learn_from_run`'s arguments: the articles the commit wrote (a backfill unit: in its month), the inputs gone."""
    written = {s.path for s in merged.states if s.status == "written" and (replace is None or s.partition == replace)}
    gone = [s.path for s in merged.states if s.status == "quarantined"]
    return root, src, [c for c in merged.counted if c.input in written], gone, generation


def _restrip(
    src: SourceConfig,
    root: DataRoot,
    run_id: str,
    summary: SourceSummary,
    stale: list[str],
    runner: Runner,
    progress: Progress | None,
    batch_size: int,
) -> SourceSummary:
    """Normalise the stale stored articles again, with the boilerplate learned now; the summary says how many."""
    try:
        again = _run(
            src,
            root,
            run_id,
            Renormalize(inputs=frozenset(stale)),
            runner,
            None,
            progress,
            batch_size,
            datetime.now(UTC),
        )
    except Exception as exc:  # the run's own commit stands; the next run finds the same articles stale
        summary.notes.append(
            f"{len(stale)} stored articles carry newly learned boilerplate; normalising them again failed "
            f"({type(exc).__name__}: {str(exc)[:300]}): the next run retries"
        )
        return summary
    summary.restripped = again.written
    summary.learned += again.learned
    summary.notes += again.notes
    summary.notes.append(f"{again.written} stored article(s) normalised again without the boilerplate learned")
    return summary


# The smallest batch a run cuts its inputs into to keep every worker busy: a batch is a
# task run, which costs the orchestration tens of milliseconds.
MIN_BATCH_SIZE = 200


def _batch_size(inputs: int, most: int, parallel: int) -> int:
    """At most `most` inputs a batch, but enough batches for every worker (an HTML run below `most` used one core)."""
    return min(most, max(MIN_BATCH_SIZE, -(-inputs // max(parallel, 1))))


def _plan(
    src: SourceConfig,
    root: DataRoot,
    run_id: str,
    mode: Mode,
    runner: Runner,
    transport: httpx.AsyncBaseTransport | None,
) -> tuple[Plan, BatchResult | None, bool]:
    """(inputs to normalise, what fetching decided, whether unchanged inputs are normalised too)."""
    if isinstance(mode, Backfill):
        unit, early = mode.unit, None
        if src.kind in HTTP_KINDS:
            from pipeline.http_source import fetch_unit

            unit, early = runner.call("fetch", fetch_unit, src, root, run_id, unit, transport)
        items = tuple(i for i in unit.items if not isinstance(i, ListedUrl))
        if len(items) != len(unit.items):  # fetch_unit fetches every listed URL
            raise RuntimeError(f"{src.name} {unit.period}: a listed URL was not fetched")
        return Plan(src.name, len(items), 0, len(items), 0, items), early, True
    if isinstance(mode, Renormalize):
        plan = runner.call("plan-renormalize", plan_renormalize_source, src, root, mode.start, mode.end, mode.inputs)
        # Stored articles named for their learned boilerplate are current by version: force them.
        return plan, None, mode.inputs is not None
    if isinstance(mode, WarcBackfill):  # its segments come planned
        raise TypeError("a WARC source's segments are planned by _run_warc")
    if src.kind in HTTP_KINDS:
        from pipeline.http_source import fetch_source

        fetched = runner.call("fetch", fetch_source, src, root, run_id, transport)
        return fetched.plan, fetched.early, mode.force
    return runner.call("discover", plan_source, src, root, mode.force), None, mode.force


def _unit_entry(
    src: SourceConfig, mode: Backfill, run_id: str, started: datetime, status: str, error: str | None = None, **n: int
) -> LedgerEntry:
    unit = mode.unit
    versions = {normalizer_for(src.format, c.rel)[1] for c in unit.items} or {normalizer_for(src.format, "")[1]}
    return LedgerEntry(
        source=src.name,
        partition=unit.period,
        kind="backfill",
        status=status,
        run_id=run_id,
        items=len(unit.items),
        written=n.get("written", 0),
        quarantined=n.get("quarantined", 0),
        moved=n.get("moved", 0),
        removed=n.get("removed", 0),
        rows_before=n.get("rows_before", max(unit.rows, 0)),
        normalizer_version=";".join(sorted(versions)),
        inputs=unit.inputs,
        range_start=mode.window[0],
        range_end=mode.window[1],
        started_at=started,
        finished_at=datetime.now(UTC),
        error=error,
    )


def _finish_unit(
    root: DataRoot,
    src: SourceConfig,
    run_id: str,
    mode: Backfill,
    merged: BatchResult,
    writes: Sequence[PartitionWrite],
    moved: list[Any],
    started: datetime,
    commit: Commit,
) -> SourceSummary:
    """Publish a backfill unit's partitions and quarantine as one; then its state and ledger entry."""
    part = f"{src.name}/{mode.unit.period}"
    changes = stage_outcomes(commit, f"{run_id}-{mode.unit.period}", merged, writes)
    keep = [s for s in merged.states if (s.status == "written" and s.partition == part) or s.status == "quarantined"]
    state = commit.stage_state(*unit_state(root, src, Partition.parse(part), keep, moved, mode.keep))
    publish(root, src.name, changes, state=state)
    forget_validators(root, src, moved)
    written = next(w for w in writes if w.partition == part)
    entry = _unit_entry(
        src,
        mode,
        run_id,
        started,
        "completed",
        written=written.rows_after,
        quarantined=len(merged.quarantined),
        moved=len(moved),
        removed=written.removed,
        rows_before=written.rows_before,
    )
    write_ledger(root, [entry])
    return SourceSummary(
        src.name,
        discovered=len(mode.unit.items),
        written=written.upserted,
        quarantined=len(merged.quarantined),
        partitions=[part],
        ledger=[entry],
    )


def _partition_ledger(
    root: DataRoot,
    src: SourceConfig,
    run_id: str,
    merged: BatchResult,
    writes: list[PartitionWrite],
    mode: Renormalize | WarcBackfill,
    started: datetime,
) -> list[LedgerEntry]:
    """One ledger entry per partition a re-normalisation (or a WARC backfill's segment) rewrote."""
    rows: dict[str, int] = defaultdict(int)
    for s in merged.states:
        if s.status == "written" and s.partition:
            rows[s.partition] += 1
    version = ";".join(sorted({s.normalizer_version or "" for s in merged.states if s.status == "written"}))
    now = datetime.now(UTC)
    window = (mode.start.isoformat() if mode.start else None, mode.end.isoformat() if mode.end else None)
    entries = [
        LedgerEntry(
            source=src.name,
            partition=Partition.parse(w.partition).period,
            kind="renormalize" if isinstance(mode, Renormalize) else "backfill",
            status="completed",
            run_id=run_id,
            items=rows.get(w.partition, 0),
            written=w.rows_after,
            quarantined=0,
            moved=0,
            removed=w.removed,
            rows_before=w.rows_before,
            normalizer_version=version,
            inputs="",
            range_start=window[0],
            range_end=window[1],
            started_at=started,
            finished_at=now,
        )
        for w in writes
    ]
    write_ledger(root, entries)
    return entries


def _gap_notes(root: DataRoot, summary: SourceSummary) -> list[str]:
    """The gap check's notes; a check that cannot read the history is a note too, never a failed run."""
    try:
        return gap_notes(root, summary, datetime.now(UTC).date())
    except (OSError, ValueError) as exc:  # pyarrow's errors are both
        return [f"coverage check skipped: {type(exc).__name__}: {str(exc)[:200]}"]


def plan_backfill(
    src: SourceConfig,
    root: DataRoot,
    start: date,
    end: date,
    redo: str,
    newest_first: bool = False,
    *,
    runner: LocalRunner | None = None,
    dry_run: bool = False,
) -> BackfillPlan:
    """Place each input of the source in its month and pick the range's partitions to rebuild."""
    if src.kind == "warc":
        raise ConfigError(f"source {src.name}: a warc source is backfilled by capture date (WarcBackfill), not planned")
    if src.kind in HTTP_KINDS:
        from pipeline.http_source import plan_http_backfill

        return plan_http_backfill(src, root, start, end, redo, newest_first, dry_run)
    local = runner or LocalRunner()

    def resolve(items: list[Any]) -> list[Resolved]:
        calls = [(src, root, chunk) for chunk in in_batches(items)]
        return [r for _, chunk in sorted(local.map("resolve", resolve_batch, calls)) for r in chunk]

    return plan_files_backfill(src, root, start, end, redo, resolve, newest_first, dry_run)


# How long a run waits for another run of the same source to finish (a long backfill).
SOURCE_LOCK_TIMEOUT_S = 24 * 3600.0
# How often a commit whose partitions changed under it is staged again.
COMMIT_ATTEMPTS = 3


@contextlib.contextmanager
def source_lock(root: DataRoot, source: str, on_wait: Callable[[Path], None] | None = None) -> Iterator[bool]:
    """Hold the source's run lock: runs of one source (ingest, backfill, re-normalisation) take turns.

    A backfill plans from the inputs and state as they are, then replaces whole months;
    an ingest writing the same months meanwhile could have its new rows replaced away.
    `on_wait(path)` is told when another run holds it. Yields whether it was free at once.
    Taking it first finishes (or discards) what a killed command of the source left.
    """
    path = root.source_lock(source)
    held = contextlib.ExitStack()
    free = True
    try:
        held.enter_context(locked(path, timeout=0))
    except LockTimeout:
        if on_wait is not None:
            on_wait(path)
        held.enter_context(locked(path, timeout=SOURCE_LOCK_TIMEOUT_S))
        free = False
    with held:
        # Whatever a killed command of the source left: its journal rolled forward, its staging removed.
        recover(root, source)
        yield free
