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

from quart import Quart, Response, jsonify, request

from bench.common import EXPORT_KEY
from bench.serving import new_app, serve
from notifybot import logs
from notifybot.config import ExportKey
from notifybot.events import parse_event
from notifybot.ingest import accept, safe_headers
from notifybot.secret import Secret


def create_app(checks: bool = False) -> Quart:
    app = new_app("bare")
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

    return app


async def main(bind: str, checks: bool) -> None:
    logs.setup("text", "INFO")  # notifybot's own log setup: one line per event to stderr
    await serve(create_app(checks), bind)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bind", default="127.0.0.1:8081")
    parser.add_argument("--checks", action="store_true",
                        help="also do notifybot's in-memory work per request (no storage)")
    args = parser.parse_args()
    asyncio.run(main(args.bind, args.checks))
