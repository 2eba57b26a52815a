"""The plain-text normaliser on the seed, the sample corpus and hand-made edge cases."""

from __future__ import annotations

import codecs
import dataclasses
import json
import re
import unicodedata
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from normalizers import (
    DEFAULT_RULES,
    Article,
    ProfileError,
    Rejection,
    RejectReason,
    Section,
    SourceMeta,
    SourceProfile,
    normalize_text,
)
from normalizers.profile import CUT_TO_END
from normalizers.text import _LIST_MAX_LINES
from pipeline.config import load_config

REPO = Path(__file__).resolve().parent.parent
SEED = Path("samples/anha/000_db5c100688d27208.txt")
RELATED = Path("samples/anha/001_related_headlines.txt")
SEED_TITLE = "Kado: confirms timing of launching Turkish occupation attacks with ISIS insurgency"
SEED_HEADINGS = [
    "Strong relationship between Turkey and ISIS",
    "Put an end to Turkish state terrorism",
    "Imposing a no-fly zone over North and East Syria",
]
MTIME = 1_700_000_000.5

# Sentence ends: '.', '!' or '?', optionally followed by a closing quote.
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|(?<=[.!?][\"”’])\s+")


@pytest.fixture(scope="module")
def repo_root() -> Path:
    return REPO


@pytest.fixture(scope="module")
def config(repo_root: Path):
    return load_config(repo_root / "sources.toml")


@pytest.fixture(scope="module")
def anha(config) -> SourceProfile:
    return config.sources["anha"].profile


@pytest.fixture(scope="module")
def wire(config) -> SourceProfile:
    return config.sources["wire"].profile


@pytest.fixture(scope="module")
def seed_raw(repo_root: Path) -> bytes:
    return (repo_root / SEED).read_bytes()


@pytest.fixture(scope="module")
def seed(seed_raw: bytes, anha: SourceProfile) -> Article:
    result = normalize_text(seed_raw, _meta("anha", key=SEED.name), anha)
    assert isinstance(result, Article), result
    return result


def _meta(
    source: str = "x",
    key: str = "doc.txt",
    mtime: float | None = MTIME,
    sidecar: bytes | None = None,
) -> SourceMeta:
    return SourceMeta(source, f"file:///data/{source}/{key}", key, mtime, sidecar)


def _article(raw: bytes | str, profile: SourceProfile, **meta) -> Article:
    data = raw.encode() if isinstance(raw, str) else raw
    result = normalize_text(data, _meta(**meta), profile)
    assert isinstance(result, Article), result
    return result


def _rejection(raw: bytes | str, profile: SourceProfile, **meta) -> Rejection:
    data = raw.encode() if isinstance(raw, str) else raw
    result = normalize_text(data, _meta(**meta), profile)
    assert isinstance(result, Rejection), result
    return result


def _norm(text: str) -> str:
    return unicodedata.normalize("NFC", " ".join(text.split()))


def _sentences(text: str) -> list[str]:
    return [s for s in (_norm(p) for p in _SENTENCE_END.split(text)) if s]


def _plain() -> SourceProfile:
    return SourceProfile.from_mapping("x", {})


# --- the seed ---------------------------------------------------------------------------------


def test_seed_title_lede_and_sections(seed: Article) -> None:
    assert seed.title == SEED_TITLE
    assert seed.lede is not None
    assert seed.lede.startswith("The Secretary-General of the Kurdish Democratic Left Party")
    assert [s.heading for s in seed.sections if s.heading is not None] == SEED_HEADINGS
    first = seed.sections[0]
    assert first.heading is None
    assert len(first.paragraphs) == 1
    assert first.paragraphs[0].startswith("The attacks of the Turkish occupation state")
    assert all(s.paragraphs for s in seed.sections)
    assert seed.text.startswith(seed.lede)
    assert seed.title not in seed.text


def test_seed_tail_tag_goes_to_byline_and_chrome_is_dropped(seed: Article, seed_raw: bytes) -> None:
    assert seed.byline == "T/ Satt."
    assert "T/ Satt." not in seed.text
    assert not seed.text.rstrip().endswith("Satt.")
    lines = seed_raw.decode().splitlines()
    tag_line = lines.index("T/ Satt.") + 1
    chrome_line = lines.index("Other news") + 1
    assert [(s.rule, s.kind, s.text, s.line) for s in seed.stripped] == [
        ("anha-staff-tag", "byline", "T/ Satt.", tag_line),
        ("anha-other-news", "chrome", "Other news", chrome_line),
    ]
    for f in dataclasses.fields(Article):
        if f.name != "stripped":
            assert "Other news" not in repr(getattr(seed, f.name)), f.name


def test_seed_keeps_every_body_sentence_verbatim(seed: Article, seed_raw: bytes) -> None:
    lines = seed_raw.decode("utf-8").splitlines()
    assert lines[0] == SEED_TITLE
    body = lines[1 : lines.index("T/ Satt.")]
    sentences = [s for line in body for s in _sentences(line)]
    assert len(sentences) >= 15
    missing = [s for s in sentences if s not in seed.text]
    assert missing == []
    for heading in SEED_HEADINGS:
        assert f"\n\n{heading}\n\n" in seed.text


def test_seed_date_and_provenance(seed: Article, seed_raw: bytes) -> None:
    assert seed.date_source == "mtime"
    assert seed.published_at == datetime.fromtimestamp(MTIME, tz=UTC)
    assert seed.published_at.tzinfo is not None
    assert seed.source == "anha"
    assert seed.language == "en"
    assert seed.url is None
    assert seed.authors == ()
    assert seed.word_count == len(seed.text.split())
    assert seed.word_count > 500
    assert seed.normalizer == "text"
    assert len(seed.raw_sha256) == 64
    assert len(seed.article_id) == 32


def test_seed_is_deterministic(seed_raw: bytes, anha: SourceProfile) -> None:
    meta = _meta("anha", key=SEED.name)
    first = normalize_text(seed_raw, meta, anha)
    second = normalize_text(bytes(seed_raw), meta, anha)
    assert first == second
    assert isinstance(first, Article)
    assert repr(first) == repr(second)


# --- "other news" and tail rules ---------------------------------------------------------------


def test_sentence_mentioning_other_news_stays(anha: SourceProfile) -> None:
    raw = (
        "A title line\n\nThe lede paragraph says something.\n\n"
        "He said other news outlets ignored it.\n\nT/ Satt.\n\nOther news\n"
    )
    art = _article(raw, anha)
    assert "He said other news outlets ignored it." in art.text
    assert art.text.endswith("He said other news outlets ignored it.")
    assert art.byline == "T/ Satt."
    assert [s.text for s in art.stripped] == ["T/ Satt.", "Other news"]


def test_other_news_in_the_middle_stays_trailing_is_stripped(anha: SourceProfile) -> None:
    raw = (
        "A title line\n\nThe lede paragraph.\n\nOther news\n\n"
        "A body paragraph after the middle line.\n\nAnother paragraph.\n\nOther news\n"
    )
    art = _article(raw, anha)
    assert art.text.count("Other news") == 1
    assert "Other news\n\nA body paragraph after the middle line." in art.text
    assert [(s.rule, s.kind, s.text, s.line) for s in art.stripped] == [("anha-other-news", "chrome", "Other news", 11)]
    assert art.byline is None


def test_trailing_other_news_alone_is_stripped(anha: SourceProfile) -> None:
    art = _article("Title\n\nLede paragraph.\n\nBody.\n\n\nOther news", anha)
    assert "Other news" not in art.text
    assert art.text == "Lede paragraph.\n\nBody."
    assert [s.rule for s in art.stripped] == ["anha-other-news"]


# --- cut-to-end: a marker and the list of headlines after it ------------------------------------

HEADLINES = [
    "Water station in Hasakah resumes pumping after repairs",
    "Women's council in Kobani opens literacy courses",
    "Raqqa: farmers prepare for the cotton harvest",
    "Who will rebuild the bridges of Deir ez-Zor?",
]


@pytest.mark.parametrize("sep", ["\n\n", "\n"], ids=["blank-lines", "no-blank-lines"])
def test_seed_with_headlines_appended_cuts_them_and_keeps_the_tag(
    seed: Article, seed_raw: bytes, anha: SourceProfile, sep: str
) -> None:
    # The agency's real pages: `T/ Satt.`, `Other news`, then the related headlines.
    raw = seed_raw.decode() + sep + sep.join(HEADLINES) + "\n"
    art = _article(raw, anha, source="anha", key=SEED.name)
    lines = raw.splitlines()
    assert art.byline == "T/ Satt."
    assert [(s.rule, s.kind, s.text, s.line) for s in art.stripped] == [
        ("anha-staff-tag", "byline", "T/ Satt.", lines.index("T/ Satt.") + 1),
        *(("anha-other-news", "chrome", t, lines.index(t) + 1) for t in ["Other news", *HEADLINES]),
    ]
    # The same article as without the list: nothing of it in the text or a heading.
    assert art.text == seed.text
    assert art.sections == seed.sections
    assert [s.heading for s in art.sections if s.heading] == SEED_HEADINGS
    for line in ["T/ Satt.", "Other news", *HEADLINES]:
        assert line not in art.text
        assert all(line not in (s.heading or "") for s in art.sections)


def test_related_headlines_sample(repo_root: Path, anha: SourceProfile) -> None:
    raw = (repo_root / RELATED).read_bytes()
    art = _article(raw, anha, source="anha", key=RELATED.name)
    lines = raw.decode().splitlines()
    listed = lines[lines.index("Other news") + 1 :]
    headlines = [line for line in listed if line]
    assert len(headlines) == 5
    assert art.title == lines[0]
    assert art.byline == "T/ Hsm."
    assert [(s.rule, s.text) for s in art.stripped] == [
        ("anha-staff-tag", "T/ Hsm."),
        ("anha-other-news", "Other news"),
        *(("anha-other-news", h) for h in headlines),
    ]
    assert [s.heading for s in art.sections if s.heading] == [
        "Sowing delayed for a month",
        "High costs of diesel and fertilizers",
        "Calls to support small farmers",
    ]
    assert art.text.endswith("only for the support to arrive on time.”")
    for line in ["Other news", *headlines]:
        assert line not in art.text


def test_a_marker_in_the_middle_with_prose_after_it_is_not_cut(anha: SourceProfile) -> None:
    raw = (
        "A title line\n\nThe lede paragraph.\n\nOther news\n\nA short line\n\n"
        "The story goes on here, and this paragraph is prose.\n\nT/ Satt.\n"
    )
    art = _article(raw, anha)
    assert art.text == (
        "The lede paragraph.\n\nOther news\n\nA short line\n\nThe story goes on here, and this paragraph is prose."
    )
    assert [s.text for s in art.stripped] == ["T/ Satt."]


@pytest.mark.parametrize(
    "after",
    [
        # a sentence ends the list
        ["Water station resumes pumping", "The council said the work would take a week."],
        # so does a comma or a closing quote after a full stop
        ["Water station resumes pumping", "He said the station would reopen,"],
        ["Water station resumes pumping", 'He added: "It will reopen.”'],
        # two sentences in a short line are prose too
        ["Work resumed. Nobody knows when it ends"],
        # a long line is a paragraph
        ["word " * 40 + "end"],
    ],
)
def test_a_marker_is_not_cut_when_prose_follows(anha: SourceProfile, after: list[str]) -> None:
    raw = "Title\n\nThe lede paragraph.\n\nOther news\n\n" + "\n\n".join(after) + "\n"
    art = _article(raw, anha)
    assert "Other news" in art.text
    assert art.stripped == ()


def test_a_list_longer_than_the_limit_is_not_cut(anha: SourceProfile) -> None:
    items = [f"Headline number {i}" for i in range(_LIST_MAX_LINES)]
    raw = "Title\n\nThe lede paragraph.\n\nOther news\n\n" + "\n\n".join(items) + "\n"
    assert "Other news" in _article(raw, anha).text
    shorter = "Title\n\nThe lede paragraph.\n\nOther news\n\n" + "\n\n".join(items[1:]) + "\n"
    assert _article(shorter, anha).text == "The lede paragraph."


def test_a_marker_is_not_cut_when_no_body_would_stay(anha: SourceProfile) -> None:
    art = _article("Title\n\nOther news\n\nWater station resumes pumping\n", anha)
    assert art.title == "Title"
    assert art.text == "Other news\n\nWater station resumes pumping"
    # Without a title line the marker may not be the first line either.
    untitled = SourceProfile.from_mapping("x", {"title_line": False})
    art = _article("Other news\n\nWater station resumes pumping\n", untitled)
    assert art.text.startswith("Other news")
    assert art.stripped == ()


def test_a_marker_wrapped_inside_a_paragraph_is_not_cut(anha: SourceProfile) -> None:
    raw = "Title\n\nThe lede paragraph.\n\nThe minister told reporters about the\nother news\nof the week\n"
    art = _article(raw, anha)
    assert art.text.endswith("about the other news of the week")
    assert art.stripped == ()


def test_a_marker_ending_the_tag_paragraph_is_cut(anha: SourceProfile) -> None:
    raw = "Title\n\nThe lede paragraph.\n\nBody.\n\nT/ Satt.\nOther news\n\nWater station resumes pumping\n"
    art = _article(raw, anha)
    assert art.text == "The lede paragraph.\n\nBody."
    assert art.byline == "T/ Satt."
    assert [s.text for s in art.stripped] == ["T/ Satt.", "Other news", "Water station resumes pumping"]


def test_tags_and_share_bars_below_the_list_are_stripped_in_turn(anha: SourceProfile) -> None:
    raw = (
        "Title\n\nThe lede paragraph.\n\nBody.\n\nT/ Satt.\n\nOther news\n\n"
        "Water station resumes pumping\n\nANHA\n\nShare\n"
    )
    art = _article(raw, anha)
    assert art.text == "The lede paragraph.\n\nBody."
    assert art.byline == "T/ Satt.; ANHA"
    assert [(s.rule, s.text) for s in art.stripped] == [
        ("anha-staff-tag", "T/ Satt."),
        ("anha-other-news", "Other news"),
        ("anha-other-news", "Water station resumes pumping"),
        ("anha-agency-tag", "ANHA"),
        ("share-bar", "Share"),
    ]


def test_lines_under_a_second_marker_go_by_its_rule() -> None:
    raw = (
        "Title\n\nThe lede paragraph.\n\nBody.\n\nRelated stories\n\nWater station resumes pumping\n\n"
        "Most read\n\nWomen's council opens literacy courses\n\n12 March 2024\n"
    )
    art = _article(raw, _plain())
    assert art.text == "The lede paragraph.\n\nBody."
    assert [(s.rule, s.text) for s in art.stripped] == [
        ("related-links", "Related stories"),
        ("related-links", "Water station resumes pumping"),
        ("most-read", "Most read"),
        ("most-read", "Women's council opens literacy courses"),
        ("most-read", "12 March 2024"),
    ]


def test_the_built_in_list_markers_cut_to_the_end() -> None:
    assert {r.name for r in DEFAULT_RULES if r.where == CUT_TO_END} == {"related-links", "most-read", "read-more"}
    raw = "Title\n\nThe lede paragraph.\n\nBody.\n\nRead more:\n\nWater station resumes pumping\n"
    art = _article(raw, _plain())
    assert art.text == "The lede paragraph.\n\nBody."
    assert [s.rule for s in art.stripped] == ["read-more", "read-more"]


def test_a_cut_to_end_rule_is_a_config_block() -> None:
    rule = {"name": "x-more", "kind": "chrome", "where": "cut-to-end", "match": "More from the desk"}
    profile = SourceProfile.from_mapping("x", {"rules": [rule]})
    raw = "Title\n\nThe lede paragraph.\n\nBody.\n\nMore from the desk\n\nWater station resumes pumping\n"
    art = _article(raw, profile)
    assert art.text == "The lede paragraph.\n\nBody."
    assert [(s.rule, s.kind) for s in art.stripped] == [("x-more", "chrome"), ("x-more", "chrome")]
    # The same line under a tail rule goes alone: the headline after it stays.
    tail = SourceProfile.from_mapping("x", {"rules": [{**rule, "where": "tail"}], "default_rules": False})
    assert _article(raw, tail).text.endswith("More from the desk\n\nWater station resumes pumping")


def test_a_source_rule_wins_over_a_built_in_rule_for_the_same_line(anha: SourceProfile) -> None:
    assert anha.match("Other news", (CUT_TO_END,)).name == "anha-other-news"
    assert _plain().match("Other news", (CUT_TO_END,)).name == "related-links"


# --- profiles: a new source is a config block -----------------------------------------------


def test_new_source_tag_is_a_config_block() -> None:
    profile = SourceProfile.from_mapping(
        "x",
        {"rules": [{"name": "x-tag", "kind": "byline", "where": "tail", "match": "Reported by .{1,40}"}]},
    )
    raw = "Title of it\n\nThe lede.\n\nMore body text.\n\nReported by Jane Doe\n"
    art = _article(raw, profile)
    assert art.byline == "Reported by Jane Doe"
    assert "Reported by" not in art.text
    assert [(s.rule, s.kind) for s in art.stripped] == [("x-tag", "byline")]
    # Without the block, the same line is body text.
    plain = _article(raw, _plain())
    assert plain.byline is None
    assert plain.text.endswith("Reported by Jane Doe")


def test_profile_rule_only_matches_whole_lines() -> None:
    profile = SourceProfile.from_mapping(
        "x", {"rules": [{"name": "x-tag", "kind": "byline", "match": "Reported by .{1,40}"}]}
    )
    last = "The story was reported by Jane Doe and others on the scene, according to officials."
    art = _article(f"Title\n\nLede.\n\n{last}\n", profile)
    assert art.byline is None
    assert art.text.endswith(last)


@pytest.mark.parametrize(
    ("rule", "needle"),
    [
        ({"name": "r", "kind": "byline", "match": "(unclosed"}, "rules[0].match"),
        ({"name": "r", "kind": "footer", "match": "x"}, "rules[0].kind"),
        ({"name": "r", "kind": "byline", "match": "x", "pattern": "y"}, "pattern"),
        ({"name": "r", "kind": "byline", "where": "middle", "match": "x"}, "rules[0].where"),
        ({"kind": "byline", "match": "x"}, "rules[0].name"),
        ({"name": "r", "kind": "byline"}, "rules[0].match"),
    ],
)
def test_bad_rule_raises_profile_error_naming_the_key(rule: dict, needle: str) -> None:
    with pytest.raises(ProfileError) as info:
        SourceProfile.from_mapping("x", {"rules": [rule]})
    assert needle in str(info.value)
    assert "sources.x" in str(info.value)


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"max_bytes": 0}, "max_bytes"),
        ({"max_bytes": "big"}, "max_bytes"),
        ({"title_line": "yes"}, "title_line"),
        ({"language": ""}, "language"),
    ],
)
def test_bad_profile_option_raises_profile_error(data: dict, needle: str) -> None:
    with pytest.raises(ProfileError, match=needle):
        SourceProfile.from_mapping("x", data)


