"""Which subscriptions hear about an event: globs, when/unless, order, reasons, ids."""

from __future__ import annotations

from typing import Any

import pytest

from notifybot.conditions import compile_conditions
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
