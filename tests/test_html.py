"""HTML pages end to end: real pages with expectations, a quality gate, hostile input, encodings."""

from __future__ import annotations

import codecs
import gzip
import importlib.util
import json
import sys
import time
import unicodedata
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from normalizers import Article, SourceMeta
from normalizers.dispatch import HTML_NAME, HTML_VERSION, normalize
from normalizers.errors import Rejection, RejectReason
from normalizers.html import normalize as html_module
from normalizers.html.normalize import normalize_html
from normalizers.profile import HtmlSelectors, SourceProfile
from pipeline.ingest import DOCUMENT_TIME_BUDGET_S, TimeBudget

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "tests" / "fixtures" / "html"
EXPECTED: dict[str, dict[str, Any]] = json.loads((FIXTURES / "expected.json").read_text(encoding="utf-8"))
PROFILE = SourceProfile(name="pages")

# Pinned floors of the quality gate, a little under the scores measured when the gate
# was written (AEB metric, see bench/extraction.py: F1 0.989 over the 11 pages, the
# lowest page 0.962): a change that lowers extraction quality on these pages fails here.
MEAN_F1_FLOOR = 0.97
PAGE_F1_FLOOR = 0.93


def _load_bench(name: str) -> Any:
    """A script of bench/ as a module (bench/ is no package)."""
    spec = importlib.util.spec_from_file_location(f"bench_{name}", REPO / "bench" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


def _bench() -> Any:
    return _load_bench("extraction")


# Pinned floors of the metadata gate over the WCXB fixture pages (bench/metadata.py's metric),
# at the figures last measured: 3 of the 6 dated pages right and none wrong, author F1 0.944
# over 6 pages with an author, no spurious author on the 4 without, 10 of 10 titles exact.
WCXB = FIXTURES / "wcxb"
META_DATE_RIGHT_FLOOR = 3
META_WRONG_DATES_CEILING = 0
META_AUTHOR_F1_FLOOR = 0.9
META_SPURIOUS_CEILING = 0
META_TITLE_EXACT_FLOOR = 10


def _bench_metadata() -> Any:
    return _load_bench("metadata")


def test_metadata_quality_gate() -> None:
    """Date, authors and title of real pages against their gold (bench/metadata.py), against pinned floors."""
    bench = _bench_metadata()
    gold = json.loads((WCXB / "ground-truth.json").read_text(encoding="utf-8"))
    pages = [
        bench.Page(
            pid,
            g["url"],
            gzip.decompress((WCXB / f"{pid}.html.gz").read_bytes()),
            g["title"],
            g["author"],
            g["publish_date"],
        )
        for pid, g in sorted(gold.items())
    ]
    run = bench.newsflow()
    guesses = {page.page_id: run(page) for page in pages}
    scores = bench.score(pages, guesses)
    report = {p.page_id: (guesses[p.page_id], p.day, p.author, p.title) for p in pages}
    assert scores.right >= META_DATE_RIGHT_FLOOR, report
    assert scores.wrong <= META_WRONG_DATES_CEILING, report
    assert scores.author_f1 >= META_AUTHOR_F1_FLOOR, report
    assert scores.spurious <= META_SPURIOUS_CEILING, report
    assert scores.title_exact >= META_TITLE_EXACT_FLOOR, report


def _page(name: str) -> Article:
    raw = (FIXTURES / f"{name}.html.gz").read_bytes()
    result = normalize_html(raw, SourceMeta("pages", f"file:///fixtures/{name}.html.gz", f"{name}.html.gz"), PROFILE)
    assert isinstance(result, Article), result
    return result


def test_versions_agree() -> None:
    assert (html_module.NAME, html_module.VERSION) == (HTML_NAME, HTML_VERSION)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_real_page(name: str) -> None:
    exp = EXPECTED[name]
    art = _page(name)
    # Whitespace may differ (the gold texts have spaces inside quotes where the page had
    # inline tags), so snippets are compared with all whitespace removed.
    squeezed = "".join(art.text.split())
    for snippet in exp["must_contain"]:
        assert "".join(snippet.split()) in squeezed, snippet
    for snippet in exp["must_not_contain"]:
        assert "".join(snippet.split()) not in squeezed, snippet
    assert art.title in exp["title"]
    assert art.language == exp["language"]
    assert list(art.authors) == exp["authors"]
    published = art.published_date.isoformat() if art.date_source != "none" and art.published_date else None
    assert published == exp["published"]
    assert (art.date_precision is None) == (art.published_at is None)
    assert art.extraction == "generic"
    assert art.normalizer == "html"
    assert art.url is None or art.url.startswith("http")
    assert art.word_count > 50
    # `text` is the lede, headings and paragraphs, and nothing else.
    parts = [art.lede] if art.lede else []
    for section in art.sections:
        parts += ([section.heading] if section.heading else []) + list(section.paragraphs)
    assert art.text == "\n\n".join(parts)


def test_quality_gate() -> None:
    """The benchmark's metric (bench/extraction.py) over the fixture pages, against pinned floors."""
    bench = _bench()
    scores = {
        name: bench.PageScore(*bench.match(exp["gold"], _page(name).text), ms=0.0) for name, exp in EXPECTED.items()
    }
    per_page = {}
    for name, s in scores.items():
        p, r = bench.precision_score(s.tp, s.fp, s.fn), bench.recall_score(s.tp, s.fp, s.fn)
        per_page[name] = 2 * p * r / (p + r) if p + r else 0.0
    f1, _precision, _recall, _ms = bench.summarise(list(scores.values()))
    assert min(per_page.values()) >= PAGE_F1_FLOOR, per_page
    assert f1 >= MEAN_F1_FLOOR, (f1, per_page)


FAILURE_KINDS: dict[str, dict[str, Any]] = json.loads((FIXTURES / "failure_kinds.json").read_text(encoding="utf-8"))
# Each kind of page generic extraction used to get wrong must score at least this (the
# benchmark's metric), keep the gold's `with` snippets and leave out its `without` ones.
KIND_F1_FLOOR = 0.8


@pytest.mark.parametrize("name", sorted(FAILURE_KINDS))
def test_a_kind_of_page_that_used_to_fail(name: str) -> None:
    """Pages of the kinds that came out as junk (WCXB dev, CC-BY-4.0): the article, not the page's chrome."""
    case = FAILURE_KINDS[name]
    # The text is tested on every kind; whether the page would pass the default
    # min_confidence is not (a short article among long chrome can score low: BENCHMARKS.md).
    raw = (FIXTURES / f"{name}.html.gz").read_bytes()
    meta = SourceMeta("pages", f"file:///fixtures/{name}.html.gz", f"{name}.html.gz")
    art = normalize_html(raw, meta, SourceProfile(name="pages", min_confidence=0.0))
    assert isinstance(art, Article), art
    bench = _bench()
    s = bench.PageScore(*bench.match(case["gold"], art.text), ms=0.0)
    p, r = bench.precision_score(s.tp, s.fp, s.fn), bench.recall_score(s.tp, s.fp, s.fn)
    f1 = 2 * p * r / (p + r) if p + r else 0.0
    assert f1 >= KIND_F1_FLOOR, (case["kind"], f1, art.text[:300])
    squeezed = "".join(art.text.split())
    for snippet in case["must_contain"]:
        assert "".join(snippet.split()) in squeezed, snippet
    for snippet in case["must_not_contain"]:
        assert "".join(snippet.split()) not in squeezed, snippet
    assert art.extraction_confidence is not None and 0.0 <= art.extraction_confidence <= 1.0


def test_profile_selectors_win_and_fall_back() -> None:
    html = (
        b"<html><body><nav>Home News Sport</nav><h1>Page headline</h1>"
        b"<div class='story'><p>First paragraph of the story, long enough to count as text.</p>"
        b"<p>Second paragraph of the story with more words in it than a caption.</p>"
        b"<p class='promo'>Subscribe to our newsletter today for more.</p></div>"
        b"<span class='when' data-x='1'>2024-03-05T10:00:00+01:00</span>"
        b"<footer>Copyright</footer></body></html>"
    )
    meta = SourceMeta("site", "file:///p.html", "p.html")
    profile = SourceProfile(
        name="site",
        html=HtmlSelectors(body="div.story", title="h1", date="span.when", remove=(".promo",)),
    )
    art = normalize_html(html, meta, profile)
    assert isinstance(art, Article)
    assert art.extraction == "profile"
    assert art.title == "Page headline"
    assert "Subscribe" not in art.text and "Home News" not in art.text
    assert art.published_at is not None and art.published_at.isoformat() == "2024-03-05T09:00:00+00:00"
    assert art.date_source == "profile"
    # A body selector that matches nothing falls back to the generic path (this page's two
    # sentences are too little text for the default min_confidence: the fall-back is tested).
    other = SourceProfile(name="site", html=HtmlSelectors(body="article.none"), min_confidence=0.0)
    fallback = normalize_html(html, meta, other)
    assert isinstance(fallback, Article)
    assert fallback.extraction == "generic"
    assert "First paragraph of the story" in fallback.text


def test_a_byline_in_the_text_moves_to_byline_and_authors() -> None:
    body = "".join(
        f"<p>Paragraph {i} of the story, with enough words, commas, and length to count.</p>" for i in range(6)
    )
    byline = "<p class='byline'>By Jane Doe and John Roe</p>"
    page = f"<html><body><article><h1>Headline</h1>{byline}{body}</article></body></html>"
    art = normalize_html(page.encode(), SourceMeta("x", "file:///b.html", "b.html", mtime=1.7e9), PROFILE)
    assert isinstance(art, Article), art
    assert art.byline == "By Jane Doe and John Roe"
    assert art.authors == ("Jane Doe", "John Roe")
    assert "Jane Doe" not in art.text
    assert any(s.kind == "byline" for s in art.stripped)


# A hang guard, ten times the pipeline's per-document budget: a page that ignored the
# budget would take minutes, and a busy machine's slowest honest call stays far below.
HANG_GUARD_S = 10 * DOCUMENT_TIME_BUDGET_S


def _bounded(raw: bytes) -> Article | Rejection:
    """Normalise under the pipeline's time budget; the whole call (parse included) stays bounded."""
    start = time.monotonic()
    budget = TimeBudget(DOCUMENT_TIME_BUDGET_S)
    result = normalize_html(raw, SourceMeta("x", "file:///h.html", "h.html", mtime=1.7e9), PROFILE, budget=budget)
    assert time.monotonic() - start < HANG_GUARD_S
    return result


@pytest.mark.parametrize(
    "raw",
    [
        b"<div>" * 100_000 + b"<p>Deep text paragraph here with words.</p>" + b"</div>" * 100_000,
        b"<html><body>" + b"<p>x" * 1_000_000,
        b"<html><body><p>" + b"a" * 50_000_000 + b"</p></body></html>",
        b"<html><body><p>Some \x00 text with NUL bytes \x00 inside a paragraph.</p></body></html>",
    ],
    ids=["100k-nested-divs", "1M-unclosed-tags", "50MB-text-node", "nul-bytes"],
)
def test_hostile_html_is_bounded(raw: bytes) -> None:
    result = _bounded(raw)
    if isinstance(result, Article):
        assert "\x00" not in result.text
    else:
        assert result.reason in {
            RejectReason.NO_BODY,
            RejectReason.TOO_LARGE,
            RejectReason.BINARY,
            RejectReason.EXTRACTION_FAILED,
        }


class _Spent:
    """A budget already used up."""

    def expired(self) -> bool:
        return True


class _After:
    """A budget that expires after `n` checks."""

    def __init__(self, n: int) -> None:
        self.left = n

    def expired(self) -> bool:
        self.left -= 1
        return self.left < 0


@pytest.mark.parametrize("value", ['"1"', '"<>"', ""], ids=["quoted", "angle-brackets", "boolean"])
def test_a_tag_with_300k_attributes_is_cut_not_parsed(value: str) -> None:
    """Lexbor's time grows with the square of one tag's attributes: the flood is cut to the tag's name first."""
    attributes = " ".join(f"a{i}={value}" if value else f"a{i}" for i in range(300_000))
    raw = f"<html><body><article><div {attributes}>{_BODY}</div></article></body></html>".encode()
    result = _bounded(raw)
    assert isinstance(result, Article), result
    assert "Paragraph 5 of the story" in result.text
    assert any("attributes cut to their names" in w for w in result.warnings)


def test_the_time_budget_cuts_extraction_short_and_says_so() -> None:
    raw = (FIXTURES / "zdnet.html.gz").read_bytes()
    meta = SourceMeta("x", "file:///z.html", "z.html.gz", mtime=1.7e9)
    spent = normalize_html(raw, meta, PROFILE, budget=_Spent())
    if isinstance(spent, Rejection):
        assert spent.reason == RejectReason.TIMEOUT
    else:
        assert any("bound" in w for w in spent.warnings)
    full = normalize_html(raw, meta, PROFILE)
    assert isinstance(full, Article) and not any("bound" in w for w in full.warnings)
    for checks in (5, 50, 500):
        part = normalize_html(raw, meta, PROFILE, budget=_After(checks))
        if isinstance(part, Article):
            assert any("bound" in w for w in part.warnings) or part.text == full.text
            assert len(part.text) <= len(full.text)
        else:
            assert part.reason == RejectReason.TIMEOUT


def test_gzip_bomb_is_refused() -> None:
    bomb = gzip.compress(b"<p>" + b"a" * 60_000_000)
    result = _bounded(bomb)
    assert isinstance(result, Rejection) and result.reason == RejectReason.TOO_LARGE


def test_cp1251_page_labelled_utf8_is_not_mojibake() -> None:
    text = "Москва — столица России. Это длинный абзац текста статьи о городе и его жителях. " * 4
    page = f"<html><head><meta charset='utf-8'><title>Новости</title></head><body><p>{text}</p></body></html>"
    raw = page.encode("cp1251")
    art = normalize_html(
        raw, SourceMeta("x", "file:///r.html", "r.html", mtime=1.7e9), PROFILE, "text/html; charset=utf-8"
    )
    assert isinstance(art, Article), art
    assert "Москва — столица России." in art.text
    assert art.language == "ru"
    assert any("utf" in w.lower() for w in art.warnings)
    unlabelled = normalize_html(
        page.replace("<meta charset='utf-8'>", "").encode("cp1251"),
        SourceMeta("x", "file:///r.html", "r.html", mtime=1.7e9),
        PROFILE,
    )
    assert isinstance(unlabelled, Article) and "Москва — столица России." in unlabelled.text


def test_dispatch_by_format_and_name() -> None:
    page = b"<html><body><article><p>" + b"Words of a real paragraph in a page. " * 10 + b"</p></article></body></html>"
    meta = SourceMeta("x", "file:///a.html", "a.html", mtime=1.7e9)
    assert isinstance(normalize(page, meta, PROFILE, "auto"), Article)
    assert normalize(page, meta, PROFILE, "auto").normalizer == "html"  # type: ignore[union-attr]
    text_meta = SourceMeta("x", "file:///a.txt", "a.txt", mtime=1.7e9)
    assert normalize(b"Title\n\nA paragraph of text.\n", text_meta, PROFILE, "auto").normalizer == "text"  # type: ignore[union-attr]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.sampled_from(
            [
                "<div>",
                "</div>",
                "<p>",
                "</p>",
                "<a href='x'>",
                "</a>",
                "<nav>",
                "<script>",
                "<h2>",
                "<li>",
                "<ul>",
                "<table>",
                "<td>",
                "<!--",
                "-->",
                "<br>",
                "&amp;",
                "&#0;",
                "\x00",
                "text ",
                "more words here. ",
                "<",
            ]
        ),
        max_size=300,
    ),
    st.binary(max_size=200),
)
def test_random_and_mutated_html_never_raises(tokens: list[str], noise: bytes) -> None:
    raw = "".join(tokens).encode() + noise
    result = normalize_html(raw, SourceMeta("x", "file:///f.html", "f.html", mtime=1.7e9), PROFILE)
    assert isinstance(result, Article | Rejection)
    mutated = (FIXTURES / "panarmenian.html.gz").read_bytes()
    page = gzip.decompress(mutated)
    cut = len(noise) * 97 % len(page)
    result = normalize_html(
        page[:cut] + noise + page[cut:], SourceMeta("x", "file:///g.html", "g.html", mtime=1.7e9), PROFILE
    )
    assert isinstance(result, Article | Rejection)