# --- rejections ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"", RejectReason.EMPTY),
        (b"   \n\t\r\n  \n", RejectReason.EMPTY),
        (b"\xef\xbb\xbf \n", RejectReason.EMPTY),
        (b"Title\n\nBody with a \x00 NUL byte in it.\n", RejectReason.BINARY),
        (b"Title\n\n" + b"\x01\x02\x03" * 20 + b"Body text.\n", RejectReason.BINARY),
        ("Caf\u00e9 story\n\nA body paragraph.\n".encode("latin-1"), RejectReason.INVALID_UTF8),
        (b"Just a title line\n", RejectReason.NO_BODY),
        (b"Just a title line\n\nOther news\n", RejectReason.NO_BODY),
        ("Budget vote delayed\n\n\u2014 \u2026 \u2014\n\n***\n".encode(), RejectReason.NO_BODY),
    ],
    ids=[
        "empty",
        "whitespace",
        "bom-whitespace",
        "nul",
        "controls",
        "latin1",
        "title-only",
        "chrome-only",
        "symbols-only",
    ],
)
def test_bad_input_is_rejected_not_raised(raw: bytes, reason: RejectReason, anha: SourceProfile) -> None:
    rejection = _rejection(raw, anha)
    assert rejection.reason is reason
    assert rejection.message


