"""The one URL spelling every identity is derived from (normalizers.urls), through each entry point."""

from __future__ import annotations

import json
import urllib.parse

import pytest
from hypothesis import given
from hypothesis import strategies as st

from normalizers import urls
from normalizers.feeds import parse_feed
from normalizers.html.normalize import normalize_html
from normalizers.meta import SourceMeta, article_id
from normalizers.profile import SourceProfile
from normalizers.schema import Article
from normalizers.text import normalize_text
from normalizers.urls import canonical_url

# --- canonical_url --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("HTTPS://News.Example.COM/Path/Kept?Q=Kept", "https://news.example.com/Path/Kept?Q=Kept"),
        ("http://example.com", "http://example.com/"),
        ("http://example.com:80/a", "http://example.com/a"),
        ("https://example.com:443/a", "https://example.com/a"),
        ("https://example.com:8443/a", "https://example.com:8443/a"),
        ("http://example.com:/a", "http://example.com/a"),
        ("https://example.com/a#section-2", "https://example.com/a"),
        (
            "https://example.com/a?utm_source=x&id=7&UTM_Medium=y&fbclid=z&page=2&gclid=g",
            "https://example.com/a?id=7&page=2",
        ),
        ("https://example.com/a?mc_cid=1&mc_eid=2&igshid=3&ref_src=4&_ga=5", "https://example.com/a"),
        ("https://example.com/a?b=2&a=1", "https://example.com/a?b=2&a=1"),  # order kept
        ("https://example.com/a?x=1&&y=2&", "https://example.com/a?x=1&y=2"),
        ("https://example.com/?", "https://example.com/"),
        ("https://Bücher.example/straße", "https://xn--bcher-kva.example/stra%C3%9Fe"),
        ("https://xn--bcher-kva.example/stra%c3%9fe", "https://xn--bcher-kva.example/stra%C3%9Fe"),
        ("https://example.com/a b?q=a b", "https://example.com/a%20b?q=a%20b"),
        ("https://[2001:DB8::1]:443/x", "https://[2001:db8::1]/x"),
        ("  https://example.com/trim  ", "https://example.com/trim"),
        ("https://user:pw@Example.com:80/", "https://user:pw@example.com:80/"),
        ("http://us er@example.com:8080/p", "http://us%20er@example.com:8080/p"),
        (" HTTPS://News.Example.COM/a/B?x=1#frag ", "https://news.example.com/a/B?x=1"),
        ('https://example.com/a"b<c>', "https://example.com/a%22b%3Cc%3E"),
        ("HTTPS://Example.com:443/a b?utm_source=x&id=1", "https://example.com/a%20b?id=1"),
    ],
)
def test_canonical_url(url: str, expected: str) -> None:
    assert canonical_url(url) == expected
    assert canonical_url(expected) == expected


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("javascript:alert(1)", "only http(s)"),
        ("JavaScript://example.com/%0Aalert(1)", "only http(s)"),
        ("file:///etc/passwd", "only http(s)"),
        ("mailto:desk@example.com", "only http(s)"),
        ("ftp://example.com/", "only http(s)"),
        ("//example.com/a", "relative"),
        ("/relative", "relative"),
        ("http://", "no host"),
        ("https://", "no host"),
        ("http://example.com:99999/", "not a valid URL"),
        ("http://[::1", "not a valid URL"),
        ("http://example.com/\x00", "control characters"),
        ("http://example.com/\x85x", "control characters"),
        ("http://example.com/\u202egpj.exe", "control characters"),
        ("http://exa mple.com/", "not a host name"),
        ("http://a<b.example/", "not a host name"),
        ("http://" + "x" * 64 + ".бук.example/", "not a valid IDN"),
        ("http://example.com/\ud800", "cannot be encoded"),
    ],
)
def test_canonical_url_refuses_what_is_no_article_address_saying_why(url: str, why: str) -> None:
    with pytest.raises(ValueError, match=why.replace("(", r"\(").replace(")", r"\)")):
        canonical_url(url)


def test_tracking_params_are_named_data() -> None:
    assert {"fbclid", "gclid", "mc_cid", "mc_eid", "igshid", "ref_src", "_ga"} <= urls.TRACKING_PARAMS
    assert "utm_" in urls.TRACKING_PREFIXES


