"""Page metadata from a parsed HTML tree: JSON-LD, `<meta>` tags, `<time>`, the URL.

Pure: reads the tree, never changes it. Which meta names, JSON-LD types and selectors count,
and in which order, is data at the top of the module; the functions below only apply it.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any, Literal

from normalizers.common import Implausible, clean_line, unrepresentable
from normalizers.language import normalize_language_tag
from normalizers.meta import MONTHS, article_url, clean_authors, to_utc

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from selectolax.lexbor import LexborHTMLParser

__all__ = [
    "DateSource",
    "PageDate",
    "PageMeta",
    "date_from_url",
    "extract_metadata",
    "parse_date",
    "read_date",
    "split_byline",
]

DateSource = Literal["jsonld", "meta", "time", "url"]
# One dated piece of evidence on a page: where it was found, and the date (or the
# implausible date, for a warning when the caller gets that far).
PageDate = tuple[DateSource, datetime | Implausible]

# --- Heuristics (data) -------------------------------------------------------------------
# Meta keys are the lower-cased `property`, `name` or `itemprop` of a <meta content=...>.
# Within each tuple, earlier keys win.
TITLE_META = ("og:title", "twitter:title")
PUBLISHED_META = (
    "article:published_time",
    "og:article:published_time",
    "datepublished",
    "pubdate",
    "publishdate",
    "publish-date",
    "publish_date",
    "dc.date.issued",
    "dcterms.issued",
    "sailthru.date",
    "parsely-pub-date",
    "date",
    "dc.date",
)
MODIFIED_META = (
    "article:modified_time",
    "og:article:modified_time",
    "og:updated_time",
    "datemodified",
    "dcterms.modified",
)
AUTHOR_META = ("author", "article:author", "parsely-author", "sailthru.author", "byl", "dc.creator", "dcterms.creator")
SITE_NAME_META = ("og:site_name",)
SITE_NAME_FALLBACK_META = ("application-name",)
DESCRIPTION_META = ("og:description", "description", "twitter:description", "dc.description")
TAG_META = ("article:tag", "news_keywords", "keywords", "parsely-tags")
IMAGE_META = ("og:image", "og:image:url", "og:image:secure_url", "twitter:image", "twitter:image:src")
LANGUAGE_META = ("content-language", "language", "dc.language", "og:locale")

# JSON-LD @type values (lower-cased, without a schema.org prefix) of the article itself.
JSONLD_ARTICLE_TYPES = frozenset(
    {
        "article",
        "newsarticle",
        "reportagenews",
        "analysisnewsarticle",
        "opinionnewsarticle",
        "reviewnewsarticle",
        "backgroundnewsarticle",
        "askpublicnewsarticle",
        "blogposting",
        "liveblogposting",
        "socialmediaposting",
        "techarticle",
        "report",
    }
)
# Used only when no article-typed object exists: a page object may carry the dates.
JSONLD_PAGE_TYPES = frozenset({"webpage", "itempage"})
JSONLD_SITE_TYPES = frozenset({"website", "organization", "newsmediaorganization"})
# Keys whose values are followed when looking for typed objects.
JSONLD_CONTAINER_KEYS = ("@graph", "mainEntity")

# <time datetime> whose itemprop/class/attributes say "this is the publication date".
TIME_PUBLISHED_SELECTORS = (
    "time[pubdate][datetime]",
    "time[itemprop=datePublished][datetime]",
    "time[class*=publish][datetime]",
    "time[class*=pubdate][datetime]",
    "time[class*=posted][datetime]",
)
# Then the first <time datetime> inside the article, then anywhere.
TIME_FALLBACK_SELECTORS = ("article time[datetime]", "main time[datetime]", "time[datetime]")
# Elements marked up as the author (microdata, rel=author), tried after JSON-LD and meta.
AUTHOR_SELECTORS = ("[itemprop=author] [itemprop=name]", "[itemprop=author]", "[rel=author]")

# A title separator is one of these with spaces around it: "Headline | Site".
TITLE_SEPARATORS = ("|", "-", "–", "—", "::", "·", "•", "»", ":")
# Leading words of a byline, in the languages we see most.
BYLINE_PREFIXES = ("by", "von", "par", "por", "door")
# Joiners between several authors ("A and B", "A und B", "A & B"), matched as whole words.
BYLINE_CONJUNCTIONS = ("and", "und", "et", "y", "e", "en", "og", "och", "i", "&")
# A byline piece made only of these words, with at least one of ROLE_HEADS, is a job title
# ("Staff Writer", "Senior Political Correspondent"), not a name.
ROLE_HEADS = frozenset(
    {
        "writer",
        "reporter",
        "correspondent",
        "editor",
        "contributor",
        "columnist",
        "staff",
        "photographer",
        "journalist",
        "producer",
        "desk",
        "team",
        "bureau",
        "author",
        "editors",
        "reporters",
        "writers",
    }
)
ROLE_WORDS = ROLE_HEADS | {
    "senior",
    "chief",
    "special",
    "contributing",
    "associate",
    "assistant",
    "deputy",
    "managing",
    "executive",
    "political",
    "business",
    "sports",
    "science",
    "health",
    "technology",
    "foreign",
    "international",
    "national",
    "news",
    "investigative",
    "digital",
    "data",
    "staff",
    "the",
    "a",
    "of",
    "for",
    "and",
}

# A web page's own dates outside this range are typos, placeholders (1970-01-01,
# 0001-01-01, 2999-12-31) or far future: the first news sites went online in 1994, so no
# page metadata dates an article earlier. Stricter than the floor all evidence shares
# (`common.EARLIEST_DATE`), which must admit archives of older news.
MIN_YEAR, MAX_YEAR = 1995, 2100
_OUTSIDE_WEB_ERA = f"is outside the years {MIN_YEAR} to {MAX_YEAR} a web page's own date can give"
# Bounds on hostile input.
MAX_JSONLD_SCRIPTS = 32
MAX_JSONLD_CHARS = 1_000_000
MAX_JSONLD_OBJECTS = 2000
MAX_JSONLD_DEPTH = 12
MAX_FIELD_CHARS = 2000  # a title, description or tag longer than this is not one
MAX_BYLINE_CHARS = 300  # a longer "byline" is an author bio or a whole block of text
MAX_AUTHOR_WORDS = 6  # longer "names" are sentences ("Jane is a reporter covering ...")
MAX_AUTHORS = 20
MAX_TAGS = 100
MAX_TAG_CHARS = 100
# The shorter of two agreeing titles must be at least this share of the longer one, so a
# logo <h1> "News" does not "agree" with the headline "News: markets fall".
MIN_TITLE_OVERLAP = 0.5

_TIME = r"(?:,?\s+(?:at\s+)?(\d{1,2}):(\d{2})(?::(\d{2}))?\s*([ap]\.?m\.?)?)?"
# "March 5, 2024", "Mar. 5 2024 10:30 AM"
_MONTH_FIRST = re.compile(r"([a-z]+)\.?\s+(\d{1,2})(?:st|nd|rd|th)?,?\s+(\d{4})" + _TIME, re.IGNORECASE)
# "5 March 2024", "5. März" is not English, so not here
_DAY_FIRST = re.compile(r"(\d{1,2})(?:st|nd|rd|th)?\.?\s+([a-z]+)\.?,?\s+(\d{4})" + _TIME, re.IGNORECASE)
_FRACTION = re.compile(r"(\.\d{6})\d+")
_SLASH_DATE = re.compile(r"\d{4}/\d{2}/\d{2}(?!\d)")
# ISO 8601's expanded years, signed and of more than four digits as JavaScript's
# toISOString writes them: "+010000-01-01T00:00:00.000Z", "-000001-01-01", "+002024-03-15".
_EXPANDED_YEAR = re.compile(r"([+-]\d{4,12})(-\d{2}-\d{2}(?![0-9]).*)")
# /2024/03/15/, /2024-03-15-slug, /20240315/ in a URL path. Years 1000-2999 are read, so a
# URL dated outside MIN_YEAR..MAX_YEAR (/2999/01/01/) is reported rather than skipped.
_URL_DATE = re.compile(r"(?<![0-9])([12]\d{3})([/_-]?)(\d{2})\2(\d{2})(?![0-9])")
_URL_DATE_DELIMITERS = "/-_."
_WS = re.compile(r"\s+")
_EMAIL = re.compile(r"\S+@\S+\.\S+")
_URL_START = re.compile(r"(?:https?:)?//|www\.", re.IGNORECASE)
# A byline piece ending like a host name ("example.com") or containing "www." / "://".
_DOMAIN = re.compile(r"[a-z0-9-]\.[a-z]{2,6}$|www\.|://")
_SPLIT_TAGS = re.compile(r"[,;]")
_BYLINE_SPLIT = re.compile(
    r"\s*[,;|/]\s*|\s+(?:" + "|".join(re.escape(c) for c in BYLINE_CONJUNCTIONS) + r")\s+|\s+[-–—]\s+",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class PageMeta:
    """What a page says about itself: title, authors, dates, language, URLs, tags.

    `dates` and `modified_dates` hold every publication and modification date the page
    gives, best evidence first, so a caller that rejects one (a date in the future) can
    fall back to the next; a date outside MIN_YEAR..MAX_YEAR is there as `Implausible`, so
    the caller can say it passed it over. `published_at`, `date_source` and `modified_at`
    are the first plausible ones.
    `warnings` says which canonical URLs were not article URLs.
    """

    title: str | None = None
    authors: tuple[str, ...] = ()
    dates: tuple[PageDate, ...] = ()
    modified_dates: tuple[PageDate, ...] = ()
    language: str | None = None
    canonical_url: str | None = None
    site_name: str | None = None
    description: str | None = None
    tags: tuple[str, ...] = ()
    image_url: str | None = None
    warnings: tuple[str, ...] = ()

    @property
    def published_at(self) -> datetime | None:
        """The best-evidenced plausible publication date."""
        return next((when for _, when in self.dates if isinstance(when, datetime)), None)

    @property
    def date_source(self) -> DateSource | None:
        """The evidence behind `published_at`."""
        return next((source for source, when in self.dates if isinstance(when, datetime)), None)

    @property
    def modified_at(self) -> datetime | None:
        """The best-evidenced plausible modification date."""
        return next((when for _, when in self.modified_dates if isinstance(when, datetime)), None)


def extract_metadata(tree: LexborHTMLParser, url: str | None = None) -> PageMeta:
    """Collect a page's metadata from JSON-LD, meta tags, `<time>` and the URL; relative URLs resolve against `url`."""
    metas = _meta_values(tree)
    article, site = _jsonld(tree)
    base = _base_url(tree, url)

    # Every name the page gives itself, best first: the first is `site_name`, all of them
    # are kept out of the authors.
    site_names = [
        name
        for name in (
            *_all(metas, SITE_NAME_META),
            _text(_name_of(article.get("publisher"))),
            _text(site.get("name")),
            *_all(metas, SITE_NAME_FALLBACK_META),
        )
        if name
    ]
    site_name = site_names[0] if site_names else None
    rejected: list[str] = []
    canonical = _first_url(base, _canonical_links(tree), rejected, "canonical link") or _first_url(
        base, metas.get("og:url", []), rejected, "og:url"
    )
    modified: list[PageDate] = [
        *_dates("jsonld", [_text(article.get("dateModified"))]),
        *_dates("meta", _all(metas, MODIFIED_META)),
    ]
    return PageMeta(
        title=_title(tree, metas, article, site_name),
        authors=_authors(tree, metas, article, site_names),
        dates=_published(tree, metas, article, (url, canonical)),
        modified_dates=tuple(modified),
        language=_language(tree, metas, article),
        canonical_url=canonical,
        site_name=site_name,
        description=_first(metas, DESCRIPTION_META) or _text(article.get("description")),
        tags=_tags(metas, article),
        image_url=_first_url(base, [*_all(metas, IMAGE_META), *_jsonld_images(article.get("image"))]),
        warnings=tuple(rejected),
    )


