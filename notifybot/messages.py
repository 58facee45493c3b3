"""A rendered notification, before any channel's markup: plain text in named parts.

Templates decide the words; :mod:`notifybot.formatting` decides, per channel
kind, how those words look, how they are escaped and how they are shortened.
"""

from __future__ import annotations

from dataclasses import dataclass

NAME = "name"        # a headline part that may be shortened (a job or contact name)
KEY = "key"          # a headline part that is never cut (a status move, an amount)
CHANGED = "changed"  # the headline's list of changed fields; ``detail`` holds their values


@dataclass(frozen=True)
class Part:
    """One piece of the summary line and how it may be shortened to fit a limit."""

    text: str
    role: str = ""  # "", NAME, KEY or CHANGED
    detail: str = ""  # CHANGED only: the same changes with their values (``Qty 4 → 2``)


@dataclass(frozen=True)
class Fact:
    """One ``Label: value`` detail line (client, dates, venue...)."""

    label: str
    value: str


@dataclass(frozen=True)
class ChangeRow:
    """What changed, in words: field label, before and after (status codes already labelled).

    An empty ``before`` means the old value is not known (only the new one is shown).
    """

    field: str
    before: str
    after: str


@dataclass(frozen=True)
class Message:
    """A notification in plain text. Nothing here is escaped yet.

    ``summary`` is the one line a person acts on; ``headline`` is the same line in
    parts (empty for a message built by hand), so that a channel with a short limit
    shortens a name rather than cutting away a status. ``changes`` holds every
    change, the status first; each channel shows as many as it can and says how
    many more there are. ``actor`` and ``when`` say who did it and when (local time).
    """

    summary: str
    facts: tuple[Fact, ...] = ()
    notes: tuple[str, ...] = ()
    changes: tuple[ChangeRow, ...] = ()
    link: str | None = None
    link_label: str = ""
    headline: tuple[Part, ...] = ()
    actor: str = ""
    when: str = ""

    @property
    def parts(self) -> tuple[Part, ...]:
        """The headline, or the summary as one part when the message has none."""
        return self.headline or (Part(self.summary),)
