"""Errors raised by the warehouse.

WarehouseError
├── TransientError        worth retrying: the same call may succeed later
│   ├── LockTimeout       a partition lock was held by another writer for too long
│   └── CommitConflict    a file of a commit changed after it was staged: stage it again
├── PartitionError        a partition value is invalid (would escape the data root)
└── JournalError          a commit's journal cannot be read or names paths it may not touch
"""

from __future__ import annotations

__all__ = ["CommitConflict", "JournalError", "LockTimeout", "PartitionError", "TransientError", "WarehouseError"]


class WarehouseError(Exception):
    """Base class of warehouse errors."""


class TransientError(WarehouseError):
    """A failure that may clear by itself; pipelines retry these and only these."""


class LockTimeout(TransientError):
    """Could not take a partition lock within the allowed time."""


class CommitConflict(TransientError):
    """A file a commit replaces or deletes is no longer the one its change was made from."""


class PartitionError(WarehouseError, ValueError):
    """A partition key is not a valid source name or date."""


class JournalError(WarehouseError):
    """A commit's journal is unreadable or names a path outside its source's files."""
