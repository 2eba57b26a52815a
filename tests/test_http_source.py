"""HTTP sources end to end against a small news site served on 127.0.0.1 by the test."""

from __future__ import annotations

import gzip
import hashlib
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import duckdb
import pytest

from flows.config import load_config
from flows.http_source import fetch_source
from flows.ingest import SourceSummary, assign_partitions, finish_source, merge_batches, process_batch, write_partition
from warehouse.layout import DataRoot
from warehouse.raw import RawStore
from warehouse.state import StateStore

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "html"
PAGES = {name: gzip.decompress((FIXTURES / f"{name}.html.gz").read_bytes()) for name in ("ap", "zdnet", "livescience")}


class _Site(BaseHTTPRequestHandler):
    """A news site: robots.txt, an RSS feed, a sitemap index with a news sitemap, pages with ETags."""

    hits: ClassVar[list[tuple[str, int]]] = []  # (path, status) of every request, in order

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


_BOMB = gzip.compress(bytes(50 * 2**20))
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
        h.send_response(302)
        h.send_header("Location", target.format(base=base))
        h.send_header("Content-Length", "0")
        h.end_headers()

    return reply


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
    "/h/drip": _drip,
    "/h/huge": _huge,
    "/h/bomb": lambda h, base: (
        h.hits.append((h.path, 200)),
        h.send_response(200),
        h.send_header("Content-Type", "text/html"),
        h.send_header("Content-Encoding", "gzip"),
        h.send_header("Content-Length", str(len(_BOMB))),
        h.end_headers(),
        h.wfile.write(_BOMB),
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
}


@pytest.fixture()
def site() -> Iterator[int]:
    _Site.hits = []
    _RETRIED.clear()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Site)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
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
    """One source through the pipeline stages, as the flow runs them."""
    src = load_config(cfg).sources[name]
    with StateStore(root.state) as store:
        previous = store.load(name)
    fetched = fetch_source(src, root, run_id, previous)
    plan = fetched.plan
    summary = SourceSummary(name, plan.discovered, plan.new, plan.changed, plan.unchanged, deferred=fetched.deferred)
    merged = merge_batches([fetched.early, process_batch(src, root, run_id, "b0", list(plan.todo))])
    if merged.states:
        assign_partitions(root, name, merged)
    keys = sorted(set(merged.spills) | set(merged.deletes))
    writes = [write_partition(root, k, merged.spills.get(k, []), merged.deletes.get(k, []), run_id) for k in keys]
    return finish_source(root, src, run_id, merged, writes, summary)


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
    assert (summary.discovered, summary.written) == (0, 0)
    quarantine = duckdb.sql(f"SELECT reason, source_uri FROM read_parquet('{root.quarantine}/**/*.parquet')").fetchall()
    assert quarantine == [("fetch_private_address", f"http://127.0.0.1:{site}/feed.xml")]
    assert not _Site.hits  # nothing was sent


def test_http_source_config_errors(tmp_path: Path) -> None:
    from flows.errors import ConfigError

    cfg = tmp_path / "sources.toml"
    for text, needle in (
        ('[sources.s]\nkind = "rss"\n', "need an http(s) `url`"),
        ('[sources.s]\nkind = "rss"\nurl = "ftp://x/feed"\n', "need an http(s) `url`"),
        ('[sources.s]\nkind = "rss"\nurl = "http://x/f"\n[sources.s.fetch]\ndelay = -1\n', "fetch.delay"),
        ('[sources.s]\nkind = "rss"\nurl = "http://x/f"\n[sources.s.fetch]\nspeed = 1\n', "unknown key"),
        ('[sources.s]\nkind = "sitemap"\nurl = "http://x/f"\n[sources.s.fetch]\nsince = "soon"\n', "fetch.since"),
        ('[sources.s]\nkind = "rss"\nurl = "http://x/f"\n', "need a contact"),
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


def test_hostile_pages_end_quarantined_or_deferred_with_reasons_within_their_bounds(site: int, tmp_path: Path) -> None:
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
    assert time.monotonic() - start < 60
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
    assert (lol.discovered, lol.reasons) == (0, {"feed_entities": 1})


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

    from flows.renormalize import plan_renormalize

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
    merged = merge_batches([process_batch(src, root, "run-2", "b0", list(plan.todo))])
    assign_partitions(root, "site", merged)
    keys = sorted(merged.spills)
    writes = [write_partition(root, k, merged.spills[k], merged.deletes.get(k, []), "run-2") for k in keys]
    summary = finish_source(root, src, "run-2", merged, writes, SourceSummary("site", 2, 0, 2, 0))
    assert (summary.written, summary.quarantined) == (2, 0)
    assert not _Site.hits  # nothing was fetched
    runs = duckdb.sql(f"SELECT DISTINCT run_id FROM read_parquet('{root.articles}/**/*.parquet')").fetchall()
    assert runs == [("run-2",)]


def test_a_backfill_of_a_sitemap_source_places_new_urls_by_sitemap_date_and_keeps_stored_rows(
    site: int, tmp_path: Path
) -> None:
    from datetime import date

    from flows.backfill import run_unit
    from flows.discover import Candidate
    from flows.http_source import fetch_unit, plan_http_backfill
    from flows.ingest import BatchResult
    from warehouse.ledger import write_ledger

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

    def normalise(items: list[Candidate], name: str) -> BatchResult:
        return process_batch(src, root, "bf-1", name, items, True)

    for unit in plan.to_run():
        fetched, early = fetch_unit(src, root, "bf-1", unit)
        write_ledger(root, [run_unit(src, root, "bf-1", fetched, normalise, ("2019-11-01", "2019-12-31"), None, early)])
    got = duckdb.sql(f"SELECT url, month FROM read_parquet('{root.articles}/**/*.parquet', hive_partitioning=true)")
    assert sorted(r[1] for r in got.fetchall()) == [11, 11]

    # A second backfill fetches conditionally (304s) and rebuilds from the stored bodies;
    # the result is the same rows.
    _Site.hits.clear()
    again = plan_http_backfill(src, root, date(2019, 11, 1), date(2019, 11, 30), "all")
    unit = again.units[0]
    fetched, early = fetch_unit(src, root, "bf-2", unit)
    entry = run_unit(src, root, "bf-2", fetched, normalise, ("2019-11-01", "2019-11-30"), None, early)
    assert (entry.status, entry.written, entry.removed) == ("completed", 2, 0)
    assert sorted(status for path, status in _Site.hits if path.startswith("/news/")) == [304, 304]
