"""when/unless conditions: compiled from TOML tables, evaluated against events."""

from __future__ import annotations

from typing import Any

import pytest

from notifybot.conditions import OPERATORS, compile_conditions, lookup, pattern_warnings
from notifybot.errors import ConfigError
from notifybot.events import parse_event
from notifybot.statuses import StatusLabels

LABELS = StatusLabels()
RENAMED = StatusLabels.with_overrides(job={3: "Prepared"}, invoice={3: "Settled"})

JOB = {
    "event": "job.status.updated",
    "user_email": "sam@example-hire.co.uk",
    "job": 15471,
    "data": {
        "COMPANY": "Northern Lights Touring Ltd",
        "DEPOT": "1",
        "STATUS": 2,
        "MONEY": "",
        "NET": "840.00",
        "CUSTOM_FIELDS": {"sharepoint_project": {"value": 1}},
        "TAGS": ["backline", "tour"],
    },
    "changes": {"STATUS": {"from": "1", "to": "2"}},
}
INVOICE = {
    "event": "invoice.status.updated",
    "data": {"NUMBER": "OT-INV-12245", "STATUS": 2},
    "changes": {"STATUS": {"from": "0", "to": "2"}},
}
CONTACT = {"event": "contact.updated", "data": {"STATUS": 2}, "changes": {"STATUS": {"from": 1, "to": 2}}}


def holds(path: str, spec: Any, payload: dict[str, Any] = JOB,
          labels: StatusLabels = LABELS) -> bool:
    conditions = compile_conditions({path: spec}, labels=labels, where="s.toml", key="when")
    event = parse_event(payload)
    return all(c.holds(event, labels) for c in conditions)


@pytest.mark.parametrize(
    ("path", "spec", "expected"),
    [
        # literal = equality
        ("user_email", "sam@example-hire.co.uk", True),
        ("user_email", "SAM@example-hire.co.uk", False),
        ("data.COMPANY", "Northern Lights Touring Ltd", True),
        ("data.COMPANY", "Northern Lights", False),
        # list = any of
        ("data.COMPANY", ["Acme", "Northern Lights Touring Ltd"], True),
        ("data.COMPANY", ["Acme", "Bean & Leaf"], False),
        # dotted paths, nested and into lists
        ("data.CUSTOM_FIELDS.sharepoint_project.value", 1, True),
        ("data.CUSTOM_FIELDS.sharepoint_project.value", 2, False),
        ("data.TAGS.1", "tour", True),
        ("data.TAGS.5", "tour", False),
        ("data.NOPE.deeper", "x", False),
        # numbers in strings compare as numbers
        ("data.DEPOT", 1, True),
        ("data.DEPOT", 1.0, True),
        ("data.DEPOT", "1.0", True),
        ("changes.STATUS.to", 2.0, True),
        ("data.NET", 840, True),
        ("data.NET", "840", True),
        ("data.DEPOT", 2, False),
    ],
)
def test_literal_and_list_conditions(path: str, spec: Any, expected: bool) -> None:
    assert holds(path, spec) is expected


