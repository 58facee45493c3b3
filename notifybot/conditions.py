"""``when`` / ``unless`` conditions: compiled once from TOML, evaluated purely against events.

A condition is a dotted path into the event (``data.COMPANY``, ``changes.STATUS.to``,
``user_email``) and a test. In TOML the test is a literal (equality), a list (any
of) or a table of operators (``eq ne in not_in gt gte lt lte matches exists changed``).

Two HireHop-specific rules make conditions read as people write them:

* numbers in strings compare as numbers (``"2" == 2.0``);
* a path ending in ``STATUS`` compares by code *or* label, either way round, with
  the labels of the event's entity (``job.*`` or ``invoice.*``).
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from re import _parser as re_parser  # type: ignore[attr-defined]  # to read a pattern's shape
from typing import Any

import re2  # type: ignore[import-untyped]

from .errors import ConfigError
from .events import Event, safe_text
from .statuses import StatusLabels, StatusTable, to_code

OPERATORS = ("eq", "ne", "in", "not_in", "gt", "gte", "lt", "lte", "matches", "exists", "changed")
MISSING = object()
_ORDER: Mapping[str, Callable[[Any, Any], bool]] = {
    "gt": operator.gt,
    "gte": operator.ge,
    "lt": operator.lt,
    "lte": operator.le,
}


_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False  # RE2 would print each refused pattern to stderr itself


@dataclass(frozen=True)
class Regex:
    """A ``matches`` pattern compiled by RE2: linear-time search, whatever the text."""

    pattern: str
    compiled: Any = field(compare=False, repr=False)

    @classmethod
    def compile(cls, pattern: str) -> Regex:
        """Raise ValueError saying why RE2 refuses the pattern."""
        try:
            return cls(pattern, re2.compile(pattern, _RE2_OPTIONS))
        except re2.error as exc:
            detail = exc.args[0].decode(errors="replace") if exc.args and isinstance(
                exc.args[0], bytes) else str(exc)
            raise ValueError(detail) from None

    def search(self, text: str) -> bool:
        try:
            return self.compiled.search(text) is not None
        except UnicodeEncodeError:  # a lone surrogate (ingest removes them; old events)
            return self.compiled.search(safe_text(text)) is not None


@dataclass(frozen=True)
class Condition:
    """One test on one path. ``describe()`` says it in words for ``preview``."""

    path: str
    op: str
    value: Any

    def describe(self) -> str:
        if self.op in ("exists", "changed"):
            return f"{self.path} {self.op if self.value else 'not ' + self.op}"
        if isinstance(self.value, Regex):
            return f"{self.path} matches {self.value.pattern!r}"
        if isinstance(self.value, tuple):
            return f"{self.path} {self.op} {list(self.value)!r}"
        return f"{self.path} {self.op} {self.value!r}"

    def holds(self, event: Event, labels: StatusLabels) -> bool:
        """Whether the event satisfies this condition."""
        if self.op == "changed":
            change = event.change(_field_name(self.path))
            table = labels.for_event(event.name) if _field_name(self.path) == "STATUS" else None
            changed = change is not None and not _equal(change.before, change.after, table)
            return changed == bool(self.value)
        actual = lookup(event.payload, self.path)
        if self.op == "exists":
            return (actual is not MISSING and actual is not None) == bool(self.value)
        if actual is MISSING or actual is None:
            return self.op in ("ne", "not_in")
        table = _status_table(self.path, event, labels)
        return _compare(self.op, actual, self.value, table)


def lookup(payload: Mapping[str, Any], path: str) -> Any:
    """Follow a dotted path through nested tables; a missing step gives a sentinel."""
    current: Any = payload
    for part in path.split("."):
        if isinstance(current, Mapping) and part in current:
            current = current[part]
        elif isinstance(current, list) and part.isdigit() and int(part) < len(current):
            current = current[int(part)]
        else:
            return MISSING
    return current


def compile_conditions(
    table: object, *, labels: StatusLabels, where: str, key: str
) -> tuple[Condition, ...]:
    """Turn a ``when``/``unless`` TOML table into conditions, or raise a ConfigError naming the key."""
    if not isinstance(table, Mapping):
        raise ConfigError("must be a table of PATH = VALUE", where=where, key=key)
    conditions: list[Condition] = []
    for path, spec in table.items():
        path_key = f"{key}.{path}"
        if not isinstance(path, str) or not re.fullmatch(r"[A-Za-z0-9_\-]+(\.[A-Za-z0-9_\-]+)*", path):
            raise ConfigError("a path is dotted names such as data.COMPANY", where=where, key=path_key)
        tabled = isinstance(spec, Mapping)
        for op, value in _tests(spec, where, path_key):
            op_key = f"{path_key}.{op}" if tabled else path_key
            conditions.append(_condition(path, op, value, labels, where, op_key))
    return tuple(conditions)


def _tests(spec: object, where: str, key: str) -> list[tuple[str, Any]]:
    if isinstance(spec, Mapping):
        if not spec:
            raise ConfigError("an operator table needs at least one operator", where=where, key=key)
        unknown = [op for op in spec if op not in OPERATORS]
        if unknown:
            raise ConfigError(
                f"unknown operator {unknown[0]!r}; use one of {', '.join(OPERATORS)}",
                where=where,
                key=key,
            )
        return list(spec.items())
    if isinstance(spec, list):
        return [("in", spec)]
    return [("eq", spec)]


def _condition(
    path: str, op: str, value: Any, labels: StatusLabels, where: str, key: str
) -> Condition:
    if op in ("exists", "changed"):
        if not isinstance(value, bool):
            raise ConfigError(f"{op} takes true or false", where=where, key=key)
        return Condition(path, op, value)
    if op in ("in", "not_in"):
        if not isinstance(value, list) or not value:
            raise ConfigError(f"{op} takes a non-empty list", where=where, key=key)
        for item in value:
            _check_literal(path, item, labels, where, key)
        return Condition(path, op, tuple(value))
    if op == "matches":
        if not isinstance(value, str):
            raise ConfigError("matches takes a regular expression string", where=where, key=key)
        try:
            return Condition(path, op, Regex.compile(value))
        except ValueError as exc:
            raise ConfigError(
                f"invalid regular expression: {exc} (RE2 syntax: no backreferences or "
                "lookaround)", where=where, key=key) from None
    _check_literal(path, value, labels, where, key)
    return Condition(path, op, value)


def _check_literal(path: str, value: Any, labels: StatusLabels, where: str, key: str) -> None:
    """Reject values that can never match, so a typo is an error rather than silence."""
    if isinstance(value, Mapping | list):
        raise ConfigError("expected a string, number or boolean", where=where, key=key)
    if _is_status_path(path) and to_code(value) is None:
        known = {lbl.casefold() for t in (labels.job, labels.invoice) for lbl in t.labels.values()}
        if str(value).strip().casefold() not in known:
            raise ConfigError(
                f"{value!r} is not a known status label; use a code or one of the labels "
                "(job_status / invoice_status in [hirehop] can add your own)",
                where=where,
                key=key,
            )


def _compare(op: str, actual: Any, expected: Any, table: StatusTable | None) -> bool:
    if op == "matches":
        if not isinstance(expected, Regex):
            return False
        texts = [_as_text(actual)] + ([table.label(actual)] if table is not None else [])
        return any(expected.search(text) for text in texts)
    if op in ("in", "not_in"):
        found = any(_equal(actual, item, table) for item in expected)
        return found if op == "in" else not found
    if op in ("eq", "ne"):
        same = _equal(actual, expected, table)
        return same if op == "eq" else not same
    left, right = _ordered(actual, expected, table)
    try:
        return _ORDER[op](left, right)
    except TypeError:
        return False


def _equal(actual: Any, expected: Any, table: StatusTable | None) -> bool:
    if table is not None:
        a, b = table.code_for(actual), table.code_for(expected)
        if a is not None and b is not None:
            return a == b
    if isinstance(actual, bool) or isinstance(expected, bool):
        return _truth(actual) is not None and _truth(actual) == _truth(expected)
    a_num, b_num = _number(actual), _number(expected)
    if a_num is not None and b_num is not None:
        return a_num == b_num
    return _as_text(actual) == _as_text(expected)


def equality_keys(condition: Condition, table: StatusTable | None) -> frozenset[Any] | None:
    """Keys under which an ``eq``/``in`` condition can be indexed, or None if it cannot.

    Exact with :func:`value_keys` (see :func:`_equal`): the condition holds for a
    value if and only if one of these keys is among that value's keys. Booleans
    follow truthiness rules ("1", 1, "true") that no key captures, so a boolean
    condition is not indexed and a boolean value has no keys (None).
    """
    if condition.op == "eq":
        items: tuple[Any, ...] = (condition.value,)
    elif condition.op == "in":
        items = condition.value
    else:
        return None
    keys = [_key(item, table) for item in items]
    return None if any(k is None for k in keys) else frozenset(keys)


def value_keys(actual: Any, table: StatusTable | None) -> frozenset[Any] | None:
    """The keys of a looked-up value; None when it cannot be narrowed down (a boolean)."""
    if actual is MISSING or actual is None:
        return frozenset()  # eq / in never hold for a missing value
    if isinstance(actual, bool):
        return None
    keys: set[Any] = {("text", _as_text(actual))}
    number = _number(actual)
    if number is not None:
        keys.add(("num", number))
    code = table.code_for(actual) if table is not None else None
    if code is not None:
        keys.add(("code", code))
    return frozenset(keys)


def _key(expected: Any, table: StatusTable | None) -> Any:
    if isinstance(expected, bool):
        return None
    code = table.code_for(expected) if table is not None else None
    if code is not None:
        return ("code", code)
    number = _number(expected)
    if number is not None:
        return None if number != number else ("num", number)  # NaN equals nothing
    return ("text", _as_text(expected))


def status_table(path: str, event_name: str, labels: StatusLabels) -> StatusTable | None:
    """The status table a condition on ``path`` compares with, for events of this name."""
    return labels.for_event(event_name) if _is_status_path(path) else None


def _ordered(actual: Any, expected: Any, table: StatusTable | None) -> tuple[Any, Any]:
    if table is not None:
        a, b = table.code_for(actual), table.code_for(expected)
        if a is not None and b is not None:
            return a, b
    a_num, b_num = _number(actual), _number(expected)
    if a_num is not None and b_num is not None:
        return a_num, b_num
    if b_num is not None:
        return None, b_num  # a number threshold never holds for text such as "" (TypeError)
    return _as_text(actual), _as_text(expected)


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        if isinstance(value, int | float):
            return float(value)
        if isinstance(value, str):
            return float(value.strip())
    except (ValueError, OverflowError):  # a 400-digit integer is text, not a number
        return None
    return None


def _truth(value: Any) -> bool | None:
    """HireHop's flags come as true/false, 1/0 or "1"/"0"; anything else is no boolean."""
    if isinstance(value, bool):
        return value
    number = _number(value)
    if number in (0.0, 1.0):
        return number == 1.0
    text = _as_text(value).strip().casefold()
    return {"true": True, "false": False}.get(text)


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def _field_name(path: str) -> str:
    parts = path.split(".")
    if parts[0] == "changes" and len(parts) > 1:
        return parts[1]
    return parts[-1]


