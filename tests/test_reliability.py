"""The fastest cases of scripts/reliability.py (`make reliability` runs them all): kill, check, re-run."""

from __future__ import annotations

import importlib.util
import random
import sys
from pathlib import Path
from types import ModuleType

import pytest
from helpers import harness_url

REPO = Path(__file__).resolve().parent.parent


def _harness() -> ModuleType:
    spec = importlib.util.spec_from_file_location("reliability", REPO / "scripts" / "reliability.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.usefixtures("prefect_harness")
def test_killed_while_normalising_and_stopped_between_backfill_months(tmp_path: Path) -> None:
    rel = _harness()
    rng = random.Random(15)
    corpus = rel.Corpus(tmp_path / "corpus", rng)
    corpus.build(400)
    (tmp_path / "logs").mkdir()
    env = rel.Env(rel.write_config(tmp_path, corpus.folder), harness_url(), tmp_path / "logs")
    h = rel.Harness(env, corpus, tmp_path / "data", tmp_path, rng)
    rel.complete(env, "run", h.data, "initial")
    cases = [
        # The command's process only: its workers and the resource tracker must end by themselves.
        rel.KillCase("run", "text", "normalising", "main"),
        # SIGTERM between two months: exit 143 and the line saying what is kept.
        rel.KillCase("backfill", "text", "ledger+1", "term"),
    ]
    for n, case in enumerate(cases, 1):
        row = h.kill_case(n, case)
        assert row.outcome == "PASS", row
    rerun = h.rerun_equals_clean("re-run")
    assert rerun.outcome == "PASS", rerun
