"""Running a command as a benchmark step: wall time, CPU, and its process tree's memory from /proc.

Shared by the ingestion benchmarks (`ingest_text.py`, `ingest_html.py`), with the
environment and the Prefect server they run `newsflow` under. Linux only (/proc).
"""

from __future__ import annotations

import contextlib
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from flows.server import LocalServer

REPO = Path(__file__).resolve().parent.parent

SAMPLE_INTERVAL = 0.05
# PSS is read every PSS_EVERY samples (1 s) only. The kernel walks a process's page
# tables for /proc/<pid>/smaps_rollup: 3.5-6 ms of CPU per newsflow process, ~19 ms
# for the full run's five, so reading it every 50 ms took ~38 % of one of this
# machine's two cores away from the run being measured (and almost nothing from the
# single-process naive script, which leaves a core idle). RSS (statm, ~0.01 ms) and
# the main process's VmHWM stay at every sample.
PSS_EVERY = 20
LINGER_S = 10.0  # how long descendants may outlive the measured process before "leaked"
# How long a running server may take to go quiet after a step, and what counts as
# quiet: under 10 % of a core over half a second (idle, Prefect's server uses 1-4 %).
SETTLE_MAX_S = 15.0
SETTLE_WINDOW_S = 0.5
SETTLE_IDLE_CPU_S = 0.05
# A marker so a reused --workdir is only ever wiped when a bench created it.
MARKER = ".newsflow-bench"

_PAGE = os.sysconf("SC_PAGE_SIZE")
_TICKS = os.sysconf("SC_CLK_TCK")
MB = 1024 * 1024


# ------------------------------------------------------------------- environment


def bench_env(prefect_home: Path, api_url: str | None = None) -> dict[str, str]:
    """The environment of a process the bench starts.

    Analytics off; this checkout first on PYTHONPATH, so `python -m flows.cli` runs its
    code whatever other checkout the interpreter has installed; PREFECT_HOME as given;
    PREFECT_API_URL only when given (without it a one-shot command starts its own server).
    """
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    env["DO_NOT_TRACK"] = "1"
    env["PREFECT_HOME"] = str(prefect_home)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
    if api_url is not None:
        env["PREFECT_API_URL"] = api_url
    return env


def newsflow_command(*args: str) -> list[str]:
    """`newsflow ARGS` as this interpreter runs it (`bench_env` puts the checkout on its path)."""
    return [sys.executable, "-m", "flows.cli", *args]


def niced(argv: list[str]) -> list[str]:
    """`argv` at the CPU priority of newsflow's workers (`nice -n`, NEWSFLOW_WORKER_NICE or +10).

    What a run is compared with (the naive script, trafilatura) is bulk work as the
    workers are: at equal priority, other users' load on a shared machine weighs on
    both alike (at nice 0 against workers at +10, it would weigh on newsflow ~9x more).
    """
    increment = workers_nice()
    return ["nice", "-n", str(increment), *argv] if increment else argv


def workers_nice() -> int:
    """The nice increment newsflow's workers run at (and `niced` commands)."""
    from pipeline.workers import worker_nice

    return worker_nice()


@contextlib.contextmanager
def running_server(prefect_home: Path, log: Path) -> Iterator[LocalServer]:
    """A Prefect server for the whole bench, as `newsflow serve` or a team's server would be running.

    `prefect server start` through `flows.server.LocalServer` (no UI, scheduler or
    late-run marking: nothing here needs them), its database under `prefect_home`.
    """
    from flows.server import ONE_SHOT_OPTIONS, LocalServer

    saved = dict(os.environ)
    os.environ.update(bench_env(prefect_home))  # LocalServer hands the server this process's environment
    try:
        server = LocalServer(0, log, options=ONE_SHOT_OPTIONS).__enter__()
    finally:
        os.environ.clear()
        os.environ.update(saved)
    try:
        yield server
    finally:
        server.stop()


