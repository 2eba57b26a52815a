"""The `newsflow` command line."""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import signal
import sys
from collections.abc import Iterator, Sequence
from dataclasses import asdict
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flows.errors import UserError
from flows.settings import apply_prefect_defaults, config_path, data_root

if TYPE_CHECKING:  # the CLI imports its modules lazily, so that `--help` and user errors are quick
    from concurrent.futures import Future

    from flows.config import SourceConfig
    from flows.discover import Listing

__all__ = ["main"]


# Options several commands take, spelled once.
_SHARED: dict[str, dict[str, Any]] = {
    "--config": {"help": "config file (default: $NEWSFLOW_CONFIG or ./sources.toml)"},
    "--data": {"help": "data root (default: $NEWSFLOW_DATA or ./data)"},
    "--workers": {"type": int, "default": 0, "help": "normaliser processes (default: one per core)"},
}


def _shared(parser: argparse.ArgumentParser, *names: str) -> None:
    """Add the named shared options to a command's parser."""
    for name in names:
        parser.add_argument(name, **_SHARED[name])


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="newsflow", description="Turn news article files into a clean Parquet corpus.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="ingest sources into the data root (a Prefect flow run)")
    run.add_argument("sources", nargs="*", metavar="SOURCE", help="sources to run (default: all)")
    _shared(run, "--config", "--data")
    run.add_argument("--force", action="store_true", help="re-process every file, changed or not")
    _shared(run, "--workers")
    run.add_argument("--json", action="store_true", help="print the run summary as JSON")

    ren = sub.add_parser("renormalize", help="rebuild rows an older normaliser version wrote (no fetching)")
    ren.add_argument("sources", nargs="*", metavar="SOURCE", help="sources to rebuild (default: all)")
    ren.add_argument("--start", type=_day, help="first day (YYYY-MM-DD) of the partitions to rebuild")
    ren.add_argument("--end", type=_day, help="last day (YYYY-MM-DD) of the partitions to rebuild")
    _shared(ren, "--config", "--data", "--workers")
    ren.add_argument("--json", action="store_true", help="print the run summary as JSON")

    bf = sub.add_parser("backfill", help="rebuild a source's partitions (months) over a date range; resumable")
    bf.add_argument("source", metavar="SOURCE")
    bf.add_argument("--start", type=_day, required=True, help="first day (YYYY-MM-DD); its whole month is rebuilt")
    bf.add_argument("--end", type=_day, required=True, help="last day (YYYY-MM-DD); its whole month is rebuilt")
    bf.add_argument(
        "--dry-run", action="store_true", help="print the plan (partitions, items, rows replaced); write nothing"
    )
    bf.add_argument("--max-concurrency", type=int, default=2, help="partitions rebuilt at once (default 2)")
    bf.add_argument(
        "--redo",
        # flows.backfill.REDO_CHOICES, spelled out so that `--help` does not import pyarrow
        # (a test holds the two equal).
        choices=("none", "failed", "all"),
        default="none",
        help="partitions already done on the same inputs: skip them (none), re-run failed ones, or redo all",
    )
    bf.add_argument("--newest-first", action="store_true", help="rebuild the latest month first")
    _shared(bf, "--config", "--data", "--workers")
    bf.add_argument("--json", action="store_true", help="print the plan or the ledger entries as JSON")

    sv = sub.add_parser("serve", help="serve the deployments (scheduled sources, backfill, renormalize) on Prefect")
    _shared(sv, "--config", "--data")
    sv.add_argument("--port", type=int, default=4200, help="port of the local Prefect server (default 4200)")
    sv.add_argument("--limit", type=int, help="flow runs at once on this machine (default: no limit)")

    norm = sub.add_parser("normalize", help="normalise files and print the records (writes nothing)")
    norm.add_argument("paths", nargs="+", metavar="PATH")
    norm.add_argument("--source", help="source profile to apply (default: the configured source holding the file)")
    _shared(norm, "--config")
    norm.add_argument("--format", choices=("jsonl", "pretty"), default="pretty")
    norm.add_argument("--explain", action="store_true", help="list each removed span and the rule that removed it")

    query = sub.add_parser("query", help="run SQL over the views `articles`, `quarantine` and `runs` (DuckDB)")
    query.add_argument("sql")
    _shared(query, "--data")
    query.add_argument("--format", choices=("table", "csv", "jsonl"), default="table")

    src = sub.add_parser("sources", help="list configured sources and their state")
    _shared(src, "--config", "--data")
    return p