_label = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCXYZ0123456789-äöüß", min_size=1, max_size=10)
_chunk = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), max_size=12)
_query_item = st.tuples(
    st.sampled_from(["utm_source", "UTM_x", "fbclid", "id", "page", "q", "_ga", "a b", "ü"]), _chunk
).map(lambda kv: f"{kv[0]}={kv[1]}")
http_urls = st.builds(
    lambda scheme, host, port, path, query, fragment: (
        f"{scheme}://{host}{port}/{path}" + (f"?{'&'.join(query)}" if query else "") + fragment
    ),
    st.sampled_from(["http", "https", "HTTP", "Https"]),
    st.lists(_label, min_size=1, max_size=3).map(".".join),
    st.sampled_from(["", ":80", ":443", ":8080", ":"]),
    _chunk,
    st.lists(_query_item, max_size=4),
    st.sampled_from(["", "#", "#frag"]),
)


@given(http_urls)
def test_canonical_url_is_idempotent(url: str) -> None:
    try:
        once = canonical_url(url)
    except ValueError:  # e.g. a generated label the IDNA codec refuses
        return
    assert canonical_url(once) == once
    parts = urllib.parse.urlsplit(once)
    assert parts.fragment == ""
    for name, _ in urllib.parse.parse_qsl(parts.query, keep_blank_values=True):
        assert name.lower() not in urls.TRACKING_PARAMS and not name.lower().startswith(urls.TRACKING_PREFIXES)


@given(st.text(max_size=80))
def test_canonical_url_on_any_text_refuses_or_is_idempotent(text: str) -> None:
    try:
        once = canonical_url(text)
    except ValueError:
        return
    assert canonical_url(once) == once


# --- One identity through every entry point -------------------------------------------------

# One address in a spelling that exercises every rule: scheme and host case, a default
# port, a space, a tracking parameter, a fragment.
SPELLED = "HTTPS://Example.com:443/a b?utm_source=x&id=1#top"
CANONICAL = "https://example.com/a%20b?id=1"
_BODY = "".join(f"<p>Paragraph {i} of the story, with enough words, commas, and length to count.</p>" for i in range(6))
PROFILE = SourceProfile(name="s")


def _page(head: str = "") -> bytes:
    return f"<html><head>{head}</head><body><article><h1>Headline</h1>{_BODY}</article></body></html>".encode()


def _html(raw: bytes, meta: SourceMeta) -> Article:
    art = normalize_html(raw, meta, PROFILE)
    assert isinstance(art, Article), art
    return art


def test_one_address_in_any_spelling_is_one_url_and_one_article_id_through_every_entry_point() -> None:
    want_id = article_id("s", CANONICAL, "unused")
    # A feed entry: the key the pipeline fetches it under (and de-duplicates and keeps its state by).
    rss = f"<rss version='2.0'><channel><item><link>{SPELLED.replace('&', '&amp;')}</link></item></channel></rss>"
    (entry,) = parse_feed(rss.encode()).entries
    key = canonical_url(entry.url)
    assert key == CANONICAL
    # The page fetched under that key, saying nothing of its own URL: the fetched URL.
    fetched = _html(_page(), SourceMeta("s", entry.url, key, 1.7e9))
    # A stored page whose canonical link (or og:url) spells it.
    linked = _html(_page(f'<link rel="canonical" href="{SPELLED}">'), SourceMeta("s", "file:///p.html", "p.html"))
    og = _html(_page(f'<meta property="og:url" content="{SPELLED}">'), SourceMeta("s", "file:///p.html", "p.html"))
    # A sidecar's url, for a page and for a text file.
    sidecar = json.dumps({"url": SPELLED}).encode()
    html_sidecar = _html(_page(), SourceMeta("s", "file:///p.html", "p.html", sidecar=sidecar))
    text = normalize_text(b"Title\n\nLede.\n", SourceMeta("s", "file:///t.txt", "t.txt", sidecar=sidecar), PROFILE)
    assert isinstance(text, Article), text
    for art in (fetched, linked, og, html_sidecar, text):
        assert (art.url, art.article_id) == (CANONICAL, want_id)


def test_a_page_fetched_in_one_spelling_with_a_canonical_link_in_another_is_one_article() -> None:
    meta = SourceMeta("s", "http://example.com/a%20b?id=1&fbclid=z", CANONICAL, 1.7e9)
    art = _html(_page('<link rel="canonical" href="https://EXAMPLE.com/a b?id=1&amp;utm_medium=social">'), meta)
    assert art.url == "https://example.com/a%20b?id=1"
