"""The pipeline stages as plain functions (no Prefect): dedupe, moves, reconciliation."""

from __future__ import annotations

import json
import os
from pathlib import Path

import duckdb

from pipeline.config import load_config
from pipeline.discover import plan_files
from pipeline.ingest import (
    SourceSummary,
    assign_partitions,
    finish_source,
    merge_batches,
    process_batch,
    write_partition,
)
from warehouse.layout import DataRoot
from warehouse.state import StateStore

SEED = (Path(__file__).resolve().parent.parent / "samples" / "anha" / "000_db5c100688d27208.txt").read_text(
    encoding="utf-8"
)


def _config(tmp: Path) -> Path:
    (tmp / "src").mkdir(exist_ok=True)
    cfg = tmp / "sources.toml"
    cfg.write_text('[sources.s]\npath = "src"\n', encoding="utf-8")
    return cfg


def _article(tmp: Path, name: str, url: str | None, published: str, marker: str) -> None:
    (tmp / "src" / f"{name}.txt").write_text(SEED.replace("Kado:", f"Kado {marker}:", 1), encoding="utf-8")
    sidecar = {"published_at": published} | ({"url": url} if url else {})
    (tmp / "src" / f"{name}.json").write_text(json.dumps(sidecar), encoding="utf-8")


def _run(cfg: Path, root: DataRoot, run_id: str) -> SourceSummary:
    src = load_config(cfg).sources["s"]
    with StateStore(root.state) as store:
        plan = plan_files(src, store.stat_index("s"), previous=lambda paths: store.get("s", paths))
    summary = SourceSummary("s", plan.discovered, plan.new, plan.changed, plan.unchanged)
    merged = merge_batches([process_batch(src, root, run_id, "b0", list(plan.todo))])
    if merged.states:
        assign_partitions(root, "s", merged)
    keys = sorted(set(merged.spills) | set(merged.deletes))
    writes = [write_partition(root, k, merged.spills.get(k, []), merged.deletes.get(k, []), run_id) for k in keys]
    return finish_source(root, src, run_id, merged, writes, summary)


def _rows(root: DataRoot) -> list[tuple[object, ...]]:
    return duckdb.sql(
        f"SELECT title, year, month FROM read_parquet('{root.articles}/**/*.parquet', hive_partitioning=true, "
        "hive_types={'year': INTEGER, 'month': INTEGER}) "
        "ORDER BY title"
    ).fetchall()


def test_same_url_in_two_months_keeps_one_row_where_the_later_path_put_it(tmp_path: Path) -> None:
    cfg, root = _config(tmp_path), DataRoot(tmp_path / "data")
    _article(tmp_path, "a", "https://example.org/x", "2024-01-10T00:00:00Z", "A")
    _article(tmp_path, "b", "https://example.org/x", "2024-02-10T00:00:00Z", "B")
    _article(tmp_path, "c", None, "2024-01-11T00:00:00Z", "C")
    summary = _run(cfg, root, "r1")
    assert summary.written == 2 and summary.superseded == 1 and summary.reconciles()
    titles = [(str(t).split(":")[0], y, m) for t, y, m in _rows(root)]
    assert titles == [("Kado B", 2024, 2), ("Kado C", 2024, 1)]


def test_an_unchanged_file_keeps_its_article_against_an_earlier_path(tmp_path: Path) -> None:
    cfg, root = _config(tmp_path), DataRoot(tmp_path / "data")
    _article(tmp_path, "b", "https://example.org/x", "2024-02-10T00:00:00Z", "B")
    _run(cfg, root, "r1")
    # A new file sorting before b claims the same URL in another month: b (unchanged,
    # later path) still wins, and no second row appears.
    _article(tmp_path, "a", "https://example.org/x", "2024-01-10T00:00:00Z", "A")
    summary = _run(cfg, root, "r2")
    assert summary.new == 1 and summary.unchanged == 1 and summary.reconciles()
    assert [(str(t).split(":")[0], y, m) for t, y, m in _rows(root)] == [("Kado B", 2024, 2)]


def test_an_article_whose_date_changes_moves_partition(tmp_path: Path) -> None:
    cfg, root = _config(tmp_path), DataRoot(tmp_path / "data")
    _article(tmp_path, "a", None, "2024-01-10T00:00:00Z", "A")
    _run(cfg, root, "r1")
    sidecar = tmp_path / "src" / "a.json"
    sidecar.write_text(json.dumps({"published_at": "2024-03-01T00:00:00Z"}), encoding="utf-8")
    os.utime(sidecar, (1_800_000_000, 1_800_000_000))
    summary = _run(cfg, root, "r2")
    assert summary.changed == 1 and summary.written == 1 and summary.reconciles()
    assert [(y, m) for _, y, m in _rows(root)] == [(2024, 3)]
    assert not (root.articles / "source=s" / "year=2024" / "month=01" / "part-0.parquet").exists()


