"""The `newsflow` command line."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flows.settings import apply_prefect_defaults, config_path, data_location
from pipeline.errors import UserError

if TYPE_CHECKING:  # the CLI imports its modules lazily, so that `--help` and user errors are quick
    pass

__all__ = ["main"]


# Options several commands take, spelled once.
_SHARED: dict[str, dict[str, Any]] = {
    "--config": {"help": "config file (default: $NEWSFLOW_CONFIG or ./sources.toml)"},
    "--data": {"help": "data root (default: $NEWSFLOW_DATA or ./data)"},
    "--workers": {"type": "workers", "default": None, "help": "normaliser processes (default: one per core)"},
    "--task-runner": {
        "choices": ("default", "dask"),
        "default": "default",
        "help": "where normalising and writing run: newsflow's process pool (default) or Dask (prefect-dask)",
    },
    "--dask-address": {
        "default": None,
        "help": "with --task-runner dask: a Dask scheduler (default: $NEWSFLOW_DASK_ADDRESS, else a local cluster)",
    },
    "--no-dedup": {
        "dest": "dedup",
        "action": "store_false",
        "help": "leave duplicates and clusters for a later `newsflow dedup` (a bulk load's last step)",
    },
    "--no-report": {
        "dest": "report",
        "action": "store_false",
        "help": "do not write the corpus report (report.html in the data root) at the end",
    },
}


def _shared(parser: argparse.ArgumentParser, *names: str) -> None:
    """Add the named shared options to a command's parser."""
    for name in names:
        options = dict(_SHARED[name])
        if options.get("type") == "workers":
            options["type"] = _workers
        parser.add_argument(name, **options)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="newsflow", description="Turn news article files into a clean Parquet corpus.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="ingest sources into the data root (a Prefect flow run)")
    run.add_argument("sources", nargs="*", metavar="SOURCE", help="sources to run (default: all)")
    _shared(run, "--config", "--data")
    run.add_argument("--force", action="store_true", help="re-process every file, changed or not")
    _shared(run, "--workers", "--task-runner", "--dask-address")
    run.add_argument("--json", action="store_true", help="print the run summary as JSON")
    _shared(run, "--no-dedup", "--no-report")

    ren = sub.add_parser("renormalize", help="rebuild rows an older normaliser version wrote (no fetching)")
    ren.add_argument("sources", nargs="*", metavar="SOURCE", help="sources to rebuild (default: all)")
    ren.add_argument("--start", type=_day, help="first day (YYYY-MM-DD) of the partitions to rebuild")
    ren.add_argument("--end", type=_day, help="last day (YYYY-MM-DD) of the partitions to rebuild")
    _shared(ren, "--config", "--data", "--workers", "--task-runner", "--dask-address")
    ren.add_argument("--json", action="store_true", help="print the run summary as JSON")
    _shared(ren, "--no-dedup", "--no-report")

    bf = sub.add_parser("backfill", help="rebuild a source's partitions (months) over a date range; resumable")
    bf.add_argument("source", metavar="SOURCE")
    bf.add_argument("--start", type=_day, required=True, help="first day (YYYY-MM-DD); its whole month is rebuilt")
    bf.add_argument("--end", type=_day, required=True, help="last day (YYYY-MM-DD); its whole month is rebuilt")
    bf.add_argument(
        "--dry-run", action="store_true", help="print the plan (partitions, items, rows replaced); write nothing"
    )
    bf.add_argument("--max-concurrency", type=_positive, default=2, help="partitions rebuilt at once (default 2)")
    bf.add_argument(
        "--redo",
        # pipeline.backfill.REDO_CHOICES, spelled out so that `--help` does not import pyarrow
        # (a test holds the two equal).
        choices=("none", "failed", "all"),
        default="none",
        help="partitions already done on the same inputs: skip them (none), re-run failed ones, or redo all",
    )
    bf.add_argument("--newest-first", action="store_true", help="rebuild the latest month first")
    _shared(bf, "--config", "--data", "--workers", "--task-runner", "--dask-address")
    bf.add_argument("--json", action="store_true", help="print the plan or the ledger entries as JSON")
    _shared(bf, "--no-dedup", "--no-report")

    sv = sub.add_parser("serve", help="serve the deployments (scheduled sources, backfill, renormalize) on Prefect")
    _shared(sv, "--config", "--data")
    sv.add_argument("--port", type=_port, default=4200, help="port of the local Prefect server (default 4200)")
    sv.add_argument("--limit", type=_positive, help="flow runs at once on this machine (default: no limit)")

    norm = sub.add_parser("normalize", help="normalise files (or the files of folders) and print the records")
    norm.add_argument("paths", nargs="+", metavar="PATH", help="files, or folders whose matching files are taken")
    norm.add_argument("--source", help="source profile to apply (default: the configured source holding the file)")
    _shared(norm, "--config")
    norm.add_argument(
        "--data", help="data root whose learned boilerplate applies (default: $NEWSFLOW_DATA or ./data, if it exists)"
    )
    norm.add_argument(
        "--format", choices=("jsonl", "pretty"), help="output (default: pretty on a terminal, jsonl otherwise)"
    )
    norm.add_argument("--explain", action="store_true", help="list each removed span and the rule that removed it")

    query = sub.add_parser(
        "query",
        help="run SQL over the views `articles`, `article_versions`, `boilerplate`, `clusters`, `coverage`, "
        "`quarantine`, `quarantine_log`, `runs`",
    )
    query.add_argument("sql")
    _shared(query, "--data")
    query.add_argument(
        "--format",
        choices=("table", "csv", "jsonl"),
        help="output (default: table on a terminal, csv otherwise); list and struct cells are JSON in csv",
    )

    dd = sub.add_parser(
        "dedup", help="bring duplicates and clusters up to date with the articles (runs after every run by itself)"
    )
    _shared(dd, "--data")
    dd.add_argument("--rebuild", action="store_true", help="forget the duplicate index and build it again")

    rep = sub.add_parser("report", help="write an HTML report with key figures and charts (works offline)")
    rep.add_argument("sources", nargs="*", metavar="SOURCE", help="sources to report on (default: all)")
    rep.add_argument("--since", type=_day, help="first day (YYYY-MM-DD) of articles, runs and rejections to show")
    rep.add_argument("--out", type=Path, help="file to write (default: report.html in the data root)")
    _shared(rep, "--data")

    src = sub.add_parser("sources", help="list configured sources and their state")
    _shared(src, "--config", "--data")
    src.add_argument("--check", action="store_true", help="check each source's folder or URL list; exit 2 on a problem")
    src.add_argument("--json", action="store_true", help="print the sources as JSON")
    return p


