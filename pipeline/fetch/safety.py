"""Which URLs and addresses the fetcher may contact (SSRF guard); pure except `resolve`.

A URL is checked twice: `check_url` before anything is sent (scheme, credentials, the
host as a browser reads it, private names), and `resolve` when connecting, where every
address a name resolves to must pass `is_forbidden` and the connection then goes to one
of those checked addresses (no DNS-rebinding window).

A host is read once, by `ascii_host`, the way the WHATWG URL standard does: percent-
decoded, IDNA-mapped (full-width digits and dots, ideographic full stops, case) to
ASCII, then parsed as an IPv4 number in every spelling `inet_aton` accepts
(`0177.0.0.1`, `127.000.000.001`, `0x7f.1`, `2130706433`). `check_url` returns the URL
with that host, and the fetcher contacts exactly it: no later parser sees another one.

Names that stand for this machine or a private network (`PRIVATE_NAMES`: `localhost`,
`*.local`, `*.internal`...) are refused before any lookup, like their addresses.

`allow_private_for` names exact endpoints (`"127.0.0.1:8080"`, `"[::1]:8080"`, or a
name, `"localhost:8080"`) that may be contacted although private: the same address on
another port, and every other private address, stay refused. Tests use it to reach
their own server while checking that redirects to 169.254.169.254 or 127.0.0.1:80 are
refused.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import string
from collections.abc import Collection
from urllib.parse import unquote, urlsplit, urlunsplit

__all__ = [
    "PRIVATE_NAMES",
    "IPAddress",
    "UnsafeURL",
    "aresolve",
    "ascii_host",
    "check_address",
    "check_name",
    "check_url",
    "endpoint",
    "is_forbidden",
    "parse_host_address",
    "private_name",
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

# Names that stand for this machine or a private network whatever DNS would answer, as
# (name, why): the name itself and every name under it are refused before any lookup
# (reason "private_address"), as their addresses would be. A resolver may answer them
# from /etc/hosts, mDNS or a split-horizon zone, none of which is the public web.
PRIVATE_NAMES: tuple[tuple[str, str], ...] = (
    ("localhost", "loopback: RFC 6761 6.3 reserves localhost and *.localhost"),
    ("localhost.localdomain", "loopback: the /etc/hosts alias many Linux distributions ship"),
    ("ip6-localhost", "loopback: Debian's /etc/hosts alias of ::1"),
    ("ip6-loopback", "loopback: Debian's /etc/hosts alias of ::1"),
    ("local", "link-local: multicast DNS names (RFC 6762)"),
    ("home.arpa", "home network: RFC 8375"),
    ("internal", "private use: reserved by ICANN (2024); cloud metadata such as metadata.google.internal"),
    ("intranet", "private use by convention (RFC 6762 appendix G)"),
    ("private", "private use by convention (RFC 6762 appendix G)"),
    ("corp", "private use by convention (RFC 6762 appendix G); never delegated"),
    ("home", "private use by convention (RFC 6762 appendix G); never delegated"),
    ("lan", "private use by convention (RFC 6762 appendix G)"),
)

HOST_CHARS = frozenset(string.ascii_lowercase + string.digits + ".-_")
DEC_DIGITS = frozenset(string.digits)
OCT_DIGITS = frozenset(string.octdigits)
HEX_DIGITS = frozenset(string.hexdigits)


class UnsafeURL(ValueError):
    """A URL the fetcher must not request; `reason` is a stable code."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def _ipv4_part(part: str) -> int | None:
    """One dot-separated number as `inet_aton` reads it: 0x hex, leading-0 octal, decimal; None if not one."""
    if part[:2] == "0x":
        digits, base, allowed = part[2:] or "0", 16, HEX_DIGITS
    elif len(part) > 1 and part.startswith("0"):
        digits, base, allowed = part[1:], 8, OCT_DIGITS
    else:
        digits, base, allowed = part, 10, DEC_DIGITS
    # Checked digit by digit: int() would also take signs, "_" and non-ASCII digits.
    return int(digits, base) if set(digits) <= allowed else None