# --- Dates -------------------------------------------------------------------------------


def parse_date(value: str | None, tz: str = "UTC") -> datetime | None:
    """Parse an ISO 8601, RFC 2822 or 'March 5, 2024' date to UTC (naive ones read in `tz`); None outside 1995..2100."""
    when = read_date(value, tz)
    return when if isinstance(when, datetime) else None


def read_date(value: str | None, tz: str = "UTC") -> datetime | Implausible | None:
    """`parse_date`, but a date outside 1995..2100 (or past the years a timestamp holds) is `Implausible`, not None."""
    if not value:
        return None
    text = _WS.sub(" ", value).strip()[:100]
    if not text:
        return None
    expanded = _EXPANDED_YEAR.fullmatch(text)
    if expanded is not None:
        year = int(expanded.group(1))
        if not 1 <= year <= 9999:
            return unrepresentable(text)
        text = f"{year:04d}{expanded.group(2)}"
    when = _parse_iso(text) or _parse_rfc2822(text) or _parse_english(text)
    if when is None:
        return None
    try:
        # A page that gives no zone gives no way to know it: the source profile's zone if the
        # caller has one, else UTC, which keeps the result deterministic and off by hours at most.
        when = to_utc(when, tz)
    except OverflowError:  # year 1 or 9999 shifted past the representable range
        return unrepresentable(text)
    return when if MIN_YEAR <= when.year <= MAX_YEAR else Implausible(when.isoformat(), _OUTSIDE_WEB_ERA)


