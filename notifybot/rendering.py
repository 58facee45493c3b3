"""Jinja2 templates turn an event into a plain-text :class:`~notifybot.messages.Message`.

A template is ``message_templates/<event name>.j2`` (or the subscription's
``template``), falling back to ``default.j2``. It fills two blocks:

* ``summary``: one line a person can act on;
* ``details``: lines ``Label: value`` (shown as fields; empty values are dropped)
  and free lines (shown as notes).

What changed (``changes``) and the link to the job are added by the renderer, so
every template gets them. Templates never produce markup: escaping belongs to
:mod:`notifybot.formatting`. A user's template folder is searched before the
shipped one, so overriding one template is one file. Pure apart from reading
templates through Jinja's loader.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import (
    ChainableUndefined,
    ChoiceLoader,
    FileSystemLoader,
    TemplateError,
    TemplateNotFound,
    TemplateSyntaxError,
)
from jinja2.sandbox import SandboxedEnvironment

from .errors import ConfigError
from .events import Event, parse_event
from .formatting import one_line, truncate
from .messages import ChangeRow, Fact, Message
from .statuses import StatusLabels

SHIPPED_TEMPLATES = next(
    (p for p in (Path(__file__).parent / "message_templates",
                 Path(__file__).parent.parent / "message_templates") if p.is_dir()),
    Path(__file__).parent / "message_templates",
)
DEFAULT_TEMPLATE = "default"
VALUE_LIMIT = 300  # characters of one interpolated value
_LOCAL_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}(:\d{2})?)?$")
_FIELD_NAMES = {
    "JOB_NAME": "Job name", "OUT_DATE": "Out", "JOB_DATE": "Starts", "JOB_END": "Ends",
    "RETURN_DATE": "Returns", "CLIENT_REF": "Client ref", "MANAGER2": "Second manager",
    "DUE_DATE": "Due", "TAX_POINT": "Tax point", "NET": "Net", "TAX": "Tax",
}


class _Missing(ChainableUndefined):
    """A field the payload does not have: empty text, and 0 to ``int``/``float``.

    HireHop leaves fields out freely, so ``{{ data.X | int }}`` on an event without
    ``X`` renders 0 rather than failing the message.
    """

    def __int__(self) -> int:  # type: ignore[override]
        return 0

    def __float__(self) -> float:  # type: ignore[override]
        return 0.0


@dataclass(frozen=True)
class StatusChange:
    """A status move in words, e.g. ``Provisional`` → ``Booked``."""

    before: str
    after: str


class Renderer:
    """Renders events with the shipped templates and, first, the user's own folder."""

    def __init__(self, *, labels: StatusLabels, timezone: ZoneInfo, base_url: str,
                 user_templates: Path | None = None) -> None:
        self.labels = labels
        self.timezone = timezone
        self.base_url = base_url.rstrip("/")
        self.folders = [f for f in (user_templates, SHIPPED_TEMPLATES) if f is not None]
        # The template files, listed once: a file added later is used only after a
        # reload has checked it (see check_templates).
        self.names = frozenset(p.name for folder in self.folders if folder.is_dir()
                               for p in folder.glob("*.j2"))
        self.env = SandboxedEnvironment(
            loader=ChoiceLoader([FileSystemLoader(str(f)) for f in self.folders]),
            autoescape=False,  # templates produce plain text; formatting escapes per channel
            undefined=_Missing,
            finalize=_finalize,
            # Templates are compiled once and kept: an edit on disk takes effect
            # through a reload, which checks it first, never half-way.
            auto_reload=False,
            cache_size=-1,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.filters.update(when=self.local_time, label=self._label, field=field_label)

    def template_for(self, event_name: str, chosen: str | None = None) -> str:
        """The template file an event renders with: the chosen one, its own, or the default."""
        if chosen:
            return f"{chosen}.j2"
        own = f"{event_name}.j2"
        return own if own in self.names else "default.j2"

    def render(self, event: Event, template: str | None = None) -> Message:
        """Render one event; a broken template raises ConfigError naming file and line."""
        name = self.template_for(event.name, template)
        try:
            tmpl = self.env.get_template(name)
            ctx = tmpl.new_context(self.context(event))
            # Running the root once registers the whole inheritance chain's blocks (a
            # template that extends default.j2 inherits what it does not override).
            for _ in tmpl.root_render_func(ctx):
                pass
            summary = _block(ctx, "summary")
            details = _block(ctx, "details")
        except TemplateNotFound as exc:
            raise ConfigError(f"template {exc.name!r} not found in "
                              + ", ".join(map(str, self.folders)), where=name) from None
        except TemplateSyntaxError as exc:
            raise _syntax_error(exc, name) from None
        except (UnicodeDecodeError, OSError) as exc:
            raise ConfigError(f"cannot read: {exc}", where=name) from None
        except TemplateError as exc:
            raise ConfigError(f"cannot render: {exc}", where=name) from None
        except Exception as exc:  # a template's own arithmetic or filter misuse
            raise ConfigError(f"cannot render: {type(exc).__name__}: {exc}", where=name) from None
        facts, notes = _split_details(details)
        job_url = self.job_url(event.job)
        return Message(
            summary=one_line(summary) or f"HireHop event {event.name}",
            facts=facts,
            notes=notes,
            changes=self.change_rows(event),
            link=job_url,
            link_label=f"Open job {event.job} in HireHop" if job_url else "",
        )

    def context(self, event: Event) -> dict[str, Any]:
        """The names a template can use."""
        return {
            "event": event,
            "payload": event.payload,
            "data": event.data,
            "job": event.job,
            "job_url": self.job_url(event.job),
            "by": event.user_name or event.user_email or "someone",
            "time": self.local_time(event.time),
            "status": self.status_change(event),
            "changes": self.change_rows(event),
        }

    def job_url(self, job: int | None) -> str | None:
        return f"{self.base_url}/job.php?id={job}" if job else None

    def status_change(self, event: Event) -> StatusChange | None:
        """The status move: ``changes.STATUS`` first, else the new ``data.STATUS`` alone."""
        table = self.labels.for_event(event.name)
        change = event.change("STATUS")
        if change is not None:
            label = table.label if table else _display
            return StatusChange(label(change.before) if change.before is not None else "",
                                label(change.after))
        if table and event.data.get("STATUS") is not None:
            return StatusChange("", table.label(event.data["STATUS"]))
        return None

    def change_rows(self, event: Event) -> tuple[ChangeRow, ...]:
        table = self.labels.for_event(event.name)
        rows = []
        for change in event.changes:
            if change.field == "STATUS" and table is not None:
                before = table.label(change.before) if change.before is not None else ""
                row = ChangeRow("Status", before, table.label(change.after))
            else:
                row = ChangeRow(field_label(change.field), self._value(change.before),
                                self._value(change.after))
            # Folded like template values: payload text cannot add lines of its own.
            rows.append(ChangeRow(*(truncate(one_line(part), VALUE_LIMIT)
                                    for part in (row.field, row.before, row.after))))
        return tuple(rows)

    def local_time(self, value: object) -> str:
        """A UTC datetime in the configured zone; HireHop's local date strings made readable."""
        if isinstance(value, datetime):
            return value.astimezone(self.timezone).strftime("%a %d %b %Y, %H:%M %Z")
        text = _display(value)
        if _LOCAL_TIME.match(text):
            try:
                parsed = datetime.fromisoformat(text.replace(" ", "T"))
            except ValueError:  # "0000-00-00 00:00:00", "2026-02-30": shown as sent
                return text
            if len(text) == 10:  # a date alone, such as an invoice's DUE_DATE
                return parsed.strftime("%a %d %b %Y")
            return parsed.strftime("%a %d %b %Y, %H:%M")
        return text

    def _label(self, value: object, entity: str = "job") -> str:
        table = self.labels.invoice if entity == "invoice" else self.labels.job
        return table.label(value)

    def _value(self, value: object) -> str:
        return self.local_time(value) if isinstance(value, str) else _display(value)


def _block(ctx: Any, name: str) -> str:
    chain = ctx.blocks.get(name)
    return "".join(chain[0](ctx)) if chain else ""


def field_label(name: object) -> str:
    """``JOB_END`` → ``Ends``; other HireHop field names in sentence case."""
    text = str(name)
    return _FIELD_NAMES.get(text, text.replace("_", " ").strip().capitalize() or text)


def _display(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, Mapping | list):
        return json.dumps(value, ensure_ascii=False, separators=(", ", ": "), default=str)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _finalize(value: object) -> object:
    # Every interpolated value is folded to one line, so payload text cannot add
    # lines (fake "Label: value" facts) to a template's output, and cut short, so one
    # 5,000-character name cannot push the rest of a summary out of sight.
    if isinstance(value, ChainableUndefined) or value is None:
        return ""
    if isinstance(value, int | float):
        return value
    return truncate(one_line(_display(value)), VALUE_LIMIT)


def _split_details(text: str) -> tuple[tuple[Fact, ...], tuple[str, ...]]:
    facts: list[Fact] = []
    notes: list[str] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        label, sep, value = line.partition(": ")
        if sep and label and len(label) <= 40:
            if value.strip():
                facts.append(Fact(label.strip(), value.strip()))
        elif line.endswith(":") and len(line) <= 41:
            continue  # "Label:" with an empty value
        else:
            notes.append(line)
    return tuple(facts), tuple(notes)


def check_templates(renderer: Renderer, chosen: list[str]) -> int:
    """Compile every template in the folders and confirm each ``chosen`` one exists.

    Returns how many templates were checked; raises ConfigError naming file and line.
    """
    names = sorted(renderer.names)
    if "default.j2" not in names:
        raise ConfigError("the fallback template is missing", where="default.j2")
    for name in names:
        try:
            renderer.env.get_template(name)
        except TemplateSyntaxError as exc:
            raise _syntax_error(exc, name) from None
        except (UnicodeDecodeError, OSError) as exc:
            raise ConfigError(f"cannot read: {exc}", where=name) from None
    for template in chosen:
        if f"{template}.j2" not in names:
            raise ConfigError(f"template {template!r} not found (looked for {template}.j2 in "
                              + ", ".join(map(str, renderer.folders)) + ")")
    # A trial render of each template catches what compiling cannot: an {% extends %}
    # or {% include %} of a missing file, a filter used on the wrong kind of value.
    for name in names:
        if not name.startswith("_"):  # partials are rendered through the others
            renderer.render(_SAMPLE, name.removesuffix(".j2"))
    return len(names)


_SAMPLE = parse_event({
    "event": "job.status.updated", "time": "2026-01-05 09:30:00", "user_name": "Sam Taylor",
    "job": 1, "data": {"NUMBER": 1, "JOB_NAME": "Sample", "STATUS": 2, "OUT_DATE": "2026-01-06 09:00:00"},
    "changes": {"STATUS": {"from": 1, "to": 2}},
})


def _syntax_error(exc: TemplateSyntaxError, name: str) -> ConfigError:
    return ConfigError(exc.message or "syntax error", where=exc.filename or name,
                       key=f"line {exc.lineno}")
