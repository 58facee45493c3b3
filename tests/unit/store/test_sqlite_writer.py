"""SQLite's one writer: events stored and events routed meanwhile share one commit.

Each case queues its writes in one turn of the loop, as a burst does (webhooks
arriving while the router enqueues), and reads the SQL that reached SQLite.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from notifybot.store import NewDelivery
from notifybot.store.sqlite import SQLiteStore
from tests.immutable import immutable, sqlite_files

T0 = 1_770_000_000.0
BODY = b'{"event": "job.updated"}'


def new(payload: Any = None) -> NewDelivery:
    return NewDelivery("ops", "s0", "slack:#ops", 0.0, payload or {"text": "hi"}, None)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLiteStore]:
    store = SQLiteStore(tmp_path / "n.db")
    await store.migrate()
    yield store
    await store.close()


async def traced(store: SQLiteStore) -> list[str]:
    """The statements SQLite runs from now on, in order (appended from its thread)."""
    statements: list[str] = []
    await (await store._conn()).set_trace_callback(statements.append)
    return statements


def add(store: SQLiteStore, digest: str, body: Any = BODY) -> Any:
    return store.add_event("job.updated", body, digest, "application/json", {}, T0)


async def test_events_and_a_routing_queued_together_share_one_commit(store: SQLiteStore) -> None:
    first, _ = await add(store, "first")
    statements = await traced(store)
    *stored, added = await asyncio.gather(add(store, "a"), add(store, "b"),
                                          store.route_many([(first, [new()])], T0))
    assert added == 1 and all(is_new for _, is_new in stored)
    verbs = [s.split()[0] + (" " + s.split()[2] if s.startswith("INSERT") else "")
             for s in statements]
    assert verbs.count("BEGIN") == 1 and verbs.count("COMMIT") == 1, statements
    begin, commit = verbs.index("BEGIN"), verbs.index("COMMIT")
    inside = verbs[begin:commit]
    assert "INSERT events" in inside and "UPDATE" in inside and "INSERT deliveries" in inside
    assert [e.id for e in await store.unrouted_events(10)] == [i for i, _ in stored]


async def test_a_routing_that_fails_in_a_group_costs_the_events_nothing(
        store: SQLiteStore) -> None:
    first, _ = await add(store, "first")
    unwritable = new({"text": object()})  # its payload cannot be JSON: its INSERT fails
    results = await asyncio.gather(add(store, "a"), store.route_many([(first, [unwritable])], T0),
                                   add(store, "b"), return_exceptions=True)
    assert isinstance(results[1], TypeError)
    assert all(isinstance(r, tuple) and r[1] for r in (results[0], results[2])), results
    unrouted = [e.id for e in await store.unrouted_events(10)]
    assert unrouted == [first, results[0][0], results[2][0]], "the failed routing left no trace"


async def test_a_row_refused_in_a_group_costs_the_routing_nothing(store: SQLiteStore) -> None:
    first, _ = await add(store, "first")
    unbindable: Any = object()  # not bytes: sqlite3 cannot bind it, so its INSERT fails
    results = await asyncio.gather(add(store, "a"), add(store, "bad", unbindable),
                                   store.route_many([(first, [new()])], T0),
                                   return_exceptions=True)
    assert isinstance(results[1], sqlite3.Error) and results[2] == 1, results
    assert [d.event_id for d in await store.list_deliveries()] == [first]
    assert [e.id for e in await store.unrouted_events(10)] == [results[0][0]]  # type: ignore[index]


async def test_a_database_that_takes_no_write_fails_the_whole_group_at_once(
        store: SQLiteStore, tmp_path: Path) -> None:
    first, _ = await add(store, "first")
    statements = await traced(store)
    with immutable(sqlite_files(tmp_path / "n.db")):
        results = await asyncio.gather(add(store, "a"), store.route_many([(first, [new()])], T0),
                                       return_exceptions=True)
    assert all(isinstance(r, sqlite3.OperationalError) for r in results), results
    assert sum(s.startswith("BEGIN") for s in statements) == 1, "no second try of each part"


async def test_a_commit_that_fails_leaves_no_transaction_open(
        store: SQLiteStore, tmp_path: Path) -> None:
    # A deferred foreign key fails at COMMIT, and SQLite then keeps the transaction
    # open: the next events would be written inside it and never committed.
    with pytest.raises(sqlite3.IntegrityError):
        async with store._tx() as conn:
            await conn.execute("PRAGMA defer_foreign_keys = ON")
            await conn.execute("INSERT INTO delivery_events (delivery_id, event_id) "
                               "VALUES (9999, 9999)")
    event_id, is_new = await add(store, "after")
    assert is_new
    with sqlite3.connect(tmp_path / "n.db") as other:  # what a restart would find
        assert other.execute("SELECT id FROM events").fetchall() == [(event_id,)]
