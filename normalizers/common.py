"""Parts the text and HTML normalisers share: output cleaning, date evidence, byte-order marks.

Import-light on purpose (standard library only): the text normaliser loads it on every
run, and text-only runs must not load the HTML stack.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

__all__ = [
    "BOMS",
    "CONTROLS",
    "FUTURE_TOLERANCE",
    "LAYOUT_FREE_CONTROLS",
    "DateEvidence",
    "DatePick",
    "clean_line",
    "epoch_to_utc",
    "pick_date",
    "sniff_bom",
]

# --- Output cleaning -----------------------------------------------------------------------

# Unicode category Cc: C0 controls, DEL and C1 controls. None of them is text; format
# characters (Cf: ZWJ, ZWNJ, bidi marks, soft hyphen) are, and scripts need them, so
# they are not in the class.
CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# The same but tab, LF, FF and CR, which plain text uses for layout: a whole-document
# pass with it, before lines are split and folded, cleans every line at once.
LAYOUT_FREE_CONTROLS = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f-\x9f]")


def clean_line(text: str) -> str:
    """`text` as one clean line: control characters and whitespace runs become one space, ends trimmed."""
    if text.isprintable():
        # No control character and no whitespace but U+0020: the common case costs one C-speed scan.
        if "  " not in text and not text.startswith(" ") and not text.endswith(" "):
            return text
        return " ".join(text.split())
    return " ".join(CONTROLS.sub(" ", text).split())


# --- Dates ---------------------------------------------------------------------------------

# (evidence name, date or None): what one piece of evidence says about a date.
DateEvidence = tuple[str, datetime | None]

# A date later than the time of ingest plus this is not a publication (or modification)
# date but a placeholder (2999-12-31), a typo or a wrong time zone. A day, not zero: a
# page dated in its own zone's "tomorrow" (UTC+14 is a day ahead of UTC-10) and clocks
# that disagree by minutes are real; a date beyond that is not.
FUTURE_TOLERANCE = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class DatePick:
    """The date chosen from the evidence, the evidence that gave it (`none`), and the evidence passed over."""

    when: datetime | None
    source: str
    warnings: tuple[str, ...] = ()


def pick_date(evidence: Iterable[DateEvidence], as_of: datetime | None, what: str = "publication date") -> DatePick:
    """The first evidence with a date not later than `as_of` + `FUTURE_TOLERANCE` (any date, without `as_of`).

    Evidence is read in order and only as far as needed, so a lazy iterable pays for
    later evidence only when earlier evidence is missing or rejected. Each rejected date
    gets a warning naming its value and its evidence. A naive `as_of` is read as UTC.
    """
    if as_of is not None and as_of.tzinfo is None:
        as_of = as_of.replace(tzinfo=UTC)
    warnings: list[str] = []
    rejected: set[tuple[str, datetime]] = set()
    for source, when in evidence:
        if when is None:
            continue
        if as_of is None or when <= as_of + FUTURE_TOLERANCE:
            return DatePick(when, source, tuple(warnings))
        if (source, when) not in rejected:  # the same value twice (two meta tags) warns once
            rejected.add((source, when))
            warnings.append(
                f"{what} {when.isoformat()} from {source} is more than a day after the time of ingest "
                f"({as_of.isoformat(timespec='seconds')}); not used"
            )
    return DatePick(None, "none", tuple(warnings))


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
