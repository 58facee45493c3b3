"""The alternative a user would pick: a small Quart handler that calls Apprise for each webhook.

It checks the export key, writes one line, and sends it with Apprise's Slack
plugin (bot token mode) before answering: 200 if Apprise reports success, 502
if not. Nothing is stored and nothing is retried; HireHop never retries either.
Served by Hypercorn with the settings ``notifybot serve`` uses.

    APPRISE_SLACK_API=http://127.0.0.1:PORT/api/ .venv/bin/python -m bench.apprise_app \\
        --bind 127.0.0.1:8082 [--shared]

Apprise's Slack plugin has its API root as a class attribute
(``NotifySlack.api_url``); it is pointed at the Slack stand-in, the only change.
``--shared`` keeps one ``Apprise`` object for the process (as its README shows);
by default each request makes its own, which Apprise does not throttle.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal

import apprise
from apprise.plugins.slack import NotifySlack
from hypercorn.asyncio import serve as hypercorn_serve
from hypercorn.config import Config as HypercornConfig
from quart import Quart, Response, jsonify, request

from bench.common import EXPORT_KEY, SLACK_TOKEN


def create_app(url: str, shared: bool) -> Quart:
    app = Quart("apprise-handler")
    one = apprise.Apprise()
    one.add(url)

    @app.post("/hirehop")
    async def webhook() -> tuple[Response, int]:
        try:
            payload = json.loads(await request.get_data(as_text=True))
        except ValueError:
            return jsonify({"error": "not JSON"}), 400
        if payload.get("export_key") != EXPORT_KEY:
            return jsonify({"error": "wrong export_key"}), 403
        changes = payload.get("changes", {}).get("STATUS", {})
        line = (f"Job {payload.get('job')}: {payload.get('event')}, status {changes.get('from')} "
                f"-> {changes.get('to')}, by {payload.get('user_name')}")
        notifier = one
        if not shared:
            notifier = apprise.Apprise()
            notifier.add(url)
        ok = await notifier.async_notify(body=line, title="HireHop")
        return jsonify({"sent": bool(ok)}), 200 if ok else 502

    @app.get("/healthz")
    async def healthz() -> tuple[Response, int]:
        return jsonify({"status": "ok"}), 200

    return app


async def main(bind: str, channel: str, shared: bool) -> None:
    logging.basicConfig(level=logging.WARNING)
    NotifySlack.api_url = os.environ["APPRISE_SLACK_API"] + "{}"
    hypercorn = HypercornConfig()
    hypercorn.bind = [bind]
    hypercorn.accesslog = None
    hypercorn.errorlog = logging.getLogger("hypercorn.error")
    hypercorn.graceful_timeout = 10
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    app = create_app(f"slack://{SLACK_TOKEN}/{channel}", shared)
    await hypercorn_serve(app, hypercorn, shutdown_trigger=stop.wait)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bind", default="127.0.0.1:8082")
    parser.add_argument("--channel", default="#general")
    parser.add_argument("--shared", action="store_true")
    args = parser.parse_args()
    asyncio.run(main(args.bind, args.channel, args.shared))
