"""`python -m flows.cli`, except that putting some files in place first waits for the test's word.

Fault injection for the tests that stop or kill a run: rather than polling the data
folder for a moment to strike in, a test names a point, and the run waits there until
the test answers (`helpers.RenameGate` is the test's end). Every file the project puts
in place (a partition, a ledger entry, a spill) is written aside and renamed onto its
path with `os.replace`, so that rename is the point. NEWSFLOW_TEST_RENAME_GATE holds
"<port> <pattern>": before a rename onto a path matching the pattern (fnmatch), the
process connects to 127.0.0.1:<port>, sends a line "<pid> <source> <destination>" and
waits for one byte; the test answers to let the rename happen (and is told "renamed"
once it has), or stops or kills the run there. A gate the test has closed (it hung up,
or no longer listens) is open: the rename goes on.

The pool workers of a run (multiprocessing's spawn) run this file as `__mp_main__`, so
the gate holds in every process of the run, not only the command's own.
"""

from __future__ import annotations

import contextlib
import fnmatch
import os
import socket
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
# As `python -m flows.cli` run from the repository finds the project's packages.
sys.path.insert(0, str(REPO))


def _install_gate(setting: str) -> None:
    port, pattern = setting.split(" ", 1)
    rename = os.replace

    def gated(src: Any, dst: Any, **kwargs: Any) -> None:
        if not fnmatch.fnmatch(os.fspath(dst), pattern):
            return rename(src, dst, **kwargs)
        try:
            conn = socket.create_connection(("127.0.0.1", int(port)))
        except OSError:  # the test no longer listens: the gate is open
            return rename(src, dst, **kwargs)
        with conn:
            with contextlib.suppress(OSError):  # the test let go of the gate: go on
                conn.sendall(f"{os.getpid()} {os.fspath(src)} {os.fspath(dst)}\n".encode())
                conn.recv(1)
            rename(src, dst, **kwargs)
            with contextlib.suppress(OSError):
                conn.sendall(b"renamed\n")
        return None

    os.replace = gated


if setting := os.environ.get("NEWSFLOW_TEST_RENAME_GATE"):
    _install_gate(setting)

if __name__ == "__main__":
    from flows.cli import main

    sys.exit(main())
