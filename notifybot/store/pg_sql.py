"""The claim's SQL for :class:`.postgres.PostgresStore`: SQLite's, with row locks to skip.

Everything else is shared (:mod:`.sql`); these differ because several processes
claim at once. Rows another transaction holds are skipped, never waited for.
"""

from __future__ import annotations

from typing import Any

from .sql import POSTGRES, THREAD_CLEAR

# Destinations with something due, oldest due delivery first. A paced one is
# ready only when its head (lowest id not yet finished, not held) is pending and
# due, so each row returned yields at least one delivery and LIMIT may stop there.
READY = POSTGRES.sql("""
SELECT d.key, d.pace FROM destinations d
WHERE d.next_allowed_at <= ?
  AND EXISTS (SELECT 1 FROM deliveries q WHERE q.destination = d.key
              AND q.status = 'pending' AND q.next_attempt_at <= ?
              AND (d.pace > 0 OR q.thread_key IS NULL OR NOT EXISTS (
                   SELECT 1 FROM deliveries o WHERE o.destination = q.destination
                   AND o.thread_key = q.thread_key AND o.id <> q.id
                   AND (o.status = 'sending' OR (o.status = 'pending' AND o.id < q.id
                        AND (o.not_before IS NULL OR o.not_before <= ?))))))
  AND (d.pace <= 0 OR (SELECT h.status = 'pending' AND h.next_attempt_at <= ?
                       FROM deliveries h WHERE h.destination = d.key
                       AND h.status IN ('pending', 'sending')
                       AND (h.not_before IS NULL OR h.not_before <= ?) ORDER BY h.id LIMIT 1))
ORDER BY (SELECT MIN(q.id) FROM deliveries q WHERE q.destination = d.key
          AND q.status = 'pending' AND q.next_attempt_at <= ?)
LIMIT ?
FOR UPDATE OF d SKIP LOCKED
""")

_PACED_HEAD = POSTGRES.sql(
    "SELECT id FROM deliveries WHERE id = (SELECT id FROM deliveries "
    "WHERE destination = ? AND status IN ('pending', 'sending') "
    "AND (not_before IS NULL OR not_before <= ?) ORDER BY id LIMIT 1) "
    "AND status = 'pending' AND next_attempt_at <= ? FOR UPDATE SKIP LOCKED")
_UNPACED_HEADS = POSTGRES.sql(
    "SELECT d.id FROM deliveries d WHERE d.destination = ? AND d.status = 'pending' "
    f"AND d.next_attempt_at <= ? AND {THREAD_CLEAR} ORDER BY d.id LIMIT ? "
    "FOR UPDATE OF d SKIP LOCKED")


async def heads(conn: Any, key: str, pace: float, now: float, room: int) -> list[int]:
    """The deliveries of one (locked) destination that may go now, oldest first, locked."""
    if pace > 0:
        # Paced: only the head, and only if nobody else holds it. Skipping a locked
        # head to take the one behind it would break the order, so wait a round.
        head = await conn.fetchval(_PACED_HEAD, key, now, now)
        return [] if head is None else [int(head)]
    rows = await conn.fetch(_UNPACED_HEADS, key, now, now, room)
    return [int(row[0]) for row in rows]
