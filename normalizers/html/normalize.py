"""HTML pages -> `Article`: bounds, decoding, metadata, main-text extraction, assembly.

Pure: the result depends only on (raw bytes, `SourceMeta`, `SourceProfile`, the
response's Content-Type) and, when the caller passes one, a time `Budget`. A hostile
page that outlasts the budget is cut short and the record says so in `warnings`; no
real article page comes near it (the AEB pages take 1-10 ms).
"""

from __future__ import annotations

from dataclasses import dataclass

from selectolax.lexbor import LexborHTMLParser

from normalizers.assemble import build_article, date_evidence, fetched_url, has_words, sections_of
from normalizers.boilerplate import learned_edges, rule_name
from normalizers.bounds import Budget, Unlimited
from normalizers.common import (
    Dated,
    Implausible,
    clean_field,
    clean_line,
    count_controls,
    pick_date,
    too_large,
    unreadable,
)
from normalizers.dates import read_date
from normalizers.encoding import decode_html
from normalizers.errors import Rejection, RejectReason
from normalizers.html.extract import MAX_ATTRIBUTES, Block, Extraction, cut_attribute_floods, extract, parse_html
from normalizers.html.metadata import PageMeta, extract_metadata, split_byline
from normalizers.inflate import GZIP_MAGIC, GzipError, inflate_members
from normalizers.language import detect_language, normalize_language_tag
from normalizers.meta import Sidecar, SidecarError, SourceMeta, clean_authors, sidecar_of
from normalizers.profile import SourceProfile
from normalizers.schema import Article, Stripped, article_text

__all__ = ["LOW_CONFIDENCE", "NAME", "VERSION", "explain_html", "normalize_html"]

# Bump VERSION when the output changes for some input: re-normalisation targets rows
# whose normalizer_version differs. normalizers.dispatch names the same pair.
NAME = "html"
# 1.1.0: UTF-16/32 pages, truncated gzip, no control characters, article URLs, future dates.
# 1.2.0: no bidi controls in output; implausible dates (outside 1995..2100, before 1800 in a
# sidecar, past year 9999) passed over with a warning.
# 1.3.0: dates known only to the day keep their calendar day (midnight UTC); published_date,
# date_precision, published_at_raw, author_source, title_source; dates printed by the headline
# and microdata dates read, contradicting page dates give none; authors are people (roles,
# credentials, organisations, dates, URLs and handles removed; byline elements read); the
# <h1> is the title unless it is branding; a learned block classifier extracts the text, with an
# extraction_confidence, and pages it finds no article in are quarantined (extraction_failed).
# 1.4.0: canonical links, og:url, sidecar urls and image URLs are spelled by `urls.canonical_url`, as the
# fetched URL was (default port, tracking parameters dropped, UTF-8 percent-encoding, IDNA host, `/` for an
# empty path; a host with `%` or a space is no URL), so article_ids from them change; a page more than
# 1 % control characters (DEL too) is binary, as a text file is (was 5 %).
# 1.5.0: dates: a page that states no publication date but prints its update's ("Updated March 5,
# 2024") is dated by it (`date_source` `modified`), not by the file or fetch time; an update label with a
# time before its date is one; a time stated in UTC under a URL dated a day apart takes the URL's calendar
# day; a date printed more than a day after the JSON-LD and meta date (agreeing) is the update, so the
# structured date stands (was: no date); teasers' microdata dates do not contradict the page's own.
# Authors: glued share bars, initials badges, repeats, beats, emails, handles and links, hyphenated,
# rank-led and glued titles ("Co-founder", "Head Winemaker", "LauterSenior Editor") are cut; an author
# element's block-level parts are read apart; "Contributors" and "Author(s)" label authors, and a label
# over a list of names gives them all; a site's name is an author when it is a person's (a given name
# first, no business word); a block named like a sidebar that holds the page's <h1> is the article's.
# Sidecar titles and authors are NFC. Language detected from the first 1 KB of text (was 4 KB). The
# confidence's words cap counts words of prose (blocks mostly not link text), each distinct text once.
# A page labelled UTF-8 with a few stray bytes is read as UTF-8 with U+FFFD; detection picks only
# encodings browsers know. A page cut at a bound and then found empty says so in its quarantine message.
# 1.6.0: the source's learned boilerplate (`learned:<source>`) is removed at the body's head and tail.
# 1.6.1: article text without a letter or digit of any script is no body (was written).
VERSION = "1.6.1"

