"""The background tasks beside the HTTP server, kept in one supervised group.

A task that fails (or returns: they are meant to run until the server stops) is
logged with its traceback, reported as down to ``/healthz``, and restarted after
a pause that doubles up to a minute. Leaving the group (``async with``) cancels
every task and waits for each to finish.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType

log = logging.getLogger("notifybot.supervisor")

RECOVERED_AFTER = 30.0  # seconds a restarted task must run before it counts as healthy again


@dataclass(frozen=True)
class Failure:
    """Why a task went down and when (loop time); ``restarted`` once it runs again."""

    reason: str
    at: float
    restarted: float | None = None


class Supervisor:
    """Starts named forever-running tasks, restarts the ones that die, stops them all at exit."""

    def __init__(self, *, first_delay: float = 1.0, max_delay: float = 60.0) -> None:
        self.first_delay = first_delay
        self.max_delay = max_delay
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._failures: dict[str, Failure] = {}
        self._stopping = False

    async def __aenter__(self) -> Supervisor:
        return self

    async def __aexit__(self, *exc: object | TracebackType) -> None:
        await self.stop()

    def start(self, name: str, run: Callable[[], Awaitable[None]]) -> None:
        """Run ``run()`` as the task ``name``, restarting it whenever it ends."""
        if name in self._tasks:
            raise ValueError(f"a task named {name!r} is already running")
        self._tasks[name] = asyncio.create_task(self._keep(name, run), name=f"notifybot.{name}")

    def down(self) -> dict[str, str]:
        """The tasks that are down, or restarted too recently to trust: name → reason."""
        now = asyncio.get_running_loop().time()
        return {name: failure.reason for name, failure in self._failures.items()
                if failure.restarted is None or now - failure.restarted < RECOVERED_AFTER}

    def stopping(self) -> None:
        """The server is shutting down: a task that returns from now on is done, not failed."""
        self._stopping = True

    async def stop(self) -> None:
        """Cancel every task and wait for them."""
        self._stopping = True
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()

    async def _keep(self, name: str, run: Callable[[], Awaitable[None]]) -> None:
        loop = asyncio.get_running_loop()
        delay = self.first_delay
        while True:
            started = loop.time()
            try:
                await run()
                if self._stopping:
                    return
                reason = "stopped unexpectedly"
                log.error("background task %s stopped; restarting it", name,
                          extra={"reason": reason})
            except Exception as exc:
                reason = f"failed: {type(exc).__name__}"
                log.exception("background task %s failed; restarting it", name,
                              extra={"reason": reason})
            now = loop.time()
            if now - started > RECOVERED_AFTER:
                delay = self.first_delay  # it had been running well: a fresh failure
            self._failures[name] = Failure(reason, now)
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.max_delay)
            with contextlib.suppress(KeyError):
                self._failures[name] = Failure(reason, now, restarted=loop.time())
