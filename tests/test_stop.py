"""SIGTERM and Ctrl-C stop a run: the flow run ends crashed, no process of it is left, nothing half-written."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from helpers import RenameGate, files_source_config, harness_env, newsflow, wait_exit

REPO = Path(__file__).resolve().parent.parent
SEED = (REPO / "samples" / "anha" / "000_db5c100688d27208.txt").read_text(encoding="utf-8")


def _corpus(folder: Path, files: int) -> None:
    for i in range(files):
        month = 1 + i % 6
        sub = folder / f"m{month}"
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"{i:05d}.txt").write_text(SEED.replace("Kado:", f"Kado {i}:", 1), encoding="utf-8")
        sidecar = {"url": f"https://example.org/{i}", "published_at": f"2024-0{month}-15T10:00:00Z"}
        (sub / f"{i:05d}.json").write_text(json.dumps(sidecar), encoding="utf-8")


def _group(pgid: int) -> list[int]:
    """Processes (not zombies) of process group `pgid`."""
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
                out.append(int(entry.name))
    return out


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.usefixtures("prefect_harness")
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_a_run_whose_flow_run_ends_crashed(tmp_path: Path, signum: int) -> None:
    from prefect.client.orchestration import get_client

    _corpus(tmp_path / "corpus", 600)
    cfg = files_source_config(tmp_path, "stop", tmp_path / "corpus")
    data = tmp_path / "data"
    env = harness_env(PYTHONPATH=str(REPO))
    args = ["run", "--config", str(cfg), "--data", str(data), "--workers", "2"]
    # Stopped while normalising: the signal comes while a worker is about to put its first
    # spill in place, and the worker stays stuck there: the command must not wait for it.
    with RenameGate(f"{data / '.staging' / 'runs'}/*/stop/*/*.arrow", env) as gate:
        proc = subprocess.Popen(
            gate.command(*args), cwd=REPO, env=gate.env, stderr=subprocess.PIPE, text=True, start_new_session=True
        )
        gate.next(proc, timeout=120)
        os.kill(proc.pid, signum)
        stopped = time.monotonic()
        _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signum, err[-2000:]
    assert err.strip().splitlines()[-1] == (
        f"newsflow: stopped by {signal.Signals(signum).name}: "
        "partitions published before it are kept; nothing half-written is visible"
    )
    assert time.monotonic() - stopped < 20  # a hang guard: stopping takes about a second
    for pid in _group(proc.pid):  # the resource tracker ends on its own, a moment after
        wait_exit(pid, timeout=30)
    assert _group(proc.pid) == []  # no worker, tracker or server outlives the command
    for path in (data / "articles").rglob("*"):
        if path.is_file():
            assert path.name == "part-0.parquet"
            pq.read_table(path)
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(sort="START_TIME_DESC", limit=5)
        state = next(r.state for r in runs if r.parameters.get("data") == str(data))
    assert state is not None and state.is_crashed(), state


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.usefixtures("prefect_harness")
def test_a_stopped_backfill_records_no_failed_month_and_its_rerun_writes_every_article(tmp_path: Path) -> None:
    """A stop breaks the worker pool under the months in flight: that is not their failure, so none is skipped later."""
    import duckdb

    _corpus(tmp_path / "corpus", 600)
    cfg = files_source_config(tmp_path, "stop", tmp_path / "corpus")
    data = tmp_path / "data"
    env = harness_env(PYTHONPATH=str(REPO))
    args = ["backfill", "stop", "--start", "2024-01-01", "--end", "2024-06-30"]
    args += ["--config", str(cfg), "--data", str(data), "--workers", "2", "--no-report"]
    with RenameGate(f"{data / '.staging' / 'runs'}/*/stop/*/*.arrow", env) as gate:
        proc = subprocess.Popen(
            gate.command(*args), cwd=REPO, env=gate.env, stderr=subprocess.PIPE, text=True, start_new_session=True
        )
        gate.next(proc, timeout=120)
        os.kill(proc.pid, signal.SIGTERM)
        _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM, err[-2000:]
    again = newsflow(args, REPO, env)
    assert again.returncode == 0, again.stderr[-2000:]
    files = [str(p) for p in (data / "articles").rglob("part-0.parquet")]
    assert duckdb.execute("SELECT count(DISTINCT article_id) FROM read_parquet(?)", [files]).fetchone() == (600,)
    ledger = [str(p) for p in (data / "runs").rglob("*.parquet")]
    statuses = duckdb.execute("SELECT DISTINCT status FROM read_parquet(?)", [ledger]).fetchall()
    assert statuses == [("completed",)], statuses
