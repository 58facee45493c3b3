"""The pipeline from a stored event to a delivery, and a template fixed after the fact."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from notifybot.config import DeliveryConfig
from notifybot.outbox import Outbox
from notifybot.pipeline import Pipeline, prepare
from notifybot.store import DeliveryStatus
from notifybot.store.sqlite import SQLiteStore
from notifybot.testing import FakeSender

CONFIG = """
[server]
database = "sqlite:///{db}"
templates = "mine"
[hirehop]
export_key = "KEY-123456"
[channels.log]
type = "console"
  [[channels.log.subscriptions]]
  events = ["job.*"]
  template = "custom"
"""
BODY = json.dumps({"export_key": "KEY-123456", "event": "job.updated", "job": 42,
                   "user_name": "Sam", "data": {"BOOM": 1}}).encode()


async def test_a_dead_delivery_from_a_broken_template_is_sent_after_fix_and_replay(
    tmp_path: Path,
) -> None:
    (tmp_path / "mine").mkdir()
    custom = tmp_path / "mine" / "custom.j2"
    custom.write_text("{% block summary %}Job {{ job }}: {{ data.X.y | int(0) }}{% endblock %}")
    path = tmp_path / "subscriptions.toml"
    path.write_text(CONFIG.format(db=tmp_path / "n.db"))
    config, renderer, _ = prepare(path)
    store = SQLiteStore(tmp_path / "n.db")
    await store.migrate()
    sender = FakeSender("log")
    senders: dict[str, Any] = {"log": sender}
    pipeline = Pipeline(config, store, senders, renderer=renderer)
    outbox = Outbox(store, senders, config.delivery, rerender=pipeline.payload_for)
    try:
        # The template passes check but breaks at run time for some events.
        custom.write_text("{% block summary %}Job {% if data.BOOM %}{{ job // 0 }}{% endif %}"
                          "{% endblock %}")
        config, renderer, _ = prepare(path)
        pipeline.reconfigure(config, renderer)
        received = await pipeline.receive(BODY, "application/json", {})
        assert await pipeline.route_pending() == 1
        [dead] = await store.list_deliveries()
        assert dead.status is DeliveryStatus.DEAD
        assert dead.last_error is not None and "ZeroDivisionError" in dead.last_error

        custom.write_text("{% block summary %}Job {{ job }} was updated by {{ by }}{% endblock %}")
        config, renderer, _ = prepare(path)
        pipeline.reconfigure(config, renderer)
        assert await store.replay(event_id=received.event_id, now=2.0) == 1
        for delivery in await store.claim(3.0, DeliveryConfig().lease, 10):
            await outbox.deliver(delivery)
        assert sender.sent == [{"text": "Job 42 was updated by Sam"}]
        [sent] = await store.list_deliveries()
        assert sent.status is DeliveryStatus.SENT
    finally:
        await store.close()
