"""The Prefect API server a command uses: the configured one, or `prefect server start` tied to the command.

With no server configured (environment, profile or prefect.toml), `newsflow serve`
starts one with its scheduler, and one-shot commands (`run`, `backfill`,
`renormalize`) one without (`ONE_SHOT_OPTIONS`); either way its database is under the
project's PREFECT_HOME, and the kernel stops it if the command dies.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pipeline.errors import UserError

__all__ = [
    "ONE_SHOT_OPTIONS",
    "LocalServer",
    "configured_api_url",
    "die_with_parent",
    "drain_prefect_clients",
    "healthy",
    "wait_healthy",
    "wait_recorded",
]

# A one-shot command's server: no UI, and no scheduler or late-run marking (the
# deployments `serve` registered in the same database are `serve`'s business).
ONE_SHOT_OPTIONS = ("--no-ui", "--no-scheduler", "--no-late-runs")


def configured_api_url() -> str | None:
    """The Prefect API URL from Prefect's own settings (env, profile, prefect.toml), if any."""
    from prefect.settings import get_current_settings

    url = get_current_settings().api.url
    return str(url) if url else None


def wait_healthy(process: subprocess.Popen[bytes], api_url: str, timeout: float, interval: float) -> int | None:
    """Poll until the server at `api_url` answers (None) or its `process` exits first (its exit code).

    Raises TimeoutError when neither happens within `timeout` seconds.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        code = process.poll()
        if code is not None:
            return code
        if healthy(api_url):
            return None
        time.sleep(interval)
    raise TimeoutError(f"{api_url} did not answer within {timeout:.0f} s")


def healthy(api_url: str) -> bool:
    """True when the Prefect API at `api_url` answers its health check (a JSON `true`, as Prefect's does)."""
    if not api_url.startswith(("http://", "https://")):
        return False
    try:
        with urllib.request.urlopen(f"{api_url}/health", timeout=2) as response:
            return bool(response.status == 200 and response.read(64).strip() == b"true")
    except (urllib.error.URLError, OSError, ValueError):  # ValueError: a URL urllib cannot use
        return False


def die_with_parent(parent: int) -> None:
    """Have the kernel stop this process when `parent` dies (Linux), so a killed run leaves no server behind."""
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        pr_set_pdeathsig = 1
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)
    if os.getppid() != parent:  # the parent died before the request above took effect
        sys.exit(1)


def drain_prefect_clients() -> None:
    """Send the logs and events Prefect's client still buffers, while the server can take them."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all()
    EventsWorker.drain_all()


def wait_recorded(flow_run_id: Any, expected: int, timeout: float) -> int:
    """Wait until the server has recorded `expected` finished task runs of the flow run; how many it had at the end.

    Prefect's client reports task runs as events, which the server records a moment
    later: a server stopped right after a run would lose the last ones.
    """
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    flow_runs = FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while True:
            done = offset = 0
            while True:  # a page at a time: the server serves at most _PAGE task runs a request
                runs = client.read_task_runs(flow_run_filter=flow_runs, limit=_PAGE, offset=offset)
                done += sum(1 for r in runs if r.state is not None and r.state.is_final())
                if len(runs) < _PAGE:
                    break
                offset += _PAGE
            if done >= expected or time.monotonic() >= deadline:
                return done
            time.sleep(0.1)


_PAGE = 200  # Prefect's server refuses a larger limit (PREFECT_SERVER_API_DEFAULT_LIMIT)


def _free_port() -> int:
    """A TCP port free on 127.0.0.1 now (the server binds it a moment later)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LocalServer:
    """A `prefect server start` subprocess on 127.0.0.1, stopped on exit, and by the kernel if this process dies.

    `options` go to `prefect server start` (a one-shot run's server needs no UI and no
    scheduler: `ONE_SHOT_OPTIONS`). Port 0 takes a free port.
    """

    def __init__(self, port: int, log: Path, startup_timeout: float = 180.0, options: Sequence[str] = ()) -> None:
        self.port, self.log, self.startup_timeout = port, log, startup_timeout
        self.options = tuple(options)
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        """The server's process id while it runs."""
        return None if self._proc is None else self._proc.pid

    @property
    def api_url(self) -> str:
        """The server's API address (what PREFECT_API_URL is set to)."""
        return f"http://127.0.0.1:{self.port}/api"

    @property
    def ui_url(self) -> str:
        """The address of the Prefect UI."""
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> LocalServer:
        if not self.port:
            self.port = _free_port()
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", self.port)) == 0:
                raise UserError(
                    f"port {self.port} is in use; pass --port, or set PREFECT_API_URL to use a server running there"
                )
        prefect = shutil.which("prefect", path=str(Path(sys.executable).parent)) or "prefect"
        self.log.parent.mkdir(parents=True, exist_ok=True)
        server = [prefect, "server", "start", "--host", "127.0.0.1", "--port", str(self.port), *self.options]
        with open(self.log, "ab") as out:
            self._proc = subprocess.Popen(
                # Through this module's entry (below), which ties the server's life to ours.
                [sys.executable, "-m", "flows.server", str(os.getpid()), *server],
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


def _exec_tied_to(parent: int, argv: list[str]) -> None:
    """Become `argv`, which the kernel stops when `parent` dies (the death signal survives exec)."""
    die_with_parent(parent)
    os.execv(argv[0], argv)


if __name__ == "__main__":
    _exec_tied_to(int(sys.argv[1]), sys.argv[2:])
