"""The console channel: prints each message on one line. Needs no credentials."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any, TextIO

from .base import STANDALONE, Receipt, SendContext, seconds


class ConsoleSender:
    """Writes ``[channel] summary`` to standard output (or the given stream)."""

    kind = "console"
    replies = False  # until threads land in this channel
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

    async def send(self, payload: Mapping[str, Any], context: SendContext = STANDALONE) -> Receipt:
        stream = self._stream or sys.stdout
        print(f"[{self.name}] {payload['text']}", file=stream, flush=True)
        return Receipt("printed")


def build(name: str, options: Mapping[str, Any]) -> ConsoleSender:
    return ConsoleSender(name, pace=seconds(options, "pace", 0.0, channel=name))
