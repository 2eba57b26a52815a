"""Source profiles: per-source rules and options, built from `sources.toml` data.

Source differences are data: a new agency tag or chrome line is a rule in the
config, never an `if` in a normaliser. Rules match a *whole line* (regex
full-match), so a body paragraph that merely mentions "other news" never matches.
"""

from __future__ import annotations

import codecs
import re
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# Rules come from the user's config and are matched against input lines: `regex` (re's
# syntax) can stop a match that backtracks without end, which `re` cannot.
import regex

from normalizers.boilerplate import Learned
from normalizers.errors import ProfileError, RuleTimeout
from normalizers.language import ISO_639_1, normalize_language_tag

__all__ = [
    "AUTO_ENCODING",
    "CUT_TO_END",
    "DEFAULT_MIN_CONFIDENCE",
    "DEFAULT_RULES",
    "NOT_CHARACTER_SETS",
    "HtmlSelectors",
    "Rule",
    "SourceProfile",
    "check_timezone",
]

# `encoding = "auto"`: UTF-8 when the bytes are valid UTF-8, else what charset detection finds.
AUTO_ENCODING = "auto"
# Codecs Python lists as text encodings that are no character set a file is written in
# (by their normalised names): host-name encodings (idna, punycode), Python string-literal
# escapes (unicode-escape, raw-unicode-escape), `undefined` (fails on every input),
# `charmap` (an internal helper), and Windows' mbcs and oem, whose meaning depends on the
# machine, so a normaliser reading them would not be pure. Codecs that do not turn bytes
# into text at all (base64, rot13, zlib) are refused by trying them.
NOT_CHARACTER_SETS = frozenset(
    {"idna", "punycode", "unicode-escape", "raw-unicode-escape", "undefined", "charmap", "mbcs", "oem"}
)

# `where = "cut-to-end"`: the rule matches a marker line (`Other news`) that introduces a
# trailing list; the marker and every line after it are removed (the text normaliser guards it).
CUT_TO_END = "cut-to-end"
_KINDS = ("byline", "chrome")
_WHERE = ("tail", "head", "any", CUT_TO_END)


@dataclass(frozen=True, slots=True)
class Rule:
    """A whole-line pattern that removes a line as `byline` or `chrome`.

    `where` limits the rule to the contiguous run of matching lines at the end
    (`tail`) or start (`head`) of the document, or to stand-alone one-line blocks
    anywhere (`any`); a `cut-to-end` rule matches a marker line near the end that
    introduces a list (related headlines), and the marker and every line after it
    are removed, each under the rule's name.
    """

    name: str
    kind: str
    where: str
    pattern: re.Pattern[str]
    # The same pattern in `regex`, for a pattern that may backtrack without end (`may_backtrack`):
    # matched with a time limit. Others are matched by `re`, several times faster a call.
    guarded: regex.Pattern[str] | None = None

    def matches(self, line: str) -> bool:
        """True when the whole line matches the rule (`RuleTimeout` when it takes longer than RULE_TIMEOUT_S)."""
        if self.guarded is None:
            return self.pattern.fullmatch(line) is not None
        try:
            return self.guarded.fullmatch(line, timeout=RULE_TIMEOUT_S) is not None
        except TimeoutError:
            raise RuleTimeout(self.name, len(line), RULE_TIMEOUT_S) from None


# A rule matches one line in microseconds; a pattern that backtracks exponentially on some
# line ("(a|aa)+" on forty a's) would hold a worker for hours. The input is quarantined instead.
RULE_TIMEOUT_S = 1.0
# {m}, {m,}, {,n} or {m,n}: group 1 the comma (None for {m}), group 2 the upper bound.
_BRACES = re.compile(r"\{\d*(,)?(\d*)\}")
# Bounded repetitions whose widths multiply past this hold a pattern unsafe ("a{0,999}" three times).
_MAX_WIDTHS = 100_000
# An inline verbose flag, global or scoped: (?x), (?ix), (?x:...).
_VERBOSE = re.compile(r"\(\?[aiLmsu]*x[aiLmsux]*(?:-[imsx]+)?[:)]")


