"""Which subscriptions hear about an event. Pure: values in, values out.

Subscriptions are indexed by exact event name, with glob patterns kept apart,
and then, per event name, by the value one of their ``when`` equalities needs
(``data.DEPOT = 7``, ``changes.STATUS.to = "Booked"``), so matching one event
costs what its candidates cost, not what the whole configuration holds.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import time
from functools import lru_cache
from itertools import product
from math import prod
from typing import Any

from .conditions import MISSING, Condition, equality_keys, lookup, status_table, value_keys
from .events import Event
from .statuses import StatusLabels, StatusTable

_GLOB_CHARS = frozenset("*?[")


@dataclass(frozen=True)
class Digest:
    """``digest = { every = "1h" }`` or ``{ at = "17:30" }`` (daily times, server time zone)."""

    every: float | None = None  # seconds per window
    at: tuple[time, ...] = ()  # daily window ends, in order


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
    group_wait: float | None = None  # seconds: fold a burst for one thread into one message
    digest: Digest | None = None  # one summary per window instead of a message per event
    mention: tuple[str, ...] = ()  # people keys, or "manager" (the job's MANAGER / MANAGER2)

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
        self._plans = lru_cache(maxsize=1024)(self._plan)

    def match(self, event: Event) -> list[Subscription]:
        """The subscriptions that match, in configuration order."""
        plan = self._plans(event.name)
        if not plan.keyed:
            return [sub for sub in plan.unkeyed if self._holds(sub, sub.when, event)]
        # Position in the configuration -> (subscription, the `when` conditions left to check).
        found = {self._order[id(sub)]: (sub, sub.when) for sub in plan.unkeyed}
        values: dict[str, frozenset[Any] | None] = {}
        for paths, by_key, every, rest in plan.keyed:
            key_sets: list[frozenset[Any]] = []
            for path, table in paths:
                if path not in values:
                    values[path] = value_keys(lookup(event.payload, path), table)
                keys = values[path]
                if keys is None:  # a boolean, whose truthiness no key captures: try them all
                    break
                key_sets.append(keys)
            if len(key_sets) < len(paths):
                for sub in every:
                    found[self._order[id(sub)]] = (sub, sub.when)
                continue
            # Found by key: the equalities it was filed under hold (equality_keys is exact).
            for combo in product(*key_sets):
                for sub in by_key.get(combo, ()):
                    found[self._order[id(sub)]] = (sub, rest[id(sub)])
        return [sub for _, (sub, when) in sorted(found.items()) if self._holds(sub, when, event)]

    def _holds(self, sub: Subscription, when: tuple[Condition, ...], event: Event) -> bool:
        return (all(c.holds(event, self.labels) for c in when)
                and not any(c.holds(event, self.labels) for c in sub.unless))

    def explain(self, event: Event) -> list[Verdict]:
        """Every subscription's verdict on the event, for ``preview``."""
        return [evaluate(sub, event, self.labels) for sub in self.all]

    def _find_candidates(self, event_name: str) -> tuple[Subscription, ...]:
        found = {id(s): s for s in self._exact.get(event_name, ())}
        found.update({id(s): s for s in self._globbed if s.wants(event_name)})
        return tuple(sorted(found.values(), key=lambda s: self._order[id(s)]))

    def _plan(self, event_name: str) -> _Plan:
        """One event name's candidates, those with ``when`` equalities filed by their values.

        A subscription whose ``when`` holds ``path = value`` (or ``in``) can only match
        an event holding that value there. Subscriptions are grouped by the paths of
        their equalities and filed under the combination of values they need, so an
        event finds them by a few dict lookups instead of trying each. Those with no
        equality are always tried; every candidate found is still checked in full.
        """
        unkeyed: list[Subscription] = []
        # Grouped by the paths alone: for one event name, a path decides its status table.
        groups: dict[tuple[str, ...], tuple[tuple[tuple[str, StatusTable | None], ...],
                                            dict[tuple[Any, ...], list[Subscription]],
                                            list[Subscription],
                                            dict[int, tuple[Condition, ...]]]] = {}
        for sub in self._candidates(event_name):
            keyed = _equalities(sub, event_name, self.labels)
            if not keyed:
                unkeyed.append(sub)
                continue
            paths = tuple((path, table) for path, table, _, _ in keyed)
            _, by_key, every, rest = groups.setdefault(tuple(p for p, _ in paths),
                                                       (paths, defaultdict(list), [], {}))
            every.append(sub)
            filed = [condition for _, _, _, condition in keyed]
            rest[id(sub)] = tuple(c for c in sub.when if all(c is not f for f in filed))
            for combo in product(*(keys for _, _, keys, _ in keyed)):
                by_key[combo].append(sub)
        return _Plan(tuple(unkeyed), tuple(
            (paths, {k: tuple(v) for k, v in by_key.items()}, tuple(every), rest)
            for paths, by_key, every, rest in groups.values()))


@dataclass(frozen=True)
class _Plan:
    """How to find one event name's candidates: ``unkeyed`` always, the others by key.

    ``keyed`` holds one group per combination of paths: the paths (with the status
    table their values compare with), the subscriptions by the tuple of keys they
    need there, all of them (tried in full when the event holds a boolean at one
    of those paths, whose truthiness rules no key captures), and for each
    subscription (by ``id``) its ``when`` conditions other than those it is filed by.
    """

    unkeyed: tuple[Subscription, ...]
    keyed: tuple[tuple[tuple[tuple[str, StatusTable | None], ...],
                       Mapping[tuple[Any, ...], tuple[Subscription, ...]],
                       tuple[Subscription, ...],
                       Mapping[int, tuple[Condition, ...]]], ...]


_MAX_FILINGS = 64  # key combinations one subscription may be filed under


def _equalities(sub: Subscription, event_name: str, labels: StatusLabels
                ) -> list[tuple[str, StatusTable | None, frozenset[Any], Condition]]:
    """The ``when`` equalities to file ``sub`` under (one per path, sorted by path)."""
    chosen: dict[str, tuple[str, StatusTable | None, frozenset[Any], Condition]] = {}
    for condition in sub.when:
        table = status_table(condition.path, event_name, labels)
        keys = equality_keys(condition, table)
        if keys is not None and condition.path not in chosen:
            chosen[condition.path] = (condition.path, table, keys, condition)
    found = sorted(chosen.values(), key=lambda item: item[0])
    while found and prod(len(item[2]) for item in found) > _MAX_FILINGS:
        found.remove(max(found, key=lambda item: len(item[2])))  # long `in` lists: fewer paths
    return found
