"""The router: what this process stored is routed from memory, the rest found in storage.

Storage is read at start, at each poll, after ``wake()`` and after a failure;
between those, an event received here goes straight from the request to
routing. Every case checks that each event is routed once.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from notifybot import pipeline as pipeline_module
from notifybot.config import load
from notifybot.pipeline import Pipeline
from notifybot.store import NewDelivery, StoredEvent
from notifybot.store.sqlite import SQLiteStore
from notifybot.testing import FakeSender
from tests.polling import eventually
from tests.unit.test_app import CONFIG, KEY  # every event reaches channel "log" once


class CountingStore(SQLiteStore):
    """SQLite that counts its reads of unrouted events, lists the events it is asked
    to route (in order, each time), and can fail or slow routings."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.reads = 0
        self.read_events = 0  # events those reads returned
        self.asked: list[int] = []
        self.failures_left = 0
        self.slow = 0.0  # seconds each routing takes, as a busy disk would
        self.hold: asyncio.Event | None = None  # a routing waits for it, if set

    async def unrouted_events(self, limit: int) -> list[StoredEvent]:
        self.reads += 1
        events = await super().unrouted_events(limit)
        self.read_events += len(events)
        return events

    async def route_many(self, batch: Sequence[tuple[int, Sequence[NewDelivery]]],
                         now: float) -> int:
        self.asked += [event_id for event_id, _ in batch]
        await asyncio.sleep(self.slow)
        if self.hold is not None:
            await self.hold.wait()
        if self.failures_left:
            self.failures_left -= 1
            raise sqlite3.OperationalError("disk I/O error")
        return await super().route_many(batch, now)


def body(job: int) -> bytes:
    return json.dumps({"export_key": KEY, "event": "job.updated", "job": job}).encode()


@asynccontextmanager
async def router(tmp_path: Path, poll: float) -> AsyncIterator[tuple[Pipeline, CountingStore]]:
    path = tmp_path / "subscriptions.toml"
    path.write_text(CONFIG.format(db=tmp_path / "n.db", key=KEY))
    store = CountingStore(tmp_path / "n.db")
    await store.migrate()
    senders: dict[str, Any] = {"log": FakeSender("log"), "jobs": FakeSender("jobs")}
    pipeline = Pipeline(load(path, environ={}), store, senders)
    task = asyncio.create_task(pipeline.run_router(poll))
    try:
        await eventually(lambda: store.reads >= 1, what="the first read of storage")
        yield pipeline, store
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await store.close()


async def routed_jobs(store: SQLiteStore, count: int) -> list[int]:
    """The event id of each delivery, once ``count`` exist (each event has one)."""
    async def enough() -> list[int]:
        deliveries = await store.list_deliveries(limit=100)
        return [d.event_id for d in deliveries] if len(deliveries) >= count else []
    return sorted(await eventually(enough, what=f"{count} deliveries"))


async def test_what_this_process_stored_is_routed_without_reading_it_back(
        tmp_path: Path) -> None:
    async with router(tmp_path, poll=60) as (pipeline, store):
        received = [await pipeline.receive(body(n), "application/json", {}) for n in range(3)]
        assert await routed_jobs(store, 3) == [r.event_id for r in received]
        assert store.reads == 1, "storage was read at start only"
        assert await store.unrouted_events(10) == []


async def test_an_event_stored_elsewhere_is_found_at_the_next_poll(tmp_path: Path) -> None:
    async with router(tmp_path, poll=0.05) as (_, store):
        event_id, _ = await store.add_event("job.updated", body(7), "elsewhere",
                                            "application/json", {}, 1.0)
        assert await routed_jobs(store, 1) == [event_id]


async def test_wake_reads_storage_at_once(tmp_path: Path) -> None:
    async with router(tmp_path, poll=60) as (pipeline, store):
        event_id, _ = await store.add_event("job.updated", body(8), "told",
                                            "application/json", {}, 1.0)
        pipeline.wake()
        assert await routed_jobs(store, 1) == [event_id]
        assert store.reads > 1, "storage was read again when woken"


async def test_a_burst_past_what_memory_keeps_is_read_back_in_order(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pipeline_module, "ARRIVED_MAX", 2)
    async with router(tmp_path, poll=60) as (pipeline, store):
        store.slow = 0.05
        # 1 is routed at once, 2 and 3 wait in memory, 4 overflows to storage...
        received = [await pipeline.receive(body(n), "application/json", {}) for n in range(4)]
        # ...and 5 to 7 come while 2 and 3 are being routed, memory free again: they
        # must not overtake 4. (Arrival times only shape the case; on a slower
        # machine 5 to 7 overflow too, and the order holds all the same.)
        await asyncio.sleep(0.08)
        received += [await pipeline.receive(body(n), "application/json", {}) for n in range(4, 7)]
        ids = [r.event_id for r in received]
        assert await routed_jobs(store, 7) == ids
        assert store.reads >= 2, "the events memory did not keep were read from storage"
        assert store.asked == ids, "each routed once, in the order stored (a job's thread)"


async def test_a_routing_that_failed_is_done_again_from_storage(tmp_path: Path) -> None:
    async with router(tmp_path, poll=0.2) as (pipeline, store):
        store.failures_left = 1
        first = await pipeline.receive(body(9), "application/json", {})
        assert await routed_jobs(store, 1) == [first.event_id]
        assert store.asked == [first.event_id, first.event_id], "failed, then once from storage"


