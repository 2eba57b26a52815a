"""Benchmark: real HTML pages through `newsflow run` against trafilatura's command line: speed and F1.

What it does
------------
1. Builds a corpus of N pages (default 10,000) from one or more sets laid out like
   `/work/shared/data/aeb/` (`html/<id>.html.gz`, `ground-truth.json` with each page's
   gold `articleBody` and `url`): every page of the sets once, then again, as often as
   it takes to reach N. Each copy is its own file, 1,000 to a folder, holding the
   page's bytes unchanged, with a sidecar `<name>.json` giving the page's URL (copy 0:
   the URL of the ground truth; copy K: that URL with `newsflow-bench-copy=K` added to
   its query), so every copy is its own article (its article_id comes from the URL)
   while its text is the page's.
2. Starts one Prefect server for the whole bench and makes one unmeasured run against
   it, as `ingest_text.py` does: the steady state of a system already running
   (`--one-shot`: no server; each `newsflow run` starts its own, as a bare command does).
3. Runs, each as its own subprocess, after reading the pages once (page cache warm)
   and a sync; one round, or R with `--repeat R`:
   - `newsflow empty run`: a source whose folder is empty (the fixed cost of a command);
   - `newsflow run`: an `html` files source over the N pages (generic extraction, no
     site rules), into an emptied data root;
   - `trafilatura`: `trafilatura --input-dir ... --output-dir ... --keep-dirs
     --parallel P` (P = 2 by default, as newsflow's workers are one per core here),
     its defaults otherwise (plain text, no metadata), at the nice level of newsflow's
     workers (+10 unless NEWSFLOW_WORKER_NICE says otherwise), so that other load on a
     shared machine slows both alike. It reads the same files through hard links in a
     tree of its own without the sidecars (it would take each `.json` for a page).
4. Reads newsflow's text back from the Parquet dataset (DuckDB: `source_uri`, `text`)
   and trafilatura's output files, maps each to its page and copy, and scores copy 0
   of every page against its gold with `bench/extraction.py`'s metric (imported, not
   copied). A page newsflow quarantined (e.g. `extraction_failed`) or trafilatura gave
   no output for scores as empty text: it is what a reader of the output gets. Copies
   whose text differs from their copy 0's are counted (there should be none).

Usage: python bench/ingest_html.py SET [SET ...] [--pages N] [--workdir DIR] [--keep]
                                   [--workers W] [--parallel P] [--repeat R] [--one-shot]

e.g.   python bench/ingest_html.py ../shared/data/aeb ../shared/data/wcxb-dev

How to read the output
----------------------
`pages/s` is N over the wall time of the whole command, start-up included, for both
tools (the empty run is printed too: the part of newsflow's time that does not grow
with N). `CPU s` is user + system time of the command's processes, `server CPU s`
what the running Prefect server used from the run's start until it was idle again,
`others CPU s` what the rest of the machine (other users' work) used meanwhile;
CPU per page (over N) is the figure other load on the machine moves least. Target
(PASS/FAIL): newsflow's pages/s >= 5x trafilatura's, on the median of the rounds'
ratios. F1, precision and recall are AEB's (see `bench/extraction.py`), per set;
`F1<0.5` counts pages whose own F1 is under 0.5. The machine is shared: wall times
move by tens of percent between runs, F1 does not move.

The script exits 0 whatever the figures say: it reports, it is not a test.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import json
import os
import shutil
import sys
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from extraction import PageScore, match, summarise
from proctree import (
    MB,
    Step,
    bench_env,
    bench_workdir,
    measure,
    median,
    newsflow_command,
    niced,
    running_server,
    warm_cache,
    workers_nice,
)

TARGET_RATIO = 5.0
FILES_PER_FOLDER = 1000
COPY_PARAM = "newsflow-bench-copy"
SOURCE = "pages"


class Page(NamedTuple):
    """One page of a set: where it is and what its article says."""

    set: str
    id: str
    path: Path
    url: str
    gold: str


class Copy(NamedTuple):
    """Which page (and which copy of it) a file of the corpus holds."""

    page: Page
    copy: int


@dataclass(frozen=True, slots=True)
class Corpus:
    """The files written, by their path below the corpus folder (`d0000/<name>`, no extension)."""

    files: dict[str, Copy]
    pages: list[Page]
    bytes: int


# --------------------------------------------------------------------------- corpus


def load_sets(folders: list[Path]) -> list[Page]:
    """Every page with gold text of the given sets, set by set, in id order."""
    pages: list[Page] = []
    names = [folder.resolve().name for folder in folders]
    if len(set(names)) != len(names):
        raise SystemExit(f"ingest_html: two sets share a folder name: {names}")
    for folder, name in zip(folders, names, strict=True):
        truth: dict[str, dict[str, Any]] = json.loads((folder / "ground-truth.json").read_text(encoding="utf-8"))
        for page_id in sorted(truth):
            path = folder / "html" / f"{page_id}.html.gz"
            url, gold = truth[page_id].get("url"), truth[page_id].get("articleBody")
            if path.is_file() and url and gold is not None:
                pages.append(Page(name, page_id, path, url, gold))
    return pages


def copy_url(url: str, copy: int) -> str:
    """The URL of copy `copy` of a page: its own for copy 0, else with the copy number in its query."""
    if copy == 0:
        return url
    parts = urllib.parse.urlsplit(url)
    query = f"{parts.query}&" if parts.query else ""
    return urllib.parse.urlunsplit(parts._replace(query=f"{query}{COPY_PARAM}={copy}"))


def build_corpus(pages: list[Page], n: int, corpus: Path, plain: Path) -> Corpus:
    """Write N files (page bytes + a sidecar) below `corpus`, and hard links to the pages alone below `plain`."""
    files: dict[str, Copy] = {}
    total = 0
    for k in range(n):
        page, copy = pages[k % len(pages)], k // len(pages)
        rel = f"d{k // FILES_PER_FOLDER:04d}/{page.set}.{page.id}.c{copy:03d}"
        target = corpus / f"{rel}.html.gz"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(page.path, target)
        sidecar = json.dumps({"url": copy_url(page.url, copy)}).encode("utf-8")
        target.with_name(target.name.removesuffix(".html.gz") + ".json").write_bytes(sidecar)
        link = plain / f"{rel}.html.gz"
        link.parent.mkdir(parents=True, exist_ok=True)
        os.link(target, link)
        total += target.stat().st_size + len(sidecar)
        files[rel] = Copy(page, copy)
    return Corpus(files, pages, total)


def write_config(path: Path, folder: Path) -> None:
    """A config with one `html` files source on `folder` (like the `pages` sample source)."""
    path.write_text(
        f'[sources.{SOURCE}]\nkind = "files"\npath = {json.dumps(str(folder))}\nformat = "html"\n', encoding="utf-8"
    )


# ------------------------------------------------------------------------- output


def newsflow_texts(data: Path, corpus: Path) -> dict[str, str]:
    """rel (as in `Corpus.files`) -> text of every article in the data root."""
    import duckdb

    glob = str(data / "articles" / "**" / "*.parquet").replace("'", "''")
    rows = duckdb.connect().execute(f"SELECT source_uri, text FROM read_parquet('{glob}', hive_partitioning = false)")
    out: dict[str, str] = {}
    for uri, text in rows.fetchall():
        path = Path(urllib.parse.unquote(urllib.parse.urlsplit(uri).path))
        out[str(path.relative_to(corpus)).removesuffix(".html.gz")] = text
    return out


def quarantine_reasons(data: Path) -> dict[str, int]:
    """How many inputs the data root's quarantine holds, by reason."""
    import duckdb

    glob = str(data / "quarantine" / "**" / "*.parquet").replace("'", "''")
    if not any((data / "quarantine").rglob("*.parquet")):
        return {}
    query = f"SELECT reason, count(*) FROM read_parquet('{glob}', hive_partitioning = false) GROUP BY 1 ORDER BY 2 DESC"
    return dict(duckdb.connect().execute(query).fetchall())


