"""What ``GET /healthz`` says, and how a storage failure is told apart from a bug.

The answer is 503 ``unavailable`` when storage does not take a write now (reads
may still work: a read-only or immutable file, a lock held too long) or a
background task is down; 200 ``degraded`` when something reported through
:meth:`Health.add_check` (channel health, later) names a problem; else 200 ``ok``.
Storage is probed at each request, so recovery needs no restart.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from .logs import escape

PROBE_TIMEOUT = 2.0  # seconds: /healthz answers quickly even when storage hangs


@runtime_checkable
class Probed(Protocol):
    """A store that can say whether it takes a write now (both stores do)."""

    async def probe(self) -> None: ...


@dataclass(frozen=True)
class Report:
    """One /healthz answer."""

    status: str  # ok | degraded | unavailable
    problems: Mapping[str, Any] = field(default_factory=dict)

    @property
    def http_status(self) -> int:
        return 503 if self.status == "unavailable" else 200


def is_storage_error(exc: BaseException) -> bool:
    """An error of the database or the way to it, rather than of notifybot's own code."""
    return (isinstance(exc, sqlite3.Error | OSError | TimeoutError)
            or type(exc).__module__.startswith("asyncpg"))


def describe(exc: BaseException) -> str:
    """A short, secret-free reason: SQLite's message, or the error's kind."""
    if isinstance(exc, sqlite3.Error) and str(exc):
        text = str(exc)  # "disk I/O error", "database is locked": never a value or a path
    elif isinstance(exc, TimeoutError):
        text = "timed out"
    elif isinstance(exc, OSError) and exc.strerror:
        text = exc.strerror
    else:
        text = type(exc).__name__
    return escape(text)[:200]


class Health:
    """Storage state (from requests and probes), task state and extra checks, as one report."""

    def __init__(self, probe: Callable[[], Awaitable[object]],
                 tasks_down: Callable[[], Mapping[str, str]] = dict) -> None:
        self._probe = probe
        self._tasks_down = tasks_down
        self._checks: list[tuple[str, Callable[[], Mapping[str, Any]]]] = []
        self.storage_error: str | None = None
        self._probing: asyncio.Future[object] | None = None

    def add_check(self, section: str, check: Callable[[], Mapping[str, Any]]) -> None:
        """A source of non-fatal problems, name → reason or details (e.g. section ``failing``:
        failing channels, each with since and reason). Any problem makes the status
        ``degraded``, listed under ``section``."""
        self._checks.append((section, check))

    def storage_failed(self, exc: BaseException) -> None:
        self.storage_error = describe(exc)

    async def report(self) -> Report:
        try:
            await self._probe_storage()
        except Exception as exc:
            if not is_storage_error(exc):
                raise
            self.storage_failed(exc)
        else:
            self.storage_error = None
        fatal: dict[str, Any] = {}
        if self.storage_error is not None:
            fatal["storage"] = self.storage_error
        down = dict(self._tasks_down())
        if down:
            fatal["tasks"] = down
        if fatal:
            return Report("unavailable", fatal)
        degraded = {section: dict(found) for section, check in self._checks if (found := check())}
        return Report("degraded", degraded) if degraded else Report("ok")

    async def _probe_storage(self) -> None:
        """One probe at a time, never cancelled: a write cancelled half-way could leave the
        store's connection inside a transaction. A slow probe is reported as timed out
        and the next request waits for the same one."""
        if self._probing is None or self._probing.done():
            self._probing = asyncio.ensure_future(self._probe())
            self._probing.add_done_callback(_retrieve)
        await asyncio.wait_for(asyncio.shield(self._probing), PROBE_TIMEOUT)


def _retrieve(probe: asyncio.Future[object]) -> None:
    if not probe.cancelled():
        probe.exception()  # read, so that an unawaited failure is not reported at exit
