"""The Telegram channel: a real ``telegram.Bot`` against the loopback Bot API stand-in."""

from __future__ import annotations

import datetime as dtm
import logging
import traceback
import warnings
from collections.abc import AsyncIterator, Callable
from functools import partial
from typing import Any

import pytest
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Conflict,
    EndPointNotFound,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)

from notifybot.channels import telegram
from notifybot.errors import (
    ConfigError,
    DeliveryError,
    PermanentDeliveryError,
    RateLimited,
    TemporaryDeliveryError,
)
from notifybot.formatting import format_telegram
from notifybot.messages import Fact, Message
from notifybot.secret import Secret
from tests.standins.telegram_api import (
    CHANNEL_CHAT,
    CHANNEL_USERNAME,
    GROUP_CHAT,
    MAX_TEXT,
    PRIVATE_CHAT,
    TelegramStandIn,
)

HTML = {"text": "<b>Job 15471 booked</b>", "parse_mode": "HTML"}
TOKEN_SHAPED = "987654321:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"


@pytest.fixture
async def tg() -> AsyncIterator[TelegramStandIn]:
    async with TelegramStandIn() as standin:
        yield standin


@pytest.fixture
async def senders() -> AsyncIterator[list[telegram.TelegramSender]]:
    """Every sender a test builds, closed at the end so no HTTP client leaks."""
    built: list[telegram.TelegramSender] = []
    yield built
    for sender in built:
        await sender.close()


@pytest.fixture
def make(tg: TelegramStandIn, senders: list[telegram.TelegramSender]) -> Any:
    def build(**overrides: Any) -> telegram.TelegramSender:
        options = {"type": "telegram", "token": Secret(tg.token), "chat_id": PRIVATE_CHAT,
                   "base_url": tg.base_url, "timeout": 2} | overrides
        sender = telegram.build("warehouse", options)
        senders.append(sender)
        return sender
    return build


async def failure(sender: telegram.TelegramSender, payload: dict[str, Any] = HTML) -> Any:
    await sender.open()
    with pytest.raises(DeliveryError) as info:
        await sender.send(payload)
    return info.value


# -- delivery ------------------------------------------------------------------------------


async def test_send_delivers_the_formatted_message(tg: TelegramStandIn, make: Any) -> None:
    message = Message(summary="Job 15471 <Acme & Co> booked", facts=(Fact("Client", "Bob £5"),),
                      link="https://myhirehop.com/job.php?id=15471", link_label="Open job")
    sender = make()
    await sender.open()
    receipt = await sender.send(format_telegram(message))
    assert receipt.detail == receipt.handle == "1"
    [sent] = tg.messages
    assert (sent.chat_id, sent.parse_mode, sent.message_id) == (PRIVATE_CHAT, "HTML", 1)
    assert sent.plain_text == "Job 15471 <Acme & Co> booked\n\nClient: Bob £5\n\nOpen job"
    assert sent.params["link_preview_options"] == {"is_disabled": True}
    assert tg.calls == ["getMe", "sendMessage"]


@pytest.mark.parametrize(("chat_id", "numeric"), [
    (str(GROUP_CHAT), GROUP_CHAT), (GROUP_CHAT, GROUP_CHAT), (CHANNEL_USERNAME, CHANNEL_CHAT)])
async def test_send_to_groups_and_channels(tg: TelegramStandIn, make: Any, chat_id: Any,
                                           numeric: int) -> None:
    sender = make(chat_id=chat_id)
    await sender.open()
    await sender.send(HTML)
    assert tg.messages[0].chat_id == numeric


async def test_longest_formatted_message_is_accepted(tg: TelegramStandIn, make: Any) -> None:
    message = Message(summary="Job 1 & <co>", notes=("&<>" * 3000,), link="https://x.test/?a=1&b=2")
    sender = make()
    await sender.open()
    await sender.send(format_telegram(message))
    assert len(tg.messages[0].plain_text) == MAX_TEXT


# -- failures ------------------------------------------------------------------------------


async def test_bad_token_is_permanent(tg: TelegramStandIn, make: Any) -> None:
    error = await failure(make(token=Secret(TOKEN_SHAPED)))
    assert type(error) is PermanentDeliveryError
    assert error.reason == "telegram: invalid token (Unauthorized)"
    assert tg.messages == []


@pytest.mark.parametrize(("setup", "payload", "reason"), [
    ("unknown chat", HTML, "telegram: Bad Request: chat not found"),
    (None, {"text": "x" * (MAX_TEXT + 1)}, "telegram: Bad Request: message is too long"),
    (None, {"text": "<b>a</i>", "parse_mode": "HTML"},
     "telegram: Bad Request: can't parse entities: unmatched end tag at byte offset 4, "
     'expected "</b>", found "</i>"'),
    ("block", HTML, "telegram: Forbidden: bot was blocked by the user"),
    ("migrate", HTML, 'telegram: group migrated to a supergroup; set chat_id = "-1005550000"'),
])
async def test_permanent_failures(tg: TelegramStandIn, make: Any, setup: str | None,
                                  payload: dict[str, Any], reason: str) -> None:
    chat_id = 777 if setup == "unknown chat" else GROUP_CHAT
    if setup == "block":
        tg.block(GROUP_CHAT)
    if setup == "migrate":
        tg.migrate(GROUP_CHAT, -1005550000)
    error = await failure(make(chat_id=chat_id), payload)
    assert type(error) is PermanentDeliveryError
    assert error.reason == reason


