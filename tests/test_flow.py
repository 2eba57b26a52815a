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
                key=ArtifactFilterKey(any_=["ingest-summary"]),
                flow_run_id=ArtifactFilterFlowRunId(any_=[uuid.UUID(first.run_id)]),
            )
        )
    assert len(arts) == 1 and "| wire | 24 |" in str(arts[0].data)

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


def _article(folder: Path, stem: str, day: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{stem}.txt").write_text(f"Title {stem}\n\n{day}, QAMISHLO - Lede of {stem}.\n\nBody of {stem}.\n")


def test_ingest_takes_the_listing_made_ahead_while_it_is_current(tmp_path: Path) -> None:
    from concurrent.futures import Future

    from helpers import files_source_config

    from flows.flow import ingest, set_early_listings
    from pipeline.config import load_config
    from pipeline.discover import Listing, discover_files

    corpus = tmp_path / "corpus"
    _article(corpus, "a", "2024-03-01")
    _article(corpus, "b", "2024-03-02")
    cfg = files_source_config(tmp_path, "early", corpus)
    data = tmp_path / "data"
    src = load_config(cfg).sources["early"]

    def ahead(listing: Listing | BaseException, made_for: object = src) -> None:
        fut: Future[Listing] = Future()
        if isinstance(listing, BaseException):
            fut.set_exception(listing)
        else:
            fut.set_result(listing)
        set_early_listings({"early": (made_for, fut)})  # type: ignore[dict-item]

    # Listed before the run began; c.txt arrives after: this run works from the listing,
    # the next one finds c.txt.
    ahead(discover_files(src))
    _article(corpus, "c", "2024-03-03")
    first = ingest(config=str(cfg), data=str(data), workers=1)
    assert (first.sources[0].discovered, first.sources[0].written) == (2, 2)
    second = ingest(config=str(cfg), data=str(data), workers=1)  # nothing installed: it walks
    assert (second.sources[0].discovered, second.sources[0].new, second.sources[0].unchanged) == (3, 1, 2)

    # A listing of another folder, or one that failed, is not used: the run walks.
    (tmp_path / "other").mkdir()
    other = load_config(files_source_config(tmp_path / "other", "early", tmp_path / "elsewhere")).sources["early"]
    ahead([], made_for=other)
    assert ingest(config=str(cfg), data=str(data), workers=1).sources[0].discovered == 3
    ahead(OSError("gone"))
    assert ingest(config=str(cfg), data=str(data), workers=1).sources[0].discovered == 3


def test_ingest_adopts_batches_normalised_ahead_only_when_its_plan_agrees(tmp_path: Path) -> None:
    from concurrent.futures import Future

    from helpers import files_source_config

    import flows.flow
    from flows.flow import ingest, set_early_listings, start_batches_ahead
    from pipeline.config import load_config
    from pipeline.discover import Listing, discover_files
    from warehouse.layout import DataRoot
    from warehouse.state import StateStore

    corpus = tmp_path / "corpus"
    for stem, day in (("a", "2024-03-01"), ("b", "2024-03-02"), ("c", "2024-04-03")):
        _article(corpus, stem, day)
    cfg = files_source_config(tmp_path, "early", corpus)
    data = tmp_path / "data"
    src = load_config(cfg).sources["early"]

    def normalise_ahead(force: bool) -> None:
        listing: Future[Listing] = Future()
        listing.set_result(discover_files(src))
        set_early_listings({"early": (src, listing)})
        start_batches_ahead(DataRoot(data), force, 2)
        (batch,) = flows.flow._ahead["early"]  # 3 files: one batch
        batch.result.result()  # normalised and spilled before the run begins

    def stages() -> list[Path]:
        return sorted((data / ".staging" / "runs").glob("ahead-*"))

    normalise_ahead(force=False)
    assert len(stages()) == 1
    # Gone before the run: only a run that takes the batch over (and does not read the
    # file again) can still write its article.
    (corpus / "a.txt").unlink()
    first = ingest(config=str(cfg), data=str(data), workers=2)
    assert (first.sources[0].written, first.sources[0].quarantined) == (3, 0)
    assert first.sources[0].partitions == ["early/2024-03", "early/2024-04"]
    assert stages() == []
    assert flows.flow._planned == {}  # the plan made ahead was taken over (its database closed)
    assert list((data / ".staging" / "runs").iterdir()) == []  # nothing of the run is left behind
    run_ids = duckdb.sql(
        f"SELECT DISTINCT run_id FROM read_parquet('{data}/articles/**/*.parquet', hive_partitioning=true)"
    ).fetchall()
    assert run_ids == [(first.run_id,)]
    with StateStore(data / "state") as store:
        assert {s.run_id for s in store.load("early").values()} == {first.run_id}

    # Made with --force for a run without it (its plan then holds only the new file):
    # dropped, its spills removed, and the run normalises what its own plan says.
    _article(corpus, "d", "2024-04-04")
    normalise_ahead(force=True)
    second = ingest(config=str(cfg), data=str(data), workers=2)
    assert (second.sources[0].new, second.sources[0].written, second.sources[0].quarantined) == (1, 1, 0)
    assert stages() == []
    assert sorted(row[2] for row in _rows(data)) == ["Title a", "Title b", "Title c", "Title d"]


def test_a_batch_ahead_that_failed_is_normalised_by_the_run_and_its_folder_removed(tmp_path: Path) -> None:
    from concurrent.futures import Future

    from helpers import files_source_config

    import flows.flow
    from flows.flow import Ahead, ingest, set_early_listings
    from pipeline.config import load_config
    from pipeline.discover import Listing, discover_files, plan_files
    from pipeline.ingest import BatchResult
    from warehouse.layout import DataRoot

    corpus = tmp_path / "corpus"
    _article(corpus, "a", "2024-03-01")
    cfg = files_source_config(tmp_path, "early", corpus)
    data = tmp_path / "data"
    src = load_config(cfg).sources["early"]
    listing: Future[Listing] = Future()
    listing.set_result(discover_files(src))
    set_early_listings({"early": (src, listing)})
    failed: Future[BatchResult] = Future()
    failed.set_exception(OSError("disk full"))
    stage = data / ".staging" / "runs" / "ahead-failed"
    stage.mkdir(parents=True)
    (stage / "part.arrow").write_bytes(b"half a spill")
    items = tuple(plan_files(src, {}).todo)
    flows.flow._ahead["early"] = [Ahead(src, DataRoot(data), False, items, "ahead-failed", failed)]

    summary = ingest(config=str(cfg), data=str(data), workers=1)
    assert (summary.sources[0].written, summary.sources[0].quarantined) == (1, 0)
    assert not stage.exists()


def test_a_listing_made_ahead_is_dropped_when_the_run_waited_for_the_source(tmp_path: Path) -> None:
    from concurrent.futures import Future

    from helpers import files_source_config

    from flows.flow import _early_listing, set_early_listings
    from pipeline.config import load_config
    from pipeline.discover import Listing

    src = load_config(files_source_config(tmp_path, "s", tmp_path / "corpus")).sources["s"]
    pending: Future[Listing] = Future()
    set_early_listings({"s": (src, pending)})
    # Another run held the source: it may have changed the files since the listing.
    assert _early_listing(src, fresh=False) is None
    assert pending.cancelled()
    assert _early_listing(src, fresh=True) is None  # taken once only
    done: Future[Listing] = Future()
    done.set_result([("a.txt", "/corpus/a.txt", 1, 2, None, "")])
    set_early_listings({"s": (src, done)})
    assert _early_listing(src, fresh=True) == [("a.txt", "/corpus/a.txt", 1, 2, None, "")]
