"""What the pipeline tells a normaliser about a document besides its bytes."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from normalizers.common import Dated, Implausible, clean_field, unrepresentable
from normalizers.dates import iso_precision, stated
from normalizers.language import normalize_language_tag
from normalizers.urls import canonical_url

__all__ = [
    "Sidecar",
    "SidecarError",
    "SourceMeta",
    "article_id",
    "clean_authors",
    "parse_sidecar",
    "sidecar_of",
]


@dataclass(frozen=True, slots=True)
class SourceMeta:
    """Facts about one raw document that the normaliser cannot know from its bytes.

    `key` identifies the document within its source (for files, the path relative to
    the source root; for fetched pages, `urls.canonical_url` of the URL) and is what `article_id`
    falls back to without a URL. `mtime` is the file's modification time (epoch
    seconds), the last resort for a date.

    `as_of` is the time of ingest (aware; naive is read as UTC): a date later than a day
    after it is not a publication or modification date and is passed over with a
    warning. Normalisers read no clock, so the caller says when "now" is; None skips the
    check.
    """

    source: str
    source_uri: str
    key: str
    mtime: float | None = None
    sidecar: bytes | None = None
    # What a feed or sitemap said about the document: used only where the document
    # itself says nothing (a sidecar, by contrast, overrides the document).
    hint_title: str | None = None
    hint_published_at: datetime | None = None
    as_of: datetime | None = None

    @property
    def fetched(self) -> bool:
        """The document was fetched over HTTP: its source URI is an http(s) URL, not a `file://` one."""
        return self.source_uri.startswith(("http://", "https://"))


@dataclass(frozen=True, slots=True)
class Sidecar:
    """Metadata hints from a `<name>.json` file next to the document, and what was dropped from them.

    `published_at` is `Implausible` for a valid ISO 8601 date that no timestamp holds once
    in UTC (`9999-12-31T23:59:59-05:00`): the date evidence passes it over with a warning.
    A date-only value (`2024-03-01`) is a day-precision date, midnight UTC of that day.
    """

    url: str | None = None
    title: str | None = None
    published_at: Dated | Implausible | None = None
    language: str | None = None
    authors: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()


class SidecarError(ValueError):
    """A sidecar is not valid JSON or has a value of the wrong type."""


_SIDECAR_MAX = 1_000_000


def parse_sidecar(raw: bytes, tz: str = "UTC") -> Sidecar:
    """Parse sidecar JSON bytes; naive timestamps are read in `tz`. Raises `SidecarError`."""
    if len(raw) > _SIDECAR_MAX:
        raise SidecarError(f"sidecar is {len(raw)} bytes (limit {_SIDECAR_MAX})")
    try:
        data = json.loads(raw.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        # ValueError covers JSONDecodeError and the int-digits limit; RecursionError deep nesting.
        raise SidecarError(f"sidecar is not valid UTF-8 JSON: {str(exc)[:200]}") from exc
    if not isinstance(data, dict):
        raise SidecarError("sidecar must be a JSON object")
    url = _opt_str(data, "url")
    published = _opt_str(data, "published_at")
    when: Dated | Implausible | None = None
    if published:
        try:
            value = datetime.fromisoformat(published)
        except ValueError as exc:
            raise SidecarError(f"sidecar published_at {published!r} is not an ISO-8601 date") from exc
        try:
            when = stated(value, iso_precision(published), published, tz)
        except OverflowError:  # year 1 or 9999 shifted past the range: well written, but no date to use
            when = unrepresentable(published)
    authors_raw = data.get("authors", data.get("author"))
    if authors_raw is None:
        authors: tuple[str, ...] = ()
    elif isinstance(authors_raw, str):
        authors = (authors_raw,)
    elif isinstance(authors_raw, list) and all(isinstance(a, str) for a in authors_raw):
        authors = tuple(authors_raw)
    else:
        raise SidecarError("sidecar authors must be a string or a list of strings")
    language = _opt_str(data, "language")
    title = _opt_str(data, "title")
    warnings: list[str] = []
    clean_url = None
    if url:
        try:
            clean_url = canonical_url(url)
        except ValueError as exc:
            warnings.append(f"sidecar url {url!r} dropped: {exc}")
    code = normalize_language_tag(language)
    if language and code is None:
        warnings.append(f"sidecar language {language!r} is not a language code; ignored")
    return Sidecar(
        url=clean_url,
        title=clean_field(title or "") or None,
        published_at=when,
        language=code,
        authors=clean_authors(authors),
        warnings=tuple(warnings),
    )


def sidecar_of(meta: SourceMeta, tz: str = "UTC") -> Sidecar | SidecarError:
    """The document's parsed sidecar (empty without one), or the error that made it unreadable."""
    if meta.sidecar is None:
        return Sidecar()
    try:
        return parse_sidecar(meta.sidecar, tz)
    except SidecarError as exc:
        return exc


def _opt_str(data: dict[str, Any], key: str) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise SidecarError(f"sidecar {key} must be a string, not {type(value).__name__}")
    return value.strip() or None


def clean_authors(names: tuple[str, ...]) -> tuple[str, ...]:
    """Clean (`clean_field`), drop a leading 'By' and duplicates, keep order."""
    seen: dict[str, None] = {}
    for name in names:
        words = clean_field(name).split()
        if words and words[0].lower() == "by":
            words = words[1:]
        clean = " ".join(words)
        if clean and clean.casefold() not in {s.casefold() for s in seen}:
            seen[clean] = None
    return tuple(seen)


def article_id(source: str, url: str | None, key: str) -> str:
    """Stable id from the source and the URL (as `urls.canonical_url` spells it), else the in-source key."""
    ident = url if url else f"key:{key}"
    return hashlib.sha256(f"{source}\x1f{ident}".encode()).hexdigest()[:32]
