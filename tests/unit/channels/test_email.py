"""The email channel against a real SMTP server on loopback (aiosmtpd), with real aiosmtplib."""

from __future__ import annotations

import asyncio
import gc
import ssl
import traceback
import warnings
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiosmtplib
import pytest

from notifybot.channels.email import EmailSender, build, classify
from notifybot.errors import (
    ConfigError,
    DeliveryError,
    PermanentDeliveryError,
    RateLimited,
    TemporaryDeliveryError,
)
from notifybot.secret import Secret
from tests.polling import eventually
from tests.standins.smtp import Certificate, SMTPStandIn

PASSWORD = "correct-horse-battery"
USERS = {"bot": PASSWORD}
PAYLOAD = {
    "subject": "Job 15471 status: Booked → Prepared",
    "text": "Job 15471 status: Booked → Prepared\n\nClient: Smith & Sons <Ltd>\n",
    "html": "<html><body><p><b>Job 15471</b> Smith &amp; Sons &lt;Ltd&gt;</p></body></html>",
}


@pytest.fixture
async def smtp(certificate: Certificate) -> AsyncIterator[SMTPStandIn]:
    async with SMTPStandIn(certificate=certificate, users=USERS) as standin:
        yield standin


def options(standin: SMTPStandIn, certificate: Certificate | None = None,
            **overrides: Any) -> dict[str, Any]:
    """Channel options pointing at ``standin``, logged in as ``bot``."""
    base: dict[str, Any] = {
        "type": "email", "host": standin.host, "port": standin.port,
        "security": standin.security, "username": Secret("bot"), "password": Secret(PASSWORD),
        "from": "notifybot <bot@example.com>", "to": ["oncall@example.com"], "timeout": 5,
    }
    if certificate is not None:
        base["ca_file"] = str(certificate.ca_file)
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def assert_no_secret(error: BaseException) -> None:
    text = "".join(traceback.format_exception(error))
    assert PASSWORD not in text
    assert PASSWORD not in repr(error)


async def test_starttls_login_and_multipart_message(smtp: SMTPStandIn,
                                                    certificate: Certificate) -> None:
    sender = build("oncall", options(smtp, certificate))
    receipt = await sender.send(PAYLOAD)

    [received] = await smtp.wait_for(1)
    assert received.tls and received.username == "bot"
    assert received.mail_from == "bot@example.com"
    assert received.rcpt_tos == ["oncall@example.com"]
    message = received.message
    assert message["Subject"] == PAYLOAD["subject"]
    assert message["From"] == "notifybot <bot@example.com>"
    assert message["To"] == "oncall@example.com"
    assert message["Date"] is not None
    assert message["Message-ID"].endswith("@example.com>")
    assert message.get_content_type() == "multipart/alternative"
    text, html = message.iter_parts()
    assert (text.get_content_type(), html.get_content_type()) == ("text/plain", "text/html")
    assert text.get_content().replace("\r\n", "\n") == PAYLOAD["text"]
    assert "Smith &amp; Sons &lt;Ltd&gt;" in html.get_content()
    assert receipt.detail.startswith("smtp: Ok: queued as 1")
    assert message["Message-ID"] in receipt.detail


async def test_subject_line_breaks_cannot_inject_headers(smtp: SMTPStandIn,
                                                         certificate: Certificate) -> None:
    sender = build("oncall", options(smtp, certificate))
    await sender.send({**PAYLOAD, "subject": "Paid\r\nBcc: thief@evil.example\nX: y"})

    [received] = await smtp.wait_for(1)
    assert received.message["Subject"] == "Paid Bcc: thief@evil.example X: y"
    assert received.message["Bcc"] is None
    assert received.rcpt_tos == ["oncall@example.com"]


async def test_several_recipients_from_a_single_string_or_a_list(
        smtp: SMTPStandIn, certificate: Certificate) -> None:
    await build("a", options(smtp, certificate, to="one@example.com")).send(PAYLOAD)
    await build("b", options(smtp, certificate, to=["one@example.com", "two@example.com"])
                ).send(PAYLOAD)

    first, second = await smtp.wait_for(2)
    assert first.rcpt_tos == ["one@example.com"]
    assert second.rcpt_tos == ["one@example.com", "two@example.com"]
    assert second.message["To"] == "one@example.com, two@example.com"