def _parse_iso(text: str) -> datetime | None:
    # fromisoformat keeps at most microseconds; some CMSs write nanoseconds, or 2024/03/15.
    candidate = _FRACTION.sub(r"\1", text)
    if _SLASH_DATE.match(candidate):
        candidate = candidate[:10].replace("/", "-") + candidate[10:]
    if len(candidate) > 10 and candidate[10] == " " and candidate[:4].isdigit():
        candidate = candidate[:10] + "T" + candidate[11:].replace(" ", "")
    try:
        return datetime.fromisoformat(candidate)
    except ValueError:
        return None


def _parse_rfc2822(text: str) -> datetime | None:
    try:
        return parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def _parse_english(text: str) -> datetime | None:
    for pattern, month_group, day_group in ((_MONTH_FIRST, 1, 2), (_DAY_FIRST, 2, 1)):
        match = pattern.search(text)
        if match is None:
            continue
        month = MONTHS.get(match.group(month_group).lower())
        if month is None:
            continue
        hour, minute, second = (int(match.group(i) or 0) for i in (4, 5, 6))
        meridiem = (match.group(7) or "").replace(".", "").lower()
        if meridiem == "pm" and hour < 12:
            hour += 12
        elif meridiem == "am" and hour == 12:
            hour = 0
        try:
            return datetime(int(match.group(3)), month, int(match.group(day_group)), hour, minute, second)
        except ValueError:
            continue
    return None