@pytest.mark.parametrize(
    ("path", "spec", "expected"),
    [
        ("data.DEPOT", {"eq": 1}, True),
        ("data.DEPOT", {"eq": 2}, False),
        ("data.DEPOT", {"ne": 2}, True),
        ("data.DEPOT", {"ne": "1"}, False),
        ("data.MISSING", {"ne": 2}, True),
        ("data.MISSING", {"eq": 2}, False),
        ("data.DEPOT", {"in": [1, 3]}, True),
        ("data.DEPOT", {"in": [2, 3]}, False),
        ("data.DEPOT", {"not_in": [2, 3]}, True),
        ("data.DEPOT", {"not_in": ["1", 3]}, False),
        ("data.MISSING", {"not_in": [2]}, True),
        ("data.MISSING", {"in": [2]}, False),
        ("data.NET", {"gt": 100}, True),
        ("data.NET", {"gt": 840}, False),
        ("data.NET", {"gte": 840}, True),
        ("data.NET", {"gte": 840.01}, False),
        ("data.NET", {"lt": 1000}, True),
        ("data.NET", {"lt": 840}, False),
        ("data.NET", {"lte": "840"}, True),
        ("data.NET", {"lte": 839.99}, False),
        ("data.NET", {"gt": 100, "lt": 1000}, True),
        ("data.NET", {"gt": 100, "lt": 500}, False),
        ("data.MISSING", {"gt": 0}, False),
        ("data.MISSING", {"lt": 0}, False),
        ("data.COMPANY", {"matches": "^Northern"}, True),
        ("data.COMPANY", {"matches": "(?i)touring"}, True),
        ("data.COMPANY", {"matches": "^Lights"}, False),
        ("data.MISSING", {"matches": ".*"}, False),
        ("data.NET", {"matches": r"^\d+\.00$"}, True),
        ("data.COMPANY", {"exists": True}, True),
        ("data.COMPANY", {"exists": False}, False),
        ("data.MISSING", {"exists": False}, True),
        ("data.MISSING", {"exists": True}, False),
        ("data.MONEY", {"exists": True}, True),
        ("changes.STATUS", {"changed": True}, True),
        ("data.STATUS", {"changed": True}, True),
        ("changes.STATUS.to", {"changed": True}, True),
        ("changes.STATUS", {"changed": False}, False),
        ("data.COMPANY", {"changed": True}, False),
        ("data.COMPANY", {"changed": False}, True),
    ],
)
def test_operator_table(path: str, spec: dict[str, Any], expected: bool) -> None:
    assert holds(path, spec) is expected


def test_every_documented_operator_is_covered() -> None:
    assert set(OPERATORS) == {"eq", "ne", "in", "not_in", "gt", "gte", "lt", "lte", "matches",
                              "exists", "changed"}


def test_ordering_of_text_is_text_order() -> None:
    assert holds("data.COMPANY", {"gt": "Acme"}) is True
    assert holds("data.COMPANY", {"lt": "Acme"}) is False


@pytest.mark.parametrize(
    ("path", "spec"),
    [("data.COMPANY", {"gt": 5}), ("data.MONEY", {"lt": 100}), ("data.MONEY", {"lte": 0})],
)
def test_number_threshold_never_holds_for_non_numeric_text(path: str, spec: dict[str, Any]) -> None:
    # HireHop sends MONEY as "" (reference §6); "" must not count as "less than 100".
    assert holds(path, spec) is False


def test_null_value_counts_as_missing() -> None:
    payload = {**JOB, "data": {"COMPANY": None}}
    assert holds("data.COMPANY", {"exists": True}, payload) is False
    assert holds("data.COMPANY", {"ne": "x"}, payload) is True
    assert holds("data.COMPANY", "x", payload) is False


def test_changed_sees_a_same_value_change_as_unchanged() -> None:
    payload = {**JOB, "changes": {"VENUE": {"from": "Hall", "to": "Hall"}}}
    assert holds("changes.VENUE", {"changed": True}, payload) is False


def test_changed_compares_numbers_in_strings_as_numbers() -> None:
    payload = {**JOB, "changes": {"STATUS": {"from": "2", "to": 2.0}}}
    assert holds("changes.STATUS", {"changed": True}, payload) is False


