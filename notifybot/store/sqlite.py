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
INSERT (group commit, :meth:`SQLiteStore.add_event`). Routed batches join that
writer (:meth:`SQLiteStore.route_many`): under load, the events stored and the
events routed meanwhile share one transaction and one commit.

Every other query is shared with PostgreSQL (:class:`.sql.SQLStore`); only the
claim is written here, as SQLite has one writer and no row locks to skip.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiosqlite

from ..events import safe_text
from .base import Delivery, NewDelivery
from .rows import DELIVERY_COLUMNS, DELIVERY_FROM, ROOT_COLUMNS, ROOT_JOIN
from .schema import SQLITE_MIGRATIONS
from .sql import PACED_HEAD, READY, SQLITE, UNPACED_HEADS, Conn, LeaseSweep, SQLStore
from .wakes import Wakes


class _Connection:
    """An aiosqlite connection as :class:`.sql.Conn`: one thread hop per call."""

    def __init__(self, db: aiosqlite.Connection) -> None:
        self._db = db

    async def fetch(self, sql: str, *args: Any) -> list[Any]:
        return list(await self._db.execute_fetchall(sql, args))

    async def execute(self, sql: str, *args: Any) -> int:
        cursor = await self._db.execute(sql, args)
        return int(cursor.rowcount)

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        await self._db.executemany(sql, list(rows))


