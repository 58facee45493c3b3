"""What each ``notifybot`` command does. The argument parsing is in :mod:`notifybot.cli`."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import signal
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

from hypercorn.asyncio import serve as hypercorn_serve
from hypercorn.config import Config as HypercornConfig
from hypercorn.utils import LifespanFailureError, repr_socket_addr

from . import config_file, editing, logs, noise_preview
from .app import create_app
from .channels import build_sender
from .config import Config, load
from .errors import ConfigError, DeliveryError, NotifybotError
from .events import parse_event
from .fallback import describe as describe_hops
from .formatting import FORMATTERS
from .health import describe, is_storage_error
from .ingest import decode
from .matching import Subscription
from .mentions import add_mentions, describe_mentions, mentions_for
from .messages import Fact, Message
from .output import Progress, table
from .pipeline import prepare, renderer_for
from .reload import Reloader
from .rendering import check_templates
from .store import DeliveryStatus, Store, open_store

STARTUP_TIMEOUT = 10.0  # seconds for the database at startup: a clear exit beats a hang
log = logging.getLogger("notifybot.serve")


async def serve(args: argparse.Namespace) -> int:
    """Run until SIGTERM/SIGINT. Anything that stops startup (the configuration, the
    database, the address) ends the process at once with one line naming it."""
    logs.setup(args.log_format, args.log_level)
    config, renderer, _ = prepare(args.config)
    hypercorn, sockets = _listening(args.bind or config.server.bind)
    try:
        store = await _ready_store(config.server.database)
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    address = ", ".join(repr_socket_addr(s.family, s.getsockname()) for s in sockets)
    hypercorn.bind = [f"fd://{s.detach()}" for s in sockets]  # hypercorn owns them now
    app = create_app(config, store=store, renderer=renderer, config_path=args.config,
                     address=address)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    reloader: Reloader = app.extensions["notifybot.reloader"]
    reloads: set[asyncio.Task[None]] = set()  # keeps each reload task alive until it ends

    def on_sighup() -> None:
        task = asyncio.ensure_future(_reload(reloader))
        reloads.add(task)
        task.add_done_callback(reloads.discard)

    loop.add_signal_handler(signal.SIGHUP, on_sighup)
    try:
        await hypercorn_serve(app, hypercorn, shutdown_trigger=stop.wait)
    except LifespanFailureError as exc:  # the app's startup failed (and closed what it opened)
        raise NotifybotError(f"startup failed: {exc}") from None
    return 0


async def _ready_store(url: str) -> Store:
    """The store, reachable and migrated, or NotifybotError saying which database and why."""
    place = _database_place(url)
    if url.startswith("sqlite:///") and not Path(place).parent.is_dir():
        raise NotifybotError(f"cannot use the database {place}: the folder "
                             f"{Path(place).parent} does not exist")
    store = open_store(url)
    try:
        await asyncio.wait_for(store.migrate(), STARTUP_TIMEOUT)
    except Exception as exc:
        with contextlib.suppress(Exception):
            await store.close()
        # aiosqlite stops the thread of a failed connection with a future it does not
        # await: let it finish while the loop runs, or it prints a traceback at exit.
        await asyncio.sleep(0.1)
        if not is_storage_error(exc):
            raise
        reason = describe(exc) if not type(exc).__module__.startswith("asyncpg") else (
            str(exc) or type(exc).__name__)  # PostgreSQL's message names no password
        raise NotifybotError(f"cannot use the database {place}: {reason}") from None
    log.info("database: %s", place)
    return store


def _database_place(url: str) -> str:
    """Where the database is, for people: SQLite's absolute path; PostgreSQL without password."""
    if url.startswith("sqlite:///"):
        return str(Path(url.removeprefix("sqlite:///") or "notifybot.db").resolve())
    parts = urlsplit(url)
    if parts.password is not None:
        parts = parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@", 1))
    return urlunsplit(parts)


def _listening(bind: str) -> tuple[HypercornConfig, list[socket.socket]]:
    """Hypercorn's settings and the sockets, bound already.

    Binding here, before anything else starts, turns "address already in use" into
    one line and an exit, and gives the real address (port 0 picks one) for the log.
    """
    hypercorn = HypercornConfig()
    hypercorn.bind = [bind]
    hypercorn.accesslog = None
    hypercorn.errorlog = logging.getLogger("hypercorn.error")  # one handler: ours
    hypercorn.graceful_timeout = 10
    try:
        sockets = hypercorn.create_sockets().insecure_sockets
    except OSError as exc:
        raise NotifybotError(f"cannot listen on {bind}: {exc.strerror or exc}") from None
    except ValueError:
        raise NotifybotError(f"cannot listen on {bind}: expected HOST:PORT") from None
    return hypercorn, sockets


async def _reload(reloader: Reloader) -> None:
    with contextlib.suppress(ConfigError):  # logged by the reloader; the last good config stays
        await reloader.reload("SIGHUP")


