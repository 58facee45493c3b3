"""``notifybot`` on the command line: init, serve, check, preview, send-test, deliveries, replay,
migrate, subscribe, unsubscribe, subscriptions, silence.

Every mistake an operator can make ends in one line on standard error and exit
status 1 (2 for a misused option, as argparse does); a traceback means a bug.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import sqlite3
import sys
from collections.abc import Callable, Coroutine, Sequence
from datetime import UTC, datetime, timedelta
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from . import commands, silence_commands
from .errors import ConfigError, NotifybotError

DEFAULT_CONFIG = os.environ.get("NOTIFYBOT_CONFIG", "subscriptions.toml")

Command = Callable[[argparse.Namespace], Coroutine[Any, Any, int]]


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the ``notifybot`` script."""
    sys.exit(run(argv))


def run(argv: Sequence[str] | None = None) -> int:
    """Run one command and return its exit status; errors are printed, not raised."""
    args = parser().parse_args(argv)
    command: Command = args.run
    try:
        if getattr(args, "config", None) is not None:
            _require_config(args.config)
        code = asyncio.run(command(args))
        sys.stdout.flush()  # here, where a closed pipe is caught, not at exit
        return code
    except NotifybotError as exc:  # ConfigError included: it names the file and key
        return _fail(str(exc))
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `notifybot deliveries | head`: the reader has gone. Nothing more to say,
        # and Python must not complain when it flushes stdout at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
    except sqlite3.Error as exc:
        return _fail(f"database: {exc}")
    except OSError as exc:  # a connection refused, a folder not writable...
        return _fail(_os_error(exc))
    except Exception as exc:
        # PostgreSQL refusing a login or a database that does not exist: asyncpg's own
        # errors, whose messages name the user or database, never the password.
        if type(exc).__module__.startswith("asyncpg"):
            return _fail(f"database: {exc}")
        raise


def _fail(message: str) -> int:
    with contextlib.suppress(BrokenPipeError):
        print(f"error: {message}", file=sys.stderr)
    return 1


def _os_error(exc: OSError) -> str:
    text = exc.strerror or str(exc) or type(exc).__name__
    return f"{exc.filename}: {text}" if exc.filename else text


def _require_config(path: Path) -> None:
    """A missing configuration file says how to make one or how to point at another."""
    if not path.exists():
        raise ConfigError("file not found; create one with `notifybot init`, or name yours with "
                          "-c FILE or NOTIFYBOT_CONFIG", where=str(path))


def _version() -> str:
    try:
        return version("notifybot")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


# --- option values: checked by argparse, so a bad one is a one-line usage error ------


