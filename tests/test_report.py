"""The corpus report: built from a real data root, written by the CLI, drawn by headless Chromium."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from datetime import date
from pathlib import Path

import pytest
from selectolax.lexbor import LexborHTMLParser

from flows.cli import main
from pipeline.config import load_config
from pipeline.dedup import update_clusters
from pipeline.report import build_report
from pipeline.run import LocalRunner, backfill_units, plan_backfill, run_source
from warehouse.layout import DataRoot

REPO = Path(__file__).resolve().parent.parent
CHARTS = {
    "articles-per-day",
    "coverage",
    "languages",
    "word-counts",
    "extraction-confidence",
    "date-sources",
    "rules",
    "duplicates",
    "quarantine",
    "ledger",
}


@pytest.fixture(scope="module")
def corpus_root(tmp_path_factory: pytest.TempPathFactory) -> DataRoot:
    """One data root for the module's tests (they only read it): building it is most of their time."""
    return _corpus(tmp_path_factory.mktemp("report"))[1]


def _corpus(tmp: Path) -> tuple[Path, DataRoot]:
    """The bundled samples run into a data root, with an exact copy, a backfill and the duplicate index."""
    samples = tmp / "samples"
    shutil.copytree(REPO / "samples", samples)
    copies = samples / "copies"
    copies.mkdir()
    article = sorted((samples / "wire").glob("000_*.txt"))[0]
    shutil.copy(article, copies / "copy.txt")
    config = (REPO / "sources.toml").read_text(encoding="utf-8").replace('path = "samples/', f'path = "{samples}/')
    config += f'\n[sources.copies]\npath = "{copies}"\n'
    cfg = tmp / "sources.toml"
    cfg.write_text(config, encoding="utf-8")
    root = DataRoot(tmp / "data")
    sources = load_config(cfg).sources
    for src in sources.values():
        run_source(src, root, "r1", runner=LocalRunner(1))
    plan = plan_backfill(sources["wire"], root, date(2019, 11, 1), date(2019, 11, 30), "all", runner=LocalRunner(1))
    for unit in backfill_units(plan, ("2019-11-01", "2019-11-30")):
        run_source(sources["wire"], root, "bf1", unit, runner=LocalRunner(1))
    update_clusters(root)
    return cfg, root


def test_the_report_has_every_chart_with_data_and_key_figures_that_agree_with_the_views(corpus_root: DataRoot) -> None:
    root = corpus_root
    report = build_report(root.root)
    assert {c.key for c in report.charts} == CHARTS
    assert [c.key for c in report.charts if c.svg is None] == []
    f = report.figures
    assert (f.articles, f.sources, f.quarantined_now) == (26, 4, 4)
    assert f.exact_copies + f.near_duplicates == 1 and f.languages >= 2  # the copy (another profile's text)
    # Limited to one source and a day: the others' articles and runs are left out.
    html_only = build_report(root.root, ["pages"], date(2019, 1, 1))
    assert html_only.figures.sources == 1 and 0 < html_only.figures.articles < f.articles
    assert next(c for c in html_only.charts if c.key == "ledger").svg is None  # the backfill was wire's


def test_the_cli_writes_a_self_contained_report(
    corpus_root: DataRoot, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = corpus_root
    out = tmp_path / "out" / "corpus.html"
    assert main(["report", "--data", str(root.root), "--out", str(out)]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == f"Report: {out}"
    tree = LexborHTMLParser(out.read_text(encoding="utf-8"))
    # Nothing is fetched: no external script, style, image or frame.
    assert not [n.attributes for n in tree.css("[src], link[href]")]
    figures = tree.css("figure.chart")
    assert len(figures) == len(CHARTS) and all(f.css("svg .mark") for f in figures)
    # What a write killed midway left beside the file goes with the next write, once it is old.
    stale, fresh = out.with_name(f".{out.name}.1.dead.tmp"), out.with_name(f".{out.name}.2.live.tmp")
    stale.write_text("partial", encoding="utf-8")
    fresh.write_text("partial", encoding="utf-8")
    os.utime(stale, (time.time() - 7200, time.time() - 7200))
    assert main(["report", "--data", str(root.root), "--out", str(out)]) == 0
    assert not stale.exists() and fresh.exists()
    # A missing data root is the user's error, said in one line.
    assert main(["report", "--data", str(tmp_path / "none")]) == 2
    assert "does not exist" in capsys.readouterr().err
    # So is a misspelt source, and the report stays as it was.
    before = out.read_bytes()
    assert main(["report", "nosuch", "--data", str(root.root), "--out", str(out)]) == 2
    assert "no data of source(s) nosuch" in capsys.readouterr().err and out.read_bytes() == before


def _chromium() -> str | None:
    """Debian's headless Chromium: found on PATH, or installed with apt-get when this user can."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    apt = shutil.which("apt-get")
    if apt and os.geteuid() == 0:
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run([apt, "update", "-qq"], env=env, capture_output=True, timeout=600, check=False)
        subprocess.run(
            [apt, "install", "-y", "-qq", "chromium"], env=env, capture_output=True, timeout=900, check=False
        )
        return shutil.which("chromium")
    return None


@pytest.mark.slow
def test_every_chart_draws_in_headless_chromium_offline(corpus_root: DataRoot, tmp_path: Path) -> None:
    browser = _chromium()
    if browser is None:
        pytest.skip("headless Chromium is not installed and cannot be here: install Debian's `chromium` package")
    root = corpus_root
    out = tmp_path / "report.html"
    assert main(["report", "--data", str(root.root), "--out", str(out)]) == 0
    dom = subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--host-resolver-rules=MAP * ~NOTFOUND",  # no network: the report must not need it
            "--virtual-time-budget=5000",
            "--dump-dom",
            out.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    tree = LexborHTMLParser(dom)
    body = tree.css_first("body")
    assert body is not None and body.attributes.get("data-checked") == "true", "the page's script did not run"
    drawn = {f.attributes["data-chart"]: int(f.attributes.get("data-drawn") or 0) for f in tree.css("figure.chart")}
    assert set(drawn) == CHARTS
    assert {k: n for k, n in drawn.items() if n == 0} == {}, "charts with no bar drawn"
    assert not tree.css(".warn")
