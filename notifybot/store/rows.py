"""What both backends select, and how a row becomes a value: one place for the two stores."""

from __future__ import annotations

import json
from typing import Any

from .base import Delivery, DeliveryStatus, StoredEvent

DELIVERY_COLUMNS = (
    "d.id, d.event_id, e.name, d.channel, d.subscription, d.destination, d.status, d.attempts, "
    "d.payload, d.created_at, d.next_attempt_at, d.last_error, d.receipt"
)
EVENT_SELECT = "SELECT id, received_at, name, body, content_type, headers FROM events"


def event_from(row: Any) -> StoredEvent:
    """A row of :data:`EVENT_SELECT` as a :class:`StoredEvent`."""
    return StoredEvent(int(row[0]), float(row[1]), row[2], bytes(row[3]), row[4],
                       json.loads(row[5]))


def delivery_from(row: Any) -> Delivery:
    """A row of :data:`DELIVERY_COLUMNS` as a :class:`Delivery`."""
    return Delivery(
        id=int(row[0]), event_id=int(row[1]), event_name=row[2], channel=row[3],
        subscription=row[4], destination=row[5], status=DeliveryStatus(row[6]),
        attempts=int(row[7]), payload=json.loads(row[8]), created_at=float(row[9]),
        next_attempt_at=float(row[10]), last_error=row[11], receipt=row[12],
    )