def positive_int(text: str) -> int:
    """A whole number above zero (``--limit``)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


_AGO = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def since(text: str, *, now: datetime | None = None) -> float:
    """``--since``: a duration back from now (``90s``, ``30m``, ``2h``, ``1d``, ``1w``) or a
    date and time (``2026-05-13``, ``2026-05-13 08:00``, local time unless it has an offset);
    returned as epoch seconds."""
    now = now or datetime.now(UTC)
    ago = _AGO.match(text)
    if ago:
        return (now - timedelta(seconds=float(ago.group(1)) * _UNITS[ago.group(2)])).timestamp()
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is neither a duration (30m, 2h, 1d) nor a date and time "
            "(2026-05-13 or 2026-05-13 08:00)") from None
    if moment.tzinfo is None:
        moment = moment.astimezone()  # the machine's local time, as a person means it
    return moment.timestamp()


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="notifybot", description="HireHop webhooks to Slack, Telegram, email and console.")
    top.add_argument("--version", action="version", version=f"notifybot {_version()}")
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, run: Command, help_text: str, *,
                config: bool = True) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        if config:
            p.add_argument("-c", "--config", default=DEFAULT_CONFIG, type=Path,
                           help=f"configuration file (default: {DEFAULT_CONFIG}; "
                                "or set NOTIFYBOT_CONFIG)")
        p.set_defaults(run=run)
        return p

    init = command("init", commands.init,
                   "write a commented starter subscriptions.toml (never over an existing one)",
                   config=False)
    init.add_argument("directory", nargs="?", type=Path, default=Path("."), metavar="DIR",
                      help="where to write it (default: the current folder)")
    serve = command("serve", commands.serve, "run the HTTP server and the delivery workers")
    serve.add_argument("--bind", help="HOST:PORT, overriding [server] bind")
    serve.add_argument("--log-format", choices=("text", "json"), default="text")
    serve.add_argument("--log-level", default="info", type=str.lower,
                       choices=("debug", "info", "warning", "error", "critical"))
    check = command("check", commands.check,
                    "validate the configuration and every template, and warn about what looks "
                    "unintended")
    check.add_argument("--strict", action="store_true", help="warnings fail the check too")
    command("migrate", commands.migrate,
            "create or upgrade the database schema (serve also does this at start)")
    preview = command("preview", commands.preview,
                      "show which channels an event matches and each rendered message; sends "
                      "nothing and needs no secrets")
    preview.add_argument("event_file", type=Path, metavar="EVENT.json",
                         help="a webhook body; - reads standard input")
    send_test = command("send-test", commands.send_test,
                        "send one test message to one channel (a fire drill)")
    send_test.add_argument("channel")
    deliveries = command("deliveries", commands.deliveries, "list deliveries, newest first")
    deliveries.add_argument("--status", choices=commands.STATUS_CHOICES,
                            help="failed: pending again after a failed attempt; silenced: muted "
                                 "by a silence (replayable)")
    deliveries.add_argument("--channel", help="only this channel's deliveries")
    deliveries.add_argument("--event", type=positive_int, help="only this event's deliveries")
    deliveries.add_argument("--since", type=since, metavar="WHEN",
                            help="only deliveries created since: 30m, 2h, 1d, or 2026-05-13 08:00")
    deliveries.add_argument("--limit", type=positive_int, default=50,
                            help="show at most N rows (default: 50)")
    deliveries.add_argument("--json", action="store_true", help="one JSON object per line")
    replay = command("replay", commands.replay,
                     "send dead or pending deliveries again (never one recorded as sent)")
    target = replay.add_mutually_exclusive_group(required=True)
    target.add_argument("delivery_id", nargs="?", type=positive_int)
    target.add_argument("--dead", action="store_true", help="every dead delivery")
    target.add_argument("--event", type=positive_int, help="every delivery of this event")
    subscribe = command("subscribe", commands.subscribe,
                        "add a subscription to a channel, keeping the file's comments and layout")
    subscribe.add_argument("channel")
    subscribe.add_argument("events", nargs="+", metavar="EVENT",
                           help="event names or glob patterns (job.status.updated, job.*)")
    subscribe.add_argument("--when", action="append", default=[], metavar="PATH=VALUE",
                           help="a condition that must hold (repeatable); VALUE is a TOML value "
                                "(2, true, \"Sam Taylor\", [\"A\", \"B\"], { gt = 3 }), or else "
                                "plain text such as Booked")
    subscribe.add_argument("--unless", action="append", default=[], metavar="PATH=VALUE",
                           help="a condition that vetoes (repeatable)")
    subscribe.add_argument("--name", help="a name for the subscription")
    subscribe.add_argument("--template", help="render with this template instead of the event's own")
    unsubscribe = command("unsubscribe", commands.unsubscribe,
                          "remove an event from a channel's subscriptions, or a named subscription")
    unsubscribe.add_argument("channel")
    unsubscribe.add_argument("event", nargs="?",
                             help="the event name or pattern, as written in events (leave it out "
                                  "with --name to remove that whole subscription)")
    unsubscribe.add_argument("--name", help="only the subscription with this name")
    unsubscribe.add_argument("--dry-run", action="store_true",
                             help="say what would change and write nothing")
    unsubscribe.add_argument("-y", "--yes", action="store_true",
                             help="change several subscriptions without asking")
    subscriptions = command("subscriptions", commands.subscriptions,
                            "list who hears what: every channel's subscriptions")
    subscriptions.add_argument("channel", nargs="?", help="only this channel")
    silence_commands.add_parser(sub, DEFAULT_CONFIG)
    return top
