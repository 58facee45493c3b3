"""The Store contract, run against every backend (``store`` is SQLite, then PostgreSQL).

Times are explicit: the store takes ``now`` as an argument, so nothing here sleeps.
"""

from __future__ import annotations

import asyncio
import itertools
import sqlite3
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import pytest

from notifybot.store import Delivery, DeliveryStatus, NewDelivery, Store
from notifybot.store.postgres import PostgresStore
from notifybot.store.sqlite import SQLiteStore
from tests.polling import eventually

from .conftest import admin_connection

T0 = 1_700_000_000.0
LEASE = 30.0
BODY = '{"event": "job.updated", "data": {"NAME": "Smith & Sons ► £5 <b>"}}'.encode()
_digests = itertools.count()

PENDING, SENDING, SENT, DEAD = (DeliveryStatus.PENDING, DeliveryStatus.SENDING,
                                DeliveryStatus.SENT, DeliveryStatus.DEAD)


def new(channel: str = "ops", subscription: str = "s0", destination: str | None = None,
        pace: float = 0.0, payload: Mapping[str, Any] | None = None,
        error: str | None = None) -> NewDelivery:
    return NewDelivery(channel, subscription, destination or f"slack:#{channel}", pace,
                       payload if payload is not None else {"text": f"to {channel}"}, error)


async def add(store: Store, now: float = T0, name: str = "job.updated") -> int:
    event_id, is_new = await store.add_event(name, BODY, f"digest-{next(_digests)}",
                                             "application/json", {}, now)
    assert is_new
    return event_id


async def enqueue(store: Store, *deliveries: NewDelivery, now: float = T0) -> int:
    """A new event routed to ``deliveries``; returns the event id."""
    event_id = await add(store, now)
    assert await store.route(event_id, deliveries, now) == len(deliveries)
    return event_id


async def status_of(store: Store, delivery_id: int) -> Delivery:
    [found] = [d for d in await store.list_deliveries(limit=1000) if d.id == delivery_id]
    return found


def ids(deliveries: list[Delivery]) -> list[int]:
    return [d.id for d in deliveries]


# -- events ---------------------------------------------------------------------------


async def test_add_event_is_new_once_per_digest(store: Store) -> None:
    first = await store.add_event("job.updated", BODY, "abc", "application/json", {}, T0)
    again = await store.add_event("job.updated", BODY, "abc", "application/json", {}, T0 + 5)
    other = await store.add_event("job.updated", BODY, "abd", "application/json", {}, T0 + 6)
    assert first[1] is True
    assert again == (first[0], False)
    assert other[1] is True and other[0] != first[0]
    stored = await store.get_event(first[0])
    assert stored is not None and stored.received_at == T0  # the duplicate changed nothing


@pytest.mark.parametrize("turns", [1, 3])
async def test_a_write_goes_on_when_its_caller_gives_up(store: Store, turns: int) -> None:
    # The webhook endpoint stops waiting after its storage timeout (a 503); the
    # event must then still be stored, not cut short half way through its write.
    adding = asyncio.ensure_future(
        store.add_event("job.updated", BODY, "given-up", "application/json", {}, T0))
    for _ in range(turns):
        await asyncio.sleep(0)  # the write starts (a caller awaits it), or gets further
    adding.cancel()
    with pytest.raises(asyncio.CancelledError):
        await adding
    again = await store.add_event("job.updated", BODY, "given-up", "application/json", {}, T0)
    assert again[1] is False, "the first write committed although nobody waited for it"
    assert [e.id for e in await store.unrouted_events(10)] == [again[0]]


