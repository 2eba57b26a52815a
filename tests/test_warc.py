"""WARC sources: records to articles through `run_source`, filters, resumption after a kill, cut files."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import textwrap
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.parquet as pq
import pytest

from pipeline.config import load_config
from pipeline.errors import ConfigError
from pipeline.run import LocalRunner, Renormalize, run_source
from tests.warc_files import PAGES, Rec, news, page, record_bytes, write_warc
from warehouse.layout import DataRoot

REPO = Path(__file__).resolve().parent.parent


def _config(tmp_path: Path, extra: str = "") -> Any:
    cfg = tmp_path / "sources.toml"
    cfg.write_text(f'[sources.cc]\nkind = "warc"\npath = "warcs"\n{extra}', encoding="utf-8")
    return load_config(cfg).sources["cc"]


def _rows(root: DataRoot) -> list[tuple[Any, ...]]:
    files = sorted(root.articles.glob("**/*.parquet"))
    if not files:
        return []
    sql = "SELECT source_uri, url, title, text, published_at FROM read_parquet(?) ORDER BY source_uri"
    return duckdb.execute(sql, [[str(f) for f in files]]).fetchall()


def test_html_responses_of_every_compression_become_articles_and_other_records_are_counted(tmp_path: Path) -> None:
    """gzip per record, a whole-file gzip and no compression read alike; skips are counted by reason."""
    warcs = tmp_path / "warcs"
    others = [
        Rec("https://news.example.org/report.pdf", b"%PDF-1.4", content_type="application/pdf"),
        Rec("https://news.example.org/gone", b"<html>gone</html>", status=404),
        Rec("https://news.example.org/story/0", b"", kind="revisit"),
        Rec("https://news.example.org/story/1", b"GET /story/1", kind="request"),
        Rec("https://news.example.org/cut", page(3), extra="WARC-Truncated: length\r\n"),
    ]
    write_warc(warcs / "a.warc.gz", [*news(4), *others])
    write_warc(warcs / "sub" / "b.warc.gz", news(3, start=4), compression="whole")
    write_warc(warcs / "c.warc", news(3, start=7), compression="none")
    (warcs / "notes.txt").write_text("not a WARC file")
    src, root = _config(tmp_path), DataRoot(tmp_path / "data")

    summary = run_source(src, root, "r1", runner=LocalRunner(1))

    assert summary.error is None and summary.reconciles()
    assert (summary.discovered, summary.written, summary.quarantined) == (10, 10, 0)
    assert summary.skipped == {"http-status": 1, "not-html": 1, "revisit": 1, "truncated": 1}
    rows = _rows(root)
    assert [r[0] for r in rows] == sorted(f"https://news.example.org/story/{i}" for i in range(10))
    assert all(r[3] and r[2] for r in rows)
    # Read with pyarrow too: one schema, hive-partitioned.
    assert pq.read_table(root.articles).num_rows == 10

    again = run_source(src, root, "r2", runner=LocalRunner(1))
    assert (again.discovered, again.written) == (0, 0)


def test_a_page_without_a_date_of_its_own_is_dated_by_its_capture(tmp_path: Path) -> None:
    """The record's WARC-Date is the last-resort date, as a fetch time is for a fetched page."""
    body = b"<html><body><article><h1>Harbour ferry adds night trips</h1>" + b"<p>" + b"The ferry runs late. " * 40
    body += b"</p></article></body></html>"
    write_warc(tmp_path / "warcs" / "a.warc.gz", [Rec("https://h.example/ferry", body, date="2023-07-09T08:30:00Z")])
    src, root = _config(tmp_path), DataRoot(tmp_path / "data")
    assert run_source(src, root, "r1", runner=LocalRunner(1)).written == 1
    files = [str(f) for f in root.articles.glob("**/*.parquet")]
    got = duckdb.execute("SELECT url, date_source, published_at::DATE FROM read_parquet(?)", [files]).fetchall()
    assert [(g[0], g[1], str(g[2])) for g in got] == [("https://h.example/ferry", "fetched", "2023-07-09")]


