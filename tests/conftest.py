"""Shared fixtures: repo paths, a scratch copy of the sample corpus, one Prefect harness."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

# Every process the tests start (and Prefect in this one) runs with analytics off and
# a Prefect home inside the repo, before anything imports prefect.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_HOME", str(REPO / ".prefect"))


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture()
def corpus(tmp_path: Path) -> Path:
    """A writable copy of samples/ with the repo's sources.toml beside it; returns the config path."""
    shutil.copytree(REPO / "samples", tmp_path / "samples")
    config = tmp_path / "sources.toml"
    shutil.copy(REPO / "sources.toml", config)
    return config


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test on the session's Prefect test server is slow: the server alone takes ~15 s to start."""
    for item in items:
        if "prefect_harness" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    """One Prefect test server for the whole session (entering one costs ~10 s)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield
