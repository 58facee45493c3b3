"""Jinja2 templates turn an event into a plain-text :class:`~notifybot.messages.Message`.

A template is ``message_templates/<event name>.j2`` (or the subscription's
``template``); without one, the nearest family template is used
(``contact.person.updated`` → ``contact.person.j2`` → ``contact.j2``), then
``default.j2``, which renders any event usefully. A template fills two blocks:

* ``summary``: one line a person can act on; the filters ``name`` (a part that
  may be shortened, such as a job name) and ``key`` (a part never cut, such as a
  status move or an amount) tell the channels how to shorten it;
* ``details``: lines ``Label: value`` (shown as fields; empty values are dropped)
  and free lines (shown as notes).

What changed (``changes``, the status first), who did it, when, and the link to
the job are added by the renderer, so every template gets them. Payload text is
cleaned of control and bidi characters before a template sees it, and every
value is shown in words (never a Python or JSON repr). Templates never produce
markup: escaping belongs to :mod:`notifybot.formatting`. A user's template folder
is searched before the shipped one, so overriding one template is one file. Pure
apart from reading templates through Jinja's loader.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
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
    nodes,
    pass_context,
)
from jinja2.runtime import Context
from jinja2.sandbox import SandboxedEnvironment

from .describing import (
    CLIENT_FIELDS,
    MainFields,
    actor,
    as_mapping,
    best_name,
    currency_of,
    custom_rows,
    describe,
    first_amount,
    first_text,
    invoice_total,
    upper_aliases,
)
from .errors import ConfigError
from .events import Event, parse_event
from .formatting import fold, one_line, truncate
from .messages import CHANGED, KEY, NAME, ChangeRow, Fact, Message, Part
from .money import MoneyFormat
from .safe_text import clean_text
from .statuses import StatusLabels
from .values import EMPTY, Values, field_label, readable_date

__all__ = ["SHIPPED_TEMPLATES", "Renderer", "StatusChange", "check_templates", "field_label"]

SHIPPED_TEMPLATES = next(
    (p for p in (Path(__file__).parent / "message_templates",
                 Path(__file__).parent.parent / "message_templates") if p.is_dir()),
    Path(__file__).parent / "message_templates",
)
DEFAULT_TEMPLATE = "default"
VALUE_LIMIT = 300  # characters of one interpolated value
NAME_LIMIT = 120  # characters of a name in a summary (channels may shorten it further)
SUMMARY_CHANGES = 3  # changed fields named in a summary before "and N more"
DETAIL_CHANGES = 3  # at most this many changes are spelled out with values on one line
DETAIL_VALUE = 32  # ...each value at most this long
# The summary's parts are marked with private-use characters, which cleaning removes
# from payload text, so only the name/key filters can produce them.
_OPEN, _MID, _CLOSE = "\ue000", "\ue001", "\ue002"
_MARKED = re.compile(f"{_OPEN}(\\w+){_MID}(.*?){_CLOSE}", re.DOTALL)
_PLAIN_VALUES = Values()  # values in words where no event's currency applies
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

    def __str__(self) -> str:
        return f"{self.before} → {self.after}" if self.before else self.after


@dataclass(frozen=True)
class _Render:
    """What one render works from: the cleaned event, its values and its changes."""

    event: Event
    values: Values
    rows: tuple[ChangeRow, ...]
    moved: bool  # the event carries a STATUS change


class Renderer:
    """Renders events with the shipped templates and, first, the user's own folder."""

    def __init__(self, *, labels: StatusLabels, timezone: ZoneInfo, base_url: str,
                 user_templates: Path | None = None, money: MoneyFormat | None = None) -> None:
        self.labels = labels
        self.timezone = timezone
        self.base_url = base_url.rstrip("/")
        self.money = money or MoneyFormat()
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
        self.env.filters.update(when=self.local_time, label=self._label, field=field_label,
                                money=_money, name=_name, key=_key)
        self._blocks_only: dict[str, bool] = {}  # template name → blocks alone (compile())

    def template_for(self, event_name: str, chosen: str | None = None) -> str:
        """The template an event renders with: the chosen one, its own, its family's, the default.

        ``contact.person.updated`` uses ``contact.person.updated.j2``, else
        ``contact.person.j2``, else ``contact.j2``, else ``default.j2``.
        """
        if chosen:
            return f"{chosen}.j2"
        words = event_name.split(".")
        for size in range(len(words), 0, -1):
            candidate = ".".join(words[:size]) + ".j2"
            if candidate in self.names and not candidate.startswith("_"):
                return candidate
        return "default.j2"

    def render(self, event: Event, template: str | None = None, *,
               whole: bool = False) -> Message:
        """Render one event; a broken template raises ConfigError naming file and line.

        ``whole`` runs the whole template, every block included, even one no message
        shows (``check`` does, so that such a block's error is found too).
        """
        name = self.template_for(event.name, template)
        work = self._prepare(event)
        try:
            tmpl = self.env.get_template(name)
            ctx = tmpl.new_context(self._context(work))
            if whole or not self._blocks_only.get(name, False):
                # Running the root once registers the whole inheritance chain's blocks (a
                # template that extends default.j2 inherits what it does not override)
                # and sets what its top level sets; it renders every block once more.
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
        headline = _headline(summary) or (Part(f"HireHop event {work.event.name}"),)
        facts, notes = _split_details(details)
        # A field that changed is shown once, as a change (from → to), not again as a fact.
        changed = {row.field.casefold() for row in work.rows}
        facts = tuple(fact for fact in facts if fact.label.casefold() not in changed)
        job = work.event.job
        job_url = self.job_url(job)
        return Message(
            summary="".join(part.text for part in headline),
            facts=facts,
            notes=notes,
            changes=work.rows,
            link=job_url,
            link_label=f"Open job {job} in HireHop" if job_url else "",
            headline=headline,
            actor=actor(work.event),
            when=self.local_time(work.event.time) if work.event.time else "",
        )

    def compile(self, name: str) -> None:
        """Compile template ``name`` and learn whether its top level is blocks alone.

        Such a template's blocks render on their own: nothing outside them can
        register a parent's blocks (``extends``) or set a name they read (``set``,
        ``import``). The shipped templates are such; it halves the work of a render.
        A template not compiled here (nor learnt) is run whole, as always safe.
        """
        self.env.get_template(name)
        assert self.env.loader is not None
        # Read right after compiling, once per (re)load: never while rendering, so a
        # file edited later changes nothing until a reload has checked it.
        source, filename, _ = self.env.loader.get_source(self.env, name)
        self._blocks_only[name] = all(
            map(_block_or_blank, self.env.parse(source, name, filename).body))

    def context(self, event: Event) -> dict[str, Any]:
        """The names a template can use."""
        return self._context(self._prepare(event))

    def _prepare(self, event: Event) -> _Render:
        clean = parse_event(upper_aliases(_deep_clean(event.payload)))
        values = Values(self.money, currency_of(clean))
        rows = self._rows(clean, values)
        return _Render(clean, values, rows, clean.change("STATUS") is not None)

    def _context(self, work: _Render) -> dict[str, Any]:
        event, values = work.event, work.values
        entity, action = describe(event.name)
        name, name_fields = best_name(event.data, values)
        others = tuple(row for row in work.rows if not (work.moved and row is work.rows[0]))
        return {
            "event": event,
            "payload": event.payload,
            "data": event.data,
            "job": event.job,
            "job_url": self.job_url(event.job),
            "by": actor(event),
            "time": self.local_time(event.time),
            "status": self.status_change(event),
            "moved": work.moved,
            "changes": work.rows,
            "changed": _changed(work.rows, work.moved),
            "others": _changed(others, False),
            "entity": entity,
            "action": action,
            "name": name,
            "amount": _Words(first_amount(event.data, values)),
            "total": _Words(invoice_total(event.data, values)),
            "client": first_text(event.data, CLIENT_FIELDS, values),
            "custom_fields": tuple(Fact(label, value) for label, value in
                                   values.flat(as_mapping(event.data.get("CUSTOM_FIELDS")))),
            "fields": MainFields(event, values, name_fields, self.labels),
            "_values": values,
        }

    def job_url(self, job: int | None) -> str | None:
        return f"{self.base_url}/job.php?id={job}" if job else None

    def status_change(self, event: Event) -> StatusChange | None:
        """The status move: ``changes.STATUS`` first, else the new ``data.STATUS`` alone."""
        table = self.labels.for_event(event.name)
        change = event.change("STATUS")
        if change is not None:
            label = table.label if table else _PLAIN_VALUES.text
            return StatusChange(label(change.before) if change.before is not None else "",
                                label(change.after) or EMPTY)
        if table and event.data.get("STATUS") not in (None, ""):
            return StatusChange("", table.label(event.data["STATUS"]))
        return None

    def change_rows(self, event: Event) -> tuple[ChangeRow, ...]:
        """Every change in words, the status first."""
        return self._prepare(event).rows

    def _rows(self, event: Event, values: Values) -> tuple[ChangeRow, ...]:
        table = self.labels.for_event(event.name)
        status: list[ChangeRow] = []
        rows: list[ChangeRow] = []
        for change in event.changes:
            if change.field == "STATUS":
                label = table.label if table else values.text
                before = "" if change.before is None else (label(change.before) or EMPTY)
                status.append(ChangeRow("Status", before, label(change.after) or EMPTY))
            elif change.field.upper() == "CUSTOM_FIELDS":
                rows.extend(custom_rows(change.before, change.after, values))
            else:
                before = "" if change.before is None else values.shown(change.before, change.field)
                after = values.shown(change.after, change.field)
                if before != after:
                    rows.append(ChangeRow(field_label(change.field), before, after))
        # Folded like template values: payload text cannot add lines of its own.
        return tuple(ChangeRow(*(truncate(one_line(part), VALUE_LIMIT)
                                 for part in (row.field, row.before, row.after)))
                     for row in status + rows)

    def local_time(self, value: object) -> str:
        """A UTC datetime in the configured zone; HireHop's local date strings made readable."""
        if isinstance(value, datetime):
            return value.astimezone(self.timezone).strftime("%a %d %b %Y, %H:%M %Z")
        if value is None or isinstance(value, ChainableUndefined):
            return ""
        text = _PLAIN_VALUES.text(value)
        date = readable_date(text)
        return text if date is None else date

    def _label(self, value: object, entity: str = "job") -> str:
        table = self.labels.invoice if entity == "invoice" else self.labels.job
        return table.label(value)


