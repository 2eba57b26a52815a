"""Heuristics of the generic main-text extractor, kept as named data apart from the code.

`extract.py` applies these; nothing here names a site, a URL or a page phrase (the only
proper names are those of widely used third-party widgets: disqus, outbrain, taboola,
addthis). Class and id values are compared as lower-cased *words* (split on anything
that is not a letter or a digit, camelCase split too), so `article-share-bar` gives
{article, share, bar}.

How the numbers were tuned: by sweeping each one alone on the AEB development set
(`bench/extraction.py /work/shared/data/aeb`, 181 pages) with the others fixed and
keeping a value from the middle of the flat part of the F1 curve, not its sharpest
peak, so that a small shift on other pages does not fall off a cliff.
"""

from __future__ import annotations

import re

# --- parsing guard -------------------------------------------------------------------

# Lexbor's tree builder is quadratic in the nesting depth of block elements (every
# block start tag scans the open-element stack), so 100k nested <div> take ~15 s.
# Above this many block start tags the page is scanned for its real depth first.
# Real pages: the largest AEB page has < 900 block tags; 5,000 keeps the scan off
# every normal page (it costs ~5 ms per 10k tags).
DEPTH_SCAN_MIN_BLOCK_TAGS = 5_000
# Block elements deeper than this are flattened (their tags dropped, text kept) before
# parsing. Blink's HTML parser caps the tree depth at 512 too; the deepest AEB page
# is 50 elements deep.
MAX_BLOCK_DEPTH = 512

# Tags counted and flattened by the depth guard: the ones that make Lexbor scan.
BLOCK_TAGS_FOR_DEPTH = (
    "address", "article", "aside", "blockquote", "center", "details", "dialog", "dir", "div",
    "dl", "fieldset", "figcaption", "figure", "footer", "form", "header", "hgroup", "li",
    "main", "menu", "nav", "ol", "p", "section", "summary", "table", "ul", "dd", "dt",
)  # fmt: skip

# --- work bounds (hostile input) -----------------------------------------------------

# At most this many paragraph-like elements are scored; a real article has < 500.
MAX_SCORED_PARAGRAPHS = 20_000
# At most this many nodes are visited when the content is turned into blocks. The
# largest content of an AEB page has 1,311 nodes (text nodes included).
MAX_EMITTED_NODES = 50_000
# Parent walks (paths, ancestry checks) stop after this many steps.
MAX_PARENT_WALK = 64

# Class names and ids already split into words, kept across calls; cleared when full.
NAME_CACHE_SIZE = 50_000

# --- always removed, with their content ----------------------------------------------

# Never text: code, media, embedded widgets, form controls (removed from <body> only;
# elements without text, such as <meta> or <input>, need no removal).
JUNK_TAGS = (
    "script", "style", "noscript", "template", "svg", "math", "iframe", "object", "embed",
    "canvas", "video", "audio", "map", "button", "select", "textarea",
)  # fmt: skip

# Hidden from the reader (an attribute says so).
HIDDEN_SELECTOR = (
    '[hidden], [aria-hidden="true"], [style*="display:none"], [style*="display: none"], '
    '[style*="visibility:hidden"], [style*="visibility: hidden"]'
)

# --- boilerplate: skipped when scoring, removed from the chosen content ---------------

# Tags that are page chrome wherever they are. `header` is *not* here: inside an article
# it often holds the standfirst (lede), looked for before headers are dropped.
BOILERPLATE_TAGS: dict[str, str] = {
    "nav": "nav",
    "aside": "aside",
    "footer": "footer",
    "form": "form",
    "dialog": "dialog",
    "figcaption": "caption",
    "menu": "nav",
}

# Inline elements are not checked for boilerplate words: a share *link* or a "related"
# *span* sits inside a block that is checked, and most elements of a page are inline.
# (In the emitted text, <span> and <time> are still checked for bylines and dates.)
INLINE_TAGS = frozenset(
    {
        "a",
        "span",
        "img",
        "i",
        "em",
        "strong",
        "b",
        "u",
        "small",
        "label",
        "abbr",
        "sup",
        "sub",
        "picture",
        "source",
        "time",
        "cite",
        "code",
        "mark",
        "q",
        "s",
        "font",
        "wbr",
    }
)

