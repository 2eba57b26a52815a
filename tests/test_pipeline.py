"""The pipeline core without Prefect (`run_source`): dedupe, moves, reconciliation."""

from __future__ import annotations

import json
import os
from pathlib import Path

import duckdb

from pipeline.config import load_config
from pipeline.ingest import SourceSummary
from pipeline.run import LocalRunner, run_source
from warehouse.layout import DataRoot

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
    return run_source(load_config(cfg).sources["s"], root, run_id, runner=LocalRunner(1))


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


def test_inputs_and_states_cross_to_worker_processes_unchanged() -> None:
    """Batches travel as pickles; every kind of input, and the state it carries, comes back whole."""
    import pickle
    from datetime import UTC, datetime

    from pipeline.inputs import FetchedInput, FileInput, ListedUrl
    from warehouse.state import FileState

    prev = FileState(
        "anha", "a/b.txt", 12, 3_000_000_001, "4:5", "ab" * 32, "cd" * 16, "anha/2024-03", "written", "1.0.0", "r1"
    )
    file = FileInput("a/b.txt", "/in/a/b.txt", 13, 3_000_000_002, "/in/a/b.json", "4:6", prev, ("empty", "no bytes"))
    fetched = FetchedInput(
        "https://x.org/a", "https://x.org/a?x", "ef" * 32, 10, 4, "text/html", "Title", datetime(2024, 3, 1, tzinfo=UTC)
    )
    listed = ListedUrl("https://x.org/b", "https://x.org/b", None, None, None, prev)
    for value in (prev, file, fetched, listed, [file, fetched], FileInput("r", "p", 1, 2, None, "")):
        copy = pickle.loads(pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))
        assert copy == value
    assert pickle.loads(pickle.dumps(file)).prev == prev


def test_one_predicate_says_whether_an_input_is_current() -> None:
    from pipeline.inputs import FetchedInput, FileInput, is_current
    from warehouse.state import FileState

    state = FileState("s", "a.txt", 10, 5, "3:4", "ab" * 32, "id", "s/2024-03", "written", "1.0", "r1")
    file = FileInput("a.txt", "/in/a.txt", 10, 5, "/in/a.json", "3:4", state)
    assert is_current(file, state, "1.0")
    assert not is_current(file, state, "1.1")  # another normaliser
    assert not is_current(file._replace(mtime_ns=6), state, "1.0")  # touched: unread, it may have changed
    assert is_current(file._replace(mtime_ns=6), state, "1.0", digest="ab" * 32)  # read: the same bytes
    assert not is_current(file._replace(sidecar_sig="3:5"), state, "1.0", digest="ab" * 32)  # its sidecar changed
    assert not is_current(file, None, "1.0")
    page = FetchedInput("https://x.org/a", "https://x.org/a", "ab" * 32, 10, 99)
    assert is_current(page, state, "1.0")
    assert not is_current(page._replace(raw_sha256="cd" * 32), state, "1.0")
    assert not is_current(page._replace(raw_sha256=None), state, "1.0")  # no stored body


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


def test_a_run_cuts_its_inputs_into_a_batch_per_worker_at_least(tmp_path: Path) -> None:
    """Fewer inputs than one batch still keep every worker busy; a few inputs stay one batch."""
    from collections.abc import Callable, Iterator, Sequence
    from typing import Any

    class Counting(LocalRunner):
        def __init__(self) -> None:
            super().__init__(1)
            self.parallel = 2  # as a pool of two would, run here in order
            self.calls: dict[str, list[int]] = {}

        def map(
            self, stage: str, fn: Callable[..., Any], calls: Sequence[tuple[Any, ...]]
        ) -> Iterator[tuple[int, Any]]:
            self.calls.setdefault(stage, []).extend(len(c[4]) for c in calls if stage == "normalize-batch")
            return super().map(stage, fn, calls)

    cfg, root = _config(tmp_path), DataRoot(tmp_path / "data")
    for i in range(450):
        _article(tmp_path, f"a{i:03d}", f"https://x.org/{i}", "2024-03-01T10:00:00Z", f"N{i}")
    runner = Counting()
    summary = run_source(load_config(cfg).sources["s"], root, "r1", runner=runner)
    assert summary.written == 450 and summary.reconciles()
    assert runner.calls["normalize-batch"] == [225, 225]
    _article(tmp_path, "late", None, "2024-03-02T10:00:00Z", "late")
    again = Counting()
    run_source(load_config(cfg).sources["s"], root, "r2", runner=again)
    assert again.calls["normalize-batch"] == [1]


