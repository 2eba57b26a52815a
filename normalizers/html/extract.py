"""Main-text extraction from a parsed HTML page: blocks of article text, lede, bylines.

`extract()` works on a `LexborHTMLParser` tree in four steps:

1. choose: remove never-text tags (scripts, media, forms) and hidden elements; score
   paragraph-like elements (length, commas) and credit their ancestors,
   readability-style, skipping paragraphs that sit inside page boilerplate recognised
   by tag or by class/id words (navigation, share bars, related / most-read lists,
   comments, captions, newsletter and cookie boxes, ads...). The best ancestor,
   discounted by its link density, is the main content, joined by its siblings that
   score nearly as well. A source profile's `body_selector` replaces this step when it
   matches;
2. clean: remove that boilerplate from inside the chosen content;
3. look for a lede (standfirst) that the page marks by class/id, inside or just before
   the content;
4. walk the content in document order and emit blocks (paragraphs, sub-headings, list
   items, quotes, pre), dropping link lists, bylines (kept in `bylines`), dates,
   headers and the title.

`Extraction.dropped` records, with the rule that removed it, every node taken out of
the chosen content and every hidden element; the page chrome around the content is not
listed one piece at a time (`root` says where the content is). All the rules and
thresholds live in `rules.py`. The tree is modified in place (removed nodes are
destroyed): parse once per call, or `clone()` first to keep the original.

Work is bounded: every traversal is iterative, node counts are capped (`rules.MAX_*`)
and an optional `budget` (a `normalizers.bounds.Budget`: normalisers read no clock, the
caller passes one backed by the monotonic clock) stops the work early with
`truncated=True`. Parse with `parse_html()`: it flattens
pathologically deep block nesting before Lexbor sees it (Lexbor's tree builder is
quadratic in that depth: 100k nested <div> take ~15 s to parse).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from selectolax.lexbor import LexborHTMLParser, LexborNode

from normalizers.bounds import Budget
from normalizers.html import rules

__all__ = ["Block", "BlockKind", "Dropped", "Extraction", "extract", "extract_text", "parse_html"]

BlockKind = Literal["heading", "paragraph", "list_item", "quote", "pre"]


@dataclass(frozen=True, slots=True)
class Block:
    """One block of article text; `level` is 2..6 for a heading, 0 otherwise."""

    kind: BlockKind
    text: str
    level: int = 0


@dataclass(frozen=True, slots=True)
class Dropped:
    """A removed node: short CSS-like path, the rule (or score) that removed it, its text start."""

    path: str
    reason: str
    text: str


@dataclass(frozen=True, slots=True)
class Extraction:
    """Result of `extract()`: the article's blocks and what was set aside.

    `root` is the path of the main-content node; `dropped` lists what was removed from
    inside the content (and hidden elements); `truncated` says the time bound or a work
    cap stopped the extraction early.
    """

    blocks: tuple[Block, ...]
    lede: str | None
    bylines: tuple[str, ...]
    dropped: tuple[Dropped, ...]
    root: str
    path: Literal["profile", "generic"]
    truncated: bool

    def text(self) -> str:
        """The article text: lede (unless it is already the first block) then blocks, blank-line separated."""
        parts = [b.text for b in self.blocks]
        if self.lede and (not parts or parts[0] != self.lede):
            parts.insert(0, self.lede)
        return "\n\n".join(parts)


# --- parsing -----------------------------------------------------------------------------

_DEPTH_TAGS = tuple(t for t in rules.BLOCK_TAGS_FOR_DEPTH if t not in {"p", "li", "dd", "dt"})
_DEPTH_TAG_RE = re.compile(r"<(/?)(?:" + "|".join(_DEPTH_TAGS) + r")(?=[\s/>])[^>]*>", re.IGNORECASE)


def parse_html(html: str) -> LexborHTMLParser:
    """Parse `html` with Lexbor, first flattening block nesting deeper than `rules.MAX_BLOCK_DEPTH`."""
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


# --- small helpers -------------------------------------------------------------------------

_CAMEL_RE = re.compile(r"([a-z0-9])([A-Z])")
# A word of a class name: "article__body--wide" -> article, body, wide.
_WORD_RE = re.compile(r"[a-z0-9]+")
# Commas of Latin, CJK and Arabic scripts: each one adds a point to a paragraph's score.
_COMMAS = (",", "，", "、", "،")


class _TimeBound:
    """The caller's time `Budget`, asked between units of work.

    `passed()` asks on every 64th call only (a budget backed by a clock is not free to
    ask); `expired()` asks now.
    """

    __slots__ = ("budget", "count", "hit")

    def __init__(self, budget: Budget | None) -> None:
        self.budget = budget
        self.count = 0
        self.hit = False

    def passed(self) -> bool:
        """Whether the time is up, asking the budget on every 64th call only."""
        if self.hit:
            return True
        if self.budget is None:
            return False
        self.count += 1
        if not self.count & 63:
            return self.expired()
        return False

    def expired(self) -> bool:
        """Whether the time is up, asking the budget now."""
        if not self.hit and self.budget is not None and self.budget.expired():
            self.hit = True
        return self.hit


# Class/id words are looked up in tables built once from `rules`: word -> flag bits, and
# word (or word pair) -> boilerplate rule. A node's traits are the union over its class
# names and id, each name's result cached (class names repeat across a site's pages).
_POSITIVE, _NEG_SCORE, _POS_SCORE, _BYLINE, _DATE, _LEDE, _LEDE_EXCLUDE = (1 << i for i in range(7))
_FLAG_SETS = (
    (_POSITIVE, rules.POSITIVE_WORDS),
    (_NEG_SCORE, rules.NEGATIVE_SCORE_WORDS),
    (_POS_SCORE, rules.POSITIVE_SCORE_WORDS),
    (_BYLINE, rules.BYLINE_WORDS),
    (_DATE, rules.DATE_WORDS),
    (_LEDE, rules.LEDE_WORDS),
    (_LEDE_EXCLUDE, rules.LEDE_EXCLUDE_WORDS),
)
_WORD_FLAGS: dict[str, int] = {}
for _flag, _vocabulary in _FLAG_SETS:
    for _word in _vocabulary:
        _WORD_FLAGS[_word] = _WORD_FLAGS.get(_word, 0) | _flag
# Rules by priority (the first in `rules` order wins when several match); _NO_RULE = none.
_RULES: tuple[str, ...] = tuple(dict.fromkeys([*rules.BOILERPLATE_WORDS, *rules.BOILERPLATE_BIGRAMS]))
_NO_RULE = len(_RULES)
_WORD_RULE: dict[str, int] = {}
for _rule, _vocabulary in rules.BOILERPLATE_WORDS.items():
    for _word in _vocabulary:
        _WORD_RULE[_word] = min(_WORD_RULE.get(_word, _NO_RULE), _RULES.index(_rule))
_BIGRAM_RULE: dict[tuple[str, str], int] = {}
for _rule, _pairs in rules.BOILERPLATE_BIGRAMS.items():
    for _pair in _pairs:
        _BIGRAM_RULE[_pair] = min(_BIGRAM_RULE.get(_pair, _NO_RULE), _RULES.index(_rule))

_VOCABULARY = frozenset([*_WORD_FLAGS, *_WORD_RULE, *(word for pair in _BIGRAM_RULE for word in pair)])
_NAME_CACHE: dict[str, tuple[int, int]] = {}
_NO_INFO = (_NO_RULE, 0)


def _name_info(name: str) -> tuple[int, int]:
    """(rule index, flag bits) of one class name or id value."""
    info = _NAME_CACHE.get(name)
    if info is not None:
        return info
    lowered = name if name.islower() else _CAMEL_RE.sub(r"\1 \2", name).lower()
    words = _WORD_RE.findall(lowered)
    rule = _NO_RULE
    flags = 0
    previous = ""
    # Most names ("row", "col-md-8", a unique id) hold no known word: one set test.
    for word in () if _VOCABULARY.isdisjoint(words) else words:
        flag = _WORD_FLAGS.get(word)
        if flag is not None:
            flags |= flag
        if word in rules.STATE_WORDS:
            break  # "no-sidebar", "has-comments", "with-right-rail": page state, not a block kind
        found = _WORD_RULE.get(word)
        if found is not None and found < rule:
            rule = found
        if previous:
            found = _BIGRAM_RULE.get((previous, word))
            if found is not None and found < rule:
                rule = found
        previous = word
    if len(_NAME_CACHE) >= rules.NAME_CACHE_SIZE:
        _NAME_CACHE.clear()
    info = _NAME_CACHE[name] = (rule, flags)
    return info


def _info(node: LexborNode) -> tuple[int, int]:
    """(rule index, flag bits) of a node's class names and id together."""
    names = node.attrs.sget("class").split()
    node_id = node.id
    if node_id:
        names.append(node_id)
    if not names:
        return _NO_INFO
    if len(names) == 1:
        return _NAME_CACHE.get(names[0]) or _name_info(names[0])
    infos = [_NAME_CACHE.get(name) or _name_info(name) for name in names]
    flags = 0
    for _, name_flags in infos:
        flags |= name_flags
    return min(rule for rule, _ in infos), flags


