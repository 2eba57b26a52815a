"""Plain-text article dumps -> `Article`.

The input format: a title line, a lede paragraph, body paragraphs (optionally under
short sub-heading lines), then a tail of agency tags (`T/ Satt.`) and page chrome
(`Other news`, maybe with the related headlines after it). Paragraphs are separated by
blank lines; a file with no blank lines at all is read as one paragraph per line.

Pure: the result depends only on (raw bytes, `SourceMeta`, `SourceProfile`).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from datetime import date, timedelta
from zoneinfo import ZoneInfo

from normalizers.assemble import build_article, date_evidence, fetched_url, has_words, sections_of
from normalizers.boilerplate import learned_edges, rule_name
from normalizers.common import (
    BIDI_CONTROL_CHARS,
    FUTURE_TOLERANCE,
    LAYOUT_FREE_CONTROLS,
    Dated,
    DateEvidence,
    Implausible,
    clean_layout,
    count_controls,
    day_date,
    epoch_to_utc,
    pick_date,
    sniff_bom,
    too_large,
    unreadable,
)
from normalizers.dates import MONTHS
from normalizers.errors import Rejection, RejectReason, RuleTimeout
from normalizers.meta import Sidecar, SidecarError, SourceMeta, sidecar_of
from normalizers.profile import AUTO_ENCODING, CUT_TO_END, Rule, SourceProfile
from normalizers.schema import Article, Stripped

__all__ = ["NAME", "VERSION", "normalize_text"]

NAME = "text"
# 1.1.0: `encoding`, warnings (sidecar url and language, future dates), BOMs.
# 1.2.0: no bidi controls in output, dates before 1800 or past year 9999 passed over with a warning.
# 1.3.0: `cut-to-end` rules (a marker such as `Other news` and the list of headlines after it), tail tags above it;
# datelines are day-precision dates at midnight UTC (were midnight in the source's zone); a
# dateline without a year takes one from the sidecar or file date; published_date, date_precision,
# published_at_raw, author_source, title_source.
# 1.4.0: a sidecar url is spelled by `urls.canonical_url` (the spelling feeds and pages use: default port,
# tracking parameters and the fragment dropped, UTF-8 percent-encoding, IDNA host), so its article_id changes;
# a fetched text file (an HTTP source of format text) has the URL it was fetched from as its url (and
# article_id, as a page has), the feed's date before the fetch time, and that time as `fetched` (was
# `mtime`); blankness is judged on the decoded text only (a UTF-16 file of two ASCII spaces is one character).
# 1.4.1: a list is not cut when only lines other rules strip (a tag, another marker) stand between it and the
# title: the last body paragraph of such a file was cut as a list item.
# 1.4.2: sidecar titles and authors are NFC, as the text is; `encoding = "auto"` detects among the
# encodings browsers know (no DOS code page such as cp775).
# 1.5.0: the source's learned boilerplate (`learned:<source>`) is removed at the body's head and tail.
# 1.5.1: a body without a letter or digit of any script ("— … —", "***") is no body (was written).
VERSION = "1.5.1"

_UTF8 = "utf-8"
# Control characters carry no text, and bidi controls reorder it (`common.BIDI_CONTROL_CHARS`).
# Every string this normaliser outputs is either cut from the decoded document, which one
# pass of `clean_layout` (controls become spaces, bidi controls go) and `_blocks` (line
# breaks become structure, tab and other whitespace are folded) clean as a whole, or comes
# from the sidecar, cleaned by `clean_line` there: `clean_line` on every output string
# again cost ~20 % of the normaliser's time. The control count the binary check makes
# anyway (`common.CONTROL_BYTES`, the same C0 set) and the bidi controls' UTF-8 forms let
# the common clean UTF-8 file skip the regex pass entirely.
# A regex, not nine `in` tests: it scans for their shared lead byte once (~1.4 us on the seed, `in` x 9 ~25 us).
_BIDI_UTF8 = re.compile(b"|".join(re.escape(c.encode()) for c in BIDI_CONTROL_CHARS))
# Appended to the invalid-UTF-8 message: the way out for a source in another encoding.
_ENCODING_HINT = (
    "if the source's files are in another encoding, set `encoding` for it in sources.toml: a codec name such as "
    '"cp1251", "shift_jis" or "gb18030", or "auto" to detect it'
)

# `any` rules only look at stand-alone lines up to this length: chrome lines are short
# (the longest built-in pattern matches ~40 characters), and a long line is a paragraph.
_STANDALONE_MAX_CHARS = 200

# Heading heuristics, tuned on the seed and the sample corpus: real sub-headings there
# are 3-9 words and under 80 characters; a single-line paragraph is longer or ends in
# sentence punctuation. The limits leave headroom without catching short sentences.
_HEADING_MAX_WORDS = 14
_HEADING_MAX_CHARS = 120
_HEADING_BAD_END = frozenset(".!?;,:…\"”’'»")
_QUOTE_START = frozenset("\"“‘'«„-–—•*")
# A first line longer than this is a paragraph, not a title line.
_TITLE_MAX_CHARS = 300

# A `cut-to-end` rule's marker (`Other news`) introduces the list of related headlines the
# agency's pages end with; the marker and everything after it go. The guard that keeps it
# from eating an article (a marker line inside one, with prose after it):
# - every line after the marker looks like a list item (`_looks_like_list_item`): a headline,
#   not prose. Tuned on the seed and the sample corpus: its titles reach 142 characters and
#   24 words, and 3 in 4 of its body paragraphs are longer, end in a full stop or comma, or
#   hold a sentence break. The rest (sub-headings, recipe steps, Q&A lines) pass, which is
#   why the other guards hold too;
# - at most `_LIST_MAX_LINES` lines are cut (markers included): a related list is a handful
#   of headlines, maybe under a second marker (`Most read`), so the cut is always the
#   document's last part, never a long run of short lines;
# - the marker is a short line of its own: the first or last line of its paragraph, never
#   a wrapped line inside one, and no longer than a list item;
# - a body stays: the title line (for sources with one) and at least one paragraph before
#   the marker; a marker with less above it is not cut. Markers with no line after them
#   (`Other news` alone at the end) go in any case, as tail rules' lines do.
# A line a tail rule matches (a tag under the list, a share bar) ends the list: the tail
# rule removes it first, so a tag lands in `byline` instead of being cut as chrome.
_LIST_MAX_LINES = 30
_LIST_ITEM_MAX_CHARS = 180
_LIST_ITEM_MAX_WORDS = 30
# A line ending in one of these (a closing quote or bracket after it allowed) ends a sentence or
# a clause: prose. `?` and `!` do not count (headlines ask and exclaim), nor does an ellipsis
# (a headline cut short).
_LIST_ITEM_BAD_END = frozenset(".,;")
_CLOSERS = "\"”’'»)]"
_ELLIPSES = ("...", "…")
# A sentence break inside a line: two letters that are not upper-case ASCII (so `Dr.` and
# `U.S.` are no sentence ends), a stop, optional closers, space, then a letter that is not
# lower-case ASCII (the next sentence's capital, or a letter of a script without case).
_SENTENCE_BREAK = re.compile(r"[^\W\d_A-Z]{2}[.!?][\"”’'»)\]]*\s+[\"“‘'«(\[]*[^\W\d_a-z]")

_MONTH_RE = "|".join(sorted(MONTHS, key=len, reverse=True))
# A dateline opens the lede: an optional place name (up to 48 characters, ending in a
# comma, bracket or dash), then a date. Only the lede's start is searched, so a date
# mentioned later in the story never becomes the publication date. A date without a year
# (`FRANKFURT, April 11 (Reuters) -`) counts only after a place name and before a bracket,
# dash, colon or comma: `May 5 people died` opens no dateline.
_PLACE = r"[^\d\n]{1,48}?[,(–—-]\s*"
_DATELINE = re.compile(
    rf"^(?:{_PLACE})?(?:"
    r"(?P<y1>\d{4})-(?P<m1>\d{1,2})-(?P<d1>\d{1,2})"
    rf"|(?P<d2>\d{{1,2}})\.?\s+(?P<mon2>{_MONTH_RE})\.?,?\s+(?P<y2>\d{{4}})"
    rf"|(?P<mon3>{_MONTH_RE})\.?\s+(?P<d3>\d{{1,2}})(?:st|nd|rd|th)?,?\s+(?P<y3>\d{{4}})"
    r")\b"
    rf"|^{_PLACE}(?:"
    rf"(?P<d4>\d{{1,2}})\.?\s+(?P<mon4>{_MONTH_RE})\.?"
    rf"|(?P<mon5>{_MONTH_RE})\.?\s+(?P<d5>\d{{1,2}})(?:st|nd|rd|th)?"
    r")(?=\s*(?:[(,:–—-]|$))",
    re.IGNORECASE,
)
# A dateline without a year gets the year that puts its day at most this long before the
# reference date (the sidecar's date, else the file's modification time) and at most
# `FUTURE_TOLERANCE` after it, else no date. Wire copy is written to disk within days of
# its dateline; a quarter leaves room for late dumps while a file touched a year or more
# later (a copy, a restore) can still land in the window only if its lag falls within
# 3 of every 12 months, and a lag between 3 and 12 months gives no date rather than
# last year's date under this year's number.
DATELINE_YEAR_WINDOW = timedelta(days=92)


# A line is `(number, text)`: a plain tuple, as ~16 are made per article and a tuple
# literal costs a fraction of a dataclass instance.
_Line = tuple[int, str]


def normalize_text(raw: bytes, meta: SourceMeta, profile: SourceProfile) -> Article | Rejection:
    """Normalise one plain-text article; bad input yields a `Rejection`, never an exception."""
    try:
        return _normalize(raw, meta, profile)
    except RuleTimeout as exc:
        return Rejection(RejectReason.TIMEOUT, str(exc))
    except Exception as exc:  # a bug must not take the batch down: quarantine and say so
        return Rejection(RejectReason.INTERNAL_ERROR, f"{type(exc).__name__}: {exc}")


def decode_text(raw: bytes, max_bytes: int, encoding: str = _UTF8) -> str | Rejection:
    """Decode article bytes (a byte-order mark, else `encoding` or `auto`), or say why they are not an article."""
    decoded = _decode(raw, max_bytes, encoding)
    return decoded if isinstance(decoded, Rejection) else decoded[0]


# (text, whether it may hold control characters, warnings)
_Decoded = tuple[str, bool, tuple[str, ...]]


def _decode(raw: bytes, max_bytes: int, encoding: str) -> _Decoded | Rejection:
    """`decode_text`, also saying whether the text needs the control-character pass, and what it warns about."""
    big = too_large(len(raw), max_bytes)
    if big is not None:
        return big
    # A byte-order mark wins over the source's encoding: it is the file saying what it is.
    bom = sniff_bom(raw)
    codec, data = bom if bom is not None else (encoding, raw)
    skipped = len(raw) - len(data)
    if codec in (_UTF8, AUTO_ENCODING):
        nul = data.find(b"\x00")
        if nul >= 0:
            return Rejection(RejectReason.BINARY, f"NUL byte at offset {nul + skipped}: not a text file")
        try:
            text = data.decode(_UTF8)
        except UnicodeDecodeError as exc:
            if codec == AUTO_ENCODING:
                return _decode_detected(data, skipped, exc)
            bad = data[exc.start : exc.start + 4]
            return Rejection(
                RejectReason.INVALID_UTF8,
                f"invalid UTF-8 at byte {exc.start + skipped} ({bad!r}): {exc.reason}; {_ENCODING_HINT}",
            )
        # Counting on bytes is a C-speed scan; C1 controls (2 bytes in UTF-8) are rare enough
        # to be found by the regex pass in `_normalize` only when present.
        controls = count_controls(data)
        scan = bool(controls) or b"\xc2" in data or _BIDI_UTF8.search(data) is not None
        return _checked(text, controls, scan, ())
    try:
        text = data.decode(codec)
    except UnicodeDecodeError as exc:
        bad = data[exc.start : exc.start + 4]
        return Rejection(
            RejectReason.INVALID_ENCODING, f"invalid {codec} at byte {exc.start + skipped} ({bad!r}): {exc.reason}"
        )
    return _checked_decoded(text, ())


def _decode_detected(data: bytes, skipped: int, error: UnicodeDecodeError) -> _Decoded | Rejection:
    """`encoding = "auto"` for bytes that are not UTF-8: the encoding charset detection finds, with a warning."""
    # Imported here: charset-normalizer loads only for the files of `auto` sources that need it.
    from normalizers.encoding import detect_encoding

    codec = detect_encoding(data)
    if codec is None:
        return Rejection(
            RejectReason.INVALID_ENCODING,
            f"not UTF-8 (invalid at byte {error.start + skipped}: {error.reason}) and charset detection found no "
            "encoding for it; set the source's `encoding` to the files' codec",
        )
    warnings = [f"not UTF-8: decoded as {codec}, the encoding charset detection found"]
    try:
        text = data.decode(codec)
    except UnicodeDecodeError as exc:
        # Detection saw only the start of a long file; its tail disagrees in places.
        warnings.append(f"bytes invalid in {codec} from byte {exc.start + skipped} on replaced with U+FFFD")
        text = data.decode(codec, errors="replace")
    return _checked_decoded(text, tuple(warnings))


def _checked_decoded(text: str, warnings: tuple[str, ...]) -> _Decoded | Rejection:
    """The binary checks on text decoded from an encoding other than UTF-8 (whose bytes were not scanned)."""
    nul = text.find("\x00")
    if nul >= 0:
        return Rejection(RejectReason.BINARY, f"NUL character at character {nul}: not a text file")
    return _checked(text, count_controls(text), True, warnings)


def _checked(text: str, controls: int, scan: bool, warnings: tuple[str, ...]) -> _Decoded | Rejection:
    """Reject decoded text that is blank or binary; else hand it on."""
    problem = unreadable(text, controls, len(text), "a text file")
    return problem if problem is not None else (text, scan, warnings)


def _normalize(raw: bytes, meta: SourceMeta, profile: SourceProfile) -> Article | Rejection:
    sidecar = sidecar_of(meta, profile.timezone)
    if isinstance(sidecar, SidecarError):
        return Rejection(RejectReason.BAD_SIDECAR, str(sidecar))
    decoded = _decode(raw, profile.max_bytes, profile.encoding)
    if isinstance(decoded, Rejection):
        return decoded
    text, scan, decode_warnings = decoded
    if not unicodedata.is_normalized("NFC", text):
        text = unicodedata.normalize("NFC", text)
    if scan and LAYOUT_FREE_CONTROLS.search(text):
        text = clean_layout(text)
    blocks = _blocks(text)
    stripped: list[Stripped] = []
    _strip_edges(blocks, profile, stripped)

    title: str | None = None
    if profile.title_line and blocks:
        first = _joined(blocks[0])
        if len(first) <= _TITLE_MAX_CHARS:
            title = first
            blocks.pop(0)
    _strip_standalone(blocks, profile, stripped)
    paragraphs = [_joined(block) for block in blocks]
    _strip_learned(blocks, paragraphs, meta.source, profile, stripped)
    if not paragraphs:
        return Rejection(RejectReason.NO_BODY, "no body text after the title and removed lines")
    if not any(has_words(p) for p in paragraphs):
        return Rejection(RejectReason.NO_BODY, "the body has no words (only punctuation or symbols)")
    title_source = "line" if title else "sidecar" if sidecar.title else "none"
    title = title or sidecar.title

    lede = paragraphs[0]
    last = len(paragraphs) - 2
    # A heading is a short one-line block that is followed by more text.
    sections = sections_of(
        [
            (para, i < last and len(blocks[i + 1]) == 1 and _looks_like_heading(para))
            for i, para in enumerate(paragraphs[1:])
        ]
    )

    stripped.sort(key=lambda s: s.line)
    warnings = [*sidecar.warnings, *decode_warnings]
    fetched = fetched_url(meta, warnings)
    date = pick_date(date_evidence(sidecar, meta, _dateline(sidecar, lede, meta, profile)), meta.as_of)
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
        byline="; ".join(s.text for s in stripped if s.kind == "byline") or None,
        authors=sidecar.authors,
        author_source="sidecar" if sidecar.authors else "none",
        published=date,
        language=sidecar.language or profile.language,
        stripped=tuple(stripped),
        warnings=(*warnings, *date.warnings),
        fetched=fetched,
    )


def _joined(block: list[_Line]) -> str:
    """A block's lines as one paragraph (hard-wrapped lines joined with a space)."""
    return block[0][1] if len(block) == 1 else " ".join([line[1] for line in block])


