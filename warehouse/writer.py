"""Upsert of article rows into partitions, one Parquet file per partition.

Work arrives as *spill files* (Arrow IPC), written batch by batch while documents
are normalised; a partition is then rebuilt once from its old file and its spills.
This keeps memory bounded by a batch, lets the write stage re-run on its own, and
means a partition is rewritten once per run however many batches touched it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import uuid
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pyarrow import ipc

from normalizers.schema import Article
from warehouse.atomic import locked, publish
from warehouse.journal import Change, Commit, FileId
from warehouse.layout import DataRoot, Partition, run_file_stem
from warehouse.schema import ARTICLE_SCHEMA, PARTITION_COLUMNS, STORED_SCHEMA, articles_to_table, stamp_run
from warehouse.staging import clean_stale_staging, mark_owner

__all__ = [
    "PartitionWrite",
    "SpillBuffer",
    "clean_stale_staging",
    "read_partition",
    "read_spill",
    "upsert_partition",
    "write_spill",
]

# Rows per Parquet row group. An article row is ~11 KB (text, plus the same words in
# lede/sections), so 4,096 rows is ~45 MB: large enough for good compression and scans,
# and small enough that several partition writers at once stay within memory
# (8,192 put the 100k-file benchmark's main process near 450 MB; 4,096 keeps it lower).
ROW_GROUP_ROWS = 4096
COMPRESSION = "zstd"
# Spills are uncompressed: they live minutes, and the write stage memory-maps them with
# no decoding. LZ4 made them ~2.7x smaller but cost ~22 us of CPU per article between
# compressing and decompressing (~40 -> ~28 us spilling, ~40 -> ~27 us writing, measured
# on the benchmark's articles), ~1 s of a 100k-file run. The price is staging space:
# ~11 KB per article of a run, until the run ends (see docs/operations.md).
_SPILL_OPTIONS = ipc.IpcWriteOptions(compression=None)
_SPILL_BUFFER = 256 * 1024


@dataclass(frozen=True, slots=True)
class PartitionWrite:
    """What an upsert did to one partition."""

    partition: str
    rows_before: int
    rows_after: int
    upserted: int
    removed: int
    change: Change | None = None  # staged (`upsert_partition(stage=...)`): what publishing the commit applies
    versions: Change | None = None  # staged: the earlier versions of articles whose content changed (if any)


def write_spill(root: DataRoot, run_id: str, partition: Partition, name: str, table: pa.Table) -> Path:
    """Write one batch's rows for `partition` as an Arrow IPC spill file; returns its path."""
    mark_owner(root.spills(run_id) / partition.source)  # whose spills these are, for clean-ups while it runs
    folder = root.spills(run_id) / partition.source / partition.period
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.arrow"
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    stored = table.drop_columns([c for c in PARTITION_COLUMNS if c in table.column_names])
    # Buffered: the IPC writer writes each column buffer (offsets, validity, data) on
    # its own, ~100 writes per record batch; unbuffered they cost ~4 us of system time
    # per article row (measured on the benchmark's spills: 11.4 -> 6.6-8.2 us a row).
    with (
        pa.output_stream(str(tmp), compression=None, buffer_size=_SPILL_BUFFER) as sink,
        ipc.new_file(sink, STORED_SCHEMA, options=_SPILL_OPTIONS) as writer,
    ):
        writer.write_table(stored.cast(STORED_SCHEMA))
    os.replace(tmp, path)
    return path


