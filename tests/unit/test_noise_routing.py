"""Noise control end to end: webhook → pipeline → store → outbox → fake channels, on a clock we turn.

Every test runs on SQLite and on PostgreSQL. A "restart" (what ``kill -9`` leaves
behind) is a new store, pipeline and outbox on the same database: nothing is kept
in memory between them.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from notifybot.config import Config, load
from notifybot.outbox import Outbox
from notifybot.pipeline import Pipeline, renderer_for
from notifybot.silences import Silence
from notifybot.store import DeliveryStatus, NewDelivery, Store
from notifybot.store.base import DeliveryKind
from notifybot.store.sqlite import SQLiteStore
from notifybot.testing import FakeSender

from .store.conftest import postgres_stores

LONDON = ZoneInfo("Europe/London")
KEY = "KEY-123456"
HEAD = f'[server]\ntimezone = "Europe/London"\n[hirehop]\nexport_key = "{KEY}"\n'

Stores = Callable[[], Awaitable[Store]]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def stores(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Stores]:
    """Opens stores on one migrated database: each one a process that may be killed."""
    if request.param == "postgres":
        async with postgres_stores() as make:
            yield make  # type: ignore[misc]
        return
    opened: list[SQLiteStore] = []

    async def make() -> Store:
        store = SQLiteStore(tmp_path / "noise.db")
        await store.migrate()
        opened.append(store)
        return store

    try:
        yield make
    finally:
        for store in opened:
            await store.close()


def local(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=LONDON).timestamp()


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Instance:
    """One notifybot process: a pipeline and an outbox on its own store connection."""

    def __init__(self, config: Config, store: Store, clock: Clock,
                 senders: dict[str, FakeSender]) -> None:
        self.store, self.clock, self.senders = store, clock, senders
        self.pipeline = Pipeline(config, store, senders, renderer=renderer_for(config), clock=clock)
        self.outbox = Outbox(store, senders, config.delivery, clock=clock,
                             rerender=self.pipeline.payload_for)

    async def post(self, payload: dict[str, Any], *, route: bool = True) -> int:
        """A webhook received and, as the router does right away, routed."""
        body = json.dumps({"export_key": KEY, "user_name": "Sam Taylor", **payload}).encode()
        event_id = (await self.pipeline.receive(body, "application/json", {})).event_id
        if route:
            await self.pipeline.route_pending()
        return event_id

    async def drain(self) -> int:
        """Route what is stored, then send everything due now, a claim at a time."""
        await self.pipeline.route_pending()
        sent = 0
        while claimed := await self.store.claim(self.clock(), 60.0, 50):
            for delivery in claimed:
                await self.outbox.deliver(delivery)
            sent += len(claimed)
        return sent


def config_of(tmp_path: Path, text: str) -> Config:
    path = tmp_path / "subscriptions.toml"
    path.write_text(HEAD + text, encoding="utf-8")
    return load(path, {})


def job_update(job: int, field: str, before: Any, after: Any,
               event: str = "job.updated") -> dict[str, Any]:
    return {"event": event, "job": job, "company_id": 1,
            "data": {"NUMBER": job, "JOB_NAME": f"Tour {job}", "STATUS": 2},
            "changes": {field: {"from": before, "to": after}}}


def invoice_paid(number: int) -> dict[str, Any]:
    return {"event": "invoice.status.updated", "job": 16000 + number, "company_id": 1,
            "data": {"NUMBER": f"INV-{number}", "STATUS": 3, "JOB_ID": 16000 + number},
            "changes": {"STATUS": {"from": 2, "to": 3}}}


TWO_CHANNELS = """
[channels.ops]
type = "console"
  [[channels.ops.subscriptions]]
  events = ["job.*"]
[channels.log]
type = "console"
  [[channels.log.subscriptions]]
  events = ["job.*"]