# --- encodings the bytes do not show at a glance -------------------------------------------------

RUSSIAN = "Москва — столица России. Это длинный абзац текста статьи о городе и его жителях, с запятыми. " * 3
RUSSIAN_2 = "Второй абзац рассказывает о погоде, о транспорте и о ценах, и он тоже достаточно длинный. " * 3


def _russian_page(head: str = "") -> str:
    return (
        f"<html><head>{head}<title>Новости</title></head><body><article><h1>Новости</h1>"
        f"<p>{RUSSIAN}</p><p>{RUSSIAN_2}</p></article></body></html>"
    )


@pytest.mark.parametrize(
    ("bom", "codec"),
    [
        (codecs.BOM_UTF16_LE, "utf-16-le"),
        (codecs.BOM_UTF16_BE, "utf-16-be"),
        (codecs.BOM_UTF32_LE, "utf-32-le"),
        (codecs.BOM_UTF32_BE, "utf-32-be"),
    ],
)
def test_a_utf16_or_utf32_page_with_a_byte_order_mark_is_read(bom: bytes, codec: str) -> None:
    raw = bom + _russian_page('<meta charset="utf-8">').encode(codec)
    assert raw.count(b"\x00") > len(raw) // 20  # what the check on the bytes used to reject as binary
    art = normalize_html(raw, SourceMeta("x", "file:///u.html", "u.html", mtime=1.7e9), PROFILE)
    assert isinstance(art, Article), art
    assert art.text == f"{RUSSIAN.strip()}\n\n{RUSSIAN_2.strip()}"
    assert art.title == "Новости" and art.language == "ru"
    assert gzip.decompress(gzip.compress(raw)) == raw
    zipped = normalize_html(gzip.compress(raw), SourceMeta("x", "file:///u.html.gz", "u.html.gz", mtime=1.7e9), PROFILE)
    assert isinstance(zipped, Article) and zipped.text == art.text


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be"])
def test_a_utf16_page_declared_by_its_content_type_is_read(codec: str) -> None:
    raw = _russian_page().encode(codec)
    meta = SourceMeta("x", "https://news.example.com/u", "https://news.example.com/u", mtime=1.7e9)
    # "utf-16" is the WHATWG label for little-endian UTF-16.
    label = "utf-16" if codec == "utf-16-le" else "utf-16be"
    art = normalize_html(raw, meta, PROFILE, f"text/html; charset={label}")
    assert isinstance(art, Article), art
    assert RUSSIAN.strip() in art.text


