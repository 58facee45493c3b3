"""A loopback stand-in for the Telegram Bot API: ``getMe``, ``sendMessage`` and
``editMessageText``.

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

Replies: ``sendMessage`` with ``reply_parameters`` (or the older
``reply_to_message_id``) replies to a message of the same chat; once that message
is deleted (:meth:`TelegramStandIn.delete_message`, as a person would) it answers
``Bad Request: message to be replied not found`` unless
``allow_sending_without_reply`` is true. ``editMessageText`` answers ``Bad Request:
message is not modified: ...`` for unchanged content and ``Bad Request: message to
edit not found`` for a deleted or unknown message.

Fault injection applies to the next requests of one API method (``sendMessage``
unless told otherwise), in the order queued: :meth:`fail_next` (HTML 5xx page),
:meth:`rate_limit_next` (429 + ``retry_after``), :meth:`error_next` (any status and
description) and :meth:`delay_next` (a slow answer). Note that python-telegram-bot's
``Bot.shutdown()`` makes no API call, so only these methods are served.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
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
    reply_to: int | None = None  # the message_id this one replies to
    edited: bool = False  # this version came from ``editMessageText``
    entities: tuple[Any, ...] = field(default=(), repr=False)


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
    """Serves ``getMe``, ``sendMessage`` and ``editMessageText`` under ``/bot<token>/``.

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
        self.messages: list[SentMessage] = []  # every accepted sendMessage, in order
        self.edits: list[SentMessage] = []  # every accepted editMessageText, in order
        self.deleted: set[int] = set()  # message ids deleted by a person
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

    # -- messages as a person sees them -------------------------------------------------

    def delete_message(self, message_id: int) -> None:
        """Delete a message as a person would (replies to it stay)."""
        if not any(m.message_id == message_id for m in self.messages):
            raise KeyError(message_id)
        self.deleted.add(message_id)

    def current(self, message_id: int) -> SentMessage:
        """The message as it reads now: its latest edit, else as sent."""
        versions = [m for m in (*self.messages, *self.edits) if m.message_id == message_id]
        if not versions:
            raise KeyError(message_id)
        return versions[-1]

    def replies(self, message_id: int) -> list[SentMessage]:
        """The live messages that reply to ``message_id``, oldest first."""
        return [self.current(m.message_id) for m in self.messages
                if m.reply_to == message_id and m.message_id not in self.deleted]

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
        if method == "editMessageText":
            return self._edit_message_text(params)
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
        replied = self._replied(chat["id"], params)
        self._check_pace(chat)
        message_id = len(self.messages) + 1
        sent = SentMessage(chat["id"], text, parse_mode, plain, message_id, time.monotonic(),
                           params, reply_to=replied.message_id if replied else None,
                           entities=_entity_key(entities))
        self.messages.append(sent)
        self._changed.set()
        result = self._message(sent, chat, entities)
        if replied is not None:
            result["reply_to_message"] = self._message(
                self.current(replied.message_id), chat, None)
        return result

    def _edit_message_text(self, params: dict[str, Any]) -> dict[str, Any]:
        chat = self._chat(params.get("chat_id"))
        text = str(params.get("text") or "")
        parse_mode = params.get("parse_mode") or None
        plain, entities = _parse(text, parse_mode)
        if not plain.strip():
            raise _ApiError(400, "Bad Request: message text is empty")
        if len(plain) > MAX_TEXT:
            raise _ApiError(400, "Bad Request: message is too long")
        target = self._live(chat["id"], params.get("message_id"))
        if target is None:
            raise _ApiError(400, "Bad Request: message to edit not found")
        before = self.current(target.message_id)
        if (before.plain_text, before.entities) == (plain, _entity_key(entities)):
            raise _ApiError(400, "Bad Request: message is not modified: specified new message "
                                 "content and reply markup are exactly the same as a current "
                                 "content and reply markup of the message")
        edited = replace(before, text=text, parse_mode=parse_mode, plain_text=plain,
                         time=time.monotonic(), params=params, edited=True,
                         entities=_entity_key(entities))
        self.edits.append(edited)
        self._changed.set()
        return self._message(edited, chat, entities) | {"edit_date": int(time.time())}

    def _replied(self, chat_id: int, params: dict[str, Any]) -> SentMessage | None:
        """The message a sendMessage replies to, None for none (or a missing one, if allowed)."""
        reply = params.get("reply_parameters")
        if isinstance(reply, dict):
            target, allow = reply.get("message_id"), reply.get("allow_sending_without_reply")
        else:
            target = params.get("reply_to_message_id")
            allow = params.get("allow_sending_without_reply")
        if target in (None, ""):
            return None
        replied = self._live(chat_id, target)
        if replied is None and not _flag(allow):
            raise _ApiError(400, "Bad Request: message to be replied not found")
        return replied

    def _live(self, chat_id: int, message_id: Any) -> SentMessage | None:
        try:
            wanted = int(message_id)
        except (TypeError, ValueError):
            return None
        return next((m for m in self.messages if m.message_id == wanted
                     and m.chat_id == chat_id and wanted not in self.deleted), None)

    def _message(self, sent: SentMessage, chat: dict[str, Any],
                 entities: list[dict[str, Any]] | None) -> dict[str, Any]:
        result: dict[str, Any] = {"message_id": sent.message_id, "from": self._bot_user(),
                                  "chat": chat, "date": int(time.time()), "text": sent.plain_text}
        if entities:
            result["entities"] = entities
        if isinstance(sent.params.get("link_preview_options"), dict):
            result["link_preview_options"] = sent.params["link_preview_options"]
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


def _entity_key(entities: list[dict[str, Any]]) -> tuple[Any, ...]:
    """Entities in a comparable form: an edit to the same text and markup is "not modified"."""
    return tuple(tuple(sorted((k, str(v)) for k, v in e.items())) for e in entities)


def _flag(value: Any) -> bool:
    """A boolean parameter: JSON true, or "true"/"1" in a form field."""
    return value is True or (isinstance(value, str) and value.lower() in ("true", "1"))


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

