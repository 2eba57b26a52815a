"""The parts both normalisers share (normalizers.assemble, common's input checks): one rule each, for both formats."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from normalizers.assemble import date_evidence, sections_of, word_count
from normalizers.common import MAX_CONTROL_SHARE, count_controls, too_large, unreadable
from normalizers.errors import Rejection, RejectReason
from normalizers.html.normalize import normalize_html
from normalizers.meta import Sidecar, SourceMeta
from normalizers.profile import SourceProfile
from normalizers.schema import Article, Section
from normalizers.text import normalize_text

PROFILE = SourceProfile(name="s", max_bytes=100_000)
AS_OF = datetime(2025, 1, 1, tzinfo=UTC)
MTIME = datetime(2024, 6, 1, 8, tzinfo=UTC).timestamp()
_PARAS = [f"Paragraph {i} of the story, with enough words, commas, and length to count." for i in range(6)]
TEXT = ("Headline\n\n" + "\n\n".join(_PARAS) + "\n").encode()
PAGE = (
    "<html><head></head><body><article><h1>Headline</h1>"
    + "".join(f"<p>{p}</p>" for p in _PARAS)
    + "</article></body></html>"
).encode()


def _both(text: bytes, page: bytes, meta: SourceMeta, profile: SourceProfile = PROFILE) -> list[Article | Rejection]:
    return [normalize_text(text, meta, profile), normalize_html(page, meta, profile)]


# --- Input checks --------------------------------------------------------------------------


def test_too_large_and_unreadable_say_why() -> None:
    assert too_large(10, 10) is None
    big = too_large(11, 10)
    assert big is not None and big.reason is RejectReason.TOO_LARGE and "11 bytes" in big.message
    for blank in ("", " \n\t", "\u00a0\u3000"):
        empty = unreadable(blank, 0, len(blank), "a text file")
        assert empty is not None and empty.reason is RejectReason.EMPTY
    text = "x" * 1000
    assert unreadable(text, 10, 1000, "a text file") is None  # exactly the share: kept
    binary = unreadable(text, 11, 1000, "an HTML page")
    assert binary is not None and binary.reason is RejectReason.BINARY and binary.message.endswith("an HTML page")


def test_control_characters_are_counted_alike_on_bytes_and_text() -> None:
    text = "a\x00b\x01\x1f\x7f\tc\nd\x0ce\rf\x0b" + "é\x85"  # tab, LF, FF, CR are layout; C1 is not counted
    assert count_controls(text) == count_controls(text.encode()) == 5


@pytest.mark.parametrize("share", [0.005, 0.01])
def test_a_document_at_most_one_percent_control_characters_is_read_by_both_normalisers(share: float) -> None:
    controls = int(len(TEXT) * share)
    results = _both(TEXT[:-1] + b"\x01" * controls, PAGE[:30] + b"\x01" * controls + PAGE[30:], _meta())
    assert all(isinstance(r, Article) for r in results), results


@pytest.mark.parametrize("share", [0.02, 0.049])
def test_past_one_percent_both_normalisers_call_it_binary(share: float) -> None:
    # The HTML normaliser's threshold was 5 %: a page a fiftieth control characters was read.
    results = _both(
        TEXT + b"\x01" * int(len(TEXT) * share * 1.1),
        PAGE[:30] + b"\x01" * int(len(PAGE) * share * 1.1) + PAGE[30:],
        _meta(),
    )
    assert [r.reason for r in results if isinstance(r, Rejection)] == [RejectReason.BINARY] * 2, results
    assert MAX_CONTROL_SHARE == 0.01


@pytest.mark.parametrize(
    ("text", "page", "reason"),
    [
        (b"", b"", RejectReason.EMPTY),
        (b" \n\t\n", b" \n\t\n", RejectReason.EMPTY),
        ("\u00a0\n\u3000".encode(), "\u00a0\n\u3000".encode(), RejectReason.EMPTY),
        (b"x" * 200_000, b"x" * 200_000, RejectReason.TOO_LARGE),
    ],
    ids=["empty", "whitespace", "unicode-whitespace", "too-large"],
)
def test_both_normalisers_reject_empty_and_oversized_input_alike(
    text: bytes, page: bytes, reason: RejectReason
) -> None:
    results = _both(text, page, _meta())
    assert all(isinstance(r, Rejection) for r in results), results
    assert {r.reason for r in results if isinstance(r, Rejection)} == {reason}
    assert len({r.message for r in results if isinstance(r, Rejection)}) == 1


# --- Sections and words ------------------------------------------------------------------------


def test_sections_group_paragraphs_under_the_heading_before_them() -> None:
    blocks = [("p0", False), ("H1", True), ("H2", True), ("p1", False), ("p2", False), ("H3", True)]
    assert sections_of(blocks) == (
        Section(None, ("p0",)),
        Section("H1", ()),  # a heading with nothing under it stays
        Section("H2", ("p1", "p2")),
        Section("H3", ()),
    )
    assert sections_of([]) == ()


@pytest.mark.parametrize("text", ["", "one", "two words", "a lede\n\nA heading\n\nand a paragraph of six words"])
def test_word_count_is_the_number_of_whitespace_separated_words(text: str) -> None:
    assert word_count(text) == len(text.split())


def test_both_normalisers_count_and_section_alike() -> None:
    text, page = _both(TEXT, PAGE, _meta())
    assert isinstance(text, Article) and isinstance(page, Article)
    assert (text.title, text.lede, text.sections, text.text, text.word_count) == (
        page.title,
        page.lede,
        page.sections,
        page.text,
        page.word_count,
    )


# --- Evidence order --------------------------------------------------------------------------


def _meta(uri: str = "file:///a", hint: datetime | None = None, sidecar: bytes | None = None) -> SourceMeta:
    key = uri if uri.startswith("http") else "a"
    return SourceMeta("s", uri, key, MTIME, sidecar, hint_published_at=hint, as_of=AS_OF)


def test_date_evidence_comes_in_one_order() -> None:
    own = [("dateline", datetime(2024, 3, 1, tzinfo=UTC))]
    fetched = _meta("https://example.com/a", hint=datetime(2024, 2, 1, tzinfo=UTC))
    assert [name for name, _ in date_evidence(Sidecar(), fetched, own)] == ["sidecar", "dateline", "feed", "fetched"]
    assert [name for name, _ in date_evidence(Sidecar(), _meta(), [])] == ["sidecar", "feed", "mtime"]


@pytest.mark.parametrize(
    ("hint", "sidecar", "source"),
    [
        (datetime(2024, 2, 1, tzinfo=UTC), None, "feed"),
        (None, None, "fetched"),
        (datetime(2024, 2, 1, tzinfo=UTC), json.dumps({"published_at": "2024-01-15"}).encode(), "sidecar"),
    ],
)
def test_both_normalisers_date_a_document_that_gives_no_date_of_its_own_alike(
    hint: datetime | None, sidecar: bytes | None, source: str
) -> None:
    """A fetched text file used to skip the feed's date and call the fetch time `mtime`."""
    results = _both(TEXT, PAGE, _meta("https://example.com/a?utm_source=x", hint, sidecar))
    assert all(isinstance(r, Article) for r in results), results
    dated = {(r.date_source, r.published_at, r.date_precision) for r in results if isinstance(r, Article)}
    assert len(dated) == 1 and next(iter(dated))[0] == source


def test_a_fetched_text_file_is_identified_by_its_url_as_a_page_is() -> None:
    """It used to have no URL, and an article_id from its key rather than its URL."""
    text, page = _both(TEXT, PAGE, _meta("https://Example.com:443/a?utm_source=x"))
    assert isinstance(text, Article) and isinstance(page, Article)
    assert (text.url, text.article_id) == (page.url, page.article_id)
    assert text.url == "https://example.com/a"
