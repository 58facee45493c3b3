"""The storage contract: events as received, and the outbox of deliveries.

Two implementations pass the same contract tests: :mod:`.sqlite` (the embedded
default) and :mod:`.postgres` (several instances sharing one outbox).

A delivery is a message to a destination (design §7): a typed payload, the
event ids it speaks for (one or many), a thread key, ``not_before``, and a UNIQUE
idempotency key, so routing an event twice, a replay, two instances or a crash
never double a message recorded as sent.

Delivery states (see docs/architecture.md for the diagram)::

    silenced ──replay──┐
                       ▼
    pending ──claim──▶ sending ──▶ sent
       ▲                  │ ├────▶ pending (retry at T)
       └── lease expired ─┘ └────▶ dead ──replay──▶ pending

Pacing lives here too: each destination row holds ``next_allowed_at``; a claim
takes at most the head delivery of a paced destination, in id order, and only
when nothing else of that destination is being sent.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal, Protocol

from ..silences import Silence


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    DEAD = "dead"
    SILENCED = "silenced"  # muted by a silence: recorded, never sent unless replayed


class DeliveryKind(StrEnum):
    """What a delivery speaks for."""

    MESSAGE = "message"  # one event's message
    FOLDED = "folded"  # a burst of one thread's events, folded by group_wait
    DIGEST = "digest"  # one summary per window
    FALLBACK = "fallback"  # a dead delivery's message, to the channel's fallback
    ESCALATION = "escalation"  # a delivery waiting too long, told to the fallback


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
    """A message to a destination, to enqueue (design §7).

    ``payload`` is the channel kind's payload, rendered already; empty means
    "render when sending" (folds and digests, rendered once from all their events).
    ``error`` set means it is born dead (a broken template).

    ``key`` is the idempotency key, UNIQUE: routing computes ``e{event}:{channel}:
    {subscription}`` when it is None. ``gather`` instead names a delivery that
    collects events (``fold:…``, ``digest:…``): the events join the open one with
    that gather key (pending and never attempted) or start it.
    """

    channel: str
    subscription: str
    destination: str
    pace: float
    payload: Mapping[str, Any]
    error: str | None = None
    key: str | None = None
    event_ids: tuple[int, ...] = ()
    thread_key: str | None = None
    not_before: float | None = None  # held until then (active hours, group_wait, digest window)
    # A fixed look for the thread's root once sent; routing leaves it empty and the
    # outbox renders the root's look when a reply goes (Outbox.root_view).
    update: Mapping[str, Any] | None = None
    broadcast: bool = False
    kind: DeliveryKind = DeliveryKind.MESSAGE
    origin_id: int | None = None  # the delivery a fallback or escalation speaks for
    status: DeliveryStatus = DeliveryStatus.PENDING  # or SILENCED
    gather: str | None = None
    note: str | None = None  # why it is held or silenced, for people


@dataclass(frozen=True)
class Delivery:
    id: int
    event_id: int  # the first event it speaks for
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
    key: str = ""
    kind: DeliveryKind = DeliveryKind.MESSAGE
    event_ids: tuple[int, ...] = ()
    thread_key: str | None = None
    not_before: float | None = None
    handle: str | None = None  # the channel's id of the sent message (Slack ts, ...)
    origin_id: int | None = None
    update: Mapping[str, Any] | None = field(default=None, repr=False)
    broadcast: bool = False
    thread_role: str | None = None  # "root" or "reply", once sent in a thread
    note: str | None = None
    claim: int = 0  # how many times it was claimed: the fence of this attempt's outcome
    # The thread's root as the claim found it (``root_known``), so that sending needs no
    # second read. It cannot change before the send: the claim hands out one message of
    # a thread at a time.
    root: ThreadRoot | None = field(default=None, repr=False)
    root_known: bool = False


@dataclass(frozen=True)
class Outcome:
    """What one attempt came to, recorded in a group with others (one commit).

    Fenced by ``attempt``, the delivery's claim number (``Delivery.claim``, which
    only ever grows): a late outcome of an attempt whose lease expired and whose
    delivery was claimed again changes nothing. ``attempt=None`` skips the fence
    (commands and tests). Not ``attempts``: that count is given back (a 429, a
    release) and reset (a replay), so it could repeat. ``pace_key`` is the destination when it is
    paced: its pace then counts from now, the end of the send.
    """

    delivery_id: int
    status: DeliveryStatus  # SENT, PENDING (retry at ``retry_at``) or DEAD
    attempt: int | None = None
    receipt: str | None = None
    handle: str | None = None
    error: str | None = None
    retry_at: float | None = None
    count_attempt: bool = True  # False gives the attempt back (being asked to wait)
    pace_key: str | None = None
    blocked_until: float | None = None  # parks the whole destination (429)
    destination: str | None = None
    thread: ThreadMark | None = None


@dataclass(frozen=True)
class ThreadMark:
    """A message sent in a thread: as its new root (``handle`` kept), or as a reply.

    ``subject`` is the root's title where the channel has one (email), so that every
    reply carries the same subject and mail clients keep one conversation.
    """

    destination: str
    key: str
    handle: str
    root: bool
    subject: str | None = None


@dataclass(frozen=True)
class ThreadRoot:
    """A thread's root as stored: what replies reply to, its subject if any, and its age."""

    handle: str
    subject: str | None = None
    created_at: float = field(default=0.0, compare=False)


