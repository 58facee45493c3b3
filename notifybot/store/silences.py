"""The ``silences`` table: its queries, written once for SQLite and PostgreSQL.

:class:`SilenceQueries` is mixed into :class:`~notifybot.store.sql.SQLStore`,
which provides the connection and the dialect. Conditions are stored as the
JSON of the tables they were written as (``{"job": 15471}``); routing compiles
them (:mod:`notifybot.live_silences`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any

from ..silences import Silence

if TYPE_CHECKING:
    from .sql import Conn

_COLUMNS = "id, channel, when_json, unless_json, comment, created_by, starts_at, expires_at"


class SilenceQueries:
    """Adding, listing and expiring silences."""

    def _tx(self) -> AbstractAsyncContextManager[Conn]:
        raise NotImplementedError

    def _q(self, text: str) -> str:
        raise NotImplementedError

    async def _fetch(self, sql: str, *args: Any) -> list[Any]:
        raise NotImplementedError

    async def add_silence(self, silence: Silence) -> int:
        """Store a new silence (its ``id`` is ignored); returns the id it was given."""
        async with self._tx() as conn:
            rows = await conn.fetch(self._q(
                "INSERT INTO silences (channel, when_json, unless_json, comment, created_by, "
                "starts_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id"),
                silence.channel, _json(silence.when), _json(silence.unless), silence.comment,
                silence.created_by, silence.starts_at, silence.expires_at)
        return int(rows[0][0])

    async def list_silences(self, now: float, *, expired: bool = False) -> list[Silence]:
        """Silences not expired at ``now`` (every one with ``expired``), oldest first."""
        if expired:
            rows = await self._fetch(f"SELECT {_COLUMNS} FROM silences ORDER BY id")
        else:
            rows = await self._fetch(
                f"SELECT {_COLUMNS} FROM silences WHERE expires_at > ? ORDER BY id", now)
        return [_silence(row) for row in rows]

    async def expire_silence(self, silence_id: int, now: float) -> bool:
        """End a silence at ``now``; False if there is no such silence or it has ended."""
        async with self._tx() as conn:
            changed = await conn.execute(self._q(
                "UPDATE silences SET expires_at = ? WHERE id = ? AND expires_at > ?"),
                now, silence_id, now)
        return changed > 0


def _json(table: Any) -> str:
    return json.dumps(table, ensure_ascii=False)  # key order kept: shown as given


def _silence(row: Sequence[Any]) -> Silence:
    return Silence(int(row[0]), str(row[1]), json.loads(row[2]), json.loads(row[3]), str(row[4]),
                   str(row[5]), float(row[6]), float(row[7]))

