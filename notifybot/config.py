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
from dataclasses import dataclass, field
from datetime import time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from . import channels
from .conditions import compile_conditions
from .errors import ConfigError
from .matching import Subscription, SubscriptionIndex, subscription_id
from .money import DEFAULT_LOCALE, check_currency, check_locale
from .secret import Secret
from .statuses import StatusLabels, to_code

SILENCE_EVENT = "notifybot.silence"  # what the watchdog stores when HireHop falls silent
SECRET_KEYS = frozenset({"token", "password", "username", "export_key"})
ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_EVENT_PATTERN = re.compile(r"^[A-Za-z0-9_*?\[\]!\-]+(\.[A-Za-z0-9_*?\[\]!\-]+)*$")
_SECTIONS = {"server", "hirehop", "delivery", "channels", "watchdog"}
_WATCHDOG_KEYS = {"channel", "quiet_after", "hours", "days"}
_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_SERVER_KEYS = {"bind", "webhook_path", "database", "timezone", "templates", "max_body_bytes"}
_HIREHOP_KEYS = {"export_key", "base_url", "job_status", "invoice_status", "currency", "locale"}
_CHANNEL_NAME = re.compile(r"[A-Za-z0-9_\-]+")
_SUBSCRIPTION_KEYS = {"name", "events", "when", "unless", "template"}


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
    concurrency: int = 16


@dataclass(frozen=True)
class WatchdogConfig:
    """Alert ``channel`` when no webhook arrived for ``quiet_after`` seconds of working hours."""

    channel: str
    quiet_after: float = 7200.0
    start: time = time(8, 0)
    end: time = time(18, 0)
    days: frozenset[int] = frozenset(range(5))  # Monday is 0


@dataclass(frozen=True)
class ChannelConfig:
    name: str
    type: str
    options: Mapping[str, Any] = field(repr=False)
    subscriptions: tuple[Subscription, ...]


@dataclass(frozen=True)
class Config:
    path: Path
    server: ServerConfig
    hirehop: HireHopConfig
    delivery: DeliveryConfig
    channels: Mapping[str, ChannelConfig]
    index: SubscriptionIndex = field(repr=False)
    watchdog: WatchdogConfig | None = None


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
    chans = _channels(_table(doc, "channels"), hirehop.labels)
    subs = [sub for chan in chans.values() for sub in chan.subscriptions]
    watchdog = _watchdog(doc.get("watchdog"), chans)
    if watchdog is not None:  # the watchdog's alerts reach its channel like any event
        subs.append(Subscription(watchdog.channel, "watchdog", (SILENCE_EVENT,)))
    return Config(path, server, hirehop, delivery, chans, SubscriptionIndex(subs, hirehop.labels),
                  watchdog)


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


def _channels(table: Mapping[str, Any], labels: StatusLabels) -> dict[str, ChannelConfig]:
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
        _reject_unknown(options, channels.KINDS[kind].keys | {"type", "subscriptions"}, key)
        subs = tuple(_subscriptions(name, options.get("subscriptions", []), labels))
        settings = {k: v for k, v in options.items() if k != "subscriptions"}
        channels.build_sender(name, settings)  # validates the channel's own keys
        result[name] = ChannelConfig(name, kind, settings, subs)
    return result


def _subscriptions(channel: str, value: Any, labels: StatusLabels) -> list[Subscription]:
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
        )
        if any(other.id == sub.id for other in subs):
            raise ConfigError("duplicates an earlier subscription of this channel; give one a "
                              "distinct name = \"...\"", key=key)
        subs.append(sub)
    return subs


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
    hours = _string(table, "hours", "watchdog", "08:00-18:00")
    try:
        start_text, end_text = hours.split("-")
        start, end = time.fromisoformat(start_text.strip()), time.fromisoformat(end_text.strip())
    except ValueError:
        raise ConfigError("must be HH:MM-HH:MM, e.g. 08:00-18:00", key="watchdog.hours") from None
    if start >= end:
        raise ConfigError("the start must be before the end", key="watchdog.hours")
    days = table.get("days", list(_DAYS[:5]))
    if not isinstance(days, list) or not days or any(
            not isinstance(d, str) or d.lower()[:3] not in _DAYS for d in days):
        raise ConfigError(f"must be a list of days such as {list(_DAYS[:5])}", key="watchdog.days")
    return WatchdogConfig(channel, float(quiet), start, end,
                          frozenset(_DAYS.index(d.lower()[:3]) for d in days))