async def test_a_failing_storage_is_not_retried_at_every_wake_up(tmp_path: Path) -> None:
    # While writes fail, every webhook wakes the router; a retry (and a traceback)
    # per webhook would flood the log. It waits a poll interval instead.
    async with router(tmp_path, poll=60) as (pipeline, store):
        store.failures_left = 1_000
        await pipeline.receive(body(16), "application/json", {})
        await eventually(lambda: len(store.asked) == 1, what="the first, failed routing")
        for n in range(17, 22):
            await pipeline.receive(body(n), "application/json", {})
        # An absence can only be watched over a window: a retry on a wake-up would
        # have come within a few milliseconds.
        await asyncio.sleep(0.3)
        assert len(store.asked) == 1


async def test_an_event_given_up_on_while_stored_is_still_routed(tmp_path: Path) -> None:
    # The endpoint's storage timeout cancels receive(); the write goes on and commits,
    # and the router must hear of it although nothing hands it over.
    async with router(tmp_path, poll=60) as (pipeline, store):
        giving_up = asyncio.ensure_future(pipeline.receive(body(11), "application/json", {}))
        await asyncio.sleep(0)  # the write is queued
        giving_up.cancel()
        with pytest.raises(asyncio.CancelledError):
            await giving_up
        later = await pipeline.receive(body(12), "application/json", {})
        jobs = await routed_jobs(store, 2)
        assert later.event_id in jobs and len(set(jobs)) == 2


async def test_a_busy_router_still_reads_storage_each_poll_interval(tmp_path: Path) -> None:
    async with router(tmp_path, poll=0.3) as (pipeline, store):
        store.slow = 0.03  # events keep arriving while each batch is routed
        busy = asyncio.create_task(_traffic(pipeline))
        try:
            event_id, _ = await store.add_event("job.updated", body(13), "unannounced",
                                                "application/json", {}, 1.0)
            await eventually(lambda: event_id in store.asked, within=5,
                             what="the unannounced event routed while busy")
            # ...and reading storage each poll interval did not keep the router on
            # that slower path: most events still came from memory.
            await eventually(lambda: len(store.asked) > 60, what="traffic routed")
            assert store.read_events < len(store.asked) / 2, (store.read_events, len(store.asked))
        finally:
            busy.cancel()
            await asyncio.gather(busy, return_exceptions=True)


async def _traffic(pipeline: Pipeline) -> None:
    """About 100 webhooks a second, each stored while others are being routed."""
    arriving = []
    try:
        for n in range(1000, 2000):
            arriving.append(asyncio.create_task(
                pipeline.receive(body(n), "application/json", {})))
            await asyncio.sleep(0.01)
    finally:
        for task in arriving:
            task.cancel()
        await asyncio.gather(*arriving, return_exceptions=True)


async def test_an_event_read_from_storage_is_not_routed_again_from_memory(
        tmp_path: Path) -> None:
    # On PostgreSQL, another instance's NOTIFY can wake the router, which reads an
    # event before the request that stored it hands it over; the late hand-over
    # must not route it twice.
    async with router(tmp_path, poll=60) as (pipeline, store):
        event_id, _ = await store.add_event("job.updated", body(14), "raced",
                                            "application/json", {}, 1.0)
        pipeline.wake()
        await routed_jobs(store, 1)
        [stored] = await store.get_events([event_id])
        pipeline._arrive(stored)  # the hand-over that came late
        later = await pipeline.receive(body(15), "application/json", {})
        await routed_jobs(store, 2)
        assert store.asked == [event_id, later.event_id]


async def test_bodies_past_what_memory_keeps_by_size_are_read_back_in_order(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pipeline_module, "ARRIVED_MAX_BYTES", 2 * len(body(1)))
    async with router(tmp_path, poll=60) as (pipeline, store):
        store.slow = 0.3
        # 0 is routed at once, 1 and 2 fill memory by their size, 3 would pass it: it
        # is left in storage, and the router reads it from there, after 1 and 2.
        received = [await pipeline.receive(body(n), "application/json", {}) for n in range(4)]
        ids = [r.event_id for r in received]
        assert await routed_jobs(store, 4) == ids
        assert store.reads >= 2, "the event memory did not keep was read from storage"
        assert store.asked == ids, "each routed once, in the order stored"


async def test_events_left_in_memory_when_a_read_falls_due_are_routed_at_once(
        tmp_path: Path) -> None:
    # Routing from memory stops when the read of storage each poll interval falls due,
    # here between two batches: what is still in memory is routed at once (not a poll
    # interval later, for want of a wake-up), each event once.
    async with router(tmp_path, poll=60) as (pipeline, store):
        store.hold = first_routing = asyncio.Event()
        first = await pipeline.receive(body(40), "application/json", {})
        await eventually(lambda: store.asked == [first.event_id], what="the first routing")
        more = await asyncio.gather(*(pipeline.receive(body(n), "application/json", {})
                                      for n in range(41, 142)))  # one more than a batch
        store.hold = next_batch = asyncio.Event()
        first_routing.set()
        await eventually(lambda: len(store.asked) == 101, what="the next batch, from memory")
        pipeline._read_by = 0.0  # the poll interval has passed while it was routed
        pipeline._wake.clear()  # the 102nd came before this turn began: no wake-up of its own
        next_batch.set()
        ids = [first.event_id] + [r.event_id for r in more]
        await eventually(lambda: len(store.asked) >= 102, within=5, what="the 102nd, at once")
        assert sorted(store.asked) == sorted(ids), "each routed once"