async def test_wrong_password_is_permanent_and_never_shown(
        smtp: SMTPStandIn, certificate: Certificate) -> None:
    sender = build("oncall", options(smtp, certificate, password=Secret("wrong-" + PASSWORD)))
    with pytest.raises(PermanentDeliveryError) as caught:
        await sender.send(PAYLOAD)

    assert caught.value.reason == "smtp 535: Authentication credentials invalid"
    assert smtp.failed_logins >= 1 and not smtp.messages
    assert_no_secret(caught.value)


@pytest.mark.parametrize(("code", "text", "error", "reason"), [
    (451, "4.3.0 Try again later", TemporaryDeliveryError, "smtp 451: Try again later"),
    (554, "5.6.0 Message rejected", PermanentDeliveryError, "smtp 554: Message rejected"),
])
async def test_data_refused(smtp: SMTPStandIn, certificate: Certificate, code: int, text: str,
                            error: type[DeliveryError], reason: str) -> None:
    sender = build("oncall", options(smtp, certificate))
    smtp.fail_next(1, code, text)
    with pytest.raises(error) as caught:
        await sender.send(PAYLOAD)
    assert type(caught.value) is error
    assert caught.value.reason == reason
    assert not smtp.messages

    await sender.send(PAYLOAD)  # the fault was for one DATA only
    assert len(await smtp.wait_for(1)) == 1


@pytest.mark.parametrize(("code", "error"), [
    (550, PermanentDeliveryError), (451, TemporaryDeliveryError),
])
async def test_only_recipient_refused(smtp: SMTPStandIn, certificate: Certificate, code: int,
                                      error: type[DeliveryError]) -> None:
    smtp.refuse("oncall@example.com", code, f"{code // 100}.1.1 mailbox unavailable")
    with pytest.raises(error) as caught:
        await build("oncall", options(smtp, certificate)).send(PAYLOAD)
    assert caught.value.reason == f"smtp {code}: mailbox unavailable (oncall@example.com)"
    assert not smtp.messages


async def test_partial_refusal_delivers_and_names_the_refused(
        smtp: SMTPStandIn, certificate: Certificate) -> None:
    smtp.refuse("gone@example.com")
    sender = build("oncall", options(smtp, certificate,
                                     to=["oncall@example.com", "gone@example.com"]))
    receipt = await sender.send(PAYLOAD)

    [received] = await smtp.wait_for(1)
    assert received.rcpt_tos == ["oncall@example.com"]
    assert "refused: gone@example.com (550 mailbox unavailable)" in receipt.detail


async def test_implicit_tls(certificate: Certificate) -> None:
    async with SMTPStandIn(security="tls", certificate=certificate, users=USERS) as smtp:
        sender = build("oncall", options(smtp, certificate))
        assert sender.security == "tls"
        await sender.send(PAYLOAD)
        [received] = await smtp.wait_for(1)
    assert received.tls and received.username == "bot"


async def test_server_without_starttls_gets_no_plaintext(certificate: Certificate) -> None:
    async with SMTPStandIn(security="none", users=USERS) as smtp:
        sender = build("oncall", options(smtp, certificate, security="starttls"))
        with pytest.raises(PermanentDeliveryError) as caught:
            await sender.send(PAYLOAD)
    assert "STARTTLS" in caught.value.reason
    # Neither the password nor the message went over the unencrypted connection.
    assert smtp.logins == [] and smtp.failed_logins == 0 and smtp.messages == []


async def test_untrusted_certificate_is_permanent(smtp: SMTPStandIn) -> None:
    sender = build("oncall", options(smtp))  # no ca_file: the self-signed cert is untrusted
    with pytest.raises(PermanentDeliveryError) as caught:
        await sender.send(PAYLOAD)
    assert caught.value.reason.startswith("smtp: certificate verification failed")
    assert smtp.logins == []


