"""Backfills: plans by article month, atomic partition rebuilds, the ledger, resume and redo."""

from __future__ import annotations

import itertools
import json
import os
import sqlite3
from datetime import date
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest
from helpers import Output, RenameGate, files_source_config, harness_env

from pipeline.backfill import (
    BackfillPlan,
    choose,
    month_range,
    plan_files_backfill,
    resolve_batch,
    whole_months,
)
from pipeline.config import load_config
from pipeline.run import LocalRunner, backfill_units, plan_backfill, run_source
from warehouse.layout import DataRoot, Partition
from warehouse.ledger import LedgerEntry, latest_entries, read_ledger
from warehouse.state import StateStore

REPO = Path(__file__).resolve().parent.parent
SEED = (REPO / "samples" / "anha" / "000_db5c100688d27208.txt").read_text(encoding="utf-8")


def write_article(folder: Path, stem: str, published: str | None, extra: str = "") -> Path:
    """A seed-like article `stem.txt` (its own title and text), with a sidecar when `published` is given."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{stem}.txt"
    path.write_text(SEED.replace("Kado:", f"Kado {stem}:", 1).replace("\n\nT/ Satt.", f"{extra}\n\nT/ Satt.", 1))
    if published is not None:
        sidecar = {"url": f"https://example.org/{stem}", "published_at": published}
        (folder / f"{stem}.json").write_text(json.dumps(sidecar), encoding="utf-8")
    return path


def make_config(tmp: Path, corpus: Path) -> Path:
    return files_source_config(tmp, "bf", corpus)


def backfill(cfg: Path, root: DataRoot, start: str, end: str, redo: str = "none", run_id: str = "bf-1") -> BackfillPlan:
    """A backfill through the core, in-process (one worker): its plan, then `run_source` on each unit."""
    src = load_config(cfg).sources["bf"]
    runner = LocalRunner(1)
    plan = plan_backfill(src, root, date.fromisoformat(start), date.fromisoformat(end), redo, runner=runner)
    for unit in backfill_units(plan, (start, end)):
        run_source(src, root, run_id, unit, runner=runner)
    return plan


def rows(root: DataRoot) -> dict[str, set[tuple[str, str]]]:
    """(article_id, content_hash) per partition, read with pyarrow (no duplicate ids anywhere)."""
    out: dict[str, set[tuple[str, str]]] = {}
    seen: set[str] = set()
    for path in sorted(root.articles.rglob("*.parquet")):
        table = pq.read_table(path, columns=["article_id", "content_hash"])
        ids = table.column(0).to_pylist()
        assert not seen & set(ids), f"an article_id appears in two partitions ({path})"
        seen |= set(ids)
        out[str(path.parent.relative_to(root.articles))] = set(zip(ids, table.column(1).to_pylist(), strict=True))
    return out


def test_month_range_covers_whole_months_across_a_year_end() -> None:
    assert month_range(date(2023, 11, 30), date(2024, 2, 1)) == ["2023-11", "2023-12", "2024-01", "2024-02"]
    assert month_range(date(2024, 3, 31), date(2024, 3, 1).replace(day=31)) == ["2024-03"]
    assert whole_months(date(2024, 2, 10), date(2024, 2, 11)) == (date(2024, 2, 1), date(2024, 2, 29))
    assert whole_months(date(2023, 12, 31), date(2023, 12, 31)) == (date(2023, 12, 1), date(2023, 12, 31))
    with pytest.raises(ValueError, match="before start"):
        month_range(date(2024, 2, 1), date(2024, 1, 31))


def test_the_plan_places_files_by_their_article_month_with_edges_and_empty_months(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    write_article(corpus, "jan-last-minute", "2024-01-31T23:59:59Z")
    write_article(corpus, "feb-first-second", "2024-02-01T00:00:00Z")
    # 01:00 on 1 Feb in UTC+03:00 is 31 January in UTC, but was published on 1 February: February.
    write_article(corpus, "feb-by-offset", "2024-02-01T01:00:00+03:00")
    # 23:30 on 31 January in UTC-05:00 is 1 February in UTC, but was published in January.
    write_article(corpus, "jan-by-offset", "2024-01-31T23:30:00-05:00")
    # A date-only sidecar value is that day, wherever the source is.
    write_article(corpus, "feb-first-day", "2024-02-01")
    write_article(corpus, "april", "2024-04-02T12:00:00Z")
    write_article(corpus, "dec-before", "2023-12-31T23:59:59Z")
    (corpus / "empty.txt").write_text("")
    cfg = make_config(tmp_path, corpus)
    root = DataRoot(tmp_path / "data")
    src = load_config(cfg).sources["bf"]

    plan = plan_files_backfill(
        src, root, date(2024, 1, 15), date(2024, 3, 2), "none", lambda items: resolve_batch(src, root, items)
    )

    assert (plan.start, plan.end) == (date(2024, 1, 1), date(2024, 3, 31))
    placed = {u.period: sorted(c.rel for c in u.items) for u in plan.units}
    assert placed == {
        "2024-01": ["jan-by-offset.txt", "jan-last-minute.txt"],
        "2024-02": ["feb-by-offset.txt", "feb-first-day.txt", "feb-first-second.txt"],
        "2024-03": [],
    }
    assert plan.outside == 2  # April and December
    assert plan.rejected == {"empty": 1}
    assert [u.action for u in plan.units] == ["run", "run", "empty"]  # March: no inputs, no rows
    newest = plan_files_backfill(
        src, root, date(2024, 1, 15), date(2024, 3, 2), "none", lambda items: resolve_batch(src, root, items), True
    )
    assert [u.period for u in newest.units] == ["2024-03", "2024-02", "2024-01"]
    # Planning writes nothing but its scratch file of inputs, which closing the plan removes.
    assert plan.store is not None and plan.store.path.is_relative_to(root.spill_runs)
    # Owned by this live process: the staging clean-up leaves it, whatever its age.
    from warehouse.staging import clean_stale_staging

    clean_stale_staging(root, max_age_s=0)
    assert plan.store.path.exists() and len(plan.units[0].items) == 2
    plan.close()
    newest.close()
    assert not plan.store.path.exists()
    assert [p for p in root.root.rglob("*") if p.is_file()] == []


def test_the_plan_judges_future_dates_as_the_run_does(tmp_path: Path) -> None:
    # A sidecar dated 2999 is no publication date: the plan, like the run, places the file by its mtime.
    corpus = tmp_path / "corpus"
    path = write_article(corpus, "future", "2999-01-01T00:00:00Z")
    february = 1_707_998_400  # 2024-02-15 12:00 UTC
    os.utime(path, (february, february))
    src = load_config(make_config(tmp_path, corpus)).sources["bf"]
    root = DataRoot(tmp_path / "data")
    plan = plan_files_backfill(
        src, root, date(2024, 1, 1), date(2024, 3, 31), "none", lambda items: resolve_batch(src, root, items)
    )
    assert {u.period: [c.rel for c in u.items] for u in plan.units if u.items} == {"2024-02": ["future.txt"]}


def _entry(status: str, inputs: str) -> LedgerEntry:
    from datetime import UTC, datetime

    now = datetime.now(UTC)
    return LedgerEntry("bf", "2024-01", "backfill", status, "r", 1, 1, 0, 0, 0, 0, "1", inputs, None, None, now, now)


def test_redo_decides_which_partitions_run_again() -> None:
    done, failed = _entry("completed", "abc"), _entry("failed", "abc")
    assert [choose(None, "abc", r) for r in ("none", "failed", "all")] == ["run", "run", "run"]
    assert [choose(done, "abc", r) for r in ("none", "failed", "all")] == ["skip", "skip", "run"]
    assert [choose(failed, "abc", r) for r in ("none", "failed", "all")] == ["skip-failed", "run", "run"]
    # Inputs changed since: the partition runs whatever happened before.
    assert [choose(done, "xyz", r) for r in ("none", "failed", "all")] == ["run", "run", "run"]


def test_a_backfill_replaces_each_partition_and_leaves_the_others_alone(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    for i in range(3):
        write_article(corpus, f"jan{i}", f"2024-01-{10 + i}T08:00:00Z")
        write_article(corpus, f"feb{i}", f"2024-02-{10 + i}T08:00:00Z")
        write_article(corpus, f"mar{i}", f"2024-03-{10 + i}T08:00:00Z")
    cfg = make_config(tmp_path, corpus)
    root = DataRoot(tmp_path / "data")
    first = backfill(cfg, root, "2024-01-01", "2024-03-31", run_id="bf-1")
    assert [len(u.items) for u in first.units] == [3, 3, 3]
    before = rows(root)
    assert {k: len(v) for k, v in before.items()} == {f"source=bf/year=2024/month=0{m}": 3 for m in (1, 2, 3)}
    march = root.partition_file(Partition("bf", 2024, 3))
    march_stat = march.stat()

    # In January one file is deleted and one edited; one February article moves to January.
    (corpus / "jan0.txt").unlink()
    (corpus / "jan0.json").unlink()
    write_article(corpus, "jan1", "2024-01-11T08:00:00Z", extra="\n\nA paragraph added later.")
    write_article(corpus, "feb2", "2024-01-20T08:00:00Z")
    second = backfill(cfg, root, "2024-01-05", "2024-01-06", run_id="bf-2")
    assert [u.period for u in second.units] == ["2024-01"]

    after = rows(root)
    jan, feb = after["source=bf/year=2024/month=01"], after["source=bf/year=2024/month=02"]
    jan_before = before["source=bf/year=2024/month=01"]
    assert len(jan) == 3  # jan1 (edited), jan2, feb2
    assert len(jan & jan_before) == 1  # only jan2 is unchanged
    assert len(feb) == 2  # feb2's old copy was removed from February
    assert march.stat().st_mtime_ns == march_stat.st_mtime_ns  # March was not rewritten
    entry = latest_entries(root, "bf")["2024-01"]
    assert (entry.status, entry.items, entry.rows_before, entry.written, entry.removed) == ("completed", 3, 3, 3, 1)
    with StateStore(root.state) as store:
        states = store.load("bf")
    assert "jan0.txt" not in states
    assert states["feb2.txt"].partition == "bf/2024-01"

    # The ledger is queryable next to the articles.
    con = duckdb.connect()
    glob = f"{root.runs}/**/*.parquet"
    got = con.sql(f"SELECT partition, status, run_id FROM read_parquet('{glob}') ORDER BY finished_at").fetchall()
    assert [(p, r) for p, _s, r in got] == [
        ("2024-01", "bf-1"),
        ("2024-02", "bf-1"),
        ("2024-03", "bf-1"),
        ("2024-01", "bf-2"),
    ]


def test_a_failed_partition_is_recorded_and_only_it_runs_again(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    for m in (1, 2, 3):
        for i in range(2):
            write_article(corpus, f"m{m}-{i}", f"2024-0{m}-0{i + 1}T08:00:00Z")
    cfg = make_config(tmp_path, corpus)
    root = DataRoot(tmp_path / "data")
    clean = DataRoot(tmp_path / "clean")
    backfill(cfg, clean, "2024-01-01", "2024-03-31")

    # A February partition file that cannot be read makes its rebuild fail.
    feb = root.partition_file(Partition("bf", 2024, 2))
    feb.parent.mkdir(parents=True)
    feb.write_bytes(b"not parquet at all")
    plan = backfill(cfg, root, "2024-01-01", "2024-03-31", run_id="bf-1")
    assert [u.rows for u in plan.units] == [0, -1, 0]
    ledger = {e.partition: e for e in latest_entries(root, "bf").values()}
    assert {p: e.status for p, e in ledger.items()} == {
        "2024-01": "completed",
        "2024-02": "failed",
        "2024-03": "completed",
    }
    assert ledger["2024-02"].error and "parquet" in ledger["2024-02"].error.lower()
    assert feb.read_bytes() == b"not parquet at all"  # a failed rebuild leaves the partition as it was

    feb.unlink()  # the operator deals with the bad file
    again = backfill(cfg, root, "2024-01-01", "2024-03-31", run_id="bf-2")
    assert [u.action for u in again.units] == ["skip", "skip-failed", "skip"]
    redo = backfill(cfg, root, "2024-01-01", "2024-03-31", redo="failed", run_id="bf-3")
    assert [u.action for u in redo.units] == ["skip", "run", "skip"]
    runs = [e["partition"] for e in read_ledger(root, "bf").to_pylist() if e["run_id"] == "bf-3"]
    assert runs == ["2024-02"]
    assert rows(root) == rows(clean)
    assert [u.action for u in backfill(cfg, root, "2024-01-01", "2024-03-31", redo="all", run_id="bf-4").units] == [
        "run",
        "run",
        "run",
    ]
    assert rows(root) == rows(clean)


def test_a_completed_partition_runs_again_when_its_inputs_change(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    write_article(corpus, "a", "2024-05-01T08:00:00Z")
    cfg = make_config(tmp_path, corpus)
    root = DataRoot(tmp_path / "data")
    backfill(cfg, root, "2024-05-01", "2024-05-31")
    assert [u.action for u in backfill(cfg, root, "2024-05-01", "2024-05-31").units] == ["skip"]
    write_article(corpus, "b", "2024-05-02T08:00:00Z")
    assert [u.action for u in backfill(cfg, root, "2024-05-01", "2024-05-31").units] == ["run"]
    assert len(rows(root)["source=bf/year=2024/month=05"]) == 2


def test_a_backfill_is_idempotent(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    for i in range(4):
        write_article(corpus, f"x{i}", f"2024-0{1 + i % 2}-0{1 + i}T08:00:00Z")
    write_article(corpus, "undated", None)
    os.utime(corpus / "undated.txt", (1_706_000_000, 1_706_000_000))  # 2024-01-23 from its mtime
    cfg = make_config(tmp_path, corpus)
    root = DataRoot(tmp_path / "data")
    backfill(cfg, root, "2024-01-01", "2024-02-29", run_id="bf-1")
    first = rows(root)
    backfill(cfg, root, "2024-01-01", "2024-02-29", redo="all", run_id="bf-2")
    assert rows(root) == first
    assert sum(len(v) for v in first.values()) == 5


# --- the Prefect flow and the command line -------------------------------------------


@pytest.mark.usefixtures("prefect_harness")
def test_the_backfill_flow_runs_units_in_parallel_and_fails_when_one_fails(tmp_path: Path) -> None:
    from flows.flow import BackfillFailed
    from flows.flow import backfill as backfill_flow

    corpus = tmp_path / "corpus"
    for m in (1, 2, 3, 4):
        write_article(corpus, f"m{m}", f"2024-0{m}-05T08:00:00Z")
    cfg = make_config(tmp_path, corpus)
    data = tmp_path / "data"
    dry = backfill_flow(
        source="bf", start="2024-01-01", end="2024-04-30", dry_run=True, config=str(cfg), data=str(data)
    )
    assert [u["items"] for u in dry.plan["units"]] == [1, 1, 1, 1]
    assert not (data / "articles").exists() and not (data / "runs").exists()

    summary = backfill_flow(
        source="bf", start="2024-01-01", end="2024-04-30", max_concurrency=3, config=str(cfg), data=str(data), workers=1
    )
    assert [(e["partition"], e["status"], e["written"]) for e in summary.entries] == [
        (f"2024-0{m}", "completed", 1) for m in (1, 2, 3, 4)
    ]
    con = duckdb.connect()
    n = con.sql(f"SELECT count(*) FROM read_parquet('{data}/articles/**/*.parquet')").fetchall()
    assert n == [(4,)]

    (data / "articles" / "source=bf" / "year=2024" / "month=03" / "part-0.parquet").write_bytes(b"broken")
    with pytest.raises(BackfillFailed, match="1 of 4 partitions failed \\(2024-03\\)"):
        backfill_flow(
            source="bf", start="2024-01-01", end="2024-04-30", redo="all", config=str(cfg), data=str(data), workers=1
        )
    latest = latest_entries(DataRoot(data), "bf")
    assert {p: e.status for p, e in latest.items()} == {
        "2024-01": "completed",
        "2024-02": "completed",
        "2024-03": "failed",
        "2024-04": "completed",
    }


@pytest.mark.usefixtures("prefect_harness")
def test_renormalize_records_its_partitions_in_the_ledger(tmp_path: Path) -> None:
    import sqlite3

    from flows.flow import ingest, renormalize
    from warehouse.query import connect

    corpus = tmp_path / "corpus"
    write_article(corpus, "a", "2024-06-01T08:00:00Z")
    write_article(corpus, "b", "2024-07-01T08:00:00Z")
    cfg = make_config(tmp_path, corpus)
    data = tmp_path / "data"
    ingest(config=str(cfg), data=str(data), workers=1)
    with sqlite3.connect(data / "state" / "newsflow.sqlite") as db:
        db.execute("UPDATE files SET normalizer_version = '0.0.1' WHERE path = 'b.txt'")
    summary = renormalize(config=str(cfg), data=str(data), workers=1)
    got = connect(data).sql("SELECT kind, partition, items, written, normalizer_version, run_id FROM runs").fetchall()
    src = load_config(cfg).sources["bf"]
    from normalizers.dispatch import normalizer_for

    assert got == [("renormalize", "2024-07", 1, 1, normalizer_for(src.format, "b.txt")[1], summary.run_id)]


def _args(cfg: Path, data: Path, start: str, end: str, *extra: str) -> list[str]:
    dates = ["--start", start, "--end", end]
    return ["backfill", "bf", *dates, "--config", str(cfg), "--data", str(data), "--json", *extra]


def _cli(cfg: Path, data: Path, start: str, end: str, *extra: str) -> list[str]:
    import sys

    return [sys.executable, "-m", "flows.cli", *_args(cfg, data, start, end, *extra)]


def _month_corpus(tmp: Path, months: range, per_month: int) -> Path:
    corpus = tmp / "corpus"
    for m in months:
        for i in range(per_month):
            write_article(corpus / f"m{m:02d}", f"m{m:02d}-{i:04d}", f"2024-{m:02d}-{1 + i % 28:02d}T08:00:00Z")
    return corpus


@pytest.mark.usefixtures("prefect_harness")
def test_two_overlapping_backfills_at_once_equal_running_them_one_after_the_other(tmp_path: Path) -> None:
    import subprocess

    cfg = make_config(tmp_path, _month_corpus(tmp_path, range(1, 7), 150))
    together, apart = tmp_path / "together", tmp_path / "apart"
    env = harness_env()
    procs = [
        subprocess.Popen(_cli(cfg, together, s, e), cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for s, e in (("2024-01-01", "2024-04-30"), ("2024-03-01", "2024-06-30"))
    ]
    for p in procs:
        _out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err.decode()[-2000:]
    backfill(cfg, DataRoot(apart), "2024-01-01", "2024-04-30", run_id="a")
    backfill(cfg, DataRoot(apart), "2024-03-01", "2024-06-30", run_id="b")
    got, want = rows(DataRoot(together)), rows(DataRoot(apart))
    assert got == want
    assert sum(len(v) for v in got.values()) == 6 * 150
    with StateStore(DataRoot(together).state) as s1, StateStore(DataRoot(apart).state) as s2:
        placed = sorted((p, k) for p, _a, k in s1.placements("bf"))
        assert placed == sorted((p, k) for p, _a, k in s2.placements("bf"))


@pytest.mark.usefixtures("prefect_harness")
def test_a_backfill_killed_halfway_finishes_the_rest_on_the_next_run(tmp_path: Path) -> None:
    import signal
    import subprocess

    cfg = make_config(tmp_path, _month_corpus(tmp_path, range(1, 9), 40))
    data, clean = tmp_path / "data", tmp_path / "clean"
    args = _args(cfg, data, "2024-01-01", "2024-08-31", "--max-concurrency", "1", "--workers", "1")
    # Killed when its fourth month is rebuilt, about to be recorded in the ledger: three are done.
    with RenameGate(f"{data / 'runs'}/*", harness_env()) as gate:
        proc = subprocess.Popen(
            gate.command(*args), cwd=REPO, env=gate.env, start_new_session=True, stdout=subprocess.DEVNULL
        )
        try:
            for _ in range(3):
                gate.next(proc, timeout=240)
                gate.release(timeout=60)
            gate.next(proc, timeout=240)
        finally:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    done_before = {e.partition for e in latest_entries(DataRoot(data), "bf").values()}
    assert len(done_before) == 3

    cmd = _cli(cfg, data, "2024-01-01", "2024-08-31", "--max-concurrency", "1", "--workers", "1")
    out = subprocess.run(cmd, cwd=REPO, env=harness_env(), capture_output=True, text=True, timeout=300, check=False)
    assert out.returncode == 0, out.stderr[-2000:]
    resumed = json.loads(out.stdout)
    assert {e["partition"] for e in resumed["entries"]} == {f"2024-{m:02d}" for m in range(1, 9)} - done_before
    backfill(cfg, DataRoot(clean), "2024-01-01", "2024-08-31")
    assert rows(DataRoot(data)) == rows(DataRoot(clean))


def test_the_dry_run_prints_the_plan_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from flows.cli import main

    monkeypatch.setenv("COLUMNS", "200")  # one line per message
    corpus = tmp_path / "corpus"
    write_article(corpus, "a", "2024-02-03T08:00:00Z")
    write_article(corpus, "b", "2024-04-03T08:00:00Z")
    cfg, data = make_config(tmp_path, corpus), tmp_path / "data"
    argv = ["backfill", "bf", "--start", "2024-02-10", "--end", "2024-03-01", "--config", str(cfg), "--data", str(data)]
    assert main([*argv, "--dry-run", "--workers", "1", "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert (plan["start"], plan["end"], plan["outside"]) == ("2024-02-01", "2024-03-31", 1)
    assert [(u["partition"], u["items"], u["rows"], u["action"]) for u in plan["units"]] == [
        ("2024-02", 1, 0, "run"),
        ("2024-03", 0, 0, "empty"),  # no inputs and no rows: nothing to rebuild
    ]
    assert main([*argv, "--dry-run", "--workers", "1"]) == 0
    out = capsys.readouterr().out
    assert "1 of 2 partitions to rebuild (1 item, replacing 0 rows); 1 item dated outside the range" in out
    assert "1 month with no inputs and no rows: nothing to rebuild there" in out
    assert not data.exists()


def test_backfill_user_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from flows.cli import main

    cfg = make_config(tmp_path, tmp_path)
    extra = ["--start", "2024-03-01", "--end", "2024-02-01"]
    assert main(["backfill", "bf", "--config", str(cfg), "--data", str(tmp_path / "d"), *extra]) == 2
    err = capsys.readouterr().err
    assert err.startswith("newsflow: error: ") and "--end 2024-02-01 is before --start 2024-03-01" in err
    with pytest.raises(SystemExit) as exited:  # argparse's own usage error
        main(["backfill", "bf", "--start", "2024-03-01", "--end", "2024-04-01", "--max-concurrency", "0"])
    assert exited.value.code == 2 and "--max-concurrency: must be at least 1" in capsys.readouterr().err
    assert main(["backfill", "nope", "--start", "2024-01-01", "--end", "2024-01-02", "--config", str(cfg)]) == 2
    assert "unknown source(s): nope" in capsys.readouterr().err


@pytest.mark.usefixtures("prefect_harness")
def test_runs_of_one_source_take_turns(tmp_path: Path) -> None:
    import subprocess
    import sys

    from warehouse.atomic import locked

    corpus = tmp_path / "corpus"
    write_article(corpus, "a", "2024-05-01T08:00:00Z")
    cfg, data = make_config(tmp_path, corpus), tmp_path / "data"
    root = DataRoot(data)
    cmd = [sys.executable, "-m", "flows.cli", "run", "bf", "--config", str(cfg), "--data", str(data), "--json"]
    with locked(root.source_lock("bf")):  # as a backfill of bf would hold it
        proc = subprocess.Popen(cmd, cwd=REPO, env=harness_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert proc.stdout is not None and proc.stderr is not None
        out, err = Output(proc.stdout), Output(proc.stderr)
        assert err.wait_for("waiting for it to finish", timeout=120), err.text[-2000:]
        # Told so, it still waits: a second later it has neither ended nor written.
        with pytest.raises(subprocess.TimeoutExpired):
            proc.wait(timeout=1.0)
        assert not root.articles.exists()
    assert proc.wait(timeout=120) == 0, err.rest(10)[-2000:]
    assert json.loads(out.rest(10))["sources"][0]["written"] == 1


def test_an_article_moving_between_months_is_never_lost_between_their_commits(tmp_path: Path) -> None:
    """A backfill stopped after the month an article leaves, before the month it joins: it stays where it was.

    The next run of any kind then moves it, and the data equals a clean run's.
    """
    from pipeline.run import Backfill

    corpus = tmp_path / "corpus"
    for i in range(4):
        write_article(corpus, f"a{i}", f"2024-01-{10 + i}T10:00:00Z")
        write_article(corpus, f"b{i}", f"2024-02-{10 + i}T10:00:00Z")
    cfg, root = make_config(tmp_path, corpus), DataRoot(tmp_path / "data")
    backfill(cfg, root, "2024-01-01", "2024-02-29")
    before = rows(root)
    january_key = next(k for k in before if k.endswith("month=01") or k.endswith("month=1"))
    moving = {aid for aid, _ in before[january_key]}
    write_article(corpus, "a0", "2024-02-20T10:00:00Z")  # a0 now belongs to February

    src = load_config(cfg).sources["bf"]
    plan = plan_backfill(src, root, date(2024, 1, 1), date(2024, 2, 29), "none", runner=LocalRunner(1))
    january, _february = backfill_units(plan, ("2024-01-01", "2024-02-29"))
    assert isinstance(january, Backfill) and january.unit.period == "2024-01" and len(january.keep) == 1
    run_source(src, root, "bf-2", january, runner=LocalRunner(1))  # ... and the backfill is killed here
    after = rows(root)  # no article in two partitions (rows() checks), none lost
    assert {aid for part in after.values() for aid, _ in part} == {aid for part in before.values() for aid, _ in part}
    assert january.keep <= {aid for aid, _ in after[january_key]} and january.keep <= moving

    run_source(src, root, "run-3", runner=LocalRunner(1))  # the next ingest moves it
    clean = DataRoot(tmp_path / "clean")
    run_source(src, clean, "clean", runner=LocalRunner(1))
    assert {k: {a for a, _ in v} for k, v in rows(root).items()} == {
        k: {a for a, _ in v} for k, v in rows(clean).items()
    }


def _shared_urls(corpus: Path) -> None:
    """Pairs of inputs with one URL: in one month, across months in the range, and with one side outside it."""
    pairs = [
        ("same", "2024-01-05", "2024-01-20"),
        ("fwd", "2024-01-06", "2024-02-06"),  # the later path is in the later month
        ("back", "2024-02-07", "2024-01-07"),  # ... and in the earlier one
        ("out", "2024-01-08", "2024-03-08"),  # the owner is outside a January-February backfill
    ]
    for stem, first, second in pairs:
        for side, day in (("a", first), ("b", second)):
            write_article(corpus, f"{stem}-{side}", f"{day}T10:00:00Z")
            sidecar = corpus / f"{stem}-{side}.json"
            sidecar.write_text(json.dumps({"url": f"https://example.org/{stem}", "published_at": f"{day}T10:00:00Z"}))
    write_article(corpus, "alone", "2024-02-01T10:00:00Z")


def _placed(root: DataRoot) -> dict[str, set[tuple[str, str]]]:
    """(article_id, title) per partition; `rows` asserts no article_id is in two partitions."""
    rows(root)
    out: dict[str, set[tuple[str, str]]] = {}
    for path in sorted(root.articles.rglob("*.parquet")):
        table = pq.read_table(path, columns=["article_id", "title"])
        out[str(path.parent.relative_to(root.articles))] = set(
            zip(table.column(0).to_pylist(), table.column(1).to_pylist(), strict=True)
        )
    return out


@pytest.mark.parametrize(
    "steps",
    [
        *itertools.permutations(["run", "backfill", "renormalize"]),
        ("backfill-jan", "backfill-feb", "run"),
        ("backfill-feb", "renormalize", "backfill-jan", "run"),
        ("run", "backfill-jan", "renormalize", "backfill-feb"),
        ("backfill-newest-first", "renormalize", "run"),
    ],
)
def test_inputs_sharing_a_url_across_months_give_one_row_in_any_order_of_commands(
    tmp_path: Path, steps: tuple[str, ...]
) -> None:
    """No sequence of run, backfill and renormalize puts an article_id in two rows; the end equals a clean run."""
    from pipeline.run import Renormalize

    corpus = tmp_path / "corpus"
    _shared_urls(corpus)
    cfg, root = make_config(tmp_path, corpus), DataRoot(tmp_path / "data")
    src = load_config(cfg).sources["bf"]
    clean = DataRoot(tmp_path / "clean")
    run_source(src, clean, "clean", runner=LocalRunner(1))
    expected = _placed(clean)
    # The later path of each pair wins, as a run places it; 5 articles in all.
    assert sum(len(v) for v in expected.values()) == 5
    assert {title.split(":")[0] for v in expected.values() for _, title in v} >= {"Kado same-b", "Kado back-b"}

    for n, step in enumerate(steps):
        if step == "run":
            run_source(src, root, f"r{n}", runner=LocalRunner(1))
        elif step == "renormalize":
            if (root.state / StateStore.FILE).exists():
                with sqlite3.connect(root.state / StateStore.FILE) as db:  # as after a normaliser upgrade
                    db.execute("UPDATE files SET normalizer_version = '0.0.1'")
            run_source(src, root, f"n{n}", Renormalize(), runner=LocalRunner(1))
        else:
            ranges = {"backfill-jan": ("2024-01-01", "2024-01-31"), "backfill-feb": ("2024-02-01", "2024-02-29")}
            start, end = ranges.get(step, ("2024-01-01", "2024-02-29"))
            plan = plan_backfill(
                src, root, date.fromisoformat(start), date.fromisoformat(end), "all",
                step == "backfill-newest-first", runner=LocalRunner(1),
            )  # fmt: skip
            for unit in backfill_units(plan, (start, end)):
                run_source(src, root, f"bf{n}", unit, runner=LocalRunner(1))
        placed = _placed(root)  # no article_id twice after any step
        if step == "run":
            assert placed == expected
    assert _placed(root) == expected


def test_a_month_keeps_an_article_it_leaves_to_another_until_that_month_takes_it(tmp_path: Path) -> None:
    """January holds an article whose new owner input is in February: a backfill stopped between the two keeps it."""
    corpus = tmp_path / "corpus"
    write_article(corpus, "a", "2024-01-10T10:00:00Z")
    cfg, root = make_config(tmp_path, corpus), DataRoot(tmp_path / "data")
    src = load_config(cfg).sources["bf"]
    run_source(src, root, "r1", runner=LocalRunner(1))
    (aid,) = {a for part in rows(root).values() for a, _ in part}
    write_article(corpus, "b", "2024-02-10T10:00:00Z")  # a later path giving the same URL, dated February
    (corpus / "b.json").write_text(json.dumps({"url": "https://example.org/a", "published_at": "2024-02-10T10:00:00Z"}))

    plan = plan_backfill(src, root, date(2024, 1, 1), date(2024, 2, 29), "none", runner=LocalRunner(1))
    january, february = backfill_units(plan, ("2024-01-01", "2024-02-29"))
    assert january.unit.elsewhere == ((aid, "2024-02"),) and january.keep == {aid}
    run_source(src, root, "bf", january, runner=LocalRunner(1))  # ... and the backfill is killed here
    assert {k: {a for a, _ in v} for k, v in rows(root).items()} == {"source=bf/year=2024/month=01": {aid}}
    run_source(src, root, "bf", february, runner=LocalRunner(1))
    assert {k: {a for a, _ in v} for k, v in rows(root).items()} == {"source=bf/year=2024/month=02": {aid}}