def ascii_host(host: str) -> str:
    """A URL host as it is contacted: percent-decoded, IDNA-mapped to lower-case ASCII, without IPv6 brackets.

    Full-width digits, full stops and letters, circled digits and the like map to their
    ASCII forms here ("１２７。０。０。１" is "127.0.0.1"), as in a browser. Raises
    `UnsafeURL("bad_url")` for a host that maps to nothing valid.
    """
    try:
        host = unquote(host.strip(), errors="strict").lower()
        if host.startswith("[") and host.endswith("]"):
            host = host[1:-1]
        return host if host.isascii() else host.encode("idna").decode("ascii").lower()
    except UnicodeError:  # undecodable percent-escapes, an empty or over-long label
        raise UnsafeURL("bad_url", f"bad host name {host!r}") from None


def _ends_in_a_number(host: str) -> bool:
    """True when the last label is numeric: the WHATWG parser then reads the host as IPv4 or rejects it."""
    labels = host.split(".")
    if len(labels) > 1 and labels[-1] == "":
        labels.pop()
    last = labels[-1]
    return bool(last) and (set(last) <= DEC_DIGITS or (last[:2] == "0x" and set(last[2:]) <= HEX_DIGITS))


def parse_host_address(host: str) -> IPAddress | None:
    """The IP address a URL host denotes, in any legacy numeric spelling; None for a name.

    The host is read as `ascii_host` reads it, so full-width and other IDNA-mapped
    spellings of a number are that number.
    """
    try:
        host = ascii_host(host)
    except UnsafeURL:
        return None
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


def private_name(host: str) -> str | None:
    """Why the host name `host` (ASCII, as `ascii_host` gives it) is private, or None."""
    name = host.rstrip(".")
    for private, why in PRIVATE_NAMES:
        if name == private or name.endswith("." + private):
            return why
    return None


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


def check_name(host: str, port: int, allow_private: bool, allow_private_for: Collection[str] = ()) -> bool:
    """Raise `UnsafeURL("private_address")` for a private name; True when the name's endpoint is allowed.

    `allow_private_for` may name an endpoint by its name ("localhost:8080"); every address
    that name resolves to is then allowed on that port.
    """
    allowed = allow_private or f"{host}:{port}" in allow_private_for
    why = private_name(host)
    if why is not None and not allowed:
        raise UnsafeURL("private_address", f"{host} is a private name ({why})")
    return allowed


def check_url(url: str, allow_private: bool = False, *, allow_private_for: Collection[str] = ()) -> str:
    """Validate a URL before it is requested; returns it canonical (the host as `ascii_host` reads it, no fragment).

    An IP host comes back in dotted (or compressed IPv6) form, a name in lower-case
    ASCII: that URL, not `url`, is what may be sent.
    """
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
    raw_host = parts.hostname or ""  # urlsplit has removed IPv6 brackets and lower-cased it
    if not raw_host:
        raise UnsafeURL("bad_url", f"URL has no host: {url!r}")
    if port is None:
        port = DEFAULT_PORTS[scheme]
    host = ascii_host(raw_host)
    addr = parse_host_address(host)
    if addr is None and ":" in host:
        raise UnsafeURL("bad_url", f"bad IPv6 address in {url!r}")
    if addr is not None:
        check_address(addr, port, allow_private, allow_private_for)
        host = f"[{addr.compressed}]" if addr.version == 6 else str(addr)
    else:
        if not set(host) <= HOST_CHARS or host.startswith(".") or ".." in host:
            raise UnsafeURL("bad_url", f"bad host name {raw_host!r}")
        if _ends_in_a_number(host):  # "1.2.3.256", "0x7g.1": not an address, and no name either
            raise UnsafeURL("bad_url", f"host {raw_host!r} ends in a number but is not an IPv4 address")
        check_name(host, port, allow_private, allow_private_for)
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
        host = ascii_host(host)
        allow_private = check_name(host, port, allow_private, allow_private_for)
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
