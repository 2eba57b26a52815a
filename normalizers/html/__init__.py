"""HTML pages -> Article: parsing, encoding, metadata and main-text extraction.

- `normalize`: the normaliser (bounds, gzip, decoding, assembly into an `Article`);
- `extract` + `rules`: generic main-text extraction and its heuristics as data;
- `metadata`: title, authors, dates, language, canonical URL, site name, tags, image.
"""

from __future__ import annotations

from normalizers.html.normalize import NAME, VERSION, normalize_html

__all__ = ["NAME", "VERSION", "normalize_html"]
