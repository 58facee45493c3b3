"""The HTTP contract of the webhook endpoint, through Quart's test client with startup hooks run."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from quart.testing.app import LifespanError

from notifybot import health as health_module
from notifybot.app import create_app, loopback
from notifybot.config import load
from notifybot.store import DeliveryStatus
from notifybot.store.sqlite import SQLiteStore
from notifybot.testing import FakeSender
from tests.immutable import immutable, sqlite_files
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
    assert message["text"] == "Contact 77 updated by Jo: Email a@x → b@x"


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


# Hardening (issue 13): JSON answers for every input, storage failures, lifecycle.

async def test_hostile_bodies_get_json_4xx_never_5xx(harness: Harness) -> None:
    deep = b'{"export_key": "' + KEY.encode() + b'", "event": "x", "d": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    bodies = [
        deep,
        json.dumps({"export_key": "\ud800", "event": "job.updated"}).encode(),
        b"[" * 100_000,
        b"\xff\xfe\x00",
    ]
    for body in bodies:
        response = await harness.post(body)
        assert response.status_code in (400, 403), body[:40]
        assert response.content_type == "application/json"
        assert (await response.get_json())["error"]


async def test_surrogates_and_nul_are_accepted_stored_and_delivered(harness: Harness) -> None:
    body = json.dumps({"export_key": KEY, "event": "job.\udc80", "user_name": "Sam\ud800",
                       "data": {"NOTE": "a\x00b"}}).encode()
    response = await harness.post(body)
    assert response.status_code == 202
    event_id = (await response.get_json())["event_id"]
    stored = await harness.store.get_event(event_id)
    assert stored is not None and stored.name == "job.\ufffd"
    [message] = await harness.wait_sent("log", 1)
    assert "Sam\ufffd" in json.dumps(message, ensure_ascii=False)


async def test_an_immutable_database_is_a_json_503_and_recovers_without_restart(
        harness: Harness, tmp_path: Path) -> None:
    assert (await harness.post(sample("job.updated.constructed.json"))).status_code == 202
    body = json.dumps({"export_key": KEY, "event": "job.updated", "job": 99}).encode()
    with immutable(sqlite_files(tmp_path / "n.db")):
        response = await harness.post(body)
        assert response.status_code == 503
        assert response.content_type == "application/json"
        assert "storage" in (await response.get_json())["error"]
        health = await harness.client.get("/healthz")
        assert health.status_code == 503
        assert (await health.get_json())["storage"] == "disk I/O error"
    health = await harness.client.get("/healthz")
    assert health.status_code == 200, await health.get_json()
    assert (await harness.post(body)).status_code == 202


class _BrokenStore(SQLiteStore):
    """A store whose add_event meets a bug that is not storage's (a stand-in)."""

    async def add_event(self, *args: Any, **kwargs: Any) -> tuple[int, bool]:
        raise KeyError("a bug")


async def test_an_unexpected_error_is_a_json_500(tmp_path: Path) -> None:
    path = tmp_path / "subscriptions.toml"
    path.write_text(CONFIG.format(db=tmp_path / "n.db", key=KEY))
    app = create_app(load(path, environ={}), store=_BrokenStore(tmp_path / "n.db"),
                     senders={"log": FakeSender("log"), "jobs": FakeSender("jobs")})  # type: ignore[dict-item]
    async with app.test_app() as running:
        response = await running.test_client().post("/hirehop", data=sample(
            "job.updated.constructed.json"))
        assert response.status_code == 500
        assert response.content_type == "application/json"
        assert "a bug" not in (await response.get_json())["error"]


class _UnopenableSender(FakeSender):
    async def open(self) -> None:
        raise OSError("cannot reach the channel")


async def test_a_failed_startup_closes_what_it_opened(tmp_path: Path) -> None:
    path = tmp_path / "subscriptions.toml"
    path.write_text(CONFIG.format(db=tmp_path / "n.db", key=KEY))
    store = SQLiteStore(tmp_path / "n.db")
    first = FakeSender("log")
    senders: dict[str, Any] = {"log": first, "jobs": _UnopenableSender("jobs")}
    app = create_app(load(path, environ={}), store=store, senders=senders)
    with pytest.raises(LifespanError, match="cannot reach the channel"):
        async with app.test_app():
            pass
    assert not first.opened, "the sender opened before the failure is closed"
    with pytest.raises(RuntimeError, match="closed"):
        await store.counts()


