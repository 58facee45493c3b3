"""The second delivery model's contract (design §7), on SQLite and PostgreSQL.

Idempotency keys, deliveries made after routing, gathering (folds, digests),
held deliveries, silenced ones, threads and their order, grouped outcomes.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from notifybot.store import DeliveryStatus, NewDelivery, Store
from notifybot.store.base import DeliveryKind, Outcome, ThreadMark, ThreadRoot
from notifybot.store.schema import SQLITE_MIGRATIONS
from notifybot.store.sqlite import SQLiteStore

from .test_contract import LEASE, T0, add, ids, new, status_of

SENT, PENDING, DEAD = DeliveryStatus.SENT, DeliveryStatus.PENDING, DeliveryStatus.DEAD


def threaded(channel: str, thread: str | None, *, pace: float = 0.0,
             destination: str = "slack:#ops") -> NewDelivery:
    return NewDelivery(channel, "s0", destination, pace, {"text": channel}, thread_key=thread)


async def route_one(store: Store, *deliveries: NewDelivery, now: float = T0) -> int:
    event_id = await add(store, now)
    await store.route(event_id, deliveries, now)
    return event_id


async def test_an_event_message_is_keyed_by_event_channel_and_subscription(store: Store) -> None:
    event_id = await route_one(store, new("ops"))
    [delivery] = await store.list_deliveries()
    assert delivery.key == f"e{event_id}:ops:s0"
    assert (delivery.kind, delivery.event_ids) == (DeliveryKind.MESSAGE, (event_id,))


async def test_enqueue_after_routing_never_makes_one_twice(store: Store) -> None:
    event_id = await route_one(store, new("ops"))
    [origin] = await store.list_deliveries()
    fallback = NewDelivery("oncall", "fallback", "email:oncall", 0.0, {"text": "x"},
                           key=f"fallback:{origin.id}", event_ids=(event_id,),
                           kind=DeliveryKind.FALLBACK, origin_id=origin.id)
    assert await store.enqueue([fallback], T0 + 1) == 1
    assert await store.enqueue([fallback], T0 + 2) == 0  # a second instance, a restart
    made = [d for d in await store.list_deliveries() if d.kind is DeliveryKind.FALLBACK]
    assert [(d.origin_id, d.event_id, d.channel) for d in made] == [(origin.id, event_id, "oncall")]


async def test_route_many_routes_a_burst_in_one_go_and_each_event_once(store: Store) -> None:
    events = [await add(store) for _ in range(5)]
    batch = [(event_id, [new("ops"), new("log", destination="console")]) for event_id in events]
    assert await store.route_many(batch, T0) == 10
    assert await store.route_many(batch, T0 + 1) == 0
    assert await store.unrouted_events(10) == []


async def test_gathered_events_join_the_open_delivery_until_it_is_claimed(store: Store) -> None:
    fold = NewDelivery("ops", "s0", "slack:#ops", 0.0, {}, gather="fold:ops:s0:1:job:7",
                       not_before=T0 + 30, kind=DeliveryKind.FOLDED)
    first = await route_one(store, fold)
    second = await route_one(store, fold, now=T0 + 5)
    [open_fold] = await store.list_deliveries()
    assert open_fold.event_ids == (first, second)
    assert open_fold.not_before == T0 + 30 and open_fold.payload == {}
    assert await store.claim(T0 + 29, LEASE, 10) == []  # held until the wait is over
    [claimed] = await store.claim(T0 + 30, LEASE, 10)
    assert claimed.event_ids == (first, second)
    late = await route_one(store, fold, now=T0 + 31)  # the fold is being sent: a new one starts
    newest = (await store.list_deliveries())[0]
    assert newest.id != claimed.id and newest.event_ids == (late,)
    assert ids(await store.list_deliveries(event_id=second)) == [claimed.id]


async def test_a_silenced_delivery_is_kept_never_claimed_and_replayable(store: Store) -> None:
    await route_one(store, NewDelivery("ops", "s0", "slack:#ops", 0.0, {"text": "x"},
                                       status=DeliveryStatus.SILENCED, note="silence 3"))
    [muted] = await store.list_deliveries(status=DeliveryStatus.SILENCED)
    assert muted.note == "silence 3"
    assert await store.claim(T0 + 100, LEASE, 10) == []
    assert await store.replay(delivery_id=muted.id, now=T0 + 200) == 1
    assert ids(await store.claim(T0 + 200, LEASE, 10)) == [muted.id]


async def test_a_held_delivery_does_not_hold_back_a_paced_destination(store: Store) -> None:
    held = NewDelivery("ops", "digest", "slack:#ops", 1.0, {}, gather="digest:ops:d:0",
                       not_before=T0 + 3600, kind=DeliveryKind.DIGEST)
    await route_one(store, held)
    await route_one(store, new("ops", destination="slack:#ops", pace=1.0))
    [claimed] = await store.claim(T0, LEASE, 10)
    assert claimed.kind is DeliveryKind.MESSAGE


async def test_a_thread_goes_one_message_at_a_time_in_order(store: Store) -> None:
    await route_one(store, threaded("a", "1:job:7"), threaded("b", "1:job:7"),
                    threaded("c", "1:job:8"), threaded("d", None))
    first = await store.claim(T0, LEASE, 10)
    assert [d.channel for d in first] == ["a", "c", "d"]  # b waits for a: its root
    assert await store.claim(T0 + 1, LEASE, 10) == []
    await store.mark_sent(first[0].id, "ok", T0 + 1)
    assert [d.channel for d in await store.claim(T0 + 1, LEASE, 10)] == ["b"]


async def test_a_failed_message_holds_its_thread_until_it_is_finished(store: Store) -> None:
    await route_one(store, threaded("a", "1:job:7"), threaded("b", "1:job:7"))
    [a] = await store.claim(T0, LEASE, 10)
    await store.retry_later(a.id, T0 + 10, "slack: timeout", T0)
    assert await store.claim(T0 + 5, LEASE, 10) == []  # b would overtake its root
    [again] = await store.claim(T0 + 10, LEASE, 10)
    await store.mark_dead(again.id, "slack: invalid_auth", T0 + 11)
    assert [d.channel for d in await store.claim(T0 + 11, LEASE, 10)] == ["b"]


async def test_threads_keep_their_root_until_forgotten_or_too_old(store: Store) -> None:
    await route_one(store, threaded("a", "1:job:7"), threaded("b", "1:job:7"))
    [a] = await store.claim(T0, LEASE, 10)
    mark = ThreadMark("slack:#ops", "1:job:7", "1700000000.000100", root=True)
    await store.record([Outcome(a.id, SENT, a.claim, receipt="ts", handle=mark.handle,
                                thread=mark)], T0 + 1)
    assert await store.thread_root("slack:#ops", "1:job:7", since=T0 - 100) == ThreadRoot(mark.handle)
    assert await store.thread_root("slack:#ops", "1:job:7", since=T0 + 2) is None  # too old
    assert await store.thread_root("slack:#other", "1:job:7", since=0) is None
    sent = await status_of(store, a.id)
    assert (sent.handle, sent.thread_role) == (mark.handle, "root")
    await store.forget_thread("slack:#ops", "1:job:7", "someone else's")
    assert await store.thread_root("slack:#ops", "1:job:7", since=0) == ThreadRoot(mark.handle)
    await store.forget_thread("slack:#ops", "1:job:7", mark.handle)
    assert await store.thread_root("slack:#ops", "1:job:7", since=0) is None


async def test_a_claim_brings_each_deliverys_thread_root(store: Store) -> None:
    await route_one(store, threaded("a", "1:job:7"), threaded("b", "1:job:7"),
                    threaded("c", None))
    first = await store.claim(T0, LEASE, 10)
    assert [(d.channel, d.root_known, d.root) for d in first] == [
        ("a", True, None), ("c", True, None)]  # a starts the thread; c has none
    mark = ThreadMark("slack:#ops", "1:job:7", "1700000000.000100", root=True, subject="Job 7")
    await store.record([Outcome(first[0].id, SENT, first[0].claim, handle=mark.handle,
                                thread=mark)], T0 + 1)
    [b] = await store.claim(T0 + 2, LEASE, 10)
    assert (b.channel, b.root_known, b.root) == ("b", True, ThreadRoot(mark.handle, "Job 7"))
    assert b.root is not None and b.root.created_at == T0 + 1  # its age: thread_max_age
    [listed] = [d for d in await store.list_deliveries() if d.id == b.id]
    assert not listed.root_known  # only a claim reads the root


async def test_a_late_outcome_marks_no_thread(store: Store) -> None:
    await route_one(store, threaded("a", "1:job:7"))
    [a] = await store.claim(T0, LEASE, 10)
    [again] = await store.claim(T0 + LEASE + 1, LEASE, 10)  # the lease ran out
    mark = ThreadMark("slack:#ops", "1:job:7", "late", root=True)
    await store.record([Outcome(a.id, SENT, a.claim, handle="late", thread=mark)], T0 + 40)
    assert await store.thread_root("slack:#ops", "1:job:7", since=0) is None
    assert (await status_of(store, again.id)).status is DeliveryStatus.SENDING


async def test_outcomes_recorded_together(store: Store) -> None:
    await route_one(store, new("a"), new("b"), new("c", destination="tg:1", pace=2.0))
    a, b, c = await store.claim(T0, LEASE, 10)
    await store.record([
        Outcome(a.id, SENT, a.claim, receipt="ok"),
        Outcome(b.id, PENDING, b.claim, error="slack: 429", retry_at=T0 + 30,
                count_attempt=False, blocked_until=T0 + 30, destination=b.destination),
        Outcome(c.id, DEAD, c.claim, error="telegram: chat not found", pace_key="tg:1"),
    ], T0 + 1)
    found = {d.channel: d for d in await store.list_deliveries()}
    assert found["a"].status is SENT and found["a"].receipt == "ok"
    assert (found["b"].status, found["b"].attempts, found["b"].last_error) == (
        PENDING, 0, "slack: 429")
    assert found["c"].status is DEAD
    await route_one(store, new("d", destination="slack:#b"), new("e", destination="tg:1", pace=2.0),
                    now=T0 + 2)
    assert await store.claim(T0 + 2.5, LEASE, 10) == []  # #b blocked to T0+30; tg paced to T0+3
    assert [d.channel for d in await store.claim(T0 + 3, LEASE, 10)] == ["e"]


async def test_list_deliveries_by_channel_and_time(store: Store) -> None:
    await route_one(store, new("a"), new("b"))
    await route_one(store, new("a"), now=T0 + 60)
    assert [d.created_at for d in await store.list_deliveries(channel="a")] == [T0 + 60, T0]
    assert [d.channel for d in await store.list_deliveries(since=T0 + 30)] == ["a"]


async def test_waiting_since_lists_what_escalation_needs(store: Store) -> None:
    await route_one(store, new("ops"))
    await route_one(store, new("ops"), now=T0 + 600)
    old = await store.waiting_since("ops", before=T0 + 300, limit=10)
    assert [d.created_at for d in old] == [T0]
    assert await store.waiting_since("other", before=T0 + 300, limit=10) == []


async def test_an_old_sqlite_database_is_upgraded_keeping_its_deliveries(tmp_path: Path) -> None:
    path = tmp_path / "v1.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        for statement in SQLITE_MIGRATIONS[0]:
            db.execute(statement)
        db.execute("INSERT INTO schema_version VALUES (1)")
        db.execute("INSERT INTO events (digest, received_at, name, content_type, headers, body) "
                   "VALUES ('d', 1, 'job.updated', 'application/json', '{}', x'7b7d')")
        db.execute("INSERT INTO deliveries (event_id, channel, subscription, destination, status, "
                   "payload, created_at, updated_at, next_attempt_at) "
                   "VALUES (1, 'ops', 's0', 'slack:#ops', 'dead', '{\"text\": \"x\"}', 1, 1, 1)")
    store = SQLiteStore(path)
    try:
        assert await store.migrate() == f"upgraded from schema version 1 to {len(SQLITE_MIGRATIONS)}"
        [kept] = await store.list_deliveries()
        assert (kept.key, kept.status, kept.payload) == ("e1:ops:s0", DEAD, {"text": "x"})
        assert await store.migrate() == f"up to date (schema version {len(SQLITE_MIGRATIONS)})"
    finally:
        await store.close()


async def test_destinations_whose_threads_all_wait_do_not_crowd_out_a_free_one(
        store: Store) -> None:
    # Three destinations each with a thread whose first message is retrying, and the
    # second due; one more destination with a free message. A claim of 3 finds it.
    for name in ("a", "b", "c"):
        await route_one(store, threaded(name, "1:job:7", destination=f"slack:#{name}"),
                        threaded(name, "1:job:7", destination=f"slack:#{name}"))
    first = await store.claim(T0, LEASE, 10)
    for d in first:
        await store.retry_later(d.id, T0 + 600, "slack: timeout", T0)
    await route_one(store, new("z", destination="slack:#z"), now=T0 + 1)
    assert [d.channel for d in await store.claim(T0 + 2, LEASE, 3)] == ["z"]


async def test_a_late_outcome_never_matches_a_later_claim_even_after_a_replay(
        store: Store) -> None:
    # The attempt count is given back and reset; the claim number only grows.
    await route_one(store, new("ops"))
    [slow] = await store.claim(T0, LEASE, 10)  # a send that will outlive its lease
    [second] = await store.claim(T0 + LEASE + 1, LEASE, 10)
    await store.retry_later(second.id, T0 + LEASE + 2, "slack: 429", T0 + LEASE + 1,
                            attempt=second.claim, count_attempt=False)
    assert await store.replay(delivery_id=second.id, now=T0 + LEASE + 2) == 1
    [third] = await store.claim(T0 + LEASE + 2, LEASE, 10)
    assert third.attempts == slow.attempts == 1 and third.claim == 3
    await store.mark_sent(slow.id, "late", T0 + LEASE + 3, attempt=slow.claim)
    assert (await status_of(store, third.id)).status is DeliveryStatus.SENDING
