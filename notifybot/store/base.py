"""The storage contract: events as received, and the outbox of deliveries.

Two implementations pass the same contract tests: :mod:`.sqlite` (the embedded
default) and :mod:`.postgres` (several instances sharing one outbox).

Delivery states (see docs/architecture.md for the diagram)::

    pending ──claim──▶ sending ──▶ sent
       ▲                  │ ├────▶ pending (retry at T)
       └── lease expired ─┘ └────▶ dead ──replay──▶ pending

One delivery per (event, channel, subscription): a UNIQUE key, so routing an
event twice, or a replay, never doubles a message recorded as sent.

Pacing lives here too: each destination row holds ``next_allowed_at``; a claim
takes at most the head delivery of a paced destination, in id order, and only
when nothing else of that destination is being sent.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal, Protocol


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    DEAD = "dead"


@dataclass(frozen=True)
class StoredEvent:
    """An accepted webhook as stored: the body (export key redacted) and its headers."""

    id: int
    received_at: float
    name: str
    body: bytes = field(repr=False)
    content_type: str
    headers: Mapping[str, str] = field(repr=False)


@dataclass(frozen=True)
class NewDelivery:
    """A delivery to enqueue: rendered already; ``error`` set means it is born dead."""

    channel: str
    subscription: str
    destination: str
    pace: float
    payload: Mapping[str, Any]
    error: str | None = None


@dataclass(frozen=True)
class Delivery:
    id: int
    event_id: int
    event_name: str
    channel: str
    subscription: str
    destination: str
    status: DeliveryStatus
    attempts: int
    payload: Mapping[str, Any] = field(repr=False)
    created_at: float
    next_attempt_at: float
    last_error: str | None = None
    receipt: str | None = None


class Store(Protocol):
    """What the pipeline and the commands need from storage. Times are epoch seconds."""

    async def migrate(self) -> None:
        """Create or upgrade the schema; safe to run from several processes at once."""

    async def close(self) -> None: ...

    async def add_event(self, name: str, body: bytes, digest: str, content_type: str,
                        headers: Mapping[str, str], now: float) -> tuple[int, bool]:
        """Store an accepted webhook once per digest: (event id, whether it is new)."""
        ...

    async def get_event(self, event_id: int) -> StoredEvent | None: ...

    async def unrouted_events(self, limit: int) -> list[StoredEvent]:
        """Events not yet matched and enqueued (e.g. after a crash), oldest first."""
        ...

    async def route(self, event_id: int, deliveries: Sequence[NewDelivery], now: float) -> int:
        """Enqueue deliveries and mark the event routed, in one transaction; returns how many new."""
        ...

    async def claim(self, now: float, lease: float, limit: int) -> list[Delivery]:
        """Return expired leases to pending, then move due deliveries to ``sending``."""
        ...

    async def mark_sent(self, delivery_id: int, receipt: str, now: float,
                        attempt: int | None = None) -> None:
        """Record the delivery as sent. With ``attempt``, only if that attempt still holds it."""

    async def retry_later(self, delivery_id: int, at: float, error: str, now: float,
                          blocked_until: float | None = None, attempt: int | None = None,
                          count_attempt: bool = True) -> None:
        """Back to pending until ``at``; ``blocked_until`` parks the whole destination (429).

        ``count_attempt=False`` gives the attempt back: being asked to wait is no failure.
        """

    async def mark_dead(self, delivery_id: int, error: str, now: float,
                        attempt: int | None = None) -> None: ...

    async def release(self, delivery_ids: Sequence[int], now: float) -> None:
        """Return claimed deliveries to pending without counting the attempt (shutdown)."""

    async def list_deliveries(self, status: DeliveryStatus | Literal["failed"] | None = None,
                              limit: int = 50, event_id: int | None = None) -> list[Delivery]:
        """Newest first. ``"failed"``: pending deliveries whose last attempt failed."""
        ...

    async def replay(self, *, delivery_id: int | None = None, dead: bool = False,
                     event_id: int | None = None, now: float) -> int:
        """Put deliveries back to pending with a fresh attempt count; returns how many."""
        ...

    async def counts(self) -> dict[DeliveryStatus, int]:
        """How many deliveries are in each state."""
        ...

    async def listen(self, wake: Callable[[str], None]) -> None:
        """Call ``wake("events")`` or ``wake("deliveries")`` when another process adds work.

        Only a wake-up: notifications may be lost, so the workers poll as well.
        """

    async def last_event_at(self, exclude: str = "") -> float | None:
        """When the newest event (not named ``exclude``) was received, if any."""
        ...

    async def oldest_pending(self) -> float | None:
        """``created_at`` of the oldest pending delivery, if any."""
        ...
