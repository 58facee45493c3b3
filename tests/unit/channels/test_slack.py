"""The Slack channel: a real AsyncWebClient against the loopback Slack stand-in."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from slack_sdk.errors import SlackApiError, SlackRequestError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from notifybot.channels.slack import SlackSender, build, classify
from notifybot.errors import (
    ConfigError,
    DeliveryError,
    PermanentDeliveryError,
    RateLimited,
    TemporaryDeliveryError,
)
from notifybot.formatting import format_slack
from notifybot.messages import ChangeRow, Fact, Message
from notifybot.secret import Secret
from tests.standins.slack_api import SlackStandIn

TOKEN = "xoxb-1111-2222-VERYSECRET"
CHANNELS = {"C0ALERTS": "alerts", "C0QUIET": "quiet", "C0OLD": "old"}
PAYLOAD = format_slack(Message(
    summary="Job 15471 status: Booked → Prepared, by Tom & <Jerry>",
    facts=(Fact("Client", "Acme Events"),),
    changes=(ChangeRow("Status", "Booked", "Prepared"),),
    link="https://myhirehop.com/job.php?id=15471", link_label="Job 15471",
))


@pytest.fixture
async def slack() -> AsyncIterator[SlackStandIn]:
    async with SlackStandIn(token=TOKEN, channels=CHANNELS, not_member=frozenset({"C0QUIET"}),
                            archived=frozenset({"C0OLD"})) as standin:
        yield standin


def make(slack: SlackStandIn, **options: Any) -> SlackSender:
    table = {"type": "slack", "token": Secret(TOKEN), "channel": "#alerts",
             "base_url": slack.base_url, "timeout": 2, **options}
    return build("alerts", table)


@pytest.fixture
async def sender(slack: SlackStandIn) -> AsyncIterator[SlackSender]:
    sender = make(slack)
    await sender.open()
    yield sender
    await sender.close()


def assert_secret_free(exc: BaseException, sender: SlackSender) -> None:
    """Neither the error, its cause, nor the sender's repr may show the token."""
    texts = [str(exc), repr(exc), str(exc.__cause__), repr(sender)]
    assert not [text for text in texts if TOKEN in text]


async def test_send_posts_text_and_blocks(slack: SlackStandIn, sender: SlackSender) -> None:
    first = await sender.send(PAYLOAD)
    second = await sender.send(PAYLOAD)

    assert [m.channel for m in slack.messages] == ["C0ALERTS", "C0ALERTS"]
    posted = slack.messages[0]
    assert posted.text == PAYLOAD["text"]
    assert posted.blocks == PAYLOAD["blocks"]
    assert posted.body["unfurl_links"] is False and posted.body["unfurl_media"] is False
    assert first.detail == first.handle == posted.ts
    assert "thread_ts" not in posted.body, "a message without a root is not a reply"
    assert float(second.detail) > float(first.detail)


async def test_any_text_arrives_as_it_was_sent(slack: SlackStandIn, sender: SlackSender) -> None:
    # Bodies are encoded by orjson; what it refuses (a lone surrogate, which no payload
    # carries after ingest but a template's own text could) goes through the stdlib.
    texts = ["Booked → Prepared, by Zoë 🚚", "name \ud800 cut", "quote \" and \\ and \u2028"]
    for text in texts:
        await sender.send({"text": text, "blocks": [{"type": "section",
                                                     "text": {"type": "mrkdwn", "text": text}}]})

    assert [m.text for m in slack.messages] == texts
    assert [m.blocks[0]["text"]["text"] for m in slack.messages if m.blocks] == texts


async def test_slack_sdk_formats_no_debug_lines_even_at_debug_level(
        slack: SlackStandIn, sender: SlackSender, caplog: pytest.LogCaptureFixture) -> None:
    # slack-sdk tests its logger's own level: left at NOTSET, it would build a debug
    # line of every request and response (the whole message) on every send.
    caplog.set_level(logging.DEBUG)
    await sender.send(PAYLOAD)
    assert slack.messages
    sdk = [r.getMessage() for r in caplog.records if r.name.startswith(("slack_sdk", "notifybot"))]
    assert not [line for line in sdk if "Sending a request" in line or "Received the following" in line]


