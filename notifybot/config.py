"""``subscriptions.toml``: read, substitute ``${ENV}``, validate, and freeze into dataclasses.

Every error is a :class:`~notifybot.errors.ConfigError` naming the file and the
dotted key, so ``notifybot check`` can point at the place to fix. Values of
secret keys (``token``, ``password``, ``username``, ``export_key``) become
:class:`~notifybot.secret.Secret` and never appear in errors.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping, Set
from dataclasses import dataclass, field, replace
from datetime import time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from . import channels
from .conditions import compile_conditions
from .durations import parse_duration
from .errors import ConfigError
from .matching import Digest, Subscription, SubscriptionIndex, subscription_id
from .money import DEFAULT_LOCALE, check_currency, check_locale
from .secret import Secret
from .statuses import StatusLabels, to_code

SILENCE_EVENT = "notifybot.silence"  # what the watchdog stores when HireHop falls silent
SECRET_KEYS = frozenset({"token", "password", "username", "export_key"})
ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_EVENT_PATTERN = re.compile(r"^[A-Za-z0-9_*?\[\]!\-]+(\.[A-Za-z0-9_*?\[\]!\-]+)*$")
_SECTIONS = {"server", "hirehop", "delivery", "channels", "watchdog", "people"}
_WATCHDOG_KEYS = {"channel", "quiet_after", "hours", "days"}
_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_SERVER_KEYS = {"bind", "webhook_path", "database", "timezone", "templates", "max_body_bytes"}
_HIREHOP_KEYS = {"export_key", "base_url", "job_status", "invoice_status", "currency", "locale"}
_CHANNEL_NAME = re.compile(r"[A-Za-z0-9_\-]+")
_SUBSCRIPTION_KEYS = {"name", "events", "when", "unless", "template", "group_wait", "digest",
                      "mention"}
# Keys every channel kind takes: conversations and noise control (design §7).
CHANNEL_KEYS = frozenset({"thread", "thread_max_age", "broadcast", "hours", "days", "fallback",
                          "escalate_after"})
_THREADED_KINDS = frozenset({"slack", "telegram", "email"})  # thread = "job" by default
_PERSON_KEYS = {"names", "slack", "telegram", "email"}
MANAGER = "manager"  # in ``mention``: the job's MANAGER and MANAGER2


@dataclass(frozen=True)
class ServerConfig:
    bind: str = "127.0.0.1:8080"
    webhook_path: str = "/hirehop"
    database: str = field(default="sqlite:///notifybot.db", repr=False)  # may hold a password
    timezone: ZoneInfo = field(default_factory=lambda: ZoneInfo("Europe/London"))
    templates: Path | None = None
    max_body_bytes: int = 1024 * 1024


@dataclass(frozen=True)
class ExportKey:
    """One accepted ``export_key``; with ``company_id`` it is accepted for that company only."""

    secret: Secret
    company_id: int | None = None


@dataclass(frozen=True)
class HireHopConfig:
    export_keys: tuple[ExportKey, ...]
    base_url: str = "https://myhirehop.com"
    labels: StatusLabels = field(default_factory=StatusLabels)
    currency: str | None = None  # ISO 4217 code for amounts whose event has no CURRENCY
    locale: str = DEFAULT_LOCALE  # how numbers and currencies are written


@dataclass(frozen=True)
class DeliveryConfig:
    """How the outbox retries: exponential backoff with jitter, bounded by attempts and age."""

    max_attempts: int = 12
    max_age: float = 48 * 3600.0
    backoff_initial: float = 2.0
    backoff_max: float = 600.0
    lease: float = 60.0
    poll_interval: float = 1.0
    concurrency: int = 64


@dataclass(frozen=True)
class WatchdogConfig:
    """Alert ``channel`` when no webhook arrived for ``quiet_after`` seconds of working hours."""

    channel: str
    quiet_after: float = 7200.0
    start: time = time(8, 0)
    end: time = time(18, 0)
    days: frozenset[int] = frozenset(range(5))  # Monday is 0


@dataclass(frozen=True)
class ActiveHours:
    """When a channel takes messages: ``start``-``end`` (may wrap midnight) on ``days``.

    In ``[server] timezone``; Monday is 0. A message outside waits for the next opening.
    """

    start: time
    end: time
    days: frozenset[int] = frozenset(range(7))


@dataclass(frozen=True)
class ChannelConfig:
    """One destination, its subscriptions, and how its messages are threaded and held."""

    name: str
    type: str
    options: Mapping[str, Any] = field(repr=False)
    subscriptions: tuple[Subscription, ...]
    thread: str = "none"  # "job": one thread per job; "none": standalone messages
    thread_max_age: float = 30 * 86400.0  # a thread older than this starts anew
    broadcast: str = "none"  # "status": a reply that changes a status also shows in the channel
    hours: ActiveHours | None = None
    fallback: str | None = None  # channel told when a delivery here dies (one hop)
    escalate_after: float | None = None  # ...or when one has waited this long


@dataclass(frozen=True)
class Person:
    """``[people.KEY]``: how HireHop names someone, and who to mention on each channel kind."""

    key: str
    names: tuple[str, ...] = ()
    slack: str | None = None  # user id, mentioned as <@U…>
    telegram: str | None = None  # username, mentioned as @name
    email: str | None = None  # added to Cc


@dataclass(frozen=True)
class Config:
    path: Path
    server: ServerConfig
    hirehop: HireHopConfig
    delivery: DeliveryConfig
    channels: Mapping[str, ChannelConfig]
    index: SubscriptionIndex = field(repr=False)
    watchdog: WatchdogConfig | None = None
    people: Mapping[str, Person] = field(default_factory=dict)


def load(path: str | Path, environ: Mapping[str, str] | None = None) -> Config:
    """Read and validate a configuration file; raise ConfigError naming file and key."""
    path = Path(path)
    where = str(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError("file not found", where=where) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read: {exc}", where=where) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML: {exc}", where=where) from None
    try:
        return parse(raw, path, os.environ if environ is None else environ)
    except ConfigError as exc:
        if not exc.where:
            exc.where = where
        raise ConfigError(exc.message, where=exc.where, key=exc.key) from None


def parse(raw: Mapping[str, Any], path: Path, environ: Mapping[str, str]) -> Config:
    """Validate an already-decoded TOML document (see :func:`load`)."""
    _reject_unknown(raw, _SECTIONS, "")
    doc = _substitute(raw, environ, "")
    server = _server(_table(doc, "server"), path.parent, environ)
    hirehop = _hirehop(_table(doc, "hirehop"))
    delivery = _delivery(_table(doc, "delivery"))
    people = _people(_table(doc, "people"))
    chans = _channels(_table(doc, "channels"), hirehop.labels, people)
    subs = [sub for chan in chans.values() for sub in chan.subscriptions]
    watchdog = _watchdog(doc.get("watchdog"), chans)
    if watchdog is not None:  # the watchdog's alerts reach its channel like any event
        subs.append(Subscription(watchdog.channel, "watchdog", (SILENCE_EVENT,)))
    return Config(path, server, hirehop, delivery, chans, SubscriptionIndex(subs, hirehop.labels),
                  watchdog, people)


def _substitute(value: Any, environ: Mapping[str, str], key: str) -> Any:
    if isinstance(value, str):
        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in environ:
                raise ConfigError(f"environment variable {name} is not set", key=key or None)
            return environ[name]

        text = ENV_REF.sub(replace, value)
        return Secret(text) if _is_secret(key) else text
    if isinstance(value, Mapping):
        return {k: _substitute(v, environ, f"{key}.{k}" if key else k) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, environ, f"{key}[{i}]") for i, v in enumerate(value)]
    return value


def _is_secret(key: str) -> bool:
    """``hirehop.export_key`` (any form) and a channel's ``token``/``password``/``username``."""
    if key == "hirehop.export_key" or key.startswith(("hirehop.export_key.", "hirehop.export_key[")):
        return True
    parts = key.split(".")
    return len(parts) == 3 and parts[0] == "channels" and parts[2] in SECRET_KEYS


