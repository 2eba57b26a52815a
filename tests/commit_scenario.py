"""A multi-partition commit to crash: shared by tests/test_journal.py and the processes it kills.

Two versions of one source's dataset, `OLD` and `NEW`: between them an article moves
from January to March and another from April to May, February's texts change, June
empties (its file is deleted) and July appears. `stage_towards` stages the commit that
turns whatever the data root holds into a version; `snapshot` reads the dataset back.

Run as a script (with the repository on PYTHONPATH), `python tests/commit_scenario.py ROOT STEP` stages the commit from
the data root's version to the other one and publishes it, killing itself with SIGKILL
when the publish reaches STEP ("-" for never); `... ROOT --loop` publishes the two
versions in turn until it is killed, printing a line after each.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import sys
from datetime import UTC, date, datetime
from pathlib import Path

import pyarrow.parquet as pq

from normalizers import Article, SourceMeta, normalize_text
from normalizers.profile import SourceProfile
from warehouse.journal import Change, Commit, publish
from warehouse.layout import DataRoot, Partition
from warehouse.schema import articles_to_table
from warehouse.writer import upsert_partition, write_spill

REPO = Path(__file__).resolve().parent.parent
SOURCE = "s"
Version = dict[int, dict[str, str]]  # month of 2024 -> article_id -> text

OLD: Version = {m: {f"a-{m}-{i:02d}": f"v1 {m}-{i}" for i in range(20)} for m in range(1, 7)}
NEW: Version = {m: dict(rows) for m, rows in OLD.items()}
NEW[3]["a-1-00"] = NEW[1].pop("a-1-00")  # moves January -> March
NEW[5]["a-4-03"] = NEW[4].pop("a-4-03")  # moves April -> May
NEW[2] = {aid: text.replace("v1", "v2") for aid, text in NEW[2].items()}
del NEW[6]
NEW[7] = {f"a-7-{i:02d}": f"v2 7-{i}" for i in range(20)}


def _base() -> Article:
    seed = REPO / "samples" / "anha" / "000_db5c100688d27208.txt"
    meta = SourceMeta(SOURCE, seed.as_uri(), seed.name, datetime(2024, 3, 9, tzinfo=UTC).timestamp(), None)
    art = normalize_text(seed.read_bytes(), meta, SourceProfile(name=SOURCE))
    assert isinstance(art, Article)
    return art


def articles(month: int, rows: dict[str, str]) -> list[Article]:
    """Records of `month` with the given ids and texts."""
    base = _base()
    day = date(2024, month, 10)
    when = datetime(2024, month, 10, 8, tzinfo=UTC)
    return [
        dataclasses.replace(base, article_id=aid, text=text, published_at=when, published_date=day)
        for aid, text in sorted(rows.items())
    ]


def stage_towards(root: DataRoot, commit: Commit | None, want: Version) -> list[Change]:
    """Rebuild every partition whose rows differ from `want`: staged in `commit`, or in place when None.

    Returns the staged changes (none in place).
    """
    have = snapshot(root)
    changes: list[Change] = []
    for month in sorted(set(have) | set(want)):
        rows = want.get(month, {})
        if have.get(month, {}) == rows:
            continue
        part = Partition(SOURCE, 2024, month)
        spills = [write_spill(root, "stage", part, "b0", articles_to_table(articles(month, rows)))] if rows else []
        written = upsert_partition(root, part, spills, replace=True, stage=commit)
        if written.change is not None:
            changes.append(written.change)
    return changes


def snapshot(root: DataRoot) -> Version:
    """The dataset as ids and texts per month; asserts that no article_id is in two partitions."""
    out: Version = {}
    seen: set[str] = set()
    for path in sorted(root.articles.rglob("*.parquet")):
        assert path.name == "part-0.parquet", f"stray file in the dataset: {path}"
        table = pq.read_table(path, columns=["article_id", "text"])
        ids = table.column(0).to_pylist()
        assert not seen & set(ids), f"an article_id is in two partitions: {sorted(seen & set(ids))}"
        seen |= set(ids)
        month = int(path.parent.name.removeprefix("month="))
        out[month] = dict(zip(ids, table.column(1).to_pylist(), strict=True))
    return out


def _main(argv: list[str]) -> None:
    root = DataRoot(Path(argv[0]))
    if argv[1] == "--loop":
        want = NEW if snapshot(root) == OLD else OLD
        print("ready", flush=True)
        while True:
            with Commit.begin(root, SOURCE) as commit:
                publish(root, SOURCE, stage_towards(root, commit, want))
            print("published", flush=True)
            want = OLD if want is NEW else NEW
    step = argv[1]

    def die(reached: str) -> None:
        if reached == step:
            os.kill(os.getpid(), signal.SIGKILL)

    with Commit.begin(root, SOURCE) as commit:
        publish(root, SOURCE, stage_towards(root, commit, NEW), fault=die)


if __name__ == "__main__":
    _main(sys.argv[1:])
