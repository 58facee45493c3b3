"""The HTTP contract of the webhook endpoint, through Quart's test client with startup hooks run."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from notifybot.app import create_app
from notifybot.config import load
from notifybot.store import DeliveryStatus
from notifybot.store.sqlite import SQLiteStore
from notifybot.testing import FakeSender
from tests.polling import eventually

if TYPE_CHECKING:
    from quart.typing import TestClientProtocol

SAMPLES = Path(__file__).parents[2] / "samples"
KEY = "EXAMPLEKEY123"
CONFIG = """
[server]
database = "sqlite:///{db}"
[hirehop]
export_key = "{key}"
[channels.log]
type = "console"
  [[channels.log.subscriptions]]
  events = ["*"]
[channels.jobs]
type = "console"
  [[channels.jobs.subscriptions]]
  events = ["job.status.updated"]
  when = {{ "changes.STATUS.to" = "Booked" }}
"""


class Harness:
    def __init__(self, client: TestClientProtocol, store: SQLiteStore,
                 senders: dict[str, FakeSender]) -> None:
        self.client, self.store, self.senders = client, store, senders

    async def post(self, body: bytes | str, content_type: str = "application/json") -> Any:
        data = body.encode() if isinstance(body, str) else body
        return await self.client.post("/hirehop", data=data,
                                      headers={"Content-Type": content_type})

    async def wait_sent(self, channel: str, count: int) -> list[Any]:
        sent = self.senders[channel].sent
        await eventually(lambda: len(sent) >= count, what=f"{count} message(s) to {channel}")
        return sent


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    path = tmp_path / "subscriptions.toml"
    path.write_text(CONFIG.format(db=tmp_path / "n.db", key=KEY))
    config = load(path, environ={})
    store = SQLiteStore(tmp_path / "n.db")
    senders = {"log": FakeSender("log"), "jobs": FakeSender("jobs")}
    app = create_app(config, store=store, senders=senders)  # type: ignore[arg-type]
    async with app.test_app() as running:
        yield Harness(running.test_client(), store, senders)


def sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


async def test_an_accepted_event_is_committed_before_the_202(harness: Harness) -> None:
    response = await harness.post(sample("job.status.updated.constructed.json"))
    assert response.status_code == 202
    event_id = (await response.get_json())["event_id"]
    stored = await harness.store.get_event(event_id)
    assert stored is not None and stored.name == "job.status.updated"
    assert KEY.encode() not in stored.body, "the export key is never stored"


async def test_an_accepted_event_reaches_every_matching_channel(harness: Harness) -> None:
    await harness.post(sample("job.status.updated.constructed.json"))
    [jobs] = await harness.wait_sent("jobs", 1)
    [log] = await harness.wait_sent("log", 1)
    assert jobs["text"].endswith("Provisional → Booked, by Sam Taylor")
    assert log == jobs


async def test_a_repeated_identical_body_is_stored_once(harness: Harness) -> None:
    body = sample("invoice.status.updated.constructed.json")
    first = await harness.post(body)
    again = await harness.post(body)
    assert first.status_code == 202 and again.status_code == 200
    assert await again.get_json() == {"duplicate": True,
                                      "event_id": (await first.get_json())["event_id"]}
    await harness.wait_sent("log", 1)
    assert len(await harness.store.list_deliveries()) == 1


@pytest.mark.parametrize(
    ("body", "content_type", "status", "reason"),
    [
        ('{"event": "job.updated"}', "application/json", 403, "missing export_key"),
        ('{"event": "job.updated", "export_key": "nope"}', "application/json", 403,
         "wrong export_key"),
        ("not json at all", "application/json", 400, "neither a JSON object"),
        ("[1, 2]", "application/json", 400, "neither a JSON object"),
        ("", "application/json", 400, "empty body"),
        (b"\xff\xfe{}", "application/json", 400, "not UTF-8"),
    ],
)
async def test_a_refused_body_stores_nothing_and_says_why(
    harness: Harness, body: str | bytes, content_type: str, status: int, reason: str
) -> None:
    response = await harness.post(body, content_type)
    assert response.status_code == status
    assert reason in (await response.get_json())["error"]
    assert await harness.store.unrouted_events(10) == []
    assert await harness.store.get_event(1) is None


async def test_json_is_read_whatever_the_content_type(harness: Harness) -> None:
    body = sample("job.created.constructed.json")
    response = await harness.post(body, "application/x-www-form-urlencoded")
    assert response.status_code == 202


async def test_a_form_holding_the_json_is_accepted(harness: Harness) -> None:
    from urllib.parse import urlencode

    body = urlencode({"payload": sample("job.updated.constructed.json").decode()})
    response = await harness.post(body, "application/x-www-form-urlencoded")
    assert response.status_code == 202
    [message] = await harness.wait_sent("log", 1)
    assert "updated by Sam Taylor" in message["text"]


async def test_a_body_over_one_mebibyte_is_refused_with_413(harness: Harness) -> None:
    big = json.dumps({"export_key": KEY, "event": "x", "data": {"N": "a" * (1024 * 1024)}})
    response = await harness.post(big)
    assert response.status_code == 413
    assert "body over" in (await response.get_json())["error"]
    assert await harness.store.get_event(1) is None


async def test_an_unknown_event_is_rendered_generically_not_dropped(harness: Harness) -> None:
    body = json.dumps({"export_key": KEY, "event": "contact.person.updated", "user_name": "Jo",
                       "data": {"ID": 77}, "changes": {"EMAIL": {"from": "a@x", "to": "b@x"}}})
    assert (await harness.post(body)).status_code == 202
    [message] = await harness.wait_sent("log", 1)
    assert message["text"] == "HireHop contact.person.updated for 77 by Jo: Email changed"


async def test_healthz_reports_the_outbox(harness: Harness) -> None:
    await harness.post(sample("job.updated.constructed.json"))
    await harness.wait_sent("log", 1)
    response = await harness.client.get("/healthz")
    assert response.status_code == 200
    body = await response.get_json()
    assert body["status"] == "ok"
    assert set(body["deliveries"]) == {"pending", "sending", "sent", "dead", "silenced"}
    assert sum(body["deliveries"].values()) == 1, "one event, one matching channel"
    async def sent() -> bool:
        return (await harness.store.counts())[DeliveryStatus.SENT] >= 1

    await eventually(sent, what="the delivery recorded as sent")


async def test_an_unknown_path_answers_json_404(harness: Harness) -> None:
    response = await harness.client.post("/elsewhere", data=b"{}")
    assert response.status_code == 404
    assert "/hirehop" in (await response.get_json())["error"]
