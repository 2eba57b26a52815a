"""Which URLs and addresses the fetcher may contact (SSRF guard); pure except `resolve`.

A URL is checked twice: `check_url` before anything is sent (scheme, credentials, IP
literals in every spelling `inet_aton` accepts), and `resolve` when connecting, where
every address a name resolves to must pass `is_forbidden` and the connection then goes
to one of those checked addresses (no DNS-rebinding window).

`allow_private_for` names exact endpoints (`"127.0.0.1:8080"`, `"[::1]:8080"`) that may
be contacted although private: the same address on another port, and every other
private address, stay refused. Tests use it to reach their own server while checking
that redirects to 169.254.169.254 or 127.0.0.1:80 are refused.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import string
from collections.abc import Collection
from urllib.parse import urlsplit, urlunsplit

__all__ = [
    "IPAddress",
    "UnsafeURL",
    "aresolve",
    "check_address",
    "check_url",
    "endpoint",
    "is_forbidden",
    "parse_host_address",
    "resolve",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

SCHEMES = frozenset({"http", "https"})
DEFAULT_PORTS = {"http": 80, "https": 443}

# Address blocks that are never public web servers, as (network, reason). Kept as data:
# IANA's special-purpose registries (RFC 6890 and successors) trimmed to what matters
# for outbound requests. "unspecified" and "multicast" are refused even when private
# addresses are allowed (0.0.0.0 connects to the local host on Linux).
ALWAYS_FORBIDDEN = frozenset({"unspecified", "multicast"})
IPV4_BLOCKS: tuple[tuple[ipaddress.IPv4Network, str], ...] = tuple(
    (ipaddress.IPv4Network(net), reason)
    for net, reason in (
        ("0.0.0.0/8", "unspecified"),
        ("127.0.0.0/8", "loopback"),
        ("10.0.0.0/8", "private"),
        ("172.16.0.0/12", "private"),
        ("192.168.0.0/16", "private"),
        ("100.64.0.0/10", "cgnat"),
        ("169.254.0.0/16", "link_local"),
        ("192.0.0.0/24", "reserved"),
        ("192.0.2.0/24", "reserved"),
        ("192.88.99.0/24", "reserved"),
        ("198.18.0.0/15", "reserved"),
        ("198.51.100.0/24", "reserved"),
        ("203.0.113.0/24", "reserved"),
        ("224.0.0.0/4", "multicast"),
        ("255.255.255.255/32", "broadcast"),
        ("240.0.0.0/4", "reserved"),
    )
)
IPV6_BLOCKS: tuple[tuple[ipaddress.IPv6Network, str], ...] = tuple(
    (ipaddress.IPv6Network(net), reason)
    for net, reason in (
        ("::/128", "unspecified"),
        ("::1/128", "loopback"),
        ("::/96", "reserved"),  # deprecated IPv4-compatible addresses
        ("64:ff9b:1::/48", "private"),  # local-use NAT64 (RFC 8215)
        ("100::/64", "reserved"),  # discard-only
        ("2001::/23", "reserved"),  # IETF protocol assignments, Teredo included
        ("2001:db8::/32", "reserved"),  # documentation
        ("fc00::/7", "private"),  # unique local
        ("fe80::/10", "link_local"),
        ("fec0::/10", "private"),  # deprecated site-local
        ("ff00::/8", "multicast"),
    )
)
# IPv6 forms that carry an IPv4 address, which is then checked like a plain one.
IPV4_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")
NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
SIX_TO_FOUR = ipaddress.IPv6Network("2002::/16")

HOST_CHARS = frozenset(string.ascii_lowercase + string.digits + ".-_")


class UnsafeURL(ValueError):
    """A URL the fetcher must not request; `reason` is a stable code."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def _ipv4_part(part: str) -> int | None:
    """One dot-separated number as `inet_aton` reads it: 0x hex, leading-0 octal, decimal."""
    try:
        if part[:2].lower() == "0x":
            return int(part[2:] or "0", 16)
        if len(part) > 1 and part.startswith("0"):
            return int(part[1:], 8)
        return int(part, 10) if part.isdigit() else None
    except ValueError:
        return None


def parse_host_address(host: str) -> IPAddress | None:
    """The IP address a URL host denotes, in any legacy numeric spelling; None for a name."""
    host = host.strip().lower()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if ":" in host:
        try:
            return ipaddress.IPv6Address(host)
        except ValueError:
            return None
    parts = host.split(".")
    if len(parts) > 1 and parts[-1] == "":
        parts.pop()  # a trailing dot, as in "127.0.0.1."
    if not 1 <= len(parts) <= 4 or any(not p for p in parts):
        return None
    numbers = [_ipv4_part(p) for p in parts]
    if any(n is None for n in numbers):
        return None
    values = [n for n in numbers if n is not None]
    # "a.b.c.d", "a.b.c" (c is 16 bits), "a.b" (b is 24 bits), "a" (32 bits).
    *head, last = values
    if any(v > 255 for v in head) or last >= 256 ** (5 - len(values)):
        return None
    value = last
    for i, v in enumerate(head):
        value += v << (8 * (3 - i))
    return ipaddress.IPv4Address(value)


