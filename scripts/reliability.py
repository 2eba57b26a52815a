"""Kill runs, backfills and re-normalisations at many points; check what they leave; write RELIABILITY.md.

Usage
-----
    python scripts/reliability.py [--quick] [--files N] [--seed N] [--work DIR] [--out RELIABILITY.md]

`make reliability` runs it in full (about 10 minutes on 2 cores); `--quick` is a smoke
version of a few cases. Every command runs as `python -m flows.cli` of this checkout in
its own process group, against one Prefect server the harness starts (a few cases let
the command start its own, so that it is killed too).

What it does
------------
1. Writes a corpus of small text files in the sample format (the ANHA seed with its
   own title line per file, a sidecar with URL and publication date, spread over the
   twelve months of 2024, plus the malformed samples that are quarantined), and ingests
   it once.
2. Kill cases, one after another on that data root: before each, the corpus is edited
   (texts changed, files added, or sidecar dates moved to another month, so that
   articles move between partitions; before a re-normalisation, rows are marked as
   written by an older normaliser in the state). The command (`run`, `run --force`,
   `backfill` over the year, `renormalize`) is then killed when it reaches a point:
   after a random time, when it normalises (a spill file appears), when it writes (a
   staged partition file appears), when it commits (a partition file is replaced or a
   journal placed), or between backfill months (a ledger entry appears). The kill is
   SIGKILL to the whole process group, SIGKILL to the command's process only, or
   SIGTERM to it (which must stop it with exit 143 and its one line).
3. After each kill, as a reader would (`warehouse.journal.settle`, what `newsflow query`
   does first): no process of the command may be left after 10 s; every partition file
   must read with pyarrow and be the only file in its folder; no article_id may be in two
   partitions; every article there before the command must still be there (inputs are
   never deleted, so none may go). Every few cases, and at the end, a run to completion
   must give the rows a clean run over the same corpus gives.
4. Contention: two overlapping backfills started together, on copies of one data root,
   must equal running them one after the other.
5. The project's hostile-input tests (a pytest selection) run again.

A case that fails is reported as FAIL with what was found, and the exit status is 1.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
SOURCE = "rel"
SEED = REPO / "samples" / "anha" / "000_db5c100688d27208.txt"
MALFORMED = ("bad_empty.txt", "bad_binary.txt", "bad_latin1.txt")
YEAR = 2024
FULL_RANGE = (f"{YEAR}-01-01", f"{YEAR}-12-31")
GONE_WITHIN_S = 10.0  # how long a killed command's processes may take to end (a hang guard; they take < 1 s)
MODES = {"group": "SIGKILL group", "main": "SIGKILL main", "term": "SIGTERM"}
STOP_LINE = "partitions published before it are kept; nothing half-written is visible"
# The hostile-input tests: bounded parsers, bombs, malformed and hostile documents and servers.
HOSTILE_TESTS = (
    "tests/test_html.py",
    "tests/test_extract.py",
    "tests/test_text_normalizer.py",
    "tests/test_encoding.py",
    "tests/test_feeds.py",
    "tests/test_fetch.py",
    "tests/test_http_source.py",
    "tests/test_cli.py",
)
HOSTILE_SELECTION = "hostile or bomb or huge or malformed or garbage or soup or drip or stall or loop or budget"


# --- the corpus ---------------------------------------------------------------------------------


class Corpus:
    """Text files with sidecars in one folder, and the edits the cases make to them."""

    def __init__(self, folder: Path, rng: random.Random) -> None:
        self.folder, self.rng = folder, rng
        self.seed = SEED.read_text(encoding="utf-8")
        self.months: dict[str, int] = {}  # file stem -> month of its sidecar date
        self.revision: dict[str, int] = {}

    def build(self, files: int) -> None:
        """Write `files` articles spread over the year, and the malformed samples."""
        self.folder.mkdir(parents=True)
        for i in range(files):
            self._write(f"{i:05d}", 1 + i % 12, 0)
        for name in MALFORMED:
            shutil.copy(REPO / "samples" / "wire" / name, self.folder / name)

    def _write(self, stem: str, month: int, revision: int) -> None:
        text = self.seed.replace("Kado:", f"Kado {stem}:", 1)
        if revision:
            text = text.replace("\n\nT/ Satt.", f"\n\nRevised paragraph {revision} of {stem}.\n\nT/ Satt.", 1)
        (self.folder / f"{stem}.txt").write_text(text, encoding="utf-8")
        day = 1 + int(stem) % 28
        sidecar = {"url": f"https://example.org/news/{stem}", "published_at": f"{YEAR}-{month:02d}-{day:02d}T09:00:00Z"}
        (self.folder / f"{stem}.json").write_text(json.dumps(sidecar), encoding="utf-8")
        self.months[stem], self.revision[stem] = month, revision

    def edit(self, kind: str, count: int) -> str:
        """Apply one kind of edit to `count` files; returns what was done, in words."""
        stems = self.rng.sample(sorted(self.months), count)
        if kind == "move":
            for stem in stems:
                month = self.rng.choice([m for m in range(1, 13) if m != self.months[stem]])
                self._write(stem, month, self.revision[stem])
            return f"{count} articles moved to another month"
        if kind == "text":
            for stem in stems:
                self._write(stem, self.months[stem], self.revision[stem] + 1)
            return f"{count} texts changed"
        if kind == "add":
            start = len(self.months)
            for i in range(start, start + count):
                self._write(f"{i:05d}", self.rng.randint(1, 12), 0)
            return f"{count} files added"
        return "no edit"


def write_config(where: Path, corpus: Path) -> Path:
    """The sources.toml of the harness: one `files` source on the corpus, tagged like the seed's agency."""
    cfg = where / "sources.toml"
    cfg.write_text(
        f'[sources.{SOURCE}]\npath = {json.dumps(str(corpus))}\ninclude = ["*.txt"]\nformat = "text"\n'
        f'[[sources.{SOURCE}.rules]]\nname = "tag"\nkind = "byline"\nwhere = "tail"\n'
        "match = '[THAE]/\\s*\\S.{0,60}'\n",
        encoding="utf-8",
    )
    return cfg


