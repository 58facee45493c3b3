"""/metrics parsed by prometheus-client's own parser, figures checked against a known load."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from notifybot.app import create_app
from notifybot.config import load
from notifybot.errors import PermanentDeliveryError, RateLimited
from notifybot.metrics import REASONS, reason_label, safe_label
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


async def test_invented_event_names_and_control_characters_do_not_make_series(
        tmp_path: Path) -> None:
    path = tmp_path / "subscriptions.toml"
    path.write_text(CONFIG.format(db=tmp_path / "n.db") + '  [[channels.chat.subscriptions]]\n'
                    '  events = ["contact.person.updated"]\n')
    app = create_app(load(path, environ={}), store=SQLiteStore(tmp_path / "n.db"),
                     senders={"chat": FakeSender("chat")})  # type: ignore[dict-item]
    async with app.test_app() as running:
        client = running.test_client()
        names = [f"invented.{n}.{'x' * 2000}" for n in range(150)] + [
            "job.\x1b[31mred\nfake 1", "contact.person.updated", "job.updated"]
        for name in names:
            body = {"export_key": "KEY-123456", "event": name, "data": {}}
            assert (await client.post("/hirehop", data=json.dumps(body).encode())).status_code == 202
        text = (await (await client.get("/metrics")).get_data()).decode()
    found = samples(text)
    events = {dict(labels)["event"]: value for (name, labels), value in found.items()
              if name == "notifybot_events_received_total"}
    assert events == {"other": 151, "contact.person.updated": 1, "job.updated": 1}
    assert len(text) < 20_000
    assert "\x1b" not in text


@pytest.mark.parametrize(("reason", "label"), [
    ("", ""),
    ("telegram: Flood control exceeded. Retry in 7 seconds", "rate_limited"),
    ("slack: ratelimited", "rate_limited"),
    ("email: timed out", "timeout"),
    ("template error: line 3: unexpected }", "template"),
    ("channel 'x' is not configured", "not_configured"),
    ("slack: invalid_auth", "auth"),
    ("telegram: Bad Request: chat not found", "not_found"),
    ("email: connection refused", "network"),
    ("slack: HTTP 503", "server_error"),
    ("telegram: Bad Request: can't parse entities: Hello\nSam <b>", "rejected"),
    ("telegram: Forbidden: bot was blocked by the user Sam Taylor said hi", "auth"),
    ("something nobody foresaw: \x1b[31m", "other"),
])
def test_reasons_fold_to_a_fixed_vocabulary(reason: str, label: str) -> None:
    assert reason_label(reason) == label
    assert label in {"", "other"} | {name for name, _ in REASONS}


def test_labels_never_hold_control_characters() -> None:
    assert safe_label("a\nb\x1bc\u2028d\x85e") == "a?b?c?d?e"
    assert len(safe_label("x" * 1000)) == 100
