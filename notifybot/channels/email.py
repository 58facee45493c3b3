"""The email channel: one SMTP conversation per message, encrypted unless the server is local.

``security`` is explicit and enforced: ``starttls`` *requires* the upgrade (aiosmtplib's
default would quietly stay in plaintext when a server, or someone in between, omits
STARTTLS), ``tls`` is TLS from the first byte, and ``none`` is accepted only for a
loopback host such as a local relay.

Threads: the handle is the ``Message-ID`` the sender makes. A message of a thread
carries the thread's steady subject (``context.subject``), and a reply names the
root in ``In-Reply-To`` and ``References``, which is how Gmail, Outlook and
Thunderbird group a conversation. Email cannot edit what it sent (``edits`` is
False). People mentioned (payload ``cc``) are copied in ``Cc``.

At most ``connections`` conversations (default 4) are open to the server at once,
whatever the outbox's ``concurrency``: a burst of emails must not look like an
attack to a mail server that limits connections per client. A send that finds
none free within ``timeout`` is :class:`~notifybot.errors.RateLimited` (tried
again a second later, no attempt counted) rather than left waiting past its lease.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import ipaddress
import logging
import re
import ssl
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, getaddresses, make_msgid, parseaddr
from typing import Any, TypeVar

import aiosmtplib

from ..errors import (
    ConfigError,
    DeliveryError,
    PermanentDeliveryError,
    RateLimited,
    TemporaryDeliveryError,
    ThreadGone,
)
from ..formatting import one_line
from ..secret import Secret
from .base import STANDALONE, Receipt, SendContext, require, seconds

log = logging.getLogger(__name__)

DEFAULT_PORTS = {"starttls": 587, "tls": 465, "none": 25}
DEFAULT_TIMEOUT = 15.0
DEFAULT_CONNECTIONS = 4
REASON_LIMIT = 160
E = TypeVar("E", bound=BaseException)
_ENHANCED_CODE = re.compile(r"^[245]\.\d{1,3}\.\d{1,3}\s+")
# A msg-id as make_msgid writes it: what a root handle must look like to go in a header.
_MSG_ID = re.compile(r"<[^<>\s@]+@[^<>\s@]+>")


class EmailSender:
    """Sends each payload as a multipart (text + HTML) message over SMTP."""

    kind = "email"
    replies = True  # In-Reply-To and References
    edits = False  # a sent email cannot be changed
    account: str | None = None
    account_pace = 0.0

    def __init__(self, name: str, *, host: str, port: int, security: str, sender: str,
                 recipients: Sequence[str], username: Secret | None = None,
                 password: Secret | None = None, timeout: float = DEFAULT_TIMEOUT,
                 tls_context: ssl.SSLContext | None = None, pace: float = 0.0,
                 connections: int = DEFAULT_CONNECTIONS) -> None:
        self.name = name
        self.destination = f"email:{host}:{port}"
        self.pace = pace
        self.host, self.port, self.security, self.timeout = host, port, security, timeout
        self.sender, self.recipients = sender, tuple(recipients)
        self._username, self._password = username, password
        self._tls_context = tls_context
        self.connections = connections
        self._slots: asyncio.Semaphore | None = None  # made in the loop that sends
        self._slots_loop: asyncio.AbstractEventLoop | None = None

    def __repr__(self) -> str:
        return f"<EmailSender {self.name} {self.security}://{self.host}:{self.port}>"

    async def open(self) -> None:
        return None  # a connection per message: nothing to hold open between them

    async def close(self) -> None:
        return None

    async def send(self, payload: Mapping[str, Any],
                   context: SendContext = STANDALONE) -> Receipt:
        """One SMTP conversation; the receipt's handle is the message's ``Message-ID``.

        Refused recipients are named in the receipt when others got it.
        """
        message = compose(payload, self.sender, self.recipients, context)
        copied = [address for _, address in getaddresses(message.get_all("Cc", []))]
        recipients = [*(address_of(r) for r in self.recipients), *copied]
        slots = self._connection_slots()
        try:
            # At most ``timeout`` for a free connection: a send waiting longer would
            # outlive its lease and be claimed (and sent) a second time.
            async with asyncio.timeout(self.timeout):
                await slots.acquire()
        except TimeoutError:
            raise RateLimited(f"smtp: all {self.connections} connections to {self.host}:"
                              f"{self.port} busy", retry_after=1.0) from None
        try:
            async with self._conversation() as client:
                refused, reply = await client.send_message(
                    message, sender=address_of(self.sender), recipients=recipients)
        except _FAILURES as exc:
            raise self._failure(exc) from exc
        finally:
            slots.release()
        detail = f"smtp: {_clean(reply)}; Message-ID {message['Message-ID']}"
        if refused:
            # Some recipients have the message: retrying would send it to them twice.
            names = ", ".join(f"{rcpt} ({r.code} {_clean(r.message)})"
                              for rcpt, r in refused.items())
            log.warning("channel %s: delivered, but the server refused %s", self.name, names)
            detail += f"; refused: {names}"
        return Receipt(detail, handle=str(message["Message-ID"]))

    async def edit(self, handle: str, payload: Mapping[str, Any]) -> None:
        """Email cannot change a sent message (``edits`` is False): never called."""
        raise PermanentDeliveryError("email: a sent message cannot be edited")

    async def check(self) -> str:
        """Connect, upgrade to TLS, log in and quit, sending nothing."""
        try:
            async with self._conversation():
                pass
        except _FAILURES as exc:
            raise self._failure(exc) from exc
        login = "logged in" if self._username else "connected (no login)"
        return f"{self.host}:{self.port} ({self.security}): {login}"

    def _connection_slots(self) -> asyncio.Semaphore:
        """The ``connections`` slots of the running loop (a sender may outlive a loop)."""
        loop = asyncio.get_running_loop()
        if self._slots is None or self._slots_loop is not loop:
            self._slots, self._slots_loop = asyncio.Semaphore(self.connections), loop
        return self._slots

    @contextlib.asynccontextmanager
    async def _conversation(self) -> AsyncIterator[aiosmtplib.SMTP]:
        """Connect (TLS, login), yield, QUIT; the socket is closed when this ends.

        aiosmtplib's close() only starts TLS's goodbye (close_notify), which needs
        more turns of the event loop: a short-lived loop (``send-test``) could end
        first and leave the socket to the garbage collector. After QUIT nothing is
        left to say, so the connection is aborted, as smtplib closes its socket.
        """
        client = aiosmtplib.SMTP(**self._connection())
        transport = None
        try:
            async with client:
                transport = client.transport
                yield client
        finally:
            if isinstance(transport, asyncio.Transport):
                transport.abort()

    def _connection(self) -> dict[str, Any]:
        return {
            "hostname": self.host, "port": self.port, "timeout": self.timeout,
            "use_tls": self.security == "tls",
            # False, never None: None means "only if the server offers it".
            "start_tls": self.security == "starttls",
            "tls_context": self._tls_context,
            "username": self._username.reveal() if self._username else None,
            "password": self._password.reveal() if self._password else None,
        }

    def _failure(self, exc: BaseException) -> DeliveryError:
        error = classify(exc, timeout=self.timeout)
        reason = error.reason
        # A server may echo what it was sent; the reason is logged and stored.
        for secret in (self._password, self._username):
            if secret and secret.reveal() in reason:
                reason = reason.replace(secret.reveal(), "**********")
        return type(error)(reason) if reason != error.reason else error


_FAILURES = (aiosmtplib.SMTPException, OSError, ValueError)


def compose(payload: Mapping[str, Any], sender: str, recipients: Sequence[str],
            context: SendContext = STANDALONE) -> EmailMessage:
    """The message for a formatted email payload (``subject``, ``text``, ``html``, ``cc``).

    In a thread the subject is the thread's (``context.subject``), and a reply
    names its root in ``In-Reply-To`` and ``References``.
    """
    message = EmailMessage()
    subject = context.subject if context.thread_key and context.subject else payload["subject"]
    # formatting already makes the subject one line; a header with CR/LF would raise.
    message["Subject"] = one_line(str(subject))
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    copied = _cc(payload.get("cc"), recipients)
    if copied:
        message["Cc"] = ", ".join(copied)
    message["Date"] = format_datetime(datetime.now(UTC))
    # An explicit domain also spares make_msgid a blocking socket.getfqdn() call.
    message["Message-ID"] = make_msgid(domain=address_of(sender).rpartition("@")[2])
    # RFC 3834: machine-generated, so auto-responders (out-of-office) do not answer it.
    message["Auto-Submitted"] = "auto-generated"
    if context.is_reply:
        root = _msg_id(context.root)
        message["In-Reply-To"] = root
        message["References"] = root
    message.set_content(str(payload["text"]))
    message.add_alternative(str(payload["html"]), subtype="html")
    return message


def _msg_id(root: str | None) -> str:
    """The root's Message-ID as a header value; one that is not a msg-id names no message."""
    text = str(root or "").strip()
    text = text if text.startswith("<") else f"<{text}>"
    if not _MSG_ID.fullmatch(text):
        raise ThreadGone(f"email: {one_line(str(root))[:80]!r} is not a Message-ID")
    return text