def _dates(source: DateSource, values: Iterable[str | None]) -> list[PageDate]:
    """The values that read as dates (plausible or not), in order, labelled with their evidence."""
    return [(source, when) for value in values if (when := read_date(value)) is not None]


def _published(
    tree: LexborHTMLParser, metas: dict[str, list[str]], article: dict[str, Any], urls: tuple[str | None, ...]
) -> tuple[PageDate, ...]:
    """Every publication date the page gives, best evidence first: JSON-LD, meta, `<time>`, the URL."""
    found = [*_dates("jsonld", [_text(article.get("datePublished"))]), *_dates("meta", _all(metas, PUBLISHED_META))]
    # The selectors are subsets of the last one: a page without any dated <time> (most) needs one query.
    if tree.css_first(TIME_FALLBACK_SELECTORS[-1]) is not None:
        for selector in (*TIME_PUBLISHED_SELECTORS, *TIME_FALLBACK_SELECTORS):
            found += _dates("time", (node.attributes.get("datetime") for node in tree.css(selector)))
    found += [("url", when) for candidate in urls if (when := _url_date(candidate)) is not None]
    return tuple(found)


def date_from_url(url: str | None) -> datetime | None:
    """A calendar date in a URL path (/2024/03/15/, /2024-03-15-, /20240315/) in 1995..2100, at midnight UTC."""
    when = _url_date(url)
    return when if isinstance(when, datetime) else None