def test_a_utf16_page_of_control_characters_is_still_binary() -> None:
    raw = codecs.BOM_UTF16_LE + ("<p>" + "\x01\x02\x03\x04" * 500 + "</p>").encode("utf-16-le")
    result = normalize_html(raw, SourceMeta("x", "file:///b.html", "b.html", mtime=1.7e9), PROFILE)
    assert isinstance(result, Rejection) and result.reason is RejectReason.BINARY


# --- gzip: truncated, several members ------------------------------------------------------------


def _fixture_page() -> bytes:
    return gzip.decompress((FIXTURES / "panarmenian.html.gz").read_bytes())


@pytest.mark.parametrize("keep", [0.1, 0.5, 0.9, -8])
def test_a_truncated_gzip_page_is_quarantined_as_truncated(keep: float) -> None:
    whole = (FIXTURES / "panarmenian.html.gz").read_bytes()
    # Cut inside the deflate data, or (-8) just before the trailer's CRC and length.
    cut = whole[: int(len(whole) * keep)] if keep > 0 else whole[: int(keep)]
    result = normalize_html(cut, SourceMeta("x", "file:///t.html.gz", "t.html.gz", mtime=1.7e9), PROFILE)
    assert isinstance(result, Rejection), result
    assert result.reason is RejectReason.TRUNCATED
    assert "truncated" in result.message


