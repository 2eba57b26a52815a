#!/usr/bin/env python3
"""Regenerate the bundled sample corpus in ``samples/`` from the seed file and the AEB set."""

from __future__ import annotations

import argparse
import email.utils
import gzip
import html
import json
import re
import struct
import sys
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_AEB = REPO_ROOT.parent / "shared" / "data" / "aeb"
DEFAULT_SEED = REPO_ROOT.parent / "shared" / "data" / "seed"
DEFAULT_OUT = REPO_ROOT / "samples"

SEED_NAME = "000_db5c100688d27208.txt"
RELATED_NAME = "001_related_headlines.txt"
WIRE_COUNT = 20
SIDECAR_COUNT = 14
MIN_PARAGRAPHS = 4
MIN_WORDS = 150
MAX_WORDS = 1200

# Article types whose "author" in JSON-LD names the people who wrote the page.
ARTICLE_TYPES = {
    "Article",
    "NewsArticle",
    "BlogPosting",
    "ReportageNewsArticle",
    "AnalysisNewsArticle",
    "OpinionNewsArticle",
    "TechArticle",
    "ScholarlyArticle",
    "WebPage",
}

# Meta names that carry a publication date, checked after article:published_time.
DATE_META_NAMES = ("pubdate", "date", "dc.date.issued", "parsely-pub-date")

# Plain, en-dash and em-dash separators all show up before site names.
TITLE_SEPARATORS = (" | ", " - ", " \u2013 ", " \u2014 ", " :: ")

# A handful of very common English function words: enough to tell English prose
# from the other languages in the benchmark without a language-id dependency.
_ENGLISH_TEXT = (
    "the of and to a in is that for it on was with as are be by this at from have has "
    "not but they he she his her an or which were said"
)
ENGLISH_WORDS = frozenset(_ENGLISH_TEXT.split())

# Words that mark a byline as an organisation or desk rather than a person.
_ORG_TEXT = (
    "staff editorial editors editor bureau reports report news desk team agency wire "
    "reuters press admin contributor contributors correspondent online media"
)
ORG_WORDS = frozenset(_ORG_TEXT.split())

JSON_LD_DATE_RE = re.compile(r'"datePublished"\s*:\s*"([^"]+)"')


@dataclass
class PageMeta:
    """Metadata read from one HTML page."""

    lang: str | None = None
    og_title: str | None = None
    og_site_name: str | None = None
    h1: str | None = None
    title: str | None = None
    meta: dict[str, str] = field(default_factory=dict)
    item_date: str | None = None
    json_ld: list[str] = field(default_factory=list)