# How a warning that the page was cut at a bound begins (`_cut_note` looks for it).
_CUT = "page cut at"

# Bounds (principle 8: hostile input is expected). A real article page is 50 KB-2 MB of
# HTML; the caps leave room for the largest while keeping a worst case to ~1 s of work.
# Decompressed size of a gzip page: a bomb stops here rather than filling memory.
MAX_DECOMPRESSED = 20_000_000
# Characters past which the decoded text is cut before parsing (a 50 MB text node):
# beyond ~10 M characters no article is left to find.
MAX_CHARS = 10_000_000
# Tags past which the page is cut before parsing: the parser's tree costs ~400 bytes per
# element (1M unclosed <p> took 520 MB and hit the time bound); real article pages have
# a few thousand tags (the largest of the 181 AEB pages has 3,229), so 200,000 leaves
# ample room.
MAX_TAGS = 200_000
# Characters of the decoded page whose control characters decide whether it is binary
# (`common.unreadable`): a head, as binary data shows itself at once and a page may be
# 10 M characters. NUL characters inside a page that passes are dropped, as browsers do.
_CONTROL_CHECK_CHARS = 65_536

_CHROME, _BYLINE = "chrome", "byline"


@dataclass(frozen=True, slots=True)
class _Bytes:
    data: bytes
    warnings: tuple[str, ...]


def normalize_html(
    raw: bytes,
    meta: SourceMeta,
    profile: SourceProfile,
    content_type: str | None = None,
    budget: Budget | None = None,
) -> Article | Rejection:
    """Normalise one HTML page (plain or gzip bytes) into an `Article`, or say why not."""
    parsed = _parse(raw, meta, profile, content_type)
    if isinstance(parsed, Rejection):
        return parsed
    tree, sidecar, warnings = parsed
    fetched = fetched_url(meta, warnings)
    page = extract_metadata(tree, sidecar.url or fetched, meta.as_of)
    picked = _picked(tree, profile)  # before extraction, which removes nodes from the tree
    html = profile.html
    found = extract(tree, body_selector=html.body, remove_selectors=html.remove, budget=budget or Unlimited())
    if found.truncated:
        warnings.append("extraction stopped at its time or work bound; the text may be incomplete")
    if found.path == "generic" and found.confidence < profile.min_confidence and found.blocks:
        return Rejection(
            RejectReason.EXTRACTION_FAILED,
            f"extraction confidence {found.confidence:.2f} is below the source's min_confidence "
            f"{profile.min_confidence:g}: the page's text ({_where(found)}) is probably not an article"
            + _cut_note(warnings),
        )
    if found.confidence < LOW_CONFIDENCE:
        warnings.append(
            f"low extraction confidence {found.confidence:.2f}: the text ({_where(found)}) may hold page chrome "
            "or miss part of the article"
        )
    return _assemble(raw, meta, profile, sidecar, page, picked, found, fetched, warnings)


def explain_html(
    raw: bytes, meta: SourceMeta, profile: SourceProfile, content_type: str | None = None
) -> Extraction | Rejection:
    """The extraction `normalize_html` would make of a page (its root, candidates and removals), for --explain."""
    parsed = _parse(raw, meta, profile, content_type)
    if isinstance(parsed, Rejection):
        return parsed
    tree = parsed[0]
    html = profile.html
    return extract(tree, body_selector=html.body, remove_selectors=html.remove)


# An extraction less sure than this gets a warning in the record.
LOW_CONFIDENCE = 0.6


def _where(found: Extraction) -> str:
    return f"from {found.root}" if found.root else "no container"


