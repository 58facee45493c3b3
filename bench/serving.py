"""Make and serve a bench app with the very Hypercorn settings ``notifybot serve`` uses.

notifybot/commands.py: one process, asyncio worker, no access log, errors to
the ``hypercorn.error`` logger, graceful timeout 10 s, stopped by SIGTERM or
SIGINT. The reference apps (bare Quart, Apprise, the naive Slack receiver) share
this so that only the handler differs from notifybot.
"""

from __future__ import annotations

import asyncio
import logging
import signal

from hypercorn.asyncio import serve as hypercorn_serve
from hypercorn.config import Config as HypercornConfig
from quart import Quart, Response, jsonify


def new_app(name: str) -> Quart:
    """A Quart app with ``GET /healthz``, which the bench scripts poll until it answers."""
    app = Quart(name)

    @app.get("/healthz")
    async def healthz() -> tuple[Response, int]:
        return jsonify({"status": "ok"}), 200

    return app


async def serve(app: Quart, bind: str) -> None:
    """Serve ``app`` on ``bind`` until SIGTERM or SIGINT."""
    hypercorn = HypercornConfig()
    hypercorn.bind = [bind]
    hypercorn.accesslog = None
    hypercorn.errorlog = logging.getLogger("hypercorn.error")
    hypercorn.graceful_timeout = 10
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await hypercorn_serve(app, hypercorn, shutdown_trigger=stop.wait)
