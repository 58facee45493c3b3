"""Which subscriptions hear about an event. Pure: values in, values out.

Subscriptions are indexed by exact event name, with glob patterns kept apart,
so matching one event costs what its candidates cost, not what the whole
configuration holds.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from .conditions import MISSING, Condition, lookup
from .events import Event
from .statuses import StatusLabels

_GLOB_CHARS = frozenset("*?[")


@dataclass(frozen=True)
class Subscription:
    """What one channel hears about: event patterns, ``when`` (all) and ``unless`` (any vetoes).

    ``id`` is stable across restarts and re-orderings: it names the subscription in
    the outbox's unique key (event, channel, subscription).
    """

    channel: str
    id: str
    events: tuple[str, ...]
    when: tuple[Condition, ...] = ()
    unless: tuple[Condition, ...] = ()
    template: str | None = None

    def wants(self, event_name: str) -> bool:
        return any(fnmatch.fnmatchcase(event_name, pattern) for pattern in self.events)


@dataclass(frozen=True)
class Verdict:
    """Whether a subscription matched an event, and in words why (not)."""

    subscription: Subscription
    matched: bool
    reason: str


def subscription_id(definition: Mapping[str, Any]) -> str:
    """A short stable id for a subscription: its ``name`` or a digest of its definition."""
    name = definition.get("name")
    if isinstance(name, str) and name:
        return name
    canonical = json.dumps(definition, sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()[:12]


def evaluate(subscription: Subscription, event: Event, labels: StatusLabels) -> Verdict:
    """Decide one subscription against one event, with the reason for ``preview``."""
    if not subscription.wants(event.name):
        patterns = ", ".join(subscription.events)
        return Verdict(subscription, False, f"event {event.name!r} is not in [{patterns}]")
    for condition in subscription.when:
        if not condition.holds(event, labels):
            return Verdict(subscription, False,
                           f"when: {condition.describe()} does not hold{_actual(condition, event)}")
    for condition in subscription.unless:
        if condition.holds(event, labels):
            return Verdict(subscription, False,
                           f"unless: {condition.describe()} holds{_actual(condition, event)}")
    return Verdict(subscription, True, "matched")


def _actual(condition: Condition, event: Event) -> str:
    """What the event holds at the condition's path, for a reason a person can check."""
    if condition.op == "changed":
        return ""
    value = lookup(event.payload, condition.path)
    return " (not in the event)" if value is MISSING else f" (the event has {value!r})"


class SubscriptionIndex:
    """All subscriptions, indexed for matching many events quickly."""

    def __init__(self, subscriptions: Iterable[Subscription], labels: StatusLabels) -> None:
        self.labels = labels
        self.all: tuple[Subscription, ...] = tuple(subscriptions)
        self._exact: dict[str, list[Subscription]] = defaultdict(list)
        self._globbed: list[Subscription] = []
        self._order = {id(sub): i for i, sub in enumerate(self.all)}
        for sub in self.all:
            if any(_GLOB_CHARS & set(pattern) for pattern in sub.events):
                self._globbed.append(sub)
            else:
                for name in set(sub.events):
                    self._exact[name].append(sub)
        self._candidates = lru_cache(maxsize=1024)(self._find_candidates)

    def match(self, event: Event) -> list[Subscription]:
        """The subscriptions that match, in configuration order."""
        return [
            sub
            for sub in self._candidates(event.name)
            if all(c.holds(event, self.labels) for c in sub.when)
            and not any(c.holds(event, self.labels) for c in sub.unless)
        ]

    def explain(self, event: Event) -> list[Verdict]:
        """Every subscription's verdict on the event, for ``preview``."""
        return [evaluate(sub, event, self.labels) for sub in self.all]

    def _find_candidates(self, event_name: str) -> tuple[Subscription, ...]:
        found = {id(s): s for s in self._exact.get(event_name, ())}
        found.update({id(s): s for s in self._globbed if s.wants(event_name)})
        return tuple(sorted(found.values(), key=lambda s: self._order[id(s)]))