def test_gzip_members_one_after_another_decode_whole() -> None:
    page = _fixture_page()
    half = len(page) // 2
    members = gzip.compress(page[:half]) + gzip.compress(page[half:])
    meta = SourceMeta("x", "file:///m.html.gz", "m.html.gz", mtime=1.7e9)
    whole = normalize_html(gzip.compress(page), meta, PROFILE)
    split = normalize_html(members, meta, PROFILE)
    assert isinstance(whole, Article) and isinstance(split, Article), split
    assert split.text == whole.text and split.warnings == whole.warnings
    padded = normalize_html(members + b"\x00" * 512, meta, PROFILE)
    assert isinstance(padded, Article) and padded.text == whole.text and padded.warnings == whole.warnings
    trailing = normalize_html(members + b"junk", meta, PROFILE)
    assert isinstance(trailing, Article) and trailing.text == whole.text
    assert any("trailing" in w for w in trailing.warnings)
    cut_second = normalize_html(members[:-20], meta, PROFILE)
    assert isinstance(cut_second, Rejection) and cut_second.reason is RejectReason.TRUNCATED


# --- article URLs -------------------------------------------------------------------------------

_BODY = "".join(f"<p>Paragraph {i} of the story, with enough words, commas, and length to count.</p>" for i in range(6))


