"""The Slack channel: one ``chat.postMessage`` per delivery, with a bot token.

Threads: a message with a root posts with ``thread_ts`` (and ``reply_broadcast``
when asked); the root is kept current with ``chat.update``. The handle is the
message ``ts``. A root that is gone answers ``thread_not_found`` or
``message_not_found``, or (what Slack usually does for a deleted parent without
replies) *accepts* the reply and posts it unthreaded at the channel's top level
(its answer then lacks ``thread_ts``); the sender removes such a stray post. Either
way it raises :class:`~notifybot.errors.ThreadGone`, so the outbox sends the message
once, as a new root.

Options (``[channels.NAME]`` with ``type = "slack"``):

``token``     the bot token (``xoxb-…``), required
``channel``   channel id (``C…``) or ``#name``, required
``base_url``  the Web API root, default ``https://slack.com/api/`` (a Slack-compatible API)
``timeout``   seconds for one whole API call, default 10
``pace``      seconds between two messages to this channel, default 1.0 (Slack's 1/s)

The sender makes exactly one attempt: slack-sdk's retry handlers are switched off, and a
429 becomes :class:`~notifybot.errors.RateLimited` for the outbox to honour.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import orjson
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from notifybot.errors import (
    ConfigError,
    DeliveryError,
    PermanentDeliveryError,
    RateLimited,
    TemporaryDeliveryError,
    ThreadGone,
)
from notifybot.secret import Secret

from .base import STANDALONE, Receipt, SendContext, require, seconds

log = logging.getLogger(__name__)
# slack-sdk formats a debug line of every request and response (the whole message)
# unless its logger's *own* level is above DEBUG: it tests ``logger.level``, not
# ``isEnabledFor``, and a logger left at NOTSET has level 0. Its own logger, with a
# level, costs nothing per call (about 40 µs a message otherwise).
_SDK_LOG = logging.getLogger(f"{__name__}.sdk")
_SDK_LOG.setLevel(logging.INFO)

DEFAULT_BASE_URL = "https://slack.com/api/"
DEFAULT_TIMEOUT = 10.0
DEFAULT_PACE = 1.0

# Slack answers these when trying again later may work. Every other error code is about
# the token, the channel or the message itself, so retrying cannot help.
TEMPORARY_ERRORS = frozenset({
    "internal_error", "service_unavailable", "request_timeout", "fatal_error", "rate_limited",
})
RATE_LIMIT_ERRORS = frozenset({"ratelimited"})
# What Slack answers when the message a reply or an edit targets no longer exists.
# ``cannot_reply_to_message``: the target cannot hold a thread (no longer a plain message).
ROOT_GONE_ERRORS = frozenset({"thread_not_found", "message_not_found", "cannot_reply_to_message"})
# An edit may also meet a parent that was deleted while it had replies: Slack keeps it
# as a "This message was deleted." placeholder that the bot no longer owns.
EDIT_GONE_ERRORS = ROOT_GONE_ERRORS | {"cant_update_message"}

SlackFailure = SlackClientError | aiohttp.ClientError | TimeoutError


class SlackSender:
    """Posts Block Kit payloads (``{"text", "blocks"}``) to one Slack channel."""

    kind = "slack"
    replies = True
    edits = True
    account: str | None = None  # Slack's limits are per channel: ``pace`` covers them
    account_pace = 0.0

    def __init__(self, name: str, *, token: Secret, channel: str, base_url: str = DEFAULT_BASE_URL,
                 timeout: float = DEFAULT_TIMEOUT, pace: float = DEFAULT_PACE) -> None:
        self.name = name
        self.channel = channel
        self.base_url = base_url
        self.timeout = timeout
        self.pace = pace
        self.destination = f"slack:{base_url}:{channel}"
        self._token = token
        self._session: aiohttp.ClientSession | None = None
        self._client: AsyncWebClient | None = None
        # chat.update wants the channel id, where chat.postMessage also takes "#name":
        # every post's answer tells it (a configured id needs no answer).
        self._channel_id: str | None = channel if _is_channel_id(channel) else None
        # Whether this API echoes ``thread_ts`` on a reply (Slack does). Until it has,
        # a reply without it is taken at its word: a Slack-like API that never echoes
        # must not have every reply mistaken for one posted outside its thread.
        self._echoes_threads = False

    def __repr__(self) -> str:
        return (f"SlackSender(name={self.name!r}, channel={self.channel!r}, "
                f"base_url={self.base_url!r}, token={self._token!r})")

    async def open(self) -> None:
        """Create the one HTTP session every call reuses (inside the running loop)."""
        # slack-sdk ignores its own ``timeout=`` when given a session: the limit must be
        # on the session, or a hung Slack holds the worker forever (stack.md §1.1).
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout),
                                              json_serialize=_json_text)
        # retry_handlers=[]: the default handler retries after a dropped connection, which
        # can double a message Slack did post; retrying is the outbox's job.
        # Proxy: slack-sdk reads HTTP(S)_PROXY itself and ignores NO_PROXY (stack.md §1.1).
        self._client = AsyncWebClient(token=self._token.reveal(), base_url=self.base_url,
                                      session=self._session, retry_handlers=[],
                                      logger=_SDK_LOG)

    async def close(self) -> None:
        """Close the HTTP session."""
        if self._session is not None:
            await self._session.close()
        self._session = None
        self._client = None

    async def send(self, payload: Mapping[str, Any],
                   context: SendContext = STANDALONE) -> Receipt:
        """One ``chat.postMessage``; the receipt's detail and handle are the message ``ts``.

        With ``context.root`` the message replies in that thread (``thread_ts``), and
        ``context.broadcast`` also shows it in the channel (``reply_broadcast``).
        """
        client = self._require_client()
        thread: dict[str, Any] = {}
        if context.is_reply:
            thread = {"thread_ts": context.root, "reply_broadcast": context.broadcast}
        try:
            response = await client.chat_postMessage(
                channel=self.channel, text=payload["text"], blocks=payload.get("blocks"),
                unfurl_links=False, unfurl_media=False, **thread)
        except (SlackClientError, aiohttp.ClientError, TimeoutError) as exc:
            gone = ROOT_GONE_ERRORS if context.is_reply else frozenset()
            raise classify(exc, timeout=self.timeout, gone=gone) from exc
        ts = str(response.get("ts", ""))
        self._channel_id = str(response.get("channel") or "") or self._channel_id
        if context.is_reply and self._unthreaded(response.get("message"), context.root):
            await self._remove_stray(ts)
            raise ThreadGone(f"slack: thread {context.root} is gone (the reply was not threaded)")
        return Receipt(ts, handle=ts or None)

    def _unthreaded(self, message: Any, root: str | None) -> bool:
        """Whether Slack posted a reply outside its thread (it does so when the parent is gone).

        A threaded reply's ``message`` echoes ``thread_ts``; once this API has shown
        that it does, a reply without it was posted at the top level.
        """
        if not isinstance(message, dict):
            return False
        if message.get("thread_ts") == root:
            self._echoes_threads = True
            return False
        return self._echoes_threads

    async def edit(self, handle: str, payload: Mapping[str, Any]) -> None:
        """``chat.update`` the message ``handle`` (a ``ts``) to show ``payload``.

        An unchanged text is fine for Slack; a message that is gone raises ThreadGone.
        """
        client = self._require_client()
        try:
            await client.chat_update(channel=self._channel_id or self.channel, ts=handle,
                                     text=payload["text"], blocks=payload.get("blocks"))
        except (SlackClientError, aiohttp.ClientError, TimeoutError) as exc:
            raise classify(exc, timeout=self.timeout, gone=EDIT_GONE_ERRORS) from exc

    async def _remove_stray(self, ts: str) -> None:
        """Delete a reply Slack posted at the top level: the outbox resends it as the new root."""
        try:
            await self._require_client().chat_delete(channel=self._channel_id or self.channel,
                                                     ts=ts)
        except (SlackClientError, aiohttp.ClientError, TimeoutError) as exc:
            # The message then shows twice; losing it would be worse.
            log.warning("slack channel %s: cannot remove the unthreaded reply %s: %s",
                        self.name, ts, classify(exc, timeout=self.timeout).reason)

    async def check(self) -> str:
        """Verify the token with ``auth.test`` (posts nothing); describes the bot."""
        client = self._require_client()
        try:
            response = await client.auth_test()
        except (SlackClientError, aiohttp.ClientError, TimeoutError) as exc:
            raise classify(exc, timeout=self.timeout) from exc
        return (f"slack bot {response.get('user', '?')} in {response.get('team', '?')}, "
                f"posting to {self.channel}")

    def _require_client(self) -> AsyncWebClient:
        if self._client is None:
            raise RuntimeError(f"slack channel {self.name!r}: open() was not called")
        return self._client


def classify(exc: SlackFailure, *, timeout: float = DEFAULT_TIMEOUT,
             gone: frozenset[str] = frozenset()) -> DeliveryError:
    """Turn what slack-sdk or aiohttp raised into the delivery error the outbox acts on.

    ``gone`` are the error codes that mean the targeted message no longer exists
    (:data:`ROOT_GONE_ERRORS` for a reply, :data:`EDIT_GONE_ERRORS` for an edit): they
    become :class:`~notifybot.errors.ThreadGone`. Order matters: a 429 is a rate limit
    whatever the body says; a known error code decides next; then the HTTP status (5xx
    temporary, other 4xx permanent); a body that is not Slack's JSON at all is temporary
    (a proxy or load balancer page).
    """
    if isinstance(exc, TimeoutError):  # before ClientError: ServerTimeoutError is both
        return TemporaryDeliveryError(f"slack: timeout after {timeout:g}s")
    if isinstance(exc, aiohttp.ClientError):
        return TemporaryDeliveryError(f"slack: network error ({type(exc).__name__})")
    if not isinstance(exc, SlackApiError):
        return PermanentDeliveryError(f"slack: request error ({type(exc).__name__})")
    status, error, headers = _response_parts(exc.response)
    if status == 429 or error in RATE_LIMIT_ERRORS:
        return RateLimited(f"slack: {error or 'HTTP 429'}", _retry_after(headers))
    if error in gone:
        return ThreadGone(f"slack: {error}")
    if error in TEMPORARY_ERRORS:
        return TemporaryDeliveryError(f"slack: {error}")
    if status >= 500:
        return TemporaryDeliveryError(f"slack: {error or f'HTTP {status}'}")
    if error:
        return PermanentDeliveryError(f"slack: {error}")
    if 400 <= status < 500:
        return PermanentDeliveryError(f"slack: HTTP {status}")
    return TemporaryDeliveryError(f"slack: unreadable response (HTTP {status})")


def _is_channel_id(channel: str) -> bool:
    return channel[:1] in ("C", "G", "D") and channel.isalnum() and channel.isupper()


def _response_parts(response: Any) -> tuple[int, str | None, Mapping[str, str]]:
    """Status, error code and headers of a failed call.

    Usually an ``AsyncSlackResponse``; when the body claimed to be JSON but was not,
    slack-sdk puts the raw ``aiohttp.ClientResponse`` there instead (``status``, no data).
    """
    status = getattr(response, "status_code", None) or getattr(response, "status", None)
    data = getattr(response, "data", None)
    error = data.get("error") if isinstance(data, dict) else None
    headers = getattr(response, "headers", None) or {}
    return (status if isinstance(status, int) else 0), (str(error) if error else None), headers


def _retry_after(headers: Mapping[str, str]) -> float:
    """Seconds from ``Retry-After`` (any case); 1 when missing or not a number."""
    value = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
    try:
        seconds = float(value) if value is not None else 1.0
    except ValueError:
        return 1.0
    return seconds if seconds >= 0 else 1.0


def build(name: str, options: Mapping[str, Any]) -> SlackSender:
    """A :class:`SlackSender` from the channel's TOML table; ConfigError names a bad key."""
    token = require(options, "token", channel=name, kind=Secret)
    if not token:
        raise ConfigError("must not be empty", key=f"channels.{name}.token")
    channel = require(options, "channel", channel=name).strip()
    if not channel or any(c.isspace() for c in channel):
        raise ConfigError("must be a channel id (C…) or #name", key=f"channels.{name}.channel")
    return SlackSender(name, token=token, channel=channel,
                       base_url=_base_url(name, options.get("base_url", DEFAULT_BASE_URL)),
                       timeout=seconds(options, "timeout", DEFAULT_TIMEOUT, channel=name,
                                       positive=True),
                       pace=seconds(options, "pace", DEFAULT_PACE, channel=name))


def _base_url(name: str, value: Any) -> str:
    parts = urlsplit(value) if isinstance(value, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError("must be an http(s) URL such as https://slack.com/api/",
                          key=f"channels.{name}.base_url")
    if parts.username or parts.password:
        # The URL goes into the pacing key and logs; credentials belong in ``token``.
        raise ConfigError("must not contain a user or password", key=f"channels.{name}.base_url")
    url: str = value
    return url if url.endswith("/") else url + "/"


def _json_text(value: Any) -> str:
    """A request body as JSON: orjson (a seventh of the stdlib's time for a Block Kit
    message), or the stdlib for what orjson refuses (a lone surrogate, a key that is
    not text), so that every message encodes as it did before."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return json.dumps(value)
