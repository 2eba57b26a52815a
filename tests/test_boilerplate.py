"""Learned boilerplate: the guards of the pure rule, and learning through `run_source` into real Parquet."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.dataset as ds
import pytest

from flows.cli import main
from normalizers.boilerplate import HEAD_SPAN, Learned, block_key, counted, learned_edges, quoted
from pipeline.config import load_config
from pipeline.run import LocalRunner, run_source
from warehouse.layout import DataRoot
from warehouse.query import connect

WIRE = Path(__file__).resolve().parent.parent / "samples" / "wire"
TEXTS = sorted(WIRE.glob("*.txt"))

LISTEN = "Listen to this article"
SUBSCRIBE = "Subscribe to the Daily Ledger newsletter for the day's top stories."
QUOTE = '"We will not give up on this city," the mayor said.'
MEETING = "Officials will meet again on Tuesday to review the plan."
MARKER = "From the Ledger's newsroom"  # no built-in rule knows it
# Headlines of other stories (digits would fold them into one block).
HEADLINES = (
    "Bridge repairs start in Elm Park",
    "Harbor ferry adds night trips",
    "School board weighs later start",
    "Library reopens after flood",
    "Rail strike talks resume",
    "Farmers market moves indoors",
)
DISCLAIMER = " ".join(["This article is provided for information only and is not advice of any kind."] * 4)


def _copyright(year: int) -> str:
    return f"© {year} Daily Ledger. All rights reserved."


def _story(i: int) -> list[str]:
    """The title and body paragraphs of the i-th wire sample (distinct real stories)."""
    parts = [p.strip() for p in TEXTS[i].read_text(encoding="utf-8").split("\n\n") if p.strip()]
    return parts[:5]


def _write(folder: Path, name: str, blocks: list[str], day: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.txt").write_text("\n\n".join(blocks) + "\n", encoding="utf-8")
    sidecar = {"published_at": f"2024-03-{day:02d}T10:00:00Z", "url": f"https://ledger.example/{name}"}
    (folder / f"{name}.json").write_text(json.dumps(sidecar), encoding="utf-8")


def _with_chrome(story: list[str], year: int, *extra_tail: str) -> list[str]:
    title, *body = story
    return [title, LISTEN, *body, *extra_tail, SUBSCRIBE, _copyright(year)]


def _corpus(folder: Path) -> None:
    """Ten stories in the source's template, seven ending with one quote, one story under six URLs."""
    for i in range(10):
        tail = [QUOTE] if i < 7 else [DISCLAIMER] if i < 9 else []
        _write(folder, f"story{i}", _with_chrome(_story(i), 2020 + i, *tail), i + 1)
    copy = _story(12)
    for n in range(6):
        _write(folder, f"copy{n}", [*copy, MEETING], 20 + n)
    # An article shorter than its chrome: the chrome carries most of its words.
    _write(folder, "brief", ["Port closed", "Storm shuts port.", SUBSCRIBE], 27)


def _config(tmp: Path, learn: bool = True) -> Path:
    cfg = tmp / "sources.toml"
    option = "" if learn else "learn_boilerplate = false\n"
    cfg.write_text(f'[sources.ledger]\npath = "{tmp / "ledger"}"\n{option}', encoding="utf-8")
    return cfg


def _articles(root: DataRoot) -> dict[str, dict[str, object]]:
    rows = ds.dataset(root.articles, format="parquet", partitioning="hive").to_table().to_pylist()
    return {str(r["url"]).rsplit("/", 1)[-1]: r for r in rows}


def test_block_keys_ignore_case_digits_punctuation_and_spacing() -> None:
    assert block_key(_copyright(2024)) == block_key("(2025) daily ledger -- all rights reserved")
    assert block_key(SUBSCRIBE) != block_key(LISTEN)
    assert block_key("Ｓhare") == block_key("share")  # compatibility forms fold too


