"""Parts the text and HTML normalisers share: input checks, output cleaning, date evidence, byte-order marks.

Import-light on purpose (the standard library and the package's own `errors`): the text
normaliser loads it on every run, and text-only runs must not load the HTML stack.
"""

from __future__ import annotations

import codecs
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Literal

from normalizers.errors import Rejection, RejectReason

__all__ = [
    "BIDI_CONTROL_CHARS",
    "BOMS",
    "CONTROL_BYTES",
    "EARLIEST_DATE",
    "FUTURE_TOLERANCE",
    "LAYOUT_FREE_CONTROLS",
    "MAX_CONTROL_SHARE",
    "UNSHOWABLE",
    "DateEvidence",
    "DatePick",
    "Dated",
    "Implausible",
    "Precision",
    "clean_field",
    "clean_layout",
    "clean_line",
    "count_controls",
    "day_date",
    "epoch_to_utc",
    "pick_date",
    "sniff_bom",
    "too_large",
    "unreadable",
    "unrepresentable",
]

# --- Input checks --------------------------------------------------------------------------

# The control characters that mark a document as binary: C0 but tab, LF, FF and CR (which
# plain text and HTML use for layout), and DEL. Their UTF-8 forms are single bytes, so a
# C-speed `bytes.translate` counts them.
CONTROL_BYTES = bytes([*range(0x00, 0x09), 0x0B, *range(0x0E, 0x20), 0x7F])
# A document more than this share of whose characters are `CONTROL_BYTES` is binary, not
# text. Real documents hold next to none (at most 1 in 350,723 characters over the 892 AEB
# and WCXB pages and the text samples), while binary data holds about 11 % (29 of 256 byte
# values). The text normaliser used 1 %, the HTML one 5 %: 1 % for both keeps a tenfold
# margin below binary data (5 % left twofold, so a file of mostly compressed streams with
# some text in between could pass as a page) and is still far above what real text holds.
MAX_CONTROL_SHARE = 0.01


def too_large(size: int, limit: int) -> Rejection | None:
    """A `too_large` rejection when a document of `size` bytes exceeds `limit`, else None."""
    if size > limit:
        return Rejection(RejectReason.TOO_LARGE, f"{size} bytes exceeds the {limit}-byte limit")
    return None


def count_controls(data: bytes | str) -> int:
    """How many `CONTROL_BYTES` characters `data` holds (text is counted on its UTF-8 form)."""
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogatepass")
    return len(data) - len(data.translate(None, CONTROL_BYTES))


def unreadable(text: str, controls: int, counted: int, what: str) -> Rejection | None:
    """Why decoded `text` is no document: `empty` when blank, `binary` past `MAX_CONTROL_SHARE`; else None.

    `controls` is the number of control characters in the first `counted` characters of
    `text` (a normaliser counts where it is cheap: the text normaliser all of it, on the
    bytes it has; the HTML one a head of the page). `what` names the document the message
    says it is not ("a text file").
    """
    if not text.strip():  # Unicode whitespace only (NBSP, ideographic space...)
        return Rejection(RejectReason.EMPTY, "file is empty or only whitespace")
    if controls > MAX_CONTROL_SHARE * counted:
        return Rejection(
            RejectReason.BINARY, f"{controls} control characters in the first {counted} characters: not {what}"
        )
    return None


# --- Output cleaning -----------------------------------------------------------------------