def _blocks(text: str) -> list[list[_Line]]:
    """Group non-blank lines into blank-line separated blocks (one per line if no blank lines)."""
    blocks: list[list[_Line]] = []
    current: list[_Line] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        clean = raw.strip()
        if not clean:
            if current:
                blocks.append(current)
                current = []
            continue
        # Most lines are already clean: only lines with a run of spaces or another
        # whitespace character get folded. Inside a line (splitlines took \r, \v, \f and
        # \x1c-\x1e) the only other ASCII whitespace is tab and \x1f, found by C-speed
        # substring scans on an ASCII line (isascii() is a flag, not a scan). Other lines
        # use isprintable(), False for every whitespace but the space (NBSP, thin space...)
        # and ~3x faster than a regex scan, yet ~2.5 ns per character.
        if "  " in clean or ("\t" in clean or "\x1f" in clean if clean.isascii() else not clean.isprintable()):
            clean = " ".join(clean.split())
        current.append((number, clean))
    if current:
        blocks.append(current)
    if len(blocks) == 1:  # no blank line anywhere between text: one paragraph per line
        return [[line] for line in blocks[0]]
    return blocks


def _strip_edges(blocks: list[list[_Line]], profile: SourceProfile, out: list[Stripped]) -> None:
    """Cut a trailing list at its marker, remove matching lines at the end (tail rules) and the start (head rules)."""
    # A tag sits above the list a marker introduces, a share bar or a tag may sit below it:
    # cut, then strip, and cut again only once stripping has bared a new end (a cut never
    # follows a cut directly, so two cuts cannot add up to a list past the limit).
    can_cut = profile.has_rules((CUT_TO_END,))
    if can_cut:
        _cut_to_end(blocks, profile, out)
    while _strip_tail(blocks, profile, out) and can_cut and _cut_to_end(blocks, profile, out):
        pass
    while blocks:
        line = blocks[0][0]
        rule = profile.match(line[1], ("head", "any"))
        if rule is None:
            break
        out.append(Stripped(rule.name, rule.kind, line[1], line[0]))
        blocks[0].pop(0)
        if not blocks[0]:
            blocks.pop(0)