class SpillBuffer:
    """One batch's rows per partition, held in bounded memory and spilled as few files.

    Rows are spilled as the articles carry them: `upsert_partition` stamps the run's
    id and time when it writes them, so a batch normalised ahead of its run becomes
    the run's own by moving its files.

    Articles are held as objects (~36 KB each) only until HOLD_ARTICLES of them are
    waiting; they are then converted to Arrow (~9 KB each) per partition. When the
    Arrow rows reach SPILL_BYTES, every partition's rows go to one spill file each.
    Memory is so bounded whatever the batch size or the number of months a batch
    spans, and a batch usually makes one spill per partition: on the 100k-file
    benchmark (24 months), spilling every 1,000 articles instead made 5x the files and
    the write stage ~2 s slower, opening them (~0.5 ms per open).
    """

    HOLD_ARTICLES = 1000
    SPILL_BYTES = 64 * 2**20

    def __init__(self, root: DataRoot, run_id: str, batch_name: str) -> None:
        self._root, self._run_id, self._batch = root, run_id, batch_name
        self._objects: dict[Partition, list[Article]] = {}
        self._held = 0
        self._tables: dict[Partition, list[pa.Table]] = {}
        self._bytes = 0
        self.spills: dict[str, list[str]] = {}

    def add(self, partition: Partition, article: Article) -> None:
        """Hold `article` for `partition`, converting and spilling when the bounds are reached."""
        self._objects.setdefault(partition, []).append(article)
        self._held += 1
        if self._held >= self.HOLD_ARTICLES:
            self._convert()
            if self._bytes >= self.SPILL_BYTES:
                self._spill()

    def finish(self) -> dict[str, list[str]]:
        """Spill everything still held; returns the spill paths per partition key."""
        self._convert()
        self._spill()
        return self.spills

    def _convert(self) -> None:
        # One conversion for all held articles, then zero-copy slices per partition:
        # converting per partition paid the per-table overhead once per month (a batch
        # spanning 24 months made 24 tables of ~40 rows each hold).
        held = [(part, articles) for part, articles in self._objects.items() if articles]
        if not held:
            return
        table = articles_to_table(a for _, articles in held for a in articles)
        offset = 0
        for part, articles in held:
            piece = table.slice(offset, len(articles))
            offset += len(articles)
            self._tables.setdefault(part, []).append(piece)
            self._bytes += piece.nbytes
            articles.clear()
        self._held = 0

    def _spill(self) -> None:
        for part, tables in self._tables.items():
            if tables:
                paths = self.spills.setdefault(part.key, [])
                name = f"{self._batch}-{len(paths)}"
                paths.append(str(write_spill(self._root, self._run_id, part, name, pa.concat_tables(tables))))
                tables.clear()
        self._bytes = 0


def read_spill(path: Path, columns: list[str] | None = None) -> pa.Table:
    """A spill's rows (memory-mapped, not copied); with `columns`, only those columns."""
    options = None
    if columns:
        options = ipc.IpcReadOptions(included_fields=[STORED_SCHEMA.get_field_index(c) for c in columns])
    with pa.memory_map(str(path)) as source:
        table = ipc.open_file(source, options=options).read_all()
    return table.select(columns) if columns else table


def _keep_rows(spills: Sequence[Path], exclude: set[str]) -> tuple[list[list[int] | None], set[str]]:
    """Per spill, the row indices to keep (None = all) so each article_id keeps its last occurrence.

    Ids in `exclude` keep no row at all.

    Only the id column is read here; rows are read one spill at a time when written,
    so memory stays bounded by one batch however large the partition.
    """
    last: dict[str, tuple[int, int]] = {}
    sizes = []
    for si, path in enumerate(spills):
        ids = read_spill(path, ["article_id"]).column(0).to_pylist()
        sizes.append(len(ids))
        for ri, aid in enumerate(ids):
            if aid not in exclude:
                last[aid] = (si, ri)
    keep: list[list[int]] = [[] for _ in spills]
    for si, ri in last.values():
        keep[si].append(ri)
    return [None if len(k) == n else sorted(k) for k, n in zip(keep, sizes, strict=True)], set(last)


