"""The fallback hop with the real outbox and store (SQLite and PostgreSQL), fake channels."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from notifybot.channel_health import ChannelHealth
from notifybot.config import Config
from notifybot.errors import PermanentDeliveryError, TemporaryDeliveryError
from notifybot.hops import Hops
from notifybot.metrics import Metrics
from notifybot.outbox import Outbox
from notifybot.pipeline import Pipeline
from notifybot.store import Delivery, DeliveryStatus, NewDelivery, Store
from notifybot.store.base import DeliveryKind, Outcome
from notifybot.store.sqlite import SQLiteStore
from notifybot.testing import FakeSender
from tests.polling import eventually

from .store.conftest import postgres_stores
from .test_config import HEAD, KEY, load_text

CONFIG = HEAD + '''
[delivery]
backoff_initial = 0.05
backoff_max = 0.1
poll_interval = 0.05
max_attempts = 1000

[channels.ops]
type = "slack"
token = "xoxb-1"
channel = "#ops"
fallback = "oncall"
escalate_after = "{escalate}"
  [[channels.ops.subscriptions]]
  events = ["job.*"]

[channels.oncall]
type = "email"
host = "127.0.0.1"
security = "none"
from = "bot@example.com"
to = ["oncall@example.com"]
thread = "none"
fallback = "ops"
'''
EVENT = {"event": "job.status.updated", "job": 15471, "company_id": 1,
         "data": {"JOB_NAME": "Tour", "STATUS": 2}, "changes": {"STATUS": {"from": 1, "to": 2}}}


class Clock:
    def __init__(self) -> None:
        self.now = 1_780_000_000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Harness:
    config: Config
    store: Store
    senders: dict[str, FakeSender]
    pipeline: Pipeline
    outbox: Outbox
    hops: Hops
    metrics: Metrics
    clock: Clock

    async def event(self, **changes: Any) -> None:
        body = json.dumps({**EVENT, **changes, "export_key": KEY}).encode()
        await self.pipeline.receive(body, "application/json", {})
        await self.pipeline.route_pending()

    async def deliveries(self, channel: str) -> list[Delivery]:
        return sorted(await self.store.list_deliveries(channel=channel, limit=500),
                      key=lambda d: d.id)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    if request.param == "sqlite":
        sqlite = SQLiteStore(tmp_path / "n.db")
        await sqlite.migrate()
        yield sqlite
        await sqlite.close()
        return
    async with postgres_stores() as make:
        yield await make()


async def harness_for(tmp_path: Path, store: Store, escalate: str = "1h") -> Harness:
    config = load_text(tmp_path, CONFIG.replace("{escalate}", escalate))
    senders = {"ops": FakeSender("ops", kind="slack"), "oncall": FakeSender("oncall", kind="email")}
    clock, metrics = Clock(), Metrics()
    outbox = Outbox(store, senders, config.delivery, metrics=metrics, clock=clock)
    pipeline = Pipeline(config, store, senders, metrics=metrics, clock=clock,  # type: ignore[arg-type]
                        on_enqueued=outbox.wake)
    hops = Hops(store, lambda: pipeline.config, senders, pipeline.payload_as,  # type: ignore[arg-type]
                ChannelHealth(config.channels, metrics.channel_up), clock=clock,
                on_enqueued=outbox.wake)
    outbox.rerender, outbox.on_outcome = pipeline.payload_for, hops.on_outcome
    return Harness(config, store, senders, pipeline, outbox, hops, metrics, clock)


@pytest.fixture
async def harness(tmp_path: Path, store: Store) -> AsyncIterator[Harness]:
    running = await harness_for(tmp_path, store)
    task = asyncio.create_task(running.outbox.run())
    yield running
    await running.outbox.stop()
    await task


async def test_a_dead_delivery_reaches_the_fallback_naming_channel_and_reason(
        harness: Harness) -> None:
    harness.senders["ops"].fail_next(PermanentDeliveryError("slack: invalid_auth"))
    await harness.event()
    sent = await eventually(lambda: harness.senders["oncall"].sent, what="the fallback email")
    assert sent[0]["subject"].startswith("could not reach Slack #ops: invalid_auth — ")
    assert sent[0]["text"].startswith("could not reach Slack #ops: invalid_auth\n\n")
    assert "Tour" in sent[0]["text"]  # the original message, rendered as an email
    ops, = await harness.deliveries("ops")
    assert ops.status is DeliveryStatus.DEAD  # stays dead, replayable
    hop, = await harness.deliveries("oncall")
    assert (hop.kind, hop.key, hop.origin_id) == (DeliveryKind.FALLBACK, f"fallback:{ops.id}",
                                                 ops.id)
    assert hop.event_ids == ops.event_ids and hop.thread_key is None
    assert harness.hops.report()["failing"]["ops"]["reason"] == "slack: invalid_auth"


async def test_a_retried_delivery_makes_no_fallback_and_a_delivery_ends_the_failure(
        harness: Harness) -> None:
    harness.senders["ops"].fail_next(TemporaryDeliveryError("slack: timeout"))
    await harness.event()
    await eventually(lambda: harness.senders["ops"].attempts == 1, what="the first attempt")
    await eventually(lambda: _pending(harness, "ops"), what="the retry recorded")
    harness.clock.now += 1  # the retry is due
    harness.outbox.wake()
    await eventually(lambda: harness.senders["ops"].sent, what="the retried message")
    assert harness.senders["oncall"].attempts == 0
    assert [d.kind for d in await harness.deliveries("oncall")] == []
    # The send is seen before its outcome is recorded and reported: wait for the report.
    await eventually(lambda: harness.hops.report() == {"status": "ok", "failing": {}},
                     what="ops up again")


async def test_one_hop_only_a_dead_fallback_makes_nothing_more(harness: Harness) -> None:
    """oncall's own fallback is ops: a fallback dying there must not come back (no loop)."""
    harness.senders["ops"].fail_next(PermanentDeliveryError("slack: invalid_auth"))
    harness.senders["oncall"].fail_next(PermanentDeliveryError("smtp: 550 no such user"))
    await harness.event()
    await eventually(lambda: harness.senders["oncall"].attempts == 1, what="the fallback attempt")
    hop = await eventually(lambda: _dead(harness, "oncall"), what="the fallback dead")
    assert hop.kind is DeliveryKind.FALLBACK
    assert len(await harness.deliveries("ops")) == 1  # nothing went back to ops
    await eventually(lambda: sorted(harness.hops.report()["failing"]) == ["oncall", "ops"],
                     what="both channels failing")


