"""HTML pages -> Article: parsing, encoding, metadata and main-text extraction.

- `normalize`: the normaliser (bounds, gzip, decoding, assembly into an `Article`);
- `extract` + `rules`: generic main-text extraction and its heuristics as data;
- `metadata`: title, authors, dates, language, canonical URL, site name, tags, image.

`normalize_html` is loaded on first access, so importing `normalizers.html.metadata`
(which `normalizers.feeds` does for dates) does not pull in the whole normaliser.
"""

from __future__ import annotations

from typing import Any

__all__ = ["NAME", "VERSION", "normalize_html"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from normalizers.html import normalize

        return getattr(normalize, name)
    raise AttributeError(f"module 'normalizers.html' has no attribute {name!r}")
