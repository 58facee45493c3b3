"""The console channel: one line per message, no threads and no edits."""

from __future__ import annotations

import io

import pytest

from notifybot.channels import SendContext, Sender, build_sender
from notifybot.channels.console import ConsoleSender
from notifybot.errors import PermanentDeliveryError


def test_declares_no_threads_no_edits_and_no_account() -> None:
    sender: Sender = build_sender("log", {"type": "console"})
    assert (sender.replies, sender.edits) == (False, False)
    assert (sender.account, sender.account_pace) == (None, 0.0)


async def test_prints_one_line_without_a_handle() -> None:
    stream = io.StringIO()
    receipt = await ConsoleSender("log", stream=stream).send({"text": "Job 42 booked"})
    assert stream.getvalue() == "[log] Job 42 booked\n"
    assert (receipt.detail, receipt.handle) == ("printed", None)


async def test_a_reply_is_marked_so_a_reader_sees_the_thread() -> None:
    stream = io.StringIO()
    sender = ConsoleSender("log", stream=stream)
    await sender.send({"text": "Job 42 booked"}, SendContext(thread_key="acme:42"))
    await sender.send({"text": "Job 42 dispatched"}, SendContext(thread_key="acme:42",
                                                                  root="anything"))
    assert stream.getvalue().splitlines() == ["[log] Job 42 booked", "[log] ↳ Job 42 dispatched"]


async def test_edit_is_refused() -> None:
    with pytest.raises(PermanentDeliveryError):
        await ConsoleSender("log", stream=io.StringIO()).edit("x", {"text": "y"})
