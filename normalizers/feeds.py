"""Discovery input of HTTP sources: RSS, Atom, sitemaps and URL lists -> `Discovery`.

Pure: bytes in, data out. XML goes through defusedxml with DTDs and entity declarations
refused (billion laughs, XXE), gzip is inflated under a size cap, the element count is
bounded, and every entry that is not kept is accounted for: `Discovery.skipped` names
those with no usable http(s) URL and why, `Discovery.duplicates` those repeating an
earlier entry's URL. A document listing more than `max_entries` entries is not
refused: the newest are kept and `Discovery.omitted` counts the rest. Errors:

    ValueError
    └── FeedError   the whole document is unusable; `reason` is a stable code:
                    "entities" | "malformed" | "unknown_format" | "too_large"
"""

from __future__ import annotations

import dataclasses
import heapq
import html
import re
import urllib.parse
from datetime import datetime
from typing import TYPE_CHECKING, Literal
from xml.etree.ElementTree import ParseError, TreeBuilder

import defusedxml
import defusedxml.ElementTree

from normalizers.common import UNSHOWABLE
from normalizers.dates import parse_date
from normalizers.inflate import GZIP_MAGIC, GzipError, inflate_members
from normalizers.language import normalize_language_tag
from normalizers.urls import HTTP_SCHEMES, canonical_url

if TYPE_CHECKING:
    from xml.etree.ElementTree import Element

__all__ = [
    "MAX_ENTRIES",
    "Discovery",
    "Entry",
    "FeedError",
    "FeedErrorReason",
    "Kind",
    "Source",
    "parse_feed",
    "parse_url_list",
    "recency_key",
]

Kind = Literal["rss", "atom", "urlset", "sitemapindex", "urls"]
Source = Literal["rss", "atom", "sitemap", "news-sitemap", "urls"]
FeedErrorReason = Literal["entities", "malformed", "unknown_format", "too_large"]

# --- Limits and heuristics (data) ---------------------------------------------------------
# The sitemaps protocol caps a sitemap at 50 MB uncompressed and 50,000 URLs; we hold every
# document (feeds too, and a gzip sitemap after inflating) to the same byte cap.
MAX_BYTES = 50_000_000
# A full news sitemap (50,000 <url> with news, image and alternate children) has about
# 1.5 million elements; the cap stops `<a/><a/>...` from costing gigabytes of tree.
MAX_ELEMENTS = 2_000_000
# Entries kept from one document: the sitemaps protocol's 50,000 URLs. A longer document
# keeps its newest entries (each entry costs ~35 us to read, so the element cap bounds a
# hostile one at ~20 s; 100,000 RSS items take ~3.5 s).
MAX_ENTRIES = 50_000
# Skip reasons quote at most this many characters of the offending value.
MAX_QUOTE = 120

# Namespaces (ElementTree spells a tag "{uri}local").
ATOM_NS = ("http://www.w3.org/2005/Atom", "http://purl.org/atom/ns#")  # 1.0, 0.3
RDF_NS = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
DC_NS = ("http://purl.org/dc/elements/1.1/", "http://purl.org/dc/terms/")
NEWS_NS = "http://www.google.com/schemas/sitemap-news/0.9"
FEEDBURNER_NS = "http://rssnamespace.org/feedburner/ext/1.0"
XML_BASE = "{http://www.w3.org/XML/1998/namespace}base"

_SNIFF_BYTES = 4096  # how far into a document to look for an HTML start
_HTML_START = re.compile(
    rb"\A(?:\xef\xbb\xbf)?\s*(?:<\?xml[^>]*>\s*)?(?:<!--.*?-->\s*)*<(?:!doctype\s+html|html)[\s>]",
    re.IGNORECASE | re.DOTALL,
)
_XML_ENCODING = re.compile(rb"\A(\s*<\?xml[^>]*?encoding\s*=\s*[\"'])([A-Za-z0-9._:-]+)([\"'])")
_W3C_PARTIAL_DATE = re.compile(r"\s*(\d{4})(?:-(\d{2}))?\s*")
_TAGS = re.compile(r"</?[A-Za-z][^<>]*>")  # a letter after "<": "a < b > c" is not a tag


