"""The parts both normalisers share: output cleaning, date evidence, byte-order marks."""

from __future__ import annotations

import codecs
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from normalizers.common import (
    EARLIEST_DATE,
    FUTURE_TOLERANCE,
    DateEvidence,
    Implausible,
    clean_layout,
    clean_line,
    epoch_to_utc,
    pick_date,
    sniff_bom,
)

AS_OF = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("plain text", "plain text"),
        ("  runs \t of\n whitespace ", "runs of whitespace"),
        ("esc\x1b[0m bell\x07 nul\x00 del\x7f", "esc [0m bell nul del"),
        ("c1\x85nel \x9bcsi \x80", "c1 nel csi"),
        ("\x00\x01\x1f", ""),
        # Format characters are text: joiners (Devanagari, Persian), bidi marks, soft hyphen.
        (
            "\u0915\u094d\u200d\u0937 \u0645\u200c\u06cc \u200fabc\u00ad",
            "\u0915\u094d\u200d\u0937 \u0645\u200c\u06cc \u200fabc\u00ad",
        ),
        ("nbsp\u00a0and\u2028line separator", "nbsp and line separator"),
        # Bidi embeddings, overrides and isolates reorder what follows them: removed, taking no room.
        ("invoice\u202ecod.exe\u202c and \u2066isolated\u2069", "invoicecod.exe and isolated"),
        ("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069", ""),
        # ... but the implicit marks (LRM, RLM, ALM) and the word joiner are text.
        ("\u200eabc\u200f \u061cx\u2060y", "\u200eabc\u200f \u061cx\u2060y"),
    ],
)
def test_clean_line(raw: str, clean: str) -> None:
    assert clean_line(raw) == clean
    assert clean_line(clean) == clean


def test_clean_layout_keeps_line_breaks_and_tabs() -> None:
    assert clean_layout("a\tb\nc\r\nd\x0ce\x0bf\x1bg\x85h\u202ei\u2069j") == "a\tb\nc\r\nd\x0ce f g hij"


def test_pick_date_passes_over_dates_before_the_floor_and_implausible_ones() -> None:
    early = EARLIEST_DATE - timedelta(microseconds=1)
    odd = Implausible("'+10000-01-01'", "is outside the years 1 to 9999")
    evidence: list[DateEvidence] = [("sidecar", early), ("meta", odd), ("meta", odd), ("mtime", EARLIEST_DATE)]
    for as_of in (AS_OF, None):  # a floor, not a clock rule
        picked = pick_date(evidence, as_of)
        assert (picked.when, picked.source) == (EARLIEST_DATE, "mtime")
        assert picked.warnings == (
            "publication date 1799-12-31T23:59:59.999999+00:00 from sidecar is before 1800, earlier than any news; "
            "not used",
            "publication date '+10000-01-01' from meta is outside the years 1 to 9999; not used",
        )


def test_pick_date_reads_evidence_only_as_far_as_needed() -> None:
    read: list[str] = []

    def evidence() -> Iterator[DateEvidence]:
        for name, when in [("a", None), ("b", AS_OF), ("c", AS_OF - timedelta(days=1))]:
            read.append(name)
            yield name, when

    assert pick_date(evidence(), AS_OF) == pick_date(evidence(), None)
    assert pick_date(evidence(), AS_OF).source == "b"
    assert read == ["a", "b"] * 3


def test_pick_date_passes_over_future_dates_with_one_warning_each() -> None:
    future = AS_OF + FUTURE_TOLERANCE + timedelta(seconds=1)
    evidence: list[DateEvidence] = [("sidecar", future), ("meta", future), ("meta", future), ("mtime", AS_OF)]
    picked = pick_date(evidence, AS_OF)
    assert (picked.when, picked.source) == (AS_OF, "mtime")
    assert len(picked.warnings) == 2
    assert all(future.isoformat() in w and "2024-06-01T12:00:00+00:00" in w for w in picked.warnings)
    assert "from sidecar" in picked.warnings[0] and "from meta" in picked.warnings[1]
    # The tolerance is inclusive; a naive time of ingest is read as UTC.
    edge = AS_OF + FUTURE_TOLERANCE
    assert pick_date([("x", edge)], AS_OF.replace(tzinfo=None)).when == edge
    assert pick_date([("x", future)], AS_OF, "modification date").warnings[0].startswith("modification date ")
    alone = pick_date([("x", future)], AS_OF)
    assert (alone.when, alone.source, len(alone.warnings)) == (None, "none", 1)


def test_epoch_to_utc() -> None:
    assert epoch_to_utc(0) == datetime(1970, 1, 1, tzinfo=UTC)
    assert epoch_to_utc(None) is None
    assert epoch_to_utc(1e20) is None
    assert epoch_to_utc(float("nan")) is None


def test_sniff_bom() -> None:
    assert sniff_bom(codecs.BOM_UTF32_LE + b"x") == ("utf-32-le", b"x")  # not UTF-16-LE and a NUL
    assert sniff_bom(codecs.BOM_UTF16_LE + b"x") == ("utf-16-le", b"x")
    assert sniff_bom(codecs.BOM_UTF8 + b"x") == ("utf-8", b"x")
    assert sniff_bom(b"x") is None