def _cc(value: Any, recipients: Sequence[str]) -> list[str]:
    """The payload's ``cc`` addresses that are well formed and not already recipients."""
    if not value:
        return []
    seen = {address_of(r).lower() for r in recipients}
    copied = []
    for mailbox in value if isinstance(value, list | tuple) else [value]:
        address = address_of(mailbox) if isinstance(mailbox, str) else ""
        # A line break would let a mention add headers; skip it rather than lose the message.
        if "\r" in str(mailbox) or "\n" in str(mailbox) or "@" not in address:
            log.warning("email: ignoring a cc that is not an address: %r", mailbox)
            continue
        if address.lower() not in seen:
            seen.add(address.lower())
            copied.append(address)  # bare: a display name could carry a comma
    return copied


def address_of(mailbox: str) -> str:
    """The bare address of ``Name <user@host>`` or ``user@host``."""
    return parseaddr(mailbox)[1]


def classify(exc: BaseException, *, timeout: float | None = None) -> DeliveryError:
    """The delivery error for an aiosmtplib (or socket/TLS) failure.

    SMTP 4xx and network trouble are temporary, 5xx permanent; so is a certificate
    that fails verification or a server that lacks STARTTLS/AUTH (configuration).
    """
    verify = _in_chain(exc, ssl.SSLCertVerificationError)
    if verify is not None:
        why = _clean(verify.verify_message or verify.strerror or "invalid certificate")
        return PermanentDeliveryError(f"smtp: certificate verification failed: {why}")
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        return _refused(exc.recipients)
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return _by_code(exc.code, exc.message)
    if isinstance(exc, TimeoutError):  # aiosmtplib's timeouts subclass it
        where = " connecting" if isinstance(exc, aiosmtplib.SMTPConnectError) else ""
        after = f" after {timeout:g}s" if timeout else ""
        return TemporaryDeliveryError(f"smtp: timeout{after}{where}")
    if isinstance(exc, aiosmtplib.SMTPServerDisconnected):
        return TemporaryDeliveryError("smtp: connection lost")
    tls = _in_chain(exc, ssl.SSLError)
    if tls is not None:
        why = getattr(tls, "reason", None) or tls.strerror or str(tls)
        return TemporaryDeliveryError(f"smtp: TLS error: {_clean(why)}")
    if isinstance(exc, aiosmtplib.SMTPConnectError | OSError):
        return TemporaryDeliveryError(f"smtp: cannot connect{_errno_name(exc)}")
    if isinstance(exc, aiosmtplib.SMTPException):
        # No reply code: STARTTLS or AUTH not offered, no usable AUTH mechanism...
        return PermanentDeliveryError(f"smtp: {_clean(exc.message).removeprefix('SMTP ')}")
    if isinstance(exc, ValueError):
        return PermanentDeliveryError(f"smtp: invalid message: {_clean(str(exc))}")
    return TemporaryDeliveryError(f"smtp: {type(exc).__name__}")


