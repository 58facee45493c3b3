"""Retry decisions: backoff with jitter, caps, permanent errors, attempt and age limits."""

from __future__ import annotations

import pytest

from notifybot.config import DeliveryConfig
from notifybot.errors import (
    DeliveryError,
    PermanentDeliveryError,
    RateLimited,
    TemporaryDeliveryError,
)
from notifybot.retry import RetryPolicy

SETTINGS = DeliveryConfig(max_attempts=5, max_age=3600.0, backoff_initial=2.0, backoff_max=60.0)
NOW = 1_000_000.0


def policy(jitter: float = 1.0, settings: DeliveryConfig = SETTINGS) -> RetryPolicy:
    return RetryPolicy(settings, jitter=lambda: jitter)


@pytest.mark.parametrize(
    ("attempts", "expected"),
    [(0, 2.0), (1, 2.0), (2, 4.0), (3, 8.0), (4, 16.0), (5, 32.0), (6, 60.0), (7, 60.0),
     (30, 60.0)],
)
def test_backoff_doubles_and_caps(attempts: int, expected: float) -> None:
    assert policy(jitter=1.0).backoff(attempts) == expected


@pytest.mark.parametrize("attempts", [100, 1100, 5000])
def test_backoff_stays_capped_for_huge_attempt_counts(attempts: int) -> None:
    assert policy(jitter=1.0).backoff(attempts) == 60.0


@pytest.mark.parametrize(
    ("jitter", "attempts", "expected"),
    [(0.0, 1, 1.0), (0.5, 1, 1.5), (0.0, 3, 4.0), (0.25, 3, 5.0), (0.0, 10, 30.0),
     (0.999, 10, 59.97)],
)
def test_jitter_spreads_over_the_upper_half(jitter: float, attempts: int, expected: float) -> None:
    assert policy(jitter).backoff(attempts) == pytest.approx(expected)


@pytest.mark.parametrize("attempts", range(1, 10))
def test_jitter_bounds(attempts: int) -> None:
    low, high = policy(0.0).backoff(attempts), policy(1.0).backoff(attempts)
    assert high == 2 * low
    assert high <= SETTINGS.backoff_max


def test_default_jitter_is_within_bounds() -> None:
    real = RetryPolicy(SETTINGS)
    for attempts in range(1, 8):
        nominal = min(60.0, 2.0 * 2 ** (attempts - 1))
        assert nominal / 2 <= real.backoff(attempts) <= nominal


@pytest.mark.parametrize("attempts", [1, 3])
def test_temporary_error_retries_after_backoff(attempts: int) -> None:
    decision = policy(0.5).decide(TemporaryDeliveryError("timeout"), attempts=attempts,
                                  created_at=NOW, now=NOW)
    assert decision.retry_at == NOW + policy(0.5).backoff(attempts)
    assert decision.reason == "timeout"
    assert decision.blocked_until is None


def test_plain_delivery_error_is_treated_as_temporary() -> None:
    decision = policy().decide(DeliveryError("odd"), attempts=1, created_at=NOW, now=NOW)
    assert decision.retry_at == NOW + 2.0


@pytest.mark.parametrize("attempts", [1, 4, 100])
def test_permanent_error_is_dead_at_once(attempts: int) -> None:
    decision = policy().decide(PermanentDeliveryError("invalid_auth"), attempts=attempts,
                               created_at=NOW, now=NOW)
    assert decision.retry_at is None
    assert decision.reason == "invalid_auth"


@pytest.mark.parametrize(("attempts", "dead"), [(4, False), (5, True), (6, True)])
def test_max_attempts_ends_retrying(attempts: int, dead: bool) -> None:
    decision = policy().decide(TemporaryDeliveryError("503"), attempts=attempts,
                               created_at=NOW, now=NOW)
    assert (decision.retry_at is None) is dead
    if dead:
        assert decision.reason == f"503 (gave up after {attempts} attempts)"


@pytest.mark.parametrize(
    ("age", "dead"),
    [(0.0, False), (3600.0 - 2.0, False), (3600.0 - 1.0, True), (7200.0, True)],
)
def test_max_age_ends_retrying(age: float, dead: bool) -> None:
    decision = policy().decide(TemporaryDeliveryError("503"), attempts=1,
                               created_at=NOW - age, now=NOW)
    assert (decision.retry_at is None) is dead
    if dead:
        assert "not delivered within 3600s" in decision.reason


@pytest.mark.parametrize("retry_after", [0.0, 1.0, 7.5, 30.0])
def test_rate_limited_waits_exactly_retry_after(retry_after: float) -> None:
    decision = policy().decide(RateLimited("ratelimited", retry_after), attempts=1,
                               created_at=NOW, now=NOW)
    assert decision.retry_at == NOW + retry_after
    assert decision.blocked_until == NOW + retry_after
    assert decision.reason == "ratelimited"


def test_rate_limited_does_not_use_up_attempts() -> None:
    decision = policy().decide(RateLimited("429", 5.0), attempts=50, created_at=NOW, now=NOW)
    assert decision.retry_at == NOW + 5.0


def test_rate_limited_past_max_age_is_dead() -> None:
    decision = policy().decide(RateLimited("429", 120.0), attempts=1,
                               created_at=NOW - 3500.0, now=NOW)
    assert decision.retry_at is None
    assert decision.blocked_until is None


def test_negative_retry_after_counts_as_zero() -> None:
    decision = policy().decide(RateLimited("429", -3.0), attempts=1, created_at=NOW, now=NOW)
    assert decision.retry_at == NOW


def test_defaults_are_the_documented_ones() -> None:
    defaults = DeliveryConfig()
    assert (defaults.max_attempts, defaults.max_age, defaults.backoff_initial,
            defaults.backoff_max) == (12, 172800.0, 2.0, 600.0)