def _day(value: str) -> str:
    """Argparse type: a YYYY-MM-DD day, kept as text (flow parameters are JSON)."""
    try:
        return date.fromisoformat(value).isoformat()
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{value!r} is not a YYYY-MM-DD date") from exc


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `newsflow` command."""
    args = _parser().parse_args(argv)
    try:
        if args.command in ("run", "renormalize"):
            return _run(args)
        if args.command == "backfill":
            return _backfill(args)
        if args.command == "serve":
            return _serve(args)
        if args.command == "normalize":
            return _normalize(args)
        if args.command == "query":
            return _query(args)
        return _sources(args)
    except UserError as exc:
        print(f"newsflow: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("newsflow: interrupted", file=sys.stderr)
        return 130


@contextlib.contextmanager
def _prefect_session(
    workers: int, list_early: Sequence[SourceConfig] = (), ahead_into: Path | None = None, force: bool = False
) -> Iterator[Any]:
    """Everything a flow run from the command line needs; yields the console.

    A temporary Prefect API server (unless one is configured), the worker pool started
    early, and a progress bar fed by the flow's callback. The folders of the `files`
    sources in `list_early` are listed by a worker while the server starts (an ingest
    takes the listing if it gets the source's lock at once); with `ahead_into` (the
    data root of an ingest), the first batch per worker is normalised meanwhile too.
    """
    from rich.console import Console

    apply_prefect_defaults()
    from flows.server import TemporaryServer, configured_api_url

    with contextlib.ExitStack() as stack:
        # The server's start-up is the longest step before work can begin: launch it
        # before importing anything heavy, unless the environment names a server.
        server = None if os.environ.get("PREFECT_API_URL") else stack.enter_context(TemporaryServer())
        from flows.ingest import warm_up
        from flows.workers import default_workers, prestart, shutdown_pool

        stack.callback(shutdown_pool)
        prestart(workers or default_workers(), warm_up)
        early = _list_early(workers or default_workers(), list_early)
        if server is not None and configured_api_url():
            # A Prefect profile or prefect.toml names a server after all: use that one.
            server.stop()
            server = None
        console = Console(stderr=True)
        # Importing Prefect's client allocates a few hundred thousand long-lived objects;
        # the cyclic GC would walk them repeatedly for nothing, on the core the server
        # starting up could use (they are frozen out of its sight below).
        gc.disable()
        try:
            from flows.flow import set_early_listings, set_progress

            _import_engine_extras()
        finally:
            gc.enable()

        set_early_listings(early)
        stack.callback(set_early_listings, {})
        if server is not None and ahead_into is not None:
            # The server's start-up keeps one core busy for seconds while this process
            # only waits and the workers have finished the listing: the first batches
            # are normalised meanwhile (the flow adopts them if its plan agrees).
            from flows.flow import discard_batches_ahead, start_batches_ahead
            from warehouse.layout import DataRoot

            start_batches_ahead(DataRoot(ahead_into), force, workers or default_workers())
            stack.callback(discard_batches_ahead)

        if server is not None:
            stack.enter_context(server.in_use())
        callback = stack.enter_context(_progress_bar(console))
        set_progress(callback)
        stack.callback(set_progress, None)
        # The run holds one small object per input (plan, outcomes, state rows) and the
        # import graph is large: keep imports out of the collector's walks and let it
        # run less often. Measured on 100k files: discovery 1.2 s -> 0.9-1.1 s, the
        # main process's CPU time 4.7-6.3 s -> 4.2-4.3 s.
        gc.freeze()
        gc.set_threshold(50_000, 20, 50)
        yield console


def _import_engine_extras() -> None:
    """Import now what Prefect's engine imports at a process's first flow call.

    Prefect loads FastAPI's JSON encoder (to serialise flow parameters) and its graph
    helpers lazily, when the first flow run is created. Here they load while the
    command waits for its server; later the flow run would wait for them (0.1-0.2 s
    measured, right after the server came up). A Prefect without them is not an error.
    """
    with contextlib.suppress(ImportError):
        import fastapi.encoders  # noqa: F401
        import prefect.utilities.visualization  # noqa: F401


def _list_early(workers: int, sources: Sequence[SourceConfig]) -> dict[str, tuple[SourceConfig, Future[Listing]]]:
    """Start a listing of each `files` source's folder in the worker pool (none without a pool)."""
    from flows.discover import discover_files
    from flows.workers import submit_in_pool

    early = {}
    for src in sources:
        if src.kind == "files" and (listing := submit_in_pool(workers, discover_files, src)) is not None:
            early[src.name] = (src, listing)
    return early