# What no output string holds:
# - Unicode category Cc (C0 controls, DEL, C1 controls): no text. Each becomes a space (it
#   may stand between two words).
# - The bidirectional embedding, override and isolate controls (LRE, RLE, PDF, LRO, RLO;
#   LRI, RLI, FSI, PDI). They are format characters (Cf) like the ones kept below, but each
#   opens or closes a directional run that reorders what follows it on screen, up to the end
#   of the paragraph when unbalanced: text that reads differently from what it is ("Trojan
#   Source", `invoice<RLO>fdp.exe` shown as `invoiceexe.pdf`), a field whose reversal spills
#   into the next one. They are removed, not made spaces: they take no room in the text.
# Other format characters are kept, because scripts need them and none reorders its
# neighbours: ZWJ and ZWNJ (Indic conjuncts, Persian), the implicit marks LRM, RLM and ALM
# (they only settle the direction of the neutral characters next to them), the soft
# hyphen, the word joiner.
BIDI_CONTROL_CHARS = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
# Both: one scan says whether a string needs cleaning.
UNSHOWABLE = re.compile(f"[\x00-\x1f\x7f-\x9f{BIDI_CONTROL_CHARS}]")
# The same but tab, LF, FF and CR, which plain text uses for layout: a whole-document
# pass with it, before lines are split and folded, cleans every line at once.
LAYOUT_FREE_CONTROLS = re.compile(f"[\x00-\x08\x0b\x0e-\x1f\x7f-\x9f{BIDI_CONTROL_CHARS}]")
# str.translate tables (one C-speed pass): controls become spaces, bidi controls go.
_TO_SPACE = {c: " " for c in (*range(0x00, 0x20), *range(0x7F, 0xA0))}
_BIDI_GONE = dict.fromkeys(map(ord, BIDI_CONTROL_CHARS))
_LINE_TABLE: dict[int, str | None] = {**_TO_SPACE, **_BIDI_GONE}
_LAYOUT_TABLE: dict[int, str | None] = {**{c: " " for c in _TO_SPACE if chr(c) not in "\t\n\f\r"}, **_BIDI_GONE}


def clean_line(text: str) -> str:
    """`text` as one line: controls and whitespace runs become one space, bidi controls go, ends trimmed."""
    if text.isprintable():
        # No control or format character and no whitespace but U+0020: the common case costs one C-speed scan.
        if "  " not in text and not text.startswith(" ") and not text.endswith(" "):
            return text
        return " ".join(text.split())
    return " ".join(text.translate(_LINE_TABLE).split())


def clean_field(text: str) -> str:
    """A metadata string (a title, a name) as output: NFC, then `clean_line`."""
    if not unicodedata.is_normalized("NFC", text):
        text = unicodedata.normalize("NFC", text)
    return clean_line(text)


def clean_layout(text: str) -> str:
    """`text` with control characters made spaces and bidi controls removed, but its tabs and line breaks kept."""
    return text.translate(_LAYOUT_TABLE)


# --- Dates ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Implausible:
    """A date some evidence gives that no article has: `value` as a warning shows it, `reason` why it is not used.

    Evidence that knows its own plausible range (a web page's dates, a date past the years
    a timestamp holds) gives this instead of a date, so `pick_date` passes it over with a
    warning only when it gets that far, like any other rejected date.
    """

    value: str
    reason: str


# How much of a time a piece of evidence gives: a calendar day (a dateline, a /2024/03/01/ URL,
# a date-only meta value), or a time to the minute or the second.
Precision = Literal["day", "minute", "second"]


@dataclass(frozen=True, slots=True)
class Dated:
    """A date as some evidence states it: the instant, the calendar day as published, how precise, from what text.

    `when` is in UTC. A day-precision date has no time and no zone to convert, so it is
    stored at midnight UTC of its day: its UTC calendar date is the published day
    (`QAMISHLO, 1 March 2024` in Europe/Istanbul is 2024-03-01T00:00Z, not 2024-02-29T21:00Z).
    `day` is the calendar date as published: the day itself, or for a time the local date
    at the offset (or in the zone) it was stated in; partitions follow it. `raw` is the
    text the date was read from, None when it was not read from text (a file time).
    """

    when: datetime
    day: date
    precision: Precision
    raw: str | None = None

    @classmethod
    def instant(cls, when: datetime, precision: Precision = "second", raw: str | None = None) -> Dated:
        """A stated time (aware): its instant in UTC and its calendar date where it was stated."""
        return cls(when.astimezone(UTC), when.date(), precision, raw)


def day_date(day: date, raw: str | None = None) -> Dated:
    """A date known only to the day, at midnight UTC of that day (day precision)."""
    return Dated(datetime(day.year, day.month, day.day, tzinfo=UTC), day, "day", raw)


# (evidence name, date, implausible date or None): what one piece of evidence says about a date.
# A bare datetime is a time to the second with no text behind it (a file time, a feed's parsed date).
DateEvidence = tuple[str, Dated | datetime | Implausible | None]

