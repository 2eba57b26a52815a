"""Properties of the normalisers over generated input (hypothesis)."""

from __future__ import annotations

import dataclasses
import gzip
import json
import unicodedata
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from normalizers import Article, Rejection, RejectReason, SourceMeta, SourceProfile, normalize_text
from normalizers.common import EARLIEST_DATE
from normalizers.html.normalize import normalize_html
from normalizers.profile import CUT_TO_END
from pipeline.config import load_config

# Hypothesis warns when the global `random` state changes while it draws an example. In
# a full test session the strategies below are not the ones drawing: once a flow test has
# run, Prefect's events client keeps a websocket open in its event-loop thread, and the
# `websockets` library draws each keepalive ping's payload from the global `random`
# (`random.getrandbits(32)`), at any moment. That warning is the only one ignored here.
pytestmark = pytest.mark.filterwarnings(
    "ignore:Do not use the `random` module inside strategies:hypothesis.errors.HypothesisDeprecationWarning"
)

REPO = Path(__file__).resolve().parent.parent
ANHA = load_config(REPO / "sources.toml").sources["anha"].profile
BERLIN = SourceProfile.from_mapping("berlin", {"timezone": "Europe/Berlin", "max_bytes": 4096})
PROFILES = st.sampled_from([ANHA, BERLIN])

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

_ASCII = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
# Letters of any script; NFC may recompose some, so expectations are compared in NFC.
letters = st.characters(categories=["Lu", "Ll", "Lo"])
words = st.one_of(
    st.text(alphabet=_ASCII, min_size=1, max_size=10),
    st.text(alphabet=letters, min_size=1, max_size=10),
)
sentences = st.lists(words, min_size=1, max_size=12).map(lambda ws: " ".join(ws) + ".")
paragraphs = st.lists(sentences, min_size=1, max_size=5)

# Sidecar values: right and wrong types, plausible and hostile dates.
_scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(max_size=30),
)
_zones = st.none() | st.timezones()
_date_text = st.one_of(
    st.datetimes(timezones=_zones).map(lambda d: d.isoformat()),
    # Valid timestamps at the edges of the representable range, where a UTC offset
    # pushes the converted value out of range.
    st.datetimes(max_value=datetime(1, 1, 2), timezones=_zones).map(lambda d: d.isoformat()),
    st.datetimes(min_value=datetime(9999, 12, 30), timezones=_zones).map(lambda d: d.isoformat()),
    st.text(max_size=30),
)
_sidecar_value = {
    "url": st.one_of(_scalar, st.from_regex(r"\A(https?|ftp)://[a-zA-Z0-9.\[\]:]{0,20}/[^#]{0,20}")),
    "title": _scalar,
    "published_at": st.one_of(_scalar, _date_text),
    "language": st.one_of(_scalar, st.sampled_from(["en", "en-US", "de_AT", "-", "EN"])),
    "authors": st.one_of(_scalar, st.lists(st.text(max_size=20), max_size=4), st.lists(_scalar)),
    "author": _scalar,
}
sidecar_json = st.fixed_dictionaries({}, optional=_sidecar_value).map(lambda d: json.dumps(d).encode())
sidecars = st.one_of(st.none(), sidecar_json, st.binary(max_size=200))

# Bidi embedding, override and isolate controls: never in output (they reorder text on screen).
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
# Whitespace, line breaks, control characters of every kind, bidi controls, and the format
# characters that are text (marks, joiners).
_odd = st.sampled_from(
    [
        "\x00", "\x01", "\x07", "\x08", "\t", "\n", "\x0b", "\x0c", "\r", "\r\n", "\x1b", "\x1c",
        "\x1f", "\x7f", "\x85", "\x9f", "\xa0", "\u1680", "\u2000", "\u200b", "\u2028", "\u2029",
        "\u202f", "\u3000", "\ufeff", "\ufffd", " ", *sorted(BIDI_CONTROLS), "\u200c", "\u200d", "\u200e",
        "\u200f", "\u061c",
    ]
)  # fmt: skip


def nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


# The time of ingest the generated documents are judged against (sidecar dates reach 9999).
AS_OF = datetime(2024, 6, 1, tzinfo=UTC)


def _meta(sidecar: bytes | None = None, key: str = "doc.txt") -> SourceMeta:
    return SourceMeta("anha", f"file:///data/{key}", key, 1_700_000_000.0, sidecar, as_of=AS_OF)


