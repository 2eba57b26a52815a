"""`python -m flows.cli`, except that publishing some dataset files first waits for the test's word.

Fault injection for the tests that kill a run: rather than polling the data folder for
a moment to kill in, a test names a point, and the run stops there until the test
answers (`helpers.PublishGate` is the test's end). NEWSFLOW_TEST_PUBLISH_GATE holds
"<port> <pattern>": before `warehouse.atomic.publish` moves a staged file to a target
matching the pattern (fnmatch), the process connects to 127.0.0.1:<port>, sends a line
"<pid> <staged> <target>" and waits for one byte: the test answers to let the file be
published (and is told "published" once it is), or kills the run there.

The pool workers of a run (multiprocessing's spawn) run this file as `__mp_main__`, so
the gate holds in every process of the run, not only the command's own.
"""

from __future__ import annotations

import fnmatch
import os
import socket
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# As `python -m flows.cli` run from the repository finds the project's packages.
sys.path.insert(0, str(REPO))


def _install_gate(setting: str) -> None:
    import warehouse.atomic

    port, pattern = setting.split(" ", 1)
    original = warehouse.atomic.publish

    def gated(staged: Path, target: Path) -> None:
        if fnmatch.fnmatch(str(target), pattern):
            with socket.create_connection(("127.0.0.1", int(port))) as conn:
                conn.sendall(f"{os.getpid()} {staged} {target}\n".encode())
                if not conn.recv(1):
                    raise SystemExit("the test closed the publish gate")
                original(staged, target)
                conn.sendall(b"published\n")
        else:
            original(staged, target)

    # `warehouse.atomic` calls its own global; modules that imported the name hold a reference each.
    for module in list(sys.modules.values()):
        if module is not None and vars(module).get("publish") is original:
            module.publish = gated


if setting := os.environ.get("NEWSFLOW_TEST_PUBLISH_GATE"):
    _install_gate(setting)

if __name__ == "__main__":
    from flows.cli import main

    sys.exit(main())
