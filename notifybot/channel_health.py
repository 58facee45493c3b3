"""Channel health: which channels are failing, since when, and why.

Fed with every delivery outcome (the outbox's ``on_outcome``). A channel is
*failing* from its first failed attempt until its next successful one; a
rate-limit answer says nothing either way (the channel works, it asks us to
wait). A channel starting or stopping to fail is logged once, not per message,
and shown by the ``notifybot_channel_up{channel}`` gauge and by ``/healthz``
(``"status": "degraded"``, still HTTP 200: the process itself runs).

State is per process: each instance reports what its own attempts saw.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from prometheus_client import Gauge

from .durations import format_duration
from .errors import DeliveryError, RateLimited, ThreadGone

log = logging.getLogger("notifybot.channel_health")
REASON_LIMIT = 300


@dataclass(frozen=True)
class Failing:
    """A channel whose last attempt failed: since the first failure of the run, and the last reason."""

    since: float
    reason: str


@dataclass(frozen=True)
class Transition:
    """A channel started (``failing`` set) or stopped (``failing`` None) failing."""

    channel: str
    failing: Failing | None
    was: Failing | None = None


class ChannelHealth:
    """Per-channel health for a fixed set of configured channels.

    ``gauge`` (``notifybot_channel_up``) gets one series per configured channel,
    1 while it works (or has not been tried), 0 while it fails; channels that are
    not configured are ignored, so the label set stays the configuration's.
    """

    def __init__(self, channels: Iterable[str], gauge: Gauge | None = None) -> None:
        self.gauge = gauge
        self._channels: frozenset[str] = frozenset()
        self._failing: dict[str, Failing] = {}
        self.reconfigure(channels)

    def reconfigure(self, channels: Iterable[str]) -> None:
        """Track these channels from now on: removed ones are forgotten, new ones start up."""
        wanted = frozenset(channels)
        for gone in self._channels - wanted:
            self._failing.pop(gone, None)
            if self.gauge is not None:
                with contextlib.suppress(KeyError):  # never given a value
                    self.gauge.remove(gone)
        self._channels = wanted
        for name in wanted:
            self._set_gauge(name)

    def follow(self, channels: Iterable[str]) -> None:
        """:meth:`reconfigure` if the set of channels changed (a reload); cheap otherwise."""
        if frozenset(channels) != self._channels:
            self.reconfigure(channels)

    def observe(self, channel: str, error: DeliveryError | None, now: float) -> Transition | None:
        """One delivery outcome: ``error`` None when it was delivered.

        A rate limit or a thread whose root is gone tells nothing about the
        channel being reachable, so neither changes its health.
        """
        if error is None:
            return self.succeeded(channel, now)
        if isinstance(error, RateLimited | ThreadGone):
            return None
        return self.failed(channel, error.reason, now)

    def succeeded(self, channel: str, now: float) -> Transition | None:
        """An attempt on ``channel`` delivered; returns the transition if it was failing."""
        if channel not in self._channels:
            return None
        was = self._failing.pop(channel, None)
        if was is None:
            return None
        self._set_gauge(channel)
        log.info("channel %s works again after failing for %s", channel,
                 format_duration(max(0.0, now - was.since)),
                 extra={"channel": channel, "reason": "recovered"})
        return Transition(channel, None, was)

    def failed(self, channel: str, reason: str, now: float) -> Transition | None:
        """An attempt on ``channel`` failed with ``reason``; returns the transition if it was up."""
        if channel not in self._channels:
            return None
        reason = reason[:REASON_LIMIT]
        was = self._failing.get(channel)
        self._failing[channel] = Failing(was.since if was else now, reason)
        if was is not None:
            return None  # still failing: the reason is kept current, nothing is logged
        self._set_gauge(channel)
        log.warning("channel %s is failing: %s", channel, reason,
                    extra={"channel": channel, "reason": reason})
        return Transition(channel, self._failing[channel])

    def failing(self) -> dict[str, Failing]:
        """The channels failing now, by name."""
        return dict(sorted(self._failing.items()))

    def is_up(self, channel: str) -> bool:
        return channel not in self._failing

    def snapshot(self) -> dict[str, Any]:
        """For ``/healthz``: ``{"status": "ok"|"degraded", "failing": {channel: {since, reason}}}``.

        ``since`` is an ISO 8601 UTC time.
        """
        failing = {
            name: {"since": datetime.fromtimestamp(state.since, UTC).isoformat(timespec="seconds"),
                   "reason": state.reason}
            for name, state in self.failing().items()
        }
        return {"status": "degraded" if failing else "ok", "failing": failing}

    def _set_gauge(self, channel: str) -> None:
        if self.gauge is not None:
            self.gauge.labels(channel=channel).set(0 if channel in self._failing else 1)
