"""The corpus report: one self-contained HTML file of key figures and charts over the warehouse.

`build_report` asks the warehouse's views (`warehouse.query.connect`) what an analyst
asks first: how many articles per day and source, whether a day is missing, which
languages, how long, how sure the extraction was, where dates came from, which rules
removed what (learned and configured), how much is copied, what failed and why, and how
backfills went. `Report.html()` renders it with inline CSS and SVG (`pipeline.charts`):
no script or style is fetched, so the file works offline and can be mailed. The key
figures alone (`KeyFigures.markdown`) are what each flow run publishes as its report
artifact.
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from html import escape
from pathlib import Path
from typing import Any

import duckdb

from pipeline.charts import Series, bar_chart
from pipeline.coverage import gap
from warehouse.layout import REPORT_FILE
from warehouse.query import connect

__all__ = ["REPORT_FILE", "Chart", "KeyFigures", "Report", "build_report", "write_report"]

STALE_TMP_S = 3600.0
_GAP_COLOR = "#D55E00"


@dataclass(frozen=True, slots=True)
class Chart:
    """One chart of the report: its SVG, or why it has none (no data in the range)."""

    key: str
    title: str
    svg: str | None
    note: str = ""


def _chart(
    key: str, title: str, labels: Sequence[str], series: Sequence[Series], note: str, empty: str, **how: Any
) -> Chart:
    """A bar chart, or when every value is 0, the reason there is none."""
    if not any(v > 0 for s in series for v in s.values):
        return Chart(key, title, None, empty)
    return Chart(key, title, bar_chart(labels, series, **how), note)


@dataclass(slots=True)
class KeyFigures:
    """The figures at the top of the report, and in every run's artifact."""

    articles: int = 0
    sources: int = 0
    words: int = 0
    first_day: date | None = None
    last_day: date | None = None
    languages: int = 0
    exact_copies: int = 0
    near_duplicates: int = 0
    quarantined_now: int = 0
    learned_blocks: int = 0
    failed_units: int = 0
    gaps: list[str] = field(default_factory=list)

    def rows(self) -> list[tuple[str, str]]:
        """(label, value) pairs, in the order shown."""

        def share(n: int) -> str:
            return f"{n:,} ({n / self.articles:.1%})" if self.articles else f"{n:,}"

        span = f"{self.first_day} to {self.last_day}" if self.first_day else "-"
        return [
            ("articles", f"{self.articles:,}"),
            ("sources", f"{self.sources:,}"),
            ("words", f"{self.words:,}"),
            ("published", span),
            ("languages", f"{self.languages:,}"),
            ("exact copies", share(self.exact_copies)),
            ("near-duplicates", share(self.near_duplicates)),
            ("inputs quarantined now", f"{self.quarantined_now:,}"),
            ("boilerplate blocks learned", f"{self.learned_blocks:,}"),
            ("backfill units failed", f"{self.failed_units:,}"),
            ("coverage gaps (last 28 days)", f"{len(self.gaps):,}"),
        ]

    def markdown(self, path: Path | None = None) -> str:
        """The figures as a Markdown table, with where the full report is."""
        lines = ["| figure | value |", "|---|---|", *(f"| {k} | {v} |" for k, v in self.rows())]
        lines += [f"- {g}" for g in self.gaps[:10]]
        if path is not None:
            lines += ["", f"Report with charts: `{path}` (open it in a browser; it needs no network)."]
        return "\n".join(lines)