def _parse(
    raw: bytes, meta: SourceMeta, profile: SourceProfile, content_type: str | None
) -> tuple[LexborHTMLParser, Sidecar, list[str]] | Rejection:
    """The page parsed (bounded), its sidecar and the warnings so far; or why it is not a page."""
    sidecar = sidecar_of(meta, profile.timezone)
    if isinstance(sidecar, SidecarError):
        return Rejection(RejectReason.BAD_SIDECAR, str(sidecar))
    unpacked = _unpack(raw, profile.max_bytes)
    if isinstance(unpacked, Rejection):
        return unpacked
    decoded = decode_html(unpacked.data, content_type)
    warnings = [*sidecar.warnings, *unpacked.warnings, *decoded.warnings]
    text = decoded.text
    # Judged on the decoded text, not the bytes: a UTF-16 page is half NUL bytes.
    head = text[:_CONTROL_CHECK_CHARS]
    problem = unreadable(text, count_controls(head), len(head), "an HTML page")
    if problem is not None:
        return problem
    if len(text) > MAX_CHARS:
        warnings.append(f"{_CUT} {MAX_CHARS} characters (was {len(text)})")
        text = text[:MAX_CHARS]
    if "\x00" in text:
        warnings.append("NUL characters removed")
        text = text.replace("\x00", "")
    text, floods = cut_attribute_floods(text)
    if floods:
        warnings.append(f"{floods} tag(s) of {MAX_ATTRIBUTES} or more attributes cut to their names")
    if text.count("<") > MAX_TAGS:
        cut = _nth(text, "<", MAX_TAGS)
        warnings.append(f"{_CUT} its {MAX_TAGS}th tag (character {cut} of {len(text)})")
        text = text[:cut]
    return parse_html(text, floods_cut=True), sidecar, warnings


def _unpack(raw: bytes, max_bytes: int) -> _Bytes | Rejection:
    """Size cap and gzip: the page's bytes, or why there are none."""
    big = too_large(len(raw), max_bytes)
    if big is not None:
        return big
    if not raw.startswith(GZIP_MAGIC):
        return _Bytes(raw, ())
    return _gunzip(raw)


def _gunzip(raw: bytes) -> _Bytes | Rejection:
    """Decompress every member of a gzip file, with a cap; a stream cut short is `truncated`, not a page."""
    try:
        inflated = inflate_members(raw, MAX_DECOMPRESSED)
    except GzipError as exc:
        if exc.kind == "too_large":
            return Rejection(RejectReason.TOO_LARGE, f"gzip page expands past {MAX_DECOMPRESSED} bytes")
        if exc.kind == "truncated":
            return Rejection(
                RejectReason.TRUNCATED,
                f"gzip data ends before its end marker ({len(raw)} bytes gave {exc.inflated} bytes of page): "
                "the file is truncated (an interrupted download or copy?)",
            )
        return Rejection(RejectReason.BINARY, f"gzip data is corrupt: {exc}")
    warnings = (
        [f"{inflated.trailing} bytes of trailing data after the gzip stream ignored"] if inflated.trailing else []
    )
    return _Bytes(inflated.data, tuple(warnings))


def _nth(text: str, needle: str, n: int) -> int:
    """Index of the `n`-th occurrence of `needle` (1-based); the caller knows there are that many."""
    index = -1
    for _ in range(n):
        index = text.find(needle, index + 1)
    return index


