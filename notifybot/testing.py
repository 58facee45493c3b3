"""Fakes for testing code that uses notifybot, shipped with the package (like httpx.MockTransport).

:class:`FakeSender` is a channel that records what it is given and can be told
to fail, so the outbox and the pipeline can be tested without any network. It
follows the :class:`~notifybot.channels.base.Sender` protocol, threads included:
each message gets a handle, a reply or an edit whose root was :meth:`deleted
<FakeSender.delete>` raises :class:`~notifybot.errors.ThreadGone`.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .channels.base import STANDALONE, Receipt, SendContext
from .errors import DeliveryError, PermanentDeliveryError, ThreadGone

# Handles are unique across FakeSender instances, so that a sender built anew (a
# restart) never hands out the handle of a message an earlier one sent.
_HANDLES = itertools.count(1)


@dataclass(frozen=True)
class FakeMessage:
    """One message a FakeSender accepted: its handle, payload and send context."""

    handle: str
    payload: Mapping[str, Any]
    context: SendContext


class _NoAccount:
    """No account limit by default; a subclass may set both as class attributes.

    Kept off the dataclass's fields so such class attributes are not shadowed.
    """

    account: str | None = None
    account_pace: float = 0.0


@dataclass
class FakeSender(_NoAccount):
    """Records messages and edits; raises the queued errors first, one per attempt.

    ``sent`` are the payloads in order, ``contexts`` their send contexts, and
    ``messages`` both with each handle;
    ``edited`` the ``(handle, payload)`` of each edit. ``replies``/``edits`` are
    the declared capabilities; without either, receipts carry no handle. The
    receipt's detail is ``fake-N`` (N counts this sender's messages); the handle
    is unique in the process. Only a handle passed to :meth:`delete` is gone: a
    handle this instance never made is taken to exist (sent before a restart).
    """

    name: str
    kind: str = "console"
    pace: float = 0.0
    destination: str = ""
    replies: bool = True
    edits: bool = True
    sent: list[Mapping[str, Any]] = field(default_factory=list)
    contexts: list[SendContext] = field(default_factory=list)
    messages: list[FakeMessage] = field(default_factory=list)
    edited: list[tuple[str, Mapping[str, Any]]] = field(default_factory=list)
    deleted: set[str] = field(default_factory=set)
    attempts: int = 0
    edit_attempts: int = 0
    failures: list[DeliveryError] = field(default_factory=list)
    edit_failures: list[DeliveryError] = field(default_factory=list)
    opened: bool = False

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
        edits = [payload for edited, payload in self.edited if edited == handle]
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

    async def send(self, payload: Mapping[str, Any],
                   context: SendContext = STANDALONE) -> Receipt:
        self.attempts += 1
        if self.failures:
            raise self.failures.pop(0)
        if context.is_reply and self.replies and context.root in self.deleted:
            raise ThreadGone(f"fake: thread root {context.root} is gone")
        handle = f"fake:{self.name}:{next(_HANDLES)}"
        # Three views of one record; lists that grow, so a test may hold on to one.
        self.messages.append(FakeMessage(handle, payload, context))
        self.sent.append(payload)
        self.contexts.append(context)
        return Receipt(f"fake-{len(self.messages)}",
                       handle if self.replies or self.edits else None)

    async def edit(self, handle: str, payload: Mapping[str, Any]) -> None:
        self.edit_attempts += 1
        if not self.edits:
            raise PermanentDeliveryError(f"fake: {self.name} cannot edit")
        if self.edit_failures:
            raise self.edit_failures.pop(0)
        if handle in self.deleted:
            raise ThreadGone(f"fake: message {handle} to edit is gone")
        self.edited.append((handle, payload))
