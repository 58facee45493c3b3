"""A loopback stand-in for the Slack Web API: ``auth.test``, ``chat.postMessage``,
``chat.update`` and ``chat.delete``.

It answers the way Slack does (stack.md §1, §7): logical errors are HTTP 200 with
``{"ok": false, "error": ...}``, a rate limit is HTTP 429 with ``Retry-After``, and a
broken upstream is an HTML page. Tests point a real ``AsyncWebClient`` at
:attr:`SlackStandIn.base_url`, then assert on :attr:`SlackStandIn.messages`::

    async with SlackStandIn(channels={"C0TEST": "alerts"}) as slack:
        ...  # use slack.base_url and slack.token
        assert slack.messages[0].text == "..."

Threads: a post with ``thread_ts`` is a reply (recorded with its ``thread_ts`` and
``reply_broadcast``); :meth:`SlackStandIn.delete_message` deletes a message as a
person would. A reply to a deleted (or unknown) parent answers ``thread_not_found``,
or, with ``deleted_parent="unthread"``, is accepted and posted at the top level
without ``thread_ts`` in its ``message`` (what Slack does for a deleted parent that
had no replies; one that had replies Slack keeps as a placeholder, which this
stand-in does not model). ``chat.update`` on a deleted message answers ``message_not_found``;
like Slack it needs the channel *id* (a ``#name`` answers ``channel_not_found``).

Fault injection applies to the next requests of any method, in the order queued:
:meth:`fail_next` (HTML 5xx page), :meth:`rate_limit_next` (429 + Retry-After),
:meth:`error_next` (a given Slack error code), :meth:`drop_next` (connection closed
without an answer) and :meth:`delay_next` (a slow answer).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from aiohttp import web

from tests.standins.server import LoopbackServer

BOT = {"user": "notifybot", "user_id": "U0STANDIN", "bot_id": "B0STANDIN",
       "team": "Stand-in Workspace", "team_id": "T0STANDIN"}
DEFAULT_TOKEN = "xoxb-standin-token"
MAX_BLOCKS = 50
MAX_SECTION_TEXT = 3000
MAX_TEXT = 40_000
HTML_ERROR_PAGE = "<html><body><h1>{status}</h1><p>Slack is having trouble.</p></body></html>"


@dataclass(frozen=True)
class PostedMessage:
    """One message ``chat.postMessage`` accepted."""

    channel: str  # the channel id, even when the request named "#channel"
    text: str | None
    blocks: list[Any] | None
    ts: str
    time: float  # time.time() when it was accepted
    body: dict[str, Any] = field(repr=False)  # every argument the client sent
    thread_ts: str | None = None  # the parent's ts for a reply
    broadcast: bool = False  # a reply also shown in the channel (``reply_broadcast``)
    edited: bool = False  # this version came from ``chat.update``


@dataclass
class _Fault:
    kind: str  # "html", "ratelimit", "error", "drop" or "delay"
    count: int
    status: int = 200
    error: str = ""
    seconds: float = 0.0
    content_type: str = "text/html"


class SlackStandIn(LoopbackServer):
    """Serves ``POST /api/auth.test`` and ``POST /api/chat.postMessage`` on 127.0.0.1.

    ``channels`` maps channel id to name (a post may name either ``C…`` or ``#name``);
    ``not_member`` and ``archived`` are channel ids that answer ``not_in_channel`` and
    ``is_archived``. With ``enforce_rate_limit`` (switchable at any time) a second post
    to one channel within a second is refused with 429, as Slack does.
    ``deleted_parent`` is how a reply to a missing parent is answered:
    ``"thread_not_found"`` or ``"unthread"`` (see the module doc).
    """

    def __init__(self, *, token: str = DEFAULT_TOKEN,
                 channels: Mapping[str, str] | None = None,
                 not_member: frozenset[str] = frozenset(), archived: frozenset[str] = frozenset(),
                 enforce_rate_limit: bool = False,
                 deleted_parent: str = "thread_not_found") -> None:
        super().__init__()
        self.token = token
        self.channels = dict(channels if channels is not None else {"C0GENERAL": "general"})
        self.not_member = set(not_member)
        self.archived = set(archived)
        self.enforce_rate_limit = enforce_rate_limit
        self.deleted_parent = deleted_parent
        self.messages: list[PostedMessage] = []  # every accepted post, in order
        self.updates: list[PostedMessage] = []  # every accepted chat.update, in order
        self.deleted: set[str] = set()  # ts of deleted messages
        self.calls: list[str] = []  # API method of every request, in order, faults included
        self._faults: list[_Fault] = []
        self._last_post: dict[str, float] = {}
        self._seq = 0

    url_path = "/api/"

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/api/{method}", self._handle)

    # -- what a person sees -------------------------------------------------------------

    def delete_message(self, ts: str) -> None:
        """Delete a message as a person would; its replies stay (Slack keeps them)."""
        if not any(m.ts == ts for m in self.messages):
            raise KeyError(ts)
        self.deleted.add(ts)

    def current(self, ts: str) -> PostedMessage:
        """The message ``ts`` as it reads now: its latest ``chat.update``, else as posted."""
        versions = [m for m in (*self.messages, *self.updates) if m.ts == ts]
        if not versions:
            raise KeyError(ts)
        return versions[-1]

    def top_level(self) -> list[PostedMessage]:
        """The live messages shown in the channel itself (roots and broadcast replies)."""
        return [self.current(m.ts) for m in self.messages
                if m.ts not in self.deleted and (m.thread_ts is None or m.broadcast)]

    def replies(self, ts: str) -> list[PostedMessage]:
        """The live replies in the thread of ``ts``, oldest first."""
        return [self.current(m.ts) for m in self.messages
                if m.thread_ts == ts and m.ts not in self.deleted]

    # -- fault injection ---------------------------------------------------------------

    def fail_next(self, count: int = 1, *, status: int = 500,
                  content_type: str = "text/html") -> None:
        """The next ``count`` requests get an HTML error page with ``status``.

        ``content_type="application/json"`` labels the page as JSON, as some proxies do.
        """
        self._faults.append(_Fault("html", count, status=status, content_type=content_type))

    def rate_limit_next(self, count: int = 1, *, retry_after: int = 1) -> None:
        """The next ``count`` requests get 429, ``Retry-After: retry_after``, ``ratelimited``."""
        self._faults.append(_Fault("ratelimit", count, status=429, seconds=retry_after))

    def error_next(self, error: str, count: int = 1, *, status: int = 200) -> None:
        """The next ``count`` requests get ``{"ok": false, "error": error}`` with ``status``."""
        self._faults.append(_Fault("error", count, status=status, error=error))

    def drop_next(self, count: int = 1) -> None:
        """The next ``count`` requests are read, then the connection is closed unanswered."""
        self._faults.append(_Fault("drop", count))

    def delay_next(self, seconds: float, count: int = 1) -> None:
        """The next ``count`` requests are answered normally, but ``seconds`` late."""
        self._faults.append(_Fault("delay", count, seconds=seconds))

    # -- the API -----------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"]
        self.calls.append(method)
        fault = self._take_fault()
        if fault is not None and fault.kind == "drop":
            return await self._drop(request)
        if fault is not None and fault.kind != "delay":
            return _fault_response(fault)
        if fault is not None:
            # Not asyncio.sleep: stop() must be able to end the wait at once.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), fault.seconds)
        try:
            args = await _read_args(request)
        except ValueError:
            return _error("invalid_json")
        auth_error = self._auth_error(request, args)
        if auth_error:
            return _error(auth_error)
        if method == "auth.test":
            return web.json_response({"ok": True, "url": "https://standin.slack.com/", **BOT,
                                      "is_enterprise_install": False})
        if method == "chat.postMessage":
            return self._post_message(args)
        if method == "chat.update":
            return self._update(args)
        if method == "chat.delete":
            return self._delete(args)
        return web.json_response({"ok": False, "error": "unknown_method"}, status=404)

    async def _drop(self, request: web.Request) -> web.StreamResponse:
        await request.read()
        if request.transport is not None:
            request.transport.close()
        # Nothing more can be written; what aiohttp does with this response does not matter.
        return web.Response(status=500)

    def _take_fault(self) -> _Fault | None:
        if not self._faults:
            return None
        fault = self._faults[0]
        fault.count -= 1
        if fault.count <= 0:
            self._faults.pop(0)
        return fault

    def _auth_error(self, request: web.Request, args: Mapping[str, Any]) -> str | None:
        header = request.headers.get("Authorization", "")
        token = header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else ""
        token = token or str(args.get("token") or "")
        if not token:
            return "not_authed"
        return None if token == self.token else "invalid_auth"

    def _post_message(self, args: Mapping[str, Any]) -> web.Response:
        channel = self._channel_id(str(args.get("channel") or ""))
        if channel is None:
            return _error("channel_not_found")
        if channel in self.archived:
            return _error("is_archived")
        if channel in self.not_member:
            return _error("not_in_channel")
        text = args.get("text")
        try:
            blocks = _parse_blocks(args.get("blocks"))
        except ValueError:
            return _error("invalid_blocks_format")
        if not text and not blocks:
            return _error("no_text")
        problems = _block_problems(blocks or [])
        if problems:
            return _error("invalid_blocks", errors=problems)
        thread_ts = str(args.get("thread_ts") or "") or None
        if thread_ts is not None:
            parent = self._live(channel, thread_ts)
            if parent is None and self.deleted_parent != "unthread":
                return _error("thread_not_found")
            # A reply to a reply joins the parent's thread; a missing parent unthreads it.
            thread_ts = None if parent is None else (parent.thread_ts or parent.ts)
        if self._too_fast(channel):
            return _ratelimited(1)
        return self._accept(channel, text, blocks, args, thread_ts)

    def _live(self, channel: str, ts: str) -> PostedMessage | None:
        return next((m for m in self.messages
                     if m.ts == ts and m.channel == channel and ts not in self.deleted), None)

    def _update(self, args: Mapping[str, Any]) -> web.Response:
        channel = str(args.get("channel") or "")
        if channel not in self.channels:  # chat.update takes ids only, never "#name"
            return _error("channel_not_found")
        if channel in self.archived:
            return _error("is_archived")
        original = self._live(channel, str(args.get("ts") or ""))
        if original is None:
            return _error("message_not_found")
        text = args.get("text")
        try:
            blocks = _parse_blocks(args.get("blocks"))
        except ValueError:
            return _error("invalid_blocks_format")
        if not text and not blocks:
            return _error("no_text")
        problems = _block_problems(blocks or [])
        if problems:
            return _error("invalid_blocks", errors=problems)
        if isinstance(text, str) and len(text) > MAX_TEXT:
            return _error("msg_too_long")
        # Slack keeps the old blocks when an update sends text only.
        version = replace(self.current(original.ts), text=text,
                          blocks=blocks if blocks is not None else self.current(original.ts).blocks,
                          time=time.time(), body=dict(args), edited=True)
        self.updates.append(version)
        message: dict[str, Any] = {"type": "message", "text": text or "", "user": BOT["user_id"],
                                   "bot_id": BOT["bot_id"], "edited": {"user": BOT["user_id"],
                                                                       "ts": self._next_ts()}}
        if version.blocks:
            message["blocks"] = version.blocks
        return web.json_response({"ok": True, "channel": channel, "ts": original.ts,
                                  "text": text or "", "message": message})

    def _delete(self, args: Mapping[str, Any]) -> web.Response:
        channel = str(args.get("channel") or "")
        if channel not in self.channels:
            return _error("channel_not_found")
        ts = str(args.get("ts") or "")
        if self._live(channel, ts) is None:
            return _error("message_not_found")
        self.deleted.add(ts)
        return web.json_response({"ok": True, "channel": channel, "ts": ts})

    def _channel_id(self, channel: str) -> str | None:
        if channel in self.channels:
            return channel
        name = channel.removeprefix("#")
        return next((cid for cid, cname in self.channels.items() if cname == name), None)

    def _too_fast(self, channel: str) -> bool:
        now = time.monotonic()
        if self.enforce_rate_limit and now - self._last_post.get(channel, -1e9) < 1.0:
            return True
        self._last_post[channel] = now
        return False

    def _next_ts(self) -> str:
        # Whole seconds plus a global sequence number: strictly increasing, Slack-shaped.
        self._seq += 1
        return f"{int(time.time())}.{self._seq:06d}"

    def _accept(self, channel: str, text: Any, blocks: list[Any] | None,
                args: Mapping[str, Any], thread_ts: str | None) -> web.Response:
        ts = self._next_ts()
        warnings = []
        if isinstance(text, str) and len(text) > MAX_TEXT:
            text, warnings = text[:MAX_TEXT], ["message_truncated"]
        broadcast = thread_ts is not None and _flag(args.get("reply_broadcast"))
        self.messages.append(PostedMessage(channel, text, blocks, ts, time.time(), dict(args),
                                           thread_ts=thread_ts, broadcast=broadcast))
        message: dict[str, Any] = {"type": "message", "text": text or "", "user": BOT["user_id"],
                                   "bot_id": BOT["bot_id"], "team": BOT["team_id"], "ts": ts}
        if thread_ts is not None:
            message |= {"thread_ts": thread_ts, "parent_user_id": BOT["user_id"]}
        if broadcast:
            message["subtype"] = "thread_broadcast"
        if blocks:
            message["blocks"] = blocks
        body: dict[str, Any] = {"ok": True, "channel": channel, "ts": ts, "message": message}
        if warnings:
            body["response_metadata"] = {"warnings": warnings}
        return web.json_response(body)


def _flag(value: Any) -> bool:
    """A boolean argument: JSON true, or "true"/"1" in a form or query string."""
    return value is True or (isinstance(value, str) and value.lower() in ("true", "1"))


async def _read_args(request: web.Request) -> dict[str, Any]:
    """Query string, then a JSON or form body: Slack accepts arguments in all three."""
    args: dict[str, Any] = dict(request.query)
    if request.content_type == "application/json":
        try:
            body = json.loads(await request.text() or "{}")
        except json.JSONDecodeError as exc:
            raise ValueError("not JSON") from exc
        if not isinstance(body, dict):
            raise ValueError("not a JSON object")
        args.update(body)
    elif request.can_read_body:
        args.update({k: v for k, v in (await request.post()).items() if isinstance(v, str)})
    return args


def _parse_blocks(blocks: Any) -> list[Any] | None:
    """Blocks arrive as a list in JSON bodies and as a JSON string in form bodies."""
    if blocks is None or blocks == "":
        return None
    if isinstance(blocks, str):
        blocks = json.loads(blocks)
    if not isinstance(blocks, list):
        raise ValueError("blocks is not an array")
    return blocks


def _block_problems(blocks: list[Any]) -> list[str]:
    if len(blocks) > MAX_BLOCKS:
        return [f"no more than {MAX_BLOCKS} items allowed [json-pointer:/blocks]"]
    problems = []
    for i, block in enumerate(blocks):
        if not isinstance(block, dict) or "type" not in block:
            problems.append(f"missing required field: type [json-pointer:/blocks/{i}]")
            continue
        text = block.get("text")
        if block["type"] == "section" and isinstance(text, dict) \
                and len(str(text.get("text", ""))) > MAX_SECTION_TEXT:
            problems.append(f"must be less than {MAX_SECTION_TEXT + 1} characters "
                            f"[json-pointer:/blocks/{i}/text/text]")
    return problems


def _error(error: str, *, status: int = 200, **extra: Any) -> web.Response:
    return web.json_response({"ok": False, "error": error, **extra}, status=status)


def _ratelimited(retry_after: float) -> web.Response:
    return web.json_response({"ok": False, "error": "ratelimited"}, status=429,
                             headers={"Retry-After": str(int(retry_after))})


def _fault_response(fault: _Fault) -> web.Response:
    if fault.kind == "html":
        return web.Response(status=fault.status, content_type=fault.content_type,
                            text=HTML_ERROR_PAGE.format(status=fault.status))
    if fault.kind == "ratelimit":
        return _ratelimited(fault.seconds)
    return _error(fault.error, status=fault.status)
