"""Load and validate `sources.toml`."""

from __future__ import annotations

import math
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from normalizers.errors import ProfileError
from normalizers.profile import SourceProfile, check_timezone
from normalizers.urls import canonical_url
from pipeline.errors import ConfigError
from warehouse.errors import PartitionError
from warehouse.layout import validate_source

__all__ = [
    "FETCH_LIMITS",
    "HTTP_KINDS",
    "INTERVAL_LIMITS",
    "LISTING_MAX_BYTES",
    "Config",
    "FetchSettings",
    "Schedule",
    "SourceConfig",
    "duration_text",
    "load_config",
    "parse_duration",
    "source_problem",
]

KINDS = ("files", "rss", "sitemap", "urls", "warc")
# Kinds whose documents are fetched over HTTP (discovered from a feed, a sitemap or a URL list).
HTTP_KINDS = ("rss", "sitemap", "urls")
FORMATS = ("text", "html", "auto")
# Default globs per format; `auto` picks the normaliser by extension (HTML by _HTML_GLOBS).
_HTML_GLOBS = ("*.html", "*.htm", "*.html.gz", "*.htm.gz")
_INCLUDE = {"text": ("*.txt",), "html": _HTML_GLOBS, "auto": ("*.txt", *_HTML_GLOBS)}
_DEFAULT_KEYS = {
    "language",
    "encoding",
    "timezone",
    "title_line",
    "max_bytes",
    "min_confidence",
    "default_rules",
    "learn_boilerplate",
    "rules",
}
_SOURCE_KEYS = _DEFAULT_KEYS | {
    "kind", "path", "include", "format", "description", "html", "url", "fetch", "schedule", "warc"
}  # fmt: skip
_WARC_GLOBS = ("*.warc.gz", "*.warc")
_WARC_KEYS = {"hosts", "languages", "since", "until"}
_FETCH_KEYS = {
    "contact",
    "delay",
    "concurrency",
    "timeout",
    "max_bytes",
    "max_pages",
    "max_listing_bytes",
    "max_sitemaps",
    "since",
    "until",
    "allow_private_for",
    "allow_private",
}
# Feeds, sitemaps and URL lists are parsed up to `normalizers.feeds.MAX_BYTES` (the
# sitemaps protocol's 50 MB), so fetching one larger is pointless; written out here (a
# test holds the two equal) because importing the parser would slow every CLI start.
LISTING_MAX_BYTES = 50_000_000
# The numbers of `[sources.NAME.fetch]`: (type, least, most). A value outside is a slip (a
# unit, a digit too many), never a setting; NaN and infinity would fail far from the config,
# in int() or in a timer.
FETCH_LIMITS: dict[str, tuple[type[int] | type[float], int, int]] = {
    # Seconds between requests to one host: 0 for an intranet source, at most an hour.
    "delay": (float, 0, 3600),
    # Seconds per request, body included: under a second, TLS set-up alone may not finish.
    "timeout": (float, 1, 3600),
    # Requests in flight over all hosts: more is a load test, not a crawl.
    "concurrency": (int, 1, 256),
    # Decoded body size: a body is held in memory whole (at most 1 GiB).
    "max_bytes": (int, 1, 2**30),
    # Pages fetched per run.
    "max_pages": (int, 1, 10_000_000),
    # Decoded size of a feed, sitemap or URL list: up to what the parser reads.
    "max_listing_bytes": (int, 1, LISTING_MAX_BYTES),
    # Child sitemaps read per run; the rest are deferred to later runs.
    "max_sitemaps": (int, 1, 100_000),
}


@dataclass(frozen=True, slots=True)
class FetchSettings:
    """`[sources.NAME.fetch]`: how an HTTP source is fetched (see pipeline.fetch.FetchPolicy)."""

    contact: str | None = None  # a URL or e-mail for the User-Agent; required to fetch
    delay: float = 1.0  # seconds between requests to one host (robots.txt Crawl-delay may raise it)
    concurrency: int = 8  # requests in flight over all hosts
    timeout: float = 60.0  # seconds per request, body included
    max_bytes: int = 10 * 1024 * 1024  # decoded body size cap of a page
    max_listing_bytes: int = LISTING_MAX_BYTES  # ... of a feed, sitemap or URL list (at most LISTING_MAX_BYTES)
    max_pages: int = 10_000  # pages fetched per run, never fetched and newest first; the rest wait for the next run
    max_sitemaps: int = 200  # child sitemaps read per run (each can list 50,000 URLs); the rest wait
    since: date | None = None  # ignore feed/sitemap entries dated before this day
    until: date | None = None  # ... and after this day (inclusive range)
    allow_private_for: tuple[str, ...] = ()  # "address:port" or "name:port" endpoints allowed although private
    allow_private: bool = False  # every private address allowed (an intranet source)

    @property
    def user_agent(self) -> str:
        """The User-Agent of the source's requests, naming the contact."""
        return f"newsflow/0.1 (+{self.contact})" if self.contact else "newsflow/0.1"


