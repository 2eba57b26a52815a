"""Benchmark: `newsflow run` over N plain-text articles against a naive script.

What it does
------------
1. Builds a corpus of N seed-like files (the ANHA sample with a number in the title
   and one extra sentence in the lede, so every file has its own article_id and
   content) in WORKDIR/corpus/, 1,000 files per subfolder. A third of the files get a
   `<stem>.json` sidecar (url + published_at), a third a dateline at the start of the
   lede ("QAMISHLO, 12 March 2024 - ..."), the rest neither (date from the file mtime).
   Dates are spread over 24 months, so the run writes ~24 partitions.
2. Runs, each as its own subprocess, in this order (one round; `--repeat R` runs R):
   - `empty run`: `newsflow run` over a source whose folder is empty (separate config
     and data dir): the fixed cost of a run (interpreter, Prefect start-up, flow run);
   - `full run`: `newsflow run` over the N files into WORKDIR/data (emptied first);
   - `no-op re-run`: the same command again; it must write nothing (checked on its
     `--json` summary: written == 0, unchanged == N);
   - `naive`: one single-threaded Python process that walks the files, reads them,
     drops the tail lines (blank, `T/ ...` tags, `Other news`) and writes ONE Parquet
     file (path, title, text) with pyarrow. It is the floor a pipeline is compared to.
3. Checks with DuckDB that WORKDIR/data/articles/**/*.parquet holds exactly N rows
   (and N distinct article_id), that every run exited 0, and reports descendants
   that outlive a run (waiting up to 10 s for them before the next step starts).

Usage: python bench/ingest_text.py [--files N] [--workdir DIR] [--keep] [--workers W]
                                   [--repeat R]

How to read the output
----------------------
`wall s` is the elapsed time of the subprocess, start-up included. Memory is sampled
every 50 ms from /proc: `RSS main` is the peak of the `newsflow` process alone (its
VmHWM, read until just before it exits), `RSS tree` the peak of the sum of RSS over
the process and all its descendants (normaliser worker processes, the Prefect server
subprocess). RSS sums count pages shared between processes (the interpreter, imported
libraries) once per process, so `PSS tree` (proportional set size, shared pages split
between their users) is printed too: it is the closer figure for "RAM the run needs".
PSS is read once a second only (reading it costs the kernel milliseconds per process,
CPU the measured run would lose), so its peak is a sampled, lower figure.
A process that lives less than 50 ms between two samples can be missed. The peak
RSS of each process of the full run's tree is listed under the table.

Every `newsflow run` pays the start-up of a temporary Prefect server, which varies by
several seconds from run to run, and the machine's speed drifts over minutes (the
same full run has taken 27 s of CPU in one round and 34 s in the next); "no-op re-run
minus empty run" is a difference of two such runs, so with one run each it is mostly
noise. Each ratio and difference is therefore taken within a round, between runs made
seconds apart, and `--repeat R` judges the median over R rounds (use 3 or more when
the figures matter). `CPU s` (user + system time of the run's processes) helps tell
more work from more waiting when wall times move.

Targets (PASS/FAIL lines): full run / naive <= 2.5x; no-op re-run minus empty run
<= 1.5 s (the per-run cost of skipping N unchanged files); peak RSS <= 500 MB, judged
on the `newsflow` process, the one that holds the run's state (plan, outcomes, state
rows). Summed over the process tree the figure cannot meet any such target: an EMPTY
run's tree already sums to ~590 MB (Prefect's client in the main process, Prefect's
server, two idle workers), so the tree sum is printed with its growth over the empty
run, the memory the N files actually add. Before every step that reads the corpus,
the bench reads it once, so all steps start with the files in the page cache (this
machine's page cache does not keep a just-written 400 MB corpus until it is used),
and then syncs, so no step pays for writing back what an earlier step left dirty.

The script exits 0 whatever the figures and checks say: it reports, it is not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
SEED = REPO / "samples" / "anha" / "000_db5c100688d27208.txt"
REPO_CONFIG = REPO / "sources.toml"
# Copy the byline rules (and text options) of this source so the bench corpus is
# cleaned exactly like the real ANHA dumps it imitates.
TEMPLATE_SOURCE = "anha"
# Profile keys that change how a document is normalised; copied from the template.
_PROFILE_KEYS = (
    "include",
    "format",
    "language",
    "timezone",
    "title_line",
    "max_bytes",
    "default_rules",
)

FILES_PER_FOLDER = 1000
MONTHS = 24
FIRST_YEAR = 2023  # dates run from January 2023 to December 2024
SAMPLE_INTERVAL = 0.05
# PSS is read every PSS_EVERY samples (1 s) only. The kernel walks a process's page
# tables for /proc/<pid>/smaps_rollup: 3.5-6 ms of CPU per newsflow process, ~19 ms
# for the full run's five, so reading it every 50 ms took ~38 % of one of this
# machine's two cores away from the run being measured (and almost nothing from the
# single-process naive script, which leaves a core idle). RSS (statm, ~0.01 ms) and
# the main process's VmHWM stay at every sample.
PSS_EVERY = 20
LINGER_S = 10.0  # how long descendants may outlive the measured process before "leaked"
# A marker so a reused --workdir is only ever wiped when this script created it.
MARKER = ".newsflow-bench"

TARGET_RATIO = 2.5
TARGET_NOOP_S = 1.5
TARGET_RSS_MB = 500.0

_PAGE = os.sysconf("SC_PAGE_SIZE")
_MB = 1024 * 1024
_MONTH_NAMES = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip


# --------------------------------------------------------------------------- corpus


@dataclass(frozen=True, slots=True)
class Corpus:
    """What was generated: counts per date evidence and total bytes."""

    files: int
    sidecar: int
    dateline: int
    mtime: int
    bytes: int
    seconds: float


def _seed_parts() -> tuple[str, str, str]:
    """The seed split into title line, lede paragraph and everything after the lede."""
    text = SEED.read_text(encoding="utf-8")
    title, rest = text.split("\n", 1)
    rest = rest.lstrip("\n")
    lede, after = rest.split("\n\n", 1)
    return title, lede, after


def build_corpus(corpus: Path, n: int) -> Corpus:
    """Write N seed-like files (and sidecars for a third of them) below `corpus`."""
    started = time.monotonic()
    title, lede, after = _seed_parts()
    counts = [0, 0, 0]
    total = 0
    folder = corpus
    for i in range(n):
        if i % FILES_PER_FOLDER == 0:
            folder = corpus / f"d{i // FILES_PER_FOLDER:04d}"
            folder.mkdir(parents=True, exist_ok=True)
        # The date kind cycles with i while the month moves every third file, so each
        # kind covers all 24 months (with `i % 24` a kind would only hit every 3rd month).
        kind = i % 3
        month = (i // 3) % MONTHS
        year, mon, day = FIRST_YEAR + month // 12, month % 12 + 1, 1 + (i * 7) % 28
        when = datetime(year, mon, day, 6 + i % 12, i % 60, tzinfo=UTC)
        # Per-file variation: the title number and one lede sentence make article_id
        # (via the path or URL) and content_hash differ for every file.
        ref = i * 2654435761 % 2**32  # a scrambled number, so texts differ beyond the digit
        body_lede = f"{lede} This is item {i} of the benchmark corpus, reference {ref:08x}."
        if kind == 1:
            body_lede = f"QAMISHLO, {day} {_MONTH_NAMES[mon - 1]} {year} - {body_lede}"
        text = f"{title} ({i})\n\n{body_lede}\n\n{after}"
        path = folder / f"{i:06d}.txt"
        data = text.encode("utf-8")
        path.write_bytes(data)
        total += len(data)
        if kind == 0:
            sidecar = {
                "url": f"https://bench.example.org/news/{i:06d}",
                "published_at": when.isoformat(),
            }
            raw = json.dumps(sidecar).encode("utf-8")
            path.with_suffix(".json").write_bytes(raw)
            total += len(raw)
        elif kind == 2:
            # Only these files take their date from the mtime, so only these need it.
            os.utime(path, (when.timestamp(), when.timestamp()))
        counts[kind] += 1
    return Corpus(n, counts[0], counts[1], counts[2], total, time.monotonic() - started)


def _toml_value(value: Any) -> str:
    """A TOML literal for the simple values a source block holds."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        # JSON string escapes (\" \\ \n \uXXXX) are all valid in a TOML basic string.
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


