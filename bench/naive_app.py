"""The naive receiver: a Quart handler that posts each webhook to Slack with slack-sdk, inside the request.

The twenty lines a user would write instead of notifybot: check the export key,
make one line, ``await AsyncWebClient.chat_postMessage(...)`` before answering
(200 if Slack said ok, 502 if not). Nothing is stored, nothing is retried,
nothing is paced. One ``AsyncWebClient`` for the process on one aiohttp
session, so connections are reused: the faster way, and so the harder reference.
``--session-per-call`` makes the client the way slack-sdk's README shows (token
only), which opens an HTTP session for every call (about half the rate here).
Served by Hypercorn with the settings ``notifybot serve`` uses (:mod:`bench.serving`).

    NAIVE_SLACK_API=http://127.0.0.1:PORT/api/ .venv/bin/python -m bench.naive_app \\
        --bind 127.0.0.1:8083 [--channel C0GENERAL] [--session-per-call]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os

import aiohttp
from quart import Quart
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bench.common import SLACK_TOKEN
from bench.receiver import add_webhook
from bench.serving import new_app, serve


def create_app(base_url: str, channel: str, session_per_call: bool) -> Quart:
    """The receiver, posting to the Slack API at ``base_url`` (a stand-in) in ``channel``."""
    app = new_app("naive-slack-receiver")
    clients: list[AsyncWebClient] = []

    @app.before_serving
    async def open_client() -> None:
        shared = None if session_per_call else aiohttp.ClientSession()
        clients.append(AsyncWebClient(token=SLACK_TOKEN, base_url=base_url, session=shared))

    @app.after_serving
    async def close_client() -> None:
        if clients and clients[0].session is not None:
            await clients[0].session.close()

    async def send(text: str) -> bool:
        try:
            await clients[0].chat_postMessage(channel=channel, text=text)
        except (SlackApiError, aiohttp.ClientError, TimeoutError):
            return False
        return True

    add_webhook(app, send)
    return app


async def main(bind: str, channel: str, session_per_call: bool) -> None:
    logging.basicConfig(level=logging.WARNING)
    await serve(create_app(os.environ["NAIVE_SLACK_API"], channel, session_per_call), bind)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bind", default="127.0.0.1:8083")
    parser.add_argument("--channel", default="C0GENERAL")
    parser.add_argument("--session-per-call", action="store_true",
                        help="slack-sdk's default: a new HTTP session for every call (slower)")
    args = parser.parse_args()
    asyncio.run(main(args.bind, args.channel, args.session_per_call))
