"""HTTP sources: discover URLs from a feed, a sitemap or a URL list, fetch them into the raw store.

`fetch_source` is the network half of an `rss`, `sitemap` or `urls` source run. It
returns a `Plan` whose candidates point at raw-store objects, so the rest of the
pipeline (normalise in batches, write partitions, record state) is the one files use,
and a `BatchResult` holding what fetching alone decided: quarantined URLs (refused,
HTTP errors, unreadable feeds) with their state rows, deferrals by reason, and notes
(entries a long feed left out, entries without a usable URL, child sitemaps left for
later). Every fetched body goes to the raw store before it is normalised;
re-normalising never fetches.

Accounting, so that the run summary reconciles: every listed entry is one discovered
input, and so is every listing document (feed, sitemap, child sitemap, URL list) that
gives no entries because it failed: refused, an HTTP error or unreadable, it counts as
new (changed, if fetched in an earlier run) and quarantined; deferred (by the server, or
a child sitemap left for a later run by `max_sitemaps`), as deferred. A listing document
that is read is not an input of its own: its entries are.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import TypedDict

import httpx

from normalizers.dispatch import normalizer_for
from normalizers.feeds import Discovery, Entry, FeedError, parse_feed, parse_url_list, recency_key
from normalizers.urls import canonical_url
from pipeline.backfill import BackfillPlan, Unit, build_plan, check_redo, plan_store, stored_states, whole_months
from pipeline.config import SourceConfig
from pipeline.discover import Plan
from pipeline.fetch import Fetcher, FetchPolicy, FetchResult
from pipeline.files import printable
from pipeline.ingest import BatchResult
from pipeline.inputs import FetchedInput, Input, ListedUrl
from pipeline.renormalize import stored_input
from warehouse.layout import DataRoot, Partition
from warehouse.quarantine import QuarantineRecord
from warehouse.raw import FetchRecord, RawStore, UrlState
from warehouse.state import FileState, StateStore

__all__ = ["FetchOutcome", "fetch_source", "fetch_unit", "plan_http_backfill", "policy_for"]

log = logging.getLogger(__name__)

_KEPT_HEADERS = ("content-type", "etag", "last-modified", "content-encoding")
# Entries without a usable URL quoted in a document's note (the note gives the count):
# enough to see what is wrong, while a hostile feed's million bad items stay one short line.
QUOTED_SKIPS = 5
# A page that answered 404 (not found) or 410 (gone) is asked again only after a wait
# that doubles with each such answer, up to GONE_MAX_WAIT: a page pulled for good stops
# costing a request every run, and one restored (or a 404 from a CMS hiccup just after
# publication) is still found. 410 says "gone for good", so it starts longer.
GONE_FIRST_WAIT = {404: timedelta(hours=6), 410: timedelta(days=1)}
GONE_MAX_WAIT = timedelta(days=30)


@dataclass(slots=True)
class FetchOutcome:
    """What fetching one HTTP source produced: the plan for normalisation and the early outcomes."""

    plan: Plan
    early: BatchResult


@dataclass(slots=True)
class _Listing:
    """A source's entries, and its listing documents that gave none (see the module's accounting)."""

    entries: list[tuple[str, Entry]] = field(default_factory=list)
    failed_new: int = 0  # quarantined, never fetched before
    failed_seen: int = 0  # quarantined, fetched in an earlier run
    deferred: int = 0

    def failed(self, fetched_before: bool) -> None:
        """Count one quarantined document."""
        if fetched_before:
            self.failed_seen += 1
        else:
            self.failed_new += 1


def policy_for(src: SourceConfig) -> FetchPolicy:
    """The fetch policy of a source's `[fetch]` settings."""
    f = src.fetch
    return FetchPolicy(
        user_agent=f.user_agent,
        per_host_delay_s=f.delay,
        global_concurrency=f.concurrency,
        total_deadline_s=f.timeout,
        max_body_bytes=f.max_bytes,
        allow_private=f.allow_private,
        allow_private_for=frozenset(f.allow_private_for),
    )


