"""The hand-written receivers' webhook handler (Apprise, naive Slack): decode, check, one line, send.

Each alternative in bench/ is the handler a user would write instead of
notifybot: read the JSON, check the export key, make one line of text, send it
its own way inside the request, and answer 200 if that worked and 502 if not.
Only the sending differs, so this module is the rest.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from quart import Quart, Response, jsonify, request

from bench.common import EXPORT_KEY


class Refused(Exception):
    """The request is not a webhook to send: ``status`` and ``reason`` are the answer."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def line(body: str) -> str:
    """The one line to send for a webhook body; raises :class:`Refused` for a bad body or key."""
    try:
        payload: dict[str, Any] = json.loads(body)
    except ValueError:
        raise Refused(400, "not JSON") from None
    if payload.get("export_key") != EXPORT_KEY:
        raise Refused(403, "wrong export_key")
    changes = payload.get("changes", {}).get("STATUS", {})
    return (f"Job {payload.get('job')}: {payload.get('event')}, status {changes.get('from')} "
            f"-> {changes.get('to')}, by {payload.get('user_name')}")


def add_webhook(app: Quart, send: Callable[[str], Awaitable[bool]]) -> None:
    """``POST /hirehop`` on ``app``: the line of each webhook given to ``send`` before answering."""

    @app.post("/hirehop")
    async def webhook() -> tuple[Response, int]:
        try:
            text = line(await request.get_data(as_text=True))
        except Refused as refused:
            return jsonify({"error": refused.reason}), refused.status
        ok = await send(text)
        return jsonify({"sent": ok}), 200 if ok else 502
