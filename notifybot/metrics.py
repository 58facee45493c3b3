"""Prometheus metrics, served at ``GET /metrics``.

Each app has its own registry (tests run several apps in one process). Queue
depth and the oldest pending age are read from storage at scrape time, so they
are true for the whole outbox, whichever instance is scraped. No label ever
carries a secret: labels are event names, channel names and short reasons.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from .store import DeliveryStatus, Store

_LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)


class Metrics:
    """The counters, gauges and histograms notifybot keeps."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.events = Counter("notifybot_events_received", "Webhooks received, by event and outcome",
                              ["event", "outcome"], registry=r)
        self.deliveries = Counter("notifybot_deliveries", "Delivery attempts, by channel and outcome",
                                  ["channel", "outcome", "reason"], registry=r)
        self.latency = Histogram("notifybot_delivery_latency_seconds",
                                 "From enqueueing (routing, or a replay) to delivery",
                                 ["channel"],
                                 buckets=_LATENCY_BUCKETS, registry=r)
        self.queue = Gauge("notifybot_queue_depth", "Deliveries in each state", ["state"],
                           registry=r)
        self.oldest = Gauge("notifybot_oldest_pending_age_seconds",
                            "Age of the oldest pending delivery (0 when none)", registry=r)
        self.rate_limited = Counter("notifybot_rate_limit_waits",
                                    "Rate-limit answers waited out, by channel", ["channel"],
                                    registry=r)
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