def prepare_workdir(workdir: Path, made_by: str) -> None:
    """Create `workdir`, or empty one a bench made before; refuse any other non-empty folder."""
    if workdir.exists() and any(workdir.iterdir()):
        if not (workdir / MARKER).exists():
            raise SystemExit(f"{made_by}: {workdir} is not empty and was not made by a newsflow bench")
        # A previous bench run's leftovers: start from nothing so "new" really is new.
        for child in workdir.iterdir():
            if child.is_dir():
                shutil.rmtree(child)
            else:
                child.unlink()
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / MARKER).write_text(f"made by {made_by}\n", encoding="utf-8")


@contextlib.contextmanager
def bench_workdir(given: Path | None, keep: bool, prefix: str, made_by: str) -> Iterator[Path]:
    """The bench's workdir: `given` (emptied by `prepare_workdir`), else a temp dir removed afterwards unless `keep`."""
    temp = given is None
    workdir = Path(tempfile.mkdtemp(prefix=prefix)) if given is None else given.resolve()
    prepare_workdir(workdir, made_by)
    print(f"workdir: {workdir}")
    try:
        yield workdir
    finally:
        if temp and not keep:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"kept: {workdir} (logs in {workdir / 'logs'})")


def warm_cache(folder: Path) -> None:
    """Read every file under `folder` once, so the next step starts with them in the page cache."""
    for dirpath, _dirs, files in os.walk(folder):
        for name in files:
            with open(os.path.join(dirpath, name), "rb") as f:
                while f.read(1 << 20):
                    pass


def median(values: list[float]) -> float:
    """The median of a non-empty list."""
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


# ------------------------------------------------------------------- measurement


def _read(path: str) -> bytes | None:
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except OSError:  # the process exited between listing and reading
        return None


def _kb_field(text: bytes, name: bytes) -> int | None:
    """A `Name:   123 kB` field of /proc/<pid>/status or smaps_rollup, in bytes."""
    start = text.find(b"\n" + name + b":")
    if start < 0:
        return None
    return int(text[start + len(name) + 2 :].split(None, 1)[0]) * 1024


class ProcInfo(NamedTuple):
    """What /proc/<pid>/stat says of a process that the bench uses."""

    ppid: int
    start: bytes  # start time in clock ticks since boot: tells a reused pid apart
    cpu_ticks: int  # user + system time


def _process_table() -> dict[int, ProcInfo]:
    """pid -> ProcInfo for every process.

    /proc/<pid>/task/*/children would avoid the full scan but needs
    CONFIG_PROC_CHILDREN, which many kernels (this VM's included) lack; the scan is
    ~1 ms for a container's worth of processes.
    """
    table: dict[int, ProcInfo] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        stat = _read(f"/proc/{entry}/stat")
        if stat is None:
            continue
        # The command name may hold spaces and ')'; fields are counted after the last ')'.
        fields = stat[stat.rindex(b")") + 2 :].split()
        table[int(entry)] = ProcInfo(int(fields[1]), fields[19], int(fields[11]) + int(fields[12]))
    return table


def _tree(root: int, table: dict[int, ProcInfo]) -> list[int]:
    children: dict[int, list[int]] = {}
    for pid, info in table.items():
        children.setdefault(info.ppid, []).append(pid)
    out, stack = [], [root]
    while stack:
        pid = stack.pop()
        out.append(pid)
        stack.extend(children.get(pid, ()))
    return out


def tree_cpu(root: int) -> float:
    """CPU seconds (user + system) used so far by `root` and its live descendants."""
    table = _process_table()
    if root not in table:
        return 0.0
    return sum(table[pid].cpu_ticks for pid in _tree(root, table)) / _TICKS


def machine_busy() -> float:
    """CPU seconds all cores have spent busy since boot (/proc/stat: all but idle and iowait)."""
    fields = (_read("/proc/stat") or b"cpu 0").split(b"\n", 1)[0].split()[1:]
    ticks = [int(f) for f in fields[:8]]  # user nice system idle iowait irq softirq steal
    return (sum(ticks) - ticks[3] - (ticks[4] if len(ticks) > 4 else 0)) / _TICKS


def tree_rss(root: int) -> int:
    """RSS summed over `root` and its descendants now, in bytes."""
    total = 0
    for pid in _tree(root, _process_table()):
        statm = _read(f"/proc/{pid}/statm")
        total += int(statm.split()[1]) * _PAGE if statm else 0
    return total


