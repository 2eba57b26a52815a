"""Re-normalisation: rebuild rows whose normaliser version is not the current one.

No fetching and no change detection: the inputs are the state's records of written
documents whose `normalizer_version` differs from the version the current code
gives them, read again from the raw files (file sources) or the raw store (HTTP
sources). The rest of the run (normalise in batches, write partitions, record state)
is the ingest pipeline's; each rewritten row carries the new version and run.
"""

from __future__ import annotations

from datetime import date

from normalizers.dispatch import normalizer_for
from pipeline.config import HTTP_KINDS, SourceConfig
from pipeline.discover import Plan, discover_files, file_input
from pipeline.inputs import FetchedInput, FileInput
from warehouse.layout import DataRoot, Partition
from warehouse.raw import RawStore
from warehouse.state import FileState, StateStore

__all__ = ["plan_renormalize", "plan_renormalize_source", "stored_input"]


def _in_range(state: FileState, start: date | None, end: date | None) -> bool:
    """True when the row's partition month lies within the months of [start, end]."""
    if state.partition is None:
        return False
    part = Partition.parse(state.partition)
    month = (part.year, part.month)
    return (start is None or month >= (start.year, start.month)) and (end is None or month <= (end.year, end.month))


def outdated(src: SourceConfig, states: dict[str, FileState], start: date | None, end: date | None) -> list[FileState]:
    """Written documents of `src` whose stored version is not the current normaliser's."""
    return [
        s
        for rel, s in sorted(states.items())
        if s.status == "written"
        and s.normalizer_version != normalizer_for(src.format, rel)[1]
        and _in_range(s, start, end)
    ]


def stored_input(store: RawStore, source: str, state: FileState) -> FetchedInput:
    """A fetched document to normalise again from its body in the raw store, as its last fetch served it."""
    fetches = [f for f in store.fetches(source, state.path) if f.raw_sha256 == state.raw_sha256]
    last = fetches[-1] if fetches else None
    return FetchedInput(
        rel=state.path,
        uri=last.final_url if last else state.path,
        # A body missing from the raw store fails to read and is quarantined (read_error).
        raw_sha256=state.raw_sha256,
        size=state.size,
        fetched_ns=state.mtime_ns,
        content_type=last.headers.get("content-type") if last else None,
        prev=state,
    )


def plan_renormalize(
    src: SourceConfig,
    root: DataRoot,
    states: dict[str, FileState],
    start: date | None = None,
    end: date | None = None,
    inputs: frozenset[str] | None = None,
) -> Plan:
    """The documents to normalise again, as candidates the ingest pipeline processes.

    Those whose version is outdated, in the months of [start, end]; or, given `inputs`,
    exactly those inputs' written documents that can still be read (their articles are
    normalised again only to strip boilerplate learned since: one whose file or stored
    body is gone keeps its row as written, never removed for it).
    """
    if inputs is not None:
        chosen = [states[rel] for rel in sorted(inputs) if rel in states and states[rel].status == "written"]
    else:
        chosen = outdated(src, states, start, end)
    todo: list[FileInput | FetchedInput] = []
    if src.kind in HTTP_KINDS:
        with RawStore(root) as store:
            if inputs is not None:
                chosen = [s for s in chosen if s.raw_sha256 is not None and store.has(s.raw_sha256)]
            todo.extend(stored_input(store, src.name, s) for s in chosen)
    else:
        assert src.path is not None
        found = {f[0]: f for f in discover_files(src)}
        if inputs is not None:
            chosen = [s for s in chosen if s.path in found]
        for s in chosen:
            if s.path in found:
                todo.append(file_input(found[s.path], s))
            else:  # gone since: reading fails and the document is quarantined (read_error)
                todo.append(FileInput(s.path, str(src.path / s.path), s.size, s.mtime_ns, None, "", prev=s))
    return Plan(src.name, len(chosen), 0, len(todo), 0, tuple(todo))


def plan_renormalize_source(
    src: SourceConfig,
    root: DataRoot,
    start: date | None = None,
    end: date | None = None,
    inputs: frozenset[str] | None = None,
) -> Plan:
    """`plan_renormalize` against the source's stored state under `root` (what a re-normalisation run plans)."""
    with StateStore(root.state) as store:
        states = store.load(src.name)
    return plan_renormalize(src, root, states, start, end, inputs)