"""


async def test_a_silence_mutes_one_channel_for_one_job_until_it_is_expired(
        stores: Stores, tmp_path: Path) -> None:
    clock = Clock(local("2026-12-01 10:00"))
    ops, log = FakeSender("ops"), FakeSender("log")
    node = Instance(config_of(tmp_path, TWO_CHANNELS), await stores(), clock,
                    {"ops": ops, "log": log})
    silence_id = await node.store.add_silence(Silence(
        0, "ops", {"job": 15471}, {}, "re-keying", "sam", clock(), clock() + 7200))
    await node.post(job_update(15471, "VENUE", "Hall", "Barrowland"))
    await node.post(job_update(15472, "VENUE", "Hall", "Barrowland"))
    assert await node.drain() == 3
    assert ["15472" in p["text"] for p in ops.sent] == [True]
    assert len(log.sent) == 2
    [muted] = await node.store.list_deliveries(DeliveryStatus.SILENCED)
    assert (muted.channel, muted.event_id) == ("ops", 1)
    assert muted.note is not None and f"silence {silence_id} (sam: re-keying)" in muted.note
    assert node.pipeline.metrics.registry.get_sample_value(
        "notifybot_noise_total", {"channel": "ops", "treatment": "silenced"}) == 1

    assert await node.store.expire_silence(silence_id, clock())
    await node.post(job_update(15471, "VENUE", "Barrowland", "Hydro"))
    assert await node.drain() == 2
    assert "15471" in ops.sent[-1]["text"]

    assert await node.store.replay(delivery_id=muted.id, now=clock()) == 1  # sent after all
    assert await node.drain() == 1
    assert "15471" in ops.sent[-1]["text"] and len(ops.sent) == 3


async def test_a_silence_ends_by_itself_at_its_expiry(stores: Stores, tmp_path: Path) -> None:
    clock = Clock(local("2026-12-01 10:00"))
    ops, log = FakeSender("ops"), FakeSender("log")
    node = Instance(config_of(tmp_path, TWO_CHANNELS), await stores(), clock,
                    {"ops": ops, "log": log})
    await node.store.add_silence(Silence(0, "*", {}, {}, "all quiet", "sam", clock(),
                                         clock() + 60))
    await node.post(job_update(1, "VENUE", "A", "B"))
    assert await node.drain() == 0
    clock.now += 60  # over, though nobody expired it
    await node.post(job_update(2, "VENUE", "A", "B"))
    assert await node.drain() == 2
    assert len(await node.store.list_deliveries(DeliveryStatus.SILENCED)) == 2


HOURS = """
[channels.ops]
type = "console"
hours = "08:00-18:00"
days = ["mon", "tue", "wed", "thu", "fri"]
  [[channels.ops.subscriptions]]
  events = ["job.*"]
"""


async def test_outside_active_hours_messages_wait_and_go_in_order_when_the_window_opens(
        stores: Stores, tmp_path: Path) -> None:
    clock = Clock(local("2026-12-01 07:58"))
    config = config_of(tmp_path, HOURS)
    ops = FakeSender("ops")
    node = Instance(config, await stores(), clock, {"ops": ops})
    for job in (1, 2, 3):
        await node.post(job_update(job, "VENUE", "A", "B"))
        clock.now += 1
    assert await node.drain() == 0
    assert node.pipeline.metrics.registry.get_sample_value(
        "notifybot_noise_total", {"channel": "ops", "treatment": "held"}) == 3
    [held, *_] = await node.store.list_deliveries()
    assert held.not_before == local("2026-12-01 08:00")
    assert held.note is not None and "held until Tue 01 Dec 08:00:00 GMT" in held.note

    clock.now = local("2026-12-01 07:59:59")
    assert await node.drain() == 0
    clock.now = local("2026-12-01 08:00")  # after a restart, nothing of the first kept
    restarted = Instance(config, await stores(), clock, {"ops": ops})
    assert await restarted.drain() == 3
    assert [p["text"].split('"')[0].strip() for p in ops.sent] == ["Job 1", "Job 2", "Job 3"]


GROUP_WAIT = """
[channels.ops]
type = "slack"
token = "xoxb-1"
channel = "C1"
  [[channels.ops.subscriptions]]
  events = ["job.*"]
  group_wait = "30s"
"""


async def test_a_burst_of_one_job_becomes_one_message_naming_every_change(
        stores: Stores, tmp_path: Path) -> None:
    clock = Clock(local("2026-12-01 10:00"))
    ops = FakeSender("ops", kind="slack")
    node = Instance(config_of(tmp_path, GROUP_WAIT), await stores(), clock, {"ops": ops})
    await node.post(job_update(15471, "STATUS", 1, 2, "job.status.updated"))
    clock.now += 5
    await node.post(job_update(15471, "VENUE", "Hall", "Barrowland"))
    clock.now += 5
    await node.post(job_update(15471, "OUT_DATE", "2026-06-09 09:00:00", "2026-06-10 09:00:00"))
    await node.post(job_update(99, "VENUE", "A", "B"))  # another job: its own message
    assert await node.drain() == 0
    clock.now = local("2026-12-01 10:00:30")  # 30 s after the job's first update
    assert await node.drain() == 1
    clock.now = local("2026-12-01 10:00:40")
    assert await node.drain() == 1
    folded = next(p for p in ops.sent if "15471" in p["text"])
    text = json.dumps(folded, ensure_ascii=False)
    assert "(3 updates: Status, Out, Venue)" in folded["text"] and "Booked" in folded["text"]
    changed = folded["blocks"][2]["text"]["text"]
    assert changed.index("*Status*:") < changed.index("*Out*:") < changed.index("*Venue*:"), text
    assert node.pipeline.metrics.registry.get_sample_value(
        "notifybot_noise_total", {"channel": "ops", "treatment": "folded"}) == 4
    delivery = next(d for d in await node.store.list_deliveries() if d.event_id == 1)
    assert delivery.event_ids == (1, 2, 3) and delivery.status is DeliveryStatus.SENT
    assert delivery.kind is DeliveryKind.FOLDED

    clock.now += 1  # a later update starts a new fold
    await node.post(job_update(15471, "VENUE", "Barrowland", "Hydro"))
    clock.now += 30
    assert await node.drain() == 1
    assert "(1 updates" not in ops.sent[-1]["text"] and "15471" in ops.sent[-1]["text"]


DIGEST = """
[channels.accounts]
type = "console"
  [[channels.accounts.subscriptions]]
  events = ["invoice.status.updated"]
  when = { "changes.STATUS.to" = "Paid" }
  digest = { every = "1h" }
