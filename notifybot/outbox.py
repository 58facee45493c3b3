"""The delivery worker: claim due deliveries, make one attempt each, record what happened.

The outbox owns retrying. A sender makes one attempt; the outcome goes back to
storage at once (sent, pending until T, or dead), so a crash at any point loses
nothing: a delivery left in ``sending`` returns to ``pending`` when its lease ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from .channels import Sender
from .config import DeliveryConfig
from .errors import ConfigError, DeliveryError, PermanentDeliveryError, RateLimited, TemporaryDeliveryError
from .metrics import Metrics
from .retry import RetryPolicy
from .store import Delivery, Store

log = logging.getLogger("notifybot.outbox")
_NUMBERS = re.compile(r"\d+")


def reason_label(reason: str) -> str:
    """A reason as a metric label: numbers folded ("retry after N"), so series stay few."""
    return _NUMBERS.sub("N", reason)[:100]
Rerender = Callable[[Delivery], Awaitable[Mapping[str, Any]]]


class Outbox:
    """Runs beside the HTTP server; ``wake()`` says new work was enqueued."""

    def __init__(self, store: Store, senders: Mapping[str, Sender], settings: DeliveryConfig,
                 *, metrics: Metrics | None = None, clock: Callable[[], float] = time.time,
                 rerender: Rerender | None = None) -> None:
        self.store = store
        self.senders = senders
        self.settings = settings
        self.policy = RetryPolicy(settings)
        self.metrics = metrics or Metrics()
        self.rerender = rerender
        self.clock = clock
        self._wake = asyncio.Event()
        self._in_flight: dict[int, asyncio.Task[None]] = {}
        self._account_next: dict[str, float] = {}
        self._stopping = False
        self._loop_done = asyncio.Event()
        self._loop_done.set()  # not running yet

    def wake(self) -> None:
        self._wake.set()

    def reconfigure(self, settings: DeliveryConfig) -> None:
        """New retry settings from the next attempt on."""
        self.settings, self.policy = settings, RetryPolicy(settings)

    async def run(self) -> None:
        """Claim and deliver until :meth:`stop`; polls as a safety net between wake-ups.

        A storage error (a locked database, a PostgreSQL restart) is logged and the
        loop carries on after a pause: the outbox never stops while the server runs.
        """
        self._loop_done.clear()
        try:
            while not self._stopping:
                self._wake.clear()  # before claiming: a wake-up during the claim is kept
                try:
                    claimed = await self._claim()
                except Exception:
                    log.exception("could not claim deliveries; trying again shortly")
                    claimed = []
                if not claimed:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), self.settings.poll_interval)
        finally:
            self._loop_done.set()

    async def _claim(self) -> list[Delivery]:
        room = self.settings.concurrency - len(self._in_flight)
        if room <= 0:
            return []
        claimed = await self.store.claim(self.clock(), self.settings.lease, room)
        for delivery in claimed:
            task = asyncio.create_task(self.deliver(delivery))
            self._in_flight[delivery.id] = task
            task.add_done_callback(self._done)
        return claimed

    def _done(self, task: asyncio.Task[None]) -> None:
        for delivery_id, running in list(self._in_flight.items()):
            if running is task:
                del self._in_flight[delivery_id]
        if not task.cancelled() and task.exception() is not None:
            # The outcome could not be recorded (storage down): the lease brings it back.
            log.error("could not record a delivery's outcome", exc_info=task.exception())
        self._wake.set()  # room for more, and a paced destination may be free soon

    async def stop(self, grace: float = 10.0) -> None:
        """Stop claiming; let sends in flight finish for ``grace`` seconds, release the rest."""
        self._stopping = True
        self._wake.set()
        await self._loop_done.wait()  # no claim can start sends after the snapshot below
        tasks = list(self._in_flight.values())
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=grace)
            unfinished = [i for i, t in self._in_flight.items() if t in pending]
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            await self.store.release(unfinished, self.clock())

    async def deliver(self, delivery: Delivery) -> None:
        """One attempt for one delivery, and its outcome recorded."""
        sender = self.senders.get(delivery.channel)
        fields = {"event_id": delivery.event_id, "event": delivery.event_name,
                  "channel": delivery.channel, "delivery_id": delivery.id,
                  "attempt": delivery.attempts}
        try:
            if sender is None:
                raise PermanentDeliveryError(f"channel {delivery.channel!r} is not configured")
            payload = delivery.payload or await self._rendered_again(delivery)
            await self._account_turn(sender)
            receipt = await sender.send(payload)
        except DeliveryError as error:
            await self._failed(delivery, error, fields)
            return
        except Exception as exc:  # a bug in a sender must not kill the worker
            log.exception("unexpected error from channel %s", delivery.channel, extra=fields)
            await self._failed(delivery, TemporaryDeliveryError(type(exc).__name__), fields)
            return
        now = self.clock()
        await self.store.mark_sent(delivery.id, receipt.detail, now, attempt=delivery.attempts)
        self.metrics.deliveries.labels(channel=delivery.channel, outcome="sent", reason="").inc()
        self.metrics.latency.labels(channel=delivery.channel).observe(max(0.0, now - delivery.created_at))
        log.info("delivered to %s", delivery.channel, extra={**fields, "reason": "sent"})

    async def _rendered_again(self, delivery: Delivery) -> Mapping[str, Any]:
        """The message of a delivery born dead (its template was broken), replayed since.

        Rendered now with the running configuration, so that fixing the template and
        replaying is enough.
        """
        if self.rerender is None:
            raise PermanentDeliveryError("no message was rendered for this delivery")
        try:
            return await self.rerender(delivery)
        except ConfigError as exc:
            raise PermanentDeliveryError(f"template error: {exc}") from None

    async def _account_turn(self, sender: Sender) -> None:
        """Wait for this sender's account (e.g. one Telegram bot across chats), if it has one.

        Per-destination pacing lives in storage; this account-wide limit is kept per
        process, as it only matters when one bot feeds many chats at once.
        """
        account = getattr(sender, "account", None)
        interval = float(getattr(sender, "account_pace", 0.0))
        if account is None or interval <= 0:
            return
        loop = asyncio.get_running_loop()
        now = loop.time()
        turn = max(now, self._account_next.get(account, now))
        self._account_next[account] = turn + interval
        if turn > now:
            await asyncio.sleep(turn - now)

    async def _failed(self, delivery: Delivery, error: DeliveryError,
                      fields: dict[str, object]) -> None:
        now = self.clock()
        decision = self.policy.decide(error, attempts=delivery.attempts,
                                      created_at=delivery.created_at, now=now)
        outcome = "dead" if decision.retry_at is None else "retry"
        self.metrics.deliveries.labels(channel=delivery.channel, outcome=outcome,
                                       reason=reason_label(error.reason)).inc()
        if isinstance(error, RateLimited):
            self.metrics.rate_limited.labels(channel=delivery.channel).inc()
        if decision.retry_at is None:
            await self.store.mark_dead(delivery.id, decision.reason, now, attempt=delivery.attempts)
            log.warning("delivery dead: %s", decision.reason,
                        extra={**fields, "reason": decision.reason})
            return
        await self.store.retry_later(delivery.id, decision.retry_at, decision.reason, now,
                                     decision.blocked_until, attempt=delivery.attempts,
                                     count_attempt=not isinstance(error, RateLimited))
        log.info("will retry in %.1fs: %s", decision.retry_at - now, decision.reason,
                 extra={**fields, "reason": decision.reason})