def _page_with(head: str, body: str = _BODY) -> bytes:
    return f"<html><head>{head}</head><body><article><h1>Headline</h1>{body}</article></body></html>".encode()


@pytest.mark.parametrize("bad", ["javascript:alert(document.domain)", "file:///etc/passwd", "data:text/html,x"])
def test_a_canonical_link_that_is_not_an_article_url_is_dropped_with_a_warning(bad: str) -> None:
    fetched = "https://news.example.com/story?utm_source=feed"
    meta = SourceMeta("x", fetched, fetched, mtime=1.7e9)
    art = normalize_html(_page_with(f'<link rel="canonical" href="{bad}">'), meta, PROFILE)
    assert isinstance(art, Article), art
    assert art.url == "https://news.example.com/story"  # the fetched URL, without tracking parameters
    assert any("canonical link" in w and repr(bad) in w for w in art.warnings)
    og = _page_with(f'<link rel="canonical" href="{bad}"><meta property="og:url" content="https://a.example/og">')
    art = normalize_html(og, meta, PROFILE)
    assert isinstance(art, Article) and art.url == "https://a.example/og"
    art = normalize_html(_page_with(f'<meta property="og:url" content="{bad}">'), meta, PROFILE)
    assert isinstance(art, Article) and art.url == "https://news.example.com/story"
    assert any("og:url" in w for w in art.warnings)


