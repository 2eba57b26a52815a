"""Multi-partition commits: old or new as a whole after a crash at any step, recovery, staging of dead runs."""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from commit_scenario import NEW, OLD, SOURCE, Version, snapshot, stage_towards

from warehouse.errors import CommitConflict, JournalError
from warehouse.journal import Change, Commit, pending, publish, recover, settle
from warehouse.layout import DataRoot, Partition
from warehouse.quarantine import QuarantineRecord, stage_quarantine
from warehouse.query import connect
from warehouse.staging import clean_source_staging, clean_stale_staging, mark_owner
from warehouse.writer import upsert_partition

REPO = Path(__file__).resolve().parent.parent
SCENARIO = REPO / "tests" / "commit_scenario.py"
# The processes killed here import this worktree's packages, whatever is installed.
ENV = {**os.environ, "PYTHONPATH": str(REPO)}


class Crash(Exception):
    """A simulated crash at a step of a publish or a recovery."""


@pytest.fixture(scope="module")
def old_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("old") / "data"
    stage_towards(DataRoot(data), None, OLD)
    shutil.rmtree(DataRoot(data).staging)  # the spills written to build it
    return data


def _old_root(template: Path, where: Path) -> DataRoot:
    shutil.copytree(template, where)
    root = DataRoot(where)
    assert snapshot(root) == OLD
    return root


def _crash_at(step: str) -> object:
    def fault(reached: str) -> None:
        if reached == step:
            raise Crash(step)

    return fault


def _publish_steps(template: Path, where: Path) -> list[str]:
    """The steps a publish of OLD -> NEW goes through, in order."""
    root = _old_root(template, where)
    seen: list[str] = []
    with Commit.begin(root, SOURCE) as commit:
        publish(root, SOURCE, stage_towards(root, commit, NEW), fault=seen.append)
    return seen


def _leftovers(root: DataRoot) -> list[str]:
    """What is left in staging besides spill folders of live runs (this test's process)."""
    left = [str(p.relative_to(root.root)) for p in root.commits.rglob("*") if p.is_file()]
    return left + [str(p.relative_to(root.root)) for p in root.staging.glob("*.parquet")]


def test_a_staged_commit_changes_nothing_until_it_is_published_then_everything(
    old_template: Path, tmp_path: Path
) -> None:
    root = _old_root(old_template, tmp_path / "data")
    with Commit.begin(root, SOURCE) as commit:
        changes = stage_towards(root, commit, NEW)
        assert snapshot(root) == OLD
        assert len(changes) == 7  # months 1-7: six rewritten or new, June deleted
        assert [c.target for c in changes if c.staged is None] == [
            "articles/source=s/year=2024/month=06/part-0.parquet"
        ]
        assert publish(root, SOURCE, changes) == 7
    assert snapshot(root) == NEW
    assert not root.journal(SOURCE).exists()
    assert _leftovers(root) == []
    assert publish(root, SOURCE, []) == 0


def test_a_publish_stopped_at_any_step_is_wholly_old_or_wholly_new_after_recover(
    old_template: Path, tmp_path: Path
) -> None:
    steps = _publish_steps(old_template, tmp_path / "probe")
    assert steps[:3] == ["staged", "journal-written", "journal-placed"]
    assert steps[-3:] == ["synced", "cleaned", "done"]
    assert len([s for s in steps if s.startswith("applied ")]) == 7
    for i, step in enumerate(steps):
        root = _old_root(old_template, tmp_path / f"at{i}")
        with pytest.raises(Crash), Commit.begin(root, SOURCE) as commit:
            publish(root, SOURCE, stage_towards(root, commit, NEW), fault=_crash_at(step))
        committed = i >= steps.index("journal-placed")
        assert root.journal(SOURCE).exists() == (committed and step != "done"), step
        recovered = recover(root, SOURCE)
        assert snapshot(root) == (NEW if committed else OLD), step
        assert recovered.rolled_forward == (7 if committed and step != "done" else 0), step
        assert not root.journal(SOURCE).exists()
        assert _leftovers(root) == [], step


