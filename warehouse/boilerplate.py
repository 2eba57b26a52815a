"""Learned boilerplate's counts: which edge blocks each source repeats, and which are learned.

One SQLite file per source (`state/boilerplate/<source>.sqlite`), written under the
source's run lock, so runs of different sources never wait on each other here:

- `seen`: for each counted block key (`normalizers.boilerplate.counts`) and input, the
  story it came from (`core_key`) and when it was counted (`seq`, articles counted so
  far). A key's support is the number of distinct stories among its rows.
- `learned`: keys whose support reached `MIN_SUPPORT` (and `MIN_SHARE` of recent
  articles), each with the generation it was learned in (1, 2, ... one per counting
  that learned something), its text and support;
  generation 0 holds those refused (quotations), which are never removed on their own.
- `inputs`: for each counted input, the generation of the learned set its stored article
  was normalised with; an input whose article carries a key learned in a later
  generation is *stale*, and a run normalises it again.

Rows of keys that were never learned are forgotten once `WINDOW` articles have been
counted after them and the table holds more than `PRUNE_ROWS`: chrome recurs, and a
block seen in fewer than `MIN_SUPPORT` of the last `WINDOW` stories is not worth
learning. The file is derived data: deleting it forgets what was learned, and the
source's next runs learn it again.
"""

from __future__ import annotations

import math
import sqlite3
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from normalizers.boilerplate import MIN_SUPPORT, RECURRING_SUPPORT, Learned
from warehouse.db import Database, open_db
from warehouse.layout import validate_source
from warehouse.schema import arrow_schema

__all__ = [
    "LEARNED_SCHEMA",
    "MAX_RECURRING",
    "MIN_SHARE",
    "PRUNE_ROWS",
    "RECENT",
    "WINDOW",
    "BoilerplateStore",
    "Counted",
    "LearnedLine",
]

