"""WARC sources: the HTML responses of WARC files (Common Crawl's CC-NEWS layout) as articles.

A run reads the source folder's WARC files (gzip per record, as Common Crawl writes
them, a whole-file gzip, or uncompressed) in segments of at most `SEGMENT_RECORDS`
records it keeps (and `SEGMENT_BYTES` of their payloads). The scan (in the run's process, with fastwarc) filters records
before any extraction: only `response` records with HTTP status 200, an HTML
content type and no `WARC-Truncated` field, of the configured hosts, capture dates
and languages, are kept; the others are counted by reason. A kept record's payload
is copied to the segment's spool file, which the normaliser workers read slices of,
so each WARC byte is decompressed once.

Each segment is one commit, and it carries every scanned file's progress (the next
record's offset, ordinal and WARC-Record-ID): a run killed in the middle of a 1 GB
file resumes at its last committed record. A file cut short (still being written, or
a broken download) is read up to its last whole record and resumed there once it
grows; a file whose size or modification time changed otherwise is read again from
the start (records already written are recognised by their payload digest).
"""

from __future__ import annotations

import hashlib
import io
import re
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO, cast
from urllib.parse import urlsplit

from fastwarc.warc import ArchiveIterator, WarcRecord, WarcRecordType

from pipeline.config import SourceConfig, WarcFilter
from pipeline.discover import Plan, discover_files
from pipeline.files import InputProblem, open_confined, printable, real_root
from pipeline.inputs import WarcInput
from pipeline.remote import Remote, RemoteError, RemoteFile, expand, is_remote, remote_stat
from warehouse.layout import DataRoot
from warehouse.state import StateStore, WarcProgress

__all__ = ["SEGMENT_RECORDS", "Segment", "files_read", "plan_segment", "record_host", "scan_file"]

SEGMENT_RECORDS = 5_000  # records kept per segment, i.e. per commit of a WARC source
SEGMENT_BYTES = 256 << 20  # and the most payload bytes a segment spools (pages may be up to max_bytes each)
_HTML_TYPES = ("text/html", "application/xhtml+xml")
_REMOTE_BUFFER = 1 << 20  # bytes read per ranged request's chunk from a remote WARC file
_LANG_SNIFF = 4096  # bytes of a page searched for <html lang="..">
_HTML_LANG = re.compile(rb"<html\b[^>]*?\blang\s*=\s*[\"']?([A-Za-z]{2,3})\b", re.IGNORECASE)
# Record types that only accompany responses (the crawler's request, the file's
# header, crawl metadata): passed over without counting.
_COMPANIONS = WarcRecordType.warcinfo | WarcRecordType.request | WarcRecordType.metadata


@dataclass(slots=True)
class Segment:
    """What one scan of a WARC source found: the records to normalise and every file's progress."""

    plan: Plan
    progress: list[WarcProgress] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)
    notes: list[str] = field(default_factory=list)
    more: bool = False  # records are left for another segment


def record_host(uri: str) -> str:
    """The lower-case host of a target URI ('' when it has none, or cannot be read)."""
    try:
        return (urlsplit(uri).hostname or "").rstrip(".")
    except ValueError:  # an unclosed IPv6 bracket, a bad port
        return ""


def _language(record: WarcRecord, head: bytes) -> str | None:
    """The page's declared language (primary subtag), from its HTTP header or its <html> element."""
    declared = record.http_headers.get("Content-Language") if record.http_headers is not None else None
    if declared:
        return declared.split(",", 1)[0].strip().split("-", 1)[0].lower() or None
    found = _HTML_LANG.search(head)
    return found.group(1).decode("ascii").lower() if found else None


