"""Fit the HTML extractor's model on the development pages; report it cross-validated by domain.

Usage
-----
    python scripts/train_extractor.py [--aeb DIR] [--wcxb DIR] [--out normalizers/html/model.json]
                                      [--folds 5] [--report cv.json] [--cv-only]

Needs the `bench` extra (`make bench-deps`: CatBoost, scikit-learn). The pages are the
development sets in `/work/shared/data/` by default: AEB (181 news pages, MIT) and
WCXB dev (711 article pages, CC-BY-4.0); the model written is data derived from them.

What it does
------------
1. Every page is cut into blocks by the product's own `normalizers.html.segment` (what
   the extractor sees at run time), and each block is labelled content when at least
   half of its 4-word shingles are in the page's gold text (a block of fewer than four
   words: when its words appear in the gold text in that order). Each page also gives a
   *clean page*: its gold text alone as plain HTML, so pages without chrome (a feed's
   full content, a reader view) are learned too.
2. Cross-validation with folds grouped by web site (the host of the page's URL, so no
   site is ever both trained on and scored): per fold, the word tables are learned
   from the training pages only, the first block model is fitted, the second one on
   the first one's out-of-fold probabilities (inner folds, also grouped by site), and
   the held-out pages are extracted as at run time (`decide.choose`) and scored with
   the benchmark's metric (bench/extraction.py). The figures printed are the ones to
   expect on sites the model has not seen.
3. The page-confidence model is fitted on the cross-validated extractions: it learns
   to predict the F1 an extraction scored from what the extraction looks like.
4. The shipped models are fitted on all pages the same way and written as JSON.

Generalisation guards: a word of element names enters the tables only when pages of
at least `MIN_NAME_SITES` different sites use it (`MIN_WORD_SITES` for block words), so
no site's own class names are learned; trees are shallow (depth 6) and few; nothing
refers to a page, a site or a phrase.
"""

from __future__ import annotations

import argparse
import gzip
import html
import json
import math
import re
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.extraction import match, precision_score, recall_score, shingles  # noqa: E402
from normalizers.html.decide import (  # noqa: E402
    PAGE_FEATURES,
    choose,
    page_confidence,
    page_features,
    prose_words,
)
from normalizers.html.extract import parse_html, repeated_blocks  # noqa: E402
from normalizers.html.features import (  # noqa: E402
    BLOCK_FEATURES,
    CONTEXT_FEATURES,
    Tables,
    block_features,
    context_features,
    name_words,
    short_words,
)
from normalizers.html.model import Forest  # noqa: E402
from normalizers.html.segment import Page, segment  # noqa: E402

# A word enters a table only when this many different sites use it: site-specific class
# names ("td-post-content", a hash) never do.
MIN_NAME_SITES = 5
MIN_WORD_SITES = 10
# Log-odds are clipped to this: one word never decides alone.
MAX_LOG_ODDS = 4.0
# Blocks weigh by their length (the metric counts shingles), capped so one long block
# does not outweigh a page, with a floor so short blocks still count.
WEIGHT_CAP, WEIGHT_FLOOR = 1500, 20
ITERATIONS, DEPTH, LEARNING_RATE, SEED = 400, 6, 0.1, 0
TOKEN = re.compile(r"\w+")


@dataclass
class Sample:
    """One development page, segmented and labelled."""

    dataset: str
    page_id: str
    site: str
    page: Page
    gold: str
    labels: np.ndarray


def load(dataset: str, folder: Path) -> list[Sample]:
    """The pages of one development set, segmented by the product and labelled against their gold text."""
    truth = json.loads((folder / "ground-truth.json").read_text(encoding="utf-8"))
    out = []
    for page_id in sorted(truth):
        html = gzip.decompress((folder / "html" / f"{page_id}.html.gz").read_bytes()).decode("utf-8", "replace")
        gold = truth[page_id].get("articleBody", "")
        host = (urlsplit(truth[page_id].get("url") or "").hostname or page_id).lower().removeprefix("www.")
        page = segment(parse_html(html))
        out.append(Sample(dataset, page_id, host, page, gold, label(page.texts, gold)))
    return out


