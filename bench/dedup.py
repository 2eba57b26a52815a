"""Benchmark: duplicates and syndication clusters, precision and recall on labelled pairs, and speed.

Usage
-----
    python bench/dedup.py [--aeb DIR] [--wcxb DIR] [--scale N] [--keep DIR]

The labelled set is built from real article texts: the gold texts of AEB and WCXB dev
(`ground-truth.json` `articleBody`; the folders default to `../shared/data/aeb` and
`../shared/data/wcxb-dev` and are skipped when absent) and the bundled wire samples.
Each text of at least 80 words and 4 paragraphs is an *original*, published by outlet
`orig`; six other outlets carry a copy of it, one kind of copy each, published later:

- `headline`: the same text under another headline;
- `added`: a paragraph of another article inserted at a random place;
- `dropped`: one paragraph (not the first) left out;
- `chrome`: two to four lines of outlet boilerplate above and below;
- `truncated`: only the first two thirds of the paragraphs;
- `edited`: about one word in thirty replaced (a light copy edit).

An original and its copies are a *family*: every pair within a family should share a
cluster, no pair across families should. The *same-topic* pairs are, for each original,
the other original whose words overlap most (bag of words): articles on one subject
that are not copies, the hardest negatives. All documents go through the product: text
files with sidecars, `newsflow`'s text normaliser (`run_source`), then
`update_clusters`; the clusters are read back from the Parquet.

Printed: pair precision and recall over all pairs, recall per kind of copy, false
merges among the same-topic pairs, exact copies found (`duplicate_of` of the
`headline` copies), and speed on one core: fingerprinting (words, exact key, MinHash,
band keys) from texts in memory; lookups (band keys against the index, candidates
checked on their signatures) against an index of the whole set; and the whole update
(reading new articles' text from Parquet, fingerprinting, indexing, linking,
clustering, writing `clusters`) for batches of new articles added to indexes of
growing size (`--scale` articles at most, made by recombining paragraphs).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import string
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from normalizers.similarity import band_keys, estimate, fingerprints  # noqa: E402
from pipeline.config import load_config  # noqa: E402
from pipeline.dedup import BATCH, find_matches, update_clusters  # noqa: E402
from pipeline.run import LocalRunner, run_source  # noqa: E402
from warehouse.dedup import DedupStore  # noqa: E402
from warehouse.dedup import Doc as IndexDoc  # noqa: E402
from warehouse.layout import DataRoot  # noqa: E402

KINDS = ("headline", "added", "dropped", "chrome", "truncated", "edited")
CHROME = (
    "Share this article",
    "Follow us on Twitter and Facebook",
    "Sign up for our daily newsletter to get the top stories in your inbox.",
    "Advertisement",
    "This story was originally published by our partners and is republished with permission.",
    "Copyright 2024 Metro Daily News. All rights reserved.",
    "Have a news tip? Email the newsroom.",
    "Read more from our coverage of this story.",
)
MIN_WORDS, MIN_PARAGRAPHS = 80, 4


@dataclass(frozen=True, slots=True)
class Doc:
    family: int
    kind: str  # "orig" or one of KINDS
    title: str
    paragraphs: tuple[str, ...]
    day: int  # days after the first

    @property
    def url(self) -> str:
        return f"https://{self.kind}.example/{self.family}"


def originals(aeb: Path | None, wcxb: Path | None) -> list[tuple[str, list[str]]]:
    """(title, paragraphs) of every usable original text."""
    out: list[tuple[str, list[str]]] = []
    for folder in (aeb, wcxb):
        if folder is None or not (folder / "ground-truth.json").is_file():
            continue
        gold = json.loads((folder / "ground-truth.json").read_text(encoding="utf-8"))
        for page in gold.values():
            body = page.get("articleBody") or ""
            out.append((page.get("title") or "Untitled", [p.strip() for p in body.split("\n") if p.strip()]))
    for path in sorted((REPO / "samples" / "wire").glob("*.txt")):
        try:  # the samples hold bad inputs too (binary, another encoding): not articles
            title, _, body = path.read_text(encoding="utf-8").partition("\n")
        except UnicodeDecodeError:
            continue
        out.append((title.strip(), [p.strip() for p in body.split("\n") if p.strip()]))
    usable = [(t, ps) for t, ps in out if len(ps) >= MIN_PARAGRAPHS and sum(len(p.split()) for p in ps) >= MIN_WORDS]
    return _distinct(usable)


# ASCII punctuation as spaces, for the bags of words that choose the labelled set.
_PUNCTUATION = bytes(32 if chr(i) in string.punctuation and chr(i) != "_" else i for i in range(256))


def words(text: str) -> list[bytes]:
    """A text's words, lower case: the bags of words that pick repeats and same-topic pairs."""
    for mark in ("\u2018", "\u2019", "\u201c", "\u201d", "\u2013", "\u2014", "\u2026", "\u00a0", "\u00ab", "\u00bb"):
        text = text.replace(mark, " ")
    return text.lower().encode("utf-8", "surrogatepass").translate(_PUNCTUATION).split()


