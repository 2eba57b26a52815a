"""Helpers shared by test modules (pytest puts this folder on sys.path)."""

from __future__ import annotations

from pathlib import Path


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


def pid_after(seconds: float) -> int:
    """Sleep, then return this process's pid (a pool task that keeps a worker busy)."""
    import os
    import time

    time.sleep(seconds)
    return os.getpid()
