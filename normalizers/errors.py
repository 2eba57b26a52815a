"""Errors and rejections of the normalisers.

Normalisers never raise on bad *input*: they return a `Rejection` with a
`RejectReason`, which the pipeline quarantines. Exceptions are for bad *setup*:

    NormalizerError
    ├── ProfileError      a source profile (rules, options) is invalid
    └── RuleTimeout       a rule's pattern backtracked past its time on a line (the
                          normaliser quarantines that input as `timeout`)
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = ["NormalizerError", "ProfileError", "RejectReason", "Rejection", "RuleTimeout"]


class NormalizerError(Exception):
    """Base class of normaliser set-up errors."""


class ProfileError(NormalizerError):
    """A source profile is invalid (unknown option, bad regular expression, bad value)."""


class RuleTimeout(NormalizerError):
    """A source rule took longer than its time to match one line (a pattern that backtracks on it)."""

    def __init__(self, rules: str, chars: int, seconds: float) -> None:
        super().__init__(
            f"rule {rules} took over {seconds:g} s to match a line of {chars} characters: its pattern backtracks"
            " on that line; rewrite it without nested repetition (such as (a|aa)+)"
        )


class RejectReason(StrEnum):
    """Stable reason codes for quarantined input; analysts group and filter on these."""

    EMPTY = "empty"
    BINARY = "binary"
    INVALID_UTF8 = "invalid_utf8"
    INVALID_ENCODING = "invalid_encoding"
    TRUNCATED = "truncated"
    TOO_LARGE = "too_large"
    NO_BODY = "no_body"
    BAD_SIDECAR = "bad_sidecar"
    NO_DATE = "no_date"
    TIMEOUT = "timeout"
    READ_ERROR = "read_error"
    EXTRACTION_FAILED = "extraction_failed"  # HTML: the extraction's confidence is below the source's min_confidence
    INTERNAL_ERROR = "internal_error"
    # Found by the pipeline before any normaliser sees the input (pipeline.files):
    OUTSIDE_ROOT = "outside_root"  # a link (or a sidecar link) resolving outside the source folder
    NOT_REGULAR_FILE = "not_regular_file"  # a FIFO, socket or device: never opened
    BROKEN_LINK = "broken_link"  # a dangling symbolic link or a link loop
    BAD_FILE_NAME = "bad_file_name"  # a file or folder name that is not valid UTF-8
    PATH_TOO_LONG = "path_too_long"  # a path past the system's limit (PATH_MAX)
    BAD_MTIME = "bad_mtime"  # a modification time no real file has (before 1678 or after 2262)


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why an input could not become an `Article`."""

    reason: RejectReason
    message: str
