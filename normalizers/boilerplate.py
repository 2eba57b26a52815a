"""Learned boilerplate: blocks a source repeats across many of its articles, found by counting.

A source's chrome changes faster than anyone writes rules for it: a new newsletter
prompt, a sign-off, a "Most read" block. As CCNet does for web text, every block near
an article's edges is reduced to a normalised hash (`block_key`: case folded, digits
made 0, punctuation and spacing dropped, so `© 2024` and `© 2025` are one line), the
pipeline counts per source in how many distinct stories each hash appears
(`warehouse.boilerplate`), and a hash seen in enough of them is *learned*. A learned
block is removed from later articles under the rule `learned:<source>`.

This module is the pure half: which blocks are counted (`counts`) and which are
removed given a learned set (`learned_edges`). Guards keep real content:
- only runs of learned blocks at the head or the tail of the body go, never one in the
  middle (a learned line between two paragraphs is read, not skipped);
- only short blocks are counted or removed (`MAX_WORDS`, `MAX_CHARS`): chrome is a line
  or two, a paragraph is not;
- a block carrying half of an article's words or more is never removed, nor is the last
  block standing: an article never loses its body to the rule;
- a quotation (a block opening with a quote mark, or holding a quoted passage) is never
  learned, so a quote repeated across many articles stays a quote (a quoted headline in
  a list of related ones goes with the list);
- support counts distinct stories (`core_key`, the article's longest block), so one
  story stored under many URLs or updated through the day teaches nothing.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from normalizers.schema import Article

__all__ = [
    "HEAD_SPAN",
    "LISTED_MAX_WORDS",
    "MAX_CHARS",
    "MAX_WORDS",
    "MIN_SUPPORT",
    "RECURRING_SUPPORT",
    "TAIL_SPAN",
    "Learned",
    "block_key",
    "blocking_keys",
    "blocks_of",
    "body_blocks",
    "core_key",
    "counted",
    "counts",
    "learned_edges",
    "quoted",
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
# A block seen at the edges of this many distinct stories recurs: a headline of the day's
# most-read list. It is no evidence on its own, only inside a run of learned blocks.
RECURRING_SUPPORT = 2
LISTED_MAX_WORDS = 25

_PREFIX = "learned:"
# What is not a letter or a digit (punctuation, symbols, spacing) separates words in the
# key and is otherwise dropped, so a line differing only in a bullet, a dash or a © is the
# same line; every digit counts as 0.
_NOT_WORD = re.compile(r"[\W_]+")
_WORD = re.compile(r"[^\W_]")
_DIGIT = re.compile(r"\d")
# The same for ASCII text in one C pass over its bytes (the regex pass costs ~5x more).
_ASCII_FOLD = bytes(
    (b + 32 if 65 <= b <= 90 else 48 if 48 <= b <= 57 else b if 97 <= b <= 122 else 32) for b in range(256)
)
# A quoted passage of some length: `"We will not give up," he said.` Single quotes count
# only outside words, so the apostrophes of `Traveler’s Guide to Europe’s Trains` do not.
_QUOTED = re.compile(r"[\"“”„«「『][^\"“”„«»「」『』]{12,}[\"“”»」』]|(?<!\w)[‘‚‹'][^‘’‚‹›']{12,}[’‘›'](?!\w)")
_OPENING_QUOTES = frozenset("\"“”„«»‘‚‹「『'")


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
    """Whether a block may be chrome at all: short, with a word in it."""
    return len(text) <= MAX_CHARS and text.count(" ") < MAX_WORDS and _WORD.search(text) is not None


def quoted(text: str) -> bool:
    """Whether a block holds a quotation (opens with a quote mark, or quotes a passage): it is never learned."""
    return text[:1] in _OPENING_QUOTES or _QUOTED.search(text) is not None


@dataclass(frozen=True, slots=True)
class Learned:
    """A source's learned boilerplate as the normalisers apply it.

    `keys` are the learned blocks (`MIN_SUPPORT` distinct stories); `recurring` are
    blocks seen at the edges of at least `RECURRING_SUPPORT` distinct stories, short of
    being learned: the day's most-read headlines under a "Related" marker, which change
    too fast to be learned one by one. A recurring block goes only inside a run of
    learned ones (see `learned_edges`).
    """

    keys: frozenset[int] = frozenset()
    recurring: frozenset[int] = frozenset()

    def __bool__(self) -> bool:
        return bool(self.keys)


def learned_edges(blocks: Sequence[str], learned: Learned) -> tuple[int, int]:
    """How many blocks to remove at the head and at the tail of a body: the runs of learned blocks there.

    `blocks` is the body in order (lede, headings, paragraphs). A run from an edge holds
    learned blocks and recurring headline-like ones (`_listed`), and ends at its last
    learned block: a recurring block goes only with a learned one on its inner side (a
    "Related" marker above the headlines). A block that is not `counted`, or carries half
    the body's words or more, ends a run. When the runs would take every block, nothing
    is removed.
    """
    if not learned or not blocks:
        return 0, 0
    grades = _Grades(blocks, learned)

    def run(order: Sequence[int]) -> int:
        """How many blocks of `order` (from an edge inwards) the run takes, ending at its last learned one."""
        taken = 0
        for n, i in enumerate(order, start=1):
            g = grades[i]
            if not g:
                break
            if g == 2:
                taken = n
        return taken

    head = run(range(min(HEAD_SPAN, len(blocks))))
    tail = run(range(len(blocks) - 1, max(head, len(blocks) - TAIL_SPAN) - 1, -1))
    if head + tail >= len(blocks):
        return 0, 0
    return head, tail


class _Grades:
    """Each block's grade for a run, computed when first asked: 2 learned, 1 recurring headline, 0 neither."""

    def __init__(self, blocks: Sequence[str], learned: Learned) -> None:
        self.blocks, self.learned = blocks, learned
        self.sizes = [b.count(" ") + 1 for b in blocks]
        self.total = sum(self.sizes)
        self._grades: dict[int, int] = {}

    def removable(self, i: int) -> bool:
        """Whether the block may go at all: counted, and not half of the body's words."""
        return self.sizes[i] * 2 < self.total and counted(self.blocks[i])

    def __getitem__(self, i: int) -> int:
        g = self._grades.get(i)
        if g is None:
            g = self._grades[i] = self._grade(i)
        return g

    def _grade(self, i: int) -> int:
        text = self.blocks[i]
        if not self.removable(i):
            return 0
        key = block_key(text)
        if key in self.learned.keys and not quoted(text):
            return 2
        # A quoted headline under a "Related" marker goes with the list, never on its own.
        return 1 if (key in self.learned.recurring or key in self.learned.keys) and _listed(text) else 0


