"""Which subscriptions hear about an event: globs, when/unless, order, reasons, ids."""

from __future__ import annotations

import random
from typing import Any

import pytest

from notifybot.conditions import compile_conditions
from notifybot.errors import ConfigError
from notifybot.events import Event, parse_event
from notifybot.matching import Subscription, SubscriptionIndex, evaluate, subscription_id
from notifybot.statuses import StatusLabels

LABELS = StatusLabels()


def sub(channel: str, *events: str, when: dict[str, Any] | None = None,
        unless: dict[str, Any] | None = None, id: str | None = None) -> Subscription:
    def compiled(table: dict[str, Any] | None, key: str) -> Any:
        return compile_conditions(table or {}, labels=LABELS, where="s.toml", key=key)

    return Subscription(channel=channel, id=id or f"{channel}:{','.join(events)}",
                        events=events, when=compiled(when, "when"),
                        unless=compiled(unless, "unless"))


def event(name: str, **fields: Any) -> Event:
    return parse_event({"event": name, "user_email": "sam@example-hire.co.uk", **fields})


BOOKED = event("job.status.updated", data={"DEPOT": 1},
               changes={"STATUS": {"from": "1", "to": "2"}})


@pytest.mark.parametrize(
    ("pattern", "name", "expected"),
    [
        ("*", "job.status.updated", True),
        ("*", "contact.created", True),
        ("job.*", "job.status.updated", True),
        ("job.*", "job.created", True),
        ("job.*", "invoice.status.updated", False),
        ("job.*", "job", False),
        ("*.status.updated", "invoice.status.updated", True),
        ("*.status.updated", "job.updated", False),
        ("job.?pdated", "job.updated", True),
        ("job.[cu]*", "job.created", True),
        ("job.[!c]*", "job.created", False),
        ("job.created", "job.created", True),
        ("job.created", "job.created.extra", False),
        ("job.created", "Job.Created", False),
    ],
)
def test_event_patterns_are_globs(pattern: str, name: str, expected: bool) -> None:
    index = SubscriptionIndex([sub("c", pattern)], LABELS)
    assert bool(index.match(event(name))) is expected


def test_any_pattern_of_a_subscription_is_enough() -> None:
    index = SubscriptionIndex([sub("c", "invoice.*", "job.created")], LABELS)
    assert index.match(event("job.created"))
    assert index.match(event("invoice.status.updated"))
    assert not index.match(event("job.updated"))


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        ({"changes.STATUS.to": "Booked"}, True),
        ({"changes.STATUS.to": "Booked", "data.DEPOT": 1}, True),
        ({"changes.STATUS.to": "Booked", "data.DEPOT": 2}, False),
        ({"changes.STATUS.to": "Cancelled"}, False),
    ],
)
def test_when_needs_every_condition(when: dict[str, Any], expected: bool) -> None:
    index = SubscriptionIndex([sub("c", "job.*", when=when)], LABELS)
    assert bool(index.match(BOOKED)) is expected


@pytest.mark.parametrize(
    ("unless", "expected"),
    [
        ({"user_email": "bot@example.com"}, True),
        ({"user_email": "sam@example-hire.co.uk"}, False),
        ({"user_email": "bot@example.com", "data.DEPOT": 1}, False),
        ({"data.DEPOT": 2, "changes.STATUS.to": "Cancelled"}, True),
    ],
)
def test_unless_any_condition_vetoes(unless: dict[str, Any], expected: bool) -> None:
    index = SubscriptionIndex([sub("c", "job.*", unless=unless)], LABELS)
    assert bool(index.match(BOOKED)) is expected


def test_matches_come_in_configuration_order_whatever_the_index() -> None:
    subs = [sub("a", "*"), sub("b", "job.status.updated"), sub("c", "job.*"),
            sub("d", "job.status.updated"), sub("e", "invoice.*")]
    index = SubscriptionIndex(subs, LABELS)
    assert [s.channel for s in index.match(BOOKED)] == ["a", "b", "c", "d"]


def test_a_subscription_matches_once_even_if_several_patterns_fit() -> None:
    index = SubscriptionIndex([sub("a", "job.*", "*", "job.status.updated")], LABELS)
    assert len(index.match(BOOKED)) == 1


def test_exact_subscription_listing_a_name_twice_matches_once() -> None:
    index = SubscriptionIndex([sub("a", "job.created", "job.created")], LABELS)
    assert len(index.match(event("job.created"))) == 1


def test_exact_patterns_are_indexed_by_name() -> None:
    exact, other = sub("a", "job.created"), sub("b", "invoice.status.updated")
    index = SubscriptionIndex([exact, other], LABELS)
    assert index._find_candidates("job.created") == (exact,)
    assert index._find_candidates("job.updated") == ()