def trafilatura_texts(plain: Path) -> dict[str, str]:
    """rel -> text of every output file trafilatura wrote (next to its input: see `trafilatura_command`)."""
    out: dict[str, str] = {}
    for path in plain.rglob("*.html.txt"):
        out[str(path.relative_to(plain)).removesuffix(".html.txt")] = path.read_text(encoding="utf-8")
    return out


def remove_outputs(plain: Path) -> None:
    """Delete trafilatura's outputs from its input tree (a next round would read them as pages)."""
    for path in plain.rglob("*.html.txt"):
        path.unlink()


@dataclass(frozen=True, slots=True)
class Quality:
    """F1 figures of one tool on one set."""

    f1: float
    precision: float
    recall: float
    under_half: int
    missing: int  # pages with no output (scored as empty text)
    differing: int  # copies whose text differs from their copy 0's


def score(corpus: Corpus, texts: dict[str, str], set_name: str) -> Quality:
    """Score copy 0 of each page of `set_name` against its gold; count copies that differ from it."""
    first: dict[str, str | None] = {}
    for rel, (page, copy) in corpus.files.items():
        if page.set == set_name and copy == 0:
            first[page.id] = texts.get(rel)
    differing = sum(
        1
        for rel, (page, copy) in corpus.files.items()
        if page.set == set_name and copy > 0 and texts.get(rel) != first[page.id]
    )
    scores: list[PageScore] = []
    for page in corpus.pages:
        if page.id in first:  # of this set, and in the corpus (`--pages` below the set's size leaves some out)
            scores.append(PageScore(*match(page.gold, first[page.id] or ""), ms=0.0))
    f1, precision, recall, _ms = summarise(scores)
    under = sum(1 for s in scores if _page_f1(s) < 0.5)
    return Quality(f1, precision, recall, under, sum(1 for t in first.values() if t is None), differing)


