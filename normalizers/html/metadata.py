"""Page metadata from a parsed HTML tree: JSON-LD, meta tags, microdata, `<time>`, printed dates and bylines, the URL.

Pure: reads the tree, never changes it. Which meta names, JSON-LD types, selectors, byline
words, roles, credentials and organisation markers count, and in which order, is data at
the top of the module; the functions below only apply it. Dates keep how they were stated
(`common.Dated`: the day as published, the precision, the raw text); a page whose dates
contradict each other gives none. Authors are people: roles, credentials, organisations,
the site's own names, dates and URLs are removed.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import cache, partial
from importlib import resources
from typing import TYPE_CHECKING, Any, Literal

from normalizers.common import FUTURE_TOLERANCE, Dated, Implausible, Precision, clean_line, day_date
from normalizers.dates import MAX_YEAR, MIN_YEAR, MONTHS, OUTSIDE_WEB_ERA, english_date, read_date, stated
from normalizers.html.segment import BLOCK_TAGS
from normalizers.language import normalize_language_tag
from normalizers.meta import clean_authors
from normalizers.urls import canonical_url

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Sequence

    from selectolax.lexbor import LexborHTMLParser
    from selectolax.lexbor import LexborNode as Node

__all__ = [
    "DateSource",
    "PageDate",
    "PageMeta",
    "date_from_url",
    "extract_metadata",
    "split_byline",
]

DateSource = Literal["jsonld", "meta", "microdata", "time", "text", "url"]
# One dated piece of evidence on a page: where it was found, and the date (or the
# implausible date, for a warning when the caller gets that far).
PageDate = tuple[DateSource, Dated | Implausible]

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
    "published",
    "published_time",
    "publish_time",
    "published-date",
    "publication_date",
    "pub_date",
    "original-publish-date",
    "article.published",
    "article_date_original",
    "citation_publication_date",
    "citation_date",
    "prism.publicationdate",
    "dcterms.created",
    "dc.date.created",
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
# Meta tags that label their neighbour (Twitter's cards: `twitter:label1` "Written by",
# `twitter:data1` "Jane Doe"), and the labels that say the neighbour is the author.
MAX_META_LABELS = 4
AUTHOR_LABELS = frozenset({"written by", "author", "authors", "by", "posted by", "published by"})
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
# Keys of the article object whose `{"@id": ...}` references are resolved to the nodes they name.
JSONLD_REFERENCE_KEYS = frozenset({"author"})
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
# `itemprop=datePublished` (or `published-date`...) on other elements than <meta> and <time>.
MICRODATA_PUBLISHED = "[itemprop*=published i]"

# Dates printed next to the headline (`_printed_dates`): how much text around the headline is
# read, and how many ancestors up. A byline block with its date is 20-200 characters after
# the headline in the layouts we know, a dateline above it under 100; the window leaves room
# for a standfirst between them while stopping short of the body's own dates. Swept on the
# WCXB dev pages in 3 domain groups (`bench/metadata.py --cv 3`): after 300/600/900 and
# before 150/300/450 moved the dates right by at most 2 of 588 (cross-validated 0.762 and
# 0.765 against 0.765 on the full set), so the layouts' reasoning above decides. Swept again
# with the date rules of issue 14's second round: 600 and 300 chosen on every group
# (cross-validated 0.816, 480 right and 37 wrong, as on the full set).
PRINTED_AFTER_CHARS = 600
PRINTED_BEFORE_CHARS = 300
PRINTED_LEVELS = 4
MAX_PRINTED_DATES = 4
MAX_PRINTED_NODES = 8
# Elements whose class says they print the article's date ("post-date", "entry-date",
# "story-date", "published-date", "posted-on"), read when nothing by the headline or the
# byline prints one. Only short texts count (a date with its label and time): a longer
# element is a block that merely mentions dates. Swept over 40, 80, 160 on the WCXB dev
# pages in 3 domain groups (`bench/metadata.py --cv 3`): no page's date changed, so the
# length of a label, a date and a time ("Published on: September 15, 2024 at 10:30 AM
# EST", 46 characters) with room to spare decides.
DATE_CLASS_SELECTORS = ("[class*=date]", "[class*=publish]", "[class*=posted]")
MAX_DATE_ELEMENT_CHARS = 80
# Words just before a printed date that make it an update's date, not the publication's.
UPDATE_WORDS = ("updated", "update", "modified", "revised", "reviewed", "edited", "refreshed", "aktualisiert")
UPDATED = "updated"

# Elements marked up as the author, tried after JSON-LD and meta: microdata and rel=author,
# then the class names and links bylines carry. Only the first matches of each selector
# outside comment, related-story and footer blocks are read (up to `MAX_BYLINE_NODES`
# for microdata, the first for byline classes).
AUTHOR_SELECTORS = ("[itemprop=author] [itemprop=name]", "[itemprop=author]", "[rel=author]")
BYLINE_SELECTORS = ("[class*=byline]", "[class*=author]", "a[href*='/author']")
# Among the `[class*=author]` matches, those whose class names the name itself come first
# (an "author-box" also holds the bio, the photo credit, the social links).
AUTHOR_NAME_CLASSES = ("author-name", "author__name", "authorname", "post-author", "article-author", "entry-author")
MAX_BYLINE_NODES = 3
# Ancestors (a class or id containing one of these, or the tag) whose author elements are
# not the article's: comments, related stories, footers, asides.
NOT_ARTICLE_MARKERS = ("comment", "related", "footer", "sidebar", "widget", "recommend", "more-from", "newsletter")
# The page's first element of these tags (in this order) holds the article: an author
# element in it is the article's unless one of those blocks is nearer.
ARTICLE_TAGS = ("article", "main")
NOT_ARTICLE_TAGS = frozenset({"aside", "nav"})  # a <footer> may be the article's own (its byline)
MAX_ANCESTORS_CHECKED = 12

# A title separator is one of these with spaces around it: "Headline | Site".
TITLE_SEPARATORS = ("|", "-", "–", "—", "::", "·", "•", "»", ":")
# Leading words of a byline in the languages we see most, longest first (matched
# case-insensitively, with an optional colon): "By", "Written by", "Author:", "Von", "Par".
BYLINE_PREFIXES = (
    "written by",
    "posted by",
    "published by",
    "story by",
    "words by",
    "text by",
    "reporting by",
    "recipe by",
    "article by",
    "authored by",
    "authors",
    "author",
    "by",
    "von",
    "par",
    "por",
    "door",
    "di",
    "av",
    "af",
    "przez",
    "autor",
    "auteur",
)
# The byline ends before these: someone else's credit, or the date's label.
CREDIT_PREFIXES = (
    "updated by",
    "edited by",
    "reviewed by",
    "medically reviewed by",
    "fact checked by",
    "fact-checked by",
    "photos by",
    "photo by",
    "photography by",
    "illustration by",
    "illustrations by",
    "video by",
    "translated by",
    "sponsored by",
    "on behalf of",
    "presented by",
    "powered by",
    "additional reporting by",
    "updated on",
    "updated",
    "last updated",
    "published on",
    "published",
    "posted on",
    "in:",
    "filed under",
    "category:",
    "categories:",
    "tags:",
)
# Joiners between several authors ("A and B", "A und B", "A & B"), matched as whole words.
BYLINE_CONJUNCTIONS = ("and", "und", "et", "y", "e", "en", "og", "och", "i", "&")
# Lower-case words that continue a byline line after the names: "By Jane Doe on March 5",
# "By Jane Doe updated 2 hours ago", "By Jane Doe in Politics", "By Jane Doe 5 min read".
BYLINE_FOLLOWERS = frozenset({"on", "at", "in", "updated", "published", "posted", "last", "min", "read"})
# A byline piece whose last word is one of these is a job title ("Staff Writer", "Senior
# Political Correspondent", "Trial Attorney"), and so is one whose first word is one
# followed by "of" or "at" ("Director of Operations", "Head of Content"): not a name.
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
        "contributors",
        "director",
        "manager",
        "officer",
        "president",
        "founder",
        "co-founder",
        "coordinator",
        "cofounder",
        "head",
        "lead",
        "chief",
        "attorney",
        "lawyer",
        "dietitian",
        "nutritionist",
        "analyst",
        "consultant",
        "specialist",
        "strategist",
        "engineer",
        "developer",
        "designer",
        "marketer",
        "researcher",
        "scientist",
        "professor",
        "lecturer",
        "physician",
        "coach",
        "trainer",
        "owner",
        "partner",
        "host",
        "anchor",
        "critic",
        "blogger",
        "publisher",
        "expert",
        "reviewer",
        "admin",
        "intern",
        "fellow",
        "ceo",
        "cto",
        "cfo",
        "coo",
        "cmo",
        "vp",
        "svp",
        "evp",
    }
)
# Words that make a site's name a business's though it opens with a given name ("Jordan
# Motors", "Grace Church"); only for site names: as a byline, "Charlotte Church" is a person.
BUSINESS_WORDS = frozenset(
    {
        "motors", "auto", "church", "chapel", "photography", "photo", "studio", "studios", "design", "designs",
        "consulting", "kitchen", "cafe", "bakery", "salon", "spa", "clinic", "dental", "dentistry", "law",
        "realty", "homes", "construction", "plumbing", "roofing", "fitness", "gym", "academy", "school",
        "foundation", "institute", "center", "centre", "shop", "store", "boutique", "farm", "farms",
        "marketing", "agency", "solutions", "services", "systems", "labs", "co", "company", "travel", "tours",
        "events", "weddings", "creative", "media", "press", "books", "kids", "pets", "garden", "gardens",
    }
)  # fmt: skip
# Words that open a job title whatever trade follows ("Head Winemaker", "Senior Research Executive").
SENIORITY = frozenset({"senior", "sr", "junior", "jr", "chief", "head", "lead", "principal", "deputy", "associate"})
# Words a job title is made of besides its head, for pieces made only of such words.
ROLE_WORDS = ROLE_HEADS | {
    "senior",
    "sr",
    "junior",
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
    "the",
    "a",
    "of",
    "for",
    "and",
    "at",
    "vice",
    "guest",
    "freelance",
    "general",
    "content",
    "marketing",
    "operations",
    # The beats and desks reporters and editors are titled by ("Tech Reporter", "Travel
    # Editor", "Home and Digital Security Expert").
    "tech",
    "edtech",
    "travel",
    "food",
    "finance",
    "money",
    "lifestyle",
    "culture",
    "entertainment",
    "opinion",
    "education",
    "climate",
    "environment",
    "security",
    "legal",
    "politics",
    "economics",
    "markets",
    "music",
    "arts",
    "style",
    "fashion",
    "beauty",
    "wellness",
    "home",
    "garden",
    "auto",
    "autos",
    "gaming",
    "weather",
    "crime",
    "local",
    "world",
    "commerce",
    "shopping",
    "deals",
    "video",
    "features",
    "seo",
    "copy",
}
# Credentials (and honorifics, which some bylines print after the name), dropped from after
# names ("Jane Doe, PhD"); an honorific before a name stays (`HONORIFICS`).
NAME_AFFIXES = frozenset(
    {
        "dr",
        "prof",
        "mr",
        "mrs",
        "ms",
        "mx",
        "sir",
        "dame",
        "phd",
        "md",
        "mba",
        "rd",
        "rdn",
        "ld",
        "cpa",
        "cfa",
        "rn",
        "np",
        "dds",
        "dvm",
        "jd",
        "esq",
        "msc",
        "bsc",
        "ma",
        "ba",
        "mph",
        "facp",
        "faclm",
        "fand",
        "cscs",
        "bsn",
        "msn",
        "dnp",
        "rph",
        "pharmd",
        "lmft",
        "lcsw",
    }
)
# Credentials written in mixed case; any other credential counts only in capitals or with
# dots ("MA", "M.A."), so surnames such as "Ma" stay.
MIXED_CASE_CREDENTIALS = frozenset({"PhD", "DPhil", "MPhil", "MSc", "BSc", "EdD", "PsyD", "PharmD", "Esq", "Jr", "Sr"})
# Honorifics: kept before a name, as printed; alone they name nobody.
HONORIFICS = frozenset({"dr", "prof", "mr", "mrs", "ms", "mx", "sir", "dame"})
# Words of page furniture that end up in byline elements ("More About Jane »", "One comment
# so far", "View all posts"): a piece with one of them is no name.
NOT_NAME_WORDS = frozenset(
    {
        "more",
        "about",
        "view",
        "posts",
        "articles",
        "profile",
        "follow",
        "comment",
        "comments",
        "share",
        "sponsored",
        "read",
        "see",
        "latest",
        "contact",
        "subscribe",
        "login",
        "privacy",
        "policy",
        "cookie",
        "cookies",
        "minute",
        "minutes",
        "min",
        # Share bars glued to a byline ("Jane Doe Facebook Tweet Pin").
        "facebook",
        "tweet",
        "twitter",
        "pin",
        "pinterest",
        "linkedin",
        "instagram",
        "whatsapp",
        "email",
        "print",
        "paid",  # a subscriber badge
    }
)
# Lower-case words that belong inside names ("Ludwig van Beethoven", "Gabriel García y Pérez").
NAME_PARTICLES = frozenset(
    {
        "van",
        "der",
        "den",
        "de",
        "del",
        "della",
        "da",
        "di",
        "do",
        "dos",
        "das",
        "du",
        "la",
        "le",
        "von",
        "zu",
        "bin",
        "binti",
        "ibn",
        "al",
        "el",
        "ter",
        "ten",
        "y",
        "e",
        "st",
    }
)
# A name with one of these words is an organisation, not a person: company forms, newsrooms,
# agencies and collective bylines ("The Lavazza Team", "THE ASSOCIATED PRESS", "Condé Nast").
ORGANISATION_WORDS = frozenset(
    {
        "inc",
        "llc",
        "ltd",
        "llp",
        "plc",
        "gmbh",
        "corp",
        "corporation",
        "company",
        "group",
        "media",
        "news",
        "newsroom",
        "press",
        "reuters",
        "afp",
        "upi",
        "staff",
        "team",
        "editors",
        "editorial",
        "desk",
        "bureau",
        "magazine",
        "journal",
        "agency",
        "foundation",
        "institute",
        "university",
        "association",
        "society",
        "network",
        "blog",
        "store",
        "shop",
        "official",
        "nast",
        "services",
        "solutions",
        "studio",
        "studios",
        "webmaster",
    }
)
# Values CMSs put in author fields when they know no author.
NO_AUTHOR = frozenset({"undefined", "null", "none", "unknown", "anonymous", "guest", "n/a", "author", "admin"})

ONE_DAY = timedelta(days=1)
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
# A title segment names the site when it spells a label of the page's host, or one holds
# the other ("Example Tires" on exampletire.com); labels shorter than this ("co", "abc")
# match too much by chance. Swept over 4, 5, 7 on the WCXB dev pages in 3 domain groups
# (`bench/metadata.py --cv 3`): the same titles on every group, so the reasoning decides.
MIN_HOST_LABEL = 5
# The <h1>s looked at (a page's first is sometimes its logo), and the words an <h1> that agrees
# with no meta title needs to be taken for the headline rather than a section label ("Blog",
# "Our Services"). Swept over 1, 2, 3 on the WCXB dev pages in 3 domain groups
# (`bench/metadata.py --cv 3`): 3 won on every group's complement (titles exact, held out:
# 0.841 against 0.837 for 2).
MAX_H1 = 3
MIN_H1_WORDS = 3

# A printed ISO day, "2025-02-22", not part of a longer number or path.
_ISO_DAY = re.compile(r"(?<![\d/.-])(\d{4})-(\d{2})-(\d{2})(?![\d])")
# A printed numeric day with a four-digit year: "17.05.2021", "2/24/2026" (either order is
# written with either separator, see `_numeric_day`).
_NUMERIC_DAY = re.compile(r"(?<![\d/.-])(\d{1,2})([./])(\d{1,2})\2(\d{4})(?![\d/.-]?\d)")
_UPDATE_LABEL = re.compile(r"\b(?:" + "|".join(UPDATE_WORDS) + r")\b[^0-9]{0,20}$", re.IGNORECASE)
# Elements whose text is no printed date or byline.
_SKIPPED_TAGS = frozenset({"script", "style", "noscript", "template", "svg", "-comment"})
# /2024/03/15/, /2024-03-15-slug, /20240315/ in a URL path. Years 1000-2999 are read, so a
# URL dated outside MIN_YEAR..MAX_YEAR (/2999/01/01/) is reported rather than skipped.
_URL_DATE = re.compile(r"(?<![0-9])([12]\d{3})([/_-]?)(\d{2})\2(\d{2})(?![0-9])")
_URL_DATE_DELIMITERS = "/-_.+"
# /2024/march/15/ (a month's English name or abbreviation as a path segment).
_URL_MONTH_DATE = re.compile(r"/([12]\d{3})/([A-Za-z]{3,9})/(\d{1,2})(?=/|$)")
_WS = re.compile(r"\s+")
_EMAIL = re.compile(r"\S+@\S+\.\S+")
_CONTACT = re.compile(r"\S+@\S+\.\S+|(?<![\w@])@\w+|(?:https?://|www\.)\S+", re.IGNORECASE)
_URL_START = re.compile(r"(?:https?:)?//|www\.", re.IGNORECASE)
# A byline piece ending like a host name ("example.com") or containing "www." / "://".
_DOMAIN = re.compile(r"[a-z0-9-]\.[a-z]{2,6}$|www\.|://")
_SPLIT_TAGS = re.compile(r"[,;]")
_BYLINE_PREFIX = re.compile(
    r"^(?:" + "|".join(re.escape(p) for p in sorted(BYLINE_PREFIXES, key=len, reverse=True)) + r")\b\s*:?\s*",
    re.IGNORECASE,
)
# "By Jane Doe" inside a longer line ("Published August 7, 2023 by Jane Doe"): the byline word,
# then a capitalised word.
_BY_NAME = re.compile(r"(?:^|(?<=[\s|•·,]))(?:by|von|par|por|door)[:\s]+(?=(?-i:[A-ZÀ-Þ]))", re.IGNORECASE)
# Lower-case words inside a run of names: joiners, particles, the byline words.
_RUN_WORDS = frozenset({*BYLINE_CONJUNCTIONS, *NAME_PARTICLES, "by"})
# A line that labels the author: "Written by Jane Doe", "This post was written by Jane Doe",
# "Author: Jane Doe", or "Author" alone (the name on the next line). "By" and "Posted by"
# alone are left out: comments and teasers print them for names that are not the article's
# author.
_AUTHOR_LABEL = re.compile(
    r"^(?:(?:(?:this (?:post|article|story|piece) (?:was|is) )?(?:written|article|authored|story|words|text) by"
    r"|authors?|contributors?)\b|author\(s\))"
    r"\s*:?\s*(?=$|(?-i:[A-ZÀ-Þ]))",
    re.IGNORECASE,
)
_CREDIT = re.compile(r"\b(?:" + "|".join(re.escape(p) for p in CREDIT_PREFIXES) + r")(?!\w)", re.IGNORECASE)
_WEEKDAY = re.compile(r"\s*\b(?:on\s+)?(?:mon|tues|wednes|thurs|fri|satur|sun)day\b,?|\s+on$", re.IGNORECASE)
# A time glued to a date in a byline: "3 AM PT", "10:30 a.m. ET", "14:05".
_TIME_OF_DAY = re.compile(r"\b\d{1,2}(?::\d{2})?\s*(?:[ap]\.?m\.?|h)(?:\s+[A-Z]{2,4}\b)?|\b\d{1,2}:\d{2}\b", re.I)
_NAME_WORD = re.compile(r"[\w'’-]+")
_BLOCK_SET = frozenset(BLOCK_TAGS)
# A capitalised word glued to a lower-case letter ("LauterSenior"): two elements' texts joined.
_GLUED_WORD = re.compile(r"(?<=\w)([a-z])([A-Z][a-z]+)(?![A-Za-z])")
_TITLE_OPENERS = ROLE_HEADS | SENIORITY  # not every role word: "EdTech" is no "Ed" glued on
_SEPARATORS = re.compile(r"(?:\s*\|)+\s*")
# A piece that is only a day or month name, whole or cut short ("Sat", "Sept."): a date's remnant.
_CALENDAR_WORD = re.compile(
    r"(?:mon|tue|tues|wed|thu|thur|thurs|fri|sat|sun|jan|feb|mar|apr|jun|jul|aug|sep|sept|oct|nov|dec)\.?",
    re.IGNORECASE,
)
# A byline's parts (names with their titles) are separated by commas, semicolons, bars...;
# a part holds one name, or several joined by "and" (`_BYLINE_SPLIT` splits those too).
_BYLINE_PARTS = re.compile(r"\s*[,;|/•·⋅]\s*|\s+[-–—]\s+")
_LEADING_JOINER = re.compile(r"^(?:" + "|".join(re.escape(c) for c in BYLINE_CONJUNCTIONS) + r")\s+")
_JOINED = re.compile(r"\s(?:" + "|".join(re.escape(c) for c in BYLINE_CONJUNCTIONS) + r")\s", re.IGNORECASE)
# A time stated in UTC: `2025-12-19T02:41:41Z`, `+00:00`, `-0000`, `GMT`, `UTC`.
_UTC_SUFFIX = re.compile(r"\d(?:\.\d+)?\s*(?:Z|[+-]00:?00|GMT|UTC)\s*$", re.IGNORECASE)
_BYLINE_SPLIT = re.compile(
    r"\s*[,;|/•·]\s*|\s+(?:" + "|".join(re.escape(c) for c in BYLINE_CONJUNCTIONS) + r")\s+|\s+[-–—]\s+",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class PageMeta:
    """What a page says about itself: title, authors, dates, language, URLs, tags, and where each came from.

    `dates` and `modified_dates` hold every publication and modification date the page
    gives, best evidence first, so a caller that rejects one (a date in the future) can
    fall back to the next; a date outside MIN_YEAR..MAX_YEAR is there as `Implausible`, so
    the caller can say it passed it over. When the page's dates contradict each other,
    `dates` holds only the implausible ones: no date beats a wrong one. `published_at`,
    `date_source` and `modified_at` are the first plausible ones. `title_source` and
    `author_source` name the evidence behind `title` and `authors` (None without one).
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
    title_source: str | None = None
    author_source: str | None = None
    # When the page states no publication date in any form (structured, printed unlabelled,
    # in its URL; not when it states some that disagree): the update date it prints
    # ("Updated March 5, 2024"), the closest bound on its publication it gives. Not a
    # structured modification date: CMSs restamp those whenever a page is rebuilt.
    update_bound: tuple[PageDate, ...] = ()

    @property
    def published(self) -> Dated | None:
        """The best-evidenced plausible publication date, as stated."""
        return next((when for _, when in self.dates if isinstance(when, Dated)), None)

    @property
    def published_at(self) -> datetime | None:
        """The best-evidenced plausible publication date (UTC)."""
        found = self.published
        return found.when if found is not None else None

    @property
    def date_source(self) -> DateSource | None:
        """The evidence behind `published_at`."""
        return next((source for source, when in self.dates if isinstance(when, Dated)), None)

    @property
    def modified_at(self) -> datetime | None:
        """The best-evidenced plausible modification date (UTC)."""
        return next((when.when for _, when in self.modified_dates if isinstance(when, Dated)), None)


