"""Learned boilerplate's counts: which edge blocks each source repeats, and which are learned.

One SQLite file per source (`state/boilerplate/<source>.sqlite`), written under the
source's run lock, so runs of different sources never wait on each other here:

- `seen`: for each counted block key (`normalizers.boilerplate.edge_keys`) and input, the
  story it came from (`core_key`) and when it was counted (`seq`, articles counted so
  far). A key's support is the number of distinct stories among its rows.
- `learned`: keys whose support reached `MIN_SUPPORT`, each with the generation it was
  learned in (1, 2, ... one per counting that learned something), its text and support.
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

import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from normalizers.boilerplate import MIN_SUPPORT
from warehouse.db import Database, open_db
from warehouse.layout import validate_source
from warehouse.schema import arrow_schema

__all__ = ["LEARNED_SCHEMA", "PRUNE_ROWS", "WINDOW", "BoilerplateStore", "Counted", "LearnedLine"]

WINDOW = 20_000
PRUNE_ROWS = 400_000
_CHUNK = 500  # bound parameters per statement, under SQLite's limit

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS seen (
    key INTEGER NOT NULL, input TEXT NOT NULL, core INTEGER NOT NULL, seq INTEGER NOT NULL,
    PRIMARY KEY (key, input)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS seen_input ON seen (input);
CREATE TABLE IF NOT EXISTS learned (
    key INTEGER PRIMARY KEY, gen INTEGER NOT NULL, support INTEGER NOT NULL, text TEXT NOT NULL,
    learned_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS inputs (input TEXT PRIMARY KEY, gen INTEGER NOT NULL) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS inputs_gen ON inputs (gen);
"""


@dataclass(frozen=True, slots=True)
class Counted:
    """One written article's contribution: its input, story and edge block keys."""

    input: str
    core: int
    keys: tuple[int, ...]


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

    def learned_keys(self) -> tuple[frozenset[int], int]:
        """The learned keys and the generation they make up."""
        keys = frozenset(r[0] for r in self._db.execute("SELECT key FROM learned"))
        return keys, self.generation()

    def lines(self) -> list[LearnedLine]:
        """Every learned block, oldest first."""
        rows = self._db.execute("SELECT text, support, gen, learned_at, key FROM learned ORDER BY gen, text")
        return [LearnedLine(self.source, t, s, g, datetime.fromisoformat(at), k) for t, s, g, at, k in rows]

    def count(self, articles: Sequence[Counted], gen: int) -> set[int]:
        """Record articles' edge keys, normalised with the learned set of generation `gen`; the keys touched."""
        seq = self._meta("seq")
        inputs = [a.input for a in articles]
        for i in range(0, len(inputs), _CHUNK):
            chunk = inputs[i : i + _CHUNK]
            marks = ",".join("?" * len(chunk))
            # An input counted before is counted as it is now (its text may have changed).
            self._db.execute(f"DELETE FROM seen WHERE input IN ({marks})", chunk)
        rows: list[tuple[int, str, int, int]] = []
        touched: set[int] = set()
        for n, a in enumerate(articles, start=seq + 1):
            rows.extend((k, a.input, a.core, n) for k in a.keys)
            touched.update(a.keys)
        self._db.executemany("INSERT OR REPLACE INTO seen VALUES (?, ?, ?, ?)", rows)
        self._db.executemany("INSERT OR REPLACE INTO inputs VALUES (?, ?)", [(x, gen) for x in inputs])
        self._set_meta("seq", seq + len(articles))
        return touched

    def supported(self, keys: Iterable[int]) -> dict[int, int]:
        """Keys among `keys` that are not learned yet and have `MIN_SUPPORT` distinct stories, with their support."""
        found: dict[int, int] = {}
        chosen = list(keys)
        for i in range(0, len(chosen), _CHUNK):
            chunk = chosen[i : i + _CHUNK]
            marks = ",".join("?" * len(chunk))
            found.update(
                self._db.execute(
                    f"SELECT key, COUNT(DISTINCT core) FROM seen WHERE key IN ({marks})"
                    " AND key NOT IN (SELECT key FROM learned) GROUP BY key HAVING COUNT(DISTINCT core) >= ?",
                    (*chunk, MIN_SUPPORT),
                )
            )
        return found

    def witnesses(self, keys: Iterable[int], most: int = 3) -> dict[int, list[str]]:
        """For each key, up to `most` inputs whose article carried it, newest first."""
        return {
            key: [
                r[0]
                for r in self._db.execute("SELECT input FROM seen WHERE key = ? ORDER BY seq DESC LIMIT ?", (key, most))
            ]
            for key in keys
        }

    def learn(self, lines: dict[int, tuple[int, str]], when: datetime) -> int:
        """Add learned keys (key -> (support, text)) as a new generation; returns it."""
        gen = self.generation() + 1
        self._db.executemany(
            "INSERT OR REPLACE INTO learned VALUES (?, ?, ?, ?, ?)",
            [(k, gen, support, text, when.isoformat()) for k, (support, text) in lines.items()],
        )
        self._set_meta("gen", gen)
        return gen

    def stale(self) -> list[str]:
        """Inputs whose stored article was normalised before a key it carries was learned, in order."""
        newest = self.generation()
        oldest = self._db.execute("SELECT MIN(gen) FROM inputs").fetchone()[0]
        if oldest is None or oldest >= newest:
            return []
        rows = self._db.execute(
            "SELECT DISTINCT s.input FROM learned l JOIN seen s ON s.key = l.key"
            " JOIN inputs i ON i.input = s.input WHERE l.gen > i.gen ORDER BY s.input"
        )
        return [r[0] for r in rows]

    def forget(self, inputs: Iterable[str]) -> None:
        """Drop inputs whose article is gone (quarantined, deleted): they carry nothing any more."""
        chosen = list(inputs)
        for i in range(0, len(chosen), _CHUNK):
            chunk = chosen[i : i + _CHUNK]
            marks = ",".join("?" * len(chunk))
            self._db.execute(f"DELETE FROM seen WHERE input IN ({marks})", chunk)
            self._db.execute(f"DELETE FROM inputs WHERE input IN ({marks})", chunk)

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
