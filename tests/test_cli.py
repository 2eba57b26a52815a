"""The `newsflow` command line: normalize, query, sources, and its error handling."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from helpers import harness_env, newsflow

from flows.cli import main

REPO = Path(__file__).resolve().parent.parent
SEED = REPO / "samples" / "anha" / "000_db5c100688d27208.txt"
RELATED = REPO / "samples" / "anha" / "001_related_headlines.txt"


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
    code = main(["normalize", str(SEED), "--config", str(REPO / "sources.toml"), "--explain", "--format", "pretty"])
    out = capsys.readouterr().out
    assert code == 0
    assert "anha-staff-tag" in out and "'T/ Satt.'" in out
    assert "anha-other-news" in out and "'Other news'" in out


def test_normalize_explain_lists_each_line_cut_with_the_list(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The seed as the agency's pages end: the tag, `Other news`, then related headlines.
    headlines = [
        "Water station in Hasakah resumes pumping after repairs",
        "Teachers in Manbij prepare for the new year",
    ]
    dump = tmp_path / "seed_with_headlines.txt"
    dump.write_text(SEED.read_text(encoding="utf-8") + "\n\n" + "\n\n".join(headlines) + "\n", encoding="utf-8")
    lines = dump.read_text(encoding="utf-8").splitlines()
    args = ["normalize", str(dump), "--config", str(REPO / "sources.toml"), "--source", "anha", "--explain"]
    assert main([*args, "--format", "pretty"]) == 0
    out = capsys.readouterr().out
    assert "removed nothing" not in out
    for text, kind, rule in [
        ("T/ Satt.", "byline", "anha-staff-tag"),
        ("Other news", "chrome", "anha-other-news"),
        *((h, "chrome", "anha-other-news") for h in headlines),
    ]:
        assert f"line {lines.index(text) + 1}: {kind} by {rule}: {text!r}" in out
    body = out[out.index("lede") : out.index("removed")]
    for text in ["T/ Satt.", "Other news", *headlines]:
        assert text not in body
    # With JSON lines on stdout, the explanation goes to stderr, one line per removed line.
    assert main([*args, "--format", "jsonl"]) == 0
    captured = capsys.readouterr()
    record = json.loads(captured.out)
    assert record["byline"] == "T/ Satt." and "Other news" not in record["text"]
    explained = [line for line in captured.err.splitlines() if "anha-other-news" in line]
    assert len(explained) == 1 + len(headlines)
    assert explained[-1].endswith(f"removed chrome by rule 'anha-other-news': {headlines[-1]!r}")


def test_normalize_explain_on_the_related_headlines_sample(capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(["normalize", str(RELATED), "--config", str(REPO / "sources.toml"), "--explain", "--format", "pretty"])
        == 0
    )
    out = capsys.readouterr().out
    assert "byline by anha-staff-tag: 'T/ Hsm.'" in out
    assert out.count("chrome by anha-other-news") == 6  # the marker and five headlines


def test_normalize_reports_rejections_and_fails(capsys: pytest.CaptureFixture[str]) -> None:
    bad = REPO / "samples" / "wire" / "bad_latin1.txt"
    code = main(["normalize", str(bad), "--config", str(REPO / "sources.toml"), "--format", "jsonl"])
    captured = capsys.readouterr()
    assert code == 1
    assert captured.out == ""
    assert "rejected (invalid_utf8)" in captured.err


def test_normalize_shows_names_and_link_targets_escaped(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # A terminal would set its title and clear the screen on these names.
    (tmp_path / "evil\x1b]0;PWNED\x07\x1b[2Jname.txt").write_bytes(b"")
    (tmp_path / "dang.txt").symlink_to("nowhere\x1b[2J.txt")
    code = main(["normalize", str(tmp_path), "--config", str(REPO / "sources.toml"), "--format", "jsonl"])
    err = capsys.readouterr().err
    assert code == 1
    assert "\x1b" not in err and "\x07" not in err
    assert "evil\\x1b]0;PWNED\\x07\\x1b[2Jname.txt: rejected (empty)" in err
    assert "dang.txt: rejected (broken_link): file links to nowhere\\x1b[2J.txt, which does not exist" in err


def test_normalize_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["normalize", str(SEED), "--config", str(REPO / "sources.toml"), "--format", "jsonl"]) == 0
    assert list(tmp_path.iterdir()) == []


def test_query_over_written_data(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from flows.config import load_config
    from pipeline.run import LocalRunner, run_source
    from warehouse.layout import DataRoot

    root = DataRoot(tmp_path / "data")
    run_source(load_config(REPO / "sources.toml").sources["wire"], root, "run-1", runner=LocalRunner(1))

    sql = "SELECT count(*) AS n, min(year) > 2000 AS typed FROM articles"
    assert main(["query", sql, "--data", str(root.root), "--format", "jsonl"]) == 0
    assert json.loads(capsys.readouterr().out) == {"n": 20, "typed": True}
    assert main(["query", "SELECT reason FROM quarantine ORDER BY 1", "--data", str(root.root), "--format", "csv"]) == 0
    assert capsys.readouterr().out.split() == ["reason", "bad_sidecar", "binary", "empty", "invalid_utf8"]
    assert main(["dedup", "--data", str(root.root)]) == 0
    assert "duplicates: 20 added, 0 changed, 0 removed; 20 articles" in capsys.readouterr().out
    sql = "SELECT count(*) AS n, count(DISTINCT cluster_id) AS clusters FROM clusters JOIN articles USING (article_id)"
    assert main(["query", sql, "--data", str(root.root), "--format", "jsonl"]) == 0
    assert json.loads(capsys.readouterr().out)["n"] == 20
    assert main(["sources", "--config", str(REPO / "sources.toml"), "--data", str(root.root)]) == 0
    assert "wire" in capsys.readouterr().out


def test_query_on_empty_data_root_has_the_views(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "data").mkdir()
    assert (
        main(["query", "SELECT count(*) AS n FROM articles", "--data", str(tmp_path / "data"), "--format", "jsonl"])
        == 0
    )
    assert json.loads(capsys.readouterr().out) == {"n": 0}


@pytest.mark.slow  # the command in a subprocess, ~1 s each
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

    from flows.cli import _parser
    from pipeline.backfill import REDO_CHOICES

    sub = next(a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction))
    redo = next(a for a in sub.choices["backfill"]._actions if a.dest == "redo")
    assert tuple(redo.choices or ()) == REDO_CHOICES


# --- One clear line for every user mistake; output for people and for pipes ----------------------


def _one_error_line(proc: subprocess.CompletedProcess[str], message: str) -> None:
    assert "Traceback" not in proc.stderr, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("newsflow: error:")]
    assert len(errors) == 1 and message in errors[0], proc.stderr


@pytest.mark.usefixtures("prefect_harness")
def test_a_source_with_a_mistyped_path_is_reported_and_the_others_run(tmp_path: Path) -> None:
    cfg = tmp_path / "sources.toml"
    name = "a-source-whose-long-name-a-narrow-table-would-cut"
    cfg.write_text(
        f'[sources.{name}]\npath = "{REPO / "samples" / "anha"}"\n[sources.typo]\npath = "{tmp_path / "anhaa"}"\n',
        encoding="utf-8",
    )
    proc = newsflow(["run", "--config", str(cfg), "--data", str(tmp_path / "data")], tmp_path, harness_env())
    assert proc.returncode == 2, proc.stderr
    _one_error_line(proc, f"source typo: folder {tmp_path / 'anhaa'} does not exist")
    lines = proc.stdout.splitlines()
    # Piped: plain, complete columns (no box drawing, nothing cut), and commands on one line.
    assert not any(ch in proc.stdout for ch in "…┃│━")
    row = next(line.split() for line in lines if line.startswith(name))
    assert row[0] == name and row[5] == "2" and row[-1] == "ok"  # the folder's two articles written
    assert next(line.split() for line in lines if line.startswith("typo"))[-1] == "failed"
    assert 'Query: newsflow query "SELECT source, count(*) FROM articles GROUP BY ALL"' in lines
    assert any(line.startswith("duplicates: 2 added, 0 changed, 0 removed; 2 articles") for line in lines), lines
    got = duckdb.sql(f"SELECT source FROM read_parquet('{tmp_path}/data/articles/**/*.parquet', hive_partitioning=1)")
    assert got.fetchall() == [(name,), (name,)]
    # A re-normalisation says it is one, and when it finds nothing to do.
    argv = ["renormalize", name, "--config", str(cfg), "--data", str(tmp_path / "data"), "--no-report"]
    proc = newsflow(argv, tmp_path, harness_env())
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.lstrip().startswith("newsflow renormalize "), proc.stdout
    assert "nothing to re-normalise: every row was written by the current normalisers" in proc.stdout


@pytest.mark.usefixtures("prefect_harness")
def test_run_json_reports_the_commands_wall_time_beside_the_flows(tmp_path: Path) -> None:
    cfg = tmp_path / "sources.toml"
    cfg.write_text(f'[sources.anha]\npath = "{REPO / "samples" / "anha"}"\n', encoding="utf-8")
    argv = ["run", "--json", "--no-dedup", "--config", str(cfg), "--data", str(tmp_path / "d")]
    proc = newsflow(argv, tmp_path, harness_env())
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["wall_seconds"] > summary["seconds"] > 0
    # --no-dedup: the duplicate index is left for `newsflow dedup`.
    assert summary["duplicates"] is None and not (tmp_path / "d" / "clusters").exists()


def test_a_data_root_that_cannot_be_created_is_one_line(tmp_path: Path) -> None:
    proc = newsflow(["run", "--config", str(REPO / "sources.toml"), "--data", "/proc/newsflow-data"], tmp_path)
    assert proc.returncode == 2
    _one_error_line(proc, "data root /proc/newsflow-data: cannot create it")


@pytest.mark.slow  # the command in a subprocess, ~1 s each
def test_a_prefect_api_that_is_down_is_one_line(tmp_path: Path) -> None:
    import os
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "PREFECT_API_URL": f"http://127.0.0.1:{port}/api"}
    for command in (["run"], ["serve"]):
        args = [*command, "--config", str(REPO / "sources.toml"), "--data", str(tmp_path / "data")]
        proc = newsflow(args, tmp_path, env)
        assert proc.returncode == 2
        _one_error_line(proc, f"the Prefect API at http://127.0.0.1:{port}/api (from PREFECT_API_URL) does not answer")


@pytest.mark.slow  # the command in a subprocess, ~1 s each
@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["renormalize", "--start", "2024-03-01", "--end", "2024-01-01"], "--end 2024-01-01 is before --start"),
        (["backfill", "wire", "--start", "2024-03-01", "--end", "2024-01-01"], "--end 2024-01-01 is before --start"),
    ],
)
def test_reversed_ranges_are_refused(tmp_path: Path, argv: list[str], message: str) -> None:
    proc = newsflow([*argv, "--config", str(REPO / "sources.toml"), "--data", str(tmp_path)], tmp_path)
    assert proc.returncode == 2
    _one_error_line(proc, message)


@pytest.mark.parametrize("value", ["0", "-3", "two"])
def test_workers_must_be_a_positive_number(tmp_path: Path, value: str) -> None:
    proc = newsflow(["run", "--workers", value, "--config", str(REPO / "sources.toml")], tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "argument --workers:" in proc.stderr.splitlines()[-1]


@pytest.mark.slow  # the command in a subprocess, ~1 s each
def test_sources_check_names_the_paths_that_do_not_exist(tmp_path: Path) -> None:
    cfg = tmp_path / "sources.toml"
    cfg.write_text(
        f'[sources.ok]\npath = "{REPO / "samples" / "anha"}"\n[sources.gone]\npath = "missing"\n'
        '[sources.list]\nkind = "urls"\npath = "urls.txt"\nfetch = { contact = "mailto:data@example.org" }\n',
        encoding="utf-8",
    )
    proc = newsflow(["sources", "--check", "--config", str(cfg), "--data", str(tmp_path / "data")], tmp_path)
    assert proc.returncode == 2
    errors = [line for line in proc.stderr.splitlines() if line.startswith("newsflow: error:")]
    assert errors == [
        f"newsflow: error: source gone: folder {tmp_path / 'missing'} does not exist (check `path` in the config)",
        f"newsflow: error: source list: URL list {tmp_path / 'urls.txt'} does not exist or is not a file "
        "(check `path` in the config)",
    ]
    (tmp_path / "missing").mkdir()
    (tmp_path / "urls.txt").write_text("https://example.org/a\n", encoding="utf-8")
    proc = newsflow(["sources", "--check", "--config", str(cfg), "--data", str(tmp_path / "data")], tmp_path)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.slow  # the command in a subprocess, ~1 s each
def test_sources_as_json_and_as_plain_columns_when_piped(tmp_path: Path) -> None:
    proc = newsflow(["sources", "--json", "--config", str(REPO / "sources.toml"), "--data", str(tmp_path)], tmp_path)
    assert proc.returncode == 0
    listed = {s["source"]: s for s in json.loads(proc.stdout)}
    assert listed["anha"]["where"] == str(REPO / "samples" / "anha") and listed["anha"]["problem"] is None
    proc = newsflow(["sources", "--config", str(REPO / "sources.toml"), "--data", str(tmp_path)], tmp_path)
    assert not any(ch in proc.stdout for ch in "…┃│━")
    header = proc.stdout.splitlines()[1].split()
    assert header[:3] == ["source", "kind", "format"] and header[-1] == "status"


def test_a_broken_pipe_ends_the_command_quietly(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    proc = subprocess.Popen(
        [sys.executable, "-m", "flows.cli", "query", "SELECT * FROM range(2000000)", "--data", str(tmp_path / "data")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=tmp_path,
    )
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.readline() == b"range\n"  # csv: stdout is a pipe
    proc.stdout.close()  # what `| head -1` does
    err = proc.stderr.read().decode()
    assert proc.wait(120) == 141
    assert err == ""


def test_csv_cells_are_json_not_python_reprs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import csv
    import io

    (tmp_path / "data").mkdir()
    sql = "SELECT ['Chris Davies', 'A. N. Other'] AS authors, {'rule': 'x', 'line': 3} AS s, true AS b, NULL AS n"
    assert main(["query", sql, "--data", str(tmp_path / "data"), "--format", "csv"]) == 0
    (header, row) = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert header == ["authors", "s", "b", "n"]
    assert json.loads(row[0]) == ["Chris Davies", "A. N. Other"]
    assert json.loads(row[1]) == {"rule": "x", "line": 3}
    assert row[2:] == ["true", ""]


def test_normalize_takes_a_folders_files_and_prints_jsonl_into_a_pipe(tmp_path: Path) -> None:
    proc = newsflow(["normalize", str(REPO / "samples" / "wire") + "/", "--config", str(REPO / "sources.toml")], REPO)
    assert proc.returncode == 1  # the folder holds four broken files, each reported
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(records) == 20 and {r["source"] for r in records} == {"wire"}
    assert sum("rejected (" in line for line in proc.stderr.splitlines()) == 4
    # The same article ids as a run gives them: keys relative to the source's folder.
    from flows.config import load_config
    from normalizers.meta import article_id
    from pipeline.discover import discover_files

    wire = load_config(REPO / "sources.toml").sources["wire"]
    keys = {rel for rel, *_ in discover_files(wire)}
    assert {r["article_id"] for r in records if r["url"] is None} <= {article_id("wire", None, k) for k in keys}


@pytest.mark.slow  # the command in a subprocess, ~1 s each
def test_pretty_output_prints_article_text_that_looks_like_markup(tmp_path: Path) -> None:
    story = tmp_path / "story.txt"
    story.write_text("Title [/bold] here\n\nA lede with [red]brackets[/] and [/link] in it.\n", encoding="utf-8")
    proc = newsflow(["normalize", str(story), "--format", "pretty"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "A lede with [red]brackets[/] and [/link] in it." in proc.stdout


@pytest.mark.slow  # the command in a subprocess, ~1 s each
def test_html_explain_lists_only_removals_that_removed_text(tmp_path: Path) -> None:
    page = tmp_path / "page.html"
    body = "".join(
        f"<p>Paragraph {i} of a story long enough to be the article, with several words.</p>" for i in range(8)
    )
    page.write_text(
        f"<html><head><title>A story</title></head><body><nav><a href='/'>Home</a></nav>"
        f"<div class='ad'></div><article>{body}</article><div class='ad-slot'><span></span></div></body></html>",
        encoding="utf-8",
    )
    proc = newsflow(["normalize", str(page), "--explain", "--format", "pretty"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert ": ''" not in proc.stdout and ': ""' not in proc.stdout
    # How the text was chosen: the path, how sure, the root, the candidates and why the first won.
    out = " ".join(proc.stdout.split())
    assert "path generic" in out and "confidence " in out, proc.stdout
    assert "content root body > article" in out, proc.stdout
    assert "candidate 1: body > article: 100% of the expected article text" in out, proc.stdout
    assert "candidate 1 leads" in out, proc.stdout


def test_a_page_without_an_article_is_rejected_with_its_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A listing of links is no article: `extraction_failed` with the confidence and the source's threshold."""
    links = "".join(f"<li><a href='/story/{i}'>Headline number {i} of the day</a></li>" for i in range(40))
    page = tmp_path / "index.html"
    page.write_text(
        f"<html><head><title>Latest news</title></head><body><nav><a href='/'>Home</a></nav>"
        f"<ul class='latest'>{links}</ul><footer>© Example News</footer></body></html>",
        encoding="utf-8",
    )
    assert main(["normalize", str(page), "--format", "jsonl", "--explain"]) == 1
    err = capsys.readouterr().err
    assert "rejected (extraction_failed): extraction confidence" in err, err
    assert "below the source's min_confidence 0.2" in err, err
    # --explain says why, for a rejected page too.
    assert "# " in err and "content root" in err and "path generic" in err, err