class _PageParser(HTMLParser):
    """Collect the few head/body fields the sample builder needs."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.page = PageMeta()
        self._svg_depth = 0
        self._in_title = False
        self._in_h1 = False
        self._in_ld = False
        self._buf: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        """Record attributes of interesting tags and open text captures."""
        a = {k.lower(): (v or "") for k, v in attrs}
        page = self.page
        if tag == "html" and page.lang is None and a.get("lang", "").strip():
            page.lang = a["lang"].strip()
        elif tag == "svg":
            self._svg_depth += 1
        elif tag == "meta":
            content = a.get("content", "").strip()
            key = (a.get("property") or a.get("name") or "").strip().lower()
            if key and content and key not in page.meta:
                page.meta[key] = content
            if "datePublished" in a.get("itemprop", "").split() and content and page.item_date is None:
                page.item_date = content
        elif "datePublished" in a.get("itemprop", "").split() and page.item_date is None:
            # <time itemprop="datePublished" datetime="..."> is the common non-meta form.
            value = a.get("datetime") or a.get("content")
            if value and value.strip():
                page.item_date = value.strip()
        elif tag == "title" and self._svg_depth == 0 and page.title is None:
            self._in_title, self._buf = True, []
        elif tag == "h1" and page.h1 is None and not self._in_h1:
            self._in_h1, self._buf = True, []
        elif tag == "script" and a.get("type", "").strip().lower() == "application/ld+json":
            self._in_ld, self._buf = True, []

    def handle_endtag(self, tag: str) -> None:
        """Close text captures and store what they gathered."""
        text = "".join(self._buf)
        if tag == "svg" and self._svg_depth:
            self._svg_depth -= 1
        elif tag == "title" and self._in_title:
            self._in_title = False
            self.page.title = text
        elif tag == "h1" and self._in_h1:
            self._in_h1 = False
            self.page.h1 = text
        elif tag == "script" and self._in_ld:
            self._in_ld = False
            self.page.json_ld.append(text)

    def handle_data(self, data: str) -> None:
        """Append text while a capture is open."""
        if self._in_title or self._in_h1 or self._in_ld:
            self._buf.append(data)


@dataclass
class Sample:
    """One AEB page chosen for the corpus, with everything needed to write it."""

    aeb_id: str
    url: str
    title: str
    paragraphs: list[str]
    lang: str | None
    published_at: str | None
    authors: list[str]

    @property
    def words(self) -> int:
        """Whitespace word count of the body."""
        return sum(len(p.split()) for p in self.paragraphs)


def clean_text(value: str) -> str:
    """Collapse whitespace runs and unescape any entity left over from double escaping."""
    # Some sites escape twice ("&amp;#8217;"); the parser has already undone one level.
    if re.search(r"&(#\d+|#x[0-9a-fA-F]+|[a-zA-Z]+);", value):
        value = html.unescape(value)
    return " ".join(value.split())


def parse_page(raw: str) -> PageMeta:
    """Parse an HTML document into PageMeta."""
    parser = _PageParser()
    parser.feed(raw)
    parser.close()
    return parser.page


def _alnum(value: str) -> str:
    """Lower-case letters and digits only, for loose name comparisons."""
    return re.sub(r"[^0-9a-z]", "", value.casefold())


def _host_keys(host: str) -> set[str]:
    """Return loose forms of a host's site name: "sportsnet.ca" -> sportsnetca, sportsnet."""
    labels = [label for label in host.lower().split(".") if label and label != "www"]
    if len(labels) < 2:
        return {_alnum(host)} - {""}
    # Second-level registries such as .co.uk put the site name one label further left.
    main = labels[-3] if len(labels) >= 3 and labels[-2] in {"co", "com", "org", "net", "ac", "gov"} else labels[-2]
    return {_alnum(".".join(labels)), _alnum(main)}


def _is_site_name(segment: str, site_name: str | None, host: str) -> bool:
    """Tell whether a title segment names the site (so it is a suffix, not part of the headline)."""
    seg = _alnum(segment)
    if not seg:
        return False
    if site_name and seg == _alnum(site_name):
        return True
    return seg in _host_keys(host)


def strip_site_suffix(title: str, site_name: str | None, url: str) -> str:
    """Drop a trailing " - Site" / " | Site" only when the tail clearly names the site."""
    host = urlsplit(url).hostname or ""
    for sep in TITLE_SEPARATORS:
        head, found, tail = title.rpartition(sep)
        if found and head.strip() and _is_site_name(tail, site_name, host):
            return head.strip()
    return title


def pick_title(page: PageMeta, url: str) -> str | None:
    """Choose the headline: og:title, else <h1>, else <title>."""
    for candidate in (page.meta.get("og:title"), page.h1, page.title):
        if candidate:
            text = clean_text(candidate)
            if text:
                return strip_site_suffix(text, page.meta.get("og:site_name"), url)
    return None


def normalise_lang(lang: str | None) -> str | None:
    """Reduce a language tag like "en-US" or "en_GB" to its primary subtag."""
    if not lang:
        return None
    primary = re.split(r"[-_]", lang.strip())[0].lower()
    return primary if re.fullmatch(r"[a-z]{2,3}", primary) else None


def normalise_date(value: str) -> str | None:
    """Turn a date string into ISO-8601 with an offset (UTC when none is given), or None."""
    text = value.strip()
    parsed: datetime | None = None
    iso = text.replace(" ", "T", 1) if re.match(r"\d{4}-\d{2}-\d{2} \d", text) else text
    try:
        parsed = datetime.fromisoformat(iso)
    except ValueError:
        parsed = None
    if parsed is None:
        for fmt in ("%Y%m%d", "%Y/%m/%d", "%B %d, %Y", "%b %d, %Y", "%d %B %Y"):
            try:
                parsed = datetime.strptime(text, fmt)
                break
            except ValueError:
                continue
    if parsed is None:
        try:
            parsed = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            parsed = None
    if parsed is None or not 1995 <= parsed.year <= 2035:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.replace(microsecond=0).isoformat()


