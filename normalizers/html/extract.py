"""Main-text extraction from a parsed HTML page: the article's blocks, bylines, and how sure it is.

`extract()` works on a `LexborHTMLParser` tree in four steps:

1. segment: cut the page into text blocks, each with the elements around it
   (`segment.py`);
2. score: a first model gives each block a probability of being article text from
   its own features (text, link share, element names, containers, position); a second
   model revises it from what the first said about the block's neighbours and
   containers (`features.py`, `model.py`: learned, shipped as data);
3. choose: keep the blocks the evidence puts in the article (`decide.py`); a source
   profile's `body_selector`, when it matches, bounds the article to its elements
   instead (only blocks the model is sure are boilerplate are removed there);
4. shape: kept blocks become headings, paragraphs, list items, quotes and `pre`
   blocks; a short byline or date line at the article's edges goes to `bylines` or is
   dropped.

`Extraction.confidence` estimates the F1 the extraction would score against a
human-made article text (0..1, a model fitted on cross-validated extractions);
`candidates` are the containers holding most of what the model took for article
text, the chosen `root` first: what `newsflow normalize --explain` shows.

Work is bounded: the page is cut at `rules.MAX_SEGMENTED_*`, and an optional `budget`
(a `normalizers.bounds.Budget`: normalisers read no clock, the caller passes one
backed by the monotonic clock) stops it early with `truncated=True`. Parse with
`parse_html()`: it flattens pathologically deep block nesting before Lexbor sees it
(Lexbor's tree builder is quadratic in that depth: 100k nested <div> take ~15 s).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from selectolax.lexbor import LexborHTMLParser, LexborNode

from normalizers.bounds import Budget
from normalizers.html import rules
from normalizers.html.decide import page_confidence, page_features, prose_words, threshold
from normalizers.html.features import block_features, context_features, name_words
from normalizers.html.model import load_model
from normalizers.html.segment import Page, segment, subtree_sums

__all__ = [
    "Block",
    "BlockKind",
    "Candidate",
    "Dropped",
    "Extraction",
    "cut_attribute_floods",
    "extract",
    "extract_text",
    "parse_html",
    "repeated_blocks",
]

BlockKind = Literal["heading", "paragraph", "list_item", "quote", "pre"]


@dataclass(frozen=True, slots=True)
class Block:
    """One block of article text; `level` is 1..6 for a heading, 0 otherwise."""

    kind: BlockKind
    text: str
    level: int = 0


@dataclass(frozen=True, slots=True)
class Dropped:
    """A removed block: short CSS-like path, the rule (or score) that removed it, its text start."""

    path: str
    reason: str
    text: str


@dataclass(frozen=True, slots=True)
class Candidate:
    """A container the model found article text in: where, its share of that text, the mean probability there."""

    path: str
    share: float
    mean_p: float
    chars: int


@dataclass(frozen=True, slots=True)
class Extraction:
    """Result of `extract()`: the article's blocks, what was set aside, and how sure the extraction is."""

    blocks: tuple[Block, ...]
    lede: str | None
    bylines: tuple[str, ...]
    dropped: tuple[Dropped, ...]
    root: str
    path: Literal["profile", "generic"]
    truncated: bool
    confidence: float = 0.0
    candidates: tuple[Candidate, ...] = ()
    threshold: float = 0.0  # the probability a block needed to be kept
    kept: int = 0  # blocks kept (bylines and dates at the edges included)
    root_share: float = 0.0  # share of the kept text inside `root`

    def text(self) -> str:
        """The article text: lede (unless it is already the first block) then blocks, blank-line separated."""
        parts = [b.text for b in self.blocks]
        if self.lede and (not parts or parts[0] != self.lede):
            parts.insert(0, self.lede)
        return "\n\n".join(parts)


# --- parsing -----------------------------------------------------------------------------

_DEPTH_TAGS = tuple(t for t in rules.BLOCK_TAGS_FOR_DEPTH if t not in {"p", "li", "dd", "dt"})
_DEPTH_TAG_RE = re.compile(r"<(/?)(?:" + "|".join(_DEPTH_TAGS) + r")(?=[\s/>])[^>]*>", re.IGNORECASE)


