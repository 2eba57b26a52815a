"""The locks: one dependency set, installed whole (an optional extra never moves a pinned package)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PIN = re.compile(r"^([A-Za-z0-9_.\-]+)==([^\s\\]+)", re.M)


def _pins(lock: str) -> dict[str, str]:
    return {name.lower(): version for name, version in PIN.findall((REPO / lock).read_text(encoding="utf-8"))}


def test_the_bench_lock_holds_every_runtime_pin_at_the_same_version() -> None:
    runtime, bench = _pins("requirements.lock"), _pins("requirements-bench.lock")
    moved = {name: (version, bench.get(name)) for name, version in runtime.items() if bench.get(name) != version}
    assert moved == {}, "make bench-deps would change these runtime packages; run `make lock`"


def test_the_pinned_prefect_is_the_locked_one() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    (pin,) = [d for d in project["dependencies"] if d.startswith("prefect==")]
    assert pin == f"prefect=={_pins('requirements.lock')['prefect']}"
