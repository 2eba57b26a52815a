"""Remote files read in place: WARC files over http(s) or in an S3 bucket, with ranged reads to resume at an offset.

A `RemoteFile` is a seekable, read-only file over HTTP `Range` requests (or S3's
`GetObject` with `Range`): reading streams from the current position, and seeking
closes the stream and opens another at the new position on the next read. So a WARC
file whose last run stopped at byte 700,000,000 is read on from there, not downloaded
again. A stream that breaks mid-way is opened again at the position reached (a few
times), so a dropped connection costs a request, not the file.

A listing (`.paths` or `.paths.gz`, as Common Crawl publishes one per crawl) names
files by path relative to where it lives: `https://host/` for a listing on
`https://host/...`, the bucket for `s3://bucket/...`. Each line is taken as a path under
that root, never as a URL of its own, so a listing cannot point a run anywhere else.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from warehouse.bucket import Bucket, BucketUrl

__all__ = ["RemoteError", "RemoteFile", "expand", "is_remote", "remote_stat"]

_READ_ATTEMPTS = 3
_LISTING_MAX_BYTES = 64 << 20  # a month of CC-NEWS lists a few hundred paths: far below
_CHUNK = 1 << 20


class RemoteError(OSError):
    """A remote file or listing that cannot be read (status, size, network): the message says which and why."""


def is_remote(location: str) -> bool:
    """Whether a WARC location is a URL (http, https or s3) rather than a local path."""
    return urlsplit(location).scheme.lower() in ("http", "https", "s3")


@dataclass(frozen=True, slots=True)
class _Where:
    scheme: str
    url: str
    bucket: str = ""
    key: str = ""


def _where(url: str) -> _Where:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "s3":
        if not parts.netloc or not parts.path.strip("/"):
            raise RemoteError(f"{url}: an s3 URL names a bucket and a key (s3://bucket/key)")
        return _Where("s3", url, parts.netloc, parts.path.lstrip("/"))
    if scheme not in ("http", "https") or not parts.hostname:
        raise RemoteError(f"{url}: not an http(s) or s3 URL")
    return _Where(scheme, url)


class Remote:
    """The clients remote reads use: one httpx client (timeouts, User-Agent) and S3 clients per bucket."""

    def __init__(self, user_agent: str = "newsflow/0.1", timeout: float = 60.0) -> None:
        self.http = httpx.Client(
            headers={"User-Agent": user_agent, "Accept-Encoding": "identity"},
            timeout=timeout,
            follow_redirects=True,
        )
        self._buckets: dict[str, Bucket] = {}

    def bucket(self, name: str) -> Bucket:
        """The S3 client of a bucket (configured the usual AWS way)."""
        if name not in self._buckets:
            self._buckets[name] = Bucket(BucketUrl(name, ""))
        return self._buckets[name]

    def close(self) -> None:
        """Close the HTTP client."""
        self.http.close()

    def __enter__(self) -> Remote:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def remote_stat(remote: Remote, url: str) -> tuple[int, int]:
    """(size, version) of a remote file; the version changes when the file does (from its ETag or Last-Modified)."""
    where = _where(url)
    try:
        if where.scheme == "s3":
            info = remote.bucket(where.bucket).head(where.key)
            if info is None:
                raise RemoteError(f"{url}: no such object")
            return info.size, _version(info.etag)
        response = remote.http.head(url)
    except RemoteError:
        raise
    except Exception as exc:
        raise RemoteError(f"{url}: {type(exc).__name__}: {exc}") from None
    if response.status_code != 200:
        raise RemoteError(f"{url}: HTTP {response.status_code} to HEAD")
    try:
        size = int(response.headers.get("Content-Length", ""))
    except ValueError:
        raise RemoteError(f"{url}: the server gives no Content-Length") from None
    tag = response.headers.get("ETag") or response.headers.get("Last-Modified") or str(size)
    return size, _version(tag)


def _version(tag: str) -> int:
    """A stable 63-bit number for a version tag (kept where a local file keeps its mtime)."""
    return int.from_bytes(hashlib.sha256(tag.encode()).digest()[:8], "big") >> 1


def expand(remote: Remote, urls: tuple[str, ...]) -> Iterator[tuple[str, str | None]]:
    """The WARC files `urls` name, in order: (url, None), or (listing url, why it cannot be read)."""
    for url in urls:
        path = urlsplit(url).path
        if not path.endswith((".paths", ".paths.gz")):
            yield url, None
            continue
        try:
            lines = _listing(remote, url)
        except RemoteError as exc:
            yield url, str(exc)
            continue
        root = _root(url)
        for line in lines:
            rel = line.strip().lstrip("/")
            if not rel or rel.startswith("#"):
                continue
            if "://" in rel or any(p in ("..", ".") for p in rel.split("/")):
                yield url, f"{url}: refused the line {rel[:200]!r} (a path under the listing's root is expected)"
                continue
            yield root + quote(rel, safe="/-_.~%"), None


def _root(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme.lower()}://{parts.netloc}/"


def _listing(remote: Remote, url: str) -> list[str]:
    with RemoteFile(remote, url) as fh:
        raw = fh.read(_LISTING_MAX_BYTES + 1)
    if len(raw) > _LISTING_MAX_BYTES:
        raise RemoteError(f"{url}: a listing over {_LISTING_MAX_BYTES >> 20} MB")
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise RemoteError(f"{url}: not a readable gzip listing ({exc})") from None
    return raw.decode("utf-8", errors="replace").splitlines()


class RemoteFile(io.RawIOBase):
    """A remote file opened for reading, seekable (each seek is a new ranged request on the next read)."""

    def __init__(self, remote: Remote, url: str) -> None:
        super().__init__()
        self._remote = remote
        self._where = _where(url)
        self._pos = 0
        self._stream: Iterator[bytes] | None = None
        self._closer: Any = None
        self._pending = b""
        self.name = url

    def readable(self) -> bool:
        """Always."""
        return True

    def seekable(self) -> bool:
        """Always: a seek is a new ranged request."""
        return True

    def tell(self) -> int:
        """The position of the next byte read."""
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        """Move to `offset` (from the start or the current position; not from the end)."""
        if whence == io.SEEK_CUR:
            offset += self._pos
        elif whence != io.SEEK_SET:
            raise io.UnsupportedOperation("a remote file is not seeked from its end")
        if offset < 0:
            raise ValueError("negative seek position")
        if offset != self._pos:
            self._drop()
            self._pos = offset
        return self._pos

    def readinto(self, buffer: Any) -> int:
        """Read up to len(buffer) bytes at the position."""
        view = memoryview(buffer).cast("B")
        for attempt in range(_READ_ATTEMPTS):
            try:
                if not self._pending:
                    if self._stream is None:
                        self._open()
                    assert self._stream is not None
                    self._pending = next(self._stream, b"")
                    if not self._pending:
                        return 0
                n = min(len(view), len(self._pending))
                view[:n] = self._pending[:n]
                self._pending = self._pending[n:]
                self._pos += n
                return n
            except RemoteError:
                raise
            except (httpx.HTTPError, OSError) as exc:  # the stream broke: open it again where it stood
                self._drop()
                if attempt == _READ_ATTEMPTS - 1:
                    why = f"{type(exc).__name__}: {exc}"
                    raise RemoteError(f"{self.name}: reading at byte {self._pos}: {why}") from None
        return 0

    def _open(self) -> None:
        where = self._where
        if where.scheme == "s3":
            client = self._remote.bucket(where.bucket).client
            try:
                got = client.get_object(Bucket=where.bucket, Key=where.key, Range=f"bytes={self._pos}-")
            except client.exceptions.NoSuchKey:
                raise RemoteError(f"{self.name}: no such object") from None
            except client.exceptions.ClientError as exc:
                if exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 416:
                    self._stream = iter(())
                    return
                raise RemoteError(f"{self.name}: {exc}") from None
            body = got["Body"]
            self._closer = body
            self._stream = body.iter_chunks(_CHUNK)
            return
        request = self._remote.http.build_request("GET", where.url, headers={"Range": f"bytes={self._pos}-"})
        response = self._remote.http.send(request, stream=True)
        if response.status_code == 416:  # at or past the end
            response.close()
            self._stream = iter(())
            return
        if response.status_code == 200 and self._pos > 0:
            response.close()
            raise RemoteError(f"{self.name}: the server ignores Range requests, so a read cannot resume at an offset")
        if response.status_code not in (200, 206):
            response.close()
            raise RemoteError(f"{self.name}: HTTP {response.status_code}")
        self._closer = response
        self._stream = response.iter_raw(_CHUNK)

    def _drop(self) -> None:
        self._pending = b""
        self._stream = None
        if self._closer is not None:
            closer, self._closer = self._closer, None
            with contextlib.suppress(Exception):  # a stream being abandoned: nothing to report
                closer.close()

    def close(self) -> None:
        """Close the stream in use, if any."""
        self._drop()
        super().close()