# A tag with this many attributes is cut to its name before parsing: Lexbor's time grows
# with the square of one element's attribute count (seconds at tens of thousands), and no
# page needs that many. Quoted values may hold any character, `<` and `>` too.
MAX_ATTRIBUTES = 2000
# Atomic: a matched attribute is never re-split, so a tag of few attributes fails at once.
_ATTRIBUTE = r"""(?>[\s/]++[^\s/>"'=]++(?:\s*+=\s*+(?:"[^"]*+"|'[^']*+'|[^\s>"']++))?+)"""
_FLOODED_TAG = re.compile(r"<([a-zA-Z][^\s/>]*+)" + _ATTRIBUTE + "{" + str(MAX_ATTRIBUTES) + "}")
_REST_OF_TAG = re.compile(_ATTRIBUTE + r"*+\s*/?>?")


def cut_attribute_floods(html: str) -> tuple[str, int]:
    """`html` with every tag of `MAX_ATTRIBUTES` or more attributes cut to its name, and how many were cut."""
    pieces: list[str] = []
    start = 0
    while (flood := _FLOODED_TAG.search(html, start)) is not None:
        rest = _REST_OF_TAG.match(html, flood.end())
        pieces += [html[start : flood.start()], f"<{flood.group(1)}>"]
        start = rest.end() if rest is not None else flood.end()
    if not pieces:
        return html, 0
    pieces.append(html[start:])
    return "".join(pieces), len(pieces) // 2


def parse_html(html: str, *, floods_cut: bool = False) -> LexborHTMLParser:
    """Parse `html` with Lexbor, first cutting attribute floods (unless the caller did) and flattening deep nesting."""
    if not floods_cut:
        html = cut_attribute_floods(html)[0]
    html = html.replace("\x00", "\ufffd")
    # Counting '<' is nearly free; the exact count of block tags only runs on big pages.
    if (
        html.count("<") >= rules.DEPTH_SCAN_MIN_BLOCK_TAGS
        and sum(1 for _ in _DEPTH_TAG_RE.finditer(html)) >= rules.DEPTH_SCAN_MIN_BLOCK_TAGS
    ):
        html = _flatten_deep_blocks(html)
    return LexborHTMLParser(html)


def _flatten_deep_blocks(html: str) -> str:
    """Drop the block tags (not their text) that would nest deeper than the limit."""
    pieces: list[str] = []
    depth = 0
    last = 0
    for match in _DEPTH_TAG_RE.finditer(html):
        if match.group(1):  # closing tag
            depth = max(depth - 1, 0)
            drop = depth >= rules.MAX_BLOCK_DEPTH
        else:
            depth += 1
            drop = depth > rules.MAX_BLOCK_DEPTH
        if drop:
            pieces.append(html[last : match.start()])
            pieces.append(" ")
            last = match.end()
    if not pieces:
        return html
    pieces.append(html[last:])
    return "".join(pieces)


# --- helpers -------------------------------------------------------------------------------

_PATH_STEPS = 4
# A block kept inside a source profile's body is dropped only below this probability:
# the profile says where the article is, the model only removes what it is sure of.
PROFILE_DROP_BELOW = 0.1
_DATE_ONLY = re.compile(
    r"^[\W\d_]*(?:(?:updated|published|posted|last modified|modified)\b[:\s]*)?"
    r"(?:[A-Za-z]{3,9}\.?\s+\d{1,2},?\s+\d{4}|\d{1,2}\s+[A-Za-z]{3,9}\.?\s+\d{4}|\d{4}-\d{2}-\d{2}|\d{1,2}[./]\d{1,2}[./]\d{2,4})"
    r"(?:[\s,|·•-]+\d{1,2}[:.]\d{2}(?:\s*[ap]\.?m\.?)?(?:\s+[A-Z]{2,4})?)?\W*$",
    re.IGNORECASE,
)


