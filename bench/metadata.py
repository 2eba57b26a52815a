"""Benchmark: page metadata (publication date, authors, title) against gold, newsflow next to others.

Usage
-----
    python bench/metadata.py DIR [--limit N] [--only newsflow,trafilatura,htmldate]
                             [--folds K] [--cv K] [--json OUT] [--speed AEB_DIR]

DIR is laid out like the WCXB development set in `/work/shared/data/wcxb-dev/`:
`html/<id>.html.gz` (or `<id>.html.gz` beside it, as in `tests/fixtures/html/wcxb/`) and
`ground-truth.json` (`{id: {"url", "title", "author", "publish_date", ...}}`).
Extractors: `newsflow` (the whole HTML normaliser, `normalize_html`, given the page's
URL as the fetched URL and no file time), and when importable `trafilatura`
(`bare_extraction(html, url=url, with_metadata=True)`) and `htmldate` (`find_date(html,
url=url, extensive_search=True, original_date=True)`: the publication date, not the
latest; dates only). Install them with `make bench-deps`.

Metric (DIR/README.md):

- date: accuracy to the day over pages with a gold date. A missing date, or newsflow's
  fall-back to the file or fetch time (`date_source` `mtime` / `fetched`), is not right;
  "wrong" counts pages with a gold date given another day. newsflow's day is the
  calendar date as published (`published_date`), the day the page prints.
- authors: mean F1 of the sets of names (each side split on commas, ";", "&" and
  "and"; case, spaces and punctuation folded) over pages with a gold author; "spurious"
  counts pages without a gold author given one.
- title: exact match after folding case, spaces and punctuation.

`--folds K` also prints the figures per group of pages, the groups made by a hash of
the page's domain (K groups): what a rule chosen on some groups scores on the others.
`--cv K` validates the tuned constants of `normalizers.html.metadata` (`SWEEPS`): for each,
and each of K domain groups, the value scoring best on the other groups (dates: right
minus wrong; titles: exact) is chosen and scored on the held-out group; the held-out
figures, summed over the groups, are printed next to the shipped value's.
`--speed AEB_DIR` times `extract_metadata` alone (parsing excluded) on a folder of
pages and prints the median and p90 ms.
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import statistics
import sys
import time
import urllib.parse
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from normalizers.errors import Rejection
from normalizers.meta import SourceMeta
from normalizers.profile import SourceProfile

# Date evidence that is not the page's: a file or fetch time says when the copy was made.
NOT_PAGE_DATES = frozenset({"mtime", "fetched", "none"})
_NAME_SPLIT = re.compile(r"\s*(?:[,;&]|\band\b)\s*", re.IGNORECASE)
_FOLD = re.compile(r"[\W_]+")


@dataclass(frozen=True, slots=True)
class Page:
    """One page and its gold metadata."""

    page_id: str
    url: str | None
    raw: bytes
    title: str | None
    author: str | None
    day: str | None  # YYYY-MM-DD


@dataclass(frozen=True, slots=True)
class Guess:
    """What one extractor says about a page; `day` is YYYY-MM-DD or None."""

    title: str | None = None
    authors: tuple[str, ...] = ()
    day: str | None = None
    sources: str = ""  # newsflow: the evidence behind each field, for --json


Extractor = Callable[[Page], Guess]


def fold(text: str) -> str:
    """Case, spaces and punctuation folded away."""
    return _FOLD.sub("", text.casefold())


def name_set(names: Iterable[str]) -> set[str]:
    """Folded names, each split on commas, ';', '&' and 'and'."""
    return {f for name in names for part in _NAME_SPLIT.split(name) if (f := fold(part))}


def author_f1(gold: str, guessed: tuple[str, ...]) -> float:
    """F1 of the guessed name set against the gold one."""
    want, got = name_set([gold]), name_set(guessed)
    hits = len(want & got)
    if not hits:
        return 0.0
    precision, recall = hits / len(got), hits / len(want)
    return 2 * precision * recall / (precision + recall)


def newsflow() -> Extractor:
    from normalizers.html.normalize import normalize_html

    # Every page is scored, also those the default `min_confidence` would quarantine as
    # `extraction_failed`: this measures metadata, bench/extraction.py the text.
    profile = SourceProfile(name="bench", min_confidence=0.0)

    def run(page: Page) -> Guess:
        uri = page.url or f"file:///{page.page_id}.html"
        result = normalize_html(page.raw, SourceMeta("bench", uri, uri, mtime=None), profile)
        if isinstance(result, Rejection):
            return Guess()
        day = None
        if result.date_source not in NOT_PAGE_DATES and result.published_date is not None:
            day = result.published_date.isoformat()
        sources = f"date={result.date_source} author={result.author_source} title={result.title_source}"
        return Guess(result.title, result.authors, day, sources)

    return run


def trafilatura() -> Extractor:
    from trafilatura import bare_extraction

    def run(page: Page) -> Guess:
        doc = bare_extraction(page.raw.decode("utf-8", "replace"), url=page.url, with_metadata=True)
        if doc is None:
            return Guess()
        authors = tuple(a.strip() for a in (doc.author or "").split(";") if a.strip())
        return Guess(doc.title, authors, doc.date)

    return run


def htmldate() -> Extractor:
    from htmldate import find_date

    def run(page: Page) -> Guess:
        html = page.raw.decode("utf-8", "replace")
        return Guess(day=find_date(html, url=page.url, extensive_search=True, original_date=True))

    return run


@dataclass(frozen=True, slots=True)
class Scores:
    """The table's figures for one extractor over some pages."""

    dated: int
    right: int
    wrong: int
    with_author: int
    author_f1: float
    without_author: int
    spurious: int
    titled: int
    title_exact: int

    @property
    def date_accuracy(self) -> float:
        return self.right / self.dated if self.dated else 0.0

    @property
    def title_share(self) -> float:
        return self.title_exact / self.titled if self.titled else 0.0