def _url_date(url: str | None) -> datetime | Implausible | None:
    """The first plausible date in a URL path, else the first implausible one, else None."""
    if not url:
        return None
    try:
        path = urllib.parse.urlsplit(url).path
    except ValueError:
        return None
    implausible: Implausible | None = None
    for match in _URL_DATE.finditer(path):
        start, end = match.span()
        before = path[start - 1] if start else "/"
        after = path[end] if end < len(path) else "/"
        if before not in _URL_DATE_DELIMITERS or after not in _URL_DATE_DELIMITERS:
            continue  # part of a longer token such as an id or a slug word
        try:
            # The URL gives the day only: midnight UTC stands for "some time that day".
            when = datetime(int(match.group(1)), int(match.group(3)), int(match.group(4)), tzinfo=UTC)
        except ValueError:
            continue
        if MIN_YEAR <= when.year <= MAX_YEAR:
            return when
        implausible = implausible or Implausible(when.isoformat(), _OUTSIDE_WEB_ERA)
    return implausible


# --- Title -------------------------------------------------------------------------------


def _title(
    tree: LexborHTMLParser, metas: dict[str, list[str]], article: dict[str, Any], site_name: str | None
) -> str | None:
    """Reconcile meta titles with the first `<h1>`.

    Meta titles, in order: og:title, twitter:title, JSON-LD headline, `<title>`, each with a
    " | Site" suffix (or "Site | " prefix) removed when it names the site or recurs in
    another candidate. The first `<h1>` wins when it agrees with one of them (one contains
    the other, ignoring case and whitespace): it is the headline the reader sees, where meta
    titles are often shortened or rewritten for sharing. Otherwise the first meta title wins,
    because a lone `<h1>` is as often the site logo or a section name; the `<h1>` is used
    only when there is no meta title at all.
    """
    title_node = tree.css_first("title")
    raw = [
        *(_first(metas, (key,)) for key in TITLE_META),
        _text(article.get("headline")) or _text(article.get("name")),
        _clean(title_node.text()) if title_node is not None else None,
    ]
    candidates = [c for c in raw if c]
    stripped = [_strip_site(c, site_name, candidates) for c in candidates]
    metas_titles = [c for c in stripped if c]
    h1_node = tree.css_first("h1")
    h1 = _clean(h1_node.text()) if h1_node is not None else None
    if h1 and any(_agree(h1, title) for title in metas_titles):
        return h1
    return metas_titles[0] if metas_titles else h1


def _strip_site(title: str, site_name: str | None, candidates: list[str]) -> str:
    site = _fold(site_name) if site_name else None
    others = [_fold(c) for c in candidates if c != title]
    for sep in TITLE_SEPARATORS:
        marker = f" {sep} "
        if marker not in title:
            continue
        head, _, tail = title.rpartition(marker)
        if _fold(head) in others or _is_branding(tail, site, others, suffix=True):
            return head.strip()
        first, _, rest = title.partition(marker)
        if _is_branding(first, site, others, suffix=False):
            return rest.strip()
    return title


def _is_branding(part: str, site: str | None, others: list[str], *, suffix: bool) -> bool:
    folded = _fold(part)
    if not folded:
        return False
    if site and (folded == site or folded.replace(" ", "") == site.replace(" ", "")):
        return True
    # The same segment ends (or starts) another candidate: site branding, not headline.
    return any((o.endswith(folded) if suffix else o.startswith(folded)) and o != folded for o in others)


def _agree(a: str, b: str) -> bool:
    fa, fb = _fold(a), _fold(b)
    short, long = sorted((fa, fb), key=len)
    return bool(short) and short in long and len(short) >= MIN_TITLE_OVERLAP * len(long)


# --- Authors -----------------------------------------------------------------------------


def _authors(
    tree: LexborHTMLParser, metas: dict[str, list[str]], article: dict[str, Any], site_names: list[str]
) -> tuple[str, ...]:
    """Authors from the first source that names anyone: JSON-LD, then meta tags, then microdata/rel=author.

    Sources are not merged: they often disagree in form ("Jane Doe" vs "JANE DOE, Staff")
    and a later source is the weaker evidence.
    """
    sources: list[list[str]] = [
        [name for value in _as_list(article.get("author")) if (name := _person_name(value))],
        *(metas.get(key, []) for key in AUTHOR_META),
        *([_clean(node.text()) for node in tree.css(selector)] for selector in AUTHOR_SELECTORS),
    ]
    for values in sources:
        names = [name for value in values for name in split_byline(value, site_names)]
        cleaned = clean_authors(tuple(names))[:MAX_AUTHORS]
        if cleaned:
            return cleaned
    return ()


def _person_name(value: Any) -> str | None:
    if isinstance(value, dict):
        return _text(value.get("name"))
    return _text(value)