def _distinct(texts: list[tuple[str, list[str]]]) -> list[tuple[str, list[str]]]:
    """The texts less those repeating an earlier one (the wire samples are AEB pages; sites repeat pages).

    Judged by the overlap of their sets of words (bag of words, at least 0.8 Jaccard),
    not by the fingerprints under test.
    """
    kept: list[tuple[str, list[str]]] = []
    bags: list[set[bytes]] = []
    for title, ps in texts:
        bag = set(words(" ".join(ps)))
        if not any(len(bag & other) >= 0.8 * len(bag | other) for other in bags):
            kept.append((title, ps))
            bags.append(bag)
    dropped = len(texts) - len(kept)
    print(f"{dropped} of {len(texts)} texts left out as repeats of another (bag-of-words Jaccard >= 0.8)")
    return kept


def copies(texts: list[tuple[str, list[str]]], rng: random.Random) -> list[Doc]:
    """Each original and its six copies."""
    docs = []
    for family, (title, paragraphs) in enumerate(texts):
        ps = list(paragraphs)
        docs.append(Doc(family, "orig", title, tuple(ps), 0))
        other = texts[(family + 1 + rng.randrange(len(texts) - 1)) % len(texts)][1]
        added = list(ps)
        added.insert(rng.randrange(1, len(ps) + 1), rng.choice(other))
        dropped = list(ps)
        del dropped[rng.randrange(1, len(ps))]
        chrome = [*rng.sample(CHROME, rng.randint(2, 4)), *ps, *rng.sample(CHROME, rng.randint(2, 4))]
        truncated = ps[: max(1, round(len(ps) * 2 / 3))]
        edited = [_edit(p, rng) for p in ps]
        variants = {
            "headline": (f"{title}: what we know", ps),
            "added": (title, added),
            "dropped": (title, dropped),
            "chrome": (title, chrome),
            "truncated": (title, truncated),
            "edited": (title, edited),
        }
        for day, kind in enumerate(KINDS, start=1):
            t, body = variants[kind]
            docs.append(Doc(family, kind, t, tuple(body), day))
    return docs


def _edit(paragraph: str, rng: random.Random) -> str:
    out = []
    for word in paragraph.split(" "):
        out.append(word[::-1] if len(word) > 3 and rng.random() < 1 / 30 else word)
    return " ".join(out)


