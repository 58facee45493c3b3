"""Edit the subscriptions in ``subscriptions.toml`` and keep everything else byte for byte.

``notifybot subscribe`` / ``unsubscribe`` change one channel's
``[[channels.NAME.subscriptions]]`` and nothing else: comments, blank lines, key
order, quoting and spacing outside the edited part are left exactly as they were.

How: tomlkit parses the file and knows which table is where, but it re-renders
what it touches (and is the judge of nothing else), so the edits here are made on
the *text*. A marker is put into tomlkit's tree at the place of the edit, the tree
is rendered, and the marker's offset says where in the original text to insert or
cut. The result is then parsed again with :mod:`tomllib` and compared with what
the edit should give, so a layout this module does not understand is refused
rather than written wrong.

A subscription's own text runs from its ``[[...]]`` header to its last key,
including comments directly under it; the first blank line after it and
whatever follows (typically comments introducing the next section) belong to
what comes next. A new subscription goes right after the channel's last one
(or after the channel's own keys), before that trailing part.

Reading, validating and writing the file: :mod:`notifybot.config_file`.
"""

from __future__ import annotations

import math
import re
import tomllib
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any

import tomlkit
from tomlkit.container import Container
from tomlkit.items import AoT, Array, Comment, Item, Table, Trivia, Whitespace
from tomlkit.toml_document import TOMLDocument

from .config_file import loads
from .errors import ConfigError

_BLANK_LINE_AT_END = re.compile(r"(?<=\n)[ \t]*\r?\n\Z")
_HEADER = re.compile(r"[ \t]*\[")



# --- command-line values ------------------------------------------------------


def parse_assignment(text: str) -> tuple[str, Any]:
    """``PATH=VALUE`` as (path, value): the value read as a TOML inline value.

    ``2`` is an int, ``2.5`` a float, ``true`` a bool, ``"x"`` a string, ``["a", "b"]``
    a list, ``{ gt = 3 }`` a table; ``Booked`` or ``Sam Taylor`` are not TOML values
    and are taken as they are. A value that starts like a string, list or table
    (``"``, ``'``, ``[``, ``{``) must be valid TOML: ``{ gt = 3`` is an error, not text.
    Dates and times stay strings (webhooks carry text), as do ``inf`` and ``nan``.
    """
    path, sep, raw = text.partition("=")
    path = path.strip()
    if not sep:
        raise ConfigError(f"{text!r}: expected PATH=VALUE, e.g. changes.STATUS.to=Booked")
    if not path:
        raise ConfigError(f"{text!r}: the path before '=' is empty; expected PATH=VALUE")
    return path, _toml_value(raw, path)


def assignments(texts: Iterable[str], option: str) -> dict[str, Any]:
    """Several ``PATH=VALUE`` (one ``--when`` each) as a table; a path given twice is an error."""
    table: dict[str, Any] = {}
    for text in texts:
        try:
            path, value = parse_assignment(text)
        except ConfigError as exc:
            raise ConfigError(f"{option} {exc.message}") from None
        if path in table:
            raise ConfigError(f"{option} {path} is given twice; for one of several values use "
                              f"{path}='[\"A\", \"B\"]'")
        table[path] = value
    return table


_TOML_START = ('"', "'", "[", "{")
_POSITION = re.compile(r"\s*\(at [^)]*\)\s*$")


def _toml_value(raw: str, path: str) -> Any:
    value = raw.strip()
    try:
        parsed = tomllib.loads(f"value = {value}")
    except tomllib.TOMLDecodeError as exc:
        if value.startswith(_TOML_START):
            why = _POSITION.sub("", str(exc))
            raise ConfigError(f"{path}={value}: not a valid TOML value ({why}); write a table as "
                              "{ gt = 3 }, a list as [\"A\", \"B\"], text as \"Sam Taylor\"") from None
        return raw
    if set(parsed) != {"value"} or not _plain(parsed["value"]):
        return raw
    return parsed["value"]


def _plain(value: Any) -> bool:
    """Whether a TOML value is made of strings, numbers, booleans, lists and tables only."""
    if isinstance(value, date | datetime | time):
        return False
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, list):
        return all(_plain(v) for v in value)
    if isinstance(value, dict):
        return all(_plain(v) for v in value.values())
    return True


# --- subscribe ------------------------------------------------------------------


