"""The async fetcher: safe, polite and bounded GETs over httpx.

One `Fetcher` per run. For each URL it checks the address (`safety`), asks the host's
robots.txt (fetched once per origin), waits its turn for the host (one request at a
time per host, `per_host_delay_s` or the robots Crawl-delay between request starts,
a global cap on requests in flight), then sends a GET whose connection goes to an
address that was checked. Redirects are followed one hop at a time, each hop checked
again: the raw Location goes to `check_url`, so a refused hop is a final "refused"
("private_address"), never a network error. Retries (connect errors, 429, 5xx) back
off exponentially with full jitter or as long as `Retry-After` asks; longer than
`retry_after_cap_s` and the URL is deferred, for at most `MAX_RETRY_AFTER_S` (a server
asking for centuries is asked again next week). A 304 is "not_modified" only as the
answer to a conditional request; to any other request it is an error.

Every limit holds against a hostile server: `total_deadline_s` bounds one exchange
(headers and body, so a slow drip cannot hold it), bodies are decoded here under a
byte budget (a gzip bomb stops once `max_body_bytes` decoded bytes exist, not after
inflating a whole network chunk), and an oversized Content-Length is refused unread.

Pacing (the per-host gap, Crawl-delay, backoff, Retry-After) runs on a `Clock`, the event
loop's by default; a test passes one that records each pause and returns at once.
Timeouts and deadlines stay on the event loop: they bound what a server takes in real time.
"""

from __future__ import annotations

import asyncio
import dataclasses
import email.utils
import logging
import random
import re
import socket
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal, Protocol
from urllib.parse import urljoin, urlsplit

import httpx
from protego import Protego

from pipeline.errors import ConfigError
from pipeline.fetch.safety import DEFAULT_PORTS, UnsafeURL, aresolve, check_url

__all__ = [
    "DEFAULT_CONTENT_TYPES",
    "DEFAULT_USER_AGENT",
    "MAX_RETRY_AFTER_S",
    "Clock",
    "FetchPolicy",
    "FetchResult",
    "Fetcher",
    "LoopClock",
    "Outcome",
]

log = logging.getLogger(__name__)

Outcome = Literal["ok", "not_modified", "deferred", "refused", "error"]