"""


async def test_a_digest_holds_each_invoice_exactly_once_across_a_kill(
        stores: Stores, tmp_path: Path) -> None:
    clock = Clock(local("2026-12-01 16:30"))
    config = config_of(tmp_path, DIGEST)
    accounts = FakeSender("accounts")
    first = Instance(config, await stores(), clock, {"accounts": accounts})
    for number in (1, 2, 3):
        await first.post(invoice_paid(number))
        clock.now += 60
    assert await first.drain() == 0
    await first.post(invoice_paid(4), route=False)  # accepted; killed before routing it
    second = Instance(config, await stores(), clock, {"accounts": accounts})
    await second.post(invoice_paid(5))
    clock.now = local("2026-12-01 16:59:59")
    assert await second.drain() == 0
    clock.now = local("2026-12-01 17:00")
    assert await second.drain() == 1
    [digest] = accounts.sent
    assert digest["text"] == "5 invoices paid since 16:00"
    [delivery] = await second.store.list_deliveries()
    assert (delivery.event_ids, delivery.kind) == ((1, 2, 3, 4, 5), DeliveryKind.DIGEST)
    assert second.pipeline.metrics.registry.get_sample_value(
        "notifybot_noise_total", {"channel": "accounts", "treatment": "digested"}) == 2
    clock.now = local("2026-12-01 18:00")  # an empty window sends nothing
    assert await second.drain() == 0


async def test_a_digest_shows_each_invoice_with_its_link(stores: Stores, tmp_path: Path) -> None:
    clock = Clock(local("2026-12-01 16:10"))
    accounts = FakeSender("accounts", kind="telegram")
    node = Instance(config_of(tmp_path, DIGEST), await stores(), clock, {"accounts": accounts})
    for number in (1, 2):
        await node.post(invoice_paid(number))
    clock.now = local("2026-12-01 17:00:01")
    assert await node.drain() == 1
    text = accounts.sent[0]["text"]
    assert text.startswith("<b>2 invoices paid since 16:00</b>")
    assert "job.php?id=16001" in text and "job.php?id=16002" in text


@pytest.mark.postgres
async def test_two_instances_send_one_digest_per_window(tmp_path: Path) -> None:
    clock = Clock(local("2026-12-01 16:10"))
    config = config_of(tmp_path, DIGEST)
    accounts = FakeSender("accounts")
    async with postgres_stores() as make:
        one = Instance(config, await make(), clock, {"accounts": accounts})
        two = Instance(config, await make(), clock, {"accounts": accounts})
        for number in range(1, 21, 2):  # each stores one, and both route at once
            await one.post(invoice_paid(number), route=False)
            await two.post(invoice_paid(number + 1), route=False)
            await asyncio.gather(one.pipeline.route_pending(), two.pipeline.route_pending())
        clock.now = local("2026-12-01 17:00")
        assert await one.drain() + await two.drain() == 1
        assert accounts.sent[0]["text"] == "20 invoices paid since 16:00"


@pytest.mark.postgres
async def test_instances_routing_one_window_at_the_same_moment_make_one_digest() -> None:
    # The destination's row, locked first by every routing transaction, orders them.
    gather = NewDelivery("accounts", "s", "fake:accounts", 0.0, {}, gather="digest:accounts:s:0",
                         not_before=100.0)
    for _ in range(3):
        async with postgres_stores() as make:
            one, two = await make(), await make()
            first, _ = await one.add_event("invoice.status.updated", b"{}", "d1", "x", {}, 1.0)
            second, _ = await two.add_event("invoice.status.updated", b"{}", "d2", "x", {}, 1.0)
            await asyncio.gather(one.route_many([(first, [gather])], 1.0),
                                 two.route_many([(second, [gather])], 1.0))
            [delivery] = await one.list_deliveries()
            assert delivery.event_ids == (first, second)


BOTH = """
[channels.accounts]
type = "console"
  [[channels.accounts.subscriptions]]
  events = ["invoice.*"]
  [[channels.accounts.subscriptions]]
  name = "daily"
  events = ["invoice.*"]
  digest = { at = "17:30" }
"""


async def test_a_digest_beside_an_immediate_subscription_of_the_channel_is_kept(
        stores: Stores, tmp_path: Path) -> None:
    clock = Clock(local("2026-12-01 16:10"))
    accounts = FakeSender("accounts")
    node = Instance(config_of(tmp_path, BOTH), await stores(), clock, {"accounts": accounts})
    await node.post(invoice_paid(1))
    assert await node.drain() == 1
    clock.now = local("2026-12-01 17:30")
    assert await node.drain() == 1
    assert accounts.sent[-1]["text"] == "1 invoice paid since 17:30"
