"""Fill an outbox with pending deliveries, fast, as notifybot itself would have enqueued them.

The schema comes from the store's own ``migrate()``; each delivery's payload is
what :func:`notifybot.pipeline.plan` renders for the sample event (job number
changed per event), and its destination key is the configured sender's. Only
the bulk insert is done here (one transaction, or COPY on PostgreSQL), because
routing 100,000 deliveries one event at a time would take longer than draining.
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

from bench.common import body, environment
from notifybot.channels import build_sender
from notifybot.config import load
from notifybot.events import parse_event
from notifybot.pipeline import plan, renderer_for
from notifybot.store import NewDelivery, open_store


def planned(config_path: Path) -> list[NewDelivery]:
    """The deliveries the sample job.status.updated event makes under this configuration."""
    config = load(config_path, environ=environment())
    senders = {name: build_sender(name, chan.options) for name, chan in config.channels.items()}
    event = parse_event(json.loads(body(15471)))
    return plan(event, config.index.match(event), renderer_for(config), senders,
                config.channels, config.people)


def rows(config_path: Path, count: int) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]],
                                                  dict[str, float]]:
    """(events, deliveries, destination -> pace) rows for ``count`` pending deliveries."""
    deliveries = planned(config_path)
    now = time.time()
    events, outbox = [], []
    template = {d.channel: json.dumps(d.payload) for d in deliveries}
    for n in range(1, count // len(deliveries) + 1):
        events.append((n, f"bench-{n}", now, "job.status.updated", "application/json", "{}",
                       body(n, "backlog"), now))
        for d in deliveries:  # keyed and threaded (one job each) as routing makes them
            thread = d.thread_key.replace("15471", str(n)) if d.thread_key else None
            outbox.append((n, d.channel, d.subscription, d.destination, "pending", 0,
                           template[d.channel].replace("15471", str(n)), now, now, now,
                           f"e{n}:{d.channel}:{d.subscription}", thread))
    return events, outbox, {d.destination: d.pace for d in deliveries}


async def fill_sqlite(path: Path, config_path: Path, count: int) -> int:
    store = open_store(f"sqlite:///{path}")
    await store.migrate()
    await store.close()
    events, outbox, paces = rows(config_path, count)
    with sqlite3.connect(path) as db:
        db.executemany("INSERT INTO events (id, digest, received_at, name, content_type, headers, "
                       "body, routed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", events)
        db.executemany("INSERT INTO deliveries (event_id, channel, subscription, destination, "
                       "status, attempts, payload, created_at, updated_at, next_attempt_at, key, "
                       "thread_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", outbox)
        db.executemany("INSERT INTO destinations (key, pace, next_allowed_at) VALUES (?, ?, 0)",
                       list(paces.items()))
    return len(outbox)


async def fill_postgres(url: str, config_path: Path, count: int) -> int:
    import asyncpg  # only when used, as notifybot does

    store = open_store(url)
    await store.migrate()
    await store.close()
    events, outbox, paces = rows(config_path, count)
    conn = await asyncpg.connect(url)
    try:
        await conn.copy_records_to_table(
            "events", records=events, columns=["id", "digest", "received_at", "name",
                                               "content_type", "headers", "body", "routed_at"])
        await conn.copy_records_to_table(
            "deliveries", records=outbox,
            columns=["event_id", "channel", "subscription", "destination", "status", "attempts",
                     "payload", "created_at", "updated_at", "next_attempt_at", "key",
                     "thread_key"])
        await conn.executemany("INSERT INTO destinations (key, pace, next_allowed_at) "
                               "VALUES ($1, $2, 0)", list(paces.items()))
        await conn.execute("ANALYZE")
    finally:
        await conn.close()
    return len(outbox)