def test_the_run_summary_prints_deferrals_with_reasons_and_notes(tmp_path: Path) -> None:
    from rich.console import Console

    from flows.cli import _print_summary
    from flows.flow import RunSummary
    from pipeline.ingest import SourceSummary
    from pipeline.storage import LocalStorage

    news = SourceSummary("news", discovered=2, deferred=2, deferrals={"max_pages": 1, "robots_unavailable": 1})
    news.notes = ["https://x.example/feed.xml lists [100000] entries"]  # brackets: not rich markup
    console = Console(record=True, width=200)
    _print_summary(console, RunSummary("run-1", str(tmp_path), sources=[news]), LocalStorage(tmp_path), 1.0)
    text = console.export_text()
    assert "deferred in news: max_pages 1, robots_unavailable 1" in text
    assert "note on news: https://x.example/feed.xml lists [100000] entries" in text


def test_a_backfill_with_nothing_to_rebuild_prints_one_line_not_an_empty_table(tmp_path: Path) -> None:
    from rich.console import Console

    from flows.cli import _print_entries

    console = Console(record=True, width=200)
    _print_entries(console, "wire", "run-1", [])
    (line,) = console.export_text().splitlines()
    assert line == "newsflow backfill wire run-1: nothing to rebuild: no month in the range"
    # Why, from the plan: months with nothing in them are not months completed before.
    units = [{"action": "empty"}, {"action": "empty"}, {"action": "skip"}]
    console = Console(record=True, width=200)
    _print_entries(console, "wire", "run-1", [], units=units)
    (line,) = console.export_text().splitlines()
    assert line.endswith(
        "nothing to rebuild: 2 months with no inputs and no rows; 1 completed before on the same inputs"
        " (--redo all rebuilds them)"
    )
    # Articles placed in another month than planned are said to wait for the next run, not left silent.
    entry = dict.fromkeys(("status", "items", "rows_before", "written", "removed", "quarantined"), 1)
    entry |= {"partition": "2023-02", "moved": 1, "error": None}
    console = Console(record=True, width=400)
    _print_entries(console, "wire", "run-1", [entry], units=[{"partition": "2023-03", "action": "skip-failed"}])
    text = console.export_text()
    assert "moved: 1 article turned out to belong to another month than planned" in text
    assert "not run: 1 month that failed before (2023-03; --redo failed runs them again)" in text