def may_backtrack(source: str) -> bool:
    """True if a pattern may take more than about linear time to full-match a line (it is then time-limited)."""
    # A pattern that repeats no group and holds at most one unbounded repetition matches a
    # line in linear time times the product of its bounded repetitions' widths: such a
    # pattern is safe while that product stays small. Verbose mode (spaces and comments
    # between a group and its quantifier) is not read here: such a pattern is held unsafe.
    # Safe ones caught too ("a*b*") only cost the slower matcher.
    if _VERBOSE.search(source):
        return True
    unbounded, widths = 0, 1
    i, n = 0, len(source)
    while i < n:
        c = source[i]
        if c == "\\":
            i += 2
            continue
        if c == "[":  # a character class: its brackets, parentheses and quantifiers are characters
            j = i + 1
            j += source[j : j + 1] == "^"
            j += source[j : j + 1] == "]"
            while j < n and source[j] != "]":
                j += 2 if source[j] == "\\" else 1
            i = j + 1
            continue
        after_group = i > 0 and source[i - 1] == ")"
        braces = _BRACES.match(source, i) if c == "{" else None
        if c in "*+" or (braces is not None and braces.group(2) == "" and braces.group(1) is not None):
            if after_group:
                return True
            unbounded += 1
        elif braces is not None:
            if after_group:
                return True  # a group repeated a bounded number of times: (a|aa){1,40} is still 2^40 ways
            widths *= int(braces.group(2) or braces.group(0)[1:-1] or 1) + 1
        i += 1
    return unbounded > 1 or widths > _MAX_WIDTHS


def make_rule(name: str, kind: str, where: str, source: str, flags: int = re.IGNORECASE) -> Rule:
    """A rule from its regular expression (`re`'s syntax); `re.error` when it is not one."""
    pattern = re.compile(source, flags)
    guarded = regex.compile(source, regex.IGNORECASE if flags & re.IGNORECASE else 0) if may_backtrack(source) else None
    return Rule(name, kind, where, pattern, guarded)


# Chrome that any news dump may end with; kept deliberately narrow (whole-line,
# short phrases) so they cannot eat a sentence. Sources may opt out. The markers that
# introduce a list of links (`Other news`, `Most read`, `Read more`) cut to the end, so
# the headlines under them go too; on their own at the end they go just the same.
DEFAULT_RULES: tuple[Rule, ...] = (
    make_rule(
        "related-links",
        "chrome",
        CUT_TO_END,
        r"(other|related|more|latest|recent|top|further) (news|stories|articles|coverage|reading)",
    ),
    make_rule("most-read", "chrome", CUT_TO_END, r"most (read|popular|viewed)"),
    make_rule("read-more", "chrome", CUT_TO_END, r"(read|see) (more|also)( news)?:?"),
    make_rule(
        "share-bar",
        "chrome",
        "any",
        r"share( this( article| story)?)?:?|(share on )?(facebook|twitter|x|whatsapp|telegram|email|print)",
    ),
    make_rule("tags-line", "chrome", "tail", r"tags?:.{0,200}"),
    make_rule("advertisement", "chrome", "any", r"advertisement|sponsored( content)?"),
)


@dataclass(frozen=True, slots=True)
class HtmlSelectors:
    """A source's CSS selectors for its HTML pages (`[sources.NAME.html]`); each is optional.

    A selector that matches wins over the generic extraction for its field; one that
    matches nothing falls back to it, and the record's `extraction` says which path ran.
    """

    body: str | None = None
    title: str | None = None
    date: str | None = None
    author: str | None = None
    remove: tuple[str, ...] = ()

    @classmethod
    def from_mapping(cls, where: str, data: Any) -> HtmlSelectors:
        """Validate a `[sources.NAME.html]` table: known keys, selectors the parser accepts."""
        if not isinstance(data, Mapping):
            raise ProfileError(f"{where}: expected a table of CSS selectors")
        bad = set(data) - {"body", "title", "date", "author", "remove"}
        if bad:
            raise ProfileError(f"{where}: unknown key(s): {', '.join(sorted(bad))}")
        remove = data.get("remove", [])
        if isinstance(remove, str):
            remove = [remove]
        if not isinstance(remove, list):
            raise ProfileError(f"{where}.remove: expected a selector or a list of selectors")
        single = {k: data.get(k) for k in ("body", "title", "date", "author")}
        for key, value in [*single.items(), *((f"remove[{i}]", v) for i, v in enumerate(remove))]:
            if value is not None:
                _check_selector(f"{where}.{key}", value)
        return cls(remove=tuple(remove), **single)