def test_a_file_over_max_bytes_is_quarantined_as_too_large(tmp_path: Path) -> None:
    cfg, root = _config(tmp_path), DataRoot(tmp_path / "data")
    cfg.write_text('[sources.s]\npath = "src"\nmax_bytes = 2000\n', encoding="utf-8")
    _article(tmp_path, "big", None, "2024-01-10T00:00:00Z", "A")  # the seed is ~5.5 KB
    summary = _run(cfg, root, "r1")
    assert summary.quarantined == 1 and summary.reasons == {"too_large": 1} and summary.reconciles()


def test_an_auto_source_ingests_html_and_text_side_by_side(tmp_path: Path) -> None:
    """HTML pages (plain and gzip) and text files in one `auto` source; a broken page is quarantined."""
    import gzip
    import shutil

    fixtures = Path(__file__).resolve().parent / "fixtures" / "html"
    cfg = _config(tmp_path)
    cfg.write_text('[sources.s]\npath = "src"\nformat = "auto"\n', encoding="utf-8")
    src_dir = tmp_path / "src"
    shutil.copy(fixtures / "foxnews.html.gz", src_dir / "fox.html.gz")
    (src_dir / "ap.html").write_bytes(gzip.decompress((fixtures / "ap.html.gz").read_bytes()))
    (src_dir / "ap.json").write_text(json.dumps({"published_at": "2019-11-20T12:00:00Z"}), encoding="utf-8")
    (src_dir / "broken.html.gz").write_bytes(b"\x1f\x8b\x08\x00 not really gzip")
    _article(tmp_path, "seed", "https://example.org/seed", "2024-01-02T00:00:00Z", "t")
    root = DataRoot(tmp_path / "data")
    summary = _run(cfg, root, "run-1")
    assert (summary.discovered, summary.written, summary.quarantined) == (4, 3, 1)
    assert summary.reconciles()
    rows = duckdb.sql(
        f"SELECT normalizer, extraction, date_source, language FROM read_parquet('{root.articles}/**/*.parquet', "
        "union_by_name=true) ORDER BY ALL"
    ).fetchall()
    assert rows == [
        ("html", "generic", "jsonld", "en"),
        ("html", "generic", "sidecar", "en"),
        ("text", "text", "sidecar", None),
    ]
    # A second run finds every file unchanged, the quarantined one too (the HTML
    # normaliser's version is what the state compares for pages).
    again = _run(cfg, root, "run-2")
    assert (again.unchanged, again.written, again.quarantined) == (4, 0, 0)


def test_candidates_and_states_cross_to_worker_processes_unchanged() -> None:
    """Batches travel as pickles; the compact field-tuple form must restore every field."""
    import pickle
    from datetime import UTC, datetime

    from pipeline.discover import Candidate
    from warehouse.state import FileState

    prev = FileState(
        "anha", "a/b.txt", 12, 3_000_000_001, "4:5", "ab" * 32, "cd" * 16, "anha/2024-03", "written", "1.0.0", "r1"
    )
    cand = Candidate(
        "a/b.txt",
        "/in/a/b.txt",
        13,
        3_000_000_002,
        "/in/a/b.json",
        "4:6",
        prev,
        None,
        "https://x.org/a",
        "text/html",
        "Title",
        datetime(2024, 3, 1, 12, tzinfo=UTC),
    )
    for value in (prev, cand, [cand, cand], Candidate("r", "p", 1, 2, None, "")):
        copy = pickle.loads(pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))
        assert copy == value
    assert pickle.loads(pickle.dumps(cand)).prev == prev