def test_host_language_and_date_filters_apply_before_extraction(tmp_path: Path) -> None:
    """Records of other hosts, declared languages and capture days are counted, never extracted."""
    base = page(0).replace(b"<html", b"<html data-x", 1)
    recs = [
        Rec("https://www.kept.example/a", page(1)),
        Rec("https://kept.example/b", page(2), language="en-GB"),
        Rec("https://other.example/c", page(4)),
        Rec("https://notkept.example/d", page(5)),
        Rec("https://www.kept.example/e", page(6), language="de"),
        Rec("https://www.kept.example/f", b'<html lang="fr">' + base, date="2024-03-06T00:00:00Z"),
        Rec("https://www.kept.example/g", page(7), date="2024-02-28T23:59:59Z"),
    ]
    write_warc(tmp_path / "warcs" / "a.warc.gz", recs)
    extra = '[sources.cc.warc]\nhosts = ["kept.example"]\nlanguages = ["en"]\nsince = 2024-03-01\n'
    src, root = _config(tmp_path, extra), DataRoot(tmp_path / "data")
    summary = run_source(src, root, "r1", runner=LocalRunner(1))
    assert summary.skipped == {"host": 2, "language": 2, "date": 1}
    assert sorted(r[0] for r in _rows(root)) == ["https://kept.example/b", "https://www.kept.example/a"]


def test_a_file_cut_inside_a_record_is_read_to_its_last_whole_record_and_on_once_it_grows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a partial download holds is written, and said once a run; once the file is whole, only the rest is read."""
    monkeypatch.setattr("pipeline.warc.SEGMENT_RECORDS", 2)  # the file after it takes two segments
    write_warc(tmp_path / "warcs" / "b.warc.gz", news(4, start=10))
    recs = news(5)
    full = tmp_path / "full.warc.gz"
    offsets = write_warc(full, recs)
    data = full.read_bytes()
    target = tmp_path / "warcs" / "a.warc.gz"
    target.write_bytes(data[: offsets[3] + 40])  # inside the fourth record's gzip member
    src, root = _config(tmp_path), DataRoot(tmp_path / "data")

    first = run_source(src, root, "r1", runner=LocalRunner(1))
    assert first.written == 3 + 4 and first.skipped == {"cut-short": 1}
    assert sum("ends inside record 3" in n for n in first.notes) == 1

    target.write_bytes(data)
    second = run_source(src, root, "r2", runner=LocalRunner(1))
    assert (second.discovered, second.written) == (2, 2)
    assert len(_rows(root)) == 9


def test_an_uncompressed_file_cut_inside_a_payload_keeps_no_partial_page(tmp_path: Path) -> None:
    """A record whose payload is cut short is not an article: it waits for the rest of the file."""
    recs = news(3)
    target = tmp_path / "warcs" / "a.warc"
    offsets = write_warc(target, recs, compression="none")
    data = target.read_bytes()
    target.write_bytes(data[: offsets[2] + len(record_bytes(recs[2])) // 2])
    src, root = _config(tmp_path), DataRoot(tmp_path / "data")
    first = run_source(src, root, "r1", runner=LocalRunner(1))
    assert first.written == 2 and first.skipped == {"cut-short": 1}
    target.write_bytes(data)
    assert run_source(src, root, "r2", runner=LocalRunner(1)).written == 1


_KILLED_RUN = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    import pipeline.warc
    from pipeline.config import load_config
    from pipeline.run import LocalRunner, run_source
    from warehouse.layout import DataRoot

    pipeline.warc.SEGMENT_RECORDS = 4
    planned = 0

    class DiesAtThirdPlan(LocalRunner):
        def call(self, stage, fn, *args):
            global planned
            if stage == "discover":
                planned += 1
                if planned == 3:  # two segments committed
                    os.kill(os.getpid(), signal.SIGKILL)
            return super().call(stage, fn, *args)

    src = load_config(Path(sys.argv[1])).sources["cc"]
    run_source(src, DataRoot(Path(sys.argv[2])), "killed", runner=DiesAtThirdPlan(1))
    """
)