def test_a_sidecar_url_that_is_not_an_article_url_is_dropped_for_pages_too() -> None:
    sidecar = json.dumps({"url": "javascript:alert(1)"}).encode()
    head = '<link rel="canonical" href="https://a.example/c">'
    art = normalize_html(_page_with(head), SourceMeta("x", "file:///s.html", "s.html", 1.7e9, sidecar), PROFILE)
    assert isinstance(art, Article), art
    assert art.url == "https://a.example/c"
    assert any("sidecar url 'javascript:alert(1)'" in w for w in art.warnings)
    local = normalize_html(_page_with(""), SourceMeta("x", "file:///s.html", "s.html", 1.7e9, sidecar), PROFILE)
    assert isinstance(local, Article) and local.url is None  # a file's own location is no article URL


# --- dates from the future ----------------------------------------------------------------------

AS_OF = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)


def _dated_page(head: str, body: str = "", sidecar: bytes | None = None, mtime: float = 1.7e9) -> Article:
    meta = SourceMeta("x", "file:///d.html", "d.html", mtime, sidecar, as_of=AS_OF)
    art = normalize_html(_page_with(head, _BODY + body), meta, PROFILE)
    assert isinstance(art, Article), art
    return art


def _ld(**fields: object) -> str:
    return f'<script type="application/ld+json">{json.dumps({"@type": "NewsArticle", **fields})}</script>'


def test_a_future_page_date_falls_back_to_the_next_evidence() -> None:
    meta_tag = '<meta property="article:published_time" content="2024-05-30T08:00:00Z">'
    art = _dated_page(_ld(datePublished="2099-01-01T00:00:00Z") + meta_tag)
    assert (art.published_at, art.date_source) == (datetime(2024, 5, 30, 8, tzinfo=UTC), "meta")
    (warning,) = art.warnings
    assert "2099-01-01" in warning and "jsonld" in warning
    # Every page date in the future: the next evidence after the page is the file's mtime.
    future_meta = '<meta property="article:published_time" content="2030-01-01T00:00:00Z">'
    art = _dated_page(_ld(datePublished="2099-01-01T00:00:00Z") + future_meta, '<time datetime="2031-01-01">x</time>')
    assert (art.published_at, art.date_source) == (datetime.fromtimestamp(1.7e9, UTC), "mtime")
    assert [w.split(" from ")[1].split()[0] for w in art.warnings] == ["jsonld", "meta", "time"]


def test_a_future_sidecar_date_falls_back_to_the_page() -> None:
    sidecar = json.dumps({"published_at": "2999-12-31T00:00:00Z"}).encode()
    art = _dated_page(_ld(datePublished="2024-05-01T00:00:00Z"), sidecar=sidecar)
    assert (art.published_at, art.date_source) == (datetime(2024, 5, 1, tzinfo=UTC), "jsonld")
    assert any("2999-12-31" in w and "sidecar" in w for w in art.warnings)


def test_a_future_modification_date_is_dropped_with_a_warning() -> None:
    head = _ld(datePublished="2024-05-01T00:00:00Z", dateModified="2099-01-01T00:00:00Z")
    art = _dated_page(head + '<meta property="article:modified_time" content="2024-05-02T00:00:00Z">')
    assert art.modified_at == datetime(2024, 5, 2, tzinfo=UTC)
    assert any("modification date 2099-01-01" in w for w in art.warnings)
    art = _dated_page(_ld(datePublished="2024-05-01T00:00:00Z", dateModified="2099-01-01T00:00:00Z"))
    assert art.modified_at is None


def _updated_page(head: str, printed: str = "<p>Updated March 5, 2024</p>") -> Article:
    meta = SourceMeta("x", "file:///d.html", "d.html", 1.7e9, None, as_of=AS_OF)
    art = normalize_html(_page_with(head, printed + _BODY), meta, PROFILE)
    assert isinstance(art, Article), art
    return art


def test_a_page_dated_only_by_its_printed_update_is_dated_by_it() -> None:
    art = _updated_page("")
    assert (art.published_at, art.date_source) == (datetime(2024, 3, 5, tzinfo=UTC), "modified")
    assert art.date_precision == "day"
    assert (art.published_date, art.modified_at) == (date(2024, 3, 5), datetime(2024, 3, 5, tzinfo=UTC))


def test_a_stated_publication_date_beats_the_printed_update() -> None:
    art = _updated_page('<meta property="article:published_time" content="2024-01-05T08:00:00Z">')
    assert (art.published_at, art.date_source) == (datetime(2024, 1, 5, 8, tzinfo=UTC), "meta")


def test_a_modified_meta_tag_alone_dates_nothing() -> None:
    # CMSs restamp modification tags on every rebuild: the file time stays the fall-back.
    art = _updated_page('<meta property="article:modified_time" content="2024-03-05T08:00:00Z">', printed="")
    assert (art.published_at, art.date_source) == (datetime.fromtimestamp(1.7e9, UTC), "mtime")
    assert art.modified_at == datetime(2024, 3, 5, 8, tzinfo=UTC)