def _changed(rows: tuple[ChangeRow, ...], moved: bool) -> str:
    """The summary's "what changed": the status move (never cut), then a few field names."""
    if not rows:
        return ""
    out = ""
    rest = rows
    if moved:
        out = _mark(KEY, f"Status {StatusChange(rows[0].before, rows[0].after)}")
        rest = rows[1:]
    if rest:
        names = ", ".join(row.field for row in rest[:SUMMARY_CHANGES])
        more = len(rest) - SUMMARY_CHANGES
        text = names + (f" and {more} more" if more > 0 else "")
        detail = ""
        if len(rows) <= DETAIL_CHANGES and all(
                len(row.before) <= DETAIL_VALUE and len(row.after) <= DETAIL_VALUE for row in rest):
            detail = ", ".join(_change_words(row) for row in rest)
        sep = ", " if out else ""
        out += _mark(CHANGED, sep + text, (sep + detail) if detail else "")
    return out


def _change_words(row: ChangeRow) -> str:
    return f"{row.field} {row.before} → {row.after}" if row.before else f"{row.field} {row.after}"


class _Words(str):
    """Text already cleaned and written as words (a filter's output): shown as it is."""


class _Marked(_Words):
    """Summary text marked by the name/key filters (see :func:`_headline`)."""


def _mark(role: str, text: str, detail: str = "") -> _Marked:
    if not text:
        return _Marked("")
    detail_part = f"{_MID}{detail}" if detail else ""
    return _Marked(f"{_OPEN}{role}{_MID}{text}{detail_part}{_CLOSE}")