def mark_outdated(data: Path, rng: random.Random, count: int) -> int:
    """Mark `count` written rows of the state as made by an older normaliser (what `renormalize` rebuilds)."""
    with contextlib.closing(sqlite3.connect(data / "state" / "newsflow.sqlite")) as db, db:
        paths = [p for (p,) in db.execute("SELECT path FROM files WHERE source = ? AND status = 'written'", (SOURCE,))]
        chosen = rng.sample(sorted(paths), min(count, len(paths)))
        db.executemany(
            "UPDATE files SET normalizer_version = 'text/0-old' WHERE source = ? AND path = ?",
            [(SOURCE, p) for p in chosen],
        )
    return len(chosen)


# --- running commands ---------------------------------------------------------------------------


@dataclass
class Env:
    """What every command of the harness needs: its config, the Prefect API and a folder for logs."""

    cfg: Path
    api_url: str | None
    logs: Path
    workers: int = 2

    def environ(self, own_server: bool = False) -> dict[str, str]:
        env = {**os.environ, "PYTHONPATH": str(REPO)}  # this checkout's packages, whatever is installed
        env.pop("PREFECT_API_URL", None)
        if self.api_url and not own_server:
            env["PREFECT_API_URL"] = self.api_url
        return env


def cli(env: Env, command: str, data: Path) -> list[str]:
    """The `newsflow` command line of one kind of command on `data`."""
    base = [sys.executable, "-m", "flows.cli"]
    common = ["--config", str(env.cfg), "--data", str(data), "--workers", str(env.workers)]
    if command == "run":
        return [*base, "run", *common]
    if command == "run --force":
        return [*base, "run", "--force", *common]
    if command == "renormalize":
        return [*base, "renormalize", *common]
    if command == "backfill":  # the whole year, every month rebuilt
        return [*base, "backfill", SOURCE, "--start", FULL_RANGE[0], "--end", FULL_RANGE[1], "--redo", "all", *common]
    if command.startswith("backfill "):  # "backfill START END": months done on the same inputs are skipped
        _, first, last = command.split()
        return [*base, "backfill", SOURCE, "--start", first, "--end", last, *common]
    raise ValueError(command)