def write_config(path: Path, source: str, folder: Path) -> None:
    """Write a config with one `files` source on `folder`, cleaned like the template source."""
    repo_cfg = tomllib.loads(REPO_CONFIG.read_text(encoding="utf-8"))
    template = repo_cfg["sources"][TEMPLATE_SOURCE]
    lines = [f"# Written by bench/ingest_text.py from the {TEMPLATE_SOURCE!r} source of {REPO_CONFIG}."]
    defaults = repo_cfg.get("defaults", {})
    if defaults:
        lines.append("[defaults]")
        lines.extend(f"{k} = {_toml_value(v)}" for k, v in defaults.items() if k != "rules")
        lines.append("")
    lines.append(f"[sources.{source}]")
    lines.append('kind = "files"')
    lines.append(f"path = {_toml_value(str(folder))}")
    lines.extend(f"{k} = {_toml_value(template[k])}" for k in _PROFILE_KEYS if k in template)
    for rule in template.get("rules", []):
        lines.append("")
        lines.append(f"[[sources.{source}.rules]]")
        lines.extend(f"{k} = {_toml_value(v)}" for k, v in rule.items())
    text = "\n".join(lines) + "\n"
    # Round-trip: a rule that did not survive the hand-written TOML would silently
    # change what is stripped, and with it every figure.
    if tomllib.loads(text)["sources"][source].get("rules", []) != template.get("rules", []):
        raise RuntimeError(f"{path}: rules of {TEMPLATE_SOURCE!r} did not round-trip")
    path.write_text(text, encoding="utf-8")


