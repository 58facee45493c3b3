"""notifybot.testing.FakeSender follows the Sender protocol, threads included."""

from __future__ import annotations

import pytest

from notifybot.channels import STANDALONE, SendContext, Sender
from notifybot.errors import PermanentDeliveryError, TemporaryDeliveryError, ThreadGone
from notifybot.testing import FakeSender


def reply_to(root: str | None) -> SendContext:
    return SendContext(thread_key="acme:1", root=root)


async def test_records_payloads_contexts_and_handles() -> None:
    sender = FakeSender("chat")
    root = await sender.send({"text": "root"}, reply_to(None))
    reply = await sender.send({"text": "reply"}, reply_to(root.handle))

    assert sender.sent == [{"text": "root"}, {"text": "reply"}]
    assert sender.contexts == [reply_to(None), reply_to(root.handle)]
    assert (root.detail, reply.detail) == ("fake-1", "fake-2")
    assert (root.handle, reply.handle) == ("fake-1", "fake-2")
    assert [m.handle for m in sender.replies_to(root.handle)] == [reply.handle]


async def test_edits_are_recorded_and_change_what_the_message_shows() -> None:
    sender = FakeSender("chat")
    root = await sender.send({"text": "v1"})
    assert root.handle is not None
    await sender.edit(root.handle, {"text": "v2"})
    assert sender.edits_made == [(root.handle, {"text": "v2"})]
    assert sender.current(root.handle) == {"text": "v2"}


async def test_a_deleted_root_is_thread_gone_for_replies_and_edits() -> None:
    sender = FakeSender("chat")
    root = await sender.send({"text": "root"})
    assert root.handle is not None
    sender.delete(root.handle)

    with pytest.raises(ThreadGone):
        await sender.send({"text": "reply"}, reply_to(root.handle))
    with pytest.raises(ThreadGone):
        await sender.edit(root.handle, {"text": "now"})
    assert sender.sent == [{"text": "root"}] and sender.edits_made == []
    assert (sender.attempts, sender.edit_attempts) == (2, 1)


async def test_a_root_from_before_a_restart_is_taken_to_exist() -> None:
    sender = FakeSender("chat")
    await sender.send({"text": "reply"}, reply_to("fake-7"))
    await sender.edit("fake-7", {"text": "now"})
    assert sender.contexts[0].root == "fake-7"


async def test_queued_failures_apply_to_sends_and_edits_separately() -> None:
    sender = FakeSender("chat")
    sender.fail_next(TemporaryDeliveryError("send down"))
    sender.fail_next_edit(TemporaryDeliveryError("edit down"))
    with pytest.raises(TemporaryDeliveryError, match="edit down"):
        await sender.edit("h", {"text": "x"})
    with pytest.raises(TemporaryDeliveryError, match="send down"):
        await sender.send({"text": "x"})
    await sender.send({"text": "x"})
    assert len(sender.sent) == 1


async def test_capabilities_are_declared_and_shape_the_receipt() -> None:
    plain = FakeSender("log", replies=False, edits=False)
    declared: Sender = plain
    assert (declared.replies, declared.edits, declared.account) == (False, False, None)
    assert (await plain.send({"text": "x"}, STANDALONE)).handle is None
    with pytest.raises(PermanentDeliveryError):
        await plain.edit("h", {"text": "x"})


def test_an_account_is_a_constructor_argument() -> None:
    bot = FakeSender("a", account="bot:1", account_pace=0.05)
    assert (bot.account, bot.account_pace) == ("bot:1", 0.05)


async def test_the_record_lists_grow_in_place() -> None:
    sender = FakeSender("chat")
    held = (sender.sent, sender.contexts, sender.messages)  # as a test harness keeps them
    await sender.send({"text": "x"})
    assert [len(record) for record in held] == [1, 1, 1]