def test_too_large_is_rejected_at_the_limit() -> None:
    profile = SourceProfile.from_mapping("x", {"max_bytes": 100})
    base = b"Title\n\nA lede paragraph.\n\n"
    fits = base + b"x" * (100 - len(base))
    assert len(fits) == 100
    assert isinstance(normalize_text(fits, _meta(), profile), Article)
    rejection = _rejection(fits + b"y", profile)
    assert rejection.reason is RejectReason.TOO_LARGE
    assert "101" in rejection.message


@pytest.mark.parametrize(
    "sidecar",
    [
        b'{"url": "https://example.com/a"',
        b"not json at all",
        b"\xff\xfe{}",
        b"[1, 2, 3]",
        b'"just a string"',
    ],
    ids=["truncated", "garbage", "not-utf8", "list", "string"],
)
def test_malformed_sidecar_is_bad_sidecar(sidecar: bytes, anha: SourceProfile) -> None:
    rejection = _rejection("Title\n\nLede.\n", anha, sidecar=sidecar)
    assert rejection.reason is RejectReason.BAD_SIDECAR


@pytest.mark.parametrize(
    "data",
    [
        {"url": 5},
        {"title": ["a", "b"]},
        {"published_at": 1710000000},
        {"language": {"code": "en"}},
        {"authors": [1, 2]},
        {"authors": {"name": "Jane"}},
        {"author": 7},
    ],
)
def test_sidecar_with_wrong_types_is_bad_sidecar(data: dict, anha: SourceProfile) -> None:
    rejection = _rejection("Title\n\nLede.\n", anha, sidecar=json.dumps(data).encode())
    assert rejection.reason is RejectReason.BAD_SIDECAR
    assert next(iter(data)) in rejection.message


@pytest.mark.parametrize("value", ["yesterday", "2024-13-01", "2024-02-30T10:00:00", "12/03/2024"])
def test_sidecar_with_bad_published_at_is_bad_sidecar(value: str, anha: SourceProfile) -> None:
    sidecar = json.dumps({"published_at": value}).encode()
    rejection = _rejection("Title\n\nLede.\n", anha, sidecar=sidecar)
    assert rejection.reason is RejectReason.BAD_SIDECAR
    assert "published_at" in rejection.message


@pytest.mark.parametrize(
    "sidecar",
    [
        # json.loads raises RecursionError / ValueError (int digit limit), not JSONDecodeError.
        b"[" * 100_000,
        b'{"n": ' + b"1" * 5000 + b"}",
    ],
    ids=["deep-nesting", "huge-int"],
)
def test_hostile_sidecar_is_bad_sidecar_not_internal_error(sidecar: bytes, anha: SourceProfile) -> None:
    rejection = _rejection("Title\n\nLede.\n", anha, sidecar=sidecar)
    assert rejection.reason is RejectReason.BAD_SIDECAR, rejection


