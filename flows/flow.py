"""The `ingest` Prefect flow: thin tasks over `pipeline.ingest`."""

from __future__ import annotations

import contextlib
import functools
import shutil
import threading
import time
import uuid
from collections import defaultdict, deque
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, ParamSpec, TypeVar, cast

from prefect import Task, flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NONE
from prefect.futures import as_completed
from prefect.runtime import flow_run
from prefect.states import Failed
from prefect.task_runners import ThreadPoolTaskRunner
from prefect.utilities.annotations import quote

from flows.config import load_config
from pipeline.backfill import BackfillPlan, Unit, describe, plan_files_backfill, resolve_batch, run_unit
from pipeline.config import HTTP_KINDS, SourceConfig, source_problem
from pipeline.discover import Candidate, Listing, Plan, PlanAhead, plan_source
from pipeline.errors import UserError
from pipeline.http_source import FetchOutcome, fetch_source
from pipeline.ingest import (
    BATCH_SIZE,
    BatchResult,
    SourceSummary,
    adopt_batch,
    assign_partitions,
    finish_source,
    in_batches,
    merge_batches,
    process_batch,
    write_partition,
)
from pipeline.renormalize import plan_renormalize
from pipeline.workers import default_workers, map_in_pool, run_in_pool, shutdown_pool, submit_in_pool
from warehouse.atomic import locked
from warehouse.errors import LockTimeout, TransientError
from warehouse.layout import DataRoot, Partition
from warehouse.ledger import LedgerEntry, write_ledger
from warehouse.state import StateStore
from warehouse.writer import PartitionWrite, clean_stale_staging

__all__ = [
    "BackfillFailed",
    "BackfillSummary",
    "RunFailed",
    "RunSummary",
    "backfill",
    "discard_batches_ahead",
    "ingest",
    "renormalize",
    "set_early_listings",
    "set_progress",
    "start_batches_ahead",
]

P = ParamSpec("P")
R = TypeVar("R")


def _opaque(value: R) -> R:
    """Pass a bulky task input without Prefect walking it in search of futures.

    Prefect unwraps `quote` before calling the task, so the task sees `value` itself;
    the cast only tells the type checker so.
    """
    return cast(R, quote(value))


def _transient(task: Any, task_run: Any, state: Any) -> bool:
    """Retry only errors that may clear by themselves."""
    try:
        state.result()
    except TransientError:
        return True
    except Exception:
        return False
    return False


def _thin_task(name: str) -> Callable[[Callable[P, R]], Task[P, R]]:
    """Task decorator shared by the stages: no caching (inputs are large), retry transient errors only."""
    return task(
        name=name,
        cache_policy=NONE,
        retries=3,
        retry_delay_seconds=[1.0, 5.0, 15.0],
        retry_condition_fn=_transient,
    )


@_thin_task("discover")
def discover_task(
    src: SourceConfig, root: DataRoot, force: bool, listing: Listing | None = None, planned: PlanAhead | None = None
) -> Plan:
    """Find the source's files (or take the listing made ahead) and diff them against the state.

    A plan made ahead from that listing is taken over when the state is unchanged since.
    """
    if planned is not None and (plan := planned.take(src, root, force)) is not None:
        get_run_logger().info("%s: the plan made while Prefect's server started still holds", src.name)
        return plan
    return plan_source(src, root, force, listing)


@_thin_task("fetch")
def fetch_task(src: SourceConfig, root: DataRoot, run_id: str) -> FetchOutcome:
    """Discover an HTTP source's URLs and fetch what is due into the raw store."""
    with StateStore(root.state) as store:
        previous = store.load(src.name)
    return fetch_source(src, root, run_id, previous)


@_thin_task("plan-renormalize")
def renormalize_task(src: SourceConfig, root: DataRoot, start: str | None, end: str | None) -> Plan:
    """Pick the source's rows whose normaliser version is outdated, within the start..end days."""
    with StateStore(root.state) as store:
        states = store.load(src.name)
    return plan_renormalize(src, root, states, _day(start), _day(end))