def _check_selector(where: str, value: Any) -> None:
    """Raise ProfileError unless `value` is a CSS selector the HTML parser accepts."""
    from selectolax.lexbor import LexborHTMLParser, SelectolaxError

    if not isinstance(value, str) or not value.strip():
        raise ProfileError(f"{where}: expected a CSS selector")
    try:
        LexborHTMLParser("<p></p>").css(value)
    except SelectolaxError as exc:
        raise ProfileError(f"{where}: invalid CSS selector {value!r}") from exc


# An HTML page whose extraction confidence (the estimated F1 of its text against a
# human's, see normalizers.html.extract) is below this is quarantined as
# `extraction_failed` rather than stored as an article. Chosen on the cross-validated
# extractions of the development pages (scripts/train_extractor.py, BENCHMARKS.md): at
# 0.2, ~85% of pages with their article taken out are caught while ~2.5% of good pages are
# held back (at 0.3: ~89% and ~3%); a held-back page stays in the quarantine and the
# raw store, and a source that wants every page sets 0.
DEFAULT_MIN_CONFIDENCE = 0.2


@dataclass(frozen=True, slots=True)
class SourceProfile:
    """Everything a normaliser may know about a source besides the document itself.

    `encoding` is how the text normaliser decodes a file without a byte-order mark: a
    Python codec name (normalised, e.g. `cp1251`) or `auto`. HTML pages carry their own
    charset and ignore it.
    """

    name: str
    language: str | None = None
    timezone: str = "UTC"
    encoding: str = "utf-8"
    title_line: bool = True
    max_bytes: int = 5_000_000
    # HTML pages whose extraction confidence is below this are quarantined (see
    # DEFAULT_MIN_CONFIDENCE); 0 keeps every page.
    min_confidence: float = DEFAULT_MIN_CONFIDENCE
    rules: tuple[Rule, ...] = DEFAULT_RULES
    html: HtmlSelectors = field(default_factory=HtmlSelectors)
    options: Mapping[str, Any] = field(default_factory=dict)
    # Learn the source's boilerplate from its articles (`normalizers.boilerplate`); the
    # pipeline fills `learned` with what it has learned so far before a run.
    learn: bool = True
    learned: Learned = field(default_factory=Learned)
    _matchers: dict[tuple[str, ...], tuple[re.Pattern[str] | None, tuple[Rule, ...]]] = field(
        init=False, repr=False, compare=False, default_factory=dict
    )

    def has_rules(self, where: tuple[str, ...]) -> bool:
        """True when some rule applies at one of the `where` positions."""
        return bool(self._matcher(where)[1])

    def match(self, line: str, where: tuple[str, ...]) -> Rule | None:
        """The first rule (the source's, then `[defaults]`', then built-in) at a `where` position matching the line."""
        combined, chosen = self._matcher(where)
        if combined is None:
            return next((rule for rule in chosen if rule.matches(line)), None)
        found = combined.fullmatch(line)
        # The outermost group of the first alternative that matched closes last; the rules
        # left out of the join (matched with a time limit) that come before it are tried first.
        hit = len(chosen) if found is None else int(str(found.lastgroup)[2:])
        before = next((r for r in chosen[:hit] if r.guarded is not None and r.matches(line)), None)
        return before or (chosen[hit] if hit < len(chosen) else None)

    def _matcher(self, where: tuple[str, ...]) -> tuple[re.Pattern[str] | None, tuple[Rule, ...]]:
        """The rules for the `where` positions and their joined pattern, made once per profile."""
        matcher = self._matchers.get(where)
        if matcher is None:
            matcher = self._matchers[where] = _combine(self.rules, where)
        return matcher

    @classmethod
    def from_mapping(
        cls, name: str, data: Mapping[str, Any], defaults: Mapping[str, Any] | None = None
    ) -> SourceProfile:
        """Build a profile from a config mapping (a `[sources.NAME]` block) and the `[defaults]`."""
        merged: dict[str, Any] = {**(defaults or {}), **data}
        where = f"sources.{name}"

        def key(option: str) -> str:
            """Where a merged value came from, for error messages: the source's block or `[defaults]`."""
            return f"{where}.{option}" if option in data or option not in (defaults or {}) else f"defaults.{option}"

        language = _language(key("language"), merged.get("language"))
        encoding = _encoding(key("encoding"), merged.get("encoding", "utf-8"))
        tz = check_timezone(key("timezone"), merged.get("timezone", "UTC"))
        max_bytes = merged.get("max_bytes", 5_000_000)
        if not isinstance(max_bytes, int) or isinstance(max_bytes, bool) or max_bytes <= 0:
            raise ProfileError(f"{key('max_bytes')}: expected a positive integer")
        min_confidence = merged.get("min_confidence", DEFAULT_MIN_CONFIDENCE)
        if (
            not isinstance(min_confidence, int | float)
            or isinstance(min_confidence, bool)
            or not 0 <= min_confidence <= 1
        ):
            raise ProfileError(f"{key('min_confidence')}: expected a number from 0 to 1")
        title_line = merged.get("title_line", True)
        if not isinstance(title_line, bool):
            raise ProfileError(f"{key('title_line')}: expected true or false")
        default_rules = merged.get("default_rules", True)
        if not isinstance(default_rules, bool):
            raise ProfileError(f"{key('default_rules')}: expected true or false")
        learn = merged.get("learn_boilerplate", True)
        if not isinstance(learn, bool):
            raise ProfileError(f"{key('learn_boilerplate')}: expected true or false")
        # The first rule that matches a line names it, so the most specific come first: the
        # source's own rules, then those of `[defaults]`, then the built-in ones. A source's
        # rule for a line a built-in rule also matches (its own `Other news`) thus wins.
        rules: list[Rule] = []
        for origin, block in ((where, data), ("defaults", defaults or {})):
            for i, spec in enumerate(block.get("rules", ())):
                rules.append(_parse_rule(f"{origin}.rules[{i}]", spec))
        if default_rules:
            rules.extend(DEFAULT_RULES)
        html = HtmlSelectors.from_mapping(f"{where}.html", data["html"]) if "html" in data else HtmlSelectors()
        return cls(
            name=name,
            html=html,
            language=language,
            timezone=tz,
            encoding=encoding,
            title_line=title_line,
            max_bytes=max_bytes,
            min_confidence=float(min_confidence),
            rules=tuple(rules),
            learn=learn,
            options={k: v for k, v in data.items() if k not in ("rules", "html")},
        )


