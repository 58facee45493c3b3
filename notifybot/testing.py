"""Fakes for testing code that uses notifybot, shipped with the package (like httpx.MockTransport).

:class:`FakeSender` is a channel that records what it is given and can be told
to fail, so the outbox and the pipeline can be tested without any network. It
threads and edits like a chat channel: each message gets a handle, replies are
recorded with their context, and a root can be "deleted" to test recovery.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .channels.base import STANDALONE, Receipt, SendContext
from .errors import DeliveryError, PermanentDeliveryError, ThreadGone


@dataclass(frozen=True)
class FakeMessage:
    """One message a FakeSender accepted: its handle, payload and send context."""

    handle: str
    payload: Mapping[str, Any]
    context: SendContext


@dataclass
class FakeSender:
    """Records messages and edits; raises the queued errors first, one per attempt.

    ``sent`` are the payloads in order, ``contexts`` their send contexts and
    ``messages`` both with each handle (``fake-N``, also the receipt's detail);
    ``edits_made`` the ``(handle, payload)`` of each edit. ``replies``/``edits``
    are the declared capabilities; without either, receipts carry no handle. A
    handle in ``deleted`` (see :meth:`delete`) is gone: a reply to it or an edit
    of it raises ThreadGone. Any other handle is taken to exist, such as one sent
    before a restart.
    """

    name: str
    kind: str = "console"
    pace: float = 0.0
    destination: str = ""
    sent: list[Mapping[str, Any]] = field(default_factory=list)
    contexts: list[SendContext] = field(default_factory=list)
    edits_made: list[tuple[str, Mapping[str, Any]]] = field(default_factory=list)
    deleted: set[str] = field(default_factory=set)
    attempts: int = 0
    failures: list[DeliveryError] = field(default_factory=list)
    opened: bool = False
    replies: bool = True
    edits: bool = True
    account: str | None = None
    account_pace: float = 0.0
    messages: list[FakeMessage] = field(default_factory=list)
    edit_attempts: int = 0
    edit_failures: list[DeliveryError] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.destination = self.destination or f"fake:{self.name}"

    def fail_next(self, *errors: DeliveryError) -> None:
        """Make the next send attempts raise these errors, in order."""
        self.failures.extend(errors)

    def fail_next_edit(self, *errors: DeliveryError) -> None:
        """Make the next edit attempts raise these errors, in order."""
        self.edit_failures.extend(errors)

    def delete(self, handle: str) -> None:
        """Delete a message as a person would: replying to it or editing it is ThreadGone."""
        self.deleted.add(handle)

    def current(self, handle: str) -> Mapping[str, Any]:
        """The payload message ``handle`` shows now: its last edit, else as sent."""
        edits = [payload for edited, payload in self.edits_made if edited == handle]
        if edits:
            return edits[-1]
        return next(m.payload for m in self.messages if m.handle == handle)

    def replies_to(self, handle: str) -> list[FakeMessage]:
        """The messages sent as replies to ``handle``, in order."""
        return [m for m in self.messages if m.context.is_reply and m.context.root == handle]

    async def open(self) -> None:
        self.opened = True

    async def close(self) -> None:
        self.opened = False

    async def send(self, payload: Mapping[str, Any], context: SendContext = STANDALONE) -> Receipt:
        self.attempts += 1
        if self.failures:
            raise self.failures.pop(0)
        if context.root is not None and context.root in self.deleted:
            raise ThreadGone("fake: message to be replied not found")
        handle = f"fake-{len(self.sent) + 1}"
        # Three views of one record; lists that grow, so a test may hold on to one.
        self.messages.append(FakeMessage(handle, payload, context))
        self.sent.append(payload)
        self.contexts.append(context)
        return Receipt(handle, handle if self.replies or self.edits else None)

    async def edit(self, handle: str, payload: Mapping[str, Any]) -> None:
        self.edit_attempts += 1
        if not self.edits:
            raise PermanentDeliveryError(f"fake: {self.name} cannot edit")
        if self.edit_failures:
            raise self.edit_failures.pop(0)
        if handle in self.deleted:
            raise ThreadGone("fake: message to edit not found")
        self.edits_made.append((handle, payload))