def _warc_files(
    src: SourceConfig,
    seg: Segment,
    first: bool,
    remote: Remote,
    known: dict[str, WarcProgress],
    passed: frozenset[str],
) -> Iterator[tuple[str, str, int, int]]:
    """(rel, path, size, mtime_ns) of the source's WARC files, in order: its folder's (sorted), or its URLs'.

    A local file that cannot be one (a link leading out of the folder, a FIFO...) is
    never opened: it is counted as `not-a-file` and named in the notes of the `first`
    segment. A remote file is named by its URL, and its ETag (or Last-Modified) stands
    for the mtime; one read to its end is not asked about again (archives do not
    change; `--force` reads it again). One that cannot be reached is `unreadable`.
    Files in `passed` (left for the next run) are not listed.
    """
    if src.path is not None:
        for rel, path, size, mtime, _, _, problem in discover_files(src):
            if problem is None:
                if rel not in passed:
                    yield rel, path, size, mtime
            elif first:
                seg.skipped["not-a-file"] += 1
                seg.notes.append(f"{printable(rel)}: not read: {problem[1]}")
        return
    listed = list(expand(remote, src.urls))  # listings are read whole (a few hundred paths); files lazily
    for _url, refused in listed:
        if refused is not None and first:
            seg.skipped["unreadable"] += 1
            seg.notes.append(printable(refused)[:300])
    for url, refused in listed:
        if refused is not None or url in passed:
            continue
        prev = known.get(url)
        if prev is not None and prev.done:
            yield url, url, prev.size, prev.mtime_ns
            continue
        try:
            size, version = remote_stat(remote, url)
        except RemoteError as exc:
            seg.skipped["unreadable"] += 1
            seg.notes.append(f"{printable(str(exc))[:300]}; tried again next run")
            # Passed over for the rest of the run, and read from its start by the next one.
            seg.progress.append(WarcProgress(src.name, url, 0, 0, 0, 0, "", False, True))
            continue
        yield url, url, size, version


def plan_segment(
    src: SourceConfig,
    root: DataRoot,
    spool: Path,
    first: bool = True,
    passed: frozenset[str] = frozenset(),
    key: str | None = None,
) -> Segment:
    """Scan the source's WARC files from where the last commit left them, up to `SEGMENT_RECORDS` kept records.

    The `first` segment of a run also reports the folder's entries that cannot be read;
    files in `passed` (cut short, found so by an earlier segment of the run) are left.
    Progress through the files is kept under `key` (a backfill's own), else the source's name.
    """
    wanted = src.warc
    key = key or src.name
    with StateStore(root.state) as store:
        known = store.warc_progress(key)
    todo: list[WarcInput] = []
    seg = Segment(Plan(src.name, 0, 0, 0, 0, ()))
    spool.parent.mkdir(parents=True, exist_ok=True)
    with open(spool, "wb") as out, Remote(src.fetch.user_agent, src.fetch.timeout) as remote:
        for rel, path, size, mtime_ns in _warc_files(src, seg, first, remote, known, passed):
            prev = known.get(rel)
            if _read_whole(prev, size, mtime_ns):
                continue
            same = prev is not None and (prev.size, prev.mtime_ns) == (size, mtime_ns)
            grown = prev is not None and prev.cut and size > prev.size
            room = SEGMENT_RECORDS - len(todo)
            if room <= 0 or out.tell() >= SEGMENT_BYTES:
                seg.more = True
                break
            start = prev if same or grown else None
            progress = scan_file(src, rel, path, (size, mtime_ns), start, wanted, out, room, todo, seg, remote)
            seg.progress.append(progress)
            if not progress.done and not progress.cut:
                seg.more = True
                break
    seg.progress = [p._replace(source=key) for p in seg.progress]
    with StateStore(root.state) as store:
        states = store.get(src.name, [t.rel for t in todo])
    items = tuple(t._replace(prev=states.get(t.rel)) for t in todo)
    new = sum(1 for t in items if t.prev is None)
    seg.plan = Plan(src.name, len(items), new, len(items) - new, 0, items)
    return seg


def files_read(src: SourceConfig, root: DataRoot, key: str) -> tuple[int, int]:
    """(WARC files of the source, of which read to their end as they are now under progress `key`): a dry run's plan.

    Writes nothing: a data root without a state database has read none.
    """
    known: dict[str, WarcProgress] = {}
    store = StateStore.existing(root.state)
    if store is not None:
        with store:
            known = store.warc_progress(key)
    seg = Segment(Plan(src.name, 0, 0, 0, 0, ()))
    files = done = 0
    with Remote(src.fetch.user_agent, src.fetch.timeout) as remote:
        for rel, _path, size, mtime_ns in _warc_files(src, seg, False, remote, known, frozenset()):
            files += 1
            done += _read_whole(known.get(rel), size, mtime_ns)
    return files, done


