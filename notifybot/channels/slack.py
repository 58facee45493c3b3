"""The Slack channel: one ``chat.postMessage`` per delivery, with a bot token.

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

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from notifybot.errors import (
    ConfigError,
    DeliveryError,
    PermanentDeliveryError,
    RateLimited,
    TemporaryDeliveryError,
)
from notifybot.secret import Secret

from .base import STANDALONE, Receipt, SendContext, require, seconds

DEFAULT_BASE_URL = "https://slack.com/api/"
DEFAULT_TIMEOUT = 10.0
DEFAULT_PACE = 1.0

# Slack answers these when trying again later may work. Every other error code is about
# the token, the channel or the message itself, so retrying cannot help.
TEMPORARY_ERRORS = frozenset({
    "internal_error", "service_unavailable", "request_timeout", "fatal_error", "rate_limited",
})
RATE_LIMIT_ERRORS = frozenset({"ratelimited"})

SlackFailure = SlackClientError | aiohttp.ClientError | TimeoutError


class SlackSender:
    """Posts Block Kit payloads (``{"text", "blocks"}``) to one Slack channel."""

    kind = "slack"
    replies = False  # until threads land in this channel
    edits = False
    account: str | None = None
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

    def __repr__(self) -> str:
        return (f"SlackSender(name={self.name!r}, channel={self.channel!r}, "
                f"base_url={self.base_url!r}, token={self._token!r})")

    async def open(self) -> None:
        """Create the one HTTP session every call reuses (inside the running loop)."""
        # slack-sdk ignores its own ``timeout=`` when given a session: the limit must be
        # on the session, or a hung Slack holds the worker forever (stack.md §1.1).
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))
        # retry_handlers=[]: the default handler retries after a dropped connection, which
        # can double a message Slack did post; retrying is the outbox's job.
        # Proxy: slack-sdk reads HTTP(S)_PROXY itself and ignores NO_PROXY (stack.md §1.1).
        self._client = AsyncWebClient(token=self._token.reveal(), base_url=self.base_url,
                                      session=self._session, retry_handlers=[])

    async def close(self) -> None:
        """Close the HTTP session."""
        if self._session is not None:
            await self._session.close()
        self._session = None
        self._client = None

    async def send(self, payload: Mapping[str, Any], context: SendContext = STANDALONE) -> Receipt:
        """One ``chat.postMessage``; the receipt is the message ``ts``."""
        client = self._require_client()
        try:
            response = await client.chat_postMessage(
                channel=self.channel, text=payload["text"], blocks=payload.get("blocks"),
                unfurl_links=False, unfurl_media=False)
        except (SlackClientError, aiohttp.ClientError, TimeoutError) as exc:
            raise classify(exc, timeout=self.timeout) from exc
        return Receipt(str(response.get("ts", "")))

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


def classify(exc: SlackFailure, *, timeout: float = DEFAULT_TIMEOUT) -> DeliveryError:
    """Turn what slack-sdk or aiohttp raised into the delivery error the outbox acts on.

    Order matters: a 429 is a rate limit whatever the body says; a known error code
    decides next; then the HTTP status (5xx temporary, other 4xx permanent); a body that
    is not Slack's JSON at all is temporary (a proxy or load balancer page).
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
    if error in TEMPORARY_ERRORS:
        return TemporaryDeliveryError(f"slack: {error}")
    if status >= 500:
        return TemporaryDeliveryError(f"slack: {error or f'HTTP {status}'}")
    if error:
        return PermanentDeliveryError(f"slack: {error}")
    if 400 <= status < 500:
        return PermanentDeliveryError(f"slack: HTTP {status}")
    return TemporaryDeliveryError(f"slack: unreadable response (HTTP {status})")


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


