"""Load and validate `sources.toml`."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flows.errors import ConfigError
from normalizers.errors import ProfileError
from normalizers.profile import SourceProfile
from warehouse.errors import PartitionError
from warehouse.layout import validate_source

__all__ = ["Config", "SourceConfig", "load_config"]

KINDS = ("files",)
FORMATS = ("text", "html", "auto")
# Default globs per format; `auto` picks the normaliser by extension (HTML by _HTML_GLOBS).
_HTML_GLOBS = ("*.html", "*.htm", "*.html.gz", "*.htm.gz")
_INCLUDE = {"text": ("*.txt",), "html": _HTML_GLOBS, "auto": ("*.txt", *_HTML_GLOBS)}
_SOURCE_KEYS = {
    "kind",
    "path",
    "include",
    "format",
    "description",
    "language",
    "timezone",
    "title_line",
    "max_bytes",
    "default_rules",
    "rules",
    "html",
}
_DEFAULT_KEYS = {"language", "timezone", "title_line", "max_bytes", "default_rules", "rules"}


@dataclass(frozen=True, slots=True)
class SourceConfig:
    """One `[sources.NAME]` block, validated."""

    name: str
    kind: str
    path: Path
    include: tuple[str, ...]
    format: str
    description: str
    profile: SourceProfile


@dataclass(frozen=True, slots=True)
class Config:
    """The whole configuration file."""

    path: Path
    sources: Mapping[str, SourceConfig]

    def select(self, names: list[str] | None) -> list[SourceConfig]:
        """The named sources (all when `names` is empty), in config order."""
        if not names:
            return list(self.sources.values())
        unknown = [n for n in names if n not in self.sources]
        if unknown:
            known = ", ".join(self.sources) or "none"
            raise ConfigError(f"unknown source(s): {', '.join(unknown)} (configured: {known})")
        return [self.sources[n] for n in names]


def load_config(path: Path) -> Config:
    """Read and validate a config file; raises `ConfigError` with the offending key."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: config file not found (use --config or NEWSFLOW_CONFIG)") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from exc
    unknown = set(data) - {"defaults", "sources"}
    if unknown:
        raise ConfigError(f"{path}: unknown top-level key(s): {', '.join(sorted(unknown))}")
    defaults = _table(path, data.get("defaults", {}), "defaults")
    bad = set(defaults) - _DEFAULT_KEYS
    if bad:
        raise ConfigError(f"{path}: defaults: unknown key(s): {', '.join(sorted(bad))}")
    sources: dict[str, SourceConfig] = {}
    for name, block in _table(path, data.get("sources", {}), "sources").items():
        sources[name] = _source(path, name, _table(path, block, f"sources.{name}"), defaults)
    return Config(path=path, sources=sources)


def _table(path: Path, value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(f"{path}: {where} must be a table")
    return value


def _source(path: Path, name: str, block: dict[str, Any], defaults: dict[str, Any]) -> SourceConfig:
    where = f"{path}: sources.{name}"
    try:
        validate_source(name)
    except PartitionError as exc:
        raise ConfigError(f"{where}: {exc}") from exc
    bad = set(block) - _SOURCE_KEYS
    if bad:
        raise ConfigError(f"{where}: unknown key(s): {', '.join(sorted(bad))}")
    kind = block.get("kind", "files")
    if kind not in KINDS:
        raise ConfigError(f"{where}.kind: {kind!r} is not one of {', '.join(KINDS)}")
    fmt = block.get("format", "text")
    if fmt not in FORMATS:
        raise ConfigError(f"{where}.format: {fmt!r} is not one of {', '.join(FORMATS)}")
    raw_path = block.get("path")
    if not isinstance(raw_path, str) or not raw_path:
        raise ConfigError(f"{where}.path: a folder is required")
    include = block.get("include", list(_INCLUDE[fmt]))
    if isinstance(include, str):
        include = [include]
    if not (isinstance(include, list) and include and all(isinstance(p, str) and p for p in include)):
        raise ConfigError(f"{where}.include: expected a glob or a list of globs")
    try:
        own = {k: v for k, v in block.items() if k in _DEFAULT_KEYS or k == "html"}
        profile = SourceProfile.from_mapping(name, own, defaults)
    except ProfileError as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    # Relative paths are relative to the config file, so the config works from any cwd.
    folder = (path.parent / raw_path).resolve()
    return SourceConfig(
        name=name,
        kind=kind,
        path=folder,
        include=tuple(include),
        format=fmt,
        description=str(block.get("description", "")),
        profile=profile,
    )