class Store(Protocol):
    """What the pipeline and the commands need from storage. Times are epoch seconds."""

    async def migrate(self) -> str:
        """Create or upgrade the schema; safe from several processes at once. Says what it did."""
        ...

    async def close(self) -> None: ...

    async def probe(self) -> None:
        """Raise unless the database takes a write now (health checks)."""

    async def add_event(self, name: str, body: bytes, digest: str, content_type: str,
                        headers: Mapping[str, str], now: float) -> tuple[int, bool]:
        """Store an accepted webhook once per digest: (event id, whether it is new).

        Cancelling the caller does not cancel the write: it goes on and may still
        commit (a webhook answered 503 on a timeout, then resent, is a duplicate).
        """
        ...

    async def get_event(self, event_id: int) -> StoredEvent | None: ...

    async def get_events(self, event_ids: Sequence[int]) -> list[StoredEvent]:
        """The events with these ids that exist, in id order."""
        ...

    async def unrouted_events(self, limit: int) -> list[StoredEvent]:
        """Events not yet matched and enqueued (e.g. after a crash), oldest first."""
        ...

    async def route(self, event_id: int, deliveries: Sequence[NewDelivery], now: float) -> int:
        """Enqueue one event's deliveries and mark it routed, in one transaction; returns how many new."""
        ...

    async def route_many(self, batch: Sequence[tuple[int, Sequence[NewDelivery]]],
                         now: float) -> int:
        """:meth:`route` for many events in one transaction (one commit for a burst).

        Only the first routing of an event enqueues: an event already routed (by
        another instance) is skipped whole.
        """
        ...

    async def enqueue(self, deliveries: Sequence[NewDelivery], now: float) -> int:
        """Deliveries made after routing (fallback, escalation); a key seen before is ignored."""
        ...

    async def claim(self, now: float, lease: float, limit: int) -> list[Delivery]:
        """Return expired leases to pending, then move due deliveries to ``sending``.

        Paced destinations yield their head only; a thread's next message waits
        until the one before it is finished (sent, dead), so replies find their root.
        """
        ...

    async def thread_root(self, destination: str, key: str, since: float) -> ThreadRoot | None:
        """The root of a thread started at or after ``since``, if there is one."""
        ...

    async def forget_thread(self, destination: str, key: str, handle: str) -> None:
        """The root ``handle`` is gone (deleted): the next message starts a new root."""

    async def record(self, outcomes: Sequence[Outcome], now: float) -> None:
        """Record many attempts' outcomes in one transaction (group commit)."""

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
                              limit: int = 50, event_id: int | None = None,
                              channel: str | None = None,
                              since: float | None = None) -> list[Delivery]:
        """Newest first. ``"failed"``: pending deliveries whose last attempt failed."""
        ...

    async def get_delivery(self, delivery_id: int) -> Delivery | None: ...

    async def replay(self, *, delivery_id: int | None = None, dead: bool = False,
                     event_id: int | None = None, now: float) -> int:
        """Put dead, silenced or pending deliveries back to pending with a fresh attempt count.

        Never one recorded as sent. Returns how many.
        """
        ...

    async def counts(self) -> dict[DeliveryStatus, int]:
        """How many deliveries are in each state."""
        ...

    async def listen(self, wake: Callable[[str], None]) -> None:
        """Call ``wake("events")`` or ``wake("deliveries")`` when another process adds work,
        and ``wake("events")`` when an event whose caller gave up (see :meth:`add_event`)
        commits after all: nobody in this process was told of it.

        Only a wake-up: notifications may be lost, so the workers poll as well.
        """

    async def last_event_at(self, exclude: str = "") -> float | None:
        """When the newest event (not named ``exclude``) was received, if any."""
        ...

    async def oldest_pending(self) -> float | None:
        """``created_at`` of the oldest pending delivery, if any."""
        ...

    async def add_silence(self, silence: Silence) -> int:
        """Store a new silence (its ``id`` is ignored); returns the id it was given."""
        ...

    async def list_silences(self, now: float, *, expired: bool = False) -> list[Silence]:
        """Silences not expired at ``now`` (every one with ``expired``), oldest first."""
        ...

    async def expire_silence(self, silence_id: int, now: float) -> bool:
        """End a silence at ``now``; False if there is no such silence or it has ended."""
        ...

    async def waiting_since(self, channel: str, before: float, limit: int) -> list[Delivery]:
        """Pending deliveries of ``channel`` created before ``before`` (escalation), oldest first.

        Those with an ``escalation:{id}`` delivery already are left out.
        """
        ...

    async def dead_without_fallback(self, channel: str, since: float,
                                    limit: int) -> list[Delivery]:
        """Deliveries of ``channel`` that died (were attempted) since ``since`` and have no
        ``fallback:{id}`` delivery: the fallback a crash or a storage error kept from being
        made. Oldest first.
        """
        ...
