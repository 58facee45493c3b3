"""Channel health: failing since when and why, logged once per change, a gauge, a snapshot."""

from __future__ import annotations

import logging

import pytest
from prometheus_client import generate_latest

from notifybot.channel_health import ChannelHealth, Failing, Transition
from notifybot.errors import PermanentDeliveryError, RateLimited, TemporaryDeliveryError, ThreadGone
from notifybot.metrics import Metrics

T0 = 1_780_000_000.0  # 2026-05-28 20:26:40 UTC


def up(metrics: Metrics, channel: str) -> float | None:
    return metrics.registry.get_sample_value("notifybot_channel_up", {"channel": channel})


@pytest.fixture
def metrics() -> Metrics:
    return Metrics()


@pytest.fixture
def health(metrics: Metrics) -> ChannelHealth:
    return ChannelHealth(["ops", "oncall"], metrics.channel_up)


def test_every_configured_channel_starts_up(health: ChannelHealth, metrics: Metrics) -> None:
    assert up(metrics, "ops") == 1 and up(metrics, "oncall") == 1
    assert health.snapshot() == {"status": "ok", "failing": {}}


def test_a_failure_marks_the_channel_failing_since_then(health: ChannelHealth,
                                                        metrics: Metrics) -> None:
    change = health.observe("ops", PermanentDeliveryError("invalid_auth"), T0)
    assert change == Transition("ops", Failing(T0, "invalid_auth"))
    assert up(metrics, "ops") == 0 and up(metrics, "oncall") == 1
    assert health.snapshot() == {"status": "degraded", "failing": {
        "ops": {"since": "2026-05-28T20:26:40+00:00", "reason": "invalid_auth"}}}


def test_later_failures_keep_the_start_and_update_the_reason(health: ChannelHealth) -> None:
    health.observe("ops", TemporaryDeliveryError("timeout"), T0)
    again = health.observe("ops", PermanentDeliveryError("invalid_auth"), T0 + 60)
    assert again is None
    assert health.failing() == {"ops": Failing(T0, "invalid_auth")}


def test_a_delivery_ends_the_failure(health: ChannelHealth, metrics: Metrics) -> None:
    health.observe("ops", TemporaryDeliveryError("timeout"), T0)
    change = health.observe("ops", None, T0 + 90)
    assert change == Transition("ops", None, Failing(T0, "timeout"))
    assert up(metrics, "ops") == 1
    assert health.snapshot()["status"] == "ok"
    assert health.observe("ops", None, T0 + 91) is None  # already up: no transition


def test_each_change_is_logged_once_not_per_message(health: ChannelHealth,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="notifybot.channel_health")
    for i in range(50):
        health.observe("ops", PermanentDeliveryError("invalid_auth"), T0 + i)
    for i in range(50):
        health.observe("ops", None, T0 + 100 + i)
    lines = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert lines == [("WARNING", "channel ops is failing: invalid_auth"),
                     ("INFO", "channel ops works again after failing for 1m40s")]
    assert caplog.records[0].channel == "ops"  # type: ignore[attr-defined]


@pytest.mark.parametrize("error", [RateLimited("ratelimited", 30), ThreadGone("message_not_found")])
def test_a_rate_limit_or_a_lost_thread_says_nothing_about_health(health: ChannelHealth,
                                                                 error: Exception) -> None:
    health.observe("ops", TemporaryDeliveryError("timeout"), T0)
    assert health.observe("ops", error, T0 + 1) is None  # type: ignore[arg-type]
    assert health.failing() == {"ops": Failing(T0, "timeout")}
    assert health.observe("oncall", error, T0) is None  # type: ignore[arg-type]
    assert health.is_up("oncall")


def test_channels_that_are_not_configured_add_no_series(health: ChannelHealth,
                                                        metrics: Metrics) -> None:
    assert health.observe("gone", PermanentDeliveryError("channel 'gone' is not configured"),
                          T0) is None
    assert up(metrics, "gone") is None
    assert health.snapshot()["status"] == "ok"


def test_a_reload_forgets_removed_channels_and_adds_new_ones(health: ChannelHealth,
                                                             metrics: Metrics) -> None:
    health.observe("ops", PermanentDeliveryError("invalid_auth"), T0)
    health.observe("oncall", TemporaryDeliveryError("timeout"), T0)
    health.reconfigure(["oncall", "warehouse"])
    assert up(metrics, "ops") is None and up(metrics, "warehouse") == 1
    assert up(metrics, "oncall") == 0
    assert list(health.failing()) == ["oncall"]
    assert b'notifybot_channel_up{channel="oncall"} 0.0' in generate_latest(metrics.registry)


def test_a_long_reason_is_cut(health: ChannelHealth) -> None:
    health.observe("ops", TemporaryDeliveryError("x" * 1000), T0)
    assert len(health.failing()["ops"].reason) == 300


def test_works_without_a_gauge() -> None:
    health = ChannelHealth(["ops"])
    health.observe("ops", TemporaryDeliveryError("timeout"), T0)
    assert not health.is_up("ops")