# -------------------------------------------------------------------- measurement


def _read(path: str) -> bytes | None:
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except OSError:  # the process exited between listing and reading
        return None


def _kb_field(text: bytes, name: bytes) -> int | None:
    """A `Name:   123 kB` field of /proc/<pid>/status or smaps_rollup, in bytes."""
    start = text.find(b"\n" + name + b":")
    if start < 0:
        return None
    return int(text[start + len(name) + 2 :].split(None, 1)[0]) * 1024


def _process_table() -> dict[int, tuple[int, bytes]]:
    """pid -> (parent pid, start time) for every process.

    /proc/<pid>/task/*/children would avoid the full scan but needs
    CONFIG_PROC_CHILDREN, which many kernels (this VM's included) lack; the scan is
    ~1 ms for a container's worth of processes.
    """
    table: dict[int, tuple[int, bytes]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        stat = _read(f"/proc/{entry}/stat")
        if stat is None:
            continue
        # The command name may hold spaces and ')'; fields are counted after the last ')'.
        fields = stat[stat.rindex(b")") + 2 :].split()
        table[int(entry)] = (int(fields[1]), fields[19])
    return table


def _tree(root: int, table: dict[int, tuple[int, bytes]]) -> list[int]:
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    out, stack = [], [root]
    while stack:
        pid = stack.pop()
        out.append(pid)
        stack.extend(children.get(pid, ()))
    return out


class TreeSampler(threading.Thread):
    """Samples RSS/PSS of a process and its descendants until stopped."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.main_rss = 0
        self.main_hwm = 0
        self.tree_rss = 0
        self.tree_pss = 0
        self.max_procs = 0
        self.samples = 0
        # pid -> start time, to tell a leftover descendant from a reused pid later.
        self.seen: dict[int, bytes] = {}
        self.names: dict[int, str] = {}
        self.peaks: dict[int, int] = {}  # pid -> its own peak RSS
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            self.sample(with_pss=self.samples % PSS_EVERY == 0)
            self._halt.wait(SAMPLE_INTERVAL)

    def stop(self) -> None:
        self._halt.set()
        self.join()

    def sample(self, with_pss: bool = True) -> None:
        """Read the tree's memory once; PSS (the costly part) only `with_pss`."""
        table = _process_table()
        if self.pid not in table:
            return
        rss_sum = pss_sum = procs = 0
        for pid in _tree(self.pid, table):
            statm = _read(f"/proc/{pid}/statm")
            if statm is None:
                continue
            rss = int(statm.split()[1]) * _PAGE
            if rss == 0:  # a zombie or kernel thread: no memory of its own any more
                continue
            procs += 1
            if pid not in self.seen:
                self.seen[pid] = table[pid][1]
                self.names[pid] = _command(pid)
            rss_sum += rss
            self.peaks[pid] = max(self.peaks.get(pid, 0), rss)
            if with_pss:
                rollup = _read(f"/proc/{pid}/smaps_rollup")
                pss = _kb_field(rollup, b"Pss") if rollup else None
                pss_sum += pss if pss is not None else rss
            if pid == self.pid:
                self.main_rss = max(self.main_rss, rss)
                status = _read(f"/proc/{pid}/status")
                # VmHWM is the kernel's own high-water mark, so it also covers peaks
                # between samples; the last read before exit is the process's peak.
                hwm = _kb_field(status, b"VmHWM") if status else None
                if hwm is not None:
                    self.main_hwm = max(self.main_hwm, hwm)
        self.tree_rss = max(self.tree_rss, rss_sum)
        if with_pss:
            self.tree_pss = max(self.tree_pss, pss_sum)
        self.max_procs = max(self.max_procs, procs)
        self.samples += 1

    def alive(self) -> list[int]:
        """Descendants seen during the run that are still alive (same pid and start time)."""
        table = _process_table()
        return sorted(p for p, start in self.seen.items() if p != self.pid and table.get(p, (0, b""))[1] == start)


def _command(pid: int) -> str:
    """A short command line for reports, e.g. `python -m prefect.server ...`."""
    raw = _read(f"/proc/{pid}/cmdline") or b""
    words = [os.path.basename(w) if i == 0 else w for i, w in enumerate(raw.decode(errors="replace").split("\0"))]
    return " ".join(w for w in words if w)[:100]


@dataclass(slots=True)
class Step:
    """One measured subprocess."""

    name: str
    kind: str  # empty | full | noop | naive: what the figures are grouped by
    seconds: float
    cpu: float  # user + system seconds of the process and the descendants it reaped
    returncode: int
    rss_main: int
    rss_tree: int
    pss_tree: int
    max_procs: int
    stdout: str
    stderr: str
    # Descendants that outlived the measured process: (pid, command, seconds after its
    # exit, or None if still running at the end of the grace period).
    lingered: list[tuple[int, str, float | None]] = field(default_factory=list)
    # (command, peak RSS) of every process of the tree, largest first.
    processes: list[tuple[str, int]] = field(default_factory=list)


def measure(name: str, kind: str, argv: list[str], env: dict[str, str], logs: Path) -> Step:
    """Run `argv` to completion, timing it and sampling its process tree's memory."""
    logs.mkdir(parents=True, exist_ok=True)
    slug = name.replace(" ", "-").replace("/", "of")
    out_path, err_path = logs / f"{slug}.stdout", logs / f"{slug}.stderr"
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=env)
        sampler = TreeSampler(proc.pid)
        sampler.start()
        returncode = proc.wait()
        seconds = time.perf_counter() - started
        # RUSAGE_CHILDREN grows by what each reaped child used, its own reaped children
        # included: a CPU figure tells "more work" from "more waiting" when wall time moves.
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = after.ru_utime - usage.ru_utime + after.ru_stime - usage.ru_stime
        sampler.stop()
    lingered = _linger(sampler)
    return Step(
        name=name,
        kind=kind,
        seconds=seconds,
        cpu=cpu,
        returncode=returncode,
        rss_main=max(sampler.main_hwm, sampler.main_rss),
        rss_tree=sampler.tree_rss,
        pss_tree=sampler.tree_pss,
        max_procs=sampler.max_procs,
        stdout=out_path.read_text(encoding="utf-8", errors="replace"),
        stderr=err_path.read_text(encoding="utf-8", errors="replace"),
        lingered=lingered,
        processes=sorted(
            ((sampler.names.get(pid, "?"), peak) for pid, peak in sampler.peaks.items()),
            key=lambda item: -item[1],
        ),
    )