def same_topic(texts: list[tuple[str, list[str]]]) -> list[tuple[int, int]]:
    """For each original, the other original sharing the most words (bag of words Jaccard): hard negatives."""
    bags = [set(words(" ".join(ps))) - _COMMON for _, ps in texts]
    index: dict[bytes, list[int]] = defaultdict(list)
    for i, bag in enumerate(bags):
        for w in bag:
            index[w].append(i)
    pairs = set()
    for i, bag in enumerate(bags):
        shared: Counter[int] = Counter()
        for w in bag:
            if len(index[w]) < 50:  # rare words say what an article is about
                shared.update(index[w])
        del shared[i]
        if shared:
            j = max(shared, key=lambda k: (shared[k] / len(bag | bags[k]), -k))
            pairs.add((min(i, j), max(i, j)))
    return sorted(pairs)


# Words too common to say what an article is about.
_COMMON = frozenset({b"the", b"a", b"an", b"and", b"or", b"of", b"to", b"in", b"on", b"for", b"with", b"is", b"are"})


def write_corpus(folder: Path, docs: list[Doc]) -> Path:
    """One source folder per outlet, a text file and sidecar per document; returns sources.toml."""
    lines = []
    for kind in ("orig", *KINDS):
        (folder / kind).mkdir(parents=True)
        lines.append(f'[sources.{kind}]\npath = "{folder / kind}"\n')
    for d in docs:
        stem = folder / d.kind / f"{d.family:06d}"
        stem.with_suffix(".txt").write_text(d.title + "\n\n" + "\n\n".join(d.paragraphs) + "\n", encoding="utf-8")
        when = f"2024-{1 + d.day // 28:02d}-{1 + d.day % 28:02d}T{(d.family % 24):02d}:00:00Z"
        stem.with_suffix(".json").write_text(json.dumps({"url": d.url, "published_at": when}), encoding="utf-8")
    cfg = folder / "sources.toml"
    cfg.write_text("\n".join(lines), encoding="utf-8")
    return cfg


def ingest(cfg: Path, root: DataRoot, workers: int) -> int:
    config = load_config(cfg)
    runner = LocalRunner(workers)
    return sum(run_source(src, root, "bench", runner=runner).written for src in config.select(None))


