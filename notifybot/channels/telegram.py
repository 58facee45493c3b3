"""The Telegram channel: one ``sendMessage`` per delivery through python-telegram-bot.

A standalone :class:`telegram.Bot` (no ``Application``, no rate limiter, no retries)
talks to ``base_url``; the outbox paces and retries. :func:`classify` maps every
``telegram.error`` to a notifybot delivery error.

The bot token is part of every request URL, so three things keep it out of sight:
exception chains are cut (``raise ... from None``), reasons are scrubbed of URLs and
the token, and a log filter redacts it from httpx's ``HTTP Request: POST <url>`` lines
and PTB's ``Set Bot API URL`` debug line.

Threads: the handle is the ``message_id``; a reply names its root in
``reply_parameters`` (never "send anyway without the reply"), and the root is kept
current with ``editMessageText``, where "message is not modified" is success. A root
that is gone ("message to be replied not found", "message to edit not found") raises
:class:`~notifybot.errors.ThreadGone`.
"""

from __future__ import annotations

import datetime as dtm
import hashlib
import logging
import re
import warnings
from collections.abc import Mapping
from typing import Any

from telegram import Bot, LinkPreviewOptions, ReplyParameters
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)
from telegram.request import HTTPXRequest
from telegram.warnings import PTBDeprecationWarning

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

DEFAULT_BASE_URL = "https://api.telegram.org/bot"
DEFAULT_TIMEOUT = 10.0
PRIVATE_PACE = 1.0  # Telegram: about one message per second in one chat
GROUP_PACE = 3.0  # Telegram: at most 20 messages per minute in one group or channel
REASON_LIMIT = 200

_CHAT_ID = re.compile(r"-?\d+|@[A-Za-z]\w{3,}")
_URL = re.compile(r"\w+://\S+")
_TOKEN_SHAPE = re.compile(r"\d{3,}:[\w-]{20,}")
# Telegram's words (lower case; PTB drops "Bad Request: ") for a target that is gone.
# Older Bot API versions said "reply message not found" or "replied message not found".
REPLY_GONE = ("message to be replied not found", "replied message not found",
              "reply message not found")
# "can't be edited": the root can no longer be kept current, so a new root is started.
EDIT_GONE = ("message to edit not found", "message can't be edited")
NOT_MODIFIED = "message is not modified"
# PTB appends the whole response body to the message of an error without JSON.
_BODY_NOTE = ". Parsing the server response"


DEFAULT_BOT_RATE = 25.0  # messages a second through one bot, all chats together