def settle(root: int) -> float:
    """Wait until the process tree of `root` (a server) is idle again; the seconds waited."""
    started = time.monotonic()
    before = tree_cpu(root)
    while time.monotonic() - started < SETTLE_MAX_S:
        time.sleep(SETTLE_WINDOW_S)
        now = tree_cpu(root)
        if now - before < SETTLE_IDLE_CPU_S:
            break
        before = now
    return time.monotonic() - started


class TreeSampler(threading.Thread):
    """Samples RSS/PSS of a process and its descendants until stopped."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.main_rss = 0
        self.main_hwm = 0
        self.tree_rss = 0
        self.tree_pss = 0
        self.max_procs = 0
        self.samples = 0
        # pid -> start time, to tell a leftover descendant from a reused pid later.
        self.seen: dict[int, bytes] = {}
        self.names: dict[int, str] = {}
        self.peaks: dict[int, int] = {}  # pid -> its own peak RSS
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            self.sample(with_pss=self.samples % PSS_EVERY == 0)
            self._halt.wait(SAMPLE_INTERVAL)

    def stop(self) -> None:
        self._halt.set()
        self.join()

    def sample(self, with_pss: bool = True) -> None:
        """Read the tree's memory once; PSS (the costly part) only `with_pss`."""
        table = _process_table()
        if self.pid not in table:
            return
        rss_sum = pss_sum = procs = 0
        for pid in _tree(self.pid, table):
            statm = _read(f"/proc/{pid}/statm")
            if statm is None:
                continue
            rss = int(statm.split()[1]) * _PAGE
            if rss == 0:  # a zombie or kernel thread: no memory of its own any more
                continue
            procs += 1
            if pid not in self.seen:
                self.seen[pid] = table[pid].start
            rss_sum += rss
            if rss > self.peaks.get(pid, 0):
                self.peaks[pid] = rss
                # Read again at each new peak: a process first seen between fork and
                # exec still shows its parent's command line.
                self.names[pid] = _command(pid)
            if with_pss:
                rollup = _read(f"/proc/{pid}/smaps_rollup")
                pss = _kb_field(rollup, b"Pss") if rollup else None
                pss_sum += pss if pss is not None else rss
            if pid == self.pid:
                self.main_rss = max(self.main_rss, rss)
                status = _read(f"/proc/{pid}/status")
                # VmHWM is the kernel's own high-water mark, so it also covers peaks
                # between samples; the last read before exit is the process's peak.
                hwm = _kb_field(status, b"VmHWM") if status else None
                if hwm is not None:
                    self.main_hwm = max(self.main_hwm, hwm)
        self.tree_rss = max(self.tree_rss, rss_sum)
        if with_pss:
            self.tree_pss = max(self.tree_pss, pss_sum)
        self.max_procs = max(self.max_procs, procs)
        self.samples += 1

    def alive(self) -> list[int]:
        """Descendants seen during the run that are still alive (same pid and start time)."""
        table = _process_table()
        return sorted(p for p, start in self.seen.items() if p != self.pid and p in table and table[p].start == start)


def _command(pid: int) -> str:
    """A short command line for reports, e.g. `python -m prefect.server ...`."""
    raw = _read(f"/proc/{pid}/cmdline") or b""
    words = [os.path.basename(w) if i == 0 else w for i, w in enumerate(raw.decode(errors="replace").split("\0"))]
    return " ".join(w for w in words if w)[:100]