def test_the_quarantine_view_holds_each_failing_input_once_and_the_log_every_record(tmp_path: Path) -> None:
    """Two forced re-runs list a bad file three times in the log, once in the view; a fixed file leaves the view."""
    from datetime import date

    from pipeline.run import Ingest, backfill_units, plan_backfill
    from warehouse.query import connect

    cfg, root = _config(tmp_path), DataRoot(tmp_path / "data")
    _article(tmp_path, "good", None, "2024-01-10T00:00:00Z", "G")
    (tmp_path / "src" / "empty.txt").write_text("", encoding="utf-8")
    (tmp_path / "src" / "binary.txt").write_bytes(b"\x00\x01" * 200)
    src = load_config(cfg).sources["s"]
    for run_id, force in (("r1", False), ("r2", True), ("r3", True)):
        run_source(src, root, run_id, Ingest(force), runner=LocalRunner(1))

    def views() -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
        con = connect(root.root)
        current = con.sql("SELECT input, reason, run_id FROM quarantine ORDER BY ALL").fetchall()
        return current, con.sql("SELECT input, count(*) FROM quarantine_log GROUP BY ALL ORDER BY ALL").fetchall()

    assert views() == (
        [("binary.txt", "binary", "r3"), ("empty.txt", "empty", "r3")],
        [("binary.txt", 3), ("empty.txt", 3)],
    )
    run_source(src, root, "r4", runner=LocalRunner(1))  # unchanged: still failing, still listed
    assert views()[0] == [("binary.txt", "binary", "r3"), ("empty.txt", "empty", "r3")]

    _article(tmp_path, "empty", None, "2024-01-11T00:00:00Z", "E")  # fixed, and written by the next run
    assert run_source(src, root, "r5", runner=LocalRunner(1)).written == 1
    assert views() == ([("binary.txt", "binary", "r3")], [("binary.txt", 3), ("empty.txt", 3)])

    _article(tmp_path, "binary", None, "2024-01-12T00:00:00Z", "B")  # fixed, and written by a backfill
    plan = plan_backfill(src, root, date(2024, 1, 1), date(2024, 1, 31), "none", runner=LocalRunner(1))
    for unit in backfill_units(plan, ("2024-01-01", "2024-01-31")):
        run_source(src, root, "bf", unit, runner=LocalRunner(1))
    assert views() == ([], [("binary.txt", 3), ("empty.txt", 3)])
    assert not list(root.quarantine_current.rglob("*.parquet"))  # the last failing input gone: no file left


def _history(root: DataRoot, source: str, written: list[int], read: int = 0, quarantined: int = 0) -> None:
    """Coverage rows of past daily runs, oldest first, ending yesterday (as those runs would have left them)."""
    from datetime import UTC, datetime, timedelta

    import pyarrow.parquet as pq

    from warehouse.coverage import COVERAGE_SCHEMA, CoverageRecord
    from warehouse.schema import records_to_table

    folder = root.coverage / f"source={source}"
    folder.mkdir(parents=True, exist_ok=True)
    now = datetime.now(UTC)
    for back, n in enumerate(reversed(written), start=1):
        when = now - timedelta(days=back)
        row = CoverageRecord(source, f"past-{back}", when.date(), when, n, read or n, n, 0, 0, quarantined, 0)
        table = records_to_table([row], CoverageRecord, COVERAGE_SCHEMA)
        pq.write_table(table, str(folder / f"{when:%Y%m%dT%H%M%S%f}-past-{back}.parquet"))


def test_a_day_far_below_the_usual_volume_is_a_note_in_the_next_run(tmp_path: Path) -> None:
    from warehouse.query import connect

    cfg, root = _config(tmp_path), DataRoot(tmp_path / "data")
    _article(tmp_path, "a", None, "2024-01-10T00:00:00Z", "A")
    _history(root, "s", [40, 38, 45, 41, 39, 44, 42, 40, 2])  # yesterday: 2 articles, usually about 40
    summary = _run(cfg, root, "r1")
    (note,) = [n for n in summary.notes if n.startswith("coverage gap")]
    assert "2 articles written on" in note and "usual 40.5 a day (median of the 8 days before)" in note
    rows = connect(root.root).sql("SELECT day, runs, written FROM coverage ORDER BY day").fetchall()
    assert [r[2] for r in rows] == [40, 38, 45, 41, 39, 44, 42, 40, 2, 1] and rows[-1][1] == 1  # today: this run

    steady, quiet = DataRoot(tmp_path / "steady"), DataRoot(tmp_path / "quiet")
    _history(steady, "s", [40, 38, 45, 41, 39, 44, 42, 40, 35])  # an ordinary day
    _history(quiet, "s", [1, 0, 2, 1, 0, 0, 1, 0, 0])  # a source of a few articles a week has quiet days
    assert not [n for n in _run(cfg, steady, "r1").notes if n.startswith("coverage")]
    assert not [n for n in _run(cfg, quiet, "r1").notes if n.startswith("coverage")]


