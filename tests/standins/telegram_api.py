"""A loopback stand-in for the Telegram Bot API: ``getMe`` and ``sendMessage``.

It answers the way Telegram does (stack.md §2, §7): ``{"ok": true, "result": ...}``
with a full Message, ``{"ok": false, "error_code": ..., "description": ...}`` with
the matching HTTP status on errors, ``parameters.retry_after`` on 429 and
``parameters.migrate_to_chat_id`` for a migrated group. Bodies may be form-encoded
(what python-telegram-bot sends) or JSON. Tests point a real ``telegram.Bot`` at
:attr:`TelegramStandIn.base_url` (token appended) and assert on
:attr:`TelegramStandIn.messages`::

    async with TelegramStandIn() as tg:
        options = {"type": "telegram", "token": Secret(tg.token),
                   "chat_id": PRIVATE_CHAT, "base_url": tg.base_url}
        ...
        assert tg.messages[0].plain_text == "..."

Fault injection applies to the next requests of one API method (``sendMessage``
unless told otherwise), in the order queued: :meth:`fail_next` (HTML 5xx page),
:meth:`rate_limit_next` (429 + ``retry_after``), :meth:`error_next` (any status and
description) and :meth:`delay_next` (a slow answer). Note that python-telegram-bot's
``Bot.shutdown()`` makes no API call, so only these two methods are served.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.standins.server import LoopbackServer

from .telegram_html import EntityError, parse_html

DEFAULT_TOKEN = "123456789:AAStandInTokenForNotifybotTests_0123"
PRIVATE_CHAT = 42
GROUP_CHAT = -1001234567890
CHANNEL_USERNAME = "@notifybot_alerts"
CHANNEL_CHAT = -1009876543210
MAX_TEXT = 4096  # characters after entity parsing (stack.md §2.4), counted as code points
GROUP_PER_MINUTE = 20
HTML_ERROR_PAGE = ("<html><head><title>{status} Internal Server Error</title></head><body>"
                   "<center><h1>{status} Internal Server Error</h1></center><hr>"
                   "<center>nginx</center></body></html>")


@dataclass(frozen=True)
class SentMessage:
    """One message ``sendMessage`` accepted."""

    chat_id: int  # the numeric chat id, even when the request named "@channel"
    text: str  # as sent, markup included
    parse_mode: str | None
    plain_text: str  # what a reader sees: tags stripped, entities decoded
    message_id: int
    time: float  # time.monotonic() when it was accepted, for pacing assertions
    params: dict[str, Any] = field(repr=False)  # every parameter the client sent


@dataclass
class _Fault:
    kind: str  # "html", "error" or "delay"
    count: int
    method: str
    status: int = 500
    description: str = ""
    parameters: dict[str, Any] | None = None
    seconds: float = 0.0


class _ApiError(Exception):
    def __init__(self, status: int, description: str,
                 parameters: dict[str, Any] | None = None) -> None:
        super().__init__(description)
        self.status, self.description, self.parameters = status, description, parameters


class TelegramStandIn(LoopbackServer):
    """Serves ``/bot<token>/getMe`` and ``/bot<token>/sendMessage`` on 127.0.0.1.

    Known chats: :data:`PRIVATE_CHAT` (private), :data:`GROUP_CHAT` (supergroup) and
    :data:`CHANNEL_CHAT` alias :data:`CHANNEL_USERNAME` (channel); add more with
    :meth:`add_chat`. :meth:`block` makes a chat answer 403, :meth:`migrate` 400 with
    ``migrate_to_chat_id``. With ``enforce_pace`` (switchable at any time) more than
    one message a second to a chat, or 20 a minute to a group or channel, gets 429.
    """

    def __init__(self, *, token: str = DEFAULT_TOKEN, enforce_pace: bool = False) -> None:
        super().__init__()
        self.token = token
        self.enforce_pace = enforce_pace
        self.messages: list[SentMessage] = []
        self.calls: list[str] = []  # API method of every request, in order, faults included
        self.chats: dict[int, dict[str, Any]] = {}
        self.blocked: set[int] = set()
        self.migrated: dict[int, int] = {}
        self._faults: list[_Fault] = []
        self._sent_at: dict[int, deque[float]] = {}
        self._changed = asyncio.Event()  # set on every request and every message
        self.add_chat(PRIVATE_CHAT, "private", first_name="Stand-in User")
        self.add_chat(GROUP_CHAT, "supergroup", title="Warehouse")
        self.add_chat(CHANNEL_CHAT, "channel", title="Alerts", username=CHANNEL_USERNAME[1:])

    url_path = "/bot"

    def routes(self, app: web.Application) -> None:
        app.router.add_route("*", "/bot{token}/{method}", self._handle)

    async def wait_for_messages(self, count: int, within: float = 5.0) -> list[SentMessage]:
        """The accepted messages once there are ``count``; TimeoutError after ``within`` s."""
        await self._wait_until(lambda: len(self.messages) >= count, within)
        return list(self.messages)

    async def wait_for_calls(self, count: int, within: float = 5.0) -> list[str]:
        """:attr:`calls` once ``count`` requests have arrived (answered or not)."""
        await self._wait_until(lambda: len(self.calls) >= count, within)
        return list(self.calls)

    async def _wait_until(self, done: Callable[[], bool], within: float) -> None:
        async with asyncio.timeout(within):
            while not done():
                self._changed.clear()
                await self._changed.wait()

    # -- chats -------------------------------------------------------------------------

    def add_chat(self, chat_id: int, kind: str = "private", **fields: str) -> None:
        """A chat the bot may write to; ``kind`` is private, group, supergroup or channel."""
        self.chats[chat_id] = {"id": chat_id, "type": kind, **fields}

    def block(self, chat_id: int) -> None:
        """Messages to ``chat_id`` get 403 ``Forbidden: bot was blocked by the user``."""
        self.blocked.add(chat_id)

    def migrate(self, chat_id: int, new_chat_id: int) -> None:
        """The group was upgraded: messages get 400 with ``migrate_to_chat_id``."""
        self.migrated[chat_id] = new_chat_id
        self.add_chat(new_chat_id, "supergroup", title=self.chats[chat_id].get("title", ""))

    # -- fault injection ---------------------------------------------------------------

    def fail_next(self, count: int = 1, *, status: int = 500,
                  method: str = "sendMessage") -> None:
        """The next ``count`` requests of ``method`` get an HTML error page with ``status``."""
        self._faults.append(_Fault("html", count, method, status=status))

    def rate_limit_next(self, count: int = 1, *, retry_after: int = 5,
                        method: str = "sendMessage") -> None:
        """The next ``count`` requests get 429 ``Too Many Requests: retry after N``."""
        self.error_next(count, status=429, method=method,
                        description=f"Too Many Requests: retry after {retry_after}",
                        parameters={"retry_after": retry_after})

    def error_next(self, count: int = 1, *, status: int, description: str,
                   parameters: dict[str, Any] | None = None,
                   method: str = "sendMessage") -> None:
        """The next ``count`` requests get ``{"ok": false, ...}`` with ``status``."""
        self._faults.append(_Fault("error", count, method, status=status,
                                   description=description, parameters=parameters))

    def delay_next(self, seconds: float, count: int = 1, *,
                   method: str = "sendMessage") -> None:
        """The next ``count`` requests are answered normally, but ``seconds`` late."""
        self._faults.append(_Fault("delay", count, method, seconds=seconds))

    def _take_fault(self, method: str) -> _Fault | None:
        for fault in self._faults:
            if fault.method == method:
                fault.count -= 1
                if fault.count <= 0:
                    self._faults.remove(fault)
                return fault
        return None

    # -- the API -----------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"]
        self.calls.append(method)
        self._changed.set()
        fault = self._take_fault(method)
        if fault is not None and fault.kind == "html":
            return web.Response(status=fault.status, content_type="text/html",
                                text=HTML_ERROR_PAGE.format(status=fault.status))
        if fault is not None and fault.kind == "delay":
            # Not asyncio.sleep: stop() must be able to end the wait at once.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), fault.seconds)
        try:
            if fault is not None and fault.kind == "error":
                raise _ApiError(fault.status, fault.description, fault.parameters)
            if request.match_info["token"] != self.token:
                raise _ApiError(401, "Unauthorized")
            result = await self._call(method, await _params(request))
        except _ApiError as exc:
            body: dict[str, Any] = {"ok": False, "error_code": exc.status,
                                    "description": exc.description}
            if exc.parameters:
                body["parameters"] = exc.parameters
            return web.json_response(body, status=exc.status)
        return web.json_response({"ok": True, "result": result})

    async def _call(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        if method == "getMe":
            return self._bot_user(full=True)
        if method == "sendMessage":
            return self._send_message(params)
        raise _ApiError(404, "Not Found")

    def _bot_user(self, *, full: bool = False) -> dict[str, Any]:
        bot_id = self.token.split(":", 1)[0]
        user: dict[str, Any] = {"id": int(bot_id) if bot_id.isdigit() else 1, "is_bot": True,
                                "first_name": "Notifybot Stand-in",
                                "username": "notifybot_standin_bot"}
        if full:
            user |= {"can_join_groups": True, "can_read_all_group_messages": False,
                     "supports_inline_queries": False}
        return user

    def _send_message(self, params: dict[str, Any]) -> dict[str, Any]:
        chat = self._chat(params.get("chat_id"))
        text = str(params.get("text") or "")
        parse_mode = params.get("parse_mode") or None
        plain, entities = _parse(text, parse_mode)
        if not plain.strip():
            raise _ApiError(400, "Bad Request: message text is empty")
        if len(plain) > MAX_TEXT:
            raise _ApiError(400, "Bad Request: message is too long")
        self._check_pace(chat)
        message_id = len(self.messages) + 1
        self.messages.append(SentMessage(chat["id"], text, parse_mode, plain, message_id,
                                         time.monotonic(), params))
        self._changed.set()
        result: dict[str, Any] = {"message_id": message_id, "from": self._bot_user(),
                                  "chat": chat, "date": int(time.time()), "text": plain}
        if entities:
            result["entities"] = entities
        if isinstance(params.get("link_preview_options"), dict):
            result["link_preview_options"] = params["link_preview_options"]
        return result

    def _chat(self, ref: Any) -> dict[str, Any]:
        if ref in (None, ""):
            raise _ApiError(400, "Bad Request: chat_id is empty")
        chat_id = _as_chat_id(ref)
        if isinstance(chat_id, str):
            chat_id = next((c for c, chat in self.chats.items()
                            if "@" + chat.get("username", "") == chat_id), 0)
        if chat_id in self.migrated:
            raise _ApiError(400, "Bad Request: group chat was upgraded to a supergroup chat",
                            {"migrate_to_chat_id": self.migrated[chat_id]})
        if chat_id not in self.chats:
            raise _ApiError(400, "Bad Request: chat not found")
        if chat_id in self.blocked:
            raise _ApiError(403, "Forbidden: bot was blocked by the user")
        return self.chats[chat_id]

    def _check_pace(self, chat: dict[str, Any]) -> None:
        if not self.enforce_pace:
            return
        now = time.monotonic()
        sent = self._sent_at.setdefault(chat["id"], deque())
        while sent and now - sent[0] >= 60:
            sent.popleft()
        wait = 1 - (now - sent[-1]) if sent else 0.0
        if chat["type"] != "private" and len(sent) >= GROUP_PER_MINUTE:
            wait = max(wait, 60 - (now - sent[0]))
        if wait > 0:
            retry_after = max(1, math.ceil(wait))
            raise _ApiError(429, f"Too Many Requests: retry after {retry_after}",
                            {"retry_after": retry_after})
        sent.append(now)


async def _params(request: web.Request) -> dict[str, Any]:
    """Query and body parameters; form values are JSON-decoded where they are JSON."""
    params: dict[str, Any] = dict(request.query)
    if request.content_type == "application/json":
        body = await request.json()
        if not isinstance(body, dict):
            raise _ApiError(400, "Bad Request: invalid JSON body")
        return params | body
    if request.body_exists:
        params |= {key: value for key, value in (await request.post()).items()
                   if isinstance(value, str)}
    # python-telegram-bot JSON-encodes objects ("link_preview_options") in form fields.
    for key, value in params.items():
        if isinstance(value, str) and value[:1] in "{[":
            with contextlib.suppress(ValueError):
                params[key] = json.loads(value)
    return params


def _as_chat_id(ref: Any) -> int | str:
    text = str(ref).strip()
    if text.lstrip("-").isdigit():
        return int(text)
    return text


def _parse(text: str, parse_mode: str | None) -> tuple[str, list[dict[str, Any]]]:
    if parse_mode is None:
        return text, []
    if parse_mode.lower() in ("markdown", "markdownv2"):
        # Markdown is not needed by notifybot; accept the text as it is.
        return text, []
    if parse_mode.lower() != "html":
        raise _ApiError(400, "Bad Request: unsupported parse_mode")
    try:
        return parse_html(text)
    except EntityError as exc:
        raise _ApiError(400, f"Bad Request: can't parse entities: {exc}") from None