def fetch_source(
    src: SourceConfig, root: DataRoot, run_id: str, transport: httpx.AsyncBaseTransport | None = None
) -> FetchOutcome:
    """Discover the source's URLs, fetch what is due into the raw store, and plan their normalisation.

    `transport` replaces the fetcher's own (see `Fetcher`).
    """
    with StateStore(root.state) as states:
        previous = states.load(src.name)
    return asyncio.run(_fetch_source(src, root, run_id, previous, transport))


async def _fetch_source(
    src: SourceConfig,
    root: DataRoot,
    run_id: str,
    previous: dict[str, FileState],
    transport: httpx.AsyncBaseTransport | None,
) -> FetchOutcome:
    now = datetime.now(UTC)
    early = BatchResult()
    with RawStore(root) as store:
        async with Fetcher(policy_for(src), transport) as fetcher:
            listing = await _discover(src, store, fetcher, early, run_id, now)
            due = _due(src, store, listing.entries, now, early)
            results = await asyncio.gather(*(fetcher.fetch(e.url, **_validators(state)) for _, e, state in due))
        todo: list[FetchedInput] = []
        new, changed, unchanged = listing.failed_new, listing.failed_seen, 0
        for (key, entry, state), result in zip(due, results, strict=True):
            prev = previous.get(key)
            sha = _record(store, src.name, key, result, state)
            if result.outcome == "not_modified":
                unchanged += 1
                continue
            if result.outcome == "deferred":
                _defer(early, result.reason)
                continue
            if prev is None:
                new += 1
            else:
                changed += 1
            if result.outcome != "ok" or sha is None:
                early.quarantined.append(_refused(src, entry.url, result, run_id, now, key=key))
                early.states.append(_quarantined(src, key, run_id))
                continue
            todo.append(_fetched(key, result, sha, entry.title, entry.published_at, prev))
    discovered = len(listing.entries) + listing.failed_new + listing.failed_seen + listing.deferred
    plan = Plan(src.name, discovered, new, changed, unchanged, tuple(todo))
    return FetchOutcome(plan, early)


def _defer(early: BatchResult, reason: str | None) -> None:
    """Count one deferred input under its reason."""
    key = reason or "deferred"
    early.deferrals[key] = early.deferrals.get(key, 0) + 1


def _fetched(
    key: str,
    result: FetchResult,
    sha: str,
    title: str | None,
    published_at: datetime | None,
    prev: FileState | None,
) -> FetchedInput:
    """The input a fetched body gives (its fetch time is a page's last-resort date)."""
    return FetchedInput(
        rel=key,
        uri=result.final_url,
        raw_sha256=sha,
        size=len(result.body),
        fetched_ns=int(result.fetched_at.timestamp() * 1e9),
        content_type=result.headers.get("content-type"),
        hint_title=title,
        hint_published_at=published_at,
        prev=prev,
    )


class _Validators(TypedDict):
    """The conditional-GET keywords of `Fetcher.fetch`."""

    etag: str | None
    last_modified: str | None


def _validators(state: UrlState | None) -> _Validators:
    """Conditional-GET validators of the stored copy (none when no body is stored), as `fetch` keywords."""
    if state is None or not state.raw_sha256:
        return {"etag": None, "last_modified": None}
    return {"etag": state.etag, "last_modified": state.last_modified}


def _refused(
    src: SourceConfig,
    url: str,
    result: FetchResult,
    run_id: str,
    now: datetime,
    limit: str = "max_bytes",
    key: str | None = None,
) -> QuarantineRecord:
    """The quarantine record of a URL whose fetch brought no body.

    `limit` names the size setting that applied; `key` is a page's state key (None for a listing).
    """
    message = printable(result.message or f"{result.outcome} ({result.status})")
    if result.reason == "too_large":
        message += f" (the limit is [sources.{src.name}.fetch] {limit})"
    reason = f"fetch_{result.reason or result.outcome}"
    return QuarantineRecord(src.name, url, None, reason, message, run_id, now, key)


