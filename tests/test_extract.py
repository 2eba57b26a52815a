"""Unit tests of the generic main-text extractor on small hand-written pages."""

from __future__ import annotations

import random
import time

import pytest
from selectolax.lexbor import LexborHTMLParser

from normalizers.html.extract import Block, Extraction, extract, extract_text, parse_html

PARAS = [
    "The council voted on Tuesday to repair the old bridge, a decision that ends three years of debate, "
    "delays and rising costs for the town.",
    "Engineers said the work, which starts in spring, will close the crossing for six months, and traffic "
    "will be sent through the northern ring road.",
    "Residents, many of whom had campaigned for a new bridge instead, said they were relieved that a decision "
    "had finally been taken.",
    "The repair is expected to cost four million, of which half will come from the regional budget, the mayor "
    "told reporters after the vote.",
]


def page(article: str = "", *, before: str = "", after: str = "", head: str = "") -> str:
    """A news page: site chrome around an <article> holding PARAS plus `article`."""
    body = "".join(f"<p>{p}</p>" for p in PARAS)
    return f"""<!doctype html><html><head><title>Bridge</title>{head}</head><body>
    <header class="site-header"><nav class="main-nav"><ul><li><a href="/">Home</a></li>
      <li><a href="/news">News</a></li><li><a href="/sport">Sport</a></li></ul></nav></header>
    <div id="page"><main>{before}<article class="story"><h1>Town votes to repair bridge</h1>{body}{article}</article>
    {after}</main>
    <aside class="sidebar"><h3>Most read</h3>
      <ul><li><a href="/a">Another story about something else, with commas, and more</a></li></ul></aside>
    </div><footer class="site-footer"><p>Copyright 2024, The Town Paper. All rights reserved, everywhere.</p></footer>
    </body></html>"""


def run(html: str, **kwargs: object) -> Extraction:
    return extract(LexborHTMLParser(html), **kwargs)  # type: ignore[arg-type]


def reasons(result: Extraction) -> set[str]:
    return {d.reason for d in result.dropped}


def texts(result: Extraction) -> list[str]:
    return [b.text for b in result.blocks]


def test_article_paragraphs_extracted_in_order_without_chrome() -> None:
    result = run(page())
    assert texts(result) == PARAS
    assert result.path == "generic"
    assert "article.story" in result.root
    assert not result.truncated
    text = result.text()
    for chrome in ("Home", "Most read", "Copyright", "Town votes to repair bridge"):
        assert chrome not in text
    # Chrome outside the chosen content is simply not content; `dropped` lists what was
    # removed from inside it (here the headline).
    assert reasons(result) == {"title"}


@pytest.mark.parametrize(
    ("fragment", "reason", "leaked"),
    [
        (
            '<div class="share-bar"><a href="#">Share on Facebook</a> <a href="#">Share by email</a></div>',
            "share",
            "Share",
        ),
        ('<div class="social-links">Follow us everywhere today</div>', "share", "Follow us"),
        (
            '<section class="related-articles"><h2>Related</h2>'
            "<p>Other bridges, old and new, around the region</p></section>",
            "related",
            "Other bridges",
        ),
        (
            '<div class="most-read"><p>Ten things, big and small, to do this weekend in town</p></div>',
            "related",
            "Ten things",
        ),
        ('<div class="more-stories"><p>The mayor, again, in another long story</p></div>', "related", "in another"),
        ('<div id="comments"><p>Great article, thanks for writing it, really.</p></div>', "comments", "Great article"),
        (
            '<figure><img src="b.jpg"><figcaption>The bridge, seen from the river, at dawn</figcaption></figure>',
            "caption",
            "seen from the river",
        ),
        (
            '<div class="photo-credit">Photo by a staff photographer, for the paper</div>',
            "caption",
            "staff photographer",
        ),
        (
            '<div class="newsletter-signup"><p>Get the news, every morning, in your inbox</p></div>',
            "newsletter",
            "inbox",
        ),
        (
            '<div class="cookie-consent"><p>We use cookies, as everyone does, to track you</p></div>',
            "cookie",
            "cookies",
        ),
        ('<div class="ad-slot"><p>Buy the best shoes, cheap, today only</p></div>', "ad", "shoes"),
        ('<div class="advertisement">Sponsored content, paid for, by a company</div>', "ad", "Sponsored"),
        ('<form action="/s"><p>Search the archive, by date or by word</p></form>', "form", "archive"),
        ('<div style="display:none">Hidden text, never shown, to anyone at all</div>', "hidden", "never shown"),
        ("<div hidden><p>Also hidden, by attribute, from every reader</p></div>", "hidden", "by attribute"),
        ("<aside><p>An aside box, about something else entirely, here</p></aside>", "aside", "aside box"),
    ],
)
def test_boilerplate_inside_article_is_dropped_with_its_reason(fragment: str, reason: str, leaked: str) -> None:
    result = run(page(fragment))
    assert leaked not in result.text()
    assert texts(result) == PARAS
    matching = [d for d in result.dropped if d.reason == reason]
    assert matching, (reason, result.dropped)
    assert any(leaked.lower() in d.text.lower() for d in matching)


