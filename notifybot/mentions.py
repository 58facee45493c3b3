"""Who a subscription mentions, and how each channel kind mentions them. Pure.

``mention = ["manager", "sam"]`` on a subscription names the job's MANAGER and
MANAGER2 (matched against ``[people.KEY] names``) and the people keys given.
:func:`mentions_for` resolves that list for one event; :func:`add_mentions`
adds the result to a payload :mod:`.formatting` made: Slack ``<@U…>``,
Telegram ``@username``, email ``cc``, the console plain names.

Only configuration can make a mention: user ids, usernames and addresses come
from ``[people]``. A manager HireHop names who has no ``[people]`` entry is
written in plain text, escaped like any payload text, so a MANAGER of
``<!channel>`` stays text.
"""

from __future__ import annotations

import html
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .config import MANAGER, Person
from .events import Event
from .formatting import (
    SLACK_TEXT_LIMIT,
    SUMMARY_LIMIT,
    TELEGRAM_LIMIT,
    cut_escaped,
    mrkdwn_escape,
    one_line,
    truncate,
)
from .visible_html import cut_visible, visible_length

MANAGER_FIELDS = ("MANAGER", "MANAGER2")
LABEL = "cc"  # how every kind introduces the people mentioned
NAME_LIMIT = 100  # a plain name from the event is cut to this


@dataclass(frozen=True)
class Mention:
    """One person to mention: a ``[people]`` entry, or only a name HireHop gave (``person`` None)."""

    name: str
    person: Person | None = None


def name_key(name: str) -> str:
    """How names are compared: case-insensitive, runs of whitespace folded to one space."""
    return " ".join(name.split()).casefold()


def mentions_for(event: Event, mention: Sequence[str],
                 people: Mapping[str, Person]) -> tuple[Mention, ...]:
    """The people ``mention`` names for ``event``, in the order given, each once.

    ``manager`` stands for the event's ``data.MANAGER`` and ``data.MANAGER2``;
    other entries are ``[people]`` keys (the configuration checked they exist).
    """
    by_name = {name_key(n): p for p in people.values() for n in p.names}
    found: dict[str, Mention] = {}
    for entry in mention:
        if entry == MANAGER:
            for name in managers(event):
                person = by_name.get(name_key(name))
                if person is not None:
                    found.setdefault(f"person:{person.key}", Mention(display_name(person), person))
                else:
                    found.setdefault(f"name:{name_key(name)}", Mention(name))
        elif entry in people:
            person = people[entry]
            found.setdefault(f"person:{person.key}", Mention(display_name(person), person))
    return tuple(found.values())


def managers(event: Event) -> list[str]:
    """The job's managers as HireHop names them (MANAGER, then MANAGER2), blanks left out."""
    names = []
    for field in MANAGER_FIELDS:
        value = event.data.get(field)
        if isinstance(value, str) and value.strip():
            names.append(truncate(one_line(_printable(value)), NAME_LIMIT))
    return [name for name in names if name]


def _printable(text: str) -> str:
    # Control and format characters (escape sequences, bidi overrides) never reach a
    # message or a terminal; line breaks become spaces first.
    return "".join(" " if ch in "\n\r\t" else ch for ch in text
                   if ch in "\n\r\t" or unicodedata.category(ch)[0] != "C")


def display_name(person: Person) -> str:
    """A person's name for plain text: the first of their ``names``, else their key."""
    return person.names[0] if person.names else person.key


def describe_mentions(mention: Sequence[str], mentions: Sequence[Mention]) -> list[str]:
    """What ``mention`` came to for one event, in words (for ``preview``)."""
    if not mention:
        return []
    if not mentions:
        return [f"mentions nobody: {', '.join(mention)} named no one for this event"]
    parts = [f"{m.name} ([people.{m.person.key}])" if m.person
             else f"{m.name} (no [people] entry: named in plain text)" for m in mentions]
    return ["mentions " + ", ".join(parts)]


def add_mentions(kind: str, payload: Mapping[str, Any],
                 mentions: Sequence[Mention]) -> dict[str, Any]:
    """``payload`` (as :mod:`.formatting` made it for ``kind``) with ``mentions`` added.

    A new dict; ``payload`` is left as it was. No mentions: an unchanged copy.
    """
    result = dict(payload)
    if not mentions:
        return result
    add = _ADDERS.get(kind)
    return add(result, mentions) if add is not None else result


def slack_line(mentions: Sequence[Mention]) -> str:
    """``cc <@U…>, Jo Reid``: mrkdwn, user ids from config, names escaped."""
    parts = [f"<@{m.person.slack}>" if m.person and m.person.slack else mrkdwn_escape(m.name)
             for m in mentions]
    return f"{LABEL} " + ", ".join(parts)


def telegram_line(mentions: Sequence[Mention]) -> str:
    """``cc @sam_t, Jo Reid``: Telegram HTML, usernames from config, names escaped."""
    parts = [f"@{m.person.telegram}" if m.person and m.person.telegram else html.escape(m.name)
             for m in mentions]
    return f"{LABEL} " + ", ".join(parts)


def plain_line(mentions: Sequence[Mention]) -> str:
    """``cc Sam Taylor, Jo Reid``: unescaped, for the console and the email text part."""
    return f"{LABEL} " + ", ".join(m.name for m in mentions)


def cc_addresses(mentions: Sequence[Mention]) -> list[str]:
    """The email addresses of the people mentioned who have one, each once."""
    return list(dict.fromkeys(m.person.email for m in mentions if m.person and m.person.email))


def _slack(payload: dict[str, Any], mentions: Sequence[Mention]) -> dict[str, Any]:
    # A context block shows the mentions under the message, and the fallback text
    # carries them too: that text is what the notification (and its ping) shows.
    line = slack_line(mentions)
    context = {"type": "context", "elements": [{"type": "mrkdwn", "text": line}]}
    payload["blocks"] = [*payload.get("blocks", []), context]
    room = SLACK_TEXT_LIMIT - len(line) - 1
    payload["text"] = f"{cut_escaped(str(payload.get('text', '')), room)}\n{line}"
    return payload


def _telegram(payload: dict[str, Any], mentions: Sequence[Mention]) -> dict[str, Any]:
    line = telegram_line(mentions)
    room = TELEGRAM_LIMIT - visible_length(line) - 2
    payload["text"] = f"{cut_visible(str(payload.get('text', '')), room)}\n\n{line}"
    return payload


def _email(payload: dict[str, Any], mentions: Sequence[Mention]) -> dict[str, Any]:
    line = plain_line(mentions)
    payload["text"] = str(payload.get("text", "")).rstrip("\n") + f"\n\n{line}\n"
    html_part = str(payload.get("html", ""))
    paragraph = f"<p>{html.escape(line)}</p>"
    end = html_part.rfind("</body>")
    payload["html"] = (html_part[:end] + paragraph + html_part[end:] if end != -1
                       else html_part + paragraph)
    cc = list(dict.fromkeys([*payload.get("cc", []), *cc_addresses(mentions)]))
    if cc:
        payload["cc"] = cc
    return payload


def _console(payload: dict[str, Any], mentions: Sequence[Mention]) -> dict[str, Any]:
    line = plain_line(mentions)
    room = max(0, SUMMARY_LIMIT - len(line) - 3)
    payload["text"] = f"{truncate(str(payload.get('text', '')), room)} ({line})"
    return payload


_ADDERS = {"slack": _slack, "telegram": _telegram, "email": _email, "console": _console}