async def _discover(
    src: SourceConfig,
    store: RawStore,
    fetcher: Fetcher,
    early: BatchResult,
    run_id: str,
    now: datetime,
    record: bool = True,
) -> _Listing:
    """The source's entries: from its feed, its sitemap (index) or its URL list.

    A document that cannot be read is quarantined (or deferred) and counted in the
    listing; one that lists more than `MAX_ENTRIES` leaves a note in `early`.

    The source's own documents are always read; the child sitemaps of sitemap indexes,
    depth first, up to `max_sitemaps` per run, each index's in `_sitemap_order`. The
    others are deferred ("max_sitemaps") and noted: a later run reads them before those
    it read now.
    """
    listing = _Listing()
    if src.kind == "urls" and not src.urls:
        assert src.path is not None
        try:
            listed = Path(src.path).read_bytes()
        except OSError as exc:
            early.quarantined.append(
                QuarantineRecord(src.name, src.path.as_uri(), None, "read_error", printable(str(exc)), run_id, now)
            )
            listing.failed(fetched_before=False)
            return listing
        found = parse_url_list(listed)
        _note_skipped(early, src.path.as_uri(), found)
        _note_omitted(early, src.path.as_uri(), found)
        listing.entries = _unique(_entries(src, found))
        return listing
    entries: list[Entry] = []

    async def read(url: str) -> list[Entry]:
        """Read one document into `entries`; returns the child sitemaps it lists."""
        body, fetched_before = await _document(src, store, fetcher, url, early, listing, run_id, now, record)
        if body is None:
            return []
        try:
            found = parse_url_list(body, url) if src.kind == "urls" else parse_feed(body, url)
        except FeedError as exc:
            message = printable(str(exc))
            early.quarantined.append(QuarantineRecord(src.name, url, None, f"feed_{exc.reason}", message, run_id, now))
            listing.failed(fetched_before)
            return []
        _note_skipped(early, url, found)
        _note_omitted(early, url, found)
        entries.extend(_entries(src, found))
        return [s for s in found.sitemaps if _recent(src, s)]

    seen = set(src.urls)
    # Depth first: a child index read is followed by its own children before its siblings,
    # so the budget reaches every level (read level by level, an index of more child
    # indexes than `max_sitemaps` spent it on them in every run and never reached a page).
    todo: list[Entry] = []
    found_children = 0

    def add(children: list[Entry]) -> None:
        nonlocal found_children
        fresh: dict[str, Entry] = {}  # the first listing of each child not seen before
        for child in children:
            if child.url not in seen:
                fresh.setdefault(child.url, child)
        seen.update(fresh)
        found_children += len(fresh)
        todo.extend(reversed(_sitemap_order(src, store, list(fresh.values()))))

    for url in dict.fromkeys(src.urls):
        add(await read(url))
    budget, deferred = src.fetch.max_sitemaps, 0
    while todo:
        child = todo.pop()
        if budget == 0:
            deferred += 1
            _defer(early, "max_sitemaps")
            listing.deferred += 1
            continue
        budget -= 1
        add(await read(child.url))
    if deferred:
        note = (
            f"{found_children} child sitemaps listed, {found_children - deferred} read this run (max_sitemaps = "
            f"{src.fetch.max_sitemaps}), {deferred} deferred to later runs (those never read or changed first)"
        )
        log.warning("%s", note)
        early.notes.append(note)
    listing.entries = _unique(entries)
    return listing


def _sitemap_order(src: SourceConfig, store: RawStore, children: list[Entry]) -> list[Entry]:
    """Child sitemaps in the order a run reads them, so that every one is read within a few runs.

    First those never read or whose `lastmod` is after our last read of them (or that
    give none: they may have changed), then those known unchanged; in each group the
    least recently read first (never read before read), then the newest `lastmod`. A
    sitemap read this run goes to the back of its group, so a run reads what the runs
    before it left: no child waits for ever, however many the index lists.
    """

    def rank(child: Entry) -> tuple[bool, bool, float, bool, float]:
        state = store.url_state(src.name, canonical_url(child.url))
        last = state.fetched_at if state is not None else None
        unchanged = last is not None and child.modified_at is not None and child.modified_at <= last
        return (unchanged, last is not None, last.timestamp() if last else 0.0, *recency_key(child))

    return sorted(children, key=rank)  # stable: the index's order breaks ties


