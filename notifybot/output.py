"""How commands print: aligned tables, colour only on a terminal, progress for long runs.

Text that came from a webhook or a destination (event names, errors, rendered
messages) is shown through :func:`printable`, so it cannot move the cursor,
clear the screen or reverse the order of what follows on an operator's terminal.
"""

from __future__ import annotations

import os
import re
import sys
import unicodedata
from collections.abc import Iterable
from typing import Any, TextIO

from .conditions import Condition

_COLOURS = {"sent": "32", "pending": "33", "sending": "36", "dead": "31"}  # ANSI SGR codes
CELL_LIMIT = 60


def use_colour(stream: TextIO) -> bool:
    """Colour only for a person at a terminal, and never when NO_COLOR is set."""
    return stream.isatty() and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb"


def paint(text: str, status: str, enabled: bool) -> str:
    code = _COLOURS.get(status)
    return f"\033[{code}m{text}\033[0m" if enabled and code else text


# Bidirectional overrides, embeddings, isolates and marks: they reorder what a terminal shows.
_BIDI = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def printable(text: str) -> str:
    """``text`` with control and bidi characters shown as escapes (``\\x1b``, ``\\u202e``)."""
    if text.isprintable() and not _BIDI.intersection(text):
        return text  # the common case, at no cost
    return "".join(_escape(c) if c in _BIDI or unicodedata.category(c) == "Cc" else c
                   for c in text)


def _escape(char: str) -> str:
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def table(header: list[str], rows: list[list[str]], *, empty: str, status_column: int | None = None,
          stream: TextIO | None = None) -> str:
    """Columns aligned on their widest cell; long cells cut with ``…``; one column may be coloured."""
    if not rows:
        return empty
    colour = use_colour(stream or sys.stdout)
    cells = [header, *[[_cell(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = []
    for n, row in enumerate(cells):
        padded = [c.ljust(w) for c, w in zip(row, widths, strict=True)]
        if n and status_column is not None:
            cell = row[status_column]
            padded[status_column] = paint(cell, cell, colour) + " " * (widths[status_column] - len(cell))
        lines.append("  ".join(padded).rstrip())
    return "\n".join(lines)


def _cell(text: str) -> str:
    text = printable(text)
    return text if len(text) <= CELL_LIMIT else text[: CELL_LIMIT - 1] + "…"


_SYMBOLS = {"eq": "=", "ne": "≠", "gt": ">", "gte": "≥", "lt": "<", "lte": "≤", "in": "in",
            "not_in": "not in"}
_BARE = re.compile(r"^[\w.@+\-:/]+$")


def condition_text(condition: Condition) -> str:
    """A condition as a person writes it: ``changes.STATUS.to in Booked, Dispatched``."""
    path, op, value = condition.path, condition.op, condition.value
    if op in ("exists", "changed"):
        return f"{path} {op if value else 'not ' + op}"
    if op == "matches":
        return f"{path} matches /{getattr(value, 'pattern', value)}/"
    shown = value_text(list(value)) if isinstance(value, tuple | list) else value_text(value)
    return f"{path} {_SYMBOLS.get(op, op)} {shown}"


def conditions_text(conditions: Iterable[Condition], joiner: str) -> str:
    """Several conditions joined with ``and`` (``when``) or ``or`` (``unless``)."""
    return f" {joiner} ".join(condition_text(c) for c in conditions)


def value_text(value: Any) -> str:
    """A value without Python's quoting: ``Booked``, ``2``, ``"Sam Taylor"``, ``A, B``."""
    if isinstance(value, list):
        return ", ".join(value_text(v) for v in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    text = str(value)
    return text if _BARE.match(text) else '"' + text.replace('"', '\\"') + '"'


class Progress:
    """``done/total`` rewritten in place on a terminal; silent otherwise (logs stay clean)."""

    def __init__(self, total: int, label: str, stream: TextIO | None = None) -> None:
        self.total, self.label = total, label
        self.stream = stream or sys.stderr
        self.live = self.stream.isatty() and total > 1

    def update(self, done: int) -> None:
        if self.live:
            self.stream.write(f"\r{self.label}: {done}/{self.total}")
            self.stream.flush()

    def finish(self) -> None:
        if self.live:
            self.stream.write("\n")