def _workers(value: str) -> int:
    """Argparse type: a number of worker processes, 1 to four per core (normalising is CPU work)."""
    number = _positive(value)
    most = 4 * (os.cpu_count() or 1)
    if number > most:
        raise argparse.ArgumentTypeError(f"at most {most} (four per core), not {number}")
    return number


def _positive(value: str) -> int:
    """Argparse type: a whole number of at least 1."""
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {number}")
    return number


def _port(value: str) -> int:
    """Argparse type: a TCP port."""
    number = _positive(value)
    if number > 65535:
        raise argparse.ArgumentTypeError(f"{number} is not a TCP port (1-65535)")
    return number


def _day(value: str) -> str:
    """Argparse type: a YYYY-MM-DD day, kept as text (flow parameters are JSON)."""
    try:
        return date.fromisoformat(value).isoformat()
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{value!r} is not a YYYY-MM-DD date") from exc


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `newsflow` command."""
    started = time.monotonic()
    args = _parser().parse_args(argv)
    args.started = started
    try:
        return _command(args)
    except BrokenPipeError:
        # The reader went away (`newsflow query ... | head`): stop quietly, as a shell
        # tool killed by SIGPIPE does. Output still buffered would fail again at exit.
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + signal.SIGPIPE


def _command(args: argparse.Namespace) -> int:
    try:
        if args.command in ("run", "renormalize", "backfill", "serve", "dedup"):
            from pipeline.workers import worker_nice

            worker_nice()  # a bad setting is said before anything starts, not by a failed batch
        if args.command in ("run", "renormalize"):
            with _stop_on_signals():
                return _run(args)
        if args.command == "backfill":
            with _stop_on_signals():
                return _backfill(args)
        if args.command == "serve":
            return _serve(args)
        if args.command == "normalize":
            return _normalize(args)
        if args.command == "query":
            return _query(args)
        if args.command == "dedup":
            return _dedup(args)
        if args.command == "report":
            return _report(args)
        return _sources(args)
    except UserError as exc:
        print(f"newsflow: error: {exc}", file=sys.stderr)
        return 2
    except _RunCrashed as exc:
        print(f"newsflow: error: {exc}", file=sys.stderr)
        return 1
    except _Stopped as stop:
        name = signal.Signals(stop.signum).name
        print(f"newsflow: stopped by {name}: {_KEPT}", file=sys.stderr)
        return 128 + stop.signum
    except KeyboardInterrupt:
        print("newsflow: interrupted", file=sys.stderr)
        return 130


# What a stopped run leaves: each partition is replaced whole, and a commit a command
# was stopped in is finished or discarded by the next command of its source.
_KEPT = "partitions published before it are kept; nothing half-written is visible"


class _Stopped(KeyboardInterrupt):
    """A run, backfill or re-normalisation told to stop by SIGINT (Ctrl-C) or SIGTERM."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


@contextlib.contextmanager
def _stop_on_signals() -> Iterator[None]:
    """Turn SIGINT and SIGTERM into `_Stopped` in the main thread while the block runs.

    A KeyboardInterrupt-like exception is what Prefect's engine turns into a crashed
    flow run, and it unwinds the command as Ctrl-C does: the flow's clean-up, the worker
    pool, the temporary server. (During a flow run Prefect's own SIGTERM handler comes
    first, marks the run crashed, then hands the signal on to this one.) The pool's
    workers are terminated at once, not waited for: what they were writing is only
    staged. A second signal is not caught, so that it ends the command at once.
    """
    from pipeline.workers import stop_workers

    def stop(signum: int, frame: object) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_DFL if sig == signal.SIGTERM else signal.default_int_handler)
        stop_workers()
        raise _Stopped(signum)

    before = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)


class _Session:
    """What a command's flow run needs around it: the console, and an observer of the flows it calls."""

    def __init__(self, console: Any, observer: Any, own_server: bool) -> None:
        self.console, self.observer, self.own_server = console, observer, own_server

    def settle(self, state: Any) -> None:
        """Before a server this command started stops: let it record every task run of the flow run in `state`."""
        if not self.own_server:
            return
        from flows.server import drain_prefect_clients, wait_recorded

        drain_prefect_clients()
        recorded = wait_recorded(state.state_details.flow_run_id, self.observer.task_runs, RECORD_TIMEOUT_S)
        if recorded < self.observer.task_runs:
            print(
                f"newsflow: warning: Prefect's server recorded {recorded} of the run's {self.observer.task_runs} "
                f"task runs within {RECORD_TIMEOUT_S:.0f} s; the run's history in Prefect is incomplete",
                file=sys.stderr,
            )


# How long a command waits for the server it started to record its flow run's task runs.
RECORD_TIMEOUT_S = 60.0


@contextlib.contextmanager
def _prefect_session(workers: int) -> Iterator[_Session]:
    """Everything a flow run from the command line needs.

    The Prefect API the environment or profile names (checked first), else a local
    server for the command's life (`flows.server.LocalServer`); a progress bar fed by
    the flows; the worker pool shut down at the end.
    """
    from rich.console import Console

    apply_prefect_defaults()
    from flows.server import ONE_SHOT_OPTIONS, LocalServer, configured_api_url, drain_prefect_clients

    console = Console(stderr=True)
    own_server = False
    with contextlib.ExitStack() as stack:
        if os.environ.get("PREFECT_API_URL"):
            _check_api(os.environ["PREFECT_API_URL"], "PREFECT_API_URL")
        elif url := configured_api_url():
            _check_api(url, "the Prefect profile's PREFECT_API_URL")
        else:
            from prefect.settings import PREFECT_API_URL, temporary_settings

            log = Path(os.environ["PREFECT_HOME"]) / "run-server.log"
            server = stack.enter_context(LocalServer(0, log, options=ONE_SHOT_OPTIONS))
            stack.enter_context(temporary_settings(updates={PREFECT_API_URL: server.api_url}))
            # Before the server stops: what Prefect's client still buffers goes to it now
            # (at exit, the client would retry a stopped server for a minute).
            stack.callback(drain_prefect_clients)
            own_server = True
        from flows.flow import Observer, observed_by
        from pipeline.workers import shutdown_pool

        stack.callback(shutdown_pool)
        observer = stack.enter_context(observed_by(Observer(stack.enter_context(_progress_bar(console)))))
        yield _Session(console, observer, own_server)


