"""Hot reload through the app: a good new config takes effect, a bad one is refused and the old stays."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from notifybot.app import create_app
from notifybot.config import load
from notifybot.store.sqlite import SQLiteStore
from notifybot.testing import FakeSender
from tests.polling import eventually

KEY = "EXAMPLEKEY123"
CONFIG = """
[server]
database = "sqlite:///{db}"
[hirehop]
export_key = "{key}"
[channels.log]
type = "console"
  [[channels.log.subscriptions]]
  events = ["{events}"]
"""
LOOPBACK = {"client": ("127.0.0.1", 5000)}
EVENT = {"export_key": KEY, "event": "job.updated", "job": 7, "user_name": "Sam",
         "data": {"JOB_NAME": "Gig"}, "changes": {}}


class Running:
    def __init__(self, client: Any, path: Path, sender: FakeSender, db: Path,
                 store: SQLiteStore) -> None:
        self.client, self.path, self.sender, self.db = client, path, sender, db
        self.store = store

    async def routed(self) -> None:
        """Every stored event has been matched and enqueued (or found to match nothing)."""
        async def done() -> bool:
            return not await self.store.unrouted_events(10)

        await eventually(done, what="routing of every event")

    def write(self, events: str = "*", text: str | None = None) -> None:
        self.path.write_text(text or CONFIG.format(db=self.db, key=KEY, events=events))
        # Make the change visible to mtime polling even within one clock tick.
        stamp = self.path.stat().st_mtime + 5
        os.utime(self.path, (stamp, stamp))

    async def post(self, n: int) -> None:
        body = json.dumps({**EVENT, "time": f"2026-05-13 08:00:{n:02d}"})
        response = await self.client.post("/hirehop", data=body.encode())
        assert response.status_code == 202

    async def metric(self, name: str, **labels: str) -> float:
        text = (await (await self.client.get("/metrics")).get_data()).decode()
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                    return float(sample.value)
        return 0.0


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[Running]:
    path, db = tmp_path / "subscriptions.toml", tmp_path / "n.db"
    path.write_text(CONFIG.format(db=db, key=KEY, events="job.*"))
    sender = FakeSender("log")
    senders: dict[str, Any] = {"log": sender}
    store = SQLiteStore(db)
    app = create_app(load(path, environ={}), store=store, senders=senders,
                     config_path=path, watch_interval=0.05)
    async with app.test_app() as test_app:
        yield Running(test_app.test_client(), path, sender, db, store)


async def test_a_valid_edit_is_picked_up_from_disk(running: Running) -> None:
    await running.post(1)
    await eventually(lambda: len(running.sender.sent) == 1, what="the first delivery")
    running.write(events="invoice.*")
    await eventually(lambda: running.metric("notifybot_config_reloads_total", outcome="ok"),
                     what="the reload")
    await running.post(2)
    await running.post(3)
    await running.routed()
    assert len(running.sender.sent) == 1, "job events no longer match"
    assert len(await running.store.list_deliveries()) == 1


async def test_a_broken_edit_is_refused_and_the_last_good_config_keeps_running(
    running: Running,
) -> None:
    running.write(text="[server\nbroken = ")
    await eventually(lambda: running.metric("notifybot_config_reloads_total", outcome="failed"),
                     what="the refused reload")
    await running.post(1)
    await eventually(lambda: len(running.sender.sent) == 1, what="delivery on the old config")


async def test_post_reload_answers_with_the_reason_when_refused(running: Running) -> None:
    running.path.write_text(CONFIG.format(db=running.db, key=KEY, events="job.*").replace(
        'events = ["job.*"]', 'events = ["job.*"]\n  when = { "changes.STATUS.to" = "Boked" }'))
    response = await running.client.post("/-/reload", scope_base=LOOPBACK)
    assert response.status_code == 400
    error = (await response.get_json())["error"]
    assert "still running the last good configuration" in error
    assert "'Boked' is not a known status label" in error
    assert "subscriptions[0].when.changes.STATUS.to" in error


async def test_post_reload_applies_a_good_config(running: Running) -> None:
    running.path.write_text(CONFIG.format(db=running.db, key=KEY, events="contact.*"))
    response = await running.client.post("/-/reload", scope_base=LOOPBACK)
    assert response.status_code == 200
    assert await response.get_json() == {"reloaded": True, "channels": 1, "subscriptions": 1}
    await running.post(1)
    await running.routed()
    assert await running.store.list_deliveries() == [], "only contact events match now"


async def test_reload_is_refused_from_other_addresses(running: Running) -> None:
    response = await running.client.post("/-/reload", scope_base={"client": ("10.0.0.9", 5000)})
    assert response.status_code == 403