def _path(node: LexborNode) -> str:
    """Short CSS-like path of a node, e.g. `body > div#main > article.story`."""
    parts: list[str] = []
    current: LexborNode | None = node
    steps = 0
    while current is not None and current.is_element_node and steps < _PATH_STEPS:
        tag = current.tag or "?"
        if tag in {"html", "body"}:
            parts.append(tag)
            break
        label = tag
        node_id = current.id
        if node_id and node_id.split():
            label += "#" + node_id.split()[0][:40]
        else:
            classes = current.attrs.sget("class").split()
            if classes:
                label += "." + classes[0][:40]
        parts.append(label)
        current = current.parent
        steps += 1
    else:
        if current is not None and current.is_element_node:
            parts.append("…")
    return " > ".join(reversed(parts))


def _snippet(text: str) -> str:
    return " ".join(text[:400].split())[:80]


def _subtree_ends(page: Page) -> list[int]:
    """For each element, the index of the last element inside it (document order)."""
    last = list(range(len(page.tags)))
    parents = page.parents
    # Backwards, an element is first met as a parent from its last child, whose end is its own.
    for i in range(len(last) - 1, 0, -1):
        p = parents[i]
        if last[p] == p:
            last[p] = last[i]
    return last


# A kept block of at least `REPEAT_PART_MIN_CHARS` that another kept block already says
# word for word, or one at least `REPEAT_MIN_CHARS` long whose text is mostly
# (`REPEAT_SHARE`) made of other kept blocks, is a second copy (a summary box, a
# newsletter version of the same list).
REPEAT_MIN_CHARS = 200
REPEAT_PART_MIN_CHARS = 40
REPEAT_SHARE = 0.8
# Work bound: the longest kept blocks checked, and the kept blocks looked for in them.
REPEAT_MAX_COPIES = 16
REPEAT_MAX_PARTS = 400


def repeated_blocks(page: Page, indexes: list[int]) -> set[int]:
    """Kept blocks that repeat other kept text: an exact copy's later one, a block made of others."""
    texts = page.texts
    gone: set[int] = set()
    seen: set[str] = set()
    for j in indexes:  # the same sentence twice (a summary box above the article repeating it)
        text = texts[j]
        if len(text) >= REPEAT_PART_MIN_CHARS:
            if text in seen:
                gone.add(j)
            seen.add(text)
    long = sorted(
        (j for j in indexes if len(texts[j]) >= REPEAT_MIN_CHARS and j not in gone), key=lambda j: (-len(texts[j]), -j)
    )[:REPEAT_MAX_COPIES]
    parts = [j for j in indexes if len(texts[j]) >= REPEAT_PART_MIN_CHARS and j not in gone][:REPEAT_MAX_PARTS]
    for j in long:
        text = texts[j]
        covered = sum(len(texts[k]) for k in parts if k != j and k not in gone and texts[k] in text)
        if covered >= REPEAT_SHARE * len(text):
            gone.add(j)
    return gone


def _kind(page: Page, element: int) -> tuple[BlockKind, int]:
    """What a block held by `element` is: a heading (and its level), list item, quote, pre or paragraph."""
    tags, parents = page.tags, page.parents
    tag = tags[element]
    if len(tag) == 2 and tag[0] == "h" and tag[1] in "123456":
        return "heading", int(tag[1])
    if tag == "pre":
        return "pre", 0
    up, steps = element, 0
    while up >= 0 and steps < rules.MAX_PARENT_WALK:
        current = tags[up]
        if current == "blockquote":
            return "quote", 0
        if current in ("li", "dd", "dt"):
            return "list_item", 0
        if current in ("article", "main", "body"):
            break
        up, steps = parents[up], steps + 1
    return "paragraph", 0


def _edge_kind(page: Page, element: int, text: str) -> str | None:
    """`byline` or `date` for a short block at the article's edge that is one, else None."""
    if len(text) > rules.BYLINE_MAX_CHARS:
        return None
    words: set[str] = set()
    up, steps = element, 0
    while up > 0 and steps < 3:  # the block's element and two containers: a byline box's own names
        words.update(name_words(page.names[up]))
        up, steps = page.parents[up], steps + 1
    if not words.isdisjoint(rules.BYLINE_WORDS) or (
        len(text) <= rules.BYLINE_TEXT_MAX_CHARS and rules.BYLINE_TEXT_RE.match(text)
    ):
        return "byline"
    if _DATE_ONLY.match(text) or (not words.isdisjoint(rules.DATE_WORDS) and any(c.isdigit() for c in text)):
        return "date"
    return None


