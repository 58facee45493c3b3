"""What an event is about, read from its name and its data: the words a message is built from.

* the entity and the action from the event name (``contact.person.updated`` →
  "Contact", "updated");
* the name to call the thing by (``NAME``, ``TITLE``, ``JOB_NAME``, ``COMPANY``,
  ``NUMBER``..., the id last), who did it, an amount, an invoice's total;
* the main fields of ``data`` as facts, and a custom-fields change as one row per field.

Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from .events import Event
from .messages import ChangeRow, Fact
from .money import Currency, to_decimal
from .statuses import StatusLabels, StatusTable
from .values import EMPTY, Values, field_label, parse_json_object

FACTS_LIMIT = 8  # data fields listed by MainFields

_NAME_FIELDS = ("NAME", "FULL_NAME", "CONTACT_NAME", "TITLE", "JOB_NAME", "COMPANY",
                "COMPANY_NAME", "CLIENT", "DESCRIPTION", "NUMBER", "INVOICE_NUMBER",
                "REFERENCE", "REF", "CODE", "BARCODE", "EMAIL", "ID", "id")
_FIRST_FIELDS = ("COMPANY", "CLIENT", "CONTACT", "EMAIL", "TELEPHONE", "PHONE", "MOBILE",
                 "STATUS", "METHOD", "TOTAL", "AMOUNT")
_HIDDEN_FIELDS = frozenset({"CURRENCY", "CUSTOM_INDEX", "COLOUR", "KIND", "MULTIPLIER"})
_ENTITIES = {("contact", "person"): "Contact", ("contact", "company"): "Company"}
_ASPECTS = frozenset({"status"})  # invoice.status.updated is about the invoice
_AMOUNT_FIELDS = ("AMOUNT", "TOTAL", "GROSS", "VALUE", "PAID", "DEBIT", "CREDIT")
_TOTAL_FIELDS = ("TOTAL", "GROSS", "TOTAL_GROSS", "DEBIT", "AMOUNT")
CLIENT_FIELDS = ("CLIENT", "COMPANY", "CLIENT_NAME", "COMPANY_NAME", "CUSTOMER")


def describe(event_name: str) -> tuple[str, str]:
    """The entity and the action an event name speaks of.

    ``contact.person.updated`` → ("Contact", "updated"), ``payment.created`` →
    ("Payment", "created"), ``stock.item.updated`` → ("Stock item", "updated").
    """
    words = [w for w in event_name.split(".") if w]
    if len(words) < 2:
        return ("HireHop event", "received") if not words or words == ["unknown"] else (
            _words(words[0]).capitalize(), "received")
    subject, action = words[:-1], _words(words[-1])
    if len(subject) > 1 and subject[-1].lower() in _ASPECTS:
        subject = subject[:-1]
    known = _ENTITIES.get((subject[0].lower(), subject[1].lower())) if len(subject) > 1 else None
    entity = known or " ".join(_words(w) for w in subject[:2]).capitalize()
    return entity, action if action.endswith("ed") else f"{action} event"


def _words(text: str) -> str:
    return " ".join(text.replace("_", " ").replace("-", " ").split()).lower()


def actor(event: Event) -> str:
    """Who did it: the user's name, else their email, else HireHop itself."""
    return " ".join(event.user_name.split()) or " ".join(event.user_email.split()) or "HireHop"


def currency_of(event: Event) -> Currency | None:
    """The event's own ``CURRENCY`` (in ``data``, or beside it), if it sends one."""
    return (Currency.from_payload(event.data.get("CURRENCY"))
            or Currency.from_payload(event.payload.get("CURRENCY")))


def as_mapping(value: object) -> Mapping[str, Any]:
    """An object, or a JSON object sent as a string (search_list's CUSTOM_FIELDS); else ``{}``."""
    if isinstance(value, Mapping):
        return value
    if isinstance(value, str) and value.lstrip().startswith("{"):
        parsed = parse_json_object(value)
        return parsed if isinstance(parsed, Mapping) else {}
    return {}


def best_name(data: Mapping[str, Any], values: Values) -> tuple[str, tuple[str, ...]]:
    """The name to call the thing by, and the fields it came from (NAME ... ID last)."""
    first, last = (values.text(data.get(k)) for k in ("FIRST_NAME", "LAST_NAME"))
    for field in _NAME_FIELDS:
        if field in ("TITLE",) and (first or last):
            return f"{first} {last}".strip(), ("FIRST_NAME", "LAST_NAME")
        value = data.get(field)
        if isinstance(value, Mapping | list):
            continue
        text = values.text(value)
        if text:
            return text, (field,)
    if first or last:
        return f"{first} {last}".strip(), ("FIRST_NAME", "LAST_NAME")
    return "", ()


