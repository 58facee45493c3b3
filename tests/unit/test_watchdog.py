"""The missed-event guard: silence measured in working hours, one alert per silence."""

from __future__ import annotations

from datetime import datetime, time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from notifybot.config import WatchdogConfig, load
from notifybot.pipeline import Pipeline
from notifybot.store.sqlite import SQLiteStore
from notifybot.testing import FakeSender
from notifybot.watchdog import Watchdog, working_seconds

LONDON = ZoneInfo("Europe/London")
OFFICE = WatchdogConfig("ops", quiet_after=7200, start=time(8), end=time(18),
                        days=frozenset(range(5)))


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=LONDON)


@pytest.mark.parametrize(
    ("since", "until", "hours"),
    [
        ("2026-11-23 09:00", "2026-11-23 11:00", 2),      # Monday morning
        ("2026-11-23 07:00", "2026-11-23 09:00", 1),      # only 08:00-09:00 counts
        ("2026-11-23 17:00", "2026-11-24 09:00", 2),      # overnight: 17-18 and 08-09
        ("2026-11-27 17:00", "2026-11-30 09:00", 2),      # Friday to Monday: weekend skipped
        ("2026-11-28 10:00", "2026-11-29 16:00", 0),      # all weekend
        ("2026-11-23 11:00", "2026-11-23 09:00", 0),      # backwards
    ],
)
def test_working_seconds_count_only_office_hours(since: str, until: str, hours: float) -> None:
    assert working_seconds(at(since), at(until), OFFICE, LONDON) == hours * 3600


CONFIG = """
[server]
database = "sqlite:///{db}"
[hirehop]
export_key = "KEY-123456"
[channels.ops]
type = "console"
[channels.all]
type = "console"
  [[channels.all.subscriptions]]
  events = ["job.*"]
[watchdog]
channel = "ops"
quiet_after = 7200
hours = "08:00-18:00"
days = ["mon", "tue", "wed", "thu", "fri"]
"""


async def test_silence_in_working_hours_alerts_the_channel_once(tmp_path: Path) -> None:
    path = tmp_path / "subscriptions.toml"
    path.write_text(CONFIG.format(db=tmp_path / "n.db"))
    config = load(path, environ={})
    assert config.watchdog == OFFICE
    store = SQLiteStore(tmp_path / "n.db")
    await store.migrate()
    senders: dict[str, Any] = {"ops": FakeSender("ops"), "all": FakeSender("all")}
    pipeline = Pipeline(config, store, senders)
    monday_9 = at("2026-11-23 09:00").timestamp()
    await store.add_event("job.updated", b"{}", "d1", "application/json", {}, monday_9)
    await store.route(1, [], monday_9)
    watchdog = Watchdog(pipeline, started_at=monday_9)
    try:
        assert not await watchdog.check(monday_9 + 7199)
        assert await watchdog.check(monday_9 + 7200)
        assert not await watchdog.check(monday_9 + 9000), "one alert per silence"
        assert await pipeline.route_pending() == 1, "the alert is routed like any event"
        [delivery] = await store.list_deliveries()
        assert delivery.channel == "ops", "only the watchdog's channel hears it"
        assert delivery.payload["text"].startswith(
            "No HireHop webhook for 2 h 00 min of working hours")
        await store.add_event("job.updated", b"{}", "d2", "application/json", {}, monday_9 + 9100)
        assert not await watchdog.check(monday_9 + 9200), "an event ends the silence"
    finally:
        await store.close()