def upsert_partition(
    root: DataRoot,
    partition: Partition,
    spills: Sequence[Path] = (),
    delete_ids: Collection[str] = (),
    lock_timeout: float = 600.0,
    replace: bool = False,
    run_id: str | None = None,
    ingested_at: datetime | None = None,
    stage: Commit | None = None,
    keep_ids: Collection[str] = (),
) -> PartitionWrite:
    """Replace rows of `partition` by article_id with the spilled rows, atomically.

    Ids in `delete_ids` are removed, from the old rows and from the spills alike (an
    article that now lives in another partition). With `replace`, no old row is kept
    but those of `keep_ids`, deleted or not: the partition becomes the spilled rows (a
    backfill's rebuild; `keep_ids` are articles another commit will move away), and
    old rows not among them count as removed. With `run_id`, the spilled rows get it and
    `ingested_at` (default: now); without, they are written as spilled.

    Without `stage`, the new file is staged outside the dataset, fsynced and renamed
    over the old one under the partition lock. With `stage`, it is only staged (whole
    and fsynced) in that commit's folder, and the result's `change` is what
    `warehouse.journal.publish` must apply (None: the partition neither had nor gets
    rows); nothing under the dataset changes, so any process may stage.
    """
    if run_id is not None and ingested_at is None:
        ingested_at = datetime.now(UTC)
    target = root.partition_file(partition)
    if stage is not None:
        if stage.source != partition.source or stage.root != root:
            raise ValueError(f"partition {partition.key} cannot be staged in a commit of {stage.source}")
        staged = stage.staged_path(partition.period)
        with _open_partition(target, identify=True) as (old, base):
            chosen = _keep_rows(spills, set(delete_ids))
            counts = _rebuild(old, staged, spills, chosen, delete_ids, replace, run_id, ingested_at, keep_ids)
            earlier = _earlier_versions(old, spills, chosen, ingested_at or datetime.now(UTC))
        if counts.rows_after:
            _fsync(staged)
            change: Change | None = stage.change(target, staged, base)
        else:
            staged.unlink()
            change = None if base is None else stage.change(target, None, base)
        versions = None
        if earlier is not None:
            kept = stage.staged_path(f"versions-{partition.period}")
            pq.write_table(earlier, str(kept), compression=COMPRESSION)
            name = run_file_stem(run_id) if run_id else uuid.uuid4().hex
            versions = stage.change(root.article_versions / partition.relpath / f"{name}.parquet", kept, None)
        return dataclasses.replace(counts, partition=partition.key, change=change, versions=versions)
    with locked(root.lock_file(partition), timeout=lock_timeout):
        _clean_stale_stages(root, partition)
        root.staging.mkdir(parents=True, exist_ok=True)
        staged = root.staging / f"{_stage_prefix(partition)}{os.getpid()}.{uuid.uuid4().hex}.parquet"
        with _open_partition(target, identify=False) as (old, _base):
            chosen = _keep_rows(spills, set(delete_ids))
            counts = _rebuild(old, staged, spills, chosen, delete_ids, replace, run_id, ingested_at, keep_ids)
        if counts.rows_after == 0:
            staged.unlink()
            if target.exists():
                target.unlink()
        else:
            publish(staged, target)
    return dataclasses.replace(counts, partition=partition.key)


@contextlib.contextmanager
def _open_partition(target: Path, identify: bool) -> Iterator[tuple[pq.ParquetFile | None, FileId | None]]:
    """The partition's current file opened for reading (None when there is none), and with `identify`, which file.

    The identity comes from the open file itself, so it names exactly the rows read even
    if the file is replaced meanwhile (a staging writer holds no lock). Without it the
    file is opened by path, which pyarrow reads without going through Python.
    """
    if not identify:
        yield (pq.ParquetFile(str(target)) if target.exists() else None), None
        return
    with contextlib.ExitStack() as stack:
        try:
            fh = stack.enter_context(open(target, "rb"))
        except FileNotFoundError:
            yield None, None
            return
        st = os.fstat(fh.fileno())
        yield pq.ParquetFile(fh), (st.st_ino, st.st_size, st.st_mtime_ns)