@dataclass(frozen=True, slots=True)
class Schedule:
    """`[sources.NAME.schedule]`: when `newsflow serve` runs the source: a cron, or an interval."""

    cron: str | None  # five-field cron, e.g. "0 */6 * * *"
    timezone: str  # IANA zone the cron is read in (default: the source's timezone)
    interval: float | None = None  # seconds between runs (`interval = "90m"`), for what no cron says

    def describe(self) -> str:
        """`0 6 * * * (Europe/Berlin)` or `every 1h30m`."""
        if self.cron is not None:
            return f"{self.cron} ({self.timezone})"
        return f"every {duration_text(self.interval or 0)}"

    def anchor(self) -> datetime:
        """Midnight, 1 January 2000, in the schedule's zone: what interval runs are counted from."""
        # Fixed, so runs keep their times across restarts of `serve` ("6h": 00:00, 06:00, ...).
        return datetime(2000, 1, 1, tzinfo=ZoneInfo(self.timezone))


# `interval` units: "90s", "15m", "6h", "1d", or combined ("1h30m"); numbers of up to twelve
# digits, far past any interval allowed (int() of thousands of digits raises).
_DURATION = re.compile(r"(?:(\d{1,12})d)?(?:(\d{1,12})h)?(?:(\d{1,12})m)?(?:(\d{1,12})s)?")
_UNITS = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))
# Seconds an interval schedule may have. At least 10 s: Prefect's scheduler creates the
# runs ahead of time, and a shorter interval floods it (and the run history) with runs
# that cannot start before the previous ends. At most 366 days: what runs less often than
# yearly is run by hand, and Prefect's schedule arithmetic overflows far beyond.
INTERVAL_LIMITS = (10.0, 366 * 86400.0)


