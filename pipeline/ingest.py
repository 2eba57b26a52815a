"""The ingest pipeline as plain functions; `flows.flow` wraps them in Prefect tasks.

Stages hand over through files: `process_batch` normalises a batch of inputs and
spills its rows per partition; `write_partition` rebuilds one partition from its
spills; `finish_source` records quarantine and state. Each stage can re-run alone.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import shutil
import time
from collections import defaultdict
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

from normalizers.boilerplate import counts
from normalizers.dispatch import normalize, normalizer_for
from normalizers.errors import Rejection, RejectReason
from normalizers.meta import SourceMeta
from normalizers.schema import Article
from pipeline.config import SourceConfig
from pipeline.files import InputProblem, printable, read_confined, real_root
from pipeline.inputs import FetchedInput, Readable, WarcInput, is_current, state_facts
from warehouse.boilerplate import Counted
from warehouse.coverage import CoverageRecord, stage_coverage
from warehouse.journal import Change, Commit, publish
from warehouse.layout import DataRoot, Partition, published_day
from warehouse.ledger import LedgerEntry
from warehouse.quarantine import QuarantineRecord, stage_current, stage_quarantine
from warehouse.raw import RawStore
from warehouse.state import FileState, StateStore, WarcProgress
from warehouse.writer import PartitionWrite, SpillBuffer, upsert_partition

__all__ = [
    "BATCH_SIZE",
    "DOCUMENT_TIME_BUDGET_S",
    "BatchResult",
    "SourceSummary",
    "TimeBudget",
    "assign_partitions",
    "finish_source",
    "in_batches",
    "input_meta",
    "merge_batches",
    "normalize_input",
    "process_batch",
    "read_input",
    "stage_outcomes",
    "write_partition",
]


# Documents per normalise task (and per `process_batch` call of a backfill unit). A task
# costs tens of ms of Prefect bookkeeping (client and server) while an article costs
# ~0.2 ms, so batches are large: on 100k files, 5,000 ran the normalise phase faster
# than 2,000 (fewer task runs competing with the workers for the 2 cores). Memory does
# not grow with it: a worker holds what `warehouse.writer.SpillBuffer` bounds and spills
# the rest.
BATCH_SIZE = 5000

T = TypeVar("T")


def in_batches(items: Sequence[T], size: int = BATCH_SIZE) -> list[list[T]]:
    """`items` cut into lists of at most `size`, in order."""
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


# Time bound per document, enforced by HTML extraction (text normalisation is linear and
# capped by max_bytes). Real pages take 1-10 ms (bench/extraction.py); only hostile
# markup comes near 2 s, and the record then carries a warning.
DOCUMENT_TIME_BUDGET_S = 2.0


class TimeBudget:
    """A normaliser `Budget` that expires `seconds` after it is made (monotonic clock)."""

    def __init__(self, seconds: float) -> None:
        self._end = time.monotonic() + seconds

    def expired(self) -> bool:
        """True once the time is up."""
        return time.monotonic() >= self._end


@dataclass(slots=True)
class BatchResult:
    """What one batch produced: spill files per partition, outcomes, state rows.

    `deferrals` (inputs left for a later run, by reason) and `notes` (what an operator
    should read, e.g. entries a long feed left out) come from fetching HTTP sources.
    """

    spills: dict[str, list[str]] = field(default_factory=dict)
    deletes: dict[str, list[str]] = field(default_factory=dict)
    states: list[FileState] = field(default_factory=list)
    quarantined: list[QuarantineRecord] = field(default_factory=list)
    articles: int = 0
    unchanged: int = 0
    deferrals: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    counted: list[Counted] = field(default_factory=list)  # written articles' edge blocks, to learn boilerplate from
    progress: list[WarcProgress] = field(default_factory=list)  # WARC sources: how far the commit read each file


@dataclass(slots=True)
class SourceSummary:
    """Counts for one source in one run; they reconcile (see `reconciles`).

    An input is a file, a listed URL, or (HTTP sources) a feed, sitemap or URL list
    that gave no entries because it failed: quarantined (`reasons`, counted as new or
    changed) or deferred (`deferrals`). `notes` are what the run wants an operator to
    read, such as entries a long feed left out or listed entries with no usable URL.
    """

    source: str
    discovered: int = 0
    new: int = 0
    changed: int = 0
    unchanged: int = 0
    written: int = 0
    superseded: int = 0
    quarantined: int = 0
    deferred: int = 0  # HTTP sources: not fetched this run (retry later, or past the per-run page cap)
    partitions: list[str] = field(default_factory=list)
    reasons: dict[str, int] = field(default_factory=dict)  # quarantined inputs by reason
    deferrals: dict[str, int] = field(default_factory=dict)  # deferred inputs by reason
    notes: list[str] = field(default_factory=list)
    # Why the source did not run to its end (its counts are then partial): one line, and
    # whether the user can fix it (a missing folder) or it is a fault to report.
    error: str | None = None
    user_error: bool = False
    ledger: list[LedgerEntry] = field(default_factory=list)  # re-normalisations and backfill units: per partition
    learned: list[str] = field(default_factory=list)  # blocks learned as the source's boilerplate in this run
    restripped: int = 0  # stored articles normalised again to remove boilerplate learned since they were written
    skipped: dict[str, int] = field(default_factory=dict)  # WARC sources: records not taken, by reason

    def reconciles(self) -> bool:
        """Every discovered input ended as unchanged, written, superseded, quarantined or deferred (with a reason)."""
        processed = self.new + self.changed
        return (
            self.discovered == processed + self.unchanged + self.deferred
            and processed == self.written + self.superseded + self.quarantined
            and self.deferred == sum(self.deferrals.values())
        )


def _quarantine(
    src: str, cand: Readable, raw_sha: str | None, rej: Rejection, run_id: str, now: datetime
) -> QuarantineRecord:
    uri = cand.uri
    # Stored `printable` whatever built the message (a normaliser quoting the document, a
    # listing quoting a name): escaping twice changes nothing.
    return QuarantineRecord(src, uri, raw_sha, rej.reason.value, printable(rej.message), run_id, now, cand.rel)


def process_batch(
    src: SourceConfig,
    root: DataRoot,
    run_id: str,
    batch_name: str,
    items: Sequence[Readable],
    force: bool = False,
) -> BatchResult:
    """Read and normalise a batch of files; spill articles per partition. Never raises on input.

    A file whose bytes, sidecar and normaliser are unchanged since its last run is only
    re-stamped in the state, unless `force` is set.
    """
    now = datetime.now(UTC)
    out = BatchResult()
    buffer = SpillBuffer(root, run_id, batch_name)
    # Validated, and its key formatted, once per month, not per article.
    partitions: dict[tuple[int, int], tuple[Partition, str]] = {}
    raw_store: RawStore | None = None
    folder = real_root(src.path) if src.path is not None else ""
    for cand in items:
        prev = cand.prev
        if isinstance(cand, FetchedInput):
            raw_store = raw_store or RawStore(root)
        loaded = read_input(src, cand, raw_store, folder)
        if isinstance(loaded, Rejection):
            out.quarantined.append(_quarantine(src.name, cand, None, loaded, run_id, now))
            out.states.append(_state(src, cand, None, None, None, "quarantined", run_id))
            _forget(out, prev, None, None)
            continue
        raw, sidecar = loaded
        # Hashed here only when the unchanged check needs it: an article carries the
        # digest its normaliser computed (a 4 KB SHA-256 is ~4 us, twice per new file).
        raw_sha = hashlib.sha256(raw).hexdigest() if prev is not None else None
        version = normalizer_for(src.format, cand.rel)[1]
        if not force and prev is not None and prev.status == "written" and is_current(cand, prev, version, raw_sha):
            # Touched but identical: nothing to redo, just remember the new stat facts.
            size, mtime_ns, _sidecar = state_facts(cand)
            out.unchanged += 1
            out.states.append(prev._replace(size=size, mtime_ns=mtime_ns, run_id=run_id))
            continue
        result = normalize_input(src, cand, raw, sidecar, as_of=now)
        if isinstance(result, Rejection):
            raw_sha = raw_sha or hashlib.sha256(raw).hexdigest()
            out.quarantined.append(_quarantine(src.name, cand, raw_sha, result, run_id, now))
            out.states.append(_state(src, cand, raw_sha, None, None, "quarantined", run_id))
            _forget(out, prev, None, None)
            continue
        assert result.published_at is not None
        day = published_day(result)
        month = (day.year, day.month)
        placed = partitions.get(month)
        if placed is None:
            part = Partition.of(src.name, day)
            placed = partitions[month] = (part, part.key)
        part, key = placed
        buffer.add(part, result)
        if src.profile.learn:
            out.counted.append(Counted(cand.rel, *counts(result, src.profile.learned)))
        out.states.append(_state(src, cand, result.raw_sha256, result.article_id, key, "written", run_id))
        _forget(out, prev, result.article_id, key)
        out.articles += 1
    if raw_store is not None:
        raw_store.close()
    out.spills = buffer.finish()
    return out


def read_input(
    src: SourceConfig, cand: Readable, raw_store: RawStore | None, folder: str | None = None
) -> tuple[bytes, bytes | None] | Rejection:
    """An input's bytes and sidecar bytes (from its file, or the raw store), or why they cannot be read.

    A file is read only if it is a regular file inside `folder` (the source root with
    its links resolved; computed here when not given), and so is its sidecar.
    """
    if isinstance(cand, WarcInput):
        try:
            with open(cand.spool, "rb") as fh:
                fh.seek(cand.offset)
                return fh.read(cand.size), None
        except OSError as exc:
            return Rejection(RejectReason.READ_ERROR, str(exc))
    if isinstance(cand, FetchedInput):
        if cand.raw_sha256 is None:
            return Rejection(RejectReason.READ_ERROR, "no body of this document is stored")
        assert raw_store is not None, "a fetched document needs the raw store"
        try:
            return raw_store.get(cand.raw_sha256), None
        except (OSError, ValueError) as exc:  # ValueError: a corrupt raw-store object
            return Rejection(RejectReason.READ_ERROR, str(exc))
    if cand.problem is not None:
        reason, message = cand.problem
        return Rejection(RejectReason(reason), message)
    try:
        if folder is None:
            assert src.path is not None, "a file input needs its source folder"
            folder = real_root(src.path)
        cap = src.profile.max_bytes + 1
        raw = read_confined(cand.path, folder, cand.size, cap)
        sidecar = None
        if cand.sidecar is not None:
            what = f"sidecar {printable(os.path.basename(cand.sidecar))}"
            sidecar = read_confined(cand.sidecar, folder, 4096, cap, what=what)
        return raw, sidecar
    except InputProblem as exc:
        return Rejection(exc.reason, exc.message)
    except (OSError, ValueError) as exc:  # ValueError: a corrupt raw-store object
        return Rejection(RejectReason.READ_ERROR, str(exc))


def input_meta(src: SourceConfig, cand: Readable, sidecar: bytes | None, as_of: datetime | None) -> SourceMeta:
    """What the normaliser is told about an input besides its bytes."""
    if isinstance(cand, WarcInput):  # a record's last-resort date: when it was captured
        return SourceMeta(src.name, cand.uri, cand.rel, cand.record_ns / 1e9, None, as_of=as_of)
    if isinstance(cand, FetchedInput):
        when = cand.fetched_ns / 1e9  # a page's last-resort date: when it was fetched
        return SourceMeta(src.name, cand.uri, cand.rel, when, None, cand.hint_title, cand.hint_published_at, as_of)
    return SourceMeta(src.name, cand.uri, cand.rel, cand.mtime_ns / 1e9, sidecar, as_of=as_of)


def normalize_input(
    src: SourceConfig, cand: Readable, raw: bytes, sidecar: bytes | None, *, as_of: datetime | None
) -> Article | Rejection:
    """Normalise one input's bytes with the source's normaliser; never raises, and an article has a date.

    `as_of` is the time of ingest (the batch's start, read once by the caller): a date
    more than a day after it is not taken for a publication date. None skips that check.
    """
    meta = input_meta(src, cand, sidecar, as_of)
    try:
        budget = TimeBudget(DOCUMENT_TIME_BUDGET_S)
        content_type = cand.content_type if isinstance(cand, FetchedInput | WarcInput) else None
        result = normalize(raw, meta, src.profile, src.format, content_type, budget=budget)
    except Exception as exc:  # a normaliser bug must cost one document, not the batch
        return Rejection(RejectReason.INTERNAL_ERROR, f"{type(exc).__name__}: {str(exc)[:500]}")
    if isinstance(result, Article) and result.published_at is None:
        return Rejection(RejectReason.NO_DATE, "no publication date and no file time to fall back on")
    return result


def _forget(out: BatchResult, prev: FileState | None, article_id: str | None, partition: str | None) -> None:
    """Schedule removal of the row a file produced before, if it now lives elsewhere or nowhere."""
    if prev is None or prev.article_id is None or prev.partition is None:
        return
    if (prev.article_id, prev.partition) != (article_id, partition):
        out.deletes.setdefault(prev.partition, []).append(prev.article_id)


def _state(
    src: SourceConfig,
    cand: Readable,
    raw_sha: str | None,
    article_id: str | None,
    partition: str | None,
    status: str,
    run_id: str,
) -> FileState:
    return FileState(
        src.name,
        cand.rel,
        *state_facts(cand),
        raw_sha,
        article_id,
        partition,
        status,
        normalizer_for(src.format, cand.rel)[1],
        run_id,
    )


def merge_batches(results: Sequence[BatchResult]) -> BatchResult:
    """Combine batch results in batch order."""
    merged = BatchResult()
    for r in results:
        for key, paths in r.spills.items():
            merged.spills.setdefault(key, []).extend(paths)
        for key, ids in r.deletes.items():
            merged.deletes.setdefault(key, []).extend(ids)
        merged.states.extend(r.states)
        merged.quarantined.extend(r.quarantined)
        merged.articles += r.articles
        merged.unchanged += r.unchanged
        for reason, n in r.deferrals.items():
            merged.deferrals[reason] = merged.deferrals.get(reason, 0) + n
        merged.notes.extend(r.notes)
        merged.counted.extend(r.counted)
        merged.progress.extend(r.progress)
    return merged


def assign_partitions(root: DataRoot, source: str, merged: BatchResult) -> None:
    """Make every article_id live in one partition: where its last input, in path order, put it.

    Two inputs can yield one article (same URL in two sidecars) with different dates; the
    later path wins and the other partition gets a delete. Inputs not processed in this
    run count too, through the state.
    """
    processed = {s.path for s in merged.states}
    # Only the articles this run writes or deletes can change partition: their other
    # inputs are read from the state by id, not the whole source's placements.
    wanted = {s.article_id for s in merged.states if s.article_id} | {a for v in merged.deletes.values() for a in v}
    with StateStore(root.state) as store:
        placed: list[tuple[str, str | None, str | None]] = [
            row for row in store.placements(source, wanted) if row[0] not in processed
        ]
    placed += [(s.path, s.article_id, s.partition) for s in merged.states if s.status == "written"]
    placed.sort()
    winner: dict[str, str] = {}
    # Only articles placed in more than one partition need a set of them: one set per
    # article cost ~0.1 s per 100k files, on the path to the first partition write.
    spread: dict[str, set[str]] = {}
    for _path, aid, part in placed:
        if aid is not None and part is not None:
            before = winner.get(aid)
            if before is not None and before != part:
                spread.setdefault(aid, {before}).add(part)
            winner[aid] = part
    for aid, parts in spread.items():
        for part in parts - {winner[aid]}:
            merged.deletes.setdefault(part, []).append(aid)
    # A file whose article moved away asked for a delete; never delete an article from
    # the partition that now holds it.
    for part, ids in merged.deletes.items():
        merged.deletes[part] = sorted({aid for aid in ids if winner.get(aid) != part})


def write_partition(
    root: DataRoot,
    key: str,
    spills: Sequence[str],
    deletes: Sequence[str],
    run_id: str,
    commit: Commit,
    replace: bool = False,
    keep: Collection[str] = (),
) -> PartitionWrite:
    """Stage one partition's new file in `commit`: upserted from its spill files (with `replace`, rebuilt from them).

    Rows get `run_id`; nothing is visible until the commit is published.
    """
    return upsert_partition(
        root,
        Partition.parse(key),
        [Path(p) for p in spills],
        deletes,
        replace=replace,
        run_id=run_id,
        stage=commit,
        keep_ids=keep,
    )


def finish_source(
    root: DataRoot,
    src: SourceConfig,
    run_id: str,
    merged: BatchResult,
    writes: Sequence[PartitionWrite],
    summary: SourceSummary,
    commit: Commit,
    listings_read: bool = False,
    ingest: bool = True,
    log_name: str | None = None,
) -> SourceSummary:
    """Publish the staged partitions, quarantine, coverage and state rows as one commit; the filled-in summary.

    `listings_read`: the run read every feed, sitemap and URL list of the source again,
    so their earlier failures leave the current quarantine (unless they failed again).
    An `ingest` run also leaves its coverage row (a re-normalisation covers nothing new).
    The quarantine log file is named `log_name` (default: the run id).
    `summary` itself is left as it was (a commit that must be staged again calls this again).
    """
    reasons: dict[str, int] = defaultdict(int)
    for q in merged.quarantined:
        reasons[q.reason] += 1
    written = sum(w.upserted for w in writes)
    done = dataclasses.replace(
        summary,
        unchanged=summary.unchanged + merged.unchanged,
        changed=summary.changed - merged.unchanged,  # touched files whose bytes were identical
        quarantined=len(merged.quarantined),
        deferred=sum(merged.deferrals.values()),
        deferrals=dict(sorted(merged.deferrals.items())),
        notes=list(merged.notes),
        written=written,
        superseded=merged.articles - written,
        partitions=sorted(w.partition for w in writes),
        reasons=dict(sorted(reasons.items())),
    )
    changes = stage_outcomes(commit, log_name or run_id, merged, writes, listings_read)
    if ingest:
        changes.append(stage_coverage(commit, _coverage(done, run_id)))
    publish(root, src.name, changes, state=commit.stage_state(merged.states, progress=merged.progress))
    shutil.rmtree(root.spills(run_id) / src.name, ignore_errors=True)
    with contextlib.suppress(OSError):  # the run's folder, once its last source's spills are gone
        root.spills(run_id).rmdir()
    return done


def stage_outcomes(
    commit: Commit, log_name: str, merged: BatchResult, writes: Sequence[PartitionWrite], listings_read: bool = False
) -> list[Change]:
    """Stage what every commit of a run publishes beside its state rows.

    The partitions' new files and the earlier versions they replace, the run's
    quarantine log file (named `log_name`) and the source's current quarantine.
    """
    rejects = stage_quarantine(commit, log_name, merged.quarantined)
    current = stage_current(commit, {s.path for s in merged.states}, merged.quarantined, listings_read)
    return [c for w in writes for c in (w.change, w.versions) if c] + [c for c in (rejects, current) if c]


def _coverage(done: SourceSummary, run_id: str) -> CoverageRecord:
    """The coverage row of one source's run."""
    now = datetime.now(UTC)
    read = done.new + done.changed
    return CoverageRecord(
        done.source, run_id, now.date(), now, done.discovered, read, done.written, done.unchanged,
        done.superseded, done.quarantined, done.deferred,
    )  # fmt: skip
