"""The console channel: prints each message on one line. Needs no credentials."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any, TextIO

from ..formatting import one_line
from ..safe_text import clean_text
from .base import Receipt, seconds


class ConsoleSender:
    """Writes ``[channel] summary`` to standard output (or the given stream).

    Whatever the payload holds, one line is printed, without terminal escape
    sequences, control characters or bidi overrides: a webhook cannot recolour the
    operator's terminal, ring its bell, retitle it, or reverse the text.
    """

    kind = "console"

    def __init__(self, name: str, stream: TextIO | None = None, pace: float = 0.0) -> None:
        self.name = name
        self.pace = pace
        self.destination = f"console:{name}"
        self._stream = stream

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def send(self, payload: Mapping[str, Any]) -> Receipt:
        stream = self._stream or sys.stdout
        text = one_line(clean_text(str(payload.get("text", ""))))
        print(f"[{self.name}] {text}", file=stream, flush=True)
        return Receipt("printed")


def build(name: str, options: Mapping[str, Any]) -> ConsoleSender:
    return ConsoleSender(name, pace=seconds(options, "pace", 0.0, channel=name))