def start(env: Env, command: str, data: Path, name: str, own_server: bool = False) -> subprocess.Popen[bytes]:
    """Start a command in its own process group (so that all of it can be found, and killed), logging to files."""
    with open(env.logs / f"{name}.out", "wb") as out, open(env.logs / f"{name}.err", "wb") as err:
        return subprocess.Popen(
            cli(env, command, data),
            cwd=REPO,
            env=env.environ(own_server),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            start_new_session=True,
        )


def complete(env: Env, command: str, data: Path, name: str) -> float:
    """Run a command to its end; returns its seconds. Raises if it fails."""
    t0 = time.monotonic()
    proc = start(env, command, data, name)
    code = proc.wait(timeout=900)
    if code != 0:
        raise RuntimeError(f"{command} failed with {code}: {tail(env.logs / f'{name}.err')}")
    return time.monotonic() - t0


def tail(path: Path, lines: int = 5) -> str:
    text = path.read_text(encoding="utf-8", errors="replace").strip().splitlines() if path.exists() else []
    return " | ".join(text[-lines:])


def group(pgid: int) -> list[int]:
    """Live processes (zombies are not) of process group `pgid`."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
                found.append(int(entry.name))
    return found


# --- when to kill -------------------------------------------------------------------------------


Trigger = Callable[[], bool]


def partition_files(data: Path) -> list[Path]:
    return [
        data / "articles" / f"source={SOURCE}" / f"year={YEAR}" / f"month={m:02d}" / "part-0.parquet"
        for m in range(1, 13)
    ]


def stat_of(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return (st.st_ino, st.st_mtime_ns)


def trigger(point: str, data: Path, started: float) -> Trigger:
    """A test that says when the command reached `point` (checked every few milliseconds)."""
    staging = data / ".staging"
    if point.startswith("t="):
        at = started + float(point[2:-1])
        return lambda: time.monotonic() >= at
    if point == "normalising":
        runs = staging / "runs"
        earlier = set(runs.iterdir()) if runs.is_dir() else set()  # spills a killed command left

        def normalising() -> bool:
            return runs.is_dir() and any(any(r.glob(f"{SOURCE}/*/*.arrow")) for r in set(runs.iterdir()) - earlier)

        return normalising
    if point == "writing":
        staged = _staged_partitions(staging)
        earlier = {p for paths in staged() for p in paths}

        def writing() -> bool:
            return any(p not in earlier for paths in staged() for p in paths)

        return writing
    if point == "commit":
        files = partition_files(data)
        before = [stat_of(p) for p in files]
        journal = staging / "commits" / SOURCE / "journal.json"

        def committing() -> bool:
            return journal.exists() or any(stat_of(p) != b for p, b in zip(files, before, strict=True))

        return committing
    if point.startswith("ledger+"):
        ledger = data / "runs" / f"source={SOURCE}"
        want = (len(list(ledger.glob("*.parquet"))) if ledger.is_dir() else 0) + int(point[7:])
        return lambda: ledger.is_dir() and len(list(ledger.glob("*.parquet"))) >= want
    raise ValueError(point)


def _staged_partitions(staging: Path) -> Callable[[], Iterator[list[str]]]:
    """Lists of the staged partition files of the source: those written in place, and those of commits."""
    commits = staging / "commits" / SOURCE

    def listed() -> Iterator[list[str]]:
        if staging.is_dir():
            yield [e.name for e in os.scandir(staging) if e.name.startswith(f"{SOURCE}.")]
        if commits.is_dir():
            yield [str(p) for p in commits.glob("*/*.parquet")]

    return listed


# --- what a killed command leaves -----------------------------------------------------------


@dataclass
class Dataset:
    """Where each article is, as pyarrow reads the dataset; and what is wrong with it."""

    where: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def read_dataset(data: Path) -> Dataset:
    """Every partition file read whole with pyarrow: article_id -> partition, and problems found."""
    import pyarrow.parquet as pq

    found = Dataset()
    twice: set[str] = set()
    articles = data / "articles"
    for path in sorted(articles.rglob("*")) if articles.is_dir() else []:
        if path.is_dir():
            continue
        key = str(path.parent.relative_to(articles))
        if path.name != "part-0.parquet":
            found.problems.append(f"stray file {path.relative_to(data)}")
            continue
        try:
            table = pq.read_table(path)
        except Exception as exc:
            found.problems.append(f"unreadable {key}: {type(exc).__name__}: {exc}")
            continue
        for aid in table.column("article_id").to_pylist():
            if aid in found.where:
                twice.add(aid)
            found.where[aid] = key
    if twice:
        found.problems.append(f"{len(twice)} article_id(s) in two partitions")
    return found


def comparable_rows(data: Path) -> list[tuple[str, ...]]:
    """The dataset's rows without what differs between two runs of the same input (run id and time)."""
    import pyarrow.dataset as ds

    if not (data / "articles").is_dir():
        return []
    table = ds.dataset(data / "articles", format="parquet", partitioning="hive").to_table()
    keep = [c for c in table.column_names if c not in {"run_id", "ingested_at"}]
    return sorted(tuple(str(v) for v in row.values()) for row in table.select(keep).to_pylist())


