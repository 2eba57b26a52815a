"""The ingest flow on the real Prefect engine (one session-scoped test server)."""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

import duckdb
import pytest

pytestmark = pytest.mark.usefixtures("prefect_harness")


def _rows(data: Path) -> list[tuple[object, ...]]:
    glob = data / "articles" / "**" / "*.parquet"
    return duckdb.sql(
        f"SELECT article_id, source, title, text, byline, published_at, content_hash "
        f"FROM read_parquet('{glob}', hive_partitioning=true) ORDER BY article_id"
    ).fetchall()


def test_ingest_flow_runs_incrementally_and_reconciles(corpus: Path, tmp_path: Path) -> None:
    from prefect.client.orchestration import get_client

    from flows.flow import ingest

    data = tmp_path / "data"
    first = ingest(config=str(corpus), data=str(data), workers=2)
    by = {s.source: s for s in first.sources}
    assert by["anha"].written == 2 and by["anha"].quarantined == 0
    assert by["pages"].written == 3 and by["pages"].quarantined == 0
    assert by["wire"].discovered == 24
    assert by["wire"].written == 20
    assert by["wire"].quarantined == 4
    assert by["wire"].reasons == {"bad_sidecar": 1, "binary": 1, "empty": 1, "invalid_utf8": 1}
    assert all(s.reconciles() for s in first.sources)
    assert len(by["wire"].partitions) >= 5
    rows = _rows(data)
    assert len(rows) == 25
    quarantine = duckdb.sql(
        f"SELECT reason, count(*) FROM read_parquet('{data}/quarantine/**/*.parquet') GROUP BY ALL ORDER BY 1"
    ).fetchall()
    assert quarantine == [("bad_sidecar", 1), ("binary", 1), ("empty", 1), ("invalid_utf8", 1)]

    # The run summary is a Prefect artifact.
    with get_client(sync_client=True) as client:
        from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, ArtifactFilterKey

        arts = client.read_artifacts(
            artifact_filter=ArtifactFilter(
                key=ArtifactFilterKey(any_=["ingest-summary", "newsflow-report"]),
                flow_run_id=ArtifactFilterFlowRunId(any_=[uuid.UUID(first.run_id)]),
            )
        )
    by_key = {a.key: str(a.data) for a in arts}
    assert "| wire | 24 |" in by_key["ingest-summary"]
    # Every run leaves the corpus report, and its key figures and place as an artifact.
    report = data.absolute() / "report.html"
    assert first.report == str(report) and first.report_error is None and report.stat().st_size > 0
    assert "| articles | 25 |" in by_key["newsflow-report"] and str(report) in by_key["newsflow-report"]
    assert f"Report with charts: `{report}`" in by_key["ingest-summary"]

    # A second run over unchanged files writes nothing.
    second = ingest(config=str(corpus), data=str(data), workers=1)
    assert second.total("written") == 0
    assert second.total("unchanged") == 29
    assert second.total("quarantined") == 0
    assert _rows(data) == rows

    # Touching a file without changing it is still unchanged; editing one rewrites one row.
    wire = corpus.parent / "samples" / "wire"
    touched = wire / "001_05844573ca7e.txt"
    os.utime(touched, (time.time() + 5, time.time() + 5))
    edited = wire / "002_06e5123e4ef7.txt"
    edited.write_text(
        edited.read_text(encoding="utf-8").replace("\n\n", "\n\nAn added paragraph.\n\n", 1), encoding="utf-8"
    )
    third = ingest(sources=["wire"], config=str(corpus), data=str(data), workers=1)
    (wire_summary,) = third.sources
    assert wire_summary.changed == 1 and wire_summary.written == 1
    assert wire_summary.unchanged == 23
    assert wire_summary.reconciles()
    after = _rows(data)
    assert len(after) == 25
    changed = [a for a, b in zip(after, rows, strict=True) if a != b]
    assert len(changed) == 1 and "An added paragraph." in str(changed[0][3])


def test_unknown_source_is_a_clear_error(corpus: Path, tmp_path: Path) -> None:
    from flows.flow import ingest
    from pipeline.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown source"):
        ingest(sources=["nope"], config=str(corpus), data=str(tmp_path / "data"))


def test_force_reprocesses_unchanged_files(corpus: Path, tmp_path: Path) -> None:
    from flows.flow import ingest

    data = tmp_path / "data"
    ingest(sources=["wire"], config=str(corpus), data=str(data), workers=1)
    before = _rows(data)
    forced = ingest(sources=["wire"], config=str(corpus), data=str(data), workers=1, force=True)
    (wire,) = forced.sources
    assert wire.changed == 24 and wire.unchanged == 0
    assert wire.written == 20 and wire.quarantined == 4
    assert wire.reconciles()
    assert _rows(data) == before  # same content, rewritten
    run_ids = duckdb.sql(f"SELECT DISTINCT run_id FROM read_parquet('{data}/articles/**/*.parquet')").fetchall()
    assert run_ids == [(forced.run_id,)]


def test_only_transient_errors_are_retried() -> None:
    from prefect.states import Completed, Failed

    from flows.flow import _transient
    from warehouse.errors import LockTimeout

    def failed(exc: Exception) -> object:
        return Failed(data=exc)

    assert _transient(None, None, failed(LockTimeout("held")))
    assert not _transient(None, None, failed(ValueError("bad input")))
    assert not _transient(None, None, failed(OSError("disk full")))
    assert not _transient(None, None, Completed(data=1))


def test_the_flow_is_the_core_with_each_stage_a_task_run(corpus: Path, tmp_path: Path) -> None:
    """`ingest` writes what `run_source` writes, and Prefect shows the core's stages as its task runs."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    from flows.config import load_config
    from flows.flow import Observer, ingest, observed_by
    from flows.server import wait_recorded
    from pipeline.run import LocalRunner, run_source
    from warehouse.layout import DataRoot

    with observed_by(Observer()) as observer:
        flow_summary = ingest(config=str(corpus), data=str(tmp_path / "flow"), workers=2)
    root = DataRoot(tmp_path / "core")
    core = [run_source(src, root, "core-run", runner=LocalRunner(1)) for src in load_config(corpus).select(None)]
    assert _rows(tmp_path / "flow") == _rows(tmp_path / "core")
    counted = ("discovered", "new", "written", "quarantined", "partitions", "reasons")
    assert [[getattr(s, c) for c in counted] for s in flow_summary.sources] == [
        [getattr(s, c) for c in counted] for s in core
    ]

    # The server records task runs from events, shortly after: wait as the CLI does (60 s: a hang guard).
    flow_run_id = uuid.UUID(flow_summary.run_id)
    assert observer.task_runs > 0
    assert wait_recorded(flow_run_id, observer.task_runs, 60) == observer.task_runs
    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
    stages = {r.name.rsplit("-", 1)[0] for r in runs}
    expected = {
        "discover",
        "normalize-batch",
        "write-partition",
        "finish-source",
        "dedup",
        "report",
    }
    assert expected <= stages, stages
    # The duplicate index was brought up to date after the sources: every article has its cluster row.
    assert flow_summary.duplicates is not None and flow_summary.duplicates_error is None
    assert flow_summary.duplicates.articles == sum(s.written for s in core) == flow_summary.duplicates.added
    assert all(r.state_type is not None and r.state_type.value == "COMPLETED" for r in runs)