def _check_api(url: str, origin: str) -> None:
    """Raise a `UserError` unless the Prefect API at `url` answers its health check."""
    from flows.server import healthy

    if not url.startswith(("http://", "https://")):
        raise UserError(f"PREFECT_API_URL {url!r} (from {origin}) is not an http(s) URL such as http://host:4200/api")
    if not healthy(url.rstrip("/")):
        raise UserError(
            f"the Prefect API at {url} (from {origin}) does not answer as a Prefect API: start that server "
            "(the URL ends in /api), or unset PREFECT_API_URL to let newsflow start a temporary one"
        )


def _writable_data_root(root: Path) -> Path:
    """`root`, created if missing; a `UserError` when it cannot be created or written."""
    import tempfile

    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"data root {root}: cannot create it: {exc.strerror or exc}") from None
    if not root.is_dir():
        raise UserError(f"data root {root} is not a folder")
    # Asked of the file system itself: permission bits say nothing of /proc or a read-only mount.
    try:
        fd, probe = tempfile.mkstemp(prefix=".newsflow-probe-", dir=root)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise UserError(f"data root {root} is not writable: {exc.strerror or exc}") from None
    return root


def _readable_root(value: str | None) -> Path:
    """The local folder readers read: the data root, or a bucket's working copy brought up to the bucket's files."""
    root: Path = _storage(value, writable=False).refresh().root
    return root


def _dask_address(args: argparse.Namespace) -> str | None:
    """The Dask scheduler to use: --dask-address, else NEWSFLOW_DASK_ADDRESS (None: a local cluster)."""
    if args.dask_address and args.task_runner != "dask":
        raise UserError("--dask-address needs --task-runner dask")
    return args.dask_address or os.environ.get("NEWSFLOW_DASK_ADDRESS") or None


def _storage(value: str | None, writable: bool) -> Any:
    """The `Storage` the --data value names, checked: a bucket that can be listed, a local folder writable if asked."""
    from pipeline.storage import BucketStorage, open_storage

    storage = open_storage(data_location(value))
    if isinstance(storage, BucketStorage):
        storage.check()
    elif writable:
        _writable_data_root(storage.root.root)
    return storage


def _run(args: argparse.Namespace) -> int:
    data_location(args.data)  # an empty --data is the first thing to say, as the config is
    cfg_path = config_path(args.config)
    from flows.config import load_config

    load_config(cfg_path).select(args.sources)  # fail fast on config errors, before Prefect starts
    if args.command == "renormalize" and args.start and args.end and args.end < args.start:
        raise UserError(f"--end {args.end} is before --start {args.start}")
    storage = _storage(args.data, writable=True)
    workers = args.workers or 0
    address = _dask_address(args)
    with _prefect_session(workers) as session:
        from flows.flow import ingest, renormalize, task_runner

        runner = task_runner(args.task_runner, workers, address)
        if args.command == "renormalize":
            state = renormalize.with_options(task_runner=runner)(
                sources=args.sources or None,
                start=args.start,
                end=args.end,
                config=str(cfg_path),
                data=storage.location,
                workers=workers,
                dedup=args.dedup,
                report=args.report,
                return_state=True,
            )
        else:
            state = ingest.with_options(task_runner=runner)(
                sources=args.sources or None,
                config=str(cfg_path),
                data=storage.location,
                force=args.force,
                workers=workers,
                dedup=args.dedup,
                report=args.report,
                return_state=True,
            )
        session.settle(state)
    summary = _run_summary(state)
    seconds = time.monotonic() - args.started
    if args.json:
        print(json.dumps({**summary.as_dict(), "wall_seconds": round(seconds, 3)}, indent=2, default=str))
    else:
        _print_summary(_console(), summary, storage, seconds, args.command)
    failed = [s for s in summary.sources if s.error]
    for s in failed:
        print(f"newsflow: error: {s.error}", file=sys.stderr)
    if any(not s.user_error for s in failed):
        return 1
    return 2 if failed else 0


def _run_summary(state: Any) -> Any:
    """The `RunSummary` of a finished ingest or re-normalisation flow run (also of one where sources failed)."""
    from flows.flow import RunFailed

    if state.is_completed():
        return state.result()
    outcome = state.result(raise_on_failure=False)
    if isinstance(outcome, RunFailed):
        return outcome.summary
    if isinstance(outcome, UserError):
        raise outcome
    raise _RunCrashed(f"the run {state.type.value.lower()}: {state.message or outcome}")


class _RunCrashed(Exception):
    """A flow run that ended without a summary (a fault, not a user mistake)."""


def _backfill(args: argparse.Namespace) -> int:
    data_location(args.data)
    cfg_path = config_path(args.config)
    from flows.config import load_config
    from pipeline.config import source_problem

    (src,) = load_config(cfg_path).select([args.source])
    if args.end < args.start:
        raise UserError(f"--end {args.end} is before --start {args.start}")
    from pipeline.backfill import month_range

    try:
        month_range(date.fromisoformat(args.start), date.fromisoformat(args.end))
    except ValueError as exc:
        raise UserError(str(exc)) from None
    problem = source_problem(src)
    if problem is not None:
        raise UserError(problem)
    console = _console()
    storage = _storage(args.data, writable=not args.dry_run)
    if args.dry_run:
        return _backfill_plan(args, src, storage, console)
    address = _dask_address(args)
    with _prefect_session(args.workers or 0) as session:
        from flows.flow import backfill, task_runner

        flow = backfill
        if args.task_runner == "dask":  # else the flow's own threads, as many as --max-concurrency may ask
            flow = backfill.with_options(task_runner=task_runner("dask", args.workers or 0, address))
        state = flow(
            source=args.source,
            start=args.start,
            end=args.end,
            redo=args.redo,
            max_concurrency=args.max_concurrency,
            newest_first=args.newest_first,
            config=str(cfg_path),
            data=storage.location,
            workers=args.workers or 0,
            dedup=args.dedup,
            report=args.report,
            return_state=True,
        )
        session.settle(state)
    from warehouse.ledger import read_ledger

    run_id = str(state.state_details.flow_run_id)
    entries = [e for e in read_ledger(storage.root, args.source).to_pylist() if e["run_id"] == run_id]
    if args.json:
        print(json.dumps({"run_id": run_id, "state": state.type.value, "entries": entries}, indent=2, default=str))
    else:
        outcome = state.result(raise_on_failure=False)
        units = outcome.plan.get("units", []) if hasattr(outcome, "plan") else []
        _print_entries(console, args.source, run_id, entries, warc=src.kind == "warc", units=units)
        if hasattr(outcome, "duplicates"):  # a BackfillSummary (a failed backfill raised instead)
            _print_duplicates(console, outcome)
            _print_report(outcome)
    if not state.is_completed():
        print(f"newsflow: error: backfill {state.type.value.lower()}: {state.message}", file=sys.stderr)
        return 1
    return 0