def test_publication_dates_that_disagree_are_not_replaced_by_the_update() -> None:
    # A missing date is better than a wrong one: the page states a publication date, only not one day.
    head = _ld(datePublished="2024-01-05T08:00:00Z") + '<meta property="article:published_time" content="2024-02-10">'
    art = _updated_page(head)
    assert (art.published_at, art.date_source) == (datetime.fromtimestamp(1.7e9, UTC), "mtime")


def test_a_future_printed_update_is_passed_over() -> None:
    art = _updated_page("", printed="<p>Updated March 5, 2031</p>")
    assert (art.published_at, art.date_source) == (datetime.fromtimestamp(1.7e9, UTC), "mtime")
    assert any("2031-03-05" in w and "modified" in w for w in art.warnings)


def test_a_future_file_time_is_no_date_either() -> None:
    art = _dated_page("", mtime=datetime(2030, 1, 1, tzinfo=UTC).timestamp())
    assert (art.published_at, art.date_source) == (None, "none")
    assert any("mtime" in w for w in art.warnings)


# --- implausible dates --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("head", "body", "evidence", "value"),
    [
        ('<meta property="article:published_time" content="2999-01-01T00:00:00Z">', "", "meta", "2999-01-01"),
        ('<meta property="article:published_time" content="9999-12-31">', "", "meta", "9999-12-31"),
        ('<meta property="article:published_time" content="+10000-01-01">', "", "meta", "+10000-01-01"),
        ('<meta property="article:published_time" content="0001-01-01">', "", "meta", "0001-01-01"),
        ('<meta name="date" content="1970-01-01T00:00:00Z">', "", "meta", "1970-01-01"),
        ("", '<time datetime="9999-12-31T23:59:59-05:00">x</time>', "time", "9999-12-31T23:59:59-05:00"),
        ('<link rel="canonical" href="https://example.com/2999/01/01/story">', "", "url", "2999-01-01"),
    ],
    ids=["meta-2999", "meta-9999", "meta-10000", "meta-0001", "meta-1970", "time-9999-offset", "url-2999"],
)
def test_implausible_page_dates_are_passed_over_with_a_warning(head: str, body: str, evidence: str, value: str) -> None:
    art = _dated_page(head, body)
    assert (art.published_at, art.date_source) == (datetime.fromtimestamp(1.7e9, UTC), "mtime")
    (warning,) = art.warnings
    assert value in warning and f"from {evidence} " in warning, warning


def test_an_implausible_jsonld_date_falls_back_to_the_next_page_date() -> None:
    meta_tag = '<meta property="article:published_time" content="2024-05-30T08:00:00Z">'
    art = _dated_page(_ld(datePublished="2999-01-01T00:00:00Z") + meta_tag)
    assert (art.published_at, art.date_source) == (datetime(2024, 5, 30, 8, tzinfo=UTC), "meta")
    (warning,) = art.warnings
    assert "2999-01-01" in warning and "from jsonld" in warning and "1995 to 2100" in warning
    # A plausible date first: the implausible ones after it are never reached, so never reported.
    art = _dated_page(meta_tag + '<meta name="date" content="0001-01-01">')
    assert (art.date_source, art.warnings) == ("meta", ())


def test_implausible_profile_and_modification_dates_are_reported() -> None:
    profile = SourceProfile(name="pages", html=HtmlSelectors(date="span.when"))
    meta = SourceMeta("x", "file:///d.html", "d.html", 1.7e9, as_of=AS_OF)
    head = _ld(datePublished="2024-05-01T00:00:00Z", dateModified="0001-01-01T00:00:00")
    raw = _page_with(head, '<span class="when">1 January 1066</span>' + _BODY)
    art = normalize_html(raw, meta, profile)
    assert isinstance(art, Article), art
    assert (art.published_at, art.date_source, art.modified_at) == (datetime(2024, 5, 1, tzinfo=UTC), "jsonld", None)
    assert len(art.warnings) == 2
    assert "publication date 1066-01-01" in art.warnings[0] and "from profile" in art.warnings[0]
    assert "modification date 0001-01-01" in art.warnings[1] and "from jsonld" in art.warnings[1]


def test_a_sidecar_date_before_1800_falls_back_to_the_page() -> None:
    sidecar = json.dumps({"published_at": "1600-01-01"}).encode()
    art = _dated_page(_ld(datePublished="2024-05-01T00:00:00Z"), sidecar=sidecar)
    assert (art.published_at, art.date_source) == (datetime(2024, 5, 1, tzinfo=UTC), "jsonld")
    (warning,) = art.warnings
    assert "1600-01-01" in warning and "from sidecar" in warning and "before 1800" in warning