# --- sidecar metadata --------------------------------------------------------------------------


def test_sidecar_fields_land_in_the_record(anha: SourceProfile) -> None:
    sidecar = {
        "url": " HTTPS://Example.COM/News/Story?id=7#comments ",
        "title": "Sidecar  title",
        "published_at": "2024-03-12T10:30:00+02:00",
        "language": "en-US",
        "authors": ["By Jane Doe", "Jane  Doe", "jane doe", "John Roe", "  "],
    }
    art = _article("File title\n\nLede.\n\nBody.\n", anha, sidecar=json.dumps(sidecar).encode(), mtime=None)
    assert art.url == "https://example.com/News/Story?id=7"
    assert art.published_at == datetime(2024, 3, 12, 8, 30, tzinfo=UTC)
    assert art.date_source == "sidecar"
    assert art.language == "en"
    assert art.authors == ("Jane Doe", "John Roe")
    # The file's own title line is the headline; the sidecar title fills in when there is none.
    assert art.title == "File title"


def test_sidecar_title_used_without_a_title_line() -> None:
    profile = SourceProfile.from_mapping("x", {"title_line": False})
    sidecar = json.dumps({"title": "  The   sidecar title "}).encode()
    art = _article("First paragraph is the lede.\n\nSecond paragraph.\n", profile, sidecar=sidecar)
    assert art.title == "The sidecar title"
    assert art.lede == "First paragraph is the lede."


def test_sidecar_title_and_authors_are_nfc_as_the_text_is() -> None:
    profile = SourceProfile.from_mapping("x", {"title_line": False})
    decomposed = "Cafe\u0301 de Flore"  # "e" then a combining acute accent
    sidecar = json.dumps({"title": decomposed, "authors": ["Jose\u0301 Marti\u0301"]}).encode()
    art = _article("First paragraph is the lede.\n\nSecond paragraph.\n", profile, sidecar=sidecar)
    assert (art.title, art.authors) == ("Caf\u00e9 de Flore", ("Jos\u00e9 Mart\u00ed",))


def test_sidecar_single_author_string_and_bom(anha: SourceProfile) -> None:
    sidecar = b"\xef\xbb\xbf" + json.dumps({"author": "By Jane Doe", "language": "DE_at"}).encode()
    art = _article("Title\n\nLede.\n", anha, sidecar=sidecar)
    assert art.authors == ("Jane Doe",)
    assert art.language == "de"


def test_sidecar_naive_time_is_read_in_profile_timezone() -> None:
    profile = SourceProfile.from_mapping("x", {"timezone": "Europe/Berlin"})
    summer = json.dumps({"published_at": "2024-07-01T12:00:00"}).encode()
    winter = json.dumps({"published_at": "2024-01-15T12:00:00"}).encode()
    assert _article("T\n\nLede.\n", profile, sidecar=summer).published_at == datetime(2024, 7, 1, 10, 0, tzinfo=UTC)
    assert _article("T\n\nLede.\n", profile, sidecar=winter).published_at == datetime(2024, 1, 15, 11, 0, tzinfo=UTC)
    # A sidecar date wins over a dateline and the mtime.
    art = _article("T\n\nBERLIN, 3 May 2020 - Lede.\n", profile, sidecar=summer)
    assert art.date_source == "sidecar"


def test_article_id_uses_url_when_given_else_key(anha: SourceProfile) -> None:
    raw = "Title\n\nLede.\n"
    url_a = json.dumps({"url": "https://example.com/a"}).encode()
    url_a_caps = json.dumps({"url": "HTTPS://EXAMPLE.com/a#top"}).encode()
    url_b = json.dumps({"url": "https://example.com/b"}).encode()
    one = _article(raw, anha, source="anha", key="2024/one.txt", sidecar=url_a)
    two = _article(raw, anha, source="anha", key="2025/two.txt", sidecar=url_a)
    caps = _article(raw, anha, source="anha", key="three.txt", sidecar=url_a_caps)
    other = _article(raw, anha, source="anha", key="2024/one.txt", sidecar=url_b)
    elsewhere = _article(raw, anha, source="wire", key="2024/one.txt", sidecar=url_a)
    assert one.article_id == two.article_id == caps.article_id
    assert other.article_id != one.article_id
    assert elsewhere.article_id != one.article_id
    no_url_1 = _article(raw, anha, source="anha", key="2024/one.txt")
    no_url_2 = _article(raw, anha, source="anha", key="2025/two.txt")
    no_url_1_again = _article("Other title\n\nOther lede.\n", anha, source="anha", key="2024/one.txt")
    assert no_url_1.article_id != no_url_2.article_id
    assert no_url_1.article_id == no_url_1_again.article_id
    assert no_url_1.article_id != one.article_id


# --- datelines -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lede", "expected"),
    [
        ("QAMISHLO, 12 March 2024 - Officials met today.", datetime(2024, 3, 12, tzinfo=UTC)),
        ("QAMISHLO, 12 Mar. 2024 - Officials met today.", datetime(2024, 3, 12, tzinfo=UTC)),
        ("Washington, March 12, 2024 — Officials met today.", datetime(2024, 3, 12, tzinfo=UTC)),
        ("2024-03-12 - Officials met today.", datetime(2024, 3, 12, tzinfo=UTC)),
    ],
)
def test_dateline_at_start_of_lede(lede: str, expected: datetime, anha: SourceProfile) -> None:
    art = _article(f"Title\n\n{lede}\n\nBody.\n", anha)
    assert art.published_at == expected
    assert art.date_source == "dateline"


@pytest.mark.parametrize(
    "zone", ["Europe/Istanbul", "Europe/Berlin", "UTC", "America/Los_Angeles", "Pacific/Kiritimati"]
)
@pytest.mark.parametrize(
    ("lede", "day"),
    [
        ("QAMISHLO, 1 March 2024 - Officials met.", date(2024, 3, 1)),  # the issue's example: not 29 February
        ("QAMISHLO, 29 February 2024 - Officials met.", date(2024, 2, 29)),
        ("BERLIN, December 31, 2023 - Officials met.", date(2023, 12, 31)),
        ("2024-01-01 - Officials met.", date(2024, 1, 1)),
        ("HONOLULU, 30 April 2024 - Officials met.", date(2024, 4, 30)),
    ],
)
def test_a_dateline_keeps_its_calendar_day_in_every_zone(lede: str, day: date, zone: str) -> None:
    # A dateline gives a day, not an instant: the day stays the day whatever the source's zone.
    profile = SourceProfile.from_mapping("x", {"timezone": zone})
    art = _article(f"Title\n\n{lede}\n", profile)
    assert art.published_at == datetime(day.year, day.month, day.day, tzinfo=UTC)
    assert art.published_at.date() == day
    assert (art.published_date, art.date_precision, art.date_source) == (day, "day", "dateline")
    assert art.published_at_raw is not None and art.published_at_raw in lede and str(day.day) in art.published_at_raw


def test_an_mtime_date_is_to_the_second_with_no_raw_text(anha: SourceProfile) -> None:
    art = _article("Title\n\nLede.\n", anha)
    assert (art.date_source, art.date_precision, art.published_at_raw) == ("mtime", "second", None)
    assert art.published_date == datetime.fromtimestamp(MTIME, UTC).date()
    none = _article("Title\n\nLede.\n", anha, mtime=None)
    assert (none.published_date, none.date_precision, none.published_at_raw) == (None, None, None)


