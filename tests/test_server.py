"""The Prefect server a one-shot command starts for its life (`LocalServer`), and an operator's configured one."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import Output, harness_url, wait_exit

from flows.server import ONE_SHOT_OPTIONS, LocalServer
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


def _server(tmp: Path, **kwargs: object) -> LocalServer:
    return LocalServer(0, tmp / "server.log", options=ONE_SHOT_OPTIONS, **kwargs)  # type: ignore[arg-type]


@pytest.mark.usefixtures("prefect_harness")
def test_run_uses_the_configured_server(corpus: Path, tmp_path: Path) -> None:
    url = harness_url()
    out = _run(corpus, tmp_path / "data", _env(PREFECT_API_URL=url))
    assert out.returncode == 0, out.stderr
    assert _runs_into(url, tmp_path / "data") == 1


@pytest.mark.usefixtures("prefect_harness")
def test_run_uses_a_server_named_in_the_prefect_profile(corpus: Path, tmp_path: Path) -> None:
    """A server named only in the active Prefect profile (not the environment) is used too."""
    home = tmp_path / "prefect-home"
    home.mkdir()
    url = harness_url()
    (home / "profiles.toml").write_text(
        f'active = "remote"\n\n[profiles.remote]\nPREFECT_API_URL = "{url}"\n', encoding="utf-8"
    )
    out = _run(corpus, tmp_path / "data", _env(PREFECT_HOME=str(home)))
    assert out.returncode == 0, out.stderr
    assert _runs_into(url, tmp_path / "data") == 1


@pytest.mark.slow  # starts a Prefect server
def test_server_dies_with_its_parent(tmp_path: Path) -> None:
    """A newsflow process killed with SIGKILL leaves no Prefect server running."""
    script = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from flows.server import ONE_SHOT_OPTIONS, LocalServer\n"
        f"s = LocalServer(0, Path({str(tmp_path / 'server.log')!r}), options=ONE_SHOT_OPTIONS).__enter__()\n"
        "print(s.pid, flush=True)\n"
        "time.sleep(600)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", script], cwd=REPO, env=_env(), stdout=subprocess.PIPE)
    try:
        assert parent.stdout is not None
        out = Output(parent.stdout)
        assert out.wait_for("\n", timeout=120), "the parent ended before its server was ready"
        server_pid = int(out.text)
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=10)
        assert wait_exit(server_pid, timeout=15), "the server outlived its parent"
        assert not _alive(server_pid)
    finally:
        parent.kill()
        parent.wait()


def _alive(pid: int) -> bool:
    """True while `pid` exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_startup_timeout_is_a_clear_error(tmp_path: Path) -> None:
    server = _server(tmp_path, startup_timeout=0.0)  # no server answers in no time
    with pytest.raises(UserError, match="did not answer within"):
        server.__enter__()
    assert server.pid is None  # stopped, not left running


@pytest.mark.slow  # starts a Prefect server
def test_the_runs_server_records_every_task_run_before_it_stops(
    corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server `newsflow run` started has recorded every task run of the run, finished, when it stops.

    With the samples, a source writing 200 months: more task runs than the 200 the
    server lists a request.
    """
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(200):  # one batch (MIN_BATCH_SIZE), 200 partitions
        year, month = 2000 + i // 12, i % 12 + 1
        (folder / f"{i:03d}.txt").write_text(f"Story {i}\n\nThe council met on item {i} and voted.\n", "utf-8")
        sidecar = {"url": f"https://m.example/{i}", "published_at": f"{year}-{month:02d}-03T10:00:00Z"}
        (folder / f"{i:03d}.json").write_text(json.dumps(sidecar), "utf-8")
    with open(corpus, "a", encoding="utf-8") as fh:
        fh.write(f'\n[sources.many]\npath = "{folder}"\nlearn_boilerplate = false\n')
    home = tmp_path / "prefect-home"
    home.mkdir()
    out = _run(corpus, tmp_path / "data", _env(PREFECT_HOME=str(home)))
    assert out.returncode == 0, out.stderr
    assert "warning" not in out.stderr, out.stderr
    summary = json.loads(out.stdout)
    # Per source: discover, one batch (the samples are far below a batch), one write per
    # partition, finish (the samples teach no boilerplate: nothing is normalised again);
    # then the run's one dedup and its report.
    assert all(s["restripped"] == 0 for s in summary["sources"])
    expected = sum(2 + (1 if s["new"] + s["changed"] else 0) + len(s["partitions"]) for s in summary["sources"]) + 2

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
    from prefect.settings import PREFECT_API_URL, temporary_settings

    async def states() -> list[str]:
        found: list[str] = []
        async with get_client() as client:
            while True:  # a page of 200 at a time, the most the server lists a request
                runs = await client.read_task_runs(
                    flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[summary["run_id"]])),
                    limit=200,
                    offset=len(found),
                )
                found += [r.state.type.value if r.state else "none" for r in runs]
                if len(runs) < 200:
                    return found

    monkeypatch.setenv("PREFECT_HOME", str(home))  # a new server on the same database
    with _server(tmp_path) as server, temporary_settings(updates={PREFECT_API_URL: server.api_url}):
        found = asyncio.run(states())
    assert sorted(found) == ["COMPLETED"] * expected and expected > 200