def label(texts: list[str], gold: str) -> np.ndarray:
    """1 for a block whose text is in the gold article (at least half its shingles), else 0."""
    gold_shingles = set(shingles(gold))
    gold_words = " " + " ".join(TOKEN.findall(gold)) + " "
    out = np.zeros(len(texts), dtype=np.int8)
    for j, text in enumerate(texts):
        words = TOKEN.findall(text)
        if len(words) >= 4:
            grams = [tuple(words[i : i + 4]) for i in range(len(words) - 3)]
            out[j] = sum(1 for g in grams if g in gold_shingles) >= 0.5 * len(grams)
        elif words:
            out[j] = (" " + " ".join(words) + " ") in gold_words
    return out


def learn_tables(samples: list[Sample]) -> Tables:
    """Log-odds (content vs boilerplate, by characters) of the words used by enough sites."""
    names_in: Counter[str] = Counter()
    names_out: Counter[str] = Counter()
    name_sites: dict[str, set[str]] = defaultdict(set)
    words_in: Counter[str] = Counter()
    words_out: Counter[str] = Counter()
    word_sites: dict[str, set[str]] = defaultdict(set)
    for s in samples:
        page = s.page
        path_words: list[set[str]] = []
        for i, name in enumerate(page.names):
            own = set(name_words(name)) if name else set()
            parent = page.parents[i]
            path_words.append(own | path_words[parent] if parent >= 0 else own)
        for j, text in enumerate(page.texts):
            weight = min(len(text), 400)
            content = bool(s.labels[j])
            for w in path_words[page.owners[j]]:
                name_sites[w].add(s.site)
                (names_in if content else names_out)[w] += weight
            for w in set(short_words(text)):
                word_sites[w].add(s.site)
                (words_in if content else words_out)[w] += 1
    return Tables(
        names=_log_odds(names_in, names_out, name_sites, MIN_NAME_SITES, 1e-6),
        words=_log_odds(words_in, words_out, word_sites, MIN_WORD_SITES, 1e-5),
    )


def _log_odds(
    inside: Counter[str], outside: Counter[str], sites: dict[str, set[str]], min_sites: int, smooth: float
) -> dict[str, float]:
    total_in, total_out = sum(inside.values()) or 1, sum(outside.values()) or 1
    out = {}
    for w in sorted(sites):
        if len(sites[w]) >= min_sites:
            ratio = (inside[w] / total_in + smooth) / (outside[w] / total_out + smooth)
            out[w] = round(max(-MAX_LOG_ODDS, min(MAX_LOG_ODDS, math.log(ratio))), 4)
    return out


def without_article(s: Sample) -> Sample:
    """The page with its article's blocks taken out (its elements stay): a page that has no article."""
    page, keep = s.page, [j for j in range(len(s.page.texts)) if not s.labels[j]]
    bare = Page(
        tags=page.tags,
        parents=page.parents,
        names=page.names,
        hidden=page.hidden,
        nodes=page.nodes,
        texts=[page.texts[j] for j in keep],
        links=[page.links[j] for j in keep],
        owners=[page.owners[j] for j in keep],
        title=page.title,
    )
    return Sample(s.dataset, s.page_id + "-bare", s.site, bare, "", np.zeros(len(keep), dtype=np.int8))


def clean_page(s: Sample, wrapped: bool) -> Sample | None:
    """The page's gold text alone as a plain page (title, heading, paragraphs): an article with no chrome.

    Pages like it (a feed's full content, a reader view, a minimal site) must come out
    whole and sure; every second one has an `<article>` wrapper, the others none.
    """
    paragraphs = [" ".join(line.split()) for line in s.gold.splitlines() if line.strip()]
    if not paragraphs:
        return None
    title = html.escape(s.page.title[:200])
    body = f"<h1>{title}</h1>" + "".join(f"<p>{html.escape(text)}</p>" for text in paragraphs)
    if wrapped:
        body = f"<article>{body}</article>"
    page = segment(parse_html(f"<html><head><title>{title}</title></head><body>{body}</body></html>"))
    return Sample("clean", s.page_id + "-clean", s.site, page, s.gold, label(page.texts, s.gold))