def _strip_tail(blocks: list[list[_Line]], profile: SourceProfile, out: list[Stripped]) -> bool:
    """Remove the run of lines at the end that tail (or `any`) rules match; True if there was one."""
    removed = False
    while blocks:
        line = blocks[-1][-1]
        rule = profile.match(line[1], ("tail", "any"))
        if rule is None:
            break
        out.append(Stripped(rule.name, rule.kind, line[1], line[0]))
        removed = True
        blocks[-1].pop()
        if not blocks[-1]:
            blocks.pop()
    return removed


def _cut_to_end(blocks: list[list[_Line]], profile: SourceProfile, out: list[Stripped]) -> bool:
    """Remove a `cut-to-end` marker line and the list after it to the end (guarded, see above); True if cut."""
    start = _list_start(blocks, profile)
    if start is None:
        return False
    first_block, first_line, rule = start
    for b in range(first_block, len(blocks)):
        block = blocks[b]
        last = len(block) - 1
        for i in range(first_line if b == first_block else 0, last + 1):
            number, text = block[i]
            # Under a second marker (`Most read` after `Other news`), lines go by its rule.
            if i in (0, last) and (b, i) != (first_block, first_line):
                rule = profile.match(text, (CUT_TO_END,)) or rule
            out.append(Stripped(rule.name, rule.kind, text, number))
    del blocks[first_block + 1 :]
    del blocks[first_block][first_line:]
    if not blocks[first_block]:
        blocks.pop()
    return True