@dataclass(slots=True)
class Step:
    """One measured subprocess."""

    name: str
    kind: str  # what the figures are grouped by (ingest_text: empty | full | noop | naive)
    regime: str  # steady | one-shot | "" (a step that runs no `newsflow`)
    seconds: float
    cpu: float  # user + system seconds of the process and the descendants it reaped
    returncode: int
    rss_main: int
    rss_tree: int
    pss_tree: int
    max_procs: int
    stdout: str
    stderr: str
    # Descendants that outlived the measured process: (pid, command, seconds after its
    # exit, or None if still running at the end of the grace period).
    lingered: list[tuple[int, str, float | None]] = field(default_factory=list)
    # (command, peak RSS) of every process of the tree, largest first.
    processes: list[tuple[str, int]] = field(default_factory=list)
    # CPU seconds the running server used from the step's start until it was idle again
    # (steady state only).
    server_cpu: float | None = None
    # CPU seconds the rest of the machine (other users' work) used during the step.
    others_cpu: float = 0.0

    @property
    def rss_largest(self) -> int:
        """The peak RSS of the tree's largest process."""
        return self.processes[0][1] if self.processes else 0


def measure(
    name: str, kind: str, regime: str, argv: list[str], env: dict[str, str], logs: Path, server: int | None = None
) -> Step:
    """Run `argv` to completion, timing it and sampling its process tree's memory.

    With `server` (the pid of a running Prefect server the command uses), also wait
    until that server is idle again and count the CPU it used meanwhile.
    """
    logs.mkdir(parents=True, exist_ok=True)
    server_before = tree_cpu(server) if server else 0.0
    slug = name.replace(" ", "-").replace("/", "of")
    out_path, err_path = logs / f"{slug}.stdout", logs / f"{slug}.stderr"
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        own = resource.getrusage(resource.RUSAGE_SELF)
        busy = machine_busy()
        started = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=env)
        sampler = TreeSampler(proc.pid)
        sampler.start()
        returncode = proc.wait()
        seconds = time.perf_counter() - started
        # RUSAGE_CHILDREN grows by what each reaped child used, its own reaped children
        # included: a CPU figure tells "more work" from "more waiting" when wall time moves.
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = after.ru_utime - usage.ru_utime + after.ru_stime - usage.ru_stime
        sampler.stop()
        # What the rest of the machine used meanwhile: its busy time, less the command's,
        # the server's and this process's own (the sampler's).
        own_after = resource.getrusage(resource.RUSAGE_SELF)
        mine = own_after.ru_utime - own.ru_utime + own_after.ru_stime - own.ru_stime
        server_in_step = tree_cpu(server) - server_before if server else 0.0
        others = max(0.0, machine_busy() - busy - cpu - server_in_step - mine)
    lingered = _linger(sampler)
    server_cpu = None
    if server:
        settle(server)
        server_cpu = tree_cpu(server) - server_before
    peaks = dict(sampler.peaks)
    rss_main = max(sampler.main_hwm, sampler.main_rss)
    if peaks:
        peaks[proc.pid] = max(peaks.get(proc.pid, 0), rss_main)
    return Step(
        name=name,
        kind=kind,
        regime=regime,
        seconds=seconds,
        cpu=cpu,
        returncode=returncode,
        rss_main=rss_main,
        rss_tree=sampler.tree_rss,
        pss_tree=sampler.tree_pss,
        max_procs=sampler.max_procs,
        stdout=out_path.read_text(encoding="utf-8", errors="replace"),
        stderr=err_path.read_text(encoding="utf-8", errors="replace"),
        lingered=lingered,
        processes=sorted(
            ((sampler.names.get(pid, "?"), peak) for pid, peak in peaks.items()),
            key=lambda item: -item[1],
        ),
        server_cpu=server_cpu,
        others_cpu=others,
    )


def _linger(sampler: TreeSampler) -> list[tuple[int, str, float | None]]:
    """Wait (up to LINGER_S) for descendants that outlive the measured process.

    Orphaned pool workers or a Prefect server still shutting down would eat CPU and
    memory during the next step, and one that never exits is a leak; both are reported.
    """
    exited = time.monotonic()
    gone_after: dict[int, float] = {}
    alive = sampler.alive()
    first = set(alive)
    while alive and time.monotonic() - exited < LINGER_S:
        time.sleep(0.1)
        now_alive = set(sampler.alive())
        for pid in set(alive) - now_alive:
            gone_after[pid] = time.monotonic() - exited
        alive = sorted(now_alive)
    return [(pid, sampler.names.get(pid, "?"), gone_after.get(pid)) for pid in sorted(first)]