def extract_metadata(tree: LexborHTMLParser, url: str | None = None, as_of: datetime | None = None) -> PageMeta:
    """Collect a page's metadata from JSON-LD, meta tags, microdata, the headline's surroundings and the URL.

    Relative URLs resolve against `url`. Dates more than `FUTURE_TOLERANCE` after `as_of`
    (the time of ingest, when known) are no evidence of when the page was published.
    """
    too_late = None
    if as_of is not None:
        too_late = (as_of if as_of.tzinfo is not None else as_of.replace(tzinfo=UTC)) + FUTURE_TOLERANCE
    metas = _meta_values(tree)
    article, site = _jsonld(tree)
    base = _base_url(tree, url)
    rejected: list[str] = []
    canonical = _first_url(base, _canonical_links(tree), rejected, "canonical link") or _first_url(
        base, metas.get("og:url", []), rejected, "og:url"
    )
    # Every name the page gives itself, best first: the first is `site_name`, all of them
    # are kept out of the authors and the title.
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
    modified: list[PageDate] = [
        *_dates("jsonld", [_text(article.get("dateModified"))]),
        *_dates("meta", _all(metas, MODIFIED_META)),
    ]
    hosts = _host_labels(canonical or url)
    title, title_source, headline = _title(tree, metas, article, site_names, hosts)
    printed = _printed_dates(headline, partial(_byline_node, tree))
    # A date printed as an update's ("Updated March 5, 2024") is the page's modification date
    # when its structured data gives none.
    shown_update: list[PageDate] = [("text", when) for label, when in printed[:1] if label == UPDATED]
    modified += shown_update if not modified else []
    authors, author_source = _authors(tree, metas, article, [*site_names, *hosts], headline)
    dates, evidenced = _published(tree, metas, article, (url, canonical), printed, too_late)
    return PageMeta(
        title=title,
        authors=authors,
        dates=dates,
        modified_dates=tuple(modified),
        update_bound=() if evidenced else tuple(shown_update),
        language=_language(tree, metas, article),
        canonical_url=canonical,
        site_name=site_name,
        description=_first(metas, DESCRIPTION_META) or _text(article.get("description")),
        tags=_tags(metas, article),
        image_url=_first_url(base, [*_all(metas, IMAGE_META), *_jsonld_images(article.get("image"))]),
        warnings=tuple(rejected),
        title_source=title_source,
        author_source=author_source,
    )