def test_a_recovery_stopped_at_any_step_finishes_on_the_next_one(old_template: Path, tmp_path: Path) -> None:
    steps = _publish_steps(old_template, tmp_path / "probe")
    second = [s for s in steps if s.startswith("applied ")][1]
    recovery_steps = steps[steps.index("journal-placed") + 1 :]
    for i, step in enumerate(recovery_steps):
        root = _old_root(old_template, tmp_path / f"at{i}")
        with pytest.raises(Crash), Commit.begin(root, SOURCE) as commit:
            publish(root, SOURCE, stage_towards(root, commit, NEW), fault=_crash_at(second))
        if step != "done":  # a recovery that dies after its last step has nothing left to do
            with pytest.raises(Crash):
                recover(root, SOURCE, fault=_crash_at(step))
        recover(root, SOURCE)
        assert snapshot(root) == NEW, step
        assert not root.journal(SOURCE).exists()


def _scenario(root: DataRoot, step: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCENARIO), str(root.root), step],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=ENV,
    )


@pytest.mark.slow
def test_a_publish_killed_at_any_step_is_wholly_old_or_wholly_new_after_recover(
    old_template: Path, tmp_path: Path
) -> None:
    steps = _publish_steps(old_template, tmp_path / "probe")
    for i, step in enumerate([*steps, "-"]):
        root = _old_root(old_template, tmp_path / f"at{i}")
        done = _scenario(root, step)
        assert done.returncode == (0 if step == "-" else -signal.SIGKILL), (step, done.stderr[-2000:])
        # The killed process's staging (its spills, its commit) goes: its owner is dead.
        recovered = recover(root, SOURCE)
        committed = step == "-" or steps.index(step) >= steps.index("journal-placed")
        assert snapshot(root) == (NEW if committed else OLD), step
        assert recovered.removed >= (0 if step == "-" else 1), step
        assert _leftovers(root) == [], step
        assert not (root.spill_runs / "stage").exists(), step


@pytest.mark.slow
def test_publishes_killed_at_random_moments_are_each_wholly_old_or_wholly_new(
    old_template: Path, tmp_path: Path
) -> None:
    root = _old_root(old_template, tmp_path / "data")
    rng = random.Random(15)
    journals_left = 0
    for _ in range(8):
        proc = subprocess.Popen(
            [sys.executable, str(SCENARIO), str(root.root), "--loop"], stdout=subprocess.PIPE, text=True, env=ENV
        )
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.05, 0.6))
        proc.kill()
        proc.wait(timeout=30)
        proc.stdout.close()
        journals_left += root.journal(SOURCE).exists()
        recover(root, SOURCE)
        assert snapshot(root) in (OLD, NEW)
        assert _leftovers(root) == []
    # Informative only: how often a kill landed after a commit point, before its end.
    print(f"{journals_left} of 8 kills left a journal to roll forward")


def test_a_file_changed_since_it_was_staged_makes_the_commit_refused_whole(old_template: Path, tmp_path: Path) -> None:
    root = _old_root(old_template, tmp_path / "data")
    with Commit.begin(root, SOURCE) as commit:
        changes = stage_towards(root, commit, NEW)
        # Another writer rewrites February after the commit staged its new February.
        upsert_partition(root, Partition(SOURCE, 2024, 2), delete_ids=["a-2-05"])
        with pytest.raises(CommitConflict, match="month=02"):
            publish(root, SOURCE, changes)
    want: Version = {m: dict(rows) for m, rows in OLD.items()}
    del want[2]["a-2-05"]
    assert snapshot(root) == want
    assert not root.journal(SOURCE).exists()
    assert _leftovers(root) == []  # the refused commit's files went with it


