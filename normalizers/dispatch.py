"""Pick the normaliser for a document: by the source's format, or by file name for `auto`."""

from __future__ import annotations

from normalizers.bounds import Budget
from normalizers.errors import Rejection
from normalizers.meta import SourceMeta
from normalizers.profile import SourceProfile
from normalizers.schema import Article
from normalizers.text import NAME as TEXT_NAME
from normalizers.text import VERSION as TEXT_VERSION
from normalizers.text import normalize_text

__all__ = ["HTML_SUFFIXES", "normalize", "normalizer_for"]

HTML_SUFFIXES = (".html", ".htm", ".xhtml", ".html.gz", ".htm.gz", ".xhtml.gz")
# Kept here rather than imported from normalizers.html, so text-only runs never load
# the HTML stack (selectolax, charset detection, the language model).
HTML_NAME, HTML_VERSION = "html", "1.6.1"


def _is_html(fmt: str, key: str) -> bool:
    return fmt == "html" or (fmt == "auto" and key.lower().endswith(HTML_SUFFIXES))


def normalizer_for(fmt: str, key: str) -> tuple[str, str]:
    """(name, version) of the normaliser that handles document `key` of a source in format `fmt`."""
    return (HTML_NAME, HTML_VERSION) if _is_html(fmt, key) else (TEXT_NAME, TEXT_VERSION)


def normalize(
    raw: bytes,
    meta: SourceMeta,
    profile: SourceProfile,
    fmt: str = "auto",
    content_type: str | None = None,
    budget: Budget | None = None,
) -> Article | Rejection:
    """Normalise one document with the normaliser its format (or, for `auto`, its name) calls for."""
    if _is_html(fmt, meta.key):
        from normalizers.html.normalize import normalize_html

        return normalize_html(raw, meta, profile, content_type, budget)
    return normalize_text(raw, meta, profile)