# --- More mistakes and outputs a tester tried ----------------------------------------------------


@pytest.mark.slow  # the command in a subprocess, ~1 s each
def test_a_data_root_the_file_system_refuses_is_one_line(tmp_path: Path) -> None:
    proc = newsflow(["run", "--config", str(REPO / "sources.toml"), "--data", "/proc"], tmp_path)
    assert proc.returncode == 2
    _one_error_line(proc, "data root /proc is not writable")


@pytest.mark.slow  # the command in a subprocess, ~1 s each
def test_empty_paths_are_mistakes_not_defaults(tmp_path: Path) -> None:
    for args in (["run", "--data", ""], ["run", "--config", ""], ["sources", "--config", " "]):
        proc = newsflow(args, tmp_path)
        assert proc.returncode == 2
        _one_error_line(proc, "is empty: give a path")


@pytest.mark.slow  # the command in a subprocess, ~1 s each
def test_a_prefect_api_url_that_is_no_url_or_no_prefect_is_one_line(tmp_path: Path) -> None:
    import http.server
    import os
    import threading

    (tmp_path / "health").write_text("ok\n", encoding="utf-8")  # a web server that is not Prefect

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, directory=str(tmp_path), **kwargs)  # type: ignore[arg-type]

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        for url, message in (
            ("not-a-url", "PREFECT_API_URL 'not-a-url' (from PREFECT_API_URL) is not an http(s) URL"),
            (f"http://127.0.0.1:{server.server_address[1]}", "does not answer as a Prefect API"),
        ):
            env = {**os.environ, "PREFECT_API_URL": url}
            proc = newsflow(
                ["run", "--config", str(REPO / "sources.toml"), "--data", str(tmp_path / "d")], tmp_path, env
            )
            assert proc.returncode == 2
            _one_error_line(proc, message)
    finally:
        server.shutdown()


