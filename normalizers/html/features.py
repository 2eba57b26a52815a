"""What the extractor's model sees of each block: numbers from its text, its elements and the page.

`block_features()` gives one row per block of a `segment.Page`, `context_features()`
adds what the first model said about the block's neighbours and containers (the
second model reads both). The columns are named in `BLOCK_FEATURES` and
`CONTEXT_FEATURES`; `scripts/train_extractor.py` fits the models on exactly these.

Nothing here names a site: the words a page calls its elements by ("entry-content",
"sidebar", "share") count through a table of log-odds learned from the development
pages (`Tables.names`), and so do the words of short blocks ("Subscribe", "Share");
only words seen on many different sites are in the tables (see the training script).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from itertools import chain, repeat

import numpy as np

from normalizers.html.segment import Page

__all__ = [
    "BLOCK_FEATURES",
    "CONTEXT_FEATURES",
    "Tables",
    "block_features",
    "context_features",
    "name_words",
    "short_words",
]


@dataclass(frozen=True, slots=True)
class Tables:
    """Learned log-odds (content vs boilerplate) of element-name words and of short blocks' words."""

    names: dict[str, float]
    words: dict[str, float]
    # (sum, min, max) of the log-odds of a class/id string's words, per string: a site's
    # pages repeat their class names, and scoring one costs more than looking it up.
    scored: dict[str, tuple[float, float, float]] = field(default_factory=dict, compare=False, repr=False)

    def score(self, names: str) -> tuple[float, float, float]:
        """(sum, min, max) of the log-odds of an element's name words ((0, 0, 0) when it has none)."""
        found = self.scored.get(names)
        if found is None:
            values = list(map(self.names.get, name_words(names), repeat(0.0)))
            found = (sum(values), min(values), max(values)) if values else (0.0, 0.0, 0.0)
            if len(self.scored) >= _NAME_CACHE_SIZE:
                self.scored.clear()
            self.scored[names] = found
        return found


# Where a camelCase name starts a word: an insertion point, so the substitution runs
# without expanding a group template per match.
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_NAME_WORD = re.compile(r"[a-z0-9]+")
_WORD = re.compile(r"\w+")
_NAME_CACHE: dict[str, tuple[str, ...]] = {}
_NAME_CACHE_SIZE = 50_000
# A block of at most this many words is read word by word (labels, buttons, prompts);
# a longer one is prose, whose words say little about what kind of block it is.
SHORT_BLOCK_WORDS = 15


def name_words(names: str) -> tuple[str, ...]:
    """The words of an element's class/id/itemprop/role values: `articleBody main-text` -> article, body, main, text."""
    found = _NAME_CACHE.get(names)
    if found is None:
        lowered = names.lower()
        if lowered != names:  # only a name with a capital can have camelCase words
            lowered = _CAMEL.sub(" ", names).lower()
        found = tuple(dict.fromkeys(_NAME_WORD.findall(lowered)))
        if len(_NAME_CACHE) >= _NAME_CACHE_SIZE:
            _NAME_CACHE.clear()
        _NAME_CACHE[names] = found
    return found


def short_words(text: str) -> list[str]:
    """The lower-cased words of a short block (none for a longer one)."""
    if text.count(" ") >= SHORT_BLOCK_WORDS:
        return []
    words = _WORD.findall(text.lower())
    return words if len(words) <= SHORT_BLOCK_WORDS else []