def _strings(value: Any, name: str) -> list[tuple[str, str]]:
    """Every string in an output value, with the field it sits in (`sections[].paragraphs`...)."""
    if isinstance(value, str):
        return [(name, value)]
    if isinstance(value, tuple | list):
        return [pair for item in value for pair in _strings(item, f"{name}[]")]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return [
            pair for f in dataclasses.fields(value) for pair in _strings(getattr(value, f.name), f"{name}.{f.name}")
        ]
    return []


def _assert_no_control_characters(article: Article) -> None:
    """No C0, DEL, C1 or bidi control character in any output string; `text` alone has its blank-line separators."""
    for name, value in _strings(article, "article"):
        text = value.replace("\n\n", "") if name == "article.text" else value
        bad = [c for c in text if unicodedata.category(c) == "Cc" or c in BIDI_CONTROLS]
        assert not bad, (name, value)


def _check_outcome(result: Article | Rejection) -> None:
    if isinstance(result, Rejection):
        assert result.reason is not RejectReason.INTERNAL_ERROR, result
        assert isinstance(result.reason, RejectReason)
        assert result.message
    else:
        assert isinstance(result, Article)
        assert result.text.strip()
        assert result.word_count == len(result.text.split())
        assert unicodedata.is_normalized("NFC", result.text)
        _assert_no_control_characters(result)
        assert result.url is None or result.url.startswith(("http://", "https://"))
        if result.published_at is not None:
            assert result.published_at.utcoffset() is not None
            assert not result.published_at.utcoffset()
            assert EARLIEST_DATE <= result.published_at <= AS_OF.replace(day=2)


@SETTINGS
@given(raw=st.binary(max_size=2000), sidecar=sidecars, profile=PROFILES)
def test_arbitrary_bytes_never_raise(raw: bytes, sidecar: bytes | None, profile) -> None:
    _check_outcome(normalize_text(raw, _meta(sidecar), profile))


@SETTINGS
@given(text=st.text(max_size=2000), sidecar=sidecars, profile=PROFILES)
def test_arbitrary_text_never_raises(text: str, sidecar: bytes | None, profile) -> None:
    _check_outcome(normalize_text(text.encode("utf-8"), _meta(sidecar), profile))


@SETTINGS
@given(sidecar=sidecar_json, profile=PROFILES)
def test_arbitrary_sidecar_never_internal_error(sidecar: bytes, profile) -> None:
    result = normalize_text(b"A title\n\nA lede paragraph.\n\nBody.\n", _meta(sidecar), profile)
    _check_outcome(result)
    if isinstance(result, Rejection):
        assert result.reason is RejectReason.BAD_SIDECAR


@SETTINGS
@given(
    parts=st.lists(st.one_of(st.text(max_size=40), _odd, sentences), min_size=1, max_size=40),
    sidecar=sidecars,
    profile=PROFILES,
)
def test_unicode_whitespace_and_controls_never_raise(parts: list[str], sidecar, profile) -> None:
    raw = "".join(parts).encode("utf-8")
    _check_outcome(normalize_text(raw, _meta(sidecar), profile))


@SETTINGS
@given(raw=st.binary(max_size=500) | st.text(max_size=500).map(str.encode), sidecar=sidecars)
def test_deterministic(raw: bytes, sidecar: bytes | None) -> None:
    first = normalize_text(raw, _meta(sidecar), ANHA)
    second = normalize_text(bytes(raw), _meta(sidecar), ANHA)
    assert first == second
    assert repr(first) == repr(second)


@st.composite
def documents(draw):
    """A title, a body of generated sentences (some under headings) and an optional tail."""
    title = "Headline " + " ".join(draw(st.lists(words, min_size=1, max_size=8)))
    body = draw(st.lists(paragraphs, min_size=1, max_size=8))
    if draw(st.booleans()):
        # A sentence that merely mentions other news is body text wherever it is.
        at = draw(st.integers(0, len(body)))
        body.insert(at, ["He said other news outlets ignored it."])
    headings: dict[int, str] = {}
    for i in range(1, len(body)):
        if draw(st.booleans()):
            headings[i] = "Section " + " ".join(draw(st.lists(words, min_size=1, max_size=5)))
    tag = draw(st.sampled_from([None, "T/ Xyz.", "H/ Desk."]))
    chrome = draw(st.sampled_from([None, "Other news", "Related stories"]))
    blank_lines = draw(st.booleans())
    blocks = [title]
    for i, para in enumerate(body):
        if i in headings:
            blocks.append(headings[i])
        blocks.append(" ".join(para))
    blocks += [line for line in (tag, chrome) if line is not None]
    sep = "\n\n" if blank_lines else "\n"
    eol = draw(st.sampled_from(["\n", "\r\n"]))
    raw = (sep.join(blocks) + "\n").replace("\n", eol)
    return raw, title, body, headings, tag, chrome