def _read_whole(prev: WarcProgress | None, size: int, mtime_ns: int) -> bool:
    """Whether a file was read to its end as it is now (its size and mtime unchanged since)."""
    return prev is not None and prev.done and (prev.size, prev.mtime_ns) == (size, mtime_ns)


def scan_file(
    src: SourceConfig,
    rel: str,
    path: str,
    stat: tuple[int, int],
    start: WarcProgress | None,
    wanted: WarcFilter,
    out: BinaryIO,
    room: int,
    todo: list[WarcInput],
    seg: Segment,
    remote: Remote | None = None,
) -> WarcProgress:
    """Scan one WARC file from `start` (its beginning when None), keeping at most `room` records; its new progress.

    Kept payloads are appended to `out`, the segment's spool file. A remote file (`path`
    a URL) is read through `remote`, from the offset to resume at.
    """
    cap = src.profile.max_bytes
    ordinal, offset, record_id = (start.ordinal, start.offset, start.record_id) if start is not None else (0, 0, "")

    def progress(done: bool, cut: bool = False) -> WarcProgress:
        return WarcProgress(src.name, rel, *stat, offset, ordinal, record_id, done, cut)

    kept = 0
    try:
        with _open(src, path, remote) as fh:
            last = -1  # where the last whole record starts
            for record, position, index in _records_from(fh, offset, ordinal, record_id, rel, seg):
                ordinal, offset, record_id = index, position, record.record_id or ""
                if not record_id or not record.headers.get("WARC-Type"):
                    break  # the file ends inside a record's header
                if kept >= room or out.tell() >= SEGMENT_BYTES:  # this record starts the next segment
                    return progress(False)
                why = _skip_reason(record, wanted)
                if why == "companion":
                    whole = record.reader.consume() == record.content_length
                elif why is None:
                    body = record.reader.read(cap + 1)
                    whole = len(body) == record.content_length or len(body) > cap
                    why = _language_reason(record, body, wanted) if whole else None
                    if whole and why is None:
                        todo.append(_kept(rel, record, body, out))
                        out.write(body)
                        kept += 1
                else:
                    whole = record.reader.consume() == record.content_length
                if not whole:
                    break  # the file ends inside this record's payload
                if why is not None and why != "companion":
                    seg.skipped[why] += 1
                last = position
                ordinal, offset, record_id = index + 1, -1, ""  # past it: the next record's offset comes with it
            else:
                tail = _unread_tail(fh, last, stat[0])
                if tail is None:
                    offset = stat[0] if offset == -1 else offset
                    return progress(True)
                offset = tail  # gzip members the reader stopped before: the next one is cut short
    except (OSError, ValueError, InputProblem) as exc:  # a broken stream (fastwarc's, a RemoteError) is an OSError
        seg.skipped["unreadable"] += 1
        seg.notes.append(
            f"{printable(rel)}: unreadable at record {ordinal} ({printable(str(exc))[:200]});"
            " read again when the file changes"
        )
    else:
        seg.skipped["cut-short"] += 1
        seg.notes.append(f"{printable(rel)}: ends inside record {ordinal}; read on from there when the file grows")
    # Kept records stand; the file is read again from this record when it grows or changes.
    if offset == -1:
        offset = 0  # no offset known for the record after the last whole one: read on by ordinal
    return progress(False, cut=True)


def _open(src: SourceConfig, path: str, remote: Remote | None) -> BinaryIO:
    """The WARC file at `path`: a URL read in place with ranged requests, or a file confined to the source folder."""
    if src.path is None:
        if remote is None or not is_remote(path):
            raise ValueError(f"{path}: a remote WARC file needs a URL and a client")
        return cast(BinaryIO, io.BufferedReader(RemoteFile(remote, path), _REMOTE_BUFFER))
    return open_confined(path, real_root(src.path))