class TelegramSender:
    """Sends one HTML message to one chat per :meth:`send`."""

    kind = "telegram"
    replies = True
    edits = True

    def __init__(self, name: str, *, token: Secret, chat_id: int | str, base_url: str,
                 timeout: float, pace: float, bot_rate: float = DEFAULT_BOT_RATE) -> None:
        self.name = name
        self.chat_id = chat_id
        self.destination = f"telegram:{base_url}:{chat_id}"
        self.pace = pace
        # Telegram also limits a bot as a whole (about 30 messages a second): every
        # channel using this token shares one account pace. A digest names the bot
        # without revealing its token.
        digest = hashlib.sha256(token.reveal().encode()).hexdigest()[:12]
        self.account: str | None = f"telegram:{base_url}:{digest}"
        self.account_pace = 1.0 / bot_rate
        self.timeout = timeout
        self._token = token
        _REDACT.tokens.add(token.reveal())  # before Bot(): its constructor logs the URL
        self._requests = (_request(timeout), _request(timeout))
        self._bot = Bot(token.reveal(), base_url=base_url, base_file_url=_file_url(base_url),
                        request=self._requests[0], get_updates_request=self._requests[1])
        self._ready = False

    def __repr__(self) -> str:
        return f"TelegramSender(name={self.name!r}, destination={self.destination!r})"

    async def open(self) -> None:
        """Start the HTTP client and call ``getMe``; a failure is logged, not raised.

        The server must start even while Telegram is unreachable or the token is
        wrong: the next :meth:`send` tries ``getMe`` again and reports the error
        against the delivery, where the outbox can retry or dead-letter it.
        """
        try:
            await self._initialize()
        except DeliveryError as exc:
            log.warning("telegram channel %s: getMe failed at startup: %s", self.name, exc.reason)

    async def close(self) -> None:
        """Close the HTTP clients (PTB's ``shutdown`` makes no API call)."""
        await self._bot.shutdown()
        # Bot.shutdown skips them unless initialize() ran, but check() may have used them.
        for request in self._requests:
            await request.shutdown()
        self._ready = False

    async def send(self, payload: Mapping[str, Any],
                   context: SendContext = STANDALONE) -> Receipt:
        """One ``sendMessage``; the receipt's detail and handle are the new ``message_id``.

        With ``context.root`` the message replies to that message; if it was deleted
        Telegram refuses (we never ask it to send without the reply): ThreadGone.
        """
        await self._initialize()
        reply = _reply_to(context.root) if context.is_reply else None
        try:
            message = await self._bot.send_message(
                chat_id=self.chat_id, text=payload["text"], parse_mode=payload.get("parse_mode"),
                link_preview_options=LinkPreviewOptions(is_disabled=True),
                reply_parameters=reply)
        except TelegramError as exc:
            # ``from None``: the chained PTB exception may quote the token or URL.
            raise self._classify(exc, gone=REPLY_GONE if reply else ()) from None
        return Receipt(str(message.message_id), handle=str(message.message_id))

    async def edit(self, handle: str, payload: Mapping[str, Any]) -> None:
        """``editMessageText`` of message ``handle``; unchanged content counts as done."""
        await self._initialize()
        try:
            await self._bot.edit_message_text(
                text=payload["text"], chat_id=self.chat_id, message_id=_message_id(handle),
                parse_mode=payload.get("parse_mode"),
                link_preview_options=LinkPreviewOptions(is_disabled=True))
        except BadRequest as exc:
            if NOT_MODIFIED in exc.message.lower():
                return  # the root already shows this: what an edit wanted
            raise self._classify(exc, gone=EDIT_GONE) from None
        except TelegramError as exc:
            raise self._classify(exc) from None

    async def check(self) -> str:
        """``getMe``: proves the token without sending anything; returns the bot's name."""
        try:
            user = await self._bot.get_me()
        except TelegramError as exc:
            raise self._classify(exc) from None
        return f"@{user.username} (id {user.id}), chat {self.chat_id}"

    async def _initialize(self) -> None:
        if self._ready:
            return
        try:
            await self._bot.initialize()
        except TelegramError as exc:
            raise self._classify(exc) from None
        self._ready = True

    def _classify(self, exc: TelegramError, gone: tuple[str, ...] = ()) -> DeliveryError:
        return classify(exc, timeout=self.timeout, token=self._token.reveal(), gone=gone)


def _reply_to(root: str | None) -> ReplyParameters:
    # allow_sending_without_reply=False: a root that is gone must be an error, so that
    # the outbox starts a new root rather than the reply standing alone.
    return ReplyParameters(message_id=_message_id(root), allow_sending_without_reply=False)


def _message_id(handle: str | None) -> int:
    """A handle as Telegram's ``message_id``; one that is not a number names no message."""
    try:
        return int(str(handle))
    except ValueError:
        raise ThreadGone(f"telegram: {handle!r} is not a message id") from None


def classify(exc: TelegramError, *, timeout: float | None = None,
             token: str = "", gone: tuple[str, ...] = ()) -> DeliveryError:
    """The delivery error for one python-telegram-bot exception.

    A ``BadRequest`` whose text contains one of ``gone`` (:data:`REPLY_GONE` for a
    reply, :data:`EDIT_GONE` for an edit) means the target message no longer exists:
    :class:`~notifybot.errors.ThreadGone`. Order matters: ``BadRequest`` and
    ``TimedOut`` are subclasses of ``NetworkError``.
    """
    text = _scrub(exc.message, token)
    if isinstance(exc, RetryAfter):
        seconds = retry_after_seconds(exc)
        return RateLimited(f"telegram: Too Many Requests: retry after {seconds:g}", seconds)
    if isinstance(exc, ChatMigrated):
        return PermanentDeliveryError(
            f"telegram: group migrated to a supergroup; set chat_id = \"{exc.new_chat_id}\"")
    if isinstance(exc, InvalidToken):
        return PermanentDeliveryError(_invalid_token_reason(exc))
    if isinstance(exc, Forbidden):
        return PermanentDeliveryError(f"telegram: {_prefixed('Forbidden', text)}")
    if isinstance(exc, BadRequest) and any(words in text.lower() for words in gone):
        return ThreadGone(f"telegram: Bad Request: {text[:1].lower()}{text[1:]}")
    if isinstance(exc, BadRequest):
        # PTB strips "Bad Request: " and capitalises; put Telegram's wording back.
        return PermanentDeliveryError(f"telegram: Bad Request: {text[:1].lower()}{text[1:]}")
    if isinstance(exc, TimedOut):
        after = f" after {timeout:g}s" if timeout is not None else ""
        return TemporaryDeliveryError(f"telegram: timeout{after}")
    if isinstance(exc, NetworkError):
        return TemporaryDeliveryError(f"telegram: network error: {text}")
    return TemporaryDeliveryError(f"telegram: {_prefixed(type(exc).__name__, text)}")


