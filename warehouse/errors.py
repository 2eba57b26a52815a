"""Errors raised by the warehouse.

WarehouseError
├── TransientError        worth retrying: the same call may succeed later
│   └── LockTimeout       a partition lock was held by another writer for too long
└── PartitionError        a partition value is invalid (would escape the data root)
"""

from __future__ import annotations

__all__ = ["LockTimeout", "PartitionError", "TransientError", "WarehouseError"]


class WarehouseError(Exception):
    """Base class of warehouse errors."""


class TransientError(WarehouseError):
    """A failure that may clear by itself; pipelines retry these and only these."""


class LockTimeout(TransientError):
    """Could not take a partition lock within the allowed time."""


class PartitionError(WarehouseError, ValueError):
    """A partition key is not a valid source name or date."""