def subscribe(
    text: str,
    channel: str,
    events: list[str],
    when: Mapping[str, Any],
    unless: Mapping[str, Any],
    name: str | None,
    template: str | None,
) -> str:
    """``text`` with one more ``[[channels.CHANNEL.subscriptions]]``, everything else unchanged."""
    data = loads(text)
    existing = _subscriptions_of(data, channel)
    if not events:
        raise ConfigError("name at least one event or pattern", key=f"channels.{channel}")
    definition: dict[str, Any] = {"events": list(events)}
    if when:
        definition["when"] = dict(when)
    if unless:
        definition["unless"] = dict(unless)
    if template is not None:
        definition["template"] = template
    if name is not None:
        definition["name"] = name
    for i, other in enumerate(existing):
        key = f"channels.{channel}.subscriptions[{i}]"
        if _normalised(other) == _normalised(definition):
            raise ConfigError("an identical subscription already exists; nothing to add", key=key)
        if name is not None and other.get("name") == name:
            raise ConfigError(f"a subscription named {name!r} already exists", key=key)

    doc = tomlkit.parse(text)
    elements = _elements(doc, channel)
    if elements:
        anchor = elements[-1]
    else:
        tables = _channel_tables(doc, channel)
        if not tables:
            raise _cannot_edit(channel)
        anchor = tables[-1]
    header_indent, key_indent = _indents(doc, elements)
    marker = _marker(text) + "\n"
    container = _last_container(anchor)
    _insert(container, _own_end(container), _comment(marker))
    [at] = _offsets(doc, text, [marker], channel)
    before, after = text[:at], text[at:]

    newline = "\r\n" if "\r\n" in text else "\n"
    lines = [f"{header_indent}[[channels.{_key(channel)}.subscriptions]]"]
    lines += [f"{key_indent}{_key(k)} = {_render(v)}" for k, v in definition.items()]
    chunk = newline + newline.join(lines) + newline
    if before and not before.endswith("\n"):
        chunk = newline + chunk
    new_text = before + chunk + after

    expected = loads(text)
    channel_table = expected["channels"][channel]
    channel_table["subscriptions"] = [*channel_table.get("subscriptions", []), definition]
    _verify(new_text, expected, channel)
    return new_text


def _normalised(definition: Mapping[str, Any]) -> dict[str, Any]:
    events = definition.get("events")
    return {
        "events": [events] if isinstance(events, str) else events,
        "when": definition.get("when") or {},
        "unless": definition.get("unless") or {},
        "template": definition.get("template"),
        "name": definition.get("name"),
    }


def _indents(doc: TOMLDocument, elements: list[Table]) -> tuple[str, str]:
    """The indentation of the channel's last subscription, else of any subscription in the file."""
    candidates = elements[-1:] or [e for chan in _channel_names(doc) for e in _elements(doc, chan)][:1]
    for element in candidates:
        header = element.trivia.indent
        for key, item in element.value.body:
            if key is not None and not isinstance(item, Table | AoT):
                return header, item.trivia.indent
        return header, header
    return "", ""


# --- unsubscribe ----------------------------------------------------------------


@dataclass(frozen=True)
class Unsubscribed:
    """What ``unsubscribe`` does to one subscription: removes it, or leaves ``remaining`` events."""

    index: int
    name: str | None
    remaining: tuple[str, ...] | None  # None: the whole subscription goes


def unsubscribe(text: str, channel: str, event: str | None, *,
                name: str | None = None) -> tuple[str, list[Unsubscribed]]:
    """Drop ``event`` from the channel's subscriptions (only the one called ``name``, if given):
    the new text and what changed.

    A subscription whose ``events`` is just ``event`` is removed with its text; one
    that lists other patterns too loses only that pattern. With ``name`` and no
    ``event``, the named subscription is removed whole.
    """
    data = loads(text)
    existing = _subscriptions_of(data, channel)
    plan: list[Unsubscribed] = []
    for i, definition in enumerate(existing):
        own_name = definition.get("name") if isinstance(definition.get("name"), str) else None
        if name is not None and own_name != name:
            continue
        events = definition.get("events")
        patterns = [events] if isinstance(events, str) else events
        if event is None:
            plan.append(Unsubscribed(i, own_name, None))
            continue
        if not isinstance(patterns, list) or event not in patterns:
            continue
        others = tuple(p for p in patterns if p != event)
        plan.append(Unsubscribed(i, own_name, others or None))
    if not plan:
        raise ConfigError(_nothing_to_drop(existing, event, name), key=f"channels.{channel}")

    expected = loads(text)
    subs = expected["channels"][channel]["subscriptions"]
    for change in reversed(plan):
        if change.remaining is None:
            del subs[change.index]
        else:
            subs[change.index]["events"] = list(change.remaining)
    if not subs:
        del expected["channels"][channel]["subscriptions"]

    new_text = text
    for change in reversed(plan):  # from the last, so earlier indices stay valid
        if change.remaining is None:
            new_text = _remove_element(new_text, channel, change.index)
        else:
            assert event is not None  # a pattern is only dropped when one is named
            new_text = _replace_events(new_text, channel, change.index, event)
    _verify(new_text, expected, channel)
    return new_text, plan


