"""A real SMTP server on loopback (aiosmtpd) for testing the email channel.

It speaks STARTTLS, implicit TLS or plain SMTP, checks AUTH PLAIN/LOGIN against a
table of users, records every accepted message parsed with ``email.policy.default``,
and injects faults: refused recipients (550 / 451), the next N ``DATA`` answered
with an error code or a dropped connection, and a slow ``DATA`` reply.

It runs on the *current* event loop (``loop.create_server`` on port 0), because
aiosmtpd's ``Controller`` cannot use port 0 and runs a second loop in a thread::

    cert = make_certificate(tmp_path)
    async with SMTPStandIn(certificate=cert, users={"bot": "s3cret"}) as smtp:
        ...  # connect to smtp.host, smtp.port; trust cert.ca_file
        [received] = await smtp.wait_for(1)
"""

from __future__ import annotations

import asyncio
import email.policy
import ssl
import subprocess
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any, Literal

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

Security = Literal["starttls", "tls", "none"]


@dataclass(frozen=True)
class Certificate:
    """A self-signed certificate for ``localhost`` and ``127.0.0.1``; it is its own CA."""

    cert_file: Path
    key_file: Path

    @property
    def ca_file(self) -> Path:
        """What a client must trust: the certificate itself."""
        return self.cert_file

    def server_context(self) -> ssl.SSLContext:
        """A server-side TLS context presenting this certificate."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert_file, self.key_file)
        return context


def make_certificate(directory: Path) -> Certificate:
    """Write a fresh self-signed certificate and key into ``directory`` with ``openssl``."""
    cert, key = directory / "smtp-cert.pem", directory / "smtp-key.pem"
    # An EC key is generated in milliseconds, where RSA 2048 takes a noticeable while.
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True, capture_output=True,
    )
    return Certificate(cert, key)


@dataclass(frozen=True)
class Received:
    """One accepted message: the envelope, the parsed message, and how it arrived."""

    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    username: str | None  # who authenticated, None without AUTH
    tls: bool  # whether the connection was encrypted when DATA was sent

    @property
    def headers(self) -> list[tuple[str, str]]:
        """Every header as received, in order (repeated names repeat)."""
        return [(name, str(value)) for name, value in self.message.items()]

    @property
    def thread_root(self) -> str:
        """The Message-ID a mail client threads this under: the first of ``References``,
        else ``In-Reply-To``, else its own."""
        references = str(self.message.get("References") or "").split()
        return (references[0] if references else None) \
            or str(self.message.get("In-Reply-To") or "") or str(self.message["Message-ID"])


@dataclass(frozen=True)
class _Fault:
    code: int = 0  # 0 = drop the connection instead of answering
    text: str = ""


@dataclass
class _Handler:
    """aiosmtpd handler hooks; all state lives on the stand-in."""

    standin: SMTPStandIn
    faults: deque[_Fault] = field(default_factory=deque)

    async def handle_MAIL(self, server: SMTP, session: Session, envelope: Envelope,
                          address: str, mail_options: list[str]) -> str:
        # Enforced here rather than by aiosmtpd's auth_required, which also hides AUTH
        # on implicit TLS (it only counts STARTTLS as encryption) and warns about it.
        if self.standin.auth_required and not session.authenticated:
            return "530 5.7.0 Authentication required"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope,
                          address: str, rcpt_options: list[str]) -> str:
        refusal = self.standin.refusals.get(address.lower())
        if refusal is not None:
            return refusal
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.standin.in_data += 1
        self.standin.most_in_data = max(self.standin.most_in_data, self.standin.in_data)
        try:
            return await self._data(server, session, envelope)
        finally:
            self.standin.in_data -= 1

    async def _data(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.standin.delay:
            await asyncio.sleep(self.standin.delay)  # the server being slow, not a test waiting
        if self.faults:
            fault = self.faults.popleft()
            if not fault.code:
                assert server.transport is not None
                server.transport.close()
                return "421 4.4.2 connection dropped"  # never reaches the client
            return f"{fault.code} {fault.text}"
        assert isinstance(envelope.content, bytes)
        parsed = BytesParser(policy=email.policy.default).parsebytes(envelope.content)
        assert isinstance(parsed, EmailMessage)
        transport = server.transport
        tls = session.ssl is not None or (
            transport is not None and transport.get_extra_info("ssl_object") is not None)
        login = session.auth_data.login.decode() if session.auth_data else None
        await self.standin.record(Received(envelope.mail_from or "", list(envelope.rcpt_tos),
                                           parsed, login, tls))
        return f"250 2.0.0 Ok: queued as {len(self.standin.messages)}"


class SMTPStandIn:
    """An SMTP server on ``127.0.0.1`` and a free port, for one test (or one integration run).

    ``security`` is how clients must connect: ``"starttls"`` (plain, then STARTTLS,
    required before MAIL when ``require_starttls``), ``"tls"`` (TLS from the first
    byte) or ``"none"`` (plain; STARTTLS is not even offered). ``users`` maps user
    names to passwords; AUTH is required whenever there are users.
    """

    host = "127.0.0.1"

    def __init__(self, *, security: Security = "starttls", certificate: Certificate | None = None,
                 users: Mapping[str, str] | None = None, require_starttls: bool = True,
                 hostname: str = "mx.test") -> None:
        if security != "none" and certificate is None:
            raise ValueError(f"security={security!r} needs a certificate")
        self.security = security
        self.certificate = certificate
        self.users = dict(users or {})
        self.auth_required = bool(self.users)
        self.require_starttls = require_starttls
        self.hostname = hostname
        self.port = 0
        self.messages: list[Received] = []
        self.logins: list[str] = []  # user names that authenticated successfully
        self.failed_logins = 0
        self.refusals: dict[str, str] = {}
        self.delay = 0.0  # seconds before answering DATA
        self.in_data = 0  # DATA commands being answered now
        self.most_in_data = 0  # ...and the most at once so far
        self._handler = _Handler(self)
        self._arrived = asyncio.Condition()
        self._server: asyncio.Server | None = None
        self._sessions: list[SMTP] = []

    @property
    def url(self) -> str:
        """``smtp://127.0.0.1:PORT`` (``smtps://`` for implicit TLS), for logs and messages."""
        return f"{'smtps' if self.security == 'tls' else 'smtp'}://{self.host}:{self.port}"

    async def start(self) -> str:
        """Listen on a free port of 127.0.0.1; returns :attr:`url`."""
        loop = asyncio.get_running_loop()
        context = self.certificate.server_context() if self.certificate else None
        self._server = await loop.create_server(
            lambda: self._protocol(loop, context), host=self.host, port=0,
            ssl=context if self.security == "tls" else None)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.url

    async def stop(self) -> None:
        """Stop listening and drop open connections."""
        if self._server is not None:
            self._server.close()
            # Python 3.11's Server has no close_clients(): close the sessions ourselves,
            # or their transports are left for the garbage collector to complain about.
            for session in self._sessions:
                if session.transport is not None:
                    session.transport.close()
            await self._server.wait_closed()
            self._server = None
            self._sessions.clear()

    async def __aenter__(self) -> SMTPStandIn:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    def refuse(self, address: str, code: int = 550,
               text: str = "5.1.1 mailbox unavailable") -> None:
        """Answer ``RCPT TO:<address>`` with ``code text`` (550, or 451 for a temporary refusal)."""
        self.refusals[address.lower()] = f"{code} {text}"

    def fail_next(self, count: int = 1, code: int = 451,
                  text: str = "4.3.0 Try again later") -> None:
        """Answer the next ``count`` DATA commands with ``code text`` instead of accepting."""
        self._handler.faults.extend(_Fault(code, text) for _ in range(count))

    def drop_next(self, count: int = 1) -> None:
        """Close the connection instead of answering the next ``count`` DATA commands."""
        self._handler.faults.extend(_Fault() for _ in range(count))

    async def wait_for(self, count: int, within: float = 5.0) -> list[Received]:
        """The first ``count`` messages once they have arrived; TimeoutError after ``within`` s."""
        async with asyncio.timeout(within), self._arrived:
            await self._arrived.wait_for(lambda: len(self.messages) >= count)
        return self.messages[:count]

    def threads(self) -> dict[str, list[Received]]:
        """The messages grouped as a mail client threads them, by root Message-ID."""
        grouped: dict[str, list[Received]] = {}
        for received in self.messages:
            grouped.setdefault(received.thread_root, []).append(received)
        return grouped

    async def record(self, received: Received) -> None:
        """Store an accepted message and wake :meth:`wait_for` (called by the handler)."""
        async with self._arrived:
            self.messages.append(received)
            self._arrived.notify_all()

    def _protocol(self, loop: asyncio.AbstractEventLoop, context: ssl.SSLContext | None) -> SMTP:
        starttls = self.security == "starttls"
        session = SMTP(
            self._handler, hostname=self.hostname, loop=loop,
            tls_context=context if starttls else None,
            require_starttls=starttls and self.require_starttls,
            # Only STARTTLS counts as TLS for aiosmtpd: on implicit TLS it would hide AUTH.
            auth_require_tls=starttls, authenticator=self._authenticate)
        self._sessions.append(session)
        return session

    def _authenticate(self, server: SMTP, session: Session, envelope: Envelope,
                      mechanism: str, auth_data: Any) -> AuthResult:
        if isinstance(auth_data, LoginPassword):
            login, password = auth_data.login.decode(), auth_data.password.decode()
            if login in self.users and self.users[login] == password:
                self.logins.append(login)
                return AuthResult(success=True, auth_data=auth_data)
        self.failed_logins += 1
        # handled=False makes aiosmtpd answer 535; the default (True) sends nothing
        # and the client hangs until its timeout.
        return AuthResult(success=False, handled=False)