def parse_duration(value: Any) -> float | None:
    """Seconds of a duration: a positive number (seconds) or text such as "90s", "15m", "1h30m"; None if invalid."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        if not value > 0:  # NaN too: every comparison with it is false
            return None
        try:
            return float(value)
        except OverflowError:  # an integer past what a float holds: as good as infinite
            return math.inf
    if not isinstance(value, str):
        return None
    m = _DURATION.fullmatch(value.strip().lower().replace(" ", ""))
    if m is None or not any(m.groups()):
        return None
    seconds = sum(int(g or 0) * unit for g, (_, unit) in zip(m.groups(), _UNITS, strict=True))
    return float(seconds) if seconds > 0 else None


def duration_text(seconds: float) -> str:
    """`1h30m` for 5400 seconds."""
    rest, out = int(seconds), ""
    for name, unit in _UNITS:
        if rest >= unit:
            out += f"{rest // unit}{name}"
            rest %= unit
    return out or f"{seconds}s"


@dataclass(frozen=True, slots=True)
class WarcFilter:
    """`[sources.NAME.warc]`: which records of a WARC source are kept, checked before extraction."""

    hosts: tuple[str, ...] = ()  # host names; a name also matches its subdomains
    languages: tuple[str, ...] = ()  # ISO 639-1 codes, from Content-Language or <html lang>
    since: date | None = None  # capture dates (WARC-Date, UTC), inclusive
    until: date | None = None

    def host_ok(self, host: str) -> bool:
        """Whether a record of `host` is kept."""
        return not self.hosts or any(host == h or host.endswith("." + h) for h in self.hosts)

    def date_ok(self, day: date) -> bool:
        """Whether a record captured on `day` is kept."""
        return (self.since is None or day >= self.since) and (self.until is None or day <= self.until)


@dataclass(frozen=True, slots=True)
class SourceConfig:
    """One `[sources.NAME]` block, validated."""

    name: str
    kind: str
    path: Path | None
    include: tuple[str, ...]
    format: str
    description: str
    profile: SourceProfile
    urls: tuple[str, ...] = ()  # HTTP sources: the feed(s), sitemap(s) or URL list(s) to read
    fetch: FetchSettings = FetchSettings()
    schedule: Schedule | None = None
    warc: WarcFilter = WarcFilter()  # warc sources: the records kept


@dataclass(frozen=True, slots=True)
class Config:
    """The whole configuration file."""

    path: Path
    sources: Mapping[str, SourceConfig]

    def select(self, names: list[str] | None) -> list[SourceConfig]:
        """The named sources (all when `names` is empty), in config order."""
        if not names:
            return list(self.sources.values())
        unknown = [n for n in names if n not in self.sources]
        if unknown:
            known = ", ".join(self.sources) or "none"
            raise ConfigError(f"unknown source(s): {', '.join(unknown)} (configured: {known})")
        return [self.sources[n] for n in dict.fromkeys(names)]  # a name given twice runs once


def source_problem(src: SourceConfig) -> str | None:
    """What keeps a source from running as configured (a missing folder or URL list), or None.

    Checked by each run before the source's work starts, and by `newsflow sources --check`.
    """
    if src.path is None:
        return None
    where = f"source {src.name}: "
    if src.kind in ("files", "warc"):
        if not src.path.exists():
            return where + f"folder {src.path} does not exist (check `path` in the config)"
        if not src.path.is_dir():
            return where + f"{src.path} is not a folder (check `path` in the config)"
        if not os.access(src.path, os.R_OK | os.X_OK):
            return where + f"folder {src.path} is not readable"
        return None
    if not src.path.is_file():
        return where + f"URL list {src.path} does not exist or is not a file (check `path` in the config)"
    if not os.access(src.path, os.R_OK):
        return where + f"URL list {src.path} is not readable"
    return None


# Checks a schedule (its cron, None for an interval, and its time zone) as the scheduler
# will read it; raises ValueError. The scheduler is the edge's business (flows.config
# passes Prefect's own models): without a check, a cron is only checked for its shape.
ScheduleCheck = Callable[[str | None, str], None]


def load_config(path: Path, check_schedule: ScheduleCheck | None = None) -> Config:
    """Read and validate a config file; raises `ConfigError` with the offending key."""
    try:
        # utf-8-sig: editors on Windows start a UTF-8 file with a byte-order mark, which TOML does not allow.
        data = tomllib.loads(path.read_text(encoding="utf-8-sig"))
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: config file not found (use --config or NEWSFLOW_CONFIG)") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from exc
    unknown = set(data) - {"defaults", "sources"}
    if unknown:
        raise ConfigError(f"{path}: unknown top-level key(s): {', '.join(sorted(unknown))}")
    defaults = _table(path, data.get("defaults", {}), "defaults")
    bad = set(defaults) - _DEFAULT_KEYS
    if bad:
        raise ConfigError(f"{path}: defaults: unknown key(s): {', '.join(sorted(bad))}")
    sources: dict[str, SourceConfig] = {}
    for name, block in _table(path, data.get("sources", {}), "sources").items():
        sources[name] = _source(path, name, _table(path, block, f"sources.{name}"), defaults, check_schedule)
    return Config(path=path, sources=sources)


def _table(path: Path, value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(f"{path}: {where} must be a table")
    return value


def _source(
    path: Path, name: str, block: dict[str, Any], defaults: dict[str, Any], check_schedule: ScheduleCheck | None
) -> SourceConfig:
    where = f"{path}: sources.{name}"
    try:
        validate_source(name)
    except PartitionError as exc:
        raise ConfigError(f"{where}: {exc}") from exc
    bad = set(block) - _SOURCE_KEYS
    if bad:
        raise ConfigError(f"{where}: unknown key(s): {', '.join(sorted(bad))}")
    kind = block.get("kind", "files")
    if kind not in KINDS:
        raise ConfigError(f"{where}.kind: {kind!r} is not one of {', '.join(KINDS)}")
    fmt = block.get("format", "html" if kind in (*HTTP_KINDS, "warc") else "text")
    if fmt not in FORMATS:
        raise ConfigError(f"{where}.format: {fmt!r} is not one of {', '.join(FORMATS)}")
    raw_path, url = block.get("path"), block.get("url")
    urls = [url] if isinstance(url, str) else url if isinstance(url, list) else []
    web = all(isinstance(u, str) and u.startswith(("http://", "https://")) for u in urls)
    if kind in HTTP_KINDS:
        if not (urls and web) and not (kind == "urls" and not urls and isinstance(raw_path, str) and raw_path):
            need = "an http(s) `url` or a list of them (or, for kind urls, a local `path` to a URL list)"
            raise ConfigError(f"{where}.url: {kind} sources need {need}")
        for i, u in enumerate(urls):
            try:
                canonical_url(u)  # the one test of an http(s) URL with a host, as for every article URL
            except ValueError as exc:
                key = f"{where}.url" if isinstance(url, str) else f"{where}.url[{i}]"
                raise ConfigError(f"{key}: {u!r} is not a URL to fetch: {exc}") from exc
    elif kind == "warc" and url is not None:
        if raw_path is not None:
            raise ConfigError(f"{where}: a warc source reads a folder (`path`) or URLs (`url`), not both")
        if not urls:
            raise ConfigError(f"{where}.url: expected a URL or a list of them")
        for i, u in enumerate(urls):
            key = f"{where}.url" if isinstance(url, str) else f"{where}.url[{i}]"
            if not isinstance(u, str) or not _warc_url(u):
                raise ConfigError(
                    f"{key}: {u!r} is not a WARC file's or a listing's URL (http(s)://host/... or s3://bucket/key)"
                )
    elif not isinstance(raw_path, str) or not raw_path:
        raise ConfigError(f"{where}.path: a folder is required")
    fetch = _fetch_settings(where, block.get("fetch", {}))
    if kind in HTTP_KINDS and fetch.contact is None:
        raise ConfigError(f"{where}.fetch.contact: HTTP sources need a contact (a URL or e-mail) for the User-Agent")
    include = block.get("include", list(_WARC_GLOBS if kind == "warc" else _INCLUDE[fmt]))
    if kind == "warc" and fmt != "html":
        raise ConfigError(f'{where}.format: warc sources hold HTML pages (format = "html")')
    if "warc" in block and kind != "warc":
        raise ConfigError(f"{where}.warc: only warc sources take a warc table")
    if isinstance(include, str):
        include = [include]
    if not (isinstance(include, list) and include and all(isinstance(p, str) and p for p in include)):
        raise ConfigError(f"{where}.include: expected a glob or a list of globs")
    try:
        own = {k: v for k, v in block.items() if k in _DEFAULT_KEYS or k == "html"}
        profile = SourceProfile.from_mapping(name, own, defaults)
    except ProfileError as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    # Relative paths are relative to the config file, so the config works from any cwd.
    folder = (path.parent / raw_path).resolve() if isinstance(raw_path, str) and raw_path else None
    return SourceConfig(
        name=name,
        kind=kind,
        path=folder,
        include=tuple(include),
        format=fmt,
        description=str(block.get("description", "")),
        profile=profile,
        urls=tuple(urls) if kind in (*HTTP_KINDS, "warc") else (),
        fetch=fetch,
        schedule=_schedule(where, block.get("schedule"), profile.timezone, check_schedule),
        warc=_warc_filter(where, block.get("warc", {})),
    )


def _warc_url(url: str) -> bool:
    """Whether `url` can name a remote WARC file or listing: http(s) with a host, or s3 with a bucket and a key."""
    try:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme in ("http", "https"):
            canonical_url(url)
            return True
        return scheme == "s3" and bool(parts.netloc) and bool(parts.path.strip("/"))
    except ValueError:
        return False


def _warc_filter(where: str, data: Any) -> WarcFilter:
    """Validate a `[sources.NAME.warc]` table."""
    data = _subtable(where, "warc", data, _WARC_KEYS)
    lists: dict[str, tuple[str, ...]] = {}
    for key in ("hosts", "languages"):
        value = data.get(key, [])
        if not (isinstance(value, list) and all(isinstance(v, str) and v.strip() for v in value)):
            raise ConfigError(f"{where}.warc.{key}: expected a list of strings")
        lists[key] = tuple(v.strip().lower().rstrip(".") for v in value)
    days = _date_range(f"{where}.warc", data)
    return WarcFilter(lists["hosts"], lists["languages"], days.get("since"), days.get("until"))


def _subtable(where: str, name: str, data: Any, keys: set[str]) -> dict[str, Any]:
    """A source's `[sources.NAME.<name>]` table (`where` names the source), refusing keys it does not take."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where}.{name}: expected a table")
    bad = set(data) - keys
    if bad:
        raise ConfigError(f"{where}.{name}: unknown key(s): {', '.join(sorted(bad))}")
    return data