def test_a_run_killed_in_the_middle_of_a_file_resumes_at_its_last_committed_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SIGKILL after two segments of four records: the next run reads the rest only, and equals a clean run."""
    n = len(PAGES)
    write_warc(tmp_path / "warcs" / "a.warc.gz", news(n - 3))
    write_warc(tmp_path / "warcs" / "b.warc.gz", news(3, start=n - 3), compression="whole")
    src, root = _config(tmp_path), DataRoot(tmp_path / "data")
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "DO_NOT_TRACK": "1",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_HOME": str(tmp_path / ".prefect"),
    }
    cfg = str(tmp_path / "sources.toml")
    run = [sys.executable, "-c", _KILLED_RUN, cfg, str(root.root)]
    done = subprocess.run(run, check=False, env=env, timeout=300)
    assert done.returncode == -signal.SIGKILL
    assert len(_rows(root)) == 8  # two committed segments

    monkeypatch.setattr("pipeline.warc.SEGMENT_RECORDS", 4)
    resumed = run_source(src, root, "r2", runner=LocalRunner(1))
    assert resumed.discovered == n - 8 and resumed.written == n - 8 and resumed.error is None

    clean = DataRoot(tmp_path / "clean")
    assert run_source(src, clean, "c1", runner=LocalRunner(1)).written == n
    strip = [(r[0], r[1], r[2], r[3], r[4]) for r in _rows(clean)]
    assert _rows(root) == strip and len(strip) == n
    # A whole-file gzip is resumed by record number: make it the file a segment stops in.
    monkeypatch.setattr("pipeline.warc.SEGMENT_RECORDS", n - 2)
    again = DataRoot(tmp_path / "again")
    first = run_source(src, again, "a1", runner=LocalRunner(1))
    assert first.written == n and _rows(again) == strip


def test_force_reads_every_file_again_and_other_modes_are_refused(tmp_path: Path) -> None:
    """`run --force` re-reads (and re-normalises) every record; re-normalisation and backfills say what to do."""
    write_warc(tmp_path / "warcs" / "a.warc.gz", news(3))
    src, root = _config(tmp_path), DataRoot(tmp_path / "data")
    run_source(src, root, "r1", runner=LocalRunner(1))
    from pipeline.run import Ingest

    forced = run_source(src, root, "r2", Ingest(force=True), runner=LocalRunner(1))
    assert (forced.discovered, forced.written) == (3, 3)
    with pytest.raises(ConfigError, match="run --force"):
        run_source(src, root, "r3", Renormalize(), runner=LocalRunner(1))


def test_hostile_warc_files_never_crash_a_run_and_nothing_outside_the_folder_is_read(tmp_path: Path) -> None:
    """Garbage, an empty file and a link to a WARC outside the folder: the run ends, reading none of them."""
    warcs = tmp_path / "warcs"
    write_warc(warcs / "good.warc.gz", news(2))
    (warcs / "garbage.warc.gz").write_bytes(os.urandom(5000))
    (warcs / "zeros.warc").write_bytes(b"\0" * 4096)
    (warcs / "empty.warc.gz").write_bytes(b"")
    (warcs / "header-only.warc").write_bytes(b"WARC/1.0\r\nWARC-Type: response\r\nContent-Length: 999999\r\n\r\n<html>")
    undated = record_bytes(Rec("https://news.example.org/undated", page(6))).replace(b"WARC-Date: ", b"X-Date: ", 1)
    (warcs / "undated.warc").write_bytes(undated)
    outside = tmp_path / "secret.warc.gz"
    write_warc(outside, [Rec("https://secret.example/x", page(5))])
    (warcs / "link.warc.gz").symlink_to(outside)
    src, root = _config(tmp_path), DataRoot(tmp_path / "data")
    summary = run_source(src, root, "r1", runner=LocalRunner(1))
    assert summary.error is None and summary.written == 2
    assert not any("secret" in r[0] for r in _rows(root))
    assert summary.skipped.get("not-a-file") == 1 and summary.skipped.get("no-warc-date") == 1
    assert any(n.startswith("link.warc.gz: not read:") for n in summary.notes)


@pytest.mark.parametrize(
    ("block", "message"),
    [
        ('kind = "warc"\npath = "x"\nurl = "https://a.example/x.warc.gz"\n', "not both"),
        ('kind = "warc"\nurl = "ftp://a.example/x.warc.gz"\n', "not a WARC file's or a listing's URL"),
        ('kind = "warc"\nurl = ["s3://bucket-only"]\n', "not a WARC file's or a listing's URL"),
        ('kind = "files"\npath = "x"\n[sources.cc.warc]\nhosts = ["a.example"]\n', "only warc sources"),
        ('kind = "warc"\npath = "x"\n[sources.cc.warc]\nsince = "March"\n', "expected a date"),
        ('kind = "warc"\npath = "x"\n[sources.cc.warc]\nsince = 2024-03-02\nuntil = 2024-03-01\n', "since is after"),
        ('kind = "warc"\npath = "x"\n[sources.cc.warc]\nhost = ["a.example"]\n', "unknown key"),
        ('kind = "warc"\npath = "x"\nformat = "text"\n', "HTML pages"),
    ],
)
def test_warc_settings_are_checked(tmp_path: Path, block: str, message: str) -> None:
    """A mistaken `[sources.NAME.warc]` table is refused with the key at fault."""
    cfg = tmp_path / "sources.toml"
    cfg.write_text(f"[sources.cc]\n{block}", encoding="utf-8")
    with pytest.raises(ConfigError, match=message):
        load_config(cfg)


# --- remote WARC files: read in place over HTTP, resumed with Range requests ---------------------


class _RangeServer:
    """A real HTTP server on 127.0.0.1 serving a folder, with Range requests and a log of the ranges asked."""

    def __init__(self, folder: Path) -> None:
        import http.server
        import threading

        ranges: list[tuple[str, str | None]] = []
        self.ranges = ranges

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _body(self) -> bytes | None:
                path = folder / self.path.lstrip("/")
                return path.read_bytes() if path.is_file() else None

            def do_HEAD(self) -> None:
                body = self._body()
                self.send_response(200 if body is not None else 404)
                self.send_header("Content-Length", str(len(body or b"")))
                self.send_header("ETag", f'"{len(body or b"")}"')
                self.end_headers()

            def do_GET(self) -> None:
                body = self._body()
                asked = self.headers.get("Range")
                ranges.append((self.path, asked))
                if body is None:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                start = int(asked.removeprefix("bytes=").rstrip("-")) if asked else 0
                if start >= len(body) and start > 0:
                    self.send_response(416)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(206 if asked else 200)
                self.send_header("Content-Length", str(len(body) - start))
                self.end_headers()
                self.wfile.write(body[start:])

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_remote_warc_files_are_read_in_place_and_resumed_with_a_range_request(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A listing names the files; a run stopped between segments goes on from its committed offset, by Range."""
    import gzip

    served = tmp_path / "served"
    n = len(PAGES)
    write_warc(served / "crawl" / "a.warc.gz", news(n - 3))
    write_warc(served / "crawl" / "b.warc.gz", news(3, start=n - 3), compression="whole")
    listing = "crawl/a.warc.gz\ncrawl/b.warc.gz\n../outside.warc.gz\nhttp://elsewhere.example/x.warc.gz\n"
    (served / "warc.paths.gz").write_bytes(gzip.compress(listing.encode()))
    server = _RangeServer(served)
    try:
        cfg = tmp_path / "sources.toml"
        cfg.write_text(f'[sources.cc]\nkind = "warc"\nurl = "{server.url}/warc.paths.gz"\n', encoding="utf-8")
        src, root = load_config(cfg).sources["cc"], DataRoot(tmp_path / "data")

        monkeypatch.setattr("pipeline.warc.SEGMENT_RECORDS", 4)
        with pytest.raises(_Stopped):
            run_source(src, root, "r1", runner=_StopsAfterSegments(1, 2))
        assert len(_rows(root)) == 8  # two segments committed
        server.ranges.clear()
        resumed = run_source(src, root, "r2", runner=LocalRunner(1))
        assert resumed.error is None and resumed.written == n - 8
        refused = [note for note in resumed.notes if "refused the line" in note]
        assert len(refused) == 2, (resumed.notes, resumed.skipped)  # the listing's lines that would leave its root
        # a.warc.gz is read on from the offset its second commit saved, not from its start.
        first_a = next(r for p, r in server.ranges if p.endswith("a.warc.gz"))
        assert first_a is not None and int(first_a.removeprefix("bytes=").rstrip("-")) > 0

        local = tmp_path / "local"
        (local / "warcs").mkdir(parents=True)
        for f in ("a.warc.gz", "b.warc.gz"):
            (local / "warcs" / f).write_bytes((served / "crawl" / f).read_bytes())
        clean = DataRoot(tmp_path / "clean")
        assert run_source(_config(local), clean, "c1", runner=LocalRunner(1)).written == n
        assert [r[1:] for r in _rows(root)] == [r[1:] for r in _rows(clean)]
        assert run_source(src, root, "r3", runner=LocalRunner(1)).discovered == 0  # read to the end: not again
    finally:
        server.close()


