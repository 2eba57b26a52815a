"""Loading and validating sources.toml."""

from __future__ import annotations

from pathlib import Path

import pytest

from flows.config import load_config
from normalizers import DEFAULT_RULES, SourceProfile
from pipeline.config import Config
from pipeline.errors import ConfigError, UserError

REPO = Path(__file__).resolve().parent.parent

GOOD_SOURCE = """
[sources.x]
kind = "files"
path = "in"
"""


@pytest.fixture(scope="module")
def repo_config() -> Config:
    return load_config(REPO / "sources.toml")


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "sources.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_repo_config_sources(repo_config: Config) -> None:
    assert list(repo_config.sources) == ["anha", "wire", "pages"]
    assert repo_config.path == REPO / "sources.toml"
    pages = repo_config.sources["pages"]
    assert (pages.format, pages.path) == ("html", (REPO / "samples" / "html").resolve())
    assert "*.html.gz" in pages.include
    for name in ("anha", "wire"):
        src = repo_config.sources[name]
        assert src.name == name
        assert src.kind == "files"
        assert src.format == "text"
        assert src.include == ("*.txt",)
        assert src.path == (REPO / "samples" / name).resolve()
        assert src.path.is_absolute()
        assert src.path.is_dir()
        assert src.description
        assert isinstance(src.profile, SourceProfile)
        assert src.profile.name == name
        assert src.profile.language == "en"
        assert src.profile.timezone == "UTC"
        # The source's own rules first (the first match names a line), then the built-in ones.
        assert src.profile.rules[-len(DEFAULT_RULES) :] == DEFAULT_RULES
    anha_rules = repo_config.sources["anha"].profile.rules[: -len(DEFAULT_RULES)]
    assert [(r.name, r.where) for r in anha_rules] == [
        ("anha-staff-tag", "tail"),
        ("anha-agency-tag", "tail"),
        ("anha-other-news", "cut-to-end"),
    ]
    wire_rules = [r.name for r in repo_config.sources["wire"].profile.rules[: -len(DEFAULT_RULES)]]
    assert wire_rules == ["desk-tag"]
    agency = anha_rules[1]
    assert agency.matches("ANHA")
    assert not agency.matches("anha")


def test_paths_are_relative_to_the_config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    config = load_config(REPO / "sources.toml")
    assert config.sources["anha"].path == (REPO / "samples" / "anha").resolve()
    conf_dir = tmp_path / "conf"
    conf_dir.mkdir()
    path = _write(conf_dir, GOOD_SOURCE.replace('"in"', '"../data/in"'))
    assert load_config(path).sources["x"].path == (tmp_path / "data" / "in").resolve()


def test_defaults_and_options(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """
[defaults]
timezone = "Europe/Berlin"
language = "de"

[[defaults.rules]]
name = "house-tag"
kind = "byline"
match = "Reported by .+"

[sources.x]
path = "in"
include = "*.text"
language = "EN"
default_rules = false

[[sources.x.rules]]
name = "x-chrome"
kind = "chrome"
where = "any"
match = "Subscribe now"
""",
    )
    src = load_config(path).sources["x"]
    assert src.kind == "files"
    assert src.format == "text"
    assert src.include == ("*.text",)
    assert src.profile.timezone == "Europe/Berlin"
    assert src.profile.language == "en"
    # The source's rules before those of [defaults]: the more specific is tried first.
    assert [r.name for r in src.profile.rules] == ["x-chrome", "house-tag"]
    assert src.profile.rules[0].where == "any"


def test_select(repo_config: Config) -> None:
    assert [s.name for s in repo_config.select(None)] == ["anha", "wire", "pages"]
    assert [s.name for s in repo_config.select([])] == ["anha", "wire", "pages"]
    assert [s.name for s in repo_config.select(["wire"])] == ["wire"]
    with pytest.raises(ConfigError) as info:
        repo_config.select(["wire", "nope"])
    assert "nope" in str(info.value)
    assert "anha" in str(info.value)
    assert isinstance(info.value, UserError)


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.toml"
    with pytest.raises(ConfigError, match="not found") as info:
        load_config(path)
    assert str(path) in str(info.value)


