"""What the HTTP stand-ins share: an aiohttp app on a free loopback port, started and stopped."""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import Self

from aiohttp import web


class LoopbackServer:
    """Serves :meth:`routes` on ``127.0.0.1`` and a free port; ``base_url`` once started.

    ``_stopping`` is set by :meth:`stop`, so a handler delaying its answer can be cut short.
    """

    url_path = "/"

    def __init__(self) -> None:
        self._stopping = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._base_url = ""

    def routes(self, app: web.Application) -> None:
        raise NotImplementedError

    @property
    def base_url(self) -> str:
        """The root to give the client, e.g. ``http://127.0.0.1:PORT/api/``."""
        if not self._base_url:
            raise RuntimeError("the stand-in is not started")
        return self._base_url

    async def start(self) -> str:
        """Listen on a free loopback port; returns :attr:`base_url`."""
        app = web.Application()
        self.routes(app)
        # A short shutdown timeout: a delayed answer must not hold up stop().
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self._base_url = f"http://127.0.0.1:{self._runner.addresses[0][1]}{self.url_path}"
        return self._base_url

    async def stop(self) -> None:
        """Cut short any delayed answers and close the server."""
        self._stopping.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.stop()