# Rule name -> class/id words that mark the block. Exact word matches.
BOILERPLATE_WORDS: dict[str, frozenset[str]] = {
    "nav": frozenset(
        {
            "nav",
            "navbar",
            "navigation",
            "menu",
            "menubar",
            "breadcrumb",
            "breadcrumbs",
            "pagination",
            "pager",
            "skiplink",
            "skip",
            "masthead",
            "topbar",
            "toolbar",
            "sitemap",
        }
    ),
    "footer": frozenset({"footer", "colophon", "copyright"}),
    "share": frozenset({"share", "shares", "sharing", "social", "sharebar", "sharetools", "addthis", "sociallinks"}),
    "related": frozenset(
        {
            "related",
            "recommended",
            "recommendations",
            "recirc",
            "recirculation",
            "trending",
            "popular",
            "mostread",
            "mostpopular",
            "moreon",
            "morestories",
            "readnext",
            "upnext",
            "outbrain",
            "taboola",
            "teaser",
            "teasers",
            "promo",
            "promos",
            "seealso",
            "alsoread",
            "othernews",
        }
    ),
    "comments": frozenset({"comment", "comments", "disqus", "respond", "replies", "discussion"}),
    "caption": frozenset(
        {
            "caption",
            "captions",
            "figcaption",
            "credit",
            "credits",
            "photocredit",
        }
    ),
    "newsletter": frozenset({"newsletter", "newsletters", "subscribe", "subscription", "signup", "optin"}),
    "cookie": frozenset({"cookie", "cookies", "consent", "gdpr", "cmp"}),
    "ad": frozenset(
        {
            "ad",
            "ads",
            "advert",
            "adverts",
            "advertisement",
            "advertising",
            "sponsor",
            "sponsored",
            "dfp",
            "adslot",
            "adunit",
            "adcontainer",
            "googleads",
            "banner",
        }
    ),
    "sidebar": frozenset({"sidebar", "sidebars", "widget", "widgets", "sidecolumn"}),
    "tags": frozenset({"tags", "tagcloud", "taglist", "keywords", "topics"}),
    # Not "hidden": "hidden-xs" / "hidden-mobile" only hide a block on small screens.
    "hidden": frozenset({"invisible", "sronly", "screenreader", "visuallyhidden"}),
    "modal": frozenset({"modal", "popup", "overlay", "lightbox"}),
    "print": frozenset({"print", "noprint"}),
}

# Two-word phrases, looked for in the word sequence ("most read", "more stories").
BOILERPLATE_BIGRAMS: dict[str, frozenset[tuple[str, str]]] = {
    "related": frozenset(
        {
            ("most", "read"),
            ("most", "popular"),
            ("more", "stories"),
            ("more", "news"),
            ("other", "news"),
            ("read", "next"),
            ("up", "next"),
            ("see", "also"),
            ("also", "read"),
            ("you", "may"),
            ("more", "from"),
        }
    ),
    "hidden": frozenset({("sr", "only"), ("visually", "hidden"), ("screen", "reader")}),
    "share": frozenset({("share", "bar"), ("share", "tools"), ("social", "links")}),
}

# In one class name, the words after one of these describe the page's state or say what
# the block is not ("non-ad-column", "no-comments", "has-sidebar", "with-right-rail"):
# they do not make the block boilerplate.
STATE_WORDS = frozenset({"non", "no", "not", "without", "has", "with", "is", "show", "enable", "enabled"})

# Words that keep a block whose other words look like boilerplate ("article-tools-ad"
# is kept; "article-comments" is still removed: see PROTECT_EXCEPT).
POSITIVE_WORDS = frozenset(
    {"article", "content", "story", "body", "post", "entry", "text", "main", "blog", "prose", "richtext"}
)
# These rules remove a block even when a positive word is there too ("post-comments",
# "article-related", "story-share"): the negative word names what the block is.
PROTECT_EXCEPT = frozenset({"comments", "share", "related", "newsletter", "cookie", "caption"})

# A block matched by a word rule but holding more than this share of the body's text is
# a page wrapper with a misleading class; it is kept (except for the PROTECT_EXCEPT
# rules). Swept 0.3..0.9: F1 0.9716 flat from 0.3 to 0.5, then 0.966 at 0.6 and 0.938
# at 0.9 (article wrappers taken for boilerplate); 0.4 chosen, mid-way in the flat part.
WRAPPER_TEXT_SHARE = 0.4

