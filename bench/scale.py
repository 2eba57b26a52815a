"""Benchmark: newsflow at scale on this machine, from one run.

1. Backfill memory against corpus size: N generated text articles (bench/ingest_text.py's
   corpus: seed-like texts over 24 months) through `newsflow backfill` over the whole
   range into an empty data root, for each N of --sizes (default 100,000 and
   1,000,000). Peak RSS of the largest process and of the whole process tree (the
   command and its workers), wall time, articles/s. The duplicate step is measured on
   its own after it (`newsflow dedup`), as it is corpus-wide work with its own peak.
2. Runners: `newsflow run` with the default runner (newsflow's process pool) and with
   `--task-runner dask` (a LocalCluster started for the run), each into an empty data
   root, on --runner-files articles: articles/s and the rows each wrote.
3. WARC: bench/warc.py (a WARC file of --warc-records pages: bare read against newsflow
   end to end, articles/s/core).

Every `newsflow` command runs against one Prefect server started for the bench (the
steady state of a deployment). Figures go to BENCHMARKS.md.

Usage: python bench/scale.py [--sizes 100000,1000000] [--runner-files N] [--warc-records N]
                             [--skip-dedup] [--workdir DIR] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from ingest_text import FIRST_YEAR, MONTHS, build_corpus, write_config
from proctree import MB, Step, bench_env, bench_workdir, measure, newsflow_command, running_server, warm_cache

REPO = Path(__file__).resolve().parent.parent
TARGET_RSS_MB = 400.0
TARGET_WARC_PER_CORE = 250.0


def _mb(value: int) -> str:
    return f"{value / MB:,.0f} MB"


def _json(step: Step) -> dict[str, Any]:
    try:
        return dict(json.loads(step.stdout))
    except ValueError:
        return {}


def _failed(step: Step) -> bool:
    if step.returncode != 0:
        tail = "\n".join(step.stderr.splitlines()[-15:])
        print(f"--- {step.name} exited with {step.returncode}:\n{tail}\n---")
        return True
    return False


def backfill_memory(sizes: list[int], work: Path, env: dict[str, str], server: int | None, dedup: bool) -> list[str]:
    """Step 1: one backfill per size; returns the table's rows."""
    last_day = f"{FIRST_YEAR + (MONTHS - 1) // 12}-12-31"
    rows = []
    for n in sizes:
        corpus, data = work / f"corpus-{n}", work / f"data-{n}"
        shutil.rmtree(data, ignore_errors=True)
        made = build_corpus(corpus, n)
        write_config(work / f"sources-{n}.toml", "bench", corpus)
        print(f"corpus of {n:,}: {made.bytes / MB:,.0f} MB in {made.seconds:.0f} s", flush=True)
        warm_cache(corpus)
        os.sync()
        argv = newsflow_command(
            "backfill", "bench", "--start", f"{FIRST_YEAR}-01-01", "--end", last_day, "--json",
            "--no-dedup", "--no-report", "--config", str(work / f"sources-{n}.toml"), "--data", str(data),
        )  # fmt: skip
        step = measure(f"backfill {n}", "backfill", "steady", argv, env, work / "logs", server)
        if _failed(step):
            continue
        entries = _json(step).get("entries", [])
        written = sum(int(e.get("written") or 0) for e in entries if isinstance(e, dict))
        rows.append(
            f"| backfill | {n:,} | {step.seconds:,.1f} s | {n / step.seconds:,.0f} | {_mb(step.rss_largest)} |"
            f" {_mb(step.rss_tree)} | {written:,} rows in {len(entries)} months |"
        )
        print(rows[-1], flush=True)
        if dedup:
            argv = newsflow_command("dedup", "--data", str(data))
            step = measure(f"dedup {n}", "dedup", "steady", argv, env, work / "logs", server)
            if not _failed(step):
                rows.append(
                    f"| dedup | {n:,} | {step.seconds:,.1f} s | {n / step.seconds:,.0f} | {_mb(step.rss_largest)} |"
                    f" {_mb(step.rss_tree)} | {step.stdout.strip().splitlines()[0][:80]} |"
                )
                print(rows[-1], flush=True)
        shutil.rmtree(corpus, ignore_errors=True)  # 1,000,000 files: the disk is better free for the next
        shutil.rmtree(data, ignore_errors=True)
    return rows