def _linger(sampler: TreeSampler) -> list[tuple[int, str, float | None]]:
    """Wait (up to LINGER_S) for descendants that outlive the measured process.

    Orphaned pool workers or a Prefect server still shutting down would eat CPU and
    memory during the next step, and one that never exits is a leak; both are reported.
    """
    exited = time.monotonic()
    gone_after: dict[int, float] = {}
    alive = sampler.alive()
    first = set(alive)
    while alive and time.monotonic() - exited < LINGER_S:
        time.sleep(0.1)
        now_alive = set(sampler.alive())
        for pid in set(alive) - now_alive:
            gone_after[pid] = time.monotonic() - exited
        alive = sorted(now_alive)
    return [(pid, sampler.names.get(pid, "?"), gone_after.get(pid)) for pid in sorted(first)]


# ----------------------------------------------------------- subprocess payloads


def naive_ingest(corpus: Path, out: Path) -> None:
    """The baseline: walk, read, drop tail lines, one Parquet file. No dates, no ids."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    paths: list[str] = []
    titles: list[str] = []
    texts: list[str] = []
    for folder, dirs, files in os.walk(corpus):
        dirs.sort()
        for name in sorted(files):
            if not name.endswith(".txt"):
                continue
            path = os.path.join(folder, name)
            with open(path, encoding="utf-8") as fh:
                lines = fh.read().splitlines()
            while lines and (not lines[-1].strip() or lines[-1].startswith("T/") or lines[-1].strip() == "Other news"):
                lines.pop()
            paths.append(path)
            titles.append(lines[0] if lines else "")
            texts.append("\n".join(lines[1:]).strip())
    out.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({"path": paths, "title": titles, "text": texts}), str(out))


def count_articles(data: Path) -> dict[str, Any]:
    """Row count, distinct ids and date evidence over the articles dataset (DuckDB)."""
    import duckdb

    glob = str(data / "articles" / "**" / "*.parquet").replace("'", "''")
    con = duckdb.connect()
    # No hive partitioning: the count must not depend on how folder names are typed.
    scan = f"read_parquet('{glob}', hive_partitioning = false, filename = true)"
    row = con.execute(f"SELECT count(*), count(DISTINCT article_id), count(DISTINCT filename) FROM {scan}").fetchone()
    rows, ids, files = row if row is not None else (0, 0, 0)
    by_date = dict(con.execute(f"SELECT date_source, count(*) FROM {scan} GROUP BY 1 ORDER BY 1").fetchall())
    return {"rows": rows, "distinct_ids": ids, "files": files, "date_source": by_date}


# ------------------------------------------------------------------------ driver


def _env() -> dict[str, str]:
    """The environment every process of the bench runs with."""
    env = dict(os.environ)
    env["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    env["DO_NOT_TRACK"] = "1"
    # The same Prefect home `make` uses: project-local, never the user's ~/.prefect.
    env["PREFECT_HOME"] = str(REPO / ".prefect")
    return env


def _python() -> str:
    """The project's interpreter (it has pyarrow and duckdb) even if run with another."""
    venv = REPO / ".venv" / "bin" / "python"
    return str(venv) if venv.exists() else sys.executable


