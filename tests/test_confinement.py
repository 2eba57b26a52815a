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

from normalizers.common import UNSHOWABLE
from pipeline.config import load_config
from pipeline.discover import discover_files, file_input
from pipeline.files import printable, read_confined
from pipeline.ingest import process_batch
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


# A link target and names a terminal would run: set the window title, clear the screen, colour.
ESCAPES = "nowhere\x1b]0;PWNED\x07\x1b[2J.txt"
COLOURED = "s\x1b[31m"


def _out_and_back_in(src: Path, out: Path, via: str) -> None:
    """A link whose absolute target passes outside the folder and comes back to good.txt inside it."""
    (out / "exists").mkdir(exist_ok=True)
    (src / f"{via}.txt").symlink_to(f"{out}/{via}/../../src/good.txt")


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
    # Containment before existence: a link out of the folder is outside_root whether its target exists or not.
    "link outside to nothing": (
        lambda src, out: (src / "probe.txt").symlink_to(out / "absent.txt"),
        "outside_root",
        "probe.txt",
    ),
    "relative link climbing out to nothing": (
        lambda src, out: (src / "up.txt").symlink_to(os.path.relpath(out / "absent.txt", src)),
        "outside_root",
        "up.txt",
    ),
    "sidecar link outside to nothing": (
        lambda src, out: (shutil.copy(SEED, src / "story.txt"), (src / "story.json").symlink_to(out / "absent.json")),
        "outside_root",
        "story.txt",
    ),
    "out and back in, outside folder exists": (
        lambda src, out: _out_and_back_in(src, out, "exists"),
        "outside_root",
        "exists.txt",
    ),
    "out and back in, outside folder missing": (
        lambda src, out: _out_and_back_in(src, out, "absent"),
        "outside_root",
        "absent.txt",
    ),
    # Names and link targets are shown escaped in messages.
    "escapes in a dangling link": (lambda src, out: (src / "dang.txt").symlink_to(ESCAPES), "broken_link", "dang.txt"),
    "escapes in a sidecar name": (
        lambda src, out: (shutil.copy(SEED, src / f"{COLOURED}.txt"), _fifo(src / f"{COLOURED}.json")),
        "not_regular_file",
        "s%1B%5B31m.txt",
    ),
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
    quarantined = _quarantine(data)
    got = [(r, uri) for r, uri, _ in quarantined]
    for i, (case, (_, reason, name)) in enumerate(CASES.items()):
        mine = [(r, uri.rsplit("/", 1)[1]) for r, uri in got if f"/case{i:02d}/" in uri]
        assert {r for r, _ in mine} == {reason} and (reason, name) in mine, (case, got)
    assert summary.quarantined == len(got) == summary.discovered - 1
    messages = {uri.split("/src/", 1)[1]: message for _, uri, message in quarantined}
    assert not [m for m in messages.values() if UNSHOWABLE.search(m) or str(outside) in m], messages
    case = {name: f"case{i:02d}" for i, name in enumerate(CASES)}
    # Whether an outside target exists changes nothing in what the quarantine says.
    assert messages[f"{case['link outside']}/link.txt"] == messages[f"{case['link outside to nothing']}/probe.txt"]
    assert (
        messages[f"{case['out and back in, outside folder exists']}/exists.txt"]
        == "file leads outside the source folder"
    )
    assert messages[f"{case['escapes in a dangling link']}/dang.txt"] == (
        "file links to nowhere\\x1b]0;PWNED\\x07\\x1b[2J.txt, which does not exist"
    )
    assert (
        messages[f"{case['escapes in a sidecar name']}/s%1B%5B31m.txt"]
        == "sidecar s\\x1b[31m.json is a FIFO, not a regular file"
    )
    bad_name = case["name not UTF-8"]  # shown once escaped, not repr() of the escaped text
    assert messages[f"{bad_name}/caf%E9-%FF.txt"] == f"file name is not valid UTF-8: '{bad_name}/caf\\xe9-\\xff.txt'"
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
    batch = process_batch(source, DataRoot(tmp_path / "data"), "r1", "b0", [file_input(f) for f in listing])
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
        result.append(process_batch(source, DataRoot(tmp_path / "data"), "r1", "b0", [file_input(f) for f in listing]))
        done.set()

    threading.Thread(target=read, daemon=True).start()
    assert done.wait(30), "reading a FIFO blocked"
    ((record),) = result[0].quarantined  # type: ignore[attr-defined]
    assert record.reason == "not_regular_file"