def test_publishes_of_one_source_from_two_threads_take_turns(old_template: Path, tmp_path: Path) -> None:
    root = _old_root(old_template, tmp_path / "data")
    errors: list[BaseException] = []

    def empty(months: range) -> None:
        try:
            with Commit.begin(root, SOURCE) as commit:
                changes = [
                    upsert_partition(root, Partition(SOURCE, 2024, m), replace=True, stage=commit).change
                    for m in months
                ]
                publish(root, SOURCE, [c for c in changes if c], fault=lambda _step: time.sleep(0.001))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=empty, args=(months,)) for months in (range(1, 4), range(4, 7))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert snapshot(root) == {}


def test_a_commit_stays_within_its_source(old_template: Path, tmp_path: Path) -> None:
    root = _old_root(old_template, tmp_path / "data")
    with Commit.begin(root, SOURCE) as commit:
        staged = commit.staged_path("x")
        staged.write_bytes(b"x")
        rel = staged.relative_to(root.root).as_posix()
        for target in ("articles/source=t/year=2024/month=01/part-0.parquet", "state/newsflow.sqlite", "articles/../x"):
            with pytest.raises(ValueError, match="is not a file of source s"):
                publish(root, SOURCE, [Change(target, rel, None)])
        with pytest.raises(ValueError, match="not a file staged"):
            publish(root, SOURCE, [Change("articles/source=s/year=2024/month=01/part-0.parquet", "state/x", None)])
        with pytest.raises(ValueError, match="twice"):
            twice = "quarantine/source=s/r.parquet"
            publish(root, SOURCE, [Change(twice, rel, None), Change(twice, None, None)])
        with pytest.raises(ValueError, match="partition t/2024-01 cannot be staged"):
            upsert_partition(root, Partition("t", 2024, 1), stage=commit)
    # A journal is checked like a publish: one naming a file elsewhere moves nothing.
    root.commit_staging(SOURCE).mkdir(parents=True, exist_ok=True)
    body = '{"format": 1, "source": "s", "changes": [{"target": "state/newsflow.sqlite", "staged": null}]}'
    root.journal(SOURCE).write_text(body)
    with pytest.raises(JournalError, match="is refused"):
        recover(root, SOURCE)
    assert settle(root) == []  # readers are not stopped by it; the next command says why
    root.journal(SOURCE).write_text("{not json")
    with pytest.raises(JournalError, match="cannot be read"):
        recover(root, SOURCE)
    assert snapshot(root) == OLD


def test_readers_settle_a_journal_a_killed_publish_left(old_template: Path, tmp_path: Path) -> None:
    root = _old_root(old_template, tmp_path / "data")
    steps = _publish_steps(old_template, tmp_path / "probe")
    with pytest.raises(Crash), Commit.begin(root, SOURCE) as commit:
        publish(root, SOURCE, stage_towards(root, commit, NEW), fault=_crash_at(steps[4]))
    assert pending(root) == [SOURCE]
    con = connect(root.root)  # the query path settles first
    assert pending(root) == []
    rows = con.sql("SELECT month, count(*) FROM articles GROUP BY month ORDER BY month").fetchall()
    assert rows == [(m, len(NEW[m])) for m in sorted(NEW)]
    assert settle(root) == []


def test_rejects_can_be_staged_in_the_commit_of_their_rows(old_template: Path, tmp_path: Path) -> None:
    root = _old_root(old_template, tmp_path / "data")
    record = QuarantineRecord(SOURCE, "file:///x.txt", None, "empty", "empty file", "run-1", datetime.now(UTC))
    with Commit.begin(root, SOURCE) as commit:
        changes = stage_towards(root, commit, NEW)
        reject = stage_quarantine(commit, "run-1", [record])
        assert reject is not None and stage_quarantine(commit, "run-1", []) is None
        assert not (root.quarantine / "source=s").exists()
        publish(root, SOURCE, [*changes, reject])
    assert (root.quarantine / "source=s" / "run-1.parquet").is_file()
    assert connect(root.root).sql("SELECT reason FROM quarantine_log").fetchall() == [("empty",)]


