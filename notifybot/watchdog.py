"""The missed-event guard: HireHop never retries, so silence may mean a broken webhook.

When no webhook has arrived for ``quiet_after`` seconds *of working hours*, the
watchdog stores a ``notifybot.silence`` event and routes it to its channel (and
to anyone subscribed to ``notifybot.*``), through the ordinary outbox. It alerts
once per silence: the stored event's digest names the last real event, so a
restart, or several instances, do not repeat the alert.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from .config import SILENCE_EVENT, WatchdogConfig
from .pipeline import Pipeline

log = logging.getLogger("notifybot.watchdog")
_MAX_DAYS = 31  # beyond a month of silence the exact figure no longer matters


def working_seconds(since: datetime, until: datetime, cfg: WatchdogConfig, tz: ZoneInfo) -> float:
    """Seconds of working hours (``cfg.days`` × ``cfg.start``–``cfg.end``, local) in [since, until)."""
    if until <= since:
        return 0.0
    total = 0.0
    day = since.astimezone(tz).date()
    last = until.astimezone(tz).date()
    for _ in range(_MAX_DAYS + 1):
        if day > last:
            break
        if day.weekday() in cfg.days:
            opens = datetime.combine(day, cfg.start, tz)
            closes = datetime.combine(day, cfg.end, tz)
            overlap = min(closes, until) - max(opens, since)
            total += max(0.0, overlap.total_seconds())
        day += timedelta(days=1)
    return total


def _duration(seconds: float) -> str:
    hours, rest = divmod(int(seconds) // 60, 60)
    return f"{hours} h {rest:02d} min" if hours else f"{rest} min"


class Watchdog:
    """Checks now and then whether the silence has lasted too long.

    It reads ``[watchdog]`` from the pipeline's configuration at every check, so a
    reload turns it on, off or changes it. The alert reaches its channel through
    the subscription that :func:`notifybot.config.parse` adds for it.
    """

    def __init__(self, pipeline: Pipeline, started_at: float) -> None:
        self.pipeline = pipeline
        self.started_at = started_at

    async def check(self, now: float) -> bool:
        """Store the alert if due and not done yet for this silence; whether it was stored."""
        cfg = self.pipeline.config.watchdog
        if cfg is None:
            return False
        store, tz = self.pipeline.store, self.pipeline.config.server.timezone
        last = await store.last_event_at(exclude=SILENCE_EVENT)
        since = last if last is not None else self.started_at
        quiet = working_seconds(datetime.fromtimestamp(since, UTC), datetime.fromtimestamp(now, UTC),
                                cfg, tz)
        if quiet < cfg.quiet_after:
            return False
        body = json.dumps({
            "event": SILENCE_EVENT,
            "time": datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%d %H:%M:%S"),
            "user_name": "notifybot watchdog",
            "data": {"QUIET_FOR": _duration(quiet),
                     "LAST_EVENT": (datetime.fromtimestamp(last, tz).strftime("%a %d %b %Y, %H:%M")
                                    if last is not None else "")},
        }).encode()
        digest = hashlib.sha256(f"{SILENCE_EVENT}:{last or 'never'}".encode()).hexdigest()
        event_id, new = await store.add_event(SILENCE_EVENT, body, digest, "application/json", {},
                                              now)
        if new:
            log.warning("no webhook for %s of working hours", _duration(quiet),
                        extra={"event_id": event_id, "event": SILENCE_EVENT})
            self.pipeline.wake()  # routed like any event, from storage
        return new

    async def run(self, every: float = 60.0) -> None:
        while True:
            await asyncio.sleep(every)
            try:
                await self.check(self.pipeline.clock())
            except Exception:  # never let the guard take the service down
                log.exception("watchdog check failed")
