"""The `Article` record: the one schema every stage shares.

Each field carries its documentation in `field(metadata={"doc": ...})`; the Arrow
schema (`warehouse.schema`) and `docs/schema.md` are both derived from this module,
so the contract is written exactly once.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import date, datetime

__all__ = ["SCHEMA_VERSION", "Article", "Section", "Stripped", "article_text", "content_hash"]

# Bump when a field is added, removed or changes meaning; readers can branch on it.
# 2: extraction, modified_at, site_name, description, tags, image_url, warnings.
# 3: published_date, date_precision, published_at_raw, author_source, title_source,
# extraction_confidence; a date known
# only to the day is midnight UTC of that day (was: midnight in the source's zone).
SCHEMA_VERSION = 3


def _doc(text: str, **extra: str) -> dict[str, str]:
    """Field metadata holding the field's documentation (and optional Arrow type hint)."""
    return {"doc": text, **extra}


@dataclass(frozen=True, slots=True)
class Section:
    """A run of body paragraphs under one sub-heading (heading is null before the first one)."""

    heading: str | None = field(metadata=_doc("Sub-heading text, or null for paragraphs before the first sub-heading."))
    paragraphs: tuple[str, ...] = field(metadata=_doc("Body paragraphs in document order."))


@dataclass(frozen=True, slots=True)
class Stripped:
    """One span the normaliser removed from the text, and the rule that removed it."""

    rule: str = field(
        metadata=_doc(
            "Name of the rule that matched: a sources.toml rule, a built-in one, `learned:<source>` (a block the "
            "source repeats, learned from its articles), or for HTML the extractor's rule or score "
            "(e.g. `boilerplate:nav`, `score 0.12 < 0.30`)."
        )
    )
    kind: str = field(
        metadata=_doc("What the span was: `byline` (kept in the `byline` field) or `chrome` (page furniture).")
    )
    text: str = field(
        metadata=_doc(
            "The removed text, verbatim after whitespace normalisation (for HTML blocks, the first 80 characters)."
        )
    )
    line: int = field(
        metadata=_doc("1-based line number of the span in the decoded input; 0 for HTML blocks.", arrow="int32")
    )