async def test_plaintext_to_loopback_when_asked() -> None:
    async with SMTPStandIn(security="none") as smtp:
        sender = build("relay", options(smtp, username=None, password=None, security="none"))
        await sender.send(PAYLOAD)
        [received] = await smtp.wait_for(1)
    assert not received.tls and received.username is None


async def test_dropped_connection_is_temporary(smtp: SMTPStandIn,
                                               certificate: Certificate) -> None:
    smtp.drop_next()
    with pytest.raises(TemporaryDeliveryError) as caught:
        await build("oncall", options(smtp, certificate)).send(PAYLOAD)
    assert caught.value.reason == "smtp: connection lost"


async def test_a_burst_opens_at_most_connections_at_once(smtp: SMTPStandIn,
                                                          certificate: Certificate) -> None:
    smtp.delay = 0.2  # each DATA answered late, so sends would overlap if let
    sender = build("oncall", options(smtp, certificate, connections=2))
    await asyncio.gather(*(sender.send({**PAYLOAD, "subject": f"message {n}"})
                           for n in range(6)))
    assert sorted(m.message["Subject"] for m in smtp.messages) == [
        f"message {n}" for n in range(6)]
    assert smtp.most_in_data == 2


async def test_a_send_waits_at_most_timeout_for_a_connection(smtp: SMTPStandIn,
                                                              certificate: Certificate) -> None:
    # One connection, each held about 1 s: the second send gets it in time, the third
    # would wait past its timeout (and, in the outbox, past its lease) and is told so.
    smtp.delay = 1.0
    sender = build("oncall", options(smtp, certificate, connections=1, timeout=1.6))
    first = asyncio.create_task(sender.send({**PAYLOAD, "subject": "first"}))
    await eventually(lambda: smtp.in_data == 1, what="the first send holding the connection")
    second = asyncio.create_task(sender.send({**PAYLOAD, "subject": "second"}))
    await asyncio.sleep(0)  # queued before the third: the semaphore is first come, first served
    with pytest.raises(RateLimited) as caught:
        await sender.send({**PAYLOAD, "subject": "third"})
    assert caught.value.reason == (f"smtp: all 1 connections to {smtp.host}:{smtp.port} busy")
    assert caught.value.retry_after > 0
    await asyncio.gather(first, second)
    assert [m.message["Subject"] for m in smtp.messages] == ["first", "second"]


async def test_a_loop_that_ends_right_after_a_send_leaves_no_socket_open(
        smtp: SMTPStandIn, certificate: Certificate) -> None:
    # send-test's own event loop ends as soon as the message is sent: TLS's goodbye
    # must not be what closes the socket, or the garbage collector finds it open.
    def send_in_a_loop_of_its_own() -> None:
        asyncio.run(build("oncall", options(smtp, certificate)).send(PAYLOAD))

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(5):
            await asyncio.to_thread(send_in_a_loop_of_its_own)
        gc.collect()
    assert len(smtp.messages) == 5
    assert [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)] == []


async def test_slow_server_times_out_as_temporary(smtp: SMTPStandIn,
                                                  certificate: Certificate) -> None:
    smtp.delay = 30  # before answering DATA
    with pytest.raises(TemporaryDeliveryError) as caught:
        await build("oncall", options(smtp, certificate, timeout=0.3)).send(PAYLOAD)
    # Which step runs out of time depends on the machine's load: on a busy one the
    # 0.3 s may end during connect, greeting, STARTTLS or login, before DATA. The
    # phase each step reports is pinned down by the two tests below, without timing.
    assert caught.value.reason in ("smtp: timeout after 0.3s", "smtp: timeout after 0.3s connecting")


async def test_a_server_that_never_greets_times_out_connecting(certificate: Certificate) -> None:
    connections: list[asyncio.StreamWriter] = []

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(writer)  # accepts, and never says a word

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        with pytest.raises(TemporaryDeliveryError) as caught:
            await build("oncall", {"type": "email", "host": "127.0.0.1", "port": port,
                                   "security": "starttls", "ca_file": str(certificate.ca_file),
                                   "from": "bot@example.com", "to": ["oncall@example.com"],
                                   "timeout": 0.3}).send(PAYLOAD)
    finally:
        server.close()
        for writer in connections:
            writer.close()
            await writer.wait_closed()
        await server.wait_closed()
    assert caught.value.reason == "smtp: timeout after 0.3s connecting"