def _date_range(where: str, data: dict[str, Any]) -> dict[str, date]:
    """The `since` and `until` a table gives (`where` names it): dates, since not after until."""
    out: dict[str, date] = {}
    for key in ("since", "until"):
        if key in data:
            value = data[key]
            if not isinstance(value, date) or isinstance(value, datetime):
                raise ConfigError(f"{where}.{key}: expected a date such as 2024-01-01")
            out[key] = value
    if "since" in out and "until" in out and out["since"] > out["until"]:
        raise ConfigError(f"{where}: since is after until")
    return out


def _schedule(where: str, data: Any, default_tz: str, check_schedule: ScheduleCheck | None) -> Schedule | None:
    """Validate a `[sources.NAME.schedule]` table (a cron and time zone, or an interval)."""
    if data is None:
        return None
    if isinstance(data, str):
        data = {"cron": data}
    usage = f'{where}.schedule: expected {{ cron = "0 6 * * *", timezone = "Europe/Berlin" }} or {{ interval = "15m" }}'
    if not isinstance(data, dict) or set(data) - {"cron", "timezone", "interval"}:
        raise ConfigError(usage)
    if ("cron" in data) == ("interval" in data):
        raise ConfigError(f"{usage} (one of cron and interval)")
    tz = _zone(where, data.get("timezone", default_tz))
    if "interval" in data:
        schedule = Schedule(None, tz, _interval(where, data["interval"]))
    elif isinstance(data["cron"], str) and (5 <= len(data["cron"].split()) <= 6 or data["cron"].startswith("@")):
        schedule = Schedule(data["cron"], tz)
    else:
        raise ConfigError(usage)
    if check_schedule is not None:
        try:
            check_schedule(schedule.cron, tz)
        except ValueError as exc:
            raise ConfigError(f"{where}.schedule: {exc}") from exc
    return schedule