@pytest.mark.slow  # 200 generated articles, ~2-3 s
@SETTINGS
@given(doc=documents())
def test_never_loses_a_body_sentence(doc) -> None:
    raw, title, body, headings, tag, chrome = doc
    result = normalize_text(raw.encode("utf-8"), _meta(), ANHA)
    assert isinstance(result, Article), result
    assert result.title == nfc(title)
    for para in body:
        for sentence in para:
            assert nfc(sentence) in result.text
    assert result.lede == nfc(" ".join(body[0]))
    assert [s.heading for s in result.sections if s.heading is not None] == [
        nfc(h) for _, h in sorted(headings.items())
    ]
    assert result.byline == tag
    assert "Other news" not in result.text
    assert "Related stories" not in result.text
    if tag is not None:
        assert tag not in result.text
    assert [s.text for s in result.stripped] == [x for x in (tag, chrome) if x is not None]
    if any("other news" in s for para in body for s in para):
        assert "He said other news outlets ignored it." in result.text


@pytest.mark.slow  # 200 generated articles, ~2-3 s
@SETTINGS
@given(doc=documents(), inserts=st.lists(st.tuples(st.integers(0), _odd), max_size=6))
def test_stray_whitespace_and_controls_in_articles(doc, inserts) -> None:
    raw = doc[0]
    for at, char in inserts:
        i = at % (len(raw) + 1)
        raw = raw[:i] + char + raw[i:]
    result = normalize_text(raw.encode("utf-8"), _meta(), ANHA)
    _check_outcome(result)
    if isinstance(result, Article):
        assert not any(c != "\n" and unicodedata.category(c) == "Cc" for c in result.text)
        for para in result.text.split("\n\n"):
            assert para
            assert para == " ".join(para.split())
        for field in (result.title, result.lede, result.byline):
            assert field is None or field == " ".join(field.split())


# --- cut-to-end: a marker and the list of headlines after it -----------------------------------

MARKERS = st.sampled_from(["Other news", "Related stories", "Most read", "Read more:"])
# A headline: words without sentence punctuation.
headlines = st.lists(words, min_size=1, max_size=10).map(" ".join)
# Anything a line after a marker may be: headlines, prose, tags, share bars, markers, any text
# (no control characters: a NUL would make the file binary; no line breaks or blank lines,
# which would change how the file splits into paragraphs).
list_lines = st.one_of(
    headlines,
    sentences,
    st.sampled_from(["T/ Xyz.", "ANHA", "Share", "Other news", "Most read", "12 March 2024", "..."]),
    st.text(alphabet=st.characters(exclude_categories=["Cc", "Cs", "Zl", "Zp"]), max_size=60).filter(str.strip),
)
_EVERY_RULE = ("tail", "head", "any", CUT_TO_END)


@pytest.mark.slow  # 200 generated articles, ~2-3 s
@SETTINGS
@given(
    body=st.lists(st.one_of(paragraphs.map(" ".join), headlines), min_size=1, max_size=6),
    at=st.integers(0),
    marker=MARKERS,
    after=st.lists(list_lines, max_size=12),
    blank_lines=st.booleans(),
    tight=st.booleans(),
)
def test_a_cut_never_removes_the_last_body_paragraph(body, at, marker, after, blank_lines, tight) -> None:
    # A marker anywhere (before the lede too), any lines after it, then the rest of the body.
    assume(all(ANHA.match(p, _EVERY_RULE) is None for p in body))
    at %= len(body) + 1
    sep = "\n\n" if blank_lines else "\n"
    listed = ("\n" if tight else sep).join([marker, *after])
    raw = sep.join(["Headline of the story", *body[:at], listed, *body[at:]]) + "\n"
    result = normalize_text(raw.encode("utf-8"), _meta(), ANHA)
    _check_outcome(result)
    assert isinstance(result, Article), result
    # A cut never takes the lede (the first line after the title, the marker itself when it
    # comes first), so a body always stays; nothing above the marker goes, nor any prose after
    # it (headlines after it, body or not, may go with the list).
    assert nfc(body[0] if at else marker) in result.text
    for paragraph in body[:at]:
        assert nfc(paragraph) in result.text
    for paragraph in body[at:]:
        if paragraph.endswith("."):
            assert nfc(paragraph) in result.text


