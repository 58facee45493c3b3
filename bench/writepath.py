"""The store's share of a burst, today's write path beside a batched sketch, on this disk.

    .venv/bin/python -m bench.writepath                   # about 1 minute

No HTTP and no Slack: only the SQLite writes a delivered message needs, on a
database made by the store's own ``migrate()`` (same tables and indexes), in a
temporary folder on disk, ``synchronous=FULL``.

* **today**: :class:`notifybot.store.SQLiteStore` as the server uses it, with
  ``--concurrency`` messages in flight, each doing what the burst profile
  counted (docs/benchmarks.md): ``add_event`` (group commit), ``route`` of its
  event (one transaction), a ``claim`` of one delivery, ``mark_sent``.
* **batched** (a sketch for the write-path rewrite, not notifybot code): a plain
  ``sqlite3`` connection on one thread; per group of ``--concurrency`` messages,
  four transactions, each one call into the thread: insert the events, route
  them all (one ``UPDATE``, two ``executemany``), claim them (one ``UPDATE …
  RETURNING``), record them sent (one fenced ``executemany``).

The figure is messages per second through the store alone, median of
``--runs``, and commits and thread round trips per message for the sketch.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import sqlite3
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench.common import body, machine, report
from notifybot.store import NewDelivery
from notifybot.store.sqlite import SQLiteStore

DESTINATION = "slack:http://127.0.0.1/api/:C0BENCH"
HEADERS = json.dumps({"Content-Type": "application/json"})


def _webhook(n: int, nonce: str) -> tuple[bytes, str]:
    raw = body(n, nonce)
    return raw, hashlib.sha256(raw).hexdigest()


async def today(path: Path, messages: int, concurrency: int) -> float:
    """Messages/s through SQLiteStore, ``concurrency`` in flight, as the server does it."""
    store = SQLiteStore(path)
    await store.migrate()
    gate = asyncio.Semaphore(concurrency)
    delivery = NewDelivery(channel="team", subscription="s1", destination=DESTINATION, pace=0.0,
                           payload={"text": "Job 1", "blocks": None})

    async def one(n: int) -> None:
        async with gate:
            raw, digest = _webhook(n, "today")
            now = time.time()
            event_id, _ = await store.add_event("job.status.updated", raw, digest,
                                                "application/json", {}, now)
            await store.route(event_id, [delivery], now)
            for claimed in await store.claim(time.time(), 60.0, 1):
                await store.mark_sent(claimed.id, "1.000001", time.time(),
                                      attempt=claimed.attempts)

    start = time.perf_counter()
    await asyncio.gather(*(one(n) for n in range(messages)))
    elapsed = time.perf_counter() - start
    await store.close()
    return messages / elapsed


def _insert(db: sqlite3.Connection, first: int, size: int) -> list[int]:
    """Transaction 1: the group's events (what ingest's group commit already does)."""
    now = time.time()
    hooks = [_webhook(n, "batched") for n in range(first, first + size)]
    with db:
        return [row[0] for row in db.execute(
            "INSERT INTO events (digest, received_at, name, content_type, headers, body) VALUES "
            + ",".join(["(?, ?, ?, ?, ?, ?)"] * size) + " RETURNING id",
            [v for raw, digest in hooks
             for v in (digest, now, "job.status.updated", "application/json", HEADERS, raw)])]


def _route(db: sqlite3.Connection, ids: list[int]) -> None:
    """Transaction 2: route every event of the group."""
    now = time.time()
    with db:
        db.execute(f"UPDATE events SET routed_at = ? WHERE id IN ({','.join('?' * len(ids))}) "
                   "AND routed_at IS NULL", (now, *ids))
        db.executemany(
            "INSERT INTO deliveries (event_id, channel, subscription, destination, status, "
            "attempts, payload, created_at, updated_at, next_attempt_at, last_error) "
            "VALUES (?, 'team', 's1', ?, 'pending', 0, ?, ?, ?, ?, NULL) "
            "ON CONFLICT (event_id, channel, subscription) DO NOTHING",
            [(i, DESTINATION, '{"text": "Job 1"}', now, now, now) for i in ids])
        db.execute("INSERT INTO destinations (key, pace, next_allowed_at) VALUES (?, 0, 0) "
                   "ON CONFLICT (key) DO UPDATE SET pace = excluded.pace", (DESTINATION,))


def _claim(db: sqlite3.Connection, size: int) -> list[tuple[int, int]]:
    """Transaction 3: claim up to ``size`` due deliveries in one statement."""
    now = time.time()
    with db:
        return [(int(i), int(a)) for i, a in db.execute(
            "UPDATE deliveries SET status = 'sending', attempts = attempts + 1, "
            "lease_until = ?, updated_at = ? WHERE id IN (SELECT id FROM deliveries "
            "WHERE status = 'pending' AND next_attempt_at <= ? ORDER BY id LIMIT ?) "
            "RETURNING id, attempts", (now + 60, now, now, size)).fetchall()]


def _record(db: sqlite3.Connection, claimed: list[tuple[int, int]]) -> None:
    """Transaction 4: record the group sent, each row fenced by its attempt."""
    now = time.time()
    with db:
        db.executemany(
            "UPDATE deliveries SET status = 'sent', receipt = '1.000001', last_error = NULL, "
            "lease_until = NULL, updated_at = ? WHERE id = ? AND status = 'sending' "
            "AND attempts = ?", [(now, i, attempts) for i, attempts in claimed])


async def batched(path: Path, messages: int, concurrency: int) -> tuple[float, int, int]:
    """(messages/s, commits, round trips) for the sketch: one call per transaction group."""
    store = SQLiteStore(path)
    await store.migrate()  # the same schema as the server's
    await store.close()
    loop = asyncio.get_running_loop()
    with ThreadPoolExecutor(max_workers=1) as thread:
        db = await loop.run_in_executor(thread, lambda: sqlite3.connect(
            path, isolation_level=None, check_same_thread=False))
        await loop.run_in_executor(thread, db.execute, "PRAGMA synchronous=FULL")
        commits = trips = 0
        start = time.perf_counter()
        for first in range(0, messages, concurrency):
            size = min(concurrency, messages - first)
            ids = await loop.run_in_executor(thread, _insert, db, first, size)
            await loop.run_in_executor(thread, _route, db, ids)
            claimed = await loop.run_in_executor(thread, _claim, db, size)
            await loop.run_in_executor(thread, _record, db, claimed)
            commits, trips = commits + 4, trips + 4  # one commit, one call per transaction
        elapsed = time.perf_counter() - start
        sent = await loop.run_in_executor(thread, lambda: db.execute(
            "SELECT COUNT(*) FROM deliveries WHERE status = 'sent'").fetchone()[0])
        await loop.run_in_executor(thread, db.close)
    assert sent == messages, f"sketch recorded {sent} of {messages} as sent"
    return messages / elapsed, commits, trips


def main(args: argparse.Namespace) -> dict[str, Any]:
    print(f"machine: {machine()}")
    runs = []
    with tempfile.TemporaryDirectory(prefix="nb-writepath-") as folder:
        for run in range(args.runs):
            now_rate = asyncio.run(today(Path(folder) / f"today{run}.db", args.messages,
                                         args.concurrency))
            rate, commits, trips = asyncio.run(batched(Path(folder) / f"batched{run}.db",
                                                       args.messages, args.concurrency))
            runs.append({"today_per_s": round(now_rate, 1), "batched_per_s": round(rate, 1),
                         "batched_commits_per_message": round(commits / args.messages, 3),
                         "batched_round_trips_per_message": round(trips / args.messages, 3)})
            report(f"run {run + 1}", runs[-1])
    summary = {
        "command": f"python -m bench.writepath --runs {args.runs} --messages {args.messages} "
                   f"--concurrency {args.concurrency}",
        "store only, messages/s median: today": statistics.median(r["today_per_s"] for r in runs),
        "store only, messages/s median: batched sketch": statistics.median(
            r["batched_per_s"] for r in runs),
        "batched sketch: commits / round trips per message":
            [runs[0]["batched_commits_per_message"], runs[0]["batched_round_trips_per_message"]],
        "per run today / batched": [[r["today_per_s"], r["batched_per_s"]] for r in runs],
    }
    report("summary", summary)
    return summary


def parser() -> argparse.ArgumentParser:
    """This script's options."""
    options = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_argument("--runs", type=int, default=3)
    options.add_argument("--messages", type=int, default=600)
    options.add_argument("--concurrency", type=int, default=16)
    return options


if __name__ == "__main__":
    main(parser().parse_args())