def weights(s: Sample) -> np.ndarray:
    """Training weight of each block of a page."""
    return np.minimum(np.array([len(t) for t in s.page.texts], dtype=np.float64), WEIGHT_CAP) + WEIGHT_FLOOR


def fit(rows: np.ndarray, labels: np.ndarray, sample_weight: np.ndarray, regression: bool = False) -> Any:
    """A CatBoost model of symmetric trees (the kind `normalizers.html.model.Forest` evaluates)."""
    from catboost import CatBoostClassifier, CatBoostRegressor

    options = {
        "iterations": ITERATIONS,
        "depth": DEPTH,
        "learning_rate": LEARNING_RATE,
        "random_seed": SEED,
        "verbose": 0,
        "thread_count": -1,
        "allow_writing_files": False,
    }
    if regression:
        model = CatBoostRegressor(**{**options, "iterations": 200, "depth": 4})
    else:
        model = CatBoostClassifier(**options)
    model.fit(rows, labels, sample_weight=sample_weight)
    return model


def probabilities(model: Any, rows: np.ndarray) -> np.ndarray:
    """The content probability of each row."""
    return np.asarray(model.predict_proba(rows)[:, 1]) if len(rows) else np.zeros(0)


def groups_of(sites: list[str], folds: int) -> list[tuple[list[int], list[int]]]:
    """Train/test index lists with no site on both sides."""
    from sklearn.model_selection import GroupKFold

    return [(list(a), list(b)) for a, b in GroupKFold(n_splits=folds).split(np.zeros(len(sites)), groups=sites)]


def fit_stages(train: list[Sample], inner_folds: int) -> tuple[Tables, Any, Any]:
    """Tables, first and second block models from training pages (the second on out-of-fold probabilities)."""
    out_of_fold: dict[int, np.ndarray] = {}
    for inner_train, inner_test in groups_of([s.site for s in train], inner_folds):
        part = [train[i] for i in inner_train]
        tables = learn_tables(part)
        first = fit(
            np.vstack([block_features(s.page, tables) for s in part]),
            np.concatenate([s.labels for s in part]),
            np.concatenate([weights(s) for s in part]),
        )
        for i in inner_test:
            out_of_fold[i] = probabilities(first, block_features(train[i].page, tables))
    tables = learn_tables(train)
    rows = [block_features(s.page, tables) for s in train]
    first = fit(np.vstack(rows), np.concatenate([s.labels for s in train]), np.concatenate([weights(s) for s in train]))
    second = fit(
        np.vstack([np.hstack([rows[i], context_features(s.page, out_of_fold[i])]) for i, s in enumerate(train)]),
        np.concatenate([s.labels for s in train]),
        np.concatenate([weights(s) for s in train]),
    )
    return tables, first, second


def extract_blocks(sample: Sample, tables: Tables, first: Any, second: Any) -> tuple[np.ndarray, np.ndarray]:
    """(probabilities, kept) of a page's blocks, as the extractor decides at run time."""
    rows = block_features(sample.page, tables)
    p = probabilities(first, rows)
    if len(rows):
        p = probabilities(second, np.hstack([rows, context_features(sample.page, p)]))
    return p, choose(p)


def page_score(sample: Sample, kept: np.ndarray) -> tuple[float, float, float, tuple[float, float, float]]:
    """Precision, recall, F1 of the kept blocks against the gold text, and the shares behind them.

    As at run time, a kept block repeating other kept text is left out.
    """
    indexes = np.flatnonzero(kept).tolist()
    repeated = repeated_blocks(sample.page, indexes)
    text = "\n".join(sample.page.texts[j] for j in indexes if j not in repeated)
    shares = match(sample.gold, text)
    precision, recall = precision_score(*shares), recall_score(*shares)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1, shares


def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """F1 as bench/extraction.py computes it (precision and recall averaged over pages), and pages under 0.5."""
    precision = [r["precision"] for r in rows if r["tp"] + r["fp"] > 0]
    recall = [r["recall"] for r in rows if r["tp"] + r["fn"] > 0]
    p = sum(precision) / len(precision) if precision else 0.0
    r = sum(recall) / len(recall) if recall else 0.0
    return {
        "pages": len(rows),
        "f1": round(2 * p * r / (p + r), 4) if p + r else 0.0,
        "precision": round(p, 4),
        "recall": round(r, 4),
        "under_half": sum(1 for x in rows if x["f1"] < 0.5),
    }


