"""What every channel provides: a sender that makes one attempt and says how it went.

A channel module (``console``, ``slack``, ``telegram``, ``email``) exposes
``build(name, options) -> Sender``, which validates its own config keys and raises
:class:`~notifybot.errors.ConfigError` naming ``channels.NAME.KEY``, and a
``classify`` function that turns the client library's failures into
:mod:`notifybot.errors` delivery errors.

A sender never sleeps and never retries: the outbox owns both.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from notifybot.errors import ConfigError


@dataclass(frozen=True)
class Receipt:
    """Proof of one delivery: Slack ``ts``, Telegram ``message_id``, the SMTP reply..."""

    detail: str


class Sender(Protocol):
    """One destination. ``kind`` picks the formatter; ``destination`` is the pacing key."""

    kind: str
    name: str
    destination: str
    pace: float  # seconds to leave between two messages to this destination

    async def open(self) -> None:
        """Acquire connections or sessions; called once when the server starts."""

    async def close(self) -> None:
        """Release what ``open`` acquired."""

    async def send(self, payload: Mapping[str, Any]) -> Receipt:
        """One attempt. Returns a receipt or raises a :class:`~notifybot.errors.DeliveryError`."""
        ...


def require(options: Mapping[str, Any], key: str, *, channel: str, kind: type = str) -> Any:
    """The value of a required channel option, or a ConfigError that names it."""
    value = options.get(key)
    if value is None or value == "":
        raise ConfigError(f"a {options.get('type')} channel needs {key!r}",
                          key=f"channels.{channel}.{key}")
    if not isinstance(value, kind):
        raise ConfigError(f"must be a {kind.__name__}", key=f"channels.{channel}.{key}")
    return value


def seconds(options: Mapping[str, Any], key: str, default: float, *, channel: str,
            positive: bool = False) -> float:
    """A duration option (``timeout``, ``pace``): a number, at least 0, or above 0 if ``positive``."""
    value = options.get(key, default)
    # bool is an int in Python; ``timeout = true`` is a mistake, not 1 second.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError("must be a number of seconds", key=f"channels.{channel}.{key}")
    if value < 0 or (positive and value == 0):
        bound = "more than" if positive else "at least"
        raise ConfigError(f"must be {bound} 0", key=f"channels.{channel}.{key}")
    return float(value)
