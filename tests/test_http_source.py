"""HTTP sources end to end against a small news site served on 127.0.0.1 by the test."""

from __future__ import annotations

import contextlib
import functools
import gzip
import hashlib
import logging
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import duckdb
import pytest

from pipeline.config import load_config
from pipeline.ingest import SourceSummary
from pipeline.run import Backfill, LocalRunner, Renormalize, run_source
from warehouse.layout import DataRoot
from warehouse.raw import RawStore
from warehouse.state import StateStore

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "html"
PAGES = {name: gzip.decompress((FIXTURES / f"{name}.html.gz").read_bytes()) for name in ("ap", "zdnet", "livescience")}


class _Site(BaseHTTPRequestHandler):
    """A news site: robots.txt, an RSS feed, a sitemap index with a news sitemap, pages with ETags."""

    hits: ClassVar[list[tuple[str, int]]] = []  # (path, status) of every request, in order
    index_down: ClassVar[bool] = False  # the sitemap index answers 404

    def log_message(self, *args: object) -> None:  # keep pytest output clean
        pass

    def _send(self, status: int, body: bytes = b"", ctype: str = "text/html; charset=utf-8", etag: str = "") -> None:
        self.hits.append((self.path, status))
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        if etag:
            self.send_header("ETag", etag)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        base = f"http://127.0.0.1:{self.server.server_address[1]}"
        path = self.path
        if path == "/robots.txt":
            return self._send(200, b"User-agent: *\nDisallow: /private/\n", "text/plain")
        if path == "/feed.xml":
            items = "".join(
                f"<item><title>{n}</title><link>{base}/news/{n}.html{q}</link>"
                f"<pubDate>Tue, 19 Nov 2019 10:00:00 GMT</pubDate></item>"
                for n, q in (("ap", ""), ("zdnet", ""), ("ap", "?utm_source=rss"), ("gone", ""), ("secret", ""))
            ).replace("/news/secret.html", "/private/secret.html")
            feed = f"<?xml version='1.0'?><rss version='2.0'><channel><title>t</title>{items}</channel></rss>"
            return self._send(200, feed.encode(), "application/rss+xml", etag='"feed-1"')
        if path == "/feed2.xml":
            items = "".join(
                f"<entry><link href='{base}/news/{n}'/><title>{n}</title>"
                "<updated>2019-11-18T10:00:00Z</updated></entry>"
                for n in ("ap.html?utm_medium=social&amp;fbclid=1", "livescience.html")
            )
            feed = f"<?xml version='1.0'?><feed xmlns='http://www.w3.org/2005/Atom'><title>t</title>{items}</feed>"
            return self._send(200, feed.encode(), "application/atom+xml")
        if path == "/sitemap_index.xml" and self.index_down:
            return self._send(404, b"not found")
        if path == "/sitemap_index.xml":
            index = (
                "<?xml version='1.0'?><sitemapindex xmlns='http://www.sitemaps.org/schemas/sitemap/0.9'>"
                f"<sitemap><loc>{base}/sitemap-news.xml</loc></sitemap></sitemapindex>"
            )
            return self._send(200, index.encode(), "application/xml")
        if path == "/sitemap-news.xml":
            urls = "".join(
                f"<url><loc>{base}/news/{n}.html</loc><news:news><news:publication_date>2019-11-18"
                "</news:publication_date><news:title>x</news:title></news:news></url>"
                for n in ("livescience", "zdnet")
            )
            doc = (
                "<?xml version='1.0'?><urlset xmlns='http://www.sitemaps.org/schemas/sitemap/0.9' "
                f"xmlns:news='http://www.google.com/schemas/sitemap-news/0.9'>{urls}</urlset>"
            )
            return self._send(200, doc.encode(), "application/xml")
        if path in _HOSTILE:
            return _HOSTILE[path](self, base)
        name = path.removeprefix("/news/").split(".html")[0]
        if path.startswith("/news/") and name in PAGES:
            etag = '"' + hashlib.sha256(PAGES[name]).hexdigest()[:16] + '"'
            if self.headers.get("If-None-Match") == etag:
                return self._send(304, etag=etag)
            return self._send(200, PAGES[name], etag=etag)
        return self._send(404, b"not found")


def _drip(h: _Site, base: str) -> None:
    h.hits.append((h.path, 200))
    h.send_response(200)
    h.send_header("Content-Type", "text/html")
    h.send_header("Content-Length", "1000")
    h.end_headers()
    try:
        for _ in range(1000):
            h.wfile.write(b"x")
            h.wfile.flush()
            time.sleep(0.2)
    except OSError:
        pass


def _huge(h: _Site, base: str) -> None:
    h.hits.append((h.path, 200))
    h.send_response(200)
    h.send_header("Content-Type", "text/html")
    h.end_headers()
    block = b"<p>" + b"a" * 65_000 + b"</p>"
    try:
        for _ in range(200 * 16):  # ~200 MB if the client kept reading
            h.wfile.write(block)
    except OSError:
        pass


@functools.cache
def _gzip_bomb() -> bytes:
    """50 MB of zeros gzipped (~50 KB): built by the test that serves it, not when the module is imported."""
    return gzip.compress(bytes(50 * 2**20))


_RETRIED: set[str] = set()
_CP1251 = (
    "<html><head><title>Новости</title></head><body><article><h1>Новости</h1>"
    + "<p>Москва — столица России. Это длинный абзац текста статьи о городе и его жителях.</p>" * 6
    + "</article></body></html>"
).encode("cp1251")
_LAUGHS = (
    b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;">'
    b'<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;">]><rss version="2.0"><channel><item><link>&lol3;</link></item>'
    b"</channel></rss>"
)
_OK_PAGE = b"<html><body><article>" + b"<p>A page that answered after asking us to wait, in full sentences.</p>" * 5


def _once_then_ok(status: int, **headers: str) -> Any:
    def reply(h: _Site, base: str) -> None:
        if h.path not in _RETRIED:
            _RETRIED.add(h.path)
            h.hits.append((h.path, status))
            h.send_response(status)
            for k, v in headers.items():
                h.send_header(k, v)
            h.send_header("Content-Length", "0")
            h.end_headers()
            return
        h._send(200, _OK_PAGE)

    return reply


def _redirect(target: str) -> Any:
    def reply(h: _Site, base: str) -> None:
        h.hits.append((h.path, 302))
        # Written raw: http.server sends headers as Latin-1, a server may send UTF-8.
        location = target.format(base=base).encode()
        h.wfile.write(b"HTTP/1.0 302 Found\r\nLocation: " + location + b"\r\nContent-Length: 0\r\n\r\n")

    return reply


# Redirects to this machine in spellings a browser reads as 127.0.0.1 or as a private name.
_PRIVATE_REDIRECTS = {
    "/p/octal": "http://0177.0.0.1/",
    "/p/zeros": "http://127.000.000.001/",
    "/p/full-width": "http://１２７.０.０.１/",
    "/p/localhost": "http://LOCALHOST./",
}