def _byline_node(tree: LexborHTMLParser) -> Node | None:
    """The first element marked up as the author or byline that is not in a comment, related or footer block."""
    for selector in (*AUTHOR_SELECTORS, *BYLINE_SELECTORS):
        for node in tree.css(selector)[:MAX_BYLINE_NODES]:
            if not _outside_article(node):
                return node
    return None


def _host_labels(url: str | None) -> list[str]:
    """The labels of a URL's host but its last ("news.example.co.uk" -> news, example, co): names of the site."""
    try:
        host = urllib.parse.urlsplit(url or "").hostname or ""
    except ValueError:
        return []
    return [label for label in host.split(".")[:-1] if label and label != "www"]


# --- Dates -------------------------------------------------------------------------------


def _dates(source: DateSource, values: Iterable[str | None]) -> list[PageDate]:
    """The values that read as dates (plausible or not), in order, labelled with their evidence."""
    return [(source, when) for value in values if (when := read_date(value)) is not None]


def _published(
    tree: LexborHTMLParser,
    metas: dict[str, list[str]],
    article: dict[str, Any],
    urls: tuple[str | None, ...],
    printed: list[tuple[str, Dated]],
    too_late: datetime | None = None,
) -> tuple[tuple[PageDate, ...], bool]:
    """The page's publication dates, best evidence first, and whether it has publication evidence at all.

    The flag is true for a page with a structured date, a printed unlabelled date or a URL
    date, even when they disagree and no date is given, and for a page given a date.

    Structured dates come first (JSON-LD, meta, microdata, `<time>` marked as published),
    then the date printed by the headline (`text`), then the date printed in an element
    whose class names a date (`text`), then other `<time>`s and the URL's.

    A missing date is better than a wrong one: when the structured dates, the printed date
    and the URL's date do not name the same day, the page contradicts itself and no page
    date is given (`_agreed`), so the caller falls back to its other evidence.
    """
    structured = [
        *_dates("jsonld", [_text(article.get("datePublished"))]),
        *_dates("meta", _all(metas, PUBLISHED_META)),
    ]
    structured += _dates("microdata", _microdata_dates(tree))
    # The selectors are subsets of the last one: a page without any dated <time> (most) needs one query.
    times: list[PageDate] = []
    if tree.css_first(TIME_FALLBACK_SELECTORS[-1]) is not None:
        for selector in TIME_PUBLISHED_SELECTORS:
            structured += _dates("time", (node.attributes.get("datetime") for node in tree.css(selector)))
        for selector in TIME_FALLBACK_SELECTORS:
            times += _dates("time", (node.attributes.get("datetime") for node in tree.css(selector)))
    from_url: list[PageDate] = [("url", when) for candidate in urls if (when := _url_date(candidate)) is not None]
    dates = _agreed(structured, times, printed, from_url, too_late, partial(_date_elements, tree))
    evidenced = any(isinstance(w, Dated) for _, w in (*structured, *from_url, *dates)) or any(
        label != UPDATED for label, _ in printed
    )
    return dates, evidenced


