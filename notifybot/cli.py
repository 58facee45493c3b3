"""``notifybot`` on the command line: serve, check, preview, send-test, deliveries, replay,
subscribe, unsubscribe, subscriptions."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any

from . import commands
from .errors import NotifybotError

DEFAULT_CONFIG = os.environ.get("NOTIFYBOT_CONFIG", "subscriptions.toml")

Command = Callable[[argparse.Namespace], Coroutine[Any, Any, int]]


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the ``notifybot`` script."""
    args = parser().parse_args(argv)
    command: Command = args.run
    try:
        code = asyncio.run(command(args))
    except NotifybotError as exc:  # ConfigError included: it names the file and key
        print(f"error: {exc}", file=sys.stderr)
        code = 1
    except KeyboardInterrupt:
        code = 130
    sys.exit(code)


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="notifybot", description="HireHop webhooks to Slack, Telegram, email and console.")
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, run: Command, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("-c", "--config", default=DEFAULT_CONFIG, type=Path,
                       help=f"configuration file (default: {DEFAULT_CONFIG}; "
                            "or set NOTIFYBOT_CONFIG)")
        p.set_defaults(run=run)
        return p

    serve = command("serve", commands.serve, "run the HTTP server and the delivery workers")
    serve.add_argument("--bind", help="HOST:PORT, overriding [server] bind")
    serve.add_argument("--log-format", choices=("text", "json"), default="text")
    serve.add_argument("--log-level", default="info", type=str.lower,
                       choices=("debug", "info", "warning", "error", "critical"))
    command("check", commands.check, "validate the configuration and every template")
    command("migrate", commands.migrate,
            "create or upgrade the database schema (serve also does this at start)")
    preview = command("preview", commands.preview,
                      "show which channels an event matches and each rendered message; sends "
                      "nothing")
    preview.add_argument("event_file", type=Path, metavar="EVENT.json")
    send_test = command("send-test", commands.send_test,
                        "send one test message to one channel (a fire drill)")
    send_test.add_argument("channel")
    deliveries = command("deliveries", commands.deliveries, "list deliveries, newest first")
    deliveries.add_argument("--status", choices=("pending", "sending", "sent", "dead", "failed"),
                            help="failed: pending again after a failed attempt")
    deliveries.add_argument("--event", type=int, help="only this event's deliveries")
    deliveries.add_argument("--limit", type=int, default=50)
    deliveries.add_argument("--json", action="store_true", help="one JSON object per line")
    replay = command("replay", commands.replay,
                     "send dead or pending deliveries again (never one recorded as sent)")
    target = replay.add_mutually_exclusive_group(required=True)
    target.add_argument("delivery_id", nargs="?", type=int)
    target.add_argument("--dead", action="store_true", help="every dead delivery")
    target.add_argument("--event", type=int, help="every delivery of this event")
    subscribe = command("subscribe", commands.subscribe,
                        "add a subscription to a channel, keeping the file's comments and layout")
    subscribe.add_argument("channel")
    subscribe.add_argument("events", nargs="+", metavar="EVENT",
                           help="event names or glob patterns (job.status.updated, job.*)")
    subscribe.add_argument("--when", action="append", default=[], metavar="PATH=VALUE",
                           help="a condition that must hold (repeatable); VALUE is read as TOML "
                                "if it can be (2, true, [\"A\", \"B\"], { gt = 3 }), else as text")
    subscribe.add_argument("--unless", action="append", default=[], metavar="PATH=VALUE",
                           help="a condition that vetoes (repeatable)")
    subscribe.add_argument("--name", help="a name for the subscription")
    subscribe.add_argument("--template", help="render with this template instead of the event's own")
    unsubscribe = command("unsubscribe", commands.unsubscribe,
                          "remove an event from a channel's subscriptions")
    unsubscribe.add_argument("channel")
    unsubscribe.add_argument("event", help="the event name or pattern, as written in events")
    subscriptions = command("subscriptions", commands.subscriptions,
                            "list who hears what: every channel's subscriptions")
    subscriptions.add_argument("channel", nargs="?", help="only this channel")
    return top