def _by_code(code: int, message: str, about: str = "") -> DeliveryError:
    reason = f"smtp {code}: {_clean(message)}{about}"
    if 500 <= code < 600:
        return PermanentDeliveryError(reason)
    # 4xx, and anything unexpected (aiosmtplib uses -1 for a garbled reply): try again.
    return TemporaryDeliveryError(reason)


def _refused(recipients: Sequence[aiosmtplib.SMTPRecipientRefused]) -> DeliveryError:
    """Nobody got the message; retry if any refusal was temporary."""
    if not recipients:
        return TemporaryDeliveryError("smtp: all recipients refused")
    deciding = next((r for r in recipients if 400 <= r.code < 500), recipients[0])
    more = f" and {len(recipients) - 1} more" if len(recipients) > 1 else ""
    return _by_code(deciding.code, deciding.message, f" ({deciding.recipient}{more})")


def _in_chain(exc: BaseException, kind: type[E]) -> E | None:
    """``exc`` or the first error it was raised from that is a ``kind``; aiosmtplib wraps."""
    seen: BaseException | None = exc
    for _ in range(5):  # a couple of levels at most; the bound guards against cycles
        if seen is None or isinstance(seen, kind):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def _errno_name(exc: BaseException) -> str:
    """`` (ECONNREFUSED)`` from the error or the OSError aiosmtplib wrapped, else nothing."""
    code = getattr(exc, "errno", None) or getattr(exc.__cause__, "errno", None)
    return f" ({errno.errorcode.get(code, code)})" if code else ""


