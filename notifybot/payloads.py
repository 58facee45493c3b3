"""What each channel kind sends: one TypedDict per kind, as :mod:`.formatting` builds them.

A delivery stores its payload as JSON; these types say which keys a sender may
rely on. Escaping and length limits are already applied when a payload exists.
"""

from __future__ import annotations

from typing import Any, NotRequired, TypedDict


class ConsolePayload(TypedDict):
    text: str  # one line


class SlackPayload(TypedDict):
    text: str  # the fallback text (notifications, screen readers)
    blocks: list[dict[str, Any]]


class TelegramPayload(TypedDict):
    text: str  # HTML, at most 4096 visible characters
    parse_mode: str


class EmailPayload(TypedDict):
    subject: str  # one line, at most 200 characters
    text: str
    html: str
    cc: NotRequired[list[str]]  # people mentioned, added to Cc


Payload = ConsolePayload | SlackPayload | TelegramPayload | EmailPayload