def _note_skipped(early: BatchResult, url: str, found: Discovery) -> None:
    """Say, in the run summary and the log, how many entries of a document had no usable http(s) URL, and why.

    They are not inputs (there is nothing to fetch or to key a state on), so they are
    noted rather than quarantined: a note per document and run, however many there are.
    """
    if found.skipped:
        quoted = "; ".join(found.skipped[:QUOTED_SKIPS])
        more = len(found.skipped) - QUOTED_SKIPS
        note = f"{url}: {len(found.skipped)} entries skipped, no usable http(s) URL: {quoted}"
        note += f"; and {more} more" if more > 0 else ""
        log.warning("%s", note)
        early.notes.append(note)


def _note_omitted(early: BatchResult, url: str, found: Discovery) -> None:
    """Say, in the run summary and the log, how many entries a long document left out."""
    if found.omitted:
        kept = len(found.entries) + len(found.sitemaps)
        total, left = kept + found.omitted, found.omitted
        note = f"{url} lists {total} entries: {kept} kept (newest first, undated last), {left} left out"
        log.warning("%s", note)
        early.notes.append(note)


async def _document(
    src: SourceConfig,
    store: RawStore,
    fetcher: Fetcher,
    url: str,
    early: BatchResult,
    listing: _Listing,
    run_id: str,
    now: datetime,
    record: bool = True,
) -> tuple[bytes | None, bool]:
    """A feed or sitemap body (fetched conditionally; a 304 re-reads the stored copy), and if it was fetched before.

    A document that brings no body is counted in `listing`: deferred (robots.txt
    unavailable, the server asks to wait), or quarantined with its reason. Without
    `record` (a dry run) the fetch and its body are not kept in the raw store.
    """
    key = canonical_url(url)
    state = store.url_state(src.name, key)
    fetched_before = state is not None
    result = await fetcher.fetch(url, max_bytes=src.fetch.max_listing_bytes, **_validators(state))
    sha = _record(store, src.name, key, result, state) if record else None
    if result.outcome == "not_modified" and state is not None and state.raw_sha256:
        return store.get(state.raw_sha256), fetched_before
    if sha is not None:
        return store.get(sha), fetched_before
    if not record and result.ok:
        return result.body, fetched_before
    if result.outcome == "deferred":
        _defer(early, result.reason)
        listing.deferred += 1
    else:
        early.quarantined.append(_refused(src, url, result, run_id, now, limit="max_listing_bytes"))
        listing.failed(fetched_before)
    return None, fetched_before


def _record(store: RawStore, source: str, key: str, result: FetchResult, prev: UrlState | None) -> str | None:
    """Keep the body (if any) and the fetch in the raw store; returns the body's digest.

    `prev` is the URL's state read before the fetch: validators and body survive a fetch that got none.
    """
    sha = store.put(result.body) if result.ok else None
    headers = {k: v for k, v in result.headers.items() if k.lower() in _KEPT_HEADERS}
    store.record(
        FetchRecord(source, result.url, result.final_url, result.status or 0, result.fetched_at, sha, headers),
        UrlState(
            source,
            key,
            etag=headers.get("etag") if result.ok else (prev.etag if prev else None),
            last_modified=headers.get("last-modified") if result.ok else (prev.last_modified if prev else None),
            raw_sha256=sha or (prev.raw_sha256 if prev else None),
            last_status=result.status,
            last_outcome=result.outcome,
            fetched_at=result.fetched_at,
            next_fetch_at=result.retry_at or _gone_until(result, prev),
        ),
    )
    return sha


def _gone_until(result: FetchResult, prev: UrlState | None) -> datetime | None:
    """When a page that answered 404 or 410 may be asked again (None for any other answer); see GONE_FIRST_WAIT."""
    first = GONE_FIRST_WAIT.get(result.status or 0) if result.outcome == "error" else None
    if first is None:
        return None
    wait = first
    if prev is not None and prev.last_status in GONE_FIRST_WAIT and prev.fetched_at and prev.next_fetch_at:
        wait = max(first, 2 * (prev.next_fetch_at - prev.fetched_at))
    return result.fetched_at + min(wait, GONE_MAX_WAIT)