def _weight(flags: int) -> float:
    """Scoring weight from class/id words."""
    weight = 0.0
    if flags & _NEG_SCORE:
        weight -= rules.CLASS_WEIGHT
    if flags & _POS_SCORE:
        weight += rules.CLASS_WEIGHT
    return weight


def _matches(words: Iterable[str], vocabulary: frozenset[str]) -> bool:
    return not vocabulary.isdisjoint(words)


_PATH_STEPS = 4


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


def _is_inside(node: LexborNode, ancestor_ids: set[int]) -> bool:
    """Whether an ancestor of `node` (within `rules.MAX_PARENT_WALK` steps) is in `ancestor_ids`."""
    current = node.parent
    steps = 0
    while current is not None and steps < rules.MAX_PARENT_WALK:
        if current.mem_id in ancestor_ids:
            return True
        current = current.parent
        steps += 1
    return False


def _prefilter(substrings: Iterable[str]) -> str:
    return ", ".join(f'[class*="{s}" i], [id*="{s}" i]' for s in substrings)


_BOILERPLATE_SELECTOR = ", ".join([*rules.BOILERPLATE_TAGS, "[class]", "[id]"])
_LEDE_SELECTOR = _prefilter(rules.LEDE_PREFILTER_SUBSTRINGS)
_JUNK_TAGS = frozenset(rules.JUNK_TAGS)
_SCORED_SELECTOR = f"{rules.PARAGRAPH_SELECTOR}, div"
_JUNK_OR_HIDDEN_SELECTOR = ", ".join([*rules.JUNK_TAGS, rules.HIDDEN_SELECTOR])
_PROTECTED_TAGS = frozenset({"html", "body", "main"})