def _interval(where: str, value: Any) -> float:
    """An interval schedule's seconds, within `INTERVAL_LIMITS`; ConfigError otherwise."""
    seconds = parse_duration(value)
    if seconds is None:
        raise ConfigError(
            f"{where}.schedule.interval: {value!r} is not a duration "
            '(seconds, or text such as "90s", "15m", "6h", "1d", "1h30m")'
        )
    least, most = INTERVAL_LIMITS
    if not least <= seconds <= most:
        raise ConfigError(
            f"{where}.schedule.interval: {value!r} is not between {duration_text(least)} and {duration_text(most)} "
            "(shorter floods the scheduler with runs; what runs less than once a year is run by hand)"
        )
    return seconds


def _zone(where: str, value: Any) -> str:
    """A schedule's time zone, if Python knows it (`Schedule.anchor` reads it); ConfigError otherwise."""
    try:
        return check_timezone(f"{where}.schedule.timezone", value)
    except ProfileError as exc:
        raise ConfigError(str(exc)) from exc


def _fetch_settings(where: str, data: Any) -> FetchSettings:
    """Validate a `[sources.NAME.fetch]` table."""
    data = _subtable(where, "fetch", data, _FETCH_KEYS)
    out: dict[str, Any] = {}
    for key, (kind, least, most) in FETCH_LIMITS.items():
        if key in data:
            value = data[key]
            number = isinstance(value, int | float) and not isinstance(value, bool)
            # Comparisons first: they hold for NaN (false), infinity and integers past the floats.
            if not (number and least <= value <= most) or (kind is int and isinstance(value, float) and value % 1):
                what = "a whole number" if kind is int else "a number"
                raise ConfigError(f"{where}.fetch.{key}: expected {what} from {least} to {most}, not {value!r}")
            out[key] = kind(value)
    if "contact" in data:
        if not isinstance(data["contact"], str) or not data["contact"].strip():
            raise ConfigError(f"{where}.fetch.contact: expected a URL or e-mail address")
        out["contact"] = data["contact"].strip()
    out.update(_date_range(f"{where}.fetch", data))
    if "allow_private" in data:
        if not isinstance(data["allow_private"], bool):
            raise ConfigError(f"{where}.fetch.allow_private: expected true or false")
        out["allow_private"] = data["allow_private"]
    if "allow_private_for" in data:
        hosts = data["allow_private_for"]
        if not (isinstance(hosts, list) and all(isinstance(h, str) and ":" in h for h in hosts)):
            raise ConfigError(f'{where}.fetch.allow_private_for: expected a list of "host:port" endpoints')
        out["allow_private_for"] = tuple(hosts)
    return FetchSettings(**out)
