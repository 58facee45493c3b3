"""Telegram's HTML parse mode, as the stand-in applies it to ``sendMessage`` text.

:func:`parse_html` returns the visible text and the message entities, or raises
:class:`EntityError` with the wording Telegram uses after ``can't parse entities:``.
Rules (https://core.telegram.org/bots/api#html-style): only the supported tags;
every ``<`` and ``&`` that is not markup must be escaped; named entities only
``&lt; &gt; &amp; &quot;``; tags must nest properly.
"""

from __future__ import annotations

import html
from html.parser import HTMLParser
from typing import Any

# tag -> entity type; span needs class="tg-spoiler", blockquote may be expandable.
ENTITY_TYPES = {
    "b": "bold", "strong": "bold", "i": "italic", "em": "italic",
    "u": "underline", "ins": "underline", "s": "strikethrough", "strike": "strikethrough",
    "del": "strikethrough", "span": "spoiler", "tg-spoiler": "spoiler", "a": "text_link",
    "code": "code", "pre": "pre", "blockquote": "blockquote", "tg-emoji": "custom_emoji",
}
NAMED_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}


class EntityError(ValueError):
    """The text is not valid Telegram HTML; ``str()`` is Telegram's description."""


def utf16_len(text: str) -> int:
    """Length in UTF-16 code units, the unit of Telegram's entity offsets."""
    return len(text.encode("utf-16-le")) // 2


def parse_html(text: str) -> tuple[str, list[dict[str, Any]]]:
    """The visible text and its entities; raises :class:`EntityError` on bad markup."""
    parser = _TelegramHTML(text)
    parser.feed(text)
    parser.close()
    if parser.open_tags:
        tag = parser.open_tags[-1][0]
        raise EntityError(f'Can\'t find end tag corresponding to start tag "{tag}"')
    return "".join(parser.plain), parser.entities


class _TelegramHTML(HTMLParser):
    def __init__(self, source: str) -> None:
        # Raw data and separate entity callbacks: that is how stray "<" and "&" show.
        super().__init__(convert_charrefs=False)
        self.source = source
        self.plain: list[str] = []
        self.entities: list[dict[str, Any]] = []
        self.open_tags: list[tuple[str, int, dict[str, Any]]] = []
        self._offset = 0  # UTF-16 units of visible text so far

    def _byte_offset(self) -> int:
        # getpos() is (line, column) of the construct being handled, lines split on "\n".
        line, column = self.getpos()
        chars = sum(len(text) + 1 for text in self.source.split("\n")[: line - 1]) + column
        return len(self.source[:chars].encode())

    def _visible(self, text: str) -> None:
        self.plain.append(text)
        self._offset += utf16_len(text)

    def handle_data(self, data: str) -> None:
        if "<" in data:
            raise EntityError(f"Unsupported start tag \"\" at byte offset {self._byte_offset()}")
        if "&" in data:
            raise EntityError(f"Character '&' is reserved and must be escaped "
                              f"at byte offset {self._byte_offset()}")
        self._visible(data)

    def handle_entityref(self, name: str) -> None:
        if name not in NAMED_ENTITIES:
            raise EntityError(f'Unsupported HTML entity "&{name};" '
                              f"at byte offset {self._byte_offset()}")
        self._visible(NAMED_ENTITIES[name])

    def handle_charref(self, name: str) -> None:
        self._visible(html.unescape(f"&#{name};"))

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        entity = self._entity(tag, dict(attrs))
        self.open_tags.append((tag, self._offset, entity))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.open_tags:
            raise EntityError(f'Unexpected end tag "{tag}" at byte offset {self._byte_offset()}')
        start_tag, start, entity = self.open_tags.pop()
        if start_tag != tag:
            raise EntityError(f'Unmatched end tag at byte offset {self._byte_offset()}, '
                              f'expected "</{start_tag}>", found "</{tag}>"')
        if self._offset > start:
            self.entities.append({**entity, "offset": start, "length": self._offset - start})

    def _entity(self, tag: str, attrs: dict[str, str | None]) -> dict[str, Any]:
        kind = ENTITY_TYPES.get(tag)
        if kind is None or (tag == "span" and attrs.get("class") != "tg-spoiler"):
            raise EntityError(f'Unsupported start tag "{tag}" at byte offset {self._byte_offset()}')
        if tag == "a":
            if not attrs.get("href"):
                raise EntityError(f"Can't find href in tag a at byte offset {self._byte_offset()}")
            return {"type": kind, "url": attrs["href"]}
        if tag == "blockquote" and "expandable" in attrs:
            return {"type": "expandable_blockquote"}
        if tag == "tg-emoji":
            return {"type": kind, "custom_emoji_id": attrs.get("emoji-id") or ""}
        return {"type": kind}

    def handle_comment(self, data: str) -> None:
        raise EntityError(f"Unsupported start tag \"!--\" at byte offset {self._byte_offset()}")

    def handle_decl(self, decl: str) -> None:
        raise EntityError(f"Unsupported start tag \"!\" at byte offset {self._byte_offset()}")

    def unknown_decl(self, data: str) -> None:
        self.handle_decl(data)

    def handle_pi(self, data: str) -> None:
        raise EntityError(f"Unsupported start tag \"?\" at byte offset {self._byte_offset()}")