def score(pages: list[Page], guesses: dict[str, Guess]) -> Scores:
    """Date, author and title figures of one extractor's guesses over `pages`."""
    dated = [p for p in pages if p.day]
    right = sum(guesses[p.page_id].day == p.day for p in dated)
    wrong = sum(guesses[p.page_id].day not in (None, p.day) for p in dated)
    authored = [p for p in pages if p.author]
    f1s = [author_f1(p.author, guesses[p.page_id].authors) for p in authored if p.author]
    spurious = sum(bool(name_set(guesses[p.page_id].authors)) for p in pages if not p.author)
    titled = [p for p in pages if p.title]
    exact = sum(fold(guesses[p.page_id].title or "") == fold(p.title or "") for p in titled)
    return Scores(
        len(dated),
        right,
        wrong,
        len(authored),
        statistics.mean(f1s) if f1s else 0.0,
        len(pages) - len(authored),
        spurious,
        len(titled),
        exact,
    )


def domain_fold(url: str | None, folds: int) -> int:
    """The group of a page: a stable hash of its host (without `www.`) modulo `folds`."""
    host = (urllib.parse.urlsplit(url or "").hostname or "").removeprefix("www.")
    return zlib.crc32(host.encode()) % folds


def load_pages(folder: Path, limit: int | None = None) -> list[Page]:
    """Pages with gold metadata, sorted by id."""
    truth: dict[str, dict[str, str | None]] = json.loads((folder / "ground-truth.json").read_text(encoding="utf-8"))
    pages = []
    for page_id in sorted(truth)[:limit]:
        gold = truth[page_id]
        pages_dir = folder / "html" if (folder / "html").is_dir() else folder
        raw = gzip.decompress((pages_dir / f"{page_id}.html.gz").read_bytes())
        pages.append(
            Page(page_id, gold.get("url"), raw, gold.get("title"), gold.get("author"), gold.get("publish_date"))
        )
    return pages


def extractors(only: set[str] | None) -> dict[str, Extractor]:
    """The extractors to run, newsflow first; the others only when importable."""
    loaders: dict[str, Callable[[], Extractor]] = {
        "newsflow": newsflow,
        "trafilatura": trafilatura,
        "htmldate": htmldate,
    }
    found: dict[str, Extractor] = {}
    for name, load in loaders.items():
        if only is not None and name not in only:
            continue
        try:
            found[name] = load()
        except ImportError as exc:
            print(f"skipping {name}: {exc}", file=sys.stderr)
    return found


def row(name: str, s: Scores, dates_only: bool = False) -> str:
    """One line of the table."""
    date = f"{s.date_accuracy:>9.3f} {s.right:>5} {s.wrong:>5}"
    if dates_only:
        return f"{name:<14}{date}{'-':>9}{'-':>10}{'-':>8}"
    spurious = f"{s.spurious}/{s.without_author}"
    return f"{name:<14}{date}{s.author_f1:>9.3f}{spurious:>10}{s.title_share:>8.3f}"


HEADER = f"{'extractor':<14}{'date acc':>9} {'right':>5} {'wrong':>5}{'auth F1':>9}{'spurious':>10}{'title':>8}"


def speed(folder: Path) -> tuple[float, float, int]:
    """Median and p90 ms of `extract_metadata` alone (the tree parsed before the clock starts) over a folder."""
    from normalizers.html.extract import parse_html
    from normalizers.html.metadata import extract_metadata

    times = []
    truth: dict[str, dict[str, str]] = json.loads((folder / "ground-truth.json").read_text(encoding="utf-8"))
    for page_id in sorted(truth):
        html = gzip.decompress((folder / "html" / f"{page_id}.html.gz").read_bytes()).decode("utf-8", "replace")
        url = truth[page_id].get("url")
        tree = parse_html(html)
        extract_metadata(tree, url)  # warm-up: caches, first-call costs
        start = time.perf_counter()
        extract_metadata(tree, url)
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    return statistics.median(times), times[int(0.9 * (len(times) - 1))], len(times)