@pytest.mark.parametrize(("channel", "reason"), [
    ("#nowhere", "slack: channel_not_found"),
    ("C0QUIET", "slack: not_in_channel"),
    ("#old", "slack: is_archived"),
])
async def test_unusable_channel_is_permanent(slack: SlackStandIn, channel: str,
                                             reason: str) -> None:
    sender = make(slack, channel=channel)
    await sender.open()
    try:
        with pytest.raises(PermanentDeliveryError) as caught:
            await sender.send(PAYLOAD)
    finally:
        await sender.close()
    assert caught.value.reason == reason
    assert slack.messages == []


async def test_bad_token_is_permanent_and_secret_free(slack: SlackStandIn) -> None:
    slack.token = "xoxb-the-right-one"
    sender = make(slack)
    await sender.open()
    try:
        with pytest.raises(PermanentDeliveryError) as caught:
            await sender.send(PAYLOAD)
    finally:
        await sender.close()
    assert caught.value.reason == "slack: invalid_auth"
    assert_secret_free(caught.value, sender)


async def test_429_is_rate_limited_with_retry_after(slack: SlackStandIn,
                                                    sender: SlackSender) -> None:
    slack.rate_limit_next(retry_after=7)
    with pytest.raises(RateLimited) as caught:
        await sender.send(PAYLOAD)
    assert caught.value.retry_after == 7
    assert caught.value.reason == "slack: ratelimited"
    assert slack.calls == ["chat.postMessage"]  # the SDK's rate-limit handler did not retry


async def test_second_post_within_a_second_is_rate_limited(slack: SlackStandIn,
                                                           sender: SlackSender) -> None:
    slack.enforce_rate_limit = True
    await sender.send(PAYLOAD)
    with pytest.raises(RateLimited) as caught:
        await sender.send(PAYLOAD)
    assert caught.value.retry_after == 1
    assert len(slack.messages) == 1


@pytest.mark.parametrize(("status", "content_type", "reason"), [
    (500, "text/html", "slack: HTTP 500"),
    (503, "text/html", "slack: HTTP 503"),
    (502, "application/json", "slack: HTTP 502"),  # "JSON" that is an HTML page
    (200, "text/html", "slack: unreadable response (HTTP 200)"),
])
async def test_broken_upstream_is_temporary_after_one_attempt(
        slack: SlackStandIn, sender: SlackSender, status: int, content_type: str,
        reason: str) -> None:
    slack.fail_next(status=status, content_type=content_type)
    with pytest.raises(TemporaryDeliveryError) as caught:
        await sender.send(PAYLOAD)
    assert not isinstance(caught.value, RateLimited)
    assert caught.value.reason == reason
    assert slack.calls == ["chat.postMessage"]  # no retry by the SDK's server-error handler
    assert_secret_free(caught.value, sender)


async def test_dropped_connection_is_temporary_and_not_retried(
        slack: SlackStandIn, sender: SlackSender) -> None:
    # Slack may have posted before the connection dropped: a retry inside the SDK could
    # double the message, so the one attempt must end here and leave retrying to the outbox.
    slack.drop_next()
    with pytest.raises(TemporaryDeliveryError,
                       match=r"^slack: network error \(ServerDisconnectedError\)$"):
        await sender.send(PAYLOAD)
    assert slack.calls == ["chat.postMessage"]


async def test_slack_internal_error_is_temporary(slack: SlackStandIn,
                                                 sender: SlackSender) -> None:
    slack.error_next("internal_error")
    with pytest.raises(TemporaryDeliveryError, match=r"^slack: internal_error$"):
        await sender.send(PAYLOAD)


async def test_slow_answer_times_out_as_temporary(slack: SlackStandIn) -> None:
    sender = make(slack, timeout=0.5)
    await sender.open()
    slack.delay_next(30)
    started = time.monotonic()
    try:
        with pytest.raises(TemporaryDeliveryError) as caught:
            await sender.send(PAYLOAD)
    finally:
        await sender.close()
    assert caught.value.reason == "slack: timeout after 0.5s"
    assert time.monotonic() - started < 2.0


async def test_refused_connection_is_temporary() -> None:
    standin = SlackStandIn(token=TOKEN)
    base_url = await standin.start()
    await standin.stop()  # nothing listens on that port any more
    sender = build("alerts", {"type": "slack", "token": Secret(TOKEN), "channel": "C1",
                              "base_url": base_url})
    await sender.open()
    try:
        with pytest.raises(TemporaryDeliveryError, match=r"^slack: network error"):
            await sender.send(PAYLOAD)
    finally:
        await sender.close()