def test_html_selectors_and_format_defaults(tmp_path: Path) -> None:
    path = tmp_path / "sources.toml"
    path.write_text(
        '[sources.site]\npath = "in"\nformat = "html"\n'
        '[sources.site.html]\nbody = "article .story"\ndate = "time[datetime]"\nremove = "aside"\n'
        '[sources.mixed]\npath = "in2"\nformat = "auto"\n',
        encoding="utf-8",
    )
    cfg = load_config(path)
    site, mixed = cfg.sources["site"], cfg.sources["mixed"]
    assert site.include == ("*.html", "*.htm", "*.html.gz", "*.htm.gz")
    assert (site.profile.html.body, site.profile.html.date, site.profile.html.remove) == (
        "article .story",
        "time[datetime]",
        ("aside",),
    )
    assert site.profile.html.title is None
    assert "*.txt" in mixed.include and "*.html.gz" in mixed.include


@pytest.mark.parametrize(
    ("text", "needles"),
    [
        ("[sources.x\npath = 1", ["invalid TOML"]),
        ("\xff", ["cannot read"]),
        ("colour = 'red'\n" + GOOD_SOURCE, ["unknown top-level key", "colour"]),
        ("[defaults]\nshade = 1\n" + GOOD_SOURCE, ["defaults", "shade"]),
        (GOOD_SOURCE + "colour = 'red'\n", ["sources.x", "unknown key", "colour"]),
        ('[sources."Bad/Name"]\npath = "in"\n', ["Bad/Name", "invalid source name"]),
        ('[sources."-x"]\npath = "in"\n', ["-x", "invalid source name"]),
        (GOOD_SOURCE.replace('"files"', '"http"'), ["sources.x.kind", "http"]),
        (GOOD_SOURCE + 'format = "pdf"\n', ["sources.x.format", "pdf"]),
        (GOOD_SOURCE + '[sources.x.html]\nbody = "div..x"\n', ["sources.x.html.body", "invalid CSS selector"]),
        (GOOD_SOURCE + '[sources.x.html]\nremove = ["nav", "a["]\n', ["sources.x.html.remove[1]"]),
        (GOOD_SOURCE + '[sources.x.html]\nbodies = "main"\n', ["sources.x.html", "unknown key", "bodies"]),
        ('[sources.x]\nkind = "files"\n', ["sources.x.path", "required"]),
        (GOOD_SOURCE.replace('"in"', '""'), ["sources.x.path"]),
        (GOOD_SOURCE + "include = []\n", ["sources.x.include"]),
        (GOOD_SOURCE + "include = [1]\n", ["sources.x.include"]),
        (
            GOOD_SOURCE + "[[sources.x.rules]]\nname = 'r'\nkind = 'byline'\nmatch = '(oops'\n",
            ["sources.x.rules[0].match", "bad regular expression"],
        ),
        (
            GOOD_SOURCE + "[[sources.x.rules]]\nname = 'r'\nkind = 'footer'\nmatch = 'x'\n",
            ["sources.x.rules[0].kind"],
        ),
        (
            GOOD_SOURCE + "[[sources.x.rules]]\nname = 'r'\nkind = 'byline'\nregex = 'x'\n",
            ["sources.x.rules[0]", "regex"],
        ),
        (
            "[[defaults.rules]]\nname = 'r'\nkind = 'byline'\nmatch = '['\n" + GOOD_SOURCE,
            ["defaults.rules[0].match"],
        ),
        (GOOD_SOURCE + 'timezone = "Mars/Base"\n', ["sources.x.timezone", "Mars/Base"]),
        (GOOD_SOURCE + "max_bytes = -1\n", ["sources.x.max_bytes"]),
        (GOOD_SOURCE + 'title_line = "yes"\n', ["sources.x.title_line"]),
        ("sources = 3\n", ["sources must be a table"]),
        ("[sources]\nx = 3\n", ["sources.x must be a table"]),
    ],
    ids=[
        "bad-toml",
        "not-utf8",
        "top-level-key",
        "defaults-key",
        "source-key",
        "bad-name",
        "leading-dash",
        "bad-kind",
        "bad-format",
        "bad-body-selector",
        "bad-remove-selector",
        "unknown-html-key",
        "missing-path",
        "empty-path",
        "empty-include",
        "bad-include",
        "bad-regex",
        "bad-rule-kind",
        "unknown-rule-key",
        "bad-default-regex",
        "bad-timezone",
        "bad-max-bytes",
        "bad-title-line",
        "sources-not-table",
        "source-not-table",
    ],
)
def test_invalid_config_is_a_config_error(tmp_path: Path, text: str, needles: list[str]) -> None:
    path = tmp_path / "sources.toml"
    path.write_bytes(text.encode("latin-1"))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert str(path) in message
    for needle in needles:
        assert needle in message