def placements(data: Path) -> list[tuple[str, str]]:
    with contextlib.closing(sqlite3.connect(data / "state" / "newsflow.sqlite")) as db:
        rows = db.execute("SELECT path, partition FROM files WHERE source = ? AND status = 'written'", (SOURCE,))
        return sorted((p, k) for p, k in rows)


# --- cases ----------------------------------------------------------------------------------


@dataclass
class Row:
    """One line of the report."""

    case: str
    command: str
    setup: str
    kill: str
    outcome: str  # PASS, FAIL, or "not reached" (the command ended before the point)
    notes: str
    seconds: float


@dataclass(frozen=True)
class KillCase:
    command: str  # run, run --force, backfill, renormalize
    edit: str  # move, text, add, none
    point: str  # normalising, writing, commit, ledger+N, t=<s>s (or "random": a random time)
    mode: str  # group (SIGKILL to the process group), main (SIGKILL to the command only), term (SIGTERM)
    own_server: bool = False


def kill_cases(quick: bool) -> list[KillCase]:
    """The kill cases, in the order they run (each on what the previous one left)."""
    if quick:
        return [
            KillCase("run", "move", "commit", "group"),
            KillCase("run", "text", "normalising", "main"),
            KillCase("backfill", "text", "ledger+1", "term"),
            KillCase("renormalize", "move", "writing", "group"),
        ]
    return [
        KillCase("run", "move", "commit", "group"),
        KillCase("run", "move", "commit", "main"),
        KillCase("run", "text", "normalising", "main"),
        KillCase("run", "add", "writing", "group"),
        KillCase("run", "move", "random", "term"),
        KillCase("run --force", "none", "commit", "group"),
        KillCase("run --force", "move", "writing", "main", own_server=True),
        KillCase("run --force", "none", "random", "group"),
        KillCase("backfill", "move", "ledger+1", "group"),
        KillCase("backfill", "move", "ledger+3", "main"),
        KillCase("backfill", "none", "writing", "term"),
        KillCase("backfill", "move", "commit", "group"),
        KillCase("backfill", "text", "random", "main", own_server=True),
        KillCase("renormalize", "move", "commit", "group"),
        KillCase("renormalize", "none", "writing", "main"),
        KillCase("renormalize", "move", "random", "term"),
        KillCase("run", "move", "random", "group"),
        KillCase("run", "move", "commit", "term"),
        KillCase("run --force", "text", "normalising", "term", own_server=True),
        KillCase("backfill", "move", "ledger+6", "group"),
        KillCase("backfill", "add", "random", "group"),
        KillCase("run", "add", "random", "main"),
        KillCase("renormalize", "text", "random", "group"),
        KillCase("run --force", "move", "random", "main"),
        KillCase("backfill", "move", "writing", "main"),
        KillCase("run", "move", "writing", "term", own_server=True),
        KillCase("run --force", "move", "commit", "group"),
        KillCase("backfill", "text", "commit", "term"),
    ]