def _is_status_path(path: str) -> bool:
    parts = path.split(".")
    return "STATUS" in parts[-2:]


def _status_table(path: str, event: Event, labels: StatusLabels) -> StatusTable | None:
    return labels.for_event(event.name) if _is_status_path(path) else None


def pattern_warnings(conditions: Iterable[Condition]) -> list[str]:
    """Warnings for ``matches`` patterns that a backtracking engine would take exponential
    time on (a repeat inside a repeat, such as ``(a+)+$``).

    notifybot matches with RE2, so they cannot freeze it; the warning is for the person
    who may reuse the pattern elsewhere, or expects it to mean what it says.
    """
    return [f"{c.path} matches {c.value.pattern!r}: a repeat inside a repeat is catastrophic "
            "for backtracking regex engines (harmless here: RE2 runs in linear time); "
            "consider a simpler pattern"
            for c in conditions
            if isinstance(c.value, Regex) and _nested_repeat(c.value.pattern)]


def _nested_repeat(pattern: str) -> bool:
    try:
        parsed = re_parser.parse(pattern)
    except (re.error, RecursionError, OverflowError):
        return False  # a pattern Python cannot read is none of this check's business
    return _has_nested_repeat(parsed, inside_repeat=False)


_REPEATS = frozenset({"MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"})


def _has_nested_repeat(items: Any, *, inside_repeat: bool) -> bool:
    for op, arg in items:
        name = str(op)
        if name in _REPEATS:
            _, high, body = arg
            repeats = high is re_parser.MAXREPEAT or high > 1
            if (repeats and inside_repeat) or _has_nested_repeat(
                    body, inside_repeat=inside_repeat or repeats):
                return True
        elif any(_has_nested_repeat(child, inside_repeat=inside_repeat)
                 for child in _children(name, arg)):
            return True
    return False


def _children(name: str, arg: Any) -> list[Any]:
    """The sub-patterns of a group, an alternation or a lookaround."""
    if name == "SUBPATTERN":
        return [arg[-1]]
    if name == "BRANCH":
        return list(arg[1])
    if name in ("ASSERT", "ASSERT_NOT"):
        return [arg[1]]
    return []