_HOSTILE: dict[str, Any] = {
    "/hostile.xml": lambda h, base: h._send(
        200,
        (
            "<?xml version='1.0'?><rss version='2.0'><channel>"
            + "".join(
                f"<item><link>{base}{p}</link></item>"
                for p in (
                    "/h/drip",
                    "/h/huge",
                    "/h/bomb",
                    "/h/loop",
                    "/h/to-metadata",
                    "/h/to-decimal",
                    "/h/rate-limited",
                    "/h/unavailable",
                    "/h/tomorrow",
                    "/h/cp1251",
                )
            )
            + "</channel></rss>"
        ).encode(),
        "application/rss+xml",
    ),
    "/laughs.xml": lambda h, base: h._send(200, _LAUGHS, "application/rss+xml"),
    "/private-redirects.xml": lambda h, base: h._send(
        200,
        (
            "<?xml version='1.0'?><rss version='2.0'><channel>"
            + "".join(f"<item><link>{base}{p}</link></item>" for p in _PRIVATE_REDIRECTS)
            + "</channel></rss>"
        ).encode(),
        "application/rss+xml",
    ),
    **{path: _redirect(target) for path, target in _PRIVATE_REDIRECTS.items()},
    "/h/drip": _drip,
    "/h/huge": _huge,
    "/h/bomb": lambda h, base: (
        h.hits.append((h.path, 200)),
        h.send_response(200),
        h.send_header("Content-Type", "text/html"),
        h.send_header("Content-Encoding", "gzip"),
        h.send_header("Content-Length", str(len(_gzip_bomb()))),
        h.end_headers(),
        h.wfile.write(_gzip_bomb()),
    ),
    "/h/loop": _redirect("{base}/h/loop2"),
    "/h/loop2": _redirect("{base}/h/loop"),
    "/h/to-metadata": _redirect("http://169.254.169.254/latest/meta-data/"),
    "/h/to-decimal": _redirect("http://2130706433/"),
    "/h/rate-limited": _once_then_ok(429, **{"Retry-After": "1"}),
    "/h/unavailable": _once_then_ok(503),
    "/h/tomorrow": lambda h, base: (
        h.hits.append((h.path, 503)),
        h.send_response(503),
        h.send_header("Retry-After", "86400"),
        h.send_header("Content-Length", "0"),
        h.end_headers(),
    ),
    "/h/cp1251": lambda h, base: h._send(200, _CP1251, "text/html; charset=utf-8"),
    "/odd-answers.xml": lambda h, base: h._send(
        200,
        (
            "<?xml version='1.0'?><rss version='2.0'><channel>"
            + "".join(f"<item><link>{base}{p}</link></item>" for p in ("/h/always-304", "/h/centuries"))
            + "</channel></rss>"
        ).encode(),
        "application/rss+xml",
    ),
    "/h/always-304": lambda h, base: h._send(304),
    "/h/centuries": lambda h, base: (
        h.hits.append((h.path, 503)),
        h.send_response(503),
        h.send_header("Retry-After", "99999999999999999999"),
        h.send_header("Content-Length", "0"),
        h.end_headers(),
    ),
}


@pytest.fixture()
def site() -> Iterator[int]:
    _Site.hits = []
    _Site.index_down = False
    _RETRIED.clear()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Site)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def _config(tmp: Path, port: int) -> Path:
    fetch = f'contact = "ops@example.org"\ndelay = 0\nallow_private_for = ["127.0.0.1:{port}"]\ntimeout = 10\n'
    cfg = tmp / "sources.toml"
    cfg.write_text(
        f'[sources.site]\nkind = "rss"\nurl = "http://127.0.0.1:{port}/feed.xml"\n[sources.site.fetch]\n{fetch}'
        f'[sources.map]\nkind = "sitemap"\nurl = "http://127.0.0.1:{port}/sitemap_index.xml"\n'
        f"[sources.map.fetch]\n{fetch}",
        encoding="utf-8",
    )
    return cfg


def _run(cfg: Path, root: DataRoot, name: str, run_id: str) -> SourceSummary:
    """One source through the pipeline core (`run_source`), in-process."""
    return run_source(load_config(cfg).sources[name], root, run_id, runner=LocalRunner(1))


def test_a_feed_source_ingests_a_site_and_the_second_run_fetches_nothing_new(site: int, tmp_path: Path) -> None:
    cfg = _config(tmp_path, site)
    root = DataRoot(tmp_path / "data")
    first = _run(cfg, root, "site", "run-1")
    # Five feed items: one a tracking-parameter spelling of another (one entry), one 404,
    # one disallowed by robots.txt.
    assert (first.discovered, first.written, first.quarantined, first.deferred) == (4, 2, 2, 0)
    assert first.reasons == {"fetch_http_404": 1, "fetch_robots": 1}
    assert first.reconciles()
    rows = duckdb.sql(
        f"SELECT url, normalizer, extraction, date_source, title FROM read_parquet('{root.articles}/**/*.parquet', "
        "hive_partitioning = true, union_by_name = true) ORDER BY url"
    ).fetchall()
    assert len(rows) == 2
    assert all(r[1:3] == ("html", "generic") for r in rows)
    assert {r[4] for r in rows} == {
        "UK Tories under fire for Twitter name switch during debate",
        "Best tech gadgets of 2019",
    }
    # Raw first: every fetched body is in the raw store, with its fetch recorded.
    with RawStore(root) as raw:
        for name in ("ap", "zdnet"):
            sha = hashlib.sha256(PAGES[name]).hexdigest()
            assert raw.get(sha) == PAGES[name]
            state = raw.url_state("site", f"http://127.0.0.1:{site}/news/{name}.html")
            assert state is not None and state.etag and state.raw_sha256 == sha
    pages_fetched = [p for p, status in _Site.hits if p.startswith("/news/") and status == 200]
    assert len(pages_fetched) == 2  # the utm spelling was not fetched a second time

    _Site.hits.clear()
    second = _run(cfg, root, "site", "run-2")
    assert (second.written, second.unchanged) == (0, 2)
    assert not [p for p, status in _Site.hits if p.startswith("/news/") and status == 200]
    assert sorted(s for p, s in _Site.hits if p.startswith("/news/ap") or p.startswith("/news/zdnet")) == [304, 304]
    assert second.reconciles()