def test_long_blocks_and_empty_ones_are_never_counted_and_quotations_never_learned() -> None:
    assert counted(SUBSCRIBE) and counted(_copyright(2024)) and counted(QUOTE)
    assert not counted(DISCLAIMER)
    assert not counted("— · —")
    assert quoted(QUOTE) and quoted("The minister said “we will not give up on this city” and left.")
    assert not quoted("Budget Traveler’s Guide to Europe’s Night Trains")  # apostrophes are no quotes
    body = ["A long first paragraph of the story with enough words in it to be the body."] * 3
    learned = Learned(frozenset({block_key(QUOTE), block_key("We will not give up")}))
    assert learned_edges([*body, QUOTE], learned) == (0, 0)
    assert learned_edges([*body, "“We will not give up”"], learned) == (0, 0)


def test_only_runs_at_the_edges_go_and_a_body_always_stays() -> None:
    learned = Learned(frozenset({block_key(LISTEN), block_key(SUBSCRIBE)}))
    body = ["A long first paragraph of the story with enough words in it to be the body."] * 3
    assert learned_edges([LISTEN, *body, SUBSCRIBE], learned) == (1, 1)
    # A learned block between paragraphs is read, not removed; after a kept block the run stops.
    assert learned_edges([body[0], SUBSCRIBE, body[1]], learned) == (0, 0)
    assert learned_edges([LISTEN, body[0], LISTEN, body[1]], learned) == (1, 0)
    # A block holding half of the words or more stays, as does the last block.
    assert learned_edges(["Storm shuts port.", SUBSCRIBE], learned) == (0, 0)
    assert learned_edges([SUBSCRIBE, SUBSCRIBE], learned) == (0, 0)
    # The head run is bounded: a page of learned blocks is not a header.
    assert learned_edges([*[LISTEN] * (HEAD_SPAN + 2), *body], learned)[0] == HEAD_SPAN
    assert learned_edges([LISTEN, *body], Learned()) == (0, 0)


def test_a_run_learns_its_chrome_and_strips_it_from_every_article_but_keeps_content(tmp_path: Path) -> None:
    _corpus(tmp_path / "ledger")
    root = DataRoot(tmp_path / "data")
    src = load_config(_config(tmp_path)).sources["ledger"]
    first = run_source(src, root, "r1", runner=LocalRunner(1))
    assert first.written == 17 and first.reconciles()
    # The copyright lines differ only in their year: one block, learned under one of its spellings.
    learned = sorted(first.learned, key=len)
    assert learned == [LISTEN, _copyright(int(learned[1][2:6])), SUBSCRIBE], learned
    # The articles written before their chrome was learned were normalised again in the same run.
    assert first.restripped == 11
    articles = _articles(root)
    for i in range(10):
        row = articles[f"story{i}"]
        text = str(row["text"])
        assert SUBSCRIBE not in text and "All rights reserved" not in text and not text.startswith(LISTEN)
        assert (QUOTE in text) == (i < 7) and (DISCLAIMER in text) == (i in (7, 8))
        rules = {s["rule"] for s in row["stripped"]}  # type: ignore[attr-defined]
        assert rules == {"learned:ledger"}
    for n in range(6):
        assert str(articles[f"copy{n}"]["text"]).endswith(MEETING)
    assert SUBSCRIBE in str(articles["brief"]["text"])  # it carries most of the words: kept
    with connect(root.root) as con:
        learned = {t for (t,) in con.execute("SELECT text FROM boilerplate WHERE source = 'ledger'").fetchall()}
    assert {LISTEN, SUBSCRIBE} <= learned and not {QUOTE, MEETING} & learned

    # Nothing changed: nothing is normalised again.
    again = run_source(src, root, "r2", runner=LocalRunner(1))
    assert (again.written, again.unchanged, again.restripped, again.learned) == (0, 17, 0, [])

    # A new article of the template loses its chrome on its first pass.
    _write(tmp_path / "ledger", "story10", _with_chrome(_story(14), 2031), 28)
    new = run_source(src, root, "r3", runner=LocalRunner(1))
    assert (new.written, new.restripped) == (1, 0)
    text = str(_articles(root)["story10"]["text"])
    assert SUBSCRIBE not in text and "Daily Ledger" not in text and not text.startswith(LISTEN)