# --- scoring (readability-style) ------------------------------------------------------

# Elements whose own text is scored and credited to their ancestors.
# (Readability's set; adding blockquote and li changed nothing on the development set.)
# A <div> with bare text of its own is scored too (see extract._score).
PARAGRAPH_SELECTOR = "p, pre, td"
# Paragraph-like elements shorter than this (characters) are not scored. Readability's
# 25; swept 10..60: 0.9713 at 10, 0.9716-0.9717 from 15 to 30, 0.9712 at 60.
MIN_PARAGRAPH_CHARS = 25
# Score of one paragraph: 1 + commas + one point per this many characters, capped.
# Readability's 100 and 3. Swept 50/100/200: 0.9722 / 0.9716 / 0.9699 (50 is one page
# better: not taken); 1/3/5 points: 0.9698 / 0.9716 / 0.9716.
CHARS_PER_POINT = 100
MAX_LENGTH_POINTS = 3
# Credit to the ancestors of a paragraph: parent 1, grandparent 1/2, then 1/(3 * level),
# up to this many levels (Readability.js's scheme and value). Swept 2..6: 0.966, 0.9722,
# 0.9719, 0.9716, 0.9700: 3 to 5 are within a page of each other; 5 kept.
SCORE_ANCESTOR_LEVELS = 5
# Class/id weight: +/- this for a positive / negative word on the candidate.
# Readability's 25 (not tuned here); swept 0/10/25/40: 0.9697 / 0.9689 / 0.9716 / 0.9695.
CLASS_WEIGHT = 25

TAG_BASE_SCORES: dict[str, float] = {
    "div": 5, "article": 10, "main": 5, "section": 3, "pre": 3, "td": 3, "blockquote": 3,
    "address": -3, "ol": -3, "ul": -3, "dl": -3, "dd": -3, "dt": -3, "li": -3, "form": -3,
    "h1": -5, "h2": -5, "h3": -5, "h4": -5, "h5": -5, "h6": -5, "th": -5,
}  # fmt: skip

# Words that lower / raise a candidate's score.
NEGATIVE_SCORE_WORDS = frozenset(
    {
        "comment",
        "comments",
        "meta",
        "footer",
        "footnote",
        "foot",
        "sidebar",
        "widget",
        "related",
        "share",
        "social",
        "sponsor",
        "promo",
        "ad",
        "ads",
        "nav",
        "menu",
        "masthead",
        "hidden",
        "shoutbox",
        "combx",
        "tags",
        "author",
        "byline",
        "caption",
        "credit",
        "popular",
        "trending",
        "outbrain",
        "taboola",
    }
)
POSITIVE_SCORE_WORDS = frozenset(
    {
        "article",
        "body",
        "content",
        "entry",
        "hentry",
        "main",
        "page",
        "pagination",
        "post",
        "text",
        "blog",
        "story",
        "prose",
        "richtext",
        "articlebody",
        "storybody",
    }
)

# Content split over several containers: when at least ALTERNATIVE_MIN of the
# ALTERNATIVE_COUNT next-best candidates score >= ALTERNATIVE_SHARE of the best and share
# an ancestor with it, that ancestor is the content (Readability.js's values: 5, 3, 0.75).
# Share swept 0.6..0.9: 0.9697 at 0.6-0.7, 0.9716 at 0.75-0.8, 0.9695 at 0.9 and with
# the step turned off (two or three pages move); Readability's 0.75 kept.
ALTERNATIVE_COUNT = 5
ALTERNATIVE_MIN = 3
ALTERNATIVE_SHARE = 0.75

# Siblings of the best node joined to it: score >= max(SIBLING_MIN_SCORE, best *
# SIBLING_SCORE_SHARE). Swept 0.1..0.5: 0.9711 at 0.1-0.2 (Readability's 0.2), 0.9716-
# 0.9717 from 0.3 to 0.5 (one page apart); 0.3 chosen.
SIBLING_SCORE_SHARE = 0.3
# Readability's 10; 5..20 give the same F1.
SIBLING_MIN_SCORE = 10.0
# A sibling <p> is joined when long enough with few links, or short, link-free and
# ending a sentence (Readability's rule and values; 40..200 chars and 0.1..0.4 density
# change nothing on the development set, where content paragraphs share a container).
SIBLING_P_MIN_CHARS = 80
SIBLING_P_MAX_LINK_DENSITY = 0.25

