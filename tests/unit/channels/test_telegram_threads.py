"""Telegram threads: a reply chain to the root, the root kept current with
``editMessageText``, and a deleted root turned into ThreadGone, against the stand-in."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from telegram.error import BadRequest

from notifybot.channels import SendContext, Sender, telegram
from notifybot.errors import PermanentDeliveryError, ThreadGone
from notifybot.secret import Secret
from tests.standins.telegram_api import GROUP_CHAT, PRIVATE_CHAT, TelegramStandIn

ROOT = {"text": "<b>Job 15471</b> Booked", "parse_mode": "HTML"}
REPLY = {"text": "Status: Booked → <b>Dispatched</b>", "parse_mode": "HTML"}
NOW = {"text": "<b>Job 15471</b> Dispatched", "parse_mode": "HTML"}


def reply_to(root: str | None) -> SendContext:
    return SendContext(thread_key="acme:15471", root=root)


@pytest.fixture
async def tg() -> AsyncIterator[TelegramStandIn]:
    async with TelegramStandIn() as standin:
        yield standin


@pytest.fixture
async def sender(tg: TelegramStandIn) -> AsyncIterator[telegram.TelegramSender]:
    sender = telegram.build("warehouse", {"type": "telegram", "token": Secret(tg.token),
                                          "chat_id": GROUP_CHAT, "base_url": tg.base_url,
                                          "timeout": 2, "pace": 0})
    yield sender
    await sender.close()


async def root_of(sender: telegram.TelegramSender) -> str:
    receipt = await sender.send(ROOT, reply_to(None))
    assert receipt.handle is not None
    return receipt.handle


def test_declares_threads_edits_and_the_bot_as_account(tg: TelegramStandIn) -> None:
    sender: Sender = telegram.build("w", {"type": "telegram", "token": Secret(tg.token),
                                          "chat_id": PRIVATE_CHAT, "base_url": tg.base_url,
                                          "bot_rate": 20})
    assert (sender.replies, sender.edits) == (True, True)
    assert sender.account is not None and tg.token not in sender.account
    assert sender.account_pace == pytest.approx(0.05)


async def test_replies_chain_to_the_root(tg: TelegramStandIn,
                                         sender: telegram.TelegramSender) -> None:
    root = await root_of(sender)
    first = await sender.send(REPLY, reply_to(root))
    second = await sender.send(REPLY, reply_to(root))

    assert tg.messages[0].reply_to is None
    assert [str(m.message_id) for m in tg.replies(int(root))] == [first.handle, second.handle]
    sent = tg.messages[1].params["reply_parameters"]
    assert sent == {"message_id": int(root), "allow_sending_without_reply": False}


async def test_edit_rewrites_the_root(tg: TelegramStandIn,
                                      sender: telegram.TelegramSender) -> None:
    root = await root_of(sender)
    await sender.edit(root, NOW)

    now = tg.current(int(root))
    assert (now.plain_text, now.edited) == ("Job 15471 Dispatched", True)
    assert len(tg.messages) == 1, "an edit sends nothing new"


async def test_an_edit_to_the_same_content_is_success(tg: TelegramStandIn,
                                                      sender: telegram.TelegramSender) -> None:
    root = await root_of(sender)
    await sender.edit(root, NOW)
    await sender.edit(root, NOW)  # Telegram: "message is not modified"

    assert tg.calls.count("editMessageText") == 2
    assert len(tg.edits) == 1


async def test_reply_to_a_deleted_root_is_thread_gone(tg: TelegramStandIn,
                                                      sender: telegram.TelegramSender) -> None:
    root = await root_of(sender)
    tg.delete_message(int(root))

    with pytest.raises(ThreadGone) as caught:
        await sender.send(REPLY, reply_to(root))
    assert caught.value.reason == "telegram: Bad Request: message to be replied not found"
    assert len(tg.messages) == 1, "never sent standing alone"


async def test_edit_of_a_deleted_root_is_thread_gone(tg: TelegramStandIn,
                                                     sender: telegram.TelegramSender) -> None:
    root = await root_of(sender)
    tg.delete_message(int(root))

    with pytest.raises(ThreadGone) as caught:
        await sender.edit(root, NOW)
    assert caught.value.reason == "telegram: Bad Request: message to edit not found"


async def test_a_handle_that_is_not_a_message_id_is_thread_gone(
    sender: telegram.TelegramSender,
) -> None:
    with pytest.raises(ThreadGone):
        await sender.send(REPLY, reply_to("1712345678.000100"))


async def test_other_edit_refusals_keep_their_class(tg: TelegramStandIn,
                                                    sender: telegram.TelegramSender) -> None:
    root = await root_of(sender)
    with pytest.raises(PermanentDeliveryError):
        await sender.edit(root, {"text": "<b>broken", "parse_mode": "HTML"})


@pytest.mark.parametrize("words", ["Message to be replied not found",
                                   "Replied message not found", "Reply message not found"])
def test_a_missing_reply_target_is_gone_only_for_a_reply(words: str) -> None:
    assert type(telegram.classify(BadRequest(words), gone=telegram.REPLY_GONE)) is ThreadGone
    assert type(telegram.classify(BadRequest(words))) is PermanentDeliveryError


@pytest.mark.parametrize("words", ["Message to edit not found", "Message can't be edited"])
def test_a_missing_edit_target_is_gone_only_for_an_edit(words: str) -> None:
    assert type(telegram.classify(BadRequest(words), gone=telegram.EDIT_GONE)) is ThreadGone
    assert type(telegram.classify(BadRequest(words), gone=telegram.REPLY_GONE)) \
        is PermanentDeliveryError


# -- the stand-in's own fidelity -----------------------------------------------------------

async def call(tg: TelegramStandIn, method: str, **params: Any) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as session, session.post(
            f"{tg.base_url}{tg.token}/{method}", json=params) as response:
        return response.status, await response.json()


async def test_standin_reply_forms_and_allow_sending_without_reply(tg: TelegramStandIn) -> None:
    _, root = await call(tg, "sendMessage", chat_id=PRIVATE_CHAT, text="root")
    root_id = root["result"]["message_id"]
    status, old_style = await call(tg, "sendMessage", chat_id=PRIVATE_CHAT, text="a",
                                   reply_to_message_id=root_id)
    assert status == 200 and old_style["result"]["reply_to_message"]["message_id"] == root_id
    tg.delete_message(root_id)
    status, refused = await call(tg, "sendMessage", chat_id=PRIVATE_CHAT, text="b",
                                 reply_parameters={"message_id": root_id})
    assert (status, refused["description"]) == (
        400, "Bad Request: message to be replied not found")
    status, alone = await call(tg, "sendMessage", chat_id=PRIVATE_CHAT, text="c",
                               reply_parameters={"message_id": root_id,
                                                 "allow_sending_without_reply": True})
    assert status == 200 and "reply_to_message" not in alone["result"]


async def test_standin_edit_refusals(tg: TelegramStandIn) -> None:
    _, root = await call(tg, "sendMessage", chat_id=PRIVATE_CHAT, text="<b>x</b>",
                         parse_mode="HTML")
    root_id = root["result"]["message_id"]
    status, same = await call(tg, "editMessageText", chat_id=PRIVATE_CHAT, message_id=root_id,
                              text="<b>x</b>", parse_mode="HTML")
    assert status == 400 and same["description"].startswith(
        "Bad Request: message is not modified")
    status, restyled = await call(tg, "editMessageText", chat_id=PRIVATE_CHAT,
                                  message_id=root_id, text="x")
    assert status == 200 and "edit_date" in restyled["result"], "other markup is a change"
    status, elsewhere = await call(tg, "editMessageText", chat_id=GROUP_CHAT,
                                   message_id=root_id, text="y")
    assert (status, elsewhere["description"]) == (400, "Bad Request: message to edit not found")