def test_an_unreachable_remote_warc_file_is_counted_and_the_run_goes_on(tmp_path: Path) -> None:
    served = tmp_path / "served"
    write_warc(served / "a.warc.gz", news(2))
    server = _RangeServer(served)
    try:
        cfg = tmp_path / "sources.toml"
        urls = f'["{server.url}/missing.warc.gz", "{server.url}/a.warc.gz"]'
        cfg.write_text(f'[sources.cc]\nkind = "warc"\nurl = {urls}\n', encoding="utf-8")
        summary = run_source(load_config(cfg).sources["cc"], DataRoot(tmp_path / "data"), "r1", runner=LocalRunner(1))
        assert summary.written == 2 and summary.skipped.get("unreadable") == 1
        assert any("missing.warc.gz: HTTP 404" in note for note in summary.notes), summary.notes
    finally:
        server.close()


class _StopsAfterSegments(LocalRunner):
    """A runner that ends the run (as a stop between commits does) once `segments` segments are committed."""

    def __init__(self, workers: int, segments: int) -> None:
        super().__init__(workers)
        self.planned = 0
        self.segments = segments

    def call(self, stage: str, fn: Any, *args: Any) -> Any:
        if stage == "discover":
            self.planned += 1
            if self.planned > self.segments:
                raise _Stopped
        return super().call(stage, fn, *args)


