"""Bring the duplicate index and the `clusters` table up to date with the articles.

`update_clusters` runs after every run, backfill and re-normalisation (and as
`newsflow dedup`). It finds the partitions whose file changed since it last looked,
reads only their ids, dates and content hashes, and fingerprints only the articles
that are new or whose content changed (reading their text); articles that vanished
leave the index. Each new or changed article is matched against the corpus through
its LSH band keys, and the near-duplicate links it makes or breaks decide which
clusters are computed again. Everything it decides depends on the corpus only, never
on the order articles arrived in:

- clusters are the connected groups of linked articles;
- a cluster is named after its original, the earliest published member (ties: the
  smaller `article_id`);
- an exact copy's `duplicate_of` is the earliest published article with its words.

One process updates the index at a time (a lock under `.locks/`); the index is derived
data, so a run killed midway leaves it to be caught up (or rebuilt) by the next.
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from normalizers.similarity import (
    MIN_WORDS,
    SIGNATURE_VERSION,
    THRESHOLD,
    band_keys,
    estimate,
    signatures,
    text_key,
    words,
)
from warehouse.atomic import locked
from warehouse.dedup import DedupStore, Doc, write_clusters
from warehouse.layout import PARTITION_FILE, DataRoot, Partition

__all__ = ["DedupSummary", "update_clusters"]

# Articles fingerprinted per batch: bounds the memory of texts held at once.
BATCH = 2000
LOCK_TIMEOUT_S = 3600.0


@dataclass(slots=True)
class DedupSummary:
    """What one update of the duplicate index did."""

    added: int = 0
    changed: int = 0
    removed: int = 0
    articles: int = 0  # in the index afterwards
    clustered: int = 0  # articles in a cluster of two or more
    copies: int = 0  # exact copies (with a `duplicate_of`)
    partitions: list[str] = field(default_factory=list)  # whose `clusters` file was rewritten
    seconds: float = 0.0

    def line(self) -> str:
        """One line for a run summary."""
        return (
            f"duplicates: {self.added} added, {self.changed} changed, {self.removed} removed; "
            f"{self.articles} articles, {self.clustered} in clusters, {self.copies} exact copies ({self.seconds:.1f} s)"
        )


def update_clusters(root: DataRoot, rebuild: bool = False) -> DedupSummary:
    """Update the duplicate index and the `clusters` files from the articles now in `root` (see the module)."""
    started = time.monotonic()
    summary = DedupSummary()
    with locked(root.locks / "dedup.lock", timeout=LOCK_TIMEOUT_S), DedupStore(root.state) as store:
        if rebuild or store.version() != SIGNATURE_VERSION:
            store.reset(SIGNATURE_VERSION)
        files = _partition_files(root)
        known = store.partition_files()
        changed = sorted(k for k, f in files.items() if known.get(k) != f)
        gone = sorted(k for k in known if k not in files)
        now: dict[str, tuple[str, str | None, str]] = {}  # article_id -> (partition, published_at, content_hash)
        for key in changed:
            now.update(_rows(root, key))
        before = {d.article_id: d for d in store.docs_in_partitions(changed + gone)}
        before.update(store.docs_by_article([a for a in now if a not in before]))
        affected: set[int] = set()
        touched: set[str] = set()  # partitions with an article added, changed, moved in or out, or removed
        refresh: list[tuple[str, Doc | None]] = []  # articles to fingerprint: (id, the indexed doc if any)
        with store.transaction():
            for aid, (part, published, chash) in now.items():
                doc = before.get(aid)
                if doc is None or doc.content_hash != chash:
                    refresh.append((aid, doc))
                elif (doc.partition, doc.published_at) != (part, published):
                    touched.update((doc.partition, part))
                    doc.partition, doc.published_at, doc.source = part, published, Partition.parse(part).source
                    store.update(doc)
                    affected.add(doc.id)
            gone_docs = [d for aid, d in before.items() if aid not in now]
            touched.update(d.partition for d in gone_docs)
            touched.update(now[aid][0] for aid, _ in refresh)
            touched.update(d.partition for _, d in refresh if d is not None)
            for doc in gone_docs:
                affected.update(store.unindex(doc.id, _keys(doc)))
            store.remove([d.id for d in gone_docs])
            summary.removed = len(gone_docs)
        for i in range(0, len(refresh), BATCH):
            batch = refresh[i : i + BATCH]
            texts = _texts(root, {now[aid][0] for aid, _ in batch}, {aid for aid, _ in batch})
            with store.transaction():
                affected |= _fingerprint(store, batch, now, texts, summary)
        with store.transaction():
            summary.partitions = _recluster(root, store, affected, touched)
            store.set_partition_files({**{k: files[k] for k in changed}, **dict.fromkeys(gone)})
        summary.articles, summary.clustered, summary.copies = store.count()
    summary.seconds = time.monotonic() - started
    return summary


def _partition_files(root: DataRoot) -> dict[str, str]:
    """Every partition file's identity (inode, size, mtime), by partition key."""
    out: dict[str, str] = {}
    for path in root.articles.glob(f"source=*/year=*/month=*/{PARTITION_FILE}"):
        try:
            st = os.stat(path)
            part = Partition.parse(_key(root, path))
        except (OSError, ValueError):  # gone meanwhile, or not a partition of ours
            continue
        out[part.key] = f"{st.st_ino}:{st.st_size}:{st.st_mtime_ns}"
    return out