@dataclass(frozen=True, slots=True)
class Article:
    """One normalised news article with its provenance."""

    article_id: str = field(
        metadata=_doc(
            "Stable identifier: first 32 hex digits of SHA-256 over the source and the article's URL "
            "(or, without a URL, its path relative to the source root). Equal across re-runs."
        )
    )
    source: str = field(metadata=_doc("Source name from sources.toml; also the `source=` partition key."))
    source_uri: str = field(metadata=_doc("Where the raw document was read from (a `file://` URI or an http(s) URL)."))
    url: str | None = field(
        metadata=_doc(
            "Article URL, if known: always http(s) with a host, in the one spelling `article_id` is derived from "
            "(scheme and host lower-cased, IDNA host, default port, fragment and tracking parameters such as "
            "`utm_*` removed, UTF-8 percent-encoding); any other URL a sidecar or page gives is dropped with a "
            "warning."
        )
    )
    title: str | None = field(metadata=_doc("Headline."))
    lede: str | None = field(metadata=_doc("The opening paragraph."))
    sections: tuple[Section, ...] = field(
        metadata=_doc(
            "Body after the lede: list of {heading, paragraphs}; heading is null for the run "
            "before the first sub-heading."
        )
    )
    text: str = field(
        metadata=_doc(
            "Clean article text without the title: lede, sub-headings and paragraphs separated by blank lines."
        )
    )
    byline: str | None = field(
        metadata=_doc("Byline / translator-editor tag as printed (e.g. `T/ Satt.`), removed from `text`.")
    )
    authors: tuple[str, ...] = field(metadata=_doc("Author names, cleaned; empty when unknown."))
    published_at: datetime | None = field(
        metadata=_doc(
            "Publication time in UTC; null when no evidence exists. A date known only to the day (a dateline, "
            "a date in the URL, a date-only value; `date_precision` `day`) is midnight UTC of that day, so its "
            "UTC calendar date is the day published."
        )
    )
    date_source: str = field(
        metadata=_doc(
            "Evidence behind `published_at`: `sidecar`; for text `dateline`; for HTML `profile` (the source's date "
            "selector), `jsonld`, `meta`, `microdata` (`itemprop=datePublished` on another element), `time` (a "
            "`<time>` element), `text` (the date printed by the headline or byline, else in an element whose class "
            "names a date) or `url` (a date in the URL path); then `feed` (the feed or sitemap entry's date), "
            "`modified` (a page that states no publication date but prints when it was last updated: published "
            "that day or before), `mtime` (file modification time), `fetched` (when a fetched document was "
            "fetched) or `none`. A page "
            "whose own dates name different days gives none of them, and a printed numeric date that reads as a day "
            "in either order (`03/04/2024`) is no date. Evidence with an implausible date (before 1800; for a page's "
            "own dates outside 1995-2100) or one more than a day after the time of ingest is passed over for the "
            "next, with a warning."
        )
    )
    language: str | None = field(metadata=_doc("ISO 639-1 language code (lower case), if known."))
    word_count: int = field(metadata=_doc("Number of whitespace-separated words in `text`.", arrow="int32"))
    content_hash: str = field(
        metadata=_doc("SHA-256 (hex) of title and text; changes only when the clean content does.")
    )
    raw_sha256: str = field(metadata=_doc("SHA-256 (hex) of the raw input bytes."))
    normalizer: str = field(metadata=_doc("Name of the normaliser that produced the record (e.g. `text`)."))
    normalizer_version: str = field(
        metadata=_doc("Version of that normaliser; re-normalisation targets rows where it differs.")
    )
    stripped: tuple[Stripped, ...] = field(
        metadata=_doc("Every span removed from the text: list of {rule, kind, text, line}.")
    )
    extraction: str = field(
        default="text",
        metadata=_doc(
            "How the body was found: `text` (plain-text normaliser), `generic` (HTML main-text extraction) or "
            "`profile` (the source's CSS selectors in sources.toml matched)."
        ),
    )
    modified_at: datetime | None = field(default=None, metadata=_doc("Last modification time in UTC, if known."))
    published_date: date | None = field(
        default=None,
        metadata=_doc(
            "Calendar date of publication as published: the day itself for a date known only to the day, else "
            "the local date at the offset (or in the source's time zone) the time was stated in "
            "(`2024-02-01T01:00+03:00` is 1 February, though `published_at` is 31 January in UTC); a page's time "
            "stated in UTC under a URL dated a day apart takes the URL's day (the site's calendar). The "
            "`year=`/`month=` partition follows it. Null without a date."
        ),
    )
    date_precision: str | None = field(
        default=None,
        metadata=_doc("How much of a time the date evidence gave: `day`, `minute` or `second`. Null without a date."),
    )
    published_at_raw: str | None = field(
        default=None,
        metadata=_doc(
            "The text the publication date was read from, as written (a meta value, a dateline, a URL path, a "
            "date printed on the page); null when it was read from no text (file or fetch time, a feed's date) "
            "or there is no date."
        ),
    )
    author_source: str = field(
        default="none",
        metadata=_doc(
            "Evidence behind `authors`: `sidecar`; for HTML `profile` (the source's author selector), `jsonld`, "
            '`meta` (a `<meta>` author tag, or `twitter:data` labelled "Written by"), `microdata` '
            "(`itemprop=author`, `rel=author`) or `byline` (a byline element or line, or a line labelling the "
            'author: "Written by", "Author"); `none` when there are no authors.'
        ),
    )
    title_source: str = field(
        default="none",
        metadata=_doc(
            "Evidence behind `title`: `sidecar`; for text `line` (the first line); for HTML `profile` (the source's "
            "title selector), `h1`, `meta` (og:title, twitter:title), `jsonld` (headline) or `title` (the `<title>` "
            "element), each without a suffix naming the site or its host; `feed` (the feed entry's title); `none` "
            "without a title."
        ),
    )
    site_name: str | None = field(default=None, metadata=_doc("Publication name (og:site_name, JSON-LD publisher)."))
    description: str | None = field(default=None, metadata=_doc("The page's own summary (meta description)."))
    tags: tuple[str, ...] = field(default=(), metadata=_doc("Tags / keywords the page declares, de-duplicated."))
    image_url: str | None = field(default=None, metadata=_doc("Lead image URL (og:image, JSON-LD image)."))
    extraction_confidence: float | None = field(
        default=None,
        metadata=_doc(
            "HTML: how sure the extraction is, 0..1: the F1 its text is expected to score against a human-made "
            "article text (a model fitted on cross-validated extractions of real pages). Below the source's "
            "`min_confidence` the page is quarantined (`extraction_failed`); below 0.6 the record has a warning. "
            "Null for plain text.",
            arrow="float32",
        ),
    )
    warnings: tuple[str, ...] = field(
        default=(),
        metadata=_doc(
            "Problems met that did not stop normalisation: a wrong charset label or a detected encoding, input "
            "cut at a size or tag cap, extraction stopped at its time or work bound, a URL or language code "
            "that is not one dropped, an implausible or future date passed over."
        ),
    )
    ingested_at: datetime | None = field(
        default=None,
        metadata=_doc("When the warehouse wrote the record (UTC). Set by the pipeline, not the normaliser."),
    )
    run_id: str | None = field(default=None, metadata=_doc("Run that wrote the record (the Prefect flow run id)."))
    schema_version: int = field(
        default=SCHEMA_VERSION, metadata=_doc("Version of this schema the record follows.", arrow="int16")
    )


def article_text(lede: str | None, sections: tuple[Section, ...] | list[Section]) -> str:
    """`Article.text`: the lede, then each section's heading and paragraphs, joined with blank lines."""
    parts = [lede] if lede else []
    for section in sections:
        if section.heading is not None:
            parts.append(section.heading)
        parts.extend(section.paragraphs)
    return "\n\n".join(parts)


def content_hash(title: str | None, text: str) -> str:
    """`Article.content_hash`: SHA-256 (hex) of the title and the clean text, the same for every normaliser."""
    return hashlib.sha256(f"{title or ''}\n\n{text}".encode()).hexdigest()
