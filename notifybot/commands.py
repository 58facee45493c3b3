"""What each ``notifybot`` command does. The argument parsing is in :mod:`notifybot.cli`."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import re
import shlex
import signal
import socket
import sqlite3
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from importlib import resources
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from hypercorn.asyncio import serve as hypercorn_serve
from hypercorn.config import Config as HypercornConfig
from hypercorn.utils import LifespanFailureError, repr_socket_addr

from . import config_file, editing, logs, noise_preview
from .app import create_app
from .channels import build_sender
from .config import Config
from .errors import ConfigError, DeliveryError, NotifybotError, WebhookRejected
from .events import parse_event
from .fallback import describe as describe_hops
from .formatting import FORMATTERS
from .health import describe, is_storage_error
from .ingest import decode
from .lint import Finding, glob_error, lint, lint_subscription
from .matching import Subscription
from .mentions import add_mentions, describe_mentions, mentions_for
from .messages import Fact, Message
from .output import Progress, conditions_text, printable, table
from .pipeline import prepare, renderer_for
from .reload import Reloader
from .rendering import check_templates
from .store import Delivery, DeliveryStatus, Store, open_store
from .store.schema import POSTGRES_MIGRATIONS, SQLITE_MIGRATIONS

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


async def init(args: argparse.Namespace) -> int:
    """Write the commented starter configuration into DIR; never over an existing file."""
    target = write_starter(args.directory)
    shown = shlex.quote(str(target))
    print(f"wrote {target}: a console channel that prints every event, and commented Slack, "
          "Telegram and email channels to fill in.\nNext:\n"
          "  export HIREHOP_EXPORT_KEY=...   # HireHop: Settings > Company settings > Export key\n"
          f"  notifybot check -c {shown}\n"
          f"  notifybot serve -c {shown}\n"
          "then point a HireHop webhook (Settings > Company settings > Webhooks) at "
          "http://THIS-HOST:8080/hirehop")
    return 0


def write_starter(folder: Path) -> Path:
    """``folder``/subscriptions.toml from the package's starter file (the folder made if need
    be); ConfigError if the file exists."""
    if folder.exists() and not folder.is_dir():
        raise ConfigError("not a folder", where=str(folder))
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / "subscriptions.toml"
    text = resources.files("notifybot").joinpath("starter.toml").read_text(encoding="utf-8")
    try:
        with target.open("x", encoding="utf-8") as handle:  # "x": fails if it exists
            handle.write(text)
    except FileExistsError:
        raise ConfigError("already exists; left as it is (check it with `notifybot check -c "
                          f"{target}`)", where=str(target)) from None
    return target


async def check(args: argparse.Namespace) -> int:
    """Structure first (no secrets needed), then every missing variable at once, then the
    lint warnings, then the real load and a trial render of every template."""
    path: Path = args.config
    text = config_file.read_text(path)
    config = config_file.validate(path, text)
    findings = lint(config, renderer_for(config).names) + [
        Finding("error", key, f"environment variable {name} is not set")
        for name, key in config_file.missing_variables(config_file.loads(text, path), os.environ)]
    errors = [f for f in findings if f.level == "error"]
    for finding in findings:
        print(f"{finding.level}: {path}: {finding}", file=sys.stderr if finding in errors else sys.stdout)
    if errors:
        return 1
    config, _, templates = prepare(path)
    warnings = len(findings)  # no errors by now
    subs = sum(len(c.subscriptions) for c in config.channels.values())
    verdict = "OK" if not warnings else f"OK with {warnings} warning{'s' if warnings > 1 else ''}"
    print(f"{path}: {verdict}: {len(config.channels)} channel(s), {subs} subscription(s), "
          f"{templates} template(s), database {_database_kind(config)}")
    if warnings and args.strict:
        print("failing: --strict makes warnings errors", file=sys.stderr)
        return 1
    return 0


async def preview(args: argparse.Namespace) -> int:
    path: Path = args.config
    config = config_file.validate(path, config_file.read_text(path))  # sends nothing: no secrets
    renderer = renderer_for(config)
    event = parse_event(_read_event(args.event_file))
    try:
        check_templates(renderer, sorted({s.template for s in config.index.all if s.template}))
    except ConfigError as exc:
        print(f"note: the template check on the built-in sample failed ({printable(str(exc))}); "
              "`notifybot check` reports it too. Rendering your event anyway.")
    print(printable(f"event {event.name}" + (f", job {event.job}" if event.job else "")))
    noise = await noise_preview.noise_notes(config, event, time.time())
    threads = await noise_preview.thread_notes(config, event, time.time())
    for verdict in config.index.explain(event):
        sub = verdict.subscription
        kind = config.channels[sub.channel].type
        mark = "MATCH" if verdict.matched else "no   "
        print()
        print(printable(f"{mark} {sub.channel} ({kind}) subscription {sub.id}: {verdict.reason}"))
        if (sub.channel, sub.id) in noise:
            print(printable(f"  {noise[(sub.channel, sub.id)]}"))
        if verdict.matched and sub.channel in threads:
            print(printable(f"  {threads[sub.channel]}"))
        if verdict.matched:
            mentioned = mentions_for(event, sub.mention, config.people)
            try:
                rendered = add_mentions(kind, FORMATTERS[kind](renderer.render(event, sub.template)),
                                        mentioned)
            except ConfigError as exc:
                print(printable(f"  template error: {exc}"))
                continue
            for line in json.dumps(rendered, ensure_ascii=False, indent=2).splitlines():
                print(f"  {printable(line)}")
            # Who is mentioned, and who hears when this channel cannot take the message.
            for line in [*describe_mentions(sub.mention, mentioned), *describe_hops(config,
                                                                                   sub.channel)]:
                print(f"  {printable(line)}")
    if not config.index.all:
        print()
        print("no subscriptions configured")
    return 0


def _read_event(source: Path) -> dict[str, Any]:
    """A webhook body from a file or ``-`` (standard input); JSON errors say line and column."""
    where = "standard input" if str(source) == "-" else str(source)
    try:
        body = sys.stdin.buffer.read() if str(source) == "-" else source.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror}", where=where) from None
    try:
        return decode(body)
    except WebhookRejected as rejected:
        if not body.strip():
            raise ConfigError(rejected.reason, where=where) from None
        try:
            json.loads(body.decode("utf-8-sig"))
        except json.JSONDecodeError as exc:
            raise ConfigError(f"not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}",
                              where=where) from None
        except UnicodeDecodeError:
            pass
        raise ConfigError(rejected.reason, where=where) from None


async def send_test(args: argparse.Namespace) -> int:
    path: Path = args.config
    text = config_file.read_text(path)
    config = config_file.validate(path, text)  # other channels' secrets are not needed
    channel = config.channels.get(args.channel)
    if channel is None:
        known = ", ".join(config.channels) or "none"
        raise ConfigError(f"no channel {args.channel!r} (configured: {known})", where=str(path))
    raw = config_file.loads(text, path)
    config_file.require_variables(path, {"channels": {channel.name: raw["channels"][channel.name]}},
                                  os.environ)
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
        print(f"  {_send_hint(channel.name, channel.type, sender.destination, exc.reason)}")
        return 1
    finally:
        await sender.close()
    print(f"{channel.name}: sent ({receipt.detail})")
    return 0


# (words in the reason, the likely fix); the first that fits is shown.
_HINTS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("certificate",), "the server's certificate was not accepted: check that host is the name on "
                       "the certificate, or set ca_file to the CA that signed it"),
    (("tls error", "ssl"), "TLS failed: use security = \"tls\" for port 465 and \"starttls\" for 587"),
    (("invalid_auth", "not_authed", "token_revoked", "account_inactive", "unauthorized",
      "invalid token", "not found: the token"),
     "the token was refused: check {key}.token (a current bot token for this workspace or bot)"),
    (("channel_not_found", "not_in_channel", "is_archived"),
     "check {key}.channel (a channel id such as C0123456789) and invite the bot to it"),
    (("chat not found", "bot was kicked", "bot is not a member", "forbidden"),
     "check {key}.chat_id and that the bot is in that chat (a person must message a bot first)"),
    (("535", "534", "530", "authentication", "auth"),
     "the SMTP login was refused: check {key}.username and {key}.password"),
    (("timeout", "cannot connect", "connection", "econnrefused", "unreachable", "name or service"),
     "check {key}.host and port, that security matches the port, and that this machine may "
     "reach it (firewall, proxy)"),
)


def _send_hint(name: str, kind: str, destination: str, reason: str) -> str:
    """Where the message went and the fix the reason suggests."""
    lowered = reason.lower()
    key = f"channels.{name}"
    fix = next((text for words, text in _HINTS if any(w in lowered for w in words)),
               "see the reason above; `notifybot check` validates the channel's keys")
    at = destination.partition(":")[2]
    where = f"at {at}: " if kind == "email" else ""
    return where + fix.format(key=key)


# --- the database commands --------------------------------------------------------

STATUS_CHOICES = (*(str(s) for s in DeliveryStatus), "failed")  # a new status is a new choice


@dataclass(frozen=True)
class Column:
    """One column of ``deliveries``: its header, its JSON key and how a row shows it."""

    header: str
    key: str
    cell: Callable[[Delivery, _Shown], str]
    value: Callable[[Delivery, _Shown], Any]


@dataclass(frozen=True)
class _Shown:
    """What rows are shown with: the configuration's names and time zone."""

    labels: Mapping[tuple[str, str], str]
    zone: tzinfo

    def time(self, epoch: float) -> str:
        return datetime.fromtimestamp(epoch, self.zone).strftime("%Y-%m-%d %H:%M:%S")

    def subscription(self, d: Delivery) -> str:
        return self.labels.get((d.channel, d.subscription), d.subscription)