def _boilerplate_rule(node: LexborNode, tag: str) -> str | None:
    """Name of the boilerplate rule that matches `node`, or None."""
    if tag in rules.BOILERPLATE_TAGS:
        return rules.BOILERPLATE_TAGS[tag]
    if tag in _PROTECTED_TAGS or tag in rules.INLINE_TAGS:
        return None
    index, flags = _info(node)
    if index == _NO_RULE:
        return None
    rule = _RULES[index]
    if rule not in rules.PROTECT_EXCEPT and (tag == "article" or flags & _POSITIVE):
        return None
    return rule


def _remove(
    matches: Sequence[tuple[LexborNode, str]], dropped: list[Dropped], clock: _TimeBound, wrapper_chars: float = 0
) -> None:
    """Destroy the matched nodes (given in document order), recording the outermost ones.

    A match inside another removed match goes with it. A match holding more than
    `wrapper_chars` characters of text (when set) is a page wrapper with a misleading
    class and is kept, unless its rule names the block's kind for sure
    (`rules.PROTECT_EXCEPT`: comments, share, related...). Destruction goes in reverse
    document order, so a node is never touched after an ancestor of it has been destroyed.
    """
    removed: list[LexborNode] = []
    removed_ids: set[int] = set()
    for node, reason in matches:
        if clock.passed():
            break
        if removed_ids and _is_inside(node, removed_ids):
            continue
        text = node.text()
        if wrapper_chars and len(text) > wrapper_chars and reason not in rules.PROTECT_EXCEPT:
            continue
        dropped.append(Dropped(_path(node), reason, _snippet(node.text(separator=" "))))
        removed.append(node)
        removed_ids.add(node.mem_id)
    for node in reversed(removed):
        node.decompose()


