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
from .errors import DeliveryError, ThreadGone


@dataclass
class FakeSender:
    """Records payloads; raises the queued errors first, one per attempt."""

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

    def __post_init__(self) -> None:
        self.destination = self.destination or f"fake:{self.name}"

    def fail_next(self, *errors: DeliveryError) -> None:
        """Make the next attempts raise these errors, in order."""
        self.failures.extend(errors)

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
        self.sent.append(payload)
        self.contexts.append(context)
        handle = f"fake-{len(self.sent)}"
        return Receipt(handle, handle)

    async def edit(self, handle: str, payload: Mapping[str, Any]) -> None:
        if handle in self.deleted:
            raise ThreadGone("fake: message to edit not found")
        self.edits_made.append((handle, payload))