async def check(args: argparse.Namespace) -> int:
    config, _, templates = prepare(args.config)
    subs = len(config.index.all)
    print(f"{args.config}: OK: {len(config.channels)} channel(s), {subs} subscription(s), "
          f"{templates} template(s), database {_database_kind(config)}")
    for name, chan in config.channels.items():
        if not chan.subscriptions:
            print(f"warning: channel {name!r} has no subscriptions and will hear nothing")
    return 0


async def preview(args: argparse.Namespace) -> int:
    config, renderer, _ = prepare(args.config)
    try:
        payload = decode(args.event_file.read_bytes())
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror}", where=str(args.event_file)) from None
    event = parse_event(payload)
    print(f"event {event.name}" + (f", job {event.job}" if event.job else ""))
    noise = await noise_preview.noise_notes(config, event, time.time())
    for verdict in config.index.explain(event):
        sub = verdict.subscription
        kind = config.channels[sub.channel].type
        mark = "MATCH" if verdict.matched else "no   "
        print(f"\n{mark} {sub.channel} ({kind}) subscription {sub.id}: {verdict.reason}")
        if (sub.channel, sub.id) in noise:
            print(f"  {noise[(sub.channel, sub.id)]}")
        if verdict.matched:
            mentioned = mentions_for(event, sub.mention, config.people)
            try:
                rendered = add_mentions(kind, FORMATTERS[kind](renderer.render(event, sub.template)),
                                        mentioned)
            except ConfigError as exc:
                print(f"  template error: {exc}")
                continue
            for line in json.dumps(rendered, ensure_ascii=False, indent=2).splitlines():
                print(f"  {line}")
            # Who is mentioned, and who hears when this channel cannot take the message.
            for line in [*describe_mentions(sub.mention, mentioned), *describe_hops(config,
                                                                                   sub.channel)]:
                print(f"  {line}")
    if not config.index.all:
        print("\nno subscriptions configured")
    return 0


