"""What every channel provides: a sender that makes one attempt and says how it went.

A channel module (``console``, ``slack``, ``telegram``, ``email``) exposes
``build(name, options) -> Sender``, which validates its own config keys and raises
:class:`~notifybot.errors.ConfigError` naming ``channels.NAME.KEY``, and a
``classify`` function that turns the client library's failures into
:mod:`notifybot.errors` delivery errors.

A sender never sleeps and never retries: the outbox owns both.

Threads (docs/architecture.md, "Conversations"): a sender that declares
``replies`` posts a message as a reply when its :class:`SendContext` carries the
root's handle, and returns its own handle in the :class:`Receipt`; one that
declares ``edits`` can rewrite a message it sent (the root, kept current). A
reply or edit whose root is gone raises :class:`~notifybot.errors.ThreadGone`;
the outbox then starts a new root, so no message is lost or dead for that.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from notifybot.errors import ConfigError


@dataclass(frozen=True)
class Receipt:
    """Proof of one delivery.

    ``detail`` is for people (the SMTP reply, a ``ts``); ``handle`` is what a later
    message replies to or an edit targets: Slack ``ts``, Telegram ``message_id``,
    email ``Message-ID``. None where the channel has no such thing (console).
    """

    detail: str
    handle: str | None = None


@dataclass(frozen=True)
class SendContext:
    """Where in a conversation a message goes.

    ``thread_key`` is None for a standalone message. With a key, ``root`` is the
    handle to reply to, or None when this message starts the thread (it becomes
    the root). ``broadcast`` asks a reply to show in the channel too (Slack
    ``reply_broadcast``). ``subject`` is the thread's steady title (email threads
    keep one subject per job).
    """

    thread_key: str | None = None
    root: str | None = None
    broadcast: bool = False
    subject: str | None = None

    @property
    def is_reply(self) -> bool:
        return self.thread_key is not None and self.root is not None


STANDALONE = SendContext()


class Sender(Protocol):
    """One destination. ``kind`` picks the formatter; ``destination`` is the pacing key.

    Capabilities are declared, not probed: ``replies`` (can post into a thread),
    ``edits`` (can rewrite a message it sent). ``account`` names a limit shared by
    several destinations (one Telegram bot across chats), at most one message per
    ``account_pace`` seconds; None when there is none.
    """

    kind: str
    name: str
    destination: str
    pace: float  # seconds to leave between two messages to this destination
    replies: bool
    edits: bool
    account: str | None
    account_pace: float

    async def open(self) -> None:
        """Acquire connections or sessions; called once when the server starts."""

    async def close(self) -> None:
        """Release what ``open`` acquired."""

    async def send(self, payload: Mapping[str, Any], context: SendContext = STANDALONE) -> Receipt:
        """One attempt. Returns a receipt or raises a :class:`~notifybot.errors.DeliveryError`.

        With ``context.root`` set (and ``replies`` declared) the message replies to
        that root; :class:`~notifybot.errors.ThreadGone` if the root no longer exists.
        """
        ...

    async def edit(self, handle: str, payload: Mapping[str, Any]) -> None:
        """Rewrite the message ``handle`` (only where ``edits`` is declared).

        "Not modified" is success; a message that is gone raises ThreadGone.
        """


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