def _page_f1(s: PageScore) -> float:
    if s.fp == s.fn == 0:
        return 1.0
    return 2 * s.tp / (2 * s.tp + s.fp + s.fn) if s.tp else 0.0


# ------------------------------------------------------------------------ driver


def trafilatura_command(plain: Path, out: Path, parallel: int) -> list[str]:
    """trafilatura's command line over the folder `plain`.

    `--keep-dirs` names each output after its input, so it can be mapped back to its
    page (without it the names are hashes of the text). trafilatura 2.3.1 then joins
    --output-dir with the input's path: with a relative --input-dir the folder it
    writes to is not the one it creates and it writes nothing (the error is lost in
    its process pool); with an absolute one the join drops --output-dir and each
    output lands next to its input. Hence the absolute path of a tree of its own.
    """
    exe = shutil.which("trafilatura", path=str(Path(sys.executable).parent)) or shutil.which("trafilatura")
    if exe is None:
        raise SystemExit("ingest_html: no `trafilatura` command (`make bench-deps` installs it)")
    folders = ["--input-dir", str(plain.resolve()), "--output-dir", str(out)]
    return niced([exe, *folders, "--keep-dirs", "--parallel", str(parallel)])


def _summary_counts(step: Step) -> dict[str, int]:
    try:
        data = json.loads(step.stdout)
        return {k: sum(int(s[k]) for s in data["sources"]) for k in ("written", "quarantined")}
    except (ValueError, KeyError, TypeError):
        return {}


def _table(steps: Iterable[Step], n: int) -> None:
    row = "{:<24} {:>8} {:>8} {:>6} {:>13} {:>13} {:>12} {:>9} {:>6}"
    head = ("step", "wall s", "pages/s", "CPU s", "server CPU s", "others CPU s", "RSS largest", "RSS tree", "procs")
    print(row.format(*head))
    for s in steps:
        rate = "-" if s.kind == "empty" else f"{n / s.seconds:,.0f}"
        server = "-" if s.server_cpu is None else f"{s.server_cpu:.1f}"
        print(
            row.format(
                s.name,
                f"{s.seconds:.2f}",
                rate,
                f"{s.cpu:.1f}",
                server,
                f"{s.others_cpu:.1f}",
                f"{s.rss_largest / MB:.0f}",
                f"{s.rss_tree / MB:.0f}",
                s.max_procs,
            )
        )
    print("(peak memory in MB; others CPU s: what the rest of the machine used during the step)")


