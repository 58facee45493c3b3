"""The delivery worker against a real SQLite store and fake senders, with a hand-driven clock."""

from __future__ import annotations

import asyncio
import time
from itertools import pairwise
from pathlib import Path

import pytest

from notifybot.channels import STANDALONE
from notifybot.config import DeliveryConfig
from notifybot.errors import PermanentDeliveryError, RateLimited, TemporaryDeliveryError
from notifybot.outbox import Outbox
from notifybot.store import DeliveryStatus, NewDelivery
from notifybot.store.sqlite import SQLiteStore
from notifybot.testing import FakeSender
from tests.polling import eventually


class Clock:
    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def store(tmp_path: Path) -> SQLiteStore:
    db = SQLiteStore(tmp_path / "outbox.db")
    await db.migrate()
    yield db  # type: ignore[misc]
    await db.close()


async def enqueue(store: SQLiteStore, sender: FakeSender, n: int, now: float) -> list[int]:
    ids = []
    for i in range(n):
        event_id, _ = await store.add_event("job.updated", b"{}", f"digest-{sender.name}-{i}",
                                            "application/json", {}, now)
        await store.route(event_id, [NewDelivery(sender.name, "sub", sender.destination,
                                                 sender.pace, {"text": f"m{i}"})], now)
        ids.append(event_id)
    return ids


async def drain_once(outbox: Outbox, clock: Clock) -> int:
    claimed = await outbox.store.claim(clock(), outbox.settings.lease, 50)
    for delivery in claimed:
        await outbox.deliver(delivery)
    return len(claimed)


async def test_a_delivery_is_sent_once_and_recorded_with_its_receipt(store: SQLiteStore) -> None:
    clock, sender = Clock(), FakeSender("log")
    await enqueue(store, sender, 1, clock())
    outbox = Outbox(store, {"log": sender}, DeliveryConfig(), clock=clock)
    assert await drain_once(outbox, clock) == 1
    assert await drain_once(outbox, clock) == 0
    [row] = await store.list_deliveries()
    assert (row.status, row.receipt, row.attempts) == (DeliveryStatus.SENT, "fake-1", 1)
    assert sender.sent == [{"text": "m0"}]


async def test_a_temporary_error_is_retried_after_backoff(store: SQLiteStore) -> None:
    clock, sender = Clock(), FakeSender("log")
    sender.fail_next(TemporaryDeliveryError("slack: HTTP 500"))
    await enqueue(store, sender, 1, clock())
    outbox = Outbox(store, {"log": sender}, DeliveryConfig(backoff_initial=10), clock=clock)
    await drain_once(outbox, clock)
    [row] = await store.list_deliveries()
    assert row.status == DeliveryStatus.PENDING and row.last_error == "slack: HTTP 500"
    assert clock.now + 5 <= row.next_attempt_at <= clock.now + 10
    assert await drain_once(outbox, clock) == 0, "not due yet"
    clock.now = row.next_attempt_at
    assert await drain_once(outbox, clock) == 1
    [row] = await store.list_deliveries()
    assert (row.status, row.attempts) == (DeliveryStatus.SENT, 2)


async def test_a_permanent_error_is_dead_at_once_with_the_reason(store: SQLiteStore) -> None:
    clock, sender = Clock(), FakeSender("log")
    sender.fail_next(PermanentDeliveryError("slack: channel_not_found"))
    await enqueue(store, sender, 1, clock())
    outbox = Outbox(store, {"log": sender}, DeliveryConfig(), clock=clock)
    await drain_once(outbox, clock)
    clock.now += 10_000
    assert await drain_once(outbox, clock) == 0
    [row] = await store.list_deliveries()
    assert (row.status, row.last_error) == (DeliveryStatus.DEAD, "slack: channel_not_found")
    assert sender.attempts == 1


async def test_max_attempts_turns_a_failing_delivery_dead(store: SQLiteStore) -> None:
    clock, sender = Clock(), FakeSender("log")
    sender.fail_next(*[TemporaryDeliveryError("timeout")] * 3)
    await enqueue(store, sender, 1, clock())
    outbox = Outbox(store, {"log": sender}, DeliveryConfig(max_attempts=3), clock=clock)
    for _ in range(3):
        await drain_once(outbox, clock)
        clock.now += 10_000
    [row] = await store.list_deliveries()
    assert row.status == DeliveryStatus.DEAD
    assert row.last_error == "timeout (gave up after 3 attempts)"


