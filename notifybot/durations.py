"""Durations as people write them in the configuration and on the command line.

``90`` (seconds), ``"30s"``, ``"15m"``, ``"2h"``, ``"1d"`` and combinations such
as ``"1h30m"``. Pure; a bad value is a :class:`~notifybot.errors.ConfigError`
naming the key.
"""

from __future__ import annotations

import re

from .errors import ConfigError

_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])")
_WHOLE = re.compile(r"\s*(?:\d+(?:\.\d+)?\s*[smhdw]\s*)+")


def parse_duration(value: object, *, key: str, minimum: float = 0.0) -> float:
    """Seconds from a number or a ``"30s"``/``"15m"``/``"2h"``/``"1d"`` string.

    Raises ConfigError (naming ``key``) for anything else, and for a value
    below ``minimum`` seconds.
    """
    if isinstance(value, bool):  # ``true`` is an int in Python, not a duration
        raise ConfigError(_HINT, key=key)
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and _WHOLE.fullmatch(value.lower()):
        seconds = sum(float(n) * _UNITS[u] for n, u in _PART.findall(value.lower()))
    elif isinstance(value, str) and _is_number(value):
        seconds = float(value)
    else:
        raise ConfigError(_HINT, key=key)
    if seconds < minimum or seconds != seconds:  # NaN is not a duration either
        raise ConfigError(f"must be at least {format_duration(minimum)}", key=key)
    return seconds


def format_duration(seconds: float) -> str:
    """``90`` → ``"1m30s"``; whole units only, for messages and tables."""
    if seconds < 1:
        return f"{seconds:g}s"
    parts = []
    left = round(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, left = divmod(left, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


_HINT = 'must be a duration: seconds, or a string such as "30s", "15m", "2h", "1d"'
