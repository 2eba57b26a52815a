"""Benchmark: main-text extraction quality and speed, newsflow against other extractors.

Usage
-----
    python bench/extraction.py DIR [--limit N] [--only newsflow,trafilatura,...] [--json OUT]

DIR is laid out like the article-extraction-benchmark (AEB) set in
`/work/shared/data/aeb/`: `html/<id>.html.gz` (UTF-8 pages) and `ground-truth.json`
(`{id: {"articleBody": gold text, "url": ...}}`). Extractors: `newsflow`
(`normalizers.html.extract.extract_text`), and when importable `trafilatura`
(`trafilatura.extract(html)`, defaults), `readability` (readability-lxml:
`Document(html).summary()`, then the text of that HTML) and `resiliparse`
(`extract_plain_text(html, main_content=True)`). Install them with `make bench-deps`.

Metric (AEB's own, see DIR/README.md): text is split into `\\w+` tokens and counted as
4-token shingles; per page, TP/FP/FN shingle counts are scaled to sum 1; precision
is averaged over pages with TP+FP > 0, recall over pages with TP+FN > 0, a page with
FP = FN = 0 scores 1 on both; F1 is the harmonic mean of the two averages.

Timing: only the extraction call, in this process, one page at a time on one core
(`time.perf_counter` around the call; each page is decompressed and decoded to `str`
before the clock starts; for newsflow the call includes parsing, as it does for the
others). `ms/page` is the median over pages.

How to read the output
----------------------
One row per extractor: F1, precision, recall, `F1<0.5` (pages whose own F1 is under 0.5:
an empty or wrong article), median ms/page, and `x newsflow`, the
extractor's median time divided by newsflow's (above 1: newsflow is that many times
faster). Precision falls when boilerplate (menus, related links, captions) leaks into
the text; recall falls when article paragraphs are missed. Differences below ~0.005
F1 are within the noise of 181 pages. `--json OUT` writes per-page precision, recall,
F1 and ms for every extractor: sort by F1 to find the pages to look at.
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from normalizers.html.extract import extract_text

Extractor = Callable[[str], str]

_TOKEN_RE = re.compile(r"\w+", re.UNICODE | re.MULTILINE | re.IGNORECASE | re.DOTALL)


@dataclass(frozen=True, slots=True)
class PageScore:
    """TP/FP/FN shares (summing to 1, or all 0) of one page, and its extraction time."""

    tp: float
    fp: float
    fn: float
    ms: float


def shingles(text: str, n: int = 4) -> Counter[tuple[str, ...]]:
    """Counts of the `n`-token shingles of `text` (a text shorter than n is one shingle)."""
    tokens = _TOKEN_RE.findall(text or "")
    grams = (tuple(tokens[i : i + n]) for i in range(max(1, len(tokens) - n + 1)))
    return Counter(g for g in grams if g)


def match(true: str, pred: str) -> tuple[float, float, float]:
    """TP/FP/FN shingle counts of a prediction, scaled to sum 1 (AEB's string_shingle_matching)."""
    gold, got = shingles(true), shingles(pred)
    tp = fp = fn = 0.0
    for key in gold.keys() | got.keys():
        g, p = gold.get(key, 0), got.get(key, 0)
        tp += min(g, p)
        fp += max(0, p - g)
        fn += max(0, g - p)
    total = tp + fp + fn
    if total > 0:
        return tp / total, fp / total, fn / total
    return tp, fp, fn


def precision_score(tp: float, fp: float, fn: float) -> float:
    if fp == fn == 0:
        return 1.0
    if tp == fp == 0:
        return 0.0
    return tp / (tp + fp)


def recall_score(tp: float, fp: float, fn: float) -> float:
    if fp == fn == 0:
        return 1.0
    if tp == fn == 0:
        return 0.0
    return tp / (tp + fn)


def summarise(scores: list[PageScore]) -> tuple[float, float, float, float]:
    """F1, precision, recall (AEB averaging) and median ms over pages."""
    precision = statistics.mean([precision_score(s.tp, s.fp, s.fn) for s in scores if s.tp + s.fp > 0] or [0.0])
    recall = statistics.mean([recall_score(s.tp, s.fp, s.fn) for s in scores if s.tp + s.fn > 0] or [0.0])
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return f1, precision, recall, statistics.median(s.ms for s in scores)


def _trafilatura() -> Extractor:
    import trafilatura

    def run(html: str) -> str:
        return trafilatura.extract(html) or ""

    return run


def _readability() -> Extractor:
    from readability import Document
    from selectolax.lexbor import LexborHTMLParser

    def run(html: str) -> str:
        summary = Document(html).summary()
        return LexborHTMLParser(summary).text(separator="\n") if summary else ""

    return run


def _resiliparse() -> Extractor:
    from resiliparse.extract.html2text import extract_plain_text

    def run(html: str) -> str:
        return str(extract_plain_text(html, main_content=True))

    return run


def extractors(only: set[str] | None) -> dict[str, Extractor]:
    """The extractors to run, newsflow first; others only when importable."""
    found: dict[str, Extractor] = {"newsflow": extract_text}
    loaders: dict[str, Callable[[], Extractor]] = {
        "trafilatura": _trafilatura,
        "readability": _readability,
        "resiliparse": _resiliparse,
    }
    for name, load in loaders.items():
        if only is not None and name not in only:
            continue
        try:
            found[name] = load()
        except ImportError as exc:
            print(f"skipping {name}: {exc}", file=sys.stderr)
    if only is not None:
        found = {k: v for k, v in found.items() if k in only}
    return found


def load_pages(folder: Path, limit: int | None) -> list[tuple[str, str, str]]:
    """(id, html, gold text) for each page with ground truth, sorted by id."""
    truth: dict[str, dict[str, str]] = json.loads((folder / "ground-truth.json").read_text(encoding="utf-8"))
    pages = []
    for page_id in sorted(truth)[:limit]:
        raw = gzip.decompress((folder / "html" / f"{page_id}.html.gz").read_bytes())
        pages.append((page_id, raw.decode("utf-8", errors="replace"), truth[page_id].get("articleBody", "")))
    return pages


def run(pages: list[tuple[str, str, str]], extractor: Extractor) -> dict[str, PageScore]:
    """Score one extractor on every page."""
    out: dict[str, PageScore] = {}
    for page_id, html, gold in pages:
        start = time.perf_counter()
        text = extractor(html)
        ms = (time.perf_counter() - start) * 1000
        out[page_id] = PageScore(*match(gold, text), ms=ms)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("folder", type=Path, help="folder with html/<id>.html.gz and ground-truth.json")
    parser.add_argument("--limit", type=int, default=None, help="only the first N pages (by id)")
    parser.add_argument("--only", default=None, help="comma-separated extractor names")
    parser.add_argument("--json", type=Path, default=None, help="write per-page scores to this file")
    args = parser.parse_args(argv)
    only = set(args.only.split(",")) if args.only else None
    pages = load_pages(args.folder, args.limit)
    results = {name: run(pages, fn) for name, fn in extractors(only).items()}

    base_ms = statistics.median(s.ms for s in results["newsflow"].values()) if "newsflow" in results else None
    print(f"{len(pages)} pages from {args.folder}")
    print(f"{'extractor':<14}{'F1':>8}{'prec':>8}{'recall':>8}{'F1<0.5':>8}{'ms/page':>10}{'x newsflow':>12}")
    for name, per_page in results.items():
        f1, precision, recall, ms = summarise(list(per_page.values()))
        failed = sum(1 for s in per_page.values() if _f1(s) < 0.5)
        ratio = f"{ms / base_ms:.1f}" if base_ms else "-"
        print(f"{name:<14}{f1:>8.3f}{precision:>8.3f}{recall:>8.3f}{failed:>8}{ms:>10.2f}{ratio:>12}")

    if args.json:
        report = {
            name: {
                page_id: {
                    "precision": precision_score(s.tp, s.fp, s.fn),
                    "recall": recall_score(s.tp, s.fp, s.fn),
                    "f1": _f1(s),
                    "ms": s.ms,
                }
                for page_id, s in per_page.items()
            }
            for name, per_page in results.items()
        }
        args.json.write_text(json.dumps(report, indent=1, sort_keys=True), encoding="utf-8")
    return 0


def _f1(score: PageScore) -> float:
    p = precision_score(score.tp, score.fp, score.fn)
    r = recall_score(score.tp, score.fp, score.fn)
    return 2 * p * r / (p + r) if p + r else 0.0


if __name__ == "__main__":
    raise SystemExit(main())