def _language(where: str, value: Any) -> str | None:
    """A source's `language`: an ISO 639-1 code (any case), stored lower-case; ProfileError otherwise."""
    if value is None:
        return None
    if isinstance(value, str) and value.lower() in ISO_639_1:
        return value.lower()
    # A name or a longer tag ("english", "en-US", "eng") has an obvious code to suggest.
    hint = normalize_language_tag(value) if isinstance(value, str) else None
    suggestion = f'; did you mean "{hint}"?' if hint else ""
    raise ProfileError(f'{where}: {value!r} is not an ISO 639-1 language code (two letters, such as "en"){suggestion}')


def check_timezone(where: str, value: Any) -> str:
    """`value` if it names an IANA time zone Python knows; ProfileError otherwise."""
    if not isinstance(value, str) or not value:
        raise ProfileError(f'{where}: expected a time zone name such as "Europe/Berlin"')
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError) as exc:  # OSError: "Europe" is a folder
        raise ProfileError(f"{where}: unknown time zone {value!r}") from exc
    return value


def _encoding(where: str, value: Any) -> str:
    """A source's `encoding`: `auto`, or a character set Python knows (its normalised name); ProfileError otherwise."""
    if not isinstance(value, str) or not value.strip():
        raise ProfileError(f'{where}: expected an encoding name such as "utf-8" or "cp1251", or "auto"')
    if value.strip().lower() == AUTO_ENCODING:
        return AUTO_ENCODING
    hint = '(a codec name such as "cp1251" or "shift_jis", or "auto")'
    try:
        name = codecs.lookup(value.strip()).name
    except LookupError as exc:
        raise ProfileError(f"{where}: unknown text encoding {value!r} {hint}") from exc
    if name in NOT_CHARACTER_SETS:
        raise ProfileError(f"{where}: {value!r} is a Python codec, not the character set of a text file {hint}")
    try:
        # bytes.decode raises LookupError for codecs that do not turn bytes into text
        # (base64, rot13); empty bytes would skip the check.
        b"    ".decode(name)
    except UnicodeDecodeError:
        pass  # a character set all the same (UTF-32 reads four spaces as one invalid character)
    except (LookupError, UnicodeError) as exc:
        raise ProfileError(f"{where}: {value!r} is not a text encoding {hint}") from exc
    return name