def run_bench(args: argparse.Namespace, workdir: Path) -> None:
    """Build the corpus, run and measure newsflow and trafilatura, score both, print the report."""
    pages = load_sets(args.sets)
    if not pages:
        raise SystemExit("ingest_html: no pages with gold text in the given sets")
    n = args.pages
    logs, data = workdir / "logs", workdir / "data"
    corpus_dir, plain, empty_dir = workdir / "corpus", workdir / "trafilatura-in", workdir / "empty"
    empty_dir.mkdir(parents=True, exist_ok=True)
    corpus = build_corpus(pages, n, corpus_dir, plain)
    write_config(workdir / "sources.toml", corpus_dir)
    write_config(workdir / "empty.toml", empty_dir)
    sets = sorted({p.set for p in pages}, key=[p.set for p in pages].index)
    per_set = ", ".join(f"{s} {sum(1 for p in pages if p.set == s)}" for s in sets)
    print(
        f"pages: {n:,} files ({corpus.bytes / MB:.0f} MB, gzip) from {len(pages)} distinct pages ({per_set}),"
        f" each {n // len(pages)}-{-(-n // len(pages))} times"
    )
    version = importlib.metadata.version("trafilatura")
    print(f"cores: {os.cpu_count()}; newsflow --workers {args.workers or 'default (one per core)'};")
    print(
        f"trafilatura {version}, --parallel {args.parallel}; newsflow's workers and trafilatura at"
        f" nice +{workers_nice()}; load average {os.getloadavg()[0]:.1f}"
    )

    workers = ["--workers", str(args.workers)] if args.workers else []
    full_cmd = newsflow_command(
        "run", "--json", *workers, "--config", str(workdir / "sources.toml"), "--data", str(data)
    )
    empty_cmd = newsflow_command(
        "run", "--json", *workers, "--config", str(workdir / "empty.toml"), "--data", str(workdir / "data-empty")
    )
    traf_cmd = trafilatura_command(plain, workdir / "trafilatura-out", args.parallel)
    regime = "one-shot" if args.one_shot else "steady"

    steps: list[Step] = []
    with contextlib.ExitStack() as stack:
        server_pid, env = None, bench_env(workdir / "prefect")
        if not args.one_shot:
            server = stack.enter_context(running_server(workdir / "prefect-server", logs / "server.log"))
            server_pid, env = server.pid, bench_env(workdir / "prefect-server", server.api_url)
            print(f"Prefect server running: {server.api_url} (pid {server_pid})")
        warm = measure("warm-up", "empty", regime, empty_cmd, env, logs, server_pid)
        print(f"warm-up empty run: {warm.seconds:.2f} s, exit {warm.returncode} (not counted)")
        for i in range(1, args.repeat + 1):
            tag = "" if args.repeat == 1 else f" {i}/{args.repeat}"
            for kind, name, argv in (
                ("empty", f"newsflow empty run{tag}", empty_cmd),
                ("newsflow", f"newsflow run{tag}", full_cmd),
                ("trafilatura", f"trafilatura{tag}", traf_cmd),
            ):
                if kind == "newsflow":
                    shutil.rmtree(data, ignore_errors=True)
                if kind == "trafilatura":
                    remove_outputs(plain)
                if kind != "empty":
                    warm_cache(corpus_dir)
                os.sync()
                print(f"running {name} ...", flush=True)
                uses_server = server_pid if kind != "trafilatura" else None
                step = measure(name, kind, regime if kind != "trafilatura" else "", argv, env, logs, uses_server)
                steps.append(step)
                if step.returncode != 0:
                    tail = "\n".join(step.stderr.splitlines()[-20:])
                    print(f"--- {name} exited with {step.returncode}; last stderr lines:\n{tail}\n---")

    print(f"\nload average after the rounds: {os.getloadavg()[0]:.1f} (2 cores: above ~2, the figures are slowed)")
    where = "one-shot: each run starts its own Prefect server" if args.one_shot else "a Prefect server running"
    print(f"\nThroughput, {n:,} pages ({where})")
    _table(steps, n)
    runs = [s for s in steps if s.kind == "newsflow"]
    trafs = [s for s in steps if s.kind == "trafilatura"]
    empties = [s for s in steps if s.kind == "empty"]
    ratios = [t.seconds / r.seconds for r, t in zip(runs, trafs, strict=True)]
    ratio = median(ratios)
    rounds = f" (median of {len(ratios)} rounds: {', '.join(f'{r:.2f}' for r in ratios)})" if len(ratios) > 1 else ""
    print(
        f"newsflow {n / median([s.seconds for s in runs]):,.0f} pages/s, trafilatura {version}"
        f" {n / median([s.seconds for s in trafs]):,.0f} pages/s (medians); the empty run"
        f" {median([s.seconds for s in empties]):.2f} s"
    )
    cpu_ms = {k: 1000 * median([s.cpu for s in steps if s.kind == k]) / n for k in ("newsflow", "trafilatura")}
    server_ms = [1000 * s.server_cpu / n for s in runs if s.server_cpu is not None]
    print(
        f"CPU per page: newsflow {cpu_ms['newsflow']:.1f} ms"
        + (f" (and the server {median(server_ms):.1f} ms)" if server_ms else "")
        + f", trafilatura {cpu_ms['trafilatura']:.1f} ms (medians; what the machine's load does not change)"
    )
    for step in (runs[-1], trafs[-1]):
        print(f"  peak RSS per process in {step.name}:")
        for cmd, peak in step.processes:
            print(f"    {peak / MB:>6.0f} MB  {cmd}")
    print(
        f"newsflow / trafilatura throughput: {ratio:.2f} x   target >= {TARGET_RATIO:.0f} x   "
        f"{'PASS' if ratio >= TARGET_RATIO else 'FAIL'}{rounds}"
    )

    print("\nText quality, copy 0 of each page against its gold (AEB's metric), outputs of the last round")
    nf_texts, tf_texts = newsflow_texts(data, corpus_dir), trafilatura_texts(plain)
    row = "{:<12} {:>6}  {:<12} {:>6} {:>6} {:>7} {:>7} {:>10} {:>16}"
    print(row.format("set", "pages", "extractor", "F1", "prec", "recall", "F1<0.5", "no output", "copies differing"))
    for set_name in sets:
        count = len({page.id for page, _copy in corpus.files.values() if page.set == set_name})
        for tool, texts in (("newsflow", nf_texts), ("trafilatura", tf_texts)):
            q = score(corpus, texts, set_name)
            print(
                row.format(
                    set_name,
                    count,
                    tool,
                    f"{q.f1:.3f}",
                    f"{q.precision:.3f}",
                    f"{q.recall:.3f}",
                    q.under_half,
                    q.missing,
                    q.differing,
                )
            )
    reasons = ", ".join(f"{k} {v}" for k, v in quarantine_reasons(data).items()) or "none"
    print(f"newsflow quarantined, over all {n:,} pages (each scored as no output): {reasons}")
    print()
    for step in steps:
        print(f"check {'ok    ' if step.returncode == 0 else 'FAILED'} {step.name}: exit status {step.returncode}")
        if step.kind == "newsflow":
            counts = _summary_counts(step)
            ok = counts.get("written", 0) + counts.get("quarantined", 0) == n
            text = f"written {counts.get('written')} + quarantined {counts.get('quarantined')} (want {n} in all)"
            print(f"check {'ok    ' if ok else 'FAILED'} {step.name}: {text}")
    got = len(nf_texts)
    print(f"check {'ok    ' if got <= n else 'FAILED'} newsflow's dataset holds {got} articles (of {n} pages)")
    print(
        f"check {'ok    ' if len(tf_texts) <= n else 'FAILED'} trafilatura wrote {len(tf_texts)} files (of {n} pages)"
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Real HTML pages through `newsflow run` against trafilatura: speed, F1.")
    p.add_argument("sets", nargs="+", type=Path, help="folders with html/<id>.html.gz and ground-truth.json")
    p.add_argument(
        "--pages", type=int, default=10_000, help="files to ingest, pages repeated as needed (default 10000)"
    )
    p.add_argument("--workdir", type=Path, help="where to build the corpus and data (default: a temp dir)")
    p.add_argument("--keep", action="store_true", help="keep the temp workdir afterwards")
    p.add_argument("--workers", type=int, help="passed to `newsflow run --workers` (default: its own)")
    p.add_argument("--parallel", type=int, default=2, help="trafilatura's --parallel (default 2)")
    p.add_argument("--repeat", type=int, default=1, help="measure R rounds and judge the median ratio (default 1)")
    p.add_argument("--one-shot", action="store_true", help="no running server: each `newsflow run` starts its own")
    args = p.parse_args(argv)
    if args.pages < 1 or args.repeat < 1 or args.parallel < 1:
        p.error("--pages, --repeat and --parallel must be at least 1")
    with bench_workdir(args.workdir, args.keep, "newsflow-bench-html-", "bench/ingest_html.py") as workdir:
        run_bench(args, workdir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