def date_candidates(page: PageMeta) -> Iterator[str]:
    """Yield raw publication-date strings in order of trust."""
    if "article:published_time" in page.meta:
        yield page.meta["article:published_time"]
    for name in DATE_META_NAMES:
        if name in page.meta:
            yield page.meta[name]
    if page.item_date:
        yield page.item_date
    for block in page.json_ld:
        for match in JSON_LD_DATE_RE.finditer(block):
            yield match.group(1)


def pick_published_at(page: PageMeta) -> str | None:
    """Return the first publication date that parses."""
    for raw in date_candidates(page):
        value = normalise_date(raw)
        if value:
            return value
    return None


def _ld_objects(node: object) -> Iterator[dict[str, object]]:
    """Walk a JSON-LD value and yield every object in it, @graph members included."""
    if isinstance(node, dict):
        yield node
        for value in node.values():
            if isinstance(value, (dict, list)):
                yield from _ld_objects(value)
    elif isinstance(node, list):
        for item in node:
            yield from _ld_objects(item)


def _types(obj: dict[str, object]) -> set[str]:
    """Return an object's @type values as a set."""
    value = obj.get("@type")
    if isinstance(value, str):
        return {value}
    if isinstance(value, list):
        return {v for v in value if isinstance(v, str)}
    return set()


def _clean_person(name: object, site_name: str | None) -> str | None:
    """Accept a string only if it plausibly is one person's full name."""
    if not isinstance(name, str):
        return None
    text = clean_text(name)
    words = text.split()
    bad = (
        not 2 <= len(words) <= 5
        or len(text) > 60
        # Digits, URLs, handles and list punctuation mean it is not a bare name.
        or re.search(r"[0-9@/<>|,;:]|https?|\. ", text) is not None
        # Bylines such as "Staff Reports" or "The Water Coolest" name a desk or outlet.
        or words[0].lower() in {"by", "the"}
        or any(w.lower().strip(".") in ORG_WORDS for w in words)
        or not all(w[0].isupper() for w in words)
        or (site_name is not None and _alnum(text) == _alnum(site_name))
    )
    return None if bad else text


def pick_authors(page: PageMeta) -> list[str]:
    """Return author names from JSON-LD (persons only) or a clean meta author, else []."""
    site_name = page.meta.get("og:site_name")
    for block in page.json_ld:
        try:
            data = json.loads(block, strict=False)
        except json.JSONDecodeError:
            continue
        for obj in _ld_objects(data):
            if not _types(obj) & ARTICLE_TYPES or "author" not in obj:
                continue
            raw = obj["author"]
            entries = raw if isinstance(raw, list) else [raw]
            names: list[str] = []
            for entry in entries:
                value = entry
                if isinstance(entry, dict):
                    # Organisations as "author" are the publisher, not a byline.
                    if _types(entry) and "Person" not in _types(entry):
                        continue
                    value = entry.get("name")
                name = _clean_person(value, site_name)
                if name and name not in names:
                    names.append(name)
            if names:
                return names
    meta_name = _clean_person(page.meta.get("author"), site_name)
    return [meta_name] if meta_name else []


def gold_paragraphs(body: str) -> list[str]:
    """Split a gold body into paragraphs (one per non-blank line), whitespace collapsed."""
    return [p for p in (" ".join(line.split()) for line in body.splitlines()) if p]


def looks_english(text: str) -> bool:
    """Tell whether prose is English by the share of common English function words."""
    tokens = re.findall(r"[a-z]+", text.lower())
    if len(tokens) < 50:
        return False
    hits = sum(1 for t in tokens if t in ENGLISH_WORDS)
    return hits / len(tokens) >= 0.15