# A column more (the lead's `thread`, say) is one line here.
COLUMNS: tuple[Column, ...] = (
    Column("ID", "id", lambda d, s: str(d.id), lambda d, s: d.id),
    Column("EVENT", "event_id", lambda d, s: str(d.event_id), lambda d, s: d.event_id),
    Column("NAME", "event", lambda d, s: d.event_name, lambda d, s: d.event_name),
    Column("CHANNEL", "channel", lambda d, s: d.channel, lambda d, s: d.channel),
    Column("SUBSCRIPTION", "subscription", lambda d, s: s.subscription(d),
           lambda d, s: d.subscription),
    Column("STATUS", "status", lambda d, s: str(d.status), lambda d, s: str(d.status)),
    Column("TRIES", "attempts", lambda d, s: str(d.attempts), lambda d, s: d.attempts),
    Column("CREATED", "created_at", lambda d, s: s.time(d.created_at), lambda d, s: d.created_at),
    Column("NEXT", "next_attempt_at",
           lambda d, s: s.time(d.next_attempt_at) if d.status == DeliveryStatus.PENDING else "",
           lambda d, s: d.next_attempt_at),
    Column("NOT BEFORE", "not_before",
           lambda d, s: s.time(d.not_before) if d.not_before is not None else "",
           lambda d, s: d.not_before),
    Column("THREAD", "thread", lambda d, s: _thread(d), lambda d, s: d.thread_key),
    Column("LAST ERROR / NOTE", "last_error", lambda d, s: d.last_error or d.note or "",
           lambda d, s: d.last_error),
    # JSON only:
    Column("RECEIPT", "receipt", lambda d, s: "", lambda d, s: d.receipt),
    Column("NOTE", "note", lambda d, s: "", lambda d, s: d.note),
    Column("KIND", "kind", lambda d, s: "", lambda d, s: str(d.kind)),
    Column("ORIGIN", "origin_id", lambda d, s: "", lambda d, s: d.origin_id),
    Column("ROLE", "thread_role", lambda d, s: "", lambda d, s: d.thread_role),
)
_JSON_ONLY = frozenset({"RECEIPT", "NOTE", "KIND", "ORIGIN", "ROLE"})


