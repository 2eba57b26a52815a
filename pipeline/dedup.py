"""Bring the duplicate index and the `clusters` table up to date with the articles.

`update_clusters` runs after every run, backfill and re-normalisation (and as
`newsflow dedup`). It finds the partitions whose file changed since it last looked,
reads only their ids, dates and content hashes, and fingerprints only the articles
that are new or whose content changed (reading their text); articles that vanished
leave the index. It works one partition at a time and keeps its working sets in the
index's database, so its memory follows the largest partition, not the corpus. Each
new or changed article is matched against the corpus through its LSH band keys, and
the near-duplicate links it makes or breaks decide which clusters are computed again.
Everything it decides depends on the corpus only, never on the order articles
arrived in:

- clusters are the connected groups of linked articles;
- a cluster is named after its original, the earliest published member (ties: the
  smaller `article_id`);
- an exact copy's `duplicate_of` is the earliest published article with its words.

One process updates the index at a time (a lock under `.locks/`); the index is derived
data, so a run killed midway leaves it to be caught up (or rebuilt) by the next: what
it committed stays, and the articles it marked for clustering stay marked.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from normalizers.similarity import BANDS, NUM_PERM, SIGNATURE_VERSION, THRESHOLD, band_keys, estimate, fingerprints
from warehouse.atomic import locked
from warehouse.dedup import DedupStore, Doc, write_clusters
from warehouse.layout import PARTITION_FILE, DataRoot, Partition

__all__ = ["DedupSummary", "Matches", "find_matches", "link_matches", "update_clusters"]

# Articles fingerprinted per batch: bounds the memory of the texts held at once;
# BENCHMARKS.md has the peak and the time at three sizes.
BATCH = 500
# Bounds on the work one article costs, whatever the corpus (see `link_matches`).
MAX_POSTINGS = 64
MAX_CANDIDATES = 64
MAX_LINKS = 8
# Articles of a batch looked up in the index at once (see `find_matches`).
LOOKUP_SLICE = 100
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
    rebuilt: str | None = None  # why the index was built again from nothing (an unreadable one), if it was

    def line(self) -> str:
        """One line for a run summary."""
        line = (
            f"duplicates: {self.added} added, {self.changed} changed, {self.removed} removed; "
            f"{self.articles} articles, {self.clustered} in clusters, {self.copies} exact copies ({self.seconds:.1f} s)"
        )
        return f"{line}; the index was built again: {self.rebuilt}" if self.rebuilt else line


def update_clusters(root: DataRoot, rebuild: bool = False) -> DedupSummary:
    """Update the duplicate index and the `clusters` files from the articles now in `root` (see the module)."""
    started = time.monotonic()
    summary = DedupSummary()
    with locked(root.locks / "dedup.lock", timeout=LOCK_TIMEOUT_S), _open(root, rebuild, summary) as store:
        if store.version() != SIGNATURE_VERSION:
            store.reset(SIGNATURE_VERSION)
        files = _partition_files(root)
        known = store.partition_files()
        changed = sorted(k for k, f in files.items() if known.get(k) != f)
        gone = sorted(k for k in known if k not in files)
        store.start_update()
        # One partition at a time, so memory follows the largest partition, not the corpus:
        # first where every listed article now is, then what left, then what is new.
        # Partitions whose `clusters` file is written again: every changed or vanished one (an
        # update killed after moving articles leaves no other trace of their old rows), and
        # those with an article moved out or removed.
        touched: set[str] = {*changed, *gone}
        for key in changed:
            with store.transaction():
                _place(store, key, _rows(root, key), touched)
        removed = store.gone(gone)
        for i in range(0, len(removed), RECLUSTER_SLICE):
            with store.transaction():
                docs = store.docs_by_id(removed[i : i + RECLUSTER_SLICE])
                for doc in docs:
                    store.lost_links(store.unindex(doc.id, _keys(doc)))
                store.remove([d.id for d in docs])
                touched.update(d.partition for d in docs)
                summary.removed += len(docs)
        for key in changed:
            rows = _rows(root, key)
            indexed = {d.article_id: d for d in store.docs_in_partitions([key], signatures=False)}
            refresh = [
                aid for aid, (_, _, chash) in rows.items() if getattr(indexed.get(aid), "content_hash", None) != chash
            ]
            # An id another partition lists too (never written so; read mid-replace) stays where the first pass put it.
            listed_elsewhere = store.docs_by_article([a for a in refresh if a not in indexed], signatures=False)
            refresh = [aid for aid in refresh if aid not in listed_elsewhere]
            for texts in _texts(root, key, set(refresh)):
                # Changed articles are read again with their signatures, whose band keys leave the index.
                olds = {d.article_id: d for d in store.docs_by_id([indexed[a].id for a in texts if a in indexed])}
                batch = [(aid, olds.get(aid)) for aid in texts]
                with store.transaction():
                    changed_ids, lost = _fingerprint(store, batch, rows, texts, summary)
                    store.mark(changed_ids)
                    store.lost_links(lost)
        with store.transaction():
            # Batches commit one by one: articles an update killed before this point have no cluster yet.
            store.mark_unclustered()
            relink = store.take_lost_links()  # those removed since are gone from `docs` too
            # They also take over the band postings their lost links' articles left free: a key
            # holds the first MAX_POSTINGS articles indexed, and the rest of a family is found
            # only through keys that list some of them (as a rebuild would have it).
            again = store.docs_by_id(relink)
            store.mark([*relink, *link_matches(store, again, index=again)])
            summary.partitions = _recluster(root, store, touched)
            store.set_partition_files({**{k: files[k] for k in changed}, **dict.fromkeys(gone)})
        summary.articles, summary.clustered, summary.copies = store.count()
    summary.seconds = time.monotonic() - started
    return summary


def _place(store: DedupStore, key: str, rows: dict[str, tuple[str, str | None, str]], touched: set[str]) -> None:
    """Record where a changed partition's indexed articles now are, and note those it no longer lists."""
    here = {d.article_id: d for d in store.docs_in_partitions([key], signatures=False)}
    elsewhere = store.docs_by_article([a for a in rows if a not in here], signatures=False)
    moved: list[int] = []
    for aid, (part, published, chash) in rows.items():
        doc = here.get(aid) or elsewhere.get(aid)
        if doc is None or (doc.partition, doc.published_at) == (part, published):
            continue
        touched.update((doc.partition, part))
        doc.partition, doc.published_at, doc.source = part, published, Partition.parse(part).source
        store.move(doc)
        if doc.content_hash == chash:  # a changed one is fingerprinted again, and marked then
            moved.append(doc.id)
    store.mark(moved)
    store.leave(d for aid, d in here.items() if aid not in rows)


