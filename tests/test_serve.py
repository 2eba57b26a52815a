"""Schedules and `newsflow serve`: config, deployments, and a real local Prefect server end to end."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

import duckdb
import pytest

from flows.config import load_config
from flows.errors import ConfigError

REPO = Path(__file__).resolve().parent.parent


def _config(tmp: Path, extra: str = "") -> Path:
    cfg = tmp / "sources.toml"
    cfg.write_text(
        f"""
[sources.wire]
path = "{REPO / "samples" / "wire"}"
timezone = "Asia/Tokyo"
[sources.wire.schedule]
cron = "*/15 * * * *"

[sources.anha]
path = "{REPO / "samples" / "anha"}"
schedule = {{ cron = "0 6 * * 1-5", timezone = "Europe/Berlin" }}

[sources.pages]
path = "{REPO / "samples" / "html"}"
format = "html"
{extra}
""",
        encoding="utf-8",
    )
    return cfg


def test_a_schedule_is_a_cron_in_a_timezone_defaulting_to_the_sources(tmp_path: Path) -> None:
    cfg = load_config(_config(tmp_path))
    wire, anha, pages = (cfg.sources[n].schedule for n in ("wire", "anha", "pages"))
    assert wire is not None and (wire.cron, wire.timezone) == ("*/15 * * * *", "Asia/Tokyo")
    assert anha is not None and (anha.cron, anha.timezone) == ("0 6 * * 1-5", "Europe/Berlin")
    assert pages is None


@pytest.mark.parametrize(
    ("schedule", "message"),
    [
        ('"61 * * * *"', "Invalid cron string"),
        ('{ cron = "0 6 * * *", timezone = "Mars/Olympus" }', "Invalid timezone"),
        ('{ cron = "0 6 * * *", every = "day" }', "expected"),
        ("42", "expected"),
    ],
)
def test_a_bad_schedule_is_a_config_error_naming_the_key(tmp_path: Path, schedule: str, message: str) -> None:
    cfg = tmp_path / "sources.toml"
    cfg.write_text(f'[sources.x]\npath = "/tmp"\nschedule = {schedule}\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=f"sources.x.schedule: .*{message}"):
        load_config(cfg)


def test_serve_builds_one_deployment_per_scheduled_source_plus_backfill_and_renormalize(tmp_path: Path) -> None:
    from flows.serve import deployments

    path = _config(tmp_path)
    deps = {f"{d.flow_name}/{d.name}": d for d in deployments(load_config(path), path, tmp_path / "data")}
    assert sorted(deps) == [
        "backfill/newsflow-backfill",
        "ingest/newsflow-anha",
        "ingest/newsflow-wire",
        "renormalize/newsflow-renormalize",
    ]
    wire = deps["ingest/newsflow-wire"]
    (sched,) = wire.schedules
    assert (sched.schedule.cron, sched.schedule.timezone) == ("*/15 * * * *", "Asia/Tokyo")
    assert wire.parameters == {"sources": ["wire"], "config": str(path), "data": str(tmp_path / "data")}
    assert wire.concurrency_limit == 1
    assert wire.concurrency_options is not None and wire.concurrency_options.collision_strategy == "CANCEL_NEW"
    assert wire.entrypoint == "flows.flow.ingest"
    assert deps["backfill/newsflow-backfill"].schedules in (None, [])
    assert deps["backfill/newsflow-backfill"].parameters == {"config": str(path), "data": str(tmp_path / "data")}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def _failures(data: Path) -> str:
    """The errors the ledger recorded (for a failing assertion's message)."""
    if not (data / "runs").exists():
        return ""
    rows = duckdb.sql(f"SELECT partition, error FROM read_parquet('{data}/runs/**/*.parquet') WHERE error IS NOT NULL")
    return "; ".join(f"{p}: {e}" for p, e in rows.fetchall())


def _registered(port: int, name: str) -> bool:
    """True once the server knows the deployment `flow/name`."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/deployments/name/{name}", timeout=2) as resp:
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def _start_serve(
    tmp: Path, cfg: Path, data: Path, port: int, env: dict[str, str]
) -> tuple[subprocess.Popen[bytes], Path]:
    log = tmp / f"serve-{port}.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "flows.cli",
                "serve",
                "--config",
                str(cfg),
                "--data",
                str(data),
                "--port",
                str(port),
            ],
            cwd=tmp,  # served runs must not depend on the working directory
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return proc, log


def _wait_registered(proc: subprocess.Popen[bytes], log: Path, port: int) -> None:
    deadline = time.monotonic() + 240
    while not _registered(port, "backfill/newsflow-backfill"):
        assert proc.poll() is None, log.read_text(errors="replace")[-3000:]
        assert time.monotonic() < deadline, "serve did not come up"
        time.sleep(0.5)


def _local_env(tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env["PREFECT_HOME"] = str(tmp / "prefect-home")  # its own server database
    # serve's default; set here because an in-process CLI test may have left WARNING in os.environ
    env["PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL"] = "INFO"
    return env


def test_serve_starts_a_local_server_and_runs_a_backfill_triggered_with_parameters(tmp_path: Path) -> None:
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL, temporary_settings

    cfg, data, port = _config(tmp_path), tmp_path / "data", _free_port()
    proc, log = _start_serve(tmp_path, cfg, data, port, _local_env(tmp_path))
    try:
        _wait_registered(proc, log, port)
        assert f"Prefect UI: http://127.0.0.1:{port}" in log.read_text()
        with temporary_settings(updates={PREFECT_API_URL: f"http://127.0.0.1:{port}/api"}):
            run = run_deployment(
                "backfill/newsflow-backfill",
                parameters={"source": "wire", "start": "2018-01-01", "end": "2018-04-30"},
                timeout=240,
            )
        assert run.state is not None and run.state.is_completed(), _failures(data) or log.read_text()[-3000:]
        articles = f"read_parquet('{data}/articles/**/*.parquet', hive_partitioning = true)"
        got = duckdb.sql(f"SELECT month::INTEGER, count(*) FROM {articles} GROUP BY ALL ORDER BY ALL").fetchall()
        assert got == [(1, 1), (2, 1), (4, 1)]  # the sample wire articles of 2018-01..04
        ledger = duckdb.sql(f"SELECT partition, status, run_id FROM read_parquet('{data}/runs/**/*.parquet')")
        assert sorted(r[:2] for r in ledger.fetchall()) == [(f"2018-0{m}", "completed") for m in (1, 2, 3, 4)]
        assert {r[2] for r in ledger.fetchall()} == {str(run.id)}
    finally:
        proc.send_signal(signal.SIGTERM)  # what a service manager sends
        try:
            assert proc.wait(60) == 0, log.read_text()[-3000:]
        finally:
            if proc.poll() is None:
                proc.kill()
    assert "All deployments have been paused" in log.read_text()
    assert not _port_open(port), "the local Prefect server outlived serve"


def test_a_killed_serve_leaves_no_server_behind(tmp_path: Path) -> None:
    cfg, port = _config(tmp_path), _free_port()
    proc, log = _start_serve(tmp_path, cfg, tmp_path / "data", port, _local_env(tmp_path))
    deadline = time.monotonic() + 240
    while "Prefect UI:" not in log.read_text(errors="replace"):
        assert proc.poll() is None and time.monotonic() < deadline, log.read_text(errors="replace")[-3000:]
        time.sleep(0.2)
    assert _port_open(port)
    proc.kill()
    proc.wait()
    deadline = time.monotonic() + 30
    while _port_open(port) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _port_open(port), "the Prefect server outlived a SIGKILLed serve"


@pytest.mark.usefixtures("prefect_harness")
def test_serve_uses_the_server_named_by_prefect_api_url(tmp_path: Path) -> None:
    from prefect.settings import PREFECT_API_URL

    api = str(PREFECT_API_URL.value())
    port = urllib.parse.urlsplit(api).port
    assert port is not None
    env = {**os.environ, "PREFECT_API_URL": api}
    proc, log = _start_serve(tmp_path, _config(tmp_path), tmp_path / "data", _free_port(), env)
    try:
        _wait_registered(proc, log, port)
        text = log.read_text()
        assert f"Prefect API: {api} (from PREFECT_API_URL)" in text
        assert "starting a local Prefect server" not in text
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(60)
