"""Reading dates from text: ISO 8601, RFC 2822 and English ('March 5, 2024') dates, month names, precision.

Shared by the feed parser, the page metadata reader and the sidecar reader, so none of
them depends on another for it. Pure and standard library only; what a date is evidence
of, and which evidence wins, is `common`'s (`Dated`, `pick_date`).
"""

from __future__ import annotations

import re
from datetime import datetime
from zoneinfo import ZoneInfo

from normalizers.common import Dated, Implausible, Precision, day_date, unrepresentable

__all__ = [
    "MAX_YEAR",
    "MIN_YEAR",
    "MONTHS",
    "OUTSIDE_WEB_ERA",
    "english_date",
    "iso_precision",
    "parse_date",
    "read_date",
    "stated",
]

# English month names and abbreviations -> month number (datelines, page dates).
MONTHS = {
    name: number
    for number, names in enumerate(
        (
            ("january", "jan"),
            ("february", "feb"),
            ("march", "mar"),
            ("april", "apr"),
            ("may",),
            ("june", "jun"),
            ("july", "jul"),
            ("august", "aug"),
            ("september", "sep", "sept"),
            ("october", "oct"),
            ("november", "nov"),
            ("december", "dec"),
        ),
        start=1,
    )
    for name in names
}

# A web page's own dates outside this range are typos, placeholders (1970-01-01,
# 0001-01-01, 2999-12-31) or far future: the first news sites went online in 1994, so no
# page metadata dates an article earlier. Stricter than the floor all evidence shares
# (`common.EARLIEST_DATE`), which must admit archives of older news.
MIN_YEAR, MAX_YEAR = 1995, 2100
# Why such a date is `Implausible`, in the warning that passes it over.
OUTSIDE_WEB_ERA = f"is outside the years {MIN_YEAR} to {MAX_YEAR} a web page's own date can give"

_TIME = r"(?:,?\s+(?:at\s+)?(\d{1,2}):(\d{2})(?::(\d{2}))?\s*([ap]\.?m\.?)?)?"
# "March 5, 2024", "Mar. 5 2024 10:30 AM"
_MONTH_FIRST = re.compile(r"\b([a-z]+)\.?\s+(\d{1,2})(?:st|nd|rd|th)?,?\s+(\d{4})\b" + _TIME, re.IGNORECASE)
# "5 March 2024", "5. März" is not English, so not here
_DAY_FIRST = re.compile(r"(?<!\d)(\d{1,2})(?:st|nd|rd|th)?\.?\s+([a-z]+)\.?,?\s+(\d{4})\b" + _TIME, re.IGNORECASE)
_SECONDS = re.compile(r"\d:\d{2}:\d{2}")
_MERIDIEM = re.compile(r"\d\s*[ap]\.?m\b", re.IGNORECASE)
_FRACTION = re.compile(r"(\.\d{6})\d+")
_SLASH_DATE = re.compile(r"\d{4}/\d{2}/\d{2}(?!\d)")
# ISO 8601's expanded years, signed and of more than four digits as JavaScript's
# toISOString writes them: "+010000-01-01T00:00:00.000Z", "-000001-01-01", "+002024-03-15".
_EXPANDED_YEAR = re.compile(r"([+-]\d{4,12})(-\d{2}-\d{2}(?![0-9]).*)")
_SPACES = re.compile(r"\s+")

# A time of day in an ISO 8601 value: with seconds, or at least the hour.
_ISO_SECONDS = re.compile(r"[T ]\d{2}:?\d{2}:?\d{2}")
_ISO_TIME = re.compile(r"[T ]\d{2}")


def parse_date(value: str | None, tz: str = "UTC") -> datetime | None:
    """Parse an ISO 8601, RFC 2822 or 'March 5, 2024' date to UTC (naive ones read in `tz`); None outside 1995..2100.

    A date without a time is midnight UTC of its day.
    """
    when = read_date(value, tz)
    return when.when if isinstance(when, Dated) else None


