"""The store's queries, written once for SQLite and PostgreSQL.

:class:`SQLStore` holds every query of the storage contract except the few
that really differ per backend: storing events (SQLite group-commits them),
claiming (PostgreSQL uses ``FOR UPDATE SKIP LOCKED``) and listening. A backend
gives it a :class:`Dialect` and a way to open a transaction; the statements
use ``?`` placeholders, which the dialect turns into ``$1, $2 …`` for asyncpg.

Lock order (matters only on PostgreSQL, where several processes write): a
transaction that touches ``destinations`` rows locks them first, in key order,
and only then ``deliveries`` rows. Claims skip locked rows instead of waiting,
so no deadlock can form.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, Literal, Protocol

from .base import (
    Delivery,
    DeliveryStatus,
    NewDelivery,
    Outcome,
    StoredEvent,
    ThreadRoot,
)
from .rows import (
    DELIVERY_COLUMNS,
    DELIVERY_FROM,
    EVENT_SELECT,
    INSERT_DELIVERY,
    INSERT_VALUES,
    delivery_from,
    event_from,
    gathered,
    insert_values,
)
from .silences import SilenceQueries

_PLACEHOLDER = re.compile(r"\?")


class Conn(Protocol):
    """One connection inside a transaction, as both backends offer it."""

    async def fetch(self, sql: str, *args: Any) -> list[Any]:
        """Run a statement and return its rows."""
        ...

    async def execute(self, sql: str, *args: Any) -> int:
        """Run a statement; returns how many rows it changed."""
        ...

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        """Run a statement once per row of parameters, in one round trip where possible."""


@dataclass(frozen=True)
class Dialect:
    """What differs in the SQL text itself: placeholders and two function names."""

    name: str
    greatest: str  # MAX (SQLite's scalar form) or GREATEST
    numbered: bool  # $1, $2 … instead of ?
    _cache: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    def sql(self, text: str) -> str:
        """The statement in this dialect (cached: the same few statements run all day)."""
        if not self.numbered:
            return text
        found = self._cache.get(text)
        if found is None:
            counter = iter(range(1, 10_000))
            found = _PLACEHOLDER.sub(lambda _: f"${next(counter)}", text)
            self._cache[text] = found
        return found


SQLITE = Dialect("sqlite", greatest="MAX", numbered=False)
POSTGRES = Dialect("postgresql", greatest="GREATEST", numbered=True)

_SENT = ("UPDATE deliveries SET status = 'sent', receipt = ?, handle = ?, thread_role = ?, "
         "last_error = NULL, lease_until = NULL, updated_at = ? WHERE id = ? AND status = 'sending'")
_RETRY = ("UPDATE deliveries SET status = 'pending', next_attempt_at = ?, last_error = ?, "
          "lease_until = NULL, updated_at = ?, attempts = attempts - ? "
          "WHERE id = ? AND status = 'sending'")
_DEAD = ("UPDATE deliveries SET status = 'dead', last_error = ?, lease_until = NULL, updated_at = ? "
         "WHERE id = ? AND status = 'sending'")
# A late outcome of an attempt that lost its lease changes nothing:
_FENCE = " AND claims = ?"
_OUTCOME_SQL = {DeliveryStatus.SENT: _SENT, DeliveryStatus.PENDING: _RETRY,
                DeliveryStatus.DEAD: _DEAD}
_REAL = "CAST(? AS DOUBLE PRECISION)"  # typed, so PostgreSQL knows a NULL parameter's type
_REPLAYABLE = "('dead', 'pending', 'silenced')"  # never 'sent': a replay must not double a message


# -- the claim's building blocks (SQLite's; PostgreSQL adds row locks, see pg_sql) ---------

#: A delivery another of its thread must wait for: one being sent, or an earlier one
#: that is due or retrying (one held by ``not_before`` holds nothing back). So a reply
#: is claimed only once its root is recorded, and a thread keeps its order.
THREAD_CLEAR = (
    "(d.thread_key IS NULL OR NOT EXISTS (SELECT 1 FROM deliveries o "
    "WHERE o.destination = d.destination AND o.thread_key = d.thread_key AND o.id <> d.id "
    "AND (o.status = 'sending' OR (o.status = 'pending' AND o.id < d.id "
    "AND (o.not_before IS NULL OR o.not_before <= ?)))))"
)
#: Destinations with something due, oldest due delivery first, so that a busy
#: destination cannot starve another. Parameters: now, now, now.
READY = (
    "SELECT t.key, t.pace FROM destinations t WHERE t.next_allowed_at <= ? "
    "AND EXISTS (SELECT 1 FROM deliveries q WHERE q.destination = t.key "
    "AND q.status = 'pending' AND q.next_attempt_at <= ?) "
    "ORDER BY (SELECT MIN(q.id) FROM deliveries q WHERE q.destination = t.key "
    "AND q.status = 'pending' AND q.next_attempt_at <= ?)"
)
#: A paced destination's head: its oldest unfinished delivery not held by not_before.
#: Parameters: destination, now.
PACED_HEAD = (
    "SELECT id, status, next_attempt_at FROM deliveries WHERE destination = ? "
    "AND status IN ('pending', 'sending') AND (not_before IS NULL OR not_before <= ?) "
    "ORDER BY id LIMIT 1"
)
#: An unpaced destination's due deliveries whose thread is clear, oldest first.
#: Parameters: destination, now, now (THREAD_CLEAR), limit.
UNPACED_HEADS = (
    "SELECT d.id FROM deliveries d WHERE d.destination = ? AND d.status = 'pending' "
    f"AND d.next_attempt_at <= ? AND {THREAD_CLEAR} ORDER BY d.id LIMIT ?"
)


class LeaseSweep:
    """When a claim should also return expired leases to pending: at most once a second.

    A lease lasts a minute by default, so sweeping on every claim (many a second in a
    burst) costs a statement each time for nothing. Time going backwards (a test's
    clock) sweeps at once.
    """

    def __init__(self, every: float = 1.0) -> None:
        self.every = every
        self._last: float | None = None

    def due(self, now: float) -> bool:
        if self._last is not None and 0 <= now - self._last < self.every:
            return False
        self._last = now
        return True


class SQLStore(SilenceQueries):
    """Every query both backends share. Subclasses provide the connection and the claim."""

    dialect: Dialect = SQLITE
    migrations: ClassVar[list[list[str]]] = []

    # -- what a backend provides ----------------------------------------------------------

    def _tx(self) -> AbstractAsyncContextManager[Conn]:
        """A connection inside one transaction, committed when the block ends."""
        raise NotImplementedError

    def _reader(self) -> AbstractAsyncContextManager[Conn]:
        """A connection for reads (no transaction needed)."""
        raise NotImplementedError

    async def _notify(self, conn: Conn, what: str) -> None:
        """Tell other processes that ``what`` ("events", "deliveries") has new work."""

    async def _prepare_migration(self, conn: Conn) -> None:
        """Run first inside the migration's transaction (a lock, a schema)."""

    # -- schema ---------------------------------------------------------------------------

    async def migrate(self) -> str:
        """Apply the migrations this database has not seen; says what it did."""
        async with self._tx() as conn:
            await self._prepare_migration(conn)
            await conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            rows = await conn.fetch("SELECT MAX(version) FROM schema_version")
            current = (rows[0][0] if rows else None) or 0
            for version, statements in enumerate(self.migrations, start=1):
                if version > current:
                    for statement in statements:
                        await conn.execute(statement)
                    await conn.execute(self._q("INSERT INTO schema_version VALUES (?)"), version)
        latest = len(self.migrations)
        if current == latest:
            return f"up to date (schema version {latest})"
        if current == 0:
            return f"created (schema version {latest})"
        return f"upgraded from schema version {current} to {latest}"

    # -- events ---------------------------------------------------------------------------

    async def get_event(self, event_id: int) -> StoredEvent | None:
        found = await self.get_events([event_id])
        return found[0] if found else None

    async def get_events(self, event_ids: Sequence[int]) -> list[StoredEvent]:
        if not event_ids:
            return []
        rows = await self._fetch(f"{EVENT_SELECT} WHERE id IN ({_marks(event_ids)}) ORDER BY id",
                                 *event_ids)
        return [event_from(row) for row in rows]

    async def unrouted_events(self, limit: int) -> list[StoredEvent]:
        rows = await self._fetch(f"{EVENT_SELECT} WHERE routed_at IS NULL ORDER BY id LIMIT ?", limit)
        return [event_from(row) for row in rows]

    async def last_event_at(self, exclude: str = "") -> float | None:
        rows = await self._fetch("SELECT MAX(received_at) FROM events WHERE name <> ?", exclude)
        return float(rows[0][0]) if rows and rows[0][0] is not None else None

    # -- enqueueing -----------------------------------------------------------------------

    async def route(self, event_id: int, deliveries: Sequence[NewDelivery], now: float) -> int:
        return await self.route_many([(event_id, deliveries)], now)

    async def route_many(self, batch: Sequence[tuple[int, Sequence[NewDelivery]]],
                         now: float) -> int:
        if not batch:
            return 0
        async with self._tx() as conn:
            return await self._route_in(conn, batch, now)

    async def _route_in(self, conn: Conn, batch: Sequence[tuple[int, Sequence[NewDelivery]]],
                        now: float) -> int:
        """:meth:`route_many` inside a transaction the caller opened and commits."""
        await self._destinations(conn, [new for _, news in batch for new in news])
        # Only the first to route an event enqueues: two instances on different
        # configurations (mid-reload) must not both add their deliveries. One
        # statement marks the whole batch and says which events are ours.
        ids = [event_id for event_id, _ in batch]
        mine = {int(row[0]) for row in await conn.fetch(self._q(
            f"UPDATE events SET routed_at = ? WHERE id IN ({_marks(ids)}) "
            "AND routed_at IS NULL RETURNING id"), now, *ids)}
        ours = [(event_id, news) for event_id, news in batch if event_id in mine]
        added = await self._insert_plain(conn, ours, now)
        for event_id, deliveries in ours:
            added += await self._insert(conn, event_id, [d for d in deliveries
                                                         if not _plain(d)], now)
        if added:
            await self._notify(conn, "deliveries")
        return added

    async def _insert_plain(self, conn: Conn,
                            batch: Sequence[tuple[int, Sequence[NewDelivery]]], now: float) -> int:
        """Every one-event delivery of the batch in one statement (one round trip)."""
        rows = [insert_values(event_id, new, new.key or f"e{event_id}:{new.channel}:"
                                                     f"{new.subscription}", now)
                for event_id, news in batch for new in news if _plain(new)]
        added = 0
        for start in range(0, len(rows), _INSERT_ROWS):
            chunk = rows[start:start + _INSERT_ROWS]
            sql = INSERT_DELIVERY.replace(INSERT_VALUES, ", ".join([INSERT_VALUES] * len(chunk)))
            added += len(await conn.fetch(self._q(sql), *[v for row in chunk for v in row]))
        return added

    async def enqueue(self, deliveries: Sequence[NewDelivery], now: float) -> int:
        if not deliveries:
            return 0
        async with self._tx() as conn:
            await self._destinations(conn, deliveries)
            added = 0
            for new in deliveries:
                lead = new.event_ids[0] if new.event_ids else None
                if lead is None:
                    raise ValueError("a delivery made after routing names its events")
                added += await self._insert(conn, lead, [new], now)
            if added:
                await self._notify(conn, "deliveries")
        return added

    async def _destinations(self, conn: Conn, deliveries: Iterable[NewDelivery]) -> None:
        """Create or update each destination's pace; in key order (the lock order)."""
        paces = {new.destination: new.pace for new in deliveries}
        if paces:
            await conn.executemany(
                self._q("INSERT INTO destinations (key, pace, next_allowed_at) VALUES (?, ?, 0) "
                        "ON CONFLICT (key) DO UPDATE SET pace = excluded.pace"),
                [(key, float(paces[key])) for key in sorted(paces)])

    async def _insert(self, conn: Conn, event_id: int, deliveries: Sequence[NewDelivery],
                      now: float) -> int:
        added = 0
        for new in deliveries:
            if new.gather is not None and await self._join_gather(conn, event_id, new, now):
                continue  # joined the open fold or digest: no new message
            key = new.key or (f"{new.gather}#{event_id}" if new.gather
                              else f"e{event_id}:{new.channel}:{new.subscription}")
            rows = await conn.fetch(self._q(INSERT_DELIVERY), *insert_values(event_id, new, key, now))
            if not rows:
                continue  # the key exists: made before (a replay of routing, another instance)
            added += 1
            events = set(new.event_ids) | {event_id}
            if new.gather is not None or len(events) > 1:
                await self._link(conn, int(rows[0][0]), sorted(events))
        return added

    async def _join_gather(self, conn: Conn, event_id: int, new: NewDelivery, now: float) -> bool:
        """Add the event to the open delivery gathering ``new.gather``; False if none is open.

        The UPDATE takes the row's lock on PostgreSQL and re-checks that it is still
        pending and unattempted, so an event never joins a digest already being sent.
        """
        rows = await conn.fetch(self._q(
            "UPDATE deliveries SET updated_at = ? WHERE id = (SELECT id FROM deliveries "
            "WHERE gather = ? AND status = 'pending' AND attempts = 0 ORDER BY id LIMIT 1) "
            "AND status = 'pending' AND attempts = 0 RETURNING id"), now, new.gather)
        if not rows:
            return False
        await self._link(conn, int(rows[0][0]), [event_id])
        return True

    async def _link(self, conn: Conn, delivery_id: int, event_ids: Sequence[int]) -> None:
        await conn.executemany(
            self._q("INSERT INTO delivery_events (delivery_id, event_id) VALUES (?, ?) "
                    "ON CONFLICT DO NOTHING"),
            [(delivery_id, event_id) for event_id in event_ids])

    # -- threads --------------------------------------------------------------------------

    async def thread_root(self, destination: str, key: str, since: float) -> ThreadRoot | None:
        rows = await self._fetch(
            "SELECT handle, subject, created_at FROM threads WHERE destination = ? AND key = ? "
            "AND created_at >= ?", destination, key, since)
        return ThreadRoot(str(rows[0][0]), rows[0][1], float(rows[0][2])) if rows else None

    async def forget_thread(self, destination: str, key: str, handle: str) -> None:
        async with self._tx() as conn:
            await conn.execute(
                self._q("DELETE FROM threads WHERE destination = ? AND key = ? AND handle = ?"),
                destination, key, handle)

    # -- outcomes -------------------------------------------------------------------------

    async def record(self, outcomes: Sequence[Outcome], now: float) -> None:
        if not outcomes:
            return
        g = self.dialect.greatest
        async with self._tx() as conn:
            # Destinations first, in key order (the lock order). Pace counts from the end
            # of a send, so the next message arrives at least ``pace`` after this one did.
            # One pass over every destination touched, in key order: the pace (counted
            # from now) and a 429's block (``blocked_until``) in one statement each.
            paced = {o.pace_key for o in outcomes if o.pace_key}
            blocked: dict[str, float] = {}
            for o in outcomes:
                if o.blocked_until is not None and o.destination:
                    blocked[o.destination] = max(o.blocked_until, blocked.get(o.destination, 0.0))
            rows = [(now if key in paced else None, blocked.get(key), key)
                    for key in sorted(paced | set(blocked))]
            if rows:
                await conn.executemany(self._q(
                    f"UPDATE destinations SET next_allowed_at = {g}(next_allowed_at, "
                    f"CASE WHEN pace > 0 AND {_REAL} IS NOT NULL THEN {_REAL} + pace ELSE 0 END, "
                    f"COALESCE({_REAL}, 0)) WHERE key = ?"),
                    [(pace, pace, until, key) for pace, until, key in rows])
            await self._record_states(conn, outcomes, now)
            await self._mark_threads(conn, [o for o in outcomes if o.thread is not None], now)

    async def _record_states(self, conn: Conn, outcomes: Sequence[Outcome], now: float) -> None:
        """One statement per kind of outcome (sent, retry, dead), each run for all its rows."""
        groups: dict[tuple[DeliveryStatus, bool], list[tuple[Any, ...]]] = {}
        for o in outcomes:
            fence = (o.attempt,) if o.attempt is not None else ()
            if o.status is DeliveryStatus.SENT:
                role = None if o.thread is None else ("root" if o.thread.root else "reply")
                row: tuple[Any, ...] = (o.receipt, o.handle, role, now, o.delivery_id, *fence)
            elif o.status is DeliveryStatus.PENDING:
                row = (o.retry_at if o.retry_at is not None else now, o.error, now,
                       0 if o.count_attempt else 1, o.delivery_id, *fence)
            elif o.status is DeliveryStatus.DEAD:
                row = (o.error, now, o.delivery_id, *fence)
            else:
                raise ValueError(f"not an outcome: {o.status}")
            groups.setdefault((o.status, bool(fence)), []).append(row)
        for (status, fenced), rows in groups.items():
            sql = _OUTCOME_SQL[status] + (_FENCE if fenced else "")
            await conn.executemany(self._q(sql), rows)

    async def _mark_threads(self, conn: Conn, outcomes: Sequence[Outcome], now: float) -> None:
        """Keep each new root's handle; note when a thread was last used.

        A root is kept only if its delivery is now recorded as sent with that handle:
        a late outcome, fenced out above, marks no thread.
        """
        roots = [(o.delivery_id, o.thread) for o in outcomes if o.thread is not None and o.thread.root]
        if roots:
            await conn.executemany(self._q(
                "INSERT INTO threads (destination, key, handle, subject, created_at, last_used_at) "
                "SELECT ?, ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM deliveries "
                "WHERE id = ? AND status = 'sent' AND handle = ?) "
                "ON CONFLICT (destination, key) DO UPDATE SET handle = excluded.handle, "
                "subject = excluded.subject, created_at = excluded.created_at, "
                "last_used_at = excluded.last_used_at"),
                [(mark.destination, mark.key, mark.handle, mark.subject, now, now, delivery_id,
                  mark.handle) for delivery_id, mark in roots])
        replies = sorted({(o.thread.destination, o.thread.key) for o in outcomes
                          if o.thread is not None and not o.thread.root})
        if replies:
            await conn.executemany(self._q(
                "UPDATE threads SET last_used_at = ? WHERE destination = ? AND key = ?"),
                [(now, destination, key) for destination, key in replies])

    # One outcome at a time, for commands and tests; the outbox records in groups.

    async def mark_sent(self, delivery_id: int, receipt: str, now: float,
                        attempt: int | None = None) -> None:
        await self._record_alone(Outcome(delivery_id, DeliveryStatus.SENT, attempt, receipt=receipt),
                                 now)

    async def retry_later(self, delivery_id: int, at: float, error: str, now: float,
                          blocked_until: float | None = None, attempt: int | None = None,
                          count_attempt: bool = True) -> None:
        await self._record_alone(Outcome(delivery_id, DeliveryStatus.PENDING, attempt, error=error,
                                         retry_at=at, count_attempt=count_attempt,
                                         blocked_until=blocked_until), now)

    async def mark_dead(self, delivery_id: int, error: str, now: float,
                        attempt: int | None = None) -> None:
        await self._record_alone(Outcome(delivery_id, DeliveryStatus.DEAD, attempt, error=error), now)

    async def _record_alone(self, outcome: Outcome, now: float) -> None:
        found = await self.get_delivery(outcome.delivery_id)
        where = found.destination if found else None
        await self.record([replace(outcome, pace_key=where, destination=where)], now)

    async def release(self, delivery_ids: Sequence[int], now: float) -> None:
        if not delivery_ids:
            return
        async with self._tx() as conn:
            await conn.execute(self._q(
                f"UPDATE deliveries SET status = 'pending', "
                f"attempts = {self.dialect.greatest}(attempts - 1, 0), lease_until = NULL, "
                f"updated_at = ? WHERE status = 'sending' AND id IN ({_marks(delivery_ids)})"),
                now, *delivery_ids)

    # -- reading and replaying ------------------------------------------------------------

    async def list_deliveries(self, status: DeliveryStatus | Literal["failed"] | None = None,
                              limit: int = 50, event_id: int | None = None,
                              channel: str | None = None,
                              since: float | None = None) -> list[Delivery]:
        clauses: list[str] = []
        params: list[Any] = []
        if status == "failed":
            clauses.append("d.status = 'pending' AND d.last_error IS NOT NULL")
        elif status is not None:
            clauses.append("d.status = ?")
            params.append(str(status))
        if event_id is not None:
            clauses.append("(d.event_id = ? OR d.id IN "
                           "(SELECT delivery_id FROM delivery_events WHERE event_id = ?))")
            params += [event_id, event_id]
        if channel is not None:
            clauses.append("d.channel = ?")
            params.append(channel)
        if since is not None:
            clauses.append("d.created_at >= ?")
            params.append(since)
        where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
        return await self._deliveries(
            f"SELECT {DELIVERY_COLUMNS} {DELIVERY_FROM} {where} ORDER BY d.id DESC LIMIT ?",
            *params, limit)

    async def get_delivery(self, delivery_id: int) -> Delivery | None:
        found = await self._deliveries(f"SELECT {DELIVERY_COLUMNS} {DELIVERY_FROM} WHERE d.id = ?",
                                       delivery_id)
        return found[0] if found else None

    async def waiting_since(self, channel: str, before: float, limit: int) -> list[Delivery]:
        return await self._deliveries(
            f"SELECT {DELIVERY_COLUMNS} {DELIVERY_FROM} WHERE d.channel = ? AND d.status IN "
            "('pending', 'sending') AND d.created_at < ? AND d.kind NOT IN ('fallback', 'escalation') "
            "AND (d.not_before IS NULL OR d.not_before < ?) "
            # Not escalated yet (by the key's index), so a long queue is walked through.
            "AND NOT EXISTS (SELECT 1 FROM deliveries e "
            "WHERE e.key = 'escalation:' || CAST(d.id AS TEXT)) ORDER BY d.id LIMIT ?",
            channel, before, before, limit)

    async def dead_without_fallback(self, channel: str, since: float,
                                    limit: int) -> list[Delivery]:
        return await self._deliveries(
            f"SELECT {DELIVERY_COLUMNS} {DELIVERY_FROM} WHERE d.channel = ? AND d.status = 'dead' "
            "AND d.updated_at >= ? AND d.kind NOT IN ('fallback', 'escalation') AND d.attempts > 0 "
            "AND NOT EXISTS (SELECT 1 FROM deliveries f "
            "WHERE f.key = 'fallback:' || CAST(d.id AS TEXT)) ORDER BY d.id LIMIT ?",
            channel, since, limit)

    async def replay(self, *, delivery_id: int | None = None, dead: bool = False,
                     event_id: int | None = None, now: float) -> int:
        if delivery_id is not None:
            where, params = "id = ?", [delivery_id]
        elif event_id is not None:
            where = "(event_id = ? OR id IN (SELECT delivery_id FROM delivery_events WHERE event_id = ?))"
            params = [event_id, event_id]
        elif dead:
            where, params = "status = 'dead'", []
        else:
            raise ValueError("replay needs a delivery id, an event id or dead=True")
        async with self._tx() as conn:
            count = await conn.execute(self._q(
                "UPDATE deliveries SET status = 'pending', attempts = 0, next_attempt_at = ?, "
                f"not_before = NULL, created_at = ?, updated_at = ? WHERE status IN {_REPLAYABLE} "
                f"AND {where}"), now, now, now, *params)
            if count:
                await self._notify(conn, "deliveries")
        return count

    async def counts(self) -> dict[DeliveryStatus, int]:
        rows = await self._fetch("SELECT status, COUNT(*) FROM deliveries GROUP BY status")
        found = {DeliveryStatus(row[0]): int(row[1]) for row in rows}
        return {status: found.get(status, 0) for status in DeliveryStatus}

    async def oldest_pending(self) -> float | None:
        rows = await self._fetch("SELECT MIN(created_at) FROM deliveries WHERE status = 'pending'")
        return float(rows[0][0]) if rows and rows[0][0] is not None else None

    # -- helpers --------------------------------------------------------------------------

    def _q(self, text: str) -> str:
        return self.dialect.sql(text)

    async def _fetch(self, sql: str, *args: Any) -> list[Any]:
        async with self._reader() as conn:
            return await conn.fetch(self._q(sql), *args)

    async def _deliveries(self, sql: str, *args: Any) -> list[Delivery]:
        async with self._reader() as conn:
            rows = await conn.fetch(self._q(sql), *args)
            return await self._with_events(conn, rows)

    async def _with_events(self, conn: Conn, rows: Sequence[Any], *,
                           rooted: bool = False) -> list[Delivery]:
        """Deliveries from rows; those that gather events get their event ids.

        ``rooted``: a claim's rows, which carry each thread's root (ROOT_COLUMNS).
        """
        many = [int(row[0]) for row in rows if gathered(row)]
        ids: dict[int, list[int]] = {}
        if many:
            linked = await conn.fetch(self._q(
                "SELECT delivery_id, event_id FROM delivery_events "
                f"WHERE delivery_id IN ({_marks(many)}) ORDER BY event_id"), *many)
            for delivery_id, event_id in linked:
                ids.setdefault(int(delivery_id), []).append(int(event_id))
        return [delivery_from(row, tuple(ids[int(row[0])]) if int(row[0]) in ids else None,
                              rooted=rooted)
                for row in rows]


def _plain(new: NewDelivery) -> bool:
    """A delivery for one event alone: inserted with the others in one statement."""
    return new.gather is None and len(set(new.event_ids)) <= 1


_INSERT_ROWS = 500  # rows per multi-row INSERT: 20 parameters each (SQLite allows 32,766)


def _marks(values: Sequence[Any]) -> str:
    return ",".join("?" * len(values))