def confidence_figures(predicted: np.ndarray, actual: np.ndarray, kind: np.ndarray) -> dict[str, Any]:
    """How well held-out confidence separates good extractions, bad ones, clean pages and pages without an article."""
    real = kind == "real"
    good, bad = real & (actual >= 0.5), real & (actual < 0.5)
    clean, bare = kind == "clean", kind == "bare"
    out: dict[str, Any] = {
        "correlation_on_real_pages": round(float(np.corrcoef(predicted[real], actual[real])[0, 1]), 3)
    }
    for threshold in (0.1, 0.15, 0.2, 0.3, 0.4, 0.5):
        below = predicted < threshold
        out[f"below_{threshold}"] = {
            "good_pages_quarantined": f"{int((below & good).sum())}/{int(good.sum())}",
            "bad_pages_quarantined": f"{int((below & bad).sum())}/{int(bad.sum())}",
            "clean_pages_quarantined": f"{int((below & clean).sum())}/{int(clean.sum())}",
            "pages_without_article_quarantined": f"{int((below & bare).sum())}/{int(bare.sum())}",
        }
    return out


def forest(model: Any, logistic: bool) -> dict[str, Any]:
    """A CatBoost model as `normalizers.html.model.Forest.from_dict` reads it."""
    import os
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "model.json")
        model.save_model(path, format="json")
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    trees = data["oblivious_trees"]
    depth = max(len(t["splits"]) for t in trees)
    features, borders, values = [], [], []
    for tree in trees:
        splits = tree["splits"]
        # A shallower tree is padded with questions that are never true (its leaves repeat).
        features.append([s["float_feature_index"] for s in splits] + [0] * (depth - len(splits)))
        borders.append([s["border"] for s in splits] + [math.inf] * (depth - len(splits)))
        leaves = tree["leaf_values"]
        values.append([leaves[i % len(leaves)] for i in range(2**depth)])
    scale, bias = data.get("scale_and_bias", [1.0, [0.0]])
    return {
        "features": features,
        "borders": [[b if math.isfinite(b) else 1e38 for b in row] for row in borders],
        "values": [[round(v, 7) for v in row] for row in values],
        "scale": scale,
        "bias": bias[0] if isinstance(bias, list) else bias,
        "logistic": logistic,
    }