async def test_rate_limit_parks_the_destination_for_retry_after(store: SQLiteStore) -> None:
    clock, sender = Clock(), FakeSender("chat", pace=1.0)
    sender.fail_next(RateLimited("slack: ratelimited", retry_after=30))
    await enqueue(store, sender, 2, clock())
    outbox = Outbox(store, {"chat": sender}, DeliveryConfig(), clock=clock)
    await drain_once(outbox, clock)
    clock.now += 29
    assert await drain_once(outbox, clock) == 0, "the whole destination waits"
    clock.now += 1
    assert await drain_once(outbox, clock) == 1
    clock.now += 1
    assert await drain_once(outbox, clock) == 1
    assert [p["text"] for p in sender.sent] == ["m0", "m1"], "order kept across the wait"
    [_, first] = await store.list_deliveries()
    assert first.attempts == 1, "waiting out a 429 spends no attempt"
    assert first.status == DeliveryStatus.SENT


async def test_a_paced_destination_gets_one_message_per_interval_in_order(
    store: SQLiteStore,
) -> None:
    clock, sender = Clock(), FakeSender("slack", pace=1.0)
    await enqueue(store, sender, 5, clock())
    outbox = Outbox(store, {"slack": sender}, DeliveryConfig(), clock=clock)
    per_tick = []
    for _ in range(5):
        per_tick.append(await drain_once(outbox, clock))
        per_tick.append(await drain_once(outbox, clock))
        clock.now += 1.0
    assert per_tick == [1, 0] * 5
    assert [p["text"] for p in sender.sent] == ["m0", "m1", "m2", "m3", "m4"]


async def test_a_delivery_left_sending_by_a_dead_process_returns_after_its_lease(
    store: SQLiteStore,
) -> None:
    clock, sender = Clock(), FakeSender("log")
    await enqueue(store, sender, 1, clock())
    settings = DeliveryConfig(lease=60)
    [claimed] = await store.claim(clock(), settings.lease, 10)  # the process dies here
    assert claimed.status == DeliveryStatus.SENDING
    outbox = Outbox(store, {"log": sender}, settings, clock=clock)
    assert await drain_once(outbox, clock) == 0, "still leased"
    clock.now += 61
    assert await drain_once(outbox, clock) == 1
    assert len(sender.sent) == 1


async def test_an_unconfigured_channel_makes_a_dead_delivery(store: SQLiteStore) -> None:
    clock = Clock()
    await enqueue(store, FakeSender("gone"), 1, clock())
    outbox = Outbox(store, {}, DeliveryConfig(), clock=clock)
    await drain_once(outbox, clock)
    [row] = await store.list_deliveries()
    assert row.status == DeliveryStatus.DEAD
    assert row.last_error == "channel 'gone' is not configured"


class SlowSender(FakeSender):
    """Never finishes a send until cancelled: a send in flight at shutdown."""

    async def send(self, payload, context=STANDALONE):  # type: ignore[no-untyped-def]
        self.attempts += 1
        await asyncio.Event().wait()


async def test_stop_releases_only_unfinished_sends_and_a_restart_sends_them_once(
    store: SQLiteStore,
) -> None:
    fast, slow = FakeSender("log"), SlowSender("slow")
    outbox = Outbox(store, {"log": fast, "slow": slow}, DeliveryConfig(poll_interval=0.05))
    runner = asyncio.create_task(outbox.run())
    await enqueue(store, fast, 20, 0.0)
    await enqueue(store, slow, 2, 0.0)
    outbox.wake()
    await eventually(lambda: len(fast.sent) >= 20 and slow.attempts == 2,
                     what="20 sent and 2 hanging")
    await outbox.stop(grace=0.1)
    await runner
    rows = await store.list_deliveries(limit=100)
    assert sorted((d.channel, d.status, d.attempts) for d in rows if d.channel == "slow") == [
        ("slow", DeliveryStatus.PENDING, 0)] * 2  # released, the attempt given back
    assert {d.status for d in rows if d.channel == "log"} == {DeliveryStatus.SENT}
    # The next start sends the two released ones, and nothing recorded as sent again.
    again = FakeSender("slow")
    restarted = Outbox(store, {"log": fast, "slow": again}, DeliveryConfig(poll_interval=0.05))
    runner = asyncio.create_task(restarted.run())
    await eventually(lambda: len(again.sent) == 2, what="the released two")
    await restarted.stop()
    await runner
    assert len(fast.sent) == 20
    assert (await store.counts())[DeliveryStatus.SENT] == 22


async def test_stop_returns_unfinished_sends_to_pending_without_spending_an_attempt(
    store: SQLiteStore,
) -> None:
    sender = SlowSender("slow")
    await enqueue(store, sender, 1, 0.0)
    outbox = Outbox(store, {"slow": sender}, DeliveryConfig(poll_interval=0.05))
    runner = asyncio.create_task(outbox.run())
    await eventually(lambda: sender.attempts > 0, what="the send to start")
    await outbox.stop(grace=0.1)
    await runner
    [row] = await store.list_deliveries()
    assert (row.status, row.attempts) == (DeliveryStatus.PENDING, 0)