def _stamp(day: str) -> float:
    return datetime.fromisoformat(day).replace(tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    ("lede", "mtime", "expected"),
    [
        ("FRANKFURT, April 11 (Reuters) - Shares rose.", "2024-04-12", date(2024, 4, 11)),
        ("FRANKFURT, April 11 (Reuters) - Shares rose.", "2024-04-11", date(2024, 4, 11)),
        ("FRANKFURT, April 11 (Reuters) - Shares rose.", "2024-04-10", date(2024, 4, 11)),  # a day ahead: zones
        ("FRANKFURT, April 11 (Reuters) - Shares rose.", "2024-07-01", date(2024, 4, 11)),  # 81 days later
        ("QAMISHLO, 30 December - Talks resumed.", "2025-01-03", date(2024, 12, 30)),  # across new year
        ("QAMISHLO, Dec. 30: Talks resumed.", "2025-01-03", date(2024, 12, 30)),
        ("GENEVA, Feb 29 - Talks resumed.", "2024-03-02", date(2024, 2, 29)),
        ("FRANKFURT, April 11 (Reuters) - Shares rose.", "2024-04-08", None),  # would be in the file's future
        ("FRANKFURT, April 11 (Reuters) - Shares rose.", "2024-10-01", None),  # six months: too far to tell
        ("FRANKFURT, April 11 (Reuters) - Shares rose.", "2026-04-12", date(2026, 4, 11)),  # the file's year
        ("GENEVA, Feb 29 - Talks resumed.", "2025-03-02", None),  # no 29 February near it
    ],
)
def test_a_dateline_without_a_year_takes_the_year_of_a_nearby_file_date(
    lede: str, mtime: str, expected: date | None, anha: SourceProfile
) -> None:
    art = _article(f"Title\n\n{lede}\n", anha, mtime=_stamp(mtime))
    if expected is None:
        assert (art.date_source, art.published_date) == ("mtime", datetime.fromisoformat(mtime).date())
    else:
        assert (art.date_source, art.published_date, art.date_precision) == ("dateline", expected, "day")


def test_a_dateline_without_a_year_takes_the_sidecar_year_before_the_file_year(anha: SourceProfile) -> None:
    # The sidecar's date is the reference: a future one (passed over) dates the dateline in the
    # future too, which is passed over in turn; the file's mtime is used, never last year's guess.
    sidecar = json.dumps({"published_at": "2030-04-12T08:00:00Z"}).encode()
    meta = SourceMeta("x", "file:///data/x/doc.txt", "doc.txt", _stamp("2024-04-12"), sidecar, as_of=AS_OF)
    art = normalize_text(b"Title\n\nFRANKFURT, April 11 (Reuters) - Shares rose.\n", meta, anha)
    assert isinstance(art, Article), art
    assert (art.date_source, art.published_date) == ("mtime", date(2024, 4, 12))
    assert [w.split(" from ")[1].split()[0] for w in art.warnings] == ["sidecar", "dateline"]
    assert "2030-04-11" in art.warnings[1]
    # Without the check against the time of ingest, the sidecar's date wins anyway.
    meta = dataclasses.replace(meta, as_of=None)
    art = normalize_text(b"Title\n\nFRANKFURT, April 11 (Reuters) - Shares rose.\n", meta, anha)
    assert isinstance(art, Article) and art.date_source == "sidecar"


@pytest.mark.parametrize(
    "lede",
    [
        "May 5 people were hurt, officials said.",  # no place name: a sentence, not a dateline
        "FRANKFURT, April 11 people were hurt.",  # no bracket, dash or colon after the day
        "In April 11 of them left.",
    ],
)
def test_yearless_dates_outside_a_dateline_are_not_dates(lede: str, anha: SourceProfile) -> None:
    art = _article(f"Title\n\n{lede}\n", anha, mtime=_stamp("2024-04-12"))
    assert art.date_source == "mtime"


@pytest.mark.parametrize(
    "lede",
    [
        "Talks resumed on Monday, officials said, and a deal is expected on 12 March 2024.",
        "The ceasefire has held, officials said on 12 March 2024 in Qamishlo.",
        "QAMISHLO, 31 February 2024 - An impossible date.",
        "QAMISHLO, 2024-02-31 - An impossible date.",
        "QAMISHLO, 12 March 1066 - Out of range.",
    ],
    ids=["late-date", "after-verb", "feb-31", "iso-feb-31", "year-1066"],
)
def test_no_dateline_falls_back_to_mtime(lede: str, anha: SourceProfile) -> None:
    art = _article(f"Title\n\n{lede}\n\nBody.\n", anha)
    assert art.date_source == "mtime"
    assert art.published_at == datetime.fromtimestamp(MTIME, tz=UTC)
    none = _article(f"Title\n\n{lede}\n\nBody.\n", anha, mtime=None)
    assert none.date_source == "none"
    assert none.published_at is None


def test_dateline_month_with_unicode_case_fold_does_not_crash(anha: SourceProfile) -> None:
    # 'ſ' (LONG S) matches 's' under re.IGNORECASE, so the dateline regex accepts
    # "Auguſt" as a month; the month lookup must not then fail with KeyError.
    result = normalize_text("Title\n\nQAMISHLO, 12 Auguſt 2024 - Text.\n\nBody.\n".encode(), _meta(), anha)
    assert isinstance(result, Article), result
    assert result.date_source in ("dateline", "mtime")


# --- text clean-up -----------------------------------------------------------------------------


def test_crlf_bom_nbsp_tabs_and_spaces_are_normalised(anha: SourceProfile) -> None:
    raw = (
        b"\xef\xbb\xbfThe\xc2\xa0title \t line\r\n\r\n"
        b"The  lede\tparagraph\xc2\xa0has   odd\xe2\x80\x83spacing.\r\n\r\n"
        b"  Second paragraph.  \r\n\r\nT/ Satt.\r\n\r\nOther news\r\n"
    )
    art = _article(raw, anha)
    assert art.title == "The title line"
    assert art.lede == "The lede paragraph has odd spacing."
    assert art.text == "The lede paragraph has odd spacing.\n\nSecond paragraph."
    assert art.byline == "T/ Satt."
    for bad in ("\r", "\t", "\xa0", "\u2003", "\ufeff", "  "):
        assert bad not in art.text
        assert bad not in (art.title or "")


def test_paragraph_lines_are_joined(anha: SourceProfile) -> None:
    raw = "Title\n\nThe lede is wrapped\nover two lines.\n\nBody.\n"
    assert _article(raw, anha).lede == "The lede is wrapped over two lines."


def test_file_without_blank_lines_is_one_paragraph_per_line(anha: SourceProfile) -> None:
    raw = "The title\nFirst paragraph is the lede.\nSecond paragraph.\nThird paragraph.\nT/ Satt.\nOther news\n"
    art = _article(raw, anha)
    assert art.title == "The title"
    assert art.lede == "First paragraph is the lede."
    assert art.sections == (Section(None, ("Second paragraph.", "Third paragraph.")),)
    assert art.byline == "T/ Satt."
    assert art.text == "First paragraph is the lede.\n\nSecond paragraph.\n\nThird paragraph."


def test_nfd_input_gives_nfc_text(anha: SourceProfile) -> None:
    nfd = unicodedata.normalize("NFD", "Café in Zürich\n\nThe café reopened in Zürich.\n")
    assert nfd != unicodedata.normalize("NFC", nfd)
    art = _article(nfd, anha)
    assert art.title == "Café in Zürich"
    assert art.text == "The café reopened in Zürich."
    assert unicodedata.is_normalized("NFC", art.text)


def test_stray_control_characters_become_spaces(anha: SourceProfile) -> None:
    body = "A long enough body paragraph " * 10
    art = _article(f"Title\n\nThe\x07lede\x1bhere.\n\n{body}\n", anha)
    assert art.lede == "The lede here."


