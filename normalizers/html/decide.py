"""From the model's probabilities to the article: which blocks to keep, and how sure to be.

`choose()` keeps the blocks the page's evidence puts in the article: a probability of
at least one half, or, on a page where nothing reaches it (a short article behind a
paywall, a page unlike the ones the model learned from), at least half the page's
highest probability. `PAGE_FEATURES` describe the outcome for the confidence model,
which estimates the F1 the extraction would score against a human's.
"""

from __future__ import annotations

import math

import numpy as np

from normalizers.html.model import Forest
from normalizers.html.segment import Page, subtree_sums

__all__ = [
    "PAGE_FEATURES",
    "choose",
    "page_confidence",
    "page_features",
    "prose_words",
    "threshold",
]

# A block is kept at this probability...
KEEP = 0.5
# ... or, when no block reaches it, at this share of the page's highest probability,
# ...
RELATIVE_KEEP = 0.5
# ... as long as that highest probability is at least this: below it, the page has no
# article the model can see (a list, a form, an error page), and nothing is kept.
FLOOR = 0.05

PAGE_FEATURES = (
    "kept_log_chars", "kept_blocks", "kept_share", "kept_mean_p", "left_long_mean_p", "max_p",
    "kept_sure_share", "page_log_chars", "page_long_blocks", "kept_link_share", "kept_runs",
    "kept_long_share", "kept_prose_share", "kept_words_per_block", "mass_share_top", "mass_share_second",
)  # fmt: skip


def threshold(p: np.ndarray) -> float:
    """The probability a block needs to be kept on this page (above 1 when the page has no article)."""
    top = float(p.max()) if len(p) else 0.0
    return min(KEEP, RELATIVE_KEEP * top) if top >= FLOOR else 2.0


def choose(p: np.ndarray) -> np.ndarray:
    """Which blocks the article keeps (a boolean per block), from their probabilities."""
    kept: np.ndarray = p >= threshold(p)
    return kept


_KEPT_LINK_SHARE = PAGE_FEATURES.index("kept_link_share")
# Fewer kept words of prose than this are too few to tell an article from a label, a
# caption or a copyright line.
SURE_WORDS = 25


def page_confidence(model: Forest, features: np.ndarray, words: int) -> float:
    """The expected F1 of an extraction (0..1) from its `PAGE_FEATURES` and `prose_words`.

    Never more than the share of the kept text that is not link text (an article's text
    is not a list of links), nor than the square of its words of prose over `SURE_WORDS` (a
    label, a button or a copyright line among links is not an article, however often a page
    repeats it): pages of either kind are rarer in the training pages than on the web, so the
    model alone is unsure of them.
    """
    expected = float(np.clip(model.predict(features[None, :])[0], 0.0, 1.0))
    return min(expected, 1.0 - float(features[_KEPT_LINK_SHARE]), (words / SURE_WORDS) ** 2)


def prose_words(page: Page, kept: np.ndarray) -> int:
    """Words in the kept blocks that are mostly not link text, each distinct block text counted once."""
    texts, links = page.texts, page.links
    prose = {texts[j] for j in np.flatnonzero(kept).tolist() if 2 * links[j] < len(texts[j])}
    return sum(t.count(" ") + 1 for t in prose)


def page_features(page: Page, p: np.ndarray, kept: np.ndarray) -> np.ndarray:
    """The `PAGE_FEATURES` of one extraction (a row)."""
    lengths = np.array([len(t) for t in page.texts], dtype=np.float64)
    links = np.array(page.links, dtype=np.float64)
    out = np.zeros(len(PAGE_FEATURES), dtype=np.float32)
    total = float(lengths.sum())
    if not len(lengths):
        return out
    kept_chars = float(lengths[kept].sum())
    long = lengths >= 80
    left = long & ~kept
    out[0] = math.log1p(kept_chars)
    out[1] = float(kept.sum())
    out[2] = kept_chars / max(total, 1.0)
    out[3] = float((p[kept] * lengths[kept]).sum() / kept_chars) if kept_chars else 0.0
    out[4] = float(p[left].mean()) if left.any() else 0.0
    out[5] = float(p.max())
    out[6] = float(lengths[kept & (p >= 0.9)].sum() / kept_chars) if kept_chars else 0.0
    out[7] = math.log1p(total)
    out[8] = float(long.sum())
    out[9] = float(links[kept].sum() / kept_chars) if kept_chars else 0.0
    out[10] = float(np.count_nonzero(np.diff(kept.astype(np.int8)) == 1) + int(kept[0]))
    long_chars = float(lengths[long].sum())
    out[11] = float(lengths[kept & long].sum()) / long_chars if long_chars else 0.0
    prose = np.array([t[-1] in ".!?\"'”’»)" for t in page.texts], dtype=bool)
    out[12] = float(lengths[kept & prose].sum()) / kept_chars if kept_chars else 0.0
    texts = page.texts
    kept_words = sum(texts[j].count(" ") + 1 for j in np.flatnonzero(kept).tolist())
    out[13] = float(kept_words) / max(1.0, float(kept.sum()))
    # How the expected article text spreads over containers: one container holding it
    # all is a clear page; two of equal weight (a listing, a second article) are not.
    shares = _container_shares(page, p * lengths)
    out[14] = shares[0] if shares else 0.0
    out[15] = shares[1] if len(shares) > 1 else 0.0
    return out


def _container_shares(page: Page, mass: np.ndarray) -> list[float]:
    """Shares of `mass` held by the page's top-level containers of it, largest first.

    The containers are the children of the lowest element holding more than half of
    the mass (the page's "article area"), so two sibling articles show as two shares.
    """
    held = subtree_sums(page, mass)
    parents = page.parents
    total = held[0]
    if total <= 0:
        return []
    # Walk down from the body while one child holds most of the mass.
    parent_of = np.array(parents, dtype=np.intp)
    node = 0
    while True:
        kids = np.flatnonzero(parent_of == node).tolist()
        heavy = [k for k in kids if held[k] > 0.5 * held[node]]
        if not heavy:
            break
        node = heavy[0]
    shares = sorted((held[k] / total for k in kids), reverse=True)
    return shares or [held[node] / total]