# --- cleaning inside the chosen content ----------------------------------------------

# Containers checked for link density inside the content.
LINK_CHECK_TAGS = frozenset({"ul", "ol", "dl", "div", "section", "table", "p"})
# A container whose link text share (characters of stripped text) exceeds this is a link
# list (related, tags, "more on"). Swept 0.3..1.0: 0.9675 at 0.3, 0.9713 at 0.4, 0.9715
# at 0.5-0.55, 0.9716 from 0.6 to 0.7, 0.9714 at 0.8, 0.9660 with no check; 0.6 chosen.
MAX_LINK_DENSITY = 0.6
# ... unless it is long: a long block with many links is prose with citations.
# Swept 200..5000 characters: 0.9701 at 200, 0.9707 at 500, 0.9716 flat from 1000 up;
# 2000 chosen.
LINK_DENSITY_MAX_CHARS = 2_000

# Class/id words of bylines (moved to Extraction.bylines) and of dates (dropped).
BYLINE_WORDS = frozenset(
    {"byline", "bylines", "author", "authors", "contributor", "contributors", "writer", "writtenby", "authorname"}
)
DATE_WORDS = frozenset({"date", "timestamp", "published", "pubdate", "updated", "posted", "time"})
# Bylines and dates are short; a longer block with such a class is an author bio or
# a wrapper. Swept 100..300: 0.9716 from 100 to 200, 0.9719 at 300 (one page); 200 kept,
# below the length of short author bios.
BYLINE_MAX_CHARS = 200
# A short first/last block starting "By " is a byline (English only: the page's
# language is not known here). Length swept 40/80/120: 0.9716 all three.
BYLINE_TEXT_RE = re.compile(r"^\s*(?:by|written by|words by)\s+\S", re.IGNORECASE)
BYLINE_TEXT_MAX_CHARS = 80

# --- lede (standfirst) -----------------------------------------------------------------

LEDE_WORDS = frozenset(
    {
        "lede",
        "lead",
        "standfirst",
        "dek",
        "deck",
        "summary",
        "intro",
        "subtitle",
        "subheadline",
        "subhead",
        "excerpt",
        "strapline",
        "sapo",
        "chapo",
        "abstract",
    }
)
# A lede with one of these words is a lead *picture* or media block.
LEDE_EXCLUDE_WORDS = frozenset(
    {
        "image",
        "img",
        "photo",
        "picture",
        "media",
        "video",
        "art",
        "figure",
        "caption",
        "credit",
        "story",
        "list",
        "author",
        "bio",
        "byline",
        "profile",
    }
)
# CSS pre-filter for lede candidates (substring, case-insensitive), then confirmed
# word by word with LEDE_WORDS.
LEDE_PREFILTER_SUBSTRINGS = (
    "lede", "lead", "standfirst", "dek", "deck", "summary", "intro", "subtitle", "subhead", "excerpt",
    "strapline", "sapo", "chapo", "abstract",
)  # fmt: skip
# A lede is one or two sentences: bounds in characters. Swept min 15/30/60 (0.9714 /
# 0.9716 / 0.9717) and max 300..2000 (no change).
LEDE_MIN_CHARS = 30
LEDE_MAX_CHARS = 1_000
# A lede is prose, not a list of links (not tuned: no lede on the set comes near it).
LEDE_MAX_LINK_DENSITY = 0.5

# --- emission -------------------------------------------------------------------------

# Elements that start a new block of text (everything else is inline).
BLOCK_TAGS = frozenset(
    {
        "p",
        "div",
        "section",
        "article",
        "main",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "ul",
        "ol",
        "li",
        "dl",
        "dt",
        "dd",
        "blockquote",
        "pre",
        "table",
        "tr",
        "td",
        "th",
        "tbody",
        "thead",
        "tfoot",
        "figure",
        "header",
        "address",
        "hr",
        "center",
        "fieldset",
        "details",
        "summary",
        "caption",
        "hgroup",
        "body",
        "br",
    }
)
HEADING_TAGS = frozenset({"h2", "h3", "h4", "h5", "h6"})
