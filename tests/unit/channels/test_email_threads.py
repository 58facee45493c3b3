"""Email threads: one steady subject, In-Reply-To and References to the root's
Message-ID, and Cc for people mentioned, against the loopback SMTP server."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from notifybot.channels import SendContext, Sender
from notifybot.channels.email import EmailSender, build
from notifybot.errors import PermanentDeliveryError, ThreadGone
from tests.standins.smtp import Certificate, SMTPStandIn
from tests.unit.channels.test_email import PAYLOAD, USERS, options

SUBJECT = '[HireHop] Job 15471 "Summer Fair"'


def thread(root: str | None = None, subject: str | None = SUBJECT) -> SendContext:
    return SendContext(thread_key="acme:15471", root=root, subject=subject)


@pytest.fixture
async def smtp(certificate: Certificate) -> AsyncIterator[SMTPStandIn]:
    async with SMTPStandIn(certificate=certificate, users=USERS) as standin:
        yield standin


@pytest.fixture
def sender(smtp: SMTPStandIn, certificate: Certificate) -> EmailSender:
    return build("office", options(smtp, certificate))


def test_declares_replies_but_no_edits(sender: EmailSender) -> None:
    declared: Sender = sender
    assert (declared.replies, declared.edits) == (True, False)
    assert (declared.account, declared.account_pace) == (None, 0.0)


async def test_edit_is_refused(sender: EmailSender) -> None:
    with pytest.raises(PermanentDeliveryError):
        await sender.edit("<a@example.com>", PAYLOAD)


async def test_the_handle_is_the_message_id(smtp: SMTPStandIn, sender: EmailSender) -> None:
    receipt = await sender.send(PAYLOAD)
    [received] = await smtp.wait_for(1)
    assert receipt.handle == received.message["Message-ID"]
    assert receipt.handle is not None and receipt.handle.endswith("@example.com>")
    assert received.message["In-Reply-To"] is None and received.message["References"] is None


async def test_a_thread_keeps_one_subject_and_replies_name_the_root(
    smtp: SMTPStandIn, sender: EmailSender,
) -> None:
    root = await sender.send(PAYLOAD, thread())
    assert root.handle is not None
    await sender.send({**PAYLOAD, "subject": "Job 15471 status: Prepared → Dispatched"},
                      thread(root.handle))
    await sender.send({**PAYLOAD, "subject": "Invoice 88 for job 15471"}, thread(root.handle))

    first, *replies = await smtp.wait_for(3)
    assert [r.message["Subject"] for r in (first, *replies)] == [SUBJECT] * 3
    assert first.message["In-Reply-To"] is None
    for reply in replies:
        assert reply.message["In-Reply-To"] == root.handle
        assert reply.message["References"] == root.handle
    assert list(smtp.threads()) == [root.handle], "one conversation in a mail client"
    assert len({r.message["Message-ID"] for r in smtp.messages}) == 3


async def test_a_thread_without_a_subject_uses_the_payloads(smtp: SMTPStandIn,
                                                            sender: EmailSender) -> None:
    await sender.send(PAYLOAD, thread(subject=None))
    [received] = await smtp.wait_for(1)
    assert received.message["Subject"] == PAYLOAD["subject"]


async def test_a_thread_subject_cannot_inject_headers(smtp: SMTPStandIn,
                                                      sender: EmailSender) -> None:
    await sender.send(PAYLOAD, thread(subject="Job 1\r\nBcc: thief@evil.example"))
    [received] = await smtp.wait_for(1)
    assert received.message["Bcc"] is None
    assert received.rcpt_tos == ["oncall@example.com"]


async def test_a_root_without_angle_brackets_is_bracketed(smtp: SMTPStandIn,
                                                          sender: EmailSender) -> None:
    await sender.send(PAYLOAD, thread("abc.123@example.com"))
    [received] = await smtp.wait_for(1)
    assert received.message["In-Reply-To"] == "<abc.123@example.com>"


@pytest.mark.parametrize("root", ["<a@example.com>\r\nBcc: thief@evil.example", "not an id",
                                  "<a@b@c>"])
async def test_a_root_that_is_no_message_id_is_thread_gone_and_sends_nothing(
    smtp: SMTPStandIn, sender: EmailSender, root: str,
) -> None:
    with pytest.raises(ThreadGone):
        await sender.send(PAYLOAD, thread(root))
    assert smtp.messages == []


async def test_cc_adds_the_header_and_the_recipients(smtp: SMTPStandIn,
                                                     sender: EmailSender) -> None:
    await sender.send({**PAYLOAD, "cc": ["tom@example.com", "Oncall@example.com",
                                         "sam@example.com", "tom@example.com"]})
    [received] = await smtp.wait_for(1)
    assert received.message["Cc"] == "tom@example.com, sam@example.com"
    assert received.rcpt_tos == ["oncall@example.com", "tom@example.com", "sam@example.com"]


async def test_a_cc_that_is_not_an_address_is_skipped(smtp: SMTPStandIn,
                                                      sender: EmailSender) -> None:
    await sender.send({**PAYLOAD, "cc": ["tom@example.com\r\nBcc: thief@evil.example",
                                         "nobody", "sam@example.com"]})
    [received] = await smtp.wait_for(1)
    assert received.message["Cc"] == "sam@example.com"
    assert received.message["Bcc"] is None
    assert received.rcpt_tos == ["oncall@example.com", "sam@example.com"]


async def test_no_cc_header_without_mentions(smtp: SMTPStandIn, sender: EmailSender) -> None:
    await sender.send({**PAYLOAD, "cc": []})
    [received] = await smtp.wait_for(1)
    assert "Cc" not in [name for name, _ in received.headers]