def test_an_oversized_file_is_refused_with_its_real_size_unread(tmp_path: Path) -> None:
    big = tmp_path / "big.txt"
    big.write_bytes(b"x" * 8_900_000)
    from pipeline.files import InputProblem

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


@pytest.mark.parametrize(
    "target",
    [
        "{out}/secret.txt",
        "{out}/absent.txt",
        "{out}/absent/deeper/file.txt",
        "../outside/secret.txt",
        "../outside/absent.txt",
        "missing/../../outside/secret.txt",  # a step out below a missing folder: still out
        "{out}/../src/good.txt",  # out and back in: the way leads outside
        "{out}/absent/../../src/good.txt",
    ],
)
def test_a_link_out_of_the_folder_is_outside_root_whatever_exists_there(
    site: tuple[Path, Path, Path], target: str
) -> None:
    cfg, src, outside = site
    (src / "link.txt").symlink_to(target.format(out=outside))
    listed = {rel: problem for rel, *_, problem in discover_files(load_config(cfg).sources["s"])}
    assert listed == {"good.txt": None, "link.txt": ("outside_root", "file leads outside the source folder")}


@pytest.mark.parametrize(
    ("target", "problem"),
    [
        ("good.txt", None),
        ("sub/../good.txt", None),
        ("./sub/./alias.txt", None),  # a link to a link
        ("absent.txt", ("broken_link", "file links to absent.txt, which does not exist")),
        ("absent/../good.txt", ("broken_link", "file links to absent/../good.txt, which does not exist")),
        ("good.txt/x", ("broken_link", "file links to good.txt/x, which does not exist")),
        ("loop.txt", ("broken_link", "file is a symbolic link loop")),
        ("sub", ("not_regular_file", "file is a directory, not a regular file")),
    ],
)
def test_a_link_inside_the_folder_is_followed_step_by_step(
    site: tuple[Path, Path, Path], target: str, problem: tuple[str, str] | None
) -> None:
    cfg, src, _ = site
    (src / "sub").mkdir()
    (src / "sub" / "alias.txt").symlink_to(Path("..") / "good.txt")
    (src / "loop.txt").symlink_to("loop.txt")
    (src / "link.txt").symlink_to(target)
    listed = {rel: problem for rel, *_, problem in discover_files(load_config(cfg).sources["s"])}
    assert listed["link.txt"] == problem


def test_an_absolute_link_to_inside_the_folder_is_followed(site: tuple[Path, Path, Path]) -> None:
    cfg, src, _ = site
    source = load_config(cfg).sources["s"]
    assert source.path is not None
    (src / "link.txt").symlink_to(source.path / "good.txt")
    listed = {rel: problem for rel, *_, problem in discover_files(source)}
    assert listed == {"good.txt": None, "link.txt": None}


def test_a_file_swapped_for_a_link_to_a_missing_outside_path_is_outside_root_too(
    site: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    cfg, src, outside = site
    source = load_config(cfg).sources["s"]
    listing = discover_files(source)
    results = []
    for target in (outside / "secret.txt", outside / "absent.txt"):
        (src / "good.txt").unlink()
        (src / "good.txt").symlink_to(target)
        batch = process_batch(source, DataRoot(tmp_path / "data"), "r1", "b0", [file_input(f) for f in listing])
        ((record),) = batch.quarantined
        results.append((record.reason, record.message))
    assert results == [("outside_root", "file leads outside the source folder")] * 2


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("plain name.txt", "plain name.txt"),
        ("nowhere\x1b]0;PWNED\x07\x1b[2J.txt", "nowhere\\x1b]0;PWNED\\x07\\x1b[2J.txt"),
        ("c1\x9b31m del\x7f", "c1\\x9b31m del\\x7f"),
        ("txt.\u202eexe", "txt.\\u202eexe"),
        (os.fsdecode(b"caf\xe9.txt"), "caf\\xe9.txt"),  # bytes that are not UTF-8
        ("caf\u00e9 \u200d ok", "caf\u00e9 \u200d ok"),  # text is text
    ],
)
def test_printable_escapes_what_a_terminal_would_act_on_once(text: str, shown: str) -> None:
    assert printable(text) == shown
    assert printable(shown) == shown