def test_scripts_styles_and_media_never_reach_the_text() -> None:
    result = run(
        page(
            "<script>var x = 'tracking, code, here';</script><style>p { color: red }</style>"
            "<noscript>Enable JavaScript, please, now</noscript><iframe>frame text</iframe>"
        )
    )
    text = result.text()
    for junk in ("tracking", "color", "Enable JavaScript", "frame text"):
        assert junk not in text


def test_lists_quotes_headings_and_pre_are_kept_with_their_kind() -> None:
    extra = (
        "<h2>What happens next</h2>"
        "<ul><li>The tender opens in January.</li><li>Work starts in April.</li></ul>"
        "<blockquote><p>It is the right decision for the town, finally.</p></blockquote>"
        "<pre>  line one\n  line two</pre>"
    )
    result = run(page(extra))
    assert Block("heading", "What happens next", 2) in result.blocks
    assert Block("list_item", "The tender opens in January.") in result.blocks
    assert Block("list_item", "Work starts in April.") in result.blocks
    assert Block("quote", "It is the right decision for the town, finally.") in result.blocks
    pre = [b for b in result.blocks if b.kind == "pre"]
    assert pre and pre[0].text == "  line one\n  line two"
    assert result.blocks[-1].kind == "pre"


def test_link_list_inside_article_is_dropped_by_link_density() -> None:
    links = (
        "<ul>"
        + "".join(f'<li><a href="/s{i}">Story number {i} about other things</a></li>' for i in range(5))
        + "</ul>"
    )
    result = run(page(links))
    assert "Story number" not in result.text()
    assert any(d.reason.startswith("link-density") for d in result.dropped)


def test_lede_marked_by_class_before_article() -> None:
    lede = "The town will spend four million on its oldest bridge, ending a long dispute."
    result = run(page(before=f'<p class="standfirst">{lede}</p>'))
    assert result.lede == lede
    assert result.text().startswith(lede + "\n\n" + PARAS[0])
    assert lede not in texts(result)


def test_lede_inside_article_is_not_repeated() -> None:
    lede = "A short summary of the decision, taken after three years of debate."
    result = run(page().replace("<h1>", f'<p class="article-summary">{lede}</p><h1>'))
    assert result.lede == lede
    assert result.text().count(lede) == 1


def test_no_lede_when_the_page_marks_none() -> None:
    assert run(page()).lede is None


def test_several_summaries_before_article_are_teasers_not_a_lede() -> None:
    teasers = "".join(
        f'<div class="card"><p class="summary">Teaser number {i} of another article, with a few words.</p></div>'
        for i in range(3)
    )
    assert run(page(before=teasers)).lede is None


def test_byline_inside_article_is_moved_to_bylines() -> None:
    html = page().replace(
        "<h1>Town votes to repair bridge</h1>",
        '<h1>Town votes</h1><div class="byline">By Jane Doe, Town Reporter</div>',
    )
    result = run(html)
    assert result.bylines == ("By Jane Doe, Town Reporter",)
    assert "Jane Doe" not in result.text()
    assert "byline" in reasons(result)


def test_plain_by_line_at_start_is_a_byline() -> None:
    html = page().replace("<h1>Town votes to repair bridge</h1>", "<p>By John Smith</p>")
    result = run(html)
    assert "By John Smith" in result.bylines
    assert "John Smith" not in result.text()


def test_date_inside_article_is_dropped() -> None:
    html = page().replace("<h1>Town votes to repair bridge</h1>", '<p class="published-date">12 March 2024</p>')
    result = run(html)
    assert "March" not in result.text()
    assert "date" in reasons(result)


def test_bare_text_with_br_in_div_is_extracted() -> None:
    text = "<br><br>".join(PARAS)
    html = f"""<html><body><div class="menu"><a href="/">Home</a> <a href="/x">X</a></div>
    <div class="text">{text}</div><div class="footer">Contact us, any time, by mail</div></body></html>"""
    result = run(html)
    joined = result.text()
    for para in PARAS:
        assert para in joined
    assert "Contact us" not in joined
    assert "Home" not in joined


def test_wrapper_with_misleading_class_is_kept() -> None:
    html = page().replace('<div id="page">', '<div id="page" class="has-sidebar with-comments">')
    assert texts(run(html)) == PARAS