def load_candidates(aeb: Path) -> list[Sample]:
    """Read every AEB page in sorted id order and keep those fit for the corpus."""
    truth: dict[str, dict[str, str]] = json.loads((aeb / "ground-truth.json").read_text("utf-8"))
    chosen: list[Sample] = []
    for aeb_id in sorted(truth):
        entry = truth[aeb_id]
        paragraphs = gold_paragraphs(entry["articleBody"])
        words = sum(len(p.split()) for p in paragraphs)
        if len(paragraphs) < MIN_PARAGRAPHS or not MIN_WORDS <= words <= MAX_WORDS:
            continue
        raw = gzip.decompress((aeb / "html" / f"{aeb_id}.html.gz").read_bytes()).decode("utf-8", "replace")
        page = parse_page(raw)
        lang = normalise_lang(page.lang)
        if (lang is not None and lang != "en") or not looks_english(" ".join(paragraphs)):
            continue
        title = pick_title(page, entry["url"])
        if not title:
            continue
        chosen.append(
            Sample(
                aeb_id=aeb_id,
                url=entry["url"],
                title=title,
                paragraphs=paragraphs,
                lang=lang,
                published_at=pick_published_at(page),
                authors=pick_authors(page),
            )
        )
    return chosen


def has_tail(index: int) -> bool:
    """Every other wire file gets the agency tag and page-chrome tail."""
    return index % 2 == 0


def tail_tag(index: int) -> str:
    """Alternate the two tag prefixes seen in raw agency files."""
    return "T/ Desk." if index % 4 == 0 else "H/ Desk."


def render_article(sample: Sample, tail: str | None) -> bytes:
    """Render a sample in the raw text format: title, blank line, paragraphs, optional tail."""
    parts = [sample.title, *sample.paragraphs]
    text = "\n\n".join(parts)
    if tail is not None:
        # Same shape as the seed's tail: tag line, two blank lines, chrome line.
        text += f"\n\n{tail}\n\n\nOther news"
    return (text + "\n").encode("utf-8")


def sidecar_dict(sample: Sample) -> dict[str, object]:
    """Build the sidecar mapping, leaving out every key that was not found."""
    data: dict[str, object] = {"url": sample.url}
    if sample.published_at:
        data["published_at"] = sample.published_at
    if sample.lang:
        data["language"] = sample.lang
    data["title"] = sample.title
    if sample.authors:
        data["authors"] = sample.authors
    return data


def render_json(data: dict[str, object]) -> bytes:
    """Serialise a sidecar the same way every time."""
    return (json.dumps(data, ensure_ascii=False, indent=2) + "\n").encode("utf-8")


def choose_wire(candidates: list[Sample]) -> list[Sample]:
    """Pick the wire pages: the first page of each publication month, then the earliest ids."""
    # The benchmark is mostly one crawl week, so plain id order gives nearly one month;
    # taking one page per month first makes the sidecar dates spread out.
    picked: list[Sample] = []
    seen_months: set[str] = set()
    for s in candidates:
        if s.published_at and s.published_at[:7] not in seen_months and len(picked) < WIRE_COUNT:
            seen_months.add(s.published_at[:7])
            picked.append(s)
    for s in candidates:
        if len(picked) >= WIRE_COUNT:
            break
        if s not in picked:
            picked.append(s)
    return sorted(picked, key=lambda s: s.aeb_id)


def choose_sidecars(samples: list[Sample]) -> set[int]:
    """Pick which wire files get a sidecar, spreading publication months and keeping one undated."""
    # Round-robin over months (oldest first) so the dated sidecars cover every month on
    # offer; one slot goes to an undated page so a sidecar without published_at exists.
    by_month: dict[str, list[int]] = {}
    undated: list[int] = []
    for i, s in enumerate(samples):
        if s.published_at:
            by_month.setdefault(s.published_at[:7], []).append(i)
        else:
            undated.append(i)
    picked: list[int] = undated[:1]
    # Within a month, pages with a byline go first so some sidecars carry "authors".
    queues = [sorted(by_month[m], key=lambda i: (not samples[i].authors, i)) for m in sorted(by_month)]
    while len(picked) < SIDECAR_COUNT and any(queues):
        for queue in queues:
            if queue and len(picked) < SIDECAR_COUNT:
                picked.append(queue.pop(0))
    picked.extend(undated[1 : 1 + SIDECAR_COUNT - len(picked)])
    return set(picked)