class FeedError(ValueError):
    """A feed, sitemap or URL list that cannot be read at all; `reason` is a stable code."""

    def __init__(self, reason: FeedErrorReason, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason: FeedErrorReason = reason
        self.message = message

    def __reduce__(self) -> tuple[type[FeedError], tuple[FeedErrorReason, str]]:
        """Pickle with both arguments (flows hand errors between processes)."""
        return (FeedError, (self.reason, self.message))


@dataclasses.dataclass(frozen=True, slots=True)
class Entry:
    """One URL a feed, sitemap or URL list points to, with what the document says about it.

    `url` is absolute and http(s), resolved against the document's base, without fragment;
    `canonical_url(url)` is its identity. Dates are UTC.
    """

    url: str
    title: str | None = None
    published_at: datetime | None = None
    modified_at: datetime | None = None
    language: str | None = None
    source: Source = "urls"

    @property
    def when(self) -> datetime | None:
        """The entry's date: when it was published, else when it was last modified."""
        return self.published_at or self.modified_at


@dataclasses.dataclass(frozen=True, slots=True)
class Discovery:
    """What one discovery document yields.

    `entries` are articles in document order, de-duplicated by `canonical_url`; `sitemaps`
    are the children of a sitemap index; `skipped` names each entry dropped for want of a
    usable http(s) URL, and why ("line 5: not an http(s) URL: 'file:///etc/shadow'");
    `duplicates` each entry dropped because an earlier one has its URL; `notes` name
    values ignored on kept entries (a date that is not a date); `omitted` counts the valid
    entries (or child sitemaps) left out past `max_entries`: the oldest, undated ones
    before any dated one.
    """

    kind: Kind
    entries: tuple[Entry, ...] = ()
    sitemaps: tuple[Entry, ...] = ()
    skipped: tuple[str, ...] = ()
    duplicates: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    omitted: int = 0


# --- Public functions ----------------------------------------------------------------------


def parse_feed(raw: bytes, base_url: str | None = None, max_entries: int = MAX_ENTRIES) -> Discovery:
    """Parse RSS, RDF, Atom, a sitemap, news sitemap or sitemap index (gzip too). Raises `FeedError`."""
    data = _gunzip(raw) if raw.startswith(GZIP_MAGIC) else raw
    if len(data) > MAX_BYTES:
        raise FeedError("too_large", f"document is {len(data)} bytes (limit {MAX_BYTES})")
    if _HTML_START.match(data[:_SNIFF_BYTES]):
        raise FeedError("unknown_format", "an HTML page, not a feed or sitemap")
    root = _parse_xml(data)
    base = _base_of(root, base_url)
    name = _local(root.tag)
    if name == "rss":
        channel = _child(root, "channel")
        items = _children(channel, "item") if channel is not None else []
        base = _base_of(channel, base) if channel is not None else base
        return _rss("rss", items, base, max_entries)
    if name == "RDF":
        # RSS 1.0: items are siblings of <channel>, directly under <rdf:RDF>.
        return _rss("rss", _children(root, "item"), base, max_entries)
    if name == "feed":
        return _atom(root, base, max_entries)
    if name == "urlset":
        return _urlset(root, base, max_entries)
    if name == "sitemapindex":
        return _sitemapindex(root, base, max_entries)
    raise FeedError("unknown_format", f"root element <{name[:MAX_QUOTE]}> is not RSS, Atom or a sitemap")


def parse_url_list(raw: bytes, base_url: str | None = None, max_entries: int = MAX_ENTRIES) -> Discovery:
    """Parse a text file of URLs, one a line, keeping the first `max_entries`; blank and `#` lines are skipped."""
    if len(raw) > MAX_BYTES:
        raise FeedError("too_large", f"document is {len(raw)} bytes (limit {MAX_BYTES})")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    lines = [(number, line.strip()) for number, line in enumerate(text.splitlines(), start=1)]
    lines = [(number, line) for number, line in lines if line and not line.startswith("#")]
    out = _Collector(max_entries)
    for number, line in lines:
        if any(ch.isspace() for ch in line):
            out.skip(f"line {number}", f"not a single URL: {_quote(line)}")
            continue
        out.add(f"line {number}", line, base_url, Entry(url="", source="urls"))
    return out.discovery("urls")


def recency_key(entry: Entry) -> tuple[bool, float]:
    """Sort key putting the newest entries first and undated ones last (a stable sort keeps ties in order)."""
    when = entry.when
    return (when is None, -when.timestamp() if when is not None else 0.0)


# --- Formats --------------------------------------------------------------------------------


def _rss(kind: Kind, items: list[Element], base: str | None, max_entries: int) -> Discovery:
    out = _Collector(max_entries)
    for index, item in enumerate(items, start=1):
        where = f"item {index}"
        # RSS 2.0 elements have no namespace, RSS 1.0 ones share the item's; so do those of
        # the odd RSS 2.0 feed that declares a default namespace.
        own = ("", _namespace(item.tag))
        item_base = _base_of(item, base)
        # FeedBurner rewrites <link> to its click tracker and keeps the real one here.
        link = _child(item, "origLink", (FEEDBURNER_NS,))
        if link is None:
            link = _child(item, "link", own)
        href = _text(link)
        if href is None:
            guid = _child(item, "guid", own)
            if guid is not None and guid.get("isPermaLink", "true").strip().lower() != "false":
                href = _text(guid)
        if href is None:
            href = item.get(f"{{{RDF_NS}}}about")
        link_base = _base_of(link, item_base) if link is not None else item_base
        published = _text(_child(item, "pubDate", own)) or _text(_child(item, "date", DC_NS))
        entry = Entry(
            url="",
            title=_markup_title(_text(_child(item, "title", own))),
            published_at=out.date(where, "pubDate", published),
            modified_at=out.date(where, "updated", _text(_child(item, "updated", ATOM_NS))),
            source="rss",
        )
        out.add(where, href, link_base, entry)
    return out.discovery(kind)


def _atom(root: Element, base: str | None, max_entries: int) -> Discovery:
    entries = _children(root, "entry")
    own = (_namespace(root.tag), *ATOM_NS)  # a feed without the Atom namespace is still Atom
    out = _Collector(max_entries)
    for index, element in enumerate(entries, start=1):
        where = f"entry {index}"
        entry_base = _base_of(element, base)
        link = _atom_link(element, own)
        if link is not None:
            href, link_base = link.get("href"), _base_of(link, entry_base)
        else:
            # No alternate link: an entry id that is an http URL is the permalink.
            href, link_base = _text(_child(element, "id", own)), entry_base
            if href is not None and not href.lower().startswith(HTTP_SCHEMES):
                href = None
        # Atom 1.0 names first, then Atom 0.3's.
        published = _text(_child(element, "published", own)) or _text(_child(element, "issued", own))
        updated = _text(_child(element, "updated", own)) or _text(_child(element, "modified", own))
        entry = Entry(
            url="",
            title=_atom_title(_child(element, "title", own)),
            published_at=out.date(where, "published", published),
            modified_at=out.date(where, "updated", updated),
            source="atom",
        )
        out.add(where, href, link_base, entry)
    return out.discovery("atom")


def _atom_link(entry: Element, namespaces: tuple[str, ...]) -> Element | None:
    """The entry's rel=alternate (or rel-less) link, preferring an HTML one."""
    candidates = [
        link
        for link in _children(entry, "link", namespaces)
        if link.get("rel", "alternate").strip().lower() == "alternate" and link.get("href")
    ]
    for link in candidates:
        if "html" in link.get("type", "text/html").lower():
            return link
    return candidates[0] if candidates else None


def _atom_title(title: Element | None) -> str | None:
    if title is None:
        return None
    text = _text(title)
    if title.get("type", "text").strip().lower() in ("html", "text/html"):
        return _markup_title(text)
    return text


def _markup_title(text: str | None) -> str | None:
    """A title that may carry escaped HTML (Atom type="html", RSS in practice) as plain text."""
    if text is None or ("<" not in text and "&" not in text):
        return text
    # After XML parsing, "A &amp;amp; <b>B</b>" is "A &amp; <b>B</b>"; the reader sees "A & B".
    return " ".join(html.unescape(_TAGS.sub(" ", text)).split()) or None


def _urlset(root: Element, base: str | None, max_entries: int) -> Discovery:
    urls = _children(root, "url")
    out = _Collector(max_entries)
    for index, element in enumerate(urls, start=1):
        where = f"url {index}"
        loc = _child(element, "loc")
        modified = out.date(where, "lastmod", _text(_child(element, "lastmod")))
        news = _child(element, "news", (NEWS_NS,))
        if news is None:  # a news block with a misspelt namespace is still a news block
            news = _child(element, "news")
        if news is None:
            entry = Entry(url="", modified_at=modified, source="sitemap")
        else:
            publication = _child(news, "publication")
            language = _text(_child(publication, "language")) if publication is not None else None
            entry = Entry(
                url="",
                title=_text(_child(news, "title")),
                published_at=out.date(where, "publication_date", _text(_child(news, "publication_date"))),
                modified_at=modified,
                language=normalize_language_tag(language),
                source="news-sitemap",
            )
        out.add(where, _text(loc), _base_of(loc, base) if loc is not None else base, entry)
    return out.discovery("urlset")


def _sitemapindex(root: Element, base: str | None, max_entries: int) -> Discovery:
    sitemaps = _children(root, "sitemap")
    out = _Collector(max_entries)
    for index, element in enumerate(sitemaps, start=1):
        where = f"sitemap {index}"
        loc = _child(element, "loc")
        entry = Entry(
            url="", modified_at=out.date(where, "lastmod", _text(_child(element, "lastmod"))), source="sitemap"
        )
        out.add(where, _text(loc), _base_of(loc, base) if loc is not None else base, entry)
    found = out.discovery("sitemapindex")
    return dataclasses.replace(found, entries=(), sitemaps=found.entries)


# --- Helpers --------------------------------------------------------------------------------


class _Collector:
    """Entries in document order, de-duplicated by `canonical_url`, and why others were dropped."""

    def __init__(self, max_entries: int) -> None:
        self.max_entries = max_entries
        self.entries: list[Entry] = []
        self.seen: set[str] = set()
        self.skipped: list[str] = []
        self.duplicates: list[str] = []
        self.notes: list[str] = []

    def add(self, where: str, href: str | None, base: str | None, entry: Entry) -> None:
        """Keep `entry` at the resolved `href`, or say why not."""
        try:
            url, key = _resolve(href, base)
        except ValueError as exc:
            self.skip(where, str(exc))
            return
        if key in self.seen:
            self.duplicates.append(f"{where}: duplicate URL {_quote(url)}")
            return
        self.seen.add(key)
        self.entries.append(dataclasses.replace(entry, url=url))

    def skip(self, where: str, problem: str) -> None:
        """Record an entry dropped for want of a usable URL."""
        self.skipped.append(f"{where}: {problem}")

    def date(self, where: str, label: str, value: str | None) -> datetime | None:
        """The UTC date in `value`; a value that is not a date is noted and ignored."""
        if value is None:
            return None
        partial = _W3C_PARTIAL_DATE.fullmatch(value)
        # W3C Datetime allows "2024" and "2024-03"; read them as their first day.
        when = parse_date(f"{partial.group(1)}-{partial.group(2) or '01'}-01" if partial else value)
        if when is None:
            self.notes.append(f"{where}: {label} {_quote(value)} is not a date (1995..2100), ignored")
        return when

    def discovery(self, kind: Kind) -> Discovery:
        """What was collected: the newest `max_entries` entries, in document order."""
        kept = _newest(self.entries, self.max_entries)
        return Discovery(
            kind=kind,
            entries=tuple(kept),
            skipped=tuple(self.skipped),
            duplicates=tuple(self.duplicates),
            notes=tuple(self.notes),
            omitted=len(self.entries) - len(kept),
        )


def _newest(entries: list[Entry], limit: int) -> list[Entry]:
    """The `limit` newest entries, in their order: dated before undated, then document order."""
    if len(entries) <= limit:
        return entries

    def rank(index: int) -> tuple[bool, float, int]:
        return (*recency_key(entries[index]), index)

    return [entries[i] for i in sorted(heapq.nsmallest(max(limit, 0), range(len(entries)), key=rank))]


def _resolve(href: str | None, base: str | None) -> tuple[str, str]:
    """`href` made absolute against `base`, and its `canonical_url` key; ValueError says why not."""
    if href is None or not href.strip():
        raise ValueError("no URL")
    href = href.strip()
    if UNSHOWABLE.search(href):  # what `canonical_url` refuses, said before resolving
        raise ValueError(f"control characters in URL {_quote(href)}")
    href = href.replace(" ", "%20")  # spaces inside a <loc> are common; %20 is what they mean
    try:
        parts = urllib.parse.urlsplit(href)
        if not parts.scheme and base is not None:
            parts = urllib.parse.urlsplit(urllib.parse.urljoin(base, href))
    except ValueError as exc:  # unbalanced IPv6 brackets
        raise ValueError(f"bad URL {_quote(href)}: {exc}") from exc
    if not parts.scheme:
        where = "without a base URL" if base is None else f"cannot be resolved against {_quote(base)}"
        raise ValueError(f"relative URL {_quote(href)} {where}")
    if parts.scheme.lower() not in HTTP_SCHEMES:
        raise ValueError(f"not an http(s) URL: {_quote(href)}")
    url = urllib.parse.urlunsplit(parts._replace(fragment=""))
    try:
        return url, canonical_url(url)  # checks the host, port and IDN
    except ValueError as exc:
        raise ValueError(f"bad URL {_quote(url)}: {exc}") from exc


def _gunzip(raw: bytes) -> bytes:
    """Inflate gzip (all members) to at most `MAX_BYTES`."""
    try:
        return inflate_members(raw, MAX_BYTES).data
    except GzipError as exc:
        if exc.kind == "too_large":
            raise FeedError("too_large", f"gzip inflates past {MAX_BYTES} bytes") from exc
        if exc.kind == "truncated":
            raise FeedError("malformed", "gzip stream is truncated") from exc
        raise FeedError("malformed", f"gzip stream is corrupt: {exc}") from exc


class _BoundedBuilder(TreeBuilder):
    """A tree builder that gives up after `MAX_ELEMENTS` elements."""

    count = 0

    def start(self, tag: str, attrs: dict[str, str]) -> Element:
        """Count, then build as usual."""
        self.count += 1
        if self.count > MAX_ELEMENTS:
            raise FeedError("too_large", f"more than {MAX_ELEMENTS} XML elements")
        return super().start(tag, attrs)


def _parse_xml(data: bytes) -> Element:
    try:
        return _parse_defused(data)
    except _EncodingError as exc:
        # expat reads only single-byte encodings: decode Shift_JIS, GB2312, Big5... ourselves.
        recoded = _recode(data, exc)
    try:
        return _parse_defused(recoded)
    except _EncodingError as exc:
        raise FeedError("malformed", f"unreadable XML encoding: {exc}") from exc


class _EncodingError(Exception):
    """expat cannot read the declared encoding."""


def _parse_defused(data: bytes) -> Element:
    parser = defusedxml.ElementTree.XMLParser(
        target=_BoundedBuilder(), forbid_dtd=True, forbid_entities=True, forbid_external=True
    )
    try:
        parser.feed(data)
        root: Element = parser.close()
    except defusedxml.DefusedXmlException as exc:  # DTDForbidden, EntitiesForbidden, ExternalReferenceForbidden
        raise FeedError("entities", f"DTDs and entity declarations are refused ({type(exc).__name__})") from exc
    except ParseError as exc:
        raise FeedError("malformed", f"not well-formed XML: {exc}") from exc
    except LookupError as exc:  # an encoding name expat and Python both do not know
        raise FeedError("malformed", f"unknown XML encoding: {exc}") from exc
    except FeedError:
        raise
    except ValueError as exc:  # "multi-byte encodings are not supported"
        raise _EncodingError(str(exc)) from exc
    return root


def _recode(data: bytes, error: _EncodingError) -> bytes:
    match = _XML_ENCODING.match(data)
    if match is None:
        raise FeedError("malformed", f"unreadable XML: {error}") from error
    try:
        text = data.decode(match.group(2).decode("ascii"), errors="replace")
    except LookupError as exc:
        raise FeedError("malformed", f"unknown XML encoding: {exc}") from exc
    return match.expand(rb"\1utf-8\3") + text.encode("utf-8")[len(match.group(0)) :]


def _base_of(element: Element, parent: str | None) -> str | None:
    """The base URL inside `element`: its xml:base resolved against the parent's base."""
    value = element.get(XML_BASE)
    if value is None or not value.strip():
        return parent
    try:
        return urllib.parse.urljoin(parent, value.strip()) if parent else value.strip()
    except ValueError:  # an unparseable xml:base changes nothing
        return parent


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def _namespace(tag: str) -> str:
    return tag[1:].partition("}")[0] if tag.startswith("{") else ""


def _children(parent: Element, local: str, namespaces: tuple[str, ...] | None = None) -> list[Element]:
    """Direct children named `local` (in one of `namespaces`, "" for none; any when None)."""
    return [
        child
        for child in parent
        if _local(child.tag) == local and (namespaces is None or _namespace(child.tag) in namespaces)
    ]


def _child(parent: Element, local: str, namespaces: tuple[str, ...] | None = None) -> Element | None:
    found = _children(parent, local, namespaces)
    return found[0] if found else None


def _text(element: Element | None) -> str | None:
    """All text inside `element`, whitespace collapsed; None when empty."""
    if element is None:
        return None
    return " ".join("".join(element.itertext()).split()) or None


def _quote(value: str) -> str:
    return repr(value if len(value) <= MAX_QUOTE else value[:MAX_QUOTE] + "…")