@pytest.mark.slow  # 200 generated articles, ~2-3 s
@SETTINGS
@given(doc=documents(), marker=MARKERS, items=st.lists(headlines, max_size=10), tight=st.booleans())
def test_a_list_of_headlines_after_an_article_changes_nothing_but_stripped(doc, marker, items, tight) -> None:
    raw = doc[0]
    assume(all(ANHA.match(h, ("tail", "any")) is None for h in items))
    eol = "\r\n" if "\r\n" in raw else "\n"
    blank_lines = eol * 2 in raw
    # In a file with blank lines the list is a paragraph of its own, one headline per line or
    # per paragraph; in one without, one per line.
    sep = eol if tight or not blank_lines else eol * 2
    listed = raw + (eol if blank_lines else "") + sep.join([marker, *items]) + eol
    base = normalize_text(raw.encode("utf-8"), _meta(), ANHA)
    result = normalize_text(listed.encode("utf-8"), _meta(), ANHA)
    assert isinstance(base, Article) and isinstance(result, Article), (base, result)
    assert (result.title, result.lede, result.sections, result.text, result.byline) == (
        base.title,
        base.lede,
        base.sections,
        base.text,
        base.byline,
    )
    assert [s.text for s in result.stripped] == [*(s.text for s in base.stripped), marker, *map(nfc, items)]


_SPACES = [chr(c) for c in range(0x3001) if chr(c).isspace()]
_ASCII_SPACES = [c for c in _SPACES if c.isascii()]


@SETTINGS
@given(
    text=st.text(alphabet=st.sampled_from([*_ASCII_SPACES, " ", "a", "b", "\x00"]), max_size=80)
    | st.text(alphabet=st.sampled_from([*_SPACES, " ", " ", "a", "b", "é", "”", "\u200b", "\x00"]), max_size=80)
)
def test_lines_are_folded_exactly_where_they_hold_odd_whitespace(text: str) -> None:
    # The fast paths in _blocks (which lines to fold) must give what folding every line gives.
    from normalizers.text import _blocks

    expected: list[list[tuple[int, str]]] = []
    current: list[tuple[int, str]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        folded = " ".join(line.split())
        if folded:
            current.append((number, folded))
        elif current:
            expected.append(current)
            current = []
    if current:
        expected.append(current)
    if len(expected) == 1:
        expected = [[line] for line in expected[0]]
    assert _blocks(text) == expected


# --- HTML ---------------------------------------------------------------------------------------

PAGES = SourceProfile(name="pages")
_html_tokens = st.sampled_from(
    [
        "<p>", "</p>", "<h2>", "</h2>", "<pre>", "</pre>", "<br>", "<li>", "<div>", "</div>", "<article>",
        "<title>", "</title>", "<h1>", "</h1>", '<meta name="description" content="', '<meta name="keywords" content="',
        '<meta property="og:site_name" content="', '<meta name="author" content="', '">',
        '<link rel="canonical" href="', '<script type="application/ld+json">{"@type": "NewsArticle", "author": "',
        '", "datePublished": "2999-01-01"}</script>', "&#27;", "&#x9d;", "&#x81;", "&#7;", "&#0;", "&#x85;",
        "javascript:alert(1)", "file:///etc/passwd", "https://example.com/a",
        "Words of a real paragraph, with commas, and enough length to count as text. ",
    ]
)  # fmt: skip
_html_parts = st.one_of(
    _html_tokens,
    _odd,
    st.text(max_size=20),
    st.sampled_from(["\x1b[31m", "\u200d", "\u200c", "&#x202e;", "&#8236;", "&#x2067;"]),
)


def _page_meta(sidecar: bytes | None = None) -> SourceMeta:
    return SourceMeta("pages", "file:///data/p.html", "p.html", 1_700_000_000.0, sidecar, as_of=AS_OF)


@SETTINGS
@given(raw=st.binary(max_size=2000), sidecar=sidecars)
def test_html_arbitrary_bytes_never_raise_nor_leak_controls(raw: bytes, sidecar: bytes | None) -> None:
    _check_outcome(normalize_html(raw, _page_meta(sidecar), PAGES))


@SETTINGS
@given(
    parts=st.lists(_html_parts, max_size=120),
    sidecar=st.none() | sidecar_json,
    codec=st.sampled_from(["utf-8", "utf-16", "gzip"]),
)
def test_html_controls_never_reach_an_output_string(parts: list[str], sidecar: bytes | None, codec: str) -> None:
    page = "".join(parts)
    raw = (
        gzip.compress(page.encode("utf-8", "surrogatepass")) if codec == "gzip" else page.encode(codec, "surrogatepass")
    )
    _check_outcome(normalize_html(raw, _page_meta(sidecar), PAGES))