def test_a_timeout_names_its_phase() -> None:
    reading = classify(aiosmtplib.SMTPReadTimeoutError("Timed out waiting for server response"),
                       timeout=0.3)
    connecting = classify(aiosmtplib.SMTPConnectTimeoutError("Timed out connecting"), timeout=0.3)
    assert isinstance(reading, TemporaryDeliveryError) and isinstance(connecting, TemporaryDeliveryError)
    assert (reading.reason, connecting.reason) == ("smtp: timeout after 0.3s",
                                                   "smtp: timeout after 0.3s connecting")


async def test_nothing_listening_is_temporary(certificate: Certificate) -> None:
    async with SMTPStandIn(certificate=certificate) as smtp:
        closed = options(smtp, certificate)
    with pytest.raises(TemporaryDeliveryError) as caught:
        await build("oncall", closed).send(PAYLOAD)
    assert caught.value.reason == "smtp: cannot connect (ECONNREFUSED)"


async def test_check_logs_in_and_sends_nothing(smtp: SMTPStandIn,
                                               certificate: Certificate) -> None:
    description = await build("oncall", options(smtp, certificate)).check()

    assert description == f"127.0.0.1:{smtp.port} (starttls): logged in"
    assert smtp.logins == ["bot"] and smtp.messages == []
    assert PASSWORD not in description and "bot" not in description


async def test_check_with_wrong_password(smtp: SMTPStandIn, certificate: Certificate) -> None:
    sender = build("oncall", options(smtp, certificate, password=Secret("nope")))
    with pytest.raises(PermanentDeliveryError) as caught:
        await sender.check()
    assert caught.value.reason.startswith("smtp 535")


def test_a_server_echoing_the_password_is_redacted() -> None:
    sender = build("oncall", {"type": "email", "host": "smtp.example.com", "from": "a@example.com",
                              "to": "b@example.com", "username": Secret("bot"),
                              "password": Secret(PASSWORD)})
    echoed = aiosmtplib.SMTPAuthenticationError(535, f"bad password {PASSWORD}")
    error = sender._failure(echoed)
    assert type(error) is PermanentDeliveryError
    assert error.reason == "smtp 535: bad password **********"


# --- configuration ---------------------------------------------------------------------------

MINIMAL = {"type": "email", "host": "smtp.example.com", "from": "bot@example.com",
           "to": "oncall@example.com"}


@pytest.mark.parametrize(("security", "port"), [("starttls", 587), ("tls", 465)])
def test_defaults(security: str, port: int) -> None:
    sender = build("oncall", {**MINIMAL, "security": security})
    assert isinstance(sender, EmailSender)
    assert (sender.kind, sender.name, sender.port, sender.timeout, sender.pace,
            sender.connections) == ("email", "oncall", port, 15.0, 0.0, 4)
    assert sender.destination == f"email:smtp.example.com:{port}"
    assert build("oncall", MINIMAL).security == "starttls"


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "127.0.0.53", "::1", "[::1]"])
def test_plaintext_allowed_on_loopback(host: str) -> None:
    sender = build("relay", {**MINIMAL, "host": host, "security": "none"})
    assert (sender.security, sender.port) == ("none", 25)


@pytest.mark.parametrize("host", ["smtp.example.com", "10.0.0.5", "localhost.example.com"])
def test_plaintext_refused_off_loopback(host: str) -> None:
    with pytest.raises(ConfigError) as caught:
        build("relay", {**MINIMAL, "host": host, "security": "none"})
    assert caught.value.key == "channels.relay.security"


