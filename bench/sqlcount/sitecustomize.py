"""Counts a server's SQLite statements, commits and aiosqlite round trips; loaded only when asked.

``bench.common.notifybot`` puts this folder on the server's ``PYTHONPATH`` when
``BENCH_SQL_COUNTS`` names a file, so Python imports it at start-up
(``sitecustomize``); notifybot itself is not changed. At exit the counts are
written to that file as JSON:

* ``round_trips``: calls queued to aiosqlite's thread (each one a hand-off and a
  wake-up of the event loop), by the function queued;
* ``statements``: SQL statements SQLite ran, by their first word;
* ``commits``: explicit ``COMMIT`` s plus writes run outside a transaction
  (autocommit), i.e. the durable commits, each an fsync with ``synchronous=FULL``.
"""

from __future__ import annotations

import atexit
import json
import os
import sqlite3
import threading
from collections import Counter

_OUT = os.environ.get("BENCH_SQL_COUNTS")
_counts: dict[str, Counter[str]] = {"round_trips": Counter(), "statements": Counter(),
                                    "commits": Counter()}
_guard = threading.Lock()
_WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE")


def _tracer(connection: sqlite3.Connection):  # type: ignore[no-untyped-def]
    def trace(sql: str) -> None:
        word = sql.lstrip().split(None, 1)[0].upper() if sql.strip() else "?"
        with _guard:
            _counts["statements"][word] += 1
            if word in ("COMMIT", "END"):
                _counts["commits"]["explicit COMMIT"] += 1
            elif word in _WRITES and connection.in_transaction is False:
                # Traced before it runs: outside a transaction it commits by itself.
                _counts["commits"]["autocommit " + word] += 1
    return trace


def _install() -> None:
    original_connect = sqlite3.connect

    def connect(*args, **kwargs):  # type: ignore[no-untyped-def]
        connection = original_connect(*args, **kwargs)
        connection.set_trace_callback(_tracer(connection))
        return connection

    sqlite3.connect = connect
    try:
        import aiosqlite.core
    except ImportError:
        return
    original_execute = aiosqlite.core.Connection._execute

    async def counted(self, fn, *args, **kwargs):  # type: ignore[no-untyped-def]
        with _guard:
            _counts["round_trips"][getattr(fn, "__name__", "?")] += 1
        return await original_execute(self, fn, *args, **kwargs)

    aiosqlite.core.Connection._execute = counted

    def dump() -> None:
        with open(_OUT, "w", encoding="utf-8") as out:  # type: ignore[arg-type]
            json.dump({k: dict(v) for k, v in _counts.items()}, out, indent=2)

    atexit.register(dump)


if _OUT:
    _install()