# Tags whose presence among a block's element and its ancestors is a feature each.
FLAG_TAGS = (
    "li", "nav", "header", "footer", "aside", "form", "article", "main", "table", "figure", "blockquote",
    "h1", "h2", "h3", "ul", "ol", "section", "figcaption", "dl",
)  # fmt: skip
_FLAG_BIT = {tag: 1 << i for i, tag in enumerate(FLAG_TAGS)}
# The block's own element's tag, one feature each.
OWN_TAGS = (
    "p", "div", "li", "h1", "h2", "h3", "h4", "h5", "h6", "td", "th", "blockquote", "pre", "dd", "dt",
    "figcaption", "section", "article", "header", "footer", "span",
)  # fmt: skip
_OWN_INDEX = {tag: i for i, tag in enumerate(OWN_TAGS)}
_HEADING_LEVEL = {f"h{level}": level for level in range(1, 7)}
# Tags of the containers above a block, as codes (one feature per level): the same
# words group together (text-ish, list-ish, layout, landmarks), so a tree splits them
# with few questions.
_TAG_CODE = {
    tag: i
    for i, tag in enumerate(
        (
            "p", "span", "li", "dd", "dt", "td", "th", "tr", "blockquote", "pre", "h1", "h2", "h3", "h4", "h5",
            "h6", "ul", "ol", "dl", "table", "tbody", "div", "section", "article", "main", "body", "header",
            "footer", "nav", "aside", "form", "figure", "figcaption", "center", "details", "summary",
        )
    )
}  # fmt: skip
_SENTENCE_END = frozenset(".!?\"'”’»)")
_DIGIT_BYTES = b"0123456789"
_UPPER_BYTES = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_BYLINE = re.compile(r"^(?:by|von|par|por|di|door|av|af|przez|от)\s", re.IGNORECASE)
_DATEISH = re.compile(
    r"\b(?:19|20)\d\d\b|\b\d{1,2}[:.]\d\d\b|\b(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.? \d",
    re.IGNORECASE,
)
_CREDIT = re.compile(r"^(?:photo|image|picture|credit|source|foto|bild|getty|ap photo|reuters)\b", re.IGNORECASE)
# A block of at least this many characters, mostly not link text, is "long": prose.
LONG_CHARS = 80
LONG_MAX_LINK_SHARE = 0.3
ANCESTOR_LEVELS = 4

BLOCK_FEATURES: tuple[str, ...] = (
    "log_chars", "words", "link_share", "sentence_marks_per_word", "commas_per_word", "ends_sentence",
    "starts_upper", "digit_share", "upper_share", "heading_level",
    *(f"own_{tag}" for tag in OWN_TAGS),
    *(f"in_{tag}" for tag in FLAG_TAGS),
    "depth", "position", "text_before_share",
    "own_name_sum", "own_name_min", "own_name_max", "path_name_sum", "path_name_min", "path_name_max",
    *(
        f"up{level}_{what}"
        for level in range(ANCESTOR_LEVELS)
        for what in ("text_share", "link_share", "log_blocks", "long_share", "name_sum", "tag")
    ),
    "best_long_density", "prev_log_chars", "next_log_chars", "prev_link_share", "next_link_share",
    "page_log_chars", "page_long_share", "in_best_container", "best_long_share", "best_text_share",
    "after_h1", "before_h1", "depth_below_best", "hidden", "repeats", "word_mean", "word_min", "word_max",
    "short_word_share", "title_overlap", "byline_like", "date_like", "copyright_like", "ends_colon",
    "has_url", "credit_like",
)  # fmt: skip
CONTEXT_FEATURES: tuple[str, ...] = (
    "p", "p_prev1", "p_prev2", "p_prev3", "p_next1", "p_next2", "p_next3", "p_up1", "p_up2", "p_up3",
    "p_max_before", "p_max_after", "p_mass_before", "p_window", "ctx_log_chars", "p_page_mean",
    "in_best_run", "run_distance", "in_run_container", "run_gain", "run_block_share", "run_text_share",
)  # fmt: skip


_NO_SHORT = (0.0,) * 5
_NO_FORMS = (False,) * 6