async def test_too_many_blocks_is_permanent(slack: SlackStandIn, sender: SlackSender) -> None:
    blocks = [{"type": "divider"}] * 51
    with pytest.raises(PermanentDeliveryError, match=r"^slack: invalid_blocks$"):
        await sender.send({"text": "many", "blocks": blocks})


async def test_check_uses_auth_test(slack: SlackStandIn, sender: SlackSender) -> None:
    description = await sender.check()
    assert description == "slack bot notifybot in Stand-in Workspace, posting to #alerts"
    assert slack.calls == ["auth.test"]
    assert slack.messages == []


async def test_check_with_bad_token_is_permanent(slack: SlackStandIn) -> None:
    slack.token = "xoxb-the-right-one"
    sender = make(slack)
    await sender.open()
    try:
        with pytest.raises(PermanentDeliveryError, match=r"^slack: invalid_auth$") as caught:
            await sender.check()
    finally:
        await sender.close()
    assert_secret_free(caught.value, sender)


async def test_send_before_open_is_a_programming_error(slack: SlackStandIn) -> None:
    with pytest.raises(RuntimeError, match="open"):
        await make(slack).send(PAYLOAD)


def test_build_defaults() -> None:
    sender = build("ops", {"type": "slack", "token": Secret(TOKEN), "channel": "C0123"})
    assert (sender.kind, sender.name, sender.channel) == ("slack", "ops", "C0123")
    assert (sender.base_url, sender.timeout, sender.pace) == ("https://slack.com/api/", 10.0, 1.0)
    assert sender.destination == "slack:https://slack.com/api/:C0123"
    assert TOKEN not in repr(sender)


def test_build_overrides() -> None:
    sender = build("ops", {"type": "slack", "token": Secret(TOKEN), "channel": "#ops",
                           "base_url": "http://127.0.0.1:9/api", "timeout": 3, "pace": 0})
    assert sender.base_url == "http://127.0.0.1:9/api/"
    assert (sender.timeout, sender.pace) == (3.0, 0.0)


@pytest.mark.parametrize(("key", "value"), [
    ("token", None),
    ("token", TOKEN),  # a plain string: the loader must wrap credentials in Secret
    ("token", Secret("")),
    ("channel", None),
    ("channel", "  "),
    ("channel", "#two words"),
    ("channel", 42),
    ("base_url", "slack.com/api"),
    ("base_url", "ftp://slack.com/api/"),
    ("base_url", "https://user:pw@slack.com/api/"),
    ("base_url", 7),
    ("timeout", 0),
    ("timeout", "10"),
    ("timeout", True),
    ("pace", -1),
    ("pace", "fast"),
])
def test_build_rejects_bad_option_naming_the_key(key: str, value: Any) -> None:
    options: dict[str, Any] = {"type": "slack", "token": Secret(TOKEN), "channel": "C0123"}
    if value is None:
        del options[key]
    else:
        options[key] = value
    with pytest.raises(ConfigError) as caught:
        build("ops", options)
    assert caught.value.key == f"channels.ops.{key}"
    assert TOKEN not in str(caught.value)


def api_error(status: int, data: dict[str, Any] | None = None,
              headers: dict[str, str] | None = None) -> SlackApiError:
    """A SlackApiError as slack-sdk builds it from a failed response."""
    response = AsyncSlackResponse(client=None, http_verb="POST",
                                  api_url="http://127.0.0.1/api/chat.postMessage", req_args={},
                                  data=data or {}, headers=headers or {}, status_code=status)
    return SlackApiError("The request to the Slack API failed.", response)  # type: ignore[no-untyped-call]


def fail(error: str, status: int = 200) -> SlackApiError:
    return api_error(status, {"ok": False, "error": error})


PERMANENT_CODES = ["invalid_auth", "not_authed", "account_inactive", "token_revoked",
                   "token_expired", "no_permission", "missing_scope", "not_allowed_token_type",
                   "channel_not_found", "not_in_channel", "is_archived", "msg_too_long",
                   "invalid_blocks", "invalid_blocks_format", "no_text", "invalid_arguments",
                   "restricted_action", "some_future_error"]
TEMPORARY_CODES = ["internal_error", "service_unavailable", "request_timeout", "fatal_error",
                   "rate_limited"]