async def test_replaying_a_dead_delivery_that_dies_again_makes_no_second_fallback(
        harness: Harness) -> None:
    ops = harness.senders["ops"]
    ops.fail_next(PermanentDeliveryError("slack: invalid_auth"))
    await harness.event()
    await eventually(lambda: harness.senders["oncall"].sent, what="the fallback email")
    ops.fail_next(PermanentDeliveryError("slack: invalid_auth"))
    assert await harness.store.replay(dead=True, now=harness.clock()) == 1
    harness.outbox.wake()
    await eventually(lambda: ops.attempts == 2, what="the replayed attempt")
    await eventually(lambda: _dead(harness, "ops"), what="the replay dead again")
    assert len(await harness.deliveries("oncall")) == 1


async def test_a_delivery_waiting_too_long_is_escalated_once_and_keeps_trying(
        tmp_path: Path, store: Store) -> None:
    h = await harness_for(tmp_path, store, escalate="15m")
    await h.event()
    ops, = await h.deliveries("ops")
    assert await h.hops.escalate() == 0  # not yet
    h.clock.now += 15 * 60 + 1
    assert await h.hops.escalate() == 1
    assert await h.hops.escalate() == 0  # idempotent
    hop, = await h.deliveries("oncall")
    assert (hop.kind, hop.key, hop.origin_id) == (DeliveryKind.ESCALATION, f"escalation:{ops.id}",
                                                 ops.id)
    assert hop.payload["subject"].startswith(
        "this message has been waiting 15 minutes for Slack #ops and is still being retried")
    again, = await h.deliveries("ops")
    assert again.status is DeliveryStatus.PENDING  # the original keeps trying


