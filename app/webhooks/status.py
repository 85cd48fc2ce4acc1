"""Where a webhook delivery stands: the values stored in ``webhook_deliveries.status`` and served by
the delivery log (a ``StrEnum``, so each member is its own string in the database and in JSON)."""

from __future__ import annotations

from enum import StrEnum


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    """Waiting for its next attempt (the first, or a retry)."""
    DELIVERED = "delivered"
    FAILED = "failed"
    """Gave up: retries exhausted, or the receiver answered 410 Gone."""
    CANCELLED = "cancelled"
    """Its endpoint was deleted or disabled before it was delivered."""