@pytest.mark.parametrize(("exc", "kind", "reason", "retry_after"), [
    *[(fail(code), PermanentDeliveryError, f"slack: {code}", None) for code in PERMANENT_CODES],
    *[(fail(code), TemporaryDeliveryError, f"slack: {code}", None) for code in TEMPORARY_CODES],
    (api_error(429, {"ok": False, "error": "ratelimited"}, {"Retry-After": "30"}),
     RateLimited, "slack: ratelimited", 30.0),
    (api_error(429, {"ok": False, "error": "ratelimited"}, {"retry-after": "2"}),
     RateLimited, "slack: ratelimited", 2.0),
    (api_error(429), RateLimited, "slack: HTTP 429", 1.0),  # no header: wait a second
    (api_error(429, headers={"Retry-After": "soon"}), RateLimited, "slack: HTTP 429", 1.0),
    (fail("ratelimited"), RateLimited, "slack: ratelimited", 1.0),
    (fail("channel_not_found", 404), PermanentDeliveryError, "slack: channel_not_found", None),
    (fail("service_unavailable", 503), TemporaryDeliveryError, "slack: service_unavailable",
     None),
    (api_error(500), TemporaryDeliveryError, "slack: HTTP 500", None),
    (api_error(504), TemporaryDeliveryError, "slack: HTTP 504", None),
    (fail("invalid_auth", 500), TemporaryDeliveryError, "slack: invalid_auth", None),
    (api_error(400), PermanentDeliveryError, "slack: HTTP 400", None),
    (api_error(403), PermanentDeliveryError, "slack: HTTP 403", None),
    (api_error(404), PermanentDeliveryError, "slack: HTTP 404", None),
    (api_error(200), TemporaryDeliveryError, "slack: unreadable response (HTTP 200)", None),
    (TimeoutError(), TemporaryDeliveryError, "slack: timeout after 10s", None),
    (aiohttp.ServerTimeoutError(), TemporaryDeliveryError, "slack: timeout after 10s", None),
    (aiohttp.ServerDisconnectedError(), TemporaryDeliveryError,
     "slack: network error (ServerDisconnectedError)", None),
    (aiohttp.ClientPayloadError(), TemporaryDeliveryError,
     "slack: network error (ClientPayloadError)", None),
    (SlackRequestError("bad arguments"), PermanentDeliveryError,
     "slack: request error (SlackRequestError)", None),
])
def test_classify(exc: Any, kind: type[DeliveryError], reason: str,
                  retry_after: float | None) -> None:
    error = classify(exc, timeout=10)
    assert type(error) is kind
    assert error.reason == reason
    if retry_after is not None:
        assert isinstance(error, RateLimited) and error.retry_after == retry_after


# -- the stand-in's own fidelity, for the integration tests that rely on it --------------

async def test_standin_reads_form_bodies_and_token_field(slack: SlackStandIn) -> None:
    client = AsyncWebClient(token=None, base_url=slack.base_url, retry_handlers=[])
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "hi"}}]
    response = await client.api_call("chat.postMessage", data={
        "token": TOKEN, "channel": "C0ALERTS", "text": "hi", "blocks": json.dumps(blocks)})
    assert response["channel"] == "C0ALERTS"
    assert slack.messages[0].blocks == blocks


@pytest.mark.parametrize(("token", "arguments", "error"), [
    (None, {"channel": "#alerts", "text": "hi"}, "not_authed"),
    (TOKEN, {"channel": "#alerts"}, "no_text"),
    (TOKEN, {"channel": "#alerts", "text": "x", "blocks": [
        {"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}}]}, "invalid_blocks"),
])
async def test_standin_refuses_like_slack(slack: SlackStandIn, token: str | None,
                                          arguments: dict[str, Any], error: str) -> None:
    client = AsyncWebClient(token=token, base_url=slack.base_url, retry_handlers=[])
    with pytest.raises(SlackApiError) as caught:
        await client.api_call("chat.postMessage", json=arguments)
    assert (caught.value.response.status_code, caught.value.response["error"]) == (200, error)
    assert slack.messages == []


async def test_standin_truncates_very_long_text(slack: SlackStandIn) -> None:
    client = AsyncWebClient(token=TOKEN, base_url=slack.base_url, retry_handlers=[])
    response = await client.chat_postMessage(channel="#alerts", text="x" * 40_001)
    assert response["response_metadata"] == {"warnings": ["message_truncated"]}
    assert len(slack.messages[0].text or "") == 40_000