class _Stopped(Exception):
    pass


def _months(tmp_path: Path) -> None:
    """A WARC file whose records were captured in January (3), February (3) and March (2) of 2024."""
    recs = [
        *news(3, date="2024-01-10T08:00:00Z"),
        *news(3, start=3, date="2024-02-10T08:00:00Z"),
        *news(2, start=6, date="2024-03-10T08:00:00Z"),
    ]
    write_warc(tmp_path / "warcs" / "a.warc.gz", recs)


def test_a_warc_backfill_reads_the_records_captured_in_its_window_again_apart_from_the_runs(tmp_path: Path) -> None:
    """Selected by WARC-Date, re-normalised and upserted; resumable on its own progress; `run` is not disturbed."""
    from pipeline.run import Ingest, WarcBackfill

    _months(tmp_path)
    src, root = _config(tmp_path), DataRoot(tmp_path / "data")
    february = WarcBackfill(date(2024, 2, 1), date(2024, 2, 29))

    # Into an empty data root: February's records only, with a ledger entry per partition written.
    first = run_source(src, root, "b1", february, runner=LocalRunner(1))
    assert (first.discovered, first.written, first.error) == (3, 3, None)
    assert first.skipped == {"date": 5}
    assert sorted(r[0] for r in _rows(root)) == [f"https://news.example.org/story/{i}" for i in (3, 4, 5)]
    assert {e.kind for e in first.ledger} == {"backfill"} and sum(e.items for e in first.ledger) == 3

    # Done for this window: a second backfill reads nothing, unless told to redo all.
    assert run_source(src, root, "b2", february, runner=LocalRunner(1)).discovered == 0
    redo = run_source(src, root, "b3", WarcBackfill(february.start, february.end, "all"), runner=LocalRunner(1))
    assert (redo.discovered, redo.written) == (3, 3)
    assert len(_rows(root)) == 3  # upserted: no article twice

    # The source's own runs keep their progress: the first reads every record, once.
    ran = run_source(src, root, "r1", Ingest(), runner=LocalRunner(1))
    assert (ran.discovered, ran.error) == (8, None)
    assert len(_rows(root)) == 8
    assert run_source(src, root, "r2", Ingest(), runner=LocalRunner(1)).discovered == 0
    # The source's own capture dates narrow a window further.
    narrowed = dataclasses.replace(src, warc=dataclasses.replace(src.warc, until=date(2024, 1, 31)))
    whole = run_source(narrowed, root, "b4", WarcBackfill(date(2024, 1, 1), date(2024, 3, 31)), runner=LocalRunner(1))
    assert whole.discovered == 3 and whole.skipped == {"date": 5}