def png_blob() -> bytes:
    """Return a valid 1x1 greyscale PNG followed by a few NUL bytes."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        """Frame one PNG chunk with its length and CRC."""
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    ihdr = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)
    # Pre-computed zlib stream of one filter byte plus one pixel, hard-coded so the
    # blob does not depend on the local zlib version's compressor output.
    idat = bytes.fromhex("789c6360000000020001")
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"") + b"\x00" * 8


LATIN1_TEXT = (
    "Café owners in Zürich protest new rules\n"
    "\n"
    "Owners of cafés and brasseries in Zürich gathered on Monday in front of the town hall "
    "to protest against new rules on terrace opening hours.\n"
    "\n"
    "« We are not against order, we are against rules made without us », said the "
    "spokesperson of the association, who asked that the façade repairs be delayed too.\n"
    "\n"
    "The city council said the measures would be reviewed after the summer, and that "
    "a meeting with the café owners was planned for the first week of September.\n"
    "\n"
    "Señor Muñoz, a regular customer, said the terraces were part of the city's charm.\n"
)


# A made-up article in the style of the ANHA seed (its events, names and quotes are invented),
# ending as the agency's pages do: the translator's tag, `Other news` and related headlines
# (also invented). Like the seed, it has no final newline.
RELATED_TEXT = (
    "Farmers in Qamishlo countryside fear losing wheat season as rains come late\n"
    "\n"
    "Farmers in the countryside of Qamishlo city in North and East Syria expressed their fear of "
    "losing this year's wheat season, after the first rains came weeks later than usual, while "
    "calling on the Economy and Agriculture Authority to provide diesel, seeds and fertilizers at "
    "reduced prices before the sowing period ends\n"
    "\n"
    "The lands of the Jazira region depend for the most part on rain, and the delay of the first "
    "rains of the season has left thousands of hectares unsown in the villages of Qamishlo "
    "countryside, at a time when the prices of diesel and fertilizers have risen.\n"
    "\n"
    "Sowing delayed for a month\n"
    "\n"
    "In one of the villages east of Qamishlo, the farmer Xelil Mihemed, who owns 20 hectares of land, "
    'said: "Every year we start sowing at the beginning of November, but this year the land was still '
    "dry until the middle of December, and we could not plough it.”\n"
    "\n"
    'He added: "If the rains do not continue in the coming weeks, the seeds we put in the ground will '
    "not sprout, and we will lose everything we spent on them.”\n"
    "\n"
    "High costs of diesel and fertilizers\n"
    "\n"
    "Farmers say that the cost of ploughing and sowing one hectare has almost doubled compared to "
    "last season, because of the rise in the price of diesel on the free market and the scarcity of "
    "fertilizers.\n"
    "\n"
    'Another farmer from the same village, who asked not to be named, said: "We received part of our '
    "share of subsidised diesel, but it was not enough to plough all the land, so we had to buy the "
    "rest at double the price.”\n"
    "\n"
    "Calls to support small farmers\n"
    "\n"
    "The farmers called on the Economy and Agriculture Authority in North and East Syria to increase "
    "the quantities of subsidised diesel, to distribute improved seeds at reduced prices, and to "
    "announce the purchase price of wheat early, so that farmers can plan their season.\n"
    "\n"
    'Xelil Mihemed concluded: "The small farmer is the one who bears the losses every time; we are '
    "not asking for much, only for the support to arrive on time.”\n"
    "\n"
    "T/ Hsm.\n"
    "\n"
    "\n"
    "Other news\n"
    "\n"
    "Hasakah water station resumes pumping after repairs to its generators\n"
    "\n"
    "Women's council in Kobani opens literacy courses in five villages\n"
    "\n"
    "Qamishlo municipality begins paving roads in the eastern neighbourhoods\n"
    "\n"
    "Derik hosts its annual book fair with dozens of publishing houses\n"
    "\n"
    "Teachers in Manbij prepare curricula for the new school year"
)


def write_file(path: Path, data: bytes, written: list[Path]) -> None:
    """Write bytes to a path and remember it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    written.append(path)