# Tuned constants of normalizers.html.metadata and the values `--cv` tries (the shipped value among them).
SWEEPS: dict[str, tuple[int, ...]] = {
    "PRINTED_AFTER_CHARS": (300, 600, 900),
    "PRINTED_BEFORE_CHARS": (150, 300, 450),
    "MAX_DATE_ELEMENT_CHARS": (40, 80, 160),
    "MIN_H1_WORDS": (1, 2, 3),
    "MIN_HOST_LABEL": (4, 5, 7),
}
# The constants above that shape titles (scored on titles exact); the others shape dates.
TITLE_SWEEPS = frozenset({"MIN_H1_WORDS", "MIN_HOST_LABEL"})


def cross_validate(pages: list[Page], folds: int) -> list[str]:
    """Lines reporting, per tuned constant, the shipped value's figures and the domain-grouped CV ones."""
    from normalizers.html import metadata

    groups = [[p for p in pages if domain_fold(p.url, folds) == k] for k in range(folds)]
    lines = []
    for name, values in SWEEPS.items():
        shipped = getattr(metadata, name)
        runs: dict[int, dict[str, Guess]] = {}
        try:
            for value in values:
                setattr(metadata, name, value)
                run = newsflow()
                runs[value] = {p.page_id: run(p) for p in pages}
        finally:
            setattr(metadata, name, shipped)

        def objective(s: Scores, field: str = "title" if name in TITLE_SWEEPS else "date") -> int:
            return s.title_exact if field == "title" else s.right - s.wrong

        held: list[Scores] = []
        chosen = []
        for k, group in enumerate(groups):
            rest = [p for j, g in enumerate(groups) if j != k for p in g]
            best = max(values, key=lambda v: (objective(score(rest, runs[v])), v == shipped))
            chosen.append(best)
            held.append(score(group, runs[best]))
        full = score(pages, runs[shipped])
        right, wrong = sum(h.right for h in held), sum(h.wrong for h in held)
        dated, exact = sum(h.dated for h in held), sum(h.title_exact for h in held)
        titled = sum(h.titled for h in held)
        lines.append(
            f"{name} = {shipped} (tried {values}; chosen per held-out group {chosen}): "
            f"full set date {full.date_accuracy:.3f} ({full.right} right, {full.wrong} wrong), title "
            f"{full.title_share:.3f}; cross-validated date {right / dated:.3f} ({right} right, {wrong} wrong), "
            f"title {exact / titled:.3f}"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("folder", type=Path, help="folder with html/<id>.html.gz and ground-truth.json")
    parser.add_argument("--limit", type=int, default=None, help="only the first N pages (by id)")
    parser.add_argument("--only", default=None, help="comma-separated extractor names")
    parser.add_argument("--folds", type=int, default=0, help="also score K groups of pages split by domain")
    parser.add_argument("--json", type=Path, default=None, help="write per-page guesses and gold to this file")
    parser.add_argument("--cv", type=int, default=0, help="cross-validate the tuned constants over K domain groups")
    parser.add_argument("--speed", type=Path, default=None, help="time extract_metadata on this folder's pages")
    args = parser.parse_args(argv)
    only = set(args.only.split(",")) if args.only else None
    pages = load_pages(args.folder, args.limit)
    results = {name: {p.page_id: fn(p) for p in pages} for name, fn in extractors(only).items()}

    print(f"{len(pages)} pages from {args.folder}")
    print(HEADER)
    for name, guesses in results.items():
        print(row(name, score(pages, guesses), dates_only=name == "htmldate"))
    for k in range(args.folds):
        group = [p for p in pages if domain_fold(p.url, args.folds) == k]
        print(f"\ndomain group {k + 1}/{args.folds}: {len(group)} pages")
        for name, guesses in results.items():
            print(row(name, score(group, guesses), dates_only=name == "htmldate"))
    if args.cv:
        print(f"\ntuned constants, {args.cv} domain groups:")
        for line in cross_validate(pages, args.cv):
            print(line)
    if args.speed:
        median, p90, n = speed(args.speed)
        print(f"\nextract_metadata on {n} pages of {args.speed}: median {median:.3f} ms, p90 {p90:.3f} ms")
    if args.json:
        report = {
            p.page_id: {
                "url": p.url,
                "gold": {"title": p.title, "author": p.author, "day": p.day},
                **{
                    name: {"title": g.title, "authors": list(g.authors), "day": g.day, "sources": g.sources}
                    for name, guesses in results.items()
                    for g in [guesses[p.page_id]]
                },
            }
            for p in pages
        }
        args.json.write_text(json.dumps(report, indent=1, sort_keys=True, ensure_ascii=False), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
