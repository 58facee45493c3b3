"""Conversations in the outbox: one thread per job, its root kept current, a gone root replaced.

A real SQLite store, fake chat senders that thread and edit, a hand-driven clock.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from notifybot.config import DeliveryConfig
from notifybot.errors import DeliveryError
from notifybot.outbox import Outbox
from notifybot.store import Delivery, DeliveryStatus, NewDelivery
from notifybot.store.sqlite import SQLiteStore
from notifybot.testing import FakeSender
from tests.polling import eventually

from .test_outbox import Clock, drain_once

KEY = "1:job:15471"


@pytest.fixture
async def store(tmp_path: Path) -> SQLiteStore:
    db = SQLiteStore(tmp_path / "threads.db")
    await db.migrate()
    yield db  # type: ignore[misc]
    await db.close()


async def post(store: SQLiteStore, sender: FakeSender, text: str, now: float, *,
               thread: str | None = KEY, update: dict[str, Any] | None = None,
               broadcast: bool = False) -> int:
    event_id, _ = await store.add_event("job.status.updated", b"{}", f"d-{text}-{now}",
                                        "application/json", {}, now)
    await store.route(event_id, [NewDelivery(
        sender.name, "s", sender.destination, sender.pace, {"text": text}, thread_key=thread,
        update=update, broadcast=broadcast)], now)
    return event_id


async def test_the_first_message_is_the_root_and_later_ones_reply_and_update_it(
        store: SQLiteStore) -> None:
    clock, chat = Clock(), FakeSender("ops", kind="slack")
    await post(store, chat, "created", clock())
    await post(store, chat, "booked", clock(), update={"text": "Job 15471: Booked"},
               broadcast=True)
    await post(store, chat, "dispatched", clock(), update={"text": "Job 15471: Dispatched"})
    outbox = Outbox(store, {"ops": chat}, DeliveryConfig(), clock=clock)
    for _ in range(3):  # one message of a thread at a time
        assert await drain_once(outbox, clock) == 1
    assert [p["text"] for p in chat.sent] == ["created", "booked", "dispatched"]
    assert [(c.thread_key, c.root, c.broadcast) for c in chat.contexts] == [
        (KEY, None, False), (KEY, "fake-1", True), (KEY, "fake-1", False)]
    assert chat.edits_made == [("fake-1", {"text": "Job 15471: Booked"}),
                               ("fake-1", {"text": "Job 15471: Dispatched"})]
    rows = sorted(await store.list_deliveries(), key=lambda d: d.id)
    assert [(d.thread_role, d.handle) for d in rows] == [
        ("root", "fake-1"), ("reply", "fake-2"), ("reply", "fake-3")]


async def test_another_job_and_an_unthreaded_event_start_their_own(store: SQLiteStore) -> None:
    clock, chat = Clock(), FakeSender("ops")
    await post(store, chat, "job 1", clock())
    await post(store, chat, "job 2", clock(), thread="1:job:2")
    await post(store, chat, "contact", clock(), thread=None)
    outbox = Outbox(store, {"ops": chat}, DeliveryConfig(), clock=clock)
    assert await drain_once(outbox, clock) == 3
    assert [c.root for c in chat.contexts] == [None, None, None]
    assert [c.thread_key for c in chat.contexts] == [KEY, "1:job:2", None]


async def test_a_deleted_root_starts_a_new_thread_and_nothing_is_dead(store: SQLiteStore) -> None:
    clock, chat = Clock(), FakeSender("ops")
    await post(store, chat, "created", clock())
    outbox = Outbox(store, {"ops": chat}, DeliveryConfig(), clock=clock)
    await drain_once(outbox, clock)
    chat.deleted.add("fake-1")  # someone deleted the root in the chat
    await post(store, chat, "booked", clock(), update={"text": "now"})
    await post(store, chat, "dispatched", clock(), update={"text": "later"})
    await drain_once(outbox, clock)
    await drain_once(outbox, clock)
    assert [c.root for c in chat.contexts] == [None, None, "fake-2"]
    assert chat.edits_made == [("fake-2", {"text": "later"})]
    assert {d.status for d in await store.list_deliveries()} == {DeliveryStatus.SENT}
    root = await store.thread_root(chat.destination, KEY, since=0)
    assert root is not None and root.handle == "fake-2"


async def test_a_thread_older_than_its_max_age_starts_anew(store: SQLiteStore) -> None:
    clock, chat = Clock(), FakeSender("ops")
    outbox = Outbox(store, {"ops": chat}, DeliveryConfig(), clock=clock,
                    thread_ages={"ops": 3600.0})
    await post(store, chat, "created", clock())
    await drain_once(outbox, clock)
    clock.now += 3601
    await post(store, chat, "returned", clock())
    await drain_once(outbox, clock)
    assert [c.root for c in chat.contexts] == [None, None]


async def test_a_channel_that_cannot_reply_sends_standalone(store: SQLiteStore) -> None:
    clock, console = Clock(), FakeSender("log", replies=False, edits=False)
    await post(store, console, "one", clock())
    await post(store, console, "two", clock(), update={"text": "x"})
    outbox = Outbox(store, {"log": console}, DeliveryConfig(), clock=clock)
    assert await drain_once(outbox, clock) == 1
    assert await drain_once(outbox, clock) == 1
    assert [c.thread_key for c in console.contexts] == [None, None]
    assert console.edits_made == []


async def test_text_no_channel_can_encode_is_dead_at_once(store: SQLiteStore) -> None:
    class Strict(FakeSender):
        async def send(self, payload, context=None):  # type: ignore[no-untyped-def]
            self.attempts += 1
            (payload["text"] + "\udc80").encode("utf-8")  # as a lone surrogate would
            raise AssertionError("unreachable")

    clock, chat = Clock(), Strict("ops")
    await post(store, chat, "text", clock(), thread=None)
    outbox = Outbox(store, {"ops": chat}, DeliveryConfig(), clock=clock)
    await drain_once(outbox, clock)
    [row] = await store.list_deliveries()
    assert (row.status, row.attempts) == (DeliveryStatus.DEAD, 1)
    assert row.last_error == "ops: message cannot be encoded (UnicodeEncodeError)"


async def test_every_outcome_is_told_to_on_outcome(store: SQLiteStore) -> None:
    clock, chat = Clock(), FakeSender("ops")
    from notifybot.errors import PermanentDeliveryError

    chat.fail_next(PermanentDeliveryError("slack: invalid_auth"))
    heard: list[tuple[int, str | None]] = []

    async def on_outcome(delivery: Delivery, error: DeliveryError | None, now: float) -> None:
        heard.append((delivery.id, None if error is None else error.reason))

    await post(store, chat, "a", clock(), thread=None)
    await post(store, chat, "b", clock(), thread=None)
    outbox = Outbox(store, {"ops": chat}, DeliveryConfig(), clock=clock, on_outcome=on_outcome)
    await drain_once(outbox, clock)
    assert sorted(heard) == [(1, "slack: invalid_auth"), (2, None)]


class CountingStore(SQLiteStore):
    """A real store that counts how many transactions recorded outcomes."""

    records: list[int]

    async def record(self, outcomes: Any, now: float) -> None:  # type: ignore[override]
        self.records.append(len(outcomes))
        await super().record(outcomes, now)


async def test_outcomes_that_finish_together_are_recorded_in_one_commit(tmp_path: Path) -> None:
    store = CountingStore(tmp_path / "count.db")
    store.records = []
    await store.migrate()
    try:
        clock, chat = Clock(), FakeSender("ops")
        for i in range(30):
            await post(store, chat, f"m{i}", clock(), thread=None)
        outbox = Outbox(store, {"ops": chat}, DeliveryConfig(), clock=clock)
        claimed = await store.claim(clock(), 60, 30)
        await asyncio.gather(*(outbox.deliver(d) for d in claimed))
        assert sum(store.records) == 30
        assert len(store.records) < 30, store.records  # grouped, not one commit each
        assert (await store.counts())[DeliveryStatus.SENT] == 30
    finally:
        await store.close()


async def test_a_reply_whose_root_update_breaks_is_recorded_sent_and_not_sent_again(
        store: SQLiteStore) -> None:
    clock, chat = Clock(), FakeSender("ops")

    async def broken_view(delivery: Delivery) -> dict[str, Any]:
        raise RuntimeError("storage went away while rendering the root")

    await post(store, chat, "created", clock())
    await post(store, chat, "booked", clock())
    outbox = Outbox(store, {"ops": chat}, DeliveryConfig(), clock=clock, root_view=broken_view)
    await drain_once(outbox, clock)
    await drain_once(outbox, clock)
    assert await drain_once(outbox, clock) == 0
    assert [p["text"] for p in chat.sent] == ["created", "booked"]
    assert {d.status for d in await store.list_deliveries()} == {DeliveryStatus.SENT}


class GatedStore(SQLiteStore):
    """A real store whose outcome writes wait for a gate: a slow disk at shutdown."""

    gate: asyncio.Event

    async def record(self, outcomes: Any, now: float) -> None:  # type: ignore[override]
        await self.gate.wait()
        await super().record(outcomes, now)


async def test_stop_never_releases_a_sent_delivery_whose_outcome_is_still_being_written(
        tmp_path: Path) -> None:
    store = GatedStore(tmp_path / "gated.db")
    store.gate = asyncio.Event()
    await store.migrate()
    try:
        chat = FakeSender("ops")
        await post(store, chat, "m1", 1_000.0, thread=None)
        outbox = Outbox(store, {"ops": chat}, DeliveryConfig(poll_interval=0.05))
        runner = asyncio.create_task(outbox.run())
        await eventually(lambda: len(chat.sent) == 1, what="the send")
        [sending] = outbox._in_flight.values()  # sent, its outcome waiting for the disk
        stopping = asyncio.create_task(outbox.stop(grace=0.05))
        await eventually(sending.done, what="stop to give up on the send's task")
        store.gate.set()  # the disk catches up only after stop cancelled the task
        await stopping
        await runner
        [row] = await store.list_deliveries()
        assert (row.status, row.attempts) == (DeliveryStatus.SENT, 1)
    finally:
        await store.close()
