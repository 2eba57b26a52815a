"""Reading dates from text (normalizers.dates): formats, zones, precision, implausible values."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from normalizers.common import Dated, Implausible
from normalizers.dates import english_date, parse_date, read_date


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-03-15T10:30:00Z", datetime(2024, 3, 15, 10, 30, tzinfo=UTC)),
        ("2024-03-15T10:30:00.123456789+02:00", datetime(2024, 3, 15, 8, 30, 0, 123456, tzinfo=UTC)),
        ("2024-03-15 10:30:00 +0200", datetime(2024, 3, 15, 8, 30, tzinfo=UTC)),
        ("2024-03-15T10:30:00", datetime(2024, 3, 15, 10, 30, tzinfo=UTC)),  # naive -> UTC
        ("2024-03-15", datetime(2024, 3, 15, tzinfo=UTC)),
        ("Fri, 15 Mar 2024 10:30:00 GMT", datetime(2024, 3, 15, 10, 30, tzinfo=UTC)),
        ("Fri, 15 Mar 2024 10:30:00 -0500", datetime(2024, 3, 15, 15, 30, tzinfo=UTC)),
        ("March 5, 2024", datetime(2024, 3, 5, tzinfo=UTC)),
        ("Mar. 5, 2024 2:15 PM", datetime(2024, 3, 5, 14, 15, tzinfo=UTC)),
        ("Updated 5 March 2024", datetime(2024, 3, 5, tzinfo=UTC)),
        ("5th Sept 2024, 12:05 am", datetime(2024, 9, 5, 0, 5, tzinfo=UTC)),
        ("2019/11/19", datetime(2019, 11, 19, tzinfo=UTC)),
        ("2019/11/19 08:05", datetime(2019, 11, 19, 8, 5, tzinfo=UTC)),
        ("1970-01-01T00:00:00Z", None),
        ("2150-01-01", None),
        ("0001-01-01T00:00:00+14:00", None),
        ("February 30, 2024", None),
        ("soon", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_date(value: str | None, expected: datetime | None) -> None:
    assert parse_date(value) == expected


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("1970-01-01T00:00:00Z", "1970-01-01T00:00:00+00:00"),
        ("2150-01-01", "2150-01-01T00:00:00+00:00"),
        ("March 5, 0001", "0001-03-05T00:00:00+00:00"),
        ("0001-01-01T00:00:00+14:00", "'0001-01-01T00:00:00+14:00'"),  # before year 1 in UTC
        ("9999-12-31T23:59:59-05:00", "'9999-12-31T23:59:59-05:00'"),  # after year 9999 in UTC
        ("+10000-01-01", "'+10000-01-01'"),  # ISO 8601 expanded years, as JavaScript writes them
        ("+010000-01-01T00:00:00.000Z", "'+010000-01-01T00:00:00.000Z'"),
        ("-000001-01-01T00:00:00Z", "'-000001-01-01T00:00:00Z'"),
    ],
)
def test_read_date_says_which_dates_are_implausible(value: str, shown: str) -> None:
    got = read_date(value)
    assert isinstance(got, Implausible) and got.value == shown
    assert parse_date(value) is None


def test_read_date_reads_expanded_years_in_range_and_leaves_non_dates_alone() -> None:
    got = read_date("+002024-03-15T10:30:00Z")
    assert isinstance(got, Dated) and got.when == datetime(2024, 3, 15, 10, 30, tzinfo=UTC)
    assert got.raw == "+002024-03-15T10:30:00Z"
    got = read_date("2024-03-15")
    assert got == Dated(datetime(2024, 3, 15, tzinfo=UTC), date(2024, 3, 15), "day", "2024-03-15")
    assert parse_date("2024-03-15") == datetime(2024, 3, 15, tzinfo=UTC)
    assert read_date("soon") is None and read_date("+1-01-01") is None and read_date(None) is None


def test_parse_date_reads_naive_values_in_the_given_zone() -> None:
    assert parse_date("2024-03-15T10:30:00", "Europe/Berlin") == datetime(2024, 3, 15, 9, 30, tzinfo=UTC)
    assert parse_date("March 5, 2024 10:30 PM", "America/New_York") == datetime(2024, 3, 6, 3, 30, tzinfo=UTC)
    assert parse_date("2024-03-15T10:30:00Z", "Europe/Berlin") == datetime(2024, 3, 15, 10, 30, tzinfo=UTC)


@pytest.mark.parametrize("zone", ["Europe/Istanbul", "America/Los_Angeles", "Pacific/Kiritimati", "UTC"])
@pytest.mark.parametrize("value", ["2024-03-01", "March 1, 2024", "1 Mar 2024", "2024/03/01"])
def test_a_date_without_a_time_keeps_its_day_in_every_zone(value: str, zone: str) -> None:
    # The example: 1 March in Istanbul was stored as 2024-02-29T21:00Z, in February.
    got = read_date(value, zone)
    assert got == Dated(datetime(2024, 3, 1, tzinfo=UTC), date(2024, 3, 1), "day", value)


@pytest.mark.parametrize(
    ("value", "day", "precision"),
    [
        ("2024-02-01T01:00:00+03:00", date(2024, 2, 1), "second"),  # 31 January in UTC
        ("2024-01-31T23:30-05:00", date(2024, 1, 31), "minute"),  # 1 February in UTC
        ("2023-12-31T22:00:00-08:00", date(2023, 12, 31), "second"),
        ("Fri, 01 Mar 2024 00:30:00 +0300", date(2024, 3, 1), "second"),
    ],
)
def test_a_time_with_an_offset_keeps_the_day_it_was_published_on(value: str, day: date, precision: str) -> None:
    got = read_date(value)
    assert isinstance(got, Dated) and (got.day, got.precision) == (day, precision)
    assert got.when.date() != day or got.when.utcoffset() is not None


def test_english_date_finds_the_first_date_in_running_text_with_its_span() -> None:
    text = "Posted by Jane Doe on 5 March 2024 at 10:30 pm, updated March 6, 2024"
    found = english_date(text)
    assert found is not None
    when, precision, (start, end) = found
    assert (when, precision, text[start:end]) == (datetime(2024, 3, 5, 22, 30), "minute", "5 March 2024 at 10:30 pm")
    assert english_date("No date here, 12 Smarch 2024 either") is None
