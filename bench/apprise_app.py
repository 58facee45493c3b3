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
import logging
import os

import apprise
from apprise.plugins.slack import NotifySlack
from quart import Quart

from bench.common import SLACK_TOKEN
from bench.receiver import add_webhook
from bench.serving import new_app, serve


def create_app(url: str, shared: bool) -> Quart:
    app = new_app("apprise-handler")
    one = apprise.Apprise()
    one.add(url)

    async def send(text: str) -> bool:
        notifier = one
        if not shared:
            notifier = apprise.Apprise()
            notifier.add(url)
        return bool(await notifier.async_notify(body=text, title="HireHop"))

    add_webhook(app, send)
    return app


async def main(bind: str, channel: str, shared: bool) -> None:
    logging.basicConfig(level=logging.WARNING)
    NotifySlack.api_url = os.environ["APPRISE_SLACK_API"] + "{}"
    await serve(create_app(f"slack://{SLACK_TOKEN}/{channel}", shared), bind)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bind", default="127.0.0.1:8082")
    parser.add_argument("--channel", default="#general")
    parser.add_argument("--shared", action="store_true")
    args = parser.parse_args()
    asyncio.run(main(args.bind, args.channel, args.shared))