def _nothing_to_drop(existing: list[dict[str, Any]], event: str | None, name: str | None) -> str:
    names = [d["name"] for d in existing if isinstance(d.get("name"), str)]
    if name is not None and name not in names:
        return f"no subscription named {name!r} (named: {', '.join(names) or 'none'})"
    if name is not None:
        return f"the subscription named {name!r} has no event {event!r}"
    return f"no subscription to {event}"


def _remove_element(text: str, channel: str, index: int) -> str:
    doc = tomlkit.parse(text)
    element = _element_at(doc, channel, index)
    start, end = _marker(text), _marker(text) + "\n"
    element.trivia.indent = start + element.trivia.indent
    container = _last_container(element)
    _insert(container, _own_end(container), _comment(end))
    cut_from, cut_to = _offsets(doc, text, [start, end], channel)
    return _BLANK_LINE_AT_END.sub("", text[:cut_from]) + text[cut_to:]


def _replace_events(text: str, channel: str, index: int, event: str) -> str:
    doc = tomlkit.parse(text)
    element = _element_at(doc, channel, index)
    events = next(_keyed(element.value.body, "events"), None)
    if not isinstance(events, Array):
        raise _cannot_edit(channel)
    original = events.as_string()
    marker = _marker(text)
    events.trivia.indent = marker + events.trivia.indent
    [line_start] = _offsets(doc, text, [marker], channel)
    at = text.find(original, line_start)
    if at < 0:
        raise _cannot_edit(channel)
    if "\n" in original:
        # Over several lines, perhaps with comments: tomlkit keeps those, item by item.
        for i in reversed(range(len(events))):
            if events[i] == event:
                del events[i]
        replacement = events.as_string()
    else:
        # One line (so no comments): written again, spaced as it was. tomlkit's own
        # deletion would leave '[ "a", ]' or '["b" ]' behind.
        items = [item.as_string() for item in events]
        kept = [item.as_string() for item in events if item != event]
        replacement = _restyle_array(original, items, kept)
    return text[:at] + replacement + text[at + len(original):]


def _restyle_array(original: str, items: list[str], kept: list[str]) -> str:
    """A one-line array of ``kept`` (some of ``items``) spaced and punctuated like ``original``."""
    inner = original[1:-1]
    left = inner[: len(inner) - len(inner.lstrip())]
    stripped = inner.rstrip()
    right = inner[len(stripped):]
    trailing_comma = stripped.endswith(",")
    found = re.match(r"\s*,\s*", inner[len(left) + len(items[0]):]) if len(items) > 1 else None
    sep = found.group(0) if found else ", "
    return "[" + left + sep.join(kept) + ("," if trailing_comma else "") + right + "]"


# --- finding things in tomlkit's tree -------------------------------------------


def _channel_names(doc: TOMLDocument) -> list[str]:
    names: list[str] = []
    for channels in _keyed(doc.body, "channels"):
        if isinstance(channels, Table):
            names += [k.key for k, _ in channels.value.body if k is not None and k.key not in names]
    return names


def _channel_tables(doc: TOMLDocument, channel: str) -> list[Table]:
    """The channel's ``[channels.NAME]`` tables (written with a header), in file order."""
    found: list[Table] = []
    for channels in _keyed(doc.body, "channels"):
        if not isinstance(channels, Table):
            continue
        for key, item in channels.value.body:
            if key is not None and key.key == channel and not key.is_dotted() \
                    and isinstance(item, Table):
                found.append(item)
    return found


def _elements(doc: TOMLDocument, channel: str) -> list[Table]:
    """The channel's ``[[channels.NAME.subscriptions]]`` tables, in file (and TOML) order."""
    found: list[Table] = []
    for table in _channel_tables(doc, channel):
        for item in _keyed(table.value.body, "subscriptions"):
            if not isinstance(item, AoT):
                raise _cannot_edit(channel)
            found += item.body
    return found


def _element_at(doc: TOMLDocument, channel: str, index: int) -> Table:
    elements = _elements(doc, channel)
    if index >= len(elements):
        raise _cannot_edit(channel)
    return elements[index]


def _keyed(body: list[tuple[Any, Item]], name: str) -> Iterator[Item]:
    for key, item in body:
        if key is not None and key.key == name:
            yield item


def _last_container(table: Table) -> Container:
    """The container whose end is the end of ``table``'s text (its last sub-table's, if any)."""
    container = table.value
    while container.body:
        key, last = container.body[-1]
        if key is not None and isinstance(last, Table) and not key.is_dotted():
            container = last.value
        elif key is not None and isinstance(last, AoT) and last.body:
            container = last.body[-1].value
        else:
            break
    return container


