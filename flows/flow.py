"""The Prefect flows: `ingest`, `renormalize` and `backfill`, thin wiring over `pipeline.run`.

Each flow loads the config, takes each source's lock and calls `run_source`; a
`PrefectRunner` makes every stage of it a Prefect task run (retried on transient
errors), with the CPU-bound stages handed to this machine's process pool.
"""

from __future__ import annotations

import contextlib
import functools
import shutil
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextvars import ContextVar
from dataclasses import asdict
from datetime import date
from pathlib import Path
from typing import Any, ParamSpec, TypeVar, cast

from prefect import Task, flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NONE
from prefect.context import FlowRunContext
from prefect.futures import as_completed
from prefect.runtime import flow_run
from prefect.states import Failed
from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner
from prefect.utilities.annotations import quote

from flows.config import load_config
from pipeline.backfill import BackfillPlan, describe
from pipeline.config import SourceConfig, source_problem
from pipeline.dedup import DedupSummary, update_clusters
from pipeline.errors import UserError
from pipeline.ingest import BATCH_SIZE, SourceSummary
from pipeline.run import (
    Backfill,
    Ingest,
    LocalRunner,
    Mode,
    Renormalize,
    WarcBackfill,
    backfill_units,
    describe_warc_backfill,
    plan_backfill,
    run_source,
    source_lock,
)
from pipeline.storage import Storage, open_storage
from pipeline.summary import BackfillFailed, BackfillSummary, RunFailed, RunSummary
from pipeline.workers import default_workers, exit_with_owner, shutdown_pool, stop_workers
from warehouse.errors import CommitConflict, TransientError
from warehouse.layout import DataRoot
from warehouse.ledger import LedgerEntry
from warehouse.writer import clean_stale_staging

__all__ = [
    "TASK_RUNNERS",
    "BackfillFailed",
    "BackfillSummary",
    "Observer",
    "PrefectRunner",
    "RunFailed",
    "RunSummary",
    "backfill",
    "ingest",
    "observed_by",
    "renormalize",
    "task_runner",
]

P = ParamSpec("P")
R = TypeVar("R")

# Told (label, done, total) as batches (and backfill months) end: the CLI's progress bar.
Progress = Callable[[str, int, int], None]


class Observer:
    """What the command that calls a flow in-process learns of it: progress, and how many task runs it made."""

    def __init__(self, progress: Progress | None = None) -> None:
        self.progress = progress
        self._task_runs = 0
        self._lock = threading.Lock()

    @property
    def task_runs(self) -> int:
        """Task runs the flows made so far (what their server must have recorded before it stops)."""
        return self._task_runs

    def made(self, n: int = 1) -> None:
        """Count `n` task runs made."""
        with self._lock:
            self._task_runs += n


# A context variable, not a flow parameter (parameters go to the Prefect API as JSON);
# Prefect's task runner copies the context into the threads its tasks run in.
_observer: ContextVar[Observer | None] = ContextVar("newsflow_observer", default=None)


@contextlib.contextmanager
def observed_by(observer: Observer) -> Iterator[Observer]:
    """Report the flows called inside the block to `observer`."""
    token = _observer.set(observer)
    try:
        yield observer
    finally:
        _observer.reset(token)


def _made(n: int = 1) -> None:
    observer = _observer.get()
    if observer is not None:
        observer.made(n)


def _report() -> Progress | None:
    observer = _observer.get()
    return observer.progress if observer is not None else None


@contextlib.contextmanager
def _pool_for_the_run() -> Iterator[None]:
    """Shut the worker pool down when the flow ends; stopped (Ctrl-C, SIGTERM, a cancellation), without waiting.

    A stopped run's running batches are abandoned: what they stage is never published.
    Waiting for them would hang the stop behind a worker stuck in a slow read.
    """
    try:
        yield
    except BaseException as exc:
        if not isinstance(exc, Exception):
            stop_workers()
        raise
    finally:
        shutdown_pool()


def _opaque(value: R) -> R:
    """Pass a bulky task input without Prefect walking it in search of futures (Prefect unwraps `quote`)."""
    return cast(R, quote(value))


