"""A HireHop webhook as a typed value, built tolerantly from what HireHop really sends.

HireHop's payloads are loosely typed (reference/hirehop.md §6, §8): numbers come
as ``2``, ``"2"`` or ``2.0``; ids carry prefixes (``"j15471"``); the job number
sits in a top-level ``job`` or in ``data``; ``data`` and ``changes`` may be
missing. :func:`parse_event` absorbs all of that once, so that matching and
rendering deal with one shape. It is pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

from .safe_text import clean_text

UNKNOWN_EVENT = "unknown"
_TIME_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S")
_SURROGATE = re.compile("[\ud800-\udfff]")
_PREFIXED_ID = re.compile(r"^\s*[A-Za-z]{0,3}(\d+)(?:\.0+)?\s*$")


@dataclass(frozen=True)
class Change:
    """One field that changed: ``{FIELD: {from, to}}`` in the payload."""

    field: str
    before: Any
    after: Any


@dataclass(frozen=True)
class Event:
    """One HireHop webhook, ready for matching and rendering.

    ``payload`` is the whole body as received, minus ``export_key``; condition
    paths such as ``data.COMPANY`` or ``changes.STATUS.to`` are looked up in it.
    """

    name: str
    time: datetime | None
    user_name: str
    user_email: str
    company_id: int | None
    job: int | None
    data: Mapping[str, Any]
    changes: tuple[Change, ...]
    payload: Mapping[str, Any] = field(repr=False)

    def change(self, field_name: str) -> Change | None:
        for change in self.changes:
            if change.field == field_name:
                return change
        return None


def parse_event(payload: Mapping[str, Any]) -> Event:
    """Build an :class:`Event` from a decoded webhook body. Never raises on odd values."""
    clean = {k: v for k, v in payload.items() if k != "export_key"}
    data = clean.get("data")
    data = data if isinstance(data, Mapping) else {}
    return Event(
        name=event_name(clean),
        time=parse_time(clean.get("time")),
        user_name=_text(clean.get("user_name")),
        user_email=_text(clean.get("user_email")),
        company_id=to_int(clean.get("company_id")),
        job=job_number(clean, data),
        data=MappingProxyType(dict(data)),
        changes=_changes(clean.get("changes")),
        payload=MappingProxyType(clean),
    )


def event_name(payload: Mapping[str, Any]) -> str:
    """The event's name, ``unknown`` when it has none: all that ingest needs to read."""
    name = payload.get("event")
    # Control and bidi characters go: the name is stored, listed and logged.
    name = clean_text(safe_text(name)).strip() if isinstance(name, str) else ""
    return name or UNKNOWN_EVENT


def safe_text(text: str) -> str:
    """``text`` without NUL and with each lone surrogate replaced by U+FFFD.

    Ingest applies it to every webhook; here it also guards events stored before that.
    """
    text = text.replace("\x00", "")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates: the rare path
        return _SURROGATE.sub("\ufffd", text)
    return text


def job_number(payload: Mapping[str, Any], data: Mapping[str, Any]) -> int | None:
    """The job number: top-level ``job``, then ``data.NUMBER``, ``data.ID``, ``data.job``.

    Only job events use ``data``'s own ``NUMBER``/``ID``: an invoice or contact has
    ids of its own, so for them only ``job``, ``data.JOB_ID`` or ``data.MAIN_ID`` name a job.
    """
    event = payload.get("event")
    candidates: tuple[object, ...]
    if isinstance(event, str) and event.startswith("job."):
        candidates = (payload.get("job"), data.get("NUMBER"), data.get("ID"), data.get("job"))
    else:
        candidates = (payload.get("job"), data.get("JOB_ID"), data.get("MAIN_ID"))
    for candidate in candidates:
        number = to_int(candidate)
        if number is not None and number > 0:
            return number
    return None


def to_int(value: object) -> int | None:
    """``15471``, ``"15471"``, ``15471.0`` and ``"j15471"`` all give 15471; anything else None."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else None
    match = _PREFIXED_ID.match(str(value))
    return int(match.group(1)) if match else None


def parse_time(value: object) -> datetime | None:
    """HireHop's ``YYYY-MM-DD hh:mm:ss`` (UTC, no offset) as an aware datetime, else None."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    try:  # ISO 8601 first: HireHop's own form is one, and this parser is fast
        parsed = datetime.fromisoformat(text)
        return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    except OverflowError:  # "0001-01-01T00:00:00+05:00" has no UTC time
        return None
    except ValueError:
        pass
    for fmt in _TIME_FORMATS:  # what ISO refuses, such as "2026-5-12 9:04:17"
        try:
            return datetime.strptime(text, fmt).replace(tzinfo=UTC)
        except ValueError:
            continue
    return None


def _changes(value: object) -> tuple[Change, ...]:
    if not isinstance(value, Mapping):
        return ()
    changes = []
    for name, diff in value.items():
        if isinstance(diff, Mapping):
            changes.append(Change(str(name), diff.get("from"), diff.get("to")))
        else:  # a bare new value, as some senders do for STATUS
            changes.append(Change(str(name), None, diff))
    return tuple(changes)


def _text(value: object) -> str:
    return "" if value is None else safe_text(str(value))