DEFAULT_USER_AGENT = "newsflow/0.1 (+contact: set fetch.contact in sources.toml)"
DEFAULT_CONTENT_TYPES = frozenset(
    {
        "text/html",
        "application/xhtml+xml",
        "application/rss+xml",
        "application/atom+xml",
        "application/xml",
        "text/xml",
        "text/plain",
        # .xml.gz sitemaps are served as files, not with Content-Encoding.
        "application/gzip",
        "application/x-gzip",
    }
)
# Response headers kept on a FetchResult.
KEPT_HEADERS = ("content-type", "etag", "last-modified", "content-encoding", "retry-after", "location")
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
# The longest a URL is deferred for a Retry-After: a server may ask for 10**20 seconds or a
# date in the year 9999, and neither should retire a URL for good (nor overflow a datetime).
# A week: longer than any maintenance window a news site announces, short enough to notice.
MAX_RETRY_AFTER_S = 7 * 24 * 3600.0
# A user agent must say how to reach its operator: a URL, an e-mail address or "contact".
CONTACT = re.compile(r"https?://|@|contact", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class FetchPolicy:
    """How politely and how defensively to fetch; the defaults suit a public crawl.

    `allow_private_for` holds exact endpoints (`"127.0.0.1:8080"`, `"[::1]:8080"`,
    `"localhost:8080"`) that may be contacted although private, for a local test server
    or an intranet source; `allow_private` opens every private address and name (only
    unspecified and multicast stay shut).
    """

    user_agent: str = DEFAULT_USER_AGENT
    per_host_delay_s: float = 1.0
    global_concurrency: int = 8
    connect_timeout_s: float = 10.0
    read_timeout_s: float = 20.0
    total_deadline_s: float = 60.0
    max_body_bytes: int = 10 * 1024 * 1024
    max_redirects: int = 5
    content_types: frozenset[str] = DEFAULT_CONTENT_TYPES
    max_retries: int = 4
    backoff_base_s: float = 1.0
    backoff_cap_s: float = 60.0
    retry_after_cap_s: float = 300.0
    # A robots.txt Crawl-delay above this is clamped (and logged), so one site cannot stall a run.
    max_crawl_delay_s: float = 60.0
    # RFC 9309 asks parsers to read at least 500 KiB; the rest is ignored.
    robots_max_bytes: int = 500 * 1024
    allow_private: bool = False
    allow_private_for: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if not CONTACT.search(self.user_agent):
            raise ConfigError(f"fetch user agent {self.user_agent!r} must include a contact URL or e-mail address")
        if self.global_concurrency < 1 or self.max_retries < 0 or self.max_redirects < 0:
            raise ConfigError("fetch policy: global_concurrency >= 1, max_retries >= 0 and max_redirects >= 0")

    @property
    def robots_agent(self) -> str:
        """The product token robots.txt groups are matched against ("newsflow")."""
        return self.user_agent.split("/")[0].split()[0]


@dataclass(frozen=True, slots=True)
class FetchResult:
    """What fetching one URL came to; `reason` and `message` explain any outcome but "ok"."""

    url: str
    final_url: str
    outcome: Outcome
    status: int | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    fetched_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    redirects: tuple[str, ...] = ()  # the redirect targets followed, in order; the last is `final_url`
    reason: str | None = None
    message: str = ""
    retry_at: datetime | None = None  # for "deferred": not before this time

    @property
    def ok(self) -> bool:
        """True when a body was fetched."""
        return self.outcome == "ok"


@dataclass(frozen=True, slots=True)
class _Exchange:
    """One HTTP exchange: a response to interpret (`outcome` None) or a settled outcome."""

    status: int | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    outcome: Outcome | None = None
    reason: str | None = None
    message: str = ""
    retry: bool = False  # transient: worth another attempt
    retry_after: float | None = None  # seconds the server asked us to wait
    retry_at: datetime | None = None


def _settled(
    outcome: Outcome,
    reason: str,
    message: str,
    *,
    status: int | None = None,
    headers: Mapping[str, str] | None = None,
    retry_at: datetime | None = None,
) -> _Exchange:
    """An exchange that ended in an outcome of its own (refused, deferred, error)."""
    return _Exchange(status, headers or {}, outcome=outcome, reason=reason, message=message, retry_at=retry_at)


class _TooLarge(Exception):
    """The decoded body passed its byte budget."""


class _UnsupportedEncoding(Exception):
    """A Content-Encoding we did not ask for and cannot decode under a budget."""


class Clock(Protocol):
    """What the fetcher paces requests by: a monotonic time in seconds, and a way to wait."""

    def time(self) -> float:
        """Now, in seconds on a clock that never goes back."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait `seconds`."""
        ...


class LoopClock:
    """The running event loop's clock: real time."""

    def time(self) -> float:
        """The event loop's time."""
        return asyncio.get_running_loop().time()

    async def sleep(self, seconds: float) -> None:
        """`asyncio.sleep`."""
        await asyncio.sleep(seconds)


class _HostGate:
    """Per-host pacing: one request at a time, `delay` seconds between request starts."""

    def __init__(self, delay: float, clock: Clock) -> None:
        self.lock = asyncio.Lock()
        self.delay = delay
        self.clock = clock
        self.last_start: float | None = None
        self.not_before = 0.0  # set by backoff and Retry-After: the whole host waits

    async def wait_turn(self) -> None:
        """Sleep until this host may be sent the next request (call with `lock` held)."""
        ready = self.not_before
        if self.last_start is not None:
            ready = max(ready, self.last_start + self.delay)
        pause = ready - self.clock.time()
        if pause > 0:
            await self.clock.sleep(pause)


class _BoundedDecoder:
    """Content-Encoding decoding that never produces more than it is asked for."""

    def __init__(self, coding: str) -> None:
        self.coding = coding
        self._wbits = 0
        if coding in {"gzip", "x-gzip"}:
            self._wbits = 16 + zlib.MAX_WBITS
        elif coding == "deflate":
            self._wbits = zlib.MAX_WBITS  # zlib-wrapped; raw deflate is tried on failure
        elif coding not in {"", "identity"}:
            raise _UnsupportedEncoding(coding)
        self._z = zlib.decompressobj(self._wbits) if coding not in {"", "identity"} else None
        self._started = False

    def decode(self, data: bytes, budget: int) -> bytes:
        """Decode `data`, stopping once `budget` bytes are out (the caller then gives up)."""
        if self._z is None:
            return data
        out = bytearray()
        while data and len(out) < budget:
            try:
                out += self._z.decompress(data, budget - len(out))
            except zlib.error:
                if self.coding != "deflate" or self._started:
                    raise
                self._z = zlib.decompressobj(-zlib.MAX_WBITS)  # servers that send raw deflate
                self._started = True
                continue
            self._started = True
            if self._z.eof:
                data = self._z.unused_data
                if data and self.coding != "deflate":
                    self._z = zlib.decompressobj(self._wbits)  # gzip allows several members
                else:
                    break
            else:
                data = self._z.unconsumed_tail
        return bytes(out)


class _PinnedTransport(httpx.AsyncBaseTransport):
    """Connects to an address `safety.resolve` approved, keeping Host, SNI and certificate checks on the name.

    One connection pool per host name, so a TLS connection verified for one name is
    never reused for another name that happens to share its address.
    """

    def __init__(self, policy: FetchPolicy) -> None:
        self._policy = policy
        self._pools: dict[str, httpx.AsyncHTTPTransport] = {}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Resolve and check the host, then send to the first checked address that accepts."""
        url = request.url
        # The ASCII host `check_url` produced: `url.host` would be its IDNA-decoded form,
        # which the resolver re-encodes by other rules ("xn--fa-hia.de" is not "fass.de").
        host = url.raw_host.decode("ascii")
        port = url.port or DEFAULT_PORTS[url.scheme]
        addrs = await aresolve(host, port, self._policy.allow_private, self._policy.allow_private_for)
        pool = self._pools.get(host)
        if pool is None:
            pool = self._pools[host] = httpx.AsyncHTTPTransport(
                limits=httpx.Limits(max_connections=4, max_keepalive_connections=1), trust_env=False
            )
        extensions = dict(request.extensions)
        if url.scheme == "https":
            extensions["sni_hostname"] = host
        error: httpx.ConnectError | None = None
        for addr in addrs:
            pinned = httpx.Request(
                request.method,
                url.copy_with(host=str(addr)),
                headers=request.headers,  # carries Host: the original name
                stream=request.stream,
                extensions=extensions,
            )
            try:
                return await pool.handle_async_request(pinned)
            except httpx.ConnectError as exc:
                error = exc  # try the next address of the name
        assert error is not None  # resolve() never returns an empty list
        raise error

    async def aclose(self) -> None:
        """Close every host's pool."""
        pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            await pool.aclose()


def _retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a Retry-After header (delay-seconds or HTTP-date), or None if unreadable.

    The value is the server's, unbounded (`inf` for a number too long for a float):
    whoever turns it into a time caps it first.
    """
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():  # str.isdigit() alone accepts "²", which float() refuses
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):  # OverflowError: a year of 20 digits
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


class Fetcher:
    """Fetches URLs under a `FetchPolicy`; use as `async with Fetcher(policy) as f`.

    `transport` (an httpx transport, e.g. `httpx.MockTransport` in tests, or a caller's
    own proxying one) receives the requests instead of the fetcher's own, which connects
    only to the addresses `safety.resolve` approves: every URL is still checked by
    `check_url`, but the address check is then the transport's business. The caller
    keeps ownership of a transport it passes (the fetcher does not close it). `clock`
    paces the requests (default: the event loop's).
    """

    def __init__(
        self,
        policy: FetchPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        *,
        clock: Clock | None = None,
    ) -> None:
        self.policy = policy or FetchPolicy()
        self.clock: Clock = clock or LoopClock()
        p = self.policy
        # Requests go to the transport itself, not through an httpx.AsyncClient: a client
        # parses every Location header its own way before we see it, and one it cannot
        # parse ("http://0177.0.0.1/") became a network error, so a refused redirect was
        # deferred. Here the raw header reaches `check_url`, the one parser of hosts.
        self._own_transport = transport is None
        self._transport: httpx.AsyncBaseTransport = transport or _PinnedTransport(p)
        self._timeout = httpx.Timeout(
            connect=p.connect_timeout_s, read=p.read_timeout_s, write=p.read_timeout_s, pool=p.total_deadline_s
        )
        self._headers = {
            "User-Agent": p.user_agent,
            # Only what _BoundedDecoder can inflate under a budget.
            "Accept-Encoding": "gzip, deflate",
            "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.5",
        }
        self._semaphore = asyncio.Semaphore(p.global_concurrency)
        self._gates: dict[str, _HostGate] = {}
        self._robots: dict[str, Protego | _Exchange] = {}  # origin -> rules, or the outcome of all its URLs
        self._robots_locks: dict[str, asyncio.Lock] = {}

    async def __aenter__(self) -> Fetcher:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close all connections (of the fetcher's own transport; a transport passed in stays open)."""
        if self._own_transport:
            await self._transport.aclose()

    async def fetch_many(self, urls: Iterable[str]) -> list[FetchResult]:
        """Fetch every URL concurrently under the policy's limits; results in input order."""
        return list(await asyncio.gather(*(self.fetch(u) for u in urls)))

    async def fetch(
        self, url: str, *, etag: str | None = None, last_modified: str | None = None, max_bytes: int | None = None
    ) -> FetchResult:
        """Fetch one URL, conditionally if `etag`/`last_modified` are given; never raises for the URL's sake.

        `max_bytes` replaces the policy's `max_body_bytes` for this URL (a feed is not a page).
        """
        started = datetime.now(UTC)
        try:
            result = await self._fetch(url, etag, last_modified, max_bytes)
        except Exception as exc:  # a bug here must not sink the other URLs of the run
            log.exception("fetch %s failed unexpectedly", url)
            result = FetchResult(url, url, "error", reason="internal", message=repr(exc), fetched_at=started)
        log.log(
            logging.DEBUG if result.outcome in {"ok", "not_modified"} else logging.INFO,
            "fetch %s -> %s %s %s",
            url,
            result.outcome,
            result.status,
            result.reason or "",
        )
        return result

    async def _fetch(self, url: str, etag: str | None, last_modified: str | None, max_bytes: int | None) -> FetchResult:
        p = self.policy
        headers: dict[str, str] = {}
        # A validator a server sent in another encoding cannot go back in a header (they are
        # ASCII): such a URL is fetched whole, as it would be with no validator.
        if etag and _sendable(etag):
            headers["If-None-Match"] = etag
        if last_modified and _sendable(last_modified):
            headers["If-Modified-Since"] = last_modified
        redirects: list[str] = []

        def result(current: str, outcome: Outcome, ex: _Exchange | None = None, **kw: object) -> FetchResult:
            if ex is not None:
                kw = {
                    "status": ex.status,
                    "headers": ex.headers,
                    "body": ex.body,
                    "reason": ex.reason,
                    "message": ex.message,
                    "retry_at": ex.retry_at,
                } | kw
            return FetchResult(url, current, outcome, redirects=tuple(redirects), **kw)  # type: ignore[arg-type]

        try:
            current = check_url(url, p.allow_private, allow_private_for=p.allow_private_for)
        except UnsafeURL as exc:
            return result(url, "refused", reason=exc.reason, message=exc.message)
        seen = {current}
        while True:
            denied = await self._robots_denial(current)
            if denied is not None:
                return result(current, denied.outcome or "refused", denied)
            ex = await self._exchange(current, headers, max_bytes=max_bytes)
            if ex.outcome is not None:
                return result(current, ex.outcome, ex)
            status = ex.status or 0
            if status in REDIRECT_STATUSES and ex.headers.get("location"):
                try:
                    target = check_url(
                        urljoin(current, ex.headers["location"]),
                        p.allow_private,
                        allow_private_for=p.allow_private_for,
                    )
                except UnsafeURL as exc:
                    return result(current, "refused", ex, reason=exc.reason, message=f"redirect refused: {exc}")
                if target in seen:
                    return result(current, "refused", ex, reason="redirect_loop", message=f"redirect back to {target}")
                if len(redirects) >= p.max_redirects:
                    return result(
                        current, "refused", ex, reason="too_many_redirects", message=f"more than {p.max_redirects}"
                    )
                redirects.append(target)
                seen.add(target)
                current = target
                continue
            if status == 304:
                if not headers:
                    # Nothing was asked to be compared with: "unchanged" would count a page never stored.
                    return result(
                        current,
                        "error",
                        ex,
                        reason="unsolicited_304",
                        message="HTTP 304 Not Modified to a request without If-None-Match or If-Modified-Since",
                    )
                return result(current, "not_modified", ex)
            if 200 <= status < 300:
                return result(current, "ok", ex)
            return result(current, "error", ex, reason=f"http_{status}", message=f"HTTP {status}")

    def _gate(self, url: str) -> _HostGate:
        host = urlsplit(url).hostname or ""
        gate = self._gates.get(host)
        if gate is None:
            gate = self._gates[host] = _HostGate(self.policy.per_host_delay_s, self.clock)
        return gate

    async def _robots_denial(self, url: str) -> _Exchange | None:
        """None if robots.txt lets us fetch `url`; otherwise why not (fetching the rules once per origin)."""
        origin = _origin(url)
        lock = self._robots_locks.setdefault(origin, asyncio.Lock())
        async with lock:
            rules = self._robots.get(origin)
            if rules is None:
                rules = self._robots[origin] = await self._load_robots(origin)
                if isinstance(rules, Protego):
                    delay = rules.crawl_delay(self.policy.robots_agent)
                    if delay:
                        if delay > self.policy.max_crawl_delay_s:
                            log.warning("%s asks for Crawl-delay %s s; clamped", origin, delay)
                        gate = self._gate(url)
                        gate.delay = max(gate.delay, min(float(delay), self.policy.max_crawl_delay_s))
        if isinstance(rules, _Exchange):
            return rules
        if not rules.can_fetch(url, self.policy.robots_agent):
            return _settled("refused", "robots", f"robots.txt of {origin} disallows it")
        return None

    async def _load_robots(self, origin: str) -> Protego | _Exchange:
        """The origin's robots.txt rules, or the settled outcome of every URL of the origin.

        RFC 9309: 4xx means no rules (allow all); 5xx or no answer means disallow all, which
        defers the URLs ("robots_unavailable", or the network failure's own reason).
        """
        url = f"{origin}/robots.txt"

        def unavailable(reason: str, message: str) -> _Exchange:
            return _settled("deferred", reason, f"robots.txt of {origin}: {message}", retry_at=_soon())

        for _ in range(5):  # RFC 9309: follow at least five redirects
            ex = await self._exchange(url, {}, robots=True)
            status = ex.status or 0
            if ex.outcome is not None:
                if ex.reason == "private_address" and url.startswith(origin + "/"):
                    return ex  # the origin itself may not be contacted
                if ex.outcome == "error" or (ex.status is None and ex.outcome == "deferred"):
                    return dataclasses.replace(ex, message=f"robots.txt of {origin}: {ex.message}")
                return unavailable("robots_unavailable", f"{ex.reason} {ex.message}")
            if status in REDIRECT_STATUSES and ex.headers.get("location"):
                try:
                    url = check_url(
                        urljoin(url, ex.headers["location"]),
                        self.policy.allow_private,
                        allow_private_for=self.policy.allow_private_for,
                    )
                except UnsafeURL as exc:
                    return unavailable("robots_unavailable", f"redirects to a refused URL: {exc}")
                continue
            if 200 <= status < 300:
                return Protego.parse(ex.body.decode("utf-8", errors="replace"))
            if 400 <= status < 500:
                return Protego.parse("")
            return unavailable("robots_unavailable", f"HTTP {status}")
        return unavailable("robots_unavailable", "too many redirects")

    async def _exchange(
        self, url: str, headers: Mapping[str, str], *, robots: bool = False, max_bytes: int | None = None
    ) -> _Exchange:
        """One request with its retries: a response to interpret, or a settled outcome."""
        p = self.policy
        gate = self._gate(url)
        for attempt in range(p.max_retries + 1):
            async with gate.lock:
                await gate.wait_turn()
                async with self._semaphore:
                    gate.last_start = self.clock.time()
                    ex = await self._attempt(url, headers, robots=robots, max_bytes=max_bytes)
            if not ex.retry:
                return ex
            now = datetime.now(UTC)
            if ex.retry_after is not None:
                if ex.retry_after > p.retry_after_cap_s:
                    retry_at = now + timedelta(seconds=min(ex.retry_after, MAX_RETRY_AFTER_S))
                    asks = f"server asks to wait {ex.retry_after:.0f} s"
                    return dataclasses.replace(
                        ex,
                        outcome="deferred",
                        reason="retry_after_too_long",
                        message=f"{asks}; asked again after {retry_at:%Y-%m-%d %H:%M} UTC",
                        retry_at=retry_at,
                    )
                wait = ex.retry_after
            else:
                wait = random.uniform(0, min(p.backoff_cap_s, p.backoff_base_s * 2**attempt))
            if attempt == p.max_retries:
                return dataclasses.replace(ex, outcome="deferred", retry_at=now + timedelta(seconds=wait))
            log.info("retrying %s in %.2f s (%s)", url, wait, ex.reason)
            # The whole host waits: it is overloaded or asked us to slow down.
            gate.not_before = max(gate.not_before, self.clock.time() + wait)
        raise AssertionError("unreachable")

    async def _attempt(self, url: str, headers: Mapping[str, str], *, robots: bool, max_bytes: int | None) -> _Exchange:
        """Send one GET and read its body, all within `total_deadline_s`."""
        p = self.policy
        try:
            async with asyncio.timeout(p.total_deadline_s):
                return await self._send(url, headers, robots=robots, max_bytes=max_bytes)
        except TimeoutError:
            return _settled("refused", "deadline", f"no complete response within {p.total_deadline_s} s")
        except UnsafeURL as exc:
            return _settled("refused", exc.reason, exc.message)
        except socket.gaierror as exc:
            if exc.errno == socket.EAI_AGAIN:
                return _Exchange(reason="dns", message=str(exc), retry=True)
            return _settled("error", "dns", f"cannot resolve: {exc}")
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            return _Exchange(reason="connect", message=str(exc) or type(exc).__name__, retry=True)
        except httpx.ReadTimeout:
            return _settled("deferred", "read_timeout", f"no data for {p.read_timeout_s} s", retry_at=_soon())
        except httpx.TransportError as exc:
            return _settled("deferred", "network", str(exc) or type(exc).__name__, retry_at=_soon())
        except httpx.InvalidURL as exc:  # a URL check_url let through that httpx cannot send
            return _settled("refused", "bad_url", str(exc))
        except zlib.error as exc:
            return _settled("error", "decoding", f"corrupt compressed body: {exc}")

    async def _send(self, url: str, headers: Mapping[str, str], *, robots: bool, max_bytes: int | None) -> _Exchange:
        p = self.policy
        request = httpx.Request(
            "GET", url, headers=self._headers | dict(headers), extensions={"timeout": self._timeout.as_dict()}
        )
        response = await self._transport.handle_async_request(request)
        try:
            status = response.status_code
            kept = {k: response.headers[k] for k in KEPT_HEADERS if k in response.headers}
            if status in REDIRECT_STATUSES or status == 304 or (400 <= status < 500 and status != 429):
                return _Exchange(status, kept)
            if status == 429 or status >= 500:
                wait = _retry_after(response.headers.get("retry-after"), datetime.now(UTC))
                return _Exchange(
                    status, kept, reason=f"http_{status}", message=f"HTTP {status}", retry=True, retry_after=wait
                )
            if not 200 <= status < 300:
                return _Exchange(status, kept)
            if not robots:
                ctype = kept.get("content-type", "").split(";")[0].strip().lower()
                if ctype not in p.content_types:
                    return _settled(
                        "refused", "content_type", f"content type {ctype or 'missing'!r}", status=status, headers=kept
                    )
            limit = p.robots_max_bytes if robots else p.max_body_bytes if max_bytes is None else max_bytes
            try:
                body = await _read_body(response, limit, truncate=robots)
            except _TooLarge as exc:
                return _settled("refused", "too_large", str(exc), status=status, headers=kept)
            except _UnsupportedEncoding as exc:
                return _settled(
                    "refused", "content_encoding", f"unsupported Content-Encoding {exc}", status=status, headers=kept
                )
            return _Exchange(status, kept, body)
        finally:
            await response.aclose()  # unread bodies are not drained: the connection is dropped


async def _read_body(response: httpx.Response, limit: int, *, truncate: bool) -> bytes:
    """The decoded body, at most `limit` bytes; over it raise `_TooLarge`, or cut it if `truncate`."""
    if response.is_stream_consumed:  # a transport passed in answered with a body already read and decoded
        if len(response.content) > limit and not truncate:
            raise _TooLarge(f"body over {limit} bytes (decoded)")
        return response.content[:limit]
    coding = response.headers.get("content-encoding", "").strip().lower()
    length = response.headers.get("content-length", "")
    if not truncate and coding in {"", "identity"} and length.isdigit() and int(length) > limit:
        raise _TooLarge(f"Content-Length {length} > {limit} bytes")
    decoder = _BoundedDecoder(coding)
    body = bytearray()
    async for raw in response.aiter_raw():
        body += decoder.decode(raw, limit - len(body) + 1)
        if len(body) > limit:
            if truncate:
                return bytes(body[:limit])
            raise _TooLarge(f"body over {limit} bytes (decoded)")
    return bytes(body)


def _soon() -> datetime:
    """When to retry a URL whose exchange broke off: the next run, in practice."""
    return datetime.now(UTC) + timedelta(minutes=15)


def _sendable(value: str) -> bool:
    return value.isascii() and value.isprintable()