def _dead_owner(*folders: Path) -> int:
    """Mark `folders` as owned by a process that then exits; returns its (now unused) pid."""
    code = (
        "import os; from pathlib import Path; from warehouse.staging import mark_owner;"
        f"[mark_owner(Path(p)) for p in {[str(f) for f in folders]!r}]; print(os.getpid())"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60, env=ENV)
    return int(done.stdout)


def test_a_sources_staging_left_by_dead_runs_goes_whatever_its_age(tmp_path: Path) -> None:
    root = DataRoot(tmp_path / "data")
    dead_spills, other_source = root.spills("run-dead") / "s", root.spills("run-dead") / "t"
    live_spills = root.spills("ahead-live") / "s"
    unowned = root.spills("run-unowned") / "s"
    dead_commit, live_commit = root.commit_staging("s") / "c-dead", Commit.begin(root, "s").folder
    pid = _dead_owner(dead_spills, other_source, dead_commit)
    mark_owner(live_spills)
    for folder in (dead_spills, other_source, live_spills, unowned / "2024-01", dead_commit):
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "x.arrow").write_bytes(b"rows")
    dead_file = root.staging / f"s.2024-01.{pid}.abc.parquet"
    live_file = root.staging / f"s.2024-02.{os.getpid()}.abc.parquet"
    for path in (dead_file, live_file, root.staging / f"t.2024-01.{pid}.abc.parquet"):
        path.write_bytes(b"half-written")

    assert clean_source_staging(root, "s") == 4
    assert not dead_spills.exists() and not unowned.exists() and not dead_commit.exists() and not dead_file.exists()
    assert not root.spills("run-unowned").exists()  # the run's folder went with its last source
    assert live_spills.exists() and live_commit.exists() and live_file.exists()
    assert other_source.exists() and (root.staging / f"t.2024-01.{pid}.abc.parquet").exists()
    assert clean_source_staging(root, "s") == 0

    # The day-old clean-up of every source keeps what a live process owns, however old.
    day_old = time.time() - 2 * 86_400
    for path in (root.spills("ahead-live"), live_commit, root.spills("run-dead")):
        os.utime(path, (day_old, day_old))
    assert clean_stale_staging(root) == 1  # run-dead (source t's spills; its owner is dead)
    assert root.spills("ahead-live").exists() and live_commit.exists()


def test_a_journal_keeps_the_commits_it_names_from_every_clean_up(old_template: Path, tmp_path: Path) -> None:
    root = _old_root(old_template, tmp_path / "data")
    steps = _publish_steps(old_template, tmp_path / "probe")
    first_applied = next(s for s in steps if s.startswith("applied "))
    with pytest.raises(Crash), Commit.begin(root, SOURCE) as commit:
        publish(root, SOURCE, stage_towards(root, commit, NEW), fault=_crash_at(first_applied))
    assert commit.folder.exists()  # the context manager leaves it to the recovery
    day_old = time.time() - 2 * 86_400
    os.utime(commit.folder, (day_old, day_old))
    clean_source_staging(root, SOURCE)
    clean_stale_staging(root)
    assert commit.folder.exists()
    recover(root, SOURCE)
    assert snapshot(root) == NEW
    assert not commit.folder.exists()


def test_pool_workers_stage_and_the_owner_publishes(old_template: Path, tmp_path: Path) -> None:
    from commit_scenario import articles

    from pipeline.workers import map_in_pool, shutdown_pool
    from warehouse.schema import articles_to_table
    from warehouse.writer import write_spill

    root = _old_root(old_template, tmp_path / "data")
    calls = []
    for month in sorted(set(OLD) | set(NEW)):
        part = Partition(SOURCE, 2024, month)
        rows = NEW.get(month, {})
        spills = [write_spill(root, "pool", part, "b0", articles_to_table(articles(month, rows)))] if rows else []
        calls.append((root, part, spills, (), 600.0, True))
    try:
        with Commit.begin(root, SOURCE) as commit:
            writes = map_in_pool(2, upsert_partition, [(*c, None, None, commit) for c in calls])
            assert snapshot(root) == OLD  # the workers only staged
            publish(root, SOURCE, [w.change for w in writes if w.change is not None])
    finally:
        shutdown_pool()
    assert snapshot(root) == NEW
    assert _leftovers(root) == []


