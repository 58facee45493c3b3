"""``notifybot silence add | list | expire``: run-time silences, kept in the database.

The parser is built here and hung under ``notifybot`` by :mod:`notifybot.cli`.
A silence needs no secrets: the commands read the configuration only for the
database, the channel names and the status labels.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
import time
from collections.abc import Callable, Coroutine, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from . import editing
from .commands import existing_store, storage_config
from .durations import format_duration, parse_duration
from .errors import NotifybotError
from .output import table
from .silences import Silence, describe_silence, new_silence
from .store import open_store

Command = Callable[[argparse.Namespace], Coroutine[Any, Any, int]]


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser], config_default: str) -> None:
    """``notifybot silence ...`` with its three commands."""
    silence = sub.add_parser("silence", help="mute a channel for a while (kept in the database)",
                             description="Silences mute messages at run time; every instance "
                                         "honours them. Muted messages are recorded as "
                                         "'silenced' deliveries, never dropped.")
    actions = silence.add_subparsers(dest="silence_command", required=True, metavar="ACTION")

    def action(name: str, run: Command, help_text: str) -> argparse.ArgumentParser:
        p = actions.add_parser(name, help=help_text, description=help_text)
        p.add_argument("-c", "--config", default=config_default, type=Path,
                       help=f"configuration file (default: {config_default})")
        p.set_defaults(run=run)
        return p

    add = action("add", silence_add, "start a silence; prints its id")
    add.add_argument("channel", metavar="CHANNEL", help="a channel name, or '*' for every channel")
    add.add_argument("--when", action="append", default=[], metavar="PATH=VALUE",
                     help="only messages where this holds (repeatable; the syntax of subscribe)")
    add.add_argument("--unless", action="append", default=[], metavar="PATH=VALUE",
                     help="never messages where this holds (repeatable)")
    add.add_argument("--for", dest="duration", required=True, metavar="DURATION",
                     help="how long: seconds, or 30m, 2h, 1d")
    add.add_argument("--comment", required=True, help="why: shown to everyone who lists silences")
    listing = action("list", silence_list, "list silences that have not expired")
    listing.add_argument("--all", action="store_true", help="expired ones too")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    expire = action("expire", silence_expire, "end a silence now")
    expire.add_argument("silence_id", type=int, metavar="ID")


async def silence_add(args: argparse.Namespace) -> int:
    config = storage_config(args)
    now = time.time()
    draft = new_silence(
        args.channel, editing.assignments(args.when, "--when"),
        editing.assignments(args.unless, "--unless"),
        duration=parse_duration(args.duration, key="--for", minimum=1), comment=args.comment,
        created_by=os_user(), now=now, channels=config.channels, labels=config.hirehop.labels)
    # A silence may be made before the server first runs: the database is made for it
    # (and said so, in case this is not where `notifybot serve` runs).
    created = _missing_sqlite_file(config.server.database)
    store = open_store(config.server.database)
    try:
        await store.migrate()
        silence_id = await store.add_silence(draft)
    finally:
        await store.close()
    if created:
        print(f"note: made a new database at {created!r} for it; `notifybot serve` must use the "
              "same [server] database", file=sys.stderr)
    print(silence_id)
    print(f"silence {silence_id}: {draft.channel}, {describe_silence(draft, config.hirehop.labels)}"
          f", for {format_duration(draft.expires_at - now)}", file=sys.stderr)
    return 0


async def silence_list(args: argparse.Namespace) -> int:
    config = storage_config(args)
    now = time.time()
    store = existing_store(config)
    try:
        await store.migrate()
        found = await store.list_silences(now, expired=args.all)
    finally:
        await store.close()
    labels, tz = config.hirehop.labels, config.server.timezone
    if args.json:
        for silence in found:
            print(json.dumps(as_json(silence, describe_silence(silence, labels), now),
                             ensure_ascii=False))
        return 0
    print(table(["ID", "CHANNEL", "CONDITIONS", "COMMENT", "BY", "STARTS", "EXPIRES", "STATE"],
                rows(found, lambda s: describe_silence(s, labels), tz, now), empty="no silences"))
    return 0


async def silence_expire(args: argparse.Namespace) -> int:
    config = storage_config(args)
    store = existing_store(config)
    try:
        await store.migrate()
        ended = await store.expire_silence(args.silence_id, time.time())
    finally:
        await store.close()
    if not ended:
        raise NotifybotError(f"no active silence {args.silence_id} (see `notifybot silence list "
                             "--all`)")
    print(f"silence {args.silence_id} expired: its channel hears everything again")
    return 0


def as_json(silence: Silence, conditions: str, now: float) -> dict[str, Any]:
    """What ``silence list --json`` prints for one silence (times as epoch seconds)."""
    return {"id": silence.id, "channel": silence.channel, "when": dict(silence.when),
            "unless": dict(silence.unless), "conditions": conditions, "comment": silence.comment,
            "created_by": silence.created_by, "starts_at": silence.starts_at,
            "expires_at": silence.expires_at, "state": silence.state(now)}


def rows(silences: Sequence[Silence], describe: Callable[[Silence], str], tz: ZoneInfo,
         now: float) -> list[list[str]]:
    return [[str(s.id), s.channel, describe(s), s.comment, s.created_by, _local(s.starts_at, tz),
             _local(s.expires_at, tz), s.state(now)] for s in silences]


def _local(epoch: float, tz: ZoneInfo) -> str:
    return datetime.fromtimestamp(epoch, tz).strftime("%Y-%m-%d %H:%M")


def _missing_sqlite_file(url: str) -> str | None:
    path = url.removeprefix("sqlite:///") if url.startswith("sqlite:///") else None
    return path if path is not None and not Path(path).exists() else None


def os_user() -> str:
    """Who is making the silence: the OS login name (``getpass``), else the numeric uid."""
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name in the environment or the password database
        return f"uid {os.getuid()}"
