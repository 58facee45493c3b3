"""The shared store: PostgreSQL through asyncpg, for several notifybot instances at once.

Same semantics as :class:`.sqlite.SQLiteStore`; what differs is how several
processes are kept apart:

* A claim locks the ready ``destinations`` rows with ``FOR UPDATE SKIP LOCKED``
  and updates their ``next_allowed_at`` in the same transaction, so pacing
  holds across processes; the deliveries themselves are locked the same way.
  A claim never waits for a lock, so it cannot take part in a deadlock.
* Everything else that locks a destination row (``route``, ``retry_later``)
  locks it before any delivery row, and ``route`` locks its destinations in
  key order: one lock order everywhere, so no deadlocks between them either.
* ``add_event``, ``route`` and ``replay`` NOTIFY inside their transaction
  (delivered at COMMIT); :meth:`PostgresStore.listen` turns that into wake-ups.
  The payload is the schema, so deployments in other schemas of the same
  database (which share the channels) do not wake each other. A notification
  sent by one of this store's own connections wakes nothing: the process that
  wrote wakes its router or outbox in memory, as on SQLite (and an event whose
  caller gave up before it committed is announced in memory once it has).

Every other query is shared with SQLite (:class:`.sql.SQLStore`).
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

import asyncpg

from ..events import safe_text
from . import pg_sql
from .base import Delivery
from .pg_listener import Listener
from .rows import DELIVERY_COLUMNS, ROOT_COLUMNS, ROOT_JOIN
from .schema import POSTGRES_MIGRATIONS
from .sql import POSTGRES, Conn, LeaseSweep, SQLStore

_MIGRATE_LOCK = 0x6E6F74696679  # "notify": one advisory lock key for every migrate()
CLOSE_WAIT = 10.0  # seconds close() waits for event writes under way
_SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")


class _Connection:
    """An asyncpg connection as :class:`.sql.Conn`."""

    def __init__(self, conn: Any) -> None:
        self._conn = conn

    async def fetch(self, sql: str, *args: Any) -> list[Any]:
        return list(await self._conn.fetch(sql, *args))

    async def execute(self, sql: str, *args: Any) -> int:
        status: str = await self._conn.execute(sql, *args)  # "UPDATE 3", "INSERT 0 1"
        last = status.rsplit(" ", 1)[-1]
        return int(last) if last.isdigit() else 0

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        await self._conn.executemany(sql, list(rows))

    async def fetchval(self, sql: str, *args: Any) -> Any:
        return await self._conn.fetchval(sql, *args)


class PostgresStore(SQLStore):
    """Events and the outbox in PostgreSQL; the pool is created on first use.

    ``schema`` puts the tables in that schema (created by :meth:`migrate`)
    instead of the connection's default ``search_path``; tests use it to isolate.
    """

    dialect = POSTGRES
    migrations = POSTGRES_MIGRATIONS

    def __init__(self, url: str, *, schema: str | None = None, pool_size: int = 10) -> None:
        if schema is not None and not _SCHEMA_NAME.fullmatch(schema):
            raise ValueError(f"schema must match {_SCHEMA_NAME.pattern}: {schema!r}")
        self._url = url  # may hold a password: not public, not logged
        self.schema = schema
        self._pool_size = pool_size
        self._pool: Any = None
        self._pool_lock = asyncio.Lock()
        self._closed = False
        # Backend process ids of this store's pooled connections, while they are open.
        self._own_pids: set[int] = set()
        self._writes: set[asyncio.Future[tuple[int, bool]]] = set()  # add_event's, under way
        self._listener = Listener(self._connect_listener, scope=schema or "",
                                  own=self._own_pids)
        self._leases = LeaseSweep()

    def _settings(self, application: str) -> dict[str, str]:
        if self.schema is None:
            return {"application_name": application}
        # The schema in the name tells an operator (and a test) whose connection it is.
        return {"application_name": f"{application}/{self.schema}"[:63],
                "search_path": self.schema}

    async def _get_pool(self) -> Any:
        if self._pool is not None:
            return self._pool
        async with self._pool_lock:  # two first uses at once must not make two pools
            if self._closed:  # a late write must not open a pool nothing will close
                raise RuntimeError("the store is closed")
            if self._pool is None:
                self._pool = await asyncpg.create_pool(
                    self._url, min_size=1, max_size=self._pool_size, init=self._remember,
                    server_settings=self._settings("notifybot"))
            return self._pool

    async def _remember(self, conn: Any) -> None:
        """Note a new pooled connection's backend, so its NOTIFYs are known as ours."""
        pid = conn.get_server_pid()
        self._own_pids.add(pid)
        # Forgotten once closed: the server may give its process id to another
        # instance's connection, whose notifications must then wake us.
        conn.add_termination_listener(lambda _conn: self._own_pids.discard(pid))

    async def _connect_listener(self) -> Any:
        return await asyncpg.connect(self._url, timeout=10,
                                     server_settings=self._settings("notifybot-listener"))

    @asynccontextmanager
    async def _tx(self) -> AsyncIterator[_Connection]:
        pool = await self._get_pool()
        async with pool.acquire() as conn, conn.transaction():
            yield _Connection(conn)

    @asynccontextmanager
    async def _reader(self) -> AsyncIterator[Conn]:
        pool = await self._get_pool()
        async with pool.acquire() as conn:
            yield _Connection(conn)

    async def _notify(self, conn: Conn, what: str) -> None:
        # Delivered at COMMIT; the payload says whose work it is (see pg_listener).
        await conn.execute("SELECT pg_notify($1, $2)", f"notifybot_{what}", self.schema or "")

    async def _prepare_migration(self, conn: Conn) -> None:
        # Serialises concurrent migrate() calls; CREATE ... IF NOT EXISTS alone
        # races on the catalog. Released at COMMIT.
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATE_LOCK)
        if self.schema is not None:
            await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {self.schema}")

    async def close(self) -> None:
        """Finish the event writes under way, then close the listener and the pool."""
        # A write whose caller gave up still commits (see add_event): not cut short here,
        # nor cancelled if close() is, but not waited for forever either (a lock held by
        # someone else): past CLOSE_WAIT its connection is closed, which rolls it back.
        if self._writes:
            await asyncio.wait(set(self._writes), timeout=CLOSE_WAIT)
        self._closed = True
        await self._listener.close()
        if self._pool is not None:
            pool, self._pool = self._pool, None
            if self._writes:
                pool.terminate()  # close() would wait for the stuck write's connection
            else:
                await pool.close()

    async def add_event(self, name: str, body: bytes, digest: str, content_type: str,
                        headers: Mapping[str, str], now: float) -> tuple[int, bool]:
        # In a task of its own: a caller that gives up (a timeout) does not cut the
        # transaction short, as the store's contract says.
        writing = asyncio.ensure_future(
            self._insert_event(name, body, digest, content_type, headers, now))
        self._writes.add(writing)
        writing.add_done_callback(self._writes.discard)
        writing.add_done_callback(_retrieve)
        try:
            return await asyncio.shield(writing)
        except asyncio.CancelledError:
            # Its NOTIFY wakes nobody here (our own connection): say it in memory.
            writing.add_done_callback(self._announce)
            raise

    def _announce(self, writing: asyncio.Future[tuple[int, bool]]) -> None:
        """A write whose caller gave up has ended: if it stored a new event, say so."""
        if not writing.cancelled() and writing.exception() is None and writing.result()[1]:
            self._listener.wake("events")

    async def _insert_event(self, name: str, body: bytes, digest: str, content_type: str,
                            headers: Mapping[str, str], now: float) -> tuple[int, bool]:
        async with self._tx() as conn:
            # A concurrent insert of the same digest waits for the first to commit,
            # then does nothing; the SELECT (a new snapshot) then sees its row.
            new_id = await conn.fetchval(
                "INSERT INTO events (digest, received_at, name, content_type, headers, body) "
                "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (digest) DO NOTHING RETURNING id",
                digest, now, safe_text(name), safe_text(content_type), json.dumps(dict(headers)),
                body)
            if new_id is not None:
                await self._notify(conn, "events")
                return int(new_id), True
            existing = await conn.fetchval("SELECT id FROM events WHERE digest = $1", digest)
            return int(existing), False

    async def probe(self) -> None:
        """Raise unless the server answers now (health checks)."""
        await self._fetch("SELECT 1")

    async def claim(self, now: float, lease: float, limit: int) -> list[Delivery]:
        if limit <= 0:
            return []
        pool = await self._get_pool()
        async with pool.acquire() as conn, conn.transaction():
            if self._leases.due(now):
                # Rows another transaction holds are skipped, never waited for.
                await conn.execute(
                    "UPDATE deliveries SET status = 'pending', updated_at = $1 WHERE id IN ("
                    "SELECT id FROM deliveries WHERE status = 'sending' AND lease_until < $1 "
                    "FOR UPDATE SKIP LOCKED)", now)
            ready = await conn.fetch(pg_sql.READY, now, now, now, now, now, now, limit)
            ids: list[int] = []
            for key, pace in ready:
                ids += await pg_sql.heads(conn, key, pace, now, limit - len(ids))
                if len(ids) >= limit:
                    break
            if not ids:
                return []
            rows = await conn.fetch(
                "WITH claimed AS (UPDATE deliveries SET status = 'sending', "
                "attempts = attempts + 1, claims = claims + 1, lease_until = $2, updated_at = $1 "
                f"WHERE id = ANY($3::bigint[]) RETURNING *) SELECT {DELIVERY_COLUMNS}, "
                f"{ROOT_COLUMNS} FROM claimed d JOIN events e ON e.id = d.event_id {ROOT_JOIN} "
                "ORDER BY d.id",
                now, now + lease, ids)
            await conn.execute(
                "UPDATE destinations SET next_allowed_at = $1 + pace "
                "WHERE pace > 0 AND key = ANY($2::text[])",
                now, list({row[5] for row in rows}))
            return await self._with_events(_Connection(conn), rows, rooted=True)

    async def listen(self, wake: Callable[[str], None]) -> None:
        """Wake on NOTIFY from any instance; one dedicated connection, reconnected if it drops."""
        await self._listener.add(wake)


def _retrieve(task: asyncio.Future[Any]) -> None:
    """Read a write's outcome that nobody waits for any more (no "never retrieved" warning)."""
    if not task.cancelled():
        task.exception()
