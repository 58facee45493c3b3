"""The claim's SQL for :class:`.postgres.PostgresStore`; row mapping is shared (:mod:`.rows`)."""

from __future__ import annotations

from typing import Any

from .rows import DELIVERY_COLUMNS, EVENT_SELECT, delivery_from, event_from

__all__ = ["DELIVERY_COLUMNS", "EVENT_SELECT", "READY", "delivery_from", "event_from", "heads",
           "replay_filter"]


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


def replay_filter(delivery_id: int | None, dead: bool,
                   event_id: int | None) -> tuple[str, list[int]]:
    if delivery_id is not None:
        return "id = $2", [delivery_id]
    if event_id is not None:
        return "event_id = $2", [event_id]
    if dead:
        return "status = 'dead'", []
    raise ValueError("replay needs a delivery id, an event id or dead=True")