def _remove_junk(body: LexborNode, dropped: list[Dropped], clock: _TimeBound) -> None:
    """Remove never-text elements (scripts, media...) and hidden ones (recorded) below `body`.

    One query finds both; destruction goes in reverse document order, so a node is
    never touched after an ancestor of it has been destroyed.
    """
    body_id = body.mem_id
    found = [node for node in body.css(_JUNK_OR_HIDDEN_SELECTOR) if node.mem_id != body_id]
    recorded: set[int] = set()
    for node in found:
        if node.tag in _JUNK_TAGS or clock.passed() or (recorded and _is_inside(node, recorded)):
            continue
        dropped.append(Dropped(_path(node), "hidden", _snippet(node.text(separator=" "))))
        recorded.add(node.mem_id)
    for node in reversed(found):
        node.decompose()


def _clean(scope: LexborNode, dropped: list[Dropped], clock: _TimeBound, wrapper_chars: float) -> None:
    """Remove boilerplate blocks below `scope` (never `scope` itself).

    A block holding more than `wrapper_chars` characters (0: no limit) is taken for a
    wrapper with a misleading class and kept (see `_remove`).
    """
    scope_id = scope.mem_id
    found: list[tuple[LexborNode, str]] = []
    for count, node in enumerate(scope.css(_BOILERPLATE_SELECTOR)):
        if not count & 255 and clock.expired():
            break
        rule = _boilerplate_rule(node, node.tag or "")
        if rule is not None and node.mem_id != scope_id:
            found.append((node, rule))
    _remove(found, dropped, clock, wrapper_chars)


# --- scoring -------------------------------------------------------------------------------


def _link_density(node: LexborNode) -> float:
    """Share of the node's text that is link text (stripped text: layout whitespace does not count)."""
    anchors = node.css("a")
    if not anchors:
        return 0.0
    total = len(node.text(strip=True))
    if total == 0:
        return 0.0
    return min(sum(len(a.text(strip=True)) for a in anchors) / total, 1.0)