def render_readme(rows: list[tuple[str, str]], licence: str) -> bytes:
    """Render samples/README.md with layout, provenance and the AEB licence."""
    table = "\n".join(f"| `{name}` | <{url}> |" for name, url in rows)
    text = f"""# Sample corpus

A small corpus of raw article text files in the format newsflow ingests, used by
the tests and for trying the pipeline by hand. Regenerate it with:

```
python3 scripts/make_samples.py
```

The script takes `--aeb DIR` (default `../shared/data/aeb`), `--seed DIR`
(default `../shared/data/seed`) and `--out DIR` (default `samples/`), relative to
the repository root. The same inputs always give byte-identical output.

## Layout

- `anha/000_db5c100688d27208.txt`: a raw ANHA agency article (Hawar News
  Agency) as distributed with the project's source format. It has no sidecar on
  purpose: its publication date comes from the file's modification time.
- `anha/{RELATED_NAME}`: an article written for this project in
  the seed's style and layout (title line, lede, sub-headings, quotes, a
  translator tag `T/ Hsm.`), ending as the agency's pages do: the tag, `Other
  news`, then five related headlines. It is no agency text: its events, names,
  quotes and headlines are invented. It exercises the `cut-to-end` rule
  (`anha-other-news` in `sources.toml`), which removes the marker and the list
  after it while the tag above them still goes to `byline`. No sidecar, like
  the seed.
- `wire/NNN_<id12>.txt`: {WIRE_COUNT} English news and blog articles. Each file is the
  page title, a blank line, then one paragraph per line with blank lines between
  them. `<id12>` is the first 12 hex digits of the page's benchmark id, and
  `NNN` numbers the files in id order. Pages are eligible when their gold text
  is English with at least {MIN_PARAGRAPHS} paragraphs and {MIN_WORDS} to {MAX_WORDS} words and
  the page has a title; the first eligible page (in id order) of each
  publication month is taken, then the lowest remaining ids. Paragraph text is
  the benchmark's gold text with whitespace runs collapsed; nothing else is
  changed.
  - Every other file ends with an agency tag line (`T/ Desk.` or `H/ Desk.`),
    two blank lines and a page-chrome line `Other news`. These tails are not
    part of the original articles: they are added to exercise the boilerplate
    rules.
  - {SIDECAR_COUNT} of them have a sidecar `wire/NNN_<id12>.json` with `url`, `title`
    and, where the page gave them, `language` (from `<html lang>`),
    `published_at` (from the page's date metadata, ISO-8601 with offset, UTC
    when the page gave none) and `authors`. Keys the page did not give are left
    out.
- Deliberately malformed files in `wire/`:
  - `bad_empty.txt`: empty (0 bytes).
  - `bad_binary.txt`: a tiny PNG image followed by NUL bytes.
  - `bad_latin1.txt`: a short made-up article-like text with accented
    letters, encoded in Latin-1, so it is not valid UTF-8.
  - `bad_sidecar.txt` / `bad_sidecar.json`: a valid article whose sidecar is
    truncated, invalid JSON.

- `html/<name>.html.gz` with `html/<name>.json` (the page URL): three whole web
  pages (two English, one Italian) from the same benchmark, gzip-compressed as
  the benchmark distributes them, for the `pages` source (HTML extraction).
  `scripts/make_html_fixtures.py` copies them, together with the eleven pages
  under `tests/fixtures/html/` and their expectations.

## Attribution

The article texts in `wire/` (title lines and paragraphs) and the pages in
`html/` and `tests/fixtures/html/` come from the article-extraction-benchmark by
Scrapinghub (its gold article bodies, page titles and page HTML), released under
the MIT licence. The licence is reproduced
below.

```
{licence.rstrip()}
```

| sample file | original URL |
|---|---|
{table}
"""
    return text.encode("utf-8")


def clear_stale(out: Path) -> None:
    """Remove previously generated files so a rerun leaves exactly the new set."""
    for sub, pattern in (
        ("wire", "[0-9][0-9][0-9]_*"),
        ("wire", "bad_*"),
        ("anha", "[0-9][0-9][0-9]_*"),
    ):
        for path in sorted((out / sub).glob(pattern)):
            if path.is_file() and path.suffix in {".txt", ".json"}:
                path.unlink()


