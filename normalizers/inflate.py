"""Every member of a gzip stream inflated under a cap, in time linear in the stream's size.

A gzip file may hold several members one after the other (`cat a.gz b.gz`), each
inflated by a decompressor of its own. `zlib`'s `unused_data` hands back the rest of the
input after a member, copied: read that way, a stream of a million tiny members costs
the square of its size (minutes for a 20 MB sitemap). Here a member is fed a growing
window of the input, so what comes back is never more than the last window.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass

__all__ = ["GZIP_MAGIC", "GzipError", "Inflated", "inflate_members"]

GZIP_MAGIC = b"\x1f\x8b"
_FIRST_WINDOW = 1 << 9
_LAST_WINDOW = 1 << 20
_NONZERO = re.compile(rb"[^\x00]")


class GzipError(ValueError):
    """The stream is `corrupt`, `truncated` (ends inside a member) or `too_large` (inflates past the cap)."""

    def __init__(self, kind: str, message: str, inflated: int) -> None:
        super().__init__(message)
        self.kind = kind
        self.inflated = inflated  # bytes inflated before it stopped


@dataclass(frozen=True, slots=True)
class Inflated:
    """The members' bytes, and how many bytes after the last one were not zero padding (ignored)."""

    data: bytes
    trailing: int


def inflate_members(raw: bytes, limit: int) -> Inflated:
    """Inflate the gzip members at the start of `raw` (zero padding between them skipped) to at most `limit` bytes."""
    view = memoryview(raw)
    parts: list[bytes] = []
    size = pos = 0
    while raw.startswith(GZIP_MAGIC, pos):
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        window = _FIRST_WINDOW
        while True:
            chunk = view[pos : pos + window]
            try:
                # The cap bounds what one call may inflate: a small bomb never expands first.
                part = inflater.decompress(chunk, limit + 1 - size)
            except zlib.error as exc:
                raise GzipError("corrupt", str(exc), size) from exc
            size += len(part)
            parts.append(part)
            if size > limit:
                raise GzipError("too_large", f"inflates past {limit} bytes", size)
            if inflater.eof:
                pos += len(chunk) - len(inflater.unused_data)
                break
            pos += len(chunk)
            if pos >= len(raw):
                raise GzipError("truncated", "ends before its end marker", size)
            window = min(window * 2, _LAST_WINDOW)
        # Zero padding (tape and block devices) is what gzip itself skips silently.
        found = _NONZERO.search(raw, pos)
        pos = len(raw) if found is None else found.start()
    return Inflated(b"".join(parts), len(raw) - pos)
