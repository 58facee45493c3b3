"""The errors notifybot raises, and what each one means for the caller.

::

    NotifybotError
    ├── ConfigError                  the configuration or a template is wrong; names file and key
    ├── WebhookRejected              an incoming webhook is refused (carries the HTTP status)
    └── DeliveryError                one delivery attempt failed
        ├── TemporaryDeliveryError   try again later (network, timeout, 5xx, SMTP 4xx)
        │   └── RateLimited          try again after ``retry_after`` seconds (429, RetryAfter)
        ├── ThreadGone               the thread's root was deleted: send as a new root, at once
        └── PermanentDeliveryError   retrying cannot help (bad token, unknown channel, 4xx, SMTP 5xx)

The *type* of a delivery error decides what the outbox does: a temporary error is
rescheduled with backoff, ``RateLimited`` at least ``retry_after`` seconds later, a
permanent error goes to ``dead`` at once. Messages never contain secrets.
"""

from __future__ import annotations


class NotifybotError(Exception):
    """Base class of every error notifybot raises on purpose."""


class ConfigError(NotifybotError):
    """The configuration (or a template it names) is invalid.

    ``where`` is the file, and ``key`` the dotted key or template line, so that
    the message points a person at the place to fix.
    """

    def __init__(self, message: str, *, where: str | None = None, key: str | None = None) -> None:
        self.message = message
        self.where = where
        self.key = key
        super().__init__(str(self))

    def __str__(self) -> str:
        place = ": ".join(part for part in (self.where, self.key) if part)
        return f"{place}: {self.message}" if place else self.message


class WebhookRejected(NotifybotError):
    """An incoming webhook is refused; nothing of it was stored."""

    def __init__(self, status: int, reason: str) -> None:
        self.status = status
        self.reason = reason
        super().__init__(f"{status}: {reason}")


class DeliveryError(NotifybotError):
    """One delivery attempt failed. ``reason`` is short, stable and secret-free."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class TemporaryDeliveryError(DeliveryError):
    """The attempt may succeed later: the outbox retries with backoff."""


class RateLimited(TemporaryDeliveryError):
    """The destination asked us to wait ``retry_after`` seconds before the next message."""

    def __init__(self, reason: str, retry_after: float) -> None:
        super().__init__(reason)
        self.retry_after = max(0.0, float(retry_after))


class ThreadGone(DeliveryError):
    """The message a reply or an edit targets no longer exists (deleted by someone).

    Not a failure of the delivery: the outbox forgets that root and sends the
    message again, at once, as the root of a new thread.
    """


class PermanentDeliveryError(DeliveryError):
    """Retrying cannot help until someone changes something: the delivery goes to ``dead``."""
