"""When to try a failed delivery again, and when to give up. Pure: values in, a decision out."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from .config import DeliveryConfig
from .errors import DeliveryError, PermanentDeliveryError, RateLimited


@dataclass(frozen=True)
class RetryDecision:
    """``retry_at`` set: try again then (``blocked_until`` parks the destination); else dead."""

    retry_at: float | None
    reason: str
    blocked_until: float | None = None


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter, capped, bounded by attempts and by age."""

    settings: DeliveryConfig
    jitter: Callable[[], float] = random.random

    def decide(self, error: DeliveryError, *, attempts: int, created_at: float,
               now: float) -> RetryDecision:
        """What to do after attempt number ``attempts`` failed with ``error``."""
        if isinstance(error, PermanentDeliveryError):
            return RetryDecision(None, error.reason)
        if isinstance(error, RateLimited):
            # Being asked to wait is not a failure of the destination: wait exactly as
            # long as asked, park the destination, and do not spend an attempt on it.
            at = now + error.retry_after
            return self._unless_too_old(RetryDecision(at, error.reason, at), created_at)
        if attempts >= self.settings.max_attempts:
            return RetryDecision(None, f"{error.reason} (gave up after {attempts} attempts)")
        return self._unless_too_old(
            RetryDecision(now + self.backoff(attempts), error.reason), created_at)

    def _unless_too_old(self, decision: RetryDecision, created_at: float) -> RetryDecision:
        assert decision.retry_at is not None
        if decision.retry_at - created_at > self.settings.max_age:
            return RetryDecision(None, f"{decision.reason} (gave up: not delivered within "
                                       f"{self.settings.max_age:.0f}s)")
        return decision

    def backoff(self, attempts: int) -> float:
        """Seconds before the next attempt: doubling from ``backoff_initial``, half of it jitter."""
        base = self.settings.backoff_initial * 2 ** min(max(0, attempts - 1), 62)
        capped = min(self.settings.backoff_max, base)
        return float(capped / 2 + capped / 2 * self.jitter())