async def test_429_is_rate_limited_with_retry_after(tg: TelegramStandIn, make: Any) -> None:
    tg.rate_limit_next(retry_after=7)
    error = await failure(make())
    assert type(error) is RateLimited
    assert error.retry_after == 7.0
    assert error.reason == "telegram: Too Many Requests: retry after 7"


async def test_pacing_standin_answers_429_to_a_second_message(tg: TelegramStandIn,
                                                               make: Any) -> None:
    tg.enforce_pace = True
    sender = make()
    await sender.open()
    await sender.send(HTML)
    with pytest.raises(RateLimited) as info:
        await sender.send(HTML)
    assert info.value.retry_after == 1.0


@pytest.mark.parametrize(("inject", "reason"), [
    ("html 500", "telegram: network error: Internal Server Error (500)"),
    ("json 502", "telegram: network error: Bad Gateway"),
])
async def test_server_errors_are_temporary_and_tried_once(tg: TelegramStandIn, make: Any,
                                                          inject: str, reason: str) -> None:
    if inject == "html 500":
        tg.fail_next(status=500)
    else:
        tg.error_next(status=502, description="Bad Gateway")
    error = await failure(make())
    assert type(error) is TemporaryDeliveryError
    assert error.reason == reason
    assert tg.calls == ["getMe", "sendMessage"]  # one attempt: no retry inside the SDK


async def test_slow_answer_beyond_timeout_is_temporary(tg: TelegramStandIn, make: Any) -> None:
    tg.delay_next(30)
    error = await failure(make(timeout=0.2))
    assert type(error) is TemporaryDeliveryError
    assert error.reason == "telegram: timeout after 0.2s"
    assert tg.calls == ["getMe", "sendMessage"]


async def test_open_survives_a_server_that_is_down(make: Any, tg: TelegramStandIn) -> None:
    sender = make()
    await tg.stop()
    await sender.open()  # must not raise: the server starts anyway
    with pytest.raises(TemporaryDeliveryError) as info:
        await sender.send(HTML)
    assert info.value.reason.startswith("telegram: network error: httpx.ConnectError")


async def test_failed_getme_at_open_is_retried_by_send(tg: TelegramStandIn, make: Any) -> None:
    tg.fail_next(method="getMe")
    sender = make()
    await sender.open()
    assert (await sender.send(HTML)).detail == "1"
    assert tg.calls == ["getMe", "getMe", "sendMessage"]


async def test_wrong_base_url_path_is_permanent(tg: TelegramStandIn, make: Any) -> None:
    error = await failure(make(base_url=tg.base_url.removesuffix("/bot") + "/api/bot"))
    assert error.reason == "telegram: invalid token or base_url (Not Found)"


async def test_check_uses_getme(tg: TelegramStandIn, make: Any) -> None:
    assert await make().check() == "@notifybot_standin_bot (id 123456789), chat 42"
    assert tg.calls == ["getMe"]
    with pytest.raises(PermanentDeliveryError, match="invalid token"):
        await make(token=Secret("1:wrong")).check()


# -- secrets -------------------------------------------------------------------------------