def _plain(value: object, ctx: Context | None = None) -> str:
    """Any template value as one clean line of words, cut at VALUE_LIMIT."""
    if isinstance(value, ChainableUndefined) or value is None:
        return ""
    values = ctx.get("_values") if ctx is not None else None
    text = (values if isinstance(values, Values) else _PLAIN_VALUES).text(value)
    return truncate(one_line(text), VALUE_LIMIT)


@pass_context
def _name(ctx: Context, value: object) -> _Marked:
    """A summary part that may be shortened to fit a channel (a job or contact name)."""
    return _mark(NAME, truncate(_plain(value, ctx), NAME_LIMIT))


@pass_context
def _key(ctx: Context, value: object) -> _Marked:
    """A summary part that is never cut (a status move, an amount)."""
    return _mark(KEY, _plain(value, ctx))


@pass_context
def _money(ctx: Context, value: object) -> str:
    """An amount in the event's currency (else ``[hirehop] currency``), grouped."""
    if isinstance(value, ChainableUndefined) or value is None or value == "":
        return ""
    values = ctx.get("_values")
    return _Words(truncate(one_line((values if isinstance(values, Values) else _PLAIN_VALUES)
                                    .amount(value)), VALUE_LIMIT))


@pass_context
def _finalize(ctx: Context, value: object) -> object:
    # Every interpolated value is folded to one line, so payload text cannot add
    # lines (fake "Label: value" facts) to a template's output, and cut short, so one
    # 5,000-character name cannot push the rest of a summary out of sight. Marked
    # text (the name/key filters, macros built from them) is already clean.
    if isinstance(value, _Words) or (isinstance(value, str) and _OPEN in value):
        return value
    if isinstance(value, int | Decimal) and not isinstance(value, bool):
        return value
    return _plain(value, ctx)


