"""HireHop values in words: never a Python or JSON repr."""

from __future__ import annotations

import pytest

from notifybot.money import Currency, MoneyFormat
from notifybot.values import EMPTY, Values, field_label, is_money_field

GBP = Values(MoneyFormat("GBP"))


@pytest.mark.parametrize(
    ("value", "field", "expected"),
    [(None, "", ""), ("", "", ""), (True, "", "Yes"), (False, "", "No"),
     ("0000-00-00 00:00:00", "OUT_DATE", ""), ("0000-00-00", "DUE_DATE", ""),
     ("2026-06-10 09:00:00", "OUT_DATE", "Wed 10 Jun 2026, 09:00"),
     ("2026-10-25", "DUE_DATE", "Sun 25 Oct 2026"), ("2026-02-30", "", "2026-02-30"),
     ([1, 2, "x"], "", "1, 2, x"), ([], "", ""), ([None, "a"], "", "a"),
     ({"po": {"value": "PO-1"}, "crew": {"value": ""}}, "CUSTOM_FIELDS", "Po: PO-1"),
     ('{"po_number": {"value": "PO-1"}}', "CUSTOM_FIELDS", "PO number: PO-1"),
     ({"a": {"b": 1}}, "", "A: B: 1"), (2.0, "", "2"), (2.5, "", "2.5"), ("1.00", "QTY", "1"),
     ("1", "LOCKED", "Yes"), (0, "INTERNAL", "No"), (1, "QTY", "1"),
     ("840.00", "NET", "£840.00"), (12500, "TOTAL_NET", "£12,500.00"),
     ("20", "VAT_RATE", "20"), ("2026-09-25 00:00:00", "TAX_POINT", "Fri 25 Sep 2026, 00:00"),
     ("", "NET", ""), ("-2.00", "QTY", "-2"), (" Sam Taylor ", "", " Sam Taylor "),
     (" 0000-00-00 ", "", ""), ("-", "", "-"), ("12 Jun", "", "12 Jun")],
)
def test_values_in_words(value: object, field: str, expected: str) -> None:
    assert GBP.text(value, field) == expected


def test_a_change_shows_nothing_as_a_dash() -> None:
    assert GBP.shown(None) == GBP.shown("") == GBP.shown("0000-00-00 00:00:00") == EMPTY
    assert GBP.shown("Hall") == "Hall"


def test_long_lists_say_how_many_more() -> None:
    assert GBP.text(list(range(25))).endswith("19 and 5 more")


def test_money_uses_the_events_currency() -> None:
    euros = Values(MoneyFormat("GBP"), Currency(code="EUR", symbol="€", decimals=2))
    assert euros.text("1008", "AMOUNT") == "€1,008.00"
    assert euros.amount("x") == "x"


@pytest.mark.parametrize(
    ("name", "money"),
    [("NET", True), ("TAX", True), ("TOTAL", True), ("AMOUNT", True), ("UNIT_PRICE", True),
     ("MONEY", True), ("VAT", True), ("VAT_RATE", False), ("TAX_POINT", False),
     ("PRICE_GROUP", False), ("ACC_NOMINAL_ID", False), ("NAME", False), ("QTY", False)],
)
def test_money_fields_by_name(name: str, money: bool) -> None:
    assert is_money_field(name) is money


@pytest.mark.parametrize(
    ("name", "expected"),
    [("JOB_END", "Ends"), ("CLIENT_REF", "Client ref"), ("PHONE_NUMBER", "Phone number"),
     ("po_number", "PO number"), ("NOTES\nRefund: approved", "Notes refund approved"),
     ("STATUS", "Status"), ("x", "X"), ("", "Field")],
)
def test_field_labels(name: str, expected: str) -> None:
    assert field_label(name) == expected