def _assemble(
    raw: bytes,
    meta: SourceMeta,
    profile: SourceProfile,
    sidecar: Sidecar,
    page: PageMeta,
    picked: _Picked,
    found: Extraction,
    fetched: str | None,
    warnings: list[str],
) -> Article | Rejection:
    """Build the record from the extraction and the metadata, in the schema's terms.

    Every string that goes out passes `common.clean_field` (NFC, then `common.clean_line`): no
    control character, no line break or whitespace run inside a field; metadata
    strings come cleaned by the same function from `metadata`.
    """
    titles = (
        ("profile", picked.title),
        (page.title_source, page.title),
        ("sidecar", sidecar.title),
        ("feed", meta.hint_title),
    )
    title_source, title = next(((src or "none", t) for src, t in titles if t and clean_field(t)), ("none", None))
    title = clean_field(title) if title else None
    blocks = [Block(b.kind, text, b.level) for b in found.blocks if (text := clean_field(b.text))]
    # `text` is the article without its title: drop the headline where the body repeats it.
    while blocks and title and _same(blocks[0].text, title):
        blocks = blocks[1:]
    head, tail = learned_edges([b.text for b in blocks], profile.learned)
    learned = [*blocks[:head], *blocks[len(blocks) - tail :]] if head or tail else []
    blocks = blocks[head : len(blocks) - tail]
    lede = clean_field(found.lede or "") or None
    if lede is None:
        # The lede is the article's first block when that is not a heading: a heading
        # before it ("Key points") opens a section, and the text keeps the page's order.
        if blocks and blocks[0].kind != "heading":
            lede = blocks[0].text
            blocks = blocks[1:]
    elif blocks and blocks[0].text == lede:
        blocks = blocks[1:]
    sections = sections_of([(b.text, b.kind == "heading") for b in blocks])
    if lede is None and not sections:
        if found.truncated:
            reason = "extraction reached its time or work bound before finding article text"
            return Rejection(RejectReason.TIMEOUT, reason)
        return Rejection(RejectReason.NO_BODY, "no article text found in the page" + _cut_note(warnings))
    body = article_text(lede, sections)
    if not has_words(body):
        return Rejection(RejectReason.NO_BODY, "the article text has no words (only punctuation or symbols)")

    bylines = tuple(line for b in found.bylines if (line := clean_field(b)))
    from_bylines = tuple(name for b in bylines for name in split_byline(b, [page.site_name or ""]))
    author_options = (
        ("sidecar", sidecar.authors),
        ("profile", clean_authors(picked.authors)),
        (page.author_source or "none", page.authors),
        ("byline", clean_authors(from_bylines)),
    )
    author_source, authors = next(((src, names) for src, names in author_options if names), ("none", ()))
    own_dates = [("profile", picked.published_at), *page.dates]
    published = pick_date(date_evidence(sidecar, meta, own_dates, page.update_bound), meta.as_of)
    modified = pick_date(page.modified_dates, meta.as_of, "modification date")
    warnings += [*page.warnings, *published.warnings, *modified.warnings]
    language = sidecar.language
    if language is None:
        declared, detected = normalize_language_tag(page.language), detect_language(body)
        if declared and detected and declared != detected:
            # Templates carry a site-wide lang (an edition's language, a CMS default)
            # that the article itself may not share; confident detection of the
            # article's own text is the better evidence then.
            warnings.append(f"page declares language {declared!r}; its text reads as {detected!r}")
        language = detected or declared or profile.language
    stripped = tuple(
        Stripped(rule=d.reason, kind=_BYLINE if d.reason.startswith("byline") else _CHROME, text=text, line=0)
        for d in found.dropped
        if (text := clean_field(d.text))  # an element with no text removed nothing from the text
    ) + tuple(Stripped(rule_name(meta.source), _CHROME, b.text, 0) for b in learned)
    return build_article(
        raw,
        meta,
        sidecar,
        normalizer=NAME,
        version=VERSION,
        title=title,
        title_source=title_source,
        lede=lede,
        sections=sections,
        byline="; ".join(bylines) or None,
        authors=authors,
        author_source=author_source,
        published=published,
        language=language,
        stripped=stripped,
        warnings=tuple(warnings),
        # The sidecar's URL, else the page's canonical link (or og:url), else the URL it
        # was fetched from: two spellings of one article get one article_id.
        own_url=page.canonical_url,
        fetched=fetched,
        extraction="profile" if found.path == "profile" else "generic",
        extraction_confidence=found.confidence,
        modified_at=modified.when,
        site_name=page.site_name,
        description=page.description,
        tags=page.tags,
        image_url=page.image_url,
    )


def _cut_note(warnings: list[str]) -> str:
    """The note "(page cut at ...)" when the page was cut at its tag or character cap: its article may lie past it."""
    cut = next((w for w in warnings if w.startswith(_CUT)), None)
    return f" ({cut})" if cut else ""


def _same(a: str, b: str) -> bool:
    """Equal up to case and whitespace."""
    return " ".join(a.split()).casefold() == " ".join(b.split()).casefold()


@dataclass(frozen=True, slots=True)
class _Picked:
    """What the source's title/author/date selectors found (empty without a profile)."""

    title: str | None = None
    authors: tuple[str, ...] = ()
    published_at: Dated | Implausible | None = None  # Implausible: only implausible dates matched


def _picked(tree: LexborHTMLParser, profile: SourceProfile) -> _Picked:
    html = profile.html
    titles = _selected_texts(tree, html.title)
    when: Dated | Implausible | None = None
    if html.date:
        for node in tree.css(html.date):
            attrs = node.attributes
            value = attrs.get("datetime") or attrs.get("content") or node.text(deep=True)
            found = read_date(value, profile.timezone)
            if isinstance(found, Dated):
                when = found
                break
            when = when or found  # the first implausible one, for the warning, unless a plausible one follows
    return _Picked(titles[0] if titles else None, _selected_texts(tree, html.author), when)


def _selected_texts(tree: LexborHTMLParser, selector: str | None) -> tuple[str, ...]:
    """Whitespace-folded texts of the nodes `selector` matches, in document order."""
    if not selector:
        return ()
    out = []
    for node in tree.css(selector):
        text = clean_line(node.text(deep=True, separator=" ") or "")
        if text:
            out.append(text)
    return tuple(out)