@dataclass(slots=True)
class Report:
    """Key figures and charts over a data root, for some sources since a day."""

    root: Path
    sources: tuple[str, ...]
    since: date | None
    made_at: datetime
    figures: KeyFigures
    charts: list[Chart]

    def html(self) -> str:
        """The report as one HTML document: inline CSS and SVG, nothing fetched."""
        scope = ", ".join(self.sources) if self.sources else "all sources"
        since = f" since {self.since}" if self.since else ""
        figures = "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in self.figures.rows())
        gaps = "".join(f"<li>{escape(g)}</li>" for g in self.figures.gaps)
        body = []
        for c in self.charts:
            inner = c.svg if c.svg is not None else f'<p class="none">{escape(c.note)}</p>'
            note = f'<p class="note">{escape(c.note)}</p>' if c.svg is not None and c.note else ""
            empty = "" if c.svg is not None else " empty"
            body.append(
                f'<figure class="chart{empty}" id="{c.key}" data-chart="{c.key}">'
                f"<figcaption>{escape(c.title)}</figcaption>{inner}{note}</figure>"
            )
        return _PAGE.format(
            title=escape(f"newsflow report: {scope}{since}"),
            made=escape(self.made_at.strftime("%Y-%m-%d %H:%M UTC")),
            root=escape(str(self.root)),
            figures=figures,
            gaps=f"<ul class='gaps'>{gaps}</ul>" if gaps else "",
            charts="".join(body),
        )