def _agreed(
    structured: list[PageDate],
    times: list[PageDate],
    printed: list[tuple[str, Dated]],
    from_url: list[PageDate],
    too_late: datetime | None = None,
    find_dated: Callable[[], list[tuple[str, Dated]]] | None = None,
) -> tuple[PageDate, ...]:
    """The page's dates, best first, or only those set aside when the others disagree.

    The date printed by the headline decides between structured dates when they differ
    (a JSON-LD `datePublished` left from a first draft, a meta date of another story): the
    first structured date within a day of it (zones) wins for its time, else a `<time>` of
    the printed day (the page's own markup of the date it prints). When none confirms the
    printed date, the page may still agree with itself: structured dates of the URL's day
    win over a printed date the URL does not give (the printed one is an update's or
    another story's), and a printed date more than a day before every structured one wins
    over them (a CMS that re-published or imported the story stamps the later date; an
    update is never printed before the publication), and a printed date more than a day
    after the publication the JSON-LD and meta dates agree on is the update, printed
    unlabelled (`_before_printed`): the structured date wins. Otherwise the printed date
    contradicts the page: no date; so does a printed date no structured date backs when
    the page's `<time>`s all name other days.

    Structured dates of different days with no printed date are decided by the URL's day,
    else by the date printed in an element whose class names a date (`find_dated`), else
    give no date; a URL date a day or more from the chosen one gives no date. Without
    printed or structured dates: the date printed in such an element, then `<time>`s, then
    the URL. A printed date labelled as an update ("Updated March 5, 2024") is a
    modification date, never one of these dates, even when it is the only date printed
    (a page with no other date gets it as `PageMeta.update_bound`, evidence of its own kind).

    Implausible dates and dates after `too_late` (the time of ingest and its tolerance)
    take no part: they are kept, in their place in the evidence, for the caller to warn
    about when it gets that far.
    """

    def aside(when: Dated | Implausible) -> bool:
        return isinstance(when, Implausible) or (too_late is not None and when.when > too_late)

    ordered = [*structured, *times, *from_url]
    nothing = tuple(e for e in ordered if aside(e[1]))
    # A <time> of the day printed as the update's ("Updated March 5, 2024") is the update's,
    # whatever its class says.
    updates = {w.day for label, w in printed if label == UPDATED}
    pubs = [
        (s, w)
        for s, w in structured
        if isinstance(w, Dated) and not aside(w) and not (s == "time" and w.day in updates)
    ]
    dated_times = [(s, w) for s, w in times if isinstance(w, Dated) and not aside(w) and w.day not in updates]
    url = next((w for _, w in from_url if isinstance(w, Dated) and not aside(w)), None)
    shown = next((w for label, w in printed if label != UPDATED and not aside(w)), None)
    chosen: PageDate | None = None
    if shown is not None:
        chosen = _on_day(shown.day, pubs, dated_times)
        if chosen is None and url is not None and not _near(url.day, shown.day):
            chosen = _on_day(url.day, pubs, [])
        if chosen is None and pubs and all(shown.day < day - ONE_DAY for _, w in pubs for day in _days(w)):
            chosen = ("text", shown)
        if chosen is None and pubs:
            chosen = _before_printed(shown, pubs)
            if chosen is None:
                return nothing  # the printed date is neither the structured one nor before it: doubtful, no date
        if chosen is None and dated_times and not any(_near(shown.day, d) for _, w in dated_times for d in _days(w)):
            return nothing  # the page's <time>s all name other days than the printed date: doubtful, no date
        chosen = chosen or ("text", shown)
    elif pubs:
        chosen = pubs[0]
        # <time> elements marked as published also mark comments and teasers, and so do
        # microdata dates when the page's JSON-LD or meta gives its own: only the page's
        # own metadata must agree with itself.
        marks = ("time", "microdata") if any(s in ("jsonld", "meta") for s, _ in pubs) else ("time",)
        if any(not _days(w) & _days(pubs[0][1]) for s, w in pubs if s not in marks):
            # Different days, and nothing printed by the headline to choose: the URL's day
            # may, else the date printed in an element whose class names a date, else no date.
            chosen = _on_day(url.day, pubs, []) if url is not None else None
            if chosen is None and (element := _element_date(find_dated, aside, updates)) is not None:
                chosen = _on_day(element.day, pubs, dated_times)
            if chosen is None:
                return nothing
    else:
        shown = _element_date(find_dated, aside, updates)
        candidates: list[PageDate] = [*dated_times, *from_url]
        if shown is not None:
            candidates.insert(0, ("text", shown))
        chosen = next(((s, w) for s, w in candidates if isinstance(w, Dated) and not aside(w)), None)
    if chosen is None:
        return nothing
    best = chosen[1]
    assert isinstance(best, Dated)
    if url is not None and chosen[0] != "url" and not any(_near(url.day, day) for day in _days(best)):
        return nothing  # the URL and the page name different days
    if url is not None and url.day != best.day and best.precision != "day" and _stated_in_utc(best.raw):
        # A time stated in UTC says nothing of the site's calendar; the URL, minted in the
        # site's zone, does: 2025-12-19T02:41Z under /2025/12/18/ was published on the 18th.
        best = Dated(best.when, url.day, best.precision, best.raw)
        chosen = (chosen[0], best)
    agreeing = [(s, w) for s, w in pubs if w is not best and isinstance(w, Dated) and _days(w) & _days(best)]
    # In evidence order: what was set aside before the chosen date is reported first.
    index = next((i for i, (_, w) in enumerate(ordered) if w is best), len(structured))
    before = [e for e in ordered[:index] if aside(e[1])]
    after = [e for e in ordered[index:] if aside(e[1])]
    return (*before, chosen, *agreeing, *after)


def _before_printed(shown: Dated, pubs: Sequence[PageDate]) -> PageDate | None:
    """The JSON-LD or meta date when those name one day, more than a day before the printed date.

    A date printed after the publication the page's metadata states is its update's,
    printed without the word ("October 26, 2025" above a story published in 2024).
    """
    own = [(s, w) for s, w in pubs if s in ("jsonld", "meta") and isinstance(w, Dated)]
    if not own or any(not _days(w) & _days(own[0][1]) for _, w in own):
        return None
    if all(day < shown.day - ONE_DAY for _, w in own for day in _days(w)):
        return own[0]
    return None


