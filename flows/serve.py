"""`newsflow serve`: the deployments of a config, served on a Prefect server that fires schedules.

Prefect's embedded (ephemeral) API runs no scheduler, so schedules only fire against
a real server. With no server configured, `serve` starts one (`prefect server start`
on 127.0.0.1, its database under the project's PREFECT_HOME, analytics off), waits
until it answers, and stops it on exit.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

from flows.config import Config
from flows.errors import UserError
from flows.server import die_with_parent, wait_healthy

__all__ = [
    "BACKFILL_DEPLOYMENT",
    "RENORMALIZE_DEPLOYMENT",
    "LocalServer",
    "deployments",
    "serve_until_stopped",
    "source_deployment",
]

BACKFILL_DEPLOYMENT = "newsflow-backfill"
RENORMALIZE_DEPLOYMENT = "newsflow-renormalize"


def source_deployment(name: str) -> str:
    """The deployment name of a scheduled source."""
    return f"newsflow-{name}"


class LocalServer:
    """A `prefect server start` subprocess (with its scheduler) on 127.0.0.1, stopped on exit."""

    def __init__(self, port: int, log: Path, startup_timeout: float = 180.0) -> None:
        self.port, self.log, self.startup_timeout = port, log, startup_timeout
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def api_url(self) -> str:
        """The server's API address (what PREFECT_API_URL is set to)."""
        return f"http://127.0.0.1:{self.port}/api"

    @property
    def ui_url(self) -> str:
        """The address of the Prefect UI."""
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> LocalServer:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", self.port)) == 0:
                raise UserError(
                    f"port {self.port} is in use; pass --port, or set PREFECT_API_URL to use a server running there"
                )
        prefect = shutil.which("prefect", path=str(Path(sys.executable).parent)) or "prefect"
        self.log.parent.mkdir(parents=True, exist_ok=True)
        server = [prefect, "server", "start", "--host", "127.0.0.1", "--port", str(self.port)]
        with open(self.log, "ab") as out:
            self._proc = subprocess.Popen(
                # Through this module's entry (below), which ties the server's life to ours.
                [sys.executable, "-m", "flows.serve", str(os.getpid()), *server],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"},
                start_new_session=True,  # its own process group, so stopping it stops its children
            )
        try:
            self._wait_healthy()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_healthy(self) -> None:
        assert self._proc is not None
        try:
            code = wait_healthy(self._proc, self.api_url, self.startup_timeout, interval=0.25)
        except TimeoutError:
            raise UserError(
                f"the Prefect server did not answer within {self.startup_timeout:.0f} s; see {self.log}"
            ) from None
        if code is not None:
            raise UserError(f"the Prefect server exited during start-up (code {code}); see {self.log}")

    def stop(self, grace: float = 20.0) -> None:
        """Stop the server's process group: SIGTERM, then SIGKILL after `grace` seconds."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    def __exit__(self, *exc: object) -> None:
        self.stop()


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


def _exec_tied_to(parent: int, argv: list[str]) -> None:
    """Become `argv`, which the kernel stops when `parent` dies (the death signal survives exec)."""
    die_with_parent(parent)
    os.execv(argv[0], argv)


def deployments(cfg: Config, config: Path, data: Path) -> list[Any]:
    """One deployment per scheduled source, plus `newsflow-backfill` and `newsflow-renormalize`.

    Paths are absolute, so runs started from Prefect's CLI or UI read the same config
    and write the same data root whatever their working directory.
    """
    from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy
    from prefect.schedules import Cron
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
            schedule=Cron(src.schedule.cron, timezone=src.schedule.timezone),
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


if __name__ == "__main__":
    _exec_tied_to(int(sys.argv[1]), sys.argv[2:])