class SQLiteStore(SQLStore):
    """Events and the outbox in one SQLite database file."""

    dialect = SQLITE
    migrations = SQLITE_MIGRATIONS

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._db: aiosqlite.Connection | None = None
        self._closed = False
        self._lock = asyncio.Lock()  # one transaction at a time on the shared connection
        self._queued: list[_Queued] = []
        self._routings: list[_Routing] = []
        self._writer: asyncio.Task[None] | None = None  # writes what is queued
        self._leases = LeaseSweep()
        self._wakes = Wakes()  # listen(): told of given-up writes

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
    async def _tx(self) -> AsyncIterator[Conn]:
        async with self._lock:
            db = await self._conn()
            try:
                # Inside the try: aiosqlite runs a queued BEGIN even if its caller was
                # cancelled meanwhile, and a transaction left open would swallow every
                # later write (202s not on disk) and fail every later BEGIN.
                await db.execute("BEGIN IMMEDIATE")
                yield _Connection(db)
                # Inside the try too: a COMMIT that fails (disk full, I/O error) may
                # leave the transaction open, and the next autocommit INSERT of
                # events would then run inside it, answered 202 but never committed.
                await db.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(sqlite3.OperationalError):  # no transaction is open
                    await db.execute("ROLLBACK")
                raise

    @asynccontextmanager
    async def _reader(self) -> AsyncIterator[Conn]:
        async with self._lock:
            yield _Connection(await self._conn())

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
        little more than one event; a lone event is written at once (with a routed
        batch queued beside it, if any: :meth:`route_many`). Each caller returns
        once the transaction holding its row has committed. A row that the
        database refuses fails alone: its neighbours are written one by one.
        """
        future: asyncio.Future[tuple[int, bool]] = asyncio.get_running_loop().create_future()
        row = (digest, now, safe_text(name), safe_text(content_type),
               json.dumps(dict(headers)), body)
        self._queued.append((row, future))
        self._write_soon()
        return await future

    async def route_many(self, batch: Sequence[tuple[int, Sequence[NewDelivery]]],
                         now: float) -> int:
        """Routed events join the group commit: written with the events stored meanwhile.

        Ingest and routing share SQLite's one writer, so under load both go in one
        transaction with one commit (one fsync) instead of taking turns, each with
        its own. The caller returns once that transaction has committed.
        """
        if not batch:
            return 0
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._routings.append(_Routing(batch, now, future))
        self._write_soon()
        return await future

    def _write_soon(self) -> None:
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write())

    async def _write(self) -> None:
        """Write what is queued, a group at a time, until nothing is."""
        events: list[_Queued] = []
        routings: list[_Routing] = []
        try:
            while self._queued or self._routings:
                events, self._queued = self._queued[:_EVENT_BATCH], self._queued[_EVENT_BATCH:]
                routings, self._routings = self._routings, []
                if routings:
                    await self._write_group(events, routings)
                else:
                    await self._write_batch(events)
                events, routings = [], []
        except BaseException:  # cancelled: nobody will write the rest
            waiting, self._queued = events + self._queued, []
            unrouted, self._routings = routings + self._routings, []
            for _, future in waiting:
                future.cancel()  # a no-op for those answered already
            for routing in unrouted:
                routing.future.cancel()
            raise

    async def _write_group(self, events: list[_Queued], routings: list[_Routing]) -> None:
        """Events and routed batches in one transaction; resolves every caller.

        If the database itself fails (an ``OperationalError``: disk, lock, read-only
        file), every part fails with it. Anything else (a row the driver refuses, a
        bug) rolls the group back and each part is written again on its own, so the
        failure stays with the part that caused it.
        """
        try:
            async with self._tx() as conn:
                results = await self._insert_rows(conn, [row for row, _ in events])
                added = [await self._route_in(conn, r.batch, r.now) for r in routings]
        except sqlite3.OperationalError as exc:
            _fail(events, exc)
            for routing in routings:
                _settle(routing.future, exc)
            return
        except Exception:
            await self._write_apart(events, routings)
            return
        self._resolve(events, results)
        for routing, count in zip(routings, added, strict=True):
            _settle(routing.future, count)

    async def _write_apart(self, events: list[_Queued], routings: list[_Routing]) -> None:
        if events:
            await self._write_batch(events)
        for routing in routings:
            try:
                count = await super().route_many(routing.batch, routing.now)
            except Exception as exc:
                _settle(routing.future, exc)
            else:
                _settle(routing.future, count)

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
        self._resolve(batch, results)

    async def _write_one_by_one(self, batch: list[_Queued]) -> None:
        for row, future in batch:
            try:
                results = await self._insert_events([row])
            except Exception as exc:
                _fail([(row, future)], exc)
                continue
            self._resolve([(row, future)], results)

    async def _insert_events(self, rows: list[tuple[Any, ...]]) -> list[tuple[int, bool]]:
        """:meth:`_insert_rows` as its own transaction: one statement, committed once it
        has run to completion (autocommit), so no BEGIN or COMMIT round trip."""
        async with self._lock:
            return await self._insert_rows(_Connection(await self._conn()), rows)

    @staticmethod
    async def _insert_rows(conn: Conn, rows: list[tuple[Any, ...]]) -> list[tuple[int, bool]]:
        """(id, new) per row; a digest already stored, or twice in ``rows``, is new once."""
        if not rows:
            return []
        inserted = await conn.fetch(
            "INSERT INTO events (digest, received_at, name, content_type, headers, body) "
            f"VALUES {','.join(['(?, ?, ?, ?, ?, ?)'] * len(rows))} "
            "ON CONFLICT (digest) DO NOTHING RETURNING digest, id",
            *[value for row in rows for value in row])
        ids = {digest: int(event_id) for digest, event_id in inserted}
        new = set(ids)
        missing = list({row[0] for row in rows} - new)
        if missing:
            found = await conn.fetch(
                f"SELECT digest, id FROM events WHERE digest IN ({','.join('?' * len(missing))})",
                *missing)
            ids.update({digest: int(event_id) for digest, event_id in found})
        results = []
        for digest, *_ in rows:
            results.append((ids[digest], digest in new))
            new.discard(digest)
        return results

    async def claim(self, now: float, lease: float, limit: int) -> list[Delivery]:
        if limit <= 0:  # _heads would still take a paced head (and SQLite's LIMIT -1 is "all")
            return []
        async with self._tx() as conn:
            if self._leases.due(now):
                await conn.execute(
                    "UPDATE deliveries SET status = 'pending', updated_at = ? "
                    "WHERE status = 'sending' AND lease_until < ?", now, now)
            ids: list[int] = []
            paced: list[str] = []
            for key, pace in await conn.fetch(READY, now, now, now):
                heads = await self._heads(conn, key, pace, now, limit - len(ids))
                ids += heads
                paced += [key] if heads and pace > 0 else []
                if len(ids) >= limit:
                    break
            if not ids:
                return []
            marks = ",".join("?" * len(ids))
            await conn.execute(
                f"UPDATE deliveries SET status = 'sending', attempts = attempts + 1, "
                "claims = claims + 1, "
                f"lease_until = ?, updated_at = ? WHERE id IN ({marks})", now + lease, now, *ids)
            if paced:
                await conn.executemany(
                    "UPDATE destinations SET next_allowed_at = ? + pace WHERE key = ?",
                    [(now, key) for key in paced])
            rows = await conn.fetch(
                f"SELECT {DELIVERY_COLUMNS}, {ROOT_COLUMNS} {DELIVERY_FROM} {ROOT_JOIN} "
                f"WHERE d.id IN ({marks}) ORDER BY d.id", *ids)
            return await self._with_events(conn, rows, rooted=True)

    @staticmethod
    async def _heads(conn: Conn, key: str, pace: float, now: float, room: int) -> list[int]:
        """The deliveries of one destination that may go now, oldest first."""
        if pace > 0:
            # Paced: one at a time and in order, so nothing while one is in flight,
            # and a head waiting for its retry holds back the ones behind it.
            heads = await conn.fetch(PACED_HEAD, key, now)
            ok = bool(heads) and heads[0][1] == "pending" and heads[0][2] <= now
            return [int(heads[0][0])] if ok else []
        return [int(row[0]) for row in await conn.fetch(UNPACED_HEADS, key, now, now, room)]

    async def probe(self) -> None:
        """Raise unless the database takes a write now: reads can succeed while writes fail
        (a read-only or immutable file, a lock held past ``busy_timeout``)."""
        # SQLite skips writing a row rewritten with the same bytes: change it and back,
        # in one transaction, so a page really goes to disk and nothing is left changed.
        async with self._tx() as db:
            await db.execute("UPDATE schema_version SET version = version + 1")
            await db.execute("UPDATE schema_version SET version = version - 1")

    async def listen(self, wake: Callable[[str], None]) -> None:
        # One process owns an SQLite outbox: in-process wake-ups suffice, but for an
        # event whose caller gave up before it committed (see _resolve).
        self._wakes.add(wake)

    def _resolve(self, batch: list[_Queued], results: list[tuple[int, bool]]) -> None:
        """Answer each caller; if one gave up and its event was new, tell the listeners."""
        orphaned = False
        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)
            elif future.cancelled() and result[1]:
                orphaned = True
        if orphaned:
            self._wakes("events")


_Queued = tuple[tuple[Any, ...], "asyncio.Future[tuple[int, bool]]"]


@dataclass(frozen=True)
class _Routing:
    """A routed batch waiting for the writer (:meth:`SQLiteStore.route_many`)."""

    batch: Sequence[tuple[int, Sequence[NewDelivery]]]
    now: float
    future: asyncio.Future[int]

_EVENT_BATCH = 500  # events in one INSERT (6 variables each; SQLite allows 32,766)


def _fail(batch: list[_Queued], exc: Exception) -> None:
    for _, future in batch:
        if not future.done():  # its request may have gone away meanwhile
            future.set_exception(exc)


def _settle(future: asyncio.Future[int], outcome: int | Exception) -> None:
    if future.done():  # its caller has gone away meanwhile
        return
    if isinstance(outcome, Exception):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)

