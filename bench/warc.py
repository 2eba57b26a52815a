"""Benchmark: a WARC source end to end against the bare read of the same file.

Builds one WARC file, gzip per record as Common Crawl writes it, of N response
records whose payloads are real pages (the test fixtures, or the pages of the
development sets given with --pages), each under its own URL, plus one request record
per response as in a crawl. Then, on this machine:

- bare read: fastwarc iterates the file and reads every HTML payload (decompression
  and parsing only): the physical limit of reading it here;
- newsflow: `run_source` on a `warc` source over the file, normaliser workers in the
  default pool (one per core), into an empty data root; articles per second, and per
  second per core (over the wall time and the cores the pool used).

Usage: python bench/warc.py [--records N] [--pages DIR ...] [--workers W] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import gzip
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from fastwarc.warc import ArchiveIterator, WarcRecordType  # noqa: E402

from pipeline.config import load_config  # noqa: E402
from pipeline.run import LocalRunner, run_source  # noqa: E402
from pipeline.workers import default_workers, shutdown_pool  # noqa: E402
from tests.warc_files import Rec, record_bytes  # noqa: E402
from warehouse.layout import DataRoot  # noqa: E402


def _pages(folders: list[Path]) -> list[bytes]:
    """HTML pages: the fixtures, or `*.html.gz` / `*.html` under the given folders."""
    found = [p for f in folders for p in sorted(f.glob("**/*.html*"))] or sorted(
        (REPO / "tests" / "fixtures" / "html").glob("*.html.gz")
    )
    return [gzip.decompress(p.read_bytes()) if p.suffix == ".gz" else p.read_bytes() for p in found]


def build(path: Path, n: int, pages: list[bytes]) -> int:
    """Write the bench's WARC file; returns its size in bytes."""
    with open(path, "wb") as out:
        for i in range(n):
            uri = f"https://bench{i % 97}.example.org/story/{i}"
            body = pages[i % len(pages)].replace(b"<head>", f"<head><!-- {i} -->".encode(), 1)
            out.write(gzip.compress(record_bytes(Rec(uri, b"GET", kind="request", date="2024-03-05T10:00:00Z")), 1))
            out.write(gzip.compress(record_bytes(Rec(uri, body, date="2024-03-05T10:00:00Z")), 1))
    return path.stat().st_size


def bare_read(path: Path) -> tuple[int, float]:
    """Iterate the file with fastwarc and read every response payload; (records, seconds)."""
    started = time.perf_counter()
    n = 0
    with open(path, "rb") as fh:
        for record in ArchiveIterator(fh, record_types=WarcRecordType.response, parse_http=True):
            record.reader.read()
            n += 1
    return n, time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    """Run the bench and print its figures."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--records", type=int, default=2000)
    ap.add_argument("--pages", type=Path, nargs="*", default=[])
    ap.add_argument("--workers", type=int, default=0)
    ap.add_argument("--workdir", type=Path)
    args = ap.parse_args(argv)
    work = args.workdir or Path(tempfile.mkdtemp(prefix="newsflow-bench-warc-"))
    warcs = work / "warcs"
    warcs.mkdir(parents=True, exist_ok=True)
    pages = _pages(args.pages)
    size = build(warcs / "bench.warc.gz", args.records, pages)
    print(f"WARC file: {args.records:,} responses (+ as many requests) of {len(pages)} pages, {size / 1e6:.1f} MB")
    n, took = bare_read(warcs / "bench.warc.gz")
    print(f"bare read (fastwarc, one core): {n:,} payloads in {took:.2f} s = {n / took:,.0f} records/s")
    cfg = work / "sources.toml"
    cfg.write_text('[sources.bench]\nkind = "warc"\npath = "warcs"\nlearn_boilerplate = false\n', encoding="utf-8")
    src = load_config(cfg).sources["bench"]
    data = work / "data"
    shutil.rmtree(data, ignore_errors=True)
    workers = args.workers or default_workers()
    cpu0 = os.times()
    started = time.perf_counter()
    summary = run_source(src, DataRoot(data), "bench", runner=LocalRunner(workers))
    wall = time.perf_counter() - started
    shutdown_pool()  # the workers' CPU time counts once they are reaped
    cpu1 = os.times()
    cpu = (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)
    cpu += (cpu1.children_user - cpu0.children_user) + (cpu1.children_system - cpu0.children_system)
    done = summary.written + summary.quarantined + summary.superseded  # every record normalised
    print(
        f"newsflow run ({workers} workers): {summary.written:,} written, {summary.quarantined:,} quarantined "
        f"in {wall:.2f} s = {done / wall:,.0f} articles/s, {done / wall / workers:,.0f} articles/s/core; "
        f"{cpu:.1f} s of CPU (the command and its workers) = {done / cpu:,.0f} articles per CPU-second"
    )
    print(f"workdir: {work}")
    return 0 if summary.error is None else 1


if __name__ == "__main__":
    raise SystemExit(main())
