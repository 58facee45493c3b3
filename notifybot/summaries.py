"""One message for many events: a folded burst of one job, or a digest of a window. Pure.

Each event is first rendered on its own (its template, as always); these
functions combine the rendered messages into one :class:`~notifybot.messages.Message`,
which :data:`notifybot.formatting.FORMATTERS` then formats for the channel kind.

* :func:`fold`: the updates of one job that came within ``group_wait``: the
  latest status in the summary, then every change, newest first.
* :func:`digest`: what a digest window gathered: ``5 invoices paid since 16:30``,
  one line per event with its link, grouped by what happened.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from .events import Event
from .matching import Digest
from .messages import ChangeRow, Fact, Message
from .schedule import digest_window

STATUS_FIELD = "Status"  # the change row the renderer makes of a STATUS change
DIGEST_LINES = 40  # lines listed in one digest; the rest are counted


@dataclass(frozen=True)
class Rendered:
    """One event and the message its template made of it."""

    event: Event
    message: Message


def fold(items: Sequence[Rendered]) -> Message:
    """The burst as one message: the latest status first, then every change, newest first."""
    if not items:
        raise ValueError("nothing to fold")
    if len(items) == 1:
        return items[0].message
    newest_first = list(reversed(items))
    headline = next((i.message for i in newest_first if _status(i.message) is not None),
                    newest_first[0].message)
    changes: list[ChangeRow] = []
    for item in newest_first:
        changes += [c for c in item.message.changes if c not in changes]
    # The status leads the list (the latest move first), then the rest, newest first.
    changes.sort(key=lambda c: c.field != STATUS_FIELD)
    latest = newest_first[0].message
    fields = ", ".join(dict.fromkeys(c.field for c in changes))  # named even on the console
    return Message(
        summary=f"{headline.summary} ({len(items)} updates{': ' + fields if fields else ''})",
        facts=_merged_facts([i.message for i in newest_first]),
        notes=tuple(dict.fromkeys(n for i in newest_first for n in i.message.notes)),
        changes=tuple(changes),
        link=latest.link,
        link_label=latest.link_label,
    )


def digest(items: Sequence[Rendered], start: float, end: float, tz: ZoneInfo) -> Message:
    """A window's events in one message: ``5 invoices paid since 16:30``, then a line each."""
    if not items:
        raise ValueError("an empty window sends nothing")
    groups: dict[tuple[str, str], list[Rendered]] = {}
    for item in items:
        groups.setdefault(_group(item), []).append(item)
    ordered = sorted(groups.items(), key=lambda kv: -len(kv[1]))  # stable: first seen first
    titles = [_title(key, len(members)) for key, members in ordered]
    since = _since(start, end, tz)
    if len(ordered) == 1:
        summary = f"{titles[0]} since {since}"
    else:
        summary = f"{len(items)} updates since {since}: {', '.join(titles)}"
    notes: list[str] = []
    listed = 0
    for title, (_, members) in zip(titles, ordered, strict=True):
        if len(ordered) > 1:
            notes.append(f"{title}:")
        for item in members:
            if listed == DIGEST_LINES:
                break
            notes.append(_line(item.message))
            listed += 1
    if listed < len(items):
        notes.append(f"… and {len(items) - listed} more")
    links = {item.message.link for item in items}
    link = links.pop() if len(links) == 1 else None
    label = items[0].message.link_label if link else ""
    return Message(summary=summary, notes=tuple(notes), link=link, link_label=label)


def _status(message: Message) -> str | None:
    """The status a message moves to, as labelled by the renderer."""
    return next((c.after for c in message.changes if c.field == STATUS_FIELD and c.after), None)


def _merged_facts(newest_first: Sequence[Message]) -> tuple[Fact, ...]:
    """Each label once, with its newest value, in the order the newest message gives them."""
    facts: dict[str, Fact] = {}
    for message in newest_first:
        for fact in message.facts:
            facts.setdefault(fact.label, fact)
    return tuple(facts.values())


def _group(item: Rendered) -> tuple[str, str]:
    """What kind of thing happened: (entity, what), e.g. ("invoice", "paid")."""
    name = item.event.name
    entity = name.split(".", 1)[0] if name.startswith(("job.", "invoice.")) else name
    status = _status(item.message)
    if status is not None:
        return entity, status.lower()
    if name.endswith(".created"):
        return entity, "new"
    if name.endswith(".updated"):
        return entity, "updated"
    return entity, ""


def _title(key: tuple[str, str], count: int) -> str:
    entity, what = key
    if entity not in ("job", "invoice"):
        return f"{count} × {entity}"
    noun = entity if count == 1 else f"{entity}s"
    if what == "new":
        return f"{count} new {noun}"
    return f"{count} {noun} {what}".rstrip()


def _line(message: Message) -> str:
    return f"• {message.summary}" + (f" — {message.link}" if message.link else "")


def _since(start: float, end: float, tz: ZoneInfo) -> str:
    """``16:30`` for a window within a day, ``Mon 30 Nov, 17:30`` for a longer one."""
    begins = datetime.fromtimestamp(start, tz)
    return f"{begins:%H:%M}" if end - start <= 86400 else f"{begins:%a %d %b, %H:%M}"


def gathered(gather: str, items: Sequence[Rendered], digest_of: Digest | None,
             tz: ZoneInfo) -> Message:
    """The message of a gathering delivery, from its gather key and its events in order.

    ``digest:{channel}:{subscription}:{window start}`` makes a digest of that window
    (its end read from the subscription's ``digest``); any other key (``fold:…``) a fold.
    """
    kind, _, rest = gather.partition(":")
    if kind != "digest":
        return fold(items)
    start = float(rest.rpartition(":")[2])
    end = digest_window(digest_of, start, tz)[1] if digest_of is not None else start + 86400
    return digest(items, start, end, tz)