def _run(args: argparse.Namespace) -> int:
    from rich.console import Console

    cfg_path, root = config_path(args.config), data_root(args.data)
    from flows.config import load_config

    cfg = load_config(cfg_path)  # fail fast on config errors, before Prefect starts
    selected = cfg.select(args.sources)
    ingest_run = args.command == "run"
    with _prefect_session(
        args.workers,
        list_early=selected if ingest_run else (),
        ahead_into=root if ingest_run else None,
        force=ingest_run and args.force,
    ):
        from flows.flow import ingest, renormalize

        if args.command == "renormalize":
            summary = renormalize(
                sources=args.sources or None,
                start=args.start,
                end=args.end,
                config=str(cfg_path),
                data=str(root),
                workers=args.workers,
            )
        else:
            summary = ingest(
                sources=args.sources or None,
                config=str(cfg_path),
                data=str(root),
                force=args.force,
                workers=args.workers,
            )
    if args.json:
        print(json.dumps(summary.as_dict(), indent=2))
        return 0
    _print_summary(Console(), summary, root)
    return 0


def _backfill(args: argparse.Namespace) -> int:
    from rich.console import Console

    cfg_path, root = config_path(args.config), data_root(args.data)
    from flows.config import load_config

    (src,) = load_config(cfg_path).select([args.source])
    if args.end < args.start:
        raise UserError(f"--end {args.end} is before --start {args.start}")
    if args.max_concurrency < 1:
        raise UserError("--max-concurrency must be at least 1")
    console = Console()
    if args.dry_run:
        return _backfill_plan(args, src, root, console)
    with _prefect_session(args.workers):
        from flows.flow import backfill

        state = backfill(
            source=args.source,
            start=args.start,
            end=args.end,
            redo=args.redo,
            max_concurrency=args.max_concurrency,
            newest_first=args.newest_first,
            config=str(cfg_path),
            data=str(root),
            workers=args.workers,
            return_state=True,
        )
    from warehouse.layout import DataRoot
    from warehouse.ledger import read_ledger

    run_id = str(state.state_details.flow_run_id)
    entries = [e for e in read_ledger(DataRoot(root), args.source).to_pylist() if e["run_id"] == run_id]
    if args.json:
        print(json.dumps({"run_id": run_id, "state": state.type.value, "entries": entries}, indent=2, default=str))
    else:
        _print_entries(console, args.source, run_id, entries)
    if not state.is_completed():
        print(f"newsflow: error: backfill {state.type.value.lower()}: {state.message}", file=sys.stderr)
        return 1
    return 0


