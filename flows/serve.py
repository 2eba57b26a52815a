"""`newsflow serve`: the deployments of a config, served on a Prefect server that fires schedules.

Prefect's embedded (ephemeral) API runs no scheduler, so schedules only fire against
a real server. With no server configured, `serve` starts one (`prefect server start`
on 127.0.0.1, its database under the project's PREFECT_HOME, analytics off), waits
until it answers, and stops it on exit.
"""

from __future__ import annotations

import contextlib
import contextvars
import re
import signal
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pipeline.config import Config

__all__ = [
    "BACKFILL_DEPLOYMENT",
    "RENORMALIZE_DEPLOYMENT",
    "LogErrors",
    "ScheduleWatch",
    "deployments",
    "release_stale_runs",
    "serve_until_stopped",
    "source_deployment",
]

BACKFILL_DEPLOYMENT = "newsflow-backfill"
RENORMALIZE_DEPLOYMENT = "newsflow-renormalize"


def source_deployment(name: str) -> str:
    """The deployment name of a scheduled source."""
    return f"newsflow-{name}"


def serve_until_stopped(served: list[Any], limit: int | None = None) -> None:
    """Serve deployments until Ctrl-C or SIGTERM; either way the schedules are paused on the way out.

    What `prefect.serve` does, with one change: Prefect 3.8's runner answers SIGTERM by
    exiting on the spot (its stop coroutine is never awaited), which cut the pausing
    of schedules short. Here SIGTERM cancels the runner's task, as asyncio does for
    SIGINT, so its clean-up runs in full.
    """
    import asyncio

    from prefect.runner import Runner

    async def main() -> None:
        runner = Runner(pause_on_shutdown=True, limit=limit)
        for dep in served:
            await runner.aadd_deployment(dep)
        task = asyncio.ensure_future(runner.start())
        await asyncio.sleep(0)  # start() installs its SIGTERM handler first thing; replace it
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
        with contextlib.suppress(asyncio.CancelledError):  # a stop, not a failure
            await task

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())


# A server log line that reports an error: Prefect's own format ("12:00:01.234 | ERROR   |
# prefect.server.services.scheduler - message") or uvicorn's ("ERROR:    message").
_LOG_ERROR = re.compile(
    r"^\S+ \| (?:ERROR|CRITICAL)\s*\| (?P<logger>\S+) - (?P<message>.*)$|^ERROR:\s+(?P<uvicorn>.*)$"
)
# The same logger's errors are reported again at most this often (a failing service
# logs on every loop; one line per loop would bury the terminal).
_REPEAT_AFTER_S = 600.0


class LogErrors:
    """Reads the lines a server appends to its log and picks out the errors, one summary line per source of them."""

    def __init__(self, log: Path, start_at_end: bool = True) -> None:
        self.log = log
        self._offset = log.stat().st_size if start_at_end and log.exists() else 0
        self._partial = b""
        self._said: dict[str, float] = {}

    def new_errors(self, now: float) -> list[str]:
        """One line per logger that logged errors since the last call (and not reported in the last 10 minutes)."""
        try:
            with open(self.log, "rb") as fh:
                fh.seek(self._offset)
                chunk = fh.read(4 * 1024 * 1024)
        except OSError:
            return []
        self._offset += len(chunk)
        lines = (self._partial + chunk).split(b"\n")
        self._partial = lines.pop()
        found: dict[str, str] = {}
        for raw in lines:
            m = _LOG_ERROR.match(raw.decode("utf-8", "replace").rstrip())
            if m is None:
                continue
            who = m.group("logger") or "uvicorn"
            found.setdefault(who, (m.group("message") or m.group("uvicorn") or "").strip())
        out = []
        for who, message in found.items():
            if now - self._said.get(who, -_REPEAT_AFTER_S) >= _REPEAT_AFTER_S:
                self._said[who] = now
                out.append(f"the Prefect server logged errors ({who}: {_short(message)}); see {self.log}")
        return out


def _short(text: str, limit: int = 160) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


