"""/healthz and the fallback through the app, with fake channels (SQLite)."""

from __future__ import annotations

import json
from pathlib import Path

from notifybot.app import create_app
from notifybot.config import load
from notifybot.errors import PermanentDeliveryError
from notifybot.store.sqlite import SQLiteStore
from notifybot.testing import FakeSender
from tests.polling import eventually

KEY = "EXAMPLEKEY123"
CONFIG = """
[server]
database = "sqlite:///{db}"
[hirehop]
export_key = "{key}"
[delivery]
poll_interval = 0.05
[channels.ops]
type = "console"
fallback = "oncall"
  [[channels.ops.subscriptions]]
  events = ["*"]
[channels.oncall]
type = "console"
"""
BODY = json.dumps({"export_key": KEY, "event": "job.updated", "job": 7})


async def test_healthz_is_degraded_naming_the_failing_channel_and_the_fallback_hears(
        tmp_path: Path) -> None:
    path = tmp_path / "subscriptions.toml"
    path.write_text(CONFIG.format(db=tmp_path / "n.db", key=KEY))
    senders = {"ops": FakeSender("ops"), "oncall": FakeSender("oncall")}
    senders["ops"].fail_next(PermanentDeliveryError("console: refused"))
    app = create_app(load(path, environ={}), store=SQLiteStore(tmp_path / "n.db"),
                     senders=senders)  # type: ignore[arg-type]
    async with app.test_app() as running:
        client = running.test_client()
        first = await (await client.get("/healthz")).get_json()
        assert first["status"] == "ok" and "failing" not in first
        response = await client.post("/hirehop", data=BODY.encode(),
                                     headers={"Content-Type": "application/json"})
        assert response.status_code == 202
        sent = await eventually(lambda: senders["oncall"].sent, what="the fallback")
        assert sent[0]["text"].startswith("could not reach console ops: refused — ")
        answer = await client.get("/healthz")
        assert answer.status_code == 200
        health = await answer.get_json()
        assert health["status"] == "degraded"
        assert health["failing"]["ops"]["reason"] == "console: refused"
        assert health["deliveries"]["dead"] == 1
        metrics = (await (await client.get("/metrics")).get_data()).decode()
        assert 'notifybot_channel_up{channel="ops"} 0.0' in metrics