def _own_end(container: Container) -> int:
    """Where a table's own text ends: at the first blank line of its trailing comments."""
    body = container.body
    start = len(body)
    while start and body[start - 1][0] is None and isinstance(body[start - 1][1], Whitespace | Comment):
        start -= 1
    for i in range(start, len(body)):
        item = body[i][1]
        if isinstance(item, Whitespace) and "\n" in item.as_string():
            return i
    return len(body)


def _insert(container: Container, index: int, item: Item) -> None:
    # Straight into the body: the tree is rendered once and thrown away.
    container.body.insert(index, (None, item))


def _comment(text: str) -> Comment:
    return Comment(Trivia(indent="", comment_ws="", comment=text, trail=""))


def _marker(text: str) -> str:
    while True:
        marker = f"@@notifybot-edit-{uuid.uuid4().hex}@@"
        if marker not in text:
            return marker


def _offsets(doc: TOMLDocument, text: str, markers: list[str], channel: str) -> list[int]:
    """Where in ``text`` the ``markers`` put into ``doc`` (at the start of lines) stand.

    tomlkit renders a parsed document back to its very text, except that it may
    respell a table header from its parent's (``[ channels.a ]`` makes it write
    ``[[ channels.a .subscriptions]]``); so the rendering is matched with the text
    line by line, and only header lines may differ. Nothing of the rendering is kept.
    """
    rendered = doc.as_string()
    if any(rendered.count(m) != 1 for m in markers):
        raise _cannot_edit(channel)
    order = sorted(markers, key=rendered.index)
    pieces: list[str] = []
    found: dict[str, int] = {}
    last = 0
    for marker in order:
        at = rendered.index(marker)
        pieces.append(rendered[last:at])
        found[marker] = sum(map(len, pieces))
        last = at + len(marker)
    clean = "".join(pieces) + rendered[last:]
    if clean == text:
        return [found[m] for m in markers]
    clean_lines, text_lines = clean.split("\n"), text.split("\n")
    if len(clean_lines) != len(text_lines) or any(
            a != b and not (_HEADER.match(a) and _HEADER.match(b))
            for a, b in zip(clean_lines, text_lines, strict=True)):
        raise _cannot_edit(channel)
    starts = [0]
    for text_line in text_lines[:-1]:
        starts.append(starts[-1] + len(text_line) + 1)
    offsets = []
    for marker in markers:
        number = clean.count("\n", 0, found[marker])
        column = found[marker] - (clean.rfind("\n", 0, found[marker]) + 1)
        if column and clean_lines[number] != text_lines[number]:
            raise _cannot_edit(channel)
        offsets.append(starts[number] + column)
    return offsets


# --- rendering values -------------------------------------------------------------


def _key(name: str) -> str:
    return tomlkit.key(name).as_string()


def _render(value: Any) -> str:
    """A value as one line of TOML; tables inline, spaced ``{ a = 1 }`` like the shipped example."""
    if isinstance(value, Mapping):
        if not value:
            return "{}"
        return "{ " + ", ".join(f"{_key(k)} = {_render(v)}" for k, v in value.items()) + " }"
    if isinstance(value, list):
        return "[" + ", ".join(_render(v) for v in value) + "]"
    return str(tomlkit.item(value).as_string())


# --- checks -------------------------------------------------------------------------


def _subscriptions_of(data: Mapping[str, Any], channel: str) -> list[dict[str, Any]]:
    channels = data.get("channels", {})
    if not isinstance(channels, Mapping) or channel not in channels:
        known = ", ".join(channels) if isinstance(channels, Mapping) and channels else "none"
        raise ConfigError(f"no such channel (configured: {known})", key=f"channels.{channel}")
    table = channels[channel]
    if not isinstance(table, Mapping):
        raise ConfigError("must be a table", key=f"channels.{channel}")
    subs = table.get("subscriptions", [])
    if not isinstance(subs, list) or not all(isinstance(s, Mapping) for s in subs):
        raise ConfigError("must be an array of tables ([[...subscriptions]])",
                          key=f"channels.{channel}.subscriptions")
    return subs


def _verify(new_text: str, expected: Mapping[str, Any], channel: str) -> None:
    try:
        got = tomllib.loads(new_text)
    except tomllib.TOMLDecodeError:
        raise _cannot_edit(channel) from None
    if got != expected:
        raise _cannot_edit(channel)


def _cannot_edit(channel: str) -> ConfigError:
    return ConfigError("cannot edit this channel's subscriptions safely; write the channel as a "
                       "[channels.NAME] table followed by [[channels.NAME.subscriptions]] tables, "
                       "or edit the file by hand", key=f"channels.{channel}")