def _transient(task: Any, task_run: Any, state: Any) -> bool:
    """Retry only errors that may clear by themselves (a conflicting commit is staged again by the core)."""
    try:
        state.result()
    except CommitConflict:
        return False
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


def _call(fn: Callable[..., R], args: tuple[Any, ...]) -> R:
    return fn(*args)


def _in_pool(local: LocalRunner, fn: Callable[..., R], args: tuple[Any, ...]) -> R:
    return local.run(fn, *args)


# One task per stage of `run_source`, so each shows in Prefect under its own name.
_STAGES = (
    "discover",
    "fetch",
    "plan-renormalize",
    "plan-backfill",
    "finish-source",
    "dedup",
    "report",
)
_IN_PROCESS: dict[str, Task[..., Any]] = {name: _thin_task(name)(_call) for name in _STAGES}
_POOL_STAGES = ("normalize-batch", "write-partition")
# Stages `call`ed in a worker of the pool (CPU-bound, and memory the flow's process, which
# `serve` keeps for days, would hold on to): the duplicate index's update and the report.
_POOL_CALLS = ("dedup", "report")
_IN_POOL: dict[str, Task[..., Any]] = {name: _thin_task(name)(_in_pool) for name in (*_POOL_STAGES, *_POOL_CALLS)}


def _job(job: Callable[[], R]) -> R:
    return job()


# The same stages where the flow's task runner is Dask: each runs in a Dask worker itself.
# Its call goes as one partial, which neither Prefect walks in search of futures nor Dask
# in search of tasks (Dask rebuilds tuples, `quote` among them, as plain ones).
_DIRECT: dict[str, Task[..., Any]] = {name: _thin_task(name)(_job) for name in _POOL_STAGES}

TASK_RUNNERS = ("default", "dask")


def task_runner(kind: str, workers: int = 0, address: str | None = None) -> TaskRunner[Any]:
    """The flows' task runner: Prefect's threads (CPU work in newsflow's process pool), or prefect-dask's.

    With Dask, the scheduler at `address`, else a LocalCluster of `workers` processes
    (one per core by default) started for the flow run and stopped after it.
    """
    if kind == "default":
        return ThreadPoolTaskRunner[Any](max_workers=4)
    if kind != "dask":
        raise UserError(f"task runner {kind!r} is not one of {', '.join(TASK_RUNNERS)}")
    from prefect_dask.task_runners import DaskTaskRunner

    if address:
        return cast(TaskRunner[Any], DaskTaskRunner(address=address))
    cluster = {"n_workers": workers or default_workers(), "threads_per_worker": 1, "dashboard_address": None}
    return cast(TaskRunner[Any], DaskTaskRunner(cluster_kwargs=cluster))


def _on_dask() -> bool:
    """Whether the current flow run's task runner is prefect-dask's."""
    module = sys.modules.get("prefect_dask.task_runners")
    context = FlowRunContext.get()
    return module is not None and context is not None and isinstance(context.task_runner, module.DaskTaskRunner)


class PrefectRunner:
    """A `pipeline.run.Runner` that records every stage as a Prefect task run; CPU-bound ones run in the pool.

    Arguments are passed `quote`d: Prefect would otherwise walk every input of a batch
    looking for futures (25 s of CPU per 100k files).
    """

    def __init__(self, workers: int = 0, distributed: bool = False) -> None:
        self.local = LocalRunner(workers)
        self.parallel = self.local.parallel
        self.distributed = distributed  # CPU-bound stages run where the task runner puts them (Dask)

    def call(self, stage: str, fn: Callable[..., R], *args: Any) -> R:
        """Run one stage as a task run: in this process, or in a worker of the pool for the `_POOL_CALLS`."""
        _made()
        if stage in _POOL_CALLS and not self.distributed:
            return cast(R, _IN_POOL[stage](quote(self.local), quote(fn), quote(args)))
        return cast(R, _IN_PROCESS[stage](quote(fn), quote(args)))

    def map(self, stage: str, fn: Callable[..., R], calls: Sequence[tuple[Any, ...]]) -> Iterator[tuple[int, R]]:
        """Submit one task run per call (each runs in the pool); yield (index, result) as each ends."""
        _made(len(calls))
        if self.distributed:
            futures = {_DIRECT[stage].submit(functools.partial(fn, *args)): i for i, args in enumerate(calls)}
        else:
            futures = {
                _IN_POOL[stage].submit(quote(self.local), quote(fn), quote(args)): i for i, args in enumerate(calls)
            }
        for future in as_completed(list(futures)):
            yield futures[future], cast(R, future.result())


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
    dedup: bool = True,
    report: bool = True,
) -> RunSummary:
    """Ingest the configured sources (all when none named) into the data root."""
    mode = Ingest(force)
    return _run_sources(sources, config, data, batch_size, workers, mode, "ingest-summary", dedup, report)


