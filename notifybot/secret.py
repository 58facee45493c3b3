"""A string that does not reveal itself in logs, reprs, tracebacks or errors."""

from __future__ import annotations

import hmac
import re
from collections.abc import Iterable

MASK = "**********"


class Secret:
    """Holds a credential. ``str()`` and ``repr()`` are masked; ``reveal()`` gives the value."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The real value, for handing to a client library, never for printing."""
        return self._value

    def matches(self, candidate: str) -> bool:
        """Compare in constant time, so the comparison leaks nothing by its duration."""
        return hmac.compare_digest(_bytes(self._value), _bytes(candidate))

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        # Bytes: compare_digest refuses str holding anything but ASCII.
        return isinstance(other, Secret) and hmac.compare_digest(_bytes(self._value),
                                                                 _bytes(other._value))

    def __hash__(self) -> int:
        return hash(self._value)

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__


def _bytes(text: str) -> bytes:
    # surrogatepass: text holding a lone surrogate (a hostile candidate, or an environment
    # variable that was not UTF-8) is simply unequal to a real key, never an error.
    return text.encode("utf-8", "surrogatepass")


def redact(text: str, secrets: Iterable[Secret | None]) -> str:
    """``text`` with each secret's value masked where it stands as a whole word.

    Only whole words: a user name such as ``smtp`` must not turn the reason
    ``smtp: cannot connect`` into ``*****: cannot connect`` (or ``smt*****``).
    """
    for secret in secrets:
        if secret:
            value = secret.reveal()
            text = re.sub(rf"(?<!\w){re.escape(value)}(?!\w)", MASK, text)
    return text