def _list_start(blocks: list[list[_Line]], profile: SourceProfile) -> tuple[int, int, Rule] | None:
    """Block and line index, and rule, of the marker a guarded cut starts at: the highest with only a list after it."""
    # The title line and the lede must stay above a cut list.
    min_kept = 2 if profile.title_line else 1
    start: tuple[int, int, Rule] | None = None
    listed = False
    seen = 0
    for b in range(len(blocks) - 1, -1, -1):
        block = blocks[b]
        last = len(block) - 1
        for i in range(last, -1, -1):
            text = block[i][1]
            # A marker is a short line of its own: a wrapped line inside a paragraph is prose,
            # and so is a long one (the length test spares the common last paragraph a regex).
            own = i in (0, last) and len(text) <= _LIST_ITEM_MAX_CHARS
            marker = profile.match(text, (CUT_TO_END,)) if own else None
            if marker is not None:
                # Markers with no list after them go whatever stays, as a tail rule's lines do.
                if listed and _content_above(blocks, b, profile, min_kept) + (i > 0) < min_kept:
                    return start  # no body would stay, here or at any marker above
                start = (b, i, marker)
            elif _looks_like_list_item(text) and profile.match(text, ("tail", "any")) is None:
                listed = True
            else:
                return start
            seen += 1
            if seen == _LIST_MAX_LINES:
                return start
    return start


