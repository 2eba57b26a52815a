"""A parsed page as text blocks in document order, each with the elements around it.

`segment()` cuts the `<body>`'s text into *blocks* at every block-level element
(paragraphs, headings, list items, cells, `div`s...), the way a reader sees the page's
pieces. Each block records its text, how much of it is link text, and the block-level
element that holds it (its *owner*); elements record their tag, parent and the words
the page calls them by (class, id, itemprop, role). The extractor's features and model
work on this table.

Speed matters (a page has a few milliseconds in all): the tree is read in one pass of
Lexbor's own traversal, and what is learned of an inline element (its block, whether
it is inside a link) is remembered for its siblings and children.

Never-text elements (scripts, styles, media, form controls) are removed first. Hidden
block elements are kept and marked, because some pages hide article text in the markup
(tabs, "read more") while menus and modals hide boilerplate: the model decides.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
from selectolax.lexbor import LexborHTMLParser, LexborNode

from normalizers.bounds import Budget
from normalizers.html import rules

__all__ = ["BLOCK_TAGS", "Page", "segment", "subtree_sums"]

# Elements that start a new block of text; everything else is a word inside a line.
BLOCK_TAGS = (
    "address", "article", "aside", "blockquote", "center", "dd", "details", "dialog", "dir", "div", "dl", "dt",
    "fieldset", "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header",
    "hgroup", "hr", "legend", "li", "main", "menu", "nav", "ol", "p", "pre", "section", "summary", "table",
    "tbody", "td", "tfoot", "th", "thead", "tr", "ul", "caption", "noframes", "option", "optgroup",
)  # fmt: skip
_BLOCKS = frozenset(BLOCK_TAGS)
_JUNK_SELECTOR = ", ".join(rules.JUNK_TAGS)
_HIDDEN_STYLE = re.compile(r"display\s*:\s*none|visibility\s*:\s*hidden", re.IGNORECASE)


@dataclass(slots=True)
class Page:
    """A page's block-level elements and text blocks, as parallel lists.

    Element 0 is `<body>`; an element's parent always has a smaller index (document
    order), so one pass over the indexes visits parents before children.
    """

    tags: list[str] = field(default_factory=list)
    parents: list[int] = field(default_factory=list)
    names: list[str] = field(default_factory=list)  # class, id, itemprop and role values, space-joined
    hidden: list[bool] = field(default_factory=list)
    nodes: list[LexborNode] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)  # per block, whitespace-folded (a <pre> keeps its lines)
    links: list[int] = field(default_factory=list)  # characters of the block inside <a>
    owners: list[int] = field(default_factory=list)  # the element holding the block
    title: str = ""  # the page's <title>, og:title and twitter:title, space-joined
    truncated: bool = False  # cut short at its work or time bound


def _names(attrs: dict[str, str | None]) -> str:
    """The words a page gives an element (class, id, itemprop, role): what its authors call it."""
    name = attrs.get("class") or ""
    for key in ("id", "itemprop", "role"):
        value = attrs.get(key)
        if value:
            name += f" {key}-{value}" if key != "id" else f" {value}"
    return name


def _is_hidden(attrs: dict[str, str | None]) -> bool:
    if "hidden" in attrs or attrs.get("aria-hidden") == "true":
        return True
    style = attrs.get("style")
    return style is not None and _HIDDEN_STYLE.search(style) is not None


def _title(tree: LexborHTMLParser) -> str:
    titles = []
    node = tree.css_first("title")
    if node is not None:
        titles.append(node.text())
    for meta in tree.css('meta[property="og:title"], meta[name="twitter:title"]'):
        content = meta.attributes.get("content")
        if content:
            titles.append(content)
    return " ".join(" ".join(titles).split())


def _fold(raw: str, pre: bool) -> str:
    if pre:  # code and verse keep their lines
        return "\n".join(line.rstrip() for line in raw.split("\n")).strip("\n")
    return " ".join(raw.split())


def segment(tree: LexborHTMLParser, budget: Budget | None = None) -> Page:
    """The page's blocks and block-level elements (the tree loses its never-text elements).

    One pass over the tree in document order (Lexbor's own traversal): a block-level
    element is registered under its nearest registered ancestor, and a text node joins
    the block being built while it belongs to the same element; entering a block-level
    element or meeting text of another element starts a new block.
    """
    page = Page(title=_title(tree))
    body = tree.body or tree.root
    if body is None:
        return page
    for node in reversed(body.css(_JUNK_SELECTOR)):  # children before parents
        node.decompose()
    index = {body.mem_id: 0}
    tags, parents, names, hidden, nodes = page.tags, page.parents, page.names, page.hidden, page.nodes
    texts, links, owners = page.texts, page.links, page.owners
    attrs = body.attributes
    tags.append("body")
    parents.append(-1)
    names.append(_names(attrs))
    hidden.append(False)
    nodes.append(body)
    # Inline elements seen so far: mem_id -> (owner element, inside a link).
    inline: dict[int, tuple[int, bool]] = {}
    buffer: list[str] = []
    owner = 0
    link_chars = 0

    def flush() -> None:
        nonlocal link_chars
        if buffer:
            text = _fold("".join(buffer), tags[owner] == "pre")
            buffer.clear()
            if text:
                texts.append(text)
                links.append(min(link_chars, len(text)))
                owners.append(owner)
        link_chars = 0

    count = 0
    for node in body.traverse(include_text=True):
        count += 1
        if not count & 1023 and (
            count > rules.MAX_SEGMENTED_NODES
            or len(texts) > rules.MAX_SEGMENTED_BLOCKS
            or (budget is not None and budget.expired())
        ):
            page.truncated = True
            break
        tag = node.tag
        if tag == "-text":
            text = node.text_content or ""
            if text.isspace():
                if buffer:
                    buffer.append(" ")
                continue
            parent = node.parent
            key = parent.mem_id if parent is not None else 0
            block = index.get(key)
            in_link = False
            if block is None:
                found = inline.get(key)
                if found is None:
                    found = _place(parent, index, inline)
                block, in_link = found
            if block != owner:
                flush()
                owner = block
            buffer.append(text)
            if in_link:
                link_chars += len(text.strip())
            continue
        if tag in _BLOCKS:
            flush()
            up = node.parent
            parent_index = 0
            while up is not None:
                found_index = index.get(up.mem_id)
                if found_index is not None:
                    parent_index = found_index
                    break
                up = up.parent
            owner = len(tags)
            index[node.mem_id] = owner
            attrs = node.attributes
            tags.append(tag)
            parents.append(parent_index)
            names.append(_names(attrs))
            hidden.append(_is_hidden(attrs))
            nodes.append(node)
            if len(tags) > rules.MAX_SEGMENTED_ELEMENTS:
                page.truncated = True
                break
        elif tag == "br":
            buffer.append("\n")
    flush()
    if len(texts) > rules.MAX_SEGMENTED_BLOCKS:
        page.truncated = True
        del (
            texts[rules.MAX_SEGMENTED_BLOCKS :],
            links[rules.MAX_SEGMENTED_BLOCKS :],
            owners[rules.MAX_SEGMENTED_BLOCKS :],
        )
    return page


def _place(node: LexborNode | None, index: dict[int, int], inline: dict[int, tuple[int, bool]]) -> tuple[int, bool]:
    """(owner block element, inside a link) of an inline element, remembered for its siblings and children."""
    chain: list[LexborNode] = []
    found: tuple[int, bool] = (0, False)
    current = node
    while current is not None:
        key = current.mem_id
        block = index.get(key)
        if block is not None:
            found = (block, False)
            break
        known = inline.get(key)
        if known is not None:
            found = known
            break
        chain.append(current)
        current = current.parent
    block, in_link = found
    for element in reversed(chain):
        in_link = in_link or element.tag == "a"
        inline[element.mem_id] = (block, in_link)
    return block, in_link


def subtree_sums(page: Page, weights: np.ndarray) -> list[float]:
    """Each element's total of per-block `weights` over its subtree, as Python floats."""
    # Bottom-up in reverse document order (a parent's index is smaller than its
    # children's), in Python floats to skip NumPy's per-item cost; adding a zero changes
    # nothing, so empty elements are skipped.
    held: list[float] = np.bincount(
        np.array(page.owners, dtype=np.intp), weights=weights, minlength=len(page.tags)
    ).tolist()
    parents = page.parents
    for i in range(len(held) - 1, 0, -1):
        if held[i]:
            held[parents[i]] += held[i]
    return held
