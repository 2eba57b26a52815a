"""Schedules and `newsflow serve`: config, deployments, and a real local Prefect server end to end."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import pytest
from helpers import Output, harness_env, harness_url, wait_until

from flows.config import load_config
from pipeline.errors import ConfigError

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
        ('{ cron = "0 6 * * *", timezone = "Mars/Olympus" }', "unknown time zone"),
        ('{ cron = "0 6 * * *", every = "day" }', "expected"),
        ("42", "expected"),
    ],
)
def test_a_bad_schedule_is_a_config_error_naming_the_key(tmp_path: Path, schedule: str, message: str) -> None:
    cfg = tmp_path / "sources.toml"
    cfg.write_text(f'[sources.x]\npath = "/tmp"\nschedule = {schedule}\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=f"sources.x.schedule[.:].*{message}"):
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
) -> tuple[subprocess.Popen[bytes], Output]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "flows.cli", "serve", "--config", str(cfg), "--data", str(data), "--port", str(port)],
        cwd=tmp,  # served runs must not depend on the working directory
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    assert proc.stdout is not None
    return proc, Output(proc.stdout, copy=tmp / f"serve-{port}.log")


def _wait_registered(proc: subprocess.Popen[bytes], out: Output, port: int) -> None:
    # Deployments are registered by Prefect's runner, which says nothing of it: asked of the server.
    try:
        wait_until(lambda: _registered(port, "backfill/newsflow-backfill"), 240, "serve registered", proc)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{out.text[-3000:]}") from None


def _local_env(tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env["PREFECT_HOME"] = str(tmp / "prefect-home")  # its own server database
    # serve's default; set here because an in-process CLI test may have left WARNING in os.environ
    env["PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL"] = "INFO"
    return env


@pytest.mark.slow  # `newsflow serve` and a Prefect server in subprocesses
@pytest.mark.usefixtures("prefect_harness")
def test_serve_uses_the_server_named_by_prefect_api_url(tmp_path: Path) -> None:
    api = harness_url()
    port = urllib.parse.urlsplit(api).port
    assert port is not None
    env = harness_env()
    proc, out = _start_serve(tmp_path, _config(tmp_path), tmp_path / "data", _free_port(), env)
    try:
        _wait_registered(proc, out, port)
        text = out.text
        assert f"Prefect API: {api} (from PREFECT_API_URL)" in text
        assert "starting a local Prefect server" not in text
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(60)


# --- Schedules fire, and `serve` says when they do not ------------------------------------------


def _fast_loops(env: dict[str, str]) -> dict[str, str]:
    """Prefect's own settings for a server scheduler and a runner that loop every second (not every minute).

    The scheduler keeps only two runs ahead (not a hundred), so its service loop inserts
    runs all through the test: a loop that fails (as prefect 3.8.8 with SQLAlchemy 2.1
    did, while the deployment's first runs still came) shows in the server's log, which
    `serve` reports and the tests assert it does not.
    """
    return {
        **env,
        "PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS": "1",
        "PREFECT_SERVER_SERVICES_SCHEDULER_MIN_RUNS": "1",
        "PREFECT_SERVER_SERVICES_SCHEDULER_MAX_RUNS": "2",
        "PREFECT_SERVER_SERVICES_SCHEDULER_MIN_SCHEDULED_TIME": "0:00:30",
        "PREFECT_RUNNER_POLL_FREQUENCY": "1",
    }


def _scheduled_config(tmp: Path) -> Path:
    cfg = tmp / "sources.toml"
    cfg.write_text(
        f'[sources.wire]\npath = "{REPO / "samples" / "wire"}"\n[sources.wire.schedule]\ninterval = "20s"\n',
        encoding="utf-8",
    )
    return cfg


def _stop(proc: subprocess.Popen[bytes], out: Output) -> str:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return out.rest(30)


@pytest.mark.slow  # `newsflow serve` and a Prefect server in subprocesses
def test_serve_runs_a_schedule_and_a_triggered_backfill_then_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    """The path a user takes: `newsflow serve` with a schedule; a backfill triggered from Prefect; SIGTERM."""
    from datetime import UTC, datetime, timedelta

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.responses import SetStateStatus
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL, temporary_settings
    from prefect.states import Pending, Scheduled

    cfg, data, port = _scheduled_config(tmp_path), tmp_path / "data", _free_port()
    proc, out = _start_serve(tmp_path, cfg, data, port, _fast_loops(_local_env(tmp_path)))
    done = stuck = None
    stuck_name = ""
    backfilled = tmp_path / "backfilled"  # its own data root (a parameter), apart from the scheduled runs'
    try:
        _wait_registered(proc, out, port)
        assert f"Prefect UI: http://127.0.0.1:{port}" in out.text
        with temporary_settings(updates={PREFECT_API_URL: f"http://127.0.0.1:{port}/api"}):
            backfill = run_deployment(
                "backfill/newsflow-backfill",
                parameters={"source": "wire", "start": "2018-01-01", "end": "2018-04-30", "data": str(backfilled)},
                timeout=240,
            )
            with get_client(sync_client=True) as client:
                dep = client.read_deployment_by_name("ingest/newsflow-wire")

                def completed() -> object:
                    runs = client.read_flow_runs(deployment_filter=_only(dep.id))
                    return next((r for r in runs if r.state is not None and r.state.is_completed()), None)

                done = _wait_for_run(completed, proc, out, "a scheduled run completed")
                # What a serve stopped while its runner was submitting a run leaves behind: a
                # run that took the deployment's slot (PENDING) and will never start. The slot
                # must be free to take: the schedule is paused (as stopping serve does) and
                # the runs under way are waited out; a scheduled run holding the slot would
                # get this one cancelled instead (CANCEL_NEW). It is scheduled a day ahead,
                # so the runner serving the deployment cannot take it first.
                client.pause_deployment(dep.id)
                wait_until(lambda: not client.read_flow_runs(**_holding_the_slot(dep.id)), 120, "the slot free")
                later_on = datetime.now(UTC) + timedelta(days=1)
                run = client.create_flow_run_from_deployment(dep.id, state=Scheduled(scheduled_time=later_on))
                taken = client.set_flow_run_state(run.id, Pending())
                assert taken.status == SetStateStatus.ACCEPT, taken
                stuck, stuck_name = run.id, run.name
    finally:
        text = _stop(proc, out)
    # The scheduled run: created by the server's scheduler, run by serve, its Parquet landed.
    assert done.auto_scheduled, "the run was not created by the server's scheduler"
    assert done.parameters["sources"] == ["wire"]
    rows = duckdb.sql(f"SELECT count(*) FROM read_parquet('{data}/articles/**/*.parquet')").fetchall()
    assert rows == [(20,)]
    # The backfill, with the parameters it was given.
    assert backfill.state is not None and backfill.state.is_completed(), _failures(backfilled) or text[-3000:]
    articles = f"read_parquet('{backfilled}/articles/**/*.parquet', hive_partitioning = true)"
    got = duckdb.sql(f"SELECT month::INTEGER, count(*) FROM {articles} GROUP BY ALL ORDER BY ALL").fetchall()
    assert got == [(1, 1), (2, 1), (4, 1)]  # the sample wire articles of 2018-01..04
    ledger = duckdb.sql(f"SELECT partition, status, run_id FROM read_parquet('{backfilled}/runs/**/*.parquet')")
    # March has no inputs and no rows: not run, so no ledger entry.
    assert sorted(r[:2] for r in ledger.fetchall()) == [(f"2018-0{m}", "completed") for m in (1, 2, 4)]
    assert {r[2] for r in ledger.fetchall()} == {str(backfill.id)}
    # SIGTERM (what a service manager sends): schedules paused, the server stopped, nothing to warn about.
    assert proc.returncode == 0, text[-3000:]
    assert "All deployments have been paused" in text
    assert not _port_open(port), "the local Prefect server outlived serve"
    assert "newsflow: warning" not in text, text[-3000:]
    assert stuck is not None

    # Restarted, serve ends the run its predecessor left pending (it held the deployment's
    # one slot, so every later scheduled run would have been cancelled), and runs go on.
    port = _free_port()
    proc, out = _start_serve(tmp_path, cfg, data, port, _fast_loops(_local_env(tmp_path)))
    try:
        released = f"newsflow: run {stuck_name} of ingest/newsflow-wire was left pending by an earlier"
        assert out.wait_for(released, timeout=240), out.text[-3000:]  # said before serving starts
        with (
            temporary_settings(updates={PREFECT_API_URL: f"http://127.0.0.1:{port}/api"}),
            get_client(sync_client=True) as client,
        ):
            name = "ingest/newsflow-wire"
            assert client.read_flow_run(stuck).state.is_crashed()

            def another() -> object:
                runs = client.read_flow_runs(deployment_filter=_only(client.read_deployment_by_name(name).id))
                return next(
                    (r for r in runs if r.state is not None and r.state.is_completed() and r.id != done.id), None
                )

            _wait_for_run(another, proc, out, "a scheduled run completed after the restart")
    finally:
        text = _stop(proc, out)
    assert "newsflow: warning" not in text, text[-3000:]


def _wait_for_run(found: Callable[[], Any], proc: subprocess.Popen[bytes], out: Output, what: str) -> Any:
    """A flow run `found` returns, waited for (runs are records in the server: nothing reports them)."""
    try:
        return wait_until(found, 240, what, proc)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{out.text[-3000:]}") from None


def _only(deployment_id: object) -> object:
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

    return DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id]))


def _holding_the_slot(deployment_id: object) -> dict[str, object]:
    """`read_flow_runs` filters for the runs of a deployment that hold its concurrency slot."""
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterState, FlowRunFilterStateType
    from prefect.client.schemas.objects import StateType

    holding = [StateType.PENDING, StateType.RUNNING, StateType.CANCELLING]
    state = FlowRunFilterState(type=FlowRunFilterStateType(any_=holding))
    return {"deployment_filter": _only(deployment_id), "flow_run_filter": FlowRunFilter(state=state)}


@pytest.mark.slow  # `newsflow serve` and a Prefect server in subprocesses
def test_serve_says_when_the_scheduler_creates_no_run_and_a_killed_serve_leaves_no_server(tmp_path: Path) -> None:
    cfg, port = _scheduled_config(tmp_path), _free_port()
    env = _fast_loops(_local_env(tmp_path)) | {"PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED": "false"}
    proc, out = _start_serve(tmp_path, cfg, tmp_path / "data", port, env)
    server_log = tmp_path / "prefect-home" / "server.log"
    expected = "newsflow: warning: no run of ingest/newsflow-wire has been scheduled"
    try:
        _wait_registered(proc, out, port)
        assert out.wait_for(expected, timeout=180), out.text[-3000:]
        (line,) = [x for x in out.text.splitlines() if x.startswith(expected)]
        assert line.endswith(f"see {server_log}")
        assert _port_open(port)
        proc.kill()  # SIGKILL: no clean-up of serve's own runs; the kernel stops the server
        proc.wait()
        # The server is serve's grandchild, not ours to wait for: the port closing is the sign.
        wait_until(lambda: not _port_open(port), 30, "the Prefect server stopped after a SIGKILLed serve")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


SCHEDULER_FAILURE = (
    "01:12:00.101 | INFO    | prefect.server.services.scheduler - Scheduled 0 runs.\n"
    "01:12:01.512 | ERROR   | prefect.server.services.scheduler - Unexpected error in: InvalidRequestError("
    '"Can\'t evaluate bulk DML statement; please supply a bulk_dml decorated function")\n'
    "Traceback (most recent call last):\n"
    '  File "/x/prefect/server/services/base.py", line 242, in start\n'
    "    await self.run_once()\n"
    "sqlalchemy.exc.InvalidRequestError: Can't evaluate bulk DML statement; "
    "please supply a bulk_dml decorated function\n"
)


def test_server_log_errors_become_one_line_per_service_and_repeat_at_most_every_ten_minutes(tmp_path: Path) -> None:
    from flows.serve import LogErrors

    log = tmp_path / "server.log"
    log.write_text("01:00:00.000 | ERROR   | prefect.server.old - before serve started\n", encoding="utf-8")
    errors = LogErrors(log)
    assert errors.new_errors(0.0) == []  # what was there before is not news
    cut = SCHEDULER_FAILURE.index("Unexpected")  # the server may be mid-line when the log is read
    with open(log, "a", encoding="utf-8") as out:
        out.write(SCHEDULER_FAILURE[:cut])
    assert errors.new_errors(1.0) == []
    with open(log, "a", encoding="utf-8") as out:
        out.write(SCHEDULER_FAILURE[cut:])
    (line,) = errors.new_errors(2.0)
    assert line.startswith("the Prefect server logged errors (prefect.server.services.scheduler: Unexpected error in:")
    assert line.endswith(f"; see {log}") and "\n" not in line
    with open(log, "a", encoding="utf-8") as out:
        out.write(SCHEDULER_FAILURE * 3)
    assert errors.new_errors(60.0) == []  # the same service failing on every loop: said once
    with open(log, "a", encoding="utf-8") as out:
        out.write(SCHEDULER_FAILURE + "ERROR:    Exception in ASGI application\n")
    assert [x.split(" (")[1].split(":")[0] for x in errors.new_errors(700.0)] == [
        "prefect.server.services.scheduler",
        "uvicorn",
    ]


def test_an_interval_schedule_is_a_duration(tmp_path: Path) -> None:
    for text, seconds in (('"90s"', 90.0), ('"15m"', 900.0), ('"1h30m"', 5400.0), ("3600", 3600.0)):
        cfg = tmp_path / "sources.toml"
        cfg.write_text(f'[sources.x]\npath = "/tmp"\nschedule = {{ interval = {text} }}\n', encoding="utf-8")
        schedule = load_config(cfg).sources["x"].schedule
        assert schedule is not None and (schedule.cron, schedule.interval) == (None, seconds)
    for bad in ('"soon"', "0", '"-5m"', '{ interval = "1h", cron = "0 * * * *" }'):
        cfg.write_text(f'[sources.x]\npath = "/tmp"\nschedule = {{ interval = {bad} }}\n', encoding="utf-8")
        if bad.startswith("{"):
            cfg.write_text(f'[sources.x]\npath = "/tmp"\nschedule = {bad}\n', encoding="utf-8")
        with pytest.raises(ConfigError, match=r"sources\.x\.schedule"):
            load_config(cfg)


@pytest.mark.usefixtures("prefect_harness")
def test_the_watch_reports_a_run_that_holds_the_slot_and_the_runs_it_cancels(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from prefect.client.orchestration import get_client
    from prefect.states import Cancelled, Pending, Scheduled

    from flows.serve import ScheduleWatch

    with get_client(sync_client=True) as client:
        flow_id = client.create_flow_from_name("watched")
        dep_id = client.create_deployment(flow_id, "every-minute", entrypoint="flows.flow:ingest")
        holder = client.create_flow_run_from_deployment(dep_id, state=Scheduled())
        client.set_flow_run_state(holder.id, Pending())
        watch = ScheduleWatch(["watched/every-minute"], print, grace=0)
        for _ in range(2):  # what Prefect does to the scheduled runs that find the slot taken
            run = client.create_flow_run_from_deployment(dep_id, state=Scheduled())
            client.set_flow_run_state(run.id, Cancelled(message="Deployment concurrency limit reached."), force=True)
        lines = watch.check(0.0, datetime.now(UTC))
    assert any(f"run {holder.name} of watched/every-minute has been pending since" in x for x in lines), lines
    assert any("2 scheduled runs of watched/every-minute were cancelled" in x for x in lines), lines
    assert watch.check(1.0, datetime.now(UTC)) == []  # each said once