class AccountSender(FakeSender):
    """Two destinations behind one account (one Telegram bot feeding two chats)."""

    async def send(self, payload, context=STANDALONE):  # type: ignore[no-untyped-def]
        self.times = [*getattr(self, "times", []), asyncio.get_running_loop().time()]
        return await super().send(payload, context)


async def test_an_account_pace_spaces_sends_across_its_destinations(store: SQLiteStore) -> None:
    a = AccountSender("a", destination="chat:a", account="bot:1", account_pace=0.05)
    b = AccountSender("b", destination="chat:b", account="bot:1", account_pace=0.05)
    b.times = a.times = []
    await enqueue(store, a, 3, 0.0)
    await enqueue(store, b, 3, 0.0)
    outbox = Outbox(store, {"a": a, "b": b}, DeliveryConfig(poll_interval=0.05))
    runner = asyncio.create_task(outbox.run())
    await eventually(lambda: len(a.sent) + len(b.sent) == 6, what="6 sends")
    await outbox.stop()
    await runner
    times = sorted(a.times + b.times)
    gaps = [later - earlier for earlier, later in pairwise(times)]
    assert min(gaps) >= 0.045, "one bot, one pace, whichever chat"


class StallingSender(AccountSender):
    """The first send of the account stalls the whole process (a busy CPU) 50 ms later,
    while the next send waits for its turn."""

    async def send(self, payload, context=STANDALONE):  # type: ignore[no-untyped-def]
        if not self.times:  # shared by the account's senders
            asyncio.get_running_loop().call_later(0.05, time.sleep, 0.12)
        return await super().send(payload, context)


async def test_a_late_turn_does_not_shorten_the_next_gap(store: SQLiteStore) -> None:
    # Turns at 0, 0.1, 0.2 s; the stall makes the second go at ~0.17 s. The third must
    # still wait a whole pace after it, not go at 0.2 s as it was first due.
    a = StallingSender("a", destination="chat:a", account="bot:1", account_pace=0.1)
    b = StallingSender("b", destination="chat:b", account="bot:1", account_pace=0.1)
    b.times = a.times = []
    await enqueue(store, a, 2, 0.0)
    await enqueue(store, b, 2, 0.0)
    outbox = Outbox(store, {"a": a, "b": b}, DeliveryConfig(poll_interval=0.05))
    runner = asyncio.create_task(outbox.run())
    await eventually(lambda: len(a.sent) + len(b.sent) == 4, what="4 sends")
    await outbox.stop()
    await runner
    times = sorted(a.times + b.times)
    gaps = [later - earlier for earlier, later in pairwise(times)]
    assert max(gaps) >= 0.15, "the stall happened between two turns"
    assert min(gaps) >= 0.095, "a whole pace after each send, however late it went"


async def test_a_send_that_outlives_its_lease_and_its_second_claim_both_count_as_in_flight(
    store: SQLiteStore,
) -> None:
    clock, sender = Clock(), SlowSender("slow")
    await enqueue(store, sender, 1, clock())
    outbox = Outbox(store, {"slow": sender}, DeliveryConfig(lease=10.0), clock=clock)
    assert len(await outbox._claim()) == 1
    await eventually(lambda: sender.attempts == 1, what="the first attempt to start")
    clock.now += 11  # its lease runs out while it is still sending
    assert len(await outbox._claim()) == 1  # the same delivery, claimed again
    await eventually(lambda: sender.attempts == 2, what="the second attempt to start")
    # Two sends are running: room for concurrency - 2 more, and stop() waits for both.
    assert len(outbox._in_flight) == 2
    await outbox.stop(grace=0.1)
    [row] = await store.list_deliveries()
    assert row.status == DeliveryStatus.PENDING


class CountingSender(FakeSender):
    """Remembers the most sends it had in progress at once (each takes a turn of the loop)."""

    at_once = 0
    most_at_once = 0

    async def send(self, payload, context=STANDALONE):  # type: ignore[no-untyped-def]
        self.at_once += 1
        self.most_at_once = max(self.most_at_once, self.at_once)
        try:
            await asyncio.sleep(0)
            return await super().send(payload, context)
        finally:
            self.at_once -= 1


