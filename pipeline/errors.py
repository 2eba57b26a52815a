"""Errors of the pipeline and the CLI.

    FlowsError
    └── UserError          the user can fix it (bad config, unknown source, bad SQL);
        └── ConfigError    sources.toml is missing or invalid

The CLI prints a `UserError` as one line, without a traceback. Transient storage
errors (`warehouse.TransientError`) are retried by the flow; everything else fails
the run.
"""

from __future__ import annotations

__all__ = ["ConfigError", "FlowsError", "UserError"]


class FlowsError(Exception):
    """Base class of pipeline errors."""


class UserError(FlowsError):
    """A mistake the user can fix; reported as one line."""


class ConfigError(UserError):
    """The configuration file is missing or invalid."""
