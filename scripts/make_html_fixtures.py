"""Rebuild tests/fixtures/html/ and samples/html/ from the development sets.

The pages and gold texts come from Scrapinghub's article-extraction-benchmark (MIT
licence; see samples/README.md) and from the development split of the WCXB benchmark
(Murrough Foley, CC-BY-4.0; see tests/fixtures/html/README.md). Run from the repo root:

    python scripts/make_html_fixtures.py ../shared/data/aeb ../shared/data/wcxb-dev

WCXB pages are kept as examples of kinds of page where extraction used to fail
(`failure_kinds.json`): their expectations are WCXB's own `with` / `without` snippets
and gold text, unchanged.

For each chosen page it copies the gzip HTML and writes `expected.json` with the
URL, the gold text, its two longest prose sentences (must be extracted) and
three link texts of the page that the gold text does not contain (must be dropped).
Titles (the acceptable ones), languages, publication dates and authors in
`expected.json` were checked by hand against the pages and are kept from the
previous file.
"""

from __future__ import annotations

import gzip
import json
import re
import shutil
import sys
from pathlib import Path

from selectolax.lexbor import LexborHTMLParser

# Picked for variety: CMSs, page sizes, body markup, one non-English page.
PAGES = {
    "9to5mac": "ad826691a8a2f9c4ce50cf0b885af933c4b5119c1f6235cd7df1dfb83f255bcc",
    "businessinsider": "fde930b01859de8311c6a14f8aa8c72be0659b551367803deb6736cf3526cf2e",
    "foxnews": "7dfc3e359d7c0ca48ac9046ae5759286cedf80abe7526fc6c6e6546b9ba43e33",
    "ap": "e7994d5500875202d93e736e8f0c8a0436107d10add94ce3789001b8c5c32358",
    "livescience": "bd673bd7988144f0ab7b9c5e19fed140fb5aaa30d8894cb045b72d3b79a7dc54",
    "slashgear": "06ee193de4bd611f7fafbab0c59b0f6fe3495093516720632cd093b24c7a0e98",
    "sportsnet": "0d46122928b6f468cc4bbc694051d0dbae5702bc75a16dab82a99b58daf150a0",
    "washingtonexaminer": "87bf60570e6e2e33cb1f0fdb5600d6c85012e60be25ba6fa587b8f90eb9a3770",
    "zdnet": "5fbc7ccb504c755ae23a85499a17518483d7862b74b4a5c34d86ede1a1a4448e",
    "remember8090": "20b2b64916b00b25203c9f1bf14248922f4d522f18328e9f876cce116df0083e",
    "panarmenian": "d90bda7ed14df19574f4ca8b1ccde5752a78f40058af1393e81cc99adb3e8756",
}
# WCXB pages, one or two per kind of page where generic extraction used to fail.
FAILURE_KINDS = {
    "wcxb-0383": ("0383", "newsletter platform (Substack): sign-up and 'Ready for more?' boxes around the post"),
    "wcxb-0416": ("0416", "newsletter platform (Substack): 'No posts' archive widgets"),
    "wcxb-4581": ("4581", "WordPress entry-content body; footer copyright and previous/next links"),
    "wcxb-0289": ("0289", "WordPress body among many sidebar widgets"),
    "wcxb-0007": ("0007", "sign-up prompt ('Please enter a valid email') before the article"),
    "wcxb-0059": ("0059", "'Watch now' and course promotions inside the page"),
    "wcxb-0362": ("0362", "disclaimer and copyright paragraphs closing the page"),
    "wcxb-4416": ("4416", "article text inside an element marked hidden"),
}
# The sample corpus for `make run` gets three of them.
SAMPLES = ("9to5mac", "foxnews", "remember8090")

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "tests" / "fixtures" / "html"
SAMPLE_DIR = REPO / "samples" / "html"


def _sentences(text: str) -> list[str]:
    """Plain prose sentences of the gold text (no embedded tweets, links or handles)."""
    parts = re.split(r"(?<=[.!?])\s+", " ".join(text.split()))
    return [p for p in parts if 40 <= len(p) <= 300 and not re.search(r"https?:|@|pic\.twitter|\.com\b", p)]


def _chrome_lines(html: str, gold: str) -> list[str]:
    """Three link texts of the page (first, middle, last) that the gold text does not contain."""
    tree = LexborHTMLParser(html)
    body = tree.body
    folded = " ".join(gold.split()).casefold()
    found: list[str] = []
    for node in body.css("a") if body is not None else []:
        text = " ".join((node.text(deep=True) or "").split())
        if (
            25 <= len(text) <= 120
            and not text.startswith(("http://", "https://", "www."))
            and text.casefold() not in folded
            and text not in found
        ):
            found.append(text)
    if len(found) <= 3:
        return found
    return [found[0], found[len(found) // 2], found[-1]]


def failure_kinds(wcxb: Path) -> None:
    """Copy the WCXB pages of FAILURE_KINDS and write failure_kinds.json."""
    gold = json.loads((wcxb / "ground-truth.json").read_text(encoding="utf-8"))
    out = {}
    for name, (page_id, kind) in FAILURE_KINDS.items():
        shutil.copy(wcxb / "html" / f"{page_id}.html.gz", FIXTURES / f"{name}.html.gz")
        truth = gold[page_id]
        out[name] = {
            "id": page_id,
            "kind": kind,
            "url": truth["url"],
            "gold": truth["articleBody"],
            "must_contain": truth["with"],
            "must_not_contain": truth["without"],
        }
    (FIXTURES / "failure_kinds.json").write_text(json.dumps(out, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def main(aeb: Path) -> None:
    """Copy the chosen pages and write expected.json."""
    gold = json.loads((aeb / "ground-truth.json").read_text(encoding="utf-8"))
    previous_file = FIXTURES / "expected.json"
    previous = json.loads(previous_file.read_text(encoding="utf-8")) if previous_file.exists() else {}
    FIXTURES.mkdir(parents=True, exist_ok=True)
    SAMPLE_DIR.mkdir(parents=True, exist_ok=True)
    expected = {}
    for name, page_id in PAGES.items():
        src = aeb / "html" / f"{page_id}.html.gz"
        shutil.copy(src, FIXTURES / f"{name}.html.gz")
        if name in SAMPLES:
            shutil.copy(src, SAMPLE_DIR / f"{name}.html.gz")
            sidecar = {"url": gold[page_id]["url"]}
            (SAMPLE_DIR / f"{name}.json").write_text(json.dumps(sidecar, indent=2) + "\n", encoding="utf-8")
        html = gzip.decompress(src.read_bytes()).decode("utf-8", "replace")
        body = gold[page_id]["articleBody"]
        sentences = _sentences(body)
        old = previous.get(name, {})
        expected[name] = {
            "id": page_id,
            "url": gold[page_id]["url"],
            "gold": body,
            # Gold texts sometimes keep a caption or a timeline (even first or last); the
            # two longest sentences are unambiguous article prose.
            "must_contain": sorted(sentences, key=len, reverse=True)[:2],
            "must_not_contain": _chrome_lines(html, body),
            "title": old.get("title"),
            "language": old.get("language"),
            "published": old.get("published"),
            "authors": old.get("authors"),
        }
    previous_file.write_text(json.dumps(expected, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/data/aeb"))
    failure_kinds(Path(sys.argv[2] if len(sys.argv) > 2 else "../shared/data/wcxb-dev"))
