"""A data root in an S3 bucket, against an S3-compatible server (moto's) on 127.0.0.1 that the tests start.

Each "machine" is a working copy of its own (`NEWSFLOW_CACHE`): what one writes reaches
another only through the bucket.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import RenameGate, harness_env, newsflow

from pipeline.storage import BucketStorage
from warehouse.bucket import Bucket, BucketUrl, Lease, LeaseLost
from warehouse.errors import LockTimeout, WarehouseError
from warehouse.mirror import Scope, WorkingCopy

REPO = Path(__file__).resolve().parent.parent
KEYS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    """An S3 server on 127.0.0.1 (moto in server mode), for this module's tests."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture()
def aws(endpoint: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The usual AWS variables pointing at the test server, in this process and for the commands it starts."""
    env = {"AWS_ENDPOINT_URL": endpoint, **KEYS}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return env


@pytest.fixture()
def bucket_url(aws: dict[str, str]) -> str:
    """A new, empty bucket; its data root URL."""
    import boto3

    name = f"news-{uuid.uuid4().hex[:12]}"
    boto3.client("s3").create_bucket(Bucket=name)
    return f"s3://{name}/corpus"


def _keys(url: str) -> list[str]:
    b = Bucket(BucketUrl.parse(url))
    return sorted(o.rel for o in b.list(""))


# --- URLs and leases -------------------------------------------------------------------------


def test_a_bucket_url_is_checked() -> None:
    assert BucketUrl.parse("s3://news/a/b/") == BucketUrl("news", "a/b")
    assert BucketUrl.parse("s3://news").key("articles/x") == "articles/x"
    for bad in ("s3:///prefix", "s3://news/a/../b", "s3://news/a?x=1", "http://news/a"):
        with pytest.raises(WarehouseError):
            BucketUrl.parse(bad)


def test_a_lease_is_exclusive_and_names_its_holder(bucket_url: str) -> None:
    bucket = Bucket(BucketUrl.parse(bucket_url))
    with Lease(bucket, "source-x", ttl=30):
        other = Lease(bucket, "source-x", ttl=30, wait=0.5)
        with pytest.raises(LockTimeout, match=f"pid {os.getpid()}"):
            other.acquire()
    with Lease(bucket, "source-x", ttl=30) as again:  # released: free at once
        assert again.took_over is None
    assert not any(k.startswith(".leases/") for k in _keys(bucket_url))


def test_a_lease_whose_holder_was_killed_is_taken_over_once_expired(bucket_url: str, aws: dict[str, str]) -> None:
    code = (
        "import sys, time\n"
        "from warehouse.bucket import Bucket, BucketUrl, Lease\n"
        f"lease = Lease(Bucket(BucketUrl.parse({bucket_url!r})), 'source-x', ttl=1)\n"
        "lease.acquire()\n"
        "print('held', flush=True)\n"
        "time.sleep(600)\n"
    )
    holder = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, stdout=subprocess.PIPE, env={**os.environ, **aws})
    try:
        assert holder.stdout is not None and holder.stdout.readline() == b"held\n"
        holder.send_signal(signal.SIGKILL)
        holder.wait(30)
        bucket = Bucket(BucketUrl.parse(bucket_url))
        with Lease(bucket, "source-x", ttl=30, wait=60) as lease:
            assert lease.took_over is not None and lease.took_over["pid"] == holder.pid
    finally:
        holder.kill()
        holder.wait()


def test_a_holder_whose_lease_was_taken_over_stops_before_its_commit_point(bucket_url: str) -> None:
    bucket = Bucket(BucketUrl.parse(bucket_url))
    with Lease(bucket, "source-x", ttl=30) as lease:
        lease.check()
        bucket.put(lease.rel, b'{"owner": "someone else"}')  # as a taker-over's write does
        with pytest.raises(LeaseLost):
            lease.check()
        assert lease.lost
    assert bucket.read(lease.rel) == (b'{"owner": "someone else"}', bucket.head(lease.rel).etag)  # type: ignore[union-attr]


def test_a_store_that_ignores_conditional_writes_is_refused(bucket_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    bucket = Bucket(BucketUrl.parse(bucket_url))
    real_put = Bucket.put

    def unconditional(self: Bucket, rel: str, body: bytes, **conditions: Any) -> str | None:
        return real_put(self, rel, body)  # as a store that drops If-None-Match and If-Match does

    monkeypatch.setattr(Bucket, "put", unconditional)
    with pytest.raises(WarehouseError, match="ignores conditional writes"):
        Lease(bucket, "source-x", ttl=30).acquire()
    assert bucket.head(".leases/source-x.json") is None


# --- the working copy: push and pull -------------------------------------------------------------


def _put_files(root: Path, source: str, n: int, version: str) -> dict[str, bytes]:
    files = {}
    for i in range(n):
        rel = f"articles/source={source}/year=2024/month={i + 1:02d}/part-0.parquet"
        body = f"{version}-{i}".encode() * 100
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(body)
        files[rel] = body
    return files


def test_a_push_killed_after_its_commit_point_is_rolled_forward_by_the_next_holder(
    bucket_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = Bucket(BucketUrl.parse(bucket_url))
    with WorkingCopy(bucket, tmp_path / "a") as a, Lease(bucket, "source-x", ttl=30) as lease:
        a.pull_source("x", lease)
        first = _put_files(a.root.root, "x", 3, "v1")
        assert a.push_source("x", lease).uploaded >= 3
        second = _put_files(a.root.root, "x", 3, "v2")
        copies = []
        real_copy = Bucket.copy

        def dies_after_one(self: Bucket, src: str, dst: str) -> str | None:
            if copies:
                raise ConnectionError("the machine went away")
            copies.append(dst)
            return real_copy(self, src, dst)

        with monkeypatch.context() as patched, pytest.raises(ConnectionError):
            patched.setattr(Bucket, "copy", dies_after_one)
            a.push_source("x", lease)
    # Mid-apply: one file new, the others old, and the journal left to say what remains.
    assert ".journal/source-x.json" in _keys(bucket_url)
    got = {rel: bucket.read(rel)[0] for rel in first}  # type: ignore[index]
    assert sum(got[rel] == second[rel] for rel in first) == 1
    with WorkingCopy(bucket, tmp_path / "b") as b, Lease(bucket, "source-x", ttl=30) as lease:
        sync = b.pull_source("x", lease)
        assert sync.rolled_forward >= 3
        for rel, body in second.items():
            assert (b.root.root / rel).read_bytes() == body
    assert not [k for k in _keys(bucket_url) if k.startswith((".journal/", ".staging/", ".leases/"))]


def test_a_pull_discards_what_a_killed_run_left_unpublished(bucket_url: str, tmp_path: Path) -> None:
    bucket = Bucket(BucketUrl.parse(bucket_url))
    with WorkingCopy(bucket, tmp_path / "a") as a:
        with Lease(bucket, "source-x", ttl=30) as lease:
            a.pull_source("x", lease)
            published = _put_files(a.root.root, "x", 2, "v1")
            a.push_source("x", lease)
        _put_files(a.root.root, "x", 3, "unpublished")  # a run committed here and died before its push
        with Lease(bucket, "source-x", ttl=30) as lease:
            a.pull_source("x", lease)
        here = {p.relative_to(a.root.root).as_posix() for p in (a.root.root / "articles").rglob("*.parquet")}
        assert here == set(published)
        for rel, body in published.items():
            assert (a.root.root / rel).read_bytes() == body


def test_a_journal_naming_files_outside_its_scope_is_refused(bucket_url: str, tmp_path: Path) -> None:
    bucket = Bucket(BucketUrl.parse(bucket_url))
    bad = {"format": 1, "scope": "source-x", "changes": [{"target": "articles/source=y/p.parquet", "staged": None}]}
    bucket.put(".journal/source-x.json", json.dumps(bad).encode())
    bucket.put("articles/source=y/p.parquet", b"another source's file")
    with (
        WorkingCopy(bucket, tmp_path / "a") as a,
        Lease(bucket, "source-x", ttl=30) as lease,
        pytest.raises(WarehouseError, match="outside its scope"),
    ):
        a.pull_source("x", lease)
    assert bucket.read("articles/source=y/p.parquet") is not None


def test_the_corpus_scope_holds_the_clusters_and_the_report_only() -> None:
    scope = Scope.corpus(("report.html",))
    assert scope.holds("clusters/source=a/year=2024/month=01/part-0.parquet")
    assert scope.holds("report.html")
    assert not scope.holds("articles/source=a/year=2024/month=01/part-0.parquet")


def test_an_unreachable_bucket_is_one_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from flows.cli import main

    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens on the discard port
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    for k, v in KEYS.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("NEWSFLOW_CACHE", str(tmp_path / "cache"))
    err = tmp_path / "err"
    with open(err, "w") as fh:
        monkeypatch.setattr(sys, "stderr", fh)
        code = main(["query", "--data", "s3://nowhere/corpus", "SELECT 1"])
    assert code == 2
    assert "s3://nowhere/corpus: cannot list the bucket" in err.read_text()


# --- the commands on a bucket (real CLI, the session's Prefect server) ---------------------------


def _env(aws: dict[str, str], cache: Path, **extra: str) -> dict[str, str]:
    return harness_env(**aws, NEWSFLOW_CACHE=str(cache), **extra)


def _run_json(config: Path, url: str, env: dict[str, str], *more: str) -> dict[str, Any]:
    done = newsflow(["run", "--config", str(config), "--data", url, "--json", *more], config.parent, env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return dict(json.loads(done.stdout))


def _written(summary: dict[str, Any]) -> int:
    return sum(int(s["written"]) for s in summary["sources"])


@pytest.mark.slow
def test_two_machines_running_one_source_at_once_take_turns(
    corpus: Path, bucket_url: str, aws: dict[str, str], tmp_path: Path, prefect_harness: None
) -> None:
    args = ["run", "--config", str(corpus), "--data", bucket_url, "--json", "wire", "--no-report"]
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "flows.cli", *args],
            cwd=corpus.parent,
            env=_env(aws, tmp_path / f"machine-{m}"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for m in "ab"
    ]
    outs = [p.communicate(timeout=600) for p in procs]
    for p, (_out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err[-3000:]
    written = sorted(_written(json.loads(out)) for out, _err in outs)
    # One wrote every article; the other waited for the lease, pulled its state, and found them written.
    assert written[0] == 0 and written[1] > 0, written
    assert _bucket_ids(bucket_url, tmp_path / "machine-c") == written[1]


@pytest.mark.slow
def test_a_run_killed_holding_the_lease_is_taken_over_and_another_machine_publishes_what_all_tools_read(
    corpus: Path, bucket_url: str, aws: dict[str, str], tmp_path: Path, endpoint: str, prefect_harness: None
) -> None:
    env_a = _env(aws, tmp_path / "machine-a", NEWSFLOW_LEASE_SECONDS="3")
    args = ["run", "--config", str(corpus), "--data", bucket_url, "--json", "wire", "--no-report"]
    # Stopped as it puts its first partition in place in its working copy (holding the lease), then killed.
    with RenameGate("*/machine-a/*/articles/source=wire/*/part-0.parquet", env_a) as gate:
        proc = subprocess.Popen(
            gate.command(*args), cwd=corpus.parent, env=gate.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        try:
            gate.next(proc, timeout=300)
            assert ".leases/source-wire.json" in _keys(bucket_url)
            os.kill(proc.pid, signal.SIGKILL)
            proc.communicate(timeout=60)
        finally:
            proc.kill()
            proc.wait()
    assert not any(k.startswith("articles/") for k in _keys(bucket_url))  # nothing was published

    # Machine B waits out the dead holder's lease, takes it over and publishes the source.
    b = _run_json(corpus, bucket_url, _env(aws, tmp_path / "machine-b", NEWSFLOW_LEASE_SECONDS="3"), "wire")
    written = _written(b)
    assert written > 0
    keys = _keys(bucket_url)
    assert any(k.startswith("articles/source=wire/") and k.endswith("/part-0.parquet") for k in keys)
    assert "report.html" in keys and any(k.startswith("clusters/source=wire/") for k in keys)
    assert "state/source=wire/rows.sqlite" in keys
    assert not [k for k in keys if k.startswith((".journal/", ".staging/", ".leases/"))], keys

    # The bucket read straight: pyarrow, DuckDB over pyarrow's dataset, polars.
    import duckdb
    import polars as pl
    import pyarrow.dataset as ds
    from pyarrow import fs

    url = BucketUrl.parse(bucket_url)
    s3 = fs.S3FileSystem(endpoint_override=endpoint, access_key="testing", secret_key="testing", region="us-east-1")
    articles = ds.dataset(f"{url.bucket}/{url.prefix}/articles", filesystem=s3, format="parquet", partitioning="hive")
    table = articles.to_table(columns=["article_id", "source"])
    assert table.num_rows == written == len(set(table.column("article_id").to_pylist()))
    con = duckdb.connect()
    con.register("articles", articles)
    assert con.sql("SELECT count(DISTINCT article_id) FROM articles").fetchall() == [(written,)]
    options = {"aws_endpoint_url": endpoint, "aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
    options["aws_region"] = "us-east-1"
    frame = pl.scan_parquet(f"{bucket_url}/articles/**/*.parquet", storage_options=options, hive_partitioning=True)
    assert frame.select(pl.len()).collect().item() == written

    # Machine A comes back: its half-done working copy gives way to the bucket's.
    a = _run_json(corpus, bucket_url, env_a, "wire", "--no-report")
    assert _written(a) == 0
    # A third machine queries the bucket (its working copy brought up to the bucket's first).
    sql = "SELECT count(*), count(DISTINCT article_id) FROM articles"
    done = newsflow(["query", "--data", bucket_url, "--format", "csv", sql], REPO, _env(aws, tmp_path / "c"))
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[1] == f"{written},{written}"


def _bucket_ids(url: str, cache: Path) -> int:
    """The bucket's article count, read through a fresh working copy; fails if an id is in two rows."""
    import pyarrow.dataset as ds

    root = BucketStorage(url, cache=cache).refresh()
    ids = ds.dataset(root.articles, format="parquet", partitioning="hive").to_table(columns=["article_id"])
    assert ids.num_rows == len(set(ids.column("article_id").to_pylist()))
    return int(ids.num_rows)


def test_a_warc_source_reads_files_in_a_bucket_in_place(bucket_url: str, tmp_path: Path) -> None:
    from pipeline.config import load_config
    from pipeline.run import LocalRunner, run_source
    from tests.warc_files import news, write_warc
    from warehouse.layout import DataRoot

    url = BucketUrl.parse(bucket_url)
    write_warc(tmp_path / "a.warc.gz", news(3))
    Bucket(url).upload(tmp_path / "a.warc.gz", "cc-news/a.warc.gz")
    cfg = tmp_path / "sources.toml"
    warc_url = f"s3://{url.bucket}/{url.prefix}/cc-news/a.warc.gz"
    cfg.write_text(f'[sources.cc]\nkind = "warc"\nurl = ["{warc_url}", "{warc_url}.missing"]\n', encoding="utf-8")
    summary = run_source(load_config(cfg).sources["cc"], DataRoot(tmp_path / "data"), "r1", runner=LocalRunner(1))
    assert summary.written == 3 and summary.skipped == {"unreadable": 1}
    assert any("a.warc.gz.missing: no such object" in note for note in summary.notes), summary.notes


def test_keys_that_would_lead_out_of_the_working_copy_are_never_written(bucket_url: str, tmp_path: Path) -> None:
    bucket = Bucket(BucketUrl.parse(bucket_url))
    bucket.put("articles/source=x/../../../../escaped.parquet", b"x")
    bucket.put("articles/source=x/year=2024/month=01/.hidden", b"x")
    bucket.put("articles/source=x/year=2024/month=01/part-0.parquet", b"kept")
    bucket.put("state/source=x/rows.sqlite", b"not a database")
    with WorkingCopy(bucket, tmp_path / "copy" / "a") as a, Lease(bucket, "source-x", ttl=30) as lease:
        with pytest.raises(WarehouseError, match=r"rows\.sqlite cannot be read .*not a database"):
            a.pull_source("x", lease)  # the state file is refused whole, with SQLite's word for it
        kept = a.root.root / "articles/source=x/year=2024/month=01/part-0.parquet"
        assert kept.read_bytes() == b"kept"
    outside = [p for p in tmp_path.rglob("*") if p.is_file() and "copy" not in p.parts]
    assert outside == [] and not (a.root.root / "articles/source=x/year=2024/month=01/.hidden").exists()