def test_a_page_answering_404_waits_longer_after_each_answer_instead_of_being_asked_every_run(
    site: int, tmp_path: Path
) -> None:
    import sqlite3

    cfg = _config(tmp_path, site)
    root = DataRoot(tmp_path / "data")
    gone = f"http://127.0.0.1:{site}/news/gone.html"

    def wait() -> timedelta:
        with RawStore(root) as raw:
            state = raw.url_state("site", gone)
        assert state is not None and state.last_status == 404 and state.fetched_at and state.next_fetch_at
        return state.next_fetch_at - state.fetched_at

    def asked() -> int:
        return sum(1 for p, _ in _Site.hits if p == "/news/gone.html")

    _Site.hits.clear()
    first = _run(cfg, root, "site", "run-1")
    assert first.reasons["fetch_http_404"] == 1 and asked() == 1 and wait() == timedelta(hours=6)

    second = _run(cfg, root, "site", "run-2")  # within the wait: not asked, deferred with its reason
    assert (second.deferred, second.deferrals, second.reasons) == (1, {"gone": 1}, {"fetch_robots": 1})
    assert asked() == 1
    assert second.reconciles()

    with RawStore(root) as raw:
        state = raw.url_state("site", gone)
    assert state is not None and state.fetched_at and state.next_fetch_at
    later = state.next_fetch_at - state.fetched_at + timedelta(minutes=1)
    with sqlite3.connect(root.root / "raw" / "index.sqlite") as db:  # as if the wait had passed
        db.execute(
            "UPDATE urls SET fetched_at = ?, next_fetch_at = ? WHERE url = ?",
            ((state.fetched_at - later).isoformat(), (state.next_fetch_at - later).isoformat(), gone),
        )
    third = _run(cfg, root, "site", "run-3")
    assert (third.reasons, third.deferred) == ({"fetch_http_404": 1, "fetch_robots": 1}, 0) and asked() == 2
    assert wait() == timedelta(hours=12)  # still 404: twice the last wait
    assert third.reconciles()


def test_the_quarantine_view_holds_what_fails_now_and_the_log_every_failure(site: int, tmp_path: Path) -> None:
    from warehouse.query import connect

    cfg = _config(tmp_path, site)
    root = DataRoot(tmp_path / "data")
    _Site.index_down = True
    assert _run(cfg, root, "map", "run-1").reasons == {"fetch_http_404": 1}
    _run(cfg, root, "site", "run-1")  # a 404 page and one robots.txt disallows
    gone, secret = (f"http://127.0.0.1:{site}/{p}" for p in ("news/gone.html", "private/secret.html"))

    def current() -> list[tuple[object, ...]]:
        return connect(root.root).sql("SELECT source, input, reason FROM quarantine ORDER BY ALL").fetchall()

    assert current() == [
        ("map", None, "fetch_http_404"),
        ("site", gone, "fetch_http_404"),
        ("site", secret, "fetch_robots"),
    ]
    _Site.index_down = False  # the sitemap is back: the next run reads it, and its failure leaves the view
    assert _run(cfg, root, "map", "run-2").written == 2
    _run(cfg, root, "site", "run-2")  # the 404 page waits (still failing); robots.txt refuses again
    assert current() == [("site", gone, "fetch_http_404"), ("site", secret, "fetch_robots")]
    log = connect(root.root).sql("SELECT source, reason, count(*) FROM quarantine_log GROUP BY ALL ORDER BY ALL")
    assert log.fetchall() == [("map", "fetch_http_404", 1), ("site", "fetch_http_404", 1), ("site", "fetch_robots", 2)]


def test_a_sitemap_index_source_follows_its_child_sitemaps(site: int, tmp_path: Path) -> None:
    cfg = _config(tmp_path, site)
    root = DataRoot(tmp_path / "data")
    summary = _run(cfg, root, "map", "run-1")
    assert (summary.discovered, summary.written, summary.quarantined) == (2, 2, 0)
    dates = duckdb.sql(
        f"SELECT date_source, count(*) FROM read_parquet('{root.articles}/**/*.parquet', union_by_name = true) "
        "GROUP BY ALL ORDER BY ALL"
    ).fetchall()
    assert sum(n for _, n in dates) == 2


def test_a_source_of_a_private_address_is_refused_without_its_allowance(site: int, tmp_path: Path) -> None:
    cfg = tmp_path / "sources.toml"
    cfg.write_text(
        f'[sources.site]\nkind = "rss"\nurl = "http://127.0.0.1:{site}/feed.xml"\n'
        '[sources.site.fetch]\ncontact = "ops@example.org"\ndelay = 0\n',
        encoding="utf-8",
    )
    root = DataRoot(tmp_path / "data")
    summary = _run(cfg, root, "site", "run-1")
    # The refused feed is the run's one input, and it ended quarantined.
    assert (summary.discovered, summary.new, summary.written, summary.quarantined) == (1, 1, 0, 1)
    assert summary.reconciles()
    quarantine = duckdb.sql(f"SELECT reason, source_uri FROM read_parquet('{root.quarantine}/**/*.parquet')").fetchall()
    assert quarantine == [("fetch_private_address", f"http://127.0.0.1:{site}/feed.xml")]
    assert not _Site.hits  # nothing was sent
    again = _run(cfg, root, "site", "run-2")  # a refusal is final: quarantined again, never deferred
    assert (again.discovered, again.changed, again.quarantined, again.deferred) == (1, 1, 1, 0)
    assert again.reconciles()


def test_redirects_to_private_addresses_in_any_spelling_are_quarantined_not_deferred(site: int, tmp_path: Path) -> None:
    cfg = tmp_path / "sources.toml"
    cfg.write_text(
        f'[sources.p]\nkind = "rss"\nurl = "http://127.0.0.1:{site}/private-redirects.xml"\n[sources.p.fetch]\n'
        f'contact = "ops@example.org"\ndelay = 0\nallow_private_for = ["127.0.0.1:{site}"]\n',
        encoding="utf-8",
    )
    root = DataRoot(tmp_path / "data")
    for run in ("run-1", "run-2"):
        summary = _run(cfg, root, "p", run)
        assert (summary.discovered, summary.quarantined, summary.deferred) == (4, 4, 0), run
        assert summary.reasons == {"fetch_private_address": 4} and summary.reconciles()
        with RawStore(root) as raw:
            for path in _PRIVATE_REDIRECTS:
                state = raw.url_state("p", f"http://127.0.0.1:{site}{path}")
                assert state is not None and (state.last_outcome, state.next_fetch_at) == ("refused", None)
    assert sorted(p for p, _ in _Site.hits if p.startswith("/p/")) == sorted([*_PRIVATE_REDIRECTS] * 2)