@pytest.mark.parametrize(("change", "key"), [
    ({"host": None}, "host"),
    ({"host": "smtp example.com"}, "host"),
    ({"security": "ssl"}, "security"),
    ({"port": "587"}, "port"),
    ({"port": True}, "port"),
    ({"port": 70000}, "port"),
    ({"from": None}, "from"),
    ({"from": "not an address"}, "from"),
    ({"from": "bot@example.com\r\nBcc: x@evil.example"}, "from"),
    ({"to": None}, "to"),
    ({"to": []}, "to"),
    ({"to": ["ok@example.com", 5]}, "to"),
    ({"to": ["ok@example.com", "nobody"]}, "to"),
    ({"username": Secret("bot")}, "password"),
    ({"password": Secret(PASSWORD)}, "username"),
    ({"timeout": 0}, "timeout"),
    ({"timeout": "15"}, "timeout"),
    ({"pace": -1}, "pace"),
    ({"connections": 0}, "connections"),
    ({"connections": "4"}, "connections"),
    ({"connections": True}, "connections"),
    ({"connections": 2.5}, "connections"),
    ({"ca_file": "/nonexistent/ca.pem"}, "ca_file"),
])
def test_invalid_options(change: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        build("oncall", {k: v for k, v in {**MINIMAL, **change}.items() if v is not None})
    assert caught.value.key == f"channels.oncall.{key}"
    assert PASSWORD not in str(caught.value)


def test_secrets_stay_out_of_repr() -> None:
    sender = build("oncall", {**MINIMAL, "username": Secret("bot-user"),
                              "password": Secret(PASSWORD)})
    assert PASSWORD not in repr(sender) and "bot-user" not in repr(sender)
    assert PASSWORD not in sender.destination


# --- classify --------------------------------------------------------------------------------

def _caused(outer: BaseException, cause: BaseException) -> BaseException:
    outer.__cause__ = cause
    return outer


VERIFY = ssl.SSLCertVerificationError(1, "certificate verify failed")
VERIFY.verify_message = "self-signed certificate"
WRONG_VERSION = ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version number (_ssl.c:1006)")
WRONG_VERSION.reason = "WRONG_VERSION_NUMBER"
REFUSED = aiosmtplib.SMTPRecipientRefused


@pytest.mark.parametrize(("exc", "error", "reason"), [
    (aiosmtplib.SMTPResponseException(421, "4.3.2 Service not available, closing"),
     TemporaryDeliveryError, "smtp 421: Service not available, closing"),
    (aiosmtplib.SMTPDataError(451, "4.3.0 Try again later"),
     TemporaryDeliveryError, "smtp 451: Try again later"),
    (aiosmtplib.SMTPDataError(452, "4.3.1 Insufficient system storage"),
     TemporaryDeliveryError, "smtp 452: Insufficient system storage"),
    (aiosmtplib.SMTPDataError(552, "5.3.4 Message too big"),
     PermanentDeliveryError, "smtp 552: Message too big"),
    (aiosmtplib.SMTPDataError(554, "5.7.1 Rejected as spam\nsecond line"),
     PermanentDeliveryError, "smtp 554: Rejected as spam"),
    (aiosmtplib.SMTPAuthenticationError(535, "5.7.8 Authentication credentials invalid"),
     PermanentDeliveryError, "smtp 535: Authentication credentials invalid"),
    (aiosmtplib.SMTPAuthenticationError(454, "4.7.0 Temporary authentication failure"),
     TemporaryDeliveryError, "smtp 454: Temporary authentication failure"),
    (aiosmtplib.SMTPSenderRefused(553, "5.7.1 Sender not owned", "bot@example.com"),
     PermanentDeliveryError, "smtp 553: Sender not owned"),
    (aiosmtplib.SMTPHeloError(501, "Syntax error"), PermanentDeliveryError,
     "smtp 501: Syntax error"),
    (aiosmtplib.SMTPConnectResponseError(554, "No SMTP service here"),
     PermanentDeliveryError, "smtp 554: No SMTP service here"),
    (aiosmtplib.SMTPResponseException(-1, "Malformed SMTP response line"),
     TemporaryDeliveryError, "smtp -1: Malformed SMTP response line"),
    (aiosmtplib.SMTPRecipientsRefused([REFUSED(550, "5.1.1 mailbox unavailable", "a@x.test")]),
     PermanentDeliveryError, "smtp 550: mailbox unavailable (a@x.test)"),
    (aiosmtplib.SMTPRecipientsRefused([REFUSED(550, "5.1.1 unknown", "a@x.test"),
                                       REFUSED(451, "4.3.0 greylisted", "b@x.test")]),
     TemporaryDeliveryError, "smtp 451: greylisted (b@x.test and 1 more)"),
    (aiosmtplib.SMTPRecipientsRefused([]), TemporaryDeliveryError,
     "smtp: all recipients refused"),
    (_caused(aiosmtplib.SMTPConnectError("Error connecting"),
             ConnectionRefusedError(111, "Connect call failed")),
     TemporaryDeliveryError, "smtp: cannot connect (ECONNREFUSED)"),
    (aiosmtplib.SMTPConnectError("Error connecting"), TemporaryDeliveryError,
     "smtp: cannot connect"),
    (aiosmtplib.SMTPConnectTimeoutError("Timed out connecting"), TemporaryDeliveryError,
     "smtp: timeout after 15s connecting"),
    (aiosmtplib.SMTPReadTimeoutError("Timed out waiting for server response"),
     TemporaryDeliveryError, "smtp: timeout after 15s"),
    (aiosmtplib.SMTPTimeoutError("Timed out while upgrading transport"),
     TemporaryDeliveryError, "smtp: timeout after 15s"),
    (aiosmtplib.SMTPServerDisconnected("Connection lost"), TemporaryDeliveryError,
     "smtp: connection lost"),
    (ConnectionResetError(104, "Connection reset by peer"), TemporaryDeliveryError,
     "smtp: cannot connect (ECONNRESET)"),
    (ssl.SSLError(1, "[SSL] record layer failure"), TemporaryDeliveryError,
     "smtp: TLS error: [SSL] record layer failure"),
    (_caused(aiosmtplib.SMTPConnectError("Error connecting: wrong version"), WRONG_VERSION),
     TemporaryDeliveryError, "smtp: TLS error: WRONG_VERSION_NUMBER"),
    (VERIFY, PermanentDeliveryError,
     "smtp: certificate verification failed: self-signed certificate"),
    (_caused(aiosmtplib.SMTPConnectError("Error connecting: verify failed"), VERIFY),
     PermanentDeliveryError, "smtp: certificate verification failed: self-signed certificate"),
    (aiosmtplib.SMTPException("SMTP STARTTLS extension not supported by server."),
     PermanentDeliveryError, "smtp: STARTTLS extension not supported by server"),
    (aiosmtplib.SMTPException("The SMTP AUTH extension is not supported by this server."),
     PermanentDeliveryError, "smtp: The SMTP AUTH extension is not supported by this server"),
    (aiosmtplib.SMTPNotSupported("SMTPUTF8 is not supported by this server"),
     PermanentDeliveryError, "smtp: SMTPUTF8 is not supported by this server"),
    (ValueError("Command arg contains a prohibited control character"),
     PermanentDeliveryError, "smtp: invalid message: Command arg contains a prohibited control "
     "character"),
    (RuntimeError("surprise"), TemporaryDeliveryError, "smtp: RuntimeError"),
])
def test_classify(exc: BaseException, error: type[DeliveryError], reason: str) -> None:
    result = classify(exc, timeout=15)
    assert type(result) is error
    assert result.reason == reason


def test_classify_long_reply_is_cut() -> None:
    result = classify(aiosmtplib.SMTPDataError(554, "5.7.1 " + "x" * 500))
    assert len(result.reason) <= len("smtp 554: ") + 160
    assert result.reason.endswith("…")


def test_classify_without_timeout_value() -> None:
    assert classify(aiosmtplib.SMTPReadTimeoutError("slow")).reason == "smtp: timeout"


def test_certificate_file_is_usable(certificate: Certificate) -> None:
    # The stand-in's certificate must satisfy a default verifying client context.
    context = ssl.create_default_context(cafile=str(certificate.ca_file))
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert Path(certificate.key_file).exists()