# --- control characters -------------------------------------------------------------------------


def test_no_control_character_reaches_any_field_of_a_page() -> None:
    # json.dumps writes the ESC as \\u001b, which JSON-LD parsing turns back into ESC.
    jsonld = _ld(author={"@type": "Person", "name": "Jane\x1b Doe"})
    head = (
        "<title>Bell\x07 and escape\x1b[0m in a title</title>"
        '<meta name="description" content="A summary&#27; with &#x9d;controls">'
        '<meta property="og:site_name" content="Site&#x81;Name">'
        '<meta name="keywords" content="one&#7;, two\x1b">' + jsonld
    )
    body = (
        "<p>Escape \x1b[31m sequences, a bell \x07, a &#27; reference, &#x9b; C1 and\x7f DEL inside a long "
        "paragraph, with commas.</p><pre>line one\nline\ttwo</pre>"
        "<p>Joiners stay: \u0915\u094d\u200d\u0937 and \u0645\u200c\u06cc, in a paragraph long enough to count.</p>"
    )
    art = normalize_html(_page_with(head, _BODY + body), SourceMeta("x", "file:///c.html", "c.html", 1.7e9), PROFILE)
    assert isinstance(art, Article), art
    strings = [art.title, art.lede, art.text, art.byline, art.description, art.site_name, *art.authors, *art.tags]
    strings += [s.heading for s in art.sections] + [p for s in art.sections for p in s.paragraphs]
    for text in filter(None, strings):
        assert not any(unicodedata.category(c) == "Cc" for c in text.replace("\n\n", "")), repr(text)
    assert "\u200d" in art.text and "\u200c" in art.text
    assert "line one line two" in art.text
    assert art.title == "Bell and escape [0m in a title"
    assert art.authors == ("Jane Doe",) and art.tags == ("one", "two")


def test_bidi_controls_reach_no_field_of_a_page_and_joiners_and_marks_stay() -> None:
    rlo, pdf, lri, pdi = "\u202e", "\u202c", "\u2066", "\u2069"
    head = (
        f"<title>Title {rlo}reversed{pdf}</title>"
        f'<meta name="description" content="A summary{rlo} with an override">'
        f'<meta property="og:site_name" content="Site{lri}Name{pdi}">'
        f'<meta name="keywords" content="one{rlo}, two">' + _ld(author={"@type": "Person", "name": f"Jane {rlo}Doe"})
    )
    body = (
        f"<p>The lede has an {rlo}RTL override{pdf} and an {lri}isolate{pdi}, in a paragraph long enough.</p>"
        "<p>Marks stay: \u200fabc\u200e and joiners \u0915\u094d\u200d\u0937 \u0645\u200c\u06cc, long enough.</p>"
        + _BODY
    )
    art = normalize_html(_page_with(head, body), SourceMeta("x", "file:///b.html", "b.html", 1.7e9), PROFILE)
    assert isinstance(art, Article), art
    strings = [art.title, art.lede, art.text, art.byline, art.description, art.site_name, *art.authors, *art.tags]
    for text in filter(None, strings):
        assert not set(text) & set(f"{rlo}{pdf}{lri}{pdi}\u202a\u202b\u202d\u2067\u2068"), repr(text)
    assert art.lede == "The lede has an RTL override and an isolate, in a paragraph long enough."
    assert (art.description, art.site_name, art.authors) == ("A summary with an override", "SiteName", ("Jane Doe",))
    assert "\u200fabc\u200e" in art.text and "\u200d" in art.text and "\u200c" in art.text


def test_a_page_whose_article_lies_past_its_tag_cap_says_so() -> None:
    deep = b"<div>" * 200_000 + b"<h1>Deep</h1>" + _BODY.encode() + b"</div>" * 200_000
    meta = SourceMeta("x", "file:///d.html", "d.html", 1.7e9)
    got = normalize_html(b"<html><body>" + deep + b"</body></html>", meta, PROFILE)
    assert isinstance(got, Rejection) and got.reason is RejectReason.NO_BODY
    assert "page cut at its 200000th tag" in got.message


def test_article_text_of_symbols_only_is_no_body() -> None:
    """Dashes, ellipses and stars are no article, whatever the confidence threshold lets through."""
    para = "<p>\u2014 \u2026 \u2014 *** \u2014 \u2026 \u00ab \u00bb</p>"
    raw = f"<html><body><article><h1>Budget vote delayed</h1>{para * 8}</article></body></html>".encode()
    meta = SourceMeta("x", "file:///d.html", "d.html", 1.7e9)
    got = normalize_html(raw, meta, SourceProfile(name="pages", min_confidence=0.0))
    assert isinstance(got, Rejection) and got.reason is RejectReason.NO_BODY and "no words" in got.message
