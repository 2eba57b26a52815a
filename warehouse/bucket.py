"""An S3 bucket (or any S3-compatible store) as the data root's system of record: objects and leases.

The client is boto3's, configured the usual AWS way (environment variables such as
`AWS_ENDPOINT_URL`, `AWS_REGION`, `AWS_ACCESS_KEY_ID`, or `~/.aws/config` and its
profiles). boto3 rather than pyarrow's or fsspec's S3 file systems: leases and commit
journals need conditional writes (`If-None-Match: *`, `If-Match: <etag>`), which
neither exposes.

A `Lease` serialises writers across machines: an object under `.leases/` created only
if absent, renewed by its holder with `If-Match`, and taken over once it has not been
renewed for its time to live. Expiry is judged on the store's clock (the object's
`Last-Modified` against the response's `Date`), so machines with skewed clocks agree.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from warehouse.errors import LockTimeout, WarehouseError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

__all__ = ["Bucket", "BucketUrl", "Lease", "LeaseLost", "ObjectInfo", "is_bucket_url"]

SCHEMES = ("s3",)


class LeaseLost(WarehouseError):
    """A lease was taken over by another holder (ours was not renewed in time): nothing more is written under it."""


def is_bucket_url(value: str) -> bool:
    """Whether a data root names a bucket (`s3://bucket/prefix`) rather than a local folder."""
    return value.split("://", 1)[0].lower() in SCHEMES and "://" in value


@dataclass(frozen=True, slots=True)
class BucketUrl:
    """`s3://bucket/prefix`: a bucket and a key prefix (no leading or trailing '/')."""

    bucket: str
    prefix: str

    @classmethod
    def parse(cls, url: str) -> BucketUrl:
        """Split and check an `s3://` URL; a `WarehouseError` says what is wrong with it."""
        parts = urlsplit(url)
        if parts.scheme.lower() not in SCHEMES or not parts.netloc:
            raise WarehouseError(f"{url!r} is not an s3://bucket/prefix URL")
        if parts.query or parts.fragment:
            raise WarehouseError(f"{url!r}: a data root URL takes no query or fragment")
        prefix = parts.path.strip("/")
        if prefix and any(p in ("", ".", "..") for p in prefix.split("/")):
            raise WarehouseError(f"{url!r}: the prefix has an empty, '.' or '..' segment")
        return cls(parts.netloc, prefix)

    @property
    def url(self) -> str:
        """The URL again, normalised."""
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"

    def key(self, rel: str) -> str:
        """The object key of `rel`, a path relative to the data root."""
        return f"{self.prefix}/{rel}" if self.prefix else rel

    def rel(self, key: str) -> str:
        """Inverse of `key`."""
        return key[len(self.prefix) + 1 :] if self.prefix else key


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """One object as a listing shows it: its path relative to the data root, ETag and size."""

    rel: str
    etag: str
    size: int


def _etag(value: str) -> str:
    return value.strip('"')


class Bucket:
    """The objects under a data root URL (paths relative to the root, as on a local data root)."""

    def __init__(self, url: BucketUrl, client: S3Client | None = None) -> None:
        self.url = url
        self._client = client or _client()

    @property
    def client(self) -> S3Client:
        """The boto3 S3 client."""
        return self._client

    def check(self) -> None:
        """Raise a `WarehouseError` that says why when the bucket cannot be reached or read."""
        try:
            self._client.list_objects_v2(Bucket=self.url.bucket, Prefix=self.url.key(""), MaxKeys=1)
        except Exception as exc:
            raise WarehouseError(f"data root {self.url.url}: cannot list the bucket: {_why(exc)}") from None

    def list(self, rel_prefix: str) -> Iterator[ObjectInfo]:
        """Objects whose path starts with `rel_prefix` (a folder ends with '/')."""
        pages = self._client.get_paginator("list_objects_v2").paginate(
            Bucket=self.url.bucket, Prefix=self.url.key(rel_prefix)
        )
        for page in pages:
            for obj in page.get("Contents", ()):
                yield ObjectInfo(self.url.rel(obj["Key"]), _etag(obj["ETag"]), int(obj["Size"]))

    def _head(self, rel: str) -> Any:
        """The HEAD response of the object at `rel`, None when there is none."""
        try:
            return self._client.head_object(Bucket=self.url.bucket, Key=self.url.key(rel))
        except self._client.exceptions.ClientError as exc:
            if _status(exc) == 404:
                return None
            raise

    def head(self, rel: str) -> ObjectInfo | None:
        """The object at `rel`, None when there is none."""
        got = self._head(rel)
        return None if got is None else ObjectInfo(rel, _etag(got["ETag"]), int(got["ContentLength"]))

    def download(self, rel: str, path: Path) -> str | None:
        """Write the object at `rel` to `path` (whole: staged beside it, then renamed); its ETag, None if absent."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.part")
        try:
            got = self._client.get_object(Bucket=self.url.bucket, Key=self.url.key(rel))
        except self._client.exceptions.NoSuchKey:
            return None
        try:
            with open(tmp, "wb") as fh:
                for chunk in got["Body"].iter_chunks(1 << 20):
                    fh.write(chunk)
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        return _etag(got["ETag"])

    def read(self, rel: str) -> tuple[bytes, str] | None:
        """The bytes and ETag of a small object, None when there is none."""
        try:
            got = self._client.get_object(Bucket=self.url.bucket, Key=self.url.key(rel))
        except self._client.exceptions.NoSuchKey:
            return None
        return got["Body"].read(), _etag(got["ETag"])

    def upload(self, path: Path, rel: str) -> str:
        """Put the file at `path` as the object `rel` (one PUT: readers see the old object or the new one)."""
        with open(path, "rb") as fh:
            return _etag(self._client.put_object(Bucket=self.url.bucket, Key=self.url.key(rel), Body=fh)["ETag"])

    def put(self, rel: str, body: bytes, *, if_absent: bool = False, if_match: str | None = None) -> str | None:
        """Put `body` at `rel`; with a condition, None when it does not hold (the object is left as it was)."""
        extra: dict[str, Any] = {}
        if if_absent:
            extra["IfNoneMatch"] = "*"
        if if_match is not None:
            extra["IfMatch"] = if_match
        try:
            got = self._client.put_object(Bucket=self.url.bucket, Key=self.url.key(rel), Body=body, **extra)
        except self._client.exceptions.ClientError as exc:
            # 412: the condition failed; 409: a concurrent conditional write won (S3 says so too).
            if extra and _status(exc) in (404, 409, 412):
                return None
            raise
        return _etag(got["ETag"])

    def copy(self, src: str, dst: str) -> str | None:
        """Copy object `src` to `dst` inside the bucket (one server-side write); its new ETag, None if `src` is gone."""
        try:
            got = self._client.copy_object(
                Bucket=self.url.bucket,
                Key=self.url.key(dst),
                CopySource={"Bucket": self.url.bucket, "Key": self.url.key(src)},
            )
        except self._client.exceptions.ClientError as exc:
            if _status(exc) == 404:
                return None
            raise
        return _etag(got["CopyObjectResult"]["ETag"])

    def delete(self, rel: str, *, if_match: str | None = None) -> bool:
        """Delete the object at `rel` (absent is fine); False when `if_match` no longer holds."""
        extra: dict[str, Any] = {"IfMatch": if_match} if if_match is not None else {}
        try:
            self._client.delete_object(Bucket=self.url.bucket, Key=self.url.key(rel), **extra)
        except self._client.exceptions.ClientError as exc:
            if if_match is not None and _status(exc) in (404, 412):
                return False
            raise
        return True

    def server_time(self, rel: str) -> tuple[float, float, str] | None:
        """The object's Last-Modified and the store's clock now (POSIX seconds), and its ETag; None if absent."""
        got = self._head(rel)
        if got is None:
            return None
        date = got["ResponseMetadata"].get("HTTPHeaders", {}).get("date")
        now = parsedate_to_datetime(date).timestamp() if date else time.time()
        return got["LastModified"].timestamp(), now, _etag(got["ETag"])