class ScheduleWatch(threading.Thread):
    """Watches what `serve` started and says, in one line each, what has gone wrong.

    - the server's services logged errors (read from the server's log, when `serve` started the server);
    - a scheduled deployment has no run at all a while after it was registered: the
      server's scheduler is not creating runs;
    - a scheduled run is overdue and has not started: nothing is picking it up.

    `grace` is how long a healthy scheduler and runner may take (their loop times with
    some margin): only a run later than that is reported.
    """

    def __init__(
        self,
        scheduled: list[str],
        say: Callable[[str], None],
        log: Path | None = None,
        grace: float | None = None,
        every: float | None = None,
    ) -> None:
        super().__init__(name="newsflow-serve-watch", daemon=True)
        self.scheduled, self.say = scheduled, say
        self.grace = default_grace() if grace is None else grace
        self.every = every if every is not None else min(15.0, max(1.0, self.grace / 4))
        self.where = f"see {log}" if log is not None else "see the Prefect server's log"
        self._log = LogErrors(log) if log is not None else None
        self._seen: dict[str, float] = {}  # deployment -> when this watch first found it registered
        self._said: set[str] = set()
        self._stop_event = threading.Event()
        self._since = datetime.now(UTC)
        # Checks run in a copy of the starting thread's context: Prefect's settings (the
        # API URL `serve` set) live in context variables, which a new thread does not inherit.
        self._context = contextvars.copy_context()

    def stop(self) -> None:
        """End the watch (it is a daemon thread: it never holds `serve` up)."""
        self._stop_event.set()

    def run(self) -> None:
        """Check every `every` seconds until stopped; a failing check is retried, never fatal."""
        while not self._stop_event.wait(self.every):
            try:
                for line in self._context.run(self.check, time.monotonic(), datetime.now(UTC)):
                    self.say(line)
            except Exception as exc:  # the API may be briefly unreachable; the watch goes on
                key = f"error:{type(exc).__name__}"
                if key not in self._said:
                    self._said.add(key)
                    self.say(f"could not check the schedules ({type(exc).__name__}: {_short(str(exc))}); {self.where}")

    def check(self, now: float, wall: datetime) -> list[str]:
        """The problems found now, each reported once."""
        from prefect.client.orchestration import get_client
        from prefect.client.schemas.objects import StateType
        from prefect.exceptions import ObjectNotFound

        out = self._log.new_errors(now) if self._log is not None else []
        overdue = wall - timedelta(seconds=self.grace)
        with get_client(sync_client=True) as client:
            for name in self.scheduled:
                try:
                    dep = client.read_deployment_by_name(name)
                except ObjectNotFound:
                    continue  # not registered yet
                first = self._seen.setdefault(name, now)
                if now - first < self.grace or dep.paused:
                    continue
                if not client.read_flow_runs(deployment_filter=_only(dep.id), limit=1):
                    out += self._once(
                        f"missing:{name}",
                        f"no run of {name} has been scheduled {self.grace:.0f} s after it was registered: "
                        f"the server's scheduler is not creating runs; {self.where}",
                    )
                    continue
                for run in _runs(client, dep.id, [StateType.SCHEDULED], expected_before=overdue):
                    out += self._once(
                        f"late:{run.id}",
                        f"scheduled run {run.name} of {name} was due at {_clock(run.expected_start_time)} "
                        f"and has not started; {self.where}",
                    )
                for run in _runs(client, dep.id, [StateType.PENDING]):
                    if run.state is not None and run.state.timestamp < overdue:
                        out += self._once(
                            f"pending:{run.id}",
                            f"run {run.name} of {name} has been pending since {_clock(run.state.timestamp)} and "
                            f"holds the deployment's one run slot: later runs are cancelled until it ends; "
                            f"{self.where}",
                        )
                cancelled = [
                    run
                    for run in _runs(client, dep.id, [StateType.CANCELLED], expected_after=self._since)
                    if run.state is not None and (run.state.message or "").startswith(_LIMIT_REACHED)
                ]
                if len(cancelled) >= _CANCELLED_IN_A_ROW:
                    out += self._once(
                        f"cancelled:{name}:{cancelled[0].id}",
                        f"{len(cancelled)} scheduled runs of {name} were cancelled because an earlier run still "
                        f"held its slot; {self.where}",
                    )
        return out

    def _once(self, key: str, line: str) -> list[str]:
        if key in self._said:
            return []
        self._said.add(key)
        return [line]


# The message Prefect gives a run cancelled by its deployment's concurrency limit, and
# how many such runs since `serve` started make a warning (one can be a slow run).
_LIMIT_REACHED = "Deployment concurrency limit reached"
_CANCELLED_IN_A_ROW = 2
# A run the runner took stays PENDING for seconds while its process starts; one pending
# this long was left behind by a runner that stopped (or was killed) mid-submission.
STALE_PENDING_S = 600.0


def _only(deployment_id: Any) -> Any:
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

    return DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id]))


def _runs(
    client: Any,
    deployment_id: Any,
    states: list[Any],
    expected_before: datetime | None = None,
    expected_after: datetime | None = None,
) -> list[Any]:
    """Flow runs of one deployment in the given state types (and expected start window), at most 50."""
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterExpectedStartTime,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )

    window: dict[str, datetime] = {}
    if expected_before is not None:
        window["before_"] = expected_before
    if expected_after is not None:
        window["after_"] = expected_after
    flow_runs = FlowRunFilter(
        state=FlowRunFilterState(type=FlowRunFilterStateType(any_=states)),
        # Validated as the API would: Prefect's own datetime type from plain ones.
        expected_start_time=FlowRunFilterExpectedStartTime.model_validate(window) if window else None,
    )
    runs: list[Any] = client.read_flow_runs(deployment_filter=_only(deployment_id), flow_run_filter=flow_runs, limit=50)
    return runs


