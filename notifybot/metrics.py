"""Prometheus metrics, served at ``GET /metrics``.

Each app has its own registry (tests run several apps in one process). Queue
depth and the oldest pending age are read from storage at scrape time, so they
are true for the whole outbox, whichever instance is scraped.

Labels are bounded, because webhook senders choose what they send: an event
label is a known HireHop event, an event name a subscription spells out, or
``other``; a reason is one word of a fixed vocabulary (:data:`REASONS`); no label
holds a control character. No label ever carries a secret.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from .store import DeliveryStatus, Store

_LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)

# reference/hirehop.md §3, plus what notifybot itself stores (the watchdog's alert)
# and the names ingest gives (``unknown``: no event name; "": refused before reading one).
KNOWN_EVENTS = frozenset({"job.status.updated", "job.updated", "job.created",
                          "invoice.status.updated", "notifybot.silence", "unknown", ""})
OTHER = "other"
_GLOB = re.compile(r"[*?\[]")
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_MAX_LABEL = 100

# A delivery failure's reason, folded: first matching rule wins; else "other".
REASONS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (label, re.compile(pattern, re.IGNORECASE)) for label, pattern in (
        ("rate_limited", r"rate.?limit|too many|\b429\b|retry.?after|flood"),
        ("timeout", r"time.?out|timed out"),
        ("template", r"template"),
        ("encoding", r"encod|unicode|surrogate|charset"),
        ("not_configured", r"not configured"),
        ("auth", r"auth|token|unauthori[sz]ed|forbidden|\b40[13]\b|credential|password"),
        ("not_found", r"not.?found|unknown (?:channel|chat|recipient)|no such"),
        ("network", r"connect|network|unreachable|refused|reset|closed|dns|resolve|tls|ssl"),
        ("server_error", r"\b5\d\d\b|server error|unavailable"),
        ("rejected", r"\b4\d\d\b|bad request|invalid|rejected"),
    ))


def safe_label(value: object) -> str:
    """A label value without control characters, at most 100 characters."""
    return _CONTROL.sub("?", str(value))[:_MAX_LABEL]


def event_label(name: str, configured: Collection[str]) -> str:
    """``name`` if HireHop is known to send it or a subscription names it, else ``other``."""
    return name if name in KNOWN_EVENTS or name in configured else OTHER


def reason_label(reason: str) -> str:
    """A delivery failure's reason folded into :data:`REASONS` (``""`` for none)."""
    if not reason:
        return ""
    return next((label for label, pattern in REASONS if pattern.search(reason)), OTHER)


def named_events(patterns: Collection[str]) -> frozenset[str]:
    """The exact event names among subscription patterns (globs name no single event)."""
    return frozenset(p for p in patterns if not _GLOB.search(p))


class _Bounded:
    """A labelled metric whose label values are folded before they reach the registry."""

    def __init__(self, metric: Any, fold: dict[str, Callable[[str], str]]) -> None:
        self._metric = metric
        self._fold = fold

    def labels(self, **labels: object) -> Any:
        return self._metric.labels(**{
            name: safe_label(self._fold.get(name, str)(str(value)))
            for name, value in labels.items()})


class Metrics:
    """The counters, gauges and histograms notifybot keeps.

    ``configured_events`` gives the event names subscriptions spell out (read at
    each count, so a reload takes effect); those get a series of their own.
    """

    def __init__(self, configured_events: Callable[[], Collection[str]] = frozenset) -> None:
        self.configured_events = configured_events
        self.registry = CollectorRegistry()
        r = self.registry
        by_event = {"event": lambda name: event_label(name, self.configured_events())}
        self.events = _Bounded(
            Counter("notifybot_events_received", "Webhooks received, by event and outcome",
                    ["event", "outcome"], registry=r), by_event)
        self.deliveries = _Bounded(
            Counter("notifybot_deliveries", "Delivery attempts, by channel and outcome",
                    ["channel", "outcome", "reason"], registry=r), {"reason": reason_label})
        self.latency = _Bounded(
            Histogram("notifybot_delivery_latency_seconds",
                      "From enqueueing (routing, or a replay) to delivery", ["channel"],
                      buckets=_LATENCY_BUCKETS, registry=r), {})
        self.queue = Gauge("notifybot_queue_depth", "Deliveries in each state", ["state"],
                           registry=r)
        self.oldest = Gauge("notifybot_oldest_pending_age_seconds",
                            "Age of the oldest pending delivery (0 when none)", registry=r)
        self.rate_limited = _Bounded(
            Counter("notifybot_rate_limit_waits", "Rate-limit answers waited out, by channel",
                    ["channel"], registry=r), {})
        self.noise = _Bounded(
            Counter("notifybot_noise", "Messages silenced, held (active hours), folded "
                    "(group_wait) or digested, by channel", ["channel", "treatment"],
                    registry=r), {})
        self.reloads = Counter("notifybot_config_reloads", "Configuration reloads, by outcome",
                               ["outcome"], registry=r)
        # One series per configured channel (channel_health.py keeps the label set the config's).
        self.channel_up = Gauge("notifybot_channel_up",
                                "1 while a channel's last attempt delivered (or none was made), "
                                "0 while it fails", ["channel"], registry=r)

    async def render(self, store: Store, now: float) -> bytes:
        """The text exposition, with the storage-derived gauges refreshed first."""
        counts = await store.counts()
        for state in DeliveryStatus:
            self.queue.labels(state=str(state)).set(counts.get(state, 0))
        oldest = await store.oldest_pending()
        self.oldest.set(max(0.0, now - oldest) if oldest is not None else 0.0)
        return generate_latest(self.registry)
