"""The webhook endpoint: one POST in, one JSON answer out, in front of Quart.

HireHop's POSTs are the one hot path of the HTTP side, so they are answered by
:class:`WebhookEndpoint`, a bare ASGI handler placed before the Quart app
(Quart's documented way to wrap ``app.asgi_app``). Quart builds a request
context, a request and a response object for every request, which costs more
CPU than storing the event does (docs/benchmarks.md, ingest); the webhook needs
none of it. Every other request, and a POST this handler leaves alone, goes to
Quart unchanged, and the Quart route for the same path gives the same answers
through :meth:`WebhookEndpoint.answer`, so what a webhook gets back is decided in
one place.

The answers (README, "HTTP"): 202 ``{"event_id"}`` once the
event is committed; 200 ``{"duplicate": true}`` for a body seen before; 400 or
403 with a reason for a body refused; 413 for a body over ``max_body_bytes``;
408 for a body not sent within :data:`BODY_TIMEOUT`; 503 when storage does not
take the write (nothing stored: send again); 500 for a bug, which is logged.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import orjson
from hypercorn.typing import (
    ASGIReceiveCallable,
    ASGISendCallable,
    HTTPResponseBodyEvent,
    HTTPResponseStartEvent,
    HTTPScope,
    Scope,
)

from .errors import WebhookRejected
from .health import Health, describe, is_storage_error
from .metrics import Metrics
from .pipeline import Pipeline

log = logging.getLogger("notifybot.app")

ASGIApp = Callable[[Scope, ASGIReceiveCallable, ASGISendCallable], Awaitable[None]]

# Quart's own default for reading a request body (its BODY_TIMEOUT), kept for the webhook.
BODY_TIMEOUT = 60.0


class WebhookEndpoint:
    """``POST {path}`` answered here; anything else passed on to ``app`` (Quart)."""

    def __init__(self, app: ASGIApp, *, path: str, max_body: int,
                 pipeline: Pipeline, health: Health, metrics: Metrics,
                 storage_timeout: float) -> None:
        self.app = app
        self.path = path
        self.max_body = max_body
        self._pipeline = pipeline
        self._health = health
        self._metrics = metrics
        self._storage_timeout = storage_timeout

    async def __call__(self, scope: Scope, receive: ASGIReceiveCallable,
                       send: ASGISendCallable) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] != self.path:
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        try:
            body = await self._body(headers, receive)
        except WebhookRejected as refused:
            await _respond(send, refused.status, {"error": refused.reason})
            return
        if body is None:
            return  # the client went away while sending: there is nobody to answer
        status, answer = await self.answer(body, headers.get("Content-Type", ""), headers)
        await _respond(send, status, answer)

    async def answer(self, body: bytes, content_type: str,
                     headers: Mapping[str, str]) -> tuple[int, dict[str, Any]]:
        """The status and JSON answer to one webhook body (also used by the Quart route)."""
        try:
            # A give-up, not a cancellation of the write: the store lets it go on.
            async with asyncio.timeout(self._storage_timeout):
                received = await self._pipeline.receive(body, content_type, headers)
        except WebhookRejected as rejected:
            log.warning("rejected webhook: %s", rejected.reason, extra={"reason": rejected.reason})
            return rejected.status, {"error": rejected.reason}
        except Exception as exc:
            if not is_storage_error(exc):
                log.exception("unexpected error answering POST %s", self.path)
                return 500, {"error": "internal error; it has been logged"}
            # Not stored, and a webhook not committed within the timeout is answered
            # too: its write is not cancelled and may still commit, and a resent body
            # is then answered "duplicate".
            self._health.storage_failed(exc)
            self._metrics.events.labels(event="", outcome="unavailable_503").inc()
            log.error("could not store a webhook: %s", describe(exc),
                      extra={"reason": describe(exc)})
            return 503, {"error": f"storage unavailable ({describe(exc)}); the event was not "
                                  "stored, send it again"}
        if received.duplicate:
            return 200, {"duplicate": True, "event_id": received.event_id}
        return 202, {"event_id": received.event_id}

    async def _body(self, headers: Mapping[str, str], receive: ASGIReceiveCallable) -> bytes | None:
        """The request body; WebhookRejected (413, 408) if too long or too slow, None if cut."""
        declared = headers.get("Content-Length", "")
        if declared.isascii() and declared.isdigit() and int(declared) > self.max_body:
            raise _too_large(self.max_body)
        chunks: list[bytes] = []
        size = 0
        try:
            async with asyncio.timeout(BODY_TIMEOUT):
                while True:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        return None
                    if message["type"] != "http.request":
                        continue
                    chunk = message.get("body", b"")
                    size += len(chunk)
                    if size > self.max_body:
                        raise _too_large(self.max_body)
                    chunks.append(chunk)
                    if not message.get("more_body", False):
                        return b"".join(chunks)
        except TimeoutError:
            raise WebhookRejected(408, f"the body was not received within {BODY_TIMEOUT:g} s") \
                from None


def encode(answer: Mapping[str, Any]) -> bytes:
    """A JSON answer's bytes (orjson; the stdlib for a reason holding a lone surrogate)."""
    try:
        return orjson.dumps(answer)
    except TypeError:  # a reason naming a file with a lone surrogate: the stdlib escapes it
        return json.dumps(answer).encode()


def _headers(scope: HTTPScope) -> dict[str, str]:
    """The request's headers as Quart shows them: title-cased names, the peer as
    ``Remote-Addr``, a repeated name's first value (what is stored with the event)."""
    headers = {"Remote-Addr": (scope.get("client") or ["<local>"])[0]}
    for name, value in scope["headers"]:
        headers.setdefault(name.decode("latin-1").title(), value.decode("latin-1"))
    return headers


async def _respond(send: ASGISendCallable, status: int, answer: Mapping[str, Any]) -> None:
    body = encode(answer)
    await send(HTTPResponseStartEvent(
        type="http.response.start", status=status,
        headers=[(b"content-type", b"application/json"),
                 (b"content-length", str(len(body)).encode())]))
    await send(HTTPResponseBodyEvent(type="http.response.body", body=body, more_body=False))


def _too_large(limit: int) -> WebhookRejected:
    return WebhookRejected(413, f"body over {limit} bytes")
