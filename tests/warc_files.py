"""WARC files built for the tests from the fixture pages (AEB pages, MIT; WCXB dev pages, CC-BY-4.0)."""

from __future__ import annotations

import gzip
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures" / "html"
PAGES = sorted(p for p in FIXTURES.glob("*.html.gz") if not p.name.startswith("wcxb-0362"))


@dataclass(frozen=True)
class Rec:
    """One record to write: a response unless `kind` says otherwise."""

    uri: str
    body: bytes
    status: int = 200
    content_type: str = "text/html; charset=utf-8"
    kind: str = "response"
    date: str = "2024-03-05T10:00:00Z"
    extra: str = ""  # more WARC header lines, each ending in \r\n
    language: str | None = None  # a Content-Language header


def page(i: int) -> bytes:
    """The i-th fixture page's HTML (cycling)."""
    return gzip.decompress(PAGES[i % len(PAGES)].read_bytes())


def record_bytes(rec: Rec) -> bytes:
    """One WARC/1.0 record, uncompressed."""
    rid = f"<urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, f'{rec.kind} {rec.date} {rec.uri}')}>"
    if rec.kind in ("response", "revisit"):
        lang = f"Content-Language: {rec.language}\r\n" if rec.language else ""
        http = (
            f"HTTP/1.1 {rec.status} X\r\nContent-Type: {rec.content_type}\r\n{lang}"
            f"Content-Length: {len(rec.body)}\r\n\r\n"
        ).encode() + rec.body
        ctype = "application/http; msgtype=response"
    else:
        http, ctype = rec.body, "application/warc-fields"
    head = (
        f"WARC/1.0\r\nWARC-Type: {rec.kind}\r\nWARC-Target-URI: {rec.uri}\r\nWARC-Date: {rec.date}\r\n"
        f"WARC-Record-ID: {rid}\r\nContent-Type: {ctype}\r\n{rec.extra}Content-Length: {len(http)}\r\n\r\n"
    ).encode()
    return head + http + b"\r\n\r\n"


def write_warc(path: Path, records: Sequence[Rec], compression: str = "record") -> list[int]:
    """Write `records` as a WARC file: gzip per `record` (Common Crawl's way), `whole` file, or `none`; the offsets."""
    path.parent.mkdir(parents=True, exist_ok=True)
    offsets, chunks, at = [], [], 0
    for rec in records:
        raw = record_bytes(rec)
        chunk = gzip.compress(raw, mtime=0) if compression == "record" else raw
        offsets.append(at)
        chunks.append(chunk)
        at += len(chunk)
    data = b"".join(chunks)
    path.write_bytes(gzip.compress(data, mtime=0) if compression == "whole" else data)
    return offsets


def news(n: int, start: int = 0, host: str = "news.example.org", date: str = "2024-03-05T10:00:00Z") -> list[Rec]:
    """`n` response records of fixture pages at distinct URLs of `host`."""
    return [Rec(f"https://{host}/story/{i}", page(i), date=date) for i in range(start, start + n)]