def test_http_source_config_errors(tmp_path: Path) -> None:
    from pipeline.errors import ConfigError

    cfg = tmp_path / "sources.toml"
    for text, needle in (
        ('[sources.s]\nkind = "rss"\n', "need an http(s) `url`"),
        ('[sources.s]\nkind = "rss"\nurl = "ftp://x/feed"\n', "need an http(s) `url`"),
        ('[sources.s]\nkind = "rss"\nurl = "http://x/f"\n[sources.s.fetch]\ndelay = -1\n', "fetch.delay"),
        ('[sources.s]\nkind = "rss"\nurl = "http://x/f"\n[sources.s.fetch]\nspeed = 1\n', "unknown key"),
        ('[sources.s]\nkind = "sitemap"\nurl = "http://x/f"\n[sources.s.fetch]\nsince = "soon"\n', "fetch.since"),
        ('[sources.s]\nkind = "rss"\nurl = "http://x/f"\n', "need a contact"),
        (
            '[sources.s]\nkind = "rss"\nurl = "http://x/f"\n[sources.s.fetch]\ncontact = "a@b.c"\n'
            "max_listing_bytes = 50000001\n",
            "fetch.max_listing_bytes: expected a whole number from 1 to 50000000",
        ),
    ):
        cfg.write_text(text, encoding="utf-8")
        with pytest.raises(ConfigError, match=needle.replace("(", r"\(").replace(")", r"\)")):
            load_config(cfg)


@pytest.mark.usefixtures("prefect_harness")
def test_the_ingest_flow_runs_an_http_source(site: int, tmp_path: Path) -> None:
    from flows.flow import ingest

    cfg = _config(tmp_path, site)
    summary = ingest(sources=["site", "map"], config=str(cfg), data=str(tmp_path / "data"), workers=1)
    by = {s.source: s for s in summary.sources}
    assert (by["site"].written, by["site"].quarantined, by["map"].written) == (2, 2, 2)
    assert all(s.reconciles() for s in summary.sources)
    assert "deferred" in summary.markdown()


@pytest.mark.slow  # real bounds: a 2 s deadline, a 1 s Retry-After
def test_hostile_pages_end_quarantined_or_deferred_with_reasons_within_their_bounds(site: int, tmp_path: Path) -> None:
    _gzip_bomb()  # built before the run, not while a client waits for the server
    cfg = tmp_path / "sources.toml"
    fetch = f'contact = "ops@example.org"\ndelay = 0\nallow_private_for = ["127.0.0.1:{site}"]\ntimeout = 2\n'
    cfg.write_text(
        f'[sources.bad]\nkind = "rss"\nurl = "http://127.0.0.1:{site}/hostile.xml"\n'
        f"[sources.bad.fetch]\n{fetch}max_bytes = 1000000\n"
        f'[sources.lol]\nkind = "rss"\nurl = "http://127.0.0.1:{site}/laughs.xml"\n[sources.lol.fetch]\n{fetch}',
        encoding="utf-8",
    )
    root = DataRoot(tmp_path / "data")
    start = time.monotonic()
    summary = _run(cfg, root, "bad", "run-1")
    assert time.monotonic() - start < 60  # a hang guard: a few seconds when every bound holds
    assert summary.reasons == {
        "fetch_deadline": 1,
        "fetch_private_address": 2,
        "fetch_redirect_loop": 1,
        "fetch_too_large": 2,
    }
    # Rate-limited and unavailable pages were retried and ingested; the cp1251 page
    # labelled UTF-8 was decoded by detection; the page asking for a day is deferred.
    assert (summary.discovered, summary.written, summary.deferred) == (10, 3, 1)
    assert summary.reconciles()
    texts = duckdb.sql(
        f"SELECT text, warnings FROM read_parquet('{root.articles}/**/*.parquet', union_by_name = true)"
    ).fetchall()
    cyrillic = [w for t, w in texts if "Москва — столица России." in t]
    assert cyrillic and any("utf" in x.lower() for x in cyrillic[0])
    # The deferred URL is not asked again before the time it was given.
    _Site.hits.clear()
    again = _run(cfg, root, "bad", "run-2")
    assert again.deferred == 1
    assert not [p for p, _ in _Site.hits if p == "/h/tomorrow"]
    # A feed with entity declarations (billion laughs) is refused with a reason.
    lol = _run(cfg, root, "lol", "run-1")
    assert (lol.discovered, lol.new, lol.quarantined, lol.reasons) == (1, 1, 1, {"feed_entities": 1})
    assert lol.reconciles()


def test_an_unsolicited_304_is_quarantined_and_a_retry_after_of_centuries_deferred_for_a_week(
    site: int, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cfg = _one_feed_config(tmp_path, "odd", site).read_text(encoding="utf-8").replace("/feed.xml", "/odd-answers.xml")
    (tmp_path / "sources.toml").write_text(cfg, encoding="utf-8")
    root = DataRoot(tmp_path / "data")
    before = datetime.now(UTC)
    summary = _run(tmp_path / "sources.toml", root, "odd", "run-1")
    # A 304 to a request that sent no validators is no "unchanged": nothing was ever stored.
    assert (summary.discovered, summary.new, summary.unchanged, summary.quarantined) == (2, 1, 0, 1)
    assert summary.reasons == {"fetch_unsolicited_304": 1}
    assert summary.deferrals == {"retry_after_too_long": 1} and summary.reconciles()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]  # no "failed unexpectedly"
    with RawStore(root) as raw:
        state = raw.url_state("odd", f"http://127.0.0.1:{site}/h/centuries")
    assert state is not None and state.next_fetch_at is not None
    assert before + timedelta(days=6) < state.next_fetch_at < datetime.now(UTC) + timedelta(days=7, minutes=1)


def test_one_article_reached_through_two_feeds_and_two_spellings_is_one_row(site: int, tmp_path: Path) -> None:
    cfg = tmp_path / "sources.toml"
    base = f"http://127.0.0.1:{site}"
    cfg.write_text(
        f'[sources.two]\nkind = "rss"\nurl = ["{base}/feed.xml", "{base}/feed2.xml"]\n[sources.two.fetch]\n'
        f'contact = "ops@example.org"\ndelay = 0\nallow_private_for = ["127.0.0.1:{site}"]\n',
        encoding="utf-8",
    )
    root = DataRoot(tmp_path / "data")
    summary = _run(cfg, root, "two", "run-1")
    assert (summary.discovered, summary.written, summary.quarantined) == (5, 3, 2)
    ids = duckdb.sql(f"SELECT article_id, url FROM read_parquet('{root.articles}/**/*.parquet')").fetchall()
    assert len(ids) == len({i for i, _ in ids}) == 3
    assert not any("utm_" in (u or "") or "fbclid" in (u or "") for _, u in ids)


def test_a_sitemap_date_range_selects_entries_by_their_dates(site: int, tmp_path: Path) -> None:
    cfg = tmp_path / "sources.toml"
    base = f"http://127.0.0.1:{site}"
    fetch = f'contact = "ops@example.org"\ndelay = 0\nallow_private_for = ["127.0.0.1:{site}"]\n'
    cfg.write_text(
        f'[sources.old]\nkind = "sitemap"\nurl = "{base}/sitemap_index.xml"\n[sources.old.fetch]\n{fetch}'
        "until = 2019-11-17\n"
        f'[sources.day]\nkind = "sitemap"\nurl = "{base}/sitemap_index.xml"\n[sources.day.fetch]\n{fetch}'
        "since = 2019-11-18\nuntil = 2019-11-18\n",
        encoding="utf-8",
    )
    root = DataRoot(tmp_path / "data")
    assert _run(cfg, root, "old", "run-1").discovered == 0  # both news entries are dated 2019-11-18
    assert _run(cfg, root, "day", "run-1").discovered == 2