def test_short_lines_become_headings_only_when_followed_by_text(anha: SourceProfile) -> None:
    raw = (
        "Title\n\nLede.\n\nA sub heading\n\nParagraph under it.\n\n"
        '"A quoted line"\n\nNot a heading either.\n\nTrailing short line\n'
    )
    art = _article(raw, anha)
    assert art.sections == (
        Section(
            "A sub heading",
            (
                "Paragraph under it.",
                '"A quoted line"',
                "Not a heading either.",
                "Trailing short line",
            ),
        ),
    )


# --- the sample corpus -------------------------------------------------------------------------

_BAD = {
    "bad_binary.txt": RejectReason.BINARY,
    "bad_empty.txt": RejectReason.EMPTY,
    "bad_latin1.txt": RejectReason.INVALID_UTF8,
    "bad_sidecar.txt": RejectReason.BAD_SIDECAR,
}


def _wire_results(repo_root: Path, profile: SourceProfile) -> dict[str, Article | Rejection]:
    folder = repo_root / "samples" / "wire"
    out: dict[str, Article | Rejection] = {}
    for path in sorted(folder.glob("*.txt")):
        side = path.with_suffix(".json")
        sidecar = side.read_bytes() if side.exists() else None
        meta = SourceMeta("wire", path.as_uri(), path.name, path.stat().st_mtime, sidecar)
        out[path.name] = normalize_text(path.read_bytes(), meta, profile)
    return out


def test_wire_samples(repo_root: Path, wire: SourceProfile) -> None:
    results = _wire_results(repo_root, wire)
    assert len(results) == 24
    rejected = {name: r.reason for name, r in results.items() if isinstance(r, Rejection)}
    assert rejected == _BAD
    articles = {name: r for name, r in results.items() if isinstance(r, Article)}
    assert len(articles) == 20
    tagged = 0
    for name, art in articles.items():
        assert "Other news" not in art.text, name
        assert "H/ Desk." not in art.text, name
        assert "T/ Desk." not in art.text, name
        assert art.word_count > 100, name
        assert art.title, name
        assert art.language == "en", name
        if art.byline is not None:
            tagged += 1
            assert art.byline in ("T/ Desk.", "H/ Desk."), name
            assert [s.rule for s in art.stripped] == ["desk-tag", "related-links"], name
    assert tagged == 10


def test_wire_sidecar_metadata(repo_root: Path, wire: SourceProfile) -> None:
    results = _wire_results(repo_root, wire)
    folder = repo_root / "samples" / "wire"
    with_sidecar = 0
    for path in sorted(folder.glob("0*.json")):
        data = json.loads(path.read_bytes())
        art = results[path.with_suffix(".txt").name]
        assert isinstance(art, Article)
        with_sidecar += 1
        assert art.url is not None
        assert art.url.lower() == data["url"].strip().split("#")[0].lower()
        if "published_at" in data:
            assert art.date_source == "sidecar"
            assert art.published_at == datetime.fromisoformat(data["published_at"])
    assert with_sidecar == 14
    ids = [r.article_id for r in results.values() if isinstance(r, Article)]
    assert len(set(ids)) == len(ids)


def test_wire_bad_sidecar_article_is_fine_without_it(repo_root: Path, wire: SourceProfile) -> None:
    path = repo_root / "samples" / "wire" / "bad_sidecar.txt"
    result = normalize_text(path.read_bytes(), _meta("wire", key=path.name), wire)
    assert isinstance(result, Article)
    assert result.word_count > 100


def test_rules_with_back_references_and_named_groups_still_match_correctly() -> None:
    # Such rules cannot be joined into one alternation; they are matched one by one.
    profile = SourceProfile.from_mapping(
        "x",
        {
            "rules": [
                {"name": "echo", "kind": "chrome", "where": "tail", "match": r"(\w+) \1"},
                {"name": "tag", "kind": "byline", "where": "tail", "match": r"By (?P<who>\w+)"},
            ]
        },
    )
    assert profile.match("bye bye", ("tail",)).name == "echo"
    assert profile.match("bye now", ("tail",)) is None
    assert profile.match("By Jane", ("tail",)).name == "tag"
    assert profile.match("Other news", (CUT_TO_END,)).name == "related-links"
    raw = b"Title\n\nLede paragraph.\n\nBy Jane\n\nbye bye\n"
    article = normalize_text(raw, _meta(), profile)
    assert isinstance(article, Article)
    assert article.byline == "By Jane"
    assert [(s.rule, s.text) for s in article.stripped] == [("tag", "By Jane"), ("echo", "bye bye")]


# --- article URLs ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("javascript:alert(document.cookie)", "only http(s)"),
        ("file:///etc/passwd", "only http(s)"),
        ("data:text/html,<p>hi</p>", "only http(s)"),
        ("ftp://example.com/story", "only http(s)"),
        ("/news/story-1", "relative"),
        ("https:///no-host", "no host"),
        # urlsplit raises ValueError on an unbalanced IPv6 bracket: once a bad sidecar, now a dropped url.
        ("http://[::1/story", "not a valid URL"),
        ("https://example.com/a\x1b[31m", "control characters"),
    ],
)
def test_a_sidecar_url_that_is_not_an_article_url_is_dropped_with_a_warning(url: str, why: str) -> None:
    sidecar = json.dumps({"url": url, "title": "Kept"}).encode()
    art = _article("Title\n\nLede.\n", _plain(), key="2024/a.txt", sidecar=sidecar)
    assert art.url is None
    # Without a URL the id falls back to the key, as for a file without a sidecar.
    assert art.article_id == _article("Title\n\nLede.\n", _plain(), key="2024/a.txt").article_id
    assert len(art.warnings) == 1
    assert repr(url) in art.warnings[0] and why in art.warnings[0]
    fine = _article("Title\n\nLede.\n", _plain(), sidecar=json.dumps({"url": "HTTP://Example.com/a"}).encode())
    assert (fine.url, fine.warnings) == ("http://example.com/a", ())


def test_a_sidecar_language_that_is_not_a_code_is_dropped_with_a_warning(anha: SourceProfile) -> None:
    art = _article("Title\n\nLede.\n", anha, sidecar=json.dumps({"language": "Klingon"}).encode())
    assert art.language == "en"  # the source's
    assert any("'Klingon'" in w for w in art.warnings)
    named = _article("Title\n\nLede.\n", anha, sidecar=json.dumps({"language": "German"}).encode())
    assert (named.language, named.warnings) == ("de", ())


# --- dates from the future ---------------------------------------------------------------------

AS_OF = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)


def _dated(raw: str, as_of: datetime | None = AS_OF, mtime: float | None = MTIME, **sidecar: str) -> Article:
    meta = SourceMeta("x", "file:///data/x/doc.txt", "doc.txt", mtime, json.dumps(sidecar).encode(), as_of=as_of)
    result = normalize_text(raw.encode(), meta, _plain())
    assert isinstance(result, Article), result
    return result


@pytest.mark.parametrize("future", ["2999-01-01T00:00:00Z", "9999-12-31T00:00:00", "2024-06-02T12:00:01Z"])
def test_a_future_sidecar_date_falls_back_to_the_dateline(future: str) -> None:
    art = _dated("Title\n\nQAMISHLO, 12 March 2024 - Lede.\n", published_at=future)
    assert (art.published_at, art.date_source) == (datetime(2024, 3, 12, tzinfo=UTC), "dateline")
    (warning,) = art.warnings
    assert "sidecar" in warning and future[:4] in warning and "2024-06-01T12:00:00+00:00" in warning