@flow(name="renormalize", task_runner=ThreadPoolTaskRunner[Any](max_workers=4), log_prints=False)  # type: ignore[arg-type]
def renormalize(
    sources: list[str] | None = None,
    start: str | None = None,
    end: str | None = None,
    config: str = "sources.toml",
    data: str = "data",
    batch_size: int = BATCH_SIZE,
    workers: int = 0,
    dedup: bool = True,
    report: bool = True,
) -> RunSummary:
    """Rebuild rows whose normaliser version differs from the current one (from raw files / raw store)."""
    mode = Renormalize(_day(start), _day(end))
    return _run_sources(sources, config, data, batch_size, workers, mode, "renormalize-summary", dedup, report)


def _day(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None


def _run_sources(
    sources: list[str] | None,
    config: str,
    data: str,
    batch_size: int,
    workers: int,
    mode: Mode,
    artifact: str,
    dedup: bool = True,
    report: bool = True,
) -> RunSummary:
    """The body both flows share: each selected source through `run_source`, the duplicate index, the artifacts."""
    exit_with_owner()
    started = time.monotonic()
    run_id = str(flow_run.get_id() or uuid.uuid4())
    cfg = load_config(Path(config))
    storage = open_storage(data)
    root = storage.root
    runner = PrefectRunner(workers, distributed=_on_dask())
    summary = RunSummary(run_id=run_id, data=storage.location)
    clean_stale_staging(root)
    with _pool_for_the_run():
        for src in cfg.select(sources):
            summary.sources.append(_one_source(src, storage, run_id, mode, runner, batch_size))
        _corpus_steps(summary, storage, runner, dedup, report)
    summary.seconds = time.monotonic() - started
    create_markdown_artifact(key=artifact, markdown=summary.markdown(), description=f"newsflow {artifact}")
    failed = [s for s in summary.sources if s.error]
    if failed:
        # A returned state is the flow run's final state: the run shows as failed (in the
        # UI, to `serve` and to callers) without a traceback for what is one line to fix.
        message = "; ".join(str(s.error) for s in failed)
        return cast(RunSummary, Failed(message=message, data=RunFailed(summary)))
    return summary


def _corpus_steps(
    summary: RunSummary | BackfillSummary, storage: Storage, runner: PrefectRunner, dedup: bool, report: bool
) -> None:
    """The steps over the whole corpus after a run's sources: the duplicate index, then the report."""
    if not (dedup or report):
        return
    try:
        with storage.corpus():
            if dedup:
                summary.duplicates, summary.duplicates_error = _dedup(storage.root, runner)
            if report:
                summary.report, summary.report_error = _publish_report(storage.root, runner)
    except Exception as exc:  # the bucket's corpus lease or its sync: the sources' data stands
        get_run_logger().exception("the corpus steps failed")
        message = f"{type(exc).__name__}: {str(exc)[:500]}"
        if dedup:
            summary.duplicates_error = summary.duplicates_error or message
        if report:
            summary.report_error = summary.report_error or message


def _dedup(root: DataRoot, runner: PrefectRunner) -> tuple[DedupSummary | None, str | None]:
    """Update the duplicate index after a run's writes; a failure is logged and reported, the run's data stands."""
    try:
        return runner.call("dedup", update_clusters, root), None
    except Exception as exc:
        get_run_logger().exception("updating the duplicate index failed")
        return None, f"{type(exc).__name__}: {str(exc)[:500]}"


def _publish_report(root: DataRoot, runner: PrefectRunner) -> tuple[str | None, str | None]:
    """Write the corpus report, publish its key figures as an artifact; a failure is reported, the data stands."""
    # Imported here: the report runs in a worker, and DuckDB need not load in the flow's process.
    from pipeline.report import REPORT_FILE, Report, write_report

    path = (root.root / REPORT_FILE).absolute()
    try:
        made: Report = runner.call("report", write_report, root.root, path)
    except Exception as exc:
        get_run_logger().exception("writing the report failed")
        return None, f"{type(exc).__name__}: {str(exc)[:500]}"
    create_markdown_artifact(
        key="newsflow-report", markdown=made.figures.markdown(path), description="newsflow corpus report: key figures"
    )
    return str(path), None


def _one_source(
    src: SourceConfig, storage: Storage, run_id: str, mode: Mode, runner: PrefectRunner, batch_size: int
) -> SourceSummary:
    """One source of a run; a failure is the source's own (recorded in its summary), never the other sources'."""
    log = get_run_logger()
    report = _report()
    label = f"normalise {src.name}"
    try:
        problem = source_problem(src)
        if problem is not None:
            raise UserError(problem)

        def waiting(path: Path) -> None:
            log.warning("%s: another run holds %s; waiting for it to finish", src.name, path)

        root = storage.root
        with source_lock(root, src.name, waiting), storage.source(src.name) as checkpoint:
            t0 = time.monotonic()
            summary = run_source(
                src,
                root,
                run_id,
                mode,
                runner=runner,
                progress=(lambda done, total: report(label, done, total)) if report else None,
                batch_size=batch_size,
                checkpoint=checkpoint,
            )
        log.info(
            "%s: %d found, %d written, %d quarantined (%.1f s)",
            src.name,
            summary.discovered,
            summary.written,
            summary.quarantined,
            time.monotonic() - t0,
        )
        return summary
    except UserError as exc:  # one line to fix: in the run's state message and summary, not a logged traceback
        return SourceSummary(src.name, error=str(exc), user_error=True)
    except Exception as exc:
        log.exception("source %s failed", src.name)
        return SourceSummary(src.name, error=f"source {src.name} failed: {type(exc).__name__}: {exc}")


@task(name="backfill-partition", cache_policy=NONE)
def backfill_unit_task(
    src: SourceConfig,
    root: DataRoot,
    run_id: str,
    unit: Backfill,
    workers: int,
    on_batch: Callable[[int], None] | None,
) -> LedgerEntry:
    """Rebuild one partition from its inputs; its ledger entry (also on failure)."""
    seen = [0]

    def progress(done: int, total: int) -> None:
        if on_batch is not None and done > seen[0]:
            on_batch(done - seen[0])
            seen[0] = done

    summary = run_source(src, root, run_id, unit, runner=LocalRunner(workers), progress=progress)
    (entry,) = summary.ledger
    if entry.status == "failed":
        get_run_logger().error("%s %s failed: %s", src.name, unit.unit.period, entry.error)
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
    dedup: bool = True,
    report: bool = True,
) -> BackfillSummary:
    """Rebuild the partitions (months) of one source over start..end days; resumable through the run ledger."""
    exit_with_owner()
    started = time.monotonic()
    run_id = str(flow_run.get_id() or uuid.uuid4())
    src = load_config(Path(config)).select([source])[0]
    storage = open_storage(data)
    root = storage.root
    runner = PrefectRunner(workers)
    limit = max(1, max_concurrency)
    try:
        held = contextlib.ExitStack()
        checkpoint = None
        if not dry_run:
            held.enter_context(source_lock(root, src.name))
            checkpoint = held.enter_context(storage.source(src.name))
        with _pool_for_the_run():
            with held:
                first, last = date.fromisoformat(start), date.fromisoformat(end)
                if src.kind == "warc":
                    mode = WarcBackfill(first, last, redo)
                    summary = _warc_backfill(src, storage, run_id, mode, dry_run, checkpoint, workers)
                else:
                    plan: BackfillPlan = runner.call(
                        "plan-backfill",
                        _plan_backfill,
                        src,
                        root,
                        first,
                        last,
                        redo,
                        newest_first,
                        runner.local,
                        dry_run,
                    )
                    with plan:
                        summary = BackfillSummary(run_id, src.name, storage.location, dry_run, describe(plan))
                        if not dry_run:
                            window = (start, end)
                            entries = _run_units(
                                src, root, run_id, plan, runner.local.workers, limit, window, _on_dask()
                            )
                            summary.entries = [asdict(e) for e in entries]
            if not dry_run:
                _corpus_steps(summary, storage, runner, dedup, report)
    finally:
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


