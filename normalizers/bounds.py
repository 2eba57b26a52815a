"""Limits a caller puts on one document's normalisation.

Normalisers read no clock (they stay pure); a caller that wants a time bound passes
a `Budget`, and the normaliser checks it between units of work. `flows` passes one
backed by the monotonic clock; tests pass counting ones.
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["Budget", "Unlimited"]


class Budget(Protocol):
    """Says when work on the current document must stop."""

    def expired(self) -> bool:
        """True once the work should stop."""
        ...


class Unlimited:
    """A budget that never expires (the default: pure, repeatable output)."""

    def expired(self) -> bool:
        """Never."""
        return False
