"""What only the PostgreSQL store promises: several processes sharing one outbox.

Each PostgresStore instance has its own pool, so two instances stand in for two
notifybot processes; asyncio.gather makes their transactions overlap for real.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import asyncpg
import pytest

from notifybot.config import DeliveryConfig
from notifybot.outbox import Outbox
from notifybot.store import DeliveryStatus, NewDelivery, open_store
from notifybot.store import postgres as postgres_module
from notifybot.store.pg_listener import Listener
from notifybot.store.postgres import PostgresStore
from notifybot.store.schema import POSTGRES_MIGRATIONS
from notifybot.testing import FakeSender
from tests.integration.conftest import fresh_database
from tests.polling import eventually

from .conftest import PgStores, admin_connection, database_url, fresh_schema
from .test_contract import LEASE, T0, add, new

pytestmark = pytest.mark.postgres


async def test_concurrent_claims_never_share_a_delivery_nor_break_pacing(
        pg_stores: PgStores) -> None:
    one, two = await pg_stores(), await pg_stores()
    paced = [f"telegram:{i}" for i in range(4)]
    for _ in range(12):
        batch = [new(f"free{j}", destination=f"console:{j}") for j in range(2)]
        batch += [new(f"paced{j}", destination=key, pace=1.0) for j, key in enumerate(paced)]
        await one.route(await add(one), batch, T0)
    total = 12 * 6
    seen: set[int] = set()
    sent_in_order: dict[str, list[int]] = defaultdict(list)
    for round_ in range(40):
        now = T0 + round_ * 1.0  # exactly one pace apart: at most one per paced destination
        batches = await asyncio.gather(
            *[store.claim(now, LEASE, 3) for _ in range(8) for store in (one, two)])
        claimed = [d for batch in batches for d in batch]
        claimed_ids = [d.id for d in claimed]
        assert len(claimed_ids) == len(set(claimed_ids)), "one delivery claimed twice"
        assert not seen & set(claimed_ids), "a delivery sent already was claimed again"
        for key in paced:
            mine = [d.id for d in claimed if d.destination == key]
            assert len(mine) <= 1, f"two deliveries of paced {key} in one pace"
            sent_in_order[key] += mine
        seen |= set(claimed_ids)
        await asyncio.gather(*[one.mark_sent(i, "ok", now) for i in claimed_ids])
        if len(seen) == total:
            break
    assert len(seen) == total
    assert (await two.counts())[DeliveryStatus.SENT] == total
    for key in paced:
        assert sent_in_order[key] == sorted(sent_in_order[key]) and len(sent_in_order[key]) == 12


async def test_paced_destination_is_never_two_in_flight_across_processes(
        pg_stores: PgStores) -> None:
    one, two = await pg_stores(), await pg_stores()
    await one.route(await add(one), [new(f"c{i}", destination="slack:#x", pace=0.5)
                                     for i in range(5)], T0)
    # Far past the pace, but the head is never marked: nobody may take the next one.
    batches = await asyncio.gather(
        *[store.claim(T0 + k, LEASE, 5) for k in range(10) for store in (one, two)])
    assert len([d for batch in batches for d in batch]) == 1


async def test_concurrent_duplicate_events_store_once(pg_stores: PgStores) -> None:
    one, two = await pg_stores(), await pg_stores()
    results = await asyncio.gather(*[
        store.add_event("job.updated", b"{}", "same", "application/json", {}, T0)
        for _ in range(5) for store in (one, two)])
    assert len({event_id for event_id, _ in results}) == 1
    assert [is_new for _, is_new in results].count(True) == 1


async def test_concurrent_migrations() -> None:
    async with fresh_schema() as schema:
        stores = [PostgresStore(database_url(), schema=schema, pool_size=2) for _ in range(4)]
        try:
            await asyncio.gather(*[store.migrate() for store in stores])
            await stores[0].migrate()
            assert await stores[1].counts() == dict.fromkeys(DeliveryStatus, 0)
        finally:
            for store in stores:
                await store.close()
        admin = await admin_connection()
        try:
            versions = await admin.fetch(f"SELECT version FROM {schema}.schema_version")
        finally:
            await admin.close()
        assert [row[0] for row in versions] == list(range(1, len(POSTGRES_MIGRATIONS) + 1))


class Woken:
    """A ``wake`` callback that remembers what it was told."""

    def __init__(self) -> None:
        self.words: list[str] = []

    def __call__(self, word: str) -> None:
        self.words.append(word)


@asynccontextmanager
async def own_database() -> AsyncIterator[tuple[str, Callable[[str], Awaitable[PostgresStore]]]]:
    """A database of its own (its URL), and stores in it by schema.

    NOTIFY reaches every listener of a database whatever its schema, and an empty
    payload wakes them all: tests that count wake-ups must not share a database
    with tests running beside them in other workers.
    """
    async with fresh_database("nblisten") as url:
        opened: list[PostgresStore] = []

        async def make(schema: str | None) -> PostgresStore:
            store = PostgresStore(url, schema=schema, pool_size=4)
            opened.append(store)
            await store.migrate()
            return store

        try:
            yield url, make
        finally:
            for store in opened:
                await store.close()


async def test_listen_wakes_on_work_from_another_instance() -> None:
    async with own_database() as (_, make):
        await _wakes_on_work_from_another_instance(await make("nb_a"), await make("nb_a"))


async def _wakes_on_work_from_another_instance(listener: PostgresStore,
                                               writer: PostgresStore) -> None:
    woken = Woken()
    await listener.listen(woken)
    event_id = await add(writer)
    await eventually(lambda: "events" in woken.words, what="wake('events') after add_event")
    assert "deliveries" not in woken.words
    await writer.route(event_id, [new("ops")], T0)
    await eventually(lambda: "deliveries" in woken.words, what="wake('deliveries') after route")


async def test_listen_ignores_work_in_another_schema_of_the_database() -> None:
    async with own_database() as (_, make):
        listener, writer = await make("nb_a"), await make("nb_a")
        other = await make("nb_b")  # another deployment, same database
        woken = Woken()
        await listener.listen(woken)
        await other.route(await add(other), [new("ops")], T0)
        await add(writer)  # committed after the other schema's work: notified after it
        await eventually(lambda: woken.words, what="a wake-up for this schema's event")
        assert woken.words == ["events"], "woken by another schema's events or deliveries"


async def test_listen_ignores_what_the_store_itself_wrote() -> None:
    # Its own process woke its router and outbox in memory: a wake-up would only make
    # the router read back the events it was just handed.
    async with own_database() as (_, make):
        store, other = await make("nb_a"), await make("nb_a")
        woken = Woken()
        await store.listen(woken)
        await store.route(await add(store), [new("ops")], T0)
        await add(other)  # committed after the store's own work: notified after it
        await eventually(lambda: woken.words, what="a wake-up for the other instance's event")
        assert woken.words == ["events"], "woken by its own event or deliveries"
        backends = set(store._own_pids)
        assert backends, "the pool's connections are known"
        await store.close()
        # A closed connection's process id may go to another instance's connection.
        assert not store._own_pids & backends


async def test_listen_default_search_path_and_public_schema_hear_each_other() -> None:
    # Both keep their tables in "public": one named it, the other did not.
    async with own_database() as (_, make):
        unnamed, named = await make(None), await make("public")
        await _wakes_on_work_from_another_instance(unnamed, named)
        await _wakes_on_work_from_another_instance(named, unnamed)


class _RefusingConnection:
    """A connection whose LISTEN fails (the server went away mid-handshake)."""

    def __init__(self) -> None:
        self.closed = False

    def add_termination_listener(self, _callback: object) -> None:
        pass

    async def add_listener(self, _channel: str, _callback: object) -> None:
        raise ConnectionResetError("gone")

    async def close(self, **_options: float) -> None:  # asyncpg: close(timeout=...)
        self.closed = True


async def test_listen_closes_a_connection_it_could_not_set_up() -> None:
    opened: list[_RefusingConnection] = []

    async def connect() -> _RefusingConnection:
        opened.append(_RefusingConnection())
        return opened[-1]

    with pytest.raises(ConnectionResetError):
        await Listener(connect).add(Woken())
    assert [conn.closed for conn in opened] == [True]


async def test_listen_wakes_on_a_notification_naming_no_schema() -> None:
    async with own_database() as (url, make):
        listener = await make("nb_a")
        woken = Woken()
        await listener.listen(woken)
        admin = await asyncpg.connect(url)
        try:
            await admin.execute("NOTIFY notifybot_deliveries")  # as before schema payloads
        finally:
            await admin.close()
        await eventually(lambda: "deliveries" in woken.words, what="a wake-up without a schema")


async def test_listen_reconnects_after_the_connection_drops(pg_stores: PgStores) -> None:
    listener, writer = await pg_stores(), await pg_stores()
    woken = Woken()
    await listener.listen(woken)
    assert listener.schema is not None
    name = f"notifybot-listener/{listener.schema}"
    admin = await admin_connection()
    try:
        pids = [r[0] for r in await admin.fetch(
            "SELECT pid FROM pg_stat_activity WHERE application_name = $1", name)]
        assert len(pids) == 1, "exactly one dedicated listener connection"
        await admin.execute("SELECT pg_terminate_backend($1)", pids[0])
        # After reconnecting it wakes everyone: notifications meanwhile are lost.
        await eventually(lambda: {"events", "deliveries"} <= set(woken.words),
                         what="the wake-ups after a reconnect")
        woken.words.clear()
        await writer.route(await add(writer), [new("ops")], T0)
        await eventually(lambda: "deliveries" in woken.words, what="a wake-up on the new connection")
        await listener.close()
        remaining = await admin.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1", name)
        assert remaining == 0, "close() leaves the listener connection open"
    finally:
        await admin.close()


async def test_open_store_picks_postgres() -> None:
    store = open_store("postgresql://nobody@127.0.0.1:1/none")
    assert isinstance(store, PostgresStore)  # and nothing was connected
    await store.close()


def test_schema_name_is_checked() -> None:
    with pytest.raises(ValueError, match="schema"):
        PostgresStore(database_url(), schema="x; DROP TABLE events")


async def test_route_new_delivery_is_claimable_by_the_other_instance(pg_stores: PgStores) -> None:
    one, two = await pg_stores(), await pg_stores()
    await one.route(await add(one), [NewDelivery("ops", "s0", "slack:#ops", 1.0, {"t": 1})], T0)
    [claimed] = await two.claim(T0, LEASE, 10)
    assert claimed.payload == {"t": 1}
    assert await one.claim(T0 + 0.5, LEASE, 10) == []


async def test_pacing_holds_while_other_workers_finish_sends(pg_stores: PgStores) -> None:
    # Workers claim and at once mark sent, all at one instant: a paced destination
    # must yield one delivery in total, however the transactions interleave.
    one, two = await pg_stores(), await pg_stores()
    keys = [f"slack:#{i}" for i in range(10)]
    for _ in range(4):
        await one.route(await add(one), [new(key, destination=key, pace=10.0) for key in keys],
                        T0)
    claimed: list[str] = []

    async def worker(store: PostgresStore) -> None:
        for _ in range(30):
            for delivery in await store.claim(T0, LEASE, 2):
                claimed.append(delivery.destination)
                await store.mark_sent(delivery.id, "ok", T0)

    await asyncio.gather(*[worker(store) for _ in range(6) for store in (one, two)])
    assert sorted(claimed) == sorted(keys)


async def test_claim_skips_what_another_transaction_holds_without_waiting(
        pg_stores: PgStores) -> None:
    store = await pg_stores()
    await store.route(await add(store), [
        new("held", destination="slack:#held", pace=1.0),  # its destination row is locked
        new("head", destination="slack:#head", pace=1.0),  # its head delivery is locked
        new("behind", destination="slack:#head", pace=1.0),
        new("free1", destination="console"), new("free2", destination="console")], T0)
    [free2] = await store.list_deliveries(status=DeliveryStatus.PENDING, limit=1)
    head = next(d for d in await store.list_deliveries() if d.channel == "head")
    other = await admin_connection()  # another process, mid-transaction
    try:
        async with other.transaction():
            schema = store.schema
            await other.execute(
                f"SELECT 1 FROM {schema}.destinations WHERE key = 'slack:#held' FOR UPDATE")
            await other.execute(
                f"SELECT 1 FROM {schema}.deliveries WHERE id = ANY($1::bigint[]) FOR UPDATE",
                [head.id, free2.id])
            claimed = await asyncio.wait_for(store.claim(T0, LEASE, 10), timeout=5)
            # Not "behind": skipping a locked head would break the destination's order.
            assert [d.channel for d in claimed] == ["free1"]
    finally:
        await other.close()
    assert sorted(d.channel for d in await store.claim(T0, LEASE, 10)) == [
        "free2", "head", "held"]


async def test_two_instances_racing_on_one_job_make_one_root_and_keep_its_order(
        pg_stores: PgStores) -> None:
    """Two processes route and deliver a job's events at once: one root, replies in order."""
    one, two = await pg_stores(), await pg_stores()
    chat = FakeSender("ops", kind="slack", destination="slack:#ops")  # the one shared channel

    async def route(store: PostgresStore, job: int, step: int) -> None:
        event_id = await add(store)
        await store.route(event_id, [NewDelivery(
            "ops", "s0", chat.destination, 0.0, {"text": f"job {job} step {step}"},
            thread_key=f"1:job:{job}")], T0)

    # Both instances route the events of three jobs, interleaved and concurrently.
    await asyncio.gather(*[route(one if step % 2 else two, job, step)
                           for step in range(6) for job in (1, 2, 3)])
    settings = DeliveryConfig(poll_interval=0.02, concurrency=8)
    outboxes = [Outbox(store, {"ops": chat}, settings) for store in (one, two)]
    runners = [asyncio.create_task(outbox.run()) for outbox in outboxes]
    try:
        await eventually(lambda: len(chat.sent) == 18, what="18 messages", within=20)
    finally:
        for outbox in outboxes:
            await outbox.stop()
        await asyncio.gather(*runners)
    roots = [c.thread_key for c in chat.contexts if c.root is None]
    assert sorted(roots) == ["1:job:1", "1:job:2", "1:job:3"], "exactly one root per job"
    for job in (1, 2, 3):
        texts = [p["text"] for p, c in zip(chat.sent, chat.contexts, strict=True)
                 if c.thread_key == f"1:job:{job}"]
        ids = [await status_id(one, text) for text in texts]
        assert ids == sorted(ids), f"job {job}'s messages out of order"