def _table(doc: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = doc.get(key, {})
    if not isinstance(value, Mapping):
        raise ConfigError("must be a table", key=key)
    return value


def _reject_unknown(table: Mapping[str, Any], allowed: Set[str], prefix: str) -> None:
    for name in table:
        if name not in allowed:
            key = f"{prefix}.{name}" if prefix else name
            raise ConfigError(f"unknown key; expected one of {', '.join(sorted(allowed))}", key=key)


def _server(table: Mapping[str, Any], base: Path, environ: Mapping[str, str]) -> ServerConfig:
    _reject_unknown(table, _SERVER_KEYS, "server")
    defaults = ServerConfig()
    bind = _string(table, "bind", "server", defaults.bind)
    if not re.fullmatch(r"\[?[^\s\[\]]*\]?:\d{1,5}", bind):
        raise ConfigError("must be HOST:PORT, e.g. 127.0.0.1:8080", key="server.bind")
    path = _string(table, "webhook_path", "server", defaults.webhook_path)
    if not path.startswith("/"):
        raise ConfigError("must start with '/'", key="server.webhook_path")
    database = environ.get("NOTIFYBOT_DATABASE") or _string(table, "database", "server",
                                                            defaults.database)
    if not database.startswith(("sqlite:///", "postgresql://", "postgres://")):
        raise ConfigError("use sqlite:///PATH or postgresql://...", key="server.database")
    tz_name = _string(table, "timezone", "server", "Europe/London")
    try:
        timezone = ZoneInfo(tz_name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"unknown time zone {tz_name!r}", key="server.timezone") from None
    templates = table.get("templates")
    if templates is not None and not isinstance(templates, str):
        raise ConfigError("must be a folder path", key="server.templates")
    max_body = table.get("max_body_bytes", defaults.max_body_bytes)
    if not isinstance(max_body, int) or max_body <= 0:
        raise ConfigError("must be a positive whole number", key="server.max_body_bytes")
    return ServerConfig(bind, path, database, timezone,
                        (base / templates) if templates else None, max_body)


def _hirehop(table: Mapping[str, Any]) -> HireHopConfig:
    _reject_unknown(table, _HIREHOP_KEYS, "hirehop")
    keys = _export_keys(table.get("export_key"))
    base_url = _string(table, "base_url", "hirehop", "https://myhirehop.com")
    if not base_url.startswith(("https://", "http://")):
        raise ConfigError("must be an http(s) URL", key="hirehop.base_url")
    labels = StatusLabels.with_overrides(
        _labels(table.get("job_status"), "hirehop.job_status"),
        _labels(table.get("invoice_status"), "hirehop.invoice_status"),
    )
    currency = _optional_string(table, "currency", "hirehop")
    if currency is not None:
        currency = currency.strip().upper()
        problem = check_currency(currency)
        if problem:
            raise ConfigError(problem, key="hirehop.currency")
    locale = _string(table, "locale", "hirehop", DEFAULT_LOCALE)
    problem = check_locale(locale)
    if problem:
        raise ConfigError(problem, key="hirehop.locale")
    return HireHopConfig(keys, base_url, labels, currency, locale)


def _export_keys(value: Any) -> tuple[ExportKey, ...]:
    """``export_key`` is one key, a list of keys, or a table ``{company_id = key}``."""
    key = "hirehop.export_key"
    if value is None:
        raise ConfigError("no export_key configured: notifybot will not accept unauthenticated "
                          "webhooks; set it (e.g. export_key = \"${HIREHOP_EXPORT_KEY}\")", key=key)
    if isinstance(value, Secret):
        items: list[tuple[int | None, Any]] = [(None, value)]
    elif isinstance(value, list):
        items = [(None, v) for v in value]
    elif isinstance(value, Mapping):
        items = []
        for company, secret in value.items():
            company_id = to_code(company)
            if company_id is None:
                raise ConfigError("table keys must be company ids", key=f"{key}.{company}")
            items.append((company_id, secret))
    else:
        raise ConfigError("must be a string, a list or a table", key=key)
    if not items:
        raise ConfigError("at least one key is needed", key=key)
    for _, secret in items:
        if not isinstance(secret, Secret) or not secret:
            raise ConfigError("each key must be a non-empty string", key=key)
    return tuple(ExportKey(secret, company) for company, secret in items)


def _labels(value: Any, key: str) -> dict[int, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError("must be a table such as { 3 = \"Prepared\" }", key=key)
    labels = {}
    for code, label in value.items():
        number = to_code(code)
        if number is None or not isinstance(label, str) or not label.strip():
            raise ConfigError("expected CODE = \"label\"", key=f"{key}.{code}")
        labels[number] = label.strip()
    return labels


def _delivery(table: Mapping[str, Any]) -> DeliveryConfig:
    defaults = DeliveryConfig()
    _reject_unknown(table, set(defaults.__dataclass_fields__), "delivery")
    values = {}
    for name, default in defaults.__dict__.items():
        value = table.get(name, default)
        wanted = int if isinstance(default, int) else int | float
        if isinstance(value, bool) or not isinstance(value, wanted) or value <= 0:
            kind = "whole number" if isinstance(default, int) else "number"
            raise ConfigError(f"must be a positive {kind}", key=f"delivery.{name}")
        values[name] = type(default)(value)
    return DeliveryConfig(**values)


def _channels(table: Mapping[str, Any], labels: StatusLabels,
              people: Mapping[str, Person]) -> dict[str, ChannelConfig]:
    result = {}
    for name, options in table.items():
        key = f"channels.{name}"
        if not _CHANNEL_NAME.fullmatch(name):
            raise ConfigError("a channel name is letters, digits, '_' and '-'", key=key)
        if not isinstance(options, Mapping):
            raise ConfigError("must be a table", key=key)
        kind = options.get("type")
        if not isinstance(kind, str) or kind not in channels.KINDS:
            raise ConfigError(f"type must be one of {', '.join(channels.KINDS)}", key=f"{key}.type")
        _reject_unknown(options, channels.KINDS[kind].keys | CHANNEL_KEYS | {"type", "subscriptions"},
                        key)
        subs = tuple(_subscriptions(name, options.get("subscriptions", []), labels, people))
        settings = {k: v for k, v in options.items() if k not in CHANNEL_KEYS | {"subscriptions"}}
        channels.build_sender(name, settings)  # validates the channel's own keys
        result[name] = _conversation(ChannelConfig(name, kind, settings, subs), options)
    for chan in result.values():
        _check_fallback(chan, result)
    return result


def _conversation(chan: ChannelConfig, options: Mapping[str, Any]) -> ChannelConfig:
    """The channel's threading, active hours and fallback keys (design §7)."""
    key = f"channels.{chan.name}"
    thread = options.get("thread", "job" if chan.type in _THREADED_KINDS else "none")
    if thread not in ("job", "none"):
        raise ConfigError('must be "job" (one thread per job) or "none"', key=f"{key}.thread")
    if thread == "job" and chan.type not in _THREADED_KINDS:
        raise ConfigError(f"a {chan.type} channel cannot thread; use \"none\"", key=f"{key}.thread")
    broadcast = options.get("broadcast", "none")
    if broadcast not in ("status", "none"):
        raise ConfigError('must be "status" (status changes also shown in the channel) or "none"',
                          key=f"{key}.broadcast")
    max_age = parse_duration(options.get("thread_max_age", "30d"), key=f"{key}.thread_max_age",
                             minimum=60)
    fallback = options.get("fallback")
    if fallback is not None and (not isinstance(fallback, str) or not fallback):
        raise ConfigError("must be the name of another channel", key=f"{key}.fallback")
    escalate = options.get("escalate_after")
    escalate_after = None if escalate is None else parse_duration(
        escalate, key=f"{key}.escalate_after", minimum=1)
    if escalate_after is not None and fallback is None:
        raise ConfigError("needs fallback = \"CHANNEL\": the channel that hears about the wait",
                          key=f"{key}.escalate_after")
    return replace(chan, thread=thread, thread_max_age=max_age, broadcast=broadcast,
                   hours=_active_hours(options, key), fallback=fallback,
                   escalate_after=escalate_after)


def _check_fallback(chan: ChannelConfig, chans: Mapping[str, ChannelConfig]) -> None:
    if chan.fallback is None:
        return
    key = f"channels.{chan.name}.fallback"
    if chan.fallback == chan.name:
        raise ConfigError("a channel cannot be its own fallback", key=key)
    if chan.fallback not in chans:
        raise ConfigError(f"no channel {chan.fallback!r}; configured: {', '.join(chans)}", key=key)


def _active_hours(options: Mapping[str, Any], key: str) -> ActiveHours | None:
    hours, days = options.get("hours"), options.get("days")
    if hours is None and days is None:
        return None
    start, end = (time(0), time(0)) if hours is None else _hours_range(hours, f"{key}.hours",
                                                                          wrap=True)
    return ActiveHours(start, end, _days(days, f"{key}.days") if days is not None
                       else frozenset(range(7)))


def _hours_range(value: Any, key: str, *, wrap: bool) -> tuple[time, time]:
    """``"08:00-18:00"``; with ``wrap`` also ``"22:00-06:00"`` (over midnight)."""
    example = "22:00-06:00" if wrap else "08:00-18:00"
    try:
        start_text, end_text = str(value).split("-")
        start, end = time.fromisoformat(start_text.strip()), time.fromisoformat(end_text.strip())
    except ValueError:
        raise ConfigError(f"must be HH:MM-HH:MM, e.g. 08:00-18:00 or {example}", key=key) from None
    if start == end or (not wrap and start > end):
        raise ConfigError("the start must be before the end", key=key)
    return start, end


def _days(value: Any, key: str) -> frozenset[int]:
    if not isinstance(value, list) or not value or any(
            not isinstance(d, str) or d.lower()[:3] not in _DAYS for d in value):
        raise ConfigError(f"must be a list of days such as {list(_DAYS[:5])}", key=key)
    return frozenset(_DAYS.index(d.lower()[:3]) for d in value)


def _people(table: Mapping[str, Any]) -> dict[str, Person]:
    people = {}
    for name, entry in table.items():
        key = f"people.{name}"
        if not _CHANNEL_NAME.fullmatch(name) or name == MANAGER:
            raise ConfigError(f"a person's key is letters, digits, '_' and '-' (not {MANAGER!r})",
                              key=key)
        if not isinstance(entry, Mapping):
            raise ConfigError("must be a table", key=key)
        _reject_unknown(entry, _PERSON_KEYS, key)
        names = entry.get("names", [])
        if isinstance(names, str):
            names = [names]
        if not isinstance(names, list) or any(not isinstance(n, str) or not n.strip() for n in names):
            raise ConfigError("must be a list of names as HireHop writes them", key=f"{key}.names")
        slack = _optional_string(entry, "slack", key)
        if slack is not None and not re.fullmatch(r"[UW][A-Z0-9]{2,}", slack):
            raise ConfigError("must be a Slack user id such as U0123ABCD", key=f"{key}.slack")
        telegram = _optional_string(entry, "telegram", key)
        if telegram is not None:
            telegram = telegram.removeprefix("@")
            if not re.fullmatch(r"[A-Za-z0-9_]{3,32}", telegram):
                raise ConfigError("must be a Telegram username such as sam_t", key=f"{key}.telegram")
        email = _optional_string(entry, "email", key)
        if email is not None and not re.fullmatch(r"[^@\s<>,]+@[^@\s<>,]+", email):
            raise ConfigError("must be an email address", key=f"{key}.email")
        people[name] = Person(name, tuple(n.strip() for n in names), slack, telegram, email)
    return people


def _subscriptions(channel: str, value: Any, labels: StatusLabels,
                   people: Mapping[str, Person]) -> list[Subscription]:
    base = f"channels.{channel}.subscriptions"
    if not isinstance(value, list):
        raise ConfigError("must be an array of tables ([[...subscriptions]])", key=base)
    subs: list[Subscription] = []
    for i, definition in enumerate(value):
        key = f"{base}[{i}]"
        if not isinstance(definition, Mapping):
            raise ConfigError("must be a table", key=key)
        _reject_unknown(definition, _SUBSCRIPTION_KEYS, key)
        sub = Subscription(
            channel=channel,
            id=subscription_id(definition),
            events=_event_patterns(definition.get("events"), f"{key}.events"),
            when=compile_conditions(definition.get("when", {}), labels=labels, where="",
                                    key=f"{key}.when"),
            unless=compile_conditions(definition.get("unless", {}), labels=labels, where="",
                                      key=f"{key}.unless"),
            template=_optional_string(definition, "template", key),
            group_wait=_group_wait(definition.get("group_wait"), f"{key}.group_wait"),
            digest=_digest(definition.get("digest"), f"{key}.digest"),
            mention=_mention(definition.get("mention"), f"{key}.mention", people),
        )
        if sub.group_wait is not None and sub.digest is not None:
            raise ConfigError("use group_wait or digest, not both", key=key)
        if any(other.id == sub.id for other in subs):
            raise ConfigError("duplicates an earlier subscription of this channel; give one a "
                              "distinct name = \"...\"", key=key)
        subs.append(sub)
    return subs


def _group_wait(value: Any, key: str) -> float | None:
    return None if value is None else parse_duration(value, key=key, minimum=1)


def _digest(value: Any, key: str) -> Digest | None:
    if value is None:
        return None
    if not isinstance(value, Mapping) or set(value) not in ({"every"}, {"at"}):
        raise ConfigError('must be { every = "1h" } or { at = "17:30" } (or a list of times)',
                          key=key)
    if "every" in value:
        return Digest(every=parse_duration(value["every"], key=f"{key}.every", minimum=60))
    times = value["at"] if isinstance(value["at"], list) else [value["at"]]
    parsed = []
    for text in times:
        try:
            parsed.append(time.fromisoformat(text) if isinstance(text, str) else None)
        except ValueError:
            parsed.append(None)
        if parsed[-1] is None or len(str(text)) > 8:
            raise ConfigError(f"{text!r} is not a time such as \"17:30\"", key=f"{key}.at")
    if not parsed:
        raise ConfigError("needs at least one time", key=f"{key}.at")
    return Digest(at=tuple(sorted({t for t in parsed if t is not None})))


def _mention(value: Any, key: str, people: Mapping[str, Person]) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or any(not isinstance(v, str) for v in value):
        raise ConfigError(f'must be a list of people keys or "{MANAGER}"', key=key)
    for name in value:
        if name != MANAGER and name not in people:
            known = ", ".join([MANAGER, *people]) if people else f"{MANAGER} (no [people] defined)"
            raise ConfigError(f"unknown person {name!r}; known: {known}", key=key)
    return tuple(dict.fromkeys(value))


def _event_patterns(value: Any, key: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value:
        raise ConfigError("must list at least one event pattern, e.g. [\"job.*\"]", key=key)
    for pattern in value:
        if not isinstance(pattern, str) or not _EVENT_PATTERN.match(pattern):
            raise ConfigError(f"{pattern!r} is not an event name or glob pattern", key=key)
    return tuple(value)


def _string(table: Mapping[str, Any], name: str, section: str, default: str) -> str:
    value = table.get(name, default)
    if not isinstance(value, str) or not value:
        raise ConfigError("must be a non-empty string", key=f"{section}.{name}")
    return value


def _optional_string(table: Mapping[str, Any], name: str, section: str) -> str | None:
    value = table.get(name)
    if value is not None and (not isinstance(value, str) or not value):
        raise ConfigError("must be a non-empty string", key=f"{section}.{name}")
    return value


def _watchdog(table: Any, chans: Mapping[str, ChannelConfig]) -> WatchdogConfig | None:
    if table is None:
        return None
    if not isinstance(table, Mapping):
        raise ConfigError("must be a table", key="watchdog")
    _reject_unknown(table, _WATCHDOG_KEYS, "watchdog")
    channel = _string(table, "channel", "watchdog", "")
    if channel not in chans:
        raise ConfigError(f"no channel {channel!r}; configured: {', '.join(chans) or 'none'}",
                          key="watchdog.channel")
    quiet = table.get("quiet_after", 7200)
    if isinstance(quiet, bool) or not isinstance(quiet, int | float) or quiet < 60:
        raise ConfigError("must be a number of seconds, at least 60", key="watchdog.quiet_after")
    start, end = _hours_range(_string(table, "hours", "watchdog", "08:00-18:00"), "watchdog.hours",
                              wrap=False)
    days = _days(table.get("days", list(_DAYS[:5])), "watchdog.days")
    return WatchdogConfig(channel, float(quiet), start, end, days)