def _content_above(blocks: list[list[_Line]], b: int, profile: SourceProfile, enough: int) -> int:
    """Blocks above block `b` that no rule would strip (a tag or a marker above a list is no body), up to `enough`."""
    found = 0
    for block in blocks[:b]:
        if len(block) > 1 or profile.match(block[0][1], ("tail", "any", CUT_TO_END)) is None:
            found += 1
            if found >= enough:
                break
    return found


def _looks_like_list_item(text: str) -> bool:
    """True for a line that may be an item of a list of links (a headline), false for prose."""
    if len(text) > _LIST_ITEM_MAX_CHARS or text.count(" ") >= _LIST_ITEM_MAX_WORDS:
        return False
    end = text.rstrip(_CLOSERS)
    if end and end[-1] in _LIST_ITEM_BAD_END and not end.endswith(_ELLIPSES):
        return False
    return _SENTENCE_BREAK.search(text) is None


def _strip_standalone(blocks: list[list[_Line]], profile: SourceProfile, out: list[Stripped]) -> None:
    """Remove one-line blocks matched by `any` rules (share bars, ad labels) inside the body."""
    keep: list[list[_Line]] = []
    for block in blocks:
        number, text = block[0]
        rule = profile.match(text, ("any",)) if len(block) == 1 and len(text) <= _STANDALONE_MAX_CHARS else None
        if rule is None:
            keep.append(block)
        else:
            out.append(Stripped(rule.name, rule.kind, text, number))
    blocks[:] = keep