def _open(root: DataRoot, rebuild: bool, summary: DedupSummary) -> DedupStore:
    """The index, from nothing with `rebuild`, or when the file is not a readable database (it is derived data)."""
    if not rebuild:
        store: DedupStore | None = None
        try:
            store = DedupStore(root.state)
            store.version()
            return store
        except sqlite3.DatabaseError as exc:
            if store is not None:
                store.close()
            summary.rebuilt = f"{root.state / DedupStore.FILE} was unreadable ({exc})"
    for suffix in ("", "-wal", "-shm"):
        (root.state / f"{DedupStore.FILE}{suffix}").unlink(missing_ok=True)
    return DedupStore(root.state)


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


def _texts(root: DataRoot, key: str, wanted: set[str]) -> Iterator[dict[str, str]]:
    """The text of the `wanted` articles of a partition, BATCH at a time, read once through its row groups."""
    if not wanted:
        return
    ids = pa.array(sorted(wanted), pa.string())
    out: dict[str, str] = {}
    try:
        parquet = pq.ParquetFile(str(root.partition_file(Partition.parse(key))))
        for read in parquet.iter_batches(batch_size=BATCH, columns=["article_id", "text"]):
            kept = read.filter(pc.is_in(read.column(0), value_set=ids))
            out.update(zip(kept.column(0).to_pylist(), kept.column(1).to_pylist(), strict=True))
            if len(out) >= BATCH:
                yield out
                out = {}
    except (OSError, pa.ArrowInvalid):  # replaced or unreadable meanwhile: the rest next time
        pass
    if out:
        yield out


def _keys(doc: Doc) -> np.ndarray | None:
    return None if doc.signature is None else band_keys(doc.signature.reshape(1, -1))[0]