def _serve(args: argparse.Namespace) -> int:
    from rich.console import Console

    cfg_path, root = config_path(args.config), data_root(args.data)
    from flows.config import load_config

    cfg = load_config(cfg_path)
    # Served runs log to this terminal: an operator watches them start and end here.
    os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "INFO")
    apply_prefect_defaults()
    console = Console()
    from flows.serve import LocalServer

    # A service manager stops `serve` with SIGTERM: until the serving loop takes it over
    # (serve_until_stopped), shut down as for Ctrl-C, so the local server is stopped.
    signal.signal(signal.SIGTERM, _interrupt)
    with contextlib.ExitStack() as stack:
        if os.environ.get("PREFECT_API_URL"):
            console.print(f"Prefect API: {os.environ['PREFECT_API_URL']} (from PREFECT_API_URL)")
        else:
            log = Path(os.environ["PREFECT_HOME"]) / "server.log"
            console.print(f"starting a local Prefect server on 127.0.0.1:{args.port} (log: {log}) ...")
            server = stack.enter_context(LocalServer(args.port, log))
            # The environment is inherited by every flow run served; this process may
            # have loaded Prefect's settings already (validating a schedule does).
            os.environ["PREFECT_API_URL"] = server.api_url
            from prefect.settings import PREFECT_API_URL, temporary_settings

            stack.enter_context(temporary_settings(updates={PREFECT_API_URL: server.api_url}))
            console.print(f"Prefect UI: {server.ui_url}")
        from flows.serve import deployments, serve_until_stopped

        served = deployments(cfg, cfg_path, root)
        for dep in served:
            when = ", ".join(f"{s.schedule.cron} ({s.schedule.timezone})" for s in dep.schedules or []) or "on demand"
            console.print(f"  {dep.flow_name}/{dep.name}: {when}")
        console.print(
            "trigger a backfill: prefect deployment run 'backfill/newsflow-backfill' "
            "-p source=SOURCE -p start=YYYY-MM-DD -p end=YYYY-MM-DD   (Ctrl-C stops serving)"
        )
        serve_until_stopped(served, limit=args.limit)
    return 0


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _backfill_plan(args: argparse.Namespace, src: Any, root: Path, console: Any) -> int:
    """`backfill --dry-run`: plan (normalising unplaced files in the pool) and print; nothing is written."""
    apply_prefect_defaults()
    from flows.backfill import describe
    from flows.flow import plan_backfill_task
    from flows.workers import default_workers, shutdown_pool
    from warehouse.layout import DataRoot

    try:
        plan = plan_backfill_task.fn(
            src,
            DataRoot(root),
            args.start,
            args.end,
            args.redo,
            args.newest_first,
            args.workers or default_workers(),
            dry_run=True,
        )
    finally:
        shutdown_pool()
    data = describe(plan)
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    from rich.table import Table

    title = f"backfill plan for {plan.source}: {data['start']} .. {data['end']} (whole months)"
    table = Table(title=f"{title}; dry run, nothing written", title_justify="left")
    for col in ("partition", "items", "rows now", "action", "last backfill"):
        table.add_column(col, justify="left" if col in ("partition", "action") else "right")
    for u in data["units"]:
        table.add_row(u["partition"], str(u["items"]), str(u["rows"]), u["action"], u["last"] or "-")
    console.print(table)
    run = [u for u in plan.units if u.action == "run"]
    console.print(
        f"{len(run)} of {len(plan.units)} partitions to rebuild ({sum(len(u.items) for u in run)} items, "
        f"replacing {sum(max(u.rows, 0) for u in run)} rows); "
        f"{plan.outside} items dated outside the range"
    )
    if plan.rejected:
        console.print("items giving no article: " + ", ".join(f"{k} {v}" for k, v in plan.rejected.items()))
    skipped = [u.period for u in plan.units if u.action == "skip"]
    failed = [u.period for u in plan.units if u.action == "skip-failed"]
    if skipped:
        console.print(f"skipped, completed before on the same inputs: {_compact(skipped)} (--redo all rebuilds them)")
    if failed:
        console.print(f"skipped, failed before: {_compact(failed)} (--redo failed runs them again)")
    return 0


def _print_entries(console: Any, source: str, run_id: str, entries: list[dict[str, Any]]) -> None:
    """The ledger entries of one backfill run as a table."""
    from rich.table import Table

    table = Table(title=f"newsflow backfill {source} {run_id}", title_justify="left")
    cols = ("partition", "status", "items", "rows_before", "written", "removed", "quarantined", "moved")
    for col in cols:
        table.add_column(col.replace("_", " "), justify="left" if col in ("partition", "status") else "right")
    for e in sorted(entries, key=lambda e: e["partition"]):
        table.add_row(*(str(e[c]) for c in cols))
    console.print(table)
    if not entries:
        console.print("nothing to rebuild: every partition in the range completed before on the same inputs")
    for e in entries:
        if e["error"]:
            console.print(f"{e['partition']} failed: {e['error']}")


_COUNTERS = ("discovered", "new", "changed", "unchanged", "written", "superseded", "quarantined", "deferred")


