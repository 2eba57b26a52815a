"""Helpers shared by test modules (pytest puts this folder on sys.path)."""

from __future__ import annotations

import os
import select
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, TypeVar

T = TypeVar("T")


def files_source_config(tmp: Path, name: str, corpus: Path) -> Path:
    """Write `tmp/sources.toml` with one text `files` source on `corpus`, tagged like the seed's agency."""
    cfg = tmp / "sources.toml"
    cfg.write_text(
        f"""
[sources.{name}]
path = "{corpus}"
[[sources.{name}.rules]]
name = "tag"
kind = "byline"
match = '[THAE]/\\s*\\S.{{0,60}}'
""",
        encoding="utf-8",
    )
    return cfg


def newsflow(
    args: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """The `newsflow` command in a subprocess, stdout and stderr captured (so neither is a terminal)."""
    return subprocess.run(
        [sys.executable, "-m", "flows.cli", *args],
        check=False,
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=timeout,
    )


def harness_url() -> str:
    """The API URL of the session's Prefect test server (the `prefect_harness` fixture must be active)."""
    from prefect.settings import PREFECT_API_URL

    return str(PREFECT_API_URL.value())


def harness_env(**extra: str) -> dict[str, str]:
    """The environment of a `newsflow` subprocess that uses the session's Prefect test server."""
    return {**os.environ, "PREFECT_API_URL": harness_url(), **extra}


def pid_after(seconds: float) -> int:
    """Sleep, then return this process's pid (a pool task that keeps a worker busy)."""
    import time

    time.sleep(seconds)
    return os.getpid()


# --- waiting on other processes: events, not polls -------------------------------------------

GATED_CLI = Path(__file__).resolve().parent / "gated_cli.py"


def wait_until(
    found: Callable[[], T | None], timeout: float, what: str, proc: subprocess.Popen[bytes] | None = None
) -> T:
    """Check `found` every half second until it returns something; fails after `timeout` or if `proc` ends.

    For a condition no event reports, such as a record in another process's database.
    `what` names it in the failure.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = found()
        if result is not None and result is not False:
            return result
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the process ended (code {proc.returncode}) before {what}")
        if time.monotonic() >= deadline:
            raise AssertionError(f"not within {timeout:.0f} s: {what}")
        time.sleep(0.5)


def wait_exit(pid: int, timeout: float) -> bool:
    """Wait until process `pid` (any process, not only a child) has ended; False after `timeout` seconds."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        readable, _, _ = select.select([fd], [], [], timeout)  # readable once the process has ended
        return bool(readable)
    finally:
        os.close(fd)


class RenameGate:
    """The test's end of `gated_cli.py`: each rename onto a path matching `pattern` waits here for a word.

    `command(args)` is the `newsflow` command line that runs gated, `env` its environment.
    """

    def __init__(self, pattern: str, env: dict[str, str] | None = None) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        port = self._listener.getsockname()[1]
        self.env = {**(os.environ if env is None else env), "NEWSFLOW_TEST_RENAME_GATE": f"{port} {pattern}"}
        self._waiting: list[socket.socket] = []

    @staticmethod
    def command(*args: str) -> list[str]:
        """The `newsflow` command `args`, run by `gated_cli.py`."""
        return [sys.executable, str(GATED_CLI), *args]

    def next(self, proc: subprocess.Popen[Any], timeout: float) -> tuple[Path, Path]:
        """Wait for `proc` (or one of its workers) to be about to rename a file into place; returns (source, path).

        The rename is held until `release`; fails the test if `proc` ends first or `timeout` passes.
        """
        pidfd = os.pidfd_open(proc.pid)
        try:
            readable, _, _ = select.select([self._listener, pidfd], [], [], timeout)
        finally:
            os.close(pidfd)
        if self._listener not in readable:
            what = "ended" if readable else f"did not get there within {timeout:.0f} s"
            raise AssertionError(f"the run {what}: no rename the test waits for")
        conn, _ = self._listener.accept()
        conn.settimeout(timeout)
        with conn.makefile("rb") as lines:
            _pid, source, path = lines.readline().decode().split()
        self._waiting.append(conn)
        return Path(source), Path(path)

    def release(self, timeout: float) -> None:
        """Let the oldest held rename happen, and wait until it has."""
        conn = self._waiting.pop(0)
        conn.settimeout(timeout)
        with conn, conn.makefile("rb") as lines:
            conn.sendall(b"y")
            answer = lines.readline()
        assert answer == b"renamed\n", f"the rename did not happen (its process said {answer!r})"

    def close(self) -> None:
        """Hang up and stop listening: the gate is open, held renames and later ones go on."""
        for conn in self._waiting:
            conn.close()
        self._listener.close()

    def __enter__(self) -> RenameGate:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class Output:
    """A child's output, read on a thread as it comes, so a test waits for a line instead of polling a file.

    Everything read is also appended to `copy` (a log file a failing test's message can show).
    """

    def __init__(self, stream: IO[bytes], copy: Path | None = None) -> None:
        self._stream, self._copy = stream, copy
        self._text = ""
        self._ended = False
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        sink = open(self._copy, "ab") if self._copy else None  # noqa: SIM115 (closed below, on this thread)
        try:
            for line in iter(self._stream.readline, b""):
                if sink:
                    sink.write(line)
                    sink.flush()
                with self._changed:
                    self._text += line.decode(errors="replace")
                    self._changed.notify_all()
        finally:
            if sink:
                sink.close()
            with self._changed:
                self._ended = True
                self._changed.notify_all()

    @property
    def text(self) -> str:
        """All read so far."""
        with self._changed:
            return self._text

    def wait_for(self, needle: str, timeout: float) -> bool:
        """Wait until `needle` has appeared; False if the output ended or `timeout` passed first."""
        with self._changed:
            self._changed.wait_for(lambda: needle in self._text or self._ended, timeout)
            return needle in self._text

    def rest(self, timeout: float) -> str:
        """Everything, once the stream has ended (the process closed it or exited)."""
        self._thread.join(timeout)
        return self.text
