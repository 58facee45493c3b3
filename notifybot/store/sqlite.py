"""The embedded store: one SQLite file in WAL mode through aiosqlite.

One connection, opened with ``isolation_level=None`` so that transactions are
the explicit ``BEGIN IMMEDIATE`` ... ``COMMIT`` below (Python's implicit
deferred transactions can fail with SQLITE_BUSY on the lock upgrade), and so
that a write of one statement (storing events) is its own transaction,
committed when the statement completes.

Round trips to aiosqlite's thread are what limit throughput (docs/benchmarks.md):
each waits for the event loop, and every use of the connection holds the one
lock. So a single-statement write needs no ``BEGIN``/``COMMIT``, a query fetches
its rows in the same round trip as it runs (``execute_fetchall``), a batch of
rows is one ``executemany``, and events that arrive together are stored by one
INSERT (group commit, :meth:`SQLiteStore.add_event`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Literal

import aiosqlite

from ..events import safe_text
from .base import Delivery, DeliveryStatus, NewDelivery, StoredEvent
from .rows import DELIVERY_COLUMNS, EVENT_SELECT, delivery_from, event_from
from .schema import SQLITE_MIGRATIONS


class SQLiteStore:
    """Events and the outbox in one SQLite database file."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._db: aiosqlite.Connection | None = None
        self._closed = False
        self._lock = asyncio.Lock()  # one transaction at a time on the shared connection
        self._queued: list[_Queued] = []
        self._writer: asyncio.Task[None] | None = None  # writes the queued events

    @classmethod
    def from_url(cls, url: str) -> SQLiteStore:
        return cls(url.removeprefix("sqlite:///") or "notifybot.db")

    async def _conn(self) -> aiosqlite.Connection:
        if self._closed:
            raise RuntimeError("the store is closed")
        if self._db is None:
            self._db = await aiosqlite.connect(self.path, isolation_level=None)
            await self._db.execute("PRAGMA journal_mode=WAL")
            # FULL: a 202 means on disk, even through a power cut (NORMAL may lose
            # the last commits then); it costs about half the insert rate.
            await self._db.execute("PRAGMA synchronous=FULL")
            await self._db.execute("PRAGMA busy_timeout=10000")
            await self._db.execute("PRAGMA foreign_keys=ON")
        return self._db

    @asynccontextmanager
    async def _tx(self) -> AsyncIterator[aiosqlite.Connection]:
        async with self._lock:
            db = await self._conn()
            await db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                await db.execute("ROLLBACK")
                raise
            await db.execute("COMMIT")

    async def _rows(self, sql: str, params: Iterable[Any] = ()) -> list[aiosqlite.Row]:
        async with self._lock:
            db = await self._conn()
            return list(await db.execute_fetchall(sql, tuple(params)))

    async def _write(self, sql: str, params: Iterable[Any] = ()) -> int:
        """One statement as its own transaction (autocommit); returns the rows it changed."""
        async with self._lock:
            db = await self._conn()
            cursor = await db.execute(sql, tuple(params))
            return int(cursor.rowcount)

    async def migrate(self) -> None:
        async with self._tx() as db:
            await db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            async with db.execute("SELECT MAX(version) FROM schema_version") as cur:
                row = await cur.fetchone()
            current = (row[0] if row else None) or 0
            for version, statements in enumerate(SQLITE_MIGRATIONS, start=1):
                if version > current:
                    for statement in statements:
                        await db.execute(statement)
                    await db.execute("INSERT INTO schema_version VALUES (?)", (version,))

    async def close(self) -> None:
        if self._writer is not None:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await self._writer  # events queued before close are still written
        self._closed = True
        if self._db is not None:
            await self._db.close()
            self._db = None

    async def add_event(self, name: str, body: bytes, digest: str, content_type: str,
                        headers: Mapping[str, str], now: float) -> tuple[int, bool]:
        """Group commit: events arriving while a write is in flight go in the next one.

        One INSERT of many rows is one round trip and one commit, so a burst costs
        little more than one event; a lone event is written at once. Each caller
        returns once the statement holding its row has committed. A row that the
        database refuses fails alone: its neighbours are written one by one.
        """
        future: asyncio.Future[tuple[int, bool]] = asyncio.get_running_loop().create_future()
        row = (digest, now, safe_text(name), safe_text(content_type),
               json.dumps(dict(headers)), body)
        self._queued.append((row, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_events())
        return await future

    async def _write_events(self) -> None:
        batch: list[_Queued] = []
        try:
            while self._queued:
                batch, self._queued = self._queued[:_EVENT_BATCH], self._queued[_EVENT_BATCH:]
                await self._write_batch(batch)
        except BaseException:  # cancelled: nobody will write the rest
            waiting, self._queued = batch + self._queued, []
            for _, future in waiting:
                future.cancel()  # a no-op for those answered already
            raise

    async def _write_batch(self, batch: list[_Queued]) -> None:
        """Resolve every caller of ``batch``; raises only if cancelled."""
        try:
            results = await self._insert_events([row for row, _ in batch])
        except sqlite3.OperationalError as exc:  # the database itself: every row fails
            _fail(batch, exc)
            return
        except Exception as exc:
            if len(batch) == 1:
                _fail(batch, exc)
            else:  # something in one row (a value the driver refuses): isolate it
                await self._write_one_by_one(batch)
            return
        _resolve(batch, results)

    async def _write_one_by_one(self, batch: list[_Queued]) -> None:
        for row, future in batch:
            try:
                results = await self._insert_events([row])
            except Exception as exc:
                _fail([(row, future)], exc)
                continue
            _resolve([(row, future)], results)

    async def _insert_events(self, rows: list[tuple[Any, ...]]) -> list[tuple[int, bool]]:
        """(id, new) per row; a digest already stored, or twice in ``rows``, is new once."""
        async with self._lock:
            db = await self._conn()
            # One statement, committed once it has run to completion (autocommit).
            inserted = await db.execute_fetchall(
                "INSERT INTO events (digest, received_at, name, content_type, headers, body) "
                f"VALUES {','.join(['(?, ?, ?, ?, ?, ?)'] * len(rows))} "
                "ON CONFLICT (digest) DO NOTHING RETURNING digest, id",
                [value for row in rows for value in row])
            ids = {digest: int(event_id) for digest, event_id in inserted}
            new = set(ids)
            missing = list({row[0] for row in rows} - new)
            if missing:
                found = await db.execute_fetchall(
                    f"SELECT digest, id FROM events WHERE digest IN ({','.join('?' * len(missing))})",
                    missing)
                ids.update({digest: int(event_id) for digest, event_id in found})
        results = []
        for digest, *_ in rows:
            results.append((ids[digest], digest in new))
            new.discard(digest)
        return results

    async def get_event(self, event_id: int) -> StoredEvent | None:
        rows = await self._rows(EVENT_SELECT + " WHERE id = ?", (event_id,))
        return event_from(rows[0]) if rows else None

    async def unrouted_events(self, limit: int) -> list[StoredEvent]:
        rows = await self._rows(
            EVENT_SELECT + " WHERE routed_at IS NULL ORDER BY id LIMIT ?", (limit,))
        return [event_from(row) for row in rows]

    async def route(self, event_id: int, deliveries: Sequence[NewDelivery], now: float) -> int:
        added = 0
        async with self._tx() as db:
            # Only the first to route an event enqueues (see PostgresStore.route).
            cursor = await db.execute(
                "UPDATE events SET routed_at = ? WHERE id = ? AND routed_at IS NULL", (now, event_id))
            if not cursor.rowcount:
                return 0
            if deliveries:
                cursor = await db.executemany(
                    "INSERT INTO deliveries (event_id, channel, subscription, destination, status, "
                    "attempts, payload, created_at, updated_at, next_attempt_at, last_error) "
                    "VALUES (?, ?, ?, ?, ?, 0, ?, ?, ?, ?, ?) "
                    "ON CONFLICT (event_id, channel, subscription) DO NOTHING",
                    [(event_id, new.channel, new.subscription, new.destination,
                      str(DeliveryStatus.DEAD if new.error else DeliveryStatus.PENDING),
                      json.dumps(new.payload), now, now, now, new.error) for new in deliveries],
                )
                added = cursor.rowcount  # executemany sums the rows of every execution
                await db.executemany(
                    "INSERT INTO destinations (key, pace, next_allowed_at) VALUES (?, ?, 0) "
                    "ON CONFLICT (key) DO UPDATE SET pace = excluded.pace",
                    [(new.destination, new.pace) for new in deliveries],
                )
        return added

    async def claim(self, now: float, lease: float, limit: int) -> list[Delivery]:
        if limit <= 0:  # _heads would still take a paced head (and SQLite's LIMIT -1 is "all")
            return []
        async with self._tx() as db:
            await db.execute(
                "UPDATE deliveries SET status = 'pending', updated_at = ? "
                "WHERE status = 'sending' AND lease_until < ?", (now, now))
            ready = await db.execute_fetchall(
                "SELECT key, pace FROM destinations WHERE next_allowed_at <= ? "
                "AND EXISTS (SELECT 1 FROM deliveries WHERE destination = key "
                "AND status = 'pending' AND next_attempt_at <= ?) "
                # Oldest due delivery first, so a busy destination cannot starve another.
                "ORDER BY (SELECT MIN(id) FROM deliveries WHERE destination = key "
                "AND status = 'pending' AND next_attempt_at <= ?)", (now, now, now))
            ids: list[int] = []
            for key, pace in ready:
                ids += await self._heads(db, key, pace, now, limit - len(ids))
                if len(ids) >= limit:
                    break
            if not ids:
                return []
            marks = ",".join("?" * len(ids))
            await db.execute(
                f"UPDATE deliveries SET status = 'sending', attempts = attempts + 1, "
                f"lease_until = ?, updated_at = ? WHERE id IN ({marks})", (now + lease, now, *ids))
            await db.execute(
                "UPDATE destinations SET next_allowed_at = ? + pace WHERE pace > 0 AND key IN "
                f"(SELECT destination FROM deliveries WHERE id IN ({marks}))",
                (now, *ids))
            rows = await db.execute_fetchall(
                f"SELECT {DELIVERY_COLUMNS} FROM deliveries d JOIN events e ON e.id = d.event_id "
                f"WHERE d.id IN ({marks}) ORDER BY d.id", ids)
            return [delivery_from(row) for row in rows]

    @staticmethod
    async def _heads(db: aiosqlite.Connection, key: str, pace: float, now: float,
                     room: int) -> list[int]:
        """The deliveries of one destination that may go now, oldest first."""
        if pace > 0:
            # Paced: one at a time and in order, so nothing while one is in flight,
            # and a head waiting for its retry holds back the ones behind it.
            sql = ("SELECT id, status, next_attempt_at FROM deliveries WHERE destination = ? "
                   "AND status IN ('pending', 'sending') ORDER BY id LIMIT 1")
            heads = list(await db.execute_fetchall(sql, (key,)))
            ok = bool(heads) and heads[0][1] == "pending" and heads[0][2] <= now
            return [int(heads[0][0])] if ok else []
        sql = ("SELECT id FROM deliveries WHERE destination = ? AND status = 'pending' "
               "AND next_attempt_at <= ? ORDER BY id LIMIT ?")
        return [int(row[0]) for row in await db.execute_fetchall(sql, (key, now, room))]

    async def mark_sent(self, delivery_id: int, receipt: str, now: float,
                        attempt: int | None = None) -> None:
        await self._finish(delivery_id, "status = 'sent', receipt = ?, last_error = NULL",
                           (receipt,), now, attempt)

    async def retry_later(self, delivery_id: int, at: float, error: str, now: float,
                          blocked_until: float | None = None, attempt: int | None = None,
                          count_attempt: bool = True) -> None:
        async with self._tx() as db:
            await db.execute(_PACE_FROM_NOW, (now, delivery_id))
            await db.execute(
                "UPDATE deliveries SET status = 'pending', next_attempt_at = ?, last_error = ?, "
                "lease_until = NULL, updated_at = ?, attempts = attempts - ? "
                "WHERE id = ? AND status = 'sending' AND (? IS NULL OR attempts = ?)",
                (at, error, now, 0 if count_attempt else 1, delivery_id, attempt, attempt))
            if blocked_until is not None:
                await db.execute(
                    "UPDATE destinations SET next_allowed_at = MAX(next_allowed_at, ?) "
                    "WHERE key = (SELECT destination FROM deliveries WHERE id = ?)",
                    (blocked_until, delivery_id))

    async def mark_dead(self, delivery_id: int, error: str, now: float,
                        attempt: int | None = None) -> None:
        await self._finish(delivery_id, "status = 'dead', last_error = ?", (error,), now, attempt)

    async def _finish(self, delivery_id: int, assignments: str, params: tuple[Any, ...],
                      now: float, attempt: int | None) -> None:
        # Two statements, each its own transaction, under the one lock: no claim can
        # run between them. The second only for a paced destination (or a late outcome,
        # whose destination is not returned), so an unpaced delivery costs one round trip.
        # A crash between them leaves the pace counted from the claim, as it was.
        async with self._lock:
            db = await self._conn()
            # ``attempt`` fences a late outcome: a send that outlived its lease must not
            # overwrite the state of the attempt that took the delivery over.
            finished = list(await db.execute_fetchall(
                f"UPDATE deliveries SET {assignments}, lease_until = NULL, updated_at = ? "
                "WHERE id = ? AND status = 'sending' AND (? IS NULL OR attempts = ?) "
                "RETURNING (SELECT pace FROM destinations WHERE key = destination)",
                (*params, now, delivery_id, attempt, attempt)))
            if not finished or (finished[0][0] or 0) > 0:
                await db.execute(_PACE_FROM_NOW, (now, delivery_id))

    async def release(self, delivery_ids: Sequence[int], now: float) -> None:
        if not delivery_ids:
            return
        marks = ",".join("?" * len(delivery_ids))
        await self._write(
            "UPDATE deliveries SET status = 'pending', attempts = MAX(attempts - 1, 0), "
            f"lease_until = NULL, updated_at = ? WHERE status = 'sending' AND id IN ({marks})",
            (now, *delivery_ids))

    async def list_deliveries(self, status: DeliveryStatus | Literal["failed"] | None = None,
                              limit: int = 50, event_id: int | None = None) -> list[Delivery]:
        where, params = _filters(status, event_id)
        rows = await self._rows(
            f"SELECT {DELIVERY_COLUMNS} FROM deliveries d JOIN events e ON e.id = d.event_id "
            f"{where} ORDER BY d.id DESC LIMIT ?", (*params, limit))
        return [delivery_from(row) for row in rows]

    async def replay(self, *, delivery_id: int | None = None, dead: bool = False,
                     event_id: int | None = None, now: float) -> int:
        # Never a sent delivery: replaying must not double a message recorded as sent.
        where, params = _replay_filter(delivery_id, dead, event_id)
        return await self._write(
            "UPDATE deliveries SET status = 'pending', attempts = 0, next_attempt_at = ?, "
            f"created_at = ?, updated_at = ? WHERE status IN ('dead', 'pending') AND {where}",
            (now, now, now, *params))

    async def counts(self) -> dict[DeliveryStatus, int]:
        rows = await self._rows("SELECT status, COUNT(*) FROM deliveries GROUP BY status")
        found = {DeliveryStatus(row[0]): int(row[1]) for row in rows}
        return {status: found.get(status, 0) for status in DeliveryStatus}

    async def probe(self) -> None:
        """Raise unless the database takes a write now: reads can succeed while writes fail
        (a read-only or immutable file, a lock held past ``busy_timeout``)."""
        # SQLite skips writing a row rewritten with the same bytes: change it and back,
        # in one transaction, so a page really goes to disk and nothing is left changed.
        async with self._tx() as db:
            await db.execute("UPDATE schema_version SET version = version + 1")
            await db.execute("UPDATE schema_version SET version = version - 1")

    async def listen(self, wake: Callable[[str], None]) -> None:
        return None  # one process owns an SQLite outbox: in-process wake-ups suffice

    async def last_event_at(self, exclude: str = "") -> float | None:
        rows = await self._rows("SELECT MAX(received_at) FROM events WHERE name != ?", (exclude,))
        return float(rows[0][0]) if rows and rows[0][0] is not None else None

    async def oldest_pending(self) -> float | None:
        rows = await self._rows("SELECT MIN(created_at) FROM deliveries WHERE status = 'pending'")
        return float(rows[0][0]) if rows and rows[0][0] is not None else None


# Pace counts from the end of a send, not from its claim: the next message then
# reaches the destination at least ``pace`` after this one did, whatever the latency.
_PACE_FROM_NOW = (
    "UPDATE destinations SET next_allowed_at = MAX(next_allowed_at, ? + pace) "
    "WHERE pace > 0 AND key = (SELECT destination FROM deliveries WHERE id = ?)")
_Queued = tuple[tuple[Any, ...], "asyncio.Future[tuple[int, bool]]"]
_EVENT_BATCH = 500  # events in one INSERT (6 variables each; SQLite allows 32,766)


def _fail(batch: list[_Queued], exc: Exception) -> None:
    for _, future in batch:
        if not future.done():  # its request may have gone away meanwhile
            future.set_exception(exc)


def _resolve(batch: list[_Queued], results: list[tuple[int, bool]]) -> None:
    for (_, future), result in zip(batch, results, strict=True):
        if not future.done():
            future.set_result(result)


def _filters(status: DeliveryStatus | Literal["failed"] | None,
             event_id: int | None) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    if status == "failed":
        clauses.append("d.status = 'pending' AND d.last_error IS NOT NULL")
    elif status is not None:
        clauses.append("d.status = ?")
        params.append(str(status))
    if event_id is not None:
        clauses.append("d.event_id = ?")
        params.append(event_id)
    return ("WHERE " + " AND ".join(clauses)) if clauses else "", params


def _replay_filter(delivery_id: int | None, dead: bool,
                   event_id: int | None) -> tuple[str, list[Any]]:
    if delivery_id is not None:
        return "id = ?", [delivery_id]
    if event_id is not None:
        return "event_id = ?", [event_id]
    if dead:
        return "status = 'dead'", []
    raise ValueError("replay needs a delivery id, an event id or dead=True")
