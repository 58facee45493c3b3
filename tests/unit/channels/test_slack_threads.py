"""Slack threads: replies with ``thread_ts``, the root kept current with ``chat.update``,
and a deleted root turned into ThreadGone, against the loopback Slack stand-in."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from notifybot.channels import SendContext, Sender
from notifybot.channels.slack import EDIT_GONE_ERRORS, ROOT_GONE_ERRORS, SlackSender, classify
from notifybot.errors import PermanentDeliveryError, ThreadGone
from tests.standins.slack_api import SlackStandIn
from tests.unit.channels.test_slack import CHANNELS, PAYLOAD, TOKEN, fail, make

REPLY = {"text": "Status: Prepared → Dispatched",
         "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "Dispatched"}}]}
NOW = {"text": "Job 15471: Dispatched",
       "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "*Dispatched*"}}]}


def reply_to(root: str | None, *, broadcast: bool = False) -> SendContext:
    return SendContext(thread_key="acme:15471", root=root, broadcast=broadcast)


@pytest.fixture
async def slack() -> AsyncIterator[SlackStandIn]:
    async with SlackStandIn(token=TOKEN, channels=CHANNELS) as standin:
        yield standin


@pytest.fixture
async def sender(slack: SlackStandIn) -> AsyncIterator[SlackSender]:
    sender = make(slack)
    await sender.open()
    yield sender
    await sender.close()


def test_declares_threads_and_edits_and_no_shared_account(slack: SlackStandIn) -> None:
    sender: Sender = make(slack)
    assert (sender.replies, sender.edits) == (True, True)
    assert (sender.account, sender.account_pace) == (None, 0.0)


async def test_first_message_of_a_thread_is_a_plain_post_that_becomes_the_root(
    slack: SlackStandIn, sender: SlackSender,
) -> None:
    root = await sender.send(PAYLOAD, reply_to(None))
    [posted] = slack.messages
    assert root.handle == posted.ts and posted.thread_ts is None
    assert "thread_ts" not in posted.body


async def test_a_reply_goes_into_the_roots_thread(slack: SlackStandIn,
                                                  sender: SlackSender) -> None:
    root = await sender.send(PAYLOAD, reply_to(None))
    assert root.handle is not None
    first = await sender.send(REPLY, reply_to(root.handle))
    second = await sender.send(REPLY, reply_to(root.handle))

    assert [m.ts for m in slack.replies(root.handle)] == [first.handle, second.handle]
    assert first.handle != second.handle != root.handle
    assert [m.ts for m in slack.top_level()] == [root.handle], "replies stay in the thread"
    assert slack.messages[1].body["reply_broadcast"] is False


async def test_a_broadcast_reply_also_shows_in_the_channel(slack: SlackStandIn,
                                                           sender: SlackSender) -> None:
    root = await sender.send(PAYLOAD, reply_to(None))
    assert root.handle is not None
    reply = await sender.send(REPLY, reply_to(root.handle, broadcast=True))

    assert [m.ts for m in slack.replies(root.handle)] == [reply.handle]
    assert [m.ts for m in slack.top_level()] == [root.handle, reply.handle]
    assert slack.messages[1].broadcast is True


async def test_edit_rewrites_the_root_text_and_blocks(slack: SlackStandIn,
                                                      sender: SlackSender) -> None:
    root = await sender.send(PAYLOAD, reply_to(None))
    assert root.handle is not None
    await sender.edit(root.handle, NOW)
    await sender.edit(root.handle, NOW)  # unchanged: Slack accepts it, and so must we

    now = slack.current(root.handle)
    assert (now.text, now.blocks, now.edited) == (NOW["text"], NOW["blocks"], True)
    assert len(slack.messages) == 1, "an edit posts nothing new"
    assert slack.updates[0].body["channel"] == "C0ALERTS", "chat.update takes the channel id"


async def test_edit_after_a_restart_works_when_the_channel_is_an_id(
    slack: SlackStandIn, sender: SlackSender,
) -> None:
    root = await sender.send(PAYLOAD, reply_to(None))
    assert root.handle is not None
    restarted = make(slack, channel="C0ALERTS")
    await restarted.open()
    try:
        await restarted.edit(root.handle, NOW)
    finally:
        await restarted.close()
    assert slack.current(root.handle).text == NOW["text"]


async def test_reply_to_a_deleted_root_is_thread_gone_and_posts_nothing(
    slack: SlackStandIn, sender: SlackSender,
) -> None:
    root = await sender.send(PAYLOAD, reply_to(None))
    assert root.handle is not None
    slack.delete_message(root.handle)

    with pytest.raises(ThreadGone) as caught:
        await sender.send(REPLY, reply_to(root.handle))
    assert caught.value.reason == "slack: thread_not_found"
    assert len(slack.messages) == 1


async def test_reply_that_slack_posts_unthreaded_is_removed_and_thread_gone(
    slack: SlackStandIn, sender: SlackSender,
) -> None:
    slack.deleted_parent = "unthread"  # what Slack does for a deleted parent without replies
    live = await sender.send(PAYLOAD, reply_to(None))
    assert live.handle is not None
    await sender.send(REPLY, reply_to(live.handle))  # shows that this API echoes thread_ts
    root = await sender.send(PAYLOAD, reply_to(None))
    assert root.handle is not None
    slack.delete_message(root.handle)

    with pytest.raises(ThreadGone) as caught:
        await sender.send(REPLY, reply_to(root.handle))
    assert "is gone" in caught.value.reason
    assert slack.calls[-1] == "chat.delete"
    assert [m.ts for m in slack.top_level()] == [live.handle], "no stray copy left"


async def test_a_reply_without_thread_ts_is_trusted_until_the_api_has_echoed_one(
    slack: SlackStandIn, sender: SlackSender,
) -> None:
    # An API that never echoes thread_ts must not have every reply taken for a stray.
    slack.deleted_parent = "unthread"
    root = await sender.send(PAYLOAD, reply_to(None))
    assert root.handle is not None
    slack.delete_message(root.handle)
    reply = await sender.send(REPLY, reply_to(root.handle))
    assert "chat.delete" not in slack.calls
    assert [m.ts for m in slack.top_level()] == [reply.handle]


async def test_edit_of_a_deleted_root_is_thread_gone(slack: SlackStandIn,
                                                     sender: SlackSender) -> None:
    root = await sender.send(PAYLOAD, reply_to(None))
    assert root.handle is not None
    slack.delete_message(root.handle)
    with pytest.raises(ThreadGone) as caught:
        await sender.edit(root.handle, NOW)
    assert caught.value.reason == "slack: message_not_found"


async def test_edit_failure_other_than_gone_keeps_its_class(slack: SlackStandIn,
                                                            sender: SlackSender) -> None:
    root = await sender.send(PAYLOAD, reply_to(None))
    assert root.handle is not None
    slack.error_next("edit_window_closed")
    with pytest.raises(PermanentDeliveryError):
        await sender.edit(root.handle, NOW)


@pytest.mark.parametrize("code", ["thread_not_found", "message_not_found",
                                  "cannot_reply_to_message"])
def test_a_missing_target_is_thread_gone_only_where_a_target_was_named(code: str) -> None:
    assert type(classify(fail(code), gone=ROOT_GONE_ERRORS)) is ThreadGone
    assert type(classify(fail(code), gone=EDIT_GONE_ERRORS)) is ThreadGone
    assert type(classify(fail(code))) is PermanentDeliveryError


def test_cant_update_message_is_gone_for_an_edit_only() -> None:
    # A parent deleted while it had replies stays as a placeholder the bot no longer owns.
    assert type(classify(fail("cant_update_message"), gone=EDIT_GONE_ERRORS)) is ThreadGone
    assert type(classify(fail("cant_update_message"), gone=ROOT_GONE_ERRORS)) \
        is PermanentDeliveryError


# -- the stand-in's own fidelity -----------------------------------------------------------

async def test_standin_update_needs_an_id_and_a_live_message(slack: SlackStandIn,
                                                              sender: SlackSender) -> None:
    root = await sender.send(PAYLOAD)
    assert root.handle is not None
    client = AsyncWebClient(token=TOKEN, base_url=slack.base_url, retry_handlers=[])
    for channel, ts, error in [("#alerts", root.handle, "channel_not_found"),
                               ("C0ALERTS", "1.000000", "message_not_found")]:
        with pytest.raises(SlackApiError) as caught:
            await client.chat_update(channel=channel, ts=ts, text="x")
        assert caught.value.response["error"] == error
    response = await client.chat_update(channel="C0ALERTS", ts=root.handle, text="only text")
    assert response["ts"] == root.handle
    assert slack.current(root.handle).blocks == PAYLOAD["blocks"], "text-only keeps blocks"