@pytest.mark.parametrize(("address", "expected"), [
    ("127.0.0.1", True), ("::1", True), ("::ffff:127.0.0.1", True), ("127.8.9.1", True),
    ("::ffff:10.0.0.1", False), ("10.0.0.1", False), ("", False), (None, False), ("nonsense", False),
])
def test_loopback_includes_ipv4_mapped(address: str | None, expected: bool) -> None:
    assert loopback(address) is expected


async def test_healthz_says_degraded_for_a_check_that_names_a_problem(tmp_path: Path) -> None:
    path = tmp_path / "subscriptions.toml"
    path.write_text(CONFIG.format(db=tmp_path / "n.db", key=KEY))
    app = create_app(load(path, environ={}), store=SQLiteStore(tmp_path / "n.db"),
                     senders={"log": FakeSender("log"), "jobs": FakeSender("jobs")})  # type: ignore[dict-item]
    problems: dict[str, str] = {}
    app.extensions["notifybot.health"].add_check("channels", lambda: problems)
    async with app.test_app() as running:
        client = running.test_client()
        assert (await (await client.get("/healthz")).get_json())["status"] == "ok"
        problems["jobs"] = "3 dead deliveries"
        response = await client.get("/healthz")
        assert response.status_code == 200
        body = await response.get_json()
        assert body["status"] == "degraded"
        assert body["channels"] == {"jobs": "3 dead deliveries"}
        assert "deliveries" in body


async def test_healthz_is_503_while_a_background_task_is_down(harness: Harness) -> None:
    async def broken() -> None:
        raise RuntimeError("a bug in a worker")

    running = harness.client.app
    running.extensions["notifybot.supervisor"].start("broken", broken)  # type: ignore[attr-defined]

    async def down() -> Any:
        response = await harness.client.get("/healthz")
        return response if response.status_code == 503 else None

    response = await eventually(down, what="/healthz reporting the task")
    assert (await response.get_json())["tasks"] == {"broken": "failed: RuntimeError"}


async def test_a_lock_held_past_busy_timeout_is_a_json_503_and_heals(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sqlite3
    import time
    monkeypatch.setattr(health_module, "PROBE_TIMEOUT", 0.5)  # 2 s in service: both wait less
    path = tmp_path / "subscriptions.toml"
    path.write_text(CONFIG.format(db=tmp_path / "n.db", key=KEY))
    app = create_app(load(path, environ={}), store=SQLiteStore(tmp_path / "n.db"),
                     senders={"log": FakeSender("log"), "jobs": FakeSender("jobs")},  # type: ignore[dict-item]
                     storage_timeout=0.5)
    async with app.test_app() as running:
        client = running.test_client()
        other = sqlite3.connect(tmp_path / "n.db", isolation_level=None)  # another process
        other.execute("BEGIN IMMEDIATE")
        body = json.dumps({"export_key": KEY, "event": "job.updated", "job": 7}).encode()
        try:
            started = time.perf_counter()
            refused = await client.post("/hirehop", data=body)
            assert refused.status_code == 503
            assert "storage" in (await refused.get_json())["error"]
            health = await client.get("/healthz")
            assert health.status_code == 503 and time.perf_counter() - started < 8
            assert "storage" in await health.get_json()
        finally:
            other.execute("ROLLBACK")
            other.close()

        async def healthy() -> bool:
            return (await client.get("/healthz")).status_code == 200

        await eventually(healthy, within=30, what="/healthz healthy again")
        # The first write was not cancelled: it committed once the lock was free.
        assert (await client.post("/hirehop", data=body)).status_code in (200, 202)


async def test_an_answer_naming_undecodable_text_is_still_json() -> None:
    # orjson refuses a lone surrogate (a file name that is not UTF-8 can carry one
    # into a reason); the answer must stay JSON, not become a 500.
    from notifybot.app import _json

    answer = _json({"error": "cannot read bad\udc80name.toml"})
    assert json.loads(await answer.get_data()) == {"error": "cannot read bad\udc80name.toml"}