# A date later than the time of ingest plus this is not a publication (or modification)
# date but a placeholder (2999-12-31), a typo or a wrong time zone. A day, not zero: a
# page dated in its own zone's "tomorrow" (UTC+14 is a day ahead of UTC-10) and clocks
# that disagree by minutes are real; a date beyond that is not.
FUTURE_TOLERANCE = timedelta(days=1)

# No evidence dates an article before this. The minimum dates systems write where a date
# is missing all lie before it: 0001-01-01 (.NET, Go, many ORMs), 1582-10-15 (the Gregorian
# reform, UUID time), 1601-01-01 (Windows file times), 1753-01-01 (SQL Server's datetime).
# After it, real dates begin: digitised newspaper archives, the oldest news this pipeline
# is expected to ingest, are mostly from the 19th century on. Placeholders after 1800
# (1900-01-01, 1970-01-01) are real dates of real archives, so no floor can tell them
# apart. Evidence that knows better keeps a stricter floor of its own (a web page's
# metadata: `normalizers.dates.MIN_YEAR`).
EARLIEST_DATE = datetime(1800, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class DatePick:
    """The date chosen from the evidence, the evidence that gave it (`none`), and the evidence passed over."""

    dated: Dated | None
    source: str
    warnings: tuple[str, ...] = ()

    @property
    def when(self) -> datetime | None:
        """The chosen instant in UTC."""
        return self.dated.when if self.dated is not None else None


def pick_date(evidence: Iterable[DateEvidence], as_of: datetime | None, what: str = "publication date") -> DatePick:
    """The first evidence with a plausible date: not before `EARLIEST_DATE`, not after `as_of` + `FUTURE_TOLERANCE`.

    Without `as_of`, no date is too late.

    Evidence is read in order and only as far as needed, so a lazy iterable pays for
    later evidence only when earlier evidence is missing or rejected. Each rejected date
    (implausible, too early, or in the future) gets a warning naming its value and its
    evidence. A naive `as_of` is read as UTC.
    """
    if as_of is not None and as_of.tzinfo is None:
        as_of = as_of.replace(tzinfo=UTC)
    warnings: list[str] = []
    rejected: set[tuple[str, str]] = set()
    for source, given in evidence:
        if given is None:
            continue
        if isinstance(given, Implausible):
            value, reason = given.value, given.reason
        else:
            dated = given if isinstance(given, Dated) else Dated.instant(given)
            if dated.when < EARLIEST_DATE:
                reason = f"is before {EARLIEST_DATE.year}, earlier than any news"
            elif as_of is None or dated.when <= as_of + FUTURE_TOLERANCE:
                return DatePick(dated, source, tuple(warnings))
            else:
                reason = f"is more than a day after the time of ingest ({as_of.isoformat(timespec='seconds')})"
            value = dated.when.isoformat()
        if (source, value) not in rejected:  # the same value twice (two meta tags) warns once
            rejected.add((source, value))
            warnings.append(f"{what} {value} from {source} {reason}; not used")
    return DatePick(None, "none", tuple(warnings))


def unrepresentable(text: str) -> Implausible:
    """A date written validly but outside the years 1 to 9999 once in UTC (`+10000-01-01`, `9999-12-31T23:59-05:00`)."""
    return Implausible(repr(text[:100]), "is outside the years 1 to 9999 that a date in UTC can have")


def epoch_to_utc(seconds: float | None) -> datetime | None:
    """A POSIX timestamp (a file's mtime) as an aware UTC datetime; None when absent or out of range."""
    if seconds is None:
        return None
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):  # NaN, or a year past 9999
        return None


# --- Byte-order marks ----------------------------------------------------------------------

# Longest first: the UTF-32-LE mark starts with the UTF-16-LE one.
BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)


def sniff_bom(raw: bytes) -> tuple[str, bytes] | None:
    """(codec, bytes after the mark) when `raw` opens with a Unicode byte-order mark, else None."""
    for bom, codec in BOMS:
        if raw.startswith(bom):
            return codec, raw[len(bom) :]
    return None
