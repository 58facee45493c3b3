"""What both backends select, and how a row becomes a value: one place for the two stores."""

from __future__ import annotations

import json
from typing import Any

from .base import Delivery, DeliveryKind, DeliveryStatus, NewDelivery, StoredEvent, ThreadRoot

DELIVERY_COLUMNS = (
    "d.id, d.event_id, e.name, d.channel, d.subscription, d.destination, d.status, d.attempts, "
    "d.payload, d.created_at, d.next_attempt_at, d.last_error, d.receipt, d.key, d.kind, "
    "d.thread_key, d.not_before, d.handle, d.origin_id, d.update_payload, d.broadcast, "
    "d.thread_role, d.note, d.gather, d.claims"
)
DELIVERY_FROM = "FROM deliveries d JOIN events e ON e.id = d.event_id"
# A claim also reads each delivery's thread root: after DELIVERY_COLUMNS, from this join.
ROOT_COLUMNS = "t.handle, t.subject, t.created_at"
ROOT_JOIN = "LEFT JOIN threads t ON t.destination = d.destination AND t.key = d.thread_key"
_ROOT_AT = DELIVERY_COLUMNS.count(",") + 1  # where ROOT_COLUMNS start in a claimed row
EVENT_SELECT = "SELECT id, received_at, name, body, content_type, headers FROM events"
INSERT_VALUES = "(?, ?, ?, ?, ?, 0, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
INSERT_DELIVERY = (
    "INSERT INTO deliveries (event_id, channel, subscription, destination, status, attempts, "
    "payload, created_at, updated_at, next_attempt_at, last_error, key, kind, gather, thread_key, "
    "not_before, origin_id, update_payload, broadcast, note) "
    f"VALUES {INSERT_VALUES} ON CONFLICT (key) DO NOTHING RETURNING id"
)


def event_from(row: Any) -> StoredEvent:
    """A row of :data:`EVENT_SELECT` as a :class:`StoredEvent`."""
    return StoredEvent(int(row[0]), float(row[1]), row[2], bytes(row[3]), row[4],
                       json.loads(row[5]))


def delivery_from(row: Any, event_ids: tuple[int, ...] | None = None, *,
                  rooted: bool = False) -> Delivery:
    """A row of :data:`DELIVERY_COLUMNS` as a :class:`Delivery`; ``rooted``: a claim's row,
    with :data:`ROOT_COLUMNS` after them."""
    return Delivery(
        id=int(row[0]), event_id=int(row[1]), event_name=row[2], channel=row[3],
        subscription=row[4], destination=row[5], status=DeliveryStatus(row[6]),
        attempts=int(row[7]), payload=json.loads(row[8]), created_at=float(row[9]),
        next_attempt_at=float(row[10]), last_error=row[11], receipt=row[12], key=row[13],
        kind=DeliveryKind(row[14]), thread_key=row[15],
        not_before=None if row[16] is None else float(row[16]), handle=row[17],
        origin_id=None if row[18] is None else int(row[18]),
        update=None if row[19] is None else json.loads(row[19]), broadcast=bool(row[20]),
        thread_role=row[21], note=row[22], claim=int(row[24]),
        event_ids=event_ids if event_ids is not None else (int(row[1]),),
        **(_root(row) if rooted else {}),
    )


def _root(row: Any) -> dict[str, Any]:
    """The thread root a claimed row carries (ROOT_COLUMNS)."""
    handle, subject, created_at = row[_ROOT_AT], row[_ROOT_AT + 1], row[_ROOT_AT + 2]
    root = None if handle is None else ThreadRoot(str(handle), subject, float(created_at))
    return {"root": root, "root_known": True}


def gathered(row: Any) -> bool:
    """Whether a :data:`DELIVERY_COLUMNS` row collects events (its ids are in delivery_events)."""
    return row[23] is not None


def insert_values(event_id: int, new: NewDelivery, key: str, now: float) -> tuple[Any, ...]:
    """The parameters of :data:`INSERT_DELIVERY` for one new delivery."""
    status = DeliveryStatus.DEAD if new.error else new.status
    not_before = new.not_before if new.not_before is not None and new.not_before > now else None
    return (event_id, new.channel, new.subscription, new.destination, str(status),
            json.dumps(new.payload), now, now, not_before or now, new.error, key, str(new.kind),
            new.gather, new.thread_key, not_before, new.origin_id,
            None if new.update is None else json.dumps(new.update), int(new.broadcast), new.note)