def runners(n: int, work: Path, env: dict[str, str], server: int | None) -> list[str]:
    """Step 2: the same run with the default runner and with Dask; returns the table's rows."""
    corpus = work / "corpus-runners"
    build_corpus(corpus, n)
    write_config(work / "sources-runners.toml", "bench", corpus)
    rows = []
    for runner in ("default", "dask"):
        data = work / f"data-{runner}"
        shutil.rmtree(data, ignore_errors=True)
        warm_cache(corpus)
        argv = newsflow_command(
            "run", "--json", "--no-dedup", "--no-report", "--task-runner", runner,
            "--config", str(work / "sources-runners.toml"), "--data", str(data),
        )  # fmt: skip
        step = measure(f"run {runner}", "run", "steady", argv, env, work / "logs", server)
        if _failed(step):
            continue
        sources = _json(step).get("sources", [])
        written = sum(int(s.get("written") or 0) for s in sources if isinstance(s, dict))
        rows.append(
            f"| {runner} | {n:,} | {step.seconds:,.1f} s | {n / step.seconds:,.0f} | {step.cpu:,.1f} s |"
            f" {_mb(step.rss_tree)} | {written:,} |"
        )
        print(rows[-1], flush=True)
    return rows


def warc(records: int, work: Path, env: dict[str, str]) -> list[str]:
    """Step 3: bench/warc.py's figures."""
    done = subprocess.run(
        [sys.executable, str(REPO / "bench" / "warc.py"), "--records", str(records), "--workdir", str(work / "warc")],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if done.returncode != 0:
        print(done.stderr[-2000:])
    return [line for line in done.stdout.splitlines() if not line.startswith("workdir:")]


def main(argv: list[str] | None = None) -> int:
    """Run the bench and print its figures."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="100000,1000000", help="corpus sizes of the backfill step, comma-separated")
    ap.add_argument("--runner-files", type=int, default=20_000, help="articles of the runner comparison (0: skip it)")
    ap.add_argument("--warc-records", type=int, default=3000, help="responses in the WARC step's file (0: skip it)")
    ap.add_argument("--skip-dedup", action="store_true", help="do not measure `newsflow dedup` after each backfill")
    ap.add_argument("--workdir", type=Path)
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    print(f"cores: {os.cpu_count()}; load average {os.getloadavg()[0]:.1f}")
    with bench_workdir(args.workdir, args.keep, "newsflow-bench-scale-", "bench/scale.py") as work:
        with running_server(work / "prefect", work / "logs" / "server.log") as server:
            env = bench_env(work / "prefect", server.api_url)
            memory = backfill_memory(sizes, work, env, server.pid, not args.skip_dedup)
            compared = runners(args.runner_files, work, env, server.pid) if args.runner_files > 0 else []
        warc_lines = warc(args.warc_records, work, bench_env(work / "prefect")) if args.warc_records > 0 else []
    print("\n## Backfill memory against corpus size (steady state, default runner)\n")
    print("| step | articles | wall | articles/s | largest process | process tree | result |")
    print("|---|---|---|---|---|---|---|")
    print("\n".join(memory))
    print(f"\ntarget: peak RSS <= {TARGET_RSS_MB:.0f} MB at every size (the largest process)")
    print("\n## Default runner against Dask (LocalCluster, one worker per core)\n")
    print("| runner | articles | wall | articles/s | CPU | process tree | rows written |")
    print("|---|---|---|---|---|---|---|")
    print("\n".join(compared))
    print("\n## WARC, end to end against the bare read\n")
    print("\n".join(warc_lines))
    print(f"target: >= {TARGET_WARC_PER_CORE:.0f} articles/s/core end to end")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