@dataclass
class Harness:
    env: Env
    corpus: Corpus
    data: Path
    work: Path
    rng: random.Random
    durations: dict[str, float] = field(default_factory=dict)
    rows: list[Row] = field(default_factory=list)
    killed: int = 0

    def log(self, line: str) -> None:
        print(f"[{datetime.now(UTC):%H:%M:%S}] {line}", flush=True)

    def kill_case(self, n: int, case: KillCase) -> Row:
        """Edit, start the command, kill it at its point, and check what it left."""
        setup = self.corpus.edit(case.edit, self.edit_size(case.edit))
        if case.command == "renormalize":
            setup += f"; {mark_outdated(self.data, self.rng, 300)} rows marked outdated"
        before = read_dataset(self.data)
        point = case.point
        if point == "random":
            span = self.durations.get(case.command.split()[0], 10.0) + (4.0 if case.own_server else 0.0)
            point = f"t={self.rng.uniform(0.5, span):.2f}s"
        name = f"kill{n:02d}"
        t0 = time.monotonic()
        proc = start(self.env, case.command, self.data, name, case.own_server)
        reached = trigger(point, self.data, t0)
        while proc.poll() is None and not reached():
            time.sleep(0.002)
        kill = f"{MODES[case.mode]} at {point}"
        if proc.poll() is not None:
            return self.checked(n, case, setup, kill, before, proc, t0, reached=False)
        if case.mode == "group":
            os.killpg(proc.pid, signal.SIGKILL)
        else:
            os.kill(proc.pid, signal.SIGTERM if case.mode == "term" else signal.SIGKILL)
        killed_at = time.monotonic() - t0
        self.killed += 1
        return self.checked(n, case, setup, f"{kill} ({killed_at:.1f} s in)", before, proc, t0, reached=True)

    def checked(
        self, n: int, case: KillCase, setup: str, kill: str, before: Dataset, proc: Any, t0: float, reached: bool
    ) -> Row:
        """Wait for the command and its processes to end, then check the dataset against what it held before."""
        from warehouse.journal import pending, settle
        from warehouse.layout import DataRoot

        problems: list[str] = []
        try:
            code = proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            problems.append("the command did not end within 120 s of the kill")
            os.killpg(proc.pid, signal.SIGKILL)
            code = proc.wait()
        ended = time.monotonic()
        while group(proc.pid) and time.monotonic() < ended + GONE_WITHIN_S:
            time.sleep(0.05)
        left = group(proc.pid)
        if left:
            names = [Path(f"/proc/{p}/cmdline").read_bytes()[:80].replace(b"\0", b" ").decode() for p in left]
            problems.append(f"{len(left)} process(es) still running {GONE_WITHIN_S:.0f} s later: {names}")
            os.killpg(proc.pid, signal.SIGKILL)
        gone = time.monotonic() - ended
        err = self.env.logs / f"kill{n:02d}.err"
        if reached and case.mode == "term":
            last = tail(err, 1)
            if code != 128 + signal.SIGTERM or STOP_LINE not in last:
                problems.append(f"SIGTERM: exit {code}, last line {last!r}")
        elif not reached and code != 0:
            problems.append(f"exit {code}: {tail(err)}")
        journal = pending(DataRoot(self.data))
        settle(DataRoot(self.data))  # what a reader does first (newsflow query)
        after = read_dataset(self.data)
        problems += after.problems
        missing = [aid for aid in before.where if aid not in after.where]
        if missing:
            problems.append(f"{len(missing)} article(s) that were there before are missing")
        notes = "; ".join(problems) if problems else f"{len(after.where)} articles; processes gone {gone:.1f} s after"
        if journal:
            notes += "; a journal a killed publish left was rolled forward"
        outcome = "FAIL" if problems else ("PASS" if reached else "not reached")
        label = f"{case.command}" + (" (own server)" if case.own_server else "")
        return Row(f"kill {n:02d}", label, setup, kill, outcome, notes, time.monotonic() - t0)

    def reset(self) -> None:
        """Replace the data root by a clean run of the corpus as it is."""
        clean = self.work / "clean"
        shutil.rmtree(clean, ignore_errors=True)
        complete(self.env, "run", clean, f"reset-{len(self.rows):02d}")
        shutil.rmtree(self.data)
        clean.rename(self.data)

    def edit_size(self, kind: str) -> int:
        return {"move": 40, "text": 60, "add": 30}.get(kind, 0)

    def rerun_equals_clean(self, label: str) -> Row:
        """Run to the end on the data root, and a clean run of the same corpus: the rows must be equal."""
        t0 = time.monotonic()
        complete(self.env, "run", self.data, f"{label}-rerun")
        clean = self.work / "clean"
        shutil.rmtree(clean, ignore_errors=True)
        complete(self.env, "run", clean, f"{label}-clean")
        got, want = comparable_rows(self.data), comparable_rows(clean)
        dataset = read_dataset(self.data)
        problems = list(dataset.problems)
        if got != want:
            extra, lacking = len(set(got) - set(want)), len(set(want) - set(got))
            problems.append(f"rows differ from a clean run: {extra} not in it, {lacking} missing (of {len(want)})")
        shutil.rmtree(clean, ignore_errors=True)
        notes = "; ".join(problems) if problems else f"{len(got)} rows equal a clean run's"
        return Row(label, "run (to the end)", "-", "-", "FAIL" if problems else "PASS", notes, time.monotonic() - t0)


