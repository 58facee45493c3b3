"""Background loops stop when cancelled, even when they are woken in the same turn.

On Python 3.11 ``asyncio.wait_for(event.wait(), t)`` swallowed such a
cancellation: the router (or the PostgreSQL listener) ran on, and shutdown
waited for it forever (seen as a test's app that never finished stopping).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from notifybot.config import DeliveryConfig, load
from notifybot.outbox import Outbox
from notifybot.pipeline import Pipeline
from notifybot.store.pg_listener import Listener
from notifybot.store.sqlite import SQLiteStore
from notifybot.testing import FakeSender
from notifybot.waits import wait_set
from tests.polling import eventually

CONFIG = """
[server]
database = "sqlite:///unused.db"
[hirehop]
export_key = "KEY-123456"
[channels.log]
type = "console"
  [[channels.log.subscriptions]]
  events = ["*"]
"""


async def test_wait_set_says_whether_the_event_was_set() -> None:
    event = asyncio.Event()
    assert await wait_set(event, 0.01) is False
    asyncio.get_running_loop().call_soon(event.set)
    assert await wait_set(event, 10) is True


async def stops_when_cancelled(task: asyncio.Task[Any], wake: Callable[[], None]) -> None:
    """Wake ``task`` and cancel it in the same turn of the loop: it must end cancelled."""
    wake()
    task.cancel()
    await asyncio.wait({task}, timeout=5)
    if not task.done():  # the cancellation was lost: end it for good, then fail
        while not task.done():
            task.cancel()
            await asyncio.wait({task}, timeout=1)
        raise AssertionError("the loop ran on after it was cancelled")
    assert task.cancelled()


async def test_the_router_stops_when_cancelled_as_it_is_woken(tmp_path: Path) -> None:
    path = tmp_path / "subscriptions.toml"
    path.write_text(CONFIG)
    store = SQLiteStore(tmp_path / "n.db")
    await store.migrate()
    try:
        pipeline = Pipeline(load(path, environ={}), store, {"log": FakeSender("log")})
        routed: list[int] = []

        async def route_pending(batch: int = 100, *, catch_up: bool = False) -> int:
            routed.append(1)
            return 0

        pipeline.route_pending = route_pending  # type: ignore[method-assign]
        task = asyncio.create_task(pipeline.run_router(60.0))
        await eventually(lambda: routed, what="the router's first pass")  # now it waits
        await stops_when_cancelled(task, pipeline.wake)
    finally:
        await store.close()


class CountingStore(SQLiteStore):
    claims = 0

    async def claim(self, now: float, lease: float, limit: int) -> Any:
        self.claims += 1
        return await super().claim(now, lease, limit)


async def test_the_outbox_stops_when_cancelled_as_it_is_woken(tmp_path: Path) -> None:
    store = CountingStore(tmp_path / "n.db")
    await store.migrate()
    try:
        outbox = Outbox(store, {"log": FakeSender("log")}, DeliveryConfig(poll_interval=60.0))
        task = asyncio.create_task(outbox.run())
        await eventually(lambda: store.claims, what="the outbox's first claim")  # now it waits
        await stops_when_cancelled(task, outbox.wake)
    finally:
        await store.close()


class FakeConnection:
    """Enough of an asyncpg connection for the listener."""

    def __init__(self) -> None:
        self.on_terminated: Callable[[Any], None] | None = None
        self.closed = False

    def add_termination_listener(self, callback: Callable[[Any], None]) -> None:
        self.on_terminated = callback

    async def add_listener(self, channel: str, callback: Callable[..., None]) -> None:
        pass

    async def fetchval(self, sql: str, timeout: float | None = None) -> int:  # noqa: ASYNC109
        return 1

    async def close(self, timeout: float | None = None) -> None:  # noqa: ASYNC109
        self.closed = True

    def terminate(self) -> None:
        assert self.on_terminated is not None
        self.on_terminated(self)


async def test_the_listener_closes_when_its_connection_drops_as_it_is_closed() -> None:
    connections: list[FakeConnection] = []

    async def connect() -> FakeConnection:
        connections.append(FakeConnection())
        return connections[-1]

    listener = Listener(connect, check_every=60.0)
    await listener.add(lambda word: None)
    for _ in range(5):  # a few turns of the loop: the supervising task now waits
        await asyncio.sleep(0)

    async def drop_and_close() -> None:
        connections[0].terminate()  # as the server drops it, the service shuts down
        await listener.close()

    closing = asyncio.create_task(drop_and_close())
    await asyncio.wait({closing}, timeout=5)
    if not closing.done():
        closing.cancel()
        raise AssertionError("close() waited on a listener that ran on after it was cancelled")
    await closing
    assert len(connections) == 1, "no reconnect after close()"
    assert connections[0].closed