_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 1.5rem auto; max-width: 1440px; color: #222; padding: 0 1rem; }}
h1 {{ font-size: 1.4rem; margin-bottom: .2rem; }} .made {{ color: #666; margin-top: 0; }}
table.figures {{ border-collapse: collapse; margin: 1rem 0; }}
table.figures th {{ text-align: left; font-weight: normal; color: #555; padding: .15rem 1.5rem .15rem 0; }}
table.figures td {{ font-variant-numeric: tabular-nums; font-weight: 600; }}
.grid {{ display: grid; grid-template-columns: repeat(auto-fill, minmax(560px, 1fr)); gap: 1.2rem; }}
figure.chart {{ margin: 0; border: 1px solid #e3e3e3; border-radius: 6px; padding: .6rem .8rem; }}
figcaption {{ font-weight: 600; margin-bottom: .3rem; }} svg {{ width: 100%; height: auto; }}
.note, .none {{ color: #666; font-size: .85rem; }} .warn {{ color: #b00; font-weight: 600; }}
ul.gaps {{ color: #b00; }}
</style></head>
<body>
<h1>{title}</h1>
<p class="made">Made {made} from <code>{root}</code>.</p>
<table class="figures">{figures}</table>
{gaps}
<div class="grid">{charts}</div>
<script>
// A chart whose bars did not draw says so (and the report's own test reads `data-drawn`).
for (const f of document.querySelectorAll("figure.chart")) {{
  const drawn = [...f.querySelectorAll(".mark")].filter((m) => {{
    const b = m.getBBox();
    return b.width > 0 && b.height > 0;
  }}).length;
  f.dataset.drawn = String(drawn);
  if (!f.classList.contains("empty") && drawn === 0) {{
    f.insertAdjacentHTML("beforeend", '<p class="warn">This chart did not draw.</p>');
  }}
}}
document.body.dataset.checked = "true";
</script>
</body></html>
"""


def write_report(root: Path, out: Path | None = None, sources: Sequence[str] = (), since: date | None = None) -> Report:
    """Build the report and write it to `out` (default: `report.html` in the data root), atomically."""
    report = build_report(root, sources, since)
    target = out or root / REPORT_FILE
    target.parent.mkdir(parents=True, exist_ok=True)
    # What a write killed midway left (a write takes seconds; an hour-old one is dead).
    for stale in target.parent.glob(f".{target.name}.*.tmp"):
        with contextlib.suppress(OSError):
            if time.time() - stale.stat().st_mtime > STALE_TMP_S:
                stale.unlink()
    # Made with the user's umask (as the Parquet files are), not mkstemp's owner-only mode.
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp")
    try:
        with open(tmp, "x", encoding="utf-8") as fh:
            fh.write(report.html())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return report


def build_report(root: Path, sources: Sequence[str] = (), since: date | None = None) -> Report:
    """Key figures and charts over the data root's views, for `sources` (default: all) since `since`."""
    con = connect(root)
    try:
        q = _Query(con, tuple(sources), since)
        figures = _figures(q)
        charts = [
            _per_day(q),
            _coverage(q, figures),
            _languages(q),
            _words(q),
            _confidence(q),
            _date_sources(q),
            _rules(q),
            _duplicates(q),
            _quarantine(q),
            _ledger(q),
        ]
    finally:
        con.close()
    return Report(root, tuple(sources), since, datetime.now(UTC), figures, charts)


class _Query:
    """The report's queries, each limited to the chosen sources and days."""

    def __init__(self, con: duckdb.DuckDBPyConnection, sources: tuple[str, ...], since: date | None) -> None:
        self.con, self.sources, self.since = con, list(sources), since

    def rows(self, sql: str, day: str | None) -> list[tuple[Any, ...]]:
        """Run `sql`, whose `{where}` is replaced by the source and day filters (`day`: the row's day expression)."""
        where = ["(len($sources) = 0 OR list_contains($sources, source))"]
        params: dict[str, Any] = {"sources": self.sources}
        if day is not None and self.since is not None:
            where.append(f"{day} >= $since")
            params["since"] = self.since
        return self.con.execute(sql.format(where=" AND ".join(where)), params).fetchall()


_ARTICLE_DAY = "CAST(timezone('UTC', published_at) AS DATE)"


def _figures(q: _Query) -> KeyFigures:
    f = KeyFigures()
    row = q.rows(
        f"SELECT count(*), count(DISTINCT source), coalesce(sum(word_count), 0), min({_ARTICLE_DAY}), "
        f"max({_ARTICLE_DAY}), count(DISTINCT language) FROM articles WHERE {{where}}",
        _ARTICLE_DAY,
    )[0]
    f.articles, f.sources, f.words, f.first_day, f.last_day, f.languages = row
    copies = q.rows(
        "SELECT count(duplicate_of), count(*) FILTER (WHERE NOT is_original AND duplicate_of IS NULL) "
        "FROM clusters WHERE {where}",
        _ARTICLE_DAY,
    )[0]
    f.exact_copies, f.near_duplicates = (int(n or 0) for n in copies)
    f.quarantined_now = q.rows("SELECT count(*) FROM quarantine WHERE {where}", None)[0][0]
    f.learned_blocks = q.rows("SELECT count(*) FROM boilerplate WHERE {where}", None)[0][0]
    f.failed_units = q.rows(
        "SELECT count(*) FROM runs WHERE {where} AND status = 'failed'", "CAST(timezone('UTC', started_at) AS DATE)"
    )[0][0]
    return f


def _over_time(rows: Sequence[tuple[str, date, int]]) -> tuple[str, list[str], list[Series]]:
    """(unit, labels, series) of counts over time: (series name, day, count) rows, per day, week, month or year.

    The unit is the smallest that fits the range on a chart; every unit from the first
    day to the last gets a label, so a gap shows as one.
    """
    first, last = min(r[1] for r in rows), max(r[1] for r in rows)
    span = (last - first).days
    key: Callable[[date], str]
    if span <= 92:
        unit, key = "day", date.isoformat
    elif span <= 2 * 366:
        unit, key = "week", lambda d: (d - timedelta(days=d.weekday())).isoformat()
    elif span <= 10 * 366:
        unit, key = "month", lambda d: d.strftime("%Y-%m")
    else:
        unit, key = "year", lambda d: str(d.year)
    labels = list(dict.fromkeys(key(first + timedelta(days=i)) for i in range(span + 1)))
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for name, day, n in rows:
        counts[name][key(day)] += n
    return unit, labels, [Series(name, [counts[name].get(label, 0) for label in labels]) for name in sorted(counts)]


def _per_day(q: _Query) -> Chart:
    rows = q.rows(
        f"SELECT source, {_ARTICLE_DAY} AS day, count(*) FROM articles WHERE {{where}} GROUP BY ALL", _ARTICLE_DAY
    )
    rows = [r for r in rows if r[1] is not None]
    if not rows:
        return Chart("articles-per-day", "Articles by publication day and source", None, "No articles in the range.")
    unit, labels, series = _over_time(rows)
    note = f"Articles per {unit} (UTC), stacked by source." + (
        " Days are grouped to fit the range." if unit != "day" else ""
    )
    return Chart("articles-per-day", f"Articles per {unit} and source", bar_chart(labels, series), note)


def _coverage(q: _Query, figures: KeyFigures) -> Chart:
    """Articles written per ingest day and source, gap days apart; the last 28 days' gaps go to `figures`."""
    rows = q.rows("SELECT source, day, written, expected FROM coverage WHERE {where}", "day")
    if not rows:
        return Chart("coverage", "Coverage: articles written per ingest day", None, "No ingest runs in the range.")
    daily: dict[str, dict[date, int]] = defaultdict(dict)
    for source, day, written, _expected in rows:
        daily[source][day] = int(written or 0)
    first, last = min(r[1] for r in rows), max(r[1] for r in rows)
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    labels = [d.isoformat() for d in days]
    series = []
    gaps = [0] * len(days)
    for source in sorted(daily):
        values = []
        for i, d in enumerate(days):
            found = gap(daily[source], d)
            got = daily[source].get(d, 0)
            if found is not None:
                gaps[i] += max(got, 1)  # a gap day shows, even with nothing written
                if d >= last - timedelta(days=28):
                    figures.gaps.append(f"{source}: {got} articles written on {d}, usually {found[0]:g} a day")
                values.append(0)
            else:
                values.append(got)
        series.append(Series(source, values))
    if any(gaps):
        series.append(Series("below a quarter of the usual volume", gaps, _GAP_COLOR))
    note = (
        "Articles each day's ingest runs wrote, by source (from `coverage`). A day under a quarter of the "
        "source's usual (the median of up to 28 days before) is a gap, in red."
    )
    return Chart("coverage", "Coverage: articles written per ingest day", bar_chart(labels, series), note)


def _counted(q: _Query, key: str, title: str, sql: str, day: str | None, note: str, empty: str) -> Chart:
    rows = [(str(label), int(n)) for label, n in q.rows(sql, day) if n]
    if not rows:
        return Chart(key, title, None, empty)
    labels = [label for label, _ in rows]
    return Chart(key, title, bar_chart(labels, [Series("articles", [n for _, n in rows])], horizontal=True), note)


def _languages(q: _Query) -> Chart:
    return _counted(
        q,
        "languages",
        "Languages",
        "SELECT coalesce(language, 'unknown'), count(*) FROM articles WHERE {where} "
        "GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 20",
        _ARTICLE_DAY,
        "Articles per language (ISO 639-1; the 20 most frequent).",
        "No articles in the range.",
    )


def _histogram(q: _Query, key: str, title: str, sql: str, labels: list[str], note: str, empty: str) -> Chart:
    counts = [0] * len(labels)
    for b, n in q.rows(sql, _ARTICLE_DAY):
        counts[min(max(int(b), 0), len(labels) - 1)] += int(n)
    if not any(counts):
        return Chart(key, title, None, empty)
    return Chart(key, title, bar_chart(labels, [Series("articles", counts)]), note)


def _words(q: _Query) -> Chart:
    labels = [f"{100 * i}" for i in range(20)] + ["2000+"]
    return _histogram(
        q,
        "word-counts",
        "Words per article",
        "SELECT least(word_count // 100, 20), count(*) FROM articles WHERE {where} GROUP BY 1",
        labels,
        "Articles by word count, in bins of 100 words (labelled by their lower end).",
        "No articles in the range.",
    )


def _confidence(q: _Query) -> Chart:
    labels = [f"{i / 20:.2f}" for i in range(20)]
    return _histogram(
        q,
        "extraction-confidence",
        "Extraction confidence (HTML)",
        "SELECT least(floor(extraction_confidence * 20), 19), count(*) FROM articles "
        "WHERE {where} AND extraction_confidence IS NOT NULL GROUP BY 1",
        labels,
        "HTML articles by the extraction's confidence (the F1 its text is expected to score); "
        "below 0.6 a record carries a warning, below the source's min_confidence it is quarantined.",
        "No HTML articles in the range (plain text has no extraction confidence).",
    )


def _date_sources(q: _Query) -> Chart:
    return _counted(
        q,
        "date-sources",
        "Where the publication date came from",
        "SELECT date_source, count(*) FROM articles WHERE {where} GROUP BY 1 ORDER BY 2 DESC, 1",
        _ARTICLE_DAY,
        "Articles by the evidence behind `published_at` (docs/schema.md lists them, best first).",
        "No articles in the range.",
    )


def _rules(q: _Query) -> Chart:
    rows = q.rows(
        "SELECT s.rule, count(*) FROM (SELECT unnest(stripped) AS s FROM articles WHERE {where}) "
        "GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 20",
        _ARTICLE_DAY,
    )
    title = "Boilerplate rules fired"
    if not rows:
        return Chart("rules", title, None, "No rule removed anything from the articles in the range.")
    labels = [str(r) for r, _ in rows]
    learned = [n if str(r).startswith("learned:") else 0 for r, n in rows]
    other = [0 if str(r).startswith("learned:") else n for r, n in rows]
    series = [Series("configured and built-in rules, extractor", other), Series("learned from the source", learned)]
    note = "Spans removed from the articles' text, by rule (the 20 most frequent; `stripped` lists each)."
    return Chart("rules", title, bar_chart(labels, series, horizontal=True), note)


def _duplicates(q: _Query) -> Chart:
    rows = q.rows(
        "SELECT source, count(*), count(duplicate_of), "
        "count(*) FILTER (WHERE NOT is_original AND duplicate_of IS NULL), "
        "count(*) FILTER (WHERE cluster_size > 1) FROM clusters WHERE {where} GROUP BY 1 ORDER BY 1",
        _ARTICLE_DAY,
    )
    title = "Duplicates and clusters by source"
    if not rows:
        return Chart("duplicates", title, None, "No clustered articles in the range (run `newsflow dedup`).")
    labels = [str(r[0]) for r in rows]
    series = [
        Series("exact copies", [100 * r[2] / r[1] for r in rows]),
        Series("near-duplicates", [100 * r[3] / r[1] for r in rows]),
        Series("in a cluster of 2 or more", [100 * r[4] / r[1] for r in rows]),
    ]
    note = "Share of each source's articles that copy an earlier one exactly, nearly, or share a cluster."
    total = sum(r[1] for r in rows)
    empty = f"No exact copies or near-duplicates among the {total:,} clustered articles in the range."
    return _chart("duplicates", title, labels, series, note, empty, stacked=False, horizontal=True, unit="%")


def _quarantine(q: _Query) -> Chart:
    day = "CAST(timezone('UTC', quarantined_at) AS DATE)"
    rows = q.rows(f"SELECT reason, {day}, count(*) FROM quarantine_log WHERE {{where}} GROUP BY ALL", day)
    title = "Quarantine reasons over time"
    if not rows:
        return Chart("quarantine", title, None, "Nothing was quarantined in the range.")
    unit, labels, series = _over_time(rows)
    note = f"Quarantine records per {unit} by reason (from `quarantine_log`: every rejection of every run)."
    return Chart("quarantine", title, bar_chart(labels, series), note)


def _ledger(q: _Query) -> Chart:
    rows = q.rows(
        "SELECT kind, status, count(*) FROM runs WHERE {where} GROUP BY ALL ORDER BY 1, 2",
        "CAST(timezone('UTC', started_at) AS DATE)",
    )
    title = "Backfill and re-normalisation ledger"
    if not rows:
        return Chart("ledger", title, None, "No backfill or re-normalisation has run in the range.")
    kinds = sorted({str(r[0]) for r in rows})
    statuses = sorted({str(r[1]) for r in rows})
    n = {(str(k), str(s)): int(c) for k, s, c in rows}
    colors = {"completed": "#009E73", "failed": "#D55E00"}
    series = [Series(s, [n.get((k, s), 0) for k in kinds], colors.get(s)) for s in statuses]
    note = 'Partitions each kind of run worked on, by outcome (from `runs`: `newsflow query "SELECT * FROM runs"`).'
    return Chart("ledger", title, bar_chart(kinds, series, horizontal=True), note)
