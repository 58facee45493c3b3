"""The webhook endpoint as an ASGI conversation: bodies in pieces, cut, too slow, too long.

The app is the real one (``create_app``, startup run); each test talks ASGI to it
directly, so a body can arrive in chunks without a Content-Length, stop half way
or never finish, which Quart's test client cannot send.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from quart import Quart

from notifybot import endpoint as endpoint_module
from notifybot.app import create_app
from notifybot.config import load
from notifybot.endpoint import WebhookEndpoint
from notifybot.store.sqlite import SQLiteStore
from notifybot.testing import FakeSender
from tests.unit.test_app import CONFIG, KEY, sample

BODY = sample("job.status.updated.constructed.json")


class Conversation:
    """One request to an ASGI app: the messages it receives, and what it sent back."""

    def __init__(self, method: str, path: str, chunks: Sequence[bytes], *,
                 headers: Sequence[tuple[bytes, bytes]] = ((b"content-type", b"application/json"),),
                 then: str = "end") -> None:
        self.scope: dict[str, Any] = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
            "method": method, "scheme": "http", "path": path, "raw_path": path.encode(),
            "query_string": b"", "root_path": "", "headers": list(headers),
            "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8080), "extensions": {}}
        self._messages: list[dict[str, Any]] = [
            {"type": "http.request", "body": chunk, "more_body": True} for chunk in chunks]
        if then == "end":
            self._messages.append({"type": "http.request", "body": b"", "more_body": False})
        elif then == "disconnect":
            self._messages.append({"type": "http.disconnect"})
        self.sent: list[dict[str, Any]] = []

    async def receive(self) -> dict[str, Any]:
        if self._messages:
            return self._messages.pop(0)
        await asyncio.Event().wait()  # "hang": the client sends nothing more
        raise AssertionError("unreachable")

    async def send(self, message: dict[str, Any]) -> None:
        self.sent.append(message)

    async def run(self, app: Any) -> Conversation:
        await app(self.scope, self.receive, self.send)
        return self

    @property
    def status(self) -> int | None:
        starts = [m for m in self.sent if m["type"] == "http.response.start"]
        return starts[0]["status"] if starts else None

    @property
    def answer(self) -> Any:
        return json.loads(b"".join(m.get("body", b"") for m in self.sent
                                   if m["type"] == "http.response.body"))


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[Quart, SQLiteStore]]:
    path = tmp_path / "subscriptions.toml"
    path.write_text(CONFIG.format(db=tmp_path / "n.db", key=KEY)
                    .replace("[server]", "[server]\nmax_body_bytes = 4096", 1))
    store = SQLiteStore(tmp_path / "n.db")
    app = create_app(load(path, environ={}), store=store,
                     senders={"log": FakeSender("log"), "jobs": FakeSender("jobs")})  # type: ignore[dict-item]
    async with app.test_app():
        yield app, store


def endpoint_of(app: Quart) -> WebhookEndpoint:
    assert isinstance(app.asgi_app, WebhookEndpoint)
    return app.asgi_app


def stored_count(store: SQLiteStore) -> int:
    """Events in the database, routed or not (read by another connection)."""
    with sqlite3.connect(store.path) as db:
        return int(db.execute("SELECT COUNT(*) FROM events").fetchone()[0])


async def test_a_body_in_pieces_without_a_length_is_accepted_whole(
        served: tuple[Quart, SQLiteStore]) -> None:
    app, store = served
    talk = await Conversation("POST", "/hirehop", [BODY[:100], BODY[100:300], BODY[300:]],
                              headers=[(b"content-type", b"application/json"),
                                       (b"user-agent", b"HireHop"),
                                       (b"authorization", b"Bearer never-stored")]).run(app)
    assert talk.status == 202
    stored = await store.get_event(talk.answer["event_id"])
    assert stored is not None and stored.name == "job.status.updated"
    # Stored headers read as they always did: title-cased, the peer, no credentials.
    assert stored.headers == {"Remote-Addr": "127.0.0.1", "Content-Type": "application/json",
                              "User-Agent": "HireHop"}


async def test_a_body_growing_past_the_limit_is_413_and_stores_nothing(
        served: tuple[Quart, SQLiteStore]) -> None:
    app, store = served
    chunk = b"x" * 1500  # no Content-Length: the limit is found while reading
    talk = await Conversation("POST", "/hirehop", [chunk, chunk, chunk, chunk],
                              then="hang").run(app)
    assert talk.status == 413
    assert talk.answer == {"error": "body over 4096 bytes"}
    assert stored_count(store) == 0


async def test_a_declared_length_past_the_limit_is_413_before_reading(
        served: tuple[Quart, SQLiteStore]) -> None:
    app, _ = served
    talk = await Conversation("POST", "/hirehop", [], then="hang",
                              headers=[(b"content-length", b"5000")]).run(app)
    assert talk.status == 413


async def test_a_client_gone_mid_body_gets_no_answer_and_stores_nothing(
        served: tuple[Quart, SQLiteStore]) -> None:
    app, store = served
    talk = await Conversation("POST", "/hirehop", [BODY[:200]], then="disconnect").run(app)
    assert talk.sent == []
    assert stored_count(store) == 0


async def test_a_body_never_finished_is_408(served: tuple[Quart, SQLiteStore],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    app, store = served
    monkeypatch.setattr(endpoint_module, "BODY_TIMEOUT", 0.2)
    talk = await Conversation("POST", "/hirehop", [BODY[:200]], then="hang").run(app)
    assert talk.status == 408
    assert "not received within" in talk.answer["error"]
    assert stored_count(store) == 0


async def test_other_requests_go_to_quart(served: tuple[Quart, SQLiteStore]) -> None:
    app, _ = served
    assert (await Conversation("GET", "/healthz", []).run(app)).status == 200
    wrong_method = await Conversation("GET", "/hirehop", []).run(app)
    assert wrong_method.status == 405 and wrong_method.answer == {"error": "method not allowed"}
    other_path = await Conversation("POST", "/hirehop/x", [BODY]).run(app)
    assert other_path.status == 404


async def test_the_quart_route_answers_as_the_endpoint_does(
        served: tuple[Quart, SQLiteStore]) -> None:
    app, store = served
    quart_only = endpoint_of(app).app  # Quart itself, as if the endpoint were not in front
    refused = json.dumps({"event": "job.updated", "export_key": "nope"}).encode()
    for body in (BODY, refused, b"not json"):
        via_quart = await Conversation("POST", "/hirehop", [body]).run(quart_only)
        via_endpoint = await Conversation("POST", "/hirehop", [body]).run(app)
        if via_quart.status == 202:  # the same body again is a duplicate of the first
            assert via_endpoint.status == 200
            assert via_endpoint.answer == {"duplicate": True, **via_quart.answer}
        else:
            assert (via_quart.status, via_quart.answer) == (via_endpoint.status,
                                                            via_endpoint.answer)
    assert stored_count(store) == 1