def _element_date(
    find_dated: Callable[[], list[tuple[str, Dated]]] | None,
    aside: Callable[[Dated | Implausible], bool],
    updates: set[date],
) -> Dated | None:
    """The first date printed in an element whose class names a date, unless it is an update's or set aside."""
    elements = find_dated() if find_dated is not None else []
    return next((w for label, w in elements if label != UPDATED and not aside(w) and w.day not in updates), None)


def _on_day(day: date, pubs: Sequence[PageDate], times: Sequence[PageDate]) -> PageDate | None:
    """The first structured date within a day of `day` (zones), else the first `<time>` printed as of that day.

    Within a day: a printed time is often in the reader's or the newsroom's zone, not the
    metadata's, and the structured date carries the time.
    """
    near = next(((s, w) for s, w in pubs if isinstance(w, Dated) and any(_near(day, d) for d in _days(w))), None)
    return near or next(((s, w) for s, w in times if isinstance(w, Dated) and w.day == day), None)


def _stated_in_utc(raw: str | None) -> bool:
    """The date's text states its time in UTC (`Z`, `+00:00`, `GMT`), not in the site's own zone."""
    return raw is not None and _UTC_SUFFIX.search(raw) is not None


def _days(when: Dated) -> set[date]:
    """The calendar days a date may be printed as: as published, and in UTC."""
    return {when.day, when.when.date()}


def _near(a: date, b: date) -> bool:
    """Within a day of each other: a URL minted in another zone than the page's date."""
    return abs((a - b).days) <= 1


def date_from_url(url: str | None) -> datetime | None:
    """A calendar date in a URL path (/2024/03/15/, /2024-03-15-, /20240315/, /2024/march/15/), at midnight UTC."""
    when = _url_date(url)
    return when.when if isinstance(when, Dated) else None


def _url_date(url: str | None) -> Dated | Implausible | None:
    """The first plausible date in a URL path (a day-precision date), else the first implausible one, else None."""
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
            day = date(int(match.group(1)), int(match.group(3)), int(match.group(4)))
        except ValueError:
            continue
        if MIN_YEAR <= day.year <= MAX_YEAR:
            return day_date(day, match.group(0))
        implausible = implausible or Implausible(day_date(day).when.isoformat(), OUTSIDE_WEB_ERA)
    named = _URL_MONTH_DATE.search(path)
    month = MONTHS.get(named.group(2).casefold()) if named is not None else None
    if implausible is None and named is not None and month is not None:
        try:
            day = date(int(named.group(1)), month, int(named.group(3)))
        except ValueError:
            return None
        return day_date(day, named.group(0)) if MIN_YEAR <= day.year <= MAX_YEAR else None
    return implausible


def _microdata_dates(tree: LexborHTMLParser) -> list[str | None]:
    """`itemprop=datePublished` on elements but `<meta>` and `<time>` (read elsewhere): the content, else the text."""
    values: list[str | None] = []
    for node in tree.css(MICRODATA_PUBLISHED)[:MAX_PRINTED_NODES]:
        if node.tag in ("meta", "time"):
            continue
        attrs = node.attributes
        values.append(attrs.get("content") or attrs.get("datetime") or _clean(node.text(separator=" ")))
    return values


