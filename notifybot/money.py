"""Money shown the way people read it: ``£15,000.00``, not ``15000``.

An amount is formatted with the event's own ``CURRENCY`` object when HireHop
sends one (``SYMBOL``, ``DECIMALS``, ``DECIMAL_SEPARATOR``, ``THOUSAND_SEPARATOR``,
``SYMBOL_POSITION``; reference/hirehop.md §4.1), else with ``[hirehop] currency``
(an ISO code such as ``GBP``), else as a plain grouped number (``12,500.00``).
Grouping, symbols and digits come from Babel (CLDR data) in the configured
locale. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from babel import Locale, UnknownLocaleError
from babel.numbers import (
    UnknownCurrencyError,
    format_currency,
    format_decimal,
    get_currency_precision,
    get_currency_symbol,
    validate_currency,
)

DEFAULT_LOCALE = "en_GB"
_PLAIN_DIGITS = 2
_LARGEST = Decimal(10) ** 15


@dataclass(frozen=True)
class Currency:
    """A currency as an event describes it; every part is optional."""

    code: str = ""
    symbol: str = ""
    decimals: int | None = None
    decimal_separator: str = ""
    thousand_separator: str | None = None
    symbol_after: bool = False

    @classmethod
    def from_payload(cls, value: object) -> Currency | None:
        """HireHop's ``CURRENCY`` object (or a bare code such as ``"EUR"``); None if unusable."""
        if isinstance(value, str) and value.strip():
            return cls(code=value.strip().upper())
        if not isinstance(value, Mapping):
            return None
        currency = cls(
            code=_text(value.get("CODE")).upper(),
            symbol=_text(value.get("SYMBOL")),
            decimals=_small_int(value.get("DECIMALS")),
            decimal_separator=_text(value.get("DECIMAL_SEPARATOR"), strip=False),
            thousand_separator=(None if value.get("THOUSAND_SEPARATOR") is None
                                else _text(value.get("THOUSAND_SEPARATOR"), strip=False)),
            symbol_after=_small_int(value.get("SYMBOL_POSITION")) == 1,
        )
        return currency if currency != cls() else None


@dataclass(frozen=True)
class MoneyFormat:
    """How amounts are shown: the configured currency (if any) and locale."""

    currency: str | None = None
    locale: str = DEFAULT_LOCALE

    def format(self, value: object, currency: Currency | None = None) -> str | None:
        """``value`` as money, or None when it is not a number."""
        amount = to_decimal(value)
        if amount is None:
            return None
        if currency is not None and (currency.symbol or currency.decimals is not None
                                     or currency.decimal_separator
                                     or currency.thousand_separator is not None):
            return self._custom(amount, currency)
        code = (currency.code if currency is not None and _known(currency.code)
                else self.currency)
        if code:
            return format_currency(amount, code, locale=self.locale)
        return format_decimal(_quantize(amount, _PLAIN_DIGITS), format="#,##0.00",
                              locale=self.locale)

    def _custom(self, amount: Decimal, currency: Currency) -> str:
        code = currency.code if _known(currency.code) else (self.currency or "")
        digits = currency.decimals
        if digits is None:
            digits = get_currency_precision(code) if code else _PLAIN_DIGITS
        pattern = "#,##0" + ("." + "0" * digits if digits > 0 else "")
        # Babel groups in a neutral locale; the event's own separators then replace
        # "," and "." (placeholders first, so "." → "," and "," → "." do not collide).
        number = format_decimal(_quantize(abs(amount), digits), format=pattern, locale="en")
        thousands = "," if currency.thousand_separator is None else currency.thousand_separator
        decimal = currency.decimal_separator or "."
        number = (number.replace(",", "\0").replace(".", "\1")
                  .replace("\0", thousands).replace("\1", decimal))
        symbol = currency.symbol or (get_currency_symbol(code, self.locale) if code else "")
        shown = f"{number} {symbol}" if currency.symbol_after and symbol else f"{symbol}{number}"
        return f"-{shown}" if amount < 0 else shown


def to_decimal(value: object) -> Decimal | None:
    """``1008``, ``1008.0``, ``"1008.00"``, ``"1,008.00"`` as a Decimal; else None."""
    if isinstance(value, bool) or value is None:
        return None
    text = (repr(value) if isinstance(value, float) else str(value)).strip().replace(",", "")
    if not text or len(text) > 40:
        return None
    try:
        amount = Decimal(text)
    except InvalidOperation:
        return None
    # Beyond a trillion it is not an amount of money but an id or a typo: shown as sent.
    return amount if amount.is_finite() and abs(amount) < _LARGEST else None


def check_currency(code: str) -> str | None:
    """Why ``code`` is not a currency Babel knows (None when it is fine)."""
    try:
        validate_currency(code)
    except UnknownCurrencyError:
        return f"unknown currency code {code!r} (use an ISO 4217 code such as \"GBP\")"
    return None


def check_locale(name: str) -> str | None:
    """Why ``name`` is not a locale Babel knows (None when it is fine)."""
    try:
        Locale.parse(name)
    except (UnknownLocaleError, ValueError, TypeError):
        return f"unknown locale {name!r} (such as \"en_GB\" or \"de_DE\")"
    return None


def _known(code: str) -> bool:
    return bool(code) and check_currency(code) is None


def _quantize(amount: Decimal, digits: int) -> Decimal:
    return amount.quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP)


def _small_int(value: object) -> int | None:
    amount = to_decimal(value)
    if amount is None or amount != amount.to_integral_value() or not 0 <= amount <= 8:
        return None
    return int(amount)


def _text(value: object, *, strip: bool = True) -> str:
    if value is None or isinstance(value, bool | Mapping | list):
        return ""
    text = str(value)[:8]  # a symbol or separator, never a paragraph
    return text.strip() if strip else text