def read_date(value: str | None, tz: str = "UTC") -> Dated | Implausible | None:
    """`parse_date` as `Dated` (day, precision, the text), or `Implausible` outside 1995..2100 or past year 9999."""
    if not value:
        return None
    text = _SPACES.sub(" ", value).strip()[:100]
    if not text:
        return None
    expanded = _EXPANDED_YEAR.fullmatch(text)
    parsed = text
    if expanded is not None:
        year = int(expanded.group(1))
        if not 1 <= year <= 9999:
            return unrepresentable(text)
        parsed = f"{year:04d}{expanded.group(2)}"
    found = _parse_iso(parsed) or _parse_rfc2822(parsed) or _parse_english(parsed)
    if found is None:
        return None
    when, precision = found
    try:
        # A page that gives no zone gives no way to know it: the source profile's zone if the
        # caller has one, else UTC, which keeps the result deterministic and off by hours at most.
        # A date without a time is a day wherever it is read: midnight UTC of that day.
        dated = stated(when, precision, text, tz)
    except OverflowError:  # year 1 or 9999 shifted past the representable range
        return unrepresentable(text)
    if MIN_YEAR <= dated.when.year <= MAX_YEAR:
        return dated
    return Implausible(dated.when.isoformat(), OUTSIDE_WEB_ERA)


def _parse_iso(text: str) -> tuple[datetime, Precision] | None:
    # fromisoformat keeps at most microseconds; some CMSs write nanoseconds, or 2024/03/15.
    candidate = _FRACTION.sub(r"\1", text)
    if _SLASH_DATE.match(candidate):
        candidate = candidate[:10].replace("/", "-") + candidate[10:]
    if len(candidate) > 10 and candidate[10] == " " and candidate[:4].isdigit():
        candidate = candidate[:10] + "T" + candidate[11:].replace(" ", "")
    try:
        return datetime.fromisoformat(candidate), iso_precision(candidate)
    except ValueError:
        return None


def _parse_rfc2822(text: str) -> tuple[datetime, Precision] | None:
    if _MERIDIEM.search(text):
        return None  # "March 5, 2024 10:30 PM": the RFC 2822 parser reads it, as 10:30
    # Imported here: the email package costs ~8 ms to load, and text-only runs, which import
    # this module for `MONTHS` and `stated`, never read an RFC 2822 date.
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return when, "second" if _SECONDS.search(text) else "minute"


def _parse_english(text: str) -> tuple[datetime, Precision] | None:
    match = english_date(text)
    if match is None:
        return None
    when, precision, _span = match
    return when, precision


def english_date(text: str) -> tuple[datetime, Precision, tuple[int, int]] | None:
    """The first 'March 5, 2024' / '5 March 2024' (with an optional time) in `text`: date, precision, span."""
    best: tuple[datetime, Precision, tuple[int, int]] | None = None
    for pattern, month_group, day_group in ((_MONTH_FIRST, 1, 2), (_DAY_FIRST, 2, 1)):
        for match in pattern.finditer(text):
            if best is not None and match.start() >= best[2][0]:
                break
            month = MONTHS.get(match.group(month_group).casefold())
            if month is None:
                continue
            hour, minute, second = (int(match.group(i) or 0) for i in (4, 5, 6))
            meridiem = (match.group(7) or "").replace(".", "").lower()
            if meridiem == "pm" and hour < 12:
                hour += 12
            elif meridiem == "am" and hour == 12:
                hour = 0
            try:
                when = datetime(int(match.group(3)), month, int(match.group(day_group)), hour, minute, second)
            except ValueError:
                continue
            precision: Precision = "day" if match.group(4) is None else "minute" if match.group(6) is None else "second"
            best = (when, precision, match.span())
            break
    return best


def iso_precision(text: str) -> Precision:
    """How much of a time an ISO 8601 value gives: `day` (no time), `minute` (no seconds) or `second`."""
    if _ISO_SECONDS.search(text):
        return "second"
    return "minute" if _ISO_TIME.search(text) else "day"


def stated(value: datetime, precision: Precision, raw: str | None, tz: str = "UTC") -> Dated:
    """`value` as evidence states it: a day at midnight UTC, a naive time in zone `tz`, an aware one as it is.

    Raises OverflowError when the instant falls outside the years 1 to 9999 in UTC.
    """
    if precision == "day":
        return day_date(value.date(), raw)
    if value.tzinfo is None:
        value = value.replace(tzinfo=ZoneInfo(tz))
    return Dated.instant(value, precision, raw)