def test_renormalising_an_http_source_reads_the_raw_store_and_fetches_nothing(site: int, tmp_path: Path) -> None:
    import sqlite3

    from pipeline.renormalize import plan_renormalize

    cfg = _config(tmp_path, site)
    root = DataRoot(tmp_path / "data")
    assert _run(cfg, root, "site", "run-1").written == 2
    with sqlite3.connect(root.state / "newsflow.sqlite") as db:
        db.execute("UPDATE files SET normalizer_version = '0.0.1' WHERE source = 'site' AND status = 'written'")
    _Site.hits.clear()
    src = load_config(cfg).sources["site"]
    with StateStore(root.state) as store:
        plan = plan_renormalize(src, root, store.load("site"))
    assert (plan.discovered, len(plan.todo)) == (2, 2)
    summary = run_source(src, root, "run-2", Renormalize(), runner=LocalRunner(1))
    assert (summary.discovered, summary.changed, summary.written, summary.quarantined) == (2, 2, 2, 0)
    assert not _Site.hits  # nothing was fetched
    runs = duckdb.sql(f"SELECT DISTINCT run_id FROM read_parquet('{root.articles}/**/*.parquet')").fetchall()
    assert runs == [("run-2",)]


def test_a_backfill_of_a_sitemap_source_places_new_urls_by_sitemap_date_and_keeps_stored_rows(
    site: int, tmp_path: Path
) -> None:
    from datetime import date

    from pipeline.http_source import plan_http_backfill

    cfg = _config(tmp_path, site)
    root = DataRoot(tmp_path / "data")
    src = load_config(cfg).sources["map"]
    dry = plan_http_backfill(src, root, date(2019, 11, 1), date(2019, 12, 31), "none", dry_run=True)
    assert {u.period: sorted(c.rel.rsplit("/", 1)[1] for c in u.items) for u in dry.units} == {
        "2019-11": ["livescience.html", "zdnet.html"],
        "2019-12": [],
    }
    assert not any(path.startswith("/news/") for path, _ in _Site.hits)  # planning fetches no page
    assert not root.root.exists()  # a dry run keeps nothing, not even the sitemap fetches
    plan = plan_http_backfill(src, root, date(2019, 11, 1), date(2019, 12, 31), "none")
    assert [len(u.items) for u in plan.units] == [2, 0]
    outside = plan_http_backfill(src, root, date(2019, 1, 1), date(2019, 10, 31), "none")
    assert sum(len(u.items) for u in outside.units) == 0

    for unit in plan.to_run():
        run_source(src, root, "bf-1", Backfill(unit, ("2019-11-01", "2019-12-31")), runner=LocalRunner(1))
    got = duckdb.sql(f"SELECT url, month FROM read_parquet('{root.articles}/**/*.parquet', hive_partitioning=true)")
    assert sorted(r[1] for r in got.fetchall()) == [11, 11]

    # A second backfill fetches conditionally (304s) and rebuilds from the stored bodies;
    # the result is the same rows.
    _Site.hits.clear()
    again = plan_http_backfill(src, root, date(2019, 11, 1), date(2019, 11, 30), "all")
    unit = again.units[0]
    (entry,) = run_source(src, root, "bf-2", Backfill(unit, ("2019-11-01", "2019-11-30")), runner=LocalRunner(1)).ledger
    assert (entry.status, entry.written, entry.removed) == ("completed", 2, 0)
    assert sorted(status for path, status in _Site.hits if path.startswith("/news/")) == [304, 304]


class _RobotsServer(ThreadingHTTPServer):
    """A one-feed site whose robots.txt is `mode`: "drip" (a byte at a time), "loop" (redirects) or "ok"."""

    daemon_threads = True

    def __init__(self, mode: str) -> None:
        super().__init__(("127.0.0.1", 0), _RobotsSite)
        self.mode = mode
        self.hits: list[str] = []
        self.stop = threading.Event()  # ends a drip when the test is done


class _RobotsSite(BaseHTTPRequestHandler):
    server: _RobotsServer

    def log_message(self, *args: object) -> None:
        pass

    def _send(self, status: int, body: bytes, ctype: str, **headers: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        srv = self.server
        srv.hits.append(self.path)
        base = f"http://127.0.0.1:{srv.server_address[1]}"
        if self.path.startswith("/robots") and srv.mode == "loop":
            other = "/robots-2.txt" if self.path == "/robots.txt" else "/robots.txt"
            return self._send(302, b"", "text/plain", Location=other)
        if self.path == "/robots.txt" and srv.mode == "drip":
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", "100000")
            self.end_headers()
            with contextlib.suppress(OSError):  # the client gave up: the point of the test
                while not srv.stop.wait(0.05):
                    self.wfile.write(b"#")
                    self.wfile.flush()
            return None
        if self.path == "/robots.txt":
            return self._send(200, b"User-agent: *\nAllow: /\n", "text/plain")
        if self.path == "/feed.xml":
            item = f"<item><link>{base}/news/ap.html</link><pubDate>Tue, 19 Nov 2019 10:00:00 GMT</pubDate></item>"
            feed = f"<rss version='2.0'><channel>{item}</channel></rss>".encode()
            return self._send(200, feed, "application/rss+xml")
        if self.path == "/news/ap.html":
            return self._send(200, PAGES["ap"], "text/html; charset=utf-8")
        return self._send(404, b"not found", "text/plain")


@contextlib.contextmanager
def _robots_site(mode: str) -> Iterator[_RobotsServer]:
    server = _RobotsServer(mode)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.stop.set()
        server.shutdown()
        server.server_close()


def _source_config(tmp: Path, name: str, kind: str, path: str, port: int, extra: str = "timeout = 10\n") -> Path:
    """A config of one source reading `path` on the test server at `port` (allowed although private)."""
    cfg = tmp / "sources.toml"
    cfg.write_text(
        f'[sources.{name}]\nkind = "{kind}"\nurl = "http://127.0.0.1:{port}{path}"\n[sources.{name}.fetch]\n'
        f'contact = "ops@example.org"\ndelay = 0\nallow_private_for = ["127.0.0.1:{port}"]\n{extra}',
        encoding="utf-8",
    )
    return cfg


def _one_feed_config(tmp: Path, name: str, port: int, extra: str = "timeout = 1\n") -> Path:
    return _source_config(tmp, name, "rss", "/feed.xml", port, extra)


@pytest.mark.parametrize("mode", ["drip", "loop"])
def test_a_robots_txt_that_drips_or_loops_defers_the_source_for_this_run(mode: str, tmp_path: Path) -> None:
    root = DataRoot(tmp_path / "data")
    with _robots_site(mode) as server:
        cfg = _one_feed_config(tmp_path, "slow", server.server_address[1])
        first = _run(cfg, root, "slow", "run-1")
        # Deferred with its reason, not quarantined: nothing is wrong with the feed itself.
        assert (first.discovered, first.deferred, first.quarantined, first.written) == (1, 1, 0, 0)
        assert (first.deferrals, first.reasons) == ({"robots_unavailable": 1}, {})
        assert first.reconciles()
        assert "/feed.xml" not in server.hits and not root.quarantine.exists()
        server.mode = "ok"  # the site is mended: the next run fetches the source
        second = _run(cfg, root, "slow", "run-2")
        assert (second.discovered, second.written, second.deferred) == (1, 1, 0)
        assert second.reconciles()


class _DocSite(BaseHTTPRequestHandler):
    """Listing documents the test sets (path -> body and type); every other path but robots.txt is a page."""

    docs: ClassVar[dict[str, tuple[bytes, str]]] = {}
    hits: ClassVar[list[str]] = []

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self.hits.append(self.path)
        body, ctype = self.docs.get(self.path, (PAGES["ap"], "text/html; charset=utf-8"))
        if self.path == "/robots.txt":
            body, ctype = b"", "text/plain"
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture()
def docsite() -> Iterator[int]:
    """A `_DocSite` on 127.0.0.1 with no documents yet; yields its port."""
    _DocSite.docs, _DocSite.hits = {}, []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _DocSite)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def _rss(items: list[tuple[str, datetime | None]]) -> bytes:
    """An RSS feed of (link, publication date or None) items, in that order."""
    return (
        "<rss version='2.0'><channel>"
        + "".join(
            f"<item><link>{link}</link>"
            + (f"<pubDate>{format_datetime(when, usegmt=True)}</pubDate>" if when else "")
            + "</item>"
            for link, when in items
        )
        + "</channel></rss>"
    ).encode()