def _newsflow() -> str | None:
    venv = REPO / ".venv" / "bin" / "newsflow"
    return str(venv) if venv.exists() else shutil.which("newsflow")


def _prepare_workdir(workdir: Path) -> None:
    if workdir.exists() and any(workdir.iterdir()):
        if not (workdir / MARKER).exists():
            raise SystemExit(f"ingest_text: {workdir} is not empty and was not made by this bench")
        # A previous bench run's leftovers: start from nothing so "new" really is new.
        for child in workdir.iterdir():
            if child.is_dir():
                shutil.rmtree(child)
            else:
                child.unlink()
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / MARKER).write_text("made by bench/ingest_text.py\n", encoding="utf-8")


_COUNTERS = ("discovered", "new", "changed", "unchanged", "written", "superseded", "quarantined")


def _totals(step: Step) -> dict[str, int]:
    """Totals over sources of a `newsflow run --json` summary ({} if it printed none)."""
    try:
        data = json.loads(step.stdout)
        return {k: sum(int(s[k]) for s in data["sources"]) for k in _COUNTERS}
    except (ValueError, KeyError, TypeError):
        return {}


def _mb(value: int) -> str:
    return f"{value / _MB:.0f}"


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def _checks(n: int, steps: list[Step], facts: dict[str, Any] | None) -> list[tuple[bool, str]]:
    """Correctness of the runs: exit status, summaries, row count, leftover processes."""
    out: list[tuple[bool, str]] = []
    for step in steps:
        out.append((step.returncode == 0, f"{step.name}: exit status {step.returncode}"))
        for pid, cmd, after in step.lingered:
            if after is None:
                text = f"{step.name}: pid {pid} ({cmd}) still running {LINGER_S:.0f} s after exit"
                out.append((False, text))
            else:
                out.append((True, f"{step.name}: pid {pid} ({cmd}) outlived it by {after:.1f} s"))
        tot = _totals(step)
        got = f"written {tot.get('written')}, unchanged {tot.get('unchanged')}"
        got += f", quarantined {tot.get('quarantined')}"
        if step.kind == "empty":
            out.append((tot.get("written") == 0, f"{step.name}: {got} (want 0, 0, 0)"))
        elif step.kind == "full":
            ok = tot.get("written") == n and tot.get("quarantined") == 0
            out.append((ok, f"{step.name}: {got} (want {n}, 0, 0)"))
        elif step.kind == "noop":
            ok = tot.get("written") == 0 and tot.get("unchanged") == n
            out.append((ok, f"{step.name}: {got} (want 0, {n}, 0)"))
    if facts is None:
        out.append((False, "DuckDB count over data/articles/**/*.parquet failed"))
    else:
        ok = facts["rows"] == n and facts["distinct_ids"] == n
        text = (
            f"DuckDB over data/articles/**/*.parquet: {facts['rows']} rows,"
            f" {facts['distinct_ids']} distinct article_id, {facts['files']} files (want {n});"
            f" date_source {facts['date_source']}"
        )
        out.append((ok, text))
    return out


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def _report(n: int, steps: list[Step]) -> None:
    head = ("step", "wall s", "peak RSS main (MB)", "peak RSS tree (MB)", "peak PSS tree (MB)")
    row = "{:<18} {:>8} {:>19} {:>19} {:>19} {:>6} {:>6}"
    print(row.format(*head, "CPU s", "procs"))
    for s in steps:
        cells = (s.name, f"{s.seconds:.2f}", _mb(s.rss_main), _mb(s.rss_tree), _mb(s.pss_tree))
        print(row.format(*cells, f"{s.cpu:.1f}", s.max_procs))
    print()
    wall = {k: _median([s.seconds for s in steps if s.kind == k]) for k in ("full", "naive")}
    full = next(s for s in steps if s.kind == "full")
    print(f"full run: {n / wall['full']:,.0f} files/s (naive: {n / wall['naive']:,.0f} files/s), medians")
    fulls = [s.seconds for s in steps if s.kind == "full"]
    naives = [s.seconds for s in steps if s.kind == "naive"]
    ratios = [a / b for a, b in zip(fulls, naives, strict=True)]
    ratio = _median(ratios)
    how = f" (median of {len(ratios)} rounds: {', '.join(f'{r:.2f}' for r in ratios)})" if len(ratios) > 1 else ""
    print(
        f"full run / naive:          {ratio:7.2f} x   target <= {TARGET_RATIO} x   "
        f"{_verdict(ratio <= TARGET_RATIO)}{how}"
    )
    # A run's Prefect start-up alone varies by seconds, and drifts over minutes: each
    # no-op run is compared with the empty run of its round.
    empties = [s.seconds for s in steps if s.kind == "empty"]
    noops = [s.seconds for s in steps if s.kind == "noop"]
    noop_cost = _median([b - a for a, b in zip(empties, noops, strict=True)])
    how = f" (median of {len(noops)} rounds)" if len(noops) > 1 else ""
    print(
        f"no-op re-run - empty run:  {noop_cost:7.2f} s   target <= {TARGET_NOOP_S} s   "
        f"{_verdict(noop_cost <= TARGET_NOOP_S)}{how}"
    )
    runs = [s for s in steps if s.kind != "naive"]
    main_peak = max(runs, key=lambda s: s.rss_main)
    print(
        f"peak RSS (newsflow process, {main_peak.name}): {_mb(main_peak.rss_main)} MB"
        f"   target <= {TARGET_RSS_MB:.0f} MB   {_verdict(main_peak.rss_main <= TARGET_RSS_MB * _MB)}"
    )
    empty_tree = max(s.rss_tree for s in steps if s.kind == "empty")
    print(
        f"  for reference: RSS summed over the process tree {_mb(full.rss_tree)} MB in the {full.name}"
        f" ({_mb(full.rss_tree - empty_tree)} MB more than the empty run's {_mb(empty_tree)} MB),"
        f" PSS summed over the tree {_mb(full.pss_tree)} MB"
    )
    print(f"  peak RSS per process in the {full.name}:")
    for cmd, peak in full.processes:
        print(f"    {_mb(peak):>6} MB  {cmd}")


