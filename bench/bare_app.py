"""The reference for the ingest benchmark: a bare Quart endpoint that answers 202, storing nothing.

Served by Hypercorn with the very settings ``notifybot serve`` uses
(notifybot/commands.py: one process, asyncio worker, no access log, graceful
timeout 10 s), so that the only difference measured is notifybot's own work.

With ``--checks`` it also does the in-memory work notifybot's endpoint does
before storing, with notifybot's own functions (decode, export key check,
redaction and digest, ``parse_event``, one INFO log line), and still stores
nothing: a ceiling for any storage design in this process.

    .venv/bin/python -m bench.bare_app --bind 127.0.0.1:8081 [--checks]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal

from hypercorn.asyncio import serve as hypercorn_serve
from hypercorn.config import Config as HypercornConfig
from quart import Quart, Response, jsonify, request

from bench.common import EXPORT_KEY
from notifybot import logs
from notifybot.config import ExportKey
from notifybot.events import parse_event
from notifybot.ingest import accept, safe_headers
from notifybot.secret import Secret


def create_app(checks: bool = False) -> Quart:
    app = Quart("bare")
    counter = {"n": 0}
    keys = (ExportKey(Secret(EXPORT_KEY)),)
    log = logging.getLogger("notifybot.pipeline")

    @app.post("/hirehop")
    async def webhook() -> tuple[Response, int]:
        body = await request.get_data(as_text=False, parse_form_data=False)
        assert isinstance(body, bytes)
        counter["n"] += 1
        if checks:
            webhook = accept(body, request.content_type or "", keys)
            safe_headers(dict(request.headers))
            name = parse_event(webhook.payload).name
            log.info("accepted %s", name, extra={"event_id": counter["n"], "event": name})
        return jsonify({"event_id": counter["n"]}), 202

    @app.get("/healthz")
    async def healthz() -> tuple[Response, int]:
        return jsonify({"status": "ok"}), 200

    return app


async def main(bind: str, checks: bool) -> None:
    logs.setup("text", "INFO")  # notifybot's own log setup: one line per event to stderr
    hypercorn = HypercornConfig()
    hypercorn.bind = [bind]
    hypercorn.accesslog = None
    hypercorn.errorlog = logging.getLogger("hypercorn.error")
    hypercorn.graceful_timeout = 10
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await hypercorn_serve(create_app(checks), hypercorn, shutdown_trigger=stop.wait)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bind", default="127.0.0.1:8081")
    parser.add_argument("--checks", action="store_true",
                        help="also do notifybot's in-memory work per request (no storage)")
    args = parser.parse_args()
    asyncio.run(main(args.bind, args.checks))