def test_glob_patterns_are_candidates_only_when_they_fit() -> None:
    exact, glob, everything = sub("a", "job.created"), sub("b", "job.*"), sub("c", "*")
    index = SubscriptionIndex([everything, exact, glob], LABELS)
    assert index._find_candidates("job.created") == (everything, exact, glob)
    assert index._find_candidates("invoice.status.updated") == (everything,)


def test_match_and_explain_agree() -> None:
    subs = [sub("a", "job.*", when={"changes.STATUS.to": "Booked"}),
            sub("b", "job.*", unless={"data.DEPOT": 1}),
            sub("c", "invoice.*"), sub("d", "*")]
    index = SubscriptionIndex(subs, LABELS)
    explained = [v.subscription for v in index.explain(BOOKED) if v.matched]
    assert explained == index.match(BOOKED)


def test_explain_gives_a_verdict_for_every_subscription_in_order() -> None:
    subs = [sub("a", "invoice.*"), sub("b", "job.*")]
    verdicts = SubscriptionIndex(subs, LABELS).explain(BOOKED)
    assert [(v.subscription.channel, v.matched) for v in verdicts] == [("a", False), ("b", True)]


@pytest.mark.parametrize(
    ("subscription", "reason"),
    [
        (sub("a", "invoice.*", "contact.*"),
         "event 'job.status.updated' is not in [invoice.*, contact.*]"),
        (sub("a", "job.*", when={"data.DEPOT": 2}), "when: data.DEPOT eq 2 does not hold (the event has 1)"),
        (sub("a", "job.*", when={"data.VENUE": {"exists": True}}),
         "when: data.VENUE exists does not hold (not in the event)"),
        (sub("a", "job.*", unless={"user_email": "sam@example-hire.co.uk"}),
         "unless: user_email eq 'sam@example-hire.co.uk' holds"
         " (the event has 'sam@example-hire.co.uk')"),
        (sub("a", "job.*"), "matched"),
    ],
)
def test_explain_reasons(subscription: Subscription, reason: str) -> None:
    verdict = evaluate(subscription, BOOKED, LABELS)
    assert verdict.reason == reason
    assert verdict.matched is (reason == "matched")


def test_explain_names_the_first_failing_when() -> None:
    subscription = sub("a", "job.*", when={"data.DEPOT": 1, "changes.STATUS.to": "Returned"})
    assert "changes.STATUS.to" in evaluate(subscription, BOOKED, LABELS).reason


def test_subscription_id_is_the_name_when_given() -> None:
    assert subscription_id({"name": "paid-invoices", "events": ["invoice.*"]}) == "paid-invoices"


def test_subscription_id_ignores_key_order() -> None:
    one = {"events": ["job.*"], "when": {"data.DEPOT": 1, "user_email": "a@b"}}
    two = {"when": {"user_email": "a@b", "data.DEPOT": 1}, "events": ["job.*"]}
    assert subscription_id(one) == subscription_id(two)


def test_subscription_id_is_stable_across_runs() -> None:
    definition = {"events": ["invoice.status.updated"], "when": {"changes.STATUS.to": "Paid"}}
    first = subscription_id(definition)
    assert first == subscription_id(dict(definition))
    assert len(first) == 12
    assert all(ch in "0123456789abcdef" for ch in first)


@pytest.mark.parametrize(
    "other",
    [
        {"events": ["job.created"]},
        {"events": ["job.*"], "when": {"data.DEPOT": 2}},
        {"events": ["job.*"], "unless": {"data.DEPOT": 1}},
        {"events": ["job.*"], "template": "short"},
    ],
)
def test_subscription_id_differs_when_the_definition_does(other: dict[str, Any]) -> None:
    assert subscription_id({"events": ["job.*"], "when": {"data.DEPOT": 1}}) != subscription_id(
        other)


def test_empty_index_matches_nothing() -> None:
    index = SubscriptionIndex([], LABELS)
    assert index.match(BOOKED) == []
    assert index.explain(BOOKED) == []


def test_unknown_event_still_reaches_catch_all() -> None:
    index = SubscriptionIndex([sub("log", "*"), sub("jobs", "job.*")], LABELS)
    assert [s.channel for s in index.match(parse_event({"data": {}}))] == ["log"]


# -- the equality index: subscriptions filed under the value a `when` equality needs ---------

# Values that HireHop's loose typing makes compare equal in odd ways: numbers in strings,
# status codes and labels either way round, truthy flags, prefixed ids, nested tables.
TRICKY = [0, 1, 2, 2.0, 2.5, "0", "1", "2", " 2 ", "2.0", "true", "True", "false", True, False,
          "Booked", "booked ", "Paid", "Approved", "j12", 12, "12", "nan", "inf", "", "x",
          None, {"a": 1}, [1, 2]]
