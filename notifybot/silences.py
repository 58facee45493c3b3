"""Silences: run-time mutes of one channel (or all, ``*``), for messages matching conditions.

A silence is made on the command line and kept in the database, so every
instance honours it; while it lasts, a message it mutes is recorded as a
``silenced`` delivery (listed, replayable), never dropped. Its conditions use the
``when`` / ``unless`` syntax of subscriptions (:mod:`notifybot.conditions`) and are
stored as the table they were written as, so ``silence list --json`` shows them
the way they were given. Pure: times are passed in.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .conditions import Condition, compile_conditions
from .errors import ConfigError
from .events import Event
from .statuses import StatusLabels

ALL_CHANNELS = "*"


@dataclass(frozen=True)
class Silence:
    """One silence as stored: ``when`` / ``unless`` are condition tables (``{"job": 15471}``).

    It mutes from ``starts_at`` (inclusive) until ``expires_at`` (exclusive); expiring
    it early sets ``expires_at`` to the moment of expiry.
    """

    id: int
    channel: str  # a channel name, or "*" for every channel
    when: Mapping[str, Any]
    unless: Mapping[str, Any]
    comment: str
    created_by: str
    starts_at: float
    expires_at: float

    def live(self, now: float) -> bool:
        return self.starts_at <= now < self.expires_at

    def covers(self, channel: str) -> bool:
        return self.channel in (ALL_CHANNELS, channel)

    def state(self, now: float) -> str:
        """``active``, ``pending`` (starts later) or ``expired``."""
        if now >= self.expires_at:
            return "expired"
        return "active" if now >= self.starts_at else "pending"


@dataclass(frozen=True)
class CompiledSilence:
    """A silence with its conditions compiled once, for routing many events."""

    silence: Silence
    when: tuple[Condition, ...]
    unless: tuple[Condition, ...]

    def mutes(self, channel: str, event: Event, labels: StatusLabels, now: float) -> bool:
        """Whether a message of ``event`` to ``channel`` is muted by this silence at ``now``."""
        return (self.silence.live(now) and self.silence.covers(channel)
                and all(c.holds(event, labels) for c in self.when)
                and not any(c.holds(event, labels) for c in self.unless))

    def describe(self) -> str:
        return describe(self.when, self.unless)


def compile_silence(silence: Silence, labels: StatusLabels) -> CompiledSilence:
    """Compile a silence's tables; raises ConfigError if one no longer makes sense (a label gone)."""
    where = f"silence {silence.id}"
    return CompiledSilence(
        silence,
        compile_conditions(silence.when, labels=labels, where=where, key="when"),
        compile_conditions(silence.unless, labels=labels, where=where, key="unless"),
    )


def mutes(silence: Silence, channel: str, event: Event, labels: StatusLabels, now: float) -> bool:
    """Whether ``silence`` mutes a message of ``event`` to ``channel`` at ``now``."""
    return compile_silence(silence, labels).mutes(channel, event, labels, now)


def muting(silences: Iterable[CompiledSilence], channel: str, event: Event, labels: StatusLabels,
           now: float) -> Silence | None:
    """The first silence (oldest id) that mutes this message, if any."""
    for compiled in sorted(silences, key=lambda c: c.silence.id):
        if compiled.mutes(channel, event, labels, now):
            return compiled.silence
    return None


def describe(when: Iterable[Condition], unless: Iterable[Condition]) -> str:
    """The conditions in words: ``job eq 15471 unless user_email eq 'bot@x'``; empty: everything."""
    text = " and ".join(c.describe() for c in when) or "every message"
    exceptions = " or ".join(c.describe() for c in unless)
    return f"{text} unless {exceptions}" if exceptions else text


def describe_silence(silence: Silence, labels: StatusLabels) -> str:
    """Conditions in words, or the tables as stored if they no longer compile."""
    try:
        return compile_silence(silence, labels).describe()
    except ConfigError:
        return f"when {dict(silence.when)} unless {dict(silence.unless)}"


def new_silence(channel: str, when: Mapping[str, Any], unless: Mapping[str, Any], *,
                duration: float, comment: str, created_by: str, now: float,
                channels: Iterable[str], labels: StatusLabels) -> Silence:
    """A validated silence starting ``now`` (id 0 until stored); ConfigError says what is wrong."""
    known = list(channels)
    if channel != ALL_CHANNELS and channel not in known:
        raise ConfigError(f"no channel {channel!r}; use '*' or one of: {', '.join(known) or 'none'}")
    if not comment.strip():
        raise ConfigError("--comment must say why (it is shown to everyone who lists silences)")
    if duration <= 0:
        raise ConfigError("--for must be a positive duration")
    compile_conditions(when, labels=labels, where="", key="--when")
    compile_conditions(unless, labels=labels, where="", key="--unless")
    return Silence(0, channel, dict(when), dict(unless), comment.strip(), created_by, now,
                   now + duration)
