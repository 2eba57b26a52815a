"""The worker pool: processes, and the priority they run at."""

from __future__ import annotations

import os

import pytest

from pipeline.errors import UserError
from pipeline.workers import DEFAULT_WORKER_NICE, run_in_pool, shutdown_pool, worker_nice


def test_worker_priority_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NEWSFLOW_WORKER_NICE", raising=False)
    assert worker_nice() == DEFAULT_WORKER_NICE
    monkeypatch.setenv("NEWSFLOW_WORKER_NICE", " 0 ")
    assert worker_nice() == 0
    monkeypatch.setenv("NEWSFLOW_WORKER_NICE", "19")
    assert worker_nice() == 19
    for bad in ("high", "-5", "20", "1.5"):
        monkeypatch.setenv("NEWSFLOW_WORKER_NICE", bad)
        with pytest.raises(UserError, match="NEWSFLOW_WORKER_NICE"):
            worker_nice()


@pytest.mark.parametrize("increment", [0, 4])
def test_pool_workers_run_at_the_lower_priority(monkeypatch: pytest.MonkeyPatch, increment: int) -> None:
    monkeypatch.setenv("NEWSFLOW_WORKER_NICE", str(increment))
    shutdown_pool()  # a pool made earlier (another test) kept the priority it started with
    try:
        here = os.nice(0)
        assert run_in_pool(2, os.nice, 0) == min(19, here + increment)
        assert os.nice(0) == here  # the calling process keeps its own priority
    finally:
        shutdown_pool()
