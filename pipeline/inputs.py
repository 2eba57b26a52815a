"""What a run reads: a file of a folder, a fetched document in the raw store, or a URL still to fetch.

Each kind says what it is, with no field standing in for another's: a file has a path
and stat facts, a fetched document a URL and the digest of its stored body, a listed
URL what its feed said. They are named tuples, immutable and cheap to pickle: a run
makes one per input and sends them to the workers in batches of 5,000.
"""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

from pipeline.files import file_uri
from warehouse.state import FileState

__all__ = [
    "FetchedInput",
    "FileInput",
    "Input",
    "ListedUrl",
    "Readable",
    "WarcInput",
    "is_current",
    "stamp",
    "state_facts",
]


class FileInput(NamedTuple):
    """A file of a `files` source, as the walk of its folder found it."""

    rel: str  # path under the source folder: the state key
    path: str
    size: int
    mtime_ns: int
    sidecar: str | None  # the `<stem>.json` beside it, if any
    sidecar_sig: str  # the sidecar's "size:mtime_ns" ("" without one; "!reason" when unusable)
    prev: FileState | None = None
    # Not a readable input: (reason, message); it is quarantined as such.
    problem: tuple[str, str] | None = None

    @property
    def uri(self) -> str:
        """Where the input came from (a file: URI)."""
        return file_uri(self.path)


class FetchedInput(NamedTuple):
    """A document of an HTTP source whose body the raw store holds."""

    rel: str  # the canonical URL: the state key
    uri: str  # the URL it was fetched from
    raw_sha256: str | None  # its body in the raw store; None when none was ever stored (read_error)
    size: int
    fetched_ns: int  # when it was fetched (what a file's mtime is to a file)
    content_type: str | None = None
    hint_title: str | None = None  # what the feed or sitemap said of it
    hint_published_at: datetime | None = None
    prev: FileState | None = None


class ListedUrl(NamedTuple):
    """A URL a feed or sitemap lists, not fetched yet: a backfill unit fetches it when it runs."""

    rel: str  # the canonical URL: the state key
    uri: str
    stored_sha256: str | None  # the body stored from an earlier fetch, if any
    hint_title: str | None = None
    hint_published_at: datetime | None = None
    prev: FileState | None = None


class WarcInput(NamedTuple):
    """An HTTP response record of a WARC file, its payload copied to the segment's spool file."""

    rel: str  # "<WARC file under the source folder>#<WARC-Record-ID>": the state key
    uri: str  # the record's target URI
    spool: str  # the spool file holding the payload, and where in it
    offset: int
    size: int
    record_ns: int  # WARC-Date (what a fetch time is to a fetched document)
    payload_sha256: str
    content_type: str | None = None
    prev: FileState | None = None


Input = FileInput | FetchedInput | ListedUrl
Readable = FileInput | FetchedInput | WarcInput


def state_facts(inp: Readable) -> tuple[int, int, str]:
    """(size, mtime_ns, sidecar) as the state records them: a fetched document's time is its fetch time."""
    if isinstance(inp, FileInput):
        return inp.size, inp.mtime_ns, inp.sidecar_sig
    if isinstance(inp, WarcInput):
        return inp.size, inp.record_ns, ""
    return inp.size, inp.fetched_ns, ""


def stamp(inp: Input) -> str:
    """What identifies the input's bytes before reading them: a file's stat facts, else its body's digest."""
    if isinstance(inp, FileInput):
        return f"{inp.size}:{inp.mtime_ns}:{inp.sidecar_sig}"
    if isinstance(inp, FetchedInput):
        return inp.raw_sha256 or ""
    return f"stored:{inp.stored_sha256 or ''}"


def is_current(inp: Readable, state: FileState | None, version: str, digest: str | None = None) -> bool:
    """Whether the stored outcome of `inp` still stands: the state saw the same bytes, with the same normaliser.

    Unread, a file is judged by its stat facts and a fetched document by its body's
    digest; read, by the `digest` of its bytes and its sidecar, so a file touched but
    not changed is current.
    """
    if state is None or state.normalizer_version != version:
        return False
    if digest is not None:
        return state.raw_sha256 == digest and state.sidecar == state_facts(inp)[2]
    if isinstance(inp, FileInput):
        return (state.size, state.mtime_ns, state.sidecar) == (inp.size, inp.mtime_ns, inp.sidecar_sig)
    if isinstance(inp, WarcInput):
        return state.raw_sha256 == inp.payload_sha256
    return inp.raw_sha256 is not None and state.raw_sha256 == inp.raw_sha256
