"""What ``notifybot check`` warns about: a configuration that is valid but probably not meant.

A typo in an event name or a condition's path is valid TOML and a valid
subscription; it just never matches, and nobody notices until a notification
fails to come. These checks compare the configuration with what HireHop is
known to send (docs/reference: the known events, the envelope, the ``data``
fields) and with the files it names. Pure apart from looking at folders.

A finding is an *error* where nothing could ever match (a broken glob), or
where the service could not run as written (a template that is not there);
anything else is a *warning*, which ``check --strict`` also fails on.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Iterator, Set
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Literal

from .conditions import Condition
from .config import Config
from .matching import Subscription

# The events HireHop is known to send (README "Templates"; the research notes).
KNOWN_EVENTS = ("job.status.updated", "job.updated", "job.created", "invoice.status.updated")
# Families whose members exist but whose exact names are not public: a name in one
# of them cannot be judged a typo.
OPEN_FAMILIES = ("contact.person.*", "contact.company.*", "contact.*")
ENVELOPE = ("time", "user_id", "user_name", "user_email", "company_id", "export_key", "event",
            "data", "changes", "job")
# ``data`` fields seen on job and invoice events (search_list rows, billing rows).
DATA_FIELDS = (
    "ID", "kind", "NUMBER", "COLOUR", "CLIENT", "CLIENT_REF", "COMPANY", "CREATE_DATE",
    "OUT_DATE", "JOB_DATE", "JOB_END", "RETURN_DATE", "JOB_NAME", "VENUE", "JOB_TYPE", "DEPOT",
    "STATUS", "CREATE_USER", "MANAGER", "MANAGER2", "MONEY", "CUSTOM_INDEX", "CUSTOM_FIELDS",
    "INVOICED", "NAME", "EMAIL", "TELEPHONE", "MOBILE", "ADDRESS", "CURRENCY", "PROJECT_ID",
    "PROJECT_NAME", "DETAILS", "NET", "TAX", "TAX_POINT", "DUE_DATE", "AUTH_USER", "JOB_ID",
    "MAIN_ID", "DESCRIPTION", "DATE", "OWING", "TOTAL", "id",
)
_CHANGE_ENDS = ("from", "to")
_EXTENDS = re.compile(r"""\{%-?\s*extends\s+["']([^"']+)["']""")


@dataclass(frozen=True)
class Finding:
    """One thing ``check`` reports: where (the dotted key or file) and what."""

    level: Literal["error", "warning"]
    key: str
    message: str

    def __str__(self) -> str:
        return f"{self.key}: {self.message}"


def lint(config: Config, templates: Set[str] = frozenset()) -> list[Finding]:
    """Every finding for ``config``; ``templates`` are the template file names available."""
    findings = [*_server(config)]
    for name, channel in config.channels.items():
        if not channel.subscriptions:
            findings.append(Finding("warning", f"channels.{name}",
                                    "has no subscriptions and will hear nothing"))
        for i, sub in enumerate(channel.subscriptions):
            key = f"channels.{name}.subscriptions[{i}]"
            findings += lint_subscription(sub, key)
            if sub.template and f"{sub.template}.j2" not in templates:
                findings.append(Finding(
                    "error", f"{key}.template",
                    f"no template {sub.template}.j2 in {_folders(config)}"))
    return findings


def lint_subscription(sub: Subscription, key: str) -> list[Finding]:
    """The findings about one subscription's events and conditions (``key`` names it)."""
    return [*_events(sub, key), *_conditions(sub.when, f"{key}.when"),
            *_conditions(sub.unless, f"{key}.unless")]


def _folders(config: Config) -> str:
    own = config.server.templates
    return f"{str(own)!r} or the shipped templates" if own else "the shipped templates"


# --- [server] ---------------------------------------------------------------------


def _server(config: Config) -> Iterator[Finding]:
    folder = config.server.templates
    if folder is not None and not folder.is_dir():
        yield Finding("warning", "server.templates",
                      f"folder {str(folder)!r} does not exist; the shipped templates are used")
    elif folder is not None:
        yield from _self_extending(folder)
    url = config.server.database
    if url.startswith("sqlite:///"):
        parent = Path(url.removeprefix("sqlite:///")).parent
        if not parent.is_dir():
            yield Finding("warning", "server.database",
                          f"folder {str(parent)!r} does not exist; create it before "
                          "`notifybot migrate` or `serve`")


def _self_extending(folder: Path) -> Iterator[Finding]:
    """A user ``default.j2`` that extends ``default.j2`` extends itself, not the shipped one."""
    for path in sorted(folder.glob("*.j2")):
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue  # reported by the template check, with the reason
        for number, line in enumerate(text.splitlines(), start=1):
            found = _EXTENDS.search(line)
            if found and found.group(1) == path.name:
                yield Finding("error", f"{path}: line {number}",
                              f"extends itself: your {path.name} hides the shipped one; name yours "
                              "differently, or copy the shipped template and edit the copy")


# --- events -----------------------------------------------------------------------


def _events(sub: Subscription, key: str) -> Iterator[Finding]:
    for pattern in sub.events:
        broken = glob_error(pattern)
        if broken:
            yield Finding("error", f"{key}.events",
                          f"{pattern!r}: {broken}, so it can never match an event")
        elif not _is_glob(pattern):
            if pattern not in KNOWN_EVENTS and not _in_open_family(pattern):
                yield Finding("warning", f"{key}.events",
                              f"{pattern!r} is not a known HireHop event{_suggest(pattern, KNOWN_EVENTS)}"
                              " (other events exist; ignore this if HireHop sends it)")
        elif not any(fnmatchcase(e, pattern) for e in KNOWN_EVENTS) \
                and not any(_families_meet(pattern, f) for f in OPEN_FAMILIES):
            yield Finding("warning", f"{key}.events",
                          f"{pattern!r} matches none of the known HireHop events "
                          f"({', '.join(KNOWN_EVENTS)})")


def glob_error(pattern: str) -> str | None:
    """Why ``pattern`` is a broken glob, or None. fnmatch would take ``job.[`` literally."""
    i = 0
    while i < len(pattern):
        if pattern[i] == "[":
            end = pattern.find("]", i + 2 if pattern[i + 1:i + 2] in ("!", "]") else i + 1)
            if end < 0:
                return "'[' is never closed with ']'"
            i = end
        elif pattern[i] == "]":
            return "']' without an opening '['"
        i += 1
    return None


def _is_glob(pattern: str) -> bool:
    return any(c in pattern for c in "*?[")


def _in_open_family(name: str) -> bool:
    return any(fnmatchcase(name, family) for family in OPEN_FAMILIES)


def _families_meet(pattern: str, family: str) -> bool:
    """Whether a glob could match a name of an open family (``contact.*`` and ``*.created``)."""
    prefix = family.removesuffix("*")
    literal = re.split(r"[*?\[]", pattern, maxsplit=1)[0]
    return literal.startswith(prefix) or prefix.startswith(literal)


# --- condition paths ----------------------------------------------------------------


def _conditions(conditions: Iterable[Condition], key: str) -> Iterator[Finding]:
    seen: set[str] = set()
    for condition in conditions:
        if condition.path in seen:
            continue
        seen.add(condition.path)
        problem = path_problem(condition.path)
        if problem:
            yield Finding("warning", f"{key}.{condition.path}", problem)


def path_problem(path: str) -> str | None:
    """Why no known event has ``path``, or None when some event may have it."""
    head, _, rest = path.partition(".")
    if head not in ENVELOPE:
        return f"no HireHop event has {head!r}{_suggest(head, ENVELOPE)}; the top-level keys are " \
               + ", ".join(ENVELOPE)
    if head in ("data", "changes") and not rest:
        return f"name a field, e.g. {head}.STATUS"
    if head not in ("data", "changes"):
        return f"{head!r} is a single value; it has no {rest!r}" if rest else None
    field, _, tail = rest.partition(".")
    hint = _field_typo(field)
    if hint:
        return hint
    if head == "changes" and tail and tail.split(".")[0] not in _CHANGE_ENDS:
        return f"a change has only 'from' and 'to' (changes.{field}.to){_suggest(tail, _CHANGE_ENDS)}"
    return None


def _field_typo(field: str) -> str | None:
    """A ``data`` field name close to a known one but not it (``COMAPNY``, ``company``)."""
    if field in DATA_FIELDS:
        return None
    upper = {f.upper(): f for f in DATA_FIELDS}
    if field.upper() in upper:
        return f"field names are upper case: {upper[field.upper()]!r}, not {field!r}"
    close = difflib.get_close_matches(field.upper(), list(upper), n=1, cutoff=0.8)
    if close:
        return f"no known field {field!r}; did you mean {upper[close[0]]!r}?"
    return None  # other fields exist (custom ones): not a typo we can tell


def _suggest(word: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(known), n=1, cutoff=0.75)
    return f" (did you mean {close[0]!r}?)" if close else ""