def _print_summary(console: Any, summary: Any, root: Path) -> None:
    """The run summary: one row per source, totals, reasons (quarantined, deferred), notes, partitions touched."""
    from rich.table import Table

    table = Table(title=f"newsflow run {summary.run_id} ({summary.seconds:.1f} s)", title_justify="left")
    table.add_column("source")
    for name in _COUNTERS:
        table.add_column(name, justify="right")
    table.add_column("partitions", justify="right")
    for s in summary.sources:
        table.add_row(s.source, *(str(getattr(s, c)) for c in _COUNTERS), str(len(s.partitions)))
    table.add_row(
        "total",
        *(str(summary.total(c)) for c in _COUNTERS),
        str(sum(len(s.partitions) for s in summary.sources)),
        style="bold",
    )
    console.print(table)
    for s in summary.sources:
        if s.reasons:
            console.print(f"quarantined in {s.source}: " + ", ".join(f"{r} {n}" for r, n in s.reasons.items()))
        if s.deferrals:
            console.print(f"deferred in {s.source}: " + ", ".join(f"{r} {n}" for r, n in s.deferrals.items()))
        for note in s.notes:
            console.print(f"note on {s.source}: {note}", markup=False)
        if s.partitions:
            console.print(f"partitions written in {s.source}: {_compact(s.partitions)}")
    console.print(f"Parquet: {root / 'articles'}/source=*/year=*/month=*/part-0.parquet")
    console.print(f'Quarantine: {root / "quarantine"}   Query: newsflow query "SELECT count(*) FROM articles"')


def _compact(keys: list[str], limit: int = 12) -> str:
    """At most `limit` partition keys (`source/` dropped), then a count of the rest."""
    shown = ", ".join(k.split("/", 1)[-1] for k in keys[:limit])
    return shown + (f" and {len(keys) - limit} more" if len(keys) > limit else "")


class _progress_bar:
    """A rich progress bar fed by the flow's batch callback; silent when not a terminal."""

    def __init__(self, console: Any) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=True,
            disable=not console.is_terminal,
        )
        self._tasks: dict[str, Any] = {}

    def __enter__(self) -> Any:
        self._progress.start()
        return self.update

    def update(self, label: str, done: int, total: int) -> None:
        """Advance the bar called `label` (one per source, or per backfill counter)."""
        if label not in self._tasks:
            self._tasks[label] = self._progress.add_task(label, total=total)
        self._progress.update(self._tasks[label], completed=done, total=total)

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()