def _embedded_ipv4(addr: ipaddress.IPv6Address) -> tuple[ipaddress.IPv4Address, str] | None:
    """The IPv4 address inside an IPv4-mapped, NAT64 or 6to4 address, with the form's name."""
    if addr in IPV4_MAPPED:
        return ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF), "IPv4-mapped"
    if addr in NAT64:
        return ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF), "NAT64"
    if addr in SIX_TO_FOUR:
        return ipaddress.IPv4Address((int(addr) >> 80) & 0xFFFFFFFF), "6to4"
    return None


def is_forbidden(addr: IPAddress, allow_private: bool = False) -> str | None:
    """Why `addr` may not be contacted (e.g. "loopback", "cgnat (NAT64)"), or None if it may."""
    if isinstance(addr, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(addr)
        if embedded is not None:
            inner = is_forbidden(embedded[0], allow_private)
            return None if inner is None else f"{inner} ({embedded[1]})"
        blocks: tuple[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, str], ...] = IPV6_BLOCKS
    else:
        blocks = IPV4_BLOCKS
    for net, reason in blocks:
        if addr in net:
            return reason if (reason in ALWAYS_FORBIDDEN or not allow_private) else None
    if not allow_private and not addr.is_global:
        return "reserved"  # anything the stdlib knows to be special that the tables missed
    return None


def endpoint(addr: IPAddress, port: int) -> str:
    """The `allow_private_for` spelling of an address and port: "1.2.3.4:80", "[::1]:80"."""
    return f"[{addr.compressed}]:{port}" if addr.version == 6 else f"{addr}:{port}"


def check_address(addr: IPAddress, port: int, allow_private: bool, allow_private_for: Collection[str] = ()) -> None:
    """Raise `UnsafeURL("private_address")` unless `addr:port` may be contacted."""
    allowed = allow_private or endpoint(addr, port) in allow_private_for
    why = is_forbidden(addr, allowed)
    if why is not None:
        raise UnsafeURL("private_address", f"{endpoint(addr, port)} is not a public address ({why})")


def check_url(url: str, allow_private: bool = False, *, allow_private_for: Collection[str] = ()) -> str:
    """Validate a URL before it is requested; returns it canonical (IP hosts in dotted form, no fragment)."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise UnsafeURL("bad_url", f"unparseable URL {url!r}: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise UnsafeURL("scheme", f"only http and https URLs are fetched, not {scheme or 'no scheme'!r}")
    if "@" in parts.netloc:
        raise UnsafeURL("credentials", "URLs with user:password@ are not fetched")
    raw_host = parts.hostname or ""
    if not raw_host:
        raise UnsafeURL("bad_url", f"URL has no host: {url!r}")
    addr = parse_host_address(raw_host)  # urlsplit has already removed IPv6 brackets
    if addr is None and ":" in raw_host:
        raise UnsafeURL("bad_url", f"bad IPv6 address in {url!r}")
    if port is None:
        port = DEFAULT_PORTS[scheme]
    if addr is not None:
        check_address(addr, port, allow_private, allow_private_for)
        host = f"[{addr.compressed}]" if addr.version == 6 else str(addr)
    else:
        try:
            host = raw_host.encode("idna").decode("ascii").lower() if not raw_host.isascii() else raw_host.lower()
        except UnicodeError:
            raise UnsafeURL("bad_url", f"bad host name {raw_host!r}") from None
        if not set(host) <= HOST_CHARS or host.startswith(".") or ".." in host:
            raise UnsafeURL("bad_url", f"bad host name {raw_host!r}")
    netloc = host if port == DEFAULT_PORTS[scheme] else f"{host}:{port}"
    return urlunsplit((scheme, netloc, parts.path or "/", parts.query, ""))


def resolve(host: str, port: int, allow_private: bool, allow_private_for: Collection[str] = ()) -> list[IPAddress]:
    """The addresses to connect to for `host`, refusing if ANY of them is forbidden.

    Raises `UnsafeURL("private_address")`, or `socket.gaierror` when the name does not resolve.
    """
    literal = parse_host_address(host)
    if literal is not None:
        found = [literal]
    else:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        found = []
        for info in infos:
            addr = ipaddress.ip_address(str(info[4][0]).split("%")[0])
            if addr not in found:
                found.append(addr)
    for addr in found:
        check_address(addr, port, allow_private, allow_private_for)
    return found


async def aresolve(
    host: str, port: int, allow_private: bool, allow_private_for: Collection[str] = ()
) -> list[IPAddress]:
    """`resolve` in a worker thread, so a slow resolver does not block the event loop."""
    return await asyncio.to_thread(resolve, host, port, allow_private, allow_private_for)
