"""/metrics parsed by prometheus-client's own parser, figures checked against a known load."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from notifybot.app import create_app
from notifybot.config import load
from notifybot.errors import PermanentDeliveryError, RateLimited
from notifybot.store.sqlite import SQLiteStore
from notifybot.testing import FakeSender
from tests.polling import eventually

CONFIG = """
[server]
database = "sqlite:///{db}"
[hirehop]
export_key = "KEY-123456"
[channels.chat]
type = "console"
  [[channels.chat.subscriptions]]
  events = ["job.*"]
"""


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


async def test_metrics_count_a_known_load(tmp_path: Path) -> None:
    path = tmp_path / "subscriptions.toml"
    path.write_text(CONFIG.format(db=tmp_path / "n.db"))
    sender = FakeSender("chat")
    sender.fail_next(RateLimited("chat: ratelimited", 0.01), PermanentDeliveryError("chat: gone"))
    senders: dict[str, Any] = {"chat": sender}
    app = create_app(load(path, environ={}), store=SQLiteStore(tmp_path / "n.db"), senders=senders)
    async with app.test_app() as running:
        client = running.test_client()
        for n in range(5):
            body = {"export_key": "KEY-123456", "event": "job.updated", "job": n, "data": {}}
            assert (await client.post("/hirehop", data=json.dumps(body).encode())).status_code == 202
        assert (await client.post("/hirehop", data=json.dumps(body).encode())).status_code == 200
        assert (await client.post("/hirehop", data=b'{"export_key": "x"}')).status_code == 403
        await eventually(lambda: len(sender.sent) == 4, what="4 deliveries sent")

        async def scrape() -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
            return samples((await (await client.get("/metrics")).get_data()).decode())

        async def settled() -> Any:
            found = await scrape()
            sent = ("notifybot_queue_depth", frozenset({("state", "sent")}))
            return found if found.get(sent) == 4 else None

        found = await eventually(settled, what="the queue to settle")

    def value(name: str, **labels: str) -> float:
        return found.get((name, frozenset(labels.items())), 0.0)

    assert value("notifybot_events_received_total", event="job.updated", outcome="accepted") == 5
    assert value("notifybot_events_received_total", event="job.updated", outcome="duplicate") == 1
    assert value("notifybot_events_received_total", event="", outcome="rejected_403") == 1
    assert value("notifybot_deliveries_total", channel="chat", outcome="sent", reason="") == 4
    assert value("notifybot_deliveries_total", channel="chat", outcome="dead",
                 reason="other") == 1
    assert value("notifybot_deliveries_total", channel="chat", outcome="retry",
                 reason="rate_limited") == 1
    assert value("notifybot_rate_limit_waits_total", channel="chat") == 1
    assert value("notifybot_delivery_latency_seconds_count", channel="chat") == 4
    assert value("notifybot_queue_depth", state="dead") == 1
    assert value("notifybot_queue_depth", state="pending") == 0
    assert value("notifybot_oldest_pending_age_seconds") == 0