async def status_id(store: PostgresStore, text: str) -> int:
    [found] = [d.id for d in await store.list_deliveries(limit=100) if d.payload["text"] == text]
    return found


@pytest.mark.parametrize("turns", [1, 3])
async def test_close_finishes_a_write_whose_caller_gave_up(pg_stores: PgStores,
                                                           turns: int) -> None:
    # The endpoint stops waiting after its storage timeout; a shutdown right after
    # must not cut that write short, and close() returns once it has committed.
    reader, store = await pg_stores(), await pg_stores()  # the first migrates; store has no pool yet
    adding = asyncio.ensure_future(
        store.add_event("job.updated", b"{}", "given-up", "application/json", {}, T0))
    for _ in range(turns):
        await asyncio.sleep(0)
    adding.cancel()
    with pytest.raises(asyncio.CancelledError):
        await adding
    await store.close()
    assert [e.name for e in await reader.unrouted_events(10)] == ["job.updated"]
    # ...and the write did not open a pool again after close() (nor leave its backend).
    assert store._pool is None and not store._own_pids


async def test_close_does_not_wait_forever_for_a_stuck_write(
        pg_stores: PgStores, monkeypatch: pytest.MonkeyPatch) -> None:
    # Someone else holds the events table: the given-up write cannot finish, and
    # shutdown must not hang on it (its transaction is rolled back instead).
    monkeypatch.setattr(postgres_module, "CLOSE_WAIT", 0.3)
    reader, store = await pg_stores(), await pg_stores()
    await store.unrouted_events(1)  # the pool is open
    admin = await admin_connection()
    holding = admin.transaction()
    await holding.start()
    try:
        await admin.execute(f"LOCK TABLE {store.schema}.events IN SHARE MODE")
        adding = asyncio.ensure_future(
            store.add_event("job.updated", b"{}", "stuck", "application/json", {}, T0))
        for _ in range(5):
            await asyncio.sleep(0)
        adding.cancel()
        with pytest.raises(asyncio.CancelledError):
            await adding
        await asyncio.wait_for(store.close(), timeout=10)
    finally:
        await holding.rollback()
        await admin.close()
    assert store._pool is None
    assert await reader.unrouted_events(10) == [], "rolled back, not committed"
