"""The `newsflow` command line: normalize, query, sources, and its error handling."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from flows.cli import main

REPO = Path(__file__).resolve().parent.parent
SEED = REPO / "samples" / "anha" / "000_db5c100688d27208.txt"


def test_normalize_jsonl_prints_one_record_per_file(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["normalize", str(SEED), "--config", str(REPO / "sources.toml"), "--format", "jsonl"])
    assert code == 0
    (line,) = capsys.readouterr().out.splitlines()
    record = json.loads(line)
    assert record["source"] == "anha"  # inferred from the configured folder holding the file
    assert record["byline"] == "T/ Satt."
    assert record["title"].startswith("Kado: confirms timing")
    assert "Other news" not in record["text"]


def test_normalize_explain_lists_removed_spans_and_rules(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["normalize", str(SEED), "--config", str(REPO / "sources.toml"), "--explain"])
    out = capsys.readouterr().out
    assert code == 0
    assert "anha-staff-tag" in out and "'T/ Satt.'" in out
    assert "related-links" in out and "'Other news'" in out


def test_normalize_reports_rejections_and_fails(capsys: pytest.CaptureFixture[str]) -> None:
    bad = REPO / "samples" / "wire" / "bad_latin1.txt"
    code = main(["normalize", str(bad), "--config", str(REPO / "sources.toml"), "--format", "jsonl"])
    captured = capsys.readouterr()
    assert code == 1
    assert captured.out == ""
    assert "rejected (invalid_utf8)" in captured.err


def test_normalize_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["normalize", str(SEED), "--config", str(REPO / "sources.toml"), "--format", "jsonl"]) == 0
    assert list(tmp_path.iterdir()) == []


def test_query_over_written_data(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from flows.config import load_config
    from flows.discover import plan_files
    from flows.ingest import SourceSummary, finish_source, merge_batches, process_batch, write_partition
    from warehouse.layout import DataRoot

    root = DataRoot(tmp_path / "data")
    src = load_config(REPO / "sources.toml").sources["wire"]
    plan = plan_files(src, {})
    merged = merge_batches([process_batch(src, root, "run-1", "b0", list(plan.todo))])
    writes = [write_partition(root, k, v, [], "run-1") for k, v in merged.spills.items()]
    finish_source(root, src, "run-1", merged, writes, SourceSummary("wire"))

    sql = "SELECT count(*) AS n, min(year) > 2000 AS typed FROM articles"
    assert main(["query", sql, "--data", str(root.root), "--format", "jsonl"]) == 0
    assert json.loads(capsys.readouterr().out) == {"n": 20, "typed": True}
    assert main(["query", "SELECT reason FROM quarantine ORDER BY 1", "--data", str(root.root), "--format", "csv"]) == 0
    assert capsys.readouterr().out.split() == ["reason", "bad_sidecar", "binary", "empty", "invalid_utf8"]
    assert main(["sources", "--config", str(REPO / "sources.toml"), "--data", str(root.root)]) == 0
    assert "wire" in capsys.readouterr().out


def test_query_on_empty_data_root_has_the_views(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "data").mkdir()
    assert (
        main(["query", "SELECT count(*) AS n FROM articles", "--data", str(tmp_path / "data"), "--format", "jsonl"])
        == 0
    )
    assert json.loads(capsys.readouterr().out) == {"n": 0}


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["query", "SELEC nonsense", "--data", "{tmp}"], "query failed"),
        (["query", "SELECT 1", "--data", "{tmp}/missing"], "does not exist"),
        (["run", "nope", "--config", "{repo}/sources.toml", "--data", "{tmp}"], "unknown source(s): nope"),
        (["run", "--config", "{tmp}/absent.toml"], "config file not found"),
        (["normalize", "{tmp}/absent.txt", "--config", "{repo}/sources.toml"], "cannot read"),
    ],
)
def test_user_errors_are_one_line_without_traceback(tmp_path: Path, argv: list[str], message: str) -> None:
    args = [a.format(tmp=tmp_path, repo=REPO) for a in argv]
    proc = subprocess.run(
        [sys.executable, "-m", "flows.cli", *args],
        check=False,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("newsflow: error:") and message in lines[0], proc.stderr


def test_the_backfill_redo_choices_are_the_backfills_own() -> None:
    import argparse

    from flows.backfill import REDO_CHOICES
    from flows.cli import _parser

    sub = next(a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction))
    redo = next(a for a in sub.choices["backfill"]._actions if a.dest == "redo")
    assert tuple(redo.choices or ()) == REDO_CHOICES


def test_the_run_summary_prints_deferrals_with_reasons_and_notes(tmp_path: Path) -> None:
    from rich.console import Console

    from flows.cli import _print_summary
    from flows.flow import RunSummary
    from flows.ingest import SourceSummary

    news = SourceSummary("news", discovered=2, deferred=2, deferrals={"max_pages": 1, "robots_unavailable": 1})
    news.notes = ["https://x.example/feed.xml lists [100000] entries"]  # brackets: not rich markup
    console = Console(record=True, width=200)
    _print_summary(console, RunSummary("run-1", str(tmp_path), sources=[news]), tmp_path)
    text = console.export_text()
    assert "deferred in news: max_pages 1, robots_unavailable 1" in text
    assert "note on news: https://x.example/feed.xml lists [100000] entries" in text