def test_each_future_evidence_falls_back_to_the_next() -> None:
    sidecar = {"published_at": "2030-01-01T00:00:00Z"}
    # sidecar and dateline in the future: the file's mtime.
    art = _dated("Title\n\nQAMISHLO, 12 March 2099 - Lede.\n", **sidecar)
    assert (art.published_at, art.date_source) == (datetime.fromtimestamp(MTIME, UTC), "mtime")
    assert [w.split(" from ")[1].split()[0] for w in art.warnings] == ["sidecar", "dateline"]
    # ... and the mtime too (a clock set wrong): no date, which the pipeline quarantines as no_date.
    art = _dated("Title\n\nLede.\n", mtime=datetime(2031, 1, 1, tzinfo=UTC).timestamp(), **sidecar)
    assert (art.published_at, art.date_source) == (None, "none")
    assert "mtime" in art.warnings[-1] and "2031-01-01" in art.warnings[-1]
    # Up to a day ahead is tolerated (time zones, clock skew).
    art = _dated("Title\n\nLede.\n", published_at="2024-06-02T11:59:59Z")
    assert (art.date_source, art.warnings) == ("sidecar", ())


def test_without_a_time_of_ingest_no_date_is_judged() -> None:
    # Normalisers read no clock: a caller that passes no `as_of` gets the old, unchecked result.
    art = _dated("Title\n\nLede.\n", as_of=None, published_at="2999-01-01T00:00:00Z")
    assert (art.published_at, art.date_source, art.warnings) == (datetime(2999, 1, 1, tzinfo=UTC), "sidecar", ())


# --- encodings ---------------------------------------------------------------------------------

# Real-looking news texts in the legacy encodings text dumps still arrive in.
LEGACY_TEXTS = {
    "cp1251": (
        "Правительство объявило новые меры поддержки\n\n"
        "МОСКВА, 12 марта 2024 — Правительство России объявило о новых мерах поддержки экономики. "
        "Министр финансов заявил, что бюджет будет сбалансирован в следующем году.\n\n"
        "Инфляция, по прогнозам, снизится до четырёх процентов к концу года, а рост зарплат продолжится.\n"
    ),
    "cp1252": (
        "Café owners welcome the new rules\n\n"
        "The café owners of Zürich and São Paulo said the rules were “long overdue” — and that the €5 fee "
        "was fair. “It’s a relief,” said Ana Muñoz, who runs a crêperie.\n\n"
        "The council’s decision follows a year of débats and protests; the next vote is in März.\n"
    ),
    "shift_jis": (
        "政府が新たな経済対策を発表\n\n"
        "日本政府は水曜日、新たな経済対策を発表した。物価高に対応するため、家計への支援を拡充する。\n\n"
        "財務大臣は記者会見で、来年度の予算は均衡すると述べた。\n"
    ),
    "gb18030": (
        "政府宣布新的经济刺激措施\n\n"
        "中国政府周三宣布了新的经济刺激措施，以支持国内消费和就业。\n\n"
        "财政部长在新闻发布会上表示，明年的预算将保持平衡，通货膨胀率将下降。\n"
    ),
}


def _parts(text: str) -> tuple[str, list[str]]:
    title, *paragraphs = [p.strip() for p in text.split("\n\n")]
    return title, paragraphs


@pytest.mark.parametrize("codec", sorted(LEGACY_TEXTS))
def test_a_named_encoding_decodes_legacy_text(codec: str) -> None:
    raw = LEGACY_TEXTS[codec].encode(codec)
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")
    assert _rejection(raw, _plain()).reason is RejectReason.INVALID_UTF8
    art = _article(raw, SourceProfile.from_mapping("x", {"encoding": codec.upper().replace("_", "-")}))
    title, paragraphs = _parts(LEGACY_TEXTS[codec])
    assert (art.title, art.text, art.warnings) == (title, "\n\n".join(paragraphs), ())


@pytest.mark.parametrize("codec", sorted(LEGACY_TEXTS))
def test_auto_encoding_detects_legacy_text_and_says_so(codec: str) -> None:
    raw = LEGACY_TEXTS[codec].encode(codec)
    art = _article(raw, SourceProfile.from_mapping("x", {"encoding": "auto"}))
    title, paragraphs = _parts(LEGACY_TEXTS[codec])
    assert (art.title, art.text) == (title, "\n\n".join(paragraphs))
    (warning,) = art.warnings
    assert "not UTF-8" in warning and "detect" in warning


def test_auto_encoding_keeps_utf8_as_utf8_without_a_warning() -> None:
    text = LEGACY_TEXTS["cp1251"]
    art = _article(text.encode("utf-8"), SourceProfile.from_mapping("x", {"encoding": "auto"}))
    assert (art.title, art.warnings) == (_parts(text)[0], ())


def test_auto_encoding_reads_the_latin1_sample(repo_root: Path) -> None:
    path = repo_root / "samples" / "wire" / "bad_latin1.txt"
    art = _article(path.read_bytes(), SourceProfile.from_mapping("x", {"encoding": "auto"}))
    assert art.title == "Café owners in Zürich protest new rules"
    assert "the façade repairs" in art.text and "Señor Muñoz" in art.text
    assert len(art.warnings) == 1


def test_invalid_utf8_says_how_to_read_another_encoding() -> None:
    rejection = _rejection(LEGACY_TEXTS["cp1252"].encode("cp1252"), _plain())
    assert rejection.reason is RejectReason.INVALID_UTF8
    assert "byte 3 " in rejection.message  # the é of "Café"
    assert "`encoding`" in rejection.message and '"auto"' in rejection.message


def test_bytes_invalid_in_a_named_encoding_are_quarantined_naming_it_and_the_offset() -> None:
    head = "Заголовок\n\nТекст статьи.\n".encode("cp1251")
    raw = head + b"\x98 tail\n"  # 0x98 is the one byte cp1251 leaves undefined
    rejection = _rejection(raw, SourceProfile.from_mapping("x", {"encoding": "windows-1251"}))
    assert rejection.reason is RejectReason.INVALID_ENCODING
    assert "cp1251" in rejection.message and f"byte {len(head)} " in rejection.message


BOMS = {
    "utf-8": codecs.BOM_UTF8,
    "utf-16-le": codecs.BOM_UTF16_LE,
    "utf-16-be": codecs.BOM_UTF16_BE,
    "utf-32-le": codecs.BOM_UTF32_LE,
    "utf-32-be": codecs.BOM_UTF32_BE,
}


@pytest.mark.parametrize("codec", sorted(BOMS))
def test_a_byte_order_mark_wins_over_the_source_encoding(codec: str) -> None:
    text = LEGACY_TEXTS["cp1251"]
    art = _article(BOMS[codec] + text.encode(codec), SourceProfile.from_mapping("x", {"encoding": "cp1252"}))
    assert (art.title, art.text) == (_parts(text)[0], "\n\n".join(_parts(text)[1]))


def test_utf16_text_without_a_mark_needs_the_encoding_named() -> None:
    raw = LEGACY_TEXTS["gb18030"].encode("utf-16-le")
    assert _rejection(raw, _plain()).reason is RejectReason.BINARY
    art = _article(raw, SourceProfile.from_mapping("x", {"encoding": "utf-16-le"}))
    assert art.title == _parts(LEGACY_TEXTS["gb18030"])[0]
    # A UTF-16 file of control characters is still binary, judged on its decoded text.
    binary = ("Title\n\n" + "\x01\x02\x03" * 20 + "Body.\n").encode("utf-16-le")
    assert _rejection(binary, SourceProfile.from_mapping("x", {"encoding": "utf-16-le"})).reason is RejectReason.BINARY


# --- control characters ------------------------------------------------------------------------