def _thread(d: Delivery) -> str:
    """The delivery's thread as a person reads it: ``job 15471 (root)``."""
    if d.thread_key is None:
        return ""
    _, _, job = d.thread_key.rpartition(":job:")
    return f"job {job}" + (f" ({d.thread_role})" if d.thread_role else "")


async def deliveries(args: argparse.Namespace) -> int:
    config = storage_config(args)
    if args.channel is not None and args.channel not in config.channels:
        # Deliveries of a channel since removed from the file are still listed.
        print(f"note: no channel {args.channel!r} in {args.config} (configured: "
              f"{', '.join(config.channels) or 'none'})", file=sys.stderr)
    store = existing_store(config)
    try:
        await store.migrate()
        rows, cut = await select_deliveries(
            store, None if args.status is None else _status(args.status), args.event,
            args.limit, channel=args.channel, since=args.since)
    finally:
        await store.close()
    shown = _Shown({(s.channel, s.id): _subscription_label(s) for s in config.index.all},
                   config.server.timezone)
    if args.json:
        for d in rows:
            print(json.dumps({c.key: c.value(d, shown) for c in COLUMNS}, ensure_ascii=False))
    else:
        columns = [c for c in COLUMNS if c.header not in _JSON_ONLY]
        print(table([c.header for c in columns], [[c.cell(d, shown) for c in columns] for d in rows],
                    empty="no deliveries", status_column=columns.index(_STATUS_COLUMN)))
    if cut:
        print(f"(showing the newest {args.limit}; more match: raise --limit or narrow with "
              "--status, --channel, --event or --since)", file=sys.stderr)
    return 0


