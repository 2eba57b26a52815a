"""Learned boilerplate: blocks a source repeats across many of its articles, found by counting.

A source's chrome changes faster than anyone writes rules for it: a new newsletter
prompt, a sign-off, a "Most read" block. As CCNet does for web text, every block near
an article's edges is reduced to a normalised hash (`block_key`: case folded, digits
made 0, punctuation and spacing dropped, so `© 2024` and `© 2025` are one line), the
pipeline counts per source in how many distinct stories each hash appears
(`warehouse.boilerplate`), and a hash seen in enough of them is *learned*. A learned
block is removed from later articles under the rule `learned:<source>`.

This module is the pure half: which blocks are counted (`edge_keys`) and which are
removed given a learned set (`learned_edges`). Guards keep real content:
- only runs of learned blocks at the head or the tail of the body go, never one in the
  middle (a learned line between two paragraphs is read, not skipped);
- only short blocks are counted or removed (`MAX_WORDS`, `MAX_CHARS`): chrome is a line
  or two, a paragraph is not;
- a block carrying half of an article's words or more is never removed, nor is the last
  block standing: an article never loses its body to the rule;
- a quotation (a block opening with a quote mark, or holding a quoted passage) is never
  counted, so a quote repeated across many articles stays a quote;
- support counts distinct stories (`core_key`, the article's longest block), so one
  story stored under many URLs or updated through the day teaches nothing.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Sequence

from normalizers.schema import Article

__all__ = [
    "HEAD_SPAN",
    "MAX_CHARS",
    "MAX_WORDS",
    "MIN_SUPPORT",
    "TAIL_SPAN",
    "block_key",
    "body_blocks",
    "core_key",
    "counted",
    "edge_keys",
    "learned_edges",
    "rule_name",
]

# How far from each edge a block is counted and may be removed. Heads carry a prompt or
# two (a newsletter line, a "Listen to this article"); tails carry more: a sign-off, a
# share line, a copyright line, a related-headlines block of up to ten lines.
HEAD_SPAN = 5
TAIL_SPAN = 15
# Chrome is short: the longest line of the built-in rules is ~40 characters, newsletter
# and republication notices run to ~30 words. A body paragraph is longer, and a block this
# short that repeats across stories is furniture.
MAX_WORDS = 40
MAX_CHARS = 300
# A block is learned once it has been seen at an edge of this many distinct stories of the
# source. Enough that coincidence does not do it (two stories ending "More to follow."
# is a habit, five distinct ones a template); few enough that a new source's chrome is
# learned in its first run.
MIN_SUPPORT = 5

_PREFIX = "learned:"
# What is not a letter or a digit (punctuation, symbols, spacing) separates words in the
# key and is otherwise dropped, so a line differing only in a bullet, a dash or a © is the
# same line; every digit counts as 0.
_NOT_WORD = re.compile(r"[\W_]+")
_DIGIT = re.compile(r"\d")
# The same for ASCII text in one C pass over its bytes (the regex pass costs ~5x more).
_ASCII_FOLD = bytes(
    (b + 32 if 65 <= b <= 90 else 48 if 48 <= b <= 57 else b if 97 <= b <= 122 else 32) for b in range(256)
)
# A quoted passage of some length: `"We will not give up," he said.`
_QUOTED = re.compile(r"[\"“”„«»‘’‚‹›「『][^\"“”„«»「」『』]{12,}[\"“”„«»’‘›‹」』]")
_OPENING_QUOTES = frozenset('"“”„«»‘’‚‹›「『')


def rule_name(source: str) -> str:
    """The rule a learned block is removed under (`learned:<source>`)."""
    return f"{_PREFIX}{source}"


def block_key(text: str) -> int:
    """The normalised hash of a block: case, digits, punctuation and spacing do not count (a signed 64-bit int)."""
    if text.isascii():
        norm = b" ".join(text.encode().translate(_ASCII_FOLD).split())
    else:
        folded = unicodedata.normalize("NFKC", text).casefold()
        norm = _DIGIT.sub("0", _NOT_WORD.sub(" ", folded).strip()).encode()
    return int.from_bytes(hashlib.blake2b(norm, digest_size=8).digest(), "big", signed=True)


def counted(text: str) -> bool:
    """Whether a block may be chrome at all: short, with a word in it, and no quotation."""
    if not text or len(text) > MAX_CHARS or text.count(" ") >= MAX_WORDS:
        return False
    if text[0] in _OPENING_QUOTES or _QUOTED.search(text) is not None:
        return False
    return any(ch.isalnum() for ch in text)


def learned_edges(blocks: Sequence[str], learned: frozenset[int]) -> tuple[int, int]:
    """How many blocks to remove at the head and at the tail of a body: the runs of learned blocks there.

    `blocks` is the body in order (lede, headings, paragraphs). Each run stops at the
    first block that is not learned, is not `counted`, or carries half the body's words
    or more; when the runs would take every block, nothing is removed.
    """
    if not learned or not blocks:
        return 0, 0
    sizes = [b.count(" ") + 1 for b in blocks]
    total = sum(sizes)

    def removable(i: int) -> bool:
        return sizes[i] * 2 < total and counted(blocks[i]) and block_key(blocks[i]) in learned

    head = 0
    while head < min(HEAD_SPAN, len(blocks)) and removable(head):
        head += 1
    tail = 0
    while tail < min(TAIL_SPAN, len(blocks) - head) and removable(len(blocks) - 1 - tail):
        tail += 1
    if head + tail >= len(blocks):
        return 0, 0
    return head, tail


def body_blocks(article: Article) -> list[str]:
    """The article's body as blocks in order: lede, then each section's heading and paragraphs."""
    blocks = [article.lede] if article.lede else []
    for section in article.sections:
        if section.heading:
            blocks.append(section.heading)
        blocks.extend(section.paragraphs)
    return blocks


def core_key(article: Article) -> int:
    """What tells one story from another: the key of its longest body block (0 for an empty body).

    Copies of a story (one text under several URLs, an update through the day) share it,
    while its edges change with the template; distinct stories do not share it.
    """
    blocks = body_blocks(article)
    return block_key(max(blocks, key=len)) if blocks else 0


def edge_keys(article: Article) -> tuple[int, ...]:
    """The block keys to count for an article: its `counted` blocks near its edges, each once.

    These are the blocks within `HEAD_SPAN` of the body's start and `TAIL_SPAN` of its end,
    and the blocks learned boilerplate removed from it (they were at its edges, and are
    counted on, so support never drops because the rule worked).
    """
    blocks = body_blocks(article)
    near = blocks if len(blocks) <= HEAD_SPAN + TAIL_SPAN else blocks[:HEAD_SPAN] + blocks[-TAIL_SPAN:]
    removed = [s.text for s in article.stripped if s.rule.startswith(_PREFIX)]
    return tuple(dict.fromkeys(block_key(text) for text in (*removed, *near) if counted(text)))
