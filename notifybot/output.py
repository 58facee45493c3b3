"""How commands print: aligned tables, colour only on a terminal, progress for long runs."""

from __future__ import annotations

import os
import sys
from typing import TextIO

_COLOURS = {"sent": "32", "pending": "33", "sending": "36", "dead": "31"}  # ANSI SGR codes
CELL_LIMIT = 60


def use_colour(stream: TextIO) -> bool:
    """Colour only for a person at a terminal, and never when NO_COLOR is set."""
    return stream.isatty() and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb"


def paint(text: str, status: str, enabled: bool) -> str:
    code = _COLOURS.get(status)
    return f"\033[{code}m{text}\033[0m" if enabled and code else text


def table(header: list[str], rows: list[list[str]], *, empty: str, status_column: int | None = None,
          stream: TextIO | None = None) -> str:
    """Columns aligned on their widest cell; long cells cut with ``…``; one column may be coloured."""
    if not rows:
        return empty
    colour = use_colour(stream or sys.stdout)
    cells = [header, *[[c if len(c) <= CELL_LIMIT else c[: CELL_LIMIT - 1] + "…" for c in row]
                       for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = []
    for n, row in enumerate(cells):
        padded = [c.ljust(w) for c, w in zip(row, widths, strict=True)]
        if n and status_column is not None:
            cell = row[status_column]
            padded[status_column] = paint(cell, cell, colour) + " " * (widths[status_column] - len(cell))
        lines.append("  ".join(padded).rstrip())
    return "\n".join(lines)


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
