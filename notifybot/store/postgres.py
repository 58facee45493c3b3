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
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, Literal

import asyncpg

from ..events import safe_text
from . import pg_sql
from .base import Delivery, DeliveryStatus, NewDelivery, StoredEvent
from .pg_listener import Listener
from .schema import POSTGRES_MIGRATIONS

_MIGRATE_LOCK = 0x6E6F74696679  # "notify": one advisory lock key for every migrate()
_SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")


# Pace counts from the end of a send, not from its claim: the next message then
# reaches the destination at least ``pace`` after this one did, whatever the latency.
_PACE_FROM_NOW = (
    "UPDATE destinations SET next_allowed_at = GREATEST(next_allowed_at, $1 + pace) "
    "WHERE pace > 0 AND key = (SELECT destination FROM deliveries WHERE id = $2)")


class PostgresStore:
    """Events and the outbox in PostgreSQL; the pool is created on first use.

    ``schema`` puts the tables in that schema (created by :meth:`migrate`)
    instead of the connection's default ``search_path``; tests use it to isolate.
    """

    def __init__(self, url: str, *, schema: str | None = None, pool_size: int = 10) -> None:
        if schema is not None and not _SCHEMA_NAME.fullmatch(schema):
            raise ValueError(f"schema must match {_SCHEMA_NAME.pattern}: {schema!r}")
        self._url = url  # may hold a password: not public, not logged
        self.schema = schema
        self._pool_size = pool_size
        self._pool: Any = None
        self._pool_lock = asyncio.Lock()
        self._listener = Listener(self._connect_listener)

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
            if self._pool is None:
                self._pool = await asyncpg.create_pool(
                    self._url, min_size=1, max_size=self._pool_size,
                    server_settings=self._settings("notifybot"))
            return self._pool

    async def _connect_listener(self) -> Any:
        return await asyncpg.connect(self._url, timeout=10,
                                     server_settings=self._settings("notifybot-listener"))

    @asynccontextmanager
    async def _tx(self) -> AsyncIterator[Any]:
        pool = await self._get_pool()
        async with pool.acquire() as conn, conn.transaction():
            yield conn

    async def _fetch(self, sql: str, *args: Any) -> list[Any]:
        pool = await self._get_pool()
        return list(await pool.fetch(sql, *args))

    async def migrate(self) -> None:
        async with self._tx() as conn:
            # Serialises concurrent migrate() calls; CREATE ... IF NOT EXISTS alone
            # races on the catalog. Released at COMMIT.
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATE_LOCK)
            if self.schema is not None:
                await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {self.schema}")
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            current = await conn.fetchval("SELECT MAX(version) FROM schema_version") or 0
            for version, statements in enumerate(POSTGRES_MIGRATIONS, start=1):
                if version > current:
                    for statement in statements:
                        await conn.execute(statement)
                    await conn.execute("INSERT INTO schema_version VALUES ($1)", version)

    async def close(self) -> None:
        """Close the listener connection and the pool."""
        await self._listener.close()
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()

    async def add_event(self, name: str, body: bytes, digest: str, content_type: str,
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
                await conn.execute("NOTIFY notifybot_events")
                return int(new_id), True
            existing = await conn.fetchval("SELECT id FROM events WHERE digest = $1", digest)
            return int(existing), False

    async def probe(self) -> None:
        """Raise unless the server answers now (health checks)."""
        await self._fetch("SELECT 1")

    async def get_event(self, event_id: int) -> StoredEvent | None:
        rows = await self._fetch(pg_sql.EVENT_SELECT + " WHERE id = $1", event_id)
        return pg_sql.event_from(rows[0]) if rows else None

    async def unrouted_events(self, limit: int) -> list[StoredEvent]:
        rows = await self._fetch(
            pg_sql.EVENT_SELECT + " WHERE routed_at IS NULL ORDER BY id LIMIT $1", limit)
        return [pg_sql.event_from(row) for row in rows]

    async def route(self, event_id: int, deliveries: Sequence[NewDelivery], now: float) -> int:
        added = pending = 0
        async with self._tx() as conn:
            # Only the first to route an event enqueues: two instances on different
            # configurations (mid-reload) must not both add their deliveries.
            claimed = await conn.execute(
                "UPDATE events SET routed_at = $1 WHERE id = $2 AND routed_at IS NULL",
                now, event_id)
            if claimed.endswith(" 0"):
                return 0
            # Destinations first and in key order (see the module docstring). Holding
            # them also means a destination's ids are handed out in commit order, so a
            # claim never sees a later delivery of a paced destination before an earlier.
            paces = {new.destination: new.pace for new in deliveries}
            for key in sorted(paces):
                await conn.execute(
                    "INSERT INTO destinations (key, pace, next_allowed_at) VALUES ($1, $2, 0) "
                    "ON CONFLICT (key) DO UPDATE SET pace = excluded.pace", key, paces[key])
            for new in deliveries:
                status = DeliveryStatus.DEAD if new.error else DeliveryStatus.PENDING
                result = await conn.execute(
                    "INSERT INTO deliveries (event_id, channel, subscription, destination, status, "
                    "attempts, payload, created_at, updated_at, next_attempt_at, last_error) "
                    "VALUES ($1, $2, $3, $4, $5, 0, $6, $7, $7, $7, $8) "
                    "ON CONFLICT (event_id, channel, subscription) DO NOTHING",
                    event_id, new.channel, new.subscription, new.destination, str(status),
                    json.dumps(new.payload), now, new.error)
                count = int(result.rsplit(" ", 1)[-1])  # "INSERT 0 <rows>"
                added += count
                pending += count if status is DeliveryStatus.PENDING else 0
            if pending:
                await conn.execute("NOTIFY notifybot_deliveries")
        return added

    async def claim(self, now: float, lease: float, limit: int) -> list[Delivery]:
        if limit <= 0:
            return []
        async with self._tx() as conn:
            # Rows another transaction holds are skipped: this runs on every claim.
            await conn.execute(
                "UPDATE deliveries SET status = 'pending', updated_at = $1 WHERE id IN ("
                "SELECT id FROM deliveries WHERE status = 'sending' AND lease_until < $1 "
                "FOR UPDATE SKIP LOCKED)", now)
            ready = await conn.fetch(pg_sql.READY, now, limit)
            ids: list[int] = []
            for key, pace in ready:
                ids += await pg_sql.heads(conn, key, pace, now, limit - len(ids))
                if len(ids) >= limit:
                    break
            if not ids:
                return []
            rows = await conn.fetch(
                "WITH claimed AS (UPDATE deliveries SET status = 'sending', "
                "attempts = attempts + 1, lease_until = $2, updated_at = $1 "
                f"WHERE id = ANY($3::bigint[]) RETURNING *) SELECT {pg_sql.DELIVERY_COLUMNS} "
                "FROM claimed d JOIN events e ON e.id = d.event_id ORDER BY d.id",
                now, now + lease, ids)
            await conn.execute(
                "UPDATE destinations SET next_allowed_at = $1 + pace "
                "WHERE pace > 0 AND key = ANY($2::text[])",
                now, list({row[5] for row in rows}))
            return [pg_sql.delivery_from(row) for row in rows]

    async def mark_sent(self, delivery_id: int, receipt: str, now: float,
                        attempt: int | None = None) -> None:
        await self._finish(delivery_id, "status = 'sent', receipt = $3, last_error = NULL",
                           receipt, now, attempt)

    async def retry_later(self, delivery_id: int, at: float, error: str, now: float,
                          blocked_until: float | None = None, attempt: int | None = None,
                          count_attempt: bool = True) -> None:
        async with self._tx() as conn:
            # The destination before the delivery: lock order.
            await conn.execute(_PACE_FROM_NOW, now, delivery_id)
            if blocked_until is not None:
                await conn.execute(
                    "UPDATE destinations SET next_allowed_at = GREATEST(next_allowed_at, $1) "
                    "WHERE key = (SELECT destination FROM deliveries WHERE id = $2)",
                    blocked_until, delivery_id)
            await conn.execute(
                "UPDATE deliveries SET status = 'pending', next_attempt_at = $1, last_error = $2, "
                "lease_until = NULL, updated_at = $3, attempts = attempts - $6 "
                "WHERE id = $4 AND status = 'sending' AND ($5::int IS NULL OR attempts = $5)",
                at, error, now, delivery_id, attempt, 0 if count_attempt else 1)

    async def mark_dead(self, delivery_id: int, error: str, now: float,
                        attempt: int | None = None) -> None:
        await self._finish(delivery_id, "status = 'dead', last_error = $3", error, now, attempt)

    async def _finish(self, delivery_id: int, assignments: str, value: str, now: float,
                      attempt: int | None) -> None:
        async with self._tx() as conn:
            await conn.execute(_PACE_FROM_NOW, now, delivery_id)  # destination first: lock order
            # ``attempt`` fences a late outcome: a send that outlived its lease must not
            # overwrite the state of the attempt that took the delivery over.
            await conn.execute(
                f"UPDATE deliveries SET {assignments}, lease_until = NULL, updated_at = $2 "
                "WHERE id = $1 AND status = 'sending' AND ($4::int IS NULL OR attempts = $4)",
                delivery_id, now, value, attempt)

    async def release(self, delivery_ids: Sequence[int], now: float) -> None:
        if not delivery_ids:
            return
        pool = await self._get_pool()
        await pool.execute(
            "UPDATE deliveries SET status = 'pending', attempts = GREATEST(attempts - 1, 0), "
            "lease_until = NULL, updated_at = $1 WHERE status = 'sending' "
            "AND id = ANY($2::bigint[])", now, list(delivery_ids))

    async def list_deliveries(self, status: DeliveryStatus | Literal["failed"] | None = None,
                              limit: int = 50, event_id: int | None = None) -> list[Delivery]:
        rows = await self._fetch(
            f"SELECT {pg_sql.DELIVERY_COLUMNS} FROM deliveries d JOIN events e ON e.id = d.event_id "
            "WHERE ($1::text IS NULL OR d.status = $1 OR ($1 = 'failed' AND d.status = 'pending' "
            "AND d.last_error IS NOT NULL)) AND ($2::bigint IS NULL OR d.event_id = $2) "
            "ORDER BY d.id DESC LIMIT $3",
            None if status is None else str(status), event_id, limit)
        return [pg_sql.delivery_from(row) for row in rows]

    async def replay(self, *, delivery_id: int | None = None, dead: bool = False,
                     event_id: int | None = None, now: float) -> int:
        # Never a sent delivery: replaying must not double a message recorded as sent.
        where, params = pg_sql.replay_filter(delivery_id, dead, event_id)
        async with self._tx() as conn:
            result = await conn.execute(
                "UPDATE deliveries SET status = 'pending', attempts = 0, next_attempt_at = $1, "
                f"created_at = $1, updated_at = $1 WHERE status IN ('dead', 'pending') AND {where}",
                now, *params)
            count = int(result.rsplit(" ", 1)[-1])  # "UPDATE <rows>"
            if count:
                await conn.execute("NOTIFY notifybot_deliveries")
            return count

    async def counts(self) -> dict[DeliveryStatus, int]:
        rows = await self._fetch("SELECT status, COUNT(*) FROM deliveries GROUP BY status")
        found = {DeliveryStatus(row[0]): int(row[1]) for row in rows}
        return {status: found.get(status, 0) for status in DeliveryStatus}

    async def listen(self, wake: Callable[[str], None]) -> None:
        """Wake on NOTIFY from any instance; one dedicated connection, reconnected if it drops."""
        await self._listener.add(wake)

    async def last_event_at(self, exclude: str = "") -> float | None:
        rows = await self._fetch("SELECT MAX(received_at) FROM events WHERE name <> $1", exclude)
        return float(rows[0][0]) if rows and rows[0][0] is not None else None

    async def oldest_pending(self) -> float | None:
        rows = await self._fetch("SELECT MIN(created_at) FROM deliveries WHERE status = 'pending'")
        return float(rows[0][0]) if rows and rows[0][0] is not None else None