def _warc_backfill(
    src: SourceConfig,
    storage: Storage,
    run_id: str,
    mode: WarcBackfill,
    dry_run: bool,
    checkpoint: Callable[[], None] | None,
    workers: int,
) -> BackfillSummary:
    """A WARC source's backfill: its records captured in the window read again (see `WarcBackfill`)."""
    if dry_run:
        plan = describe_warc_backfill(src, storage.root, mode)
        return BackfillSummary(run_id, src.name, storage.location, dry_run, plan)
    # On Dask, the segments' batches run where the task runner puts them, as in a run.
    runner = PrefectRunner(workers, distributed=_on_dask())
    ran = run_source(src, storage.root, run_id, mode, runner=runner, checkpoint=checkpoint)
    if ran.error:
        raise BackfillFailed(f"backfill of {src.name} failed: {ran.error}")
    summary = BackfillSummary(
        run_id, src.name, storage.location, dry_run, describe_warc_backfill(src, storage.root, mode, ran)
    )
    summary.entries = [asdict(e) for e in ran.ledger]
    return summary


def _plan_backfill(
    src: SourceConfig,
    root: DataRoot,
    first: date,
    last: date,
    redo: str,
    newest_first: bool,
    local: LocalRunner,
    dry_run: bool,
) -> BackfillPlan:
    return plan_backfill(src, root, first, last, redo, newest_first, runner=local, dry_run=dry_run)