def _paragraph_score(text: str) -> float:
    return 1.0 + sum(text.count(c) for c in _COMMAS) + min(len(text) // rules.CHARS_PER_POINT, rules.MAX_LENGTH_POINTS)


class _Boilerplate:
    """Whether a node is boilerplate or inside boilerplate, memoised per node.

    Used while scoring: a paragraph inside navigation, comments, a related box... gives
    no credit to anyone. Only the ancestors of paragraphs are ever looked at, which is
    far fewer nodes than the page has, and each once.
    """

    __slots__ = ("memo", "wrapper_chars")

    def __init__(self, body: LexborNode, wrapper_chars: float) -> None:
        self.memo: dict[int, bool] = {body.mem_id: False}
        self.wrapper_chars = wrapper_chars

    def covers(self, node: LexborNode) -> bool:
        chain: list[LexborNode] = []
        current: LexborNode | None = node
        memo = self.memo
        while current is not None and current.mem_id not in memo:
            chain.append(current)
            current = current.parent
        inside = memo[current.mem_id] if current is not None else False
        for item in reversed(chain):
            if not inside:
                rule = _boilerplate_rule(item, item.tag or "")
                inside = rule is not None and (rule in rules.PROTECT_EXCEPT or len(item.text()) <= self.wrapper_chars)
            memo[item.mem_id] = inside
        return inside


def _score(
    body: LexborNode, clock: _TimeBound, excluded: _Boilerplate
) -> tuple[dict[int, float], dict[int, LexborNode]]:
    """Readability-style scores of the ancestors of paragraph-like elements."""
    scores: dict[int, float] = {}
    nodes: dict[int, LexborNode] = {}
    # Bare text in a <div> (paragraphs separated by <br>) counts as a paragraph too.
    for para in body.css(_SCORED_SELECTOR)[: rules.MAX_SCORED_PARAGRAPHS]:
        if clock.passed():
            break
        is_div = para.tag == "div"
        text = (para.text(deep=False) if is_div else para.text()).strip()
        if len(text) < rules.MIN_PARAGRAPH_CHARS or excluded.covers(para):
            continue
        points = _paragraph_score(text)
        # A <div> of bare text is a paragraph (its parent is credited first), unless it also
        # holds blocks: then its text is a paragraph *inside* it and the div is credited first.
        ancestor = para if is_div and any(c.tag in rules.BLOCK_TAGS for c in para.iter()) else para.parent
        level = 0
        while ancestor is not None and ancestor.is_element_node and level < rules.SCORE_ANCESTOR_LEVELS:
            tag = ancestor.tag
            if tag == "html":
                break
            key = ancestor.mem_id
            if key not in scores:
                scores[key] = rules.TAG_BASE_SCORES.get(tag or "", 0.0) + _weight(_info(ancestor)[1])
                nodes[key] = ancestor
            scores[key] += points / (1 if level == 0 else 2 if level == 1 else level * 3)
            ancestor = ancestor.parent
            level += 1
    return scores, nodes


def _ancestor_ids(node: LexborNode) -> list[int]:
    ids: list[int] = []
    current = node.parent
    while current is not None and current.is_element_node and len(ids) < rules.MAX_PARENT_WALK:
        ids.append(current.mem_id)
        current = current.parent
    return ids


def _widen(
    best: LexborNode,
    best_score: float,
    scores: dict[int, float],
    final: dict[int, float],
    nodes: dict[int, LexborNode],
) -> tuple[LexborNode, float]:
    """Move up from the best node when the content is split over several containers.

    Two of Readability.js's steps: the lowest ancestor shared by enough near-best
    candidates; an ancestor whose score rises again. (Its third, climbing to a parent
    that has no other child, made no difference on the development set: left out.)
    """
    best_id = best.mem_id
    alternatives = sorted(
        (k for k, v in final.items() if k != best_id and v >= best_score * rules.ALTERNATIVE_SHARE),
        key=lambda k: -final[k],
    )[: rules.ALTERNATIVE_COUNT]
    if len(alternatives) >= rules.ALTERNATIVE_MIN:
        lists = [set(_ancestor_ids(nodes[k])) for k in alternatives]
        current = best.parent
        steps = 0
        while current is not None and current.tag not in {"body", "html"} and steps < rules.MAX_PARENT_WALK:
            key = current.mem_id
            if sum(key in ids for ids in lists) >= rules.ALTERNATIVE_MIN:
                best, best_score = current, final.get(key, best_score)
                break
            current = current.parent
            steps += 1
    last = final.get(best.mem_id, best_score)
    current = best.parent
    steps = 0
    while current is not None and current.tag not in {"body", "html"} and steps < rules.MAX_PARENT_WALK:
        key = current.mem_id
        steps += 1
        if key not in nodes:
            current = current.parent
            continue
        if key not in final:
            final[key] = scores[key] * (1 - _link_density(nodes[key]))
        score = final[key]
        if score < last / 3:
            break
        if score > last:
            best, best_score = current, score
            break
        last = score
        current = current.parent
    return best, best_score


def _choose(
    body: LexborNode, clock: _TimeBound, excluded: _Boilerplate
) -> tuple[LexborNode, list[LexborNode], dict[int, float]]:
    """The best content node, the nodes to emit (it and its good siblings, in order), the scores."""
    scores, nodes = _score(body, clock, excluded)
    best: LexborNode | None = None
    best_score = float("-inf")
    final: dict[int, float] = {}
    for key, raw in sorted(scores.items(), key=lambda item: -item[1]):
        # Link density only lowers a positive score, so nothing below can win or come
        # within ALTERNATIVE_SHARE of the winner.
        if raw <= best_score * rules.ALTERNATIVE_SHARE or clock.passed():
            break
        node = nodes[key]
        adjusted = raw * (1 - _link_density(node))
        final[key] = adjusted
        if adjusted > best_score:
            best, best_score = node, adjusted
    if best is None:
        return body, [body], final
    best, best_score = _widen(best, best_score, scores, final, nodes)
    parent = best.parent
    if parent is None or not parent.is_element_node or best.tag in {"body", "html"}:
        return best, [best], final
    threshold = max(rules.SIBLING_MIN_SCORE, best_score * rules.SIBLING_SCORE_SHARE)
    best_classes = best.attributes.get("class") or ""
    keep: list[LexborNode] = []
    best_id = best.mem_id
    for sibling in parent.iter():
        key = sibling.mem_id
        if key == best_id:
            keep.append(sibling)
            continue
        bonus = (
            best_score * rules.SIBLING_SCORE_SHARE
            if best_classes and sibling.attributes.get("class") == best_classes
            else 0.0
        )
        if key in scores:
            if key not in final:
                final[key] = scores[key] * (1 - _link_density(sibling))
            if final[key] + bonus >= threshold:
                keep.append(sibling)
                continue
        if sibling.tag == "p":
            text = sibling.text().strip()
            density = _link_density(sibling)
            if (len(text) > rules.SIBLING_P_MIN_CHARS and density < rules.SIBLING_P_MAX_LINK_DENSITY) or (
                0 < len(text) <= rules.SIBLING_P_MIN_CHARS and density == 0 and text[-1:] in ".!?\"'”»"
            ):
                keep.append(sibling)
    return best, keep, final


# --- lede ------------------------------------------------------------------------------------


def _find_lede(root: LexborNode, clock: _TimeBound, excluded: _Boilerplate) -> tuple[str | None, LexborNode | None]:
    """A lede marked by class/id inside `root` or just before it (within its grandparent)."""
    region = root
    for _ in range(2):
        if region.parent is not None and region.parent.is_element_node and region.parent.tag not in {"html"}:
            region = region.parent
    marker = "data-newsflow-root"
    root.attrs[marker] = "1"
    try:
        ordered = region.css(f"{_LEDE_SELECTOR}, [{marker}]")
    finally:
        del root.attrs[marker]
    root_id = root.mem_id
    seen_root = False
    before: list[tuple[str, LexborNode]] = []
    inside: list[tuple[str, LexborNode]] = []
    for node in ordered:
        if clock.passed():
            break
        if node.mem_id == root_id:
            seen_root = True
            continue
        if seen_root and not _is_inside(node, {root_id}):
            break  # after the content: not a lede
        flags = _info(node)[1]
        if not flags & _LEDE or flags & _LEDE_EXCLUDE or node.tag in _NOT_LEDE_TAGS or excluded.covers(node):
            continue
        text = " ".join(node.text().split())
        if (
            rules.LEDE_MIN_CHARS <= len(text) <= rules.LEDE_MAX_CHARS
            and _link_density(node) < rules.LEDE_MAX_LINK_DENSITY
        ):
            (inside if seen_root else before).append((text, node))
    # A page marks one lede; several "summary" blocks before the content are teasers of
    # other articles.
    if len(before) == 1:
        return before[0]
    if inside:
        return inside[0]
    return None, None


_LIST_ITEM_TAGS = frozenset({"li", "dd", "dt"})
_NOT_LEDE_TAGS = frozenset({"img", "figure", "picture", "a", "ul", "ol", "li", "h1"})


# --- emission --------------------------------------------------------------------------------


# Inline elements emitted without a look at their class: a byline or a date inside
# running text is a <span> or <time>, the others are words of the sentence.
_UNCHECKED_INLINE = rules.INLINE_TAGS - {"span", "time"}
# Stands for a <br> in the text buffer (source newlines are only whitespace).
_BR = "\ue000"


class _Emitter:
    """Turns content nodes into blocks in document order, with in-content cleaning."""

    def __init__(self, dropped: list[Dropped], clock: _TimeBound, scores: dict[int, float]) -> None:
        self.blocks: list[Block] = []
        self.bylines: list[str] = []
        self.dropped = dropped
        self.clock = clock
        self.scores = scores
        self.buffer: list[str] = []
        self.visited = 0
        self.truncated = False

    def flush(self, kind: BlockKind, level: int) -> None:
        """Turn the buffered text into a block: whitespace collapsed, <br> kept as a line break."""
        if not self.buffer:
            return
        raw = "".join(self.buffer)
        self.buffer.clear()
        if kind == "pre":
            text = raw.replace(_BR, "\n").strip("\n").rstrip()
        elif _BR in raw:
            lines = (" ".join(line.split()) for line in raw.split(_BR))
            text = "\n".join(line for line in lines if line)
        else:
            text = " ".join(raw.split())
        if text:
            self.blocks.append(Block(kind, text, level if kind == "heading" else 0))

    def drop(self, node: LexborNode, reason: str, text: str | None = None) -> None:
        shown = node.text(separator=" ") if text is None else text  # spaced: words of adjacent tags stay apart
        self.dropped.append(Dropped(_path(node), reason, _snippet(shown)))

    def skip_reason(self, node: LexborNode, tag: str) -> str | None:
        """Why an element inside the content is not emitted, or None to emit it."""
        if tag == "h1":
            return "title"
        if tag == "header":
            return "header"
        flags = _info(node)[1]
        if flags & (_BYLINE | _DATE):
            text = " ".join(node.text().split())
            if len(text) <= rules.BYLINE_MAX_CHARS:
                if flags & _BYLINE:
                    if text:
                        self.bylines.append(text)
                    return "byline"
                return "date"
        if tag == "time":
            return "date"
        if tag in rules.LINK_CHECK_TAGS:
            text = node.text()
            if len(text) <= rules.LINK_DENSITY_MAX_CHARS and node.mem_id not in self.scores:
                density = _link_density(node)
                if density > rules.MAX_LINK_DENSITY:
                    return f"link-density {density:.2f}"
        return None

    def emit(self, start: LexborNode, skip_ids: set[int]) -> None:
        # Stack items: a node to enter, or a (kind, level) context to close.
        stack: list[LexborNode | tuple[BlockKind, int]] = [start]
        context: list[tuple[BlockKind, int]] = [("paragraph", 0)]
        while stack:
            item = stack.pop()
            if isinstance(item, tuple):
                self.flush(*context[-1])
                context.pop()
                continue
            self.visited += 1
            if not self.visited & 255 and (self.visited > rules.MAX_EMITTED_NODES or self.clock.expired()):
                self.truncated = True
                return
            text = item.text_content  # None unless a text node
            if text is not None:
                self.buffer.append(text)
                continue
            tag = item.tag or "-"
            if tag[0] == "-":  # comment, doctype
                continue
            if tag == "br":
                self.buffer.append(_BR)
                continue
            if skip_ids and item.mem_id in skip_ids:
                continue
            if item is not start and tag not in _UNCHECKED_INLINE:
                reason = self.skip_reason(item, tag)
                if reason is not None:
                    if reason != "byline":
                        self.drop(item, reason)
                    else:
                        self.drop(item, reason, self.bylines[-1] if self.bylines else "")
                    continue
            if tag in rules.BLOCK_TAGS:
                self.flush(*context[-1])
                kind, level = context[-1]
                if tag in rules.HEADING_TAGS:
                    kind, level = "heading", int(tag[1])
                elif tag in _LIST_ITEM_TAGS:
                    kind, level = ("list_item", 0) if kind == "paragraph" else (kind, level)
                elif tag == "blockquote":
                    kind, level = "quote", 0
                elif tag == "pre":
                    kind, level = "pre", 0
                context.append((kind, level))
                stack.append((kind, level))
            stack.extend(reversed(list(item.iter(include_text=True))))
        self.flush(*context[-1])


# --- public API --------------------------------------------------------------------------------


def extract(
    tree: LexborHTMLParser,
    *,
    body_selector: str | None = None,
    remove_selectors: Sequence[str] = (),
    budget: Budget | None = None,
) -> Extraction:
    """Extract the main text of a parsed page (the tree is modified); never raises on bad HTML."""
    clock = _TimeBound(budget)
    dropped: list[Dropped] = []
    body = tree.body or tree.root
    if body is None:
        return Extraction((), None, (), (), "", "generic", False)
    _remove_junk(body, dropped, clock)
    for selector in remove_selectors:
        try:
            matches = [(n, f"profile: {selector}") for n in body.css(selector) if n.mem_id != body.mem_id]
        except Exception:  # a bad selector in a profile must not crash extraction
            dropped.append(Dropped("", f"profile: invalid selector {selector!r}", ""))
            continue
        _remove(matches, dropped, clock)

    profile_nodes: list[LexborNode] = []
    if body_selector:
        try:
            found = body.css(body_selector)
        except Exception:  # as above: fall back to the generic path
            found = []
        ids = {n.mem_id for n in found}
        profile_nodes = [n for n in found if not _is_inside(n, ids)]

    scores: dict[int, float] = {}
    # A block holding this much of the page's text is a wrapper, whatever its class.
    wrapper_chars = rules.WRAPPER_TEXT_SHARE * len(body.text())
    excluded = _Boilerplate(body, wrapper_chars)
    if profile_nodes:
        path: Literal["profile", "generic"] = "profile"
        for node in profile_nodes:
            _clean(node, dropped, clock, 0)
        best = profile_nodes[0]
        content = profile_nodes
    else:
        path = "generic"
        best, content, scores = _choose(body, clock, excluded)
        for node in content:
            _clean(node, dropped, clock, wrapper_chars)

    lede, lede_node = _find_lede(best, clock, excluded)
    emitter = _Emitter(dropped, clock, scores)
    # The lede is reported once, in `lede`, never again as a block.
    skip = {lede_node.mem_id} if lede_node is not None else set()
    for node in content:
        emitter.emit(node, skip)
        if emitter.truncated:
            break
    blocks = emitter.blocks
    bylines = emitter.bylines
    # A short "By ..." line opening or closing the text is a byline even without a class.
    for index in (0, -1):
        if (
            blocks
            and len(blocks[index].text) <= rules.BYLINE_TEXT_MAX_CHARS
            and rules.BYLINE_TEXT_RE.match(blocks[index].text)
        ):
            bylines.append(blocks[index].text)
            dropped.append(Dropped(_path(best), "byline-text", _snippet(blocks[index].text)))
            del blocks[index]
    return Extraction(
        blocks=tuple(blocks),
        lede=lede,
        bylines=tuple(dict.fromkeys(bylines)),
        dropped=tuple(dropped),
        root=_path(best),
        path=path,
        truncated=emitter.truncated or clock.hit,
    )


def extract_text(html: str) -> str:
    """Main text of an HTML page as a string (lede first, blocks separated by blank lines)."""
    return extract(parse_html(html)).text()