def test_the_state_update_of_a_commit_lands_with_its_files_whatever_step_a_publish_stops_at(
    old_template: Path, tmp_path: Path
) -> None:
    """A publish killed after its commit point saves the commit's state rows on recovery: state and data agree."""
    from warehouse.state import FileState, StateStore

    def states(root: DataRoot) -> dict[str, FileState]:
        with StateStore(root.state) as store:
            return store.load(SOURCE)

    row = FileState(SOURCE, "a.txt", 1, 2, "", "ab" * 32, "id-a", f"{SOURCE}/2024-05", "written", "1.0", "r2")
    steps = _publish_steps(old_template, tmp_path / "probe")
    for i, step in enumerate(steps):
        root = _old_root(old_template, tmp_path / f"at{i}")
        with StateStore(root.state) as store:
            store.save([row._replace(partition=f"{SOURCE}/2024-01", run_id="r1"), row._replace(path="gone.txt")])
        with pytest.raises(Crash), Commit.begin(root, SOURCE) as commit:
            state = commit.stage_state([row], ["gone.txt"])
            publish(root, SOURCE, stage_towards(root, commit, NEW), state=state, fault=_crash_at(step))
        recover(root, SOURCE)
        committed = i >= steps.index("journal-placed")
        assert snapshot(root) == (NEW if committed else OLD), step
        if committed:
            assert states(root) == {"a.txt": row}, step
        else:
            assert states(root)["a.txt"].run_id == "r1" and "gone.txt" in states(root), step
        assert _leftovers(root) == [], step


@pytest.mark.parametrize("rows", [0, 1, 4999])
def test_a_state_update_is_applied_whole_whether_staged_as_json_lines_or_by_an_older_version(
    old_template: Path, tmp_path: Path, rows: int
) -> None:
    """Every staged row is saved and every forgotten path deleted, from the current format and the older one."""
    import json

    from warehouse.state import FileState, StateStore

    made = [
        FileState(SOURCE, f"f{i}.txt", i, i, "", "ab" * 32, f"id-{i}", f"{SOURCE}/2024-05", "written", "1.0", "r2")
        for i in range(rows)
    ]
    for kind in ("lines", "older"):
        root = _old_root(old_template, tmp_path / kind)
        with StateStore(root.state) as store:
            store.save([made[0]._replace(path="gone.txt")] if made else [])
        with Commit.begin(root, SOURCE) as commit:
            state = commit.stage_state(iter(made), ["gone.txt"])
            if kind == "older":
                staged = root.root / state
                staged.write_text(json.dumps({"save": [list(r) for r in made], "delete": ["gone.txt"]}))
            publish(root, SOURCE, [], state=state)
        with StateStore(root.state) as store:
            assert store.load(SOURCE) == {r.path: r for r in made}, kind


def test_a_state_update_holding_another_sources_rows_is_refused_and_saves_nothing(
    old_template: Path, tmp_path: Path
) -> None:
    """A state update is checked row by row, in one transaction: a foreign row leaves the state as it was."""
    from warehouse.errors import JournalError
    from warehouse.state import FileState, StateStore

    root = _old_root(old_template, tmp_path / "r")
    good = FileState(SOURCE, "a.txt", 1, 2, "", "ab" * 32, "id-a", f"{SOURCE}/2024-05", "written", "1.0", "r2")
    rows = [good._replace(path=f"f{i}.txt") for i in range(3000)] + [good._replace(source="other")]
    with pytest.raises(JournalError, match="another source"), Commit.begin(root, SOURCE) as commit:
        publish(root, SOURCE, [], state=commit.stage_state(rows))
    with StateStore(root.state) as store:
        assert store.load(SOURCE) == {}