def contention(h: Harness, trials: int) -> list[Row]:
    """Two overlapping backfills at once, on copies of one data root, against the same two one after the other."""
    h.corpus.edit("move", 40)  # so that the months' inputs changed since their last backfill
    template = h.work / "contention-template"
    shutil.copytree(h.data, template)
    ranges = (f"backfill {YEAR}-01-01 {YEAR}-08-31", f"backfill {YEAR}-05-01 {YEAR}-12-31")
    serial = h.work / "contention-serial"
    shutil.copytree(template, serial)
    for i, command in enumerate(ranges):
        complete(h.env, command, serial, f"serial-{i}")
    want_rows, want_placed = comparable_rows(serial), placements(serial)
    rows = []
    for t in range(trials):
        t0 = time.monotonic()
        data = h.work / f"contention-{t:02d}"
        shutil.copytree(template, data)
        order = list(ranges) if h.rng.random() < 0.5 else list(reversed(ranges))
        procs = [start(h.env, order[0], data, f"contend{t:02d}-a")]
        time.sleep(h.rng.uniform(0.0, 1.5))
        procs.append(start(h.env, order[1], data, f"contend{t:02d}-b"))
        codes = [p.wait(timeout=900) for p in procs]
        problems = [f"exit {c}" for c in codes if c != 0]
        dataset = read_dataset(data)
        problems += dataset.problems
        if comparable_rows(data) != want_rows:
            problems.append("rows differ from the two backfills run one after the other")
        placed = placements(data)
        if placed != want_placed:
            odd = sorted(set(placed) ^ set(want_placed))
            problems.append(f"the state places {len(odd)} input(s) differently, e.g. {odd[:4]}")
        shutil.rmtree(data, ignore_errors=True)
        notes = "; ".join(problems) if problems else f"{len(want_rows)} rows and the state equal the serial result"
        rows.append(
            Row(
                f"contention {t + 1:02d}",
                " + ".join(order),
                "started together",
                "-",
                "FAIL" if problems else "PASS",
                notes,
                time.monotonic() - t0,
            )
        )
        h.log(f"contention {t + 1}: {rows[-1].outcome} {notes}")
    shutil.rmtree(serial, ignore_errors=True)
    shutil.rmtree(template, ignore_errors=True)
    return rows


