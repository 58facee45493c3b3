"""The second model's keys (design §2, §7): threads, hours, fallback, people, folds, digests."""

from __future__ import annotations

from datetime import time
from pathlib import Path

import pytest

from notifybot.durations import format_duration, parse_duration
from notifybot.errors import ConfigError

from .test_config import HEAD, error_for, load_text

SLACK = '[channels.ops]\ntype = "slack"\ntoken = "xoxb-1"\nchannel = "C1"\n'
MAIL = ('[channels.oncall]\ntype = "email"\nhost = "127.0.0.1"\nsecurity = "none"\n'
        'from = "bot@example.com"\nto = ["oncall@example.com"]\n')
LOG = '[channels.log]\ntype = "console"\n'


@pytest.mark.parametrize(("value", "seconds"), [
    (90, 90.0), (1.5, 1.5), ("30s", 30.0), ("15m", 900.0), ("2h", 7200.0), ("1d", 86400.0),
    ("1h30m", 5400.0), ("45", 45.0), (" 2H ", 7200.0),
])
def test_durations_read_as_people_write_them(value: object, seconds: float) -> None:
    assert parse_duration(value, key="k") == seconds


@pytest.mark.parametrize("value", ["soon", "30 minutes", "", True, None, [30], "-5s", "m"])
def test_a_bad_duration_names_its_key(value: object) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_duration(value, key="channels.ops.escalate_after")
    assert caught.value.key == "channels.ops.escalate_after"


def test_a_duration_below_its_minimum_says_the_minimum() -> None:
    with pytest.raises(ConfigError, match="at least 1m"):
        parse_duration("30s", key="k", minimum=60)
    assert format_duration(5400) == "1h30m"


def test_chat_and_email_channels_thread_per_job_by_default(tmp_path: Path) -> None:
    config = load_text(tmp_path, HEAD + SLACK + MAIL + LOG)
    assert {n: c.thread for n, c in config.channels.items()} == {
        "ops": "job", "oncall": "job", "log": "none"}
    ops = config.channels["ops"]
    assert ops.thread_max_age == 30 * 86400 and ops.broadcast == "none"
    assert "thread" not in ops.options  # the sender's own options stay its own


def test_every_conversation_key_is_read(tmp_path: Path) -> None:
    config = load_text(tmp_path, HEAD + MAIL + SLACK + '''thread = "none"
thread_max_age = "7d"
broadcast = "status"
hours = "22:00-06:00"
days = ["mon", "Tuesday"]
fallback = "oncall"
escalate_after = "15m"
''')
    ops = config.channels["ops"]
    assert (ops.thread, ops.thread_max_age, ops.broadcast) == ("none", 7 * 86400, "status")
    assert ops.hours is not None
    assert (ops.hours.start, ops.hours.end, ops.hours.days) == (time(22), time(6), frozenset({0, 1}))
    assert (ops.fallback, ops.escalate_after) == ("oncall", 900)


@pytest.mark.parametrize(("extra", "key", "words"), [
    ('thread = "issue"\n', "channels.ops.thread", '"job"'),
    ('broadcast = "all"\n', "channels.ops.broadcast", '"status"'),
    ('hours = "8-18"\n', "channels.ops.hours", "HH:MM-HH:MM"),
    ('hours = "08:00-08:00"\n', "channels.ops.hours", "before"),
    ('days = ["someday"]\n', "channels.ops.days", "list of days"),
    ('fallback = "ops"\n', "channels.ops.fallback", "its own fallback"),
    ('fallback = "pager"\n', "channels.ops.fallback", "no channel 'pager'"),
    ('escalate_after = "15m"\n', "channels.ops.escalate_after", "needs fallback"),
    ('escalate_after = "soon"\nfallback = "log"\n', "channels.ops.escalate_after", "duration"),
    ('thread_max_age = "10s"\n', "channels.ops.thread_max_age", "at least"),
])
def test_bad_conversation_keys_are_named(tmp_path: Path, extra: str, key: str, words: str) -> None:
    error = error_for(tmp_path, HEAD + LOG + SLACK + extra)
    assert error.key == key
    assert words in error.message