def test_default_rules_must_be_a_boolean(tmp_path: Path) -> None:
    # `default_rules = "false"` is a string, which is truthy: left unvalidated it keeps
    # the built-in rules the user meant to switch off. Like title_line, it must be a bool.
    path = _write(tmp_path, GOOD_SOURCE + 'default_rules = "false"\n')
    with pytest.raises(ConfigError, match="default_rules"):
        load_config(path)


@pytest.mark.parametrize(
    ("block", "needles"),
    [
        ('language = "english"', ["sources.x.language", "'english'", "ISO 639-1", 'did you mean "en"']),
        ('language = "en-US"', ["sources.x.language", "'en-US'", 'did you mean "en"']),
        ('language = "xx"', ["sources.x.language", "'xx'"]),
        ('language = ""', ["sources.x.language"]),
        ("language = 7", ["sources.x.language"]),
        ('encoding = "klingon-8"', ["sources.x.encoding", "'klingon-8'", '"auto"']),
        ('encoding = "base64"', ["sources.x.encoding", "'base64'"]),  # a codec, but not bytes -> text
        ('encoding = ""', ["sources.x.encoding"]),
        ("encoding = 1251", ["sources.x.encoding"]),
    ],
)
def test_language_and_encoding_are_checked_with_one_clear_error(tmp_path: Path, block: str, needles: list[str]) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(_write(tmp_path, GOOD_SOURCE + block + "\n"))
    message = str(info.value)
    assert "\n" not in message
    for needle in needles:
        assert needle in message


def test_a_bad_language_in_defaults_is_reported_there(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"defaults\.language: 'English' is not an ISO 639-1"):
        load_config(_write(tmp_path, '[defaults]\nlanguage = "English"\n' + GOOD_SOURCE))


def test_encoding_names_are_normalised_and_defaults_apply(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        '[defaults]\nencoding = "Windows-1251"\n'
        + GOOD_SOURCE
        + '[sources.y]\npath = "in"\nencoding = "AUTO"\n'
        + '[sources.z]\npath = "in"\nencoding = "Shift_JIS"\nlanguage = "JA"\n',
    )
    sources = load_config(path).sources
    assert [sources[n].profile.encoding for n in "xyz"] == ["cp1251", "auto", "shift_jis"]
    assert sources["z"].profile.language == "ja"
    plain = load_config(_write(tmp_path, GOOD_SOURCE)).sources["x"].profile
    assert (plain.encoding, plain.language) == ("utf-8", None)


# --- values that load but would fail later -----------------------------------------------------

HTTP_SOURCE = '[sources.s]\nkind = "rss"\nurl = "https://news.example.org/feed.xml"\n'
BIG = "9" * 400  # TOML integers have no size limit in Python's reader


