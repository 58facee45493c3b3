"""HireHop field names and values in words a person reads: never a Python or JSON repr.

* ``JOB_END`` → ``Ends``, ``PHONE_NUMBER`` → ``Phone number``;
* null and empty → ``—``, booleans → ``Yes``/``No``, the zero date → ``—``;
* custom fields ``{"po": {"value": "PO-1"}}`` → ``Po: PO-1``; lists → ``a, b``;
* amounts in money fields → ``£1,008.00`` (see :mod:`notifybot.money`);
* dates → ``Wed 10 Jun 2026, 09:00`` (HireHop's local dates are not shifted).

Pure: no I/O.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from .money import Currency, MoneyFormat

EMPTY = "—"
FIELD_NAMES = {
    "JOB_NAME": "Job name", "OUT_DATE": "Out", "JOB_DATE": "Starts", "JOB_END": "Ends",
    "RETURN_DATE": "Returns", "CLIENT_REF": "Client ref", "MANAGER2": "Second manager",
    "DUE_DATE": "Due", "TAX_POINT": "Tax point", "NET": "Net", "TAX": "Tax", "QTY": "Qty",
    "CREATE_DATE": "Created", "CREATE_USER": "Created by", "USER_NAME": "Manager",
    "INVOICE_NUMBER": "Invoice", "VAT": "VAT", "VAT_RATE": "VAT rate", "EMAIL": "Email",
    "DEPOT": "Depot", "CUSTOM_FIELDS": "Custom fields", "PO_NUMBER": "PO number",
    "TELEPHONE": "Telephone", "MOBILE": "Mobile", "ID": "ID",
}
# Words in a field name that make its numbers money (NET, TAX, TOTAL_NET, UNIT_PRICE...)
# and words that make them something else (VAT_RATE, TAX_POINT, PRICE_GROUP, ACC_NOMINAL_ID).
MONEY_WORDS = frozenset({"NET", "TAX", "VAT", "TOTAL", "AMOUNT", "PRICE", "MONEY", "GROSS",
                         "DEBIT", "CREDIT", "OWING", "OWED", "BALANCE", "DEPOSIT", "COST",
                         "SUBTOTAL", "CHARGE", "FEE", "VALUE"})
NOT_MONEY_WORDS = frozenset({"RATE", "PERCENT", "PC", "POINT", "DATE", "ID", "CODE", "GROUP",
                             "NOMINAL", "TYPE", "COUNT", "QTY", "NUMBER", "DAYS", "HRS"})
# HireHop's 0/1 flags (reference/hirehop.md §5.3).
FLAG_FIELDS = frozenset({"LOCKED", "INTERNAL", "USE_SALES_TAX", "ALLOW_EARLY_RETURNS",
                         "DURATION_LOCKED", "VIRTUAL", "EXPORTED", "ARCHIVED", "DELETED"})
_ZERO_DATE = re.compile(r"^0000-00-00( 00:00(:00)?)?$")
_WHOLE_NUMBER = re.compile(r"^-?\d+\.0+$")  # "1.00", as HireHop sends quantities
_LOCAL_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}(:\d{2})?)?$")
_LIST_ITEMS = 20  # items of a list shown before "and N more"


def field_label(name: object) -> str:
    """``JOB_END`` → ``Ends``; other HireHop field names in sentence case."""
    text = " ".join(str(name).split())
    known = FIELD_NAMES.get(text.upper())
    if known:
        return known
    # A label never carries ": " (it would read as a second "Label: value").
    words = text.replace("_", " ").replace(":", " ").strip()
    return " ".join(words.split()).capitalize() or text or "Field"


@functools.lru_cache(maxsize=1024)  # a few dozen field names, asked about for every event
def is_money_field(name: str) -> bool:
    """Whether a field's numbers are amounts of money, by the words in its name."""
    words = set(re.split(r"[^A-Z0-9]+", name.upper()))
    return bool(words & MONEY_WORDS) and not words & NOT_MONEY_WORDS


def is_zero_date(value: object) -> bool:
    return isinstance(value, str) and bool(_ZERO_DATE.match(value.strip()))