def block_features(page: Page, tables: Tables) -> np.ndarray:
    """One row of `BLOCK_FEATURES` per block of the page (float32).

    Built column by column with array operations: a per-block loop setting ~100 cells
    cost ~4 ms on a typical page, most of the extraction's budget.
    """
    texts, owners_list, tags, parents = page.texts, page.owners, page.tags, page.parents
    n_blocks, n_elements = len(texts), len(tags)
    out = np.zeros((n_blocks, len(BLOCK_FEATURES)), dtype=np.float32)
    if not n_blocks:
        return out
    owners = np.array(owners_list, dtype=np.intp)
    lengths_list = [len(t) for t in texts]
    lengths = np.array(lengths_list, dtype=np.float64)
    link = np.array(page.links, dtype=np.float64)
    long_text = np.where((lengths >= LONG_CHARS) & (link < LONG_MAX_LINK_SHARE * lengths), lengths, 0.0)
    # Subtree totals, bottom-up (a parent's index is smaller than its children's).
    st = np.bincount(owners, weights=lengths, minlength=n_elements).tolist()
    sl = np.bincount(owners, weights=link, minlength=n_elements).tolist()
    sb = np.bincount(owners, minlength=n_elements).astype(np.float64).tolist()
    sg = np.bincount(owners, weights=long_text, minlength=n_elements).tolist()
    for i in range(n_elements - 1, 0, -1):
        if st[i]:
            p = parents[i]
            st[p] += st[i]
            sl[p] += sl[i]
            sb[p] += sb[i]
            sg[p] += sg[i]
    sub_text, sub_link, sub_blocks, sub_long = (np.array(x) for x in (st, sl, sb, sg))
    total = max(1.0, st[0])
    total_long = max(1.0, sg[0])
    # Elements holding text, top-down; the others hold no block and matter to none. One
    # tuple per element (rather than a list per column) keeps the loop to one read of
    # the parent's state and one write.
    names, score, page_hidden, flag_bit = page.names, tables.score, page.hidden, _FLAG_BIT.get
    half_long = 0.5 * total_long
    no_name = (0.0, 0.0, 0.0)
    own: list[tuple[float, float, float]] = [no_name] * n_elements
    # Per element: path name sum, min and max, depth, tag flags, hidden, densest container above.
    path: list[tuple[float, float, float, int, int, bool, float]] = [(0.0, 0.0, 0.0, 0, 0, False, 0.0)] * n_elements
    name = names[0]
    o_sum, o_min, o_max = own[0] = score(name) if name else no_name
    value = sg[0] / st[0] if sg[0] > half_long else 0.0
    path[0] = (o_sum, o_min, o_max, 0, flag_bit(tags[0], 0), page_hidden[0], value)
    for i in range(1, n_elements):
        if not st[i]:
            continue
        name = names[i]
        o_sum, o_min, o_max = own[i] = score(name) if name else no_name
        value = sg[i] / st[i] if sg[i] > half_long else 0.0
        p_sum, p_min, p_max, p_depth, p_flags, p_hidden, p_dense = path[parents[i]]
        path[i] = (
            p_sum + o_sum,
            o_min if o_min < p_min else p_min,
            o_max if o_max > p_max else p_max,
            p_depth + 1,
            p_flags | flag_bit(tags[i], 0),
            p_hidden or page_hidden[i],
            value if value > p_dense else p_dense,
        )
    # Flattened first: NumPy reads a flat iterator several times faster than a list of tuples.
    own_np = np.fromiter(chain.from_iterable(own), np.float64, 3 * n_elements).reshape(n_elements, 3)
    path_np = np.fromiter(chain.from_iterable(path), np.float64, 7 * n_elements).reshape(n_elements, 7)
    # The container holding most prose, lightly favouring what the page calls content
    # (a readability-style guess the model may follow or not).
    own_sum_np = own_np[:, 0]
    score_np = sub_long * (1 - sub_link / np.maximum(1.0, sub_text)) * (1 + 0.1 * own_sum_np)
    score_np -= 0.05 * (sub_text - sub_long)
    score_np[sub_long == 0] = -np.inf
    best = int(np.argmax(score_np)) if sub_long.any() else 0
    # Its subtree is best..best_last (document order: the elements after it up to the
    # first one hanging above it).
    best_last = best
    while best_last + 1 < n_elements and parents[best_last + 1] >= best:
        best_last += 1

    # Columns from the text.
    words_list = [t.count(" ") + 1 for t in texts]
    words = np.array(words_list, dtype=np.float64)
    # ASCII digits and capitals of each block's start, counted on its UTF-8 bytes (a C-speed
    # deletion; other characters are multi-byte there and never match).
    heads = [t[:200] for t in texts]
    head_bytes = [h.encode("utf-8", "surrogatepass") for h in heads]
    digits = [len(b) - len(b.translate(None, _DIGIT_BYTES)) for b in head_bytes]
    k = 0
    out[:, 0] = np.log1p(lengths)
    out[:, 1] = words
    out[:, 2] = link / lengths
    out[:, 3] = np.array([t.count(".") + t.count("!") + t.count("?") for t in texts]) / words
    out[:, 4] = np.array([t.count(",") for t in texts]) / words
    out[:, 5] = [t[-1] in _SENTENCE_END for t in texts]
    out[:, 6] = [t[0].isupper() for t in texts]
    head_lengths = np.array([len(h) for h in heads], dtype=np.float64)
    out[:, 7] = np.array(digits) / head_lengths
    out[:, 8] = np.array([len(b) - len(b.translate(None, _UPPER_BYTES)) for b in head_bytes]) / head_lengths
    out[:, 9] = [_HEADING_LEVEL.get(tags[e], 0) for e in owners_list]
    k = 10
    own_index = np.array([_OWN_INDEX.get(tags[e], -1) for e in owners_list], dtype=np.intp)
    has_own = own_index >= 0
    out[np.flatnonzero(has_own), k + own_index[has_own]] = 1.0
    k += len(OWN_TAGS)
    block_own, block_path = own_np[owners], path_np[owners]
    bits = block_path[:, 4].astype(np.int64)
    out[:, k : k + len(FLAG_TAGS)] = (bits[:, None] >> np.arange(len(FLAG_TAGS))) & 1
    k += len(FLAG_TAGS)
    block_depth = block_path[:, 3]
    out[:, k] = block_depth
    out[:, k + 1] = np.arange(n_blocks) / n_blocks
    out[:, k + 2] = (np.cumsum(lengths) - lengths) / total
    out[:, k + 3 : k + 6] = block_own
    out[:, k + 6 : k + 9] = block_path[:, :3]
    k += 9
    # Containers above the block, level by level; a missing level is all -1 (row n_elements).
    element_rows = np.full((n_elements + 1, 6), -1.0)
    element_rows[:n_elements, 0] = sub_text / total
    element_rows[:n_elements, 1] = sub_link / np.maximum(1.0, sub_text)
    element_rows[:n_elements, 2] = np.log1p(sub_blocks)
    element_rows[:n_elements, 3] = sub_long / total_long
    element_rows[:n_elements, 4] = own_sum_np
    element_rows[:n_elements, 5] = [_TAG_CODE.get(t, len(_TAG_CODE)) for t in tags]
    up = np.array([p if p >= 0 else n_elements for p in parents] + [n_elements], dtype=np.intp)
    level = owners
    for _level in range(ANCESTOR_LEVELS):
        out[:, k : k + 6] = element_rows[level]
        level = up[level]
        k += 6
    out[:, k] = block_path[:, 6]
    log_lengths = np.log1p(lengths)
    share = link / lengths
    out[:, k + 1] = np.concatenate(([-1.0], log_lengths[:-1]))
    out[:, k + 2] = np.concatenate((log_lengths[1:], [-1.0]))
    out[:, k + 3] = np.concatenate(([-1.0], share[:-1]))
    out[:, k + 4] = np.concatenate((share[1:], [-1.0]))
    out[:, k + 5] = np.log1p(total)
    out[:, k + 6] = sub_long[0] / total
    out[:, k + 7] = (owners >= best) & (owners <= best_last)
    out[:, k + 8] = sub_long[best] / total_long
    out[:, k + 9] = sub_text[best] / total
    h1 = next((j for j in range(n_blocks) if tags[owners_list[j]] == "h1"), -1)
    positions = np.arange(n_blocks)
    out[:, k + 10] = (positions - h1) / n_blocks if h1 >= 0 else -2.0
    out[:, k + 11] = positions < h1
    out[:, k + 12] = block_depth - path_np[best, 3]
    out[:, k + 13] = block_path[:, 5]
    repeats = Counter(texts)
    out[:, k + 14] = [repeats[t] for t in texts]
    k += 15
    # Short blocks: their words' learned log-odds and their overlap with the title; text
    # forms of short blocks: bylines, dates, copyright lines, list intros, links, credits.
    # Both depend on the text alone, so a text repeated on the page (menus, share
    # buttons) is read once.
    title_words = set(_WORD.findall(page.title.lower()))
    n_title = len(title_words)
    words_get = tables.words.get
    no_score = repeat(0.0)
    text_rows: dict[str, int] = {}
    rows: list[tuple[float, ...]] = []
    row_of: list[int] = []
    for text, n_words, length, n_digits in zip(texts, words_list, lengths_list, digits, strict=True):
        found = text_rows.get(text)
        if found is None:
            short = short_words(text) if n_words <= SHORT_BLOCK_WORDS else None
            if short:
                scores = list(map(words_get, short, no_score))
                size = len(short)
                unique = set(short)
                common = len(title_words & unique)
                row: tuple[float, ...] = (
                    sum(scores) / size,
                    min(scores),
                    max(scores),
                    len([w for w in short if len(w) <= 3]) / size,
                    common / max(1, n_title + len(unique) - common),
                )
            else:
                row = _NO_SHORT
            if length < 400:
                row += (
                    _BYLINE.match(text) is not None,
                    bool(n_digits) and _DATEISH.search(text[:80]) is not None,  # every date form has a digit
                    "©" in text or "ll rights reserved" in text,
                    text.endswith(":"),
                    "http" in text or "www." in text,
                    _CREDIT.match(text) is not None,
                )
            else:
                row += _NO_FORMS
            found = text_rows[text] = len(rows)
            rows.append(row)
        row_of.append(found)
    if rows:
        table = np.fromiter(chain.from_iterable(rows), np.float64, 11 * len(rows)).reshape(len(rows), 11)
        out[:, k : k + 11] = table[row_of]
    return out


