"""The Telegram stand-in itself: what it accepts and refuses, for clients other than PTB."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import Any

import aiohttp
import pytest

from tests.standins.telegram_api import GROUP_CHAT, PRIVATE_CHAT, TelegramStandIn
from tests.standins.telegram_html import EntityError, parse_html


async def post(tg: TelegramStandIn, method: str, token: str | None = None,
               **kwargs: Any) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as session, session.post(
            f"{tg.base_url}{token or tg.token}/{method}", **kwargs) as response:
        return response.status, await response.json()


async def test_json_body_and_full_message() -> None:
    async with TelegramStandIn() as tg:
        status, body = await post(tg, "sendMessage", json={
            "chat_id": PRIVATE_CHAT, "text": "<b>Hi</b> &amp; <i>bye</i>", "parse_mode": "HTML"})
    assert status == 200
    result = body["result"]
    assert (result["chat"]["id"], result["text"]) == (PRIVATE_CHAT, "Hi & bye")
    assert result["entities"] == [{"type": "bold", "offset": 0, "length": 2},
                                  {"type": "italic", "offset": 5, "length": 3}]
    assert tg.messages[0].plain_text == "Hi & bye"


@pytest.mark.parametrize(("kwargs", "status", "description"), [
    ({"token": "1:nope", "data": {"chat_id": "42", "text": "x"}}, 401, "Unauthorized"),
    ({"data": {"chat_id": "5", "text": "x"}}, 400, "Bad Request: chat not found"),
    ({"data": {"text": "x"}}, 400, "Bad Request: chat_id is empty"),
    ({"data": {"chat_id": "42", "text": ""}}, 400, "Bad Request: message text is empty"),
    ({"data": {"chat_id": "42", "text": "x", "parse_mode": "BBCode"}}, 400,
     "Bad Request: unsupported parse_mode"),
])
async def test_refusals(kwargs: dict[str, Any], status: int, description: str) -> None:
    async with TelegramStandIn() as tg:
        token = kwargs.pop("token", None)
        got_status, body = await post(tg, "sendMessage", token, **kwargs)
    assert (got_status, body) == (status, {"ok": False, "error_code": status,
                                           "description": description})
    assert tg.messages == []


async def test_group_pace_is_20_a_minute() -> None:
    async with TelegramStandIn(enforce_pace=True) as tg:
        # As if 20 messages went out in the last 50 s, the latest 2 s ago (no 20 s wait).
        now = time.monotonic()
        tg._sent_at[GROUP_CHAT] = deque([now - 50 + i for i in range(19)] + [now - 2])
        status, body = await post(tg, "sendMessage", json={"chat_id": GROUP_CHAT, "text": "x"})
    assert status == 429
    assert body == {"ok": False, "error_code": 429, "parameters": {"retry_after": 10},
                    "description": "Too Many Requests: retry after 10"}


async def test_wait_for_messages() -> None:
    async with TelegramStandIn() as tg:
        waiter = asyncio.create_task(tg.wait_for_messages(1, within=5))
        await post(tg, "sendMessage", json={"chat_id": PRIVATE_CHAT, "text": "x"})
        assert [m.text for m in await waiter] == ["x"]
        with pytest.raises(TimeoutError):
            await tg.wait_for_messages(2, within=0.05)


async def test_stop_cuts_a_delayed_answer_short() -> None:
    tg = TelegramStandIn()
    await tg.start()
    tg.delay_next(60, method="getMe")
    request = asyncio.create_task(post(tg, "getMe"))
    async with asyncio.timeout(5):
        await tg.wait_for_calls(1)  # the request is in the handler, waiting
        await tg.stop()
        status, body = await request
    assert (status, body["result"]["is_bot"]) == (200, True)


@pytest.mark.parametrize(("text", "error"), [
    ("a < b", 'Unsupported start tag "" at byte offset 2'),
    ("a & b", "Character '&' is reserved and must be escaped at byte offset 2"),
    ("<b>x", 'Can\'t find end tag corresponding to start tag "b"'),
    ("x</b>", 'Unexpected end tag "b" at byte offset 1'),
    ("<br>", 'Unsupported start tag "br" at byte offset 0'),
    ("£\n<p>", 'Unsupported start tag "p" at byte offset 3'),
    ("&nbsp;", 'Unsupported HTML entity "&nbsp;" at byte offset 0'),
    ("<span>x</span>", 'Unsupported start tag "span" at byte offset 0'),
    ("<a>x</a>", "Can't find href in tag a at byte offset 0"),
])
def test_parse_html_refuses(text: str, error: str) -> None:
    with pytest.raises(EntityError) as info:
        parse_html(text)
    assert str(info.value) == error


def test_parse_html_counts_utf16_offsets() -> None:
    plain, entities = parse_html('😀 <a href="https://x.test/?a=1&amp;b=2">j&#39;ob</a> &gt;')
    assert plain == "😀 j'ob >"
    assert entities == [{"type": "text_link", "url": "https://x.test/?a=1&b=2",
                         "offset": 3, "length": 4}]
