"""A process pool for CPU-bound batch work.

Prefect's default task runner uses threads, which the GIL serialises for pure-Python
normalisation; tasks hand their batch to this pool so batches use every core. The
pool uses `spawn` (a fresh interpreter) because forking a process that runs
Prefect's background threads can deadlock the child.

Workers die with the process that started them: one killed outright (SIGKILL, the
OOM killer) would otherwise leave them running with parent 1, finishing their batches
and writing for a run that no longer exists. Work given to the pool should only
stage files (`warehouse.journal`), so that what becomes visible is published by the
run's own process, which is alive when it does.
"""

from __future__ import annotations

import gc
import multiprocessing
import multiprocessing.connection
import os
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from typing import ParamSpec, TypeVar

from pipeline.errors import UserError

__all__ = [
    "DEFAULT_WORKER_NICE",
    "OWNER_ENV",
    "default_workers",
    "exit_with_owner",
    "map_in_pool",
    "run_in_pool",
    "shutdown_pool",
    "stop_workers",
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
                initargs=(worker_nice(), os.getpid()),
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


# The process that started this one and whose death ends it: `newsflow serve` names itself
# here for the flow-run processes Prefect's runner starts (they inherit its environment).
OWNER_ENV = "NEWSFLOW_OWNER_PID"


def exit_with_owner() -> bool:
    """End this process when its parent named by NEWSFLOW_OWNER_PID is gone (a flow run started by `serve`).

    A served flow run is a process of its own: once `serve` was killed its runs went on
    with parent 1, publishing partitions with no owner and no server to report to. True
    when the watch was started (the variable names this process's parent).
    """
    owner = os.environ.get(OWNER_ENV, "")
    if not owner.isdigit() or int(owner) != os.getppid():
        return False
    threading.Thread(target=_exit_with, args=(int(owner),), name="newsflow-owner-watch", daemon=True).start()
    return True


def _start_worker(nice: int, owner: int) -> None:
    """Run once in each worker process when it starts: collector, priority, signals, and a watch on `owner`."""
    gc.set_threshold(*WORKER_GC_THRESHOLD)
    if nice and hasattr(os, "nice"):
        os.nice(nice)
    # Ctrl-C reaches the terminal's whole process group: the command decides how to stop
    # (and stops the pool); a worker that raised KeyboardInterrupt itself would only
    # break the pool and print a traceback per worker.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_exit_with, args=(owner,), name="newsflow-owner-watch", daemon=True).start()


# How often a worker without a parent sentinel checks its parent (see `_exit_with`).
OWNER_POLL_S = 0.2
EXIT_OWNER_GONE = 75  # EX_TEMPFAIL: nothing is lost, the owner's next run does the work again


def _exit_with(owner: int) -> None:
    """Wait until the process `owner` that started this worker is gone, then end this worker at once.

    Multiprocessing gives a spawned child the read end of a pipe only its parent holds
    (`parent_process().sentinel`): it reads as ready the moment the parent dies, however
    it died. Linux's PR_SET_PDEATHSIG was not used: it fires when the *thread* that
    started the child ends, and the pool starts its processes from whichever thread
    submits first (Prefect's task threads, which end while the command goes on).
    Polling `getppid` is the fallback where there is no sentinel.
    """
    parent = multiprocessing.parent_process()
    if parent is not None and parent.pid == owner:
        multiprocessing.connection.wait([parent.sentinel])
    else:
        while os.getppid() == owner:
            time.sleep(OWNER_POLL_S)
    # No clean-up: what this worker was staging is an orphan that the owner's next
    # command removes, and nothing it does may become visible without its owner.
    os._exit(EXIT_OWNER_GONE)


def shutdown_pool() -> None:
    """Stop the pool's processes."""
    with _lock:
        _shutdown()


def stop_workers() -> None:
    """Terminate the pool's workers at once, for a command told to stop: batches still running are abandoned.

    What they were staging is never published, and the owner's next command removes it;
    `shutdown_pool` then finds them gone. Pool workers are the only multiprocessing
    children newsflow starts, so they are this process's `active_children()`. Safe to
    call from a signal handler: it takes no lock the interrupted code may hold.
    """
    for child in multiprocessing.active_children():
        child.terminate()


def _shutdown() -> None:
    global _pool
    if _pool is not None:
        _pool.shutdown(cancel_futures=True)
        _pool = None


def default_workers() -> int:
    """One worker per core."""
    return max(1, os.cpu_count() or 1)