def _strip_learned(
    blocks: list[list[_Line]], paragraphs: list[str], source: str, profile: SourceProfile, out: list[Stripped]
) -> None:
    """Remove the runs of the source's learned boilerplate at the body's head and tail (`normalizers.boilerplate`)."""
    head, tail = learned_edges(paragraphs, profile.learned)
    if not head and not tail:
        return
    rule = rule_name(source)
    for i in [*range(head), *range(len(paragraphs) - tail, len(paragraphs))]:
        out.append(Stripped(rule, "chrome", paragraphs[i], blocks[i][0][0]))
    del blocks[len(blocks) - tail :], paragraphs[len(paragraphs) - tail :]
    del blocks[:head], paragraphs[:head]


def _looks_like_heading(text: str) -> bool:
    return (
        len(text) <= _HEADING_MAX_CHARS
        and text[-1] not in _HEADING_BAD_END
        and text[0] not in _QUOTE_START
        and len(text.split()) <= _HEADING_MAX_WORDS
    )


def _dateline(sidecar: Sidecar, lede: str, meta: SourceMeta, profile: SourceProfile) -> Iterator[DateEvidence]:
    """The text's own date evidence: its dateline (read only when `date_evidence` gets this far)."""
    mtime = epoch_to_utc(meta.mtime)
    references = [
        sidecar.published_at.day if isinstance(sidecar.published_at, Dated) else None,
        mtime.astimezone(ZoneInfo(profile.timezone)).date() if mtime is not None else None,
    ]
    yield "dateline", dateline(lede, [r for r in references if r is not None])