def build(aeb: Path, seed: Path, out: Path) -> list[Path]:
    """Generate the whole corpus and return the paths written."""
    candidates = load_candidates(aeb)
    if len(candidates) < WIRE_COUNT + 1:
        sys.exit(f"only {len(candidates)} usable AEB pages, need {WIRE_COUNT + 1}")
    wire = choose_wire(candidates)
    # The malformed-sidecar article is the first usable page not already in wire/.
    extra = next(s for s in candidates if s not in wire)
    sidecars = choose_sidecars(wire)

    clear_stale(out)
    written: list[Path] = []
    write_file(out / "anha" / SEED_NAME, (seed / SEED_NAME).read_bytes(), written)
    write_file(out / "anha" / RELATED_NAME, RELATED_TEXT.encode("utf-8"), written)

    rows: list[tuple[str, str]] = []
    for i, sample in enumerate(wire):
        stem = f"{i:03d}_{sample.aeb_id[:12]}"
        tail = tail_tag(i) if has_tail(i) else None
        write_file(out / "wire" / f"{stem}.txt", render_article(sample, tail), written)
        if i in sidecars:
            write_file(out / "wire" / f"{stem}.json", render_json(sidecar_dict(sample)), written)
        rows.append((f"wire/{stem}.txt", sample.url))

    write_file(out / "wire" / "bad_empty.txt", b"", written)
    write_file(out / "wire" / "bad_binary.txt", png_blob(), written)
    write_file(out / "wire" / "bad_latin1.txt", LATIN1_TEXT.encode("latin-1"), written)
    write_file(out / "wire" / "bad_sidecar.txt", render_article(extra, None), written)
    # Cut the real sidecar mid-way so it is recognisably JSON but cannot parse.
    full = render_json(sidecar_dict(extra))
    write_file(out / "wire" / "bad_sidecar.json", full[: len(full) // 2], written)
    rows.append(("wire/bad_sidecar.txt", extra.url))

    licence = (aeb / "LICENSE").read_text("utf-8")
    write_file(out / "README.md", render_readme(rows, licence), written)
    return written


def check(out: Path) -> int:
    """Verify encodings and sidecars, print a summary table, and return the error count."""
    errors = 0
    wire = out / "wire"
    print(f"{'file':<32} {'words':>5} {'sidecar':<7} {'published_at':<26} tail")
    for path in sorted([*(out / "anha").glob("*.txt"), *wire.glob("*.txt")]):
        rel = path.relative_to(out).as_posix()
        data = path.read_bytes()
        if path.name.startswith("bad_") and path.name != "bad_sidecar.txt":
            print(f"{rel:<32} {'-':>5} {'-':<7} {'-':<26} -  ({len(data)} bytes, malformed on purpose)")
            continue
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            print(f"ERROR {rel}: not UTF-8: {exc}")
            errors += 1
            continue
        sidecar = path.with_suffix(".json")
        published = "-"
        if sidecar.exists() and sidecar.name != "bad_sidecar.json":
            try:
                published = str(json.loads(sidecar.read_text("utf-8")).get("published_at", "(none)"))
            except json.JSONDecodeError as exc:
                print(f"ERROR {sidecar.name}: {exc}")
                errors += 1
        tail = "yes" if "Other news" in text.splitlines() else "no"
        has = "bad" if sidecar.name == "bad_sidecar.json" else ("yes" if sidecar.exists() else "no")
        print(f"{rel:<32} {len(text.split()):>5} {has:<7} {published:<26} {tail}")
    bad = wire / "bad_sidecar.json"
    try:
        json.loads(bad.read_text("utf-8"))
        print("ERROR bad_sidecar.json parses but should not")
        errors += 1
    except (json.JSONDecodeError, UnicodeDecodeError):
        pass
    try:
        (wire / "bad_latin1.txt").read_bytes().decode("utf-8")
        print("ERROR bad_latin1.txt decodes as UTF-8 but should not")
        errors += 1
    except UnicodeDecodeError:
        pass
    months = sorted(
        {
            json.loads(p.read_text("utf-8"))["published_at"][:7]
            for p in wire.glob("[0-9]*.json")
            if "published_at" in json.loads(p.read_text("utf-8"))
        }
    )
    print(f"published_at months in sidecars: {', '.join(months)}")
    return errors


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, build the corpus and check it."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--aeb", type=Path, default=DEFAULT_AEB, help="article-extraction-benchmark directory")
    parser.add_argument("--seed", type=Path, default=DEFAULT_SEED, help="directory holding the ANHA seed file")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output directory")
    args = parser.parse_args(argv)
    written = build(args.aeb, args.seed, args.out)
    print(f"wrote {len(written)} files under {args.out}")
    return 1 if check(args.out) else 0


if __name__ == "__main__":
    sys.exit(main())