def split_byline(byline: str | None, site_names: Iterable[str] = ()) -> list[str]:
    """Split a byline into clean names: no 'By', no 'and', no roles, dates, emails, URLs or site names."""
    if not byline or len(byline) > MAX_BYLINE_CHARS:
        return []
    text = _clean(byline)
    if _URL_START.match(text) or (" " not in text and "/" in text):
        return []  # article:author is often a profile URL
    words = text.split(" ", 1)
    if len(words) == 2 and words[0].rstrip(":").casefold() in BYLINE_PREFIXES:
        text = words[1]
    sites = {_fold(site) for site in site_names if site}
    names: list[str] = []
    for index, piece in enumerate(_BYLINE_SPLIT.split(text)):
        name = piece.strip(" .:·•")
        if not name or any(ch.isdigit() for ch in name) or _EMAIL.search(name) or _DOMAIN.search(name):
            continue
        words = name.split()
        if len(words) > MAX_AUTHOR_WORDS:
            return []  # prose (an author bio, a sentence): its other pieces are not names either
        if _is_role(words) or _is_site(_fold(name), sites, trailing=index > 0):
            continue
        names.append(name)
    return names


def _is_site(name: str, sites: set[str], *, trailing: bool) -> bool:
    """The name is a site name; after another name ("Jane Doe, Business Insider") a prefix of one suffices."""
    return name in sites or (trailing and any(site.startswith(name + " ") for site in sites))


def _is_role(words: list[str]) -> bool:
    folded = [w.strip(".,()").casefold() for w in words]
    return all(w in ROLE_WORDS for w in folded) and any(w in ROLE_HEADS for w in folded)


# --- Language, tags, URLs ----------------------------------------------------------------


def _language(tree: LexborHTMLParser, metas: dict[str, list[str]], article: dict[str, Any]) -> str | None:
    root = tree.css_first("html")
    declared = [
        root.attributes.get("lang") if root is not None else None,
        *metas.get("http-equiv:content-language", []),
        *_all(metas, LANGUAGE_META),
        _text(article.get("inLanguage")),
    ]
    for tag in declared:
        lang = normalize_language_tag(tag)
        if lang is not None:
            return lang
    return None


def _tags(metas: dict[str, list[str]], article: dict[str, Any]) -> tuple[str, ...]:
    raw = [*_all(metas, TAG_META), *(_text(k) for k in _as_list(article.get("keywords")))]
    seen: dict[str, str] = {}
    for value in raw:
        for part in _SPLIT_TAGS.split(value or ""):
            tag = _clean(part)
            if tag and len(tag) <= MAX_TAG_CHARS and tag.casefold() not in seen:
                seen[tag.casefold()] = tag
    return tuple(seen.values())[:MAX_TAGS]


def _canonical_links(tree: LexborHTMLParser) -> list[str]:
    return [
        href
        for node in tree.css("link[rel][href]")
        if "canonical" in (node.attributes.get("rel") or "").lower().split() and (href := node.attributes.get("href"))
    ]


def _base_url(tree: LexborHTMLParser, url: str | None) -> str | None:
    """The document's base URL: `<base href>` resolved against the page URL, as browsers do."""
    node = tree.css_first("base[href]")
    href = node.attributes.get("href") if node is not None else None
    if not href:
        return url
    try:
        return _resolve(url, href)
    except ValueError:
        return url


def _first_url(
    base: str | None, candidates: Iterable[str | None], rejected: list[str] | None = None, what: str = ""
) -> str | None:
    """The first candidate that resolves to an article URL; the others go to `rejected` (when given) as warnings."""
    for candidate in candidates:
        if not candidate:
            continue
        try:
            return _resolve(base, candidate)
        except ValueError as exc:
            if rejected is not None:
                rejected.append(f"page {what} {candidate[:200]!r} dropped: {exc}")
    return None


def _resolve(base: str | None, href: str) -> str:
    """`href` made absolute against `base`, as an article URL (`meta.article_url`); ValueError otherwise."""
    if len(href) > MAX_FIELD_CHARS:
        raise ValueError(f"it is longer than {MAX_FIELD_CHARS} characters")
    return article_url(urllib.parse.urljoin(base or "", href.strip()))