def _clock(when: datetime | None) -> str:
    return when.astimezone().strftime("%H:%M:%S") if when else "?"


def release_stale_runs(names: list[str], own_server: bool, now: datetime) -> list[str]:
    """Mark as crashed the runs of these deployments that nothing will finish; one line per run.

    A `serve` stopped (or killed) while its runner was submitting a run leaves that run
    PENDING for good, holding its deployment's concurrency slot: every later scheduled
    run is then cancelled. Before serving, such runs are ended as crashed, which frees
    the slot. On a server `serve` started itself, no other runner can be working on its
    deployments, so every pending, running or cancelling run is left over; on a shared
    server only a run pending for longer than `STALE_PENDING_S` is.
    """
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.objects import StateType
    from prefect.exceptions import ObjectNotFound
    from prefect.states import Crashed

    out = []
    unfinished = [StateType.PENDING, StateType.RUNNING, StateType.CANCELLING]
    with get_client(sync_client=True) as client:
        for name in names:
            try:
                dep = client.read_deployment_by_name(name)
            except ObjectNotFound:
                continue  # first time served
            for run in _runs(client, dep.id, unfinished):
                state = run.state
                if state is None:
                    continue
                stale = own_server or (
                    state.type == StateType.PENDING and (now - state.timestamp).total_seconds() > STALE_PENDING_S
                )
                if not stale:
                    continue
                message = f"left {state.type.value.lower()} by an earlier `newsflow serve` that stopped"
                # Forced: the transition is made as asked, and Prefect's rules still free the slot.
                client.set_flow_run_state(run.id, Crashed(message=message), force=True)
                out.append(f"run {run.name} of {name} was {message}; marked crashed so later runs are not held back")
    return out


def default_grace() -> float:
    """How long a healthy server and runner may take to create and start a due run: their loops, with margin."""
    from prefect.settings import get_current_settings

    settings = get_current_settings()
    loop = float(settings.server.services.scheduler.loop_seconds)
    poll = float(settings.runner.poll_frequency)
    return 2 * loop + poll + 10


def deployments(cfg: Config, config: Path, data: str | Path) -> list[Any]:
    """One deployment per scheduled source, plus `newsflow-backfill` and `newsflow-renormalize`.

    Paths are absolute, so runs started from Prefect's CLI or UI read the same config
    and write the same data root whatever their working directory.
    """
    from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy
    from prefect.schedules import Cron, Interval
    from prefect.types.entrypoint import EntrypointType

    from flows.flow import backfill, ingest, renormalize

    paths = {"config": str(config), "data": str(data)}
    # Module entrypoints (`flows.flow:ingest`): served runs import the installed package,
    # whatever their working directory, and no project folder lands on sys.path.
    common: dict[str, Any] = {"entrypoint_type": EntrypointType.MODULE_PATH, "tags": ["newsflow"]}
    # A scheduled run that finds the previous run of its source still going is cancelled
    # rather than queued: a slow run costs one skipped slot, and late runs never pile up.
    one = ConcurrencyLimitConfig(limit=1, collision_strategy=ConcurrencyLimitStrategy.CANCEL_NEW)
    out = [
        ingest.to_deployment(
            name=source_deployment(src.name),
            schedule=(
                Cron(src.schedule.cron, timezone=src.schedule.timezone)
                if src.schedule.cron is not None
                else Interval(
                    timedelta(seconds=src.schedule.interval or 0),
                    anchor_date=src.schedule.anchor(),  # fixed: runs keep their times across restarts
                    timezone=src.schedule.timezone,
                )
            ),
            parameters={"sources": [src.name], **paths},
            concurrency_limit=one,
            description=f"Ingest source {src.name} ({src.kind}) on its schedule.",
            **common,
        )
        for src in cfg.sources.values()
        if src.schedule is not None
    ]
    out.append(
        backfill.to_deployment(
            name=BACKFILL_DEPLOYMENT,
            parameters=paths,
            description="Rebuild one source's months over a date range: parameters source, start, end (YYYY-MM-DD).",
            **common,
        )
    )
    out.append(
        renormalize.to_deployment(
            name=RENORMALIZE_DEPLOYMENT,
            parameters=paths,
            description="Rebuild rows an older normaliser wrote, from raw files and the raw store (no fetching).",
            **common,
        )
    )
    return out