def _key(root: DataRoot, path: Path) -> str:
    source, year, month = (p.split("=", 1)[1] for p in path.parent.relative_to(root.articles).parts)
    return f"{source}/{int(year):04d}-{int(month):02d}"


def _rows(root: DataRoot, key: str) -> dict[str, tuple[str, str | None, str]]:
    """A partition's articles: id -> (partition, published_at as ISO UTC, content hash)."""
    path = root.partition_file(Partition.parse(key))
    try:
        table = pq.read_table(str(path), columns=["article_id", "published_at", "content_hash"])
    except (OSError, pa.ArrowInvalid):  # replaced or unreadable meanwhile: read again next time
        return {}
    published = table.column("published_at").to_pylist()
    return {
        aid: (key, None if when is None else when.astimezone(UTC).isoformat(timespec="microseconds"), chash)
        for aid, when, chash in zip(
            table.column("article_id").to_pylist(), published, table.column("content_hash").to_pylist(), strict=True
        )
    }


def _texts(root: DataRoot, keys: Iterable[str], wanted: set[str]) -> dict[str, str]:
    """The text of the `wanted` articles, read from their partitions."""
    out: dict[str, str] = {}
    ids = pa.array(sorted(wanted), pa.string())
    for key in keys:
        path = root.partition_file(Partition.parse(key))
        try:
            table = pq.read_table(str(path), columns=["article_id", "text"])
        except (OSError, pa.ArrowInvalid):
            continue
        table = table.filter(pc.is_in(table.column("article_id"), value_set=ids))
        out.update(zip(table.column("article_id").to_pylist(), table.column("text").to_pylist(), strict=True))
    return out


def _keys(doc: Doc) -> np.ndarray | None:
    return None if doc.signature is None else band_keys(doc.signature.reshape(1, -1))[0]