def score(root: DataRoot, docs: list[Doc], hard: list[tuple[int, int]]) -> list[str]:
    """Pair precision and recall, per-kind recall, same-topic false merges, exact copies."""
    rows = (
        duckdb.connect()
        .sql(
            f"SELECT a.url, c.cluster_id, c.duplicate_of, o.url FROM read_parquet('{root.clusters}/**/*.parquet') c "
            f"JOIN read_parquet('{root.articles}/**/*.parquet') a USING (article_id) "
            f"LEFT JOIN read_parquet('{root.articles}/**/*.parquet') o ON o.article_id = c.duplicate_of"
        )
        .fetchall()
    )
    by_url = {d.url: d for d in docs}
    cluster = {url: cid for url, cid, _, _ in rows}
    copy_of = {url: orig for url, _, _, orig in rows}
    missing = [d.url for d in docs if d.url not in cluster]
    families: Counter[int] = Counter(d.family for d in docs)
    clusters: Counter[str] = Counter(cluster.values())
    both: Counter[tuple[str, int]] = Counter((cluster[u], by_url[u].family) for u in cluster)
    pairs = sum(n * (n - 1) // 2 for n in clusters.values())
    true = sum(n * (n - 1) // 2 for n in families.values())
    hit = sum(n * (n - 1) // 2 for n in both.values())
    precision, recall = hit / pairs if pairs else 1.0, hit / true if true else 1.0
    out = [
        f"documents {len(docs)} ({len(families)} families of an original and {len(KINDS)} copies), "
        f"written {len(cluster)}, not written {len(missing)}",
        f"pairs: predicted {pairs}, true {true}, right {hit}",
        f"pair precision {precision:.4f}   target >= 0.99   {'PASS' if precision >= 0.99 else 'FAIL'}",
        f"pair recall    {recall:.4f}   target >= 0.95   {'PASS' if recall >= 0.95 else 'FAIL'}",
    ]
    orig = {d.family: d.url for d in docs if d.kind == "orig"}
    for kind in KINDS:
        kin = [d for d in docs if d.kind == kind and d.url in cluster and orig[d.family] in cluster]
        joined = sum(1 for d in kin if cluster[d.url] == cluster[orig[d.family]])
        out.append(
            f"  recall of the original-copy pair, {kind:<9} {joined}/{len(kin)} = {joined / max(len(kin), 1):.4f}"
        )
    merged = sum(
        1 for i, j in hard if cluster.get(orig[i]) is not None and cluster.get(orig[i]) == cluster.get(orig[j])
    )
    out.append(f"same-topic originals (nearest by words) put in one cluster: {merged}/{len(hard)}")
    head = [d for d in docs if d.kind == "headline" and d.url in copy_of]
    exact = sum(1 for d in head if copy_of[d.url] == orig[d.family])
    out.append(f"exact copies named (duplicate_of of the headline copies = the original): {exact}/{len(head)}")
    return out


def recombined(texts: list[tuple[str, list[str]]], n: int, rng: random.Random) -> Iterator[Doc]:
    """`n` articles made of paragraphs of different originals (distinct texts, realistic words)."""
    pool = [p for _, ps in texts for p in ps if len(p.split()) >= 12]
    for i in range(n):
        yield Doc(1_000_000 + i, "orig", f"Article {i}", tuple(rng.sample(pool, 6)), 1 + i % 300)


def speed(texts: list[tuple[str, list[str]]], docs: list[Doc], root: DataRoot, scale: int, work: Path) -> list[str]:
    """Fingerprints and lookups per second on one core; the whole update per article as the index grows."""
    bodies = ["\n\n".join(d.paragraphs) for d in docs]
    t0 = time.process_time()
    prints = fingerprints(bodies)
    sigs = np.stack([p.signature for p in prints if p.signature is not None])
    band_keys(sigs)  # part of a fingerprint, as the update makes it
    fp = time.process_time() - t0
    mean_words = sum(p.words for p in prints) / len(prints)
    out = [
        f"fingerprint (words, exact key, MinHash, band keys): {len(bodies) / fp:,.0f} articles/s per core "
        f"({fp / len(bodies) * 1e6:.0f} us each; {len(bodies)} texts of {mean_words:,.0f} words on average)"
    ]
    with DedupStore(root.state) as store:
        # The update's own lookup (`find_matches`: band keys against the index, candidates'
        # signatures read and compared), in its batches, for articles not in the index yet.
        probe = [
            IndexDoc(-1 - i, f"probe-{i}", "probe", "probe/2024-01", None, "", "", 0, sigs[i])
            for i in range(0, len(sigs), max(1, len(sigs) // 2000))
        ]
        t0 = time.process_time()
        found = 0
        for i in range(0, len(probe), BATCH):
            found += sum(len(near) for near in find_matches(store, probe[i : i + BATCH]).near.values())
        lookup = time.process_time() - t0
        n = store.count()[0]
    out.append(
        f"lookup (band keys in an index of {n} articles, candidates checked, {BATCH} a batch): "
        f"{len(probe) / lookup:,.0f} articles/s per core ({lookup / len(probe) * 1e6:.0f} us each; "
        f"{found / len(probe):.1f} near-duplicates found each)"
    )
    out.append(
        f"target >= 20,000 articles/s per core for fingerprints and lookups: "
        f"{'PASS' if min(len(bodies) / fp, len(probe) / lookup) >= 20_000 else 'FAIL'}"
    )
    # The whole update, for a batch of new articles, as the index grows: history spread over
    # 2023, each batch of new articles in a month of its own (as a day's or week's runs bring).
    rng = random.Random(7)
    grow = work / "grow"
    cfg = grow / "sources.toml"
    batch = 1000
    grow_root = DataRoot(grow / "data")
    docs_iter = recombined(texts, scale + batch * 3, rng)
    indexed = 0
    for step, size in enumerate(sorted({s for s in (2_000, 10_000, scale) if s <= scale}), start=1):
        fill = [next(docs_iter) for _ in range(size - indexed)]
        if fill:
            _write_more(grow, fill, "fill", None)
            ingest(cfg, grow_root, 0)
            update_clusters(grow_root)
        _write_more(grow, [next(docs_iter) for _ in range(batch)], "new", f"2024-{step:02d}")
        ingest(cfg, grow_root, 0)
        c0 = time.process_time()
        w0 = time.perf_counter()
        done = update_clusters(grow_root)
        cpu, wall = time.process_time() - c0, time.perf_counter() - w0
        before, indexed = done.articles - done.added, done.articles
        out.append(
            f"update with {done.added} new articles into an index of {before:,}: {cpu / done.added * 1e6:.0f} us CPU "
            f"per article ({done.added / cpu:,.0f}/s; wall {wall:.2f} s; {len(done.partitions)} partitions rewritten)"
        )
    return out


def _write_more(folder: Path, docs: list[Doc], kind: str, month: str | None) -> None:
    """Write `docs` into the growing source: dated in `month` (YYYY-MM), or spread over 2023."""
    src = folder / "src"
    src.mkdir(parents=True, exist_ok=True)
    cfg = folder / "sources.toml"
    if not cfg.exists():
        cfg.write_text(f'[sources.grow]\npath = "{src}"\n', encoding="utf-8")
    for d in docs:
        stem = src / f"{kind}-{d.family}"
        stem.with_suffix(".txt").write_text(d.title + "\n\n" + "\n\n".join(d.paragraphs) + "\n", encoding="utf-8")
        day = f"{month}-{1 + d.family % 28:02d}" if month else f"2023-{1 + d.day // 28 % 12:02d}-{1 + d.day % 28:02d}"
        when = f"{day}T00:00:00Z"
        stem.with_suffix(".json").write_text(
            json.dumps({"url": f"https://grow.example/{d.family}", "published_at": when})
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    shared = REPO.parent / "shared" / "data"
    parser.add_argument("--aeb", type=Path, default=shared / "aeb")
    parser.add_argument("--wcxb", type=Path, default=shared / "wcxb-dev")
    parser.add_argument("--scale", type=int, default=20_000, help="largest index the update is timed against")
    parser.add_argument("--keep", type=Path, default=None, help="work here and keep it (default: a temp dir)")
    parser.add_argument("--seed", type=int, default=20241206)
    args = parser.parse_args(argv)
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    rng = random.Random(args.seed)
    texts = originals(args.aeb if args.aeb.is_dir() else None, args.wcxb if args.wcxb.is_dir() else None)
    docs = copies(texts, rng)
    hard = same_topic(texts)
    work = args.keep or Path(tempfile.mkdtemp(prefix="newsflow-dedup-"))
    try:
        cfg = write_corpus(work / "corpus", docs)
        root = DataRoot(work / "data")
        t0 = time.perf_counter()
        written = ingest(cfg, root, 0)
        t1 = time.perf_counter()
        done = update_clusters(root)
        t2 = time.perf_counter()
        print(
            f"{len(texts)} originals from {', '.join(str(p) for p in (args.aeb, args.wcxb) if p.is_dir())} "
            f"and samples/wire; ingest {written} articles {t1 - t0:.1f} s; update_clusters {t2 - t1:.1f} s "
            f"({done.clustered} in clusters, {done.copies} exact copies)"
        )
        for line in score(root, docs, hard):
            print(line)
        for line in speed(texts, docs, root, args.scale, work):
            print(line)
        sims = []
        for a, b in hard[:500]:
            pa, pb = fingerprints([" ".join(texts[a][1]), " ".join(texts[b][1])])
            if pa.signature is not None and pb.signature is not None:
                sims.append(estimate(pa.signature, pb.signature))
        print(f"same-topic pairs' estimated Jaccard: median {statistics.median(sims):.3f}, max {max(sims):.3f}")
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
