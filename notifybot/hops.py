"""Someone always hears: the fallback hop at run time, and channel health.

Every delivery outcome comes here from the outbox (``on_outcome``):

* it feeds :class:`~notifybot.channel_health.ChannelHealth` (``/healthz``, the
  ``notifybot_channel_up`` gauge, one log line per change);
* a delivery that just died on a channel with ``fallback`` makes one delivery to
  the fallback channel (kind ``fallback``, key ``fallback:{id}``): the same
  message rendered for the fallback's kind, headed "could not reach Slack #ops:
  invalid_auth". The original stays dead and replayable.

A background check (:meth:`Hops.run`) finds deliveries pending longer than their
channel's ``escalate_after`` and makes one ``escalation:{id}`` delivery for each,
headed "this message has been waiting 15 minutes…"; the original keeps trying.

One hop only: a fallback or escalation never makes another, whatever happens to
it. The keys are UNIQUE in storage, so two instances, a crash or a replay never
make a second one.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from .channel_health import ChannelHealth
from .channels import Sender
from .config import ChannelConfig, Config
from .durations import format_duration
from .errors import ConfigError, DeliveryError
from .fallback import HOP_KINDS, failure_notice, hop, waiting_notice, with_notice
from .formatting import FORMATTERS
from .messages import Message
from .store import Delivery, DeliveryStatus, NewDelivery, Store
from .store.base import DeliveryKind

log = logging.getLogger("notifybot.hops")
RenderAs = Callable[[Delivery, str], Awaitable[Mapping[str, Any]]]
BATCH = 100  # escalations looked for per channel and query
RECOVERY_WINDOW = 3600.0  # seconds: a fallback missed (crash, storage error) is made this late
MIN_INTERVAL, MAX_INTERVAL = 1.0, 30.0  # how often the escalation check runs, in seconds


class Hops:
    """Channel health and the fallback hop, for the running configuration.

    ``config`` is read at each use, so a reload takes effect at once; ``render``
    formats a delivery's message for another channel kind (``Pipeline.payload_as``);
    ``on_enqueued`` wakes the outbox when a hop was made.
    """

    def __init__(self, store: Store, config: Callable[[], Config], senders: Mapping[str, Sender],
                 render: RenderAs, health: ChannelHealth, *,
                 clock: Callable[[], float] = time.time,
                 on_enqueued: Callable[[], None] = lambda: None) -> None:
        self.store = store
        self.config = config
        self.senders = senders
        self.render = render
        self.health = health
        self.clock = clock
        self.on_enqueued = on_enqueued

    def report(self) -> dict[str, Any]:
        """For ``/healthz``: ``{"status": "ok"|"degraded", "failing": {...}}``."""
        self.health.follow(self.config().channels)
        return self.health.snapshot()

    def failing(self) -> dict[str, Any]:
        """The failing channels, ``{channel: {"since", "reason"}}``: the ``/healthz`` check
        that makes the status ``degraded`` (listed under ``failing``)."""
        failing: dict[str, Any] = self.report()["failing"]
        return failing

    async def on_outcome(self, delivery: Delivery, error: DeliveryError | None,
                         now: float) -> None:
        """The outbox's callback: health always; a fallback when ``delivery`` just died."""
        config = self.config()
        self.health.follow(config.channels)
        self.health.observe(delivery.channel, error, now)
        if error is None or delivery.kind in HOP_KINDS:
            return
        chan = config.channels.get(delivery.channel)
        if chan is None or chan.fallback is None:
            return
        # The outcome is recorded already; storage says whether it was the last attempt
        # (and a late outcome of an attempt that lost its lease changed nothing).
        current = await self.store.get_delivery(delivery.id)
        if current is None or current.status is not DeliveryStatus.DEAD:
            return
        await self._fall_back(chan, [current], now)

    async def recover(self) -> int:
        """Fallbacks for deliveries that died in the last hour without one; how many made.

        The fallback is made right after the death is recorded; a crash or a storage
        error in between would lose it, so the periodic check looks again.
        """
        config, now, made = self.config(), self.clock(), 0
        for chan in config.channels.values():
            if chan.fallback is not None:
                dead = await self.store.dead_without_fallback(chan.name, now - RECOVERY_WINDOW,
                                                              BATCH)
                made += await self._fall_back(chan, dead, now)
        return made

    async def _fall_back(self, chan: ChannelConfig, dead: list[Delivery], now: float) -> int:
        hops = []
        for delivery in dead:
            reason = delivery.last_error or "unknown error"
            made = await self._hop(delivery, DeliveryKind.FALLBACK, chan,
                                   failure_notice(chan, reason))
            if made is not None:
                hops.append(made)
        added = await self._enqueue(hops, now)
        if added:
            one = {"delivery_id": dead[0].id} if len(dead) == 1 else {}
            log.warning("%d dead delivery(ies) on %s sent to fallback %s", added, chan.name,
                        chan.fallback, extra={"channel": chan.name, **one})
        return added

    async def escalate(self) -> int:
        """One escalation for each delivery waiting past its channel's ``escalate_after``.

        Returns how many were made. Measured from when the delivery could first be
        sent (created, or held by active hours until ``not_before``).
        """
        config = self.config()
        made = 0
        for chan in config.channels.values():
            if chan.escalate_after is None or chan.fallback is None:
                continue
            while True:
                added, seen = await self._escalate(chan)
                made += added
                if seen < BATCH or not added:
                    break
        return made

    async def _escalate(self, chan: ChannelConfig) -> tuple[int, int]:
        """One batch of ``chan``'s waiting deliveries: (escalations made, deliveries seen)."""
        assert chan.escalate_after is not None
        now = self.clock()
        waiting = await self.store.waiting_since(chan.name, now - chan.escalate_after, BATCH)
        hops = []
        for delivery in waiting:
            waited = now - max(delivery.created_at, delivery.not_before or 0.0)
            made = await self._hop(delivery, DeliveryKind.ESCALATION, chan,
                                   waiting_notice(chan, waited, delivery.last_error))
            if made is not None:
                hops.append(made)
        added = await self._enqueue(hops, now)
        if added:
            log.warning("%d delivery(ies) waiting on %s longer than %s: escalated to %s", added,
                        chan.name, format_duration(chan.escalate_after), chan.fallback,
                        extra={"channel": chan.name})
        return added, len(waiting)

    async def run(self) -> None:
        """Check for deliveries to escalate, now and then, until cancelled.

        Every tenth of the shortest ``escalate_after`` (1 s to 30 s); a storage
        error is logged and the check carries on.
        """
        while True:
            try:
                await self.escalate()
                await self.recover()
            except Exception:
                log.exception("could not check for deliveries to escalate; trying again shortly")
            await asyncio.sleep(self.interval())

    def interval(self) -> float:
        waits = [c.escalate_after for c in self.config().channels.values()
                 if c.escalate_after is not None and c.fallback is not None]
        return min(MAX_INTERVAL, max(MIN_INTERVAL, min(waits) / 10)) if waits else MAX_INTERVAL

    async def _hop(self, origin: Delivery, kind: DeliveryKind, chan: ChannelConfig,
                   notice: str) -> NewDelivery | None:
        assert chan.fallback is not None
        sender = self.senders.get(chan.fallback)
        if sender is None:  # the configuration checked it exists; a reload may be under way
            log.error("fallback channel %s has no sender", chan.fallback,
                      extra={"channel": chan.name, "delivery_id": origin.id})
            return None
        try:
            payload = await self.render(origin, sender.kind)
        except ConfigError as exc:
            # The message cannot be rendered again (a template broken since, an event
            # gone): the fallback still says what could not be delivered.
            log.warning("fallback without the message: %s", exc,
                        extra={"channel": chan.name, "delivery_id": origin.id})
            payload = FORMATTERS[sender.kind](Message(
                summary=f"{origin.event_name} (event {origin.event_id}, delivery {origin.id})"))
        return hop(origin, kind, chan.fallback, sender, with_notice(sender.kind, payload, notice))

    async def _enqueue(self, hops: list[NewDelivery], now: float) -> int:
        added = await self.store.enqueue(hops, now) if hops else 0
        if added:
            self.on_enqueued()
        return added