def _entries(src: SourceConfig, found: Discovery) -> list[Entry]:
    return [e for e in found.entries if _recent(src, e)]


def _recent(src: SourceConfig, entry: Entry) -> bool:
    """False for an entry dated outside the source's `since`..`until` days (undated entries are kept)."""
    since, until = src.fetch.since, src.fetch.until
    when = entry.when
    if when is None:
        return True
    if since is not None and when < datetime.combine(since, time(), UTC):
        return False
    return until is None or when < datetime.combine(until + timedelta(days=1), time(), UTC)


def _unique(entries: list[Entry]) -> list[tuple[str, Entry]]:
    """Entries keyed by their normalised URL, the first of each kept."""
    seen: dict[str, Entry] = {}
    for e in entries:
        try:
            seen.setdefault(canonical_url(e.url), e)
        except ValueError:  # the parsers only return absolute http(s) URLs; kept as a guard
            continue
    return list(seen.items())


def _due(
    src: SourceConfig, store: RawStore, entries: list[tuple[str, Entry]], now: datetime, early: BatchResult
) -> list[tuple[str, Entry, UrlState | None]]:
    """Entries to fetch this run, with their stored state: not deferred to later, at most `max_pages`.

    Under the page cap, URLs never fetched come first, so a listing longer than the cap
    is worked through over the runs instead of re-checking the same pages each run;
    within each group the newest entries (undated after dated, then listing order).
    The others are counted in `early` as deferred: "gone" (it answered 404 or 410, and
    its wait is not over), "not_due" (an earlier run was told to wait) or "max_pages".
    Each URL's state is read once here and used for the conditional GET and for
    recording the fetch.
    """
    stated = [(key, e, store.url_state(src.name, key)) for key, e in entries]
    stated.sort(key=lambda s: (s[2] is not None, *recency_key(s[1])))  # stable: listing order breaks ties
    due: list[tuple[str, Entry, UrlState | None]] = []
    for key, e, state in stated:
        if state and state.next_fetch_at and state.next_fetch_at > now:
            _defer(early, "gone" if state.last_status in GONE_FIRST_WAIT else "not_due")
        elif len(due) >= src.fetch.max_pages:
            _defer(early, "max_pages")
        else:
            due.append((key, e, state))
    return due


def _quarantined(src: SourceConfig, key: str, run_id: str) -> FileState:
    """The state row of a URL whose fetch brought no body (so nothing to hash or place)."""
    version = normalizer_for(src.format, key)[1]
    return FileState(src.name, key, 0, 0, "", None, None, None, "quarantined", version, run_id)