def test_a_run_quarantining_far_more_than_usual_is_a_note(tmp_path: Path) -> None:
    cfg, root = _config(tmp_path), DataRoot(tmp_path / "data")
    for i in range(5):
        _article(tmp_path, f"good{i}", None, "2024-01-10T00:00:00Z", f"G{i}")
    for i in range(20):
        (tmp_path / "src" / f"bad{i}.txt").write_text("", encoding="utf-8")
    _history(root, "s", [40] * 10, read=40, quarantined=1)  # usually 1 in 40
    summary = _run(cfg, root, "r1")
    (note,) = [n for n in summary.notes if n.startswith("quarantine rate")]
    assert note.startswith("quarantine rate: 20 of 25 inputs read this run (80%), usually 2%")


def test_an_article_whose_content_changes_keeps_its_earlier_versions(tmp_path: Path) -> None:
    """A changed input is a revision; re-reading the same input (forced, or with a new normaliser) is not."""
    import sqlite3
    from datetime import date

    from pipeline.run import Ingest, Renormalize, backfill_units, plan_backfill
    from warehouse.query import connect

    cfg, root = _config(tmp_path), DataRoot(tmp_path / "data")
    _article(tmp_path, "a", "https://example.org/a", "2024-01-10T00:00:00Z", "v1")
    src = load_config(cfg).sources["s"]
    run_source(src, root, "r1", runner=LocalRunner(1))
    path = tmp_path / "src" / "a.txt"

    def edit(old: str, new: str, when: int) -> None:
        path.write_text(path.read_text(encoding="utf-8").replace(old, new, 1), encoding="utf-8")
        os.utime(path, (when, when))

    edit("Kado v1:", "Kado v2:", 1_800_000_000)  # the headline is corrected
    run_source(src, root, "r2", runner=LocalRunner(1))
    run_source(src, root, "r3", Ingest(force=True), runner=LocalRunner(1))  # the same input again: no revision
    with sqlite3.connect(root.state / "newsflow.sqlite") as db:  # a new normaliser: no revision either
        db.execute("UPDATE files SET normalizer_version = '0.0.1'")
    run_source(src, root, "r4", Renormalize(), runner=LocalRunner(1))
    edit("\n\n", "\n\nA correction: the talks were held on Tuesday.\n\n", 1_800_000_100)  # the body changes
    # ... and a backfill rebuilds the month.
    plan = plan_backfill(src, root, date(2024, 1, 1), date(2024, 1, 31), "none", runner=LocalRunner(1))
    for unit in backfill_units(plan, ("2024-01-01", "2024-01-31")):
        run_source(src, root, "bf", unit, runner=LocalRunner(1))

    con = connect(root.root)
    versions = con.sql(
        "SELECT version, run_id, split_part(title, ':', 1), title_changed, text_changed, date_changed "
        "FROM article_versions ORDER BY version"
    ).fetchall()
    assert versions == [(1, "r1", "Kado v1", True, False, False), (2, "r4", "Kado v2", False, True, False)]
    assert con.sql("SELECT run_id, split_part(title, ':', 1) FROM articles").fetchall() == [("bf", "Kado v2")]


def test_a_rule_that_backtracks_quarantines_its_input_and_the_run_goes_on(tmp_path: Path) -> None:
    """A config rule whose pattern backtracks without end on one line costs that file, not the run."""
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "bad.txt").write_text("Title\n\nBody words.\n\n" + "a" * 40 + "b\n\nMore words.\n", encoding="utf-8")
    (folder / "good.txt").write_text("Another title\n\nA body of words.\n", encoding="utf-8")
    cfg = tmp_path / "sources.toml"
    rule = '[[sources.s.rules]]\nname = "slow"\nkind = "chrome"\nwhere = "any"\nmatch = "(a|aa)+"\n'
    cfg.write_text(f'[sources.s]\npath = "{folder}"\n{rule}', encoding="utf-8")
    root = DataRoot(tmp_path / "data")
    summary = run_source(load_config(cfg).sources["s"], root, "r1", runner=LocalRunner(1))
    assert (summary.written, summary.quarantined, summary.reasons) == (1, 1, {"timeout": 1})
    files = [str(p) for p in root.quarantine.glob("**/*.parquet")]
    ((reason, message),) = duckdb.execute("SELECT reason, message FROM read_parquet(?)", [files]).fetchall()
    assert reason == "timeout" and "rule slow" in message
