"""Process-wide settings every newsflow process applies before Prefect is imported."""

from __future__ import annotations

import os
from pathlib import Path

from pipeline.errors import UserError

__all__ = ["apply_prefect_defaults", "config_path", "data_location", "data_root"]


def apply_prefect_defaults(home: Path | None = None) -> None:
    """Analytics off and a project-local PREFECT_HOME, unless the operator set them."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("PREFECT_HOME", str((home or Path.cwd() / ".prefect").resolve()))
    # Our own progress bar and summary are the console output; Prefect's INFO lines
    # still reach the API (and the UI) but would bury them on the terminal.
    os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "WARNING")


def data_root(cli_value: str | None) -> Path:
    """--data, else NEWSFLOW_DATA, else ./data."""
    return _chosen(cli_value, "--data", "NEWSFLOW_DATA", "data")


def data_location(cli_value: str | None) -> str:
    """--data, else NEWSFLOW_DATA, else ./data: an `s3://bucket/prefix` URL as given, else a resolved local path."""
    from warehouse.bucket import is_bucket_url

    given = cli_value if cli_value is not None else os.environ.get("NEWSFLOW_DATA")
    if given is not None and is_bucket_url(given.strip()):
        return given.strip()
    return str(data_root(cli_value))


def config_path(cli_value: str | None) -> Path:
    """--config, else NEWSFLOW_CONFIG, else ./sources.toml."""
    return _chosen(cli_value, "--config", "NEWSFLOW_CONFIG", "sources.toml")


def _chosen(cli_value: str | None, option: str, variable: str, default: str) -> Path:
    """The path an option, else an environment variable, else the default names; an empty value is a mistake."""
    if cli_value is not None:
        if not cli_value.strip():
            raise UserError(f"{option} is empty: give a path")
        return Path(cli_value).resolve()
    env = os.environ.get(variable)
    if env is not None and not env.strip():
        raise UserError(f"{variable} is set but empty: give a path or unset it")
    return Path(env or default).resolve()
