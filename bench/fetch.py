"""Benchmark: the fetcher's throughput against local servers, and its politeness gap.

What it does
------------
Starts HTTP servers on loopback addresses (127.0.0.1, 127.0.0.2, ...; Linux routes all
of 127/8 to the loopback interface), each serving the same ~50 KB article page at any
path, with robots.txt absent (404: allowed). Then, in-process:

1. politeness off, one host: `--pages` URLs on one server, per-host delay 0. The
   fetcher still sends one request at a time per host, so this is its sequential rate;
2. politeness off, `--hosts` hosts: the same number of URLs spread over the servers,
   up to `--concurrency` requests in flight (one per host);
3. politeness on: 6 URLs on one host with the default per-host delay (1 s), and the
   gaps between consecutive request starts as the server saw them (min and median).

Usage: python bench/fetch.py [--pages N] [--hosts H] [--concurrency C]

Figures are wall-clock on this machine, server and client sharing its cores; the
server is Python's threading HTTP server, so at high rates it is part of what is
measured. The script exits 0 whatever the figures: it reports, it is not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import statistics
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from pipeline.fetch import Fetcher, FetchPolicy

PAGE = (b"<html><body><article>" + b"<p>" + b"A paragraph of an article, with words. " * 25 + b"</p>") * 50


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    starts: list[float]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body leave in two writes; with Nagle's algorithm on, the client's
    # delayed ACK then holds every keep-alive response ~40 ms (the server's artefact).
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        if self.path == "/robots.txt":
            body, status = b"", 404
        else:
            self.server.starts.append(time.monotonic())
            body, status = PAGE, 200
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@contextmanager
def _servers(hosts: int) -> Iterator[list[_Server]]:
    servers = []
    for i in range(hosts):
        srv = _Server((f"127.0.0.{i + 1}", 0), _Handler)
        srv.starts = []
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        servers.append(srv)
    try:
        yield servers
    finally:
        for srv in servers:
            srv.shutdown()
            srv.server_close()


def _endpoint(srv: _Server) -> str:
    host, port = srv.server_address[:2]
    return f"{host.decode() if isinstance(host, bytes) else host}:{port}"


def _policy(servers: list[_Server], delay: float, concurrency: int) -> FetchPolicy:
    return FetchPolicy(
        user_agent="newsflow-bench/0.1 (+contact: bench@localhost)",
        per_host_delay_s=delay,
        global_concurrency=concurrency,
        allow_private_for=frozenset(_endpoint(s) for s in servers),
    )


async def _fetch(policy: FetchPolicy, urls: list[str]) -> tuple[float, int]:
    async with Fetcher(policy) as fetcher:
        start = time.perf_counter()
        results = await fetcher.fetch_many(urls)
        return time.perf_counter() - start, sum(1 for r in results if r.ok)


def main(argv: list[str] | None = None) -> int:
    """Run the three measurements and print them."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--pages", type=int, default=2000, help="URLs per throughput run (default 2000)")
    p.add_argument("--hosts", type=int, default=8, help="loopback hosts for the multi-host run (default 8)")
    p.add_argument("--concurrency", type=int, default=8, help="requests in flight over all hosts (default 8)")
    args = p.parse_args(argv)
    with _servers(args.hosts) as servers:
        one = servers[:1]
        urls = [f"http://{_endpoint(one[0])}/a/{i}" for i in range(args.pages)]
        secs, ok = asyncio.run(_fetch(_policy(one, 0.0, args.concurrency), urls))
        print(f"politeness off, 1 host:        {ok} pages in {secs:.2f} s = {ok / secs:,.0f} pages/s")
        urls = [f"http://{_endpoint(servers[i % len(servers)])}/b/{i}" for i in range(args.pages)]
        secs, ok = asyncio.run(_fetch(_policy(servers, 0.0, args.concurrency), urls))
        print(
            f"politeness off, {len(servers)} hosts:       {ok} pages in {secs:.2f} s = {ok / secs:,.0f} pages/s"
            f" (concurrency {args.concurrency})"
        )
        one[0].starts.clear()
        default_delay = FetchPolicy(user_agent="x (+contact: bench@localhost)").per_host_delay_s
        policy = _policy(one, default_delay, args.concurrency)
        urls = [f"http://{_endpoint(one[0])}/c/{i}" for i in range(6)]
        secs, ok = asyncio.run(_fetch(policy, urls))
        starts = one[0].starts
        gaps = [b - a for a, b in itertools.pairwise(starts)]
        print(
            f"politeness on (delay {policy.per_host_delay_s:.1f} s), 1 host: {ok} pages in {secs:.2f} s;"
            f" gap between requests min {min(gaps):.3f} s, median {statistics.median(gaps):.3f} s"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