def _rebuild(
    old: pq.ParquetFile | None,
    staged: Path,
    spills: Sequence[Path],
    chosen: tuple[list[list[int] | None], set[str]],
    delete_ids: Collection[str],
    replace: bool,
    run_id: str | None,
    ingested_at: datetime | None,
    keep_ids: Collection[str] = (),
) -> PartitionWrite:
    """Write the partition's new rows (kept old rows, then the spilled ones) to `staged`; returns the counts.

    `chosen` is `_keep_rows` of the spills (the rows written, the ids they give). The
    result's `partition` is left empty for the caller to fill in. On failure the staged
    file is removed.
    """
    deleted = set(delete_ids)
    keep, new_ids = chosen
    drop = pa.array(sorted(new_ids | deleted), pa.string())
    deleted_ids = pa.array(sorted(deleted), pa.string())
    new_id_set = pa.array(sorted(new_ids), pa.string()) if replace else None  # only a rebuild counts against it
    held = sorted(set(keep_ids) - new_ids) if replace else []
    held_ids = pa.array(held, pa.string()) if held else None
    before = kept_rows = removed = upserted = 0
    writer = _RowGroupWriter(pq.ParquetWriter(str(staged), STORED_SCHEMA, compression=COMPRESSION))
    try:
        if old is not None:
            # A rebuild only counts the old rows, unless it keeps some of them.
            columns = ["article_id"] if replace and held_ids is None else None
            for batch in old.iter_batches(batch_size=ROW_GROUP_ROWS, columns=columns):
                before += batch.num_rows
                ids = batch.column("article_id")
                if new_id_set is not None:
                    replaced = pc.sum(pc.is_in(ids, value_set=new_id_set)).as_py() or 0
                    if held_ids is not None:
                        kept = batch.filter(pc.is_in(ids, value_set=held_ids))
                        if kept.num_rows:
                            writer.add(_conform(pa.Table.from_batches([kept])))
                            kept_rows += kept.num_rows
                        replaced += kept.num_rows
                    removed += batch.num_rows - replaced
                    continue
                if len(deleted_ids):
                    removed += pc.sum(pc.is_in(ids, value_set=deleted_ids)).as_py() or 0
                kept = batch.filter(pc.invert(pc.is_in(ids, value_set=drop)))
                if kept.num_rows:
                    writer.add(_conform(pa.Table.from_batches([kept])))
                    kept_rows += kept.num_rows
        for path, rows in zip(spills, keep, strict=True):
            if rows == []:
                continue
            table = read_spill(path)
            if rows is not None:
                table = table.take(rows)
            if run_id is not None:
                assert ingested_at is not None
                table = stamp_run(table, run_id, ingested_at)
            writer.add(table)
            upserted += table.num_rows
            del table
    except BaseException:
        writer.close(flush=False)
        with contextlib.suppress(FileNotFoundError):
            staged.unlink()
        raise
    writer.close()
    return PartitionWrite("", before, kept_rows + upserted, upserted, removed)


def _earlier_versions(
    old: pq.ParquetFile | None,
    spills: Sequence[Path],
    chosen: tuple[list[list[int] | None], set[str]],
    changed_at: datetime,
) -> pa.Table | None:
    """The old rows a write replaces with another version: the article's content and its raw input both changed.

    A new normaliser reading the same input (a re-normalisation, `--force`) changes the
    content but not the input: not a revision. `chosen` is `_keep_rows` of the spills.
    None when there is none.
    """
    keep, new_ids = chosen
    if old is None or not new_ids:
        return None
    facts = ["article_id", "content_hash", "raw_sha256"]
    incoming = _written(spills, keep, facts)
    before = old.read(columns=facts)
    before = before.filter(pc.is_in(before.column("article_id"), value_set=incoming.column("article_id")))
    if before.num_rows == 0:
        return None
    pairs = before.join(incoming, "article_id", right_suffix="_new")
    differ = pc.and_(
        pc.not_equal(pairs.column("content_hash"), pairs.column("content_hash_new")),
        pc.fill_null(pc.not_equal(pairs.column("raw_sha256"), pairs.column("raw_sha256_new")), True),
    )
    revised = pairs.filter(differ).column("article_id")
    if len(revised) == 0:
        return None
    full = old.read()
    rows = _conform(full.filter(pc.is_in(full.column("article_id"), value_set=revised)))
    compared = ["article_id", "title", "text", "published_at"]
    new = _written(spills, keep, compared)
    now = {r["article_id"]: r for r in new.filter(pc.is_in(new.column("article_id"), value_set=revised)).to_pylist()}
    was = rows.select(compared).to_pylist()
    flags = [pa.array([r[name] != now[r["article_id"]][name] for r in was], pa.bool_()) for name in compared[1:]]
    when = pa.array([changed_at] * rows.num_rows, VERSION_FIELDS[0].type)
    for field, column in zip(VERSION_FIELDS, [when, *flags], strict=True):
        rows = rows.append_column(field, column)
    return rows