def _client() -> S3Client:
    """An S3 client from the usual AWS configuration (environment, config files, instance roles)."""
    import boto3
    from botocore.config import Config

    return boto3.client("s3", config=Config(retries={"mode": "standard", "max_attempts": 5}))


def _status(exc: Exception) -> int:
    response = getattr(exc, "response", None) or {}
    return int(response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))


def _why(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    if response:
        err = response.get("Error", {})
        return f"{err.get('Code', '')} {err.get('Message', '')}".strip() or type(exc).__name__
    return f"{type(exc).__name__}: {exc}"


class Lease:
    """An exclusive, expiring lease on `name` in a bucket, renewed in the background while held.

    Use as a context manager. `ttl` is how long a holder that stopped renewing (killed,
    cut off) keeps others waiting; the holder renews every `ttl / 3`. A holder that
    could not renew before another took the lease over finds `lost` set, and `check()`
    raises `LeaseLost`: callers check before each commit point.
    """

    def __init__(self, bucket: Bucket, name: str, *, ttl: float = 60.0, wait: float = 600.0) -> None:
        self.bucket = bucket
        self.name = name
        self.rel = f".leases/{name}.json"
        self.ttl = ttl
        self.wait = wait
        self.owner = uuid.uuid4().hex
        self.took_over: dict[str, Any] | None = None  # the expired lease this one replaced, if any
        self._etag: str | None = None
        self._beats = 0
        self._lost = threading.Event()
        self._stop = threading.Event()
        self._mutex = threading.Lock()
        self._thread: threading.Thread | None = None

    @property
    def lost(self) -> bool:
        """Whether another holder took the lease over."""
        return self._lost.is_set()

    def check(self) -> None:
        """Raise `LeaseLost` unless the lease is still ours (renewed now, so a commit has a full `ttl` ahead)."""
        if not self._renew():
            raise LeaseLost(f"the lease {self.bucket.url.url}/{self.rel} was taken over by another writer")

    def acquire(self) -> None:
        """Wait for the lease (at most `wait` seconds), then hold it and start renewing it."""
        deadline = time.monotonic() + self.wait
        while True:
            etag = self.bucket.put(self.rel, self._body(), if_absent=True)
            if etag is not None:
                self._refuse_unconditional_store(etag)
            else:
                etag = self._take_over_if_expired()
            if etag is not None:
                self._etag = etag
                break
            if time.monotonic() >= deadline:
                holder = self.bucket.read(self.rel)
                who = json.loads(holder[0]) if holder else {}
                raise LockTimeout(
                    f"{self.bucket.url.url}/{self.rel} is held by {who.get('host', '?')} pid {who.get('pid', '?')}"
                    f" (waited {self.wait:.0f} s)"
                )
            time.sleep(min(1.0, self.ttl / 4) * (0.5 + random.random()))
        self._thread = threading.Thread(target=self._beat, name=f"lease-{self.name}", daemon=True)
        self._thread.start()

    def release(self) -> None:
        """Stop renewing and delete the lease (unless it was taken over)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        with self._mutex:
            if self._etag is not None and not self.lost:
                self.bucket.delete(self.rel, if_match=self._etag)
            self._etag = None

    def _body(self) -> bytes:
        self._beats += 1
        return json.dumps(
            {
                "owner": self.owner,
                "host": socket.gethostname(),
                "pid": os.getpid(),
                "ttl": self.ttl,
                "beat": self._beats,
            }
        ).encode()

    def _refuse_unconditional_store(self, etag: str) -> None:
        """Raise if the store ignores `If-None-Match` (a second create of the lease succeeds): leases would not hold."""
        again = self.bucket.put(self.rel, self._body(), if_absent=True)
        if again is None:
            return
        self.bucket.delete(self.rel, if_match=again)
        raise WarehouseError(
            f"{self.bucket.url.url}: the store ignores conditional writes (If-None-Match), so two writers could"
            " both hold a lease; use a store that supports them (Amazon S3, MinIO, ...)"
        )

    def _take_over_if_expired(self) -> str | None:
        """Replace a lease not renewed for its time to live (its holder's ttl), as one conditional write."""
        seen = self.bucket.server_time(self.rel)
        if seen is None:
            return None  # released meanwhile: the next attempt creates it
        modified, now, etag = seen
        held = self.bucket.read(self.rel)
        if held is None or held[1] != etag:
            return None
        try:
            holder = json.loads(held[0])
            ttl = float(holder.get("ttl", self.ttl))
        except (ValueError, TypeError, AttributeError):
            holder, ttl = {}, self.ttl  # an unreadable lease expires like any other
        if now - modified <= ttl + 1.0:  # Last-Modified has one-second resolution
            return None
        got = self.bucket.put(self.rel, self._body(), if_match=etag)
        if got is not None:
            self.took_over = holder if isinstance(holder, dict) else {}
        return got

    def _renew(self) -> bool:
        with self._mutex:
            if self._etag is None or self.lost:
                return False
            got = self.bucket.put(self.rel, self._body(), if_match=self._etag)
            if got is None:
                self._lost.set()
                return False
            self._etag = got
            return True

    def _beat(self) -> None:
        while not self._stop.wait(self.ttl / 3):
            with contextlib.suppress(Exception):  # a failed renewal is retried; `lost` says when it is too late
                if not self._renew() and self.lost:
                    return

    def __enter__(self) -> Lease:
        self.acquire()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()