WINDOW = 20_000
# A block is learned when it is on MIN_SHARE of the RECENT articles counted last (and in
# MIN_SUPPORT distinct stories): a share of recent articles, so a block a template gained
# last week is learned in days, not once it makes up a share of the whole history.
RECENT = 1_000
MIN_SHARE = 0.05
PRUNE_ROWS = 400_000
# Recurring blocks handed to the normalisers at most (with every batch): a day's
# most-read lists over the window are some hundreds.
MAX_RECURRING = 5_000
_CHUNK = 500  # bound parameters per statement, under SQLite's limit
# Articles whose rows are built, sorted and inserted at once: bounded memory on a big
# first run, and still few B-tree pages visited per row.
_COUNT_SLICE = 10_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS seen (
    key INTEGER NOT NULL, input TEXT NOT NULL, core INTEGER NOT NULL, seq INTEGER NOT NULL,
    blocking INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (key, input)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS seen_blocking ON seen (key) WHERE blocking = 1;
CREATE TABLE IF NOT EXISTS learned (
    key INTEGER PRIMARY KEY, gen INTEGER NOT NULL, support INTEGER NOT NULL, text TEXT NOT NULL,
    learned_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS inputs (input TEXT PRIMARY KEY, gen INTEGER NOT NULL, keys BLOB NOT NULL) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS inputs_gen ON inputs (gen);
"""


@dataclass(frozen=True, slots=True)
class Counted:
    """One written article's contribution: its input, story and edge block keys."""

    input: str
    core: int
    keys: tuple[int, ...]
    blocking: tuple[int, ...] = ()  # `normalizers.boilerplate.blocking_keys`


@dataclass(frozen=True, slots=True)
class LearnedLine:
    """A learned block of a source."""

    source: str = field(metadata={"doc": "Source name."})
    text: str = field(
        metadata={"doc": "The block as first found (later matches may differ in case, digits, punctuation)."}
    )
    support: int = field(
        metadata={"doc": "Distinct stories it was seen at the edge of when learned.", "arrow": "int32"}
    )
    generation: int = field(metadata={"doc": "Learning step it was learned in (1, 2, ...).", "arrow": "int32"})
    learned_at: datetime = field(metadata={"doc": "When it was learned (UTC)."})
    key: int = field(metadata={"doc": "Its normalised hash (`normalizers.boilerplate.block_key`)."})


LEARNED_SCHEMA = arrow_schema(LearnedLine)


class BoilerplateStore(Database):
    """A source's boilerplate counts (see the module docstring)."""

    def __init__(self, state: Path, source: str) -> None:
        self.source = source
        self.path = self.file(state, source)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = open_db(self.path, _SCHEMA)

    @staticmethod
    def file(state: Path, source: str) -> Path:
        """Where a source's counts are kept under the state folder."""
        return state / "boilerplate" / f"{validate_source(source)}.sqlite"

    def transaction(self) -> sqlite3.Connection:
        """A context manager for one write transaction (`with store.transaction(): ...`)."""
        self._db.execute("BEGIN IMMEDIATE")
        return self._db

    def _meta(self, key: str) -> int:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return 0 if row is None else int(row[0])

    def _set_meta(self, key: str, value: int) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def generation(self) -> int:
        """The newest generation learned (0: nothing learned yet)."""
        return self._meta("gen")

    def learned(self) -> tuple[Learned, int]:
        """What the source has learned (its recurring blocks too, the most supported first), and its generation."""
        keys = frozenset(r[0] for r in self._db.execute("SELECT key FROM learned WHERE gen > 0"))
        recurring = self._db.execute(
            "SELECT key FROM seen WHERE key NOT IN (SELECT key FROM learned WHERE gen > 0) GROUP BY key"
            " HAVING COUNT(DISTINCT core) >= ? ORDER BY COUNT(DISTINCT core) DESC, key LIMIT ?",
            (RECURRING_SUPPORT, MAX_RECURRING),
        )
        return Learned(keys, frozenset(r[0] for r in recurring)), self.generation()

    def lines(self) -> list[LearnedLine]:
        """Every learned block, oldest first."""
        rows = self._db.execute(
            "SELECT text, support, gen, learned_at, key FROM learned WHERE gen > 0 ORDER BY gen, text"
        )
        return [LearnedLine(self.source, t, s, g, datetime.fromisoformat(at), k) for t, s, g, at, k in rows]

    def count(self, articles: Sequence[Counted], gen: int) -> set[int]:
        """Record articles' edge keys, normalised with the learned set of generation `gen`; the keys touched."""
        seq = self._meta("seq")
        # An input counted before is counted as it is now (its text may have changed): its
        # old rows go, found through the keys `inputs` lists (no second index on `seen`,
        # which would double the cost of every insert).
        self._drop([a.input for a in articles], keep_inputs=True)
        touched: set[int] = set()
        for start in range(0, len(articles), _COUNT_SLICE):
            rows: list[tuple[int, str, int, int, int]] = []
            listed = []
            for n, a in enumerate(articles[start : start + _COUNT_SLICE], start=seq + 1 + start):
                blocking = set(a.blocking)
                keys = list(dict.fromkeys((*a.keys, *a.blocking)))
                rows.extend((k, a.input, a.core, n, int(k in blocking)) for k in keys)
                listed.append((a.input, gen, array("q", keys).tobytes()))
                touched.update(a.keys)
            rows.sort()  # in key order: each B-tree page is visited once a slice, not once a row
            self._db.executemany("INSERT OR REPLACE INTO seen VALUES (?, ?, ?, ?, ?)", rows)
            self._db.executemany("INSERT OR REPLACE INTO inputs VALUES (?, ?, ?)", listed)
        self._set_meta("seq", seq + len(articles))
        return touched

    def _drop(self, inputs: Sequence[str], keep_inputs: bool) -> None:
        """Delete the `seen` rows of inputs counted before (and, unless `keep_inputs`, their `inputs` rows)."""
        for start in range(0, len(inputs), _COUNT_SLICE):
            gone: list[tuple[int, str]] = []
            for i in range(start, min(start + _COUNT_SLICE, len(inputs)), _CHUNK):
                chunk = inputs[i : min(i + _CHUNK, start + _COUNT_SLICE)]
                marks = ",".join("?" * len(chunk))
                for rel, blob in self._db.execute(f"SELECT input, keys FROM inputs WHERE input IN ({marks})", chunk):
                    gone.extend((k, rel) for k in array("q", blob))
                if not keep_inputs:
                    self._db.execute(f"DELETE FROM inputs WHERE input IN ({marks})", chunk)
            gone.sort()
            self._db.executemany("DELETE FROM seen WHERE key = ? AND input = ?", gone)

    def supported(self, keys: Iterable[int]) -> dict[int, int]:
        """Keys among `keys` not learned yet that have the support to be, with their support.

        That is `MIN_SUPPORT` distinct stories, and `MIN_SHARE` of the `RECENT` articles
        counted last: a template's block is on most of a source's pages, a section heading
        some pages share ("Key takeaways") on a few.
        """
        seq = self._meta("seq")
        need = max(MIN_SUPPORT, math.ceil(MIN_SHARE * min(RECENT, seq)))
        wanted = set(keys)
        # One pass over the recent rows (in key order, as stored) rather than a lookup per
        # touched key: a run touches a dozen keys an article, nearly all seen once.
        rows = self._db.execute(
            "SELECT key, COUNT(DISTINCT core) FROM seen WHERE seq > ? GROUP BY key HAVING COUNT(DISTINCT core) >= ?",
            (seq - RECENT, need),
        )
        learned = {r[0] for r in self._db.execute("SELECT key FROM learned")}
        return {k: n for k, n in rows if k in wanted and k not in learned}

    def witnesses(self, keys: Iterable[int], most: int = 3) -> dict[int, list[str]]:
        """For each key, up to `most` inputs whose article carried it, newest first."""
        return {
            key: [
                r[0]
                for r in self._db.execute("SELECT input FROM seen WHERE key = ? ORDER BY seq DESC LIMIT ?", (key, most))
            ]
            for key in keys
        }

    def learn(self, lines: dict[int, tuple[int, str]], when: datetime, refused: dict[int, tuple[int, str]]) -> int:
        """Add learned keys (key -> (support, text)) as a new generation; returns it.

        `refused` are keys with the support but never learned (quotations): kept as
        generation 0, so they are not looked at again, and stay recurring.
        """
        gen = self.generation() + (1 if lines else 0)
        self._db.executemany(
            "INSERT OR REPLACE INTO learned VALUES (?, ?, ?, ?, ?)",
            [
                (k, g, support, text, when.isoformat())
                for g, chosen in ((gen, lines), (0, refused))
                for k, (support, text) in chosen.items()
            ],
        )
        self._set_meta("gen", gen)
        return gen

    def stale(self) -> list[str]:
        """Inputs to normalise again with what `learned()` gives now, in order.

        Those whose stored article was normalised before a key it carries was learned,
        and those with a headline that stopped a run (`blocking`) and now recurs. The
        recurring blocks (a pass over `seen`) are looked up only when some headline
        stopped a run.
        """
        found: set[str] = set()
        newest = self.generation()
        oldest = self._db.execute("SELECT MIN(gen) FROM inputs").fetchone()[0]
        if oldest is not None and oldest < newest:
            rows = self._db.execute(
                "SELECT DISTINCT s.input FROM learned l JOIN seen s ON s.key = l.key"
                " JOIN inputs i ON i.input = s.input WHERE l.gen > i.gen"
            )
            found.update(r[0] for r in rows)
        blocking = self._db.execute("SELECT key, input FROM seen WHERE blocking = 1").fetchall()
        if blocking:
            learned, _gen = self.learned()
            found.update(rel for key, rel in blocking if key in learned.recurring or key in learned.keys)
        return sorted(found)

    def forget(self, inputs: Iterable[str]) -> None:
        """Drop inputs whose article is gone (quarantined, deleted): they carry nothing any more."""
        self._drop(list(inputs), keep_inputs=False)

    def prune(self) -> int:
        """Forget old rows of keys never learned once the table is large (see the module docstring); rows deleted."""
        rows = self._db.execute("SELECT COUNT(*) FROM seen").fetchone()[0]
        if rows <= PRUNE_ROWS:
            return 0
        old = self._db.execute(
            "DELETE FROM seen WHERE seq < ? AND key NOT IN (SELECT key FROM learned)", (self._meta("seq") - WINDOW,)
        )
        # A learned key's rows matter only until the article carrying it is normalised with it.
        applied = self._db.execute(
            "DELETE FROM seen WHERE (key, input) IN (SELECT s.key, s.input FROM seen s JOIN learned l ON s.key = l.key"
            " JOIN inputs i ON i.input = s.input WHERE i.gen >= l.gen)"
        )
        return old.rowcount + applied.rowcount
