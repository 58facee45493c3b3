"""Money as people read it: currency from the event, else [hirehop] currency, grouped (Babel)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from notifybot.config import load
from notifybot.errors import ConfigError
from notifybot.money import Currency, MoneyFormat, to_decimal

HEAD = '[hirehop]\nexport_key = "k"\n'
GBP = MoneyFormat("GBP")


@pytest.mark.parametrize(
    ("value", "expected"),
    [("1008.00", "£1,008.00"), (15000, "£15,000.00"), (15000.0, "£15,000.00"),
     ("12500", "£12,500.00"), ("-12.5", "-£12.50"), ("1,234.5", "£1,234.50"), (0, "£0.00")],
)
def test_configured_currency_is_grouped_with_its_symbol(value: object, expected: str) -> None:
    assert GBP.format(value) == expected


@pytest.mark.parametrize("value", ["", "abc", None, True, [], {}, "1e30", float("nan"), "2026-09-25"])
def test_what_is_not_an_amount_is_not_formatted(value: object) -> None:
    assert GBP.format(value) is None


def test_without_a_currency_numbers_are_plain_and_grouped() -> None:
    assert MoneyFormat().format("12500") == "12,500.00"


def test_the_locale_decides_the_separators() -> None:
    assert MoneyFormat("EUR", "de_DE").format("15000.5") == "15.000,50\xa0€"
    assert MoneyFormat(None, "de_DE").format("12500") == "12.500,00"


def test_the_events_currency_object_wins_over_the_configured_one() -> None:
    currency = Currency.from_payload({"CODE": "EUR", "SYMBOL": "€", "DECIMALS": 2,
                                      "DECIMAL_SEPARATOR": ",", "THOUSAND_SEPARATOR": ".",
                                      "SYMBOL_POSITION": 1})
    assert GBP.format("15000.5", currency) == "15.000,50 €"
    assert GBP.format("-3", currency) == "-3,00 €"


@pytest.mark.parametrize(
    ("currency", "expected"),
    [({"SYMBOL": "$", "DECIMALS": 0}, "$1,009"),
     ({"CODE": "USD"}, "US$1,008.50"),
     ({"CODE": "JPY", "SYMBOL": "¥"}, "¥1,009"),  # the code's own digits when DECIMALS is missing
     ({"CODE": "NOPE"}, "£1,008.50"),  # an unknown code falls back to the configured currency
     ("EUR", "€1,008.50")],
)
def test_partial_currency_objects(currency: Any, expected: str) -> None:
    assert GBP.format("1008.5", Currency.from_payload(currency)) == expected


@pytest.mark.parametrize("value", [None, "", {}, [], 3, {"NAME": None}])
def test_no_usable_currency_object(value: object) -> None:
    assert Currency.from_payload(value) is None


@pytest.mark.parametrize(("value", "expected"), [("2", 2), (" 2.50 ", 2.5), ("1,000", 1000),
                                                 ("x", None), (True, None), ("inf", None)])
def test_to_decimal(value: object, expected: float | None) -> None:
    result = to_decimal(value)
    assert (None if result is None else float(result)) == expected


# --- [hirehop] currency and locale --------------------------------------------------------


def test_currency_and_locale_defaults(tmp_path: Path) -> None:
    (tmp_path / "s.toml").write_text(HEAD, encoding="utf-8")
    config = load(tmp_path / "s.toml", {})
    assert (config.hirehop.currency, config.hirehop.locale) == (None, "en_GB")


def test_currency_and_locale_are_read(tmp_path: Path) -> None:
    (tmp_path / "s.toml").write_text(HEAD + 'currency = "gbp"\nlocale = "de_DE"\n', encoding="utf-8")
    config = load(tmp_path / "s.toml", {})
    assert (config.hirehop.currency, config.hirehop.locale) == ("GBP", "de_DE")


@pytest.mark.parametrize(
    ("line", "key"),
    [('currency = "POUNDS"', "hirehop.currency"), ("currency = 826", "hirehop.currency"),
     ('locale = "xx_YY"', "hirehop.locale"), ('locale = ""', "hirehop.locale")],
)
def test_bad_currency_or_locale_names_the_key(tmp_path: Path, line: str, key: str) -> None:
    (tmp_path / "s.toml").write_text(HEAD + line + "\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load(tmp_path / "s.toml", {})
    assert caught.value.key == key