def _day(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None


@_thin_task("normalize-batch")
def normalize_task(
    src: SourceConfig,
    root: DataRoot,
    run_id: str,
    name: str,
    items: list[Candidate],
    workers: int,
    force: bool,
    ahead: Ahead | None = None,
) -> BatchResult:
    """Normalise one batch of documents (in a worker process) and spill it, or adopt it if normalised ahead."""
    if ahead is not None:
        try:
            made = ahead.result.result()
            # Here, not in the pool: it only moves files, and would wait there behind the batches queued.
            adopted = adopt_batch(root, made, ahead.stage, run_id)
        except Exception as exc:  # the batch is simply normalised again
            get_run_logger().warning("%s: the batch normalised ahead is not usable (%s); normalising it now", name, exc)
            _remove_stage(root, ahead.stage, None)
        else:
            get_run_logger().info("%s: normalised ahead, while Prefect's server started", name)
            return adopted
    return run_in_pool(workers, process_batch, src, root, run_id, name, items, force)


@_thin_task("write-partition")
def write_task(
    root: DataRoot, key: str, spills: list[str], deletes: list[str], run_id: str, workers: int
) -> PartitionWrite:
    """Atomically rebuild one partition (in a worker process: encoding Parquet is CPU work too)."""
    return run_in_pool(workers, write_partition, root, key, spills, deletes, run_id)


@_thin_task("finish-source")
def finish_task(
    root: DataRoot,
    src: SourceConfig,
    run_id: str,
    merged: BatchResult,
    writes: list[PartitionWrite],
    summary: SourceSummary,
) -> SourceSummary:
    """Write quarantine and state for the source."""
    return finish_source(root, src, run_id, merged, writes, summary)


@dataclass(slots=True)
class RunSummary:
    """The result of one ingest run."""

    run_id: str
    data: str
    seconds: float = 0.0
    sources: list[SourceSummary] = field(default_factory=list)

    def total(self, name: str) -> int:
        """Sum of one counter over sources."""
        return sum(int(getattr(s, name)) for s in self.sources)

    def markdown(self) -> str:
        """The summary as a Markdown table (the Prefect artifact)."""
        cols = ["discovered", "new", "changed", "unchanged", "written", "superseded", "quarantined", "deferred"]
        lines = ["| source | " + " | ".join(cols) + " | partitions |", "|---" * (len(cols) + 2) + "|"]
        for s in self.sources:
            parts = ", ".join(s.partitions) or "-"
            lines.append(f"| {s.source} | " + " | ".join(str(getattr(s, c)) for c in cols) + f" | {parts} |")
        lines.append("| **total** | " + " | ".join(str(self.total(c)) for c in cols) + " | |")
        for s in self.sources:
            if s.error:
                lines.append("")
                lines.append(f"**{s.source} failed**: {s.error}")
        for label, counts in (
            ("Quarantined", {f"{s.source}:{r}": n for s in self.sources for r, n in s.reasons.items()}),
            ("Deferred", {f"{s.source}:{r}": n for s in self.sources for r, n in s.deferrals.items()}),
        ):
            if counts:
                lines.append("")
                lines.append(f"{label} by reason: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
        notes = [f"- {s.source}: {note}" for s in self.sources for note in s.notes]
        if notes:
            lines += ["", "Notes:", *notes]
        lines.append("")
        lines.append(f"Run `{self.run_id}` in {self.seconds:.1f} s; data under `{self.data}`.")
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        """Plain-data form (JSON-ready)."""
        return asdict(self)


Progress = Callable[[str, int, int], None]

# A progress callback is process-local UI, not a flow parameter (parameters are sent
# to the Prefect API and must be JSON), so the CLI installs it here.
_progress: Progress | None = None


def set_progress(callback: Progress | None) -> None:
    """Install (or clear) the callback told `(label, done, total)` as batches (and backfill months) finish."""
    global _progress
    _progress = callback


# Threads only wait here: CPU work runs in the worker pool. More threads than workers
# keep a batch queued in the pool while Prefect records the previous task's states.
# (TaskRunner is invariant in its future type, so Prefect's own annotation rejects
# its ThreadPoolTaskRunner here; the ignore is for that.)
@flow(name="ingest", task_runner=ThreadPoolTaskRunner[Any](max_workers=4), log_prints=False)  # type: ignore[arg-type]
def ingest(
    sources: list[str] | None = None,
    config: str = "sources.toml",
    data: str = "data",
    force: bool = False,
    batch_size: int = BATCH_SIZE,
    workers: int = 0,
) -> RunSummary:
    """Ingest the configured sources (all when none named) into the data root."""
    return _run_sources(sources, config, data, force, batch_size, workers, None, "ingest-summary")


@flow(name="renormalize", task_runner=ThreadPoolTaskRunner[Any](max_workers=4), log_prints=False)  # type: ignore[arg-type]
def renormalize(
    sources: list[str] | None = None,
    start: str | None = None,
    end: str | None = None,
    config: str = "sources.toml",
    data: str = "data",
    batch_size: int = BATCH_SIZE,
    workers: int = 0,
) -> RunSummary:
    """Rebuild rows whose normaliser version differs from the current one (from raw files / raw store)."""
    return _run_sources(sources, config, data, False, batch_size, workers, (start, end), "renormalize-summary")


# How long a run waits for another run of the same source to finish (a long backfill).
SOURCE_LOCK_TIMEOUT_S = 24 * 3600.0


@contextlib.contextmanager
def _source_lock(root: DataRoot, source: str) -> Iterator[bool]:
    """Hold the source's run lock: runs of one source (ingest, backfill, re-normalisation) take turns.

    A backfill plans from the inputs and state as they are, then replaces whole months;
    an ingest writing the same months meanwhile could have its new rows replaced away.
    Yields whether the lock was free at once (False: this run waited for another).
    """
    path = root.source_lock(source)
    held = contextlib.ExitStack()
    free = True
    try:
        held.enter_context(locked(path, timeout=0))
    except LockTimeout:
        get_run_logger().warning("%s: another run holds %s; waiting for it to finish", source, path)
        held.enter_context(locked(path, timeout=SOURCE_LOCK_TIMEOUT_S))
        free = False
    with held:
        yield free


# Folder listings the CLI has a worker make while Prefect's server starts (the run
# would otherwise walk the folder only once the flow run began, with a core idle):
# process-local like the progress callback, source name -> (its config, the listing).
_early: dict[str, tuple[SourceConfig, Future[Listing]]] = {}


def set_early_listings(listings: Mapping[str, tuple[SourceConfig, Future[Listing]]]) -> None:
    """Install (or clear, with {}) folder listings of `files` sources started before the flow run."""
    _early.clear()
    _early.update(listings)


def _early_listing(src: SourceConfig, fresh: bool) -> Listing | None:
    """The listing made ahead for `src` if it is of the same folder and still current, else None (walk now).

    It is not current when the run waited for the source lock: another run may have
    changed the folder's files (and their state) meanwhile.
    """
    entry = _early.pop(src.name, None)
    if entry is None:
        return None
    made_for, listing = entry
    if not fresh or (made_for.path, made_for.include) != (src.path, src.include):
        listing.cancel()
        return None
    try:
        return listing.result()
    except Exception:  # the walk in the discover task meets the same error and reports it
        return None


@dataclass(frozen=True, slots=True)
class Ahead:
    """One batch of a source that the pool normalised before the flow run existed.

    `process_batch` ran it under the stand-in run id `stage` (its spills are in that
    staging folder); the flow adopts it (`adopt_batch`) only for the same config, data
    root, --force and exactly these inputs.
    """

    made_for: SourceConfig
    root: DataRoot
    force: bool
    items: tuple[Candidate, ...]
    stage: str
    result: Future[BatchResult]


# Batches normalised ahead, and the plans they came from, per source name: the CLI
# starts them on the early listing while Prefect's server starts up, when a core
# would otherwise be idle.
_ahead: dict[str, list[Ahead]] = {}
_planned: dict[str, PlanAhead] = {}


def start_batches_ahead(root: DataRoot, force: bool, workers: int) -> None:
    """Have the pool normalise the first batch per worker of each early-listed source, before the flow run.

    Planned like the discover task plans (the listing against the state as it is now);
    the discover task takes that plan over if the state is unchanged, and the flow
    takes a batch over only if its plan has the same batch, and normalises it itself
    otherwise. Without a pool (workers <= 1) nothing is started.
    """
    discard_batches_ahead()
    for name, (src, listing) in _early.items():
        try:
            planned = PlanAhead(src, root, force, listing.result())
        except Exception:  # the flow's own discovery meets the same error and reports it
            continue
        _planned[name] = planned
        for i, batch in enumerate(in_batches(planned.plan.todo)[: max(workers, 0)]):
            stage = f"ahead-{uuid.uuid4().hex}"  # one staging folder per batch: each is adopted or dropped alone
            future = submit_in_pool(workers, process_batch, src, root, stage, f"b{i:06d}", batch, force)
            if future is None:
                break
            _ahead.setdefault(name, []).append(Ahead(src, root, force, tuple(batch), stage, future))


def discard_batches_ahead(entries: list[Ahead] | None = None) -> None:
    """Drop batches normalised ahead that no run took over (all of them, and the plans, without `entries`).

    Their spills go.
    """
    if entries is None:
        entries = [a for group in _ahead.values() for a in group]
        _ahead.clear()
        for planned in _planned.values():
            planned.close()
        _planned.clear()
    for a in entries:
        a.result.cancel()
        # A batch still running removes its folder when it is done.
        a.result.add_done_callback(functools.partial(_remove_stage, a.root, a.stage))


def _remove_stage(root: DataRoot, stage: str, _done: object) -> None:
    shutil.rmtree(root.spills(stage), ignore_errors=True)


def _batches_ahead(src: SourceConfig, root: DataRoot, force: bool, usable: bool) -> list[Ahead]:
    """The batches normalised ahead for `src` if this run can take them over, else [] (and they are dropped)."""
    entries = _ahead.pop(src.name, [])
    if usable and all(a.made_for == src and a.root == root and a.force == force for a in entries):
        return entries
    discard_batches_ahead(entries)
    return []


def _run_sources(
    sources: list[str] | None,
    config: str,
    data: str,
    force: bool,
    batch_size: int,
    workers: int,
    window: tuple[str | None, str | None] | None,
    artifact: str,
) -> RunSummary:
    """The body both flows share: each selected source through the stages, then the summary artifact."""
    started = time.monotonic()
    run_id = str(flow_run.get_id() or uuid.uuid4())
    cfg = load_config(Path(config))
    root = DataRoot(Path(data))
    workers = workers or default_workers()
    summary = RunSummary(run_id=run_id, data=str(root.root))
    clean_stale_staging(root)
    try:
        for src in cfg.select(sources):
            summary.sources.append(_one_source(src, root, run_id, force, batch_size, workers, window))
    finally:
        discard_batches_ahead()  # of sources not run (not selected, or the run failed first)
        shutdown_pool()
    summary.seconds = time.monotonic() - started
    create_markdown_artifact(key=artifact, markdown=summary.markdown(), description=f"newsflow {artifact}")
    failed = [s for s in summary.sources if s.error]
    if failed:
        # A returned state is the flow run's final state: the run shows as failed (in the
        # UI, to `serve` and to callers) without a traceback for what is one line to fix.
        message = "; ".join(str(s.error) for s in failed)
        return cast(RunSummary, Failed(message=message, data=RunFailed(summary)))
    return summary


def _one_source(
    src: SourceConfig,
    root: DataRoot,
    run_id: str,
    force: bool,
    batch_size: int,
    workers: int,
    window: tuple[str | None, str | None] | None,
) -> SourceSummary:
    """One source of a run; a failure is the source's own (recorded in its summary), never the other sources'."""
    try:
        problem = source_problem(src)
        if problem is not None:
            raise UserError(problem)
        with _source_lock(root, src.name) as fresh:
            listing = _early_listing(src, fresh) if window is None else None
            return _ingest_source(src, root, run_id, force, batch_size, workers, _progress, window, listing)
    except UserError as exc:  # one line to fix: in the run's state message and summary, not a logged traceback
        return SourceSummary(src.name, error=str(exc), user_error=True)
    except Exception as exc:
        get_run_logger().exception("source %s failed", src.name)
        return SourceSummary(src.name, error=f"source {src.name} failed: {type(exc).__name__}: {exc}")


class RunFailed(Exception):
    """Some sources of a run failed; `summary` holds every source's outcome (the others ran)."""

    def __init__(self, summary: RunSummary) -> None:
        super().__init__("; ".join(str(s.error) for s in summary.sources if s.error))
        self.summary = summary

    def __reduce__(self) -> tuple[type[RunFailed], tuple[RunSummary]]:
        return (RunFailed, (self.summary,))


def _ingest_source(
    src: SourceConfig,
    root: DataRoot,
    run_id: str,
    force: bool,
    batch_size: int,
    workers: int,
    progress: Progress | None,
    window: tuple[str | None, str | None] | None = None,
    listing: Listing | None = None,
) -> SourceSummary:
    """One source through the stages; with `window` (start, end days), re-normalise outdated rows instead.

    `listing` is the source folder's listing if one was made ahead of the run.
    """
    log = get_run_logger()
    t0 = time.monotonic()
    started = datetime.now(UTC)
    # quote(): Prefect would otherwise walk every Candidate / FileState in these inputs
    # looking for futures (measured: 25 s of CPU per 100k files).
    early: BatchResult | None = None
    if window is not None:
        plan = renormalize_task(_opaque(src), _opaque(root), *window)
    elif src.kind in HTTP_KINDS:
        fetched = fetch_task(_opaque(src), _opaque(root), run_id)
        plan, early = fetched.plan, fetched.early
    else:
        # Only a run that took the early listing (same folder, its lock free at once) can
        # take over the plan made from it, and the batches normalised from that plan.
        planned = _planned.pop(src.name, None)
        if planned is not None and listing is None:
            planned.close()
            planned = None
        plan = discover_task(_opaque(src), _opaque(root), force, _opaque(listing), _opaque(planned))
    log.info("%s: %d found, %d to process (%.1f s)", src.name, plan.discovered, len(plan.todo), time.monotonic() - t0)
    summary = SourceSummary(src.name, plan.discovered, plan.new, plan.changed, plan.unchanged)
    batches = in_batches(plan.todo, batch_size)
    if progress:
        progress(f"normalise {src.name}", 0, len(plan.todo))
    ahead = _batches_ahead(src, root, force, usable=listing is not None)
    taken = [a if i < len(batches) and a.items == tuple(batches[i]) else None for i, a in enumerate(ahead)]
    discard_batches_ahead([a for a, t in zip(ahead, taken, strict=True) if t is None])
    futures = {
        normalize_task.submit(
            _opaque(src),
            _opaque(root),
            run_id,
            f"b{i:06d}",
            _opaque(batch),
            workers,
            force,
            _opaque(taken[i] if i < len(taken) else None),
        ): i
        for i, batch in enumerate(batches)
    }
    results: dict[int, BatchResult] = {}
    done = 0
    for fut in as_completed(list(futures)):
        results[futures[fut]] = fut.result()
        done += len(batches[futures[fut]])
        if progress:
            progress(f"normalise {src.name}", done, len(plan.todo))
    merged = merge_batches(([early] if early else []) + [results[i] for i in range(len(batches))])
    if merged.states:
        assign_partitions(root, src.name, merged)
    log.info("%s: normalised %d batches (%.1f s)", src.name, len(batches), time.monotonic() - t0)
    keys = sorted(set(merged.spills) | set(merged.deletes))
    writes = [
        f.result()
        for f in [
            write_task.submit(
                _opaque(root),
                k,
                _opaque(merged.spills.get(k, [])),
                _opaque(merged.deletes.get(k, [])),
                run_id,
                workers,
            )
            for k in keys
        ]
    ]
    log.info("%s: wrote %d partitions (%.1f s)", src.name, len(writes), time.monotonic() - t0)
    done_summary: SourceSummary = finish_task(
        _opaque(root), _opaque(src), run_id, _opaque(merged), _opaque(writes), _opaque(summary)
    )
    if window is not None:
        _ledger_renormalize(root, src, run_id, merged, writes, window, started)
    log.info("%s: finished (%.1f s)", src.name, time.monotonic() - t0)
    return done_summary


def _ledger_renormalize(
    root: DataRoot,
    src: SourceConfig,
    run_id: str,
    merged: BatchResult,
    writes: list[PartitionWrite],
    window: tuple[str | None, str | None],
    started: datetime,
) -> None:
    """One ledger entry per partition a re-normalisation rewrote."""
    rows: dict[str, int] = defaultdict(int)
    for s in merged.states:
        if s.status == "written" and s.partition:
            rows[s.partition] += 1
    version = ";".join(sorted({s.normalizer_version or "" for s in merged.states if s.status == "written"}))
    now = datetime.now(UTC)
    write_ledger(
        root,
        [
            LedgerEntry(
                source=src.name,
                partition=Partition.parse(w.partition).period,
                kind="renormalize",
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
        ],
    )


class BackfillFailed(Exception):
    """Some partitions of a backfill failed (each is in the ledger with its error)."""


@dataclass(slots=True)
class BackfillSummary:
    """The result of one backfill run: its plan and each partition's ledger entry."""

    run_id: str
    source: str
    data: str
    dry_run: bool
    plan: dict[str, Any]
    entries: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0

    def failed(self) -> list[str]:
        """Partitions whose unit failed in this run."""
        return [e["partition"] for e in self.entries if e["status"] == "failed"]

    def markdown(self) -> str:
        """Plan and outcomes as a Markdown table (the Prefect artifact)."""
        done = {e["partition"]: e for e in self.entries}
        lines = [
            f"Backfill of `{self.source}` over {self.plan['start']} .. {self.plan['end']}"
            + (" (dry run: nothing written)" if self.dry_run else ""),
            "",
            "| partition | items | rows before | plan | status | rows after | removed | quarantined | moved |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for u in self.plan["units"]:
            e = done.get(u["partition"], {})
            cells = [str(e.get(k, "")) for k in ("status", "written", "removed", "quarantined", "moved")]
            lines.append(
                f"| {u['partition']} | {u['items']} | {u['rows']} | {u['action']} | " + " | ".join(cells) + " |"
            )
        lines.append("")
        lines.append(f"Inputs dated outside the range: {self.plan['outside']}.")
        if self.plan["rejected"]:
            lines.append("Inputs giving no article: " + ", ".join(f"{k} {v}" for k, v in self.plan["rejected"].items()))
        for e in self.entries:
            if e["error"]:
                lines.append(f"- {e['partition']} failed: {e['error']}")
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        """Plain-data form (JSON-ready)."""
        return asdict(self)


@_thin_task("plan-backfill")
def plan_backfill_task(
    src: SourceConfig,
    root: DataRoot,
    start: str,
    end: str,
    redo: str,
    newest_first: bool,
    workers: int,
    dry_run: bool = False,
) -> BackfillPlan:
    """Place each input of the source in its month and pick the range's partitions to rebuild."""
    first, last = date.fromisoformat(start), date.fromisoformat(end)
    if src.kind in HTTP_KINDS:
        from pipeline.http_source import plan_http_backfill

        return plan_http_backfill(src, root, first, last, redo, newest_first, dry_run)

    def resolve(items: list[Candidate]) -> list[tuple[str | None, str | None]]:
        results = map_in_pool(workers, resolve_batch, [(src, root, chunk) for chunk in in_batches(items)])
        return [r for chunk in results for r in chunk]

    return plan_files_backfill(src, root, first, last, redo, resolve, newest_first)


@task(name="backfill-partition", cache_policy=NONE)
def backfill_unit_task(
    src: SourceConfig,
    root: DataRoot,
    run_id: str,
    unit: Unit,
    workers: int,
    window: tuple[str | None, str | None],
    on_batch: Callable[[int], None] | None,
) -> LedgerEntry:
    """Rebuild one partition from its inputs and record the outcome in the ledger."""
    early = None
    if src.kind in HTTP_KINDS:
        from pipeline.http_source import fetch_unit

        unit, early = fetch_unit(src, root, run_id, unit)

    def normalise(items: list[Candidate], name: str) -> BatchResult:
        return run_in_pool(workers, process_batch, src, root, run_id, name, items, True)

    entry = run_unit(src, root, run_id, unit, normalise, window, on_batch, early)
    write_ledger(root, [entry])
    if entry.status == "failed":
        get_run_logger().error("%s %s failed: %s", src.name, unit.period, entry.error)
    return entry


@flow(name="backfill", task_runner=ThreadPoolTaskRunner[Any](max_workers=16), log_prints=False)  # type: ignore[arg-type]
def backfill(
    source: str,
    start: str,
    end: str,
    redo: str = "none",
    max_concurrency: int = 2,
    newest_first: bool = False,
    dry_run: bool = False,
    config: str = "sources.toml",
    data: str = "data",
    workers: int = 0,
) -> BackfillSummary:
    """Rebuild the partitions (months) of one source over start..end days; resumable through the run ledger."""
    started = time.monotonic()
    run_id = str(flow_run.get_id() or uuid.uuid4())
    src = load_config(Path(config)).select([source])[0]
    root = DataRoot(Path(data))
    workers = workers or default_workers()
    limit = max(1, max_concurrency)
    try:
        with contextlib.nullcontext() if dry_run else _source_lock(root, src.name):
            plan = plan_backfill_task(_opaque(src), _opaque(root), start, end, redo, newest_first, workers, dry_run)
            summary = BackfillSummary(run_id, src.name, str(root.root), dry_run, describe(plan))
            if not dry_run:
                entries = _run_units(src, root, run_id, plan, workers, limit, (start, end))
                summary.entries = [asdict(e) for e in entries]
    finally:
        shutdown_pool()
        shutil.rmtree(root.spills(run_id), ignore_errors=True)
    summary.seconds = time.monotonic() - started
    create_markdown_artifact(key="backfill-summary", markdown=summary.markdown(), description="newsflow backfill")
    failed = summary.failed()
    if failed:
        raise BackfillFailed(
            f"{len(failed)} of {len(summary.entries)} partitions failed ({', '.join(failed)}); "
            "see the ledger (newsflow query \"SELECT * FROM runs WHERE status = 'failed'\"); "
            "re-run with --redo failed once fixed"
        )
    return summary


def _run_units(
    src: SourceConfig,
    root: DataRoot,
    run_id: str,
    plan: BackfillPlan,
    workers: int,
    limit: int,
    window: tuple[str | None, str | None],
) -> list[LedgerEntry]:
    """Run the plan's units, at most `limit` at once, in plan order; returns their ledger entries."""
    todo = deque(plan.to_run())
    total_units, total_items = len(todo), sum(len(u.items) for u in todo)
    counts = {"units": 0, "items": 0}
    lock = threading.Lock()

    def report() -> None:
        if _progress:
            _progress(f"backfill {src.name}: months", counts["units"], total_units)
            _progress(f"backfill {src.name}: inputs", counts["items"], total_items)

    def on_batch(n: int) -> None:
        with lock:
            counts["items"] += n
            report()

    report()
    entries: list[LedgerEntry] = []
    running: list[Any] = []
    while todo or running:
        while todo and len(running) < limit:
            unit = todo.popleft()
            running.append(
                backfill_unit_task.with_options(task_run_name=f"backfill-{unit.period}").submit(
                    _opaque(src), _opaque(root), run_id, _opaque(unit), workers, window, _opaque(on_batch)
                )
            )
        fut = next(as_completed(list(running)))
        running.remove(fut)
        entries.append(fut.result())
        with lock:
            counts["units"] += 1
            report()
    return sorted(entries, key=lambda e: e.partition)
