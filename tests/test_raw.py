"""The raw store: content-addressed, compressed, atomic; fetch records and per-URL state."""

from __future__ import annotations

import gzip
import hashlib
from datetime import UTC, datetime
from pathlib import Path

import pytest

from warehouse.layout import DataRoot
from warehouse.raw import FetchRecord, RawStore, UrlState

WHEN = datetime(2026, 11, 24, 1, 0, tzinfo=UTC)


@pytest.fixture()
def store(tmp_path: Path) -> RawStore:
    return RawStore(DataRoot(tmp_path / "data"))


def test_put_get_is_content_addressed_and_compressed(store: RawStore) -> None:
    body = b"<html><body>" + b"<p>words of a page</p>" * 500 + b"</body></html>"
    sha = store.put(body)
    assert sha == hashlib.sha256(body).hexdigest()
    path = store.path(sha)
    assert path.parent.name == sha[:2] and path.name == f"{sha}.gz"
    assert path.stat().st_size < len(body) / 4
    assert gzip.decompress(path.read_bytes()) == body
    assert store.get(sha) == body
    # The same body again is the same object, byte for byte (no timestamp in the gzip header).
    first = path.read_bytes()
    assert store.put(body) == sha
    assert path.read_bytes() == first
    assert list(store.objects.rglob("*.gz")) == [path]
    assert not list((store._staging).iterdir())


def test_corrupt_or_missing_objects_are_errors(store: RawStore) -> None:
    sha = store.put(b"original body")
    store.path(sha).write_bytes(gzip.compress(b"something else"))
    with pytest.raises(ValueError, match="corrupt"):
        store.get(sha)
    with pytest.raises(FileNotFoundError):
        store.get("0" * 64)
    with pytest.raises(ValueError, match="SHA-256"):
        store.path("../../etc/passwd")


def test_records_and_url_state(store: RawStore) -> None:
    assert store.url_state("s", "https://example.org/a") is None
    sha = store.put(b"page one")
    fetch = FetchRecord("s", "https://example.org/a", "https://example.org/a/", 200, WHEN, sha, {"etag": '"v1"'})
    state = UrlState("s", "https://example.org/a", etag='"v1"', raw_sha256=sha, last_status=200, fetched_at=WHEN)
    store.record(fetch, state)
    assert store.url_state("s", "https://example.org/a") == state
    later = FetchRecord("s", "https://example.org/a", "https://example.org/a/", 304, WHEN.replace(hour=2), None)
    store.record(later, UrlState("s", "https://example.org/a", etag='"v1"', raw_sha256=sha, last_status=304))
    assert [f.status for f in store.fetches("s", "https://example.org/a")] == [200, 304]
    assert store.fetches("s", "https://example.org/a")[0] == fetch
    assert store.url_state("s", "https://example.org/a").last_status == 304  # type: ignore[union-attr]


def test_a_read_only_store_creates_nothing_and_refuses_writes(tmp_path: Path) -> None:
    root = DataRoot(tmp_path / "data")
    with RawStore(root, read_only=True) as store:
        assert store.url_state("s", "https://example.org/a") is None
        with pytest.raises(PermissionError):
            store.put(b"body")
    assert not root.root.exists()
    with RawStore(root) as store:
        sha = store.put(b"body")
    with RawStore(root, read_only=True) as store:
        assert store.get(sha) == b"body"