def _clean(text: str) -> str:
    """The first line of a server reply, without its enhanced status code, short."""
    line = text.strip().splitlines()[0] if text.strip() else ""
    line = _ENHANCED_CODE.sub("", line).rstrip(".")
    if len(line) > REASON_LIMIT:
        return line[: REASON_LIMIT - 1] + "…"
    return line or "no reply text"


def build(name: str, options: Mapping[str, Any]) -> EmailSender:
    """An :class:`EmailSender` from the ``[channels.NAME]`` table (see the module doc)."""
    def key(k: str) -> str:
        return f"channels.{name}.{k}"

    host = require(options, "host", channel=name)
    if any(c.isspace() for c in host):
        raise ConfigError("must be a host name or address", key=key("host"))
    security = options.get("security", "starttls")
    if security not in DEFAULT_PORTS:
        raise ConfigError("must be one of starttls, tls, none", key=key("security"))
    if security == "none" and not _is_loopback(host):
        raise ConfigError("'none' (no encryption) is allowed only for a loopback host; "
                          "use starttls or tls", key=key("security"))
    username, password = _secret(options, "username", name), _secret(options, "password", name)
    if (username is None) != (password is None):
        missing = "password" if password is None else "username"
        raise ConfigError("username and password go together", key=key(missing))
    sender = _mailbox(require(options, "from", channel=name), key("from"))
    return EmailSender(
        name, host=host, port=_port(options, security, key("port")), security=security,
        sender=sender, recipients=_recipients(options.get("to"), key("to")),
        username=username, password=password,
        timeout=seconds(options, "timeout", DEFAULT_TIMEOUT, channel=name, positive=True),
        tls_context=_tls_context(options.get("ca_file"), key("ca_file")),
        pace=seconds(options, "pace", 0.0, channel=name),
        connections=_connections(options.get("connections", DEFAULT_CONNECTIONS),
                                 key("connections")),
    )


def _connections(value: Any, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 100:
        raise ConfigError("must be a whole number from 1 to 100", key=key)
    return value


def _is_loopback(host: str) -> bool:
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _secret(options: Mapping[str, Any], k: str, name: str) -> Secret | None:
    value = options.get(k)
    if value is None or value == "":
        return None
    if isinstance(value, str):  # the config loader wraps these; a caller may not have
        value = Secret(value)
    if not isinstance(value, Secret) or not value:
        raise ConfigError("must be a non-empty string", key=f"channels.{name}.{k}")
    return value


def _mailbox(value: str, where: str) -> str:
    if "\r" in value or "\n" in value or "@" not in address_of(value):
        raise ConfigError(f"{value!r} is not an email address", key=where)
    return value


def _recipients(value: Any, where: str) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value:
        raise ConfigError("needs an address or a non-empty list of addresses", key=where)
    if not all(isinstance(v, str) for v in value):
        raise ConfigError("must be a list of addresses (strings)", key=where)
    return [_mailbox(v, where) for v in value]


def _port(options: Mapping[str, Any], security: str, where: str) -> int:
    port = options.get("port", DEFAULT_PORTS[security])
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise ConfigError("must be a port number (1-65535)", key=where)
    return port


def _tls_context(ca_file: Any, where: str) -> ssl.SSLContext | None:
    """A verifying context that trusts ``ca_file`` (a private CA), or None for the system CAs."""
    if ca_file is None:
        return None
    if not isinstance(ca_file, str) or not ca_file:
        raise ConfigError("must be the path of a PEM CA bundle", key=where)
    try:
        return ssl.create_default_context(cafile=ca_file)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"cannot load CA bundle {ca_file!r}: {exc}", key=where) from exc
