"""Bounds and named data of the HTML extractor, apart from the code that applies them.

The decision of what is article text is learned (`model.py`, fitted by
`scripts/train_extractor.py`); what is here bounds the work on hostile pages and names
the few text forms handled by rule: bylines and bare dates at the article's edges.
Nothing here names a site, a URL or a page phrase.
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

# At most this many block-level elements, and nodes in all (text included), are read
# when a page is cut into blocks: the largest dev-set pages have ~12,000 and ~40,000;
# the tag cap before parsing is 200,000.
MAX_SEGMENTED_ELEMENTS = 100_000
MAX_SEGMENTED_NODES = 400_000
# At most this many text blocks are scored: the largest dev-set page has ~8,000.
MAX_SEGMENTED_BLOCKS = 20_000
# Parent walks (paths, ancestry checks) stop after this many steps.
MAX_PARENT_WALK = 64
# At most this many removed blocks inside the article are listed in `dropped`.
MAX_DROPPED = 200

# Never text: code, media, embedded widgets, form controls (removed from <body> only;
# elements without text, such as <meta> or <input>, need no removal).
JUNK_TAGS = (
    "script", "style", "noscript", "template", "svg", "math", "iframe", "object", "embed",
    "canvas", "video", "audio", "map", "button", "select", "textarea",
)  # fmt: skip

# --- bylines and dates at the article's edges -----------------------------------------

# Words of element names (class, id) that mark a byline (moved to `bylines`) or a date
# line (dropped), when the block is short and opens or closes the article.
BYLINE_WORDS = frozenset(
    {"byline", "bylines", "author", "authors", "contributor", "contributors", "writer", "writtenby", "authorname"}
)
DATE_WORDS = frozenset({"date", "timestamp", "published", "pubdate", "updated", "posted", "time", "dateline"})
# Bylines and dates are short; a longer block with such a name is an author bio or a
# wrapper.
BYLINE_MAX_CHARS = 200
# A short block starting "By " is a byline even without a name saying so, in the
# languages whose word for "by" is listed.
BYLINE_TEXT_RE = re.compile(r"^\s*(?:by|written by|words by|von|par|por|di|door|av|af|przez)\s+\S", re.IGNORECASE)
BYLINE_TEXT_MAX_CHARS = 80
# The article's first and last few blocks are where bylines and date lines sit.
EDGE_BLOCKS = 3