async def test_a_long_queue_is_escalated_whole(tmp_path: Path, store: Store) -> None:
    h = await harness_for(tmp_path, store, escalate="1m")
    for job in range(105):  # more than one batch
        await h.event(job=20000 + job)
    h.clock.now += 61
    assert await h.hops.escalate() == 105
    assert await h.hops.escalate() == 0


@pytest.mark.postgres
async def test_two_instances_escalate_once(tmp_path: Path) -> None:
    async with postgres_stores() as make:
        one, two = await harness_for(tmp_path, await make(), "1m"), \
            await harness_for(tmp_path, await make(), "1m")
        await one.event()
        one.clock.now += 61
        two.clock.now += 61
        made = await asyncio.gather(one.hops.escalate(), two.hops.escalate())
        assert sorted(made) == [0, 1]
        assert len(await one.deliveries("oncall")) == 1


async def test_a_held_delivery_waits_from_when_it_may_be_sent(tmp_path: Path,
                                                              store: Store) -> None:
    """Active hours hold a message until morning: that is no reason to escalate."""
    h = await harness_for(tmp_path, store, escalate="15m")
    event_id, _ = await h.store.add_event("job.updated", b"{}", "d1", "application/json", {},
                                          h.clock())
    await h.store.route(event_id, [NewDelivery("ops", "s", h.senders["ops"].destination, 0.0,
                                               {"text": "x", "blocks": []},
                                               not_before=h.clock() + 3600)], h.clock())
    h.clock.now += 3600 + 60
    assert await h.hops.escalate() == 0
    h.clock.now += 15 * 60
    assert await h.hops.escalate() == 1


async def _dead(harness: Harness, channel: str) -> Delivery | None:
    found = [d for d in await harness.deliveries(channel) if d.status is DeliveryStatus.DEAD]
    return found[0] if found else None


async def _pending(harness: Harness, channel: str) -> bool:
    return any(d.status is DeliveryStatus.PENDING and d.attempts
               for d in await harness.deliveries(channel))


async def test_a_fallback_lost_to_a_crash_is_made_by_the_periodic_check(tmp_path: Path,
                                                                        store: Store) -> None:
    """The death was recorded, then the process died before making the fallback."""
    h = await harness_for(tmp_path, store)
    await h.event()
    claimed, = await h.store.claim(h.clock(), 60, 10)
    await h.store.record([Outcome(claimed.id, DeliveryStatus.DEAD, claimed.claim,
                                  error="slack: invalid_auth")], h.clock())
    assert await h.hops.recover() == 1
    assert await h.hops.recover() == 0
    hop, = await h.deliveries("oncall")
    assert hop.key == f"fallback:{claimed.id}"
    assert hop.payload["subject"].startswith("could not reach Slack #ops: invalid_auth — ")


async def test_the_periodic_check_leaves_old_dead_deliveries_alone(tmp_path: Path,
                                                                   store: Store) -> None:
    h = await harness_for(tmp_path, store)
    await h.event()
    claimed, = await h.store.claim(h.clock(), 60, 10)
    await h.store.record([Outcome(claimed.id, DeliveryStatus.DEAD, claimed.claim,
                                  error="slack: invalid_auth")], h.clock())
    h.clock.now += 2 * 3600
    assert await h.hops.recover() == 0


async def test_the_healthz_check_names_the_failing_channels(tmp_path: Path,
                                                           store: Store) -> None:
    h = await harness_for(tmp_path, store)
    assert h.hops.failing() == {}
    h.hops.health.observe("ops", PermanentDeliveryError("slack: invalid_auth"), h.clock())
    assert h.hops.failing() == {"ops": {
        "since": "2026-05-28T20:26:40+00:00", "reason": "slack: invalid_auth"}}
