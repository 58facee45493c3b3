"""Silences: which channel and which messages they mute, when, and how they are validated."""

from __future__ import annotations

from typing import Any

import pytest

from notifybot.editing import assignments
from notifybot.errors import ConfigError
from notifybot.events import parse_event
from notifybot.silences import (
    Silence,
    compile_silence,
    describe_silence,
    mutes,
    muting,
    new_silence,
)
from notifybot.statuses import StatusLabels

LABELS = StatusLabels()
NOW = 1_800_000_000.0


def job_event(job: int = 15471, **fields: Any) -> Any:
    return parse_event({"event": "job.status.updated", "job": job,
                        "user_email": "sam@example.com",
                        "data": {"NUMBER": job, "STATUS": 2, **fields},
                        "changes": {"STATUS": {"from": 1, "to": 2}}})


def silence(channel: str = "ops", when: dict[str, Any] | None = None,
            unless: dict[str, Any] | None = None, *, silence_id: int = 1,
            starts: float = NOW - 60, expires: float = NOW + 3600) -> Silence:
    return Silence(silence_id, channel, when or {}, unless or {}, "maintenance", "sam", starts,
                   expires)


def test_a_silence_mutes_only_its_channel_and_matching_job() -> None:
    quiet = silence("ops", {"job": 15471})
    assert mutes(quiet, "ops", job_event(15471), LABELS, NOW)
    assert not mutes(quiet, "accounts", job_event(15471), LABELS, NOW)
    assert not mutes(quiet, "ops", job_event(15472), LABELS, NOW)


def test_a_star_silence_mutes_every_channel() -> None:
    quiet = silence("*", {"changes.STATUS.to": "Booked"})
    assert mutes(quiet, "ops", job_event(), LABELS, NOW)
    assert mutes(quiet, "accounts", job_event(), LABELS, NOW)


def test_unless_vetoes_a_silence() -> None:
    quiet = silence("ops", {}, {"user_email": "sam@example.com"})
    assert not mutes(quiet, "ops", job_event(), LABELS, NOW)
    assert mutes(silence("ops", {}, {"user_email": "jo@example.com"}), "ops", job_event(),
                 LABELS, NOW)


@pytest.mark.parametrize(("now", "muted"), [
    (NOW - 61, False), (NOW - 60, True), (NOW + 3599, True), (NOW + 3600, False)])
def test_a_silence_mutes_from_its_start_until_it_expires(now: float, muted: bool) -> None:
    quiet = silence("ops")
    assert mutes(quiet, "ops", job_event(), LABELS, now) is muted
    assert quiet.state(now) == ("active" if muted else "pending" if now < NOW else "expired")


def test_the_oldest_muting_silence_is_named() -> None:
    found = [compile_silence(s, LABELS) for s in (
        silence("*", silence_id=7), silence("ops", {"job": 1}, silence_id=2),
        silence("ops", silence_id=3))]
    chosen = muting(found, "ops", job_event(), LABELS, NOW)
    assert chosen is not None and chosen.id == 3
    assert muting(found, "ops", job_event(), LABELS, NOW + 7200) is None


def test_new_silence_reads_conditions_as_subscribe_does() -> None:
    when = assignments(["job=15471", "changes.STATUS.to=[\"Booked\", \"Prepped\"]"], "--when")
    made = new_silence("ops", when, {}, duration=7200, comment=" deploy ", created_by="sam",
                       now=NOW, channels=["ops"], labels=LABELS)
    assert made.when == {"job": 15471, "changes.STATUS.to": ["Booked", "Prepped"]}
    assert (made.starts_at, made.expires_at, made.comment) == (NOW, NOW + 7200, "deploy")
    assert describe_silence(made, LABELS) == (
        "job eq 15471 and changes.STATUS.to in ['Booked', 'Prepped']")
    assert mutes(made, "ops", job_event(), LABELS, NOW)


@pytest.mark.parametrize(("channel", "when", "comment", "message"), [
    ("nope", {}, "why", "no channel 'nope'"),
    ("ops", {}, "  ", "--comment"),
    ("ops", {"changes.STATUS.to": "Bookd"}, "why", "--when.changes.STATUS.to"),
    ("ops", {"job": {"bigger": 3}}, "why", "unknown operator 'bigger'"),
])
def test_a_bad_silence_is_refused_with_the_reason(channel: str, when: dict[str, Any],
                                                  comment: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        new_silence(channel, when, {}, duration=60, comment=comment, created_by="sam", now=NOW,
                    channels=["ops"], labels=LABELS)


def test_an_empty_silence_mutes_everything_on_its_channel() -> None:
    assert describe_silence(silence("ops"), LABELS) == "every message"
    assert mutes(silence("ops"), "ops", parse_event({"event": "contact.created"}), LABELS, NOW)
