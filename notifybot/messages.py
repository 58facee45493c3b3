"""A rendered notification, before any channel's markup: plain text in named parts.

Templates decide the words; :mod:`notifybot.formatting` decides, per channel
kind, how those words look and how they are escaped.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Fact:
    """One ``Label: value`` detail line (client, dates, venue...)."""

    label: str
    value: str


@dataclass(frozen=True)
class ChangeRow:
    """What changed, in words: field label, before and after (status codes already labelled)."""

    field: str
    before: str
    after: str


@dataclass(frozen=True)
class Message:
    """A notification in plain text. Nothing here is escaped yet."""

    summary: str
    facts: tuple[Fact, ...] = ()
    notes: tuple[str, ...] = ()
    changes: tuple[ChangeRow, ...] = ()
    link: str | None = None
    link_label: str = ""