def test_sources_lists_what_each_source_has_learned(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _corpus(tmp_path / "ledger")
    cfg = _config(tmp_path)
    with cfg.open("a", encoding="utf-8") as fh:
        fh.write(f'[sources.plain]\npath = "{tmp_path / "ledger"}"\nlearn_boilerplate = false\n')
    root = DataRoot(tmp_path / "data")
    run_source(load_config(cfg).sources["ledger"], root, "r1", runner=LocalRunner(1))
    assert main(["sources", "--json", "--config", str(cfg), "--data", str(root.root)]) == 0
    listed = {e["source"]: e["learned_blocks"] for e in json.loads(capsys.readouterr().out)}
    assert listed == {"ledger": 3, "plain": None}


def test_a_source_that_opts_out_keeps_its_chrome(tmp_path: Path) -> None:
    _corpus(tmp_path / "ledger")
    root = DataRoot(tmp_path / "data")
    summary = run_source(
        load_config(_config(tmp_path, learn=False)).sources["ledger"], root, "r1", runner=LocalRunner(1)
    )
    assert (summary.written, summary.learned, summary.restripped) == (17, [], 0)
    assert all(SUBSCRIBE in str(_articles(root)[f"story{i}"]["text"]) for i in range(10))


def test_normalize_explains_a_learned_removal(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _corpus(tmp_path / "ledger")
    cfg = _config(tmp_path)
    root = DataRoot(tmp_path / "data")
    run_source(load_config(cfg).sources["ledger"], root, "r1", runner=LocalRunner(1))
    path = tmp_path / "ledger" / "story3.txt"
    args = ["normalize", str(path), "--config", str(cfg), "--data", str(root.root), "--explain", "--format", "jsonl"]
    assert main(args) == 0
    out = capsys.readouterr()
    record = json.loads(out.out)
    assert SUBSCRIBE not in record["text"]
    assert f"removed chrome by rule 'learned:ledger': {SUBSCRIBE!r}" in out.err


def test_a_related_list_goes_once_its_headlines_recur_even_after_the_article_was_stored(tmp_path: Path) -> None:
    folder = tmp_path / "ledger"
    src = load_config(_config(tmp_path)).sources["ledger"]
    root = DataRoot(tmp_path / "data")
    # Day one: the template's lines are learned; the related headlines are each seen once.
    for i in range(6):
        related = [MARKER, HEADLINES[i]]
        _write(folder, f"story{i}", _with_chrome(_story(i), 2024, *related), i + 1)
    run_source(src, root, "r1", runner=LocalRunner(1))
    first = str(_articles(root)["story0"]["text"])
    # The run from the end stops at a headline seen once: the marker above it stays too.
    assert first.endswith(f"{MARKER}\n\n{HEADLINES[0]}") and SUBSCRIBE not in first
    # Day two: another story lists the same headline; now it recurs, and the stored story loses it too.
    _write(folder, "story6", _with_chrome(_story(6), 2024, MARKER, HEADLINES[0]), 8)
    second = run_source(src, root, "r2", runner=LocalRunner(1))
    assert second.restripped >= 1
    articles = _articles(root)
    for name in ("story0", "story6"):
        assert HEADLINES[0] not in str(articles[name]["text"]), name
        assert MARKER not in str(articles[name]["text"]), name
    # A headline seen once stays: nothing says it is not the story's own last line.
    assert str(articles["story3"]["text"]).endswith(f"{MARKER}\n\n{HEADLINES[3]}")


def test_pages_of_an_html_source_lose_their_learned_template_lines(tmp_path: Path) -> None:
    folder = tmp_path / "pages"
    folder.mkdir()
    footer = "The Harbor Review is published by the Harbor Press Cooperative of Northport."
    for i in range(6):
        title, *body = _story(i)
        paragraphs = "".join(f"<p>{p}</p>" for p in body)
        page = (
            f"<html><head><title>{title}</title></head><body><article><h1>{title}</h1>"
            f"{paragraphs}<p>{footer}</p></article></body></html>"
        )
        (folder / f"p{i}.html").write_text(page, encoding="utf-8")
        sidecar = {"published_at": f"2024-03-{i + 1:02d}T10:00:00Z", "url": f"https://harbor.example/p{i}"}
        (folder / f"p{i}.json").write_text(json.dumps(sidecar), encoding="utf-8")
    cfg = tmp_path / "sources.toml"
    cfg.write_text(f'[sources.harbor]\npath = "{folder}"\nformat = "html"\n', encoding="utf-8")
    root = DataRoot(tmp_path / "data")
    summary = run_source(load_config(cfg).sources["harbor"], root, "r1", runner=LocalRunner(1))
    assert summary.written == 6 and footer in summary.learned and summary.restripped == 6
    for row in _articles(root).values():
        assert footer not in str(row["text"]) and str(row["text"]).strip()
        assert {"rule": "learned:harbor", "kind": "chrome", "text": footer, "line": 0} in row["stripped"]  # type: ignore[operator]


def test_an_unreadable_store_is_started_again_and_the_run_says_so(tmp_path: Path) -> None:
    _corpus(tmp_path / "ledger")
    root = DataRoot(tmp_path / "data")
    src = load_config(_config(tmp_path)).sources["ledger"]
    run_source(src, root, "r1", runner=LocalRunner(1))
    store = root.state / "boilerplate" / "ledger.sqlite"
    store.write_bytes(b"not a database at all" * 100)
    _write(tmp_path / "ledger", "story10", _with_chrome(_story(14), 2031), 28)
    summary = run_source(src, root, "r2", runner=LocalRunner(1))
    assert summary.written == 1 and summary.reconciles()
    assert any("learned boilerplate forgotten" in n and "unreadable" in n for n in summary.notes), summary.notes
    # Learning starts over from what this run wrote; the stored articles keep their clean text.
    assert SUBSCRIBE not in str(_articles(root)["story3"]["text"])


def test_normalize_leaves_an_unreadable_store_alone_and_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _corpus(tmp_path / "ledger")
    cfg = _config(tmp_path)
    root = DataRoot(tmp_path / "data")
    run_source(load_config(cfg).sources["ledger"], root, "r1", runner=LocalRunner(1))
    store = root.state / "boilerplate" / "ledger.sqlite"
    store.write_bytes(b"not a database at all" * 100)
    path = tmp_path / "ledger" / "story3.txt"
    assert main(["normalize", str(path), "--config", str(cfg), "--data", str(root.root), "--format", "jsonl"]) == 0
    out = capsys.readouterr()
    assert SUBSCRIBE in json.loads(out.out)["text"]  # nothing learned applies
    assert "learned boilerplate not applied" in out.err and "unreadable" in out.err
    assert store.read_bytes() == b"not a database at all" * 100  # a command that reads writes nothing


def test_an_article_whose_file_is_gone_keeps_its_row_when_boilerplate_is_learned_later(tmp_path: Path) -> None:
    """Stripping learned chrome from stored articles never removes one: a file deleted since is left as written."""
    folder = tmp_path / "ledger"
    src = load_config(_config(tmp_path)).sources["ledger"]
    root = DataRoot(tmp_path / "data")
    for i in range(3):  # too few to learn from
        _write(folder, f"story{i}", _with_chrome(_story(i), 2024), i + 1)
    assert run_source(src, root, "r1", runner=LocalRunner(1)).learned == []
    (folder / "story0.txt").unlink()  # archived away; its article stays
    (folder / "story0.json").unlink()
    for i in range(3, 8):
        _write(folder, f"story{i}", _with_chrome(_story(i), 2024), i + 1)
    second = run_source(src, root, "r2", runner=LocalRunner(1))
    assert SUBSCRIBE in second.learned
    assert (second.quarantined, second.restripped) == (0, 7)  # all but the gone one
    articles = _articles(root)
    assert sorted(articles) == [f"story{i}" for i in range(8)]
    assert SUBSCRIBE in str(articles["story0"]["text"]) and SUBSCRIBE not in str(articles["story1"]["text"])
    assert not list(root.quarantine.glob("**/*.parquet"))
