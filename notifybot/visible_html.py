"""Telegram HTML measured and cut by what the reader sees, not by its markup.

Telegram's 4096-character limit counts the text after parsing. :mod:`.formatting`
keeps a message within it; text added afterwards (a fallback notice, mentions)
uses these two functions to make room without breaking a tag or an entity.
"""

from __future__ import annotations

import html
from html.parser import HTMLParser

ELLIPSIS = "…"


def visible_length(markup: str) -> int:
    """How many characters ``markup`` shows once its tags are parsed and entities decoded."""
    parser = _Cutter(limit=None)
    parser.feed(markup)
    parser.close()
    return parser.seen


def cut_visible(markup: str, limit: int) -> str:
    """``markup`` showing at most ``limit`` characters, the last one ``…`` when cut.

    Tags left open by the cut are closed, so the result is still valid markup.
    """
    if visible_length(markup) <= limit:
        return markup
    parser = _Cutter(limit=max(0, limit - 1))
    parser.feed(markup)
    parser.close()
    return parser.result() + ELLIPSIS + parser.closing()


class _Cutter(HTMLParser):
    """Copies markup until ``limit`` visible characters; counts them all without a limit."""

    def __init__(self, limit: int | None) -> None:
        super().__init__(convert_charrefs=True)
        self.limit = limit
        self.seen = 0
        self.out: list[str] = []
        self.open: list[str] = []
        self.full = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if not self.full:
            self.out.append(self.get_starttag_text() or f"<{tag}>")
            self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.full:
            self.out.append(f"</{tag}>")
            if tag in self.open:
                del self.open[len(self.open) - 1 - self.open[::-1].index(tag)]

    def handle_data(self, data: str) -> None:
        self.seen += len(data)
        if self.full or self.limit is None:
            return
        room = self.limit - (self.seen - len(data))
        if len(data) >= room:
            data = data[:room]
            self.full = True
        self.out.append(html.escape(data, quote=False))

    def result(self) -> str:
        return "".join(self.out)

    def closing(self) -> str:
        return "".join(f"</{tag}>" for tag in reversed(self.open))