_STATUS_COLUMN = next(c for c in COLUMNS if c.header == "STATUS")


def _status(choice: str) -> DeliveryStatus | Literal["failed"]:
    return "failed" if choice == "failed" else DeliveryStatus(choice)


def _subscription_label(sub: Subscription) -> str:
    """A named subscription by its name; others by their events (their id is a digest)."""
    return ", ".join(sub.events) if _DIGEST.fullmatch(sub.id) else sub.id


_DIGEST = re.compile(r"[0-9a-f]{12}")  # matching.subscription_id of an unnamed subscription


async def select_deliveries(
    store: Store, status: DeliveryStatus | Literal["failed"] | None, event: int | None,
    limit: int, *, channel: str | None = None, since: float | None = None,
) -> tuple[list[Delivery], bool]:
    """The newest ``limit`` deliveries passing every filter, and whether more matched.

    The store filters by status and event; channel and time are filtered here,
    fetching more rows until enough pass or there are no more.
    """
    def wanted(d: Delivery) -> bool:
        return (channel is None or d.channel == channel) and (since is None or d.created_at >= since)

    fetch = limit + 1
    while True:
        found = await store.list_deliveries(status, fetch, event)
        kept = [d for d in found if wanted(d)]
        if len(kept) > limit or len(found) < fetch:
            return kept[:limit], len(kept) > limit
        fetch *= 4


async def replay(args: argparse.Namespace) -> int:
    config = storage_config(args)
    store = existing_store(config)
    count = 0
    try:
        await store.migrate()
        if args.delivery_id is not None:
            count = await store.replay(delivery_id=args.delivery_id, now=time.time())
            why = "" if count else await _why_not_replayed(store, args.delivery_id)
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
            why = "" if count else _why_none(found, args.dead, args.event)
    finally:
        await store.close()
    if not count:
        print(f"nothing queued: {why}")
        return 0 if args.dead else 1
    print(f"{count} deliver{'y' if count == 1 else 'ies'} queued again; a running "
          "`notifybot serve` sends them within a few seconds")
    return 0


