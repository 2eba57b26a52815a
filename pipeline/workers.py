"""A process pool for CPU-bound batch work.

Prefect's default task runner uses threads, which the GIL serialises for pure-Python
normalisation; tasks hand their batch to this pool so batches use every core. The
pool uses `spawn` (a fresh interpreter) because forking a process that runs
Prefect's background threads can deadlock the child.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import threading
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from typing import ParamSpec, TypeVar

from pipeline.errors import UserError

__all__ = [
    "DEFAULT_WORKER_NICE",
    "default_workers",
    "map_in_pool",
    "run_in_pool",
    "shutdown_pool",
    "submit_in_pool",
    "worker_nice",
]

P = ParamSpec("P")
R = TypeVar("R")

_pool: ProcessPoolExecutor | None = None
_pool_size = 0
_lock = threading.Lock()  # tasks run on several threads; create the pool once


def _get_pool(workers: int) -> ProcessPoolExecutor:
    global _pool, _pool_size
    with _lock:
        if _pool is None or _pool_size != workers:
            _shutdown()
            _pool = ProcessPoolExecutor(
                max_workers=workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_start_worker,
                initargs=(worker_nice(),),
            )
            _pool_size = workers
        return _pool


def run_in_pool(workers: int, fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    """Run `fn` in the shared pool of `workers` processes (in-process when workers <= 1)."""
    if workers <= 1:
        return fn(*args, **kwargs)
    return _get_pool(workers).submit(fn, *args, **kwargs).result()


def submit_in_pool(workers: int, fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> Future[R] | None:
    """Start `fn` in the shared pool without waiting; None when there is no pool (workers <= 1)."""
    if workers <= 1:
        return None
    return _get_pool(workers).submit(fn, *args, **kwargs)


def map_in_pool(workers: int, fn: Callable[..., R], calls: list[tuple[object, ...]]) -> list[R]:
    """`fn(*args)` for each args tuple, spread over the pool's processes; results in order."""
    if workers <= 1:
        return [fn(*args) for args in calls]
    pool = _get_pool(workers)
    futures = [pool.submit(fn, *args) for args in calls]
    return [f.result() for f in futures]


# Young-generation size of a worker's cyclic garbage collector: the one GC setting the
# project makes, in the one place it is made. Normalising allocates many short-lived
# objects and almost no reference cycles, so the default (700) runs collections that
# find nothing; on 5,000-article batches 100,000 cut a worker's time per article by
# ~10-15 % (~200 -> ~175 us) for no measurable memory.
WORKER_GC_THRESHOLD = (100_000, 50, 100)


# How much workers lower their CPU priority (nice increment; NEWSFLOW_WORKER_NICE, 0 =
# none). The pool keeps every core busy, while the command's own process and Prefect's
# server do short pieces of work that the run waits on (task-state changes, handing
# out the next batch): yielding to them keeps the run moving. Lower priority is also
# the polite default for bulk work on a shared machine; set 0 where newsflow should
# compete on equal terms.
DEFAULT_WORKER_NICE = 10


def worker_nice() -> int:
    """The workers' nice increment: NEWSFLOW_WORKER_NICE, else DEFAULT_WORKER_NICE."""
    value = os.environ.get("NEWSFLOW_WORKER_NICE", "").strip()
    if not value:
        return DEFAULT_WORKER_NICE
    try:
        nice = int(value)
    except ValueError:
        raise UserError(f"NEWSFLOW_WORKER_NICE must be a whole number from 0 to 19, not {value!r}") from None
    if not 0 <= nice <= 19:
        raise UserError(f"NEWSFLOW_WORKER_NICE must be from 0 to 19, not {nice}")
    return nice


def _start_worker(nice: int) -> None:
    """Run once in each worker process when it starts."""
    gc.set_threshold(*WORKER_GC_THRESHOLD)
    if nice and hasattr(os, "nice"):
        os.nice(nice)


def shutdown_pool() -> None:
    """Stop the pool's processes."""
    with _lock:
        _shutdown()


def _shutdown() -> None:
    global _pool
    if _pool is not None:
        _pool.shutdown(cancel_futures=True)
        _pool = None


def default_workers() -> int:
    """One worker per core."""
    return max(1, os.cpu_count() or 1)
