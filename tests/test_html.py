"""HTML pages end to end: real pages with expectations, a quality gate, hostile input, encodings."""

from __future__ import annotations

import gzip
import importlib.util
import json
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flows.ingest import DOCUMENT_TIME_BUDGET_S, TimeBudget
from normalizers import Article, SourceMeta
from normalizers.dispatch import HTML_NAME, HTML_VERSION, normalize
from normalizers.errors import Rejection, RejectReason
from normalizers.html import normalize as html_module
from normalizers.html.normalize import normalize_html
from normalizers.profile import HtmlSelectors, SourceProfile

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "tests" / "fixtures" / "html"
EXPECTED: dict[str, dict[str, Any]] = json.loads((FIXTURES / "expected.json").read_text(encoding="utf-8"))
PROFILE = SourceProfile(name="pages")

# Pinned floors of the quality gate, a little under the scores measured when the gate
# was written (AEB metric, see bench/extraction.py: F1 0.989 over the 11 pages, the
# lowest page 0.962): a change that lowers extraction quality on these pages fails here.
MEAN_F1_FLOOR = 0.97
PAGE_F1_FLOOR = 0.93


def _bench() -> Any:
    spec = importlib.util.spec_from_file_location("bench_extraction", REPO / "bench" / "extraction.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


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
    published = art.published_at.date().isoformat() if art.date_source != "none" and art.published_at else None
    assert published == exp["published"]
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
    # A body selector that matches nothing falls back to the generic path.
    other = SourceProfile(name="site", html=HtmlSelectors(body="article.none"))
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


def _bounded(raw: bytes, limit_s: float = 20.0) -> Article | Rejection:
    """Normalise under the pipeline's time budget; the whole call (parse included) stays bounded."""
    start = time.monotonic()
    budget = TimeBudget(DOCUMENT_TIME_BUDGET_S)
    result = normalize_html(raw, SourceMeta("x", "file:///h.html", "h.html", mtime=1.7e9), PROFILE, budget=budget)
    assert time.monotonic() - start < limit_s
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
        assert result.reason in {RejectReason.NO_BODY, RejectReason.TOO_LARGE, RejectReason.BINARY}


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