def _invalid_token_reason(exc: InvalidToken) -> str:
    # Never echo the message: ``Bot.initialize`` re-raises with the token in it, keeping
    # the API's answer in ``__cause__``. 401 is a bad token; 404 a malformed token or a
    # base_url that is not a Bot API.
    answer = exc.__cause__ if isinstance(exc.__cause__, InvalidToken) else exc
    if "not found" in answer.message.lower():
        return "telegram: invalid token or base_url (Not Found)"
    return "telegram: invalid token (Unauthorized)"


def retry_after_seconds(exc: RetryAfter) -> float:
    """``exc.retry_after`` in seconds, whatever ``PTB_TIMEDELTA`` says.

    PTB returns a ``timedelta`` when ``PTB_TIMEDELTA=1`` and otherwise an ``int``
    plus a deprecation warning; both are accepted and the warning is silenced.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        value = exc.retry_after
    if isinstance(value, dtm.timedelta):
        return value.total_seconds()
    return float(value)


def build(name: str, options: Mapping[str, Any]) -> TelegramSender:
    """A sender from the channel's TOML table; a bad option raises ConfigError naming it."""
    token = require(options, "token", channel=name, kind=Secret)
    if not token:
        raise ConfigError("a telegram channel needs 'token'", key=f"channels.{name}.token")
    chat_id = _chat_id(name, options.get("chat_id"))
    base_url = options.get("base_url", DEFAULT_BASE_URL)
    if not isinstance(base_url, str) or not re.match(r"https?://[^/\s]+", base_url):
        raise ConfigError("must be an http(s) URL such as \"https://api.telegram.org/bot\"",
                          key=f"channels.{name}.base_url")
    default_pace = GROUP_PACE if str(chat_id)[:1] in "-@" else PRIVATE_PACE
    return TelegramSender(
        name, token=token, chat_id=chat_id, base_url=base_url,
        timeout=seconds(options, "timeout", DEFAULT_TIMEOUT, channel=name, positive=True),
        pace=seconds(options, "pace", default_pace, channel=name),
        bot_rate=_bot_rate(name, options))


def _bot_rate(name: str, options: Mapping[str, Any]) -> float:
    value = options.get("bot_rate", DEFAULT_BOT_RATE)
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ConfigError("must be a positive number of messages a second",
                          key=f"channels.{name}.bot_rate")
    return float(value)


def _chat_id(name: str, value: Any) -> int | str:
    key = f"channels.{name}.chat_id"
    if value is None or value == "":
        raise ConfigError("a telegram channel needs 'chat_id'", key=key)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and _CHAT_ID.fullmatch(value.strip()):
        return value.strip()
    raise ConfigError("must be a numeric chat id (\"-1001234567890\") or \"@channelname\"",
                      key=key)


def _request(timeout: float) -> HTTPXRequest:
    return HTTPXRequest(connect_timeout=timeout, read_timeout=timeout, write_timeout=timeout,
                        pool_timeout=timeout)


def _file_url(base_url: str) -> str:
    # Files are never downloaded, but keep the file root beside the API root.
    return base_url[: -len("/bot")] + "/file/bot" if base_url.endswith("/bot") else base_url


def _scrub(text: str, token: str) -> str:
    text = text.split(_BODY_NOTE, 1)[0]
    if token:
        text = text.replace(token, "***")
    text = _TOKEN_SHAPE.sub("***", _URL.sub("<url>", text))
    return text if len(text) <= REASON_LIMIT else text[: REASON_LIMIT - 1] + "…"


def _prefixed(prefix: str, text: str) -> str:
    return text if text.lower().startswith(prefix.lower()) else f"{prefix}: {text}"


class _Redact(logging.Filter):
    """Replaces bot tokens in the log lines of loggers that print request URLs."""

    def __init__(self) -> None:
        super().__init__()
        self.tokens: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        hidden = message
        for token in self.tokens:
            hidden = hidden.replace(token, "***")
        if hidden != message:
            record.msg, record.args = hidden, None
        return True


# A logger's filters see only records logged on that very logger, so name each one.
_REDACT = _Redact()
for _logger in ("httpx", "telegram.Bot"):
    logging.getLogger(_logger).addFilter(_REDACT)