def forest_of(model: Any, logistic: bool) -> Forest:
    """A CatBoost model as the extractor evaluates it."""
    return Forest.from_dict(forest(model, logistic))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--aeb", type=Path, default=Path("/work/shared/data/aeb"))
    parser.add_argument("--wcxb", type=Path, default=Path("/work/shared/data/wcxb-dev"))
    parser.add_argument("--out", type=Path, default=REPO / "normalizers" / "html" / "model.json")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--report", type=Path, help="write per-page cross-validated scores here (JSON)")
    parser.add_argument("--cv-only", action="store_true", help="cross-validate and report; write no model")
    args = parser.parse_args(argv)
    started = time.monotonic()
    real_samples = load("aeb", args.aeb) + load("wcxb-dev", args.wcxb)
    sites = len({s.site for s in real_samples})
    print(f"{len(real_samples)} pages from {sites} sites ({time.monotonic() - started:.0f} s)")
    # Each page also as a clean page of its gold text; it shares its page's site, so
    # the two are always on the same side of a fold.
    samples = real_samples + [
        c for i, s in enumerate(real_samples) if (c := clean_page(s, wrapped=i % 2 == 0)) is not None
    ]

    # 1. Cross-validation grouped by site.
    per_page: list[dict[str, Any]] = []
    confidence_rows: list[np.ndarray] = []
    confidence_targets: list[float] = []
    confidence_words: list[int] = []
    confidence_kind: list[str] = []
    confidence_sites: list[str] = []
    for fold, (train_index, test_index) in enumerate(groups_of([s.site for s in samples], args.folds)):
        tables, first, second = fit_stages([samples[i] for i in train_index], inner_folds=3)
        for i in test_index:
            s = samples[i]
            p, kept = extract_blocks(s, tables, first, second)
            precision, recall, f1, (tp, fp, fn) = page_score(s, kept)
            per_page.append(
                {
                    "dataset": s.dataset,
                    "page": s.page_id,
                    "site": s.site,
                    "precision": precision,
                    "recall": recall,
                    "f1": f1,
                    "tp": tp,
                    "fp": fp,
                    "fn": fn,
                }
            )
            confidence_rows.append(page_features(s.page, p, kept))
            confidence_words.append(prose_words(s.page, kept))
            confidence_targets.append(f1)
            confidence_kind.append("clean" if s.dataset == "clean" else "real")
            confidence_sites.append(s.site)
            # The same page with its article taken out: whatever is kept there is wrong,
            # so the confidence model also learns what a page without an article looks like.
            if s.dataset != "clean" and s.labels.any():
                bare = without_article(s)
                p, kept = extract_blocks(bare, tables, first, second)
                confidence_rows.append(page_features(bare.page, p, kept))
                confidence_words.append(prose_words(bare.page, kept))
                confidence_targets.append(0.0)
                confidence_kind.append("bare")
                confidence_sites.append(s.site)
        print(f"fold {fold + 1}/{args.folds} done ({time.monotonic() - started:.0f} s)", flush=True)
    cv = {ds: summary([r for r in per_page if r["dataset"] == ds]) for ds in ("aeb", "wcxb-dev", "clean")}
    for ds, figures in cv.items():
        print(f"cross-validated by site, {ds}: {figures}")

    # 2. Page confidence: predicts the F1 an extraction scores, from its PAGE_FEATURES.
    confidence_x = np.vstack(confidence_rows)
    confidence_y = np.array(confidence_targets)
    kind = np.array(confidence_kind)
    held_out = np.zeros(len(confidence_y))
    for train_index, test_index in groups_of(confidence_sites, args.folds):
        model = fit(confidence_x[train_index], confidence_y[train_index], np.ones(len(train_index)), regression=True)
        # As at run time (`decide.page_confidence`), with its caps.
        shipped = forest_of(model, logistic=False)
        held_out[test_index] = [page_confidence(shipped, confidence_x[i], confidence_words[i]) for i in test_index]
    confidence_report = confidence_figures(held_out, confidence_y, kind)
    print(f"confidence (cross-validated by site): {confidence_report}")
    if args.report:
        for r, c in zip(per_page, held_out[kind != "bare"], strict=True):
            r["confidence"] = round(float(c), 4)
        args.report.write_text(json.dumps(per_page, indent=1), encoding="utf-8")
    if args.cv_only:
        return 0

    # 3. The shipped model: all pages.
    tables, first, second = fit_stages(samples, inner_folds=args.folds)
    confidence = fit(confidence_x, confidence_y, np.ones(len(confidence_y)), regression=True)
    data = {
        "block_features": list(BLOCK_FEATURES),
        "context_features": list(CONTEXT_FEATURES),
        "page_features": list(PAGE_FEATURES),
        "tables": {"names": tables.names, "words": tables.words},
        "blocks": forest(first, logistic=True),
        "context": forest(second, logistic=True),
        "confidence": forest(confidence, logistic=False),
        "info": {
            "trained_on": {
                "aeb": "article-extraction-benchmark, 181 pages (Scrapinghub, MIT)",
                "wcxb-dev": "WCXB development split, 711 pages (Murrough Foley, CC-BY-4.0)",
                "clean": "each page's gold text alone as a plain page",
            },
            "model": {
                "kind": "CatBoost symmetric trees",
                "iterations": ITERATIONS,
                "depth": DEPTH,
                "learning_rate": LEARNING_RATE,
                "seed": SEED,
            },
            "tables": {
                "min_name_sites": MIN_NAME_SITES,
                "min_word_sites": MIN_WORD_SITES,
                "names": len(tables.names),
                "words": len(tables.words),
            },
            "cross_validated_by_site": {**cv, "folds": args.folds, "confidence": confidence_report},
        },
    }
    args.out.write_text(json.dumps(data, separators=(",", ":"), sort_keys=False) + "\n", encoding="utf-8")
    print(f"wrote {args.out} ({args.out.stat().st_size // 1024} KiB, {time.monotonic() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