def run_bench(n: int, workdir: Path, workers: int | None, repeat: int) -> None:
    """Build the corpus, run and measure the four steps, print the report."""
    newsflow = _newsflow()
    if newsflow is None:
        raise SystemExit("ingest_text: no `newsflow` command (run `make` to build .venv)")
    env = _env()
    logs, data = workdir / "logs", workdir / "data"
    corpus_dir, empty_dir = workdir / "corpus", workdir / "empty"
    empty_dir.mkdir(parents=True, exist_ok=True)
    corpus = build_corpus(corpus_dir, n)
    write_config(workdir / "sources.toml", "bench", corpus_dir)
    write_config(workdir / "empty.toml", "bench", empty_dir)
    print(
        f"corpus: {corpus.files} files, {corpus.bytes / _MB:.1f} MB in {corpus.seconds:.1f} s;"
        f" date from sidecar {corpus.sidecar}, dateline {corpus.dateline}, mtime {corpus.mtime}"
    )
    shown = workers if workers else "newsflow default (one per core)"
    print(f"cores: {os.cpu_count()}; --workers: {shown}")

    run = [newsflow, "run", "--json", *(["--workers", str(workers)] if workers else [])]
    full_cmd = [*run, "--config", str(workdir / "sources.toml"), "--data", str(data)]
    empty_data = str(workdir / "data-empty")
    empty_cmd = [*run, "--config", str(workdir / "empty.toml"), "--data", empty_data]
    me = str(Path(__file__).resolve())
    naive_out = str(workdir / "naive" / "articles.parquet")
    naive_cmd = [_python(), me, "_naive", str(corpus_dir), naive_out]

    # Rounds in the brief's order (empty, full, no-op, naive). The machine's speed drifts
    # over minutes, so each full run is judged against the naive run of its own round
    # and each no-op re-run against its round's empty run; with --repeat R the medians
    # of the R ratios and differences are judged. The no-op command is the full run's
    # command again (every file is now unchanged); each round's full run starts from an
    # empty data root.
    plan: list[tuple[str, str, list[str]]] = []
    for i in range(1, repeat + 1):
        tag = "" if repeat == 1 else f" {i}/{repeat}"
        plan += [
            ("empty", f"empty run{tag}", empty_cmd),
            ("full", f"full run{tag}", full_cmd),
            ("noop", f"no-op re-run{tag}", full_cmd),
            ("naive", f"naive{tag}", naive_cmd),
        ]
    steps: list[Step] = []
    for kind, name, argv in plan:
        if kind == "full":
            shutil.rmtree(data, ignore_errors=True)
        if kind != "empty":
            _warm_cache(corpus_dir)
        # Write back what earlier steps (and the corpus build) left dirty in the page
        # cache: the kernel otherwise flushes it 30 s later, in the middle of whichever
        # step is running then, on the cores that step is measured on.
        os.sync()
        print(f"running {name} ...", flush=True)
        step = measure(name, kind, argv, env, logs)
        steps.append(step)
        if step.returncode != 0:
            tail = "\n".join(step.stderr.splitlines()[-20:])
            print(f"--- {name} exited with {step.returncode}; last stderr lines:\n{tail}\n---")

    counted = subprocess.run([_python(), me, "_count", str(data)], env=env, capture_output=True, text=True, check=False)
    try:
        facts: dict[str, Any] | None = json.loads(counted.stdout)
    except ValueError:
        facts = None
        print(f"DuckDB count failed: {counted.stderr.strip()[-2000:]}")

    print()
    _report(n, steps)
    print()
    for ok, text in _checks(n, steps, facts):
        print(f"check {'ok    ' if ok else 'FAILED'} {text}")