def _unread_tail(fh: BinaryIO, last: int, size: int) -> int | None:
    """Where bytes follow the last whole record of a file compressed per record, unread; None when none do.

    fastwarc ends a file quietly when a gzip member is cut short within its first
    bytes: the member after the last record read is the sign of a file still growing.
    """
    if last < 0:
        return None
    fh.seek(last)
    if fh.read(2) != b"\x1f\x8b":
        return None  # not compressed per record: a cut there shows in the record itself
    fh.seek(last)
    member = zlib.decompressobj(wbits=31)
    used = 0
    while not member.eof:
        chunk = fh.read(1 << 16)
        if not chunk:
            return None  # the last record's member is the whole rest of the file
        try:
            member.decompress(chunk)
        except zlib.error:
            return None  # not a member's start after all (a whole-file stream's position)
        used += len(chunk)
    end = last + used - len(member.unused_data)
    return end if end < size else None


def _kept(rel: str, record: WarcRecord, body: bytes, out: BinaryIO) -> WarcInput:
    """The input of a kept record whose payload goes to `out` (the spool file) next."""
    when = _captured(record)
    assert when is not None, "a record without a capture date is skipped"
    return WarcInput(
        f"{rel}#{record.record_id}",
        record.headers.get("WARC-Target-URI") or "",
        str(out.name),
        out.tell(),
        len(body),
        int(when.timestamp()) * 1_000_000_000 + when.microsecond * 1000,
        hashlib.sha256(body).hexdigest(),
        record.http_headers.get("Content-Type"),
    )


def _records_from(
    fh: BinaryIO, offset: int, ordinal: int, record_id: str, rel: str, seg: Segment
) -> Iterator[tuple[WarcRecord, int, int]]:
    """The file's records from the one numbered `ordinal` (at `offset`, named `record_id`): (record, offset, ordinal).

    A file compressed per record (or not at all) is resumed by seeking to the offset;
    one gzip stream for the whole file cannot be, and is read from its start, the
    records before `ordinal` passed over unread.
    """
    if ordinal and offset > 0:
        fh.seek(offset)
        # A record starts there (a gzip member, or the text of an uncompressed one), unless
        # the offset is a whole-file gzip stream's, which means nothing to seek to.
        if fh.read(5)[:2] in (b"\x1f\x8b", b"WA"):
            fh.seek(offset)
            records = iter(ArchiveIterator(fh, parse_http=True, auto_decode="all"))
            try:
                first = next(records, None)
            except (OSError, ValueError):
                first = None
            if first is not None and (first.record_id == record_id or not record_id):
                yield first, offset, ordinal
                for n, record in enumerate(records, start=ordinal + 1):
                    yield record, record.stream_pos, n
                return
        fh.seek(0)
    records = iter(ArchiveIterator(fh, parse_http=True, auto_decode="all"))
    for n, record in enumerate(records):
        if n < ordinal:
            continue
        if n == ordinal and record_id and record.record_id != record_id:
            seg.notes.append(f"{printable(rel)}: record {ordinal} is not the one its last run stopped at")
        yield record, record.stream_pos, n


def _skip_reason(record: WarcRecord, wanted: WarcFilter) -> str | None:
    """Why a record is not an article to extract (None: it is), from its headers alone."""
    kind = record.record_type
    if kind == WarcRecordType.revisit:
        return "revisit"
    if kind != WarcRecordType.response:
        return "companion" if kind & _COMPANIONS else "not-response"
    if record.headers.get("WARC-Truncated"):
        return "truncated"
    if not record.is_http or record.http_headers is None:
        return "not-http"
    if record.http_headers.status_code != 200:
        return "http-status"
    ctype = (record.http_headers.get("Content-Type") or "").split(";", 1)[0].strip().lower()
    if ctype and ctype not in _HTML_TYPES:
        return "not-html"
    if not wanted.host_ok(record_host(record.headers.get("WARC-Target-URI") or "")):
        return "host"
    when = _captured(record)
    if when is None:
        return "no-warc-date"  # WARC requires it: without it the record has no capture time to date it by
    if not wanted.date_ok(when.date()):
        return "date"
    return None


def _captured(record: WarcRecord) -> datetime | None:
    """When the record was captured (its WARC-Date, UTC), None when it has no readable one."""
    when = record.record_date
    if when is None:
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _language_reason(record: WarcRecord, body: bytes, wanted: WarcFilter) -> str | None:
    """Why a page declaring a language the source does not keep is skipped (undeclared pages are kept)."""
    if not wanted.languages:
        return None
    lang = _language(record, body[:_LANG_SNIFF])
    return None if lang is None or lang in wanted.languages else "language"
