"""Several notifybot instances sharing one PostgreSQL database: processes where one is killed,
in this process where only the database is shared (each instance its own store and outbox)."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from itertools import pairwise

import asyncpg
import pytest

from tests.integration.conftest import SAMPLES, SLACK_CHANNEL, StandIns, fresh_database
from tests.integration.service import Service
from tests.polling import eventually

pytestmark = pytest.mark.postgres


@pytest.fixture
async def database() -> AsyncIterator[str]:
    """A fresh database on the test server, dropped afterwards; its URL."""
    async with fresh_database() as url:
        yield url


async def start_all(services: list[Service]) -> list[Service]:
    """Start each in turn; if one fails, stop those already running before failing."""
    for n, service in enumerate(services):
        try:
            await service.start()
        except BaseException:
            for started in services[:n + 1]:
                started.stop_now()
            raise
    return services


async def test_three_instances_kill_one_every_accepted_event_arrives_once(
    standins: StandIns, database: str
) -> None:
    config = standins.config(database=database, lease=3)
    services = await start_all([standins.service(config) for _ in range(3)])
    base = json.loads((SAMPLES / "job.status.updated.constructed.json").read_bytes())
    accepted: set[int] = set()
    suspects: set[int] = set()
    try:
        for job in range(1, 61):
            target = services[job % 3] if job <= 20 else services[1 + job % 2]
            if job == 21:
                services[0].kill()  # mid-load, deliveries of its own still in flight
                suspects = await in_flight(database)
            response = await target.post({**base, "job": job, "time": f"2026-05-12 13:{job:02d}:00"})
            if response.status_code == 202:
                accepted.add(job)
        assert len(accepted) == 60

        def slack_jobs() -> list[int]:
            return [int(m.text.split(" ")[1]) for m in standins.slack.messages]

        await eventually(lambda: set(slack_jobs()) == accepted, within=30,
                         what="every accepted event on Slack")
        await eventually(lambda: {int(m.plain_text.split(" ")[1]) for m in standins.telegram.messages}
                         == accepted, within=30, what="every accepted event on Telegram")
        for job in accepted:
            if job not in suspects:
                assert slack_jobs().count(job) == 1, f"job {job} sent twice to Slack"
                texts = [m.plain_text for m in standins.telegram.messages]
                assert sum(t.startswith(f"Job {job} ") for t in texts) == 1, f"job {job} twice"
    finally:
        for service in services[1:]:
            await service.terminate()


async def in_flight(database: str) -> set[int]:
    """Jobs with a delivery in ``sending`` right after the kill: the only ones that may repeat."""
    conn = await asyncpg.connect(database)
    try:
        rows = await conn.fetch("SELECT payload FROM deliveries WHERE status = 'sending'")
    finally:
        await conn.close()
    # Slack's text starts "Job 15 …", Telegram's is HTML ("<b>Job 15 …"): the job either way.
    texts = [json.loads(r["payload"]).get("text", "") for r in rows]
    found = [re.search(r"\bJob (\d+)\b", text) for text in texts]
    assert all(found), f"a job number in every in-flight text: {texts}"
    return {int(match[1]) for match in found if match}


async def test_pacing_holds_across_instances(standins: StandIns, database: str) -> None:
    standins.slack.enforce_rate_limit = True
    config = standins.config(database=database, pace=1.0)
    services = [await standins.app(config).start() for _ in range(2)]
    base = json.loads((SAMPLES / "job.updated.constructed.json").read_bytes())
    try:
        for job in range(1, 6):
            assert (await services[job % 2].post({**base, "job": job})).status_code == 202
        await eventually(lambda: len(standins.slack.messages) == 5, within=20, what="5 messages")
    finally:
        for service in services:
            await service.terminate()
    posts = [m for m in standins.slack.messages if m.channel == SLACK_CHANNEL]
    assert [int(m.text.split(" ")[1]) for m in posts] == [1, 2, 3, 4, 5], "in order"
    assert standins.slack.calls.count("chat.postMessage") == 5, "no 429 between instances"
    gaps = [b.time - a.time for a, b in pairwise(posts)]
    assert min(gaps) >= 0.95


async def test_two_instances_racing_on_a_jobs_events_make_one_root_per_channel(
    standins: StandIns, database: str
) -> None:
    """A job's events posted to two processes at once: one Slack root, one Telegram root."""
    config = standins.config(database=database)
    services = await start_all([standins.service(config) for _ in range(2)])
    base = json.loads((SAMPLES / "job.status.updated.constructed.json").read_bytes())
    try:
        bodies = [{**base, "time": f"2026-05-12 13:{minute:02d}:00",
                   "changes": {"STATUS": {"from": minute, "to": minute + 1}}}
                  for minute in range(1, 9)]
        answers = await asyncio.gather(*[services[i % 2].post(body)
                                         for i, body in enumerate(bodies)])
        assert [a.status_code for a in answers] == [202] * 8
        slack, telegram = standins.slack, standins.telegram
        await eventually(lambda: len(slack.messages) == 8 and len(telegram.messages) == 8,
                         within=30, what="8 messages on Slack and on Telegram")
        assert len([m for m in slack.messages if m.thread_ts is None]) == 1, "one Slack root"
        assert len([m for m in telegram.messages if m.reply_to is None]) == 1, "one Telegram root"
        root = slack.messages[0]
        assert [m.thread_ts for m in slack.messages[1:]] == [root.ts] * 7
    finally:
        for service in services:
            await service.terminate()
