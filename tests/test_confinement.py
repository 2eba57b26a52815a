"""A source folder is untrusted: links, FIFOs, odd names and times each end as one quarantined input.

Every case runs the real ingest flow and checks that the run completes, the good
file is written, the bad entry is quarantined with its reason, nothing from outside
the source folder reached the warehouse, and a second run reports nothing new.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest

from flows.config import load_config
from flows.discover import candidate, discover_files
from flows.files import read_confined
from flows.ingest import process_batch
from warehouse.layout import DataRoot

REPO = Path(__file__).resolve().parent.parent
SEED = REPO / "samples" / "anha" / "000_db5c100688d27208.txt"
SECRET = "TOP-SECRET-LINE outside the source folder"


@pytest.fixture()
def site(tmp_path: Path) -> tuple[Path, Path, Path]:
    """(config, source folder, a folder outside it holding a secret file)."""
    src = tmp_path / "src"
    src.mkdir()
    shutil.copy(SEED, src / "good.txt")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text(f"{SECRET}\n\nA paragraph that must never be read.\n", encoding="utf-8")
    (outside / "secret.json").write_text(json.dumps({"url": "https://secret.example/leak"}), encoding="utf-8")
    cfg = tmp_path / "sources.toml"
    cfg.write_text('[sources.s]\npath = "src"\n', encoding="utf-8")
    return cfg, src, outside


def _ingest(cfg: Path, data: Path) -> object:
    from flows.flow import ingest

    return ingest(config=str(cfg), data=str(data), workers=1)


def _quarantine(data: Path) -> list[tuple[str, str, str]]:
    """(reason, source URI, message) of every quarantined input."""
    return duckdb.sql(
        f"SELECT reason, source_uri, message FROM read_parquet('{data}/quarantine/**/*.parquet') ORDER BY ALL"
    ).fetchall()


def _everything_written(data: Path) -> str:
    rows = duckdb.sql(f"SELECT * FROM read_parquet('{data}/articles/**/*.parquet')").fetchall()
    return repr(rows)


def _fifo(path: Path) -> None:
    os.mkfifo(path)


def _deep_folder(src: Path) -> None:
    """A folder nested past PATH_MAX (made with directory descriptors, as no path can name it)."""
    fd = os.open(src, os.O_RDONLY)
    try:
        for _ in range(24):
            os.mkdir("d" * 200, dir_fd=fd)
            inner = os.open("d" * 200, os.O_RDONLY, dir_fd=fd)
            os.close(fd)
            fd = inner
        with open(os.open("deep.txt", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd), "wb") as out:
            out.write(SEED.read_bytes())
    finally:
        os.close(fd)


def _bad_name(src: Path) -> None:
    with open(os.path.join(os.fsencode(src), b"caf\xe9-\xff.txt"), "wb") as out:
        out.write(SEED.read_bytes())


def _year_2400(src: Path) -> None:
    shutil.copy(SEED, src / "future.txt")
    os.utime(src / "future.txt", ns=(13_569_465_600 * 10**9, 13_569_465_600 * 10**9))


CASES: dict[str, tuple[Callable[[Path, Path], None], str, str]] = {
    "link outside": (lambda src, out: (src / "link.txt").symlink_to(out / "secret.txt"), "outside_root", "link.txt"),
    "sidecar link outside": (
        lambda src, out: (
            shutil.copy(SEED, src / "story.txt"),
            (src / "story.json").symlink_to(out / "secret.json"),
        ),
        "outside_root",
        "story.txt",
    ),
    "relative link climbing out": (
        lambda src, out: (src / "up.txt").symlink_to(os.path.relpath(out / "secret.txt", src)),
        "outside_root",
        "up.txt",
    ),
    "fifo input": (lambda src, out: _fifo(src / "pipe.txt"), "not_regular_file", "pipe.txt"),
    "fifo sidecar": (
        lambda src, out: (shutil.copy(SEED, src / "story.txt"), _fifo(src / "story.json")),
        "not_regular_file",
        "story.txt",
    ),
    "link loop": (
        lambda src, out: ((src / "a.txt").symlink_to("b.txt"), (src / "b.txt").symlink_to("a.txt")),
        "broken_link",
        "a.txt",
    ),
    "dangling link": (lambda src, out: (src / "gone.txt").symlink_to("nowhere.txt"), "broken_link", "gone.txt"),
    "path past PATH_MAX": (lambda src, out: _deep_folder(src), "path_too_long", "d" * 200),
    "name not UTF-8": (lambda src, out: _bad_name(src), "bad_file_name", "caf%E9-%FF.txt"),
    "mtime in 2400": (lambda src, out: _year_2400(src), "bad_mtime", "future.txt"),
}


@pytest.mark.usefixtures("prefect_harness")
def test_each_bad_entry_is_one_quarantined_input_and_the_run_completes(
    site: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    cfg, src, outside = site
    # Every kind of bad entry in one folder, each in its own sub-folder (a sidecar case
    # needs its own story.txt): one bad entry must never stop the others.
    for i, (make, _, _) in enumerate(CASES.values()):
        folder = src / f"case{i:02d}"
        folder.mkdir()
        make(folder, outside)
    data = tmp_path / "data"
    first = _ingest(cfg, data)
    (summary,) = first.sources  # type: ignore[attr-defined]
    assert summary.written == 1, summary  # good.txt
    assert summary.reconciles()
    got = [(r, uri) for r, uri, _ in _quarantine(data)]
    for i, (case, (_, reason, name)) in enumerate(CASES.items()):
        mine = [(r, uri.rsplit("/", 1)[1]) for r, uri in got if f"/case{i:02d}/" in uri]
        assert {r for r, _ in mine} == {reason} and (reason, name) in mine, (case, got)
    assert summary.quarantined == len(got) == summary.discovered - 1
    assert SECRET not in _everything_written(data)
    assert "secret.example" not in _everything_written(data)
    assert not (data / ".staging" / "runs").exists() or not any((data / ".staging" / "runs").iterdir())
    again = _ingest(cfg, data)
    (summary,) = again.sources  # type: ignore[attr-defined]
    assert (summary.quarantined, summary.written, summary.unchanged) == (0, 0, summary.discovered)


def test_a_link_inside_the_folder_is_read(site: tuple[Path, Path, Path], tmp_path: Path) -> None:
    cfg, src, _ = site
    (src / "sub").mkdir()
    (src / "sub" / "alias.txt").symlink_to(Path("..") / "good.txt")
    listed = {rel: problem for rel, *_, problem in discover_files(load_config(cfg).sources["s"])}
    assert listed == {"good.txt": None, "sub/alias.txt": None}


def test_a_file_swapped_for_a_link_after_listing_is_refused_when_read(
    site: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    cfg, src, outside = site
    source = load_config(cfg).sources["s"]
    listing = discover_files(source)
    (src / "good.txt").unlink()
    (src / "good.txt").symlink_to(outside / "secret.txt")
    batch = process_batch(source, DataRoot(tmp_path / "data"), "r1", "b0", [candidate(f) for f in listing])
    ((record),) = batch.quarantined
    assert record.reason == "outside_root" and "outside the source folder" in record.message
    assert batch.articles == 0


def test_a_file_swapped_for_a_fifo_after_listing_is_refused_without_blocking(
    site: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    cfg, src, _ = site
    source = load_config(cfg).sources["s"]
    listing = discover_files(source)
    (src / "good.txt").unlink()
    os.mkfifo(src / "good.txt")
    done = threading.Event()
    result: list[object] = []

    def read() -> None:
        result.append(process_batch(source, DataRoot(tmp_path / "data"), "r1", "b0", [candidate(f) for f in listing]))
        done.set()

    threading.Thread(target=read, daemon=True).start()
    assert done.wait(30), "reading a FIFO blocked"
    ((record),) = result[0].quarantined  # type: ignore[attr-defined]
    assert record.reason == "not_regular_file"


def test_an_oversized_file_is_refused_with_its_real_size_unread(tmp_path: Path) -> None:
    big = tmp_path / "big.txt"
    big.write_bytes(b"x" * 8_900_000)
    from flows.files import InputProblem

    with pytest.raises(InputProblem) as caught:
        read_confined(str(big), str(tmp_path), 100, 5_000_001)
    assert caught.value.reason == "too_large"
    assert "8.9 MB (8900000 bytes)" in caught.value.message and "5000000 bytes" in caught.value.message


def test_read_confined_reads_whole_files_up_to_the_cap(tmp_path: Path) -> None:
    path = tmp_path / "f.txt"
    path.write_bytes(b"")
    assert read_confined(str(path), str(tmp_path), 0, 100) == b""
    data = bytes(range(256)) * 8000  # 2 MB: several reads
    path.write_bytes(data)
    # The listed size only sizes the first read: a file that grew or shrank since is read whole.
    for expected in (len(data), 10, len(data) + 500, 0):
        assert read_confined(str(path), str(tmp_path), expected, len(data) + 1) == data