def dateline(lede: str, references: list[date] | tuple[date, ...] = ()) -> Dated | Implausible | None:
    """The date a lede opens with (e.g. `QAMISHLO, 12 March 2024 -`), a day-precision date at midnight UTC.

    A dateline without a year (`FRANKFURT, April 11 (Reuters) -`) takes the year that puts it
    within `DATELINE_YEAR_WINDOW` before the first of `references` (the sidecar's date, the
    file's date) that has one, else gives no date. Any calendar date counts: `pick_date`
    judges whether it is plausible (and says so when not).
    """
    m = _DATELINE.match(lede[:120])
    if m is None:
        return None
    g = m.groupdict()
    raw = m.group(0).strip()
    try:
        if g["y1"]:
            y, mo, d = int(g["y1"]), int(g["m1"]), int(g["d1"])
        elif g["y2"]:
            y, mo, d = int(g["y2"]), MONTHS[g["mon2"].casefold()], int(g["d2"])
        elif g["y3"]:
            y, mo, d = int(g["y3"]), MONTHS[g["mon3"].casefold()], int(g["d3"])
        else:
            mo, d = (
                (MONTHS[g["mon4"].casefold()], int(g["d4"]))
                if g["mon4"]
                else (MONTHS[g["mon5"].casefold()], int(g["d5"]))
            )
            year = next((found for ref in references if (found := _year_near(mo, d, ref)) is not None), None)
            if year is None:
                return None
            y = year
        day = date(y, mo, d)
    except (ValueError, KeyError):  # not a calendar day (31 February, year 0); KeyError: a fold-only month match
        return None
    return day_date(day, raw)


def _year_near(month: int, day: int, reference: date) -> int | None:
    """The year putting `month`/`day` in `DATELINE_YEAR_WINDOW` before `reference` (a day after at most)."""
    for year in (reference.year, reference.year - 1, reference.year + 1):
        try:
            when = date(year, month, day)
        except ValueError:  # 29 February outside a leap year
            continue
        if reference - DATELINE_YEAR_WINDOW <= when <= reference + FUTURE_TOLERANCE:
            return year
    return None
