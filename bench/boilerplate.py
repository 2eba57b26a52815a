"""Benchmark: learned boilerplate, recall of injected chrome and body text lost, on real article texts.

Usage
-----
    python bench/boilerplate.py [--aeb DIR] [--wcxb DIR] [--sources N] [--seed S]

The texts are the gold article texts of AEB and WCXB dev (`ground-truth.json`; the
folders default to `../shared/data/aeb` and `../shared/data/wcxb-dev` and are skipped
when absent) and the bundled wire samples, as `bench/dedup.py` reads them. They are
dealt to `--sources` made-up outlets, and each outlet wraps its articles in its own
template, the chrome a site adds:

- `head`: one or two lines above the body (a "Listen to this article", a masthead);
- `newsletter`, `share`, `copyright`: lines under it (the copyright line with the
  article's year);
- `related`: a "Related coverage" marker and three headlines under it, drawn from the
  outlet's most-read list of the day (ten of its titles, changing every 20 articles).

Each line is present in an article with some probability, so articles differ. Against
the rule, content that repeats but is no chrome: a quotation that ends 10% of some
outlets' articles, and one story per outlet stored under eight URLs with its own last
line. Every outlet is ingested in three runs (its articles arriving over three days)
through `run_source`, once with learning and once without (`learn_boilerplate = false`),
and the articles are read back from the Parquet.

Printed: recall of injected chrome blocks (removed by any rule) with and without
learning, per kind; body paragraphs and sentences present without learning and gone
with it (the text the rule lost); the hostile content kept; the blocks learned; and the
time of the ingest runs with and without learning.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import shutil
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow.dataset as ds

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from dedup import originals  # noqa: E402

from pipeline.config import load_config  # noqa: E402
from pipeline.run import LocalRunner, run_source  # noqa: E402
from warehouse.layout import DataRoot  # noqa: E402

OUTLETS = (
    "Harbor Times",
    "Valley Courier",
    "Northern Ledger",
    "City Dispatch",
    "Coastal Post",
    "Prairie Herald",
    "Metro Observer",
    "Island Gazette",
)
QUOTE = '"We will keep working until every family has a safe home," the director said.'
COPY_LINE = "The council will vote on the plan next month."
KINDS = ("head", "newsletter", "share", "copyright", "related")
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"“])")


@dataclass
class Article:
    outlet: int
    name: str
    title: str
    body: list[str]  # the real text
    chrome_head: list[tuple[str, str]] = field(default_factory=list)  # (kind, text)
    chrome_tail: list[tuple[str, str]] = field(default_factory=list)
    hostile: list[str] = field(default_factory=list)  # repeated content that must stay
    day: int = 0


def build(texts: list[tuple[str, list[str]]], outlets: int, rng: random.Random) -> list[Article]:
    """Deal the texts to outlets and wrap each in its outlet's template."""
    dealt: list[list[tuple[str, list[str]]]] = [[] for _ in range(outlets)]
    for i, text in enumerate(texts):
        dealt[i % outlets].append(text)
    out: list[Article] = []
    for o, mine in enumerate(dealt):
        name = OUTLETS[o % len(OUTLETS)] + ("" if o < len(OUTLETS) else f" {o}")
        heads = [("head", "Listen to this article"), ("head", f"{name} | News, analysis and opinion")][: 1 + o % 2]
        quoting = o % 3 == 0
        titles = [t for t, _ in mine]
        for n, (title, body) in enumerate(mine):
            a = Article(o, f"a{n:05d}", title, list(body), day=n * 3 // len(mine))
            a.chrome_head = [h for h in heads if rng.random() < 0.7]
            if quoting and rng.random() < 0.1:
                a.hostile.append(QUOTE)
            tail = [
                ("newsletter", f"Sign up for the {name} newsletter to get the day's top stories in your inbox."),
                ("share", "Share this article: Facebook, X, LinkedIn, Email"),
                ("copyright", f"© {2019 + n % 6} {name}. All rights reserved."),
            ]
            a.chrome_tail = [t for t in tail if rng.random() < 0.8]
            if rng.random() < 0.5:
                start = (n // 20) * 7 % len(titles)
                most_read = [titles[(start + k) % len(titles)] for k in range(10)]
                related = [t for t in rng.sample(most_read, 3) if t != title]
                a.chrome_tail[1:1] = [("related", "Related coverage"), *(("related", t) for t in related)]
            out.append(a)
        # One story under eight URLs, ending in its own line: one story, not a template.
        title, body = mine[0]
        for k in range(8):
            copy = Article(o, f"copy{k}", title, [*body, COPY_LINE], day=2)
            out.append(copy)
    return out


def write(folder: Path, articles: list[Article], day: int, learn: bool) -> Path:
    """The outlets' files of days up to `day`, and the config naming them."""
    lines = []
    outlets = sorted({a.outlet for a in articles})
    for o in outlets:
        (folder / f"o{o}").mkdir(parents=True, exist_ok=True)
        lines.append(
            f'[sources.o{o}]\npath = "{folder / f"o{o}"}"\n' + ("" if learn else "learn_boilerplate = false\n")
        )
    for a in articles:
        if a.day > day:
            continue
        stem = folder / f"o{a.outlet}" / a.name
        if stem.with_suffix(".txt").exists():
            continue
        blocks = [a.title, *(t for _, t in a.chrome_head), *a.body, *a.hostile, *(t for _, t in a.chrome_tail)]
        stem.with_suffix(".txt").write_text("\n\n".join(blocks) + "\n", encoding="utf-8")
        when = f"2024-05-{1 + a.day:02d}T{a.outlet % 24:02d}:00:00Z"
        url = f"https://o{a.outlet}.example/{a.name}"
        stem.with_suffix(".json").write_text(json.dumps({"url": url, "published_at": when}), encoding="utf-8")
    cfg = folder / "sources.toml"
    cfg.write_text("\n".join(lines), encoding="utf-8")
    return cfg


def ingest(work: Path, articles: list[Article], learn: bool) -> tuple[dict[str, dict[str, object]], float, list[str]]:
    """Three days of runs; the stored articles by URL, the runs' seconds, the blocks learned."""
    folder = work / ("learn" if learn else "plain")
    root = DataRoot(folder / "data")
    took = 0.0
    learned: list[str] = []
    for day in range(3):
        cfg = write(folder / "in", articles, day, learn)
        for name, src in load_config(cfg).sources.items():
            start = time.perf_counter()
            summary = run_source(src, root, f"d{day}-{name}", runner=LocalRunner(1))
            took += time.perf_counter() - start
            learned += summary.learned
    rows = ds.dataset(root.articles, format="parquet", partitioning="hive").to_table().to_pylist()
    return {str(r["url"]): r for r in rows}, took, learned


def _paragraphs(row: dict[str, object]) -> list[str]:
    out = [str(row["lede"])] if row["lede"] else []
    for s in row["sections"] or ():  # type: ignore[attr-defined]
        if s["heading"]:
            out.append(s["heading"])
        out.extend(s["paragraphs"])
    return out


def score(articles: list[Article], plain: dict[str, dict[str, object]], learned: dict[str, dict[str, object]]) -> None:
    """Print recall per kind with and without learning, and the body text learning lost."""
    injected: Counter[str] = Counter()
    removed = {"plain": Counter[str](), "learn": Counter[str]()}
    lost_paragraphs = lost_sentences = body_paragraphs = body_sentences = 0
    hostile = hostile_kept = 0
    examples: list[str] = []
    for a in articles:
        url = f"https://o{a.outlet}.example/{a.name}"
        if url not in plain or url not in learned:
            continue
        before, after = _paragraphs(plain[url]), _paragraphs(learned[url])
        for label, row in (("plain", before), ("learn", after)):
            kept = set(row)
            for kind, text in (*a.chrome_head, *a.chrome_tail):
                if label == "plain":
                    injected[kind] += 1
                if text not in kept:
                    removed[label][kind] += 1
        chrome = {t for _, t in (*a.chrome_head, *a.chrome_tail)}
        now = set(after)
        for p in before:
            if p in chrome:
                continue
            sentences = [s for s in _SENTENCE.split(p) if s.strip()]
            body_paragraphs += 1
            body_sentences += len(sentences)
            if p not in now:
                lost_paragraphs += 1
                lost_sentences += sum(1 for s in sentences if s not in str(learned[url]["text"]))
                if len(examples) < 5:
                    examples.append(f"{url}: {p[:100]!r}")
        for text in (
            *a.hostile,
            *(["The council will vote on the plan next month."] if a.name.startswith("copy") else []),
        ):
            hostile += 1
            hostile_kept += text in now
    total = sum(injected.values())
    print(f"articles: {len(learned)} stored of {len(articles)} written; chrome blocks injected: {total}")
    print("| kind | injected | removed without learning | removed with learning |")
    print("|---|---|---|---|")
    for kind in KINDS:
        n = injected[kind]
        print(f"| {kind} | {n} | {removed['plain'][kind] / n:.3f} | {removed['learn'][kind] / n:.3f} |")
    print(
        f"| **all** | {total} | {sum(removed['plain'].values()) / total:.3f} | "
        f"**{sum(removed['learn'].values()) / total:.3f}** |"
    )
    print(
        f"body text: {body_paragraphs} paragraphs ({body_sentences} sentences) kept without learning; "
        f"with learning {lost_paragraphs} paragraphs ({lost_sentences} sentences) of them gone"
    )
    for line in examples:
        print(f"  lost: {line}")
    print(
        f"repeated content that is no chrome (a quotation, one story's own last line): {hostile_kept} of {hostile} kept"
    )


def main() -> None:
    """Build the corpus, ingest it with and without learning, and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--aeb", type=Path, default=REPO.parent / "shared" / "data" / "aeb")
    parser.add_argument("--wcxb", type=Path, default=REPO.parent / "shared" / "data" / "wcxb-dev")
    parser.add_argument("--sources", type=int, default=8)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    texts = originals(args.aeb if args.aeb.is_dir() else None, args.wcxb if args.wcxb.is_dir() else None)
    articles = build(texts, args.sources, rng)
    work = Path(tempfile.mkdtemp(prefix="newsflow-boilerplate-"))
    try:
        plain, plain_s, _ = ingest(work, articles, learn=False)
        learned, learn_s, lines = ingest(work, articles, learn=True)
        score(articles, plain, learned)
        chrome = {t for a in articles for _, t in (*a.chrome_head, *a.chrome_tail)}
        other = sorted({line for line in lines if line not in chrome})
        print(f"blocks learned: {len(lines)}, of which not injected chrome: {len(other)}")
        for line in other[:20]:
            print(f"  {line[:100]!r}")
        print(f"ingest (3 runs per outlet, one process): {plain_s:.1f} s without learning, {learn_s:.1f} s with")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