def _fingerprint(
    store: DedupStore,
    batch: list[tuple[str, Doc | None]],
    now: dict[str, tuple[str, str | None, str]],
    texts: dict[str, str],
    summary: DedupSummary,
) -> set[int]:
    """Fingerprint, index and link a batch of new or changed articles; returns the articles whose cluster may change."""
    affected: set[int] = set()
    present = [(aid, doc) for aid, doc in batch if aid in texts]  # an article replaced meanwhile: next time
    tokens = [words(texts[aid]) for aid, _ in present]
    long_enough = [i for i, t in enumerate(tokens) if len(t) >= MIN_WORDS]
    sigs = signatures([tokens[i] for i in long_enough])
    sig_of = {i: sigs[n] for n, i in enumerate(long_enough)}
    keys = band_keys(sigs)
    key_of = {i: keys[n] for n, i in enumerate(long_enough)}
    fresh: list[Doc] = []
    for i, (aid, old) in enumerate(present):
        part, published, chash = now[aid]
        doc = Doc(
            0,
            aid,
            Partition.parse(part).source,
            part,
            published,
            chash,
            text_key(tokens[i]),
            len(tokens[i]),
            sig_of.get(i),
        )
        if old is None:
            doc.id = store.add(doc)
            summary.added += 1
        else:
            affected.update(store.unindex(old.id, _keys(old)))
            doc.id = old.id
            store.update(doc)
            summary.changed += 1
        if i in key_of:
            store.index(doc.id, key_of[i])
        fresh.append(doc)
        affected.add(doc.id)
    # Links: exact copies whatever their length (each with each, so removing one never
    # parts the others), near-duplicates among the texts long enough.
    pairs: set[tuple[int, int]] = set()
    same_key: dict[str, list[int]] = {}
    for d in store.docs_by_id(store.by_text_key({d.text_key for d in fresh})):
        same_key.setdefault(d.text_key, []).append(d.id)
    for ids in same_key.values():
        pairs.update((a, b) for a in ids for b in ids if a < b)
    for i, doc in enumerate(fresh):
        if doc.signature is None:
            continue
        others = [c for c in store.candidates(key_of[i]) if c != doc.id]
        for other in store.docs_by_id(others):
            if other.signature is not None and estimate(doc.signature, other.signature) >= THRESHOLD:
                pairs.add((min(doc.id, other.id), max(doc.id, other.id)))
    store.link(pairs)
    for a, b in pairs:
        affected.update((a, b))
    return affected


def _recluster(root: DataRoot, store: DedupStore, affected: set[int], touched: set[str]) -> list[str]:
    """Compute again the clusters holding `affected` articles; rewrite the `clusters` files that changed.

    A partition's file is rewritten when one of its articles' rows changed: `touched`
    (articles added, changed, moved or removed), or a new cluster for one of them. So
    an update costs what its articles touch, however large the corpus.
    """
    done: set[int] = set()
    dirty: set[str] = set(touched)
    for start in sorted(affected):
        if start in done:
            continue
        members = _component(store, start)
        done |= members
        docs = store.docs_by_id(members)
        if not docs:
            continue  # removed
        for doc, cluster in _clusters(docs):
            if doc.cluster != cluster:
                doc.cluster = cluster
                dirty.add(doc.partition)
        store.set_clusters(docs)
    for key in sorted(dirty):
        write_clusters(root, Partition.parse(key), store.docs_in_partitions([key]))
    return sorted(dirty)


def _component(store: DedupStore, start: int) -> set[int]:
    """The articles linked to `start`, directly or through others (breadth first)."""
    seen = {start}
    queue = deque([start])
    while queue:
        for other in store.links_of(queue.popleft()):
            if other not in seen:
                seen.add(other)
                queue.append(other)
    return seen


# Times are compared as ISO strings, all UTC with microseconds; an undated article sorts after every dated one.
_LAST = datetime.max.replace(tzinfo=UTC).isoformat(timespec="microseconds")


def _clusters(docs: list[Doc]) -> list[tuple[Doc, tuple[str, int, bool, float, str | None]]]:
    """Each member's cluster fields: named after the original, with similarity to it and the article it copies."""
    order = sorted(docs, key=lambda d: (d.published_at or _LAST, d.article_id))
    original = order[0]
    first_with: dict[str, str] = {}
    for d in order:
        first_with.setdefault(d.text_key, d.article_id)
    out = []
    for d in docs:
        if d.text_key == original.text_key:
            similarity = 1.0
        elif d.signature is not None and original.signature is not None:
            similarity = estimate(d.signature, original.signature)
        else:
            similarity = 0.0
        copy_of = first_with[d.text_key]
        out.append(
            (
                d,
                (
                    original.article_id,
                    len(docs),
                    d is original,
                    similarity,
                    None if copy_of == d.article_id else copy_of,
                ),
            )
        )
    return out