@asynccontextmanager
async def events_held(store: Store) -> AsyncIterator[None]:
    """Another connection holds the events table: the store's inserts wait until the end."""
    if isinstance(store, SQLiteStore):
        other = sqlite3.connect(store.path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # the one write lock (busy_timeout: 10 s)
        try:
            yield
        finally:
            other.execute("ROLLBACK")
            other.close()
        return
    assert isinstance(store, PostgresStore)
    admin = await admin_connection()
    holding = admin.transaction()
    await holding.start()
    try:
        await admin.execute(f"LOCK TABLE {store.schema}.events IN SHARE MODE")
        yield
    finally:
        await holding.rollback()
        await admin.close()


async def give_up_adding(store: Store, digest: str) -> None:
    """Start storing an event, let the write start (and wait for the table), give up."""
    adding = asyncio.ensure_future(
        store.add_event("job.updated", BODY, digest, "application/json", {}, T0))
    for _ in range(5):
        await asyncio.sleep(0)
    adding.cancel()
    with pytest.raises(asyncio.CancelledError):
        await adding


async def test_a_write_committed_after_its_caller_gave_up_wakes_the_listener(
        store: Store) -> None:
    # receive() wakes the router when it gives up, but the write may commit later:
    # the router must hear of that event then, not at its next poll.
    woken: list[str] = []
    await store.listen(woken.append)
    async with events_held(store):
        await give_up_adding(store, "late")
        assert woken == []
    await eventually(lambda: "events" in woken, what="a wake-up once the write committed")
    assert len(await store.unrouted_events(10)) == 1


async def test_a_given_up_duplicate_wakes_nobody(store: Store) -> None:
    # A webhook sent twice: the second write finds the digest stored, so there is
    # nothing new to route, and no wake-up for it.
    first, _ = await store.add_event("job.updated", BODY, "twice", "application/json", {}, T0)
    woken: list[str] = []
    await store.listen(woken.append)
    async with events_held(store):
        await give_up_adding(store, "twice")
    # Written after the given-up one (same digest, so it waits for it): once it is
    # answered, the given-up write has ended too.
    assert await store.add_event("job.updated", BODY, "twice", "application/json", {},
                                 T0) == (first, False)
    await asyncio.sleep(0)  # a done-callback runs a turn after its task ends
    assert woken == []


async def test_events_stored_together_are_each_new_once(store: Store) -> None:
    # SQLite stores events that arrive together in one INSERT (group commit).
    before = await store.add_event("job.updated", BODY, "seen", "application/json", {}, T0)
    digests = [f"burst-{i % 40}" for i in range(60)] + ["seen"]
    results = await asyncio.gather(*(
        store.add_event("job.updated", BODY + str(i).encode(), digest, "application/json",
                        {"n": str(i)}, T0 + i) for i, digest in enumerate(digests)))
    by_digest: dict[str, set[int]] = {}
    for digest, (event_id, _) in zip(digests, results, strict=True):
        by_digest.setdefault(digest, set()).add(event_id)
    assert all(len(found) == 1 for found in by_digest.values())  # one id per digest
    assert len({next(iter(found)) for found in by_digest.values()}) == 41
    news = [digest for digest, (_, is_new) in zip(digests, results, strict=True) if is_new]
    assert sorted(news) == sorted(set(digests) - {"seen"})  # each new digest new exactly once
    assert results[-1] == (before[0], False)
    stored = await store.get_event(results[3][0])
    assert stored is not None and stored.body == BODY + b"3" and stored.headers == {"n": "3"}


async def test_get_event_round_trips_body_and_headers(store: Store) -> None:
    body = BODY + b"\x00\xff\xfe not utf-8"
    headers = {"Content-Type": "application/x-www-form-urlencoded", "X-Note": "€ ► \"q\""}
    event_id, _ = await store.add_event("invoice.status.updated", body, "d1",
                                        "application/x-www-form-urlencoded", headers, T0)
    stored = await store.get_event(event_id)
    assert stored is not None
    assert (stored.id, stored.name, stored.received_at) == (event_id, "invoice.status.updated", T0)
    assert stored.body == body and isinstance(stored.body, bytes)
    assert stored.content_type == "application/x-www-form-urlencoded"
    assert dict(stored.headers) == headers
    assert await store.get_event(event_id + 1000) is None


async def test_unrouted_events_oldest_first_until_routed(store: Store) -> None:
    a, b, c = [await add(store, T0 + i) for i in range(3)]
    assert [e.id for e in await store.unrouted_events(10)] == [a, b, c]
    assert [e.id for e in await store.unrouted_events(2)] == [a, b]
    assert await store.route(b, [], T0 + 10) == 0  # no subscriber matched: routed all the same
    assert await store.route(a, [new()], T0 + 10) == 1
    assert [e.id for e in await store.unrouted_events(10)] == [c]


# -- route ----------------------------------------------------------------------------


async def test_only_the_first_routing_of_an_event_enqueues(store: Store) -> None:
    # Two instances mid-reload may plan different deliveries for one event: only
    # the first to route it enqueues, so a channel never hears it twice.
    event_id = await add(store)
    batch = [new("ops"), new("ops", "s1"), new("warehouse")]
    assert await store.route(event_id, batch, T0) == 3
    assert await store.route(event_id, batch, T0 + 1) == 0
    assert await store.route(event_id, [*batch, new("accounts")], T0 + 2) == 0
    deliveries = await store.list_deliveries(event_id=event_id)
    assert sorted((d.channel, d.subscription) for d in deliveries) == [
        ("ops", "s0"), ("ops", "s1"), ("warehouse", "s0")]
    assert (await store.counts())[PENDING] == 3


async def test_route_stores_what_claim_returns(store: Store) -> None:
    payload = {"text": "Job 15471 ► Booked", "blocks": [{"type": "section"}], "n": 2.5}
    event_id = await enqueue(store, new("ops", "invoice_paid", "slack:#acc", payload=payload))
    [claimed] = await store.claim(T0, LEASE, 10)
    assert claimed.event_id == event_id and claimed.event_name == "job.updated"
    assert (claimed.channel, claimed.subscription, claimed.destination) == (
        "ops", "invoice_paid", "slack:#acc")
    assert claimed.payload == payload
    assert claimed.created_at == T0 and claimed.next_attempt_at == T0


async def test_route_with_error_makes_a_dead_delivery(store: Store) -> None:
    event_id = await enqueue(store, new("ops", error="template failed: 'x' is undefined"),
                             new("log"))
    [dead] = await store.list_deliveries(status=DEAD)
    assert dead.event_id == event_id and dead.channel == "ops"
    assert dead.attempts == 0 and dead.last_error == "template failed: 'x' is undefined"
    assert [d.channel for d in await store.claim(T0, LEASE, 10)] == ["log"]


# -- claim ----------------------------------------------------------------------------


async def test_claim_moves_pending_to_sending(store: Store) -> None:
    await enqueue(store, new("ops"))
    [claimed] = await store.claim(T0 + 1, LEASE, 10)
    assert claimed.status is SENDING and claimed.attempts == 1
    assert (await status_of(store, claimed.id)).status is SENDING
    assert await store.claim(T0 + 2, LEASE, 10) == []  # in flight: nobody else gets it


async def test_claim_takes_oldest_first_up_to_limit(store: Store) -> None:
    for i in range(5):
        await enqueue(store, new("ops"), now=T0 + i)
    first = await store.claim(T0 + 10, LEASE, 2)
    second = await store.claim(T0 + 10, LEASE, 2)
    third = await store.claim(T0 + 10, LEASE, 2)
    assert len(first) == 2 and len(second) == 2 and len(third) == 1
    assert ids(first) + ids(second) + ids(third) == sorted(ids(first + second + third))


async def test_claim_with_no_room_claims_nothing(store: Store) -> None:
    await enqueue(store, new("tg", destination="telegram:1", pace=1.0), new("log"))
    assert await store.claim(T0, LEASE, 0) == []
    assert (await store.counts())[PENDING] == 2


async def test_claim_respects_next_attempt_at(store: Store) -> None:
    await enqueue(store, new("ops"))
    [claimed] = await store.claim(T0, LEASE, 10)
    await store.retry_later(claimed.id, T0 + 60, "503 Service Unavailable", T0 + 1)
    retry = await status_of(store, claimed.id)
    assert retry.status is PENDING and retry.next_attempt_at == T0 + 60
    assert retry.last_error == "503 Service Unavailable"
    assert await store.claim(T0 + 59.9, LEASE, 10) == []
    [again] = await store.claim(T0 + 60, LEASE, 10)
    assert again.id == claimed.id and again.attempts == 2


async def test_paced_destination_yields_its_head_in_order(store: Store) -> None:
    paced = [new(f"tg{i}", destination="telegram:-100", pace=1.0) for i in range(3)]
    free = [new(f"log{i}", destination="console", pace=0.0) for i in range(3)]
    await enqueue(store, *paced, *free)
    first = await store.claim(T0, LEASE, 10)
    by_dest = {d: [c for c in first if c.destination == d] for d in ("telegram:-100", "console")}
    assert len(by_dest["console"]) == 3  # pace 0: everything due at once
    [head] = by_dest["telegram:-100"]
    assert head.channel == "tg0"
    # Never two in flight: even after the pace has passed, the head holds the rest back.
    assert await store.claim(T0 + 5, LEASE, 10) == []
    await store.mark_sent(head.id, "ok", T0 + 5)
    # The pace counts from the end of the previous send, not from its claim.
    assert await store.claim(T0 + 5.9, LEASE, 10) == []
    [second] = await store.claim(T0 + 6, LEASE, 10)
    assert second.channel == "tg1"
    await store.mark_sent(second.id, "ok", T0 + 6.1)
    assert await store.claim(T0 + 7.0, LEASE, 10) == []
    [third] = await store.claim(T0 + 7.1, LEASE, 10)
    assert third.channel == "tg2"
    assert head.id < second.id < third.id


async def test_paced_head_waiting_for_retry_holds_back_the_rest(store: Store) -> None:
    await enqueue(store, *[new(f"tg{i}", destination="telegram:1", pace=1.0) for i in range(2)])
    [head] = await store.claim(T0, LEASE, 10)
    await store.retry_later(head.id, T0 + 100, "timeout", T0 + 1)
    assert await store.claim(T0 + 50, LEASE, 10) == []  # order holds: tg1 waits for tg0
    [again] = await store.claim(T0 + 100, LEASE, 10)
    assert again.id == head.id


async def test_retry_later_blocked_until_parks_the_destination(store: Store) -> None:
    await enqueue(store, new("a", destination="slack:#a"), new("b", destination="slack:#a"),
                  new("c", destination="slack:#c"))
    first = await store.claim(T0, LEASE, 1)
    assert [d.channel for d in first] == ["a"]
    await store.retry_later(first[0].id, T0 + 5, "429", T0, blocked_until=T0 + 30)
    [c] = await store.claim(T0 + 1, LEASE, 10)
    assert c.channel == "c"
    assert await store.claim(T0 + 29, LEASE, 10) == []
    assert sorted(d.channel for d in await store.claim(T0 + 30, LEASE, 10)) == ["a", "b"]


async def test_blocked_until_only_ever_extends(store: Store) -> None:
    await enqueue(store, new("a", destination="slack:#a"), new("b", destination="slack:#a"))
    a, b = await store.claim(T0, LEASE, 10)
    await store.retry_later(a.id, T0, "429", T0, blocked_until=T0 + 30)
    await store.retry_later(b.id, T0, "429", T0, blocked_until=T0 + 10)
    assert await store.claim(T0 + 20, LEASE, 10) == []
    assert len(await store.claim(T0 + 30, LEASE, 10)) == 2


async def test_expired_lease_returns_to_pending_on_next_claim(store: Store) -> None:
    await enqueue(store, new("ops"))
    [claimed] = await store.claim(T0, LEASE, 10)
    assert await store.claim(T0 + LEASE, LEASE, 10) == []  # lease still holds at its end
    [again] = await store.claim(T0 + LEASE + 1, 60.0, 10)
    assert again.id == claimed.id and again.attempts == 2
    # The late worker's outcome is still recorded (the delivery is sending again).
    await store.mark_sent(claimed.id, "late", T0 + LEASE + 2)
    assert (await status_of(store, claimed.id)).status is SENT


async def test_expired_lease_of_a_paced_head(store: Store) -> None:
    # A pace longer than the lease: the claim that finds the lease expired may not send.
    await enqueue(store, *[new(f"tg{i}", destination="telegram:1", pace=100.0) for i in range(2)])
    [head] = await store.claim(T0, LEASE, 10)
    assert await store.claim(T0 + LEASE + 1, LEASE, 10) == []
    assert (await status_of(store, head.id)).status is PENDING
    [again] = await store.claim(T0 + 100, LEASE, 10)
    assert again.id == head.id and again.attempts == 2  # the head again, not the one behind


# -- outcomes ---------------------------------------------------------------------------


async def test_mark_sent_records_the_receipt(store: Store) -> None:
    await enqueue(store, new("ops"))
    [claimed] = await store.claim(T0, LEASE, 10)
    await store.retry_later(claimed.id, T0, "timeout", T0)
    [claimed] = await store.claim(T0 + 1, LEASE, 10)
    await store.mark_sent(claimed.id, "ts=1712345678.000100", T0 + 2)
    sent = await status_of(store, claimed.id)
    assert sent.status is SENT and sent.receipt == "ts=1712345678.000100"
    assert sent.last_error is None and sent.attempts == 2
    assert await store.claim(T0 + 1000, LEASE, 10) == []


async def test_outcomes_only_apply_to_a_delivery_being_sent(store: Store) -> None:
    await enqueue(store, new("ops"))
    [pending] = await store.list_deliveries(status=PENDING)
    await store.mark_sent(pending.id, "nope", T0)
    await store.mark_dead(pending.id, "nope", T0)
    await store.retry_later(pending.id, T0 + 50, "nope", T0)
    assert (await status_of(store, pending.id)).status is PENDING
    assert (await status_of(store, pending.id)).next_attempt_at == T0


async def test_mark_dead(store: Store) -> None:
    await enqueue(store, new("ops"))
    [claimed] = await store.claim(T0, LEASE, 10)
    await store.mark_dead(claimed.id, "invalid_auth", T0 + 1)
    dead = await status_of(store, claimed.id)
    assert dead.status is DEAD and dead.last_error == "invalid_auth"
    assert await store.claim(T0 + 1000, LEASE, 10) == []


async def test_release_returns_to_pending_without_counting_the_attempt(store: Store) -> None:
    await enqueue(store, new("a"), new("b"), new("c"))
    a, b, c = await store.claim(T0, LEASE, 10)
    await store.mark_sent(c.id, "ok", T0)
    await store.release([a.id, b.id, c.id], T0 + 1)
    await store.release([], T0 + 1)
    assert [(d.status, d.attempts) for d in [await status_of(store, i) for i in ids([a, b, c])]
            ] == [(PENDING, 0), (PENDING, 0), (SENT, 1)]
    assert ids(await store.claim(T0 + 1, LEASE, 10)) == [a.id, b.id]  # at once, no lease wait


# -- listing, replay, counts --------------------------------------------------------------


async def test_list_deliveries_filters_newest_first(store: Store) -> None:
    e1 = await enqueue(store, new("a"), new("b"))
    e2 = await enqueue(store, new("a"), new("b", error="bad template"))
    everything = await store.list_deliveries()
    assert ids(everything) == sorted(ids(everything), reverse=True) and len(everything) == 4
    assert [d.event_id for d in await store.list_deliveries(event_id=e1)] == [e1, e1]
    assert [d.channel for d in await store.list_deliveries(status=DEAD)] == ["b"]
    assert len(await store.list_deliveries(status=PENDING)) == 3
    assert len(await store.list_deliveries(status=PENDING, event_id=e2)) == 1
    assert ids(await store.list_deliveries(limit=2)) == ids(everything)[:2]
    assert await store.list_deliveries(status=SENT) == []


async def test_replay_one_delivery(store: Store) -> None:
    await enqueue(store, new("a"), new("b"))
    a, b = await store.claim(T0, LEASE, 10)
    await store.mark_dead(a.id, "invalid_auth", T0)
    await store.mark_sent(b.id, "ok", T0)
    assert await store.replay(delivery_id=b.id, now=T0 + 10) == 0  # sent stays sent
    assert (await status_of(store, b.id)).status is SENT
    assert await store.replay(delivery_id=a.id, now=T0 + 10) == 1
    replayed = await status_of(store, a.id)
    assert (replayed.status, replayed.attempts, replayed.next_attempt_at) == (PENDING, 0, T0 + 10)
    assert replayed.created_at == T0 + 10  # a fresh start for the retry policy's age limit
    [again] = await store.claim(T0 + 10, LEASE, 10)
    assert again.id == a.id and again.attempts == 1


async def test_replay_never_touches_sending(store: Store) -> None:
    await enqueue(store, new("a"))
    [a] = await store.claim(T0, LEASE, 10)
    assert await store.replay(delivery_id=a.id, now=T0) == 0
    assert await store.replay(event_id=a.event_id, now=T0) == 0
    assert (await status_of(store, a.id)).status is SENDING


async def test_replay_dead(store: Store) -> None:
    await enqueue(store, new("a", error="x"), new("b", error="y"), new("c"))
    await enqueue(store, new("d"))
    _, d = await store.claim(T0, LEASE, 10)
    await store.mark_sent(d.id, "ok", T0)
    assert await store.replay(dead=True, now=T0 + 1) == 2
    counts = await store.counts()
    assert (counts[DEAD], counts[PENDING], counts[SENT]) == (0, 2, 1)
    assert await store.replay(dead=True, now=T0 + 2) == 0


async def test_replay_event(store: Store) -> None:
    event_id = await enqueue(store, new("a"), new("b"), new("c", error="x"))
    other = await enqueue(store, new("a", error="x"))
    a, b = await store.claim(T0, LEASE, 10)
    await store.mark_sent(a.id, "ok", T0)
    await store.retry_later(b.id, T0 + 100, "timeout", T0)
    assert await store.replay(event_id=event_id, now=T0 + 1) == 2  # b (pending) and c (dead)
    after = {d.channel: d for d in await store.list_deliveries(event_id=event_id)}
    assert after["a"].status is SENT and after["a"].attempts == 1
    assert (after["b"].status, after["b"].attempts, after["b"].next_attempt_at) == (
        PENDING, 0, T0 + 1)
    assert after["c"].status is PENDING
    assert [d.status for d in await store.list_deliveries(event_id=other)] == [DEAD]


async def test_replay_needs_a_selector(store: Store) -> None:
    with pytest.raises(ValueError, match="replay needs"):
        await store.replay(now=T0)


async def test_counts_every_state(store: Store) -> None:
    assert await store.counts() == dict.fromkeys(DeliveryStatus, 0)
    await enqueue(store, new("a"), new("b"), new("c"), new("d", error="x"))
    a, b, _ = await store.claim(T0, LEASE, 10)
    await store.mark_sent(a.id, "ok", T0)
    await store.retry_later(b.id, T0 + 9, "x", T0)
    assert await store.counts() == {PENDING: 1, SENDING: 1, SENT: 1, DEAD: 1,
                                    DeliveryStatus.SILENCED: 0}


async def test_oldest_pending(store: Store) -> None:
    assert await store.oldest_pending() is None
    await enqueue(store, new("a"), now=T0 + 5)
    await enqueue(store, new("a"), now=T0 + 7)
    assert await store.oldest_pending() == T0 + 5
    first, second = await store.claim(T0 + 10, LEASE, 10)
    assert await store.oldest_pending() is None  # sending is not pending
    await store.mark_sent(first.id, "ok", T0 + 10)
    await store.release([second.id], T0 + 10)
    assert await store.oldest_pending() == T0 + 7


async def test_last_event_at(store: Store) -> None:
    assert await store.last_event_at() is None
    await store.add_event("job.updated", BODY, "a", "application/json", {}, T0 + 3)
    await store.add_event("notifybot.silence", BODY, "b", "application/json", {}, T0 + 9)
    await store.add_event("job.created", BODY, "c", "application/json", {}, T0 + 5)
    assert await store.last_event_at() == T0 + 9
    assert await store.last_event_at(exclude="notifybot.silence") == T0 + 5
    assert await store.last_event_at(exclude="job.updated") == T0 + 9


async def test_migrate_twice_is_harmless(store: Store) -> None:
    event_id = await enqueue(store, new("a"))
    await store.migrate()
    await store.migrate()
    assert [d.event_id for d in await store.list_deliveries()] == [event_id]
    assert (await store.add_event("x", BODY, "fresh", "application/json", {}, T0))[1]


async def test_a_late_outcome_of_an_expired_attempt_changes_nothing(store: Store) -> None:
    await enqueue(store, new("ops"))
    [first] = await store.claim(T0, LEASE, 10)
    [second] = await store.claim(T0 + LEASE + 1, LEASE, 10)  # the lease ran out: taken over
    assert second.attempts == first.attempts + 1
    await store.retry_later(first.id, T0 + 999, "late timeout", T0 + LEASE + 2,
                            attempt=first.claim)
    await store.mark_dead(first.id, "late", T0 + LEASE + 2, attempt=first.claim)
    row = await status_of(store, first.id)
    assert row.status is SENDING, "the running attempt keeps the delivery"
    await store.mark_sent(second.id, "ok", T0 + LEASE + 3, attempt=second.claim)
    assert (await status_of(store, first.id)).status is SENT


async def test_a_rate_limited_attempt_is_given_back(store: Store) -> None:
    await enqueue(store, new("ops"))
    [claimed] = await store.claim(T0, LEASE, 10)
    await store.retry_later(claimed.id, T0 + 5, "429", T0 + 1, blocked_until=T0 + 5,
                            attempt=claimed.claim, count_attempt=False)
    assert (await status_of(store, claimed.id)).attempts == 0


async def test_failed_lists_pending_deliveries_whose_last_attempt_failed(store: Store) -> None:
    await enqueue(store, new("ops"), new("warehouse"))
    first, _ = await store.claim(T0, LEASE, 10)
    await store.retry_later(first.id, T0 + 5, "HTTP 500", T0 + 1)
    [failed] = await store.list_deliveries("failed")
    assert failed.id == first.id and failed.last_error == "HTTP 500"
