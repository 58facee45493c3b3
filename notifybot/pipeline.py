"""The pipeline, top to bottom: a reader starts here.

1. ingest   :func:`notifybot.ingest.accept`    decode the body, check the export key
2. store    :meth:`Store.add_event`            committed before HireHop gets its 202
3. match    :meth:`SubscriptionIndex.match`    which channels hear about it
4. render   :meth:`Renderer.render`            Jinja2 → plain message → per-channel payload,
                                              with the people it mentions (:mod:`notifybot.mentions`)
   noise    :func:`notifybot.noise.apply`      silenced, folded, digested or held (docs/noise.md)
5. enqueue  :meth:`Store.route_many`           a message per (event, channel, subscription),
                                              with its thread (:mod:`notifybot.threads`)
6. deliver  :class:`notifybot.outbox.Outbox`   pacing, threads, retries, dead letters;
                                              a dead or stuck one told to the channel's fallback
                                              (:mod:`notifybot.hops`)

Steps 1–2 run in the request; 3–5 run in the router right after. The router
takes what this process has just stored from memory (the very rows committed),
and reads storage at start, when told of other writers' events, after a failure
and once a poll interval has passed since it last did, so an event whose
routing was interrupted is routed again at the next start. A
burst is routed in batches, one transaction each.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import noise
from .channels import Sender
from .config import ChannelConfig, Config, Person, load
from .errors import ConfigError, WebhookRejected
from .events import Event, event_name, parse_event
from .formatting import FORMATTERS
from .ingest import accept, decode, safe_headers
from .live_silences import LiveSilences
from .matching import Subscription
from .mentions import add_mentions, mentions_for
from .messages import Message
from .metrics import Metrics
from .money import MoneyFormat
from .rendering import Renderer, check_templates
from .silences import CompiledSilence
from .store import Delivery, NewDelivery, Store, StoredEvent
from .store.base import DeliveryKind
from .summaries import Rendered, gathered
from .threads import is_status_change, root_update, thread_key, thread_subject
from .waits import wait_set

log = logging.getLogger("notifybot.pipeline")
# Events stored here and waiting to be routed that are kept in memory, by count and
# by size; past either, the router reads them back from storage instead (a burst
# faster than routing, or bodies near max_body_bytes).
ARRIVED_MAX = 1000
ARRIVED_MAX_BYTES = 8 * 1024 * 1024
# Ids of events the router read from storage, remembered so that one also handed
# over in memory (another instance's NOTIFY can wake the router before the request
# that stored it hands it over) is not planned twice.
_READ_REMEMBERED = 10_000


@dataclass(frozen=True)
class Received:
    """The answer to one webhook: its event id, and whether it had been seen already."""

    event_id: int
    duplicate: bool


def renderer_for(config: Config) -> Renderer:
    return Renderer(labels=config.hirehop.labels, timezone=config.server.timezone,
                    base_url=config.hirehop.base_url, user_templates=config.server.templates,
                    money=MoneyFormat(config.hirehop.currency, config.hirehop.locale))


def prepare(path: str | Path) -> tuple[Config, Renderer, int]:
    """Load a configuration and compile every template: (config, renderer, templates checked).

    Raises ConfigError naming file and key (or template line). The renderer holds
    every template compiled, so later edits on disk change nothing until a reload.
    """
    config = load(path)
    renderer = renderer_for(config)
    chosen = sorted({s.template for s in config.index.all if s.template})
    return config, renderer, check_templates(renderer, chosen)


def plan(event: Event, subscriptions: Sequence[Subscription], renderer: Renderer,
         senders: Mapping[str, Sender],
         channels: Mapping[str, ChannelConfig] | None = None,
         people: Mapping[str, Person] | None = None) -> list[NewDelivery]:
    """Steps 3–4, pure: the deliveries an event makes. A broken template makes a dead one.

    A subscription's ``mention`` adds the people it names (``people``) to the payload.
    """
    planned: list[NewDelivery] = []
    seen: set[tuple[str, str]] = set()
    # Channels of one kind on one template say the same words: render and format once.
    formatted: dict[tuple[str | None, str], dict[str, Any]] = {}
    for sub in subscriptions:
        sender = senders[sub.channel]
        chan = channels.get(sub.channel) if channels else None
        thread = thread_key(event) if chan is not None and chan.thread == "job" else None
        try:
            shape = (sub.template, sender.kind)
            if shape not in formatted:
                formatted[shape] = dict(FORMATTERS[sender.kind](renderer.render(event, sub.template)))
            payload, error = dict(formatted[shape]), None
            if thread is not None:
                payload = _threaded(event, sender, payload)
            payload = _mentioned(event, sub, people, sender.kind, payload)
        except ConfigError as exc:
            payload, error = {}, f"template error: {exc}"
        gathers = sub.digest is not None or sub.group_wait is not None  # its own message
        fingerprint = (sub.channel, repr(payload) if error is None and not gathers else sub.id)
        if fingerprint in seen:
            continue  # two subscriptions of one channel would say the very same thing
        seen.add(fingerprint)
        broadcast = chan is not None and chan.broadcast == "status" and is_status_change(event)
        planned.append(NewDelivery(sub.channel, sub.id, sender.destination, sender.pace,
                                   payload, error, thread_key=thread, broadcast=broadcast))
    return planned


def _threaded(event: Event, sender: Sender, payload: dict[str, Any]) -> dict[str, Any]:
    """A threaded message: email keeps one subject per job, the change leading the body.

    (A chat's root is edited to the job's new look when a reply is sent:
    :meth:`Pipeline.root_view`, rendered then and only for replies.)
    """
    if sender.kind == "email":
        return {**payload, "subject": thread_subject(event)}
    return payload


def _mentioned(event: Event, sub: Subscription | None, people: Mapping[str, Person] | None,
               kind: str, payload: Mapping[str, Any]) -> dict[str, Any]:
    """``payload`` with the people ``sub`` mentions for ``event`` (none without ``mention``)."""
    if sub is None or not sub.mention:
        return dict(payload)
    return add_mentions(kind, payload, mentions_for(event, sub.mention, people or {}))


class Pipeline:
    """Holds the running configuration and drives steps 1–5."""

    def __init__(self, config: Config, store: Store, senders: Mapping[str, Sender], *,
                 renderer: Renderer | None = None, metrics: Metrics | None = None,
                 on_enqueued: Callable[[], None] = lambda: None,
                 clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.renderer = renderer or renderer_for(config)
        self.store = store
        self.senders = senders
        self.metrics = metrics or Metrics()
        self.on_enqueued = on_enqueued
        self.clock = clock
        self._wake = asyncio.Event()
        self._failed: set[int] = set()
        # Events this process stored and has not routed yet, handed over in memory,
        # and whether storage may hold unrouted events that are not among them.
        self._arrived: list[StoredEvent] = []
        self._arrived_bytes = 0
        self._read: OrderedDict[int, None] = OrderedDict()  # ids routed from storage
        self._look = True
        self._read_by = math.inf  # loop time by which storage is to be read again
        self.silences = LiveSilences(store)  # read from the database once per routing batch

    async def receive(self, body: bytes, content_type: str,
                      headers: Mapping[str, str]) -> Received:
        """Steps 1–2. Raises WebhookRejected; returns once the event is committed."""
        try:
            webhook = accept(body, content_type, self.config.hirehop.export_keys)
        except WebhookRejected as rejected:
            self.metrics.events.labels(event="", outcome=f"rejected_{rejected.status}").inc()
            raise
        name = event_name(webhook.payload)  # the rest is read when routing, off the hot path
        now, kept = self.clock(), safe_headers(headers)
        try:
            event_id, new = await self.store.add_event(
                name, webhook.body, webhook.digest, content_type, kept, now)
        except BaseException:
            # Given up on (a timeout) or failed: the write may still commit, and then
            # only storage knows of it. Read it now (it may have committed already);
            # a later commit is announced by the store (Store.listen).
            self.wake()
            raise
        if new:
            self._arrive(StoredEvent(event_id, now, name, webhook.body, content_type, kept))
            log.info("accepted %s", name, extra={"event_id": event_id, "event": name})
        self.metrics.events.labels(event=name, outcome="accepted" if new else "duplicate").inc()
        return Received(event_id, duplicate=not new)

    def _arrive(self, stored: StoredEvent) -> None:
        """Hand a committed event to the router, which then need not read it back.

        Not while the router is to read storage anyway (it will find the event
        there, in order), nor past what memory keeps.
        """
        size = len(stored.body)
        if (self._look or len(self._arrived) >= ARRIVED_MAX
                or self._arrived_bytes + size > ARRIVED_MAX_BYTES):
            self._look = True
        else:
            self._arrived.append(stored)
            self._arrived_bytes += size
        self._wake.set()

    async def route_pending(self, batch: int = 100, *, catch_up: bool = False) -> int:
        """Steps 3–5 for every stored event not yet routed; returns how many were routed.

        Events are planned one by one (pure) and enqueued a batch per transaction, so
        a burst costs a commit per batch, not per event. With ``catch_up`` (the
        router), it stops after a read that found less than a full batch: what is
        stored meanwhile is handed over in memory, and a busy router must not stay
        on the slower path of reading each event back.
        """
        routed = 0
        while True:
            events = [e for e in await self.store.unrouted_events(batch + len(self._failed))
                      if e.id not in self._failed][:batch]
            if not events:
                return routed
            self._remember_read(e.id for e in events)  # routed from here, not from memory
            self._keep_arrived([e for e in self._arrived if e.id not in self._read])
            routed += await self._route_batch(events)
            if catch_up and len(events) < batch:
                return routed

    async def route_arrived(self, batch: int = 100) -> int:
        """Steps 3–5 for the events this process stored since, as they were committed.

        Nothing is read back from storage; :meth:`route_pending` finds the rest.
        """
        routed = 0
        loop = asyncio.get_running_loop()
        # Storage first, once it is to be read: a router kept busy from memory
        # still reads it each poll interval.
        while self._arrived and not self._look and loop.time() < self._read_by:
            events = [e for e in self._arrived[:batch] if e.id not in self._read]
            self._keep_arrived(self._arrived[batch:])
            if events:
                routed += await self._route_batch(events)
        return routed

    def _keep_arrived(self, events: list[StoredEvent]) -> None:
        self._arrived, self._arrived_bytes = events, sum(len(e.body) for e in events)

    def _remember_read(self, ids: Iterable[int]) -> None:
        self._read.update(dict.fromkeys(ids))
        while len(self._read) > _READ_REMEMBERED:
            self._read.popitem(last=False)

    async def _route_batch(self, events: Sequence[StoredEvent]) -> int:
        """Plan each event (pure) and enqueue them all in one transaction."""
        now = self.clock()
        silences = await self.silences.current(now, self.config.hirehop.labels)
        planned = [(stored.id, deliveries) for stored in events
                   if (deliveries := self._plan(stored, now, silences)) is not None]
        # A storage error propagates: the events stay unrouted and the next poll retries.
        if planned:
            await self.store.route_many(planned, now)
            self._count(d for _, deliveries in planned for d in deliveries)
        if any(deliveries for _, deliveries in planned):
            self.on_enqueued()
        return len(planned)

    async def payload_for(self, delivery: Delivery) -> Mapping[str, Any]:
        """Render a delivery's message at send time, from its stored events (Outbox.rerender).

        An event's message replayed after its template was fixed is rendered anew.
        """
        if delivery.kind in (DeliveryKind.FOLDED, DeliveryKind.DIGEST):
            return await self._gathered_payload(delivery)
        if delivery.kind is not DeliveryKind.MESSAGE:
            raise ConfigError(f"cannot render a {delivery.kind} delivery here")
        stored = await self.store.get_event(delivery.event_id)
        if stored is None:
            raise ConfigError(f"event {delivery.event_id} is not in the database")
        event = parse_event(decode(stored.body, stored.content_type))
        sub = self._subscription(delivery.channel, delivery.subscription)
        sender = self.senders[delivery.channel]
        message = self.renderer.render(event, sub.template if sub else None)
        payload = dict(FORMATTERS[sender.kind](message))
        if delivery.thread_key is not None:
            payload = _threaded(event, sender, payload)
        return _mentioned(event, sub, self.config.people, sender.kind, payload)

    async def root_view(self, delivery: Delivery) -> Mapping[str, Any] | None:
        """What the thread's root shows once ``delivery`` is sent as a reply: the job now.

        Rendered from the delivery's latest event, when it is sent (only replies need
        it, so a burst of new jobs pays nothing). None when that event does not say
        what the job is now (an invoice, a contact): the root stays as it was.
        """
        stored = await self.store.get_events(delivery.event_ids or (delivery.event_id,))
        if not stored:
            return None
        event = parse_event(decode(stored[-1].body, stored[-1].content_type))
        sub = self._subscription(delivery.channel, delivery.subscription)
        latest = self.renderer.render(event, sub.template if sub else None)
        return root_update(event, self.renderer, self.senders[delivery.channel].kind, latest)

    async def payload_as(self, delivery: Delivery, kind: str) -> dict[str, Any]:
        """A delivery's message formatted for another channel kind, with its mentions.

        For the fallback hop (:mod:`notifybot.hops`): the message a dead or stuck
        delivery carries, rendered anew from its events for the fallback's kind.
        Several events (a fold, a digest) are listed one summary a line.
        """
        stored = await self.store.get_events(delivery.event_ids or (delivery.event_id,))
        if not stored:
            raise ConfigError(f"event {delivery.event_id} is not in the database")
        sub = self._subscription(delivery.channel, delivery.subscription)
        events = [parse_event(decode(e.body, e.content_type)) for e in stored]
        messages = [self.renderer.render(event, sub.template if sub else None) for event in events]
        message = messages[0] if len(messages) == 1 else Message(
            summary=f"{len(messages)} notifications", notes=tuple(m.summary for m in messages))
        payload = dict(FORMATTERS[kind](message))
        return _mentioned(events[0], sub, self.config.people, kind, payload)

    def _subscription(self, channel: str, sub_id: str) -> Subscription | None:
        return next((s for s in self.config.index.all if s.channel == channel and s.id == sub_id),
                    None)

    async def _gathered_payload(self, delivery: Delivery) -> Mapping[str, Any]:
        """A fold or digest: every event it gathered, rendered once into one message."""
        stored = await self.store.get_events(delivery.event_ids)
        if not stored:
            raise ConfigError(f"the events of delivery {delivery.id} are not in the database")
        sub = next((s for s in self.config.index.all
                    if s.channel == delivery.channel and s.id == delivery.subscription), None)
        template = sub.template if sub is not None else None
        events = [parse_event(decode(e.body, e.content_type)) for e in stored]
        items = [Rendered(event, self.renderer.render(event, template)) for event in events]
        gather = delivery.key.rpartition("#")[0] or delivery.key
        message = gathered(gather, items, sub.digest if sub is not None else None,
                           self.config.server.timezone)
        sender = self.senders[delivery.channel]
        payload = dict(FORMATTERS[sender.kind](message))
        if delivery.thread_key is not None:  # a fold stays in its job's thread
            payload = _threaded(events[-1], sender, payload)
        return payload

    def _count(self, deliveries: Iterable[NewDelivery]) -> None:
        for new in deliveries:
            treatment = noise.treatment_of(new)
            if treatment is not noise.Treatment.NOW:
                self.metrics.noise.labels(channel=new.channel, treatment=str(treatment)).inc()

    def wake(self) -> None:
        """Route now, from storage: another process (or task) stored an event."""
        self._look = True
        self._wake.set()

    def reconfigure(self, config: Config, renderer: Renderer) -> None:
        """Use a new configuration from the next event on; enqueued deliveries keep theirs."""
        self.config, self.renderer = config, renderer
        self._failed.clear()  # a fixed configuration may route what failed before
        self.wake()

    async def route(self, stored: StoredEvent) -> int:
        """Steps 3–5 for one stored event; returns 1 if it was routed now."""
        now = self.clock()
        deliveries = self._plan(stored, now,
                                await self.silences.current(now, self.config.hirehop.labels))
        if deliveries is None:
            return 0
        await self.store.route(stored.id, deliveries, now)
        self._count(deliveries)
        if deliveries:
            self.on_enqueued()
        return 1

    def _plan(self, stored: StoredEvent, now: float,
              silences: Sequence[CompiledSilence]) -> list[NewDelivery] | None:
        """The deliveries of one stored event, or None if it cannot be routed (logged).

        Noise control (:func:`notifybot.noise.apply`) silences, gathers or holds them.
        """
        try:
            event = parse_event(decode(stored.body, stored.content_type))
            planned = plan(event, self.config.index.match(event), self.renderer, self.senders,
                           self.config.channels, self.config.people)
            return noise.apply(planned, event, self.config, now=now,
                               received_at=stored.received_at, silences=silences)
        except Exception:
            # A bug met on this event's content: kept unrouted in storage, and tried
            # again after a reload or a restart rather than at every poll.
            self._failed.add(stored.id)
            log.exception("could not route event", extra={"event_id": stored.id})
            return None

    async def run_router(self, poll_interval: float) -> None:
        """Route new events as they arrive; polling catches other instances' events.

        Storage is read at start, after :meth:`wake`, after a failure, and once a
        poll interval has passed since it was last read (busy or not); in between,
        what this process stored is routed from memory.
        """
        loop = asyncio.get_running_loop()
        self._look = True  # a restarted router may have dropped what it was routing
        while True:
            self._wake.clear()
            try:
                if self._look or loop.time() >= self._read_by:
                    self._look, self._read_by = False, loop.time() + poll_interval
                    await self.route_pending(catch_up=True)
                await self.route_arrived()
            except Exception:
                self._look = True  # what was being routed is still unrouted in storage
                log.exception("could not route events; trying again in %gs", poll_interval)
                # Not at the next wake-up: while storage fails, each webhook wakes the
                # router, and each would cost a failed attempt and a traceback.
                await asyncio.sleep(poll_interval)
                continue
            if self._arrived:
                continue  # route_arrived stopped for the read of storage that is due
            if not await wait_set(self._wake, poll_interval):
                self._look = True