# Patterns that cannot be joined into one alternation: numbered or named back-references
# and named groups would change meaning (or clash) once the groups are renumbered, and
# global inline flags ("(?i)...") are refused anywhere but at a pattern's start.
_UNJOINABLE = re.compile(r"\\[1-9]|\(\?P[<=]|^\(\?[aiLmsux]+\)")


def _combine(rules: tuple[Rule, ...], where: tuple[str, ...]) -> tuple[re.Pattern[str] | None, tuple[Rule, ...]]:
    """One alternation of the rules for `where`, so a line costs one regex call, not one per rule.

    Each rule is wrapped in a group named `_r<index>`, so the match says which rule it was;
    rules matched with a time limit are left out (`match` tries them in their turn).
    Returns no pattern (match rule by rule) when a rule cannot be joined safely.
    """
    chosen = tuple(r for r in rules if r.where in where)
    joined = [(i, r) for i, r in enumerate(chosen) if r.guarded is None]
    if not joined or any(_UNJOINABLE.search(r.pattern.pattern) for _, r in joined):
        return None, chosen
    parts = [f"(?P<_r{i}>(?{'i' if r.pattern.flags & re.IGNORECASE else '-i'}:{r.pattern.pattern}))" for i, r in joined]
    return re.compile("|".join(parts)), chosen


def _parse_rule(where: str, spec: Any) -> Rule:
    if not isinstance(spec, Mapping):
        raise ProfileError(f"{where}: expected a table with name, kind, where, match")
    unknown = set(spec) - {"name", "kind", "where", "match", "ignore_case"}
    if unknown:
        raise ProfileError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    name, kind, pos, source = spec.get("name"), spec.get("kind"), spec.get("where", "tail"), spec.get("match")
    if not isinstance(name, str) or not name:
        raise ProfileError(f"{where}.name: required")
    if kind not in _KINDS:
        raise ProfileError(f"{where}.kind: expected one of {', '.join(_KINDS)}")
    if pos not in _WHERE:
        raise ProfileError(f"{where}.where: expected one of {', '.join(_WHERE)}")
    if not isinstance(source, str) or not source:
        raise ProfileError(f"{where}.match: a regular expression is required")
    flags = re.IGNORECASE if spec.get("ignore_case", True) else 0
    try:
        return make_rule(name, str(kind), str(pos), source, flags)
    except (re.error, regex.error) as exc:
        raise ProfileError(f"{where}.match: bad regular expression: {exc}") from exc
