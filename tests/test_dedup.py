"""Duplicates and syndication clusters: fingerprints, and `update_clusters` over real Parquet."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import duckdb
import numpy as np
import pyarrow.dataset as ds
import pytest

from normalizers.similarity import MIN_WORDS, estimate, fingerprints
from pipeline.config import load_config
from pipeline.dedup import update_clusters
from pipeline.run import LocalRunner, run_source
from warehouse.layout import DataRoot

REPO = Path(__file__).resolve().parent.parent
WIRE = REPO / "samples" / "wire"
TEXTS = sorted(WIRE.glob("*.txt"))
PINNED = [3504611698, 3231040556, 3232951925, 3463155110]


def _body(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def _paragraphs(path: Path) -> list[str]:
    return [p for p in _body(path).split("\n\n") if p.strip()]


def _signatures(*texts: str) -> list[np.ndarray]:
    prints = fingerprints(texts)
    assert all(p.signature is not None for p in prints)
    return [p.signature for p in prints if p.signature is not None]


def test_fingerprints_are_the_same_in_every_process_and_tell_copies_from_other_articles() -> None:
    a, b = (_body(p) for p in TEXTS[:2])
    first, second = fingerprints([a, b])
    assert first.signature is not None and second.signature is not None and first.signature.shape == (128,)
    # A text's fingerprint does not depend on the texts given with it, nor on how many there are.
    (alone,) = fingerprints([a])
    crowd = fingerprints([b] * 40 + [a] + [b] * 40)
    for other in (alone, crowd[40]):
        assert other.key == first.key and other.words == first.words
        assert other.signature is not None and np.array_equal(other.signature, first.signature)
    assert estimate(first.signature, first.signature) == 1.0 and estimate(first.signature, second.signature) < 0.1
    assert fingerprints(["Don't stop: U.S. \u2014 now!"])[0].words == 6  # don t stop u s now
    # The same words in another case, spacing and punctuation are one exact key.
    keys = [p.key for p in fingerprints(["The  Senate, voted.", "the senate\nvoted", "voted", "senate the voted"])]
    assert keys[0] == keys[1] and len(set(keys)) == 3
    # Pinned: a change of hashing or shingling changes these, and then SIGNATURE_VERSION must change too
    # (stored signatures of another version are rebuilt).
    (pinned,) = fingerprints([" ".join(["The quick brown fox jumps over the lazy dog"] * 4)])
    assert pinned.signature is not None and pinned.signature[:4].tolist() == PINNED


def test_words_are_split_and_folded_alike_in_every_script_and_length() -> None:
    body = _body(TEXTS[0])
    plain = fingerprints([body])[0]
    # Typographic quotes and dashes, and the case of any script, are folded before words are hashed.
    curly = body.replace("'", "\u2019").replace(" - ", " \u2014 ")
    assert fingerprints([curly])[0].key == plain.key
    assert (
        fingerprints(["\u00dcBER die Stra\u00dfe " * 3])[0].key
        == fingerprints(["\u00fcber DIE stra\u00dfe " * 3])[0].key
    )
    # Words of every length hash by all their bytes: one byte changed at the end of a long
    # word (gathered 8 bytes at a time, or past the long-word bound) is another word.
    for size in (7, 8, 9, 17, 255, 256, 257, 5000):
        word = "x" * size
        same, changed, shorter = fingerprints([word, word[:-1] + "y", word[:-1]])
        assert (same.words, changed.words) == (1, 1) and len({same.key, changed.key, shorter.key}) == 3
    # An unspaced script is one word a run, as any run of word bytes.
    assert fingerprints(["\u65b0\u95fb\u62a5\u9053 \u65b0\u95fb"])[0].words == 2
    # Texts under MIN_WORDS words are matched only exactly, and an empty text has no words.
    short, empty = fingerprints(["one two three", ""])
    assert short.signature is None and short.words == 3 and empty.words == 0 and empty.signature is None


def test_a_reprint_with_a_paragraph_dropped_and_chrome_added_stays_near_its_original() -> None:
    paragraphs = _paragraphs(TEXTS[0])
    assert len(paragraphs) >= 6
    edited = [*paragraphs[:2], *paragraphs[3:], "Subscribe to our newsletter for more stories like this one."]
    original, reprint = _signatures("\n\n".join(paragraphs), "\n\n".join(edited))
    assert estimate(original, reprint) >= 0.5


def _sources(tmp: Path) -> Path:
    cfg = tmp / "sources.toml"
    cfg.write_text(f'[sources.a]\npath = "{tmp / "a"}"\n[sources.b]\npath = "{tmp / "b"}"\n', encoding="utf-8")
    return cfg


def _ingest(cfg: Path, root: DataRoot, names: tuple[str, ...] = ("a", "b")) -> None:
    """The named sources of `cfg` through `run_source` into `root`."""
    for name in names:
        run_source(load_config(cfg).sources[name], root, "r1", runner=LocalRunner(1))


def _put(folder: Path, name: str, text: str, published: str, url: str | None = None) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.txt").write_text(text, encoding="utf-8")
    sidecar = {"published_at": published} | ({"url": url} if url else {})
    (folder / f"{name}.json").write_text(json.dumps(sidecar), encoding="utf-8")


def _corpus(tmp: Path) -> None:
    """Source a: 6 wire articles. Source b: two exact copies (one dated earlier), a reprint, an article of its own."""
    for i, path in enumerate(TEXTS[:6]):
        _put(tmp / "a", f"a{i}", _body(path), f"2019-11-2{i}T10:00:00Z", f"https://a.example/{i}")
    _put(tmp / "b", "copy-later", _body(TEXTS[1]), "2019-11-25T10:00:00Z", "https://b.example/later")
    _put(tmp / "b", "copy-earlier", _body(TEXTS[2]), "2019-11-01T08:00:00Z", "https://b.example/earlier")
    paragraphs = _paragraphs(TEXTS[3])
    reprint = "\n\n".join([paragraphs[0], *paragraphs[2:], "Reporting by the wire desk; editing by the news team."])
    _put(tmp / "b", "reprint", reprint, "2019-11-26T10:00:00Z", "https://b.example/reprint")
    _put(tmp / "b", "own", _body(TEXTS[10]), "2019-11-27T10:00:00Z", "https://b.example/own")


def _clusters(root: DataRoot) -> dict[str, tuple[object, ...]]:
    """url -> (cluster's original url, size, original?, copy of url?), read by DuckDB and by pyarrow."""
    rows = duckdb.sql(
        f"SELECT a.url, o.url, count(*) OVER (PARTITION BY c.cluster_id), c.is_original, d.url, c.similarity "
        f"FROM read_parquet('{root.clusters}/**/*.parquet', hive_partitioning = true) c "
        f"JOIN read_parquet('{root.articles}/**/*.parquet', hive_partitioning = true) a USING (article_id) "
        f"JOIN read_parquet('{root.articles}/**/*.parquet', hive_partitioning = true) o ON o.article_id = c.cluster_id "
        f"LEFT JOIN read_parquet('{root.articles}/**/*.parquet', hive_partitioning = true) d "
        f"ON d.article_id = c.duplicate_of"
    ).fetchall()
    table = ds.dataset(root.clusters, format="parquet", partitioning="hive").to_table()
    assert table.num_rows == len(rows) and sorted(set(table.column("source").to_pylist())) == ["a", "b"]
    return {url: (orig, size, first, copy, round(sim, 2) >= 0.5) for url, orig, size, first, copy, sim in rows}


def test_copies_across_sources_name_the_earliest_and_reprints_join_their_original(tmp_path: Path) -> None:
    _corpus(tmp_path)
    cfg, root = _sources(tmp_path), DataRoot(tmp_path / "data")
    _ingest(cfg, root)
    done = update_clusters(root)
    assert (done.added, done.articles, done.clustered, done.copies) == (10, 10, 6, 2)
    got = _clusters(root)
    a = [f"https://a.example/{i}" for i in range(6)]
    # An exact copy published later points at the article; one published earlier is the original.
    assert got["https://b.example/later"] == (a[1], 2, False, a[1], True)
    assert got[a[1]] == (a[1], 2, True, None, True)
    assert got[a[2]] == ("https://b.example/earlier", 2, False, "https://b.example/earlier", True)
    # The reprint (a paragraph dropped, a credit line added) joins its original; it copies nothing exactly.
    assert got["https://b.example/reprint"] == (a[3], 2, False, None, True)
    # Articles with no copy are their own cluster.
    assert got["https://b.example/own"] == ("https://b.example/own", 1, True, None, True)
    assert got[a[0]][:3] == (a[0], 1, True)
    again = update_clusters(root)  # nothing changed: nothing read, nothing rewritten
    assert (again.added, again.changed, again.removed, again.partitions) == (0, 0, 0, [])


def test_clusters_do_not_depend_on_the_order_articles_arrived_in(tmp_path: Path) -> None:
    _corpus(tmp_path)
    cfg = _sources(tmp_path)
    together, apart = DataRoot(tmp_path / "together"), DataRoot(tmp_path / "apart")
    _ingest(cfg, together)
    update_clusters(together)
    # The other way round, with the index updated in between: b's copies come first.
    for name in ("b", "a"):
        _ingest(cfg, apart, (name,))
        update_clusters(apart)
    assert _clusters(apart) == _clusters(together)
    rebuilt = update_clusters(apart, rebuild=True)
    assert rebuilt.added == 10 and _clusters(apart) == _clusters(together)


def test_an_article_that_leaves_the_corpus_leaves_its_cluster(tmp_path: Path) -> None:
    from datetime import date

    from pipeline.run import backfill_units, plan_backfill

    _corpus(tmp_path)
    cfg, root = _sources(tmp_path), DataRoot(tmp_path / "data")
    _ingest(cfg, root)
    update_clusters(root)
    # The earlier copy's file goes, and a backfill of its month rebuilds the month without it.
    for suffix in (".txt", ".json"):
        (tmp_path / "b" / f"copy-earlier{suffix}").unlink()
    src = load_config(cfg).sources["b"]
    plan = plan_backfill(src, root, date(2019, 11, 1), date(2019, 11, 30), "all", runner=LocalRunner(1))
    for unit in backfill_units(plan, ("2019-11-01", "2019-11-30")):
        run_source(src, root, "bf", unit, runner=LocalRunner(1))
    done = update_clusters(root)
    assert done.removed == 1 and done.partitions == ["a/2019-11", "b/2019-11"]
    got = _clusters(root)
    assert "https://b.example/earlier" not in got
    assert got["https://a.example/2"] == ("https://a.example/2", 1, True, None, True)  # its own original again


@pytest.mark.parametrize("length", [1, MIN_WORDS - 1])
def test_short_texts_are_matched_exactly_only(tmp_path: Path, length: int) -> None:
    text = " ".join(f"word{i}" for i in range(length))
    _put(tmp_path / "a", "short", f"Title\n\n{text}", "2024-01-01T00:00:00Z", "https://a.example/s")
    _put(tmp_path / "b", "copy", f"Other title\n\n{text}", "2024-01-02T00:00:00Z", "https://b.example/s")
    _put(tmp_path / "b", "near", f"Other title\n\n{text} extra", "2024-01-03T00:00:00Z", "https://b.example/n")
    cfg, root = _sources(tmp_path), DataRoot(tmp_path / "data")
    _ingest(cfg, root)
    update_clusters(root)
    got = _clusters(root)
    assert got["https://b.example/s"][:4] == ("https://a.example/s", 2, False, "https://a.example/s")
    assert got["https://b.example/n"][:2] == ("https://b.example/n", 1)


def test_a_template_published_hundreds_of_times_is_one_cluster_at_a_bounded_cost(tmp_path: Path) -> None:
    """Near-identical articles (a daily template) beyond every bound: one cluster, postings and links capped."""
    import sqlite3

    from pipeline.dedup import MAX_LINKS, MAX_POSTINGS

    paragraphs = _paragraphs(TEXTS[0])
    n = 3 * MAX_POSTINGS
    for i in range(n):
        text = "\n\n".join([f"Edition {i}: {paragraphs[0]}", *paragraphs[1:]])
        _put(
            tmp_path / "a",
            f"t{i:04d}",
            text,
            f"2024-01-{1 + i % 28:02d}T{i % 24:02d}:{i % 60:02d}:00Z",
            f"https://a.example/{i}",
        )
    cfg, root = _sources(tmp_path), DataRoot(tmp_path / "data")
    _ingest(cfg, root, ("a",))
    done = update_clusters(root)
    assert (done.added, done.clustered) == (n, n)
    clusters = duckdb.sql(f"SELECT DISTINCT cluster_id FROM read_parquet('{root.clusters}/**/*.parquet')").fetchall()
    assert len(clusters) == 1
    with sqlite3.connect(root.state / "dedup.sqlite") as db:
        (most,) = db.execute("SELECT max(n) FROM (SELECT count(*) AS n FROM bands GROUP BY key)").fetchone()
        (links,) = db.execute("SELECT count(*) FROM links").fetchone()
    assert most <= MAX_POSTINGS and links <= 2 * n * 2 * MAX_LINKS


def test_an_update_stopped_before_its_clusters_is_finished_by_the_next(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fingerprint batches commit one by one; an update dying after them leaves articles the next one clusters."""
    import pipeline.dedup as dedup

    _corpus(tmp_path)
    cfg, root = _sources(tmp_path), DataRoot(tmp_path / "data")
    _ingest(cfg, root)
    clean = DataRoot(tmp_path / "clean")
    _ingest(cfg, clean)
    update_clusters(clean)

    def killed(*args: object) -> list[str]:
        raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(dedup, "BATCH", 3)  # several batches, each committed
        m.setattr(dedup, "_recluster", killed)
        with pytest.raises(KeyboardInterrupt):
            update_clusters(root)
    done = update_clusters(root)
    assert done.added == 0 and done.articles == 10  # nothing fingerprinted twice
    assert _clusters(root) == _clusters(clean)


def _indexed_twice(tmp_path: Path) -> tuple[Path, tuple[DataRoot, DataRoot]]:
    """The corpus in two data roots ("killed", "clean"), each indexed once."""
    _corpus(tmp_path)
    cfg = _sources(tmp_path)
    roots = DataRoot(tmp_path / "killed"), DataRoot(tmp_path / "clean")
    for root in roots:
        _ingest(cfg, root)
        update_clusters(root)
    return cfg, roots


def _killed_before_new_texts(root: DataRoot, monkeypatch: pytest.MonkeyPatch) -> None:
    """An update of `root` dying when it starts reading new texts (moves and removals committed)."""
    import pipeline.dedup as dedup

    def killed(*args: object) -> dict[str, str]:
        raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(dedup, "_texts", killed)
        with pytest.raises(KeyboardInterrupt):
            update_clusters(root)


def test_an_update_killed_after_moving_articles_between_months_is_finished_by_the_next(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Moves commit a partition at a time; a kill before the new articles' pass leaves no stale cluster row."""
    cfg, roots = _indexed_twice(tmp_path)
    # The earlier exact copy (a cluster's original) moves to December, after the article it copied,
    # and a new article arrives in the same run.
    _put(tmp_path / "b", "copy-earlier", _body(TEXTS[2]), "2019-12-30T08:00:00Z", "https://b.example/earlier")
    _put(tmp_path / "b", "late", _body(TEXTS[11]), "2019-12-31T08:00:00Z", "https://b.example/late")
    for root in roots:
        _ingest(cfg, root, ("b",))

    _killed_before_new_texts(roots[0], monkeypatch)
    done = update_clusters(roots[0])
    assert done.added == 1 and done.removed == 0
    update_clusters(roots[1])
    got = _clusters(roots[0])
    assert got == _clusters(roots[1])
    a2 = "https://a.example/2"
    assert got[a2] == (a2, 2, True, None, True)  # the original now
    assert got["https://b.example/earlier"] == (a2, 2, False, a2, True)
    months = duckdb.sql(
        f"SELECT month, count(*) FROM read_parquet('{roots[0].clusters}/source=b/**/*.parquet', "
        "hive_partitioning = true) GROUP BY month ORDER BY month"
    ).fetchall()
    assert months == [(11, 3), (12, 2)]  # each article's row in its own month only


def test_articles_that_lost_a_link_are_matched_again_after_a_kill(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Removals commit before new texts are read; the articles they unlinked are remembered on disk until matched."""
    import sqlite3

    cfg, roots = _indexed_twice(tmp_path)
    # The later exact copy's month loses it (a fresh source b without it), and a new article arrives.
    for suffix in (".txt", ".json"):
        (tmp_path / "b" / f"copy-later{suffix}").unlink()
    _put(tmp_path / "b", "late", _body(TEXTS[11]), "2019-11-29T08:00:00Z", "https://b.example/late")
    for root in roots:
        shutil.rmtree(root.articles / "source=b")
        _ingest(cfg, root, ("b",))

    _killed_before_new_texts(roots[0], monkeypatch)
    with sqlite3.connect(roots[0].state / "dedup.sqlite") as db:
        (waiting,) = db.execute("SELECT count(*) FROM relink").fetchone()
    assert waiting >= 1  # the articles the removed copy was linked to
    done = update_clusters(roots[0])
    assert (done.added, done.removed) == (1, 0)
    with sqlite3.connect(roots[0].state / "dedup.sqlite") as db:
        assert db.execute("SELECT count(*) FROM relink").fetchone() == (0,)
    update_clusters(roots[1])
    got = _clusters(roots[0])
    assert got == _clusters(roots[1]) and "https://b.example/later" not in got
    assert got["https://a.example/1"] == ("https://a.example/1", 1, True, None, True)


def test_an_unreadable_index_is_built_again_from_the_articles(tmp_path: Path) -> None:
    _corpus(tmp_path)
    cfg, root = _sources(tmp_path), DataRoot(tmp_path / "data")
    _ingest(cfg, root)
    update_clusters(root)
    before = _clusters(root)
    for suffix in ("-wal", "-shm"):
        (root.state / f"dedup.sqlite{suffix}").unlink(missing_ok=True)
    (root.state / "dedup.sqlite").write_bytes(b"\x00not a database\x00" * 64)
    done = update_clusters(root)
    assert done.rebuilt is not None and "unreadable" in done.rebuilt and done.added == 10
    assert _clusters(root) == before


def test_articles_left_of_a_large_family_take_over_its_postings(tmp_path: Path) -> None:
    """A family beyond the postings cap whose posted members change: the rest are found later, as after a rebuild."""
    import sqlite3

    from pipeline.dedup import MAX_POSTINGS

    template = [f"tok{(k * 7919) % 100003}" for k in range(150)]
    n = 3 * MAX_POSTINGS

    def put(i: int, text: str) -> None:
        _put(tmp_path / "a", f"t{i:04d}", text, f"2024-01-{1 + i % 28:02d}T10:{i % 60:02d}:00Z", f"https://a/{i}")

    def edition(i: int) -> str:  # the template with one word changed
        words = list(template)
        words[(i * 37) % len(words)] = f"changed{i}"
        return "Edition\n\n" + " ".join(words) + "."

    for i in range(n):
        put(i, edition(i))
    cfg, root = _sources(tmp_path), DataRoot(tmp_path / "data")
    _ingest(cfg, root, ("a",))
    update_clusters(root)
    # Two members holding none of the template's postings (the first indexed hold them) are left.
    with sqlite3.connect(root.state / "dedup.sqlite") as db:
        full = f"SELECT key FROM bands GROUP BY key HAVING count(*) >= {MAX_POSTINGS}"  # the template's keys
        shared = f"SELECT doc FROM bands WHERE key IN ({full})"
        unposted = {a for (a,) in db.execute(f"SELECT article_id FROM docs WHERE id NOT IN ({shared})")}
    urls = duckdb.sql(f"SELECT article_id, url FROM read_parquet('{root.articles}/**/*.parquet')").fetchall()
    survivors = sorted(int(url.rsplit("/", 1)[1]) for aid, url in urls if aid in unposted)[:2]
    assert len(survivors) == 2
    for i in range(n):  # every other member becomes an article of its own
        if i not in survivors:
            put(i, "Own story\n\n" + " ".join(f"item{i}x{k}" for k in range(200)) + ".")
    _ingest(cfg, root, ("a",))
    update_clusters(root)
    put(n, edition(n))  # a new edition: a near-copy of the two left
    _ingest(cfg, root, ("a",))
    update_clusters(root)

    def family(data: DataRoot) -> set[str]:
        sql = (
            f"SELECT a.url FROM read_parquet('{data.clusters}/**/*.parquet') c JOIN read_parquet("
            f"'{data.articles}/**/*.parquet') a USING (article_id) WHERE c.cluster_id = (SELECT cluster_id FROM"
            f" read_parquet('{data.clusters}/**/*.parquet') JOIN read_parquet('{data.articles}/**/*.parquet')"
            f" USING (article_id) WHERE url = 'https://a/{n}')"
        )
        return {url for (url,) in duckdb.sql(sql).fetchall()}

    assert family(root) == {f"https://a/{i}" for i in (*survivors, n)}
    update_clusters(root, rebuild=True)
    assert family(root) == {f"https://a/{i}" for i in (*survivors, n)}


def test_texts_without_words_are_nobodys_copies(tmp_path: Path) -> None:
    """Stored articles with no words (written by a normaliser before 1.5.1) share an empty key, yet copy nothing."""
    from normalizers.similarity import fingerprints as prints

    assert prints(["\u2014 \u2026 \u2014", "***"])[0].words == 0
    cfg, root = _sources(tmp_path), DataRoot(tmp_path / "data")
    for i, (title, body) in enumerate([("Budget vote delayed", "x1"), ("Storm hits coast", "x2"), ("Votes", "x3")]):
        _put(tmp_path / "a", f"s{i}", f"{title}\n\n{body}", f"2024-01-0{i + 1}T00:00:00Z", f"https://a.example/{i}")
    _ingest(cfg, root, ("a",))
    # Their texts as such a normaliser stored them: symbols only.
    import pyarrow as pa
    import pyarrow.parquet as pq

    (path,) = root.articles.glob("**/*.parquet")
    table = pq.read_table(path)
    symbols = pa.array(["\u2014 \u2026 \u2014", "***", "\u00ab \u2026 \u00bb"], table.schema.field("text").type)
    pq.write_table(table.set_column(table.schema.get_field_index("text"), "text", symbols), path)
    update_clusters(root)
    rows = duckdb.sql(f"SELECT cluster_id, duplicate_of FROM read_parquet('{root.clusters}/**/*.parquet')").fetchall()
    assert len(rows) == 3 and len({c for c, _ in rows}) == 3 and all(d is None for _, d in rows)


def test_a_family_spread_over_batches_is_one_cluster(tmp_path: Path) -> None:
    """Copies of one story fingerprinted in two batches: the second links to the first, not only to itself.

    Within a batch the copies can be more alike among themselves than with those indexed
    before (here one day's copies share a dateline); linked to their most similar alone,
    a batch stood as a cluster apart from the family it copies.
    """
    from pipeline.dedup import BATCH

    title, lede, after = _body(REPO / "samples" / "anha" / "000_db5c100688d27208.txt").split("\n\n", 2)
    for i in range(BATCH + 100):
        ref = i * 2654435761 % 2**32  # every copy has a sentence of its own, as reprints' edits do
        dateline = "QAMISHLO, 22 November 2023 - " if i < 200 else ""
        text = f"{title} ({i})\n\n{dateline}{lede} This is item {i} of the wire, reference {ref:08x}.\n\n{after}"
        _put(tmp_path / "a", f"t{i:04d}", text, f"2023-11-{1 + i % 28:02d}T10:00:00Z", f"https://a/{i}")
    cfg, root = _sources(tmp_path), DataRoot(tmp_path / "data")
    _ingest(cfg, root, ("a",))
    update_clusters(root)
    sql = f"SELECT count(*) FROM read_parquet('{root.clusters}/**/*.parquet') GROUP BY cluster_id"
    assert duckdb.sql(sql).fetchall() == [(BATCH + 100,)]