async def _why_not_replayed(store: Store, delivery_id: int) -> str:
    newest = await store.list_deliveries(None, 1)
    if not newest or delivery_id > newest[0].id:
        last = f"the newest is {newest[0].id}" if newest else "there are none yet"
        return f"there is no delivery {delivery_id} ({last}; see `notifybot deliveries`)"
    # The store lists newest first and has no lookup by id: read back as far as the
    # id, within reason (this runs only when nothing was queued).
    found = await store.list_deliveries(None, min(newest[0].id - delivery_id + 1, _LOOK_BACK))
    match = next((d for d in found if d.id == delivery_id), None)
    if match is None:
        return (f"delivery {delivery_id} is neither dead nor pending, or does not exist "
                "(see `notifybot deliveries`)")
    return _state_reason(match)


_LOOK_BACK = 100_000


def _state_reason(d: Delivery) -> str:
    if d.status == DeliveryStatus.SENT:
        return (f"delivery {d.id} to {d.channel} was sent; a delivery recorded as sent is "
                "never sent again")
    if d.status == DeliveryStatus.SENDING:
        return f"delivery {d.id} to {d.channel} is being sent right now"
    return f"delivery {d.id} is {d.status}, which replay does not change"


def _why_none(found: list[Delivery], dead: bool, event: int | None) -> str:
    if dead:
        return "no delivery is dead"
    if not found:
        return f"event {event} has no deliveries (see `notifybot deliveries`)"
    states = sorted({str(d.status) for d in found})
    return (f"event {event}'s {len(found)} deliver{'y is' if len(found) == 1 else 'ies are'} "
            f"{' or '.join(states)}; only dead or pending ones are queued again")


async def migrate(args: argparse.Namespace) -> int:
    config = storage_config(args)
    url = config.server.database
    where = _sqlite_file(url)
    if where is not None and not where.parent.is_dir():
        raise ConfigError(f"folder {str(where.parent)!r} does not exist; create it first",
                          where=str(args.config), key="server.database")
    before = await _schema_version(url)
    store = open_store(url)
    try:
        await store.migrate()
    finally:
        await store.close()
    latest = len(SQLITE_MIGRATIONS if where is not None else POSTGRES_MIGRATIONS)
    kind = _database_kind(config)
    place = f" at {where}" if where is not None else ""
    if not before:
        print(f"created the {kind} schema{place} (version {latest})")
    elif before < latest:
        print(f"upgraded the {kind} schema{place} from version {before} to {latest}")
    else:
        print(f"the {kind} schema{place} is up to date (version {before})")
    return 0


async def _schema_version(url: str) -> int:
    """The schema version a database has now; 0 for none (a new file or empty database)."""
    path = _sqlite_file(url)
    if path is not None:
        if not path.exists():
            return 0
        with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            try:
                row = db.execute("SELECT MAX(version) FROM schema_version").fetchone()
            except sqlite3.OperationalError:  # no such table: never migrated
                return 0
        return int(row[0] or 0)
    import asyncpg  # only for PostgreSQL, like the store

    conn = await asyncpg.connect(url, timeout=10)
    try:
        if await conn.fetchval("SELECT to_regclass('schema_version')") is None:
            return 0
        return int(await conn.fetchval("SELECT MAX(version) FROM schema_version") or 0)
    finally:
        await conn.close()


def _sqlite_file(url: str) -> Path | None:
    return Path(url.removeprefix("sqlite:///")) if url.startswith("sqlite:///") else None


def storage_config(args: argparse.Namespace) -> Config:
    """The configuration as far as the database commands need it: no secrets required."""
    return config_file.validate(args.config, config_file.read_text(args.config))


def existing_store(config: Config) -> Store:
    """The store of a server that has run: never a new, empty SQLite file by mistake."""
    url = config.server.database
    path = _sqlite_file(url)
    if path is not None and not path.exists():
        raise NotifybotError(f"no notifybot database at {str(path)!r} (run this where "
                             "`notifybot serve` runs, check [server] database, or create it with "
                             "`notifybot migrate`)")
    return open_store(url)