def context_features(page: Page, p: np.ndarray) -> np.ndarray:
    """One row of `CONTEXT_FEATURES` per block, from the first model's probabilities `p`."""
    n = len(page.texts)
    out = np.zeros((n, len(CONTEXT_FEATURES)), dtype=np.float32)
    if not n:
        return out
    lengths = np.array([len(t) for t in page.texts], dtype=np.float32)
    out[:, 0] = p
    for k, off in enumerate((1, 2, 3)):
        out[:, 1 + k] = -1.0
        out[:, 4 + k] = -1.0
        if off < n:
            out[off:, 1 + k] = p[:-off]
            out[:-off, 4 + k] = p[off:]
    parents, owners = page.parents, page.owners
    weighted = p * lengths
    # Each level's container of every block at once (the body is its own container).
    up = np.array(parents, dtype=np.intp)
    up[0] = 0
    owners_np = np.array(owners, dtype=np.intp)
    keys = owners_np
    for level in range(3):
        keys = up[keys]
        sums = np.bincount(keys, weights=weighted, minlength=len(page.tags))
        sizes = np.bincount(keys, weights=lengths, minlength=len(page.tags))
        out[:, 7 + level] = sums[keys] / np.maximum(sizes[keys], 1.0)
    out[:, 10] = np.maximum.accumulate(p)
    out[:, 11] = np.maximum.accumulate(p[::-1])[::-1]
    cum = np.cumsum(weighted)
    out[:, 12] = cum / max(float(cum[-1]), 1.0)
    window = np.ones(5, dtype=np.float32)
    out[:, 13] = np.convolve(weighted, window, "full")[2 : 2 + n] / np.maximum(
        np.convolve(lengths, window, "full")[2 : 2 + n], 1.0
    )
    out[:, 14] = np.log1p(lengths)
    out[:, 15] = float(p.mean())
    # The run of blocks with the most evidence of being the article (Kadane over
    # length-weighted evidence), and what lies inside its lowest common container.
    gain = (p - 0.5) * np.minimum(lengths, 400.0)
    best, current, start, first, last = -1e18, 0.0, 0, 0, 0
    for j, g in enumerate(gain.tolist()):
        if current <= 0:
            current, start = g, j
        else:
            current += g
        if current > best:
            best, first, last = current, start, j
    out[first : last + 1, 16] = 1.0
    distance = np.zeros(n, dtype=np.float32)
    distance[:first] = np.arange(first, 0, -1)
    distance[last + 1 :] = np.arange(1, n - last)
    out[:, 17] = np.minimum(distance, 50) / 50
    sure = (np.flatnonzero(p[first : last + 1] >= 0.5) + first).tolist()
    container = _common_container(page, sure or [first])
    end = container
    for i in range(container + 1, len(page.tags)):
        if parents[i] < container:
            break
        end = i
    out[:, 18] = (owners_np >= container) & (owners_np <= end)
    out[:, 19] = best / max(1.0, float(np.minimum(lengths, 400.0).sum()))
    out[:, 20] = (last - first + 1) / n
    out[:, 21] = float(lengths[first : last + 1].sum()) / max(1.0, float(lengths.sum()))
    return out


def _common_container(page: Page, blocks: list[int]) -> int:
    """The lowest element holding all the given blocks."""
    parents = page.parents

    def chain(e: int) -> list[int]:
        out = []
        while e >= 0:
            out.append(e)
            e = parents[e]
        return out[::-1]

    common = chain(page.owners[blocks[0]])
    for j in blocks[1:]:
        other = chain(page.owners[j])
        size = 0
        for a, b in zip(common, other, strict=False):
            if a != b:
                break
            size += 1
        common = common[:size]
    return common[-1] if common else 0