def _pages_hit() -> list[str]:
    """The page paths the doc site served, in order, and forget them."""
    pages = [p for p in _DocSite.hits if p != "/robots.txt" and p not in _DocSite.docs]
    _DocSite.hits.clear()
    return pages


@pytest.mark.slow  # a feed of 100,000 entries
def test_a_feed_of_100_000_entries_over_the_page_size_cap_is_read_keeping_and_fetching_the_newest(
    docsite: int, tmp_path: Path
) -> None:
    from normalizers.feeds import MAX_ENTRIES
    from pipeline.config import FetchSettings

    start, step = datetime(2000, 1, 1, 16, tzinfo=UTC), timedelta(hours=8)  # three a day, to 2091
    feed = _rss([(f"http://127.0.0.1:{docsite}/news/ap.html?n={i}", start + i * step) for i in range(100_000)])
    _DocSite.docs["/feed.xml"] = (feed, "application/rss+xml")
    # Larger than a page may be: a feed has its own limit, the parser's (max_listing_bytes).
    assert FetchSettings().max_bytes < len(feed) < FetchSettings().max_listing_bytes
    cfg = _one_feed_config(tmp_path, "big", docsite, "timeout = 30\nmax_pages = 3\n")
    summary = _run(cfg, DataRoot(tmp_path / "data"), "big", "run-1")
    assert summary.reasons == {}  # no fetch_too_large, no feed_too_large
    # The newest 50,000 are kept, and the page cap takes the newest of those.
    assert sorted(_pages_hit()) == [f"/news/ap.html?n={i}" for i in (99_997, 99_998, 99_999)]
    assert (summary.discovered, summary.deferrals) == (MAX_ENTRIES, {"max_pages": MAX_ENTRIES - 3})
    assert summary.written + summary.superseded == 3 and summary.reconciles()
    url = f"http://127.0.0.1:{docsite}/feed.xml"
    assert summary.notes == [
        f"{url} lists 100000 entries: {MAX_ENTRIES} kept (newest first, undated last), {100_000 - MAX_ENTRIES} left out"
    ]


def test_the_page_cap_takes_urls_never_fetched_first_newest_first_and_undated_last(
    docsite: int, tmp_path: Path
) -> None:
    base = f"http://127.0.0.1:{docsite}/news"
    day = datetime(2024, 3, 1, 12, tzinfo=UTC)
    # Listed undated first, then dated oldest first: the listing order is no guide.
    items = [(f"{base}/u{i}", None) for i in range(2)] + [(f"{base}/d{i}", day + timedelta(days=i)) for i in range(6)]
    _DocSite.docs["/feed.xml"] = (_rss(items), "application/rss+xml")
    cfg = _one_feed_config(tmp_path, "capped", docsite, "max_pages = 3\n")
    root = DataRoot(tmp_path / "data")
    fetched = []
    for run in ("run-1", "run-2", "run-3"):
        summary = _run(cfg, root, "capped", run)
        assert (summary.discovered, summary.deferrals) == (8, {"max_pages": 5}) and summary.reconciles()
        fetched.append(_pages_hit())
    assert fetched[0] == ["/news/d5", "/news/d4", "/news/d3"]
    assert fetched[1] == ["/news/d2", "/news/d1", "/news/d0"]  # progress: not the same three again
    assert fetched[2] == ["/news/u0", "/news/u1", "/news/d5"]  # the last never fetched, then the newest re-check


def _sitemap(tag: str, items: list[tuple[str, datetime | None]]) -> tuple[bytes, str]:
    """A sitemap index (`tag` "sitemap") or urlset (`tag` "url") of (loc, lastmod or None)."""
    root = "sitemapindex" if tag == "sitemap" else "urlset"
    body = "".join(
        f"<{tag}><loc>{loc}</loc>" + (f"<lastmod>{when.isoformat()}</lastmod>" if when else "") + f"</{tag}>"
        for loc, when in items
    )
    return f"<{root} xmlns='http://www.sitemaps.org/schemas/sitemap/0.9'>{body}</{root}>".encode(), "application/xml"