def test_a_warc_backfill_stopped_after_a_commit_resumes_there(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """One segment committed, then the backfill stops: the next one of the window reads only the rest."""
    from pipeline.run import WarcBackfill

    monkeypatch.setattr("pipeline.warc.SEGMENT_RECORDS", 2)
    _months(tmp_path)
    src, root = _config(tmp_path), DataRoot(tmp_path / "data")
    window = WarcBackfill(date(2024, 1, 1), date(2024, 2, 29))

    def stop() -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_source(src, root, "b1", window, runner=LocalRunner(1), checkpoint=stop)
    assert len(_rows(root)) == 2
    resumed = run_source(src, root, "b2", window, runner=LocalRunner(1))
    assert (resumed.discovered, resumed.written, resumed.error) == (4, 4, None)
    assert sorted(r[0] for r in _rows(root)) == [f"https://news.example.org/story/{i}" for i in range(6)]


def test_only_a_warc_source_is_backfilled_by_capture_date(tmp_path: Path) -> None:
    from pipeline.run import WarcBackfill, plan_backfill

    (tmp_path / "texts").mkdir()
    cfg = tmp_path / "sources.toml"
    cfg.write_text('[sources.t]\nkind = "files"\npath = "texts"\n[sources.cc]\nkind = "warc"\npath = "warcs"\n')
    sources = load_config(cfg).sources
    root = DataRoot(tmp_path / "data")
    with pytest.raises(ConfigError, match="only a warc source"):
        run_source(sources["t"], root, "b1", WarcBackfill(date(2024, 1, 1), date(2024, 1, 31)))
    with pytest.raises(ConfigError, match="backfilled by capture date"):
        plan_backfill(sources["cc"], root, date(2024, 1, 1), date(2024, 1, 31), "none")


@pytest.mark.usefixtures("prefect_harness")
def test_newsflow_backfill_of_a_warc_source_plans_and_runs_on_prefect(tmp_path: Path) -> None:
    """The command a user types: a dry run that writes nothing, then the backfill, its ledger and a second one."""
    from tests.helpers import harness_env, newsflow

    _months(tmp_path)
    (tmp_path / "sources.toml").write_text('[sources.cc]\nkind = "warc"\npath = "warcs"\n', encoding="utf-8")
    env = harness_env(PREFECT_HOME=str(tmp_path / ".prefect"), DO_NOT_TRACK="1")
    args = ["backfill", "cc", "--start", "2024-03-01", "--end", "2024-03-31", "--no-report", "--data", "data"]
    dry = newsflow([*args, "--dry-run", "--json"], tmp_path, env)
    assert dry.returncode == 0, dry.stderr
    assert json.loads(dry.stdout)["warc_files"] == 1
    assert not (tmp_path / "data").exists()

    done = newsflow([*args, "--json"], tmp_path, env)
    assert done.returncode == 0, done.stderr
    entries = json.loads(done.stdout)["entries"]
    assert entries and {e["kind"] for e in entries} == {"backfill"} and sum(e["items"] for e in entries) == 2
    assert sorted(r[0] for r in _rows(DataRoot(tmp_path / "data"))) == [
        f"https://news.example.org/story/{i}" for i in (6, 7)
    ]
    dry = newsflow([*args, "--dry-run"], tmp_path, env)
    assert "1 of them read to their end by a backfill of this window before" in dry.stdout
    again = newsflow(args, tmp_path, env)
    assert again.returncode == 0 and "every WARC file was read for this window before" in again.stdout


def test_boilerplate_learned_from_warc_records_keeps_every_article(tmp_path: Path) -> None:
    """Records are not read again for boilerplate learned after them (they are records, not files): all stay."""
    words = [
        "council",
        "voted",
        "budget",
        "river",
        "school",
        "mayor",
        "police",
        "report",
        "said",
        "new",
        "plan",
        "city",
        "harbour",
    ]
    recs = []
    for i in range(8):
        paras = "".join(
            "<p>" + " ".join(words[(i * 7 + j * 3 + k) % len(words)] for k in range(40)) + f" {i}-{j}.</p>"
            for j in range(6)
        )
        body = (
            f"<html><head><title>Story {i}</title></head><body><article><h1>Story number {i}</h1>{paras}"
            "<p>Subscribe to our newsletter for the latest local news.</p></article></body></html>"
        )
        recs.append(Rec(f"https://news.example.com/story/{i}", body.encode()))
    write_warc(tmp_path / "warcs" / "a.warc.gz", recs)
    src, root = _config(tmp_path), DataRoot(tmp_path / "data")

    summary = run_source(src, root, "r1", runner=LocalRunner(1))

    assert summary.learned, "the shared line is learned"
    assert summary.written == 8 and summary.quarantined == 0 and summary.restripped == 0
    assert any("not read again" in n for n in summary.notes), summary.notes
    assert len(_rows(root)) == 8
    assert not list(root.quarantine.glob("**/*.parquet"))
    assert run_source(src, root, "r2", runner=LocalRunner(1)).quarantined == 0
    assert len(_rows(root)) == 8