def test_a_batch_normalised_ahead_becomes_the_runs_own(tmp_path: Path) -> None:
    """`adopt_batch`: the spills move into the run's folder, and are written with its id and time."""
    from pipeline.ingest import adopt_batch
    from warehouse.writer import read_spill

    cfg, root = _config(tmp_path), DataRoot(tmp_path / "data")
    _article(tmp_path, "a", "https://x.org/a", "2024-03-01T10:00:00Z", "A")
    _article(tmp_path, "b", None, "2024-04-01T10:00:00Z", "B")
    (tmp_path / "src" / "empty.txt").write_bytes(b"")
    src = load_config(cfg).sources["s"]
    made = process_batch(src, root, "ahead-1", "b000000", list(plan_files(src, {}).todo))
    assert (root.staging / "runs" / "ahead-1").is_dir()
    ids = {
        key: [read_spill(Path(p), ["article_id"]).column(0).to_pylist() for p in paths]
        for key, paths in made.spills.items()
    }

    adopted = adopt_batch(root, made, "ahead-1", "run-9")
    assert not (root.staging / "runs" / "ahead-1").exists()
    assert sorted(adopted.spills) == sorted(made.spills) == ["s/2024-03", "s/2024-04"]
    for key, paths in adopted.spills.items():
        assert all(Path(p).is_relative_to(root.spills("run-9")) for p in paths)
        assert [read_spill(Path(p), ["article_id"]).column(0).to_pylist() for p in paths] == ids[key]
    assert {s.run_id for s in adopted.states} == {"run-9"}
    assert [q.run_id for q in adopted.quarantined] == ["run-9"]
    assert (adopted.articles, len(adopted.states)) == (made.articles, len(made.states)) == (2, 3)

    for key, paths in adopted.spills.items():
        write_partition(root, key, paths, [], "run-9")
    stamped = duckdb.sql(
        f"SELECT DISTINCT run_id, ingested_at IS NULL FROM read_parquet('{root.articles}/**/*.parquet')"
    ).fetchall()
    assert stamped == [("run-9", False)]


def test_a_plan_made_ahead_holds_only_while_nothing_else_commits_to_the_state(tmp_path: Path) -> None:
    """`PlanAhead`: taken over as made, unless the state changed since or it was made for other settings."""
    import dataclasses
    import subprocess
    import sys

    from pipeline.discover import PlanAhead, discover_files, plan_source

    cfg, root = _config(tmp_path), DataRoot(tmp_path / "data")
    _article(tmp_path, "a", "https://x.org/a", "2024-03-01T10:00:00Z", "A")
    _article(tmp_path, "b", None, "2024-04-01T10:00:00Z", "B")
    src = load_config(cfg).sources["s"]
    _run(cfg, root, "run-1")
    (tmp_path / "src" / "b.txt").write_text(SEED.replace("Kado:", "Kado changed:", 1), encoding="utf-8")
    listing = discover_files(src)

    planned = PlanAhead(src, root, False, listing)
    plan = planned.take(src, root, False)
    assert plan is not None and plan == plan_source(src, root, False, listing)
    assert [(c.rel, c.prev is not None) for c in plan.todo] == [("b.txt", True)]
    assert planned.take(src, root, False) is None  # taken once; the database is closed

    assert PlanAhead(src, root, False, listing).take(src, root, True) is None
    other = dataclasses.replace(src, include=("*.md",))
    assert PlanAhead(src, root, False, listing).take(other, root, False) is None

    # Another process commits to the state in between: the plan may be stale.
    planned = PlanAhead(src, root, False, listing)
    forget = (
        "import sys\nfrom pathlib import Path\nfrom warehouse.state import StateStore\n"
        "with StateStore(Path(sys.argv[1])) as store: store.delete('s', ['a.txt'])\n"
    )
    subprocess.run([sys.executable, "-c", forget, str(root.state)], check=True, cwd=Path(__file__).parent.parent)
    assert planned.take(src, root, False) is None
    assert [c.rel for c in plan_source(src, root, False, listing).todo] == ["a.txt", "b.txt"]


def test_the_batch_judges_dates_against_its_start_time(tmp_path: Path) -> None:
    # process_batch passes the time it started as the time of ingest: a sidecar dated 2999
    # is not a publication date, and the article falls back to its file's mtime.
    cfg, root = _config(tmp_path), DataRoot(tmp_path / "data")
    _article(tmp_path, "a", "https://example.org/future", "2999-01-01T00:00:00Z", "A")
    march = 1_709_640_000  # 2024-03-05 12:00 UTC
    os.utime(tmp_path / "src" / "a.txt", (march, march))
    summary = _run(cfg, root, "r1")
    assert summary.written == 1 and summary.reconciles()
    assert [(y, m) for _t, y, m in _rows(root)] == [(2024, 3)]
    ((date_source, warnings),) = duckdb.sql(
        f"SELECT date_source, warnings FROM read_parquet('{root.articles}/**/*.parquet')"
    ).fetchall()
    assert date_source == "mtime"
    assert len(warnings) == 1 and "2999-01-01" in warnings[0] and "sidecar" in warnings[0]