def first_text(data: Mapping[str, Any], fields: Iterable[str], values: Values) -> str:
    """The first of ``fields`` that ``data`` has a value for, in words (``""`` if none)."""
    for field in fields:
        value = data.get(field)
        if not isinstance(value, Mapping | list):
            text = values.text(value)
            if text:
                return text
    return ""


def first_amount(data: Mapping[str, Any], values: Values) -> str:
    """The event's amount (``AMOUNT``, ``TOTAL``...) as money, ``""`` if it has none."""
    for field in _AMOUNT_FIELDS:
        if to_decimal(data.get(field)) is not None:
            return values.amount(data[field])
    return ""


def invoice_total(data: Mapping[str, Any], values: Values) -> str:
    """An invoice's total: TOTAL (or GROSS...), else NET + TAX."""
    for field in _TOTAL_FIELDS:
        if to_decimal(data.get(field)) is not None:
            return values.amount(data[field])
    net, tax = to_decimal(data.get("NET")), to_decimal(data.get("TAX", data.get("VAT")))
    if net is not None and tax is not None:
        return values.amount(net + tax)
    return ""


class MainFields:
    """``fields()`` in a template: the main scalar data fields as facts, capped.

    Leaves out what the message already says (the name, what changed, the job
    link), ids and codes, and empty values; custom fields are listed by their
    labels. ``fields("AMOUNT", "METHOD")`` leaves those out too.
    """

    def __init__(self, event: Event, values: Values, name_fields: tuple[str, ...],
                 labels: StatusLabels) -> None:
        self.event, self.values, self.name_fields = event, values, name_fields
        self.table: StatusTable | None = labels.for_event(event.name)

    def __call__(self, *skip: str, limit: int = FACTS_LIMIT) -> list[Fact]:
        data = self.event.data
        leave_out = {f.upper() for f in (*skip, *self.name_fields)}
        leave_out |= {c.field.upper() for c in self.event.changes}
        order = [f for f in _FIRST_FIELDS if f in data] + [
            f for f in data if f not in _FIRST_FIELDS and (f == f.upper() or f.upper() not in data)]
        facts: list[Fact] = []
        for field in order:
            if len(facts) >= limit:
                break
            if field.upper() in leave_out or not self._shown(field):
                continue
            value = data[field]
            if field.upper() == "CUSTOM_FIELDS":
                facts += [Fact(label, text) for label, text in self.values.flat(as_mapping(value))]
            elif field.upper() == "STATUS" and self.table is not None:
                facts.append(Fact("Status", self.table.label(value)))
            elif not isinstance(value, Mapping) and not _has_mappings(value):
                text = self.values.text(value, field)
                if text:
                    facts.append(Fact(field_label(field), text))
        return facts[:limit]

    def _shown(self, field: str) -> bool:
        upper = field.upper()
        words = set(re.split(r"[^A-Z0-9]+", upper))
        if field.startswith("_") or upper in _HIDDEN_FIELDS or "ID" in words:
            return False
        if upper == "MONEY" and self.event.name.startswith("job."):
            return False  # HireHop's MONEY is empty or 0 for most jobs (reference §4.1)
        # The job number is in the link and the summary.
        return not (upper in ("NUMBER", "JOB", "MAIN_ID") and self.event.name.startswith("job."))


def _has_mappings(value: object) -> bool:
    return isinstance(value, list | tuple) and any(isinstance(v, Mapping) for v in value)


def custom_rows(before: object, after: object, values: Values) -> list[ChangeRow]:
    """A CUSTOM_FIELDS change as one row per custom field that differs."""
    old = dict(values.flat(as_mapping(before)))
    new = dict(values.flat(as_mapping(after)))
    rows = []
    for label in [*new, *(k for k in old if k not in new)]:
        if old.get(label) != new.get(label):
            rows.append(ChangeRow(label, old.get(label) or EMPTY, new.get(label) or EMPTY))
    return rows


def upper_aliases(payload: dict[str, Any]) -> dict[str, Any]:
    """``data`` and ``changes`` with an upper-case name for each lower-case key.

    HireHop's fields are upper-case, but some of its objects (billing rows) use
    ``number``, ``debit``, ``status``: templates and the renderer read one spelling.
    """
    out = dict(payload)
    for part in ("data", "changes"):
        table = out.get(part)
        if isinstance(table, Mapping):
            # data keeps both spellings (templates may use either); a change is listed
            # once, under its upper-case name.
            merged = dict(table) if part == "data" else {}
            for key, value in table.items():
                merged.setdefault(str(key).upper(), value)
            out[part] = merged
    return out