# --- JSON-LD -----------------------------------------------------------------------------


def _jsonld(tree: LexborHTMLParser) -> tuple[dict[str, Any], dict[str, Any]]:
    """The page's article object and site object from JSON-LD (empty dicts when absent)."""
    objects: list[dict[str, Any]] = []
    for script in tree.css('script[type="application/ld+json"]')[:MAX_JSONLD_SCRIPTS]:
        data = _load_json(script.text())
        if data is not None:
            objects.extend(_typed_objects(data, 0))
        if len(objects) >= MAX_JSONLD_OBJECTS:
            break
    article = next((o for o in objects if _types(o) & JSONLD_ARTICLE_TYPES), None)
    if article is None:
        article = next((o for o in objects if _types(o) & JSONLD_PAGE_TYPES), {})
    site = next((o for o in objects if _types(o) & JSONLD_SITE_TYPES), {})
    return article, site


def _load_json(text: str) -> Any:
    if len(text) > MAX_JSONLD_CHARS:
        return None
    # CMSs wrap JSON-LD in HTML comments or CDATA markers, which JSON does not allow.
    body = text.strip()
    for wrapper in ("<!--", "-->", "//<![CDATA[", "//]]>", "<![CDATA[", "]]>"):
        body = body.replace(wrapper, "")
    try:
        # strict=False: raw newlines and tabs inside strings are common and harmless.
        return json.loads(body.strip().rstrip(";"), strict=False)
    except (ValueError, RecursionError):
        return None


def _typed_objects(data: Any, depth: int) -> Iterator[dict[str, Any]]:
    """Objects with an @type in document order, following lists, @graph and mainEntity."""
    if depth > MAX_JSONLD_DEPTH:
        return
    if isinstance(data, list):
        for item in data[:MAX_JSONLD_OBJECTS]:
            yield from _typed_objects(item, depth + 1)
    elif isinstance(data, dict):
        if "@type" in data:
            yield data
        for key in JSONLD_CONTAINER_KEYS:
            if key in data:
                yield from _typed_objects(data[key], depth + 1)


def _types(obj: dict[str, Any]) -> set[str]:
    return {t.rsplit("/", 1)[-1].lower() for t in _as_list(obj.get("@type")) if isinstance(t, str)}


def _jsonld_images(value: Any) -> list[str]:
    urls: list[str] = []
    for item in _as_list(value):
        text = _text(item.get("url") or item.get("contentUrl")) if isinstance(item, dict) else _text(item)
        if text:
            urls.append(text)
    return urls


def _name_of(value: Any) -> Any:
    """The name of a JSON-LD reference: a string, an object's `name`, or the first of a list."""
    first = next(iter(_as_list(value)), None)
    return first.get("name") if isinstance(first, dict) else first


# --- Small helpers -----------------------------------------------------------------------


def _meta_values(tree: LexborHTMLParser) -> dict[str, list[str]]:
    """`<meta>` contents by lower-cased property/name/itemprop (and `http-equiv:` + name), in document order."""
    found: dict[str, list[str]] = {}
    for node in tree.css("meta[content]"):
        attrs = node.attributes
        content = _clean(attrs.get("content") or "")
        if not content:
            continue
        for attr in ("property", "name", "itemprop"):
            key = (attrs.get(attr) or "").strip().lower()
            if key:
                found.setdefault(key, []).append(content)
        equiv = (attrs.get("http-equiv") or "").strip().lower()
        if equiv:
            found.setdefault(f"http-equiv:{equiv}", []).append(content)
    return found


def _all(metas: dict[str, list[str]], keys: Iterable[str]) -> list[str]:
    return [value for key in keys for value in metas.get(key, [])]


def _first(metas: dict[str, list[str]], keys: Iterable[str]) -> str | None:
    values = _all(metas, keys)
    return values[0] if values else None


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _text(value: Any) -> str | None:
    """A JSON-LD value as clean text: strings as they are, the first string of a list, else None."""
    if isinstance(value, list):
        value = next((v for v in value if isinstance(v, str)), None)
    if not isinstance(value, str):
        return None
    return _clean(value) or None


def _clean(text: str) -> str:
    return clean_line(text[:MAX_FIELD_CHARS])


def _fold(text: str) -> str:
    return _WS.sub(" ", text).strip().casefold()
