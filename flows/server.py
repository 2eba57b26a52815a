"""A temporary local Prefect API server whose start-up overlaps newsflow's own.

With no API configured, Prefect's flow engine starts a temporary server itself, but
only when the first flow run begins, and the client first imports the whole server
package (~3 s of CPU) just to launch it. Starting the same server (the same uvicorn
app and settings Prefect's ephemeral mode uses) as the command's first step lets
its ~4-5 s of start-up run on the other core while newsflow loads its config, starts
its worker pool and imports the flow. When an API is configured (env, profile or
settings file), nothing is started and that server is used.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from types import TracebackType
from typing import Any

from pipeline.errors import UserError

__all__ = ["TemporaryServer", "configured_api_url", "die_with_parent", "healthy", "wait_healthy"]

_STARTUP_FAILURE = 3  # uvicorn's exit code when its start-up fails

# Prefect's task-run recorder writes each task-run event in its own transaction by
# default: ~28 ms of the server's CPU per task run, taken from the workers on a small
# machine. Batched (the recorder's own settings), a task run costs ~13.5 ms, and a
# 100k-file run ended ~0.6 s sooner (alternating runs, 8 of 8 pairs). The recorder then
# writes when 100 events wait and when the server stops: `DrainingServer` lets the
# broker empty, and the recorder's shutdown writes what it holds. Its timed flush is
# pushed out of a run's life on purpose: one under way when the server stops is
# cancelled (its events are written by the final flush, but Prefect logs a traceback).
# Settings in the environment win.
_RECORDER_BATCHING = {
    "PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_BATCH_SIZE": "100",
    "PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_FLUSH_INTERVAL": "3600",
}


def configured_api_url() -> str | None:
    """The Prefect API URL from Prefect's own settings (env, profile, prefect.toml), if any."""
    from prefect.settings import get_current_settings

    url = get_current_settings().api.url
    return str(url) if url else None


def _bound_socket() -> socket.socket:
    """A TCP socket bound to a free port on 127.0.0.1, for the server to listen on.

    Bound here and handed to the server process, rather than a free port probed here and
    bound there: another process could take the port in between, and uvicorn would
    fail only after Prefect's services had started (with a traceback of theirs).
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind(("127.0.0.1", 0))
    except BaseException:
        sock.close()
        raise
    return sock


def _drain_clients() -> None:
    """Send the logs and events Prefect still buffers, while the server can take them."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    with contextlib.suppress(RuntimeError):  # the log worker never started
        APILogWorker.instance().drain()
    EventsWorker.drain_all()


class TemporaryServer:
    """Prefect's API server on 127.0.0.1 for the life of one command; a context manager."""

    def __init__(self, startup_timeout: float = 120.0) -> None:
        self.startup_timeout = startup_timeout
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        """The server's process id while it runs."""
        return None if self._process is None else self._process.pid

    @property
    def api_url(self) -> str:
        """The API URL clients use (PREFECT_API_URL)."""
        return f"http://127.0.0.1:{self.port}/api"

    def start(self) -> str:
        """Launch the server without waiting for it; returns its API URL."""
        env = {
            **os.environ,
            # The values Prefect's own ephemeral server runs with: no UI, ephemeral
            # mode (no background services; schedules need `newsflow serve`).
            "PREFECT_UI_ENABLED": "0",
            "PREFECT__SERVER_EPHEMERAL": "1",
            "PREFECT__SERVER_FINAL": "1",
        }
        for name, value in _RECORDER_BATCHING.items():
            env.setdefault(name, value)
        with _bound_socket() as sock:  # the server process holds its own copy
            self.port = int(sock.getsockname()[1])
            self._process = subprocess.Popen(
                [sys.executable, "-m", "flows.server", str(sock.fileno()), str(os.getpid())],
                env=env,
                stdin=subprocess.DEVNULL,
                pass_fds=(sock.fileno(),),
            )
        return self.api_url

    def wait_ready(self) -> str:
        """Block until the server answers its health check; returns its API URL (read it after this)."""
        assert self._process is not None
        try:
            code = wait_healthy(self._process, self.api_url, self.startup_timeout, interval=0.05)
        except TimeoutError:
            self.stop()
            raise UserError(f"the temporary Prefect server did not start within {self.startup_timeout:.0f} s") from None
        if code is not None:
            raise UserError(f"the temporary Prefect server exited with code {code} during start-up")
        return self.api_url

    @contextlib.contextmanager
    def in_use(self) -> Iterator[str]:
        """Wait until ready, point Prefect's client at the server, and drain the client before leaving."""
        from prefect.settings import PREFECT_API_URL, PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

        # Heartbeats let a long-lived server mark a flow run whose process died as
        # crashed. This server dies with the command, so nothing would read them, and
        # the heartbeat thread (which sleeps in 1 s steps) held up the end of every
        # flow run by up to 1 s (0.9 s measured on an empty run).
        updates = {PREFECT_API_URL: self.wait_ready(), PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}
        with temporary_settings(updates=updates):
            try:
                yield self.api_url
            finally:
                _drain_clients()

    def stop(self) -> None:
        """Terminate the server and reap it."""
        if self._process is None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout=DRAIN_TIMEOUT_S + 5)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._process = None

    def __enter__(self) -> TemporaryServer:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


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