def _fingerprint(
    store: DedupStore,
    batch: list[tuple[str, Doc | None]],
    now: dict[str, tuple[str, str | None, str]],
    texts: dict[str, str],
    summary: DedupSummary,
) -> tuple[set[int], set[int]]:
    """Fingerprint, index and link a batch of new or changed articles.

    Returns the articles whose cluster may change, and those that lost a link to a
    changed article (to be matched again).
    """
    affected: set[int] = set()
    relink: set[int] = set()
    present = [(aid, doc) for aid, doc in batch if aid in texts]  # an article replaced meanwhile: next time
    prints = fingerprints([texts[aid] for aid, _ in present])
    fresh: list[Doc] = []
    for (aid, old), fp in zip(present, prints, strict=True):
        part, published, chash = now[aid]
        source = Partition.parse(part).source
        doc = Doc(0, aid, source, part, published, chash, fp.key, fp.words, fp.signature)
        if old is None:
            doc.id = store.add(doc)
            summary.added += 1
        else:
            relink.update(store.unindex(old.id, _keys(old)))
            doc.id = old.id
            store.update(doc)
            summary.changed += 1
        fresh.append(doc)
    affected.update(d.id for d in fresh)
    affected |= link_matches(store, fresh, index=fresh)
    return affected, relink - {d.id for d in fresh}


@dataclass(slots=True)
class Matches:
    """What the index says of a batch of articles, before anything is written."""

    keys: dict[int, list[int]]  # per article with a signature: its band keys
    held: dict[int, int]  # per band key of the batch held in the index: by how many articles
    near: dict[int, list[int]]  # per article with a signature: its near-duplicates, the most similar first


def find_matches(store: DedupStore, docs: Sequence[Doc]) -> Matches:
    """Near-duplicates of `docs` in the index and among themselves (reads the index only; see `link_matches`).

    NumPy over LOOKUP_SLICE articles at a time: an article's candidates are the articles sharing the
    most band keys with it (the index's holders of each key, and the batch's first
    MAX_POSTINGS articles with it), at most MAX_CANDIDATES of them (ties: the smaller
    id), and the first indexed holder of each of its keys (its anchors); its
    near-duplicates are the candidates whose signatures agree on at least THRESHOLD of
    their values, at most MAX_LINKS (the most similar, ties: the smaller id), and the
    most similar of its anchors.
    """
    long = [d for d in docs if d.signature is not None]
    if not long:
        return Matches({}, {}, {})
    ids = np.array([d.id for d in long], dtype=np.int64)
    sigs = np.stack([d.signature for d in long if d.signature is not None])
    keys = band_keys(sigs)
    flat = keys.ravel()
    # The batch's own articles find each other too (their keys are not in the index yet).
    order = np.argsort(flat, kind="stable")  # batch order within a key
    peer_keys, peer_docs = flat[order], np.repeat(ids, BANDS)[order]
    room = _rank(peer_keys) < MAX_POSTINGS
    peer_keys, peer_docs = peer_keys[room], peer_docs[room]
    # The index is read LOOKUP_SLICE articles at a time: a key of a large family lists
    # MAX_POSTINGS articles, and an article's pairs before counting are 32 times that.
    held: dict[int, int] = {}
    near: dict[int, list[int]] = {int(i): [] for i in ids}
    for first in range(0, len(long), LOOKUP_SLICE):
        part = keys[first : first + LOOKUP_SLICE].ravel()
        held_keys, held_docs = store.postings(part)
        # The index's keys come sorted: each key's run of holders, its count and its first holder.
        new = np.ones(len(held_keys), dtype=bool)
        new[1:] = held_keys[1:] != held_keys[:-1]
        starts = np.flatnonzero(new)
        counts = np.diff(np.append(starts, len(held_keys)))
        held.update(zip(held_keys[starts].tolist(), counts.tolist(), strict=True))
        firsts = (held_keys[starts], np.minimum.reduceat(held_docs, starts) if len(starts) else held_docs)
        mine, other, anchored = _candidates(part, first, ids, held_keys, held_docs, firsts, peer_keys, peer_docs)
        # The candidates' signatures: the batch's, and the others' read from the index.
        fetched_ids, fetched = store.signatures(np.setdiff1d(other, ids).tolist())
        known_ids = np.concatenate([ids, fetched_ids])
        known = np.concatenate([sigs, fetched]) if len(fetched) else sigs
        order = np.argsort(known_ids)
        at = np.minimum(np.searchsorted(known_ids, other, sorter=order), len(order) - 1)
        row = order[at]
        present = known_ids[row] == other  # an article removed meanwhile has no signature
        mine, other, row, anchored = mine[present], other[present], row[present], anchored[present]
        agree = np.count_nonzero(known[row] == sigs[mine], axis=1)
        close = agree >= THRESHOLD * NUM_PERM
        mine, other, agree, anchored = mine[close], other[close], agree[close], anchored[close]
        order = np.lexsort((other, -agree, mine))
        mine, other, anchored = mine[order], other[order], anchored[order]
        best = _rank(mine) < MAX_LINKS
        # And the most similar anchor: a sub-family larger than the bounds (copies sharing an
        # extra line) would otherwise fill every candidate and link with itself alone, and
        # stand as a cluster apart from the family it copies.
        at = np.flatnonzero(anchored)
        best[at[_rank(mine[at]) == 0]] = True
        for m, o in zip(mine[best].tolist(), other[best].tolist(), strict=True):
            near[int(ids[m])].append(o)
    return Matches(dict(zip(ids.tolist(), keys.tolist(), strict=True)), held, near)