def blocking_keys(blocks: Sequence[str], learned: Learned) -> tuple[int, ...]:
    """Headline-like blocks that stop a run short of a learned block (inner side): each would go if it recurred.

    When one of them is later seen recurring, the article is normalised again (the
    pipeline asks, through `warehouse.boilerplate`), so a "Related" list whose headlines
    recur only after the article was first stored still goes.
    """
    if not learned or not blocks:
        return ()
    grades = _Grades(blocks, learned)
    found: list[int] = []
    for order in (range(min(HEAD_SPAN, len(blocks))), range(len(blocks) - 1, max(-1, len(blocks) - 1 - TAIL_SPAN), -1)):
        pending: list[int] = []
        for i in order:
            g = grades[i]
            if g == 2:
                found += pending
                pending = []
            elif g == 0:
                if not (grades.removable(i) and _listed(blocks[i])):
                    break
                pending.append(block_key(blocks[i]))
    return tuple(dict.fromkeys(found))


def _listed(text: str) -> bool:
    """Whether a block reads as a headline in a list, not a sentence: short, not ending like prose."""
    end = text.rstrip("\"”’'»)]")
    return text.count(" ") < LISTED_MAX_WORDS and not (end and end[-1] in ".,;:")


def body_blocks(article: Article) -> list[str]:
    """The article's body as blocks in order: lede, then each section's heading and paragraphs."""
    return blocks_of(article.lede, ((s.heading, s.paragraphs) for s in article.sections))


def blocks_of(lede: str | None, sections: Iterable[tuple[str | None, Iterable[str]]]) -> list[str]:
    """A body's blocks in order from its lede and (heading, paragraphs) sections, as stored or built."""
    blocks = [lede] if lede else []
    for heading, paragraphs in sections:
        if heading:
            blocks.append(heading)
        blocks.extend(paragraphs)
    return blocks


def counts(article: Article, learned: Learned) -> tuple[int, tuple[int, ...], tuple[int, ...]]:
    """What the pipeline counts for a written article: (`core_key`, `edge_keys`, `blocking_keys`), in one pass."""
    blocks = body_blocks(article)
    near = blocks if len(blocks) <= HEAD_SPAN + TAIL_SPAN else blocks[:HEAD_SPAN] + blocks[-TAIL_SPAN:]
    removed = [s.text for s in article.stripped if s.rule.startswith(_PREFIX)]
    keys = tuple(dict.fromkeys(block_key(text) for text in (*removed, *near) if counted(text)))
    return core_key(blocks), keys, blocking_keys(blocks, learned)


def core_key(blocks: Sequence[str]) -> int:
    """What tells one story from another: a hash of its longest body block, as it is (0 for an empty body).

    Copies of a story (one text under several URLs, an update through the day) share it,
    while its edges change with the template; distinct stories do not share it.
    """
    if not blocks:
        return 0
    return int.from_bytes(hashlib.blake2b(max(blocks, key=len).encode(), digest_size=8).digest(), "big", signed=True)