@pytest.mark.parametrize(
    ("payload", "path", "spec", "expected"),
    [
        # job events: code or label either way round
        (JOB, "changes.STATUS.to", "Booked", True),
        (JOB, "changes.STATUS.to", "booked", True),
        (JOB, "changes.STATUS.to", 2, True),
        (JOB, "changes.STATUS.to", "2", True),
        (JOB, "changes.STATUS.from", "Provisional", True),
        (JOB, "changes.STATUS.to", "Provisional", False),
        (JOB, "data.STATUS", "Booked", True),
        (JOB, "changes.STATUS.to", ["Cancelled", "Booked"], True),
        (JOB, "changes.STATUS.to", {"in": ["Dispatched", "Returned"]}, False),
        (JOB, "changes.STATUS.to", {"ne": "Cancelled"}, True),
        (JOB, "changes.STATUS.to", {"not_in": ["Booked"]}, False),
        (JOB, "changes.STATUS.to", {"gte": "Booked"}, True),
        (JOB, "changes.STATUS.to", {"gt": "Booked"}, False),
        (JOB, "changes.STATUS.to", {"lt": "Dispatched"}, True),
        ({**JOB, "changes": {"STATUS": {"from": "Provisional", "to": "Booked"}}},
         "changes.STATUS.to", 2, True),
        ({**JOB, "changes": {"STATUS": {"from": "1", "to": "Booked"}}},
         "changes.STATUS.to", "2", True),
        # invoice events use the invoice table
        (INVOICE, "changes.STATUS.to", "Approved", True),
        (INVOICE, "changes.STATUS.to", 2, True),
        (INVOICE, "changes.STATUS.from", "Draft", True),
        (INVOICE, "changes.STATUS.to", "Paid", False),
        (INVOICE, "changes.STATUS.to", "Booked", False),
        (INVOICE, "changes.STATUS.to", ["Approved", "Paid"], True),
        (JOB, "changes.STATUS.to", "Approved", False),
        # other events have no table: labels do not match codes
        (CONTACT, "changes.STATUS.to", "Booked", False),
        (CONTACT, "changes.STATUS.to", 2, True),
    ],
)
def test_status_paths_compare_by_code_or_label(
    payload: dict[str, Any], path: str, spec: Any, expected: bool
) -> None:
    assert holds(path, spec, payload) is expected


@pytest.mark.parametrize(
    ("payload", "spec", "expected"),
    [
        ({**JOB, "changes": {"STATUS": {"from": 2, "to": 3}}}, "Prepared", True),
        ({**JOB, "changes": {"STATUS": {"from": 2, "to": "3"}}}, "prepared", True),
        ({**JOB, "changes": {"STATUS": {"from": 2, "to": "Prepared"}}}, 3, True),
        ({**JOB, "changes": {"STATUS": {"from": 2, "to": 2}}}, "Prepared", False),
        ({**INVOICE, "changes": {"STATUS": {"from": 2, "to": 3}}}, "Settled", True),
    ],
)
def test_status_paths_use_overridden_labels(payload: dict[str, Any], spec: Any,
                                            expected: bool) -> None:
    assert holds("changes.STATUS.to", spec, payload, RENAMED) is expected


def test_overridden_away_label_is_a_compile_error() -> None:
    with pytest.raises(ConfigError, match="Prepped"):
        compile_conditions({"changes.STATUS.to": "Prepped"}, labels=RENAMED, where="s.toml",
                           key="when")


def test_lookup_follows_dotted_paths() -> None:
    assert lookup(JOB, "data.CUSTOM_FIELDS.sharepoint_project.value") == 1
    assert lookup(JOB, "changes.STATUS.from") == "1"


def test_several_paths_must_all_hold() -> None:
    table = {"data.DEPOT": 1, "changes.STATUS.to": "Cancelled"}
    conditions = compile_conditions(table, labels=LABELS, where="s.toml", key="when")
    event = parse_event(JOB)
    assert [c.holds(event, LABELS) for c in conditions] == [True, False]


