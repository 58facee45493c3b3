"""LISTEN for the PostgreSQL store: one dedicated connection, reconnected when it drops.

Notifications are only a wake-up. They are not stored, so anything sent while
the connection is down is lost; after a reconnect every callback is woken once
so that the workers poll at once instead of at their next tick.

Channels are per database, not per schema: the payload names the schema that
has new work, and a listener of a configured schema ignores other schemas'
notifications. An empty payload (an instance with no schema configured, or a
notifybot from before schema payloads) wakes every listener, and a listener
with no schema configured (its tables in the default ``search_path``, which
may be any schema) is woken by every notification: so an instance configured
with ``schema = "public"`` and one with none hear each other, whichever version.

A notification sent from one of ``own`` (the backend process ids of the
process's own pooled connections) wakes nothing: whoever wrote in this process
wakes its router or outbox in memory (the store calls :meth:`Listener.wake` for
an event whose caller gave up before it committed), and the router would only
read back from storage the events it was just handed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Collection
from typing import Any

from ..waits import wait_set
from .wakes import Wakes

log = logging.getLogger("notifybot.store")

#: PostgreSQL channel -> the word passed to ``wake``.
CHANNELS = {"notifybot_events": "events", "notifybot_deliveries": "deliveries"}


class Listener:
    """Keeps one connection LISTENing on :data:`CHANNELS` and calls the ``wake`` callbacks.

    ``connect`` opens a new connection (never one from a pool: a pooled
    connection goes back to the pool and its LISTEN with it). ``scope`` is the
    schema whose notifications wake the callbacks; empty: every notification does.
    ``own`` holds the backend process ids whose notifications are this process's
    own (read at each notification, so it may change).
    """

    def __init__(self, connect: Callable[[], Awaitable[Any]], *, scope: str = "",
                 own: Collection[int] = frozenset(), check_every: float = 15.0,
                 max_backoff: float = 30.0) -> None:
        self._connect = connect
        self._scope = scope
        self._own = own
        self._check_every = check_every
        self._max_backoff = max_backoff
        self._wakes = Wakes()
        self._conn: Any = None
        self._lost = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def add(self, wake: Callable[[str], None]) -> None:
        """Register ``wake``; the first call connects (and raises if it cannot)."""
        if self._task is None:
            await self._open()
            self._task = asyncio.create_task(self._supervise(), name="notifybot-listener")
        self._wakes.add(wake)

    async def close(self) -> None:
        """Stop reconnecting and close the connection."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._drop()
        self._wakes.clear()

    async def _open(self) -> None:
        conn = await self._connect()
        self._lost.clear()
        try:
            conn.add_termination_listener(self._on_terminated)
            for channel in CHANNELS:
                await conn.add_listener(channel, self._on_notify)
        except BaseException:
            with contextlib.suppress(Exception):  # each failed reconnect would leak one
                await conn.close(timeout=5)
            raise
        self._conn = conn

    async def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):  # it is usually broken already
                await conn.close(timeout=5)

    async def _supervise(self) -> None:
        while True:
            if not await self._wait_lost():
                continue
            await self._drop()
            backoff = 0.1
            while True:
                try:
                    await self._open()
                    break
                except Exception as exc:  # the server may be restarting: keep trying
                    log.warning("listener reconnect failed (%s); retrying in %.1fs",
                                type(exc).__name__, backoff)
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, self._max_backoff)
            log.info("listener reconnected")
            for word in CHANNELS.values():
                self.wake(word)  # whatever was notified meanwhile is lost: poll now

    async def _wait_lost(self) -> bool:
        """True once the connection is gone; False after a successful keep-alive check."""
        if await wait_set(self._lost, self._check_every):
            return True
        # A peer that vanished without closing the socket never triggers the
        # termination callback, so ask the server now and then.
        try:
            await self._conn.fetchval("SELECT 1", timeout=5)
        except Exception:
            return True
        return False

    def _on_terminated(self, conn: Any) -> None:
        # Called soon after, not during, the close: ignore a connection already replaced.
        if conn is self._conn:
            self._lost.set()

    def _on_notify(self, _conn: Any, pid: int, channel: str, payload: str) -> None:
        word = CHANNELS.get(channel)
        if word is None or pid in self._own:
            return
        if payload == self._scope or not payload or not self._scope:
            self.wake(word)

    def wake(self, word: str) -> None:
        """Call every wake callback with ``word``, as a notification would."""
        self._wakes(word)