def test_child_sitemaps_past_the_cap_are_deferred_noted_and_read_by_later_runs(docsite: int, tmp_path: Path) -> None:
    base = f"http://127.0.0.1:{docsite}"
    day = datetime(2024, 3, 1, tzinfo=UTC)
    names = ["today"] + [f"s{i}" for i in range(7)]
    # An index that lists itself and a child index, which lists eight sitemaps of one page each:
    # "today" changes all the time, s0..s6 were written on days 1..7 and not since.
    _DocSite.docs["/index.xml"] = _sitemap("sitemap", [(f"{base}/index.xml", None), (f"{base}/child-index.xml", None)])
    for i in range(7):
        _DocSite.docs[f"/s{i}.xml"] = _sitemap("url", [(f"{base}/news/s{i}", day + timedelta(days=i))])
    _DocSite.docs["/today.xml"] = _sitemap("url", [(f"{base}/news/today", None)])
    cfg = _source_config(tmp_path, "map", "sitemap", "/index.xml", docsite, "max_sitemaps = 4\n")
    root = DataRoot(tmp_path / "data")
    read = []
    for run in range(4):
        lastmods = [datetime.now(UTC) + timedelta(hours=1)] + [day + timedelta(days=i) for i in range(7)]
        _DocSite.docs["/child-index.xml"] = _sitemap(
            "sitemap", [(f"{base}/{n}.xml", when) for n, when in zip(names, lastmods, strict=True)]
        )
        summary = _run(cfg, root, "map", f"run-{run}")
        # The child index and three sitemaps are read (4); five wait, counted as deferred inputs.
        assert (summary.discovered, summary.deferrals) == (3 + 5, {"max_sitemaps": 5}) and summary.reconciles()
        assert summary.notes == [
            "9 child sitemaps listed, 4 read this run (max_sitemaps = 4), 5 deferred to later runs "
            "(those never read or changed first)"
        ]
        read.append([p.removeprefix("/").removesuffix(".xml") for p in _DocSite.hits if p.startswith(("/s", "/t"))])
        _DocSite.hits.clear()
    assert read[0] == ["today", "s6", "s5"]  # never read: newest lastmod first
    assert read[1] == ["s4", "s3", "s2"]  # never read before read: not the same three again
    assert read[2] == ["s1", "s0", "today"]  # then those changed since they were read
    assert read[3] == ["today", "s6", "s5"]  # then the least recently read of the unchanged ones


def test_an_index_of_more_child_indexes_than_the_cap_reaches_their_pages_within_a_few_runs(
    docsite: int, tmp_path: Path
) -> None:
    """Children are read depth first: each run gets from child indexes to the sitemaps they list."""
    base = f"http://127.0.0.1:{docsite}"
    day = datetime(2024, 3, 1, tzinfo=UTC)
    _DocSite.docs["/deep.xml"] = _sitemap("sitemap", [(f"{base}/idx{i}.xml", None) for i in range(8)])
    for i in range(8):
        _DocSite.docs[f"/idx{i}.xml"] = _sitemap("sitemap", [(f"{base}/set{i}.xml", None)])
        _DocSite.docs[f"/set{i}.xml"] = _sitemap("url", [(f"{base}/news/p{i}", day + timedelta(days=i))])
    cfg = _source_config(tmp_path, "deep", "sitemap", "/deep.xml", docsite, "max_sitemaps = 5\n")
    root = DataRoot(tmp_path / "data")
    sets: set[str] = set()
    for run in range(5):  # 16 child sitemaps, 5 a run: a rotation lets the last page wait one run more
        _DocSite.hits.clear()
        summary = _run(cfg, root, "deep", f"run-{run}")
        read = {p for p in _DocSite.hits if p.startswith("/set")}
        assert summary.reconciles() and len(read) >= 2, (run, sorted(_DocSite.hits))  # each run reaches sitemaps
        sets |= read
    assert sets == {f"/set{i}.xml" for i in range(8)}


def test_url_list_lines_and_feed_items_without_a_usable_url_are_counted_in_a_note(docsite: int, tmp_path: Path) -> None:
    base = f"http://127.0.0.1:{docsite}"
    listed = tmp_path / "list.txt"
    listed.write_text(
        f"{base}/a/10\n\n# comment\n{base}/a/11\nfile:///etc/shadow\n  {base}/a/12  \njavascript:alert(1)\n"
        f"not a url\n/relative\n{base}/a/10\n",
        encoding="utf-8",
    )
    cfg = tmp_path / "sources.toml"
    cfg.write_text(
        f'[sources.list]\nkind = "urls"\npath = "list.txt"\n[sources.list.fetch]\ncontact = "ops@example.org"\n'
        f'delay = 0\nallow_private_for = ["127.0.0.1:{docsite}"]\n',
        encoding="utf-8",
    )
    summary = _run(cfg, DataRoot(tmp_path / "data"), "list", "run-1")
    assert summary.discovered == 3 and summary.reconciles()  # the last line repeats the first: one input
    assert summary.notes == [
        f"{listed.as_uri()}: 4 entries skipped, no usable http(s) URL: "
        "line 5: not an http(s) URL: 'file:///etc/shadow'; line 7: not an http(s) URL: 'javascript:alert(1)'; "
        "line 8: not a single URL: 'not a url'; line 9: relative URL '/relative' without a base URL"
    ]

    # A feed: items with no link, or one that is no http(s) URL; past five, the rest are counted.
    bad = ["", "javascript:alert(1)", "mailto:x@example.org", "file:///etc/passwd", "data:,x", "ftp://x/y", "about:x"]
    feed = _rss([(f"{base}/a/1", None)] + [(link, None) for link in bad])
    _DocSite.docs["/feed.xml"] = (feed, "application/rss+xml")
    summary = _run(_one_feed_config(tmp_path, "feed", docsite), DataRoot(tmp_path / "data"), "feed", "run-1")
    assert summary.discovered == 1 and summary.reconciles()
    assert summary.notes == [
        f"{base}/feed.xml: 7 entries skipped, no usable http(s) URL: item 2: no URL; "
        "item 3: not an http(s) URL: 'javascript:alert(1)'; item 4: not an http(s) URL: 'mailto:x@example.org'; "
        "item 5: not an http(s) URL: 'file:///etc/passwd'; item 6: not an http(s) URL: 'data:,x'; and 2 more"
    ]


def test_a_listing_or_page_over_its_size_limit_is_quarantined_naming_the_setting(site: int, tmp_path: Path) -> None:
    pages_small = _one_feed_config(tmp_path, "site", site, "max_bytes = 300\n")
    summary = _run(pages_small, DataRoot(tmp_path / "a"), "site", "run-1")
    # The feed (~800 bytes) is over the page limit but under its own: it is read, its pages are too large.
    assert summary.reasons == {"fetch_too_large": 2, "fetch_http_404": 1, "fetch_robots": 1} and summary.reconciles()
    feed_small = _one_feed_config(tmp_path, "site", site, "max_listing_bytes = 300\n")
    summary = _run(feed_small, DataRoot(tmp_path / "b"), "site", "run-1")
    assert (summary.discovered, summary.reasons) == (1, {"fetch_too_large": 1}) and summary.reconciles()
    messages = {
        name: duckdb.sql(
            f"SELECT DISTINCT message FROM read_parquet('{tmp_path / name}/quarantine/**/*.parquet') "
            "WHERE reason = 'fetch_too_large'"
        ).fetchall()
        for name in ("a", "b")
    }
    assert len(messages["a"]) == 2
    assert all(m.endswith("> 300 bytes (the limit is [sources.site.fetch] max_bytes)") for (m,) in messages["a"])
    assert messages["b"][0][0].endswith("> 300 bytes (the limit is [sources.site.fetch] max_listing_bytes)")