class HeldOutcomes(SQLiteStore):
    """An SQLite store whose outcome writes wait until ``gate`` is set (a slow disk)."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.gate = asyncio.Event()
        self.writes = 0

    async def record(self, outcomes, now):  # type: ignore[no-untyped-def]
        self.writes += 1
        await self.gate.wait()
        await super().record(outcomes, now)


async def held_outbox(tmp_path: Path, sender: FakeSender, deliveries: int,
                      concurrency: int) -> tuple[HeldOutcomes, Outbox, asyncio.Task[None]]:
    """``deliveries`` pending for ``sender``, and an outbox running on a store whose
    outcome writes are held (its ``gate`` closed)."""
    store = HeldOutcomes(tmp_path / "held.db")
    await store.migrate()
    await enqueue(store, sender, deliveries, time.time())
    outbox = Outbox(store, {sender.name: sender},
                    DeliveryConfig(concurrency=concurrency, poll_interval=0.05))
    return store, outbox, asyncio.create_task(outbox.run())


async def test_a_send_waiting_for_its_outcome_to_be_written_leaves_room_for_the_next(
    tmp_path: Path,
) -> None:
    sender = CountingSender("log")
    store, outbox, runner = await held_outbox(tmp_path, sender, 2, concurrency=1)
    try:
        # One send at a time, yet none waits for the one before it to be on disk.
        await eventually(lambda: len(sender.sent) == 2, what="both sent, outcomes held")
        assert sender.most_at_once == 1 and store.writes >= 1
        assert {d.status for d in await store.list_deliveries()} == {DeliveryStatus.SENDING}
    finally:
        store.gate.set()
        await outbox.stop(grace=5.0)
        await runner
    rows = await store.list_deliveries()
    assert [r.status for r in rows] == [DeliveryStatus.SENT] * 2
    assert [r.attempts for r in rows] == [1, 1] and len(sender.sent) == 2
    await store.close()


async def test_stop_writes_outcomes_still_held_and_releases_nothing_sent(tmp_path: Path) -> None:
    sender = FakeSender("log")
    store, outbox, runner = await held_outbox(tmp_path, sender, 2, concurrency=1)
    try:
        await eventually(lambda: len(sender.sent) == 2, what="both sent, outcomes held")
    finally:
        sends = list(outbox._in_flight.values())
        stopping = asyncio.create_task(outbox.stop(grace=0.1))
    # The grace runs out with both outcomes still held: the sends are cancelled...
    await eventually(lambda: all(task.done() for task in sends), what="the sends cancelled")
    store.gate.set()  # ...and stop() still writes their outcomes, releasing neither
    await stopping
    await runner
    assert [r.status for r in await store.list_deliveries()] == [DeliveryStatus.SENT] * 2
    await store.close()


async def test_sends_waiting_for_their_outcomes_are_capped_at_concurrency_more(
    tmp_path: Path,
) -> None:
    # A stalled disk must not let sent-but-unrecorded messages pile up: each one would
    # be sent again if its lease ran out before its outcome was written.
    sender = FakeSender("log")
    store, outbox, runner = await held_outbox(tmp_path, sender, 30, concurrency=4)
    try:
        await eventually(lambda: len(sender.sent) == 8, what="twice concurrency sent")
        assert await outbox._claim() == [], "claimed past twice concurrency"
        assert len(sender.sent) == 8 and len(outbox._in_flight) == 8
    finally:
        store.gate.set()
        await outbox.stop(grace=5.0)  # before the loop's next turn: nothing more claimed
        await runner
    assert len(sender.sent) == 8  # stopped: the rest stay pending, none sent twice
    statuses = [d.status for d in await store.list_deliveries(limit=100)]
    assert statuses.count(DeliveryStatus.SENT) == 8
    await store.close()


class FailsThenHangs(FakeSender):
    """The first attempt fails (retried soon), the second never ends until cancelled."""

    async def send(self, payload, context=STANDALONE):  # type: ignore[no-untyped-def]
        self.attempts += 1
        if self.attempts == 1:
            raise TemporaryDeliveryError("slack: HTTP 500")
        await asyncio.Event().wait()


async def test_stop_releases_a_retry_whose_earlier_attempt_was_recorded(
    store: SQLiteStore,
) -> None:
    sender = FailsThenHangs("log")
    await enqueue(store, sender, 1, time.time())
    outbox = Outbox(store, {"log": sender},
                    DeliveryConfig(backoff_initial=0.05, poll_interval=0.05))
    runner = asyncio.create_task(outbox.run())
    try:
        await eventually(lambda: sender.attempts == 2, what="the retry under way")
    finally:
        await outbox.stop(grace=0.1)
        await runner
    [row] = await store.list_deliveries()
    # Released at once (its earlier outcome is no reason to hold it until its lease).
    assert (row.status, row.attempts) == (DeliveryStatus.PENDING, 1)
