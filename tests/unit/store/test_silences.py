"""The silences table, on SQLite and PostgreSQL: add, list, expire; shared by instances."""

from __future__ import annotations

import pytest

from notifybot.live_silences import LiveSilences
from notifybot.silences import Silence
from notifybot.statuses import StatusLabels
from notifybot.store import Store

from .conftest import PgStores

NOW = 1_800_000_000.0


def draft(channel: str = "ops", *, hours: float = 2, **when: object) -> Silence:
    return Silence(0, channel, when, {"user_email": "bot@example.com"}, "re-keying ►",
                   "sam", NOW, NOW + hours * 3600)


async def test_a_silence_is_stored_and_listed_until_it_expires(store: Store) -> None:
    first = await store.add_silence(draft(job=15471, **{"changes.STATUS.to": ["Booked", 2]}))
    second = await store.add_silence(draft("*", hours=1))
    assert second > first
    listed = await store.list_silences(NOW)
    assert [s.id for s in listed] == [first, second]
    assert listed[0] == Silence(first, "ops", {"job": 15471, "changes.STATUS.to": ["Booked", 2]},
                                {"user_email": "bot@example.com"}, "re-keying ►", "sam", NOW,
                                NOW + 7200)
    assert [s.id for s in await store.list_silences(NOW + 3600)] == [first]  # the hour is up
    assert [s.id for s in await store.list_silences(NOW + 3600, expired=True)] == [first, second]


async def test_expiring_a_silence_ends_it_at_once_and_only_once(store: Store) -> None:
    silence_id = await store.add_silence(draft())
    assert await store.expire_silence(silence_id, NOW + 60)
    assert await store.list_silences(NOW + 60) == []
    [ended] = await store.list_silences(NOW + 60, expired=True)
    assert ended.expires_at == NOW + 60
    assert not await store.expire_silence(silence_id, NOW + 120)  # already over
    assert not await store.expire_silence(silence_id + 99, NOW)  # no such silence


@pytest.mark.postgres
async def test_every_instance_sees_a_silence_made_by_another(pg_stores: PgStores) -> None:
    one, two = await pg_stores(), await pg_stores()
    silence_id = await one.add_silence(draft())
    assert [s.id for s in await two.list_silences(NOW)] == [silence_id]
    assert await two.expire_silence(silence_id, NOW + 1)
    assert await one.list_silences(NOW + 1) == []


async def test_routing_reads_silences_afresh_and_skips_one_that_no_longer_compiles(
        store: Store, caplog: pytest.LogCaptureFixture) -> None:
    prepared = StatusLabels.with_overrides(job={3: "Prepared"})
    live = LiveSilences(store)
    silence_id = await store.add_silence(draft(**{"changes.STATUS.to": "Prepared"}))
    [found] = await live.current(NOW, prepared)
    assert found.silence.id == silence_id
    assert await live.current(NOW, StatusLabels()) == ()  # "Prepared" was renamed back
    assert f"silence {silence_id} mutes nothing" in caplog.text
    await store.expire_silence(silence_id, NOW + 1)
    assert await live.current(NOW + 1, prepared) == ()  # at once, no cache in the way


async def test_a_router_may_reuse_what_it_read_for_ttl_seconds(store: Store) -> None:
    live, labels = LiveSilences(store, ttl=5), StatusLabels()
    assert await live.current(NOW, labels) == ()
    await store.add_silence(draft())
    assert await live.current(NOW + 4, labels) == ()
    assert len(await live.current(NOW + 4, StatusLabels())) == 1  # a reload's labels: read again
    assert len(await live.current(NOW + 9, labels)) == 1
