"""Re-normalisation: rows an older normaliser version wrote are rebuilt from the raw inputs."""

from __future__ import annotations

import sqlite3
from datetime import date
from pathlib import Path

import duckdb
import pytest

from pipeline.config import load_config
from pipeline.ingest import SourceSummary
from pipeline.run import LocalRunner, Renormalize, run_source
from warehouse.layout import DataRoot
from warehouse.state import StateStore


def _ingest(cfg: Path, root: DataRoot, name: str, run_id: str) -> SourceSummary:
    return run_source(load_config(cfg).sources[name], root, run_id, runner=LocalRunner(1))


def _renormalize(cfg: Path, root: DataRoot, name: str, run_id: str, start: date | None = None) -> SourceSummary:
    return run_source(load_config(cfg).sources[name], root, run_id, Renormalize(start), runner=LocalRunner(1))


def _age(root: DataRoot, source: str, paths: list[str]) -> None:
    """Mark rows as written by an older normaliser version, as after an upgrade."""
    with sqlite3.connect(root.state / "newsflow.sqlite") as db:
        db.executemany(
            "UPDATE files SET normalizer_version = '0.0.1' WHERE source = ? AND path = ?", [(source, p) for p in paths]
        )


def _runs(root: DataRoot) -> dict[str, str]:
    rows = duckdb.sql(
        f"SELECT source_uri, run_id FROM read_parquet('{root.articles}/**/*.parquet', union_by_name = true)"
    ).fetchall()
    return {uri.rsplit("/", 1)[1]: run for uri, run in rows}


def test_only_outdated_rows_are_rebuilt_and_take_the_current_version(corpus: Path, tmp_path: Path) -> None:
    root = DataRoot(tmp_path / "data")
    first = _ingest(corpus, root, "wire", "run-1")
    assert first.written == 20
    # Nothing is outdated yet: nothing to do.
    assert _renormalize(corpus, root, "wire", "run-0").discovered == 0
    with StateStore(root.state) as store:
        written = sorted(p for p, s in store.load("wire").items() if s.status == "written")
    aged = written[:3]
    _age(root, "wire", aged)
    again = _renormalize(corpus, root, "wire", "run-2")
    assert (again.discovered, again.changed, again.written, again.quarantined) == (3, 3, 3, 0)
    assert again.reconciles()
    runs = _runs(root)
    assert sorted(name for name, run in runs.items() if run == "run-2") == sorted(Path(p).name for p in aged)
    assert sum(1 for run in runs.values() if run == "run-1") == 17
    with StateStore(root.state) as store:
        assert all(s.normalizer_version != "0.0.1" for s in store.load("wire").values())
    # A plain run afterwards finds every file unchanged.
    assert _ingest(corpus, root, "wire", "run-3").written == 0


def test_a_date_window_limits_the_rebuild_to_its_months(corpus: Path, tmp_path: Path) -> None:
    root = DataRoot(tmp_path / "data")
    _ingest(corpus, root, "wire", "run-1")
    with StateStore(root.state) as store:
        states = {p: s for p, s in store.load("wire").items() if s.status == "written"}
    _age(root, "wire", list(states))
    latest = max(s.partition or "" for s in states.values()).split("/")[1]  # YYYY-MM
    year, month = (int(x) for x in latest.split("-"))
    in_window = sum(1 for s in states.values() if (s.partition or "").endswith(latest))
    summary = _renormalize(corpus, root, "wire", "run-2", start=date(year, month, 1))
    assert summary.written == in_window
    assert 0 < in_window < len(states)


def test_a_vanished_input_is_quarantined_not_lost(corpus: Path, tmp_path: Path) -> None:
    root = DataRoot(tmp_path / "data")
    _ingest(corpus, root, "wire", "run-1")
    with StateStore(root.state) as store:
        victim = next(p for p, s in store.load("wire").items() if s.status == "written")
    _age(root, "wire", [victim])
    (corpus.parent / "samples" / "wire" / victim).unlink()
    summary = _renormalize(corpus, root, "wire", "run-2")
    assert (summary.discovered, summary.quarantined, summary.reasons) == (1, 1, {"read_error": 1})


@pytest.mark.usefixtures("prefect_harness")
def test_the_renormalize_flow(corpus: Path, tmp_path: Path) -> None:
    from flows.flow import ingest, renormalize

    data = tmp_path / "data"
    ingest(sources=["wire"], config=str(corpus), data=str(data), workers=1)
    root = DataRoot(data)
    with StateStore(root.state) as store:
        aged = [p for p, s in store.load("wire").items() if s.status == "written"][:2]
    _age(root, "wire", aged)
    summary = renormalize(sources=["wire"], config=str(corpus), data=str(data), workers=1)
    (wire,) = summary.sources
    assert (wire.discovered, wire.written) == (2, 2)
    assert wire.reconciles()
