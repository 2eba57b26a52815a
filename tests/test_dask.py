"""Normalising and writing on a Dask cluster (prefect-dask) gives the default runner's rows."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from tests.warc_files import news, write_warc

pytestmark = [pytest.mark.usefixtures("prefect_harness"), pytest.mark.slow]


def _rows(data: Path) -> list[tuple[object, ...]]:
    files = [str(f) for f in sorted((data / "articles").glob("**/*.parquet"))]
    return duckdb.execute(
        "SELECT article_id, source, url, title, text, byline, published_at, content_hash, date_source"
        " FROM read_parquet(?, hive_partitioning = true) ORDER BY article_id",
        [files],
    ).fetchall()


def test_a_run_on_a_local_dask_cluster_of_two_workers_writes_the_default_runners_rows(
    corpus: Path, tmp_path: Path
) -> None:
    """A WARC source and the wire samples, their batches as task runs on Dask workers, against the pool's rows."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId, TaskRunFilter, TaskRunFilterName

    from flows.config import load_config
    from flows.flow import ingest, task_runner
    from pipeline.run import LocalRunner, run_source
    from warehouse.layout import DataRoot

    write_warc(corpus.parent / "warcs" / "a.warc.gz", news(6))
    with open(corpus, "a", encoding="utf-8") as fh:
        fh.write('\n[sources.cc]\nkind = "warc"\npath = "warcs"\n')
    names = ["wire", "cc"]
    on_dask = ingest.with_options(task_runner=task_runner("dask", 2))(
        sources=names, config=str(corpus), data=str(tmp_path / "dask"), workers=2, batch_size=4
    )
    # The default runner's rows, from the core with the same process pool the default flow uses.
    pool = DataRoot(tmp_path / "pool")
    default = [
        run_source(src, pool, "p1", runner=LocalRunner(2), batch_size=4) for src in load_config(corpus).select(names)
    ]

    assert {s.source: (s.written, s.quarantined) for s in on_dask.sources} == {
        s.source: (s.written, s.quarantined) for s in default
    }
    rows = _rows(tmp_path / "dask")
    assert rows == _rows(tmp_path / "pool") and len(rows) == sum(s.written for s in default)
    assert {r[1] for r in rows} == {"wire", "cc"}
    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[on_dask.run_id])),
            task_run_filter=TaskRunFilter(name=TaskRunFilterName(like_="normalize-batch")),
        )
    assert len(runs) > 2 and all(r.state is not None and r.state.is_completed() for r in runs)


def test_a_dask_address_needs_the_dask_runner_and_an_unknown_runner_is_refused(
    corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The CLI says which option is missing; the flows' runner factory names the choices."""
    from flows.cli import main
    from flows.flow import task_runner
    from pipeline.errors import UserError

    args = ["run", "--config", str(corpus), "--data", str(tmp_path / "d"), "--dask-address", "tcp://127.0.0.1:9"]
    assert main(args) == 2
    assert "--dask-address needs --task-runner dask" in capsys.readouterr().err
    with pytest.raises(UserError, match="default, dask"):
        task_runner("ray")


def test_a_backfill_on_a_local_dask_cluster_rebuilds_the_months_the_default_backfill_does(
    corpus: Path, tmp_path: Path
) -> None:
    """Each month a task run on a Dask worker: the same ledger and rows as the default backfill's."""
    from flows.flow import backfill, task_runner
    from warehouse.layout import DataRoot
    from warehouse.ledger import read_ledger

    window = {"source": "wire", "start": "2018-01-01", "end": "2019-12-31", "config": str(corpus)}
    on_dask = backfill.with_options(task_runner=task_runner("dask", 2))(**window, data=str(tmp_path / "dask"))
    default = backfill(**window, data=str(tmp_path / "pool"), workers=2)
    done = [(e["partition"], e["status"], e["written"]) for e in on_dask.entries]
    assert done == [(e["partition"], e["status"], e["written"]) for e in default.entries]
    assert len(done) > 3 and all(status == "completed" for _p, status, _n in done)
    assert _rows(tmp_path / "dask") == _rows(tmp_path / "pool")
    ledger = read_ledger(DataRoot(tmp_path / "dask"), "wire").to_pylist()
    assert sorted(e["partition"] for e in ledger) == [p for p, _s, _n in done]


def test_a_warc_backfill_on_a_local_dask_cluster_writes_the_default_backfills_rows(
    corpus: Path, tmp_path: Path
) -> None:
    """A WARC source's backfill by capture date: its batches on Dask workers, the default runner's rows."""
    from flows.flow import backfill, task_runner

    records = [*news(4, date="2024-01-10T08:00:00Z"), *news(4, start=4, date="2024-02-10T08:00:00Z")]
    write_warc(corpus.parent / "warcs" / "a.warc.gz", records)
    with open(corpus, "a", encoding="utf-8") as fh:
        fh.write('\n[sources.cc]\nkind = "warc"\npath = "warcs"\n')
    window = {"source": "cc", "start": "2024-02-01", "end": "2024-02-29", "config": str(corpus), "report": False}
    on_dask = backfill.with_options(task_runner=task_runner("dask", 2))(**window, data=str(tmp_path / "dask"))
    default = backfill(**window, data=str(tmp_path / "pool"), workers=2)
    assert on_dask.plan["outside"] == default.plan["outside"] == 4
    assert sum(e["items"] for e in on_dask.entries) == sum(e["items"] for e in default.entries) == 4
    rows = _rows(tmp_path / "dask")
    assert rows == _rows(tmp_path / "pool") and len(rows) == 4