def test_no_control_character_reaches_a_field_from_the_sidecar() -> None:
    profile = SourceProfile.from_mapping("x", {"title_line": False})
    sidecar = json.dumps({"title": "The\x1b[1m title\x07", "authors": ["Jane\x00 Doe", "\x9bJohn Roe"]}).encode()
    art = _article("The lede\u0085with a NEL and a \u009b CSI.\n\nBody.\n", profile, sidecar=sidecar)
    assert art.title == "The [1m title"
    assert art.authors == ("Jane Doe", "John Roe")
    assert art.lede == "The lede with a NEL and a CSI."


def test_bidi_controls_are_removed_from_every_field_and_joiners_and_marks_stay() -> None:
    # U+202E (RLO) and U+202C (PDF) would show "txt.exe" as "exe.txt"; isolates (U+2066-2069) likewise.
    profile = SourceProfile.from_mapping("x", {"title_line": False})
    sidecar = json.dumps({"title": "Side\u202etitle\u202c", "authors": ["Jane \u2067Doe\u2069"]}).encode()
    raw = (
        "The lede has an \u202eRTL override\u202c and \u2066isolates\u2069 in it.\n\n"
        "Joiners \u0915\u094d\u200d\u0937 \u0645\u200c\u06cc and marks \u200fabc\u200e stay.\n"
    )
    art = _article(raw, profile, sidecar=sidecar)
    assert art.lede == "The lede has an RTL override and isolates in it."
    assert art.title == "Sidetitle" and art.authors == ("Jane Doe",)
    assert "Joiners \u0915\u094d\u200d\u0937 \u0645\u200c\u06cc and marks \u200fabc\u200e stay." in art.text
    # The same from a file in another encoding (decoded text takes the other path).
    utf16 = _article(codecs.BOM_UTF16_LE + raw.encode("utf-16-le"), profile)
    assert (utf16.lede, utf16.text) == (art.lede, art.text)


# --- implausible dates -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "stated",
    [
        "9999-12-31T23:59:59-05:00",
        "9999-12-31T23:59:59-01:00",
        "0001-01-01T00:00:00+05:00",
        "0001-01-01T00:00:00+01:00",
    ],
)
def test_a_sidecar_date_past_the_years_a_timestamp_holds_is_passed_over_not_quarantined(stated: str) -> None:
    # Valid ISO 8601, but no date once in UTC: the date is passed over, the file is not bad.
    art = _dated("Title\n\nQAMISHLO, 12 March 2024 - Lede.\n", published_at=stated)
    assert (art.published_at, art.date_source) == (datetime(2024, 3, 12, tzinfo=UTC), "dateline")
    (warning,) = art.warnings
    assert stated in warning and "from sidecar" in warning and "years 1 to 9999" in warning
    assert "ISO" not in warning and "format" not in warning


@pytest.mark.parametrize("stated", ["0001-01-01", "1600-01-01", "1799-12-31T23:59:59Z", "1753-01-01T00:00:00"])
def test_a_sidecar_date_before_1800_is_passed_over_with_a_warning(stated: str) -> None:
    art = _dated("Title\n\nQAMISHLO, 12 March 2024 - Lede.\n", published_at=stated)
    assert (art.published_at, art.date_source) == (datetime(2024, 3, 12, tzinfo=UTC), "dateline")
    (warning,) = art.warnings
    assert stated[:4] in warning and "from sidecar" in warning and "before 1800" in warning
    # Without a time of ingest too: the floor is no clock rule.
    assert _dated("Title\n\nLede.\n", as_of=None, published_at=stated).date_source == "mtime"


def test_the_floor_admits_old_news_and_applies_to_datelines() -> None:
    old = _dated("Title\n\nLede.\n", published_at="1800-01-01T00:00:00Z")
    assert (old.published_at, old.date_source, old.warnings) == (datetime(1800, 1, 1, tzinfo=UTC), "sidecar", ())
    archive = _dated("Title\n\nLONDON, 12 March 1850 - The Times reports.\n")
    assert (archive.published_at, archive.date_source) == (datetime(1850, 3, 12, tzinfo=UTC), "dateline")
    early = _dated("Title\n\nHASTINGS, 14 October 1066 - A battle.\n")
    assert early.date_source == "mtime"
    (warning,) = early.warnings
    assert "1066-10-14" in warning and "from dateline" in warning and "before 1800" in warning


def test_a_dateline_in_year_one_east_of_utc_is_passed_over() -> None:
    meta = SourceMeta("x", "file:///data/x/doc.txt", "doc.txt", MTIME, None, as_of=AS_OF)
    profile = SourceProfile.from_mapping("x", {"timezone": "Asia/Tokyo"})
    art = normalize_text(b"Title\n\nTOKYO, 1 January 0001 - Lede.\n", meta, profile)
    assert isinstance(art, Article), art
    assert art.date_source == "mtime"
    assert any("from dateline" in w and "0001" in w for w in art.warnings)


# --- rules that backtrack ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "risky"),
    [
        ("(a|aa)+", True),
        ("(a+)+$", True),
        ("(ab){2,40}", True),
        ("x{2,}y+", True),
        ("[THAE]/\\s*\\S.{0,60}", False),
        ("(read|see) (more|also)( news)?:?", False),
        ("[)+]*x", False),  # parentheses and pluses inside a class are characters
        ("\\(+x", False),
        ("(?x)(a|aa) +", True),  # verbose: the space between the group and its quantifier is nothing
        ("(?x:(a|aa)#c\n+)", True),
        ("a{0,999}a{0,999}a{0,999}b", True),  # bounded, but a billion ways
        ("tags?:.{0,200}", False),
    ],
)
def test_patterns_that_may_backtrack_are_told_apart(pattern: str, risky: bool) -> None:
    from normalizers.profile import may_backtrack

    assert may_backtrack(pattern) is risky


def _backtracking(where: str = "any", first: bool = True) -> SourceProfile:
    slow = {"name": "slow", "kind": "chrome", "where": where, "match": "(a|aa)+"}
    fast = {"name": "fast", "kind": "chrome", "where": where, "match": "a+|Share"}
    return SourceProfile.from_mapping("x", {"rules": [slow, fast] if first else [fast, slow]})


def test_a_rule_that_backtracks_on_a_line_quarantines_the_input_and_says_which() -> None:
    rejection = _rejection("Title\n\nBody words.\n\n" + "a" * 40 + "b\n\nMore words.\n", _backtracking())
    assert rejection.reason is RejectReason.TIMEOUT
    assert "rule slow took over" in rejection.message and "41 characters" in rejection.message


def test_rules_matched_with_a_time_limit_keep_their_turn() -> None:
    """The first rule in order wins, whichever matcher runs it."""
    profile = _backtracking()
    assert [r.name for r in profile.rules][:2] == ["slow", "fast"]
    assert profile.match("aaaa", ("any",)).name == "slow"  # type: ignore[union-attr]
    assert profile.match("share", ("any",)).name == "fast"  # type: ignore[union-attr]
    assert _backtracking(first=False).match("aaaa", ("any",)).name == "fast"  # type: ignore[union-attr]
    assert profile.match("Body words.", ("any",)) is None
    text = _article("Title\n\nBody words here.\n\naaaa\n\nMore words.\n", profile).text
    assert "aaaa" not in text and "More words." in text


def test_a_rule_with_a_global_inline_flag_is_matched_on_its_own() -> None:
    """(?i) is refused inside a joined alternation: such a rule is matched by itself, never failing the file."""
    rule = {"name": "other", "kind": "chrome", "where": "any", "match": "(?i)OTHER NEWS"}
    profile = SourceProfile.from_mapping("x", {"rules": [rule]})
    article = _article("Title\n\nBody words here.\n\nother news\n\nMore words.\n", profile)
    assert "other news" not in article.text and "More words." in article.text