def test_profile_body_selector_is_used_when_it_matches() -> None:
    html = page(after='<div class="other-box"><p>Profile content, chosen by selector, for this site.</p></div>')
    result = run(html, body_selector="div.other-box")
    assert result.path == "profile"
    assert texts(result) == ["Profile content, chosen by selector, for this site."]
    assert "other-box" in result.root


def test_profile_body_selector_that_matches_nothing_falls_back_to_generic() -> None:
    result = run(page(), body_selector="div.does-not-exist")
    assert result.path == "generic"
    assert texts(result) == PARAS


def test_profile_remove_selectors_and_bad_selectors() -> None:
    html = page('<p class="promo-line">Subscribe, now, for one euro a month today</p>')
    result = run(html, remove_selectors=["p.promo-line", "[[[not a selector"], body_selector="[[[bad")
    assert "Subscribe" not in result.text()
    assert any(d.reason == "profile: p.promo-line" for d in result.dropped)
    assert any("invalid selector" in d.reason for d in result.dropped)
    assert result.path == "generic"


def test_extract_text_puts_lede_first_and_joins_blocks() -> None:
    lede = "The town will spend four million on its oldest bridge, ending a long dispute."
    assert extract_text(page(before=f'<div class="lede">{lede}</div>')) == "\n\n".join([lede, *PARAS])


def test_dropped_entries_have_path_reason_and_short_text() -> None:
    result = run(page('<div class="share-tools">' + "Share this " * 50 + "</div>"))
    share = [d for d in result.dropped if d.reason == "share"]
    assert share
    assert share[0].path.endswith("div.share-tools")
    assert len(share[0].text) <= 80


class CountingBudget:
    """Expires after a number of checks: a time bound without a clock."""

    def __init__(self, checks: int) -> None:
        self.left = checks

    def expired(self) -> bool:
        self.left -= 1
        return self.left < 0


def test_budget_stops_work_and_flags_truncation() -> None:
    html = page("".join(f"<p>{p}</p>" for p in PARAS * 200))
    assert run(html, budget=CountingBudget(0)).truncated
    assert run(html, budget=CountingBudget(1)).truncated
    full = run(html, budget=CountingBudget(10**9))
    assert not full.truncated
    assert len(full.blocks) == len(PARAS) * 201


def test_empty_and_garbage_inputs_do_not_raise() -> None:
    for html in ["", " ", "<", "<<<>>>", "<html>", "<body></body>", "\x00" * 100, "<p>only one</p>"]:
        result = extract(parse_html(html))
        assert isinstance(result, Extraction)
    rng = random.Random(7)
    for _ in range(20):
        raw = bytes(rng.randrange(256) for _ in range(2000)).decode("latin-1")
        assert isinstance(extract_text(raw), str)


def test_random_tag_soup_does_not_raise() -> None:
    rng = random.Random(11)
    tags = ["div", "p", "span", "a", "ul", "li", "h2", "h1", "table", "td", "br", "article", "nav", "pre", "blockquote"]
    attrs = ["", ' class="share"', ' class="content"', ' id="comments"', " hidden", ' class="byline"', ' class="lede"']
    for _ in range(200):
        parts = []
        for _ in range(rng.randrange(1, 200)):
            roll = rng.random()
            if roll < 0.4:
                parts.append(f"<{rng.choice(tags)}{rng.choice(attrs)}>")
            elif roll < 0.6:
                parts.append(f"</{rng.choice(tags)}>")
            else:
                parts.append(rng.choice(["By Ann", "text, with commas, " * rng.randrange(1, 10), "\x00", "&amp;", "<"]))
        result = extract(parse_html("".join(parts)))
        assert all(block.text for block in result.blocks)


def test_nul_bytes_in_text() -> None:
    html = page("<p>Before\x00after, a paragraph with a NUL byte inside it, really.</p>")
    text = extract_text(html)
    assert "\x00" not in text
    assert "Before" in text and "after, a paragraph" in text


def test_100k_nested_divs_finish_quickly() -> None:
    html = "<html><body>" + "<div>" * 100_000 + "<p>" + PARAS[0] + "</p>" + "</div>" * 100_000 + "</body></html>"
    start = time.perf_counter()
    text = extract_text(html)
    assert time.perf_counter() - start < 5
    assert PARAS[0] in text


def test_1m_unclosed_p_tags_finish_quickly() -> None:
    html = "<html><body>" + "<p>word, " * 1_000_000 + "</body></html>"
    start = time.perf_counter()
    result = extract(parse_html(html))
    assert time.perf_counter() - start < 10
    assert isinstance(result, Extraction)


def test_huge_text_node() -> None:
    html = "<html><body><article><p>" + "lorem ipsum, " * 500_000 + "</p></article></body></html>"
    start = time.perf_counter()
    text = extract_text(html)
    assert time.perf_counter() - start < 5
    assert text.startswith("lorem ipsum,")