def _headline(text: str) -> tuple[Part, ...]:
    """The summary block as parts: plain text between the marks, marked parts with roles."""
    parts: list[Part] = []
    pos = 0
    for match in _MARKED.finditer(text):
        if match.start() > pos:
            parts.append(Part(text[pos:match.start()]))
        body, _, detail = match.group(2).partition(_MID)
        parts.append(Part(body, match.group(1), detail))
        pos = match.end()
    parts.append(Part(text[pos:]))
    # One line, single spaces, across the parts: fold each, then trim the ends.
    folded = [Part(_fold(p.text), p.role, _fold(p.detail)) for p in parts]
    folded = [p for p in folded if p.text]
    if folded:
        folded[0] = Part(folded[0].text.lstrip(), folded[0].role, folded[0].detail)
        folded[-1] = Part(folded[-1].text.rstrip(), folded[-1].role, folded[-1].detail.rstrip())
    return tuple(p for p in folded if p.text)


def _fold(text: str) -> str:
    """Line breaks and runs of spaces as one space, keeping a single edge space."""
    return fold(text.translate(_NO_MARKS))


def _deep_clean(value: Any) -> Any:
    """The payload with control, bidi and mark characters removed from every string."""
    if isinstance(value, str):
        if value.isprintable():  # the usual case: no control, bidi or mark character
            return value
        return clean_text(value).translate(_NO_MARKS)
    if isinstance(value, dict | Mapping):  # dict first: an ABC check costs more
        return {_deep_clean(str(k)): _deep_clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_deep_clean(v) for v in value]
    return value


_NO_MARKS = {ord(c): None for c in (_OPEN, _MID, _CLOSE)}


def _block_or_blank(node: nodes.Node) -> bool:
    """A block, or text that is only white space (between blocks, after a comment)."""
    if isinstance(node, nodes.Block):
        return True
    return isinstance(node, nodes.Output) and all(
        isinstance(part, nodes.TemplateData) and not part.data.strip() for part in node.nodes)


def _block(ctx: Any, name: str) -> str:
    chain = ctx.blocks.get(name)
    return "".join(chain[0](ctx)) if chain else ""


def _split_details(text: str) -> tuple[tuple[Fact, ...], tuple[str, ...]]:
    facts: list[Fact] = []
    notes: list[str] = []
    for raw in text.splitlines():
        line = _fold(raw).strip()
        if not line:
            continue
        label, sep, value = line.partition(": ")
        if sep and label and len(label) <= 40:
            if value.strip() and value.strip() != EMPTY:
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
            renderer.compile(name)
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
            renderer.render(_SAMPLE, name.removesuffix(".j2"), whole=True)
    return len(names)


_SAMPLE = parse_event({
    "event": "job.status.updated", "time": "2026-01-05 09:30:00", "user_name": "Sam Taylor",
    "job": 1, "data": {"NUMBER": 1, "JOB_NAME": "Sample", "STATUS": 2, "OUT_DATE": "2026-01-06 09:00:00"},
    "changes": {"STATUS": {"from": 1, "to": 2}},
})


def _syntax_error(exc: TemplateSyntaxError, name: str) -> ConfigError:
    return ConfigError(exc.message or "syntax error", where=exc.filename or name,
                       key=f"line {exc.lineno}")