def _candidates(
    part: np.ndarray,
    first: int,
    ids: np.ndarray,
    held_keys: np.ndarray,
    held_docs: np.ndarray,
    firsts: tuple[np.ndarray, np.ndarray],
    peer_keys: np.ndarray,
    peer_docs: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(article, candidate, is an anchor) of a slice of a batch (`part`: its band keys, from article `first`).

    An article's candidates are the articles sharing the most keys with it, at most
    MAX_CANDIDATES of them (ties: the smaller id), and its *anchors*: for each of its
    keys, the first indexed article holding it (`firsts`: the index's keys, and the
    smallest id holding each). Articles are positions in `ids`.
    """
    post_keys = np.concatenate([held_keys, peer_keys])
    order = np.argsort(post_keys, kind="stable")  # the index's holders first within a key
    post_keys, post_docs = post_keys[order], np.concatenate([held_docs, peer_docs])[order]
    # Every (article, other) pair sharing a key, once per key shared.
    lo = np.searchsorted(post_keys, part, "left")
    n = np.searchsorted(post_keys, part, "right") - lo
    mine = np.repeat(np.repeat(np.arange(first, first + len(part) // BANDS), BANDS), n)
    other = post_docs[np.repeat(lo - (np.cumsum(n) - n), n) + np.arange(int(n.sum()))]
    kept = other != ids[mine]
    mine, other = mine[kept], other[kept]
    # Shared keys per pair; the MAX_CANDIDATES sharing the most are checked.
    order = np.lexsort((other, mine))
    mine, other = mine[order], other[order]
    new = np.ones(len(mine), dtype=bool)
    new[1:] = (mine[1:] != mine[:-1]) | (other[1:] != other[:-1])
    starts = np.flatnonzero(new)
    shared = np.diff(np.append(starts, len(mine)))
    mine, other = mine[starts], other[starts]
    order = np.lexsort((other, -shared, mine))
    mine, other = mine[order], other[order]
    chosen = _rank(mine) < MAX_CANDIDATES
    top_mine, top_other = mine[chosen], other[chosen]
    # Anchors: the first indexed (smallest id) holder of each of the article's keys.
    keys, first_holder = firsts
    if len(keys):
        slot = np.minimum(np.searchsorted(keys, part), len(keys) - 1)
        found = keys[slot] == part
        a_mine = np.repeat(np.arange(first, first + len(part) // BANDS), BANDS)[found]
        a_other = first_holder[slot[found]]
        keep = a_other != ids[a_mine]
        a_mine, a_other = a_mine[keep], a_other[keep]
    else:
        a_mine = a_other = np.zeros(0, dtype=np.int64)
    mine, other = np.concatenate([top_mine, a_mine]), np.concatenate([top_other, a_other])
    anchored = np.concatenate([np.zeros(len(top_mine), dtype=np.int8), np.ones(len(a_mine), dtype=np.int8)])
    # Each pair once, an anchor when any of its copies is.
    order = np.lexsort((-anchored, other, mine))
    mine, other, anchored = mine[order], other[order], anchored[order]
    new = np.ones(len(mine), dtype=bool)
    new[1:] = (mine[1:] != mine[:-1]) | (other[1:] != other[:-1])
    return mine[new], other[new], anchored[new].astype(bool)


def _rank(sorted_values: np.ndarray) -> np.ndarray:
    """Each item's place among the equal values before it, in an array sorted by value."""
    return np.arange(len(sorted_values)) - np.searchsorted(sorted_values, sorted_values, "left")


def link_matches(store: DedupStore, docs: Sequence[Doc], index: Sequence[Doc] = ()) -> set[int]:
    """Link `docs` to their near-duplicates and exact copies in the index and among themselves; add `index`'s band keys.

    Bounded whatever the corpus holds (a source publishing one template thousands of
    times is one huge family): a band key lists at most MAX_POSTINGS articles, an
    article is checked against at most MAX_CANDIDATES candidates (those sharing the
    most bands, and the first indexed holder of each of its keys) and linked to at most
    MAX_LINKS of them (the most similar) and the most similar of those first holders,
    plus at most MAX_LINKS exact copies (the first indexed). An article needs one link
    to join its cluster; the bounds only thin the links inside a family far larger than
    them, and the link to a first holder keeps copies more alike among themselves than
    with the family (a batch of them, one outlet's) from standing as a cluster apart.
    Returns the articles linked.
    """
    matches = find_matches(store, docs)
    pairs = {(min(a, o), max(a, o)) for a, near in matches.near.items() for o in near}
    for d in (d for d in docs if d.words):  # exact copies, whatever their length (texts without words copy nothing)
        pairs.update(
            (min(d.id, o), max(d.id, o)) for o in store.first_with_text_key(d.text_key, MAX_LINKS + 1) if o != d.id
        )
    store.link(pairs)
    # Band postings, at most MAX_POSTINGS articles a key: the first indexed stand for a larger family.
    room = {k: MAX_POSTINGS - held for k, held in matches.held.items()}
    entries = []
    for d in index:
        if d.id in matches.keys:
            mine = [k for k in matches.keys[d.id] if room.get(k, MAX_POSTINGS) > 0]
            for k in mine:
                room[k] = room.get(k, MAX_POSTINGS) - 1
            entries.append((d.id, mine))
    store.index(entries)
    return {x for pair in pairs for x in pair}


def _recluster(root: DataRoot, store: DedupStore, touched: set[str]) -> list[str]:
    """Compute again the clusters holding marked articles; rewrite the `clusters` files that changed.

    A partition's file is rewritten when one of its articles' rows changed: `touched`
    (articles added, changed, moved or removed), or a new original, similarity or
    copy for one of them. A row holds no cluster size, so an article joining a
    cluster leaves the other members' rows alone: an update costs what its articles
    touch, however large the corpus.
    """
    dirty: set[str] = set(touched)
    while (start := store.next_marked()) is not None:
        if not store.links_of(start):  # most articles: a cluster of one
            store.unmark([start])
            docs = store.docs_by_id([start])
            if docs:
                _set_clusters(store, docs, docs[0], dirty, alone=True)
            continue
        # A family may be huge (one template published thousands of times): its members
        # and original are worked out in the index's database, and its articles read with
        # their signatures a slice at a time.
        store.gather(start)
        store.unmark_gathered()
        original = store.first_gathered(_LAST)
        if original is None:
            continue  # removed
        (named,) = store.docs_by_id([original])
        for ids in store.gathered(RECLUSTER_SLICE):
            _set_clusters(store, store.docs_by_id(ids), named, dirty)
    for key in sorted(dirty):
        write_clusters(root, Partition.parse(key), store)
    return sorted(dirty)


# Members of a cluster read with their signatures at once when it is computed again.
RECLUSTER_SLICE = 5_000
# Times are compared as ISO strings, all UTC with microseconds; an undated article sorts after every dated one.
_LAST = datetime.max.replace(tzinfo=UTC).isoformat(timespec="microseconds")


def _set_clusters(store: DedupStore, docs: list[Doc], original: Doc, dirty: set[str], alone: bool = False) -> None:
    """Store members' cluster fields; note the partitions of those whose fields changed."""
    # An article with an exact copy is linked to it: one alone copies nothing.
    first_with = {} if alone else store.first_copies((d.text_key for d in docs if d.words), _LAST)
    for doc in docs:
        cluster = _cluster_of(doc, original, first_with)
        if doc.cluster != cluster:
            doc.cluster = cluster
            dirty.add(doc.partition)
    store.set_clusters(docs)


def _cluster_of(doc: Doc, original: Doc, first_with: dict[str, str]) -> tuple[str, bool, float, str | None]:
    """A member's cluster fields: named after the original, with similarity to it and the article it copies."""
    if doc.words and doc.text_key == original.text_key:
        similarity = 1.0
    elif doc.signature is not None and original.signature is not None:
        similarity = estimate(doc.signature, original.signature)
    else:
        similarity = 0.0
    copy_of = first_with.get(doc.text_key, doc.article_id)  # keys held once are in no `first_with`
    return original.article_id, doc.id == original.id, similarity, None if copy_of == doc.article_id else copy_of
