"""The delivery worker: claim due deliveries, make one attempt each, record what happened.

The outbox owns retrying. A sender makes one attempt; the outcome goes back to
storage in a group with the others that finished meanwhile (one commit for a
burst), so a crash at any point loses nothing: a delivery left in ``sending``
returns to ``pending`` when its lease ends. A crash between a send and its record
was always at-least-once; a delivery recorded as sent is never sent again.

Threads (design §7): a delivery with a thread key replies to its thread's root
when the store knows one (and starts the thread otherwise); the store hands out
a thread's messages one at a time, so the root is recorded before any reply is
claimed. After a reply, the root is edited to show the job as it is now. A root
that is gone is forgotten and the message starts a new one, at once.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from typing import Any

from .channels import STANDALONE, Receipt, SendContext, Sender
from .config import DeliveryConfig
from .errors import (
    ConfigError,
    DeliveryError,
    PermanentDeliveryError,
    RateLimited,
    TemporaryDeliveryError,
    ThreadGone,
)
from .metrics import Metrics
from .retry import RetryPolicy
from .store import Delivery, DeliveryStatus, Store
from .store.base import Outcome, ThreadMark
from .waits import wait_set

log = logging.getLogger("notifybot.outbox")
_NUMBERS = re.compile(r"\d+")
DEFAULT_THREAD_AGE = 30 * 86400.0


def reason_label(reason: str) -> str:
    """A reason as a metric label: numbers folded ("retry after N"), so series stay few."""
    return _NUMBERS.sub("N", reason)[:100]


Rerender = Callable[[Delivery], Awaitable[Mapping[str, Any]]]
#: What a thread's root should show once this delivery is sent as a reply (None: as it is).
RootView = Callable[[Delivery], Awaitable[Mapping[str, Any] | None]]
#: Told of every attempt's end: the delivery, the error (None when sent), the time.
OnOutcome = Callable[[Delivery, DeliveryError | None, float], Awaitable[None]]


class Outbox:
    """Runs beside the HTTP server; ``wake()`` says new work was enqueued.

    ``thread_ages`` gives each channel's ``thread_max_age``: a thread older than
    that starts anew. ``on_outcome`` hears of every attempt's end (health,
    fallbacks); its failures are logged, never the delivery's.
    """

    def __init__(self, store: Store, senders: Mapping[str, Sender], settings: DeliveryConfig,
                 *, metrics: Metrics | None = None, clock: Callable[[], float] = time.time,
                 rerender: Rerender | None = None, on_outcome: OnOutcome | None = None,
                 thread_ages: Mapping[str, float] | None = None,
                 root_view: RootView | None = None) -> None:
        self.store = store
        self.senders = senders
        self.settings = settings
        self.policy = RetryPolicy(settings)
        self.metrics = metrics or Metrics()
        self.rerender = rerender
        self.on_outcome = on_outcome
        self.root_view = root_view
        self.thread_ages: Mapping[str, float] = thread_ages or {}
        self.clock = clock
        self._wake = asyncio.Event()
        # By (delivery, claim number): a send that outlived its lease may be claimed
        # again here while the first attempt still runs; both are counted.
        self._in_flight: dict[tuple[int, int], asyncio.Task[None]] = {}
        # ...of which these have sent and wait for their outcome's commit: they no
        # longer count against ``concurrency``, so the next sends are claimed meanwhile.
        self._recording: set[tuple[int, int]] = set()
        self._account_next: dict[str, float] = {}
        self._account_turns: dict[str, asyncio.Lock] = {}
        self._stopping = False
        self._loop_done = asyncio.Event()
        self._loop_done.set()  # not running yet
        self._outcomes = OutcomeWriter(store, clock)

    def wake(self) -> None:
        self._wake.set()

    def reconfigure(self, settings: DeliveryConfig,
                    thread_ages: Mapping[str, float] | None = None) -> None:
        """New retry settings (and thread ages) from the next attempt on."""
        self.settings, self.policy = settings, RetryPolicy(settings)
        if thread_ages is not None:
            self.thread_ages = thread_ages

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
                    await wait_set(self._wake, self.settings.poll_interval)
        finally:
            self._loop_done.set()

    async def _claim(self) -> list[Delivery]:
        limit = self.settings.concurrency
        sending = len(self._in_flight) - len(self._recording)
        # Sends waiting for their outcome's commit may be as many again, no more: a
        # stalled disk must not let sent-but-unrecorded messages pile up (each would
        # go again if its lease ran out first).
        room = min(limit - sending, 2 * limit - len(self._in_flight))
        # While sends are in flight, claim only once a quarter of the room is free: one
        # claim transaction then serves several deliveries instead of one each.
        if room <= 0 or (self._in_flight and room < max(1, limit // 4)):
            return []
        claimed = await self.store.claim(self.clock(), self.settings.lease, room)
        for delivery in claimed:
            task = asyncio.create_task(self.deliver(delivery))
            self._in_flight[delivery.id, delivery.claim] = task
            task.add_done_callback(self._done)
        return claimed

    def _done(self, task: asyncio.Task[None]) -> None:
        for attempt, running in list(self._in_flight.items()):
            if running is task:
                del self._in_flight[attempt]
                self._recording.discard(attempt)
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
            unfinished = sorted(key for key, t in self._in_flight.items() if t in pending)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            # An outcome already queued is written, not released: that message was sent
            # (one that could not be written is left to its lease, not sent at once).
            await self._outcomes.drain()
            unsent = sorted({i for i, claim in unfinished
                             if (i, claim) not in self._outcomes.queued})
            await self.store.release(unsent, self.clock())

    async def deliver(self, delivery: Delivery) -> None:
        """One attempt for one delivery, and its outcome recorded (in a group)."""
        sender = self.senders.get(delivery.channel)
        error: DeliveryError | None = None
        mark: ThreadMark | None = None
        receipt = Receipt("")
        try:
            if sender is None:
                raise PermanentDeliveryError(f"channel {delivery.channel!r} is not configured")
            payload = delivery.payload or await self._rendered_again(delivery)
            await self._account_turn(sender)
            receipt, mark = await self._send(sender, delivery, payload)
        except DeliveryError as exc:
            error = exc
        except (UnicodeError, ValueError) as exc:
            # Text no channel can carry (a lone surrogate, say): no retry can fix it.
            error = PermanentDeliveryError(f"{delivery.channel}: message cannot be encoded "
                                           f"({type(exc).__name__})")
        except Exception as exc:  # a bug in a sender must not kill the worker
            log.exception("unexpected error from channel %s", delivery.channel,
                          extra=_fields(delivery))
            error = TemporaryDeliveryError(type(exc).__name__)
        now = self.clock()
        self._recording.add((delivery.id, delivery.claim))
        self._wake.set()  # its send is over: room for the next while this is recorded
        await self._outcomes.record(self._outcome(delivery, sender, receipt, mark, error, now))
        self._report(delivery, error, now)
        if self.on_outcome is not None:
            try:
                await self.on_outcome(delivery, error, now)
            except Exception:
                log.exception("could not act on a delivery's outcome", extra=_fields(delivery))

    async def _send(self, sender: Sender, delivery: Delivery,
                    payload: Mapping[str, Any]) -> tuple[Receipt, ThreadMark | None]:
        """Send standalone, or into the delivery's thread (replying, or as its new root)."""
        key = delivery.thread_key
        if key is None or not sender.replies:
            return await sender.send(payload, STANDALONE), None
        since = self.clock() - self.thread_ages.get(delivery.channel, DEFAULT_THREAD_AGE)
        if delivery.root_known:  # read by the claim: no second round trip
            root = delivery.root if delivery.root and delivery.root.created_at >= since else None
        else:
            root = await self.store.thread_root(delivery.destination, key, since)
        context = (SendContext(key) if root is None else
                   SendContext(key, root.handle, broadcast=delivery.broadcast, subject=root.subject))
        try:
            receipt = await sender.send(payload, context)
        except ThreadGone as gone:
            # Someone deleted the root: this message becomes the root of a new thread.
            log.info("thread root gone (%s); starting a new thread", gone.reason,
                     extra=_fields(delivery))
            if root is not None:
                await self.store.forget_thread(delivery.destination, key, root.handle)
            context = SendContext(key)
            receipt = await sender.send(payload, context)
        if receipt.handle is None:
            return receipt, None
        if context.root is None:
            subject = payload.get("subject")
            return receipt, ThreadMark(delivery.destination, key, receipt.handle, root=True,
                                       subject=subject if isinstance(subject, str) else None)
        if sender.edits:
            await self._update_root(sender, delivery, context.root)
        return receipt, ThreadMark(delivery.destination, key, context.root, root=False)

    async def _update_root(self, sender: Sender, delivery: Delivery, root: str) -> None:
        """Edit the root to show the job now. Best effort: the reply is already sent."""
        assert delivery.thread_key is not None
        try:
            update = delivery.update or (await self.root_view(delivery) if self.root_view else None)
            if not update:
                return
            await sender.edit(root, update)
        except ThreadGone as gone:
            # The reply went through, yet the root is gone (Slack may post a reply to a
            # deleted root at the top level): the next message starts a new thread.
            log.info("thread root gone (%s); the next message starts a new thread", gone.reason,
                     extra=_fields(delivery))
            await self.store.forget_thread(delivery.destination, delivery.thread_key, root)
        except DeliveryError as exc:
            log.warning("could not update the thread's root: %s", exc.reason,
                        extra={**_fields(delivery), "reason": exc.reason})
        except Exception as exc:
            # Anything else (a template, storage, a bug): the reply is sent already and
            # must be recorded as sent, so the root simply keeps its old look.
            log.warning("could not update the thread's root: %s", type(exc).__name__,
                        extra={**_fields(delivery), "reason": "root update failed"})

    def _outcome(self, delivery: Delivery, sender: Sender | None, receipt: Receipt,
                 mark: ThreadMark | None, error: DeliveryError | None, now: float) -> Outcome:
        paced = delivery.destination if sender is not None and sender.pace > 0 else None
        base = Outcome(delivery.id, DeliveryStatus.SENT, delivery.claim, pace_key=paced,
                       destination=delivery.destination)
        if error is None:
            return replace(base, receipt=receipt.detail, handle=receipt.handle, thread=mark)
        decision = self.policy.decide(error, attempts=delivery.attempts,
                                      created_at=delivery.created_at, now=now)
        if decision.retry_at is None:
            return replace(base, status=DeliveryStatus.DEAD, error=decision.reason)
        return replace(base, status=DeliveryStatus.PENDING, error=decision.reason,
                       retry_at=decision.retry_at, blocked_until=decision.blocked_until,
                       count_attempt=not isinstance(error, RateLimited))

    def _report(self, delivery: Delivery, error: DeliveryError | None, now: float) -> None:
        """Metrics and one log line per attempt."""
        fields = _fields(delivery)
        if error is None:
            self.metrics.deliveries.labels(channel=delivery.channel, outcome="sent", reason="").inc()
            self.metrics.latency.labels(channel=delivery.channel).observe(
                max(0.0, now - delivery.created_at))
            log.info("delivered to %s", delivery.channel, extra={**fields, "reason": "sent"})
            return
        decision = self.policy.decide(error, attempts=delivery.attempts,
                                      created_at=delivery.created_at, now=now)
        outcome = "dead" if decision.retry_at is None else "retry"
        self.metrics.deliveries.labels(channel=delivery.channel, outcome=outcome,
                                       reason=reason_label(error.reason)).inc()
        if isinstance(error, RateLimited):
            self.metrics.rate_limited.labels(channel=delivery.channel).inc()
        if decision.retry_at is None:
            log.warning("delivery dead: %s", decision.reason,
                        extra={**fields, "reason": decision.reason})
        else:
            log.info("will retry in %.1fs: %s", decision.retry_at - now, decision.reason,
                     extra={**fields, "reason": decision.reason})

    async def _rendered_again(self, delivery: Delivery) -> Mapping[str, Any]:
        """The message of a delivery rendered when sent: a fold or digest (from all its
        events), or one born dead on a broken template and replayed since.

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
        if sender.account is None or sender.account_pace <= 0:
            return
        loop = asyncio.get_running_loop()
        async with self._account_turns.setdefault(sender.account, asyncio.Lock()):  # FIFO
            wait = self._account_next.get(sender.account, 0.0) - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            # The next turn counts from when this send really goes, not from when it was
            # due: a late wake-up (a busy process) must not let the next follow too soon.
            self._account_next[sender.account] = loop.time() + sender.account_pace


class OutcomeWriter:
    """Group commit for outcomes: those that finish while a write is in flight go in the next.

    Each caller returns once the transaction holding its outcome has committed,
    so a thread's next message (claimed only after this one is recorded) and a
    shutdown's release both see it. Nothing waits on a timer: a lone outcome is
    written at once.
    """

    def __init__(self, store: Store, clock: Callable[[], float], *,
                 retries: tuple[float, ...] = (0.05, 0.25, 1.0)) -> None:
        self.store = store
        self.clock = clock
        self.retries = retries
        # (delivery, claim) of the outcomes handed over and not yet written.
        self.queued: set[tuple[int, int | None]] = set()
        self._queued: list[tuple[Outcome, asyncio.Future[None]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def drain(self) -> None:
        """Wait until every outcome handed over so far is written (or failed)."""
        while self._writer is not None and not self._writer.done():
            await asyncio.wait([self._writer])

    async def record(self, outcome: Outcome) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.queued.add((outcome.delivery_id, outcome.attempt))
        self._queued.append((outcome, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write())
        # Shielded: a send cancelled at shutdown still gets its outcome written.
        await asyncio.shield(future)

    async def _write(self) -> None:
        while self._queued:
            batch, self._queued = self._queued, []
            try:
                await self._record([outcome for outcome, _ in batch])
            except Exception as exc:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            self.queued.difference_update((outcome.delivery_id, outcome.attempt)
                                          for outcome, _ in batch)
            for _, future in batch:
                if not future.done():
                    future.set_result(None)

    async def _record(self, outcomes: list[Outcome]) -> None:
        """One group, tried again a few times: outcomes are fenced, so writing one twice
        is harmless, while giving up sends every message of the group once more."""
        for pause in (*self.retries, None):
            try:
                await self.store.record(outcomes, self.clock())
                return
            except Exception:
                if pause is None:
                    raise
                log.warning("could not record %d outcome(s); trying again", len(outcomes))
                await asyncio.sleep(pause)


def _fields(delivery: Delivery) -> dict[str, object]:
    return {"event_id": delivery.event_id, "event": delivery.event_name,
            "channel": delivery.channel, "delivery_id": delivery.id,
            "attempt": delivery.attempts}