def hostile_tests(logs: Path) -> Row:
    """The project's hostile-input tests, run again."""
    t0 = time.monotonic()
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *HOSTILE_TESTS, "-k", HOSTILE_SELECTION]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=1800, check=False)
    (logs / "hostile-tests.out").write_text(done.stdout + done.stderr, encoding="utf-8")
    summary = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr[-300:]
    outcome = "PASS" if done.returncode == 0 else "FAIL"
    return Row(
        "hostile input", "pytest -k " + repr(HOSTILE_SELECTION), "-", "-", outcome, summary, time.monotonic() - t0
    )


# --- the report -----------------------------------------------------------------------------


def report(rows: list[Row], args: argparse.Namespace, killed: int, files: int, seconds: float) -> str:
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True, check=False
    ).stdout.strip()
    counts = {o: sum(r.outcome == o for r in rows) for o in ("PASS", "FAIL", "not reached")}
    lines = [
        "# Reliability",
        "",
        "What killed and stopped commands leave behind, checked by `scripts/reliability.py`"
        f" (`make reliability`{', here with --quick' if args.quick else ''}).",
        "Regenerate this page with that command; it replaces the page.",
        "",
        f"Commit `{commit or '?'}`, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores; corpus of"
        f" {files} text files over the 12 months of {YEAR} (plus {len(MALFORMED)} malformed ones),"
        f" seed {args.seed}; {killed} kill points reached; {seconds / 60:.1f} minutes.",
        "",
        f"**{counts['PASS']} passed, {counts['FAIL']} failed, {counts['not reached']} not reached** (the command"
        " ended before its kill point; what it left is checked all the same)."
        + "".join(f" {what}: {n} case(s)." for what, n in failures(rows).items()),
        "",
        "After each kill, as a reader would (`newsflow query` settles a journal left by a killed publish first):"
        " no process of the command left after 10 s; every partition file reads with pyarrow and is alone in its"
        " folder; no article_id in two partitions; no article that was there before the command missing (inputs"
        " are edited, never deleted). SIGTERM must also stop the command with exit 143 and its one line. Each"
        " case runs on what the previous one left; the re-run rows run the data root to the end and compare it"
        " with a clean run of the same corpus. Kill modes: SIGKILL group (the whole process group: command,"
        " workers, server), SIGKILL main (the command's process only: the rest must end by itself), SIGTERM."
        " Kill points: a random time, normalising (a spill file appears), writing (a staged partition file"
        " appears), commit (a partition file is replaced or a journal placed), ledger+N (N more backfill months"
        " recorded).",
        "",
        "| case | command | setup | kill | outcome | notes | s |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        cells = [r.case, r.command, r.setup, r.kill, f"**{r.outcome}**" if r.outcome == "FAIL" else r.outcome]
        cells += [r.notes.replace("|", "/"), f"{r.seconds:.0f}"]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    return "\n".join(lines)


def failures(rows: list[Row]) -> dict[str, int]:
    """Failed cases by what was found (a case may find several things)."""
    kinds = {
        "An article_id in two partitions": ("in two partitions",),
        "An article missing": ("missing",),
        "A process left running": ("still running",),
        "A partition file unreadable or a stray file": ("unreadable", "stray"),
        "SIGTERM not answered as it should be": ("SIGTERM:",),
        "Rows unlike the reference": ("differ",),
    }
    counts: dict[str, int] = {}
    for what, marks in kinds.items():
        found = sum(r.outcome == "FAIL" and any(m in r.notes for m in marks) for r in rows)
        if found:
            counts[what] = found
    return counts


@contextlib.contextmanager
def prefect_server() -> Iterator[str]:
    """One Prefect API server for the harness's commands (they start up faster than with one each)."""
    from flows.server import ONE_SHOT_OPTIONS, LocalServer
    from flows.settings import apply_prefect_defaults

    apply_prefect_defaults()
    log = Path(os.environ["PREFECT_HOME"]) / "reliability-server.log"
    with LocalServer(0, log, options=ONE_SHOT_OPTIONS) as server:
        yield server.api_url


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke version: a few cases, two contention trials")
    parser.add_argument("--files", type=int, help="articles in the corpus (default 3000, 600 with --quick)")
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument("--work", type=Path, help="work folder, kept (default: a temporary one, removed)")
    parser.add_argument("--out", type=Path, default=REPO / "RELIABILITY.md")
    parser.add_argument("--contention", type=int, help="contention trials (default 20, 2 with --quick)")
    args = parser.parse_args(argv)
    if not sys.platform.startswith("linux"):
        parser.error("the harness reads /proc to find a killed command's processes: Linux only")
    files = args.files or (600 if args.quick else 3000)
    trials = args.contention if args.contention is not None else (2 if args.quick else 20)
    # This checkout's packages, whatever is installed: for the checks here and for every process started.
    sys.path.insert(0, str(REPO))
    os.environ["PYTHONPATH"] = str(REPO)
    t0 = time.monotonic()
    with contextlib.ExitStack() as stack:
        work = args.work or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="newsflow-reliability-")))
        work.mkdir(parents=True, exist_ok=True)
        logs = work / "logs"
        logs.mkdir(exist_ok=True)
        rng = random.Random(args.seed)
        corpus = Corpus(work / "corpus", rng)
        corpus.build(files)
        env = Env(write_config(work, corpus.folder), None, logs)
        h = Harness(env, corpus, work / "data", work, rng)
        h.log(f"corpus of {files} files in {work}; starting a Prefect server")
        env.api_url = stack.enter_context(prefect_server())
        h.durations["run"] = complete(env, "run --force", h.data, "initial")
        h.durations["backfill"] = complete(env, "backfill", h.data, "calibrate-backfill")
        h.durations["renormalize"] = h.durations["run"]
        h.log(f"ingested in {h.durations['run']:.1f} s, backfilled in {h.durations['backfill']:.1f} s")
        cases = kill_cases(args.quick)
        for n, case in enumerate(cases, 1):
            row = h.kill_case(n, case)
            h.rows.append(row)
            h.log(f"kill {n:02d} {case.command} {row.kill}: {row.outcome} ({row.notes})")
            if row.outcome == "FAIL":  # the next case starts from a sound data root, or it would inherit this one
                h.reset()
                row.notes += "; the data root was then replaced by a clean run's"
            if n % 8 == 0 or n == len(cases):
                h.rows.append(h.rerun_equals_clean(f"re-run after kill {n:02d}"))
                h.log(f"{h.rows[-1].case}: {h.rows[-1].outcome} ({h.rows[-1].notes})")
        h.rows += contention(h, trials)
        h.rows.append(hostile_tests(logs))
        h.log(f"{h.rows[-1].case}: {h.rows[-1].outcome} ({h.rows[-1].notes})")
        args.out.write_text(report(h.rows, args, h.killed, files, time.monotonic() - t0), encoding="utf-8")
        h.log(f"wrote {args.out}")
    return 1 if any(r.outcome == "FAIL" for r in h.rows) else 0


if __name__ == "__main__":
    sys.exit(main())
