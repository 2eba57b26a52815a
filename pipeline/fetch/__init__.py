"""Polite, bounded HTTP fetching: SSRF checks, robots.txt, per-host pacing, retries.

`Fetcher.fetch` never raises for a problem with one URL: it returns a `FetchResult`
whose `outcome` is "ok", "not_modified", "deferred" (try again at `retry_at`),
"refused" (we will not fetch it: robots, unsafe address, too large...) or "error"
(the server said no, e.g. 404), with a stable `reason` code.
"""

from __future__ import annotations

from pipeline.fetch.client import (
    DEFAULT_CONTENT_TYPES,
    DEFAULT_USER_AGENT,
    Clock,
    Fetcher,
    FetchPolicy,
    FetchResult,
    LoopClock,
    Outcome,
)
from pipeline.fetch.safety import UnsafeURL, check_url, is_forbidden, parse_host_address, resolve

__all__ = [
    "DEFAULT_CONTENT_TYPES",
    "DEFAULT_USER_AGENT",
    "Clock",
    "FetchPolicy",
    "FetchResult",
    "Fetcher",
    "LoopClock",
    "Outcome",
    "UnsafeURL",
    "check_url",
    "is_forbidden",
    "parse_host_address",
    "resolve",
]