def _database_kind(config: Config) -> str:
    return "PostgreSQL" if config.server.database.startswith("postgres") else "SQLite"


REPLAY_LIMIT = 1_000_000
REPLAYABLE = (DeliveryStatus.DEAD, DeliveryStatus.PENDING, DeliveryStatus.SILENCED)


# --- editing the file ----------------------------------------------------------------

_RELOAD_NOTE = "a running notifybot serve picks this up on its next reload"


async def subscribe(args: argparse.Namespace) -> int:
    path: Path = args.config
    for pattern in args.events:
        broken = glob_error(pattern)
        if broken:
            raise ConfigError(f"{pattern!r}: {broken}, so it could never match an event")
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
    index = len(config.channels[args.channel].subscriptions) - 1
    for finding in lint_subscription(added, f"channels.{args.channel}.subscriptions[{index}]"):
        print(f"{finding.level}: {path}: {finding}")
    print(_RELOAD_NOTE)
    return 0


async def unsubscribe(args: argparse.Namespace) -> int:
    path: Path = args.config
    if args.event is None and args.name is None:
        raise ConfigError("name the EVENT to drop, or --name NAME for a whole subscription")
    with _naming_file(path):
        new_text, changes = editing.unsubscribe(config_file.read_text(path), args.channel,
                                                args.event, name=args.name)
    for change in changes:
        print(f"channels.{args.channel}.subscriptions[{change.index}]"
              + (f" ({change.name})" if change.name else "") + ": "
              + ("removed" if change.remaining is None
                 else f"events become {', '.join(change.remaining)}"))
    if args.dry_run:
        print("dry run: nothing written")
        return 0
    if len(changes) > 1 and not args.yes and not _confirmed(len(changes)):
        print(f"nothing written: {len(changes)} subscriptions would change; add --yes to "
              "change them all, or --name to choose one", file=sys.stderr)
        return 1
    config_file.write_validated(path, new_text)
    print(f"channels.{args.channel}: {len(changes)} subscription"
          f"{'' if len(changes) == 1 else 's'} changed")
    print(_RELOAD_NOTE)
    return 0


def _confirmed(count: int) -> bool:
    """Ask a person at a terminal; anyone else must say --yes."""
    if not sys.stdin.isatty():
        return False
    try:
        answer = input(f"change these {count} subscriptions? [y/N] ")
    except EOFError:
        return False
    return answer.strip().lower() in ("y", "yes")


async def subscriptions(args: argparse.Namespace) -> int:
    path: Path = args.config
    config = config_file.validate(path, config_file.read_text(path))  # no secrets needed to list
    with _naming_file(path):
        rows = subscription_rows(config, args.channel)
    print(table(["CHANNEL", "KIND", "NAME", "EVENTS", "WHEN", "UNLESS", "TEMPLATE"], rows,
                empty="no subscriptions"))
    for name, chan in config.channels.items():
        if not chan.subscriptions and args.channel in (None, name):
            print(f"channel {name!r} has no subscriptions and hears nothing")
    return 0


def _describe(sub: Subscription) -> str:
    text = ", ".join(sub.events)
    if sub.when:
        text += " when " + conditions_text(sub.when, "and")
    if sub.unless:
        text += " unless " + conditions_text(sub.unless, "or")
    if sub.template:
        text += f" with template {sub.template}"
    return text


@contextmanager
def _naming_file(path: Path) -> Iterator[None]:
    """ConfigErrors about a key of the file name the file too."""
    try:
        yield
    except ConfigError as exc:
        if exc.where is None:
            raise ConfigError(exc.message, where=str(path), key=exc.key) from None
        raise


def subscription_rows(config: Config, channel: str | None) -> list[list[str]]:
    """One row per subscription: channel, kind, name, events, when, unless, template."""
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
                sub.id if _subscription_label(sub) == sub.id else "",
                ", ".join(sub.events),
                conditions_text(sub.when, "and"),
                conditions_text(sub.unless, "or"),
                sub.template or "",
            ])
    return rows