@pytest.mark.parametrize(
    ("table", "key", "message"),
    [
        ({"data.X": {"like": 1}}, "when.data.X", "unknown operator 'like'"),
        ({"data.X": {}}, "when.data.X", "at least one operator"),
        ({"data.X": {"matches": "("}}, "when.data.X.matches", "invalid regular expression"),
        ({"data.X": {"matches": 5}}, "when.data.X.matches", "regular expression"),
        ({"changes.STATUS.to": "Boooked"}, "when.changes.STATUS.to", "'Boooked' is not a known"),
        ({"changes.STATUS.to": ["Booked", "Payd"]}, "when.changes.STATUS.to", "'Payd'"),
        ({"data.STATUS": {"in": ["Nope"]}}, "when.data.STATUS.in", "'Nope'"),
        ({"data.X": {"in": []}}, "when.data.X.in", "non-empty list"),
        ({"data.X": {"in": 3}}, "when.data.X.in", "non-empty list"),
        ({"data.X": {"exists": "yes"}}, "when.data.X.exists", "true or false"),
        ({"data.X": {"changed": 1}}, "when.data.X.changed", "true or false"),
        ({"data.X": {"eq": {"a": 1}}}, "when.data.X.eq", "string, number or boolean"),
        ({"data.X": [[1]]}, "when.data.X", "string, number or boolean"),
        ({"data X": 1}, "when.data X", "dotted names"),
        ({"data..X": 1}, "when.data..X", "dotted names"),
    ],
)
def test_compile_errors_name_the_key(table: dict[str, Any], key: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        compile_conditions(table, labels=LABELS, where="s.toml", key="when")
    assert caught.value.where == "s.toml"
    assert caught.value.key is not None and caught.value.key.startswith(key)
    assert message in caught.value.message


@pytest.mark.parametrize("table", ["Booked", ["a"], 3, None])
def test_non_table_is_a_compile_error(table: object) -> None:
    with pytest.raises(ConfigError, match="must be a table") as caught:
        compile_conditions(table, labels=LABELS, where="s.toml", key="channels.x.when")
    assert caught.value.key == "channels.x.when"


def test_empty_table_compiles_to_no_conditions() -> None:
    assert compile_conditions({}, labels=LABELS, where="s.toml", key="when") == ()


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"exists": True}, "data.X exists"),
        ({"exists": False}, "data.X not exists"),
        ({"changed": True}, "data.X changed"),
        ({"eq": "a"}, "data.X eq 'a'"),
        ({"gt": 3}, "data.X gt 3"),
    ],
)
def test_describe_says_the_condition_in_words(spec: dict[str, Any], expected: str) -> None:
    (condition,) = compile_conditions({"data.X": spec}, labels=LABELS, where="s", key="when")
    assert condition.describe() == expected


def test_a_huge_integer_compares_as_text_and_matching_does_not_fail() -> None:
    from notifybot.matching import Subscription, SubscriptionIndex

    labels = StatusLabels()
    huge = int("9" * 400)
    event = parse_event({"event": "job.updated", "data": {"DEPOT": huge}})
    narrow = Subscription("a", "a", ("job.*",), when=compile_conditions(
        {"user_email": "nobody@x", "data.DEPOT": 7}, labels=labels, where="", key="when"))
    catch_all = Subscription("b", "b", ("*",))
    assert [s.channel for s in SubscriptionIndex([narrow, catch_all], labels).match(event)] == ["b"]


# Regexes cannot freeze the server (issue 13): RE2 matches in linear time.

@pytest.mark.parametrize("pattern", ["(a+)+$", "(a*)*b", r"(\w+\s?)+$", "(a|aa)+$"])
def test_a_catastrophic_pattern_answers_at_once_on_a_hostile_value(pattern: str) -> None:
    import time
    hostile = {"event": "job.updated", "data": {"NOTE": "a" * 5000 + "!"}}
    started = time.perf_counter()
    assert holds("data.NOTE", {"matches": pattern}, hostile) is False
    assert time.perf_counter() - started < 0.5  # a backtracking engine takes ages here


def test_matches_reads_text_holding_a_lone_surrogate() -> None:
    assert holds("data.NOTE", {"matches": "^Sam"}, {"data": {"NOTE": "Sam\udc80"}}) is True


@pytest.mark.parametrize("pattern", [r"(a)\1", "(?=a)", "(?<!x)y"])
def test_patterns_re2_cannot_run_are_configuration_errors(pattern: str) -> None:
    with pytest.raises(ConfigError) as caught:
        compile_conditions({"data.X": {"matches": pattern}}, labels=LABELS, where="s.toml",
                           key="when")
    assert caught.value.key == "when.data.X.matches"
    assert "RE2" in str(caught.value)


def test_pattern_warnings_name_nested_repeats() -> None:
    table = {"data.A": {"matches": "(a+)+$"}, "data.B": {"matches": r"^\d+\.00$"},
             "data.C": {"matches": r"(\w+\s?)*!"}, "data.D": "plain"}
    conditions = compile_conditions(table, labels=LABELS, where="s.toml", key="when")
    warnings = pattern_warnings(conditions)
    assert len(warnings) == 2
    assert warnings[0].startswith("data.A matches '(a+)+$'")
    assert warnings[1].startswith("data.C matches")