LITERALS = [v for v in TRICKY if v is not None and not isinstance(v, dict | list)
            and v not in ("Paid", "Approved", "booked ")]  # config rejects labels of no table
PATHS = ["data.DEPOT", "changes.STATUS.to", "data.STATUS", "user_email", "job"]
NAMES = ["job.status.updated", "job.created", "invoice.status.updated", "contact.created"]


def random_subscription(rng: random.Random, n: int) -> Subscription:
    when: dict[str, Any] = {}
    for path in rng.sample(PATHS, rng.randint(1, 2)):
        shape = rng.random()
        if shape < 0.5:
            when[path] = rng.choice(LITERALS)
        elif shape < 0.8:
            when[path] = rng.sample(LITERALS, rng.randint(1, 3))
        else:
            when[path] = {rng.choice(["ne", "gt", "exists", "matches"]): rng.choice(
                [True, 1, "^2"])}
    events = rng.choice([["job.*"], ["*"], ["job.status.updated"], ["invoice.status.updated"],
                         ["job.created", "contact.created"]])
    unless = {"data.DEPOT": rng.choice(LITERALS)} if rng.random() < 0.2 else None
    try:
        return sub(f"c{n}", *events, when=when, unless=unless, id=f"s{n}")
    except ConfigError:  # e.g. `matches` given a number: not a subscription anyone can write
        return sub(f"c{n}", *events, id=f"s{n}")


def random_event(rng: random.Random) -> Event:
    fields: dict[str, Any] = {"data": {}}
    for path in PATHS:
        if rng.random() < 0.85:
            value = rng.choice(TRICKY)
            parts = path.split(".")
            if parts[0] == "changes":
                fields["changes"] = {"STATUS": {"from": "1", "to": value}}
            elif parts[0] == "data":
                fields["data"][parts[1]] = value
            else:
                fields[path] = value
    return parse_event({"event": rng.choice(NAMES), **fields})


def test_indexed_matching_agrees_with_trying_every_subscription() -> None:
    rng = random.Random(20260528)
    subs = [random_subscription(rng, n) for n in range(300)]
    index = SubscriptionIndex(subs, LABELS)
    matched = 0
    for _ in range(400):  # ~28,000 matches among 120,000 pairs: enough variety, 1/4 of the time
        ev = random_event(rng)
        expected = [s for s in subs if evaluate(s, ev, LABELS).matched]
        assert index.match(ev) == expected, ev.payload
        matched += len(expected)
    assert matched > 1000  # the cases exercise matches, not only misses


def test_equalities_file_subscriptions_under_the_values_they_need() -> None:
    depot7 = sub("a", "job.status.updated", when={"data.DEPOT": 7})
    booked = sub("b", "job.*", when={"changes.STATUS.to": "Booked"})
    both = sub("c", "job.*", when={"changes.STATUS.to": ["Booked", 3], "data.DEPOT": [7, 8]})
    plain = sub("d", "job.*", when={"data.DEPOT": {"gt": 3}})
    index = SubscriptionIndex([depot7, booked, both, plain], LABELS)
    plan = index._plan("job.status.updated")
    assert plan.unkeyed == (plain,)
    groups = {tuple(path for path, _ in paths): by_key for paths, by_key, _, _ in plan.keyed}
    assert groups[("data.DEPOT",)] == {(("num", 7.0),): (depot7,)}
    assert groups[("changes.STATUS.to",)] == {(("code", 2),): (booked,)}
    assert set(groups[("changes.STATUS.to", "data.DEPOT")]) == {
        (("code", c), ("num", d)) for c in (2, 3) for d in (7.0, 8.0)}
    assert index.match(BOOKED) == [booked]
    at_depot_7 = event("job.status.updated", data={"DEPOT": "7"},
                       changes={"STATUS": {"from": 1, "to": "booked"}})
    assert index.match(at_depot_7) == [depot7, booked, both, plain]


def test_long_in_lists_file_a_subscription_under_fewer_paths() -> None:
    many = sub("a", "job.created", when={"data.DEPOT": list(range(100)), "user_email": "x@y"})
    index = SubscriptionIndex([many], LABELS)
    ((paths, _, _, _),) = index._plan("job.created").keyed
    assert [path for path, _ in paths] == ["user_email"]
    assert index.match(event("job.created", data={"DEPOT": 42}, user_email="x@y")) == [many]


def test_a_boolean_in_the_event_is_tried_against_every_equality() -> None:
    flagged = sub("a", "job.created", when={"data.URGENT": 1})
    index = SubscriptionIndex([flagged], LABELS)
    assert index.match(event("job.created", data={"URGENT": True})) == [flagged]
    assert index.match(event("job.created", data={"URGENT": "1"})) == [flagged]
    assert index.match(event("job.created", data={"URGENT": False})) == []
    assert index.match(event("job.created", data={})) == []