def _run_units(
    src: SourceConfig,
    root: DataRoot,
    run_id: str,
    plan: BackfillPlan,
    workers: int,
    limit: int,
    window: tuple[str | None, str | None],
    distributed: bool = False,
) -> list[LedgerEntry]:
    """Run the plan's units, at most `limit` at once, in plan order; returns their ledger entries.

    On Dask (`distributed`), each unit is a task run on a Dask worker that normalises
    its month inline (the cluster is the parallelism), and reports no per-batch
    progress (a callback cannot cross to another process).
    """
    units = plan.to_run()
    todo = backfill_units(plan, window)  # each unit's inputs read from the plan when it is submitted
    total_units, total_items = len(units), sum(u.count for u in units)
    counts = {"units": 0, "items": 0}
    lock = threading.Lock()
    report_to = _report()

    def report() -> None:
        if report_to:
            report_to(f"backfill {src.name}: months", counts["units"], total_units)
            report_to(f"backfill {src.name}: inputs", counts["items"], total_items)

    def on_batch(n: int) -> None:
        with lock:
            counts["items"] += n
            report()

    report()
    entries: list[LedgerEntry] = []
    running: list[Any] = []

    def collect() -> None:
        fut = next(as_completed(list(running)))
        running.remove(fut)
        entries.append(fut.result())
        with lock:
            counts["units"] += 1
            report()

    for unit in todo:
        while len(running) >= limit:
            collect()
        _made()
        named = backfill_unit_task.with_options(task_run_name=f"backfill-{unit.unit.period}")
        if distributed:  # Dask rebuilds tuples, Prefect's `quote` among them: plain values go
            running.append(named.submit(src, root, run_id, unit, 1, None))
        else:
            running.append(named.submit(_opaque(src), _opaque(root), run_id, _opaque(unit), workers, _opaque(on_batch)))
    while running:
        collect()
    return sorted(entries, key=lambda e: e.partition)