def _serve(args: argparse.Namespace) -> int:
    data_location(args.data)
    cfg_path = config_path(args.config)
    from flows.config import load_config

    cfg = load_config(cfg_path)
    storage = _storage(args.data, writable=True)
    if os.environ.get("PREFECT_API_URL"):
        _check_api(os.environ["PREFECT_API_URL"], "PREFECT_API_URL")
    # Served runs log to this terminal: an operator watches them start and end here.
    os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "INFO")
    apply_prefect_defaults()
    console = _console()
    from flows.server import LocalServer
    from pipeline.config import source_problem

    for src in cfg.sources.values():
        if (problem := source_problem(src)) is not None:
            console.print(f"newsflow: warning: {problem}; its runs will fail until it is fixed", markup=False)

    # The flow runs the runner starts end with this process, however it dies (a kill included).
    from pipeline.workers import OWNER_ENV

    os.environ[OWNER_ENV] = str(os.getpid())
    # A service manager stops `serve` with SIGTERM: until the serving loop takes it over
    # (serve_until_stopped), shut down as for Ctrl-C, so the local server is stopped.
    signal.signal(signal.SIGTERM, _interrupt)
    log: Path | None = None
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
        from datetime import UTC, datetime

        from flows.serve import ScheduleWatch, deployments, release_stale_runs, serve_until_stopped

        served = deployments(cfg, cfg_path, storage.location)
        warn = _console(stderr=True)
        # Runs an earlier serve left pending or running would hold their deployment's one
        # slot for good: every later scheduled run would be cancelled.
        names = [f"{dep.flow_name}/{dep.name}" for dep in served]
        for line in release_stale_runs(names, own_server=log is not None, now=datetime.now(UTC)):
            warn.print(f"newsflow: {line}", markup=False)
        for dep in served:
            when = ", ".join(_schedule_text(s.schedule) for s in dep.schedules or []) or "on demand"
            console.print(f"  {dep.flow_name}/{dep.name}: {when}", markup=False)
        console.print(
            "trigger a backfill: prefect deployment run 'backfill/newsflow-backfill' "
            "-p source=SOURCE -p start=YYYY-MM-DD -p end=YYYY-MM-DD   (Ctrl-C stops serving)",
            markup=False,
        )
        # What `serve` started is watched: a scheduler that creates no runs, runs that
        # never start, errors in the server's log: each is one line on this terminal.
        watch = ScheduleWatch(
            [f"{dep.flow_name}/{dep.name}" for dep in served if dep.schedules],
            lambda line: warn.print(f"newsflow: warning: {line}", markup=False),
            log=log,
        )
        watch.start()
        stack.callback(watch.stop)
        serve_until_stopped(served, limit=args.limit)
    return 0