def plan_http_backfill(
    src: SourceConfig,
    root: DataRoot,
    start: date,
    end: date,
    redo: str,
    newest_first: bool = False,
    dry_run: bool = False,
) -> BackfillPlan:
    """Plan a backfill of an HTTP source: new URLs placed by their feed or sitemap dates, stored ones by their row.

    The feeds and sitemaps are fetched (conditionally) to read their dates; no page is.
    A `dry_run` keeps nothing of those fetches (the raw store is only read).
    A stored row whose URL is no longer listed is rebuilt from the raw store, so a feed
    that dropped old items does not empty old months.
    """
    check_redo(redo)
    first, last = whole_months(start, end)
    states = stored_states(root, src.name)
    window = dataclasses.replace(src, fetch=dataclasses.replace(src.fetch, since=first, until=last))
    problems = BatchResult()
    with RawStore(root, read_only=dry_run) as store:
        entries = asyncio.run(_discover_only(window, store, problems, record=not dry_run)).entries
        placed: dict[str, list[Input]] = {}
        rejected: Counter[str] = Counter(q.reason for q in problems.quarantined)
        rejected.update({f"deferred_{reason}": n for reason, n in problems.deferrals.items()})
        listed: set[str] = set()
        for key, entry in entries:
            prev = states.get(key)
            # A URL already stored is placed by the month its row has (its article's own
            # date); a new one by its feed or sitemap date, the best evidence before fetching.
            when = entry.when
            if prev is not None and prev.status == "written" and prev.partition:
                period = Partition.parse(prev.partition).period
            elif when is not None:
                period = Partition.of(src.name, when).period
            else:
                rejected["undated"] += 1
                continue
            listed.add(key)
            url_state = store.url_state(src.name, key)
            stored = url_state.raw_sha256 if url_state else None
            # Fetched when its unit runs; until then the digest of its stored body stands
            # for it in the unit's fingerprint.
            placed.setdefault(period, []).append(
                ListedUrl(key, entry.url, stored, entry.title, entry.published_at, prev)
            )
        for key, s in sorted(states.items()):
            if key in listed or s.status != "written" or not s.partition or not s.raw_sha256:
                continue
            placed.setdefault(Partition.parse(s.partition).period, []).append(stored_input(store, src.name, s))
    # Pages not fetched yet have no known article id: their unit places them when it runs.
    ids = {key: s.article_id for key, s in states.items() if s.status == "written" and s.article_id}
    with plan_store(root, dry_run) as plan:
        plan.add((period, c, ids.get(c.rel)) for period, items in placed.items() for c in items)
        return build_plan(src, root, first, last, plan, rejected, redo, newest_first)


async def _discover_only(src: SourceConfig, store: RawStore, problems: BatchResult, record: bool) -> _Listing:
    async with Fetcher(policy_for(src)) as fetcher:
        return await _discover(src, store, fetcher, problems, "plan", datetime.now(UTC), record)


def fetch_unit(
    src: SourceConfig, root: DataRoot, run_id: str, unit: Unit, transport: httpx.AsyncBaseTransport | None = None
) -> tuple[Unit, BatchResult]:
    """Fetch a unit's listed URLs into the raw store; returns the unit reading from it, and fetch failures.

    A URL whose fetch brings no body (304, an error, a deferral) is rebuilt from its
    stored body when there is one; only a URL never stored is quarantined.
    """
    return asyncio.run(_fetch_unit(src, root, run_id, unit, transport))


async def _fetch_unit(
    src: SourceConfig, root: DataRoot, run_id: str, unit: Unit, transport: httpx.AsyncBaseTransport | None
) -> tuple[Unit, BatchResult]:
    now = datetime.now(UTC)
    early = BatchResult()
    wanted = [c for c in unit.items if isinstance(c, ListedUrl)]
    items: list[Input] = [c for c in unit.items if not isinstance(c, ListedUrl)]
    with RawStore(root) as store:
        states = [store.url_state(src.name, c.rel) for c in wanted]
        async with Fetcher(policy_for(src), transport) as fetcher:
            results = await asyncio.gather(
                *(fetcher.fetch(c.uri, **_validators(s)) for c, s in zip(wanted, states, strict=True))
            )
        for cand, state, result in zip(wanted, states, results, strict=True):
            sha = _record(store, src.name, cand.rel, result, state)
            if sha:
                items.append(_fetched(cand.rel, result, sha, cand.hint_title, cand.hint_published_at, cand.prev))
                continue
            body_sha = state.raw_sha256 if state else None
            if body_sha is None:
                early.quarantined.append(_refused(src, cand.uri, result, run_id, now, key=cand.rel))
                early.states.append(_quarantined(src, cand.rel, run_id))
                continue
            # No body this time: the stored one, its size and fetch time as the state has them.
            assert state is not None  # body_sha came from it
            prev = cand.prev
            fetched_ns = prev.mtime_ns if prev else int((state.fetched_at or now).timestamp() * 1e9)
            items.append(
                FetchedInput(
                    cand.rel,
                    cand.uri,
                    body_sha,
                    prev.size if prev else 0,
                    fetched_ns,
                    None,
                    cand.hint_title,
                    cand.hint_published_at,
                    prev,
                )
            )
    items.sort(key=lambda c: c.rel)
    return dataclasses.replace(unit, loaded=tuple(items), store=None), early
