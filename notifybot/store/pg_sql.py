"""SQL and row mapping for :class:`.postgres.PostgresStore`: the claim's queries live here."""

from __future__ import annotations

import json
from typing import Any

from .base import Delivery, DeliveryStatus, StoredEvent

DELIVERY_COLUMNS = (
    "d.id, d.event_id, e.name, d.channel, d.subscription, d.destination, d.status, d.attempts, "
    "d.payload, d.created_at, d.next_attempt_at, d.last_error, d.receipt"
)
EVENT_SELECT = "SELECT id, received_at, name, body, content_type, headers FROM events"

# Destinations with something due, oldest due delivery first. A paced one is
# ready only when its head (lowest id not yet finished) is pending and due, so
# each row returned yields at least one delivery and LIMIT may stop at ``limit``.
READY = """
SELECT d.key, d.pace FROM destinations d
WHERE d.next_allowed_at <= $1
  AND EXISTS (SELECT 1 FROM deliveries q WHERE q.destination = d.key
              AND q.status = 'pending' AND q.next_attempt_at <= $1)
  AND (d.pace <= 0 OR (SELECT h.status = 'pending' AND h.next_attempt_at <= $1
                       FROM deliveries h WHERE h.destination = d.key
                       AND h.status IN ('pending', 'sending') ORDER BY h.id LIMIT 1))
ORDER BY (SELECT MIN(q.id) FROM deliveries q WHERE q.destination = d.key
          AND q.status = 'pending' AND q.next_attempt_at <= $1)
LIMIT $2
FOR UPDATE OF d SKIP LOCKED
"""


async def heads(conn: Any, key: str, pace: float, now: float, room: int) -> list[int]:
    """The deliveries of one (locked) destination that may go now, oldest first, locked."""
    if pace > 0:
        # Paced: only the head, and only if nobody else holds it. Skipping a locked
        # head to take the one behind it would break the order, so wait a round.
        head = await conn.fetchval(
            "SELECT id FROM deliveries WHERE id = (SELECT id FROM deliveries "
            "WHERE destination = $1 AND status IN ('pending', 'sending') ORDER BY id LIMIT 1) "
            "AND status = 'pending' AND next_attempt_at <= $2 FOR UPDATE SKIP LOCKED", key, now)
        return [] if head is None else [int(head)]
    rows = await conn.fetch(
        "SELECT id FROM deliveries WHERE destination = $1 AND status = 'pending' "
        "AND next_attempt_at <= $2 ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED", key, now, room)
    return [int(row[0]) for row in rows]


def event_from(row: Any) -> StoredEvent:
    return StoredEvent(int(row[0]), float(row[1]), row[2], bytes(row[3]), row[4],
                       json.loads(row[5]))


def delivery_from(row: Any) -> Delivery:
    return Delivery(
        id=int(row[0]), event_id=int(row[1]), event_name=row[2], channel=row[3],
        subscription=row[4], destination=row[5], status=DeliveryStatus(row[6]),
        attempts=int(row[7]), payload=json.loads(row[8]), created_at=float(row[9]),
        next_attempt_at=float(row[10]), last_error=row[11], receipt=row[12],
    )


def replay_filter(delivery_id: int | None, dead: bool,
                   event_id: int | None) -> tuple[str, list[int]]:
    if delivery_id is not None:
        return "id = $2", [delivery_id]
    if event_id is not None:
        return "event_id = $2", [event_id]
    if dead:
        return "status = 'dead'", []
    raise ValueError("replay needs a delivery id, an event id or dead=True")
