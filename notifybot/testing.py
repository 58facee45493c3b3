"""Fakes for testing code that uses notifybot, shipped with the package (like httpx.MockTransport).

:class:`FakeSender` is a channel that records what it is given and can be told
to fail, so the outbox and the pipeline can be tested without any network.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .channels.base import Receipt
from .errors import DeliveryError


@dataclass
class FakeSender:
    """Records payloads; raises the queued errors first, one per attempt."""

    name: str
    kind: str = "console"
    pace: float = 0.0
    destination: str = ""
    sent: list[Mapping[str, Any]] = field(default_factory=list)
    attempts: int = 0
    failures: list[DeliveryError] = field(default_factory=list)
    opened: bool = False

    def __post_init__(self) -> None:
        self.destination = self.destination or f"fake:{self.name}"

    def fail_next(self, *errors: DeliveryError) -> None:
        """Make the next attempts raise these errors, in order."""
        self.failures.extend(errors)

    async def open(self) -> None:
        self.opened = True

    async def close(self) -> None:
        self.opened = False

    async def send(self, payload: Mapping[str, Any]) -> Receipt:
        self.attempts += 1
        if self.failures:
            raise self.failures.pop(0)
        self.sent.append(payload)
        return Receipt(f"fake-{len(self.sent)}")