def _warm_cache(folder: Path) -> None:
    """Read every file under `folder` once, so the next step starts with them in the page cache."""
    for dirpath, _dirs, files in os.walk(folder):
        for name in files:
            with open(os.path.join(dirpath, name), "rb") as f:
                while f.read(1 << 20):
                    pass


def main(argv: list[str] | None = None) -> int:
    args_in = sys.argv[1:] if argv is None else argv
    # Internal entry points, run as subprocesses so they are measured on their own.
    if args_in[:1] == ["_naive"]:
        naive_ingest(Path(args_in[1]), Path(args_in[2]))
        return 0
    if args_in[:1] == ["_count"]:
        print(json.dumps(count_articles(Path(args_in[1]))))
        return 0

    p = argparse.ArgumentParser(description="Time `newsflow run` over N generated text files against a naive script.")
    p.add_argument("--files", type=int, default=100_000, help="number of articles to generate (default 100000)")
    p.add_argument("--workdir", type=Path, help="where to build the corpus and data (default: a temp dir)")
    p.add_argument("--keep", action="store_true", help="keep the temp workdir afterwards")
    p.add_argument("--workers", type=int, help="passed to `newsflow run --workers` (default: its own)")
    p.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="measure R rounds of (empty run, full run, no-op re-run, naive) and judge the medians"
        " (default 1; the machine's speed and Prefect's start-up time vary between runs)",
    )
    args = p.parse_args(args_in)
    if args.files < 1 or args.repeat < 1:
        p.error("--files and --repeat must be at least 1")
    # This process and everything it starts: analytics off, project-local Prefect home.
    os.environ.update(_env())
    temp = args.workdir is None
    workdir = Path(tempfile.mkdtemp(prefix="newsflow-bench-")) if temp else args.workdir.resolve()
    _prepare_workdir(workdir)
    print(f"workdir: {workdir}")
    try:
        run_bench(args.files, workdir, args.workers, args.repeat)
    finally:
        if temp and not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"kept: {workdir} (logs in {workdir / 'logs'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