def _schedule_text(schedule: Any) -> str:
    """A Prefect deployment schedule as `serve` lists it: the cron and zone, or the interval."""
    from pipeline.config import duration_text

    if getattr(schedule, "cron", None):
        return f"{schedule.cron} ({schedule.timezone})"
    interval = getattr(schedule, "interval", None)
    return f"every {duration_text(interval.total_seconds())}" if interval is not None else str(schedule)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _backfill_plan(args: argparse.Namespace, src: Any, storage: Any, console: Any) -> int:
    """`backfill --dry-run`: plan (normalising unplaced files in the pool) and print; nothing is written."""
    from pipeline.backfill import describe
    from pipeline.run import LocalRunner, plan_backfill, source_lock
    from pipeline.storage import BucketStorage
    from pipeline.workers import shutdown_pool

    root = storage.root
    held = contextlib.ExitStack()
    if isinstance(storage, BucketStorage):  # the plan reads the source's state: the bucket's, pulled under its lease
        held.enter_context(source_lock(root, src.name))
        held.enter_context(storage.source(src.name))
    if src.kind == "warc":
        with held:
            return _warc_backfill_plan(args, src, root, console)
    try:
        with held:
            plan = plan_backfill(
                src,
                root,
                date.fromisoformat(args.start),
                date.fromisoformat(args.end),
                args.redo,
                args.newest_first,
                runner=LocalRunner(args.workers or 0),
                dry_run=True,
            )
            plan.close()  # the units' counts and decisions are all a dry run prints
    finally:
        shutdown_pool()
    data = describe(plan)
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    title = f"backfill plan for {plan.source}: {data['start']} .. {data['end']} (whole months)"
    _table(
        console,
        f"{title}; dry run, nothing written",
        [("partition", False), ("items", True), ("rows now", True), ("action", False), ("last backfill", False)],
        [
            [u["partition"], str(u["items"]), str(u["rows"]), u["action"], u["last"] or "-"]
            for u in data["units"]
            if u["action"] != "empty"
        ],
    )
    empty = [u.period for u in plan.units if u.action == "empty"]
    if empty:
        months = _plural(len(empty), "month")
        console.print(f"{len(empty)} {months} with no inputs and no rows: nothing to rebuild there", markup=False)
    run = [u for u in plan.units if u.action == "run"]
    console.print(
        f"{len(run)} of {len(plan.units)} partitions to rebuild ({_n(sum(u.count for u in run), 'item')}, "
        f"replacing {_n(sum(max(u.rows, 0) for u in run), 'row')}); "
        f"{_n(plan.outside, 'item')} dated outside the range"
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


def _warc_backfill_plan(args: argparse.Namespace, src: Any, root: Any, console: Any) -> int:
    """`backfill --dry-run` of a WARC source: the files it reads and how many a backfill of the window read before."""
    from pipeline.run import WarcBackfill, describe_warc_backfill

    mode = WarcBackfill(date.fromisoformat(args.start), date.fromisoformat(args.end), args.redo)
    data = describe_warc_backfill(src, root, mode)
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    files, again = data["warc_files"], data["warc_files_read"]
    console.print(
        f"backfill plan for {src.name}: the records captured {args.start} .. {args.end} of {files} WARC files"
        f" are read again and their articles upserted; dry run, nothing written",
        markup=False,
    )
    if again:
        console.print(
            f"{again} of them read to their end by a backfill of this window before: passed over"
            " (--redo all reads them again)",
            markup=False,
        )
    return 0


def _print_entries(
    console: Any,
    source: str,
    run_id: str,
    entries: list[dict[str, Any]],
    warc: bool = False,
    units: Sequence[dict[str, Any]] = (),
) -> None:
    """The ledger entries of one backfill run as a table (when there are none, why, from the plan's `units`)."""
    if not entries:
        if warc:
            done = (
                "every WARC file was read for this window before, or it holds no record captured in it"
                " (--redo all reads them again)"
            )
        else:
            actions = Counter(u["action"] for u in units)
            why = {
                "empty": f"{_n(actions['empty'], 'month')} with no inputs and no rows",
                "skip": f"{actions['skip']} completed before on the same inputs (--redo all rebuilds them)",
                "skip-failed": f"{actions['skip-failed']} failed before (--redo failed runs them again)",
            }
            done = "; ".join(text for action, text in why.items() if actions[action]) or "no month in the range"
        console.print(f"newsflow backfill {source} {run_id}: nothing to rebuild: {done}", markup=False)
        return
    cols = ("partition", "status", "items", "rows_before", "written", "removed", "quarantined", "moved")
    _table(
        console,
        f"newsflow backfill {source} {run_id}",
        [(c.replace("_", " "), c not in ("partition", "status")) for c in cols],
        [[str(e[c]) for c in cols] for e in sorted(entries, key=lambda e: e["partition"])],
    )
    for e in entries:
        if e["error"]:
            console.print(f"{e['partition']} failed: {e['error']}", markup=False)
    moved = sum(int(e["moved"] or 0) for e in entries)
    if moved:
        console.print(
            f"moved: {_n(moved, 'article')} turned out to belong to another month than planned (an edit since,"
            " or a page dated apart from its feed entry); written nowhere by this backfill, the next"
            " `newsflow run` of the source places them",
            markup=False,
        )
    failed = sorted(u["partition"] for u in units if u["action"] == "skip-failed")
    if failed:
        console.print(
            f"not run: {_n(len(failed), 'month')} that failed before ({_compact(failed)};"
            " --redo failed runs them again)",
            markup=False,
        )


_COUNTERS = ("discovered", "new", "changed", "unchanged", "written", "superseded", "quarantined", "deferred")


def _print_summary(console: Any, summary: Any, storage: Any, seconds: float, command: str = "run") -> None:
    """The run summary: one row per source, totals, reasons (quarantined, deferred), notes, partitions touched."""
    rows = [
        [s.source, *(str(getattr(s, c)) for c in _COUNTERS), str(len(s.partitions)), "failed" if s.error else "ok"]
        for s in summary.sources
    ]
    rows.append(
        [
            "total",
            *(str(summary.total(c)) for c in _COUNTERS),
            str(sum(len(s.partitions) for s in summary.sources)),
            "",
        ]
    )
    _table(
        console,
        f"newsflow {command} {summary.run_id} ({seconds:.1f} s)",
        [("source", False), *((c, True) for c in _COUNTERS), ("partitions", True), ("status", False)],
        rows,
        total=True,
    )
    for s in summary.sources:
        if s.reasons:
            line = f"quarantined in {s.source}: " + ", ".join(f"{r} {n}" for r, n in s.reasons.items())
            console.print(line, markup=False)
        if s.deferrals:
            line = f"deferred in {s.source}: " + ", ".join(f"{r} {n}" for r, n in s.deferrals.items())
            console.print(line, markup=False)
        for note in s.notes:
            console.print(f"note on {s.source}: {note}", markup=False)
        if s.partitions:
            console.print(f"partitions written in {s.source}: {_compact(s.partitions)}", markup=False)
    if command == "renormalize" and not summary.total("discovered"):
        console.print("nothing to re-normalise: every row was written by the current normalisers", markup=False)
    _print_duplicates(console, summary)
    where, root = storage.location, storage.root.root
    console.print(f"Parquet: {where}/articles/source=*/year=*/month=*/part-0.parquet", markup=False)
    console.print(f"Quarantine: {where}/quarantine_current (failing now), {where}/quarantine (log)", markup=False)
    bucket = where != str(root)  # a bucket: runs work on this machine's copy of it
    if bucket:
        console.print(f"Working copy on this machine: {root}", markup=False)
    data = f" --data {where}" if bucket else ""
    console.print(f'Query: newsflow query{data} "SELECT source, count(*) FROM articles GROUP BY ALL"', markup=False)
    _print_report(summary)


def _print_duplicates(console: Any, summary: Any) -> None:
    """The line on the duplicate index's update after a run or backfill (its failure on stderr)."""
    if summary.duplicates_error:
        print(
            f"newsflow: warning: duplicates and clusters not updated: {summary.duplicates_error} "
            "(the articles are written; `newsflow dedup` catches up)",
            file=sys.stderr,
        )
    elif summary.duplicates is not None:
        console.print(summary.duplicates.line(), markup=False)


def _print_report(summary: Any) -> None:
    """Where the run left the corpus report (why it did not, on stderr)."""
    if summary.report_error:
        print(
            f"newsflow: warning: report not written: {summary.report_error} (`newsflow report` writes it)",
            file=sys.stderr,
        )
    elif summary.report:
        print(f"Report: {summary.report}")


def _console(stderr: bool = False) -> Any:
    """A rich console that never breaks a line itself: a long path or command stays one line to copy."""
    from rich.console import Console

    return Console(stderr=stderr, soft_wrap=True)


def _table(
    console: Any, title: str, columns: list[tuple[str, bool]], rows: list[list[str]], total: bool = False
) -> None:
    """Print a table: boxed on a terminal (cells wrap, never cut), plain aligned columns otherwise.

    `columns` are (name, right-aligned); with `total`, the last row is a total (bold on a terminal).
    """
    if console.is_terminal:
        from rich.table import Table

        table = Table(title=title, title_justify="left")
        for name, right in columns:
            table.add_column(name, justify="right" if right else "left", overflow="fold", min_width=len(name))
        for i, row in enumerate(rows):
            table.add_row(*row, style="bold" if total and i == len(rows) - 1 else None)
        console.print(table)
        return
    # Piped or redirected: every cell whole, columns aligned by spaces, no box drawing,
    # so `grep`, `awk` and a log reader see the values as they are.
    cells = [[name for name, _ in columns], *rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    out = [title]
    for row in cells:
        parts = [c.rjust(w) if right else c.ljust(w) for c, w, (_, right) in zip(row, widths, columns, strict=True)]
        out.append("  ".join(parts).rstrip())
    console.file.write("\n".join(out) + "\n")


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
    import dataclasses

    from flows.config import load_config
    from normalizers.errors import Rejection, RejectReason
    from pipeline.boilerplate import with_learned
    from pipeline.discover import discover_files, file_input, list_file
    from pipeline.files import printable, real_root
    from pipeline.ingest import normalize_input, read_input
    from warehouse.layout import DataRoot

    cfg_file = config_path(args.config)
    cfg = load_config(cfg_file) if cfg_file.exists() or args.config else None
    fmt = args.format or ("pretty" if sys.stdout.isatty() else "jsonl")
    if cfg is None and args.source:
        raise UserError(f"--source {args.source}: no config file at {cfg_file}")
    chosen = cfg.select([args.source])[0] if cfg is not None and args.source else None
    now = datetime.now(UTC)  # the time of ingest, as a run would judge the dates
    status = 0
    for raw_path in args.paths:
        path = Path(raw_path).absolute()
        if not path.exists() and not path.is_symlink():
            raise UserError(f"{raw_path}: cannot read: no such file or folder")
        src = chosen or _source_holding(cfg, path)
        if src is None:
            src = _local_source(args.source or "local", path)
        # What a run of the source would remove: its configured rules and the boilerplate it has learned.
        src, _generation, problem = with_learned(src, DataRoot(_readable_root(args.data)), repair=False)
        if problem:
            print(f"newsflow: warning: {problem}", file=sys.stderr)
        # A folder's files are those its source includes, listed as a run lists them.
        if path.is_dir():
            folder = dataclasses.replace(src, path=path)
            listing = discover_files(folder)
            root = real_root(path)
            if not listing:
                globs = " ".join(folder.include)
                print(f"newsflow: {printable(raw_path)}: no files matching {globs}", file=sys.stderr)
                status = 1
        else:
            root = real_root(path.parent)
            listing = [list_file(str(path), root)]
        # Keys relative to the source's folder, as a run gives them (article ids depend on them).
        within = path if path.is_dir() else path.parent
        prefix = within.relative_to(src.path).as_posix() if src.path and within.is_relative_to(src.path) else "."
        for listed in listing:
            cand = file_input(listed)
            if prefix != ".":
                cand = cand._replace(rel=f"{prefix}/{cand.rel}")
            # File names are untrusted: a name holding escape sequences must not drive the terminal.
            shown = printable(os.path.join(raw_path, listed[0]) if path.is_dir() else raw_path)
            loaded = read_input(src, cand, None, root)
            result = loaded if isinstance(loaded, Rejection) else normalize_input(src, cand, *loaded, as_of=now)
            if isinstance(result, Rejection):
                print(f"newsflow: {shown}: rejected ({result.reason.value}): {result.message}", file=sys.stderr)
                status = 1
                # A page the extractor gave up on is where its reasons matter most.
                gave_up = result.reason is RejectReason.EXTRACTION_FAILED and not isinstance(loaded, Rejection)
                if args.explain and gave_up:
                    for line in _explained(src, cand, loaded, now):
                        print(f"# {shown}: {line}", file=sys.stderr)
                continue
            record = _jsonable(dataclasses.asdict(result))
            choice = _explained(src, cand, loaded, now) if args.explain and result.normalizer == "html" else []
            if fmt == "jsonl":
                print(json.dumps(record, ensure_ascii=False))
            else:
                _pretty(shown, record, explain=args.explain, choice=choice)
            if args.explain and fmt == "jsonl":
                for line in choice:
                    print(f"# {shown}: {line}", file=sys.stderr)
                for s in result.stripped:
                    print(f"# {shown}:{s.line}: removed {s.kind} by rule {s.rule!r}: {s.text!r}", file=sys.stderr)
    return status


def _explained(src: Any, cand: Any, loaded: Any, now: datetime) -> list[str]:
    """How the extraction chose a page's text: path, confidence, content root, candidates and why the root won."""
    from normalizers.errors import Rejection
    from normalizers.html.normalize import explain_html
    from pipeline.ingest import input_meta

    raw, sidecar = loaded
    found = explain_html(raw, input_meta(src, cand, sidecar, now), src.profile, None)
    if isinstance(found, Rejection):
        return []
    how = "the source's CSS selectors" if found.path == "profile" else "the learned block model"
    lines = [
        f"path {found.path}: {how}",
        f"confidence {found.confidence:.2f} (the F1 the text is expected to score; the source quarantines "
        f"below {src.profile.min_confidence:g})",
        f"kept {found.kept} block{'s' if found.kept != 1 else ''} at probability >= {found.threshold:.2f}"
        if found.threshold <= 1
        else "kept nothing: no block is likely enough to be article text",
        f"content root {found.root or '-'}: the lowest container holding {found.root_share:.0%} of the kept text",
    ]
    for rank, c in enumerate(found.candidates, 1):
        lines.append(
            f"candidate {rank}: {c.path}: {c.share:.0%} of the expected article text, mean probability "
            f"{c.mean_p:.2f}, {c.chars} characters"
        )
    if len(found.candidates) > 1:
        best, second = found.candidates[:2]
        lines.append(
            f"candidate 1 leads: {best.share:.0%} of the expected article text at mean probability "
            f"{best.mean_p:.2f}, against {second.share:.0%} at {second.mean_p:.2f} for candidate 2"
        )
    elif found.candidates:
        lines.append("candidate 1 leads alone: no container outside it holds 5% of the expected article text")
    lines.append("the text is the blocks kept (whatever their container); the content root is where most of them are")
    return lines


def _source_holding(cfg: Any, path: Path) -> Any:
    """The configured `files` source whose folder holds `path`, if any."""
    if cfg is None:
        return None
    return next((s for s in cfg.sources.values() if s.kind == "files" and s.path and path.is_relative_to(s.path)), None)


def _local_source(name: str, path: Path) -> Any:
    """A source for files outside every configured one: default profile, format picked by extension."""
    from normalizers.profile import SourceProfile
    from pipeline.config import SourceConfig

    return SourceConfig(
        name=name,
        kind="files",
        path=path if path.is_dir() else path.parent,
        include=("*.txt", "*.html", "*.htm", "*.html.gz", "*.htm.gz"),
        format="auto",
        description="",
        profile=SourceProfile(name=name),
    )


def _jsonable(value: Any) -> Any:
    """Plain JSON data: times in ISO 8601, intervals and bytes as `_json_default` writes them."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if _is_interval(value) or isinstance(value, bytes | timedelta):
        return _json_default(value)
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def _pretty(label: str, record: dict[str, Any], explain: bool, choice: Sequence[str] = ()) -> None:
    from rich.console import Console
    from rich.panel import Panel
    from rich.table import Table
    from rich.text import Text

    # Article text is data, never markup: a paragraph reading "[bold]" prints as is.
    console = Console(soft_wrap=True)
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
        "extraction_confidence",
        "site_name",
        "tags",
        "warnings",
    ):
        if record.get(key) not in (None, [], ()):
            meta.add_row(Text(key, style="bold"), Text(str(record[key])))
    console.print(Panel(meta, title=Text(label)))
    console.print(Text("lede", style="bold"), Text(record["lede"] or ""), "", sep="\n")
    for section in record["sections"]:
        if section["heading"]:
            console.print(Text(f"## {section['heading']}", style="bold"), "", sep="\n")
        for paragraph in section["paragraphs"]:
            console.print(Text(paragraph), "", sep="\n")
    if explain:
        for line in choice:
            name, _, rest = line.partition(" ")
            console.print(Text.assemble((name, "bold"), f" {rest}"))
        console.print(Text("removed" if record["stripped"] else "removed nothing", style="bold"))
        for s in record["stripped"]:
            where = f"line {s['line']}" if s["line"] else "block"
            console.print(Text.assemble(f"  {where}: {s['kind']} by ", (s["rule"], "cyan"), f": {s['text']!r}"))


def _dedup(args: argparse.Namespace) -> int:
    from pipeline.dedup import update_clusters
    from pipeline.storage import LocalStorage

    storage = _storage(args.data, writable=False)
    if isinstance(storage, LocalStorage):
        root = storage.root.root
        if not root.is_dir():
            raise UserError(f"data root {root} does not exist (run `newsflow run` first, or pass --data)")
        _writable_data_root(root)
    with storage.corpus():
        done = update_clusters(storage.root, rebuild=args.rebuild)
    print(done.line())
    where = f"{storage.location}/clusters/source=*/year=*/month=*/part-0.parquet"
    print(f"Clusters: {where} (view `clusters` in `newsflow query`)")
    return 0


def _report(args: argparse.Namespace) -> int:
    from pipeline.report import REPORT_FILE, write_report
    from warehouse.query import QueryError

    root = _readable_root(args.data)
    out = (args.out or root / REPORT_FILE).absolute()
    if out.is_dir():
        raise UserError(f"--out {out}: is a folder; name the HTML file to write")
    # A misspelt source would otherwise replace the report with an empty one.
    present = {p.name.split("=", 1)[1] for p in root.glob("*/source=*") if p.is_dir()}
    unknown = sorted(set(args.sources) - present)
    if unknown:
        have = ", ".join(sorted(present)) or "none"
        raise UserError(f"no data of source(s) {', '.join(unknown)} in {root} (sources with data: {have})")
    try:
        report = write_report(root, out, args.sources, args.since)
    except QueryError as exc:
        raise UserError(str(exc)) from exc
    except OSError as exc:
        raise UserError(f"cannot write the report to {out}: {exc.strerror or exc}") from exc
    known = report.figures
    if args.sources and not known.articles:
        print(f"newsflow: note: no articles of {', '.join(args.sources)} in the range", file=sys.stderr)
    print(f"{known.articles:,} articles from {known.sources} sources; {known.quarantined_now:,} inputs quarantined now")
    print(f"Report: {out}")
    return 0


def _query(args: argparse.Namespace) -> int:
    import duckdb

    from warehouse.query import QueryError, connect

    root = _readable_root(args.data)
    try:
        con = connect(root)
        rel = con.sql(args.sql)
    except QueryError as exc:
        raise UserError(str(exc)) from exc
    except Exception as exc:  # duckdb raises many error types; all are the user's SQL here
        raise UserError(f"query failed: {str(exc).splitlines()[0]}") from exc
    if rel is None:
        return 0
    fmt = args.format or ("table" if sys.stdout.isatty() else "csv")
    try:
        _print_result(rel, fmt)
    except duckdb.Error as exc:  # raised while the query runs: a cast, an error() call...
        raise UserError(f"query failed: {str(exc).splitlines()[0]}") from exc
    return 0


# Rows a `table` prints (the rest is a count); csv and jsonl print them all, streamed.
_TABLE_ROWS = 100


def _print_result(rel: Any, fmt: str) -> None:
    """Print a DuckDB relation as a table, CSV or JSON lines."""
    from pipeline.files import printable

    reader = map(_widened, rel.to_arrow_reader(10_000))  # streamed: a large result is never held whole
    # A terminal would run the escape sequences a stored file name or text can hold: shown
    # there, control characters are escaped (JSON escapes them; CSV into a pipe stays exact).
    shown = printable if fmt == "table" or sys.stdout.isatty() else str
    if fmt == "table":
        rows: list[list[str]] = []
        more = False
        for batch in reader:
            for row in batch.to_pylist():
                if len(rows) == _TABLE_ROWS:
                    more = True
                    break
                rows.append([shown(_cell_text(v)) for v in row.values()])
            if more:
                break
        title = f"first {_TABLE_ROWS} rows (--format csv prints all)" if more else f"{len(rows)} rows"
        _table(_console(), title, [(c, False) for c in rel.columns], rows)
    elif fmt == "csv":
        import csv

        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(rel.columns)
        for batch in reader:
            writer.writerows([_escaped(_csv_cell(v), shown) for v in row.values()] for row in batch.to_pylist())
    else:
        for batch in reader:
            for row in batch.to_pylist():
                print(json.dumps(_jsonable(row), ensure_ascii=False, default=_json_default))


def _plural(n: int, word: str) -> str:
    return word if n == 1 else f"{word}s"


def _n(n: int, word: str) -> str:
    return f"{n} {_plural(n, word)}"


def _widened(batch: Any) -> Any:
    """The batch with its float32 columns as the float64 of their shortest spelling (0.194, not 0.1940000057...)."""
    import pyarrow as pa

    columns = [c.cast(pa.string()).cast(pa.float64()) if pa.types.is_float32(c.type) else c for c in batch.columns]
    return pa.RecordBatch.from_arrays(columns, names=batch.schema.names)


def _escaped(value: Any, shown: Callable[[str], str]) -> Any:
    return shown(value) if isinstance(value, str) else value


def _cell_text(value: Any) -> str:
    """A table cell: NULL for a missing value, else what CSV holds."""
    if value is None:
        return "NULL"
    return str(_csv_cell(value))


def _csv_cell(value: Any) -> Any:
    """A CSV cell: lists, structs and maps as JSON (not Python reprs), times in ISO 8601, booleans as true/false."""
    if isinstance(value, list | dict) or (isinstance(value, tuple) and not _is_interval(value)):
        return json.dumps(_jsonable(value), ensure_ascii=False, default=_json_default)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime | date):
        return value.isoformat()
    return _json_default(value) if isinstance(value, bytes | timedelta) or _is_interval(value) else value


def _is_interval(value: Any) -> bool:
    """A DuckDB INTERVAL as Arrow gives it: (months, days, nanoseconds)."""
    return type(value).__name__ == "MonthDayNano"


def _json_default(value: Any) -> Any:
    """JSON for what the json module does not know: bytes as hex, intervals and durations in ISO 8601."""
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, timedelta):
        return _iso_duration(0, value.days, value.seconds * 1_000_000_000 + value.microseconds * 1000)
    if _is_interval(value):
        months, days, nanoseconds = value
        return _iso_duration(months, days, nanoseconds)
    return str(value)


def _iso_duration(months: int, days: int, nanoseconds: int) -> str:
    """An ISO 8601 duration: P1M2DT3.5S."""
    seconds = nanoseconds / 1e9
    date_part = (f"{months}M" if months else "") + (f"{days}D" if days else "")
    time_part = f"T{seconds:g}S" if seconds else ""
    return "P" + (date_part + time_part or "T0S")


def _shown(path: Path) -> str:
    """A path relative to the working directory when it is below it."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _sources(args: argparse.Namespace) -> int:
    from flows.config import load_config
    from pipeline.config import source_problem
    from warehouse.boilerplate import BoilerplateStore
    from warehouse.layout import DataRoot
    from warehouse.ledger import latest_entries
    from warehouse.state import StateStore

    cfg = load_config(config_path(args.config))
    root = DataRoot(_readable_root(args.data))
    counts = {}
    store = StateStore.existing(root.state)
    if store is not None:
        with store:
            counts = store.counts()
    listed: list[dict[str, Any]] = []
    for s in cfg.sources.values():
        c = counts.get(s.name, {})
        learned: int | None = None  # None: the source does not learn
        if s.profile.learn:
            learned = 0
            if BoilerplateStore.file(root.state, s.name).is_file():
                with BoilerplateStore(root.state, s.name) as bp:
                    learned = len(bp.lines())
        done = latest_entries(root, s.name, kind="backfill")
        failed = sum(e.status == "failed" for e in done.values())
        listed.append(
            {
                "source": s.name,
                "kind": s.kind,
                "format": s.format,
                "where": str(s.path) if s.path else list(s.urls),
                "include": list(s.include),
                "rules": len(s.profile.rules),
                "learned_blocks": learned,
                "schedule": (
                    {"cron": s.schedule.cron, "interval": s.schedule.interval, "timezone": s.schedule.timezone}
                    if s.schedule
                    else None
                ),
                "schedule_text": s.schedule.describe() if s.schedule else "-",
                "written": c.get("written", 0),
                "quarantined": c.get("quarantined", 0),
                "backfilled_months": len(done) - failed,
                "backfill_failed_months": failed,
                "problem": source_problem(s),
            }
        )
    if args.json:
        print(json.dumps(listed, indent=2))
    else:
        _table(
            _console(),
            f"sources in {_shown(cfg.path)}",
            [
                ("source", False),
                ("kind", False),
                ("format", False),
                ("path or url", False),
                ("include", False),
                ("rules", True),
                ("learned", True),
                ("schedule", False),
                ("written", True),
                ("quarantined", True),
                ("backfilled", False),
                ("status", False),
            ],
            [
                [
                    e["source"],
                    e["kind"],
                    e["format"],
                    _shown(Path(e["where"])) if isinstance(e["where"], str) else ", ".join(e["where"]),
                    ", ".join(e["include"]),
                    str(e["rules"]),
                    "off" if e["learned_blocks"] is None else str(e["learned_blocks"]),
                    e["schedule_text"],
                    str(e["written"]),
                    str(e["quarantined"]),
                    _backfilled(e["backfilled_months"], e["backfill_failed_months"]),
                    "ok" if e["problem"] is None else "PROBLEM",
                ]
                for e in listed
            ],
        )
    problems = [e["problem"] for e in listed if e["problem"]]
    if args.check:
        for problem in problems:
            print(f"newsflow: error: {problem}", file=sys.stderr)
        if not problems:
            checked = f"{len(listed)} source{'' if len(listed) == 1 else 's'} checked"
            print(f"newsflow: {checked}: every folder and URL list is there", file=sys.stderr)
        return 2 if problems else 0
    for problem in problems:
        print(f"newsflow: warning: {problem}", file=sys.stderr)
    return 0


def _backfilled(done: int, failed: int) -> str:
    if not done and not failed:
        return "-"
    return f"{done} months" + (f", {failed} failed" if failed else "")


if __name__ == "__main__":
    sys.exit(main())
