"""The console channel: prints each message on one line. Needs no credentials."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any, TextIO

from ..errors import PermanentDeliveryError
from .base import STANDALONE, Receipt, SendContext, seconds

# Marks a message that belongs to a thread, so a person reading the log sees the thread.
REPLY_MARK = "↳ "


class ConsoleSender:
    """Writes ``[channel] summary`` to standard output (or the given stream).

    A terminal has no threads and cannot rewrite a line: ``replies`` and ``edits``
    are False, and a receipt has no handle.
    """

    kind = "console"
    replies = False
    edits = False
    account: str | None = None
    account_pace = 0.0

    def __init__(self, name: str, stream: TextIO | None = None, pace: float = 0.0) -> None:
        self.name = name
        self.pace = pace
        self.destination = f"console:{name}"
        self._stream = stream

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def send(self, payload: Mapping[str, Any],
                   context: SendContext = STANDALONE) -> Receipt:
        """Print the line; one that continues a thread starts with ``↳``."""
        stream = self._stream or sys.stdout
        mark = REPLY_MARK if context.is_reply else ""
        print(f"[{self.name}] {mark}{payload['text']}", file=stream, flush=True)
        return Receipt("printed")

    async def edit(self, handle: str, payload: Mapping[str, Any]) -> None:
        """A printed line cannot change (``edits`` is False): never called."""
        raise PermanentDeliveryError("console: a printed line cannot be edited")


def build(name: str, options: Mapping[str, Any]) -> ConsoleSender:
    return ConsoleSender(name, pace=seconds(options, "pace", 0.0, channel=name))
