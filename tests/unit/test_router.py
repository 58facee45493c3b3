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

KEY = "KEY-123456"
CONFIG = """
[server]
database = "sqlite:///{db}"
[hirehop]
export_key = "{key}"
[channels.log]
type = "console"
  [[channels.log.subscriptions]]
  events = ["job.*"]
"""


class CountingStore(SQLiteStore):
    """SQLite that counts its reads of unrouted events and can fail routings."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.reads = 0
        self.failures_left = 0

    async def unrouted_events(self, limit: int) -> list[StoredEvent]:
        self.reads += 1
        return await super().unrouted_events(limit)

    async def route_many(self, batch: Sequence[tuple[int, Sequence[NewDelivery]]],
                         now: float) -> int:
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
    senders: dict[str, Any] = {"log": FakeSender("log")}
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


async def test_a_burst_past_what_memory_keeps_is_read_back(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pipeline_module, "ARRIVED_MAX", 2)
    async with router(tmp_path, poll=60) as (pipeline, store):
        received = await asyncio.gather(*(pipeline.receive(body(n), "application/json", {})
                                          for n in range(7)))
        assert await routed_jobs(store, 7) == sorted(r.event_id for r in received)
        assert store.reads >= 2, "the events memory did not keep were read from storage"
        assert len(await store.list_deliveries(limit=100)) == 7, "each routed once"


async def test_a_routing_that_failed_is_done_again_from_storage(tmp_path: Path) -> None:
    async with router(tmp_path, poll=0.05) as (pipeline, store):
        store.failures_left = 1
        received = await pipeline.receive(body(9), "application/json", {})
        assert await routed_jobs(store, 1) == [received.event_id]
        assert store.failures_left == 0