def _normalize(args: argparse.Namespace) -> int:
    from flows.config import load_config
    from flows.discover import sidecar_name
    from flows.ingest import DOCUMENT_TIME_BUDGET_S, TimeBudget
    from normalizers.dispatch import normalize
    from normalizers.errors import Rejection
    from normalizers.meta import SourceMeta
    from normalizers.profile import SourceProfile

    cfg_file = config_path(args.config)
    cfg = load_config(cfg_file) if cfg_file.exists() or args.config else None
    status = 0
    for raw_path in args.paths:
        path = Path(raw_path).resolve()
        src = None
        if cfg is not None:
            if args.source:
                src = cfg.select([args.source])[0]
            else:
                src = next((s for s in cfg.sources.values() if s.path and path.is_relative_to(s.path)), None)
        elif args.source:
            raise UserError(f"--source {args.source}: no config file at {cfg_file}")
        profile = src.profile if src else SourceProfile(name=args.source or "local")
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise UserError(f"{raw_path}: cannot read: {exc.strerror}") from exc
        sidecar_path = path.parent / sidecar_name(path.name)
        sidecar = sidecar_path.read_bytes() if sidecar_path != path and sidecar_path.exists() else None
        key = path.relative_to(src.path).as_posix() if src and src.path and path.is_relative_to(src.path) else path.name
        meta = SourceMeta(profile.name, path.as_uri(), key, path.stat().st_mtime, sidecar)
        result = normalize(raw, meta, profile, src.format if src else "auto", budget=TimeBudget(DOCUMENT_TIME_BUDGET_S))
        if isinstance(result, Rejection):
            print(f"newsflow: {raw_path}: rejected ({result.reason.value}): {result.message}", file=sys.stderr)
            status = 1
            continue
        record = _jsonable(asdict(result))
        if args.format == "jsonl":
            print(json.dumps(record, ensure_ascii=False))
        else:
            _pretty(raw_path, record, explain=args.explain)
        if args.explain and args.format == "jsonl":
            if result.normalizer == "html":
                print(f"# {raw_path}: path {result.extraction}", file=sys.stderr)
            for s in result.stripped:
                print(f"# {raw_path}:{s.line}: removed {s.kind} by rule {s.rule!r}: {s.text!r}", file=sys.stderr)
    return status


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def _pretty(label: str, record: dict[str, Any], explain: bool) -> None:
    from rich.console import Console
    from rich.panel import Panel
    from rich.table import Table

    console = Console()
    meta = Table.grid(padding=(0, 2))
    for key in (
        "article_id",
        "source",
        "url",
        "title",
        "byline",
        "authors",
        "published_at",
        "date_source",
        "language",
        "word_count",
        "normalizer",
        "normalizer_version",
        "extraction",
        "site_name",
        "tags",
        "warnings",
    ):
        if record.get(key) not in (None, [], ()):
            meta.add_row(f"[bold]{key}[/]", str(record[key]))
    console.print(Panel(meta, title=label))
    console.print("[bold]lede[/]", record["lede"], "", sep="\n")
    for section in record["sections"]:
        if section["heading"]:
            console.print(f"[bold]## {section['heading']}[/]", "", sep="\n")
        for paragraph in section["paragraphs"]:
            console.print(paragraph, "", sep="\n")
    if explain:
        if record["normalizer"] == "html":
            how = "the source's CSS selectors" if record["extraction"] == "profile" else "generic extraction"
            console.print(f"[bold]path[/] {record['extraction']} ({how})")
        console.print("[bold]removed[/]" if record["stripped"] else "[bold]removed[/] nothing")
        for s in record["stripped"]:
            where = f"line {s['line']}" if s["line"] else "block"
            console.print(f"  {where}: {s['kind']} by [cyan]{s['rule']}[/]: {s['text']!r}")


def _query(args: argparse.Namespace) -> int:
    from warehouse.query import QueryError, connect

    root = data_root(args.data)
    try:
        con = connect(root)
        rel = con.sql(args.sql)
    except QueryError as exc:
        raise UserError(str(exc)) from exc
    except Exception as exc:  # duckdb raises many error types; all are the user's SQL here
        raise UserError(f"query failed: {str(exc).splitlines()[0]}") from exc
    if rel is None:
        return 0
    if args.format == "table":
        rel.show(max_width=200, max_rows=100)
    elif args.format == "csv":
        import csv

        writer = csv.writer(sys.stdout)
        writer.writerow(rel.columns)
        writer.writerows(rel.fetchall())
    else:
        for row in rel.fetchall():
            print(json.dumps(_jsonable(dict(zip(rel.columns, row, strict=True))), ensure_ascii=False, default=str))
    return 0


def _shown(path: Path) -> str:
    """A path relative to the working directory when it is below it."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _sources(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from flows.config import load_config
    from warehouse.layout import DataRoot
    from warehouse.state import StateStore

    cfg = load_config(config_path(args.config))
    root = DataRoot(data_root(args.data))
    counts = {}
    if root.state.is_dir():
        with StateStore(root.state) as store:
            counts = store.counts()
    from warehouse.ledger import latest_entries

    table = Table(
        "source", "kind", "format", "path", "include", "rules", "schedule", "files written", "quarantined", "backfilled"
    )
    for s in cfg.sources.values():
        c = counts.get(s.name, {})
        done = latest_entries(root, s.name, kind="backfill")
        failed = sum(e.status == "failed" for e in done.values())
        table.add_row(
            s.name,
            s.kind,
            s.format,
            _shown(s.path) if s.path else ", ".join(s.urls),
            ", ".join(s.include),
            str(len(s.profile.rules)),
            f"{s.schedule.cron} ({s.schedule.timezone})" if s.schedule else "-",
            str(c.get("written", 0)),
            str(c.get("quarantined", 0)),
            f"{len(done) - failed} months" + (f", {failed} failed" if failed else "") if done else "-",
        )
    Console().print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