def _serve(argv: list[str]) -> None:
    """Run Prefect's API app under uvicorn on the socket the parent bound (the server process's entry)."""
    fd, parent = argv
    die_with_parent(int(parent))
    sock = socket.socket(fileno=int(fd))
    # The server's start-up is nearly all imports and app building, and every run waits
    # for it. They allocate ~450k objects and no garbage worth collecting; with the
    # cyclic GC off meanwhile they took 2.3-2.5 s instead of 2.9 s (measured here).
    # What they built is then frozen out of the collector's later walks.
    gc.disable()
    import uvicorn
    from prefect.server.api.server import create_app

    app = create_app()
    gc.enable()
    gc.freeze()
    host, port = sock.getsockname()[:2]
    config = uvicorn.Config(app, host=host, port=port, log_level="error", lifespan="on")
    server = _make_draining_server()(config)
    server.run(sockets=[sock])
    if not server.started:  # as `uvicorn.run` does
        sys.exit(_STARTUP_FAILURE)


# How long a stopping server waits for Prefect's event consumers to record what the
# clients sent before it shuts them down.
DRAIN_TIMEOUT_S = 5.0


def _make_draining_server() -> type:
    import uvicorn

    class DrainingServer(uvicorn.Server):
        """uvicorn's server that, asked to stop, first lets Prefect's event consumers catch up.

        The command stops its server right after its flow run: the run's last task-run
        events may still wait in the server's in-memory broker, and Prefect's shutdown
        cancels the consumers mid-write (the records are lost and a traceback is printed).
        """

        async def on_tick(self, counter: int) -> bool:
            _note_idle_consumers()
            result: bool = await super().on_tick(counter)
            return result

        async def main_loop(self) -> None:
            await super().main_loop()
            deadline = time.monotonic() + DRAIN_TIMEOUT_S
            while time.monotonic() < deadline and not _broker_idle():
                await asyncio.sleep(0.02)

    return DrainingServer


# Per broker subscription, the most consumers ever seen waiting on it at once: when all
# of them wait again and its queue is empty, nothing of it is in flight.
_waiting: dict[int, int] = {}


def _subscriptions() -> list[Any]:
    """Prefect's in-memory broker subscriptions ([] if this Prefect has no such broker)."""
    try:
        from prefect.server.utilities.messaging.memory import Topic

        return [sub for topic in list(Topic._topics.values()) for sub in list(topic._subscriptions)]
    except (ImportError, AttributeError):
        return []


def _note_idle_consumers() -> None:
    for sub in _subscriptions():
        getters = len(getattr(sub._queue, "_getters", ()))
        _waiting[id(sub)] = max(_waiting.get(id(sub), 0), getters)


def _broker_idle() -> bool:
    """True when no subscription has a queued message or a consumer busy with one."""
    try:
        return all(
            sub._queue.empty() and len(getattr(sub._queue, "_getters", ())) >= _waiting.get(id(sub), 0)
            for sub in _subscriptions()
        )
    except AttributeError:  # another Prefect's broker: do not wait
        return True


if __name__ == "__main__":
    _serve(sys.argv[1:])