async def send_test(args: argparse.Namespace) -> int:
    config = load(args.config)
    channel = config.channels.get(args.channel)
    if channel is None:
        known = ", ".join(config.channels) or "none"
        raise ConfigError(f"no channel {args.channel!r} (configured: {known})")
    sender = build_sender(channel.name, channel.options)
    message = Message(
        summary=f"notifybot test message for channel {channel.name}",
        facts=(Fact("Sent from", socket.gethostname()),
               Fact("At", datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"))),
        notes=("If you can read this, HireHop notifications will reach this channel.",),
    )
    await sender.open()
    try:
        check = getattr(sender, "check", None)  # credentials first, where the API allows
        if check is not None:
            print(f"{channel.name}: {await check()}")
        receipt = await sender.send(FORMATTERS[sender.kind](message))
    except DeliveryError as exc:
        print(f"{channel.name}: FAILED: {exc.reason}")
        return 1
    finally:
        await sender.close()
    print(f"{channel.name}: sent ({receipt.detail})")
    return 0


async def deliveries(args: argparse.Namespace) -> int:
    config = storage_config(args)
    store = existing_store(config)
    try:
        await store.migrate()
        status: DeliveryStatus | Literal["failed"] | None = None
        if args.status == "failed":
            status = "failed"
        elif args.status:
            status = DeliveryStatus(args.status)
        rows = await store.list_deliveries(status, args.limit, args.event)
    finally:
        await store.close()
    if args.json:
        for d in rows:
            print(json.dumps({"id": d.id, "event_id": d.event_id, "event": d.event_name,
                              "channel": d.channel, "status": str(d.status),
                              "attempts": d.attempts, "next_attempt_at": d.next_attempt_at,
                              "not_before": d.not_before, "note": d.note,
                              "last_error": d.last_error, "receipt": d.receipt,
                              "kind": str(d.kind), "origin_id": d.origin_id}))
        return 0
    print(table(["ID", "EVENT", "NAME", "CHANNEL", "STATUS", "TRIES", "NEXT", "NOT BEFORE",
                 "LAST ERROR / NOTE"],
                [[str(d.id), str(d.event_id), d.event_name, d.channel, str(d.status),
                  str(d.attempts), _when(d.next_attempt_at) if d.status == "pending" else "",
                  _when(d.not_before) if d.not_before is not None else "",
                  d.last_error or d.note or ""] for d in rows], empty="no deliveries",
                status_column=4))
    return 0


async def replay(args: argparse.Namespace) -> int:
    config = storage_config(args)
    store = existing_store(config)
    count = 0
    try:
        await store.migrate()
        if args.delivery_id is not None:
            count = await store.replay(delivery_id=args.delivery_id, now=time.time())
        else:
            # One delivery at a time, so a long replay shows its progress and a
            # running server starts sending the first ones at once.
            status = DeliveryStatus.DEAD if args.dead else None
            found = await store.list_deliveries(status, REPLAY_LIMIT, args.event)
            ids = sorted(d.id for d in found if d.status in REPLAYABLE)
            progress = Progress(len(ids), "queued again")
            for done, delivery_id in enumerate(ids, start=1):
                count += await store.replay(delivery_id=delivery_id, now=time.time())
                progress.update(done)
            progress.finish()
    finally:
        await store.close()
    print(f"{count} deliver{'y' if count == 1 else 'ies'} queued again; a running "
          "`notifybot serve` sends them within a few seconds")
    return 0 if count or args.dead else 1


async def migrate(args: argparse.Namespace) -> int:
    config = storage_config(args)
    store = open_store(config.server.database)
    try:
        await store.migrate()
    finally:
        await store.close()
    print(f"{_database_kind(config)} schema is up to date")
    return 0


def storage_config(args: argparse.Namespace) -> Config:
    """The configuration as far as the database commands need it: no secrets required."""
    return config_file.validate(args.config, config_file.read_text(args.config))


def existing_store(config: Config) -> Store:
    """The store of a server that has run: never a new, empty SQLite file by mistake."""
    url = config.server.database
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        raise NotifybotError(f"no notifybot database at {url.removeprefix('sqlite:///')!r} "
                             "(run this where `notifybot serve` runs, or check [server] database)")
    return open_store(url)


def _database_kind(config: Config) -> str:
    return "PostgreSQL" if config.server.database.startswith("postgres") else "SQLite"


def _when(epoch: float) -> str:
    return datetime.fromtimestamp(epoch).strftime("%Y-%m-%d %H:%M:%S")


REPLAY_LIMIT = 1_000_000
REPLAYABLE = (DeliveryStatus.DEAD, DeliveryStatus.PENDING, DeliveryStatus.SILENCED)


_RELOAD_NOTE = "a running notifybot serve picks this up on its next reload"


async def subscribe(args: argparse.Namespace) -> int:
    path: Path = args.config
    when = editing.assignments(args.when, "--when")
    unless = editing.assignments(args.unless, "--unless")
    with _naming_file(path):
        new_text = editing.subscribe(config_file.read_text(path), args.channel, args.events, when,
                                     unless, args.name, args.template)

    def template_exists(config: Config) -> None:
        check_templates(renderer_for(config), [args.template])

    config = config_file.write_validated(path, new_text,
                                     verify=template_exists if args.template else None)
    added = config.channels[args.channel].subscriptions[-1]
    print(f"channels.{args.channel}: subscribed to {_describe(added)}"
          + (f" (name {args.name})" if args.name else ""))
    print(_RELOAD_NOTE)
    return 0


async def unsubscribe(args: argparse.Namespace) -> int:
    path: Path = args.config
    with _naming_file(path):
        new_text, changed = editing.unsubscribe(config_file.read_text(path), args.channel, args.event)
    config_file.write_validated(path, new_text)
    print(f"channels.{args.channel}: unsubscribed from {args.event} "
          f"({changed} subscription{'' if changed == 1 else 's'} changed)")
    print(_RELOAD_NOTE)
    return 0


async def subscriptions(args: argparse.Namespace) -> int:
    path: Path = args.config
    config = config_file.validate(path, config_file.read_text(path))  # no secrets needed to list
    with _naming_file(path):
        rows = subscription_rows(config, args.channel)
    if rows:
        print(table(["CHANNEL", "KIND", "EVENTS", "WHEN", "UNLESS", "TEMPLATE"], rows,
                    empty="no subscriptions"))
    else:
        print("no subscriptions")
    for name, chan in config.channels.items():
        if not chan.subscriptions and args.channel in (None, name):
            print(f"channel {name!r} has no subscriptions and hears nothing")
    return 0


def _describe(sub: Subscription) -> str:
    text = ", ".join(sub.events)
    if sub.when:
        text += " when " + " and ".join(c.describe() for c in sub.when)
    if sub.unless:
        text += " unless " + " or ".join(c.describe() for c in sub.unless)
    if sub.template:
        text += f" with template {sub.template}"
    return text


@contextmanager
def _naming_file(path: Path) -> Iterator[None]:
    """ConfigErrors about a key of the file name the file too."""
    try:
        yield
    except ConfigError as exc:
        if exc.where is None and exc.key is not None:
            raise ConfigError(exc.message, where=str(path), key=exc.key) from None
        raise


def subscription_rows(config: Config, channel: str | None) -> list[list[str]]:
    """One row per subscription: channel, kind, events, when, unless, template."""
    if channel is not None and channel not in config.channels:
        known = ", ".join(config.channels) or "none"
        raise ConfigError(f"no such channel (configured: {known})", key=f"channels.{channel}")
    rows: list[list[str]] = []
    for name, chan in config.channels.items():
        if channel is not None and name != channel:
            continue
        for sub in chan.subscriptions:
            rows.append([
                name,
                chan.type,
                ", ".join(sub.events),
                " and ".join(c.describe() for c in sub.when),
                " or ".join(c.describe() for c in sub.unless),
                sub.template or "",
            ])
    return rows