def test_a_console_channel_cannot_thread(tmp_path: Path) -> None:
    assert error_for(tmp_path, HEAD + LOG + 'thread = "job"\n').key == "channels.log.thread"


PEOPLE = '''[people.sam]
names = ["Sam Taylor", "S. Taylor"]
slack = "U0123ABCD"
telegram = "@sam_t"
email = "sam@example.com"
'''


def test_people_and_mentions(tmp_path: Path) -> None:
    config = load_text(tmp_path, HEAD + PEOPLE + SLACK + '''
  [[channels.ops.subscriptions]]
  events = ["job.*"]
  mention = ["manager", "sam", "sam"]
  group_wait = "30s"
''')
    sam = config.people["sam"]
    assert (sam.names, sam.slack, sam.telegram, sam.email) == (
        ("Sam Taylor", "S. Taylor"), "U0123ABCD", "sam_t", "sam@example.com")
    sub = config.channels["ops"].subscriptions[0]
    assert sub.mention == ("manager", "sam") and sub.group_wait == 30 and sub.digest is None


@pytest.mark.parametrize(("text", "key", "words"), [
    ('[people.sam]\nslack = "sam"\n', "people.sam.slack", "user id"),
    ('[people.sam]\ntelegram = "a b"\n', "people.sam.telegram", "username"),
    ('[people.sam]\nemail = "nope"\n', "people.sam.email", "email address"),
    ('[people.sam]\nphone = "1"\n', "people.sam.phone", "unknown key"),
    ('[people.manager]\nnames = ["X"]\n', "people.manager", "not 'manager'"),
])
def test_bad_people_are_named(tmp_path: Path, text: str, key: str, words: str) -> None:
    error = error_for(tmp_path, HEAD + text)
    assert error.key == key and words in error.message


def test_an_unknown_person_in_mention_is_an_error(tmp_path: Path) -> None:
    error = error_for(tmp_path, HEAD + PEOPLE + SLACK + '''
  [[channels.ops.subscriptions]]
  events = ["job.*"]
  mention = ["alex"]
''')
    assert error.key == "channels.ops.subscriptions[0].mention"
    assert "unknown person 'alex'; known: manager, sam" in error.message


@pytest.mark.parametrize(("digest", "every", "at"), [
    ('{ every = "1h" }', 3600.0, ()),
    ('{ at = "17:30" }', None, (time(17, 30),)),
    ('{ at = ["17:30", "09:00"] }', None, (time(9), time(17, 30))),
])
def test_digests(tmp_path: Path, digest: str, every: float | None, at: tuple[time, ...]) -> None:
    config = load_text(tmp_path, HEAD + LOG + f'''
  [[channels.log.subscriptions]]
  events = ["invoice.*"]
  digest = {digest}
''')
    found = config.channels["log"].subscriptions[0].digest
    assert found is not None and (found.every, found.at) == (every, at)


@pytest.mark.parametrize(("digest", "key"), [
    ('{ every = "10s" }', "digest.every"),
    ('{ at = "5pm" }', "digest.at"),
    ('{ at = [] }', "digest.at"),
    ('{ hourly = true }', "digest"),
    ('"1h"', "digest"),
])
def test_bad_digests_are_named(tmp_path: Path, digest: str, key: str) -> None:
    error = error_for(tmp_path, HEAD + LOG + f'''
  [[channels.log.subscriptions]]
  events = ["invoice.*"]
  digest = {digest}
''')
    assert error.key == f"channels.log.subscriptions[0].{key}"


def test_group_wait_and_digest_together_is_an_error(tmp_path: Path) -> None:
    error = error_for(tmp_path, HEAD + LOG + '''
  [[channels.log.subscriptions]]
  events = ["invoice.*"]
  digest = { every = "1h" }
  group_wait = "30s"
''')
    assert "not both" in error.message
