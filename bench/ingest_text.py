"""Benchmark: `newsflow run` over N plain-text articles against a naive script, in two regimes.

What it does
------------
1. Builds a corpus of N seed-like files (the ANHA sample with a number in the title
   and one extra sentence in the lede, so every file has its own article_id and
   content) in WORKDIR/corpus/, 1,000 files per subfolder. A third of the files get a
   `<stem>.json` sidecar (url + published_at), a third a dateline at the start of the
   lede ("QAMISHLO, 12 March 2024 - ..."), the rest neither (date from the file mtime).
   Dates are spread over 24 months, so the run writes ~24 partitions.
2. Starts one Prefect server for the whole bench (`prefect server start` through
   `flows.server.LocalServer`, its own PREFECT_HOME under WORKDIR), as `newsflow serve`
   or a server shared by a team would be running, and makes one unmeasured run
   against it (a fresh server's first requests build its API's validators).
3. Runs, each as its own subprocess (`python -m flows.cli run --json ...` with this
   checkout first on PYTHONPATH), in this order (one round; `--repeat R` runs R):
   - steady state, with PREFECT_API_URL naming the running server:
     `empty run` (a source whose folder is empty: the fixed cost of a command),
     `full run` (the N files into an emptied WORKDIR/data) and `no-op re-run` (the
     same command again; it must write nothing: written == 0, unchanged == N);
   - `naive`: one single-threaded Python process that walks the files, reads them,
     drops the tail lines (blank, `T/ ...` tags, `Other news`) and writes ONE Parquet
     file (path, title, text) with pyarrow. It is the floor a pipeline is compared to.
     It runs at the nice level of newsflow's workers (+10 unless NEWSFLOW_WORKER_NICE
     says otherwise), so that other load on a shared machine slows both alike;
   - one-shot, without PREFECT_API_URL, so each command starts (and stops) its own
     temporary server, as a bare `newsflow run` on a laptop does: `one-shot empty
     run` (the start-up) and `one-shot full run` (into an emptied WORKDIR/data). Its
     PREFECT_HOME is another folder under WORKDIR, whose database an unmeasured
     one-shot run creates first (a user's first run does that once).
4. Checks with DuckDB that WORKDIR/data/articles/**/*.parquet holds exactly N rows
   (and N distinct article_id), that every run exited 0, and reports descendants
   that outlive a run (waiting up to 10 s for them before the next step starts).

Usage: python bench/ingest_text.py [--files N] [--workdir DIR] [--keep] [--workers W]
                                   [--repeat R] [--regimes both|steady|one-shot]

How to read the output
----------------------
`wall s` is the elapsed time of the subprocess, start-up included: what the user of the
command waits. Memory is sampled every 50 ms from /proc: `RSS largest` is the peak of
the run's largest process (for the `newsflow` process its own VmHWM, read until just
before it exits, so peaks between samples count), `RSS tree` the peak of the sum of RSS
over the process and all its descendants (normaliser workers, and in a one-shot run
the temporary Prefect server). RSS sums count pages shared between processes (the
interpreter, imported libraries) once per process, so `PSS tree` (proportional set
size, shared pages split between their users) is printed too. PSS is read once a
second only (reading it costs the kernel milliseconds per process, CPU the measured
run would lose), so its peak is a sampled, lower figure. A process that lives less
than 50 ms between two samples can be missed. The peak RSS of each process of the
full runs' trees is listed under the tables.

`CPU s` is user + system time of the command's processes (what it reaped);
`server CPU s` (steady state) what the running server used from the command's start
until it was idle again: the server records the run's task runs from events that
arrive after the command has exited, so the bench waits (up to 15 s) for it to go
quiet before the next step, and that work shares the machine's cores with the run.
`others CPU s` is what the rest of the machine (other users' work) used during the
step, from /proc/stat: on 2 cores, a step of W seconds next to others' X seconds of
CPU had about 2 W - X core-seconds to itself.

The machine's speed drifts over minutes (the same full run has taken 27 s of CPU in
one round and 34 s in the next), so each ratio is taken within a round, between runs
made seconds apart, and `--repeat R` judges the median over R rounds (use 3 or more
when the figures matter).

Targets (PASS/FAIL lines), in the steady state: full run / naive <= 1.5x; the no-op
re-run's wall time <= 1.5 s (printed with its difference from the empty run, the
per-run cost of skipping N unchanged files); peak RSS of the run's largest process
<= 400 MB. One-shot: the empty and the full run no worse than 1.3x the figures this
bench printed before one-shot commands ran `prefect server start` (BENCHMARKS.md:
`ONE_SHOT_BEFORE` below); the full run is also set against the naive script of its
round, which takes most of the machine's drift out of the comparison.

Before every step that reads the corpus, the bench reads it once, so all steps start
with the files in the page cache (this machine's page cache does not keep a
just-written 400 MB corpus until it is used), and then syncs, so no step pays for
writing back what an earlier step left dirty.

The script exits 0 whatever the figures and checks say: it reports, it is not a test.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from proctree import (
    LINGER_S,
    MB,
    Step,
    bench_env,
    bench_workdir,
    measure,
    median,
    newsflow_command,
    niced,
    running_server,
    tree_rss,
    warm_cache,
    workers_nice,
)

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

# Steady state (a server already running).
TARGET_RATIO = 1.5
TARGET_NOOP_S = 1.5
TARGET_RSS_MB = 400.0
# One-shot: no worse than this many times the figures before one-shot commands ran
# `prefect server start`. Those are BENCHMARKS.md's last series of this bench on the
# previous start-up: the empty run's median over run AV's 5 rounds, the full run's and
# full / naive's medians over run AY's 3 rounds (the empty runs of AY were not kept).
ONE_SHOT_LIMIT = 1.3
ONE_SHOT_BEFORE = {"empty": 4.09, "full": 11.53}
ONE_SHOT_BEFORE_RATIO = 2.09

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


_COUNTERS = ("discovered", "new", "changed", "unchanged", "written", "superseded", "quarantined")


def _totals(step: Step) -> dict[str, int]:
    """Totals over sources of a `newsflow run --json` summary ({} if it printed none)."""
    try:
        data = json.loads(step.stdout)
        return {k: sum(int(s[k]) for s in data["sources"]) for k in _COUNTERS}
    except (ValueError, KeyError, TypeError):
        return {}


def _mb(value: int) -> str:
    return f"{value / MB:.0f}"


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


def _table(steps: list[Step]) -> None:
    head = ("step", "wall s", "RSS largest", "RSS tree", "PSS tree", "CPU s", "server CPU s", "others CPU s", "procs")
    row = "{:<24} {:>7} {:>12} {:>9} {:>9} {:>6} {:>13} {:>13} {:>6}"
    print(row.format(*head))
    for s in steps:
        server = "-" if s.server_cpu is None else f"{s.server_cpu:.1f}"
        cells = (s.name, f"{s.seconds:.2f}", _mb(s.rss_largest), _mb(s.rss_tree), _mb(s.pss_tree))
        print(row.format(*cells, f"{s.cpu:.1f}", server, f"{s.others_cpu:.1f}", s.max_procs))
    print("(peak memory in MB; others CPU s: what the rest of the machine used during the step)")


def _of(steps: list[Step], regime: str, kind: str) -> list[Step]:
    return [s for s in steps if s.regime == regime and s.kind == kind]


def _rounds(values: list[float], unit: str) -> str:
    """`(median of R rounds: a, b, c)`, or nothing for one round."""
    if len(values) < 2:
        return ""
    return f" (median of {len(values)} rounds: {', '.join(f'{v:.2f}{unit}' for v in values)})"


def _per_process(step: Step) -> None:
    print(f"  peak RSS per process in the {step.name}:")
    for cmd, peak in step.processes:
        print(f"    {_mb(peak):>6} MB  {cmd}")


def _report_steady(n: int, steps: list[Step], server_rss: int) -> None:
    fulls, naives = _of(steps, "steady", "full"), _of(steps, "", "naive")
    empties, noops = _of(steps, "steady", "empty"), _of(steps, "steady", "noop")
    _table([s for s in steps if s.regime in ("steady", "")])
    full_s, naive_s = median([s.seconds for s in fulls]), median([s.seconds for s in naives])
    print(f"full run: {n / full_s:,.0f} files/s (naive: {n / naive_s:,.0f} files/s), medians")
    ratios = [a.seconds / b.seconds for a, b in zip(fulls, naives, strict=True)]
    ratio = median(ratios)
    print(
        f"full run / naive:      {ratio:6.2f} x   target <= {TARGET_RATIO} x   "
        f"{_verdict(ratio <= TARGET_RATIO)}{_rounds(ratios, 'x')}"
    )
    noop = median([s.seconds for s in noops])
    print(
        f"no-op re-run:          {noop:6.2f} s   target <= {TARGET_NOOP_S} s   "
        f"{_verdict(noop <= TARGET_NOOP_S)}{_rounds([s.seconds for s in noops], ' s')}"
    )
    # An empty run's wall time moves by tenths of a second with the machine: each no-op
    # re-run is set against the empty run of its own round.
    extra = [b.seconds - a.seconds for a, b in zip(empties, noops, strict=True)]
    print(
        f"  minus the empty run: {median(extra):6.2f} s (what skipping {n:,} unchanged files costs;"
        f" the empty run, the fixed cost of a command: {median([s.seconds for s in empties]):.2f} s)"
    )
    runs = fulls + empties + noops
    largest = max(runs, key=lambda s: s.rss_largest)
    cmd = largest.processes[0][0] if largest.processes else "?"
    print(
        f"peak RSS of the run's largest process: {_mb(largest.rss_largest)} MB ({cmd}, {largest.name})"
        f"   target <= {TARGET_RSS_MB:.0f} MB   {_verdict(largest.rss_largest <= TARGET_RSS_MB * MB)}"
    )
    full = fulls[0]
    print(
        f"  summed over the run's process tree: RSS {_mb(full.rss_tree)} MB, PSS {_mb(full.pss_tree)} MB"
        f" in the {full.name}; the running server (not in the tree): RSS {_mb(server_rss)} MB at the end"
    )
    _per_process(full)


def _report_one_shot(n: int, steps: list[Step]) -> None:
    empties, fulls = _of(steps, "one-shot", "empty"), _of(steps, "one-shot", "full")
    naives = _of(steps, "", "naive")
    _table(empties + fulls)
    for kind, runs, what in (("empty", empties, "empty run (start-up)"), ("full", fulls, "full run")):
        wall = median([s.seconds for s in runs])
        before = ONE_SHOT_BEFORE[kind]
        ratio = wall / before
        print(
            f"{what + ':':<22} {wall:6.2f} s; before {before:.2f} s: {ratio:.2f} x   limit {ONE_SHOT_LIMIT} x   "
            f"{_verdict(ratio <= ONE_SHOT_LIMIT)}{_rounds([s.seconds for s in runs], ' s')}"
        )
    if naives:
        ratios = [a.seconds / b.seconds for a, b in zip(fulls, naives, strict=True)]
        print(
            f"  one-shot full run / naive of its round: {median(ratios):.2f} x (before: {ONE_SHOT_BEFORE_RATIO} x,"
            f" so {median(ratios) / ONE_SHOT_BEFORE_RATIO:.2f} x with the machine's speed taken out)"
            f"{_rounds(ratios, 'x')}"
        )
    print(f"  full run: {n / median([s.seconds for s in fulls]):,.0f} files/s (median)")
    _per_process(fulls[0])


def run_bench(n: int, workdir: Path, workers: int | None, repeat: int, regimes: str) -> None:
    """Build the corpus, run and measure the steps of each round, print the report."""
    logs, data = workdir / "logs", workdir / "data"
    corpus_dir, empty_dir = workdir / "corpus", workdir / "empty"
    empty_dir.mkdir(parents=True, exist_ok=True)
    corpus = build_corpus(corpus_dir, n)
    write_config(workdir / "sources.toml", "bench", corpus_dir)
    write_config(workdir / "empty.toml", "bench", empty_dir)
    print(
        f"corpus: {corpus.files} files, {corpus.bytes / MB:.1f} MB in {corpus.seconds:.1f} s;"
        f" date from sidecar {corpus.sidecar}, dateline {corpus.dateline}, mtime {corpus.mtime}"
    )
    shown = workers if workers else "newsflow default (one per core)"
    print(
        f"cores: {os.cpu_count()}; --workers: {shown}; workers and the naive script at nice +{workers_nice()};"
        f" load average {os.getloadavg()[0]:.1f}"
    )

    run = ["run", "--json", *(["--workers", str(workers)] if workers else [])]
    full_cmd = newsflow_command(*run, "--config", str(workdir / "sources.toml"), "--data", str(data))
    empty_data = str(workdir / "data-empty")
    empty_cmd = newsflow_command(*run, "--config", str(workdir / "empty.toml"), "--data", empty_data)
    me = str(Path(__file__).resolve())
    naive_cmd = niced([sys.executable, me, "_naive", str(corpus_dir), str(workdir / "naive" / "articles.parquet")])
    one_shot_env = bench_env(workdir / "prefect-one-shot")
    steady, one_shot = regimes in ("both", "steady"), regimes in ("both", "one-shot")

    with contextlib.ExitStack() as stack:
        server_pid, steady_env = None, one_shot_env
        if steady:
            print("starting the Prefect server the steady-state runs use ...", flush=True)
            server = stack.enter_context(running_server(workdir / "prefect-server", logs / "server.log"))
            server_pid, steady_env = server.pid, bench_env(workdir / "prefect-server", server.api_url)
            print(f"server: {server.api_url} (pid {server_pid})")
        # Unmeasured: a fresh server's first requests (the API's validators are built on
        # first use), and the one-shot home's database, created by its first run.
        warm_ups = [("steady", steady_env)] if steady else []
        warm_ups += [("one-shot", one_shot_env)] if one_shot else []
        for regime, env in warm_ups:
            step = measure(f"warm-up {regime}", "empty", regime, empty_cmd, env, logs, server_pid)
            print(f"warm-up {regime} empty run: {step.seconds:.2f} s, exit {step.returncode} (not counted)")

        # Each round: the steady-state runs, the naive script, the one-shot runs. The
        # machine's speed drifts over minutes, so each full run is judged against the
        # naive run of its own round and each no-op re-run against its round's empty
        # run; with --repeat R the medians over the R rounds are judged. Each full run
        # starts from an empty data root; the no-op re-run repeats the full run's command.
        plan: list[tuple[str, str, str, list[str], dict[str, str]]] = []
        for i in range(1, repeat + 1):
            tag = "" if repeat == 1 else f" {i}/{repeat}"
            if steady:
                plan += [
                    ("steady", "empty", f"empty run{tag}", empty_cmd, steady_env),
                    ("steady", "full", f"full run{tag}", full_cmd, steady_env),
                    ("steady", "noop", f"no-op re-run{tag}", full_cmd, steady_env),
                ]
            plan.append(("", "naive", f"naive{tag}", naive_cmd, one_shot_env))
            if one_shot:
                plan += [
                    ("one-shot", "empty", f"one-shot empty run{tag}", empty_cmd, one_shot_env),
                    ("one-shot", "full", f"one-shot full run{tag}", full_cmd, one_shot_env),
                ]
        steps: list[Step] = []
        for regime, kind, name, argv, env in plan:
            if kind == "full":
                shutil.rmtree(data, ignore_errors=True)
            if kind != "empty":
                warm_cache(corpus_dir)
            # Write back what earlier steps (and the corpus build) left dirty in the page
            # cache: the kernel otherwise flushes it 30 s later, in the middle of whichever
            # step is running then, on the cores that step is measured on.
            os.sync()
            print(f"running {name} ...", flush=True)
            step = measure(name, kind, regime, argv, env, logs, server_pid if regime == "steady" else None)
            steps.append(step)
            if step.returncode != 0:
                tail = "\n".join(step.stderr.splitlines()[-20:])
                print(f"--- {name} exited with {step.returncode}; last stderr lines:\n{tail}\n---")
        server_rss = tree_rss(server_pid) if server_pid else 0

    counted = subprocess.run(
        [sys.executable, me, "_count", str(data)], env=one_shot_env, capture_output=True, text=True, check=False
    )
    try:
        facts: dict[str, Any] | None = json.loads(counted.stdout)
    except ValueError:
        facts = None
        print(f"DuckDB count failed: {counted.stderr.strip()[-2000:]}")

    print(f"\nload average after the rounds: {os.getloadavg()[0]:.1f} (2 cores: above ~2, the figures are slowed)")
    if steady:
        print("\nSteady state: a Prefect server already running, PREFECT_API_URL set")
        _report_steady(n, steps, server_rss)
    if one_shot:
        print("\nOne-shot: each `newsflow run` starts and stops its own temporary Prefect server")
        _report_one_shot(n, steps)
    print()
    for ok, text in _checks(n, steps, facts):
        print(f"check {'ok    ' if ok else 'FAILED'} {text}")


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
        help="measure R rounds and judge the medians (default 1; the machine's speed varies between runs)",
    )
    p.add_argument(
        "--regimes",
        choices=("both", "steady", "one-shot"),
        default="both",
        help="steady state (a server running), one-shot runs (each its own server), or both (default)",
    )
    args = p.parse_args(args_in)
    if args.files < 1 or args.repeat < 1:
        p.error("--files and --repeat must be at least 1")
    with bench_workdir(args.workdir, args.keep, "newsflow-bench-", "bench/ingest_text.py") as workdir:
        run_bench(args.files, workdir, args.workers, args.repeat, args.regimes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