def _printed_dates(
    headline: Node | None, find_byline: Callable[[], Node | None] | None = None
) -> list[tuple[str, Dated]]:
    """Dates printed next to the headline (after it, then before it), then in and after the byline, with labels.

    The text read is the headline's following siblings (up to `PRINTED_AFTER_CHARS`) and
    preceding ones (up to `PRINTED_BEFORE_CHARS`), at the headline's level and up to
    `PRINTED_LEVELS` ancestors up: where bylines and dates sit in every layout we know of;
    then the byline element's own text and what follows it, for layouts that put the byline
    block apart from the headline. A date counts only with a day, a month and a year;
    relative dates ("3 days ago") do not.
    """
    found: list[tuple[str, Dated]] = []
    if headline is not None:
        after, before = _around(headline, PRINTED_AFTER_CHARS, PRINTED_BEFORE_CHARS)
        found += _dates_in_text(after) + _dates_in_text(before)
    byline = find_byline() if find_byline is not None and not found else None
    if byline is not None:
        after, _ = _around(byline, PRINTED_AFTER_CHARS // 2, 0)
        found += _dates_in_text(f"{_sibling_text(byline, MAX_BYLINE_CHARS)} {after}")
    return found


def _date_elements(tree: LexborHTMLParser) -> list[tuple[str, Dated]]:
    """The dates printed in the first element whose class says it holds the date (outside comments, related)."""
    # Only the first element with a date: the article's date comes before its teasers' and
    # comments', so a page whose first dated element is its update date gives no date here.
    return next((found for text in _date_texts(tree) if (found := _dates_in_text(text))), [])


def _date_texts(tree: LexborHTMLParser) -> list[str]:
    """Short texts of the first elements whose class says they hold the date, outside comments and related blocks."""
    texts: list[str] = []
    for selector in DATE_CLASS_SELECTORS:
        for node in tree.css(selector):
            if len(texts) >= MAX_BYLINE_NODES:
                return texts
            if node.tag in _SKIPPED_TAGS or _outside_article(node):
                continue
            text = _sibling_text(node, MAX_DATE_ELEMENT_CHARS + 1)
            # An element inside one already read ("Updated <span class=date>May 5</span>")
            # repeats its date without the label that says what the date is.
            if text and len(text) <= MAX_DATE_ELEMENT_CHARS and not any(text in seen for seen in texts):
                texts.append(text)
    return texts


def _around(anchor: Node, after_chars: int, before_chars: int) -> tuple[str, str]:
    """The text after `anchor` and before it (nearest last), read through siblings up to `PRINTED_LEVELS` levels up."""
    after, before = _around_texts(anchor, after_chars, before_chars)
    return " ".join(after), " ".join(reversed(before))


def _around_texts(anchor: Node, after_chars: int, before_chars: int) -> tuple[list[str], list[str]]:
    """The texts of `anchor`'s following and preceding siblings (nearest first), up to `PRINTED_LEVELS` levels up."""
    after: list[str] = []
    before: list[str] = []
    left_after, left_before = after_chars, before_chars
    node: Node | None = anchor
    for _ in range(PRINTED_LEVELS):
        if node is None or node.tag in ("body", "html"):
            break
        left_after = _siblings_text(node, after, left_after, forward=True)
        left_before = _siblings_text(node, before, left_before, forward=False)
        node = node.parent
    return after, before


def _siblings_text(node: Node, out: list[str], left: int, *, forward: bool) -> int:
    """Append the texts of `node`'s siblings after it (or before it) to `out`, up to `left` characters; what is left."""
    sibling = node.next if forward else node.prev
    while sibling is not None and left > 0:
        if sibling.tag not in _SKIPPED_TAGS:
            text = _sibling_text(sibling, left)
            if text:
                out.append(text)
                left -= len(text)
        sibling = sibling.next if forward else sibling.prev
    return left


def _sibling_text(node: Node, limit: int) -> str:
    text = node.text(separator=" ")
    return _WS.sub(" ", text[: limit * 4]).strip()[:limit]


def _dates_in_text(text: str) -> list[tuple[str, Dated]]:
    """The full dates in a run of printed text, in order, each with the label before it (`UPDATED`, else '')."""
    found: list[tuple[str, Dated]] = []
    rest = 0
    while len(found) < MAX_PRINTED_DATES:
        hit = _next_printed(text, rest)
        if hit is None:
            break
        when, precision, start, end = hit
        rest = end
        if not MIN_YEAR <= when.year <= MAX_YEAR:
            continue
        # "Updated 3:15 PM EST, Tue March 5, 2024": a time of day may stand between the label and the date.
        before = _TIME_OF_DAY.sub(" ", text[max(0, start - 40) : start])
        label = UPDATED if _UPDATE_LABEL.search(before[-30:]) else ""
        raw = text[start:end]
        found.append((label, day_date(when.date(), raw) if precision == "day" else stated(when, precision, raw)))
    return found


def _next_printed(text: str, rest: int) -> tuple[datetime, Precision, int, int] | None:
    """The first date printed in `text` from `rest` on ('March 5, 2024', '2024-03-05', '05.03.2024'), with its span."""
    while True:
        match = english_date(text[rest:])
        spans: list[tuple[int, int, re.Match[str] | None]] = []
        if match is not None:
            spans.append((rest + match[2][0], rest + match[2][1], None))
        for pattern in (_ISO_DAY, _NUMERIC_DAY):
            if (found := pattern.search(text, rest)) is not None:
                spans.append((*found.span(), found))
        if not spans:
            return None
        start, end, numeric = min(spans, key=lambda span: span[0])
        if numeric is None:
            assert match is not None
            return match[0], match[1], start, end
        day = _numeric_day(numeric)
        if day is not None:
            return datetime(day.year, day.month, day.day), "day", start, end
        if len(numeric.groups()) > 3 and _numeric_day_valid(numeric):
            # An ambiguous first date ("03/04/2024"): no date rather than a doubtful one, and
            # the dates printed after it are later ones (an update's), so none of this text is read.
            return None
        rest = end  # not a calendar day: read on


def _numeric_day(match: re.Match[str]) -> date | None:
    """The day of an ISO or numeric printed date, or None when it names no day or could name two.

    "03/04/2024" is 3 April in most of the world and March 4 in the US, and dots are
    written in both orders too ("09.10.2024" for September 10): a page gives no way to
    know which, so such a date gives no date (a missing date is better than a wrong one).
    With a part over 12 ("24.2.2026", "2/24/2026") only one order is a date.
    """
    groups = match.groups()
    try:
        if len(groups) == 3:  # ISO: year, month, day
            return date(int(groups[0]), int(groups[1]), int(groups[2]))
        first, second, year = int(groups[0]), int(groups[2]), int(groups[3])
        if first > 12:
            return date(year, second, first)
        if second > 12:
            return date(year, first, second)
    except ValueError:
        return None
    return None


def _numeric_day_valid(match: re.Match[str]) -> bool:
    """A numeric date with both parts 1-12: a day in either order."""
    first, second = int(match.group(1)), int(match.group(3))
    return 1 <= first <= 12 and 1 <= second <= 12


# --- Title -------------------------------------------------------------------------------


def _title(
    tree: LexborHTMLParser,
    metas: dict[str, list[str]],
    article: dict[str, Any],
    site_names: list[str],
    hosts: Sequence[str] = (),
) -> tuple[str | None, str | None, Node | None]:
    """The headline, its evidence, and the headline's element (for the dates and bylines printed by it).

    Meta titles, in order: og:title, twitter:title, JSON-LD headline, `<title>`, each with a
    " | Site" suffix (or "Site | " prefix) removed when it names the site, recurs in
    another candidate or spells a label of the page's host ("Example" on example.com);
    an `<h1>` loses a suffix that names the site or the host. The page's `<h1>` is the
    headline the reader sees, where meta titles are often rewritten for sharing and search,
    so it wins unless it is branding: the first of the first `MAX_H1` `<h1>`s that agrees
    with a meta title (one contains the other), else the first that is not the site's name
    nor a section label (`MIN_H1_WORDS`). Without a
    usable `<h1>`, the first meta title.
    """
    title_node = tree.css_first("title")
    raw: list[tuple[str, str | None]] = [
        *(("meta", _first(metas, (key,))) for key in TITLE_META),
        ("jsonld", _text(article.get("headline")) or _text(article.get("name"))),
        ("title", _clean(title_node.text()) if title_node is not None else None),
    ]
    candidates = [(source, c) for source, c in raw if c]
    texts = [c for _, c in candidates]
    sites = [_fold(name) for name in site_names if name]
    labels = [_squeeze(label) for label in hosts if len(label) >= MIN_HOST_LABEL]
    metas_titles = [(source, t) for source, c in candidates if (t := _strip_site(c, sites, texts, labels))]
    h1s = [
        (node, _strip_site(text, sites, [], labels))
        for node in tree.css("h1")[:MAX_H1]
        if (text := _clean(node.text(separator=" ")))
    ]
    for node, text in h1s:
        if any(_agree(text, title) for _, title in metas_titles):
            return text, "h1", node
    for node, text in h1s:
        folded = _fold(text)
        if _is_logo(node):
            continue
        if len(text.split()) >= MIN_H1_WORDS and not any(
            folded == s or folded.replace(" ", "") == s.replace(" ", "") for s in sites
        ):
            return text, "h1", node
    if metas_titles:
        source, title = metas_titles[0]
        return title, source, h1s[0][0] if h1s else None
    if h1s:
        return h1s[0][1], "h1", h1s[0][0]
    return None, None, None


def _is_logo(node: Node) -> bool:
    """An `<h1>` that is the site's logo: an image, or a link to the site's home page."""
    if node.css_first("img, svg") is not None:
        return True
    link = node.css_first("a[href]")
    href = (link.attributes.get("href") or "") if link is not None else ""
    return href in ("/", "./") or (href.count("/") == 3 and href.endswith("/") and "://" in href)


def _strip_site(title: str, sites: list[str], candidates: list[str], hosts: list[str]) -> str:
    """The title without " | Site" suffixes and "Site | " prefixes (see `_title`)."""
    # The other candidates as given: once a suffix is cut, the title's own full form is
    # one of them and would make its first segment look like a recurring prefix.
    others = [_fold(c) for c in candidates if c != title]
    return _cut_branding(title, sites, others, hosts)


def _cut_branding(title: str, sites: list[str], others: list[str], hosts: list[str]) -> str:
    for sep in TITLE_SEPARATORS:
        marker = f" {sep} "
        if marker not in title:
            continue
        head, _, tail = title.rpartition(marker)
        if _fold(head) in others or _is_branding(tail, sites, others, hosts, suffix=True):
            return _cut_branding(head.strip(), sites, others, hosts)
        first, _, rest = title.partition(marker)
        if _is_branding(first, sites, others, [], suffix=False):
            return _cut_branding(rest.strip(), sites, others, hosts)
    return title


def _is_branding(part: str, sites: list[str], others: list[str], hosts: list[str], *, suffix: bool) -> bool:
    folded = _fold(part)
    if not folded:
        return False
    squeezed = folded.replace(" ", "")
    if any(folded == site or squeezed == site.replace(" ", "") for site in sites):
        return True
    # The host spelled out: "Example Tires" on exampletire.com, "Example" on example.org
    # (read in suffixes only: a leading segment naming the host is as often a series name).
    bare = _squeeze(part)
    if len(bare) >= MIN_HOST_LABEL and any(bare in label or label in bare for label in hosts):
        return True
    # The same segment ends (or starts) another candidate: site branding, not headline.
    return any((o.endswith(folded) if suffix else o.startswith(folded)) and o != folded for o in others)


def _agree(a: str, b: str) -> bool:
    fa, fb = _fold(a), _fold(b)
    short, long = sorted((fa, fb), key=len)
    return bool(short) and short in long and len(short) >= MIN_TITLE_OVERLAP * len(long)


# --- Authors -----------------------------------------------------------------------------


def _authors(
    tree: LexborHTMLParser,
    metas: dict[str, list[str]],
    article: dict[str, Any],
    site_names: list[str],
    headline: Node | None,
) -> tuple[tuple[str, ...], str | None]:
    """Authors from the first source that names a person: JSON-LD, meta tags, microdata, byline elements.

    Sources are not merged: they often disagree in form ("Jane Doe" vs "JANE DOE, Staff")
    and a later source is the weaker evidence. A source naming only organisations, roles,
    the site or profile URLs names nobody, and the next one is read. A JSON-LD author typed
    `Person` may carry the site's name: a personal site named after its author.
    """
    jsonld = [
        name
        for value in _as_list(article.get("author"))
        for name in split_byline(
            _person_name(value), () if isinstance(value, dict) and _is_person(value) else site_names
        )
    ]
    # Read lazily, in order: most pages name their author in JSON-LD or a meta tag, and the
    # element queries after them cost more than the rest of the metadata together.
    sources: Iterator[tuple[str, Callable[[], list[str]]]] = iter(
        [
            *(("meta", partial(_all, metas, (key,))) for key in AUTHOR_META),
            ("meta", partial(_labelled_meta, metas)),
            *(("microdata", partial(_node_texts, tree, selector)) for selector in AUTHOR_SELECTORS),
            ("byline", partial(_headline_bylines, headline)),
            # A page's first byline element is the article's; later ones are other stories'.
            *(("byline", partial(_node_texts, tree, selector, 1)) for selector in BYLINE_SELECTORS),
            ("byline", partial(_labelled_bylines, tree)),
        ]
    )
    cleaned = clean_authors(tuple(jsonld))[:MAX_AUTHORS]
    if cleaned:
        return cleaned, "jsonld"
    for source, read in sources:
        names = [name for value in read() for name in split_byline(value, site_names)]
        cleaned = clean_authors(tuple(names))[:MAX_AUTHORS]
        if cleaned:
            return cleaned, source
    return (), None


def _labelled_meta(metas: dict[str, list[str]]) -> list[str]:
    """The values of `twitter:dataN` whose `twitter:labelN` says they are the author ("Written by")."""
    found = []
    for index in range(1, MAX_META_LABELS + 1):
        labels = metas.get(f"twitter:label{index}")
        if labels is None:
            break
        if _fold(labels[0]).rstrip(":") in AUTHOR_LABELS:
            found += metas.get(f"twitter:data{index}", [])[:1]
    return found


def _is_person(value: dict[str, Any]) -> bool:
    return "person" in _types(value)


def _node_texts(tree: LexborHTMLParser, selector: str, limit: int = MAX_BYLINE_NODES) -> list[str]:
    """Texts (with spaces between elements) of the first matches outside comments, related links and footers."""
    out: list[str] = []
    nodes = tree.css(selector)
    article = (tree.css_first(ARTICLE_TAGS[0]) or tree.css_first(ARTICLE_TAGS[1])) if nodes else None
    if selector == "[class*=author]":
        nodes.sort(key=lambda n: not any(c in (n.attributes.get("class") or "").lower() for c in AUTHOR_NAME_CLASSES))
    for node in nodes:
        if len(out) >= limit:
            break
        # An author element inside the page's first `<article>` (else `<main>`) is the
        # article's, whatever wraps the page around it (an unclosed `<aside>`, a
        # "sidebar-mode" page class); later `<article>`s are teasers of other stories.
        if _outside_article(node, article):
            continue
        text = _clean(_block_text(node) or "")
        if text and len(text) <= MAX_BYLINE_CHARS * 2:  # an image link's blank text is no byline
            out.append(text)
    return out


def _block_text(node: Node, limit: int = MAX_BYLINE_CHARS * 2) -> str | None:
    """The node's text, its block-level parts (a name, a job title, a date in their own `<div>`s) split by " | ".

    None past `limit` characters of text, whitespace folded (no byline is that long): a
    page-wide element with an author class costs no more than a byline to turn down.
    """
    parts: list[str] = []
    size = 0
    for inner in node.traverse(include_text=True):
        tag = inner.tag
        if tag == "-text":
            text = inner.text_content or ""
            parts.append(text)
            size += len(" ".join(text.split()))
            if size > limit:
                return None
        elif tag in _BLOCK_SET or tag == "br":
            parts.append(" | ")
        else:
            parts.append(" ")
    return _SEPARATORS.sub(" | ", "".join(parts)).strip(" |")


def _outside_article(node: Node, article: Node | None = None) -> bool:
    """The node sits in a comment, related-stories, footer or aside block nearer than `article` (when given)."""
    stop = article.mem_id if article is not None else None
    parent = node.parent
    for _ in range(MAX_ANCESTORS_CHECKED):
        if parent is None or parent.mem_id == stop:
            return False
        if parent.tag in NOT_ARTICLE_TAGS:
            return True
        attrs = parent.attributes
        marks = f"{attrs.get('class') or ''} {attrs.get('id') or ''}".lower()
        # A block that holds the page's headline is the article's, whatever it is called
        # ("story-sidebar-mode": a layout with a sidebar beside the story).
        if any(marker in marks for marker in NOT_ARTICLE_MARKERS) and parent.css_first("h1") is None:
            return True
        parent = parent.parent
    return False


def _headline_bylines(headline: Node | None) -> list[str]:
    """The first text next to the headline (after it, then before it) with a "By Jane Doe" in it, from the "By"."""
    if headline is None:
        return []
    after, before = _around_texts(headline, PRINTED_AFTER_CHARS, PRINTED_BEFORE_CHARS)
    for text in (*after, *before):
        for match in _BY_NAME.finditer(text):
            if _in_prose(text, match.start()):
                continue
            return [_name_run(text[match.start() :]).strip(" |•·,")]
    return []


def _in_prose(text: str, start: int) -> bool:
    """The "by" at `start` is a sentence's or a credit's ("created by", "Photo by"), not a byline's."""
    before = text[:start].split()
    if not before or text[start].isupper():
        return False
    previous = before[-1].casefold()
    if _CREDIT.search(f"{previous} by"):
        return True
    return previous[:1].isalpha() and f"{previous} by" not in BYLINE_PREFIXES


def _name_run(byline: str) -> str:
    """A byline cut where its names end, when what follows is clearly not names ("By Jane Doe 3 comments").

    Names, their titles and the joiners between them are capitalised words, particles,
    joiners, initials and commas. The cut is made only before a number, a date, or a word
    that continues a byline line (`BYLINE_FOLLOWERS`: "on", "updated", "min"); a byline
    run into a sentence ("By Jane Doe Travel insurance can ...") is kept whole, for
    `split_byline` to reject as prose rather than guess where the name ends.
    """
    words = byline.split()
    for index, word in enumerate(words[1:], 1):
        bare = word.strip(",;:().")
        follows = words[index + 1][:1] if index + 1 < len(words) else ""
        if bare[:1].isdigit() or (bare.casefold() in MONTHS and follows.isdigit()):
            return " ".join(words[:index])
        if bare.casefold() in BYLINE_FOLLOWERS:
            return " ".join(words[:index])  # "By Jane Doe In Politics", "By Jane Doe on March 5"
        if bare and not bare[0].isupper() and bare.casefold() not in _RUN_WORDS:
            return byline
    return byline


def _labelled_bylines(tree: LexborHTMLParser) -> list[str]:
    """The first line of the page that labels a name as the author ("Written by Jane Doe", "Author" then "Jane Doe")."""
    body = tree.body
    if body is None:
        return []
    lines = [text for line in body.text(separator="\n").split("\n") if (text := line.strip())]
    for index, line in enumerate(lines):
        match = _AUTHOR_LABEL.match(line)
        if match is None:
            continue
        rest = line[match.end() :].strip()
        if rest:
            return [_name_run(f"by {rest}")]
        # The label alone: the next line is the name, if it is one of two words or more
        # (a lone capitalised word after "Authors" is as often a heading: "Abstract"),
        # and so are the lines after it that are each a person's name ("Author(s)" over a list).
        following = lines[index + 1] if index + 1 < len(lines) else ""
        if len(following.split()) <= 1:
            return []
        names = [following]
        for more in lines[index + 2 : index + 1 + MAX_AUTHORS]:
            if not _is_personal_name(more.split()) or _person(more, set(), trailing=True) != more:
                break  # a heading ("Related Program"), a bio, a button: the list has ended
            names.append(more)
        return names
    return []


def _person_name(value: Any) -> str | None:
    """A JSON-LD author's name, unless it is typed as something other than a person (an organisation)."""
    if isinstance(value, dict):
        types = _types(value)
        if types and "person" not in types:
            return None
        return _text(value.get("name"))
    return _text(value)


def split_byline(byline: str | None, site_names: Iterable[str] = ()) -> list[str]:
    """Split a byline into people's names: no 'By', 'and', roles, credentials, dates, emails, URLs or organisations."""
    if not byline or len(byline) > MAX_BYLINE_CHARS:
        return []
    text = _clean(byline)
    if _URL_START.match(text) or (" " not in text and "/" in text):
        return []  # article:author is often a profile URL
    text = _BYLINE_PREFIX.sub("", text)
    credit = _CREDIT.search(text)
    if credit is not None:
        text = text[: credit.start()]
    # An email, handle or link printed after a name is contact detail, not part of it.
    text = _without_dates(_GLUED_WORD.sub(_unglue, _CONTACT.sub(" , ", text)))
    sites = {_fold(site) for site in site_names if site}
    names: list[str] = []
    after_role = False
    for index, whole in enumerate(_BYLINE_PARTS.split(text)):
        part = _LEADING_JOINER.sub("", whole)
        words = part.split()
        if len(words) > MAX_AUTHOR_WORDS * 2:
            return []  # prose (an author bio, a sentence): its other parts are not names either
        if (
            words
            and (_ends_in_role(words) or _is_role(words))
            and (index > 0 or len(words) <= 2 or _JOINED.search(part))
        ):
            after_role = True
            continue  # "Jane Doe, Home and Garden Editor": the part after the name is a job title
        if after_role:
            after_role = False
            continue  # "Jane Doe, Director of Operations, Example Van Lines": the title's employer
        for piece in _BYLINE_SPLIT.split(part):
            name = _person(piece, sites, trailing=index > 0 or bool(names))
            if name is None and len(piece.split()) > MAX_AUTHOR_WORDS:
                return []
            if name:
                names.append(name)
    return names


def _unglue(match: re.Match[str]) -> str:
    """A job title or a date glued by markup to the name before it ("LauterSenior Editor", "DoeMarch 5"), parted."""
    word = match.group(2)
    folded = word.casefold()
    glued = folded in _TITLE_OPENERS or folded in MONTHS or _CALENDAR_WORD.fullmatch(word) is not None
    return f"{match.group(1)} {word}" if glued else match.group(0)


def _person(piece: str, sites: set[str], *, trailing: bool) -> str | None:
    """A byline piece as a person's name, or None: roles, organisations, the site, handles, URLs and numbers are not."""
    name = _strip_affixes(_BYLINE_PREFIX.sub("", piece.strip(" .:·•∙()[]-–—")))
    if not name or any(ch.isdigit() for ch in name) or _EMAIL.search(name) or _DOMAIN.search(name.lower()):
        return None
    if _URL_START.search(name) or "http" in name.lower():
        return None
    if len(name.split()) > MAX_AUTHOR_WORDS:
        return None
    name = _strip_affixes(_strip_suffix_role(_cut_furniture(_once(name)), sites))  # "Jane Doe PhD Staff Writer"
    words = name.split()
    folded = _fold(name)
    if not any(ch.isalpha() for ch in name) or _CALENDAR_WORD.fullmatch(name):
        return None  # punctuation, or what a date left ("Sat")
    if len(name) <= 3 and name.isalpha() and name.isupper():
        return None  # an initials badge ("CM") beside the name
    if _is_role(words) or _is_organisation(words, folded, sites):
        return None
    if _is_site(folded, sites, trailing=trailing) and not _is_personal_name(words):
        return None  # the site's name, unless it is a person's: a personal site named after its author
    if _is_beat(words):
        return None  # "Digital Security", "Home": a desk or a beat, not a person
    if folded in NO_AUTHOR or (name == name.lower() and name != name.upper()):
        return None  # a placeholder, or a user handle ("jdoe", "admin"): not a name as printed
    tokens = _NAME_WORD.findall(name)
    if any(t.casefold() in NOT_NAME_WORDS for t in tokens) or ":" in name or "»" in name:
        return None
    if any(t[0].islower() and t.casefold() not in NAME_PARTICLES for t in tokens[1:]) or (
        tokens and tokens[0][0].islower() and len(tokens) > 1
    ):
        return None  # a phrase ("you acknowledge the policy"): names are capitalised, bar their particles
    return name


def _once(name: str) -> str:
    """A name printed twice in a row (an avatar's alt, then the name) once; without an initials badge ("CM Jo Ma")."""
    words = name.split()
    half = len(words) // 2
    if (
        half >= 1
        and len(words) % 2 == 0
        and [w.casefold() for w in words[:half]] == [w.casefold() for w in words[half:]]
    ):
        return " ".join(words[:half])
    if len(words) >= 3 and words[0].isupper() and words[0] == "".join(w[0] for w in words[1:] if w[:1].isupper()):
        return " ".join(words[1:])
    return name


def _cut_furniture(name: str) -> str:
    """A name with page furniture glued after it ("Jane Doe Facebook Tweet Pin") cut at the furniture."""
    words = name.split()
    for i in range(2, len(words)):
        if all(t.casefold() in NOT_NAME_WORDS for t in _NAME_WORD.findall(words[i])):
            return " ".join(words[:i])
    return name


def _is_beat(words: list[str]) -> bool:
    """Only words of desks and beats ("Digital Security", "Home"), with no job title's head."""
    folded = [part for w in words for part in w.strip(".,()⋅-").casefold().split("-") if part]
    return bool(folded) and all(w in ROLE_WORDS and w not in ("a", "the") for w in folded)


def _ends_in_role(words: list[str]) -> bool:
    return words[-1].strip(".,()⋅").casefold().split("-")[-1] in ROLE_HEADS


def _without_dates(text: str) -> str:
    """The byline with its printed dates and times removed ("By Jane Doe March 1, 2024 3 AM PT")."""
    match = english_date(text)
    while match is not None:
        start, end = match[2]
        text = f"{text[:start]} , {text[end:]}"
        match = english_date(text)
    text = _NUMERIC_DAY.sub(" , ", _ISO_DAY.sub(" , ", text))
    return _WEEKDAY.sub(" ", _TIME_OF_DAY.sub(" , ", text)).strip()


def _strip_affixes(name: str) -> str:
    """The name without trailing credentials ("Dr. Jane Doe, PhD" -> "Dr. Jane Doe"); honorifics alone are no name.

    A leading honorific stays: it is part of the name as the page prints it ("Dr. Allen"),
    where a credential is a qualification listed after it.
    """
    words = name.split()
    while words and _is_credential(words[-1]):
        words = words[:-1]
    if all(word.strip(".,").casefold() in HONORIFICS for word in words):
        return ""
    return " ".join(words).strip(" ,")


def _is_credential(word: str) -> bool:
    """A degree or credential as written after a name: "PhD", "MD", "M.A." (but not the surname "Ma")."""
    bare = word.strip(".,")
    if bare.replace(".", "").casefold() not in NAME_AFFIXES and bare not in MIXED_CASE_CREDENTIALS:
        return False
    return bare in MIXED_CASE_CREDENTIALS or bare.isupper() or "." in bare


def _strip_suffix_role(name: str, sites: set[str]) -> str:
    """A name with a job title or the site's name glued after it ("Jane Doe Staff Writer") without them."""
    words = name.split()
    for cut in range(2, len(words)):
        tail = words[cut:]
        if _is_role(tail) or _fold(" ".join(tail)) in sites:
            return " ".join(words[:cut])
    return name


def _is_personal_name(words: list[str]) -> bool:
    """Two or three capitalised words, the first a given name ("Paige Brunton"): a person, even as a site's name."""
    if not 2 <= len(words) <= 3 or not all(w[:1].isupper() for w in words):
        return False
    if any(w.strip(".,").casefold() in BUSINESS_WORDS for w in words[1:]):
        return False  # "Jordan Motors", "Grace Church", "Jane Doe Photography"
    return words[0].strip(".,").casefold() in _given_names() and not _is_beat(words[1:])


@cache
def _given_names() -> frozenset[str]:
    """Given names of the US census (`given_names.txt`), lower case."""
    text = resources.files("normalizers.html").joinpath("given_names.txt").read_text(encoding="utf-8")
    return frozenset(line for line in text.splitlines() if line and not line.startswith("#"))


def _is_site(name: str, sites: set[str], *, trailing: bool) -> bool:
    """The name is a site name; after another name ("Jane Doe, Business Insider") a prefix of one suffices."""
    squeezed = name.replace(" ", "")
    if name in sites or any(squeezed == site.replace(" ", "") for site in sites):
        return True
    return trailing and any(site.startswith(name + " ") for site in sites)


def _is_role(words: list[str]) -> bool:
    # A hyphenated word is a role word whole ("co-founder") or by its parts ("editor-at-large").
    folded = [
        part
        for w in words
        for whole in [w.strip(".,()⋅").casefold()]
        for part in ([whole] if whole in ROLE_WORDS else whole.split("-"))
        if part
    ]
    if not folded:
        return False
    if all(w in ROLE_WORDS for w in folded) and any(w in ROLE_HEADS for w in folded):
        return True
    if len(folded) >= 2 and folded[0] in SENIORITY:
        return True  # "Head Winemaker", "Senior Research Executive": a rank, then any trade
    # "Senior Director of Operations", "Head of Content at Example": a head word, then "of" or "at".
    return any(w in ROLE_HEADS and i + 1 < len(folded) and folded[i + 1] in ("of", "at") for i, w in enumerate(folded))


def _is_organisation(words: list[str], folded: str, sites: set[str]) -> bool:
    """An organisation or collective byline: a company form, a newsroom word, 'The ...'."""
    tokens = [w.casefold() for word in words for w in _NAME_WORD.findall(word)]
    if any(t in ORGANISATION_WORDS for t in tokens):
        return True
    return len(tokens) > 1 and tokens[0] == "the"


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
    """`href` made absolute against `base`, as `urls.canonical_url` spells it; ValueError otherwise."""
    if len(href) > MAX_FIELD_CHARS:
        raise ValueError(f"it is longer than {MAX_FIELD_CHARS} characters")
    return canonical_url(urllib.parse.urljoin(base or "", href.strip()))


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
    # A @graph names each node once and refers to it elsewhere by @id alone
    # ("author": {"@id": "https://example.com/#/person/1"}): the references are resolved.
    by_id = {ref: o for o in objects if isinstance(ref := o.get("@id"), str)}
    if by_id:
        article = {
            key: _resolved(article.get(key), by_id) if key in JSONLD_REFERENCE_KEYS else value
            for key, value in article.items()
        }
    return article, site


def _resolved(value: Any, by_id: dict[str, dict[str, Any]]) -> Any:
    """A JSON-LD value with its bare `{"@id": ...}` references replaced by the nodes they name."""
    if isinstance(value, list):
        return [_resolved(item, by_id) for item in value[:MAX_AUTHORS]]
    if isinstance(value, dict) and "name" not in value and isinstance(ref := value.get("@id"), str):
        return by_id.get(ref, value)
    return value


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


def _squeeze(text: str) -> str:
    """Letters and digits only, case folded: "Example Tires" -> "exampletires"."""
    return "".join(ch for ch in text.casefold() if ch.isalnum())


def _fold(text: str) -> str:
    return _WS.sub(" ", text).strip().casefold()
