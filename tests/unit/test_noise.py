"""Noise control at routing: silences first, then digests, folds and active hours."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from notifybot.config import ActiveHours, ChannelConfig
from notifybot.events import parse_event
from notifybot.matching import Digest, Subscription
from notifybot.noise import Decision, Treatment, decide
from notifybot.silences import CompiledSilence, Silence, compile_silence
from notifybot.statuses import StatusLabels

LONDON = ZoneInfo("Europe/London")
LABELS = StatusLabels()
OPS = ChannelConfig("ops", "console", {}, ())
OFFICE = ActiveHours(time(8), time(18), frozenset(range(5)))
SUB = Subscription("ops", "s1", ("job.*",))
EVENT = parse_event({"event": "job.updated", "job": 15471, "data": {"NUMBER": 15471}})


def local(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=LONDON).timestamp()


MONDAY_NOON = local("2026-11-30 12:00")


def quiet(channel: str = "ops", **when: Any) -> CompiledSilence:
    return compile_silence(Silence(4, channel, when, {}, "deploy", "sam", MONDAY_NOON - 1,
                                   MONDAY_NOON + 3600), LABELS)


def decided(channel: ChannelConfig = OPS, sub: Subscription = SUB, *, now: float = MONDAY_NOON,
            silences: tuple[CompiledSilence, ...] = (), thread_key: str | None = "42:15471"
            ) -> Decision:
    return decide(channel, sub, EVENT, thread_key=thread_key, now=now, tz=LONDON,
                  silences=silences, labels=LABELS)


def test_a_message_with_no_noise_control_goes_now() -> None:
    assert decided() == Decision(Treatment.NOW)


def test_a_silence_wins_over_everything_and_is_named() -> None:
    sub = replace(SUB, digest=Digest(every=3600))
    decision = decided(replace(OPS, hours=OFFICE), sub, silences=(quiet(job=15471),))
    assert decision.treatment is Treatment.SILENCED
    assert decision.silence is not None and decision.silence.id == 4
    assert decision.reason.startswith("silenced by silence 4 (sam: deploy) until Mon 30 Nov 13:00")
    assert decided(silences=(quiet("other"),)).treatment is Treatment.NOW
    assert decided(silences=(quiet(job=1),)).treatment is Treatment.NOW


def test_outside_active_hours_a_message_waits_for_the_opening() -> None:
    saturday = local("2026-12-05 10:00")
    decision = decided(replace(OPS, hours=OFFICE), now=saturday)
    assert decision.treatment is Treatment.HELD
    assert decision.not_before == local("2026-12-07 08:00")
    assert "held until Mon 07 Dec 08:00:00 GMT" in decision.reason
    assert decided(replace(OPS, hours=OFFICE)).treatment is Treatment.NOW


def test_a_digest_gathers_by_window_and_is_sent_at_its_end() -> None:
    decision = decided(sub=replace(SUB, digest=Digest(at=(time(17, 30),))))
    assert decision.treatment is Treatment.DIGESTED
    assert decision.gather == f"digest:ops:s1:{local('2026-11-29 17:30'):.0f}"
    assert decision.not_before == local("2026-11-30 17:30")
    later = decided(sub=replace(SUB, digest=Digest(at=(time(17, 30),))),
                    now=local("2026-11-30 17:29:59"))
    assert later.gather == decision.gather
    late = decide(OPS, replace(SUB, digest=Digest(at=(time(17, 30),))), EVENT, thread_key=None,
                  now=local("2026-11-30 17:31"), received_at=local("2026-11-30 17:29"), tz=LONDON,
                  silences=(), labels=LABELS)
    assert late.gather == decision.gather  # routed after a restart: still its own window


def test_a_digest_ending_at_night_waits_for_the_opening() -> None:
    channel = replace(OPS, hours=OFFICE)
    decision = decided(channel, replace(SUB, digest=Digest(at=(time(20),))))
    assert decision.not_before == local("2026-12-01 08:00")


def test_group_wait_folds_one_jobs_updates() -> None:
    sub = replace(SUB, group_wait=30.0)
    decision = decided(sub=sub)
    assert decision.treatment is Treatment.FOLDED
    assert (decision.gather, decision.not_before) == ("fold:ops:s1:42:15471", MONDAY_NOON + 30)
    assert decided(sub=sub, thread_key=None).treatment is Treatment.NOW  # no job: nothing to fold
    evening = decided(replace(OPS, hours=OFFICE), sub, now=local("2026-11-30 17:59:50"))
    assert evening.not_before == local("2026-12-01 08:00")  # the night's updates fold too
