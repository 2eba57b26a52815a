"""The temporary Prefect server `newsflow run` starts, and an operator's configured one."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from flows.server import TemporaryServer
from pipeline.errors import UserError

REPO = Path(__file__).resolve().parent.parent


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env.update(extra)
    return env


def _run(corpus: Path, data: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "flows.cli", "run", "--config", str(corpus), "--data", str(data), "--json"]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, env=env, timeout=300, check=False)


def _runs_into(api_url: str, data: Path) -> int:
    """How many `ingest` flow runs the server at `api_url` recorded for data root `data`."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.sorting import FlowRunSort
    from prefect.settings import PREFECT_API_URL, temporary_settings

    async def count() -> int:
        async with get_client() as client:
            runs = await client.read_flow_runs(sort=FlowRunSort.START_TIME_DESC, limit=50)
            return sum(1 for r in runs if r.parameters.get("data") == str(data))

    with temporary_settings(updates={PREFECT_API_URL: api_url}):
        return asyncio.run(count())


def test_run_starts_and_stops_its_own_server(corpus: Path, tmp_path: Path) -> None:
    out = _run(corpus, tmp_path / "data", _env())
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["sources"]
    # Prefect did not start a second server of its own, and no log or event was lost
    # to a server stopped too early.
    assert "Starting temporary server" not in out.stderr
    assert "Error logging to API" not in out.stderr
    assert "Traceback" not in out.stderr, out.stderr


def test_the_temporary_server_holds_its_port_from_the_start() -> None:
    # The port is bound before the server process starts, so no other process can take
    # it during the seconds the server spends importing Prefect.
    with TemporaryServer() as server:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as other, pytest.raises(OSError):
            other.bind(("127.0.0.1", server.port))
        url = server.wait_ready()
        assert url == f"http://127.0.0.1:{server.port}/api"


def test_run_uses_the_configured_server(corpus: Path, tmp_path: Path) -> None:
    with TemporaryServer() as server:
        url = server.wait_ready()
        out = _run(corpus, tmp_path / "data", _env(PREFECT_API_URL=url))
        assert out.returncode == 0, out.stderr
        assert _runs_into(url, tmp_path / "data") == 1


def test_run_uses_a_server_named_in_the_prefect_profile(corpus: Path, tmp_path: Path) -> None:
    """A server named only in the active Prefect profile (not the environment) is used too."""
    home = tmp_path / "prefect-home"
    home.mkdir()
    with TemporaryServer() as server:
        url = server.wait_ready()
        (home / "profiles.toml").write_text(
            f'active = "remote"\n\n[profiles.remote]\nPREFECT_API_URL = "{url}"\n', encoding="utf-8"
        )
        out = _run(corpus, tmp_path / "data", _env(PREFECT_HOME=str(home)))
        assert out.returncode == 0, out.stderr
        assert _runs_into(url, tmp_path / "data") == 1


def test_server_dies_with_its_parent(tmp_path: Path) -> None:
    """A newsflow process killed with SIGKILL leaves no Prefect server running."""
    pid_file = tmp_path / "server.pid"
    script = (
        "import sys, time\n"
        "from flows.server import TemporaryServer\n"
        "s = TemporaryServer()\n"
        "s.start()\n"
        "s.wait_ready()\n"
        f"open({str(pid_file)!r}, 'w').write(str(s.pid))\n"
        "time.sleep(600)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", script], cwd=REPO, env=_env())
    try:
        deadline = time.monotonic() + 120
        while not pid_file.exists() or not pid_file.read_text():
            assert parent.poll() is None, "the parent exited before its server was ready"
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.1)
        server_pid = int(pid_file.read_text())
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=10)
        deadline = time.monotonic() + 15
        while _alive(server_pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _alive(server_pid)
    finally:
        parent.kill()


def _alive(pid: int) -> bool:
    """True while `pid` exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_startup_timeout_is_a_clear_error() -> None:
    server = TemporaryServer(startup_timeout=0.5)  # far less than a start-up takes
    server.start()
    pid = server.pid
    with pytest.raises(UserError, match="did not start within"):
        server.wait_ready()
    assert server.pid is None
    assert not _alive(pid)  # stopped, not left running


def test_a_stopping_server_records_every_task_run_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Stopped right after a flow run, the server still records all its task runs, without a traceback."""
    home = tmp_path / "prefect-home"
    home.mkdir()
    script = (
        "from prefect import flow, task\n"
        "from prefect.runtime import flow_run\n"
        "from prefect.task_runners import ThreadPoolTaskRunner\n"
        "from flows.server import TemporaryServer\n"
        "@task\n"
        "def one(i): return i\n"
        "@flow(task_runner=ThreadPoolTaskRunner(max_workers=8))\n"
        "def many():\n"
        "    [f.result() for f in [one.submit(i) for i in range(80)]]\n"
        "    return flow_run.get_id()\n"
        "with TemporaryServer() as server, server.in_use():\n"
        "    print(many())\n"
    )
    env = _env(PREFECT_HOME=str(home), PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL="WARNING")
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, env=env, timeout=300, check=False
    )
    assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stderr and "Error flushing" not in out.stderr, out.stderr
    run_id = out.stdout.split()[-1]

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
    from prefect.settings import PREFECT_API_URL, temporary_settings

    async def states() -> list[str]:
        async with get_client() as client:
            runs = await client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run_id])))
            return [r.state.type.value if r.state else "none" for r in runs]

    monkeypatch.setenv("PREFECT_HOME", str(home))  # a new server on the same database
    with TemporaryServer() as server, temporary_settings(updates={PREFECT_API_URL: server.wait_ready()}):
        found = asyncio.run(states())
    assert sorted(found) == ["COMPLETED"] * 80


def _environ(pid: int) -> dict[str, str]:
    """The environment `pid` was exec-ed with (until then, a forked child shows its parent's)."""
    deadline = time.monotonic() + 30
    while b"flows.server" not in Path(f"/proc/{pid}/cmdline").read_bytes():
        assert time.monotonic() < deadline, "the server process never started"
        time.sleep(0.01)
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    return dict(item.split("=", 1) for item in raw.decode().split("\0") if "=" in item)


def test_the_temporary_server_batches_task_run_records_unless_told_otherwise(monkeypatch: pytest.MonkeyPatch) -> None:
    batch = "PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_BATCH_SIZE"
    interval = "PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_FLUSH_INTERVAL"
    monkeypatch.delenv(batch, raising=False)
    monkeypatch.setenv(interval, "2")
    with TemporaryServer() as server:
        assert server.pid is not None
        env = _environ(server.pid)
    assert env[batch] == "100"
    assert env[interval] == "2"  # the operator's setting wins
