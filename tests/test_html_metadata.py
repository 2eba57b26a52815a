"""extract_metadata: every source of every field, their priorities, and hostile input."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from selectolax.lexbor import LexborHTMLParser

from normalizers.common import Dated, Implausible
from normalizers.html.metadata import (
    PageMeta,
    date_from_url,
    extract_metadata,
    split_byline,
)

URL = "https://news.example.com/world/story-123"


def meta(head: str = "", body: str = "", url: str | None = URL, lang: str = "") -> PageMeta:
    html = f"<!doctype html><html{lang}><head>{head}</head><body>{body}</body></html>"
    return extract_metadata(LexborHTMLParser(html), url)


def whens(dates: tuple[tuple[str, Dated | Implausible], ...]) -> list[tuple[str, datetime | Implausible]]:
    """Page dates as (evidence, UTC instant), implausible ones as they are."""
    return [(source, when.when if isinstance(when, Dated) else when) for source, when in dates]


def ld(obj: object) -> str:
    return f'<script type="application/ld+json">{json.dumps(obj)}</script>'


FULL_JSONLD = {
    "@context": "https://schema.org",
    "@graph": [
        {"@type": "WebSite", "name": "Example Web"},
        {
            "@type": "WebPage",
            "datePublished": "2020-01-01T00:00:00Z",
            "mainEntity": {
                "@type": ["NewsArticle", "Article"],
                "headline": "Markets fall as rates rise",
                "datePublished": "2024-03-15T10:30:00+01:00",
                "dateModified": "2024-03-16T08:00:00Z",
                "author": [{"@type": "Person", "name": "Jane Doe"}, "By John Roe"],
                "publisher": {"@type": "Organization", "name": "Example News"},
                "keywords": ["Markets", "Rates"],
                "image": {"@type": "ImageObject", "url": "/img/lead.jpg"},
                "inLanguage": "en-GB",
                "description": "Stocks slid on Friday.",
            },
        },
    ],
}


def test_jsonld_gives_every_field() -> None:
    got = meta(ld(FULL_JSONLD))
    published = Dated(
        datetime(2024, 3, 15, 9, 30, tzinfo=UTC), date(2024, 3, 15), "second", "2024-03-15T10:30:00+01:00"
    )
    modified = Dated(datetime(2024, 3, 16, 8, 0, tzinfo=UTC), date(2024, 3, 16), "second", "2024-03-16T08:00:00Z")
    assert got == PageMeta(
        title="Markets fall as rates rise",
        authors=("Jane Doe", "John Roe"),
        dates=(("jsonld", published),),
        modified_dates=(("jsonld", modified),),
        title_source="jsonld",
        author_source="jsonld",
        language="en",
        canonical_url=None,
        site_name="Example News",
        description="Stocks slid on Friday.",
        tags=("Markets", "Rates"),
        image_url="https://news.example.com/img/lead.jpg",
    )


def test_meta_tags_give_every_field() -> None:
    head = """
    <meta property="og:title" content="Markets fall as rates rise">
    <meta property="og:site_name" content="Example News">
    <meta property="article:published_time" content="2024-03-15T10:30:00Z">
    <meta property="article:modified_time" content="2024-03-15T12:00:00Z">
    <meta name="author" content="By Jane Doe and John Roe">
    <meta name="description" content="Stocks slid.">
    <meta property="article:tag" content="Markets"><meta property="article:tag" content="rates">
    <meta name="keywords" content="markets, Economy ;  rates, ">
    <meta property="og:image" content="//cdn.example.com/a.jpg">
    <meta property="og:locale" content="fr_FR">
    <meta property="og:url" content="https://news.example.com/world/story-123?utm=x#top">
    """
    got = meta(head)
    assert got.title == "Markets fall as rates rise"
    assert got.site_name == "Example News"
    assert got.published_at == datetime(2024, 3, 15, 10, 30, tzinfo=UTC)
    assert got.modified_at == datetime(2024, 3, 15, 12, 0, tzinfo=UTC)
    assert got.date_source == "meta"
    assert got.authors == ("Jane Doe", "John Roe")
    assert got.description == "Stocks slid."
    assert got.tags == ("Markets", "rates", "Economy")
    assert got.image_url == "https://cdn.example.com/a.jpg"
    assert got.language == "fr"
    assert got.canonical_url == "https://news.example.com/world/story-123?utm=x"


@pytest.mark.parametrize(
    "name",
    [
        'property="article:published_time"',
        'itemprop="datePublished"',
        'name="pubdate"',
        'name="publishdate"',
        'name="date"',
        'name="DC.date.issued"',
        'name="sailthru.date"',
        'name="parsely-pub-date"',
    ],
)
def test_each_published_meta(name: str) -> None:
    got = meta(f'<meta {name} content="2024-03-15T10:30:00Z">')
    assert (got.published_at, got.date_source) == (datetime(2024, 3, 15, 10, 30, tzinfo=UTC), "meta")


@pytest.mark.parametrize(
    "name", ['property="article:modified_time"', 'property="og:updated_time"', 'itemprop="dateModified"']
)
def test_each_modified_meta(name: str) -> None:
    assert meta(f'<meta {name} content="2024-03-15">').modified_at == datetime(2024, 3, 15, tzinfo=UTC)


def test_date_priority_jsonld_then_meta_then_time_then_url() -> None:
    url = "https://example.com/2024/01/01/story"
    meta_tag = '<meta property="article:published_time" content="2024-01-01T09:00:00Z">'
    time_tag = '<article><time datetime="2024-01-01T10:00:00Z">1 Jan</time></article>'
    jsonld = ld({"@type": "NewsArticle", "datePublished": "2024-01-01T08:00:00Z"})
    got = meta(jsonld + meta_tag, time_tag, url)
    assert (got.date_source, got.published_at) == ("jsonld", datetime(2024, 1, 1, 8, tzinfo=UTC))
    assert meta(meta_tag, time_tag, url).published_at == datetime(2024, 1, 1, 9, tzinfo=UTC)
    got = meta("", time_tag, url)
    assert (got.published_at, got.date_source) == (datetime(2024, 1, 1, 10, tzinfo=UTC), "time")
    got = meta("", "", url)
    assert (got.published_at, got.date_source) == (datetime(2024, 1, 1, tzinfo=UTC), "url")
    assert meta("", "", None).published_at is None


@pytest.mark.parametrize(
    ("head", "body", "url"),
    [
        # JSON-LD and meta name different days, and nothing printed says which.
        (
            '<meta property="article:published_time" content="2022-01-01T00:00:00Z">'
            + ld({"@type": "NewsArticle", "datePublished": "2024-01-01T00:00:00Z"}),
            "",
            URL,
        ),
        # The URL's day is not the page's.
        ('<meta property="article:published_time" content="2024-01-05T00:00:00Z">', "", "https://x.com/2021/02/03/a"),
        # The date printed by the headline is not the one microdata marks, and the page's
        # own metadata (JSON-LD, meta) says nothing to decide.
        (
            "",
            "<h1>Markets fall as rates rise</h1><p>Jane Doe | March 3, 2025</p>"
            "<span itemprop='datePublished' content='2024-01-05'></span>",
            URL,
        ),
    ],
    ids=["jsonld-vs-meta", "url-vs-meta", "printed-vs-meta"],
)
def test_contradicting_page_dates_give_no_date(head: str, body: str, url: str) -> None:
    # A missing date is better than a wrong one: the caller falls back to its other evidence.
    got = meta(head, body, url)
    assert (got.published_at, got.date_source, got.dates) == (None, None, ())


def test_a_url_date_a_day_off_agrees_with_the_page() -> None:
    # A URL minted at 23:30 in New York holds the next day in UTC, or the other way round.
    got = meta(
        '<meta property="article:published_time" content="2024-01-05T23:30:00-05:00">', "", "https://x.com/2024/01/06/a"
    )
    assert (got.date_source, got.published.day if got.published else None) == ("meta", date(2024, 1, 5))


def test_the_printed_date_chooses_between_structured_dates() -> None:
    head = ld({"@type": "NewsArticle", "datePublished": "2019-05-01T10:00:00Z"}) + (
        '<meta property="article:published_time" content="2024-03-05T14:15:00Z">'
    )
    got = meta(head, "<article><h1>Markets fall as rates rise</h1><p>By Jane Doe, March 5, 2024</p></article>")
    assert (got.date_source, got.published_at) == ("meta", datetime(2024, 3, 5, 14, 15, tzinfo=UTC))


@pytest.mark.parametrize(
    ("body", "day", "precision"),
    [
        (
            "<h1>Markets fall as rates rise</h1><div class='meta'><span>Published March 5, 2024</span></div>",
            date(2024, 3, 5),
            "day",
        ),
        ("<header><p>5 Mar 2024</p><h1>Markets fall as rates rise</h1></header>", date(2024, 3, 5), "day"),
        (
            "<h1>Markets fall as rates rise</h1><p>By Jane Doe</p><p>Mar. 5, 2024 2:15 PM</p>",
            date(2024, 3, 5),
            "minute",
        ),
        ("<h1>Markets fall as rates rise</h1><p>Posted 2024-03-05 by Jane</p>", date(2024, 3, 5), "day"),
    ],
    ids=["published-label", "above-headline", "with-time", "iso"],
)
def test_a_date_printed_by_the_headline_is_evidence(body: str, day: date, precision: str) -> None:
    got = meta("", body, None)
    assert got.date_source == "text"
    assert got.published is not None and (got.published.day, got.published.precision) == (day, precision)
    assert got.published.raw is not None and got.published.raw[0].isalnum()


@pytest.mark.parametrize(
    "printed",
    ["3 days ago", "March 2024", "Updated March 5, 2024", "Last updated: 2024-03-05", "© 2024 Example News"],
)
def test_relative_partial_update_and_copyright_dates_are_not_publication_dates(printed: str) -> None:
    got = meta("", f"<h1>Markets fall as rates rise</h1><p>{printed}</p>", None)
    assert got.published_at is None


def test_a_printed_update_date_is_the_modification_date_only() -> None:
    head = '<meta property="article:published_time" content="2024-01-05T08:00:00Z">'
    got = meta(head, "<h1>Markets fall as rates rise</h1><p>Updated March 5, 2024</p>")
    assert (got.date_source, got.published_at) == ("meta", datetime(2024, 1, 5, 8, tzinfo=UTC))
    assert got.modified_at == datetime(2024, 3, 5, tzinfo=UTC)


def test_a_date_printed_far_from_the_headline_is_not_read() -> None:
    filler = "<p>" + "Words of the story go on. " * 40 + "</p>"
    got = meta("", f"<h1>Markets fall as rates rise</h1>{filler}<p>March 5, 2024</p>", None)
    assert got.published_at is None


@pytest.mark.parametrize(
    "element",
    [
        '<span itemprop="datePublished" content="2024-03-05">5 March</span>',
        '<div itemprop="datePublished">March 5, 2024</div>',
        '<span itemprop="published-date" content="Published Mar 5, 2024 at 5:00 PM">x</span>',
    ],
)
def test_microdata_dates_on_any_element(element: str) -> None:
    got = meta("", element, None)
    assert got.date_source == "microdata" and got.published is not None
    assert got.published.day == date(2024, 3, 5)


def test_dates_after_the_time_of_ingest_take_no_part_in_the_agreement() -> None:
    head = ld({"@type": "NewsArticle", "datePublished": "2099-01-01T00:00:00Z"}) + (
        '<meta property="article:published_time" content="2024-05-30T08:00:00Z">'
    )
    as_of = datetime(2024, 6, 1, tzinfo=UTC)
    got = extract_metadata(LexborHTMLParser(f"<html><head>{head}</head></html>"), URL, as_of)
    assert whens(got.dates) == [
        ("jsonld", datetime(2099, 1, 1, tzinfo=UTC)),
        ("meta", datetime(2024, 5, 30, 8, tzinfo=UTC)),
    ]
    # The caller warns about 2099 and takes the meta date.
    # Without the time of ingest the two disagree: no date.
    assert meta(head).dates == ()


def test_unparsable_higher_source_falls_through() -> None:
    jsonld = ld({"@type": "NewsArticle", "datePublished": "yesterday"})
    got = meta(jsonld + '<meta name="date" content="0001-01-01">' + '<meta name="pubdate" content="March 5, 2024">')
    assert (got.published_at, got.date_source) == (datetime(2024, 3, 5, tzinfo=UTC), "meta")


def test_time_prefers_pubdate_marked_element() -> None:
    body = (
        '<header><time datetime="2024-06-01">Today</time></header>'
        '<article><time class="comment" datetime="2024-05-20"></time>'
        '<time itemprop="datePublished" datetime="2024-05-02T08:00:00-04:00">May 2</time></article>'
    )
    got = meta("", body, None)
    assert (got.published_at, got.date_source) == (datetime(2024, 5, 2, 12, 0, tzinfo=UTC), "time")
    body = '<header><time datetime="2024-06-01">Today</time></header><article><time datetime="2024-05-20"></time>'
    assert meta("", body, None).published_at == datetime(2024, 5, 20, tzinfo=UTC)
    body = '<time datetime="2024-06-01"></time><p><time class="entry-published" datetime="2024-05-03"></time></p>'
    assert meta("", body, None).published_at == datetime(2024, 5, 3, tzinfo=UTC)
    assert meta("", '<time datetime="2024-06-01">', None).date_source == "time"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://x.com/2024/03/15/slug", datetime(2024, 3, 15, tzinfo=UTC)),
        ("https://x.com/news/2024-03-15/slug", datetime(2024, 3, 15, tzinfo=UTC)),
        ("https://x.com/news/2024-03-15-slug", datetime(2024, 3, 15, tzinfo=UTC)),
        ("https://x.com/a/20240315/slug", datetime(2024, 3, 15, tzinfo=UTC)),
        ("https://x.com/a/20240315.html", datetime(2024, 3, 15, tzinfo=UTC)),
        ("https://x.com/2024/02/30/slug", None),  # not a real day
        ("https://x.com/1990/01/01/slug", None),  # before 1995
        ("https://x.com/a/920240315/slug", None),  # part of a longer number
        ("https://x.com/a/id20240315/slug", None),  # part of a token
        ("https://x.com/2024/03/slug", None),  # no day
        ("https://x.com/a?d=2024-03-15", None),  # query, not path
        ("https://x.com/blog/2023/october/03/slug", datetime(2023, 10, 3, tzinfo=UTC)),  # the month's name
        ("https://x.com/blog/2023/Oct/3", datetime(2023, 10, 3, tzinfo=UTC)),
        ("https://x.com/blog/2023/spring/03/slug", None),  # no month
        ("https://x.com/articles/2025-12-15+Slug+words", datetime(2025, 12, 15, tzinfo=UTC)),  # "+" for spaces
        (None, None),
        ("http://[::1", None),
    ],
)
def test_date_from_url(url: str | None, expected: datetime | None) -> None:
    assert date_from_url(url) == expected
    if expected is not None:
        got = meta("", "", url)
        assert got.published is not None and got.published.precision == "day" and got.published.raw in (url or "")


def test_implausible_page_dates_are_kept_as_evidence_but_never_the_first_date() -> None:
    head = (
        '<meta property="article:published_time" content="2999-01-01">'
        '<meta name="date" content="2024-03-05"><meta property="article:modified_time" content="0001-01-01">'
    )
    got = meta(head, "", "https://example.com/2999/01/01/story")
    assert [(source, type(when).__name__) for source, when in got.dates] == [
        ("meta", "Implausible"),
        ("meta", "Dated"),
        ("url", "Implausible"),
    ]
    assert (got.published_at, got.date_source, got.modified_at) == (datetime(2024, 3, 5, tzinfo=UTC), "meta", None)
    assert isinstance(got.modified_dates[0][1], Implausible)


def test_title_h1_agrees_with_meta_title() -> None:
    head = '<title>Markets fall as rates rise | Example News</title><meta property="og:title" content="Markets fall">'
    got = meta(head, "<h1>Markets fall as rates <em>rise</em></h1>")
    assert got.title == "Markets fall as rates rise"


def test_title_h1_that_disagrees_wins_unless_it_is_branding() -> None:
    # The <h1> is the headline the reader sees; meta titles are rewritten for sharing.
    head = (
        '<meta property="og:title" content="Markets fall as rates rise">'
        '<meta property="og:site_name" content="Example News">'
    )
    got = meta(head, "<h1>Stocks slide as central banks hold</h1>")
    assert (got.title, got.title_source) == ("Stocks slide as central banks hold", "h1")
    # The site's name, its logo (a link home, an image) are not headlines.
    assert meta(head, "<h1>Example News</h1>").title == "Markets fall as rates rise"
    assert meta(head, '<h1><a href="/">Daily Planet</a></h1>').title_source == "meta"
    assert meta(head, '<h1><img src="logo.png" alt="Daily Planet"> Daily Planet</h1>').title_source == "meta"
    # A short logo h1 contained in the headline does not count as agreement.
    head = '<meta property="og:title" content="News: markets fall as rates rise everywhere">'
    assert meta(head, "<h1>News</h1>").title == "News: markets fall as rates rise everywhere"


def test_title_suffix_stripped_when_it_names_the_site() -> None:
    head = '<meta property="og:site_name" content="Example News"><title>Markets fall - Example News</title>'
    assert meta(head).title == "Markets fall"
    head = '<meta property="og:site_name" content="Example News"><title>EXAMPLE NEWS | Markets fall</title>'
    assert meta(head).title == "Markets fall"
    # A separator inside a headline is kept when nothing says it is branding.
    assert meta("<title>Rates - what next?</title>").title == "Rates - what next?"


def test_title_suffix_stripped_when_it_recurs_across_candidates() -> None:
    head = (
        '<meta property="og:title" content="Markets fall | Daily Planet">'
        '<meta name="twitter:title" content="Stocks slide on rates | Daily Planet">'
    )
    assert meta(head).title == "Markets fall"
    head = '<meta property="og:title" content="Markets fall"><title>Markets fall — Daily Planet</title>'
    assert meta(head).title == "Markets fall"


def test_title_sources_in_order_and_h1_alone() -> None:
    assert meta('<meta name="twitter:title" content="T">' + ld({"@type": "Article", "headline": "H"})).title == "T"
    assert meta(ld({"@type": "Article", "headline": "H"}) + "<title>X</title>").title == "H"
    assert meta("<title> X </title>").title == "X"
    assert meta("", "<h1>Only h1</h1>").title == "Only h1"
    assert meta().title is None


@pytest.mark.parametrize(
    ("byline", "expected"),
    [
        ("By Jane Doe and John Roe", ["Jane Doe", "John Roe"]),
        ("by: Jane Doe, John Roe & Ann Poe", ["Jane Doe", "John Roe", "Ann Poe"]),
        ("Jane Doe, Staff Writer", ["Jane Doe"]),
        ("Jane Doe, Senior Political Correspondent", ["Jane Doe"]),
        ("Jane Doe | Example News", ["Jane Doe"]),
        ("Jane Doe - March 5, 2024", ["Jane Doe"]),
        ("Jane Doe jane@example.com", ["Jane Doe"]),  # contact details are cut, the name stays
        ("Jane Doe (jane@example.com)", ["Jane Doe"]),
        ("By Jane Doe @janedoe", ["Jane Doe"]),
        ("By Jane DoeMarch 5, 2024", ["Jane Doe"]),  # a date glued on by markup
        ("https://www.facebook.com/jane.doe", []),
        ("example.com/authors/jane-doe", []),
        ("Von Hans Müller und Eva Schmidt", ["Hans Müller", "Eva Schmidt"]),
        ("Jean-Pierre Dupont", ["Jean-Pierre Dupont"]),
        ("Jane Doe is a reporter who covers markets and the economy for the paper", []),
        ("", []),
        (None, []),
    ],
)
def test_split_byline(byline: str | None, expected: list[str]) -> None:
    assert split_byline(byline, ["Example News"]) == expected


@pytest.mark.parametrize(
    ("byline", "site", "expected"),
    [
        ("Paige Brunton", "Paige Brunton", ["Paige Brunton"]),  # a personal site named after its author
        ("Cory Dransfeldt", "corydransfeldt", ["Cory Dransfeldt"]),  # ... or its host
        ("Computer Overhauls", "Computer Overhauls", []),  # a company: no given name
        ("Example News", "Example News", []),
        ("Paige", "Paige", []),  # one word: a brand as often as a person
        ("Jordan Motors", "Jordan Motors", []),  # a given name, then a business word
        ("Jane Doe Photography", "Jane Doe Photography", []),
    ],
)
def test_a_site_name_is_an_author_only_when_it_is_a_persons_name(byline: str, site: str, expected: list[str]) -> None:
    assert split_byline(byline, [site]) == expected


def test_split_byline_drops_a_trailing_publication_named_by_a_site_name_prefix() -> None:
    sites = ["Business Insider Deutschland"]
    assert split_byline("Charlie Wood, Business Insider", sites) == ["Charlie Wood"]
    # Leading, it may be a person whose name starts the site name (a personal blog): kept.
    assert split_byline("Jane Doe", ["Jane Doe Writes"]) == ["Jane Doe"]


def test_author_sources_and_priority() -> None:
    jsonld = ld({"@type": "NewsArticle", "author": {"@type": "Person", "name": "Jane Doe"}})
    assert meta(jsonld + '<meta name="author" content="John Roe">').authors == ("Jane Doe",)
    # A source that names only the site yields nobody, so the next source is used.
    head = (
        '<meta property="og:site_name" content="Example News"><meta name="author" content="Example News">'
        '<meta name="parsely-author" content="John Roe">'
    )
    assert meta(head).authors == ("John Roe",)
    # article:author as a URL is skipped; the next source names the person.
    head = '<meta property="article:author" content="https://facebook.com/jdoe"><meta name="byl" content="By J. Doe">'
    assert meta(head).authors == ("J. Doe",)
    body = '<div itemprop="author" itemscope><span itemprop="name">Ann Poe</span><span>Reporter</span></div>'
    assert meta("", body).authors == ("Ann Poe",)
    assert meta("", '<a rel="author" href="/a/x">Ann Poe</a>').authors == ("Ann Poe",)


def test_author_equal_to_site_name_dropped_and_duplicates_merged() -> None:
    jsonld = ld(
        {
            "@type": "NewsArticle",
            "author": [{"@type": "Organization", "name": "Example News"}, "JANE DOE", "Jane Doe"],
            "publisher": {"name": "Example News"},
        }
    )
    assert meta(jsonld).authors == ("JANE DOE",)
    head = '<meta property="og:site_name" content="Example News"><meta name="author" content="Example News">'
    assert meta(head).authors == ()
    # Every name the site gives itself counts, not only the one reported as site_name.
    head = '<meta property="og:site_name" content="EN"><meta name="application-name" content="Example News">'
    assert meta(head + '<meta name="author" content="Example News">').authors == ()


def test_bad_jsonld_is_ignored() -> None:
    head = (
        '<script type="application/ld+json">{"@type": "NewsArticle", "headline": </script>'
        '<script type="application/ld+json">[1, "x", null]</script>'
        '<script type="application/ld+json">' + "[" * 5000 + "]" * 5000 + "</script>"
        '<script type="application/ld+json">{"@type": 5, "headline": ["a"]}</script>'
        '<script type="application/ld+json"><!-- {"@type": "NewsArticle", "headline": "Wrapped\nline",'
        ' "author": {"name": 7}, "image": [{"url": "javascript:alert(1)"}, "https://i.example.com/b.png"]} --></script>'
    )
    got = meta(head)
    assert got.title == "Wrapped line"
    assert got.authors == ()
    assert got.image_url == "https://i.example.com/b.png"


def test_jsonld_list_and_article_preferred_over_other_types() -> None:
    head = ld(
        [
            {"@type": "BreadcrumbList", "name": "Home"},
            {"@type": "http://schema.org/BlogPosting", "headline": "Post", "keywords": "a, b,A"},
        ]
    )
    got = meta(head)
    assert (got.title, got.tags) == ("Post", ("a", "b"))


def test_canonical_resolution() -> None:
    assert meta('<link rel="canonical" href="/world/story?id=1#x">').canonical_url == (
        "https://news.example.com/world/story?id=1"
    )
    assert meta('<link rel="Canonical" href="HTTPS://NEWS.Example.com/A">').canonical_url == (
        "https://news.example.com/A"
    )
    # link rel=canonical beats og:url
    head = '<meta property="og:url" content="https://a.example/og"><link rel="canonical" href="https://a.example/c">'
    assert meta(head).canonical_url == "https://a.example/c"
    # A relative canonical without a page URL cannot be resolved; og:url is next.
    head = '<link rel="canonical" href="/c"><meta property="og:url" content="https://a.example/og">'
    assert meta(head, url=None).canonical_url == "https://a.example/og"
    assert meta('<link rel="canonical" href="javascript:void(0)">').canonical_url is None
    assert meta('<link rel="canonical" href="ftp://a.example/x">').canonical_url is None
    assert meta('<base href="https://cdn.example.net/en/"><link rel="canonical" href="s">').canonical_url == (
        "https://cdn.example.net/en/s"
    )


def test_image_sources_in_order() -> None:
    twitter = '<meta name="twitter:image" content="https://t.example/t.jpg">'
    jsonld = ld({"@type": "NewsArticle", "image": ["img/j.jpg"]})
    assert meta('<meta property="og:image" content="o.jpg">' + twitter).image_url == (
        "https://news.example.com/world/o.jpg"
    )
    assert meta(twitter + jsonld).image_url == "https://t.example/t.jpg"
    assert meta(jsonld).image_url == "https://news.example.com/world/img/j.jpg"
    assert meta('<meta property="og:image" content="data:image/png;base64,xx">').image_url is None


def test_language_sources_in_order() -> None:
    assert meta('<meta property="og:locale" content="de_DE">', lang=' lang="EN-us"').language == "en"
    assert meta('<meta http-equiv="content-language" content="es-ES, en">').language == "es"
    assert meta('<meta name="language" content="English">').language == "en"
    assert meta('<meta property="og:locale" content="pt_BR">', lang=' lang=""').language == "pt"
    assert meta("", lang=' lang="xx-garbage"').language is None


def test_site_name_sources_in_order() -> None:
    app = '<meta name="application-name" content="App">'
    assert meta('<meta property="og:site_name" content="OG">' + app).site_name == "OG"
    assert meta(ld({"@type": "NewsArticle", "publisher": [{"name": "Pub"}]}) + app).site_name == "Pub"
    assert meta(ld({"@type": "WebSite", "name": "Web"}) + app).site_name == "Web"
    assert meta(app).site_name == "App"


def test_description_and_tags_from_several_metas() -> None:
    head = (
        '<meta name="news_keywords" content="Elections; Europe">'
        '<meta name="keywords" content="europe, Parliament">'
        '<meta name="description" content="  A   vote. ">'
    )
    got = meta(head + ld({"@type": "NewsArticle", "keywords": ["EU", "elections"]}))
    assert got.tags == ("Elections", "Europe", "Parliament", "EU")
    assert got.description == "A vote."


def test_empty_and_non_html() -> None:
    assert meta() == PageMeta()
    assert extract_metadata(LexborHTMLParser(""), None) == PageMeta()
    assert extract_metadata(LexborHTMLParser("just text"), "not a url") == PageMeta()


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=400), st.none() | st.text(max_size=40))
def test_random_markup_never_raises(junk: str, url: str | None) -> None:
    head = f'<meta name="author" content="{junk}"><meta name="date" content="{junk}"><title>{junk}</title>'
    script = f'<script type="application/ld+json">{junk}</script><link rel=canonical href="{junk}">'
    got = extract_metadata(LexborHTMLParser(head + script + junk), url)
    assert isinstance(got, PageMeta)


def test_every_agreeing_page_date_is_kept_in_order_of_evidence() -> None:
    # A caller that rejects the first (a date in the future) falls back to the next.
    url = "https://example.com/2022/01/01/story"
    head = (
        ld({"@type": "NewsArticle", "datePublished": "2022-01-01T08:00:00Z", "dateModified": "2098-01-01"})
        + '<meta property="article:published_time" content="2022-01-01T00:00:00Z">'
        + '<meta name="date" content="not a date"><meta name="pubdate" content="2022-01-01">'
        + '<meta property="article:modified_time" content="2022-01-05">'
    )
    got = meta(head, '<article><time datetime="2023-01-01T00:00:00Z">1 Jan</time></article>', url)
    assert whens(got.dates) == [
        ("jsonld", datetime(2022, 1, 1, 8, tzinfo=UTC)),
        ("meta", datetime(2022, 1, 1, tzinfo=UTC)),
        ("meta", datetime(2022, 1, 1, tzinfo=UTC)),
    ]
    assert [when.precision for _, when in got.dates if isinstance(when, Dated)] == ["second", "second", "day"]
    assert whens(got.modified_dates) == [
        ("jsonld", datetime(2098, 1, 1, tzinfo=UTC)),
        ("meta", datetime(2022, 1, 5, tzinfo=UTC)),
    ]


def test_time_selectors_all_narrow_the_last_one() -> None:
    # _published runs the <time> selectors only when the last (every dated <time>) matches.
    from normalizers.html.metadata import TIME_FALLBACK_SELECTORS, TIME_PUBLISHED_SELECTORS

    assert TIME_FALLBACK_SELECTORS[-1] == "time[datetime]"
    for selector in (*TIME_PUBLISHED_SELECTORS, *TIME_FALLBACK_SELECTORS):
        assert selector.split()[-1].startswith("time[") and selector.endswith("[datetime]"), selector


def test_canonical_urls_that_are_not_article_urls_are_reported() -> None:
    head = '<link rel="canonical" href="javascript:void(0)"><meta property="og:url" content="file:///etc/passwd">'
    got = meta(head)
    assert got.canonical_url is None
    assert len(got.warnings) == 2
    assert "canonical link 'javascript:void(0)'" in got.warnings[0] and "og:url 'file:///etc/passwd'" in got.warnings[1]
    # A good canonical link: og:url is not looked at, and nothing is reported.
    assert meta('<link rel="canonical" href="/a"><meta property="og:url" content="javascript:x">').warnings == ()


# --- authors are people ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("byline", "expected"),
    [
        ("Guardian staff reporter", []),  # a role, not a name
        ("The Washington Times https", []),  # an organisation, and the start of a URL
        ("Condé Nast", []),
        ("THE ASSOCIATED PRESS", []),
        ("Reuters", []),
        ("The Lavazza Team", []),
        ("Example Media Inc.", []),
        ("Dr. Jane Doe, PhD", ["Dr. Jane Doe"]),  # the honorific is printed as part of the name
        ("Dr.", []),
        ("Jane Doe, MS, RD", ["Jane Doe"]),
        ("Jane Doe M.D.", ["Jane Doe"]),
        ("Rui Ma", ["Rui Ma"]),  # a surname, not a degree ("MA")
        ("Jane Doe, Director of Operations, Example Van Lines", ["Jane Doe"]),
        ("Jane Doe, Home and Garden Editor", ["Jane Doe"]),
        ("Jane Doe Senior Editor", ["Jane Doe"]),
        ("Jane Doe, Editor-in-Chief", ["Jane Doe"]),
        ("Jane Doe Updated by John Roe", ["Jane Doe"]),
        ("Jane Doe Co-founder", ["Jane Doe"]),  # a hyphenated title, whole
        ("Jane Doe Content Marketing Coordinator", ["Jane Doe"]),
        ("Jane Doe Facebook Tweet Pin", ["Jane Doe"]),  # a share bar glued to the byline
        ("JD Jane Doe", ["Jane Doe"]),  # an initials badge
        ("Jane Doe Jane Doe", ["Jane Doe"]),  # an avatar's alt text, then the name
        ("Jane Doe, Digital Security", ["Jane Doe"]),  # a beat, not a second author
        ("Sat -", []),  # what a date left
        ("∙ Paid", []),  # a subscriber badge
        ("Sep Blatter", ["Sep Blatter"]),  # a name that starts like a month
        ("Matt Check Head Winemaker", ["Matt Check"]),  # a rank, then any trade
        ("By David LauterSenior Editor March 1, 2024", ["David Lauter"]),  # two elements' texts glued
        ("Elizabeth McCravy", ["Elizabeth McCravy"]),  # a capital inside a name stays
        ("CM | Craig McCarthy", ["Craig McCarthy"]),  # an initials badge in its own element
        ("By Jane Doe Published March 5, 2024", ["Jane Doe"]),
        ("By David Lauter March 1, 2024 3 AM PT", ["David Lauter"]),
        ("Jane Doe on Tuesday", ["Jane Doe"]),
        ("Written by Jane Doe", ["Jane Doe"]),
        ("Author: Jane Doe", ["Jane Doe"]),
        ("Recipe by Jane Doe", ["Jane Doe"]),
        ("More About Jane Doe »", []),
        ("One comment so far", []),
        ("admin", []),
        ("jdoe", []),  # a user handle
        ("undefined", []),
        ("Ludwig van Beethoven", ["Ludwig van Beethoven"]),
        ("you acknowledge the Privacy Policy", []),
        ("Jane Doe & John Roe", ["Jane Doe", "John Roe"]),
        ("Jane Doe, John Roe, and Ann Poe", ["Jane Doe", "John Roe", "Ann Poe"]),
    ],
)
def test_split_byline_keeps_people_only(byline: str, expected: list[str]) -> None:
    assert split_byline(byline, ["Example News"]) == expected


def test_a_byline_element_read_with_separators_unglues_name_role_and_date() -> None:
    # "By David LauterSenior Editor March 1, 2024 3 AM PT" as a page's text without separators.
    body = (
        "<h1>Markets fall as rates rise</h1><div class='byline'>By <a href='/p/dl'>David Lauter</a>"
        "<span>Senior Editor</span><time>March 1, 2024 3 AM PT</time></div>"
    )
    got = meta("", body, None)
    assert (got.authors, got.author_source) == (("David Lauter",), "byline")


def test_jsonld_organisation_authors_are_not_people_but_a_person_named_like_the_site_is() -> None:
    head = ld({"@type": "NewsArticle", "author": {"@type": "Organization", "name": "Acme Widgets"}})
    assert meta(head + '<meta name="author" content="Jane Doe">').authors == ("Jane Doe",)
    site = '<meta property="og:site_name" content="Jane Doe">'
    assert meta(site + ld({"@type": "BlogPosting", "author": {"@type": "Person", "name": "Jane Doe"}})).authors == (
        "Jane Doe",
    )
    # Untyped, the site's name is an author only when it reads as a person's name.
    assert meta(site + '<meta name="author" content="Jane Doe">').authors == ("Jane Doe",)
    acme = '<meta property="og:site_name" content="Acme Widgets">'
    assert meta(acme + '<meta name="author" content="Acme Widgets">').authors == ()


def test_article_author_profile_url_gives_way_to_the_byline() -> None:
    head = '<meta property="article:author" content="https://www.facebook.com/janedoe">'
    got = meta(head, "<h1>Markets fall as rates rise</h1><p>By Jane Doe and John Roe</p>")
    assert (got.authors, got.author_source) == (("Jane Doe", "John Roe"), "byline")


def test_bylines_in_comments_and_related_stories_are_not_the_articles() -> None:
    body = (
        "<h1>Markets fall as rates rise</h1><p>Text of the story.</p>"
        "<div class='comments'><span class='author'>Troll Person</span></div>"
        "<aside><a rel='author' href='/a/x'>Other Writer</a></aside>"
    )
    assert meta("", body, None).authors == ()


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [
                "Jane",
                "Doe",
                "By",
                "and",
                ",",
                "&",
                "https://x.example/jane",
                "www.example.com",
                "jane@example.com",
                "2024",
                "12",
                "March 5, 2024",
                "10:30 AM",
                "Staff Writer",
                "Inc.",
                "PhD",
                "|",
                "-",
                "The",
                "Times",
                "Ann",
                "Poe",
                "O'Neil",
            ]
        ),
        max_size=12,
    )
)
def test_authors_never_hold_urls_emails_or_numbers(tokens: list[str]) -> None:
    for name in split_byline(" ".join(tokens), ["Example News"]):
        assert name and name == name.strip()
        assert "http" not in name.lower() and "www." not in name.lower() and "@" not in name
        assert not any(ch.isdigit() for ch in name)
        assert name.split()[-1].strip(".") not in ("Inc", "PhD")


# --- more date evidence, and the rules that decide between it -----------------------------


@pytest.mark.parametrize(
    ("printed", "day"),
    [
        ("17.05.2021", date(2021, 5, 17)),  # a part over 12: only one order is a date
        ("2/24/2026", date(2026, 2, 24)),
        ("24/2/2026", date(2026, 2, 24)),
        ("Posted 23.07.2025 · 5 min", date(2025, 7, 23)),
    ],
)
def test_a_printed_numeric_date_is_read_when_only_one_order_is_a_day(printed: str, day: date) -> None:
    got = meta("", f"<h1>Markets fall as rates rise</h1><span>{printed}</span>", None)
    assert got.date_source == "text" and got.published is not None and got.published.day == day


@pytest.mark.parametrize("printed", ["03/04/2024", "09.10.2024", "3/4/2024 and 3/27/2024"])
def test_an_ambiguous_numeric_date_gives_no_date(printed: str) -> None:
    # 03/04/2024 is 3 April or March 4; what is printed after it is a later date (an update's).
    got = meta("", f"<h1>Markets fall as rates rise</h1><span>{printed}</span>", None)
    assert got.published_at is None


def test_an_element_whose_class_names_a_date_is_read_when_nothing_else_dates_the_page() -> None:
    filler = "<p>" + "Words of the story go on. " * 40 + "</p>"
    body = f"<h1>Markets fall as rates rise</h1>{filler}<div class='story-date'><span>May 31, 2024</span></div>"
    got = meta("", body, None)
    assert got.date_source == "text" and got.published is not None and got.published.day == date(2024, 5, 31)
    assert got.published.raw == "May 31, 2024"


def test_date_elements_give_way_to_structured_dates_and_skip_teasers_and_updates() -> None:
    filler = "<p>" + "Words of the story go on. " * 40 + "</p>"
    head = '<meta property="article:published_time" content="2020-12-07T08:00:00Z">'
    teasers = "<ul><li><span class='post-date'>March 13, 2026</span></li></ul>"
    got = meta(head, f"<h1>Markets fall as rates rise</h1>{filler}{teasers}")
    assert (got.date_source, got.published_at) == ("meta", datetime(2020, 12, 7, 8, tzinfo=UTC))
    # The first dated element is the update's: its nested date and the next element's are not read.
    update = "<span class='post-date'>Last updated on <span class='date'>Feb 27, 2026</span></span>"
    related = "<div class='entry-date'>January 20, 2026</div>"
    got = meta("", f"<h1>Markets fall as rates rise</h1>{filler}{update}{related}", None)
    assert got.published_at is None


def test_the_url_sides_with_the_structured_date_against_the_printed_one() -> None:
    head = '<meta property="article:published_time" content="2021-01-18T09:00:00Z">'
    body = "<h1>Markets fall as rates rise</h1><p>August 9, 2021</p>"
    got = meta(head, body, "https://x.com/2021/01/18/markets")
    assert (got.date_source, got.published_at) == ("meta", datetime(2021, 1, 18, 9, tzinfo=UTC))


def test_the_url_decides_between_structured_dates_of_different_days() -> None:
    head = ld({"@type": "NewsArticle", "datePublished": "2019-05-01T10:00:00Z"}) + (
        '<meta property="article:published_time" content="2024-03-05T14:15:00Z">'
    )
    got = meta(head, "", "https://x.com/2024/03/05/markets")
    assert (got.date_source, got.published_at) == ("meta", datetime(2024, 3, 5, 14, 15, tzinfo=UTC))


def test_a_date_element_decides_between_structured_dates_of_different_days() -> None:
    head = ld({"@type": "NewsArticle", "datePublished": "2025-11-29T10:00:00Z"}) + (
        '<meta property="article:published_time" content="2025-08-13T14:15:00Z">'
    )
    filler = "<p>" + "Words of the story go on. " * 40 + "</p>"
    body = f"<h1>Markets fall as rates rise</h1>{filler}<p class='post-date'>Published August 13, 2025</p>"
    got = meta(head, body)
    assert (got.date_source, got.published_at) == ("meta", datetime(2025, 8, 13, 14, 15, tzinfo=UTC))
    assert meta(head, f"<h1>Markets fall as rates rise</h1>{filler}").published_at is None


def test_a_printed_date_before_every_structured_date_wins() -> None:
    # A CMS that re-published or imported the story stamps the later date; an update is
    # never printed before the publication.
    head = ld({"@type": "NewsArticle", "datePublished": "2025-06-12T10:00:00Z"})
    got = meta(head, "<h1>Markets fall as rates rise</h1><p>November 2, 2022</p>")
    assert got.date_source == "text" and got.published is not None and got.published.day == date(2022, 11, 2)
    # A printed date more than a day after the page's own metadata is its update, unlabelled.
    got = meta(head, "<h1>Markets fall as rates rise</h1><p>November 2, 2025</p>")
    assert got.date_source == "jsonld" and got.published is not None and got.published.day == date(2025, 6, 12)
    # Unless the page's own metadata disagrees with itself.
    two = head + '<meta property="article:published_time" content="2025-03-01T00:00:00Z">'
    assert meta(two, "<h1>Markets fall as rates rise</h1><p>November 2, 2025</p>").published_at is None


def test_microdata_dates_of_teasers_do_not_contradict_the_pages_own() -> None:
    head = ld({"@type": "NewsArticle", "datePublished": "2024-11-13T06:36:52Z"})
    teasers = "".join(
        f"<div class='related'><span itemprop='datePublished' content='2025-12-{d:02d}'>Dec {d}</span></div>"
        for d in (1, 11, 16)
    )
    got = meta(head, "<h1>Markets fall as rates rise</h1><p>Story text.</p>" + teasers)
    assert got.date_source == "jsonld" and got.published is not None and got.published.day == date(2024, 11, 13)


def test_a_time_element_of_the_printed_day_backs_it() -> None:
    body = (
        "<h1>Markets fall as rates rise</h1>"
        "<p>December 18, 2025 <time datetime='2025-12-18T19:05:00-08:00'>7:05 PM</time></p>"
    )
    got = meta("", body, None)
    assert got.date_source == "time" and got.published is not None
    assert (got.published.day, got.published.precision) == (date(2025, 12, 18), "second")
    # Against a structured date of another day too; but a structured date within a day wins.
    far = '<meta property="article:published_time" content="2013-03-11T08:00:00Z">'
    got = meta(far, body, None)
    assert got.date_source == "time" and got.published is not None and got.published.day == date(2025, 12, 18)
    near = '<meta property="article:published_time" content="2025-12-19T03:05:00+00:00">'
    assert meta(near, body, None).date_source == "meta"


def test_a_printed_date_every_time_element_contradicts_gives_no_date() -> None:
    body = (
        "<h1>Tax guide</h1><p>File by April 15, 2025</p><article><p>Text.</p>"
        "<p><time datetime='2025-01-17T13:39:16-0500'>Jan. 17, 2025</time></p></article>"
    )
    assert meta("", body, None).published_at is None
    agreeing = body.replace("2025-01-17T13:39:16-0500", "2025-04-15T09:00:00-0400")
    got = meta("", agreeing, None)
    assert got.date_source == "time" and got.published is not None and got.published.day == date(2025, 4, 15)


def test_a_time_element_of_the_printed_update_day_is_not_the_publication_date() -> None:
    body = (
        "<h1>Markets fall as rates rise</h1>"
        "<p>Updated <time class='published' datetime='2025-04-10'>April 10, 2025</time></p>"
    )
    got = meta("", body, None)
    assert got.published_at is None and got.modified_at == datetime(2025, 4, 10, tzinfo=UTC)


# --- more author evidence ----------------------------------------------------------------


def test_jsonld_authors_referenced_by_id_in_a_graph() -> None:
    graph = {
        "@context": "https://schema.org",
        "@graph": [
            {"@type": "Article", "headline": "Markets fall", "author": [{"@id": "#p1"}, {"@id": "#p2"}]},
            {"@type": "Person", "@id": "#p1", "name": "Jane Doe"},
            {"@type": "Person", "@id": "#p2", "name": "John Roe"},
            {"@type": "Organization", "@id": "#org", "name": "Example News"},
        ],
    }
    got = meta(ld(graph))
    assert (got.authors, got.author_source) == (("Jane Doe", "John Roe"), "jsonld")
    graph["@graph"][0]["author"] = {"@id": "#org"}  # type: ignore[index]
    assert meta(ld(graph)).authors == ()  # an organisation is no person


def test_a_twitter_label_written_by_gives_the_author() -> None:
    head = (
        '<meta name="twitter:label1" content="Written by"><meta name="twitter:data1" content="Jane Doe">'
        '<meta name="twitter:label2" content="Est. reading time"><meta name="twitter:data2" content="4 minutes">'
    )
    got = meta(head)
    assert (got.authors, got.author_source) == (("Jane Doe",), "meta")
    assert (
        meta(
            '<meta name="twitter:label1" content="Reading time"><meta name="twitter:data1" content="Jane Doe">'
        ).authors
        == ()
    )


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("<h1>Markets fall as rates rise</h1><p>By Jane Doe 0 comments</p>", ("Jane Doe",)),
        (
            "<h1>Markets fall as rates rise</h1><p>By Jane Doe and John Roe on March 5, 2024</p>",
            ("Jane Doe", "John Roe"),
        ),
        # A sentence that mentions someone "by" name is no byline, nor is a photo credit.
        ("<h1>Markets fall as rates rise</h1><p>A meal plan created by Senior Dietitian Jane Doe. Get it.</p>", ()),
        ("<h1>Markets fall as rates rise</h1><p>Photo by Jane Doe on Unsplash</p>", ()),
        ("<h1>Markets fall as rates rise</h1><p>SPONSORED BY Shopping for a house?</p>", ()),
        # A byline run into the story's first sentence is not cut at a guess.
        ("<h1>Markets fall as rates rise</h1><p>By Jane Doe Travel insurance can help</p>", ()),
        ("<h1>Markets fall as rates rise</h1><p>By Jane Doe on behalf of the Example team</p>", ("Jane Doe",)),
    ],
    ids=["count-after", "date-after", "prose", "photo-credit", "sponsor", "run-on", "on-behalf"],
)
def test_a_byline_by_the_headline_ends_where_the_names_end(body: str, expected: tuple[str, ...]) -> None:
    assert meta("", body).authors == expected


@pytest.mark.parametrize(
    "body",
    [
        "<div><h3>Written by Jane Doe</h3><p>Jane is a writer covering markets.</p></div>",
        "<div><h3>Author</h3><p>Jane Doe</p></div>",
        "<div><h2>Article by</h2><div>Jane Doe</div></div>",
        "<div class='bio'>This post was written by Jane Doe, Head of Marketing at Example.</div>",
    ],
)
def test_a_line_labelling_the_author_anywhere_on_the_page(body: str) -> None:
    filler = "<p>" + "Words of the story go on. " * 40 + "</p>"
    got = meta("", f"<h1>Markets fall as rates rise</h1>{filler}{body}")
    assert (got.authors, got.author_source) == (("Jane Doe",), "byline")


def test_a_label_alone_followed_by_a_single_word_is_no_author() -> None:
    assert meta("", "<div><h3>Authors</h3><p>Abstract</p></div>").authors == ()


# --- titles ------------------------------------------------------------------------------


def test_title_suffix_spelling_the_host_is_stripped() -> None:
    head = '<meta property="og:title" content="The Ultimate Car Checklist | Example Tires">'
    got = meta(head, "", "https://www.exampletire.com/learn/checklist")
    assert (got.title, got.title_source) == ("The Ultimate Car Checklist", "meta")
    got = meta("", "<h1>Best Art Exhibitions 2025 – Artexample</h1>", "https://artexample.com/news/best")
    assert got.title == "Best Art Exhibitions 2025"
    # A leading segment naming the host is left: it is as often a series' name.
    got = meta("", "<h1>Artexample Signal #18 – The World Without Work?</h1>", "https://artexample.com/a")
    assert got.title == "Artexample Signal #18 – The World Without Work?"


def test_an_author_element_in_the_article_counts_whatever_wraps_the_page() -> None:
    # An unclosed <aside> (a banner) wraps the whole page; the byline is in the page's <article>.
    body = (
        "<aside class='announcement-banner'><main><article><h1>Markets fall as rates rise</h1>"
        "<div class='blog-meta'><a href='/team/jd'><img src='jd.jpg' alt=''></a>"
        "<span class='blog-meta-author'> Jane Doe </span></div><p>Story.</p></article>"
        "<div class='column-sidebar'><article><span class='blog-meta-author'>John Roe</span></article></div>"
        "</main></aside>"
    )
    got = meta("", body)
    assert (got.authors, got.author_source) == (("Jane Doe",), "byline")


def test_an_author_link_without_text_gives_way_to_the_next() -> None:
    body = (
        "<h1>Markets fall as rates rise</h1><a href='/authors/jane-doe'><img src='jd.jpg' alt=''></a>"
        "<a href='/authors/jane-doe'>Jane Doe</a>"
    )
    assert meta("", body).authors == ("Jane Doe",)


# --- the calendar day of a time stated in UTC ----------------------------------------------------


@pytest.mark.parametrize("stated", ["2025-12-19T02:41:41+00:00", "2025-12-19T02:41:41Z", "2025-12-19T02:41:41.5Z"])
def test_a_time_stated_in_utc_takes_the_calendar_day_of_the_url(stated: str) -> None:
    head = f'<meta property="article:published_time" content="{stated}">'
    got = meta(head, "", "https://blog.example.com/2025/12/18/a-story/")
    assert got.published is not None and got.date_source == "meta"
    assert got.published.day == date(2025, 12, 18)  # the site's day, from its URL
    assert got.published_at is not None and got.published_at.date() == date(2025, 12, 19)  # the instant stays


def test_a_time_stated_in_the_sites_zone_keeps_its_own_day() -> None:
    head = '<meta property="article:published_time" content="2025-12-19T00:30:00+01:00">'
    got = meta(head, "", "https://blog.example.com/2025/12/18/a-story/")
    assert got.published is not None and got.published.day == date(2025, 12, 19)


def test_an_author_elements_parts_in_their_own_blocks_are_read_apart() -> None:
    body = (
        "<h1>Markets fall as rates rise</h1>"
        "<div class='post-author'><h4>Insights from</h4><div><div>Liza Burke</div><div>Marketing Director</div>"
        "<div>May 14, 2025</div></div></div>"
    )
    assert meta("", body).authors == ("Liza Burke",)


def test_a_page_wide_element_with_an_author_class_is_no_byline() -> None:
    paragraphs = "".join(f"<p>Paragraph {i} of a long story about the markets.</p>" for i in range(2000))
    got = meta("", f"<div class='author-page'><h1>Markets fall as rates rise</h1>{paragraphs}</div>")
    assert got.authors == ()


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("<p><strong>Contributors:</strong> Janet Loughrey</p>", ("Janet Loughrey",)),
        (
            "<h6>Author(s)</h6><ul><li>John A. Alic</li><li>David C. Mowery</li><li>Edward S. Rubin</li></ul>"
            "<h6>Related Program</h6>",
            ("John A. Alic", "David C. Mowery", "Edward S. Rubin"),
        ),
    ],
)
def test_a_labelled_author_list_is_read_to_its_end(body: str, expected: tuple[str, ...]) -> None:
    got = meta("", "<h1>Markets fall as rates rise</h1><p>Story text.</p>" + body)
    assert got.authors == expected


def test_a_block_named_like_a_sidebar_that_holds_the_headline_is_the_articles() -> None:
    story = "<div class='story-sidebar-mode'><h1>Markets fall as rates rise</h1>{}<p>Story text.</p></div>"
    got = meta("", story.format("<div class='author-name'>Jane Doe</div>"))
    assert got.authors == ("Jane Doe",)
    beside = "<div class='page'><h1>Markets fall as rates rise</h1><p>Story text.</p></div>"
    got = meta("", beside + "<div class='sidebar'><div class='author-name'>John Roe</div></div>")
    assert got.authors == ()


def test_an_update_label_with_a_time_before_the_date_is_still_an_update() -> None:
    head = '<meta property="article:published_time" content="2024-05-01T09:00:00Z">'
    got = meta(head, "<h1>Markets fall as rates rise</h1><p>By Jane Doe Updated 3:15 PM EST, Tue March 5, 2024</p>")
    assert (got.date_source, got.published_at) == ("meta", datetime(2024, 5, 1, 9, tzinfo=UTC))
    assert got.modified_at == datetime(2024, 3, 5, tzinfo=UTC)