def _config_error(tmp_path: Path, text: str) -> str:
    """The one-line message of the ConfigError loading `text` raises."""
    with pytest.raises(ConfigError) as info:
        load_config(_write(tmp_path, text))
    message = str(info.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize("codec", ["undefined", "punycode", "idna", "rot13", "base64", "raw_unicode_escape", "charmap"])
def test_an_encoding_must_be_a_character_set(tmp_path: Path, codec: str) -> None:
    # Each is a codec Python knows; none turns a file's bytes into its text (punycode and
    # undefined raised UnicodeError in the profile, a traceback rather than a config error).
    message = _config_error(tmp_path, GOOD_SOURCE + f'encoding = "{codec}"\n')
    assert f"sources.x.encoding: '{codec}'" in message


@pytest.mark.parametrize("zone", ["Europe", "", "Nope/Zone", "../etc/passwd", "a" * 300])
def test_a_time_zone_that_is_not_one_is_a_config_error(tmp_path: Path, zone: str) -> None:
    # "Europe" is a folder of the zone database: ZoneInfo raised IsADirectoryError.
    assert "sources.x.timezone" in _config_error(tmp_path, GOOD_SOURCE + f'timezone = "{zone}"\n')


@pytest.mark.parametrize(
    ("setting", "key"),
    [
        ("max_pages = inf", "max_pages"),  # OverflowError in int()
        ("max_bytes = nan", "max_bytes"),  # ValueError in int()
        ("delay = nan", "delay"),  # loaded, then compared with nothing
        ("delay = inf", "delay"),
        ("delay = 86400", "delay"),
        ("timeout = 0", "timeout"),  # loaded: every request timed out at once
        ("timeout = -inf", "timeout"),
        ("concurrency = 1e300", "concurrency"),  # loaded as a 301-digit integer
        ("concurrency = 0", "concurrency"),
        ("concurrency = 2.5", "concurrency"),
        ("concurrency = true", "concurrency"),
        (f"max_pages = {BIG}", "max_pages"),
        ("max_bytes = 0", "max_bytes"),
        ('max_bytes = "10MB"', "max_bytes"),
    ],
)
def test_fetch_numbers_must_be_finite_and_within_their_bounds(tmp_path: Path, setting: str, key: str) -> None:
    message = _config_error(tmp_path, HTTP_SOURCE + f'fetch = {{ contact = "ops@example.org", {setting} }}\n')
    assert f"sources.s.fetch.{key}: expected " in message and " from " in message


def test_fetch_numbers_at_their_bounds_load(tmp_path: Path) -> None:
    fetch = "delay = 0, timeout = 1, concurrency = 256.0, max_bytes = 1024, max_pages = 10000000"
    config = load_config(_write(tmp_path, HTTP_SOURCE + f'fetch = {{ contact = "ops@example.org", {fetch} }}\n'))
    settings = config.sources["s"].fetch
    assert (settings.delay, settings.timeout, settings.concurrency) == (0.0, 1.0, 256)
    assert isinstance(settings.concurrency, int) and (settings.max_bytes, settings.max_pages) == (1024, 10_000_000)


@pytest.mark.parametrize(
    ("url", "key", "why"),
    [
        ('"http://"', "sources.s.url", "no host"),
        ('"https:///feed.xml"', "sources.s.url", "no host"),
        ('"http://example.org:99999/feed"', "sources.s.url", "not a valid URL"),
        ('["https://example.org/a.xml", "http://"]', "sources.s.url[1]", "no host"),
    ],
)
def test_a_url_to_fetch_needs_a_host(tmp_path: Path, url: str, key: str, why: str) -> None:
    text = f'[sources.s]\nkind = "rss"\nurl = {url}\nfetch = {{ contact = "ops@example.org" }}\n'
    message = _config_error(tmp_path, text)
    assert message.startswith(f"{tmp_path / 'sources.toml'}: {key}: ") and why in message


@pytest.mark.parametrize(
    ("schedule", "key"),
    [
        ("{ interval = inf }", "interval"),  # OverflowError in duration_text
        ("{ interval = nan }", "interval"),
        ('{ interval = "99999999999d" }', "interval"),  # OverflowError in timedelta, in serve
        ("{ interval = 1e300 }", "interval"),  # ... and a 300-digit schedule in `sources`
        (f"{{ interval = {BIG} }}", "interval"),
        (f'{{ interval = "{BIG}s" }}', "interval"),
        ('{ interval = "367d" }', "interval"),
        ('{ interval = "5s" }', "interval"),
        ("{ interval = 0.5 }", "interval"),
        ('{ interval = "1m", timezone = "Nope/Zone" }', "timezone"),  # ZoneInfoNotFoundError in serve
        ('{ interval = "1m", timezone = "Europe" }', "timezone"),
        ('{ interval = "1m", timezone = "" }', "timezone"),
        ('{ interval = "1m", timezone = 5 }', "timezone"),
    ],
)
def test_an_interval_schedule_is_checked_when_the_config_loads(tmp_path: Path, schedule: str, key: str) -> None:
    message = _config_error(tmp_path, GOOD_SOURCE + f"schedule = {schedule}\n")
    assert f"sources.x.schedule.{key}: " in message


def test_interval_schedules_at_their_bounds_load(tmp_path: Path) -> None:
    for interval, seconds in (('"10s"', 10.0), ('"366d"', 366 * 86400.0), ("10", 10.0)):
        config = load_config(
            _write(tmp_path, GOOD_SOURCE + f'schedule = {{ interval = {interval}, timezone = "Asia/Tokyo" }}\n')
        )
        schedule = config.sources["x"].schedule
        assert schedule is not None and (schedule.interval, schedule.timezone) == (seconds, "Asia/Tokyo")
        assert schedule.anchor().utcoffset() is not None


def test_a_byte_order_mark_before_the_config_is_read_past(tmp_path: Path) -> None:
    path = tmp_path / "sources.toml"
    path.write_bytes(b"\xef\xbb\xbf" + GOOD_SOURCE.encode())
    assert list(load_config(path).sources) == ["x"]
