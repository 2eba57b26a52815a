"""SIGKILL in the middle of a run's commit leaves a readable dataset that settles whole; a re-run equals a clean one."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from helpers import RenameGate, files_source_config, harness_env

from warehouse.journal import settle
from warehouse.layout import DataRoot

REPO = Path(__file__).resolve().parent.parent
SEED = (REPO / "samples" / "anha" / "000_db5c100688d27208.txt").read_text(encoding="utf-8")
FILES_PER_MONTH = 100

pytestmark = pytest.mark.slow  # four runs of the CLI


@pytest.fixture()
def api_env(prefect_harness: None) -> dict[str, str]:
    """The environment of a CLI run on the session's Prefect server (the commit is what is under test, not
    the server each one-shot command would start, which tests/test_server.py covers)."""
    return harness_env()


def _write_corpus(folder: Path, version: int) -> None:
    for month in (1, 2):
        sub = folder / f"m{month}"
        sub.mkdir(parents=True, exist_ok=True)
        for i in range(FILES_PER_MONTH):
            stem = f"{i:05d}"
            text = SEED.replace("Kado:", f"Kado {month}-{i}:", 1)
            if version == 2:
                text = text.replace("\n\nT/ Satt.", f"\n\nRevised paragraph {i}.\n\nT/ Satt.", 1)
            (sub / f"{stem}.txt").write_text(text, encoding="utf-8")
            sidecar = {"url": f"https://example.org/{month}/{i}", "published_at": f"2024-0{month}-15T10:00:00Z"}
            (sub / f"{stem}.json").write_text(json.dumps(sidecar), encoding="utf-8")


def _config(tmp: Path, corpus: Path) -> Path:
    return files_source_config(tmp, "killtest", corpus)


def _args(cfg: Path, data: Path) -> list[str]:
    return ["run", "--config", str(cfg), "--data", str(data), "--json"]


def _cmd(cfg: Path, data: Path) -> list[str]:
    return [sys.executable, "-m", "flows.cli", *_args(cfg, data)]


def _run(cfg: Path, data: Path, env: dict[str, str]) -> dict[str, object]:
    out = subprocess.run(_cmd(cfg, data), capture_output=True, text=True, cwd=REPO, timeout=600, check=True, env=env)
    return json.loads(out.stdout)


def _partitions(data: Path) -> dict[str, set[tuple[str, str]]]:
    """Rows (article_id, content_hash) per partition file, read with pyarrow; fails on a partial file."""
    out = {}
    for path in sorted((data / "articles").rglob("*")):
        if path.is_file():
            assert path.name == "part-0.parquet", f"stray file in the dataset: {path}"
            table = pq.read_table(path, columns=["article_id", "content_hash"])
            rows = list(zip(table.column(0).to_pylist(), table.column(1).to_pylist(), strict=True))
            assert len(rows) == len({r[0] for r in rows}), f"duplicate article_id in {path}"
            out[str(path.parent.relative_to(data))] = set(rows)
    return out


def _comparable(data: Path) -> list[tuple[object, ...]]:
    table = ds.dataset(data / "articles", format="parquet", partitioning="hive").to_table()
    cols = [c for c in table.column_names if c not in {"run_id", "ingested_at", "source_uri"}]
    return sorted(tuple(str(v) for v in row.values()) for row in table.select(cols).to_pylist())


def test_sigkill_mid_write(tmp_path: Path, api_env: dict[str, str]) -> None:
    corpus = tmp_path / "corpus"
    _write_corpus(corpus, version=1)
    cfg = _config(tmp_path, corpus)
    data = tmp_path / "data"
    first = _run(cfg, data, api_env)
    assert first["sources"][0]["written"] == 2 * FILES_PER_MONTH  # type: ignore[index]
    old = _partitions(data)
    assert len(old) == 2

    _write_corpus(corpus, version=2)
    # The run is killed while its commit is applied: one partition renamed into place, the
    # other's rename held by the gate. The journal is written by then (the commit point).
    with RenameGate(f"{data / 'articles'}/*", api_env) as gate:
        proc = subprocess.Popen(
            gate.command(*_args(cfg, data)),
            cwd=REPO,
            env=gate.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            _, published = gate.next(proc, timeout=300)
            gate.release(timeout=60)
            staged, held = gate.next(proc, timeout=300)
        finally:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=60)
    root = DataRoot(data)
    assert staged.is_file() and root.journal("killtest").exists()  # killed mid-commit

    # Readable as the kill left it, no partial or duplicate rows; each partition entirely
    # old or entirely new (every article was revised, so new shares no hash with old).
    after_kill = _partitions(data)
    assert set(after_kill) == set(old)
    new_key, old_key = (str(p.parent.relative_to(data)) for p in (published, held))
    assert all(len(rows) == FILES_PER_MONTH for rows in after_kill.values())
    assert after_kill[old_key] == old[old_key]
    assert not {h for _, h in after_kill[new_key]} & {h for _, h in old[new_key]}
    # A reader settles what the killed command left (as `newsflow query` does): the whole commit.
    assert settle(root) == ["killtest"]
    settled = _partitions(data)
    assert all(not {h for _, h in settled[key]} & {h for _, h in old[key]} for key in old)
    assert settled[new_key] == after_kill[new_key] and not staged.exists()

    # The re-run finishes the job and equals a clean run over the same input.
    _run(cfg, data, api_env)
    clean = tmp_path / "clean"
    _run(cfg, clean, api_env)
    assert _comparable(data) == _comparable(clean)
    assert not any(p.suffix == ".parquet" for p in (data / ".staging").rglob("*"))
    assert not staged.exists()