def readable_date(text: str) -> str | None:
    """HireHop's local ``YYYY-MM-DD[ hh:mm[:ss]]`` made readable; None if it is not one."""
    text = text.strip()
    if is_zero_date(text):
        return ""
    if not _LOCAL_TIME.match(text):
        return None
    try:
        parsed = datetime.fromisoformat(text.replace(" ", "T"))
    except ValueError:  # "2026-02-30": not a date after all
        return None
    if len(text) == 10:  # a date alone, such as an invoice's DUE_DATE
        return parsed.strftime("%a %d %b %Y")
    return parsed.strftime("%a %d %b %Y, %H:%M")


@dataclass(frozen=True)
class Values:
    """Turns one event's values into text: money in the event's currency, dates, flags."""

    money: MoneyFormat = field(default_factory=MoneyFormat)
    currency: Currency | None = None

    def amount(self, value: object) -> str:
        """``value`` as money, or as readable text when it is not a number."""
        shown = self.money.format(value, self.currency)
        return shown if shown is not None else self.text(value)

    def text(self, value: object, field: str = "") -> str:
        """Any value as words; ``""`` for nothing (callers show ``—`` where it matters)."""
        if isinstance(value, str):  # most values: a string, often a name in no need of words
            return self._string(value, field)
        if value is None:
            return ""
        if isinstance(value, bool):
            return "Yes" if value else "No"
        if field and field.upper() in FLAG_FIELDS and str(value).strip() in ("0", "1"):
            return "Yes" if str(value).strip() == "1" else "No"
        if field and is_money_field(field):
            shown = self.money.format(value, self.currency)
            if shown is not None:
                return shown
        if isinstance(value, float):
            return str(int(value)) if value.is_integer() else repr(value)
        if isinstance(value, dict | Mapping):  # dict first: an ABC check costs more
            return "; ".join(f"{label}: {text}" for label, text in self.flat(value))
        if isinstance(value, list | tuple):
            return self._items(value)
        text = str(value)
        return self._words(text, text.strip(), field)

    def _string(self, text: str, field: str) -> str:
        """:meth:`text` of a string: the zero date, flags and money first (by ``field``)."""
        bare = text.strip()
        if bare.startswith("0") and is_zero_date(bare):
            return ""
        if field:
            if field.upper() in FLAG_FIELDS and bare in ("0", "1"):
                return "Yes" if bare == "1" else "No"
            if is_money_field(field):
                shown = self.money.format(text, self.currency)
                if shown is not None:
                    return shown
        return self._words(text, bare, field)

    def _words(self, text: str, bare: str, field: str) -> str:
        """The last checks of :meth:`text`: custom fields sent as JSON, numbers, dates."""
        if field and field.upper() == "CUSTOM_FIELDS" and bare.startswith("{"):
            return self.text(parse_json_object(text), field="")  # search_list sends a string
        first = bare[:1]
        if not first.isdigit() and first != "-":  # neither a number nor a date: as it is
            return text
        if _WHOLE_NUMBER.match(bare):
            return bare.split(".")[0]
        date = readable_date(bare)
        return text if date is None else date

    def shown(self, value: object, field: str = "") -> str:
        """Like :meth:`text`, with ``—`` for nothing: for a change's from and to."""
        return self.text(value, field) or EMPTY

    def flat(self, mapping: Mapping[str, object]) -> list[tuple[str, str]]:
        """A custom-fields-like object as ``(label, value)`` pairs, empty ones left out.

        ``{"po_number": {"value": "PO-1", "type": "text"}}`` → ``[("PO number", "PO-1")]``.
        """
        pairs = []
        for key, raw in mapping.items():
            value = raw.get("value") if isinstance(raw, Mapping) and "value" in raw else raw
            label = raw.get("label") if isinstance(raw, Mapping) else None
            text = self.text(value, str(key))
            if text:
                pairs.append((field_label(label if isinstance(label, str) and label.strip()
                                          else key), text))
        return pairs

    def _items(self, items: list[object] | tuple[object, ...]) -> str:
        texts = [t for t in (self.text(item) for item in items[:_LIST_ITEMS]) if t]
        more = len(items) - _LIST_ITEMS
        return ", ".join(texts) + (f" and {more} more" if more > 0 else "")


def parse_json_object(text: str) -> object:
    """A JSON object sent as a string (search_list's CUSTOM_FIELDS); the text if it is not one."""
    try:
        value = json.loads(text)
    except ValueError:
        return text
    return value if isinstance(value, Mapping) else text