async def test_token_never_shows(tg: TelegramStandIn, make: Any,
                                 caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    good, bad = make(), make(token=Secret(TOKEN_SHAPED))
    await good.open()
    await good.send(HTML)
    error = await failure(bad)
    check_error = await _raised(bad.check())
    texts = [repr(good), good.destination, caplog.text, repr(error), repr(check_error),
             "".join(traceback.format_exception(error)),
             "".join(traceback.format_exception(check_error))]
    assert "HTTP Request: POST" in caplog.text  # httpx did log the URLs...
    for text in texts:  # ...with the token redacted
        assert tg.token not in text
        assert TOKEN_SHAPED not in text


async def _raised(coroutine: Any) -> DeliveryError:
    with pytest.raises(DeliveryError) as info:
        await coroutine
    return info.value


# -- configuration -------------------------------------------------------------------------

BASE = {"type": "telegram", "token": Secret("1:x"), "chat_id": "-1001234567890"}


@pytest.mark.parametrize(("key", "value"), [
    ("token", None), ("token", Secret("")), ("token", "plain-string"),
    ("chat_id", None), ("chat_id", ""), ("chat_id", "general"), ("chat_id", True),
    ("chat_id", 1.5), ("base_url", "api.telegram.org"), ("base_url", 5),
    ("timeout", 0), ("timeout", "10"), ("pace", -1), ("pace", False),
])
def test_build_names_the_bad_key(key: str, value: Any) -> None:
    options = {k: v for k, v in (BASE | {key: value}).items() if v is not None}
    with pytest.raises(ConfigError) as info:
        telegram.build("warehouse", options)
    assert info.value.key == f"channels.warehouse.{key}"


@pytest.mark.parametrize(("options", "pace", "destination"), [
    ({"chat_id": 42}, 1.0, "telegram:https://api.telegram.org/bot:42"),
    ({}, 3.0, "telegram:https://api.telegram.org/bot:-1001234567890"),
    ({"chat_id": "@alerts_chan"}, 3.0, "telegram:https://api.telegram.org/bot:@alerts_chan"),
    ({"pace": 0.5, "base_url": "http://127.0.0.1:9/bot"}, 0.5,
     "telegram:http://127.0.0.1:9/bot:-1001234567890"),
])
async def test_build_defaults(options: dict[str, Any], pace: float, destination: str) -> None:
    sender = telegram.build("warehouse", BASE | options)
    assert (sender.kind, sender.name, sender.pace, sender.timeout) == (
        "telegram", "warehouse", pace, 10.0)
    assert sender.destination == destination
    await sender.close()


# -- classify ------------------------------------------------------------------------------


@pytest.mark.parametrize(("exc", "kind", "reason"), [
    # RetryAfter is built in the test: it warns at construction unless PTB_TIMEDELTA is set.
    (partial(RetryAfter, 5), RateLimited, "telegram: Too Many Requests: retry after 5"),
    (partial(RetryAfter, dtm.timedelta(seconds=2.5)), RateLimited,
     "telegram: Too Many Requests: retry after 2.5"),
    (ChatMigrated(-1009), PermanentDeliveryError,
     'telegram: group migrated to a supergroup; set chat_id = "-1009"'),
    (InvalidToken(f"The token `{TOKEN_SHAPED}` was rejected by the server."),
     PermanentDeliveryError, "telegram: invalid token (Unauthorized)"),
    (InvalidToken("Unauthorized"), PermanentDeliveryError,
     "telegram: invalid token (Unauthorized)"),
    (InvalidToken("Not Found"), PermanentDeliveryError,
     "telegram: invalid token or base_url (Not Found)"),
    (Forbidden("Forbidden: bot was blocked by the user"), PermanentDeliveryError,
     "telegram: Forbidden: bot was blocked by the user"),
    (Forbidden("bot was kicked from the group chat"), PermanentDeliveryError,
     "telegram: Forbidden: bot was kicked from the group chat"),
    (BadRequest("Bad Request: chat not found"), PermanentDeliveryError,
     "telegram: Bad Request: chat not found"),
    (BadRequest("Bad Request: message is too long"), PermanentDeliveryError,
     "telegram: Bad Request: message is too long"),
    (BadRequest("Bad Request: can't parse entities: Unsupported start tag \"x\""),
     PermanentDeliveryError, "telegram: Bad Request: can't parse entities: unsupported start "
                             "tag \"x\""),
    (TimedOut(), TemporaryDeliveryError, "telegram: timeout after 10s"),
    (TimedOut("Pool timeout: All connections in the connection pool are occupied."),
     TemporaryDeliveryError, "telegram: timeout after 10s"),
    (NetworkError("httpx.ConnectError: All connection attempts failed"), TemporaryDeliveryError,
     "telegram: network error: httpx.ConnectError: All connection attempts failed"),
    (NetworkError("Internal Server Error (500). Parsing the server response b'<html>' failed"),
     TemporaryDeliveryError, "telegram: network error: Internal Server Error (500)"),
    (NetworkError(f"httpx.InvalidURL: https://api.telegram.org/bot{TOKEN_SHAPED}/x"),
     TemporaryDeliveryError, "telegram: network error: httpx.InvalidURL: <url>"),
    (NetworkError(f"Unknown error: token {TOKEN_SHAPED}"), TemporaryDeliveryError,
     "telegram: network error: Unknown error: token ***"),
    (Conflict("Conflict: terminated by other getUpdates request"), TemporaryDeliveryError,
     "telegram: Conflict: terminated by other getUpdates request"),
    (EndPointNotFound("Endpoint 'x' not found"), TemporaryDeliveryError,
     "telegram: EndPointNotFound: Endpoint 'x' not found"),
    (TelegramError("Invalid server response"), TemporaryDeliveryError,
     "telegram: TelegramError: Invalid server response"),
])
def test_classify(exc: TelegramError | Callable[[], TelegramError], kind: type[DeliveryError],
                  reason: str) -> None:
    error = telegram.classify(exc if isinstance(exc, TelegramError) else exc(), timeout=10)
    assert type(error) is kind
    assert error.reason == reason


def test_classify_scrubs_the_given_token() -> None:
    error = telegram.classify(NetworkError("bad: 1:short"), token="1:short")
    assert error.reason == "telegram: network error: bad: ***"


def test_retry_after_read_without_ptb_timedelta(monkeypatch: pytest.MonkeyPatch) -> None:
    # Without PTB_TIMEDELTA, PTB hands out an int and warns (an error under this suite).
    monkeypatch.delenv("PTB_TIMEDELTA")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        exc = RetryAfter(3)
    error = telegram.classify(exc)
    assert isinstance(error, RateLimited)
    assert error.retry_after == 3.0