def _subtree_totals(per_element: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Each element's total over its subtree, of whole-number weights (exact in any order of addition)."""
    before = np.zeros(len(per_element) + 1)
    np.cumsum(per_element, out=before[1:])
    # An element's subtree is the elements from it to its end, in document order.
    totals: np.ndarray = before[ends + 1] - before[:-1]
    return totals


def _candidates(page: Page, p: np.ndarray, last: list[int], ends: np.ndarray) -> tuple[Candidate, ...]:
    """The containers holding most of the expected article text, largest first, none inside another."""
    n = len(page.tags)
    lengths = np.array([len(t) for t in page.texts], dtype=np.float64)
    owners = np.array(page.owners, dtype=np.intp)
    chars = _subtree_totals(np.bincount(owners, weights=lengths, minlength=n), ends)
    # The mass is fractional, so its subtree sums keep their order of addition.
    mass = np.array(subtree_sums(page, p * lengths))
    total = float(mass[0]) or 1.0
    # A candidate holds a good part of the expected text at a good density: the lowest
    # such container (a deeper one is preferred to its wrapper when it holds as much).
    score = mass * (mass / np.maximum(chars, 1.0))
    chosen: list[int] = []
    for i in np.argsort(-score, kind="stable")[:50].tolist():
        if mass[i] < 0.05 * total:
            break
        if any(c <= i <= last[c] or i <= c <= last[i] for c in chosen):
            continue
        chosen.append(i)
        if len(chosen) == 4:
            break
    return tuple(
        Candidate(_path(page.nodes[i]), round(float(mass[i]) / total, 3), round(float(mass[i] / chars[i]), 3),
                  int(chars[i]))
        for i in chosen
    )  # fmt: skip


# The content root holds at least this share of the kept text: a stray kept block
# elsewhere on the page does not lift the root to <body>.
ROOT_SHARE = 0.9


def _content_root(page: Page, kept: np.ndarray, ends: np.ndarray) -> tuple[int, float]:
    """The lowest element holding `ROOT_SHARE` of the kept text, and its share (body, 0 when nothing is kept)."""
    n = len(page.tags)
    lengths = np.array([len(t) for t in page.texts], dtype=np.float64) * kept
    held = _subtree_totals(np.bincount(np.array(page.owners, dtype=np.intp), weights=lengths, minlength=n), ends)
    total = float(held[0])
    if not total:
        return 0, 0.0
    # The deepest element holding enough: every element holding enough is an ancestor of
    # the next one in document order, so the last one is the lowest (the body holds all).
    root = int(np.flatnonzero(held >= ROOT_SHARE * total)[-1])
    return root, float(held[root]) / total


# --- public API --------------------------------------------------------------------------------


def extract(
    tree: LexborHTMLParser,
    *,
    body_selector: str | None = None,
    remove_selectors: Sequence[str] = (),
    budget: Budget | None = None,
) -> Extraction:
    """Extract the main text of a parsed page (the tree is modified); never raises on bad HTML."""
    dropped: list[Dropped] = []
    body = tree.body or tree.root
    if body is None:
        return Extraction((), None, (), (), "", "generic", False)
    for selector in remove_selectors:
        try:
            matches = [n for n in body.css(selector) if n.mem_id != body.mem_id]
        except Exception:  # a bad selector in a profile must not crash extraction
            dropped.append(Dropped("", f"profile: invalid selector {selector!r}", ""))
            continue
        for node in reversed(matches):
            dropped.append(Dropped(_path(node), f"profile: {selector}", _snippet(node.text(separator=" "))))
            node.decompose()
    profile_nodes: list[int] = []
    if body_selector:
        try:
            profile_nodes = [n.mem_id for n in body.css(body_selector)]
        except Exception:  # as above: fall back to the generic path
            profile_nodes = []

    page = segment(tree, budget)
    if not page.texts:
        return Extraction((), None, (), tuple(dropped), "body", "generic", page.truncated)
    model = load_model()
    rows = block_features(page, model.tables)
    p = model.context.predict(np.hstack([rows, context_features(page, model.blocks.predict(rows))]))
    truncated = page.truncated or (budget is not None and budget.expired())
    last = _subtree_ends(page)

    path: Literal["profile", "generic"] = "generic"
    inside = _inside_profile(page, profile_nodes, last)
    if inside is not None:
        path = "profile"
        needed = PROFILE_DROP_BELOW
        kept = inside & (p >= needed)
    else:
        needed = threshold(p)
        kept = p >= needed
    confidence = page_confidence(model.confidence, page_features(page, p, kept), prose_words(page, kept))
    if path == "profile":
        confidence = max(confidence, 0.9)  # the source's own selector found the article
    return _shape(page, p, kept, dropped, last, path, truncated, confidence, needed)


def _inside_profile(page: Page, profile_nodes: list[int], last: list[int]) -> np.ndarray | None:
    """Which blocks lie inside the profile's body elements; None when the selector matched no element with text."""
    if not profile_nodes:
        return None
    wanted = set(profile_nodes)
    roots = [i for i, node in enumerate(page.nodes) if node.mem_id in wanted]
    if not roots:
        return None
    owners = np.array(page.owners, dtype=np.intp)
    inside = np.zeros(len(owners), dtype=bool)
    for r in roots:
        inside |= (owners >= r) & (owners <= last[r])
    return inside if inside.any() else None


def _shape(
    page: Page,
    p: np.ndarray,
    kept: np.ndarray,
    dropped: list[Dropped],
    last: list[int],
    path: Literal["profile", "generic"],
    truncated: bool,
    confidence: float,
    needed: float,
) -> Extraction:
    """Kept blocks as typed blocks; bylines and dates at the edges set aside; what was removed inside listed."""
    indexes = np.flatnonzero(kept).tolist()
    repeated = repeated_blocks(page, indexes)
    if repeated:
        for j in sorted(repeated):
            kept[j] = False
            dropped.append(Dropped(_path(page.nodes[page.owners[j]]), "repeat of kept text", _snippet(page.texts[j])))
        indexes = [j for j in indexes if j not in repeated]
    blocks: list[Block] = []
    bylines: list[str] = []
    edges = set(indexes[: rules.EDGE_BLOCKS] + indexes[-rules.EDGE_BLOCKS :])
    for j in indexes:
        text, element = page.texts[j], page.owners[j]
        if j in edges:
            edge = _edge_kind(page, element, text)
            if edge is not None:
                if edge == "byline":
                    bylines.append(text)
                dropped.append(Dropped(_path(page.nodes[element]), edge, _snippet(text)))
                continue
        kind, level = _kind(page, element)
        blocks.append(Block(kind, text, level))
    if indexes:
        first, final = indexes[0], indexes[-1]
        # A byline just above the article (the model leaves bylines out of the text, as the
        # human-made texts it learned from do) still names the authors.
        for j in range(max(0, first - rules.EDGE_BLOCKS), first):
            element = page.owners[j]
            if _edge_kind(page, element, page.texts[j]) == "byline":
                bylines.insert(0, page.texts[j])
                dropped.append(Dropped(_path(page.nodes[element]), "byline", _snippet(page.texts[j])))
        for j in range(first, final + 1):
            if not kept[j] and j not in repeated and len(dropped) < rules.MAX_DROPPED:
                node = page.nodes[page.owners[j]]
                dropped.append(Dropped(_path(node), f"model {p[j]:.2f}", _snippet(page.texts[j])))
    ends = np.array(last, dtype=np.intp)
    root, root_share = _content_root(page, kept, ends)
    candidates = _candidates(page, p, last, ends)
    return Extraction(
        blocks=tuple(blocks),
        lede=None,
        bylines=tuple(dict.fromkeys(bylines)),
        dropped=tuple(dropped),
        root=_path(page.nodes[root]),
        path=path,
        truncated=truncated,
        confidence=round(confidence, 3),
        candidates=candidates,
        threshold=round(needed, 3),
        kept=len(indexes),
        root_share=round(root_share, 3),
    )


def extract_text(html: str) -> str:
    """Main text of an HTML page as a string (lede first, blocks separated by blank lines)."""
    return extract(parse_html(html)).text()
