"""The worker pool: processes, and the priority they run at."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import wait_exit

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


def test_a_bad_worker_priority_is_said_before_a_command_starts(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from flows.cli import main

    monkeypatch.setenv("NEWSFLOW_WORKER_NICE", "25")
    (tmp_path / "in").mkdir()
    (tmp_path / "sources.toml").write_text(f'[sources.s]\npath = "{tmp_path / "in"}"\n', encoding="utf-8")
    for command in (["run"], ["dedup"]):
        args = [*command, "--data", str(tmp_path / "data")]
        if command == ["run"]:
            args += ["--config", str(tmp_path / "sources.toml")]
        assert main(args) == 2
        err = capsys.readouterr().err
        assert err.strip() == "newsflow: error: NEWSFLOW_WORKER_NICE must be from 0 to 19, not 25", err
    assert not (tmp_path / "data").exists()


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


REPO = Path(__file__).resolve().parent.parent

# A command's process with a busy pool: prints its children's pids, then waits to be killed.
_OWNER = """
import os, sys, time
from pathlib import Path
from helpers import pid_after
from pipeline.workers import map_in_pool, submit_in_pool

map_in_pool(2, pid_after, [(0.5,), (0.5,)])  # both workers are up and past their start-up
busy = [submit_in_pool(2, pid_after, 600) for _ in range(2)]
time.sleep(0.3)
me = os.getpid()
children = [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit() and _ppid(p) == me]
print(" ".join(map(str, children)), flush=True)
time.sleep(600)
"""
_PPID = """
def _ppid(p):
    try:
        return int((p / "stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None
"""


def _running(pid: int) -> bool:
    """Whether `pid` runs (a zombie waiting to be reaped counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_workers_and_the_resource_tracker_die_with_a_killed_owner() -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "tests")])}
    owner = subprocess.Popen(
        [sys.executable, "-c", _PPID + _OWNER], env=env, stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        assert owner.stdout is not None
        children = [int(p) for p in owner.stdout.readline().split()]
        commands = {pid: Path(f"/proc/{pid}/cmdline").read_bytes() for pid in children}
        assert sum(b"resource_tracker" in c for c in commands.values()) == 1, commands
        assert sum(b"multiprocessing" in c and b"resource_tracker" not in c for c in commands.values()) == 2
        os.kill(owner.pid, signal.SIGKILL)
        owner.wait(timeout=30)
        killed = time.monotonic()
        for pid in children:
            wait_exit(pid, timeout=10)  # a hang guard
        left = [pid for pid in children if _running(pid)]
        assert left == [], f"still running {time.monotonic() - killed:.1f} s after the owner was killed: {left}"
        # At once (~0.1 s here), not eventually: a bound thirty times that, for a busy machine.
        assert time.monotonic() - killed < 3
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(owner.pid, signal.SIGKILL)  # whatever is left of the test's own processes


def test_a_process_whose_owner_names_itself_ends_when_the_owner_is_killed(monkeypatch: pytest.MonkeyPatch) -> None:
    """What `serve` does for the flow runs Prefect's runner starts: SIGKILL to serve ends them too."""
    from pipeline.workers import OWNER_ENV, exit_with_owner

    child = (
        "import sys, time\n"
        "from pipeline.workers import exit_with_owner\n"
        "print('watching' if exit_with_owner() else 'not watching', flush=True)\n"
        "time.sleep(120)\n"
    )
    owner = (
        "import os, subprocess, sys\n"
        f"os.environ[{OWNER_ENV!r}] = str(os.getpid())\n"
        f"p = subprocess.Popen([sys.executable, '-c', {child!r}], stdout=subprocess.PIPE, text=True)\n"
        "print(p.pid, p.stdout.readline().strip(), flush=True)\n"
        "p.wait()\n"
    )
    repo = Path(__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": str(repo)}
    proc = subprocess.Popen([sys.executable, "-c", owner], stdout=subprocess.PIPE, text=True, env=env, cwd=repo)
    try:
        assert proc.stdout is not None
        pid, said = proc.stdout.readline().split(" ", 1)
        assert said.strip() == "watching"
        proc.kill()
        proc.wait()
        assert wait_exit(int(pid), 30), "the owned process outlived its killed owner"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    # A process whose parent is not the one named (a command run by hand) is not watched.
    monkeypatch.setenv(OWNER_ENV, "1")
    assert exit_with_owner() is False