@pytest.mark.slow  # the command in a subprocess, ~1 s each
@pytest.mark.parametrize("sql", ["SELECT 'a'::int", "SELECT error('boom')", "SELECT 1 WHERE 'abc'::int = 1"])
def test_errors_raised_while_a_query_runs_are_one_line(tmp_path: Path, sql: str) -> None:
    (tmp_path / "data").mkdir()
    proc = newsflow(["query", sql, "--data", str(tmp_path / "data")], tmp_path)
    assert proc.returncode == 2
    _one_error_line(proc, "query failed:")


def test_workers_are_capped_at_four_per_core(tmp_path: Path) -> None:
    import os

    most = 4 * (os.cpu_count() or 1)
    proc = newsflow(["run", "--workers", str(most + 1), "--config", str(REPO / "sources.toml")], tmp_path)
    assert proc.returncode == 2 and f"--workers: at most {most} (four per core)" in proc.stderr


def test_a_source_named_twice_runs_once() -> None:
    from flows.config import load_config

    cfg = load_config(REPO / "sources.toml")
    assert [s.name for s in cfg.select(["wire", "anha", "wire"])] == ["wire", "anha"]


@pytest.mark.slow  # the command in a subprocess, ~1 s each
def test_normalize_shows_hostile_file_names_escaped_and_says_when_a_folder_has_nothing(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "evil\x1b]0;PWNED\x07\u202ename.txt").write_text("Title\n\nA paragraph of text.\n", encoding="utf-8")
    proc = newsflow(["normalize", str(folder)], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "\x1b" not in proc.stdout + proc.stderr and "\x07" not in proc.stdout + proc.stderr
    (tmp_path / "empty").mkdir()
    proc = newsflow(["normalize", str(tmp_path / "empty")], tmp_path)
    assert proc.returncode == 1 and "no files matching" in proc.stderr


@pytest.mark.slow  # the command in a subprocess, ~1 s each
def test_a_piped_query_table_is_plain_and_whole_and_csv_cells_are_never_reprs(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    sql = "SELECT 'x'::blob AS b, INTERVAL 1 DAY AS i, repeat('long text ', 30) AS t, NULL AS n"
    proc = newsflow(["query", sql, "--data", str(tmp_path / "data"), "--format", "table"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert not any(ch in proc.stdout for ch in "…┃│━─")
    assert ("long text " * 30).strip() in proc.stdout and "NULL" in proc.stdout
    # A stored name's escape sequence is shown escaped in a table, and kept exact in piped CSV.
    named = "SELECT 'evil' || chr(27) || '[2Jname.txt' AS input"
    proc = newsflow(["query", named, "--data", str(tmp_path / "data"), "--format", "table"], tmp_path)
    assert "\x1b" not in proc.stdout and "evil\\x1b[2Jname.txt" in proc.stdout
    proc = newsflow(["query", named, "--data", str(tmp_path / "data"), "--format", "csv"], tmp_path)
    assert "evil\x1b[2Jname.txt" in proc.stdout
    # A float32 column (extraction_confidence) prints as written, not as its float64 expansion.
    proc = newsflow(["query", "SELECT 0.194::FLOAT AS c", "--data", str(tmp_path / "data")], tmp_path)
    assert proc.stdout.splitlines() == ["c", "0.194"]
    proc = newsflow(["query", sql, "--data", str(tmp_path / "data"), "--format", "csv"], tmp_path)
    assert proc.stdout.splitlines()[1].startswith("78,P1D,long text")
    proc = newsflow(["query", sql, "--data", str(tmp_path / "data"), "--format", "jsonl"], tmp_path)
    assert json.loads(proc.stdout) == {"b": "78", "i": "P1D", "t": "long text " * 30, "n": None}


@pytest.mark.slow  # the command in a subprocess, ~1 s each
def test_a_backfill_range_is_at_most_a_hundred_years_and_empty_months_are_not_run(tmp_path: Path) -> None:
    proc = newsflow(
        [
            "backfill",
            "wire",
            "--start",
            "0001-01-01",
            "--end",
            "9999-12-31",
            "--dry-run",
            "--config",
            str(REPO / "sources.toml"),
        ],
        tmp_path,
    )
    assert proc.returncode == 2
    _one_error_line(proc, "spans 119988 months; a backfill takes at most 1200 (100 years)")
    args = ["backfill", "wire", "--start", "2000-01-01", "--end", "2019-12-31", "--dry-run", "--json"]
    proc = newsflow([*args, "--config", str(REPO / "sources.toml"), "--data", str(tmp_path / "d")], tmp_path)
    assert proc.returncode == 0, proc.stderr
    units = json.loads(proc.stdout)["units"]
    assert len(units) == 240
    run = {u["partition"] for u in units if u["action"] == "run"}
    assert run and all(u["items"] > 0 for u in units if u["action"] == "run")
    assert {u["action"] for u in units if u["partition"] not in run} == {"empty"}
