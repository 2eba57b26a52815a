"""Learn a source's boilerplate from the articles a run wrote (`normalizers.boilerplate`).

After each commit, `learn_from_run` counts the written articles' edge blocks into the
source's store (`warehouse.boilerplate`); blocks that reach `MIN_SUPPORT` distinct
stories are learned as a new generation, listed in `boilerplate/source=<s>/part-0.parquet`
(view `boilerplate`), and removed from the articles normalised from then on. Articles
stored before a block was learned are *stale*: `run_source` normalises them again
(an ingest, at its end), so no stored article keeps a block the source has learned.
"""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pyarrow.parquet as pq

from normalizers.boilerplate import block_key, blocks_of, counted, quoted, rule_name
from pipeline.config import SourceConfig
from warehouse.atomic import publish_table
from warehouse.boilerplate import LEARNED_SCHEMA, BoilerplateStore, Counted, LearnedLine
from warehouse.layout import PARTITION_FILE, DataRoot, Partition
from warehouse.schema import records_to_table
from warehouse.state import FileState, StateStore

__all__ = ["Learning", "learn_from_run", "with_learned"]


@dataclass(slots=True)
class Learning:
    """What one count taught: the blocks learned now, and the stored articles to normalise again."""

    lines: list[str] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)
    error: str | None = None  # what went wrong, for the run's notes


def with_learned(src: SourceConfig, root: DataRoot, repair: bool = True) -> tuple[SourceConfig, int, str | None]:
    """The source with its learned blocks in its profile, their generation (0: none), and a note on a lost store.

    Without `repair` (a command that only reads), an unreadable store is left as it is,
    and the source is taken as having learned nothing.
    """
    path = BoilerplateStore.file(root.state, src.name)
    if not src.profile.learn or not path.exists():
        return src, 0, None
    if repair:
        store, note = _open(root, src.name)
        with store:
            learned, gen = store.learned()
    else:
        try:
            with BoilerplateStore(root.state, src.name) as store:
                learned, gen = store.learned()
        except sqlite3.DatabaseError as exc:
            return src, 0, f"learned boilerplate not applied: {path} is unreadable ({exc})"
        note = None
    if not learned:
        return src, gen, note
    return dataclasses.replace(src, profile=dataclasses.replace(src.profile, learned=learned)), gen, note


def _open(root: DataRoot, source: str) -> tuple[BoilerplateStore, str | None]:
    """The source's store; one that is no readable database is started again (it is derived data), saying so."""
    store: BoilerplateStore | None = None
    try:
        store = BoilerplateStore(root.state, source)
        store.generation()
        return store, None
    except sqlite3.DatabaseError as exc:
        if store is not None:
            store.close()
        path = BoilerplateStore.file(root.state, source)
        for suffix in ("", "-wal", "-shm"):
            path.with_name(path.name + suffix).unlink(missing_ok=True)
        note = f"learned boilerplate forgotten: {path} was unreadable ({exc}); the source learns it again"
        return BoilerplateStore(root.state, source), note


def learn_from_run(
    root: DataRoot, src: SourceConfig, articles: Sequence[Counted], gone: Iterable[str], gen: int
) -> Learning:
    """Count the run's written articles (normalised with generation `gen`), learn, and list the stale inputs.

    `gone` are inputs whose article the run removed (quarantined now). Never raises on a
    store it cannot read or write: the run's articles are committed already, and the
    error is reported for the run summary.
    """
    if not src.profile.learn:
        return Learning()
    try:
        return _learn(root, src, articles, list(gone), gen)
    except (OSError, sqlite3.Error, ValueError) as exc:  # pyarrow's errors are OSError and ValueError
        return Learning(error=f"boilerplate learning skipped: {type(exc).__name__}: {str(exc)[:300]}")


def _learn(root: DataRoot, src: SourceConfig, articles: Sequence[Counted], gone: list[str], gen: int) -> Learning:
    out = Learning()
    store, lost = _open(root, src.name)
    out.error = lost
    with store:
        with store.transaction():
            store.forget(gone)
            touched = store.count(articles, gen)
            found = store.supported(touched)
            if found:
                texts = _texts(root, src.name, store.witnesses(found))
                lines = {k: (found[k], texts[k]) for k in sorted(found) if k in texts and not quoted(texts[k])}
                refused = {k: (found[k], texts[k]) for k in sorted(found) if k in texts and quoted(texts[k])}
                if lines or refused:
                    store.learn(lines, datetime.now(UTC), refused)
                    out.lines = [text for _, text in lines.values()]
            store.prune()
        if out.lines:
            _publish(root, src.name, store.lines())
        out.stale = store.stale()
    return out


def _texts(root: DataRoot, source: str, witnesses: dict[int, list[str]]) -> dict[int, str]:
    """Each key's text, read from an article that carried it (the counts keep hashes, not text)."""
    with StateStore(root.state) as state:
        states = state.get(source, {rel for inputs in witnesses.values() for rel in inputs})
    wanted: dict[str, set[str]] = {}  # partition -> article ids
    for inputs in witnesses.values():
        for rel in inputs:
            st: FileState | None = states.get(rel)
            if st is not None and st.article_id and st.partition:
                wanted.setdefault(st.partition, set()).add(st.article_id)
    blocks: dict[int, str] = {}
    for part, ids in wanted.items():
        path = root.partition_file(Partition.parse(part))
        if not path.exists():
            continue
        table = pq.read_table(
            path, columns=["lede", "sections", "stripped"], filters=[("article_id", "in", sorted(ids))]
        )
        for row in table.to_pylist():
            for text in _row_blocks(row, source):
                if counted(text):
                    blocks.setdefault(block_key(text), text)
    return {k: blocks[k] for k in witnesses if k in blocks}


def _row_blocks(row: dict[str, Any], source: str) -> list[str]:
    """A stored article's body blocks and the blocks learned boilerplate removed from it."""
    sections = ((s["heading"], s["paragraphs"] or ()) for s in row["sections"] or ())
    rule = rule_name(source)
    return [*blocks_of(row["lede"], sections), *(s["text"] for s in row["stripped"] or () if s["rule"] == rule)]


def _publish(root: DataRoot, source: str, lines: list[LearnedLine]) -> None:
    """Replace the source's file of learned blocks (what view `boilerplate` reads)."""
    target = root.boilerplate / f"source={source}" / PARTITION_FILE
    target.parent.mkdir(parents=True, exist_ok=True)
    table = records_to_table(lines, LearnedLine, LEARNED_SCHEMA)
    publish_table(table, root.staging, target, "boilerplate")