def _written(spills: Sequence[Path], keep: Sequence[list[int] | None], columns: list[str]) -> pa.Table:
    """The spilled rows a write keeps (one per article, see `_keep_rows`), in `columns`."""
    parts = [t if rows is None else t.take(rows) for path, rows in zip(spills, keep, strict=True) if rows != []
             for t in [read_spill(path, columns)]]  # fmt: skip
    return pa.concat_tables(parts) if parts else read_spill(spills[0], columns).slice(0, 0)


VERSION_FIELDS = (
    pa.field("changed_at", pa.timestamp("us", tz="UTC"), nullable=False,
             metadata={"description": "When a later version replaced this one (UTC)."}),
    pa.field("title_changed", pa.bool_(), nullable=False,
             metadata={"description": "The next version's title differs."}),
    pa.field("text_changed", pa.bool_(), nullable=False,
             metadata={"description": "The next version's text differs."}),
    pa.field("date_changed", pa.bool_(), nullable=False,
             metadata={"description": "The next version's `published_at` differs."}),
)  # fmt: skip
VERSION_SCHEMA = pa.schema([*STORED_SCHEMA, *VERSION_FIELDS])


def _fsync(path: Path) -> None:
    with open(path, "rb") as fh:
        os.fsync(fh.fileno())


def _conform(table: pa.Table) -> pa.Table:
    """Old rows in the current stored schema: columns a newer schema added get their defaults."""
    if table.schema.equals(STORED_SCHEMA):
        return table
    defaults = {f.name: f.default for f in dataclasses.fields(Article)}
    columns = []
    for fld in STORED_SCHEMA:
        if fld.name in table.column_names:
            columns.append(table.column(fld.name).cast(fld.type))
        else:
            default = defaults.get(fld.name)
            value = None if default is dataclasses.MISSING else default
            columns.append(pa.array([value] * table.num_rows, type=fld.type))
    return pa.Table.from_arrays(columns, schema=STORED_SCHEMA)


class _RowGroupWriter:
    """Buffers tables so every row group but the last has ROW_GROUP_ROWS rows.

    Spills hold a few dozen to a few thousand rows each; written one by one they would
    make as many small row groups, which compress worse and slow every reader.
    """

    def __init__(self, writer: pq.ParquetWriter) -> None:
        self._writer = writer
        self._held: list[pa.Table] = []
        self._rows = 0

    def add(self, table: pa.Table) -> None:
        """Queue `table`; write every full row group now held."""
        self._held.append(table)
        self._rows += table.num_rows
        if self._rows >= ROW_GROUP_ROWS:
            held = pa.concat_tables(self._held)
            full = (self._rows // ROW_GROUP_ROWS) * ROW_GROUP_ROWS
            self._writer.write_table(held.slice(0, full), row_group_size=ROW_GROUP_ROWS)
            rest = held.slice(full)
            self._held, self._rows = ([rest] if rest.num_rows else []), rest.num_rows

    def close(self, flush: bool = True) -> None:
        """Write the last, partial row group (unless `flush` is false) and close the file."""
        try:
            if flush and self._rows:
                self._writer.write_table(pa.concat_tables(self._held), row_group_size=ROW_GROUP_ROWS)
        finally:
            self._writer.close()


def _stage_prefix(partition: Partition) -> str:
    return f"{partition.source}.{partition.period}."


def _clean_stale_stages(root: DataRoot, partition: Partition) -> None:
    """Remove staged files of this partition left by a killed writer (we hold its lock)."""
    if not root.staging.is_dir():
        return
    prefix = _stage_prefix(partition)
    for entry in os.scandir(root.staging):
        if entry.name.startswith(prefix) and entry.name.endswith(".parquet"):
            os.unlink(entry.path)


def read_partition(root: DataRoot, partition: Partition) -> pa.Table:
    """Read one partition's rows as `ARTICLE_SCHEMA` (partition columns restored; empty if absent)."""
    target = root.partition_file(partition)
    if not target.exists():
        return ARTICLE_SCHEMA.empty_table()
    stored = pq.read_table(str(target), schema=STORED_SCHEMA)
    source = pa.array([partition.source] * stored.num_rows, pa.string())
    return stored.add_column(ARTICLE_SCHEMA.get_field_index("source"), ARTICLE_SCHEMA.field("source"), source).cast(
        ARTICLE_SCHEMA
    )