@pytest.mark.usefixtures("prefect_harness")
def test_the_ingest_flow_counts_failed_and_deferred_feeds_so_its_summary_reconciles(site: int, tmp_path: Path) -> None:
    from flows.flow import ingest

    base = f"http://127.0.0.1:{site}"
    allowed = f'contact = "ops@example.org"\ndelay = 0\ntimeout = 1\nallow_private_for = ["127.0.0.1:{site}"]\n'
    with _robots_site("loop") as robots:
        cfg = tmp_path / "sources.toml"
        cfg.write_text(
            # Only input: a feed on a private address (no allowance).
            f'[sources.refused]\nkind = "rss"\nurl = "{base}/feed.xml"\n'
            '[sources.refused.fetch]\ncontact = "ops@example.org"\ndelay = 0\n'
            f'[sources.gone]\nkind = "rss"\nurl = "{base}/missing.xml"\n[sources.gone.fetch]\n{allowed}'
            f'[sources.lol]\nkind = "rss"\nurl = "{base}/laughs.xml"\n[sources.lol.fetch]\n{allowed}'
            f'[sources.slow]\nkind = "rss"\nurl = "http://127.0.0.1:{robots.server_address[1]}/feed.xml"\n'
            f"[sources.slow.fetch]\n{allowed.replace(str(site), str(robots.server_address[1]))}",
            encoding="utf-8",
        )
        summary = ingest(config=str(cfg), data=str(tmp_path / "data"), workers=1)
    by = {s.source: s for s in summary.sources}
    counts = ("discovered", "new", "quarantined", "deferred", "written")
    assert {name: tuple(getattr(s, c) for c in counts) for name, s in by.items()} == {
        "refused": (1, 1, 1, 0, 0),
        "gone": (1, 1, 1, 0, 0),
        "lol": (1, 1, 1, 0, 0),
        "slow": (1, 0, 0, 1, 0),
    }
    assert (by["refused"].reasons, by["gone"].reasons, by["lol"].reasons) == (
        {"fetch_private_address": 1},
        {"fetch_http_404": 1},
        {"feed_entities": 1},
    )
    assert by["slow"].deferrals == {"robots_unavailable": 1}
    assert all(s.reconciles() for s in summary.sources)
    assert (summary.total("discovered"), summary.total("quarantined"), summary.total("deferred")) == (4, 3, 1)
    text = summary.markdown()
    assert "refused:fetch_private_address 1" in text and "Deferred by reason: slow:robots_unavailable 1" in text


def test_the_listing_size_limit_is_the_parsers() -> None:
    from normalizers.feeds import MAX_BYTES
    from pipeline.config import LISTING_MAX_BYTES

    assert LISTING_MAX_BYTES == MAX_BYTES


def test_a_deferral_without_a_reason_does_not_reconcile() -> None:
    assert not SourceSummary("s", discovered=1, deferred=1).reconciles()
    assert SourceSummary("s", discovered=1, deferred=1, deferrals={"robots_unavailable": 1}).reconciles()


def test_the_core_fetches_through_an_injected_transport(tmp_path: Path) -> None:
    """`run_source(..., transport=)` sends every request of a run to the caller's httpx transport."""
    import httpx

    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        path = request.url.path
        if path == "/feed.xml":
            items = "".join(
                f"<item><title>{n}</title><link>https://news.example/news/{n}.html</link>"
                "<pubDate>Tue, 19 Nov 2019 10:00:00 GMT</pubDate></item>"
                for n in ("ap", "zdnet")
            )
            feed = f"<?xml version='1.0'?><rss version='2.0'><channel><title>t</title>{items}</channel></rss>"
            return httpx.Response(200, content=feed.encode(), headers={"Content-Type": "application/rss+xml"})
        name = path.removeprefix("/news/").removesuffix(".html")
        if name in PAGES:
            return httpx.Response(200, content=PAGES[name], headers={"Content-Type": "text/html; charset=utf-8"})
        return httpx.Response(404, content=b"not found")

    cfg = tmp_path / "sources.toml"
    cfg.write_text(
        '[sources.wire]\nkind = "rss"\nurl = "https://news.example/feed.xml"\n'
        '[sources.wire.fetch]\ncontact = "ops@example.org"\ndelay = 0\n',
        encoding="utf-8",
    )
    root = DataRoot(tmp_path / "data")
    src = load_config(cfg).sources["wire"]
    summary = run_source(src, root, "run-1", runner=LocalRunner(1), transport=httpx.MockTransport(handler))
    assert (summary.discovered, summary.written, summary.quarantined) == (2, 2, 0)
    assert summary.reconciles()
    assert sorted(seen) == [
        "https://news.example/feed.xml",
        "https://news.example/news/ap.html",
        "https://news.example/news/zdnet.html",
        "https://news.example/robots.txt",
    ]
    rows = duckdb.sql(f"SELECT count(DISTINCT article_id) FROM read_parquet('{root.articles}/**/*.parquet')")
    assert rows.fetchall() == [(2,)]


def test_a_feed_entry_is_fetched_keyed_and_identified_by_its_canonical_url(docsite: int, tmp_path: Path) -> None:
    from normalizers.meta import article_id
    from normalizers.urls import canonical_url

    base = f"http://127.0.0.1:{docsite}"
    spelled = f"HTTP://127.0.0.1:{docsite}/news/a b.html?utm_source=x&id=1#top"
    canonical = f"{base}/news/a%20b.html?id=1"
    assert canonical_url(spelled) == canonical
    body = "<p>A paragraph of the story, with enough words, commas, and length to count.</p>" * 6
    # A page that names no URL of its own: its identity is the URL it was fetched from.
    page = f"<html><head></head><body><article><h1>Headline</h1>{body}</article></body></html>".encode()
    _DocSite.docs["/news/a%20b.html?utm_source=x&id=1"] = (page, "text/html; charset=utf-8")
    items = [(spelled.replace("&", "&amp;"), None), (f"{base}/news/a%20b.html?id=1&amp;fbclid=z", None)]
    _DocSite.docs["/feed.xml"] = (_rss(items), "application/rss+xml")
    root = DataRoot(tmp_path / "data")
    summary = _run(_one_feed_config(tmp_path, "one", docsite), root, "one", "run-1")
    assert (summary.discovered, summary.written) == (1, 1) and summary.reconciles()  # two spellings, one input
    rows = duckdb.sql(f"SELECT article_id, url FROM read_parquet('{root.articles}/**/*.parquet')").fetchall()
    assert rows == [(article_id("one", canonical, canonical), canonical)]
    with RawStore(root) as raw:
        assert raw.url_state("one", canonical) is not None
