"""The fetcher against a real HTTP server on 127.0.0.1, well-behaved and hostile."""

from __future__ import annotations

import asyncio
import email.utils
import ipaddress
import logging
import random
import socket
import threading
import time
import tracemalloc
import zlib
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import pytest

from pipeline.errors import ConfigError
from pipeline.fetch import (
    Fetcher,
    FetchPolicy,
    FetchResult,
    LoopClock,
    UnsafeURL,
    check_url,
    is_forbidden,
    parse_host_address,
)
from pipeline.fetch.client import MAX_RETRY_AFTER_S
from pipeline.fetch.safety import PRIVATE_NAMES, ascii_host, resolve

MB = 1024 * 1024
LAST_MODIFIED = "Wed, 01 Jan 2025 00:00:00 GMT"
# No fetch here takes more than a second or two; only a hang comes near this. Every fetch
# and every wait on the server runs under it, so a hang fails the test instead of the run.
HANG_GUARD_S = 30.0


def _gzip_bomb(size: int) -> bytes:
    """`size` zero bytes, gzip-compressed without ever holding them all in memory."""
    z = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = bytes(MB)
    return b"".join(z.compress(block) for _ in range(size // MB)) + z.flush()


class VirtualClock:
    """A pacing clock that never waits: each sleep is recorded and moves its time on by as much.

    Exact while pauses are taken one at a time, as they are for one host (its gate takes turns).
    """

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def time(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)  # still a point where the other tasks run


class Server(ThreadingHTTPServer):
    daemon_threads = True
    robots: tuple[int, str] = (404, "")
    bomb = b""
    clock: VirtualClock  # the fetcher's, when the test passed it: arrivals are stamped with its time
    hits: dict[str, int]
    arrivals: list[tuple[str, float]]
    sent: dict[str, int]
    in_flight: int
    most_in_flight: int
    together: threading.Barrier

    def reset(self) -> None:
        self.robots = (404, "")
        self.clock = VirtualClock()
        self.hits, self.arrivals, self.sent = {}, [], {}
        self.in_flight = self.most_in_flight = 0
        self.together = threading.Barrier(2, timeout=HANG_GUARD_S / 2)
        self._lock = threading.Lock()
        self._done: dict[str, threading.Event] = {}

    def done(self, path: str) -> threading.Event:
        """Set when the response to `path` has ended, however it ended."""
        with self._lock:
            return self._done.setdefault(path, threading.Event())

    def enter(self) -> None:
        with self._lock:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)

    def leave(self) -> None:
        # Called before the response is written: the client cannot send its next request
        # before this, so the count never shows two requests that did not overlap.
        with self._lock:
            self.in_flight -= 1


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _reply(self, status: int, body: bytes = b"", ctype: str = "text/html", **headers: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.end_headers()
        self.wfile.write(body)

    def _stream(self, total: int, chunk: int = 64 * 1024, **headers: str) -> None:
        """`total` zero bytes, closing the connection at the end (no Content-Length)."""
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Connection", "close")
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.end_headers()
        block, sent = bytes(chunk), 0
        try:
            while sent < total:
                self.wfile.write(block)
                sent += chunk
        except OSError:
            pass
        finally:
            self.server.sent[self.path] = sent
            self.server.done(self.path).set()
            self.close_connection = True

    def do_GET(self) -> None:
        srv = self.server
        path = self.path.partition("?")[0]
        srv.arrivals.append((self.path, srv.clock.time()))
        srv.hits[self.path] = srv.hits.get(self.path, 0) + 1
        first = srv.hits[self.path] == 1
        port = srv.server_address[1]
        if path == "/robots.txt":
            status, text = srv.robots
            self._reply(status, text.encode(), "text/plain")
        elif path == "/page":
            self._reply(200, b"<html><p>hello</p></html>", "text/html; charset=utf-8")
        elif path.startswith("/chain/"):
            n = int(path.rsplit("/", 1)[1])
            self._reply(302, Location=f"/chain/{n - 1}" if n > 1 else "/page")
        elif path == "/loop/a":
            self._reply(302, Location="/loop/b")
        elif path == "/loop/b":
            self._reply(301, Location=f"http://127.0.0.1:{port}/loop/a")
        elif path == "/to-metadata":
            self._reply(302, Location="http://169.254.169.254/latest/meta-data/")
        elif path == "/to-decimal":
            self._reply(302, Location="http://2130706433/")
        elif path == "/to":  # ?host=...: a redirect to that host, UTF-8 as a server may send it
            host = parse_qs(urlsplit(self.path).query)["host"][0]
            location = f"http://{host}/latest/meta-data/".encode()
            self.wfile.write(b"HTTP/1.1 302 Found\r\nLocation: " + location + b"\r\nContent-Length: 0\r\n\r\n")
        elif path == "/etag":
            if self.headers.get("If-None-Match") == '"v1"':
                self._reply(304, ETag='"v1"')
            else:
                self._reply(200, b"<p>v1</p>", ETag='"v1"')
        elif path == "/etag-latin1":  # a validator in another encoding than ASCII, as some servers send
            if self.headers.get("If-None-Match") or self.headers.get("If-Modified-Since"):
                self._reply(304)
            else:
                body = b"<p>v1</p>"
                head = b'HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nETag: "v\xe9"\r\nLast-Modified: caf\xe9\r\n'
                self.wfile.write(head + b"Content-Length: %d\r\n\r\n" % len(body) + body)
        elif path == "/lastmod":
            if self.headers.get("If-Modified-Since") == LAST_MODIFIED:
                self._reply(304)
            else:
                self._reply(200, b"<p>old</p>", Last_Modified=LAST_MODIFIED)
        elif path == "/drip":  # a byte every 0.2 s: 20 s for the whole body
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", "100")
            self.end_headers()
            sent = 0
            try:
                for _ in range(100):
                    self.wfile.write(b"x")
                    self.wfile.flush()
                    sent += 1
                    time.sleep(0.2)
            except OSError:
                pass
            finally:
                srv.sent[path] = sent
                srv.done(path).set()
        elif path == "/stall":
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", "100")
            self.end_headers()
            self.wfile.flush()
            time.sleep(3)
        elif path == "/huge":
            self._stream(200 * MB)
        elif path == "/bomb":
            self._reply(200, srv.bomb, Content_Encoding="gzip")
        elif path == "/rate-limited":
            self._reply(429, Retry_After="7") if first else self._reply(200, b"<p>ok</p>")
        elif path == "/unavailable":
            self._reply(503) if first else self._reply(200, b"<p>ok</p>")
        elif path == "/rate-limited-date":
            when = email.utils.format_datetime(datetime.now(UTC) + timedelta(seconds=60), usegmt=True)
            self._reply(429, Retry_After=when) if first else self._reply(200, b"<p>ok</p>")
        elif path == "/come-back-tomorrow":
            self._reply(503, Retry_After="86400")
        elif path == "/retry-after":  # ?value=...: a 503 with that Retry-After
            self._reply(503, Retry_After=parse_qs(urlsplit(self.path).query)["value"][0])
        elif path == "/always-304":  # a 304 whatever was asked
            self._reply(304)
        elif path == "/down":
            self._reply(503)
        elif path == "/slow":  # held a while, so requests sent at once would overlap here
            srv.enter()
            time.sleep(0.25)
            srv.leave()
            self._reply(200, b"<p>slow</p>")
        elif path == "/together":  # answered once two requests are here at the same time
            srv.enter()
            try:
                srv.together.wait()
            except threading.BrokenBarrierError:
                srv.leave()
                self._reply(500, b"alone")
            else:
                srv.leave()
                self._reply(200, b"<p>together</p>")
        elif path == "/json":
            self._reply(200, b"{}", "application/json")
        else:
            self._reply(404, b"not found")


def _serve() -> Iterator[Server]:
    srv = Server(("127.0.0.1", 0), Handler)
    srv.reset()
    # A short poll interval: shutdown() waits for the serving loop to notice (0.5 s by default).
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    yield from _serve()


@pytest.fixture()
def site(server: Server) -> str:
    """The server's base URL, with robots.txt and counters reset for this test."""
    server.reset()
    return f"http://127.0.0.1:{server.server_address[1]}"


@pytest.fixture()
def clock(site: str, server: Server) -> VirtualClock:
    """A virtual clock for the fetcher, whose time the server stamps each request's arrival with."""
    return server.clock


@pytest.fixture(scope="module")
def bomb(server: Server) -> bytes:
    """100 MB of zeros gzipped (~100 KB), which the server's /bomb sends; built once, by the tests that need it."""
    server.bomb = _gzip_bomb(100 * MB)
    return server.bomb


FAST = FetchPolicy(
    per_host_delay_s=0.0,
    connect_timeout_s=2.0,
    read_timeout_s=1.0,
    total_deadline_s=5.0,
    backoff_base_s=0.05,
    backoff_cap_s=0.2,
    max_retries=2,
    allow_private=True,
)


def run(policy: FetchPolicy, *urls: str, clock: Any = None, **kw: Any) -> list[FetchResult]:
    """Fetch `urls` with a fresh fetcher pacing on `clock` (a new `VirtualClock` by default: no real pauses)."""

    async def go() -> list[FetchResult]:
        async with asyncio.timeout(HANG_GUARD_S), Fetcher(policy, clock=clock or VirtualClock()) as fetcher:
            if len(urls) == 1:
                return [await fetcher.fetch(urls[0], **kw)]
            return await fetcher.fetch_many(urls)

    try:
        return asyncio.run(go())
    except TimeoutError:
        pytest.fail(f"hang guard: the fetch of {urls} did not end within {HANG_GUARD_S} s")


def fetch_one(policy: FetchPolicy, url: str, **kw: Any) -> FetchResult:
    return run(policy, url, **kw)[0]


def backoff_bounds(policy: FetchPolicy, retries: int) -> list[float]:
    """The most each backoff pause may be: full jitter under base * 2**attempt, capped."""
    return [min(policy.backoff_cap_s, policy.backoff_base_s * 2**attempt) for attempt in range(retries)]


def arrivals(server: Server) -> list[float]:
    """When each request reached the server, on the fetcher's clock (the `clock` fixture's)."""
    return [t for _, t in server.arrivals]


def only_this_server(site: str) -> FetchPolicy:
    """Private addresses refused, except exactly the test server's endpoint."""
    return replace(FAST, allow_private=False, allow_private_for=frozenset({urlsplit(site).netloc}))


# --- well-behaved servers ---------------------------------------------------------


def test_page(site: str) -> None:
    r = fetch_one(FAST, f"{site}/page")
    assert (r.outcome, r.status, r.body) == ("ok", 200, b"<html><p>hello</p></html>")
    assert r.headers["content-type"].startswith("text/html")
    assert r.final_url == r.url and r.redirects == () and r.reason is None
    assert r.fetched_at.tzinfo is not None


def test_user_agent_and_encoding_headers(site: str, server: Server) -> None:
    seen: dict[str, str] = {}
    original = Handler.do_GET

    def spy(self: Handler) -> None:
        seen.update(self.headers.items())
        original(self)

    Handler.do_GET = spy  # type: ignore[method-assign]
    try:
        fetch_one(FAST, f"{site}/page")
    finally:
        Handler.do_GET = original  # type: ignore[method-assign]
    assert "contact" in seen["User-Agent"]
    assert seen["Accept-Encoding"] == "gzip, deflate"


def test_one_redirect(site: str) -> None:
    r = fetch_one(FAST, f"{site}/chain/1")
    assert r.outcome == "ok" and r.body.startswith(b"<html>")
    assert r.redirects == (f"{site}/page",) and r.final_url == f"{site}/page"


def test_redirect_chain_of_three(site: str) -> None:
    r = fetch_one(FAST, f"{site}/chain/3")
    assert r.outcome == "ok"
    assert r.redirects == (f"{site}/chain/2", f"{site}/chain/1", f"{site}/page")


def test_too_many_redirects(site: str) -> None:
    r = fetch_one(replace(FAST, max_redirects=2), f"{site}/chain/3")
    assert (r.outcome, r.reason) == ("refused", "too_many_redirects")


def test_etag_round_trip(site: str) -> None:
    first = fetch_one(FAST, f"{site}/etag")
    assert first.outcome == "ok" and first.headers["etag"] == '"v1"'
    again = fetch_one(FAST, f"{site}/etag", etag=first.headers["etag"])
    assert (again.outcome, again.status, again.body) == ("not_modified", 304, b"")


def test_a_validator_that_is_not_ascii_is_not_sent_back(site: str) -> None:
    """It cannot go in a request header: the URL is fetched whole again instead of failing every time."""
    first = fetch_one(FAST, f"{site}/etag-latin1")
    assert first.outcome == "ok" and first.headers["etag"] and not first.headers["etag"].isascii()
    again = fetch_one(
        FAST, f"{site}/etag-latin1", etag=first.headers["etag"], last_modified=first.headers["last-modified"]
    )
    assert (again.outcome, again.status, again.body) == ("ok", 200, b"<p>v1</p>")


def test_last_modified_round_trip(site: str) -> None:
    first = fetch_one(FAST, f"{site}/lastmod")
    assert first.headers["last-modified"] == LAST_MODIFIED
    again = fetch_one(FAST, f"{site}/lastmod", last_modified=first.headers["last-modified"])
    assert again.outcome == "not_modified"


def test_a_304_to_an_unconditional_request_is_an_error(site: str) -> None:
    r = fetch_one(FAST, f"{site}/always-304")
    assert (r.outcome, r.reason, r.status) == ("error", "unsolicited_304", 304)
    assert "If-None-Match" in r.message
    again = fetch_one(FAST, f"{site}/always-304", etag='"v1"')  # asked conditionally: a 304 is an answer
    assert (again.outcome, again.status) == ("not_modified", 304)
    again = fetch_one(FAST, f"{site}/always-304", last_modified=LAST_MODIFIED)
    assert again.outcome == "not_modified"


def test_not_found_is_a_final_error(site: str, server: Server) -> None:
    r = fetch_one(FAST, f"{site}/missing")
    assert (r.outcome, r.reason, r.status) == ("error", "http_404", 404)
    assert server.hits["/missing"] == 1  # 4xx is not retried


# --- hostile servers --------------------------------------------------------------


def test_slow_drip_ends_at_the_deadline(site: str, server: Server) -> None:
    # A byte every 0.2 s never trips the 1 s read timeout: only the total deadline can end it.
    r = fetch_one(replace(FAST, total_deadline_s=1.0), f"{site}/drip")
    assert (r.outcome, r.reason, r.message) == ("refused", "deadline", "no complete response within 1.0 s")
    assert server.done("/drip").wait(HANG_GUARD_S)
    assert server.sent["/drip"] < 100  # the client hung up long before the 20 s the body takes


def test_stall_after_headers_is_a_read_timeout(site: str) -> None:
    # The server stalls for 3 s, then keeps the connection open: without a read timeout
    # the exchange would end at the 5 s deadline instead ("refused", "deadline").
    r = fetch_one(replace(FAST, read_timeout_s=0.5), f"{site}/stall")
    assert (r.outcome, r.reason) == ("deferred", "read_timeout") and r.retry_at is not None


def test_huge_body_is_refused_early_with_bounded_memory(site: str, server: Server) -> None:
    tracemalloc.start()
    try:
        r = fetch_one(replace(FAST, max_body_bytes=MB), f"{site}/huge")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (r.outcome, r.reason, r.body) == ("refused", "too_large", b"")
    assert peak < 20 * MB
    # The client stopped reading: the server could not push the 200 MB.
    assert server.done("/huge").wait(HANG_GUARD_S)
    assert server.sent["/huge"] < 50 * MB


def test_huge_content_length_is_refused_unread(site: str) -> None:
    r = fetch_one(replace(FAST, max_body_bytes=10), f"{site}/page")
    assert (r.outcome, r.reason) == ("refused", "too_large") and "Content-Length" in r.message


def test_a_size_limit_given_with_the_url_replaces_the_policys(site: str) -> None:
    small = replace(FAST, max_body_bytes=10)
    r = fetch_one(small, f"{site}/page", max_bytes=1000)  # a feed is allowed more than a page
    assert r.outcome == "ok"
    r = fetch_one(FAST, f"{site}/page", max_bytes=10)
    assert (r.outcome, r.reason, r.message) == ("refused", "too_large", "Content-Length 25 > 10 bytes")


def test_gzip_bomb_stops_after_little(site: str, bomb: bytes) -> None:
    tracemalloc.start()
    try:
        r = fetch_one(FAST, f"{site}/bomb")  # default 10 MB decoded budget
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (r.outcome, r.reason) == ("refused", "too_large") and "decoded" in r.message
    assert peak < 40 * MB  # the bomb inflates to 100 MB


def test_redirect_loop(site: str) -> None:
    r = fetch_one(FAST, f"{site}/loop/a")
    assert (r.outcome, r.reason) == ("refused", "redirect_loop")
    assert r.redirects == (f"{site}/loop/b",)


@pytest.mark.parametrize("path", ["/to-metadata", "/to-decimal"])
def test_redirect_to_private_address_is_refused(site: str, path: str) -> None:
    policy = only_this_server(site)
    ok = fetch_one(policy, f"{site}/page")
    assert ok.outcome == "ok"  # the test server itself is allowed...
    r = fetch_one(policy, f"{site}{path}")
    assert (r.outcome, r.reason) == ("refused", "private_address")  # ...where it points is not


@pytest.fixture(scope="module")
def target_server() -> Iterator[Server]:
    yield from _serve()


@pytest.fixture()
def target(target_server: Server) -> Server:
    """A second server on 127.0.0.1 that no policy allows: it must never be asked anything."""
    target_server.reset()
    return target_server


# Spellings of 127.0.0.1 and names of this machine or a private network, as a redirect's
# Location may carry them; "{port}" is the unallowed target server's port.
PRIVATE_REDIRECTS = [
    "0177.0.0.1:{port}",
    "127.000.000.001:{port}",
    "１２７.０.０.１:{port}",  # full-width digits
    "１２７。０。０。１:{port}",  # ideographic full stops
    "１２７．０．０．１:{port}",  # full-width full stops
    "０１７７.0.0.1:{port}",  # full-width octal: 127, not 177
    "０ｘ７ｆ.１:{port}",
    "２１３０７０６４３３:{port}",
    "①②⑦.0.0.1:{port}",
    "127.0.0.1%2e:{port}",
    "LOCALHOST.:{port}",
    "localhost:{port}",
    "Ⓛocalhost:{port}",
    "news.localhost:{port}",
    "localhost.localdomain:{port}",
    "printer.local",
    "router.home.arpa",
    "metadata.google.internal",
    "[::ffff:127.0.0.1]:{port}",
]


@pytest.mark.parametrize("host", PRIVATE_REDIRECTS)
def test_redirect_to_a_private_address_in_any_spelling_is_refused_for_good(
    site: str, target: Server, host: str
) -> None:
    r = fetch_one(only_this_server(site), f"{site}/to?host={quote(host.format(port=target.server_address[1]))}")
    # Final, with the reason the quarantine shows as fetch_private_address: never
    # deferred (which would ask again as if the refusal were transient).
    assert (r.outcome, r.reason, r.retry_at) == ("refused", "private_address", None), r.message
    assert not target.hits  # no request reached the target


@pytest.mark.parametrize(
    "host",
    [
        "１２７.０.０.１",
        "１２７。０。０。１",
        "０１７７.0.0.1",
        "0177.0.0.1",
        "127.000.000.001",
        "①②⑦.0.0.1",
        "127.0.0.1%2e",
    ],
)
def test_hosts_are_read_as_a_browser_reads_them(host: str) -> None:
    assert parse_host_address(host) == ipaddress.IPv4Address("127.0.0.1")
    with pytest.raises(UnsafeURL) as err:
        check_url(f"http://{host}/")
    assert err.value.reason == "private_address"


def test_a_host_ending_in_a_number_that_is_no_address_is_refused() -> None:
    # Arabic-Indic digits are digits to str.isdigit, not to IDNA: "xn--9hbcp.0.0.1".
    assert parse_host_address("١٢٧.0.0.1") is None
    for url in ("http://١٢٧.0.0.1/", "http://1.2.3.256/", "http://08.1.1.1/", "http://a.0x7g.1/", "http://0x+7f.1/"):
        with pytest.raises(UnsafeURL) as err:
            check_url(url)
        assert err.value.reason == "bad_url", url


@pytest.mark.parametrize(
    "name",
    [
        "localhost",
        "LOCALHOST.",
        "a.b.localhost",
        "ｌｏｃａｌｈｏｓｔ",
        "localhost.localdomain",
        "ip6-localhost",
        "nas.local",
        "printer.home.arpa",
        "metadata.google.internal",
        "wiki.corp",
        "box.lan",
    ],
)
def test_private_names_are_refused_before_any_lookup(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_lookup(*args: object, **kw: object) -> object:
        raise AssertionError(f"looked up {args[0]!r}")

    monkeypatch.setattr(socket, "getaddrinfo", no_lookup)
    with pytest.raises(UnsafeURL) as err:
        check_url(f"http://{name}/")
    assert err.value.reason == "private_address"
    with pytest.raises(UnsafeURL) as err:
        resolve(ascii_host(name), 80, allow_private=False)
    assert err.value.reason == "private_address"


def test_private_names_are_data_with_reasons() -> None:
    assert all(name == name.lower().strip(".") and why for name, why in PRIVATE_NAMES)
    for name in ("localhost.example.com", "mylocal", "internal.example.org", "example.com"):
        check_url(f"http://{name}/")  # only the name itself and names under it are private


def test_a_private_name_may_be_allowed_by_its_endpoint() -> None:
    assert check_url("http://localhost:8080/", allow_private=True) == "http://localhost:8080/"
    assert check_url("http://localhost:8080/", allow_private_for={"localhost:8080"}) == "http://localhost:8080/"
    with pytest.raises(UnsafeURL):
        check_url("http://localhost:8081/", allow_private_for={"localhost:8080"})


def test_the_name_checked_is_the_name_looked_up(site: str, server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    """An IDN host is looked up in the ASCII form `check_url` gave, not re-encoded by other rules."""
    asked: list[str] = []
    real = socket.getaddrinfo

    def resolver(host: str, port: object, *args: Any, **kw: Any) -> Any:
        asked.append(host)  # every name is this test's server: nothing leaves the machine
        return real("127.0.0.1", port, *args, **kw)

    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    port = urlsplit(site).port
    # IDNA 2008 "faß" (xn--fa-hia); Python's resolver codec (IDNA 2003) would ask for "fass".
    r = fetch_one(only_this_server(site), f"http://xn--fa-hia.example:{port}/page")
    assert r.outcome == "ok"
    assert set(asked) == {"xn--fa-hia.example"}


def test_private_endpoint_allowance_is_exact(site: str) -> None:
    port = urlsplit(site).port
    r = fetch_one(only_this_server(site), f"http://2130706433:{port}/page")
    assert r.outcome == "ok"  # the same endpoint, spelt as a number
    for url in ("http://127.0.0.2/page", f"http://[::1]:{port}/page", "http://localhost/"):
        r = fetch_one(only_this_server(site), url)
        assert (r.outcome, r.reason) == ("refused", "private_address"), url
    r = fetch_one(replace(FAST, allow_private=False), f"{site}/page")
    assert (r.outcome, r.reason) == ("refused", "private_address")


def test_429_retry_after_seconds(site: str, server: Server, clock: VirtualClock) -> None:
    r = fetch_one(FAST, f"{site}/rate-limited", clock=clock)
    assert r.outcome == "ok" and server.hits["/rate-limited"] == 2
    assert clock.sleeps == [7.0]  # what Retry-After asked, not a backoff of its own
    assert arrivals(server) == [0.0, 0.0, 7.0]  # robots.txt, the 429, the retry


def test_503_then_ok(site: str, server: Server, clock: VirtualClock) -> None:
    r = fetch_one(FAST, f"{site}/unavailable", clock=clock)
    assert r.outcome == "ok" and server.hits["/unavailable"] == 2
    (pause,) = clock.sleeps
    assert 0 < pause <= FAST.backoff_base_s  # the first backoff


def test_retry_after_http_date(site: str, server: Server, clock: VirtualClock) -> None:
    r = fetch_one(FAST, f"{site}/rate-limited-date", clock=clock)
    assert r.outcome == "ok" and server.hits["/rate-limited-date"] == 2
    (pause,) = clock.sleeps
    # A minute after the server wrote the date, less what it cut (its fraction of a second)
    # and the moment since: far more than any backoff of FAST's.
    assert 50 < pause <= 60


def test_retry_after_too_long_is_deferred(site: str, server: Server, clock: VirtualClock) -> None:
    before = datetime.now(UTC)
    r = fetch_one(FAST, f"{site}/come-back-tomorrow", clock=clock)
    assert (r.outcome, r.reason, r.status) == ("deferred", "retry_after_too_long", 503)
    assert r.retry_at is not None and r.retry_at >= before + timedelta(seconds=86000)
    assert server.hits["/come-back-tomorrow"] == 1 and clock.sleeps == []


@pytest.mark.parametrize(
    "value",
    ["99999999999999999999", "9" * 400, "Fri, 31 Dec 9999 23:59:59 GMT", "Fri, 31 Dec 9999 23:59:59 -2359"],
)
def test_a_retry_after_of_centuries_defers_for_at_most_a_week(
    site: str, server: Server, value: str, caplog: pytest.LogCaptureFixture
) -> None:
    before = datetime.now(UTC)
    r = fetch_one(FAST, f"{site}/retry-after?value={quote(value)}")
    assert (r.outcome, r.reason, r.status) == ("deferred", "retry_after_too_long", 503), r.message
    assert r.retry_at is not None
    assert before + timedelta(days=6) < r.retry_at <= datetime.now(UTC) + timedelta(seconds=MAX_RETRY_AFTER_S)
    assert server.hits[f"/retry-after?value={quote(value)}"] == 1
    assert not [rec for rec in caplog.records if rec.levelno >= logging.ERROR]  # no traceback, no "internal"


@pytest.mark.parametrize(
    "value",
    [
        "soon",
        "\N{SUPERSCRIPT TWO}",  # str.isdigit() says yes, float() says no
        "-5",
        "1.5",
        "Wed, 21 Oct 99999999999999999999999 07:28:00 GMT",  # OverflowError in the date parser
        "Wed, 21 Oct 2015 07:28:00 +9999",
        "Wed, 99 Oct 2015 07:28:00 GMT",
    ],
)
def test_an_unreadable_retry_after_is_ignored(
    site: str, server: Server, clock: VirtualClock, value: str, caplog: pytest.LogCaptureFixture
) -> None:
    r = fetch_one(FAST, f"{site}/retry-after?value={quote(value)}", clock=clock)
    # As if there were no Retry-After: retried with backoff, then deferred for this run.
    assert (r.outcome, r.reason, r.status) == ("deferred", "http_503", 503), r.message
    assert server.hits[f"/retry-after?value={quote(value)}"] == FAST.max_retries + 1
    assert len(clock.sleeps) == FAST.max_retries
    assert all(0 < s <= most for s, most in zip(clock.sleeps, backoff_bounds(FAST, FAST.max_retries), strict=True))
    assert not [rec for rec in caplog.records if rec.levelno >= logging.ERROR]


def test_retries_exhausted_is_deferred(site: str, server: Server, clock: VirtualClock) -> None:
    before = datetime.now(UTC)
    r = fetch_one(FAST, f"{site}/down", clock=clock)
    assert (r.outcome, r.reason) == ("deferred", "http_503") and r.retry_at is not None
    assert server.hits["/down"] == FAST.max_retries + 1
    assert len(clock.sleeps) == FAST.max_retries
    assert all(0 < s <= most for s, most in zip(clock.sleeps, backoff_bounds(FAST, FAST.max_retries), strict=True))
    # Deferred by one more backoff, not to the next run.
    most = backoff_bounds(FAST, FAST.max_retries + 1)[-1]
    assert before <= r.retry_at <= datetime.now(UTC) + timedelta(seconds=most)


def test_backoff_doubles_up_to_its_cap_with_full_jitter(
    site: str, server: Server, clock: VirtualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    drawn: list[tuple[float, float]] = []

    def highest(low: float, high: float) -> float:
        drawn.append((low, high))
        return high

    monkeypatch.setattr(random, "uniform", highest)
    policy = replace(FAST, backoff_base_s=1.0, backoff_cap_s=3.0, max_retries=4)
    r = fetch_one(policy, f"{site}/down", clock=clock)
    assert (r.outcome, r.reason) == ("deferred", "http_503") and server.hits["/down"] == 5
    assert drawn == [(0, 1.0), (0, 2.0), (0, 3.0), (0, 3.0), (0, 3.0)]  # from zero: full jitter
    assert clock.sleeps == [1.0, 2.0, 3.0, 3.0]  # the last draw dates the deferral instead
    assert arrivals(server) == [0.0, 0.0, 1.0, 3.0, 6.0, 9.0]  # robots.txt, then the five attempts


def test_connection_refused_is_retried_then_deferred() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again before the fetch: nothing listens
    clock = VirtualClock()
    r = fetch_one(FAST, f"http://127.0.0.1:{port}/", clock=clock)
    assert (r.outcome, r.reason) == ("deferred", "connect")
    assert len(clock.sleeps) == FAST.max_retries  # retried (robots.txt, here) with backoff


def test_wrong_content_type_is_refused(site: str) -> None:
    r = fetch_one(FAST, f"{site}/json")
    assert (r.outcome, r.reason, r.body) == ("refused", "content_type", b"")


# --- robots.txt and pacing --------------------------------------------------------


def test_robots_disallow(site: str, server: Server) -> None:
    server.robots = (200, "User-agent: newsflow\nDisallow: /json\n\nUser-agent: *\nDisallow: /\n")
    results = run(FAST, f"{site}/page", f"{site}/json")
    assert [(r.outcome, r.reason) for r in results] == [("ok", None), ("refused", "robots")]
    assert server.hits["/robots.txt"] == 1 and "/json" not in server.hits


def test_robots_checked_on_each_redirect_hop(site: str, server: Server) -> None:
    server.robots = (200, "User-agent: *\nDisallow: /page\n")
    r = fetch_one(FAST, f"{site}/chain/1")
    assert (r.outcome, r.reason, r.final_url) == ("refused", "robots", f"{site}/page")
    assert "/page" not in server.hits


def test_robots_server_error_disallows_all(site: str, server: Server) -> None:
    server.robots = (500, "oops")
    results = run(FAST, f"{site}/page", f"{site}/etag")
    assert {(r.outcome, r.reason) for r in results} == {("deferred", "robots_unavailable")}
    assert set(server.hits) == {"/robots.txt"} and server.hits["/robots.txt"] == FAST.max_retries + 1


def test_robots_not_found_allows_all(site: str, server: Server) -> None:
    r = fetch_one(FAST, f"{site}/page")
    assert r.outcome == "ok" and server.hits["/robots.txt"] == 1


def test_crawl_delay_spaces_requests(site: str, server: Server, clock: VirtualClock) -> None:
    server.robots = (200, "User-agent: *\nCrawl-delay: 0.5\n")
    results = run(FAST, f"{site}/page", f"{site}/etag", f"{site}/lastmod", clock=clock)
    assert all(r.ok for r in results)
    # robots.txt, then each page half a second after the request before it (robots.txt's included).
    assert arrivals(server) == [0.0, 0.5, 1.0, 1.5]


def test_a_crawl_delay_over_the_policys_most_is_clamped(
    site: str, server: Server, clock: VirtualClock, caplog: pytest.LogCaptureFixture
) -> None:
    server.robots = (200, "User-agent: *\nCrawl-delay: 86400\n")
    results = run(replace(FAST, max_crawl_delay_s=20.0), f"{site}/page", f"{site}/etag", clock=clock)
    assert all(r.ok for r in results)
    assert arrivals(server) == [0.0, 20.0, 40.0]
    assert any("Crawl-delay 86400" in rec.getMessage() and "clamped" in rec.getMessage() for rec in caplog.records)


def test_per_host_delay_spaces_requests(site: str, server: Server, clock: VirtualClock) -> None:
    results = run(replace(FAST, per_host_delay_s=0.3), f"{site}/page", f"{site}/etag", f"{site}/lastmod", clock=clock)
    assert all(r.ok for r in results)
    assert arrivals(server) == pytest.approx([0.0, 0.3, 0.6, 0.9])  # robots.txt, then the three pages
    assert [path for path, _ in server.arrivals] == ["/robots.txt", "/page", "/etag", "/lastmod"]  # in turn


def test_the_default_clock_is_the_event_loops() -> None:
    async def go() -> None:
        async with Fetcher(FAST) as fetcher:
            assert isinstance(fetcher.clock, LoopClock)
            loop = asyncio.get_running_loop()
            before = loop.time()
            now = fetcher.clock.time()
            assert before <= now <= loop.time()

    asyncio.run(go())


def test_global_concurrency_bounds_requests_across_hosts(site: str, server: Server) -> None:
    port = urlsplit(site).port
    # Two host names, two gates: sent at once, unless the global cap holds one back.
    # /together answers only when both requests are at the server at the same time.
    room = replace(FAST, read_timeout_s=10.0, total_deadline_s=10.0)  # for the second to come on a loaded machine
    results = run(room, f"http://127.0.0.1:{port}/together", f"http://localhost:{port}/together")
    assert [r.status for r in results] == [200, 200]
    assert server.most_in_flight == 2
    server.reset()
    results = run(replace(FAST, global_concurrency=1), f"http://127.0.0.1:{port}/slow", f"http://localhost:{port}/slow")
    assert all(r.ok for r in results)
    assert server.most_in_flight == 1


def test_policy_needs_a_contact() -> None:
    with pytest.raises(ConfigError):
        FetchPolicy(user_agent="newsflow/0.1")


# --- address and URL safety (pure) -----------------------------------------------


@pytest.mark.parametrize(
    "host", ["2130706433", "0177.0.0.1", "0x7f.1", "127.1", "0x7f000001", "0x7F.0.0.1", "127.0.0.1.", "017700000001"]
)
def test_numeric_spellings_of_loopback(host: str) -> None:
    assert parse_host_address(host) == ipaddress.IPv4Address("127.0.0.1")
    with pytest.raises(UnsafeURL) as err:
        check_url(f"http://{host}/")
    assert err.value.reason == "private_address"


@pytest.mark.parametrize("host", ["example.com", "1.2.3.4.5", "256.0.0.1", "1..2", "08.1.1.1", "4294967296"])
def test_names_and_invalid_numbers_are_not_addresses(host: str) -> None:
    assert parse_host_address(host) is None


def test_bracketed_ipv6() -> None:
    assert parse_host_address("[::1]") == ipaddress.IPv6Address("::1")
    assert check_url("http://[2606:4700::1111]:8080/x#frag") == "http://[2606:4700::1111]:8080/x"


@pytest.mark.parametrize(
    ("address", "why"),
    [
        ("127.0.0.1", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("100.64.0.1", "cgnat"),
        ("100.127.255.254", "cgnat"),
        ("169.254.169.254", "link_local"),
        ("224.0.0.1", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("255.255.255.255", "broadcast"),
        ("240.0.0.1", "reserved"),
        ("::1", "loopback"),
        ("::", "unspecified"),
        ("fc00::1", "private"),
        ("fd12:3456::1", "private"),
        ("fe80::1", "link_local"),
        ("ff02::1", "multicast"),
        ("::ffff:127.0.0.1", "loopback (IPv4-mapped)"),
        ("::ffff:169.254.169.254", "link_local (IPv4-mapped)"),
        ("64:ff9b::10.0.0.1", "private (NAT64)"),
        ("64:ff9b::a9fe:a9fe", "link_local (NAT64)"),
        ("2002:7f00:0001::", "loopback (6to4)"),
        ("2002:0a00:0001::1", "private (6to4)"),
        ("2002:6440:0001::1", "cgnat (6to4)"),
    ],
)
def test_forbidden_addresses(address: str, why: str) -> None:
    assert is_forbidden(ipaddress.ip_address(address), allow_private=False) == why


@pytest.mark.parametrize("address", ["8.8.8.8", "1.1.1.1", "2606:4700::1111", "::ffff:8.8.8.8", "2002:0808:0808::1"])
def test_public_addresses(address: str) -> None:
    assert is_forbidden(ipaddress.ip_address(address)) is None


def test_allow_private_keeps_unspecified_and_multicast_shut() -> None:
    assert is_forbidden(ipaddress.ip_address("127.0.0.1"), allow_private=True) is None
    assert is_forbidden(ipaddress.ip_address("10.0.0.1"), allow_private=True) is None
    assert is_forbidden(ipaddress.ip_address("0.0.0.0"), allow_private=True) == "unspecified"
    assert is_forbidden(ipaddress.ip_address("239.1.1.1"), allow_private=True) == "multicast"


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://example.com/", "scheme"),
        ("file:///etc/passwd", "scheme"),
        ("gopher://example.com/", "scheme"),
        ("javascript:alert(1)", "scheme"),
        ("example.com/page", "scheme"),
        ("http://user:pass@example.com/", "credentials"),
        ("http://user@example.com/", "credentials"),
        ("http:///nohost", "bad_url"),
        ("http://exa mple.com/", "bad_url"),
        ("http://example.com:99999/", "bad_url"),
        ("http://[::1/", "bad_url"),
        ("http://169.254.169.254/latest/meta-data/", "private_address"),
        ("http://[::ffff:7f00:1]/", "private_address"),
        ("https://100.100.100.200/", "private_address"),
    ],
)
def test_unsafe_urls(url: str, reason: str) -> None:
    with pytest.raises(UnsafeURL) as err:
        check_url(url)
    assert err.value.reason == reason


def test_check_url_canonicalises() -> None:
    assert check_url("HTTP://Example.COM:80/a?b=1#top") == "http://example.com/a?b=1"
    assert check_url("https://example.com") == "https://example.com/"
    assert check_url("http://0x7f.1:8080/", allow_private=True) == "http://127.0.0.1:8080/"


def test_resolve_refuses_names_of_private_addresses() -> None:
    with pytest.raises(UnsafeURL) as err:
        resolve("localhost", 80, allow_private=False)
    assert err.value.reason == "private_address"
    assert ipaddress.ip_address("127.0.0.1") in resolve("localhost", 80, allow_private=True)
