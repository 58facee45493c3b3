"""Noise control at routing: is a message silenced, folded, digested or held? Pure.

For one matched (channel, subscription, event), in this order (design §7):

1. a live silence that mutes it: the delivery is recorded ``silenced``, naming it;
2. ``digest``: it gathers into the window's delivery, sent when the window ends;
3. ``group_wait``: it gathers with the same job's other updates, sent when the
   wait is over (counted from the first of them);
4. active ``hours``: outside them, it waits for the next opening.

A gathered delivery that would be sent outside active hours waits for the
opening too, so a night's updates fold into one morning message.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from zoneinfo import ZoneInfo

from .config import ChannelConfig, Config
from .durations import format_duration
from .events import Event
from .matching import Subscription
from .schedule import describe_hours, digest_window, next_opening
from .silences import CompiledSilence, Silence, muting
from .statuses import StatusLabels
from .store.base import DeliveryKind, DeliveryStatus, NewDelivery
from .threads import thread_key as job_thread


class Treatment(StrEnum):
    """What noise control does to a message (also the ``notifybot_noise`` metric's label)."""

    NOW = "now"  # sent as soon as the outbox can
    SILENCED = "silenced"  # recorded, not sent
    HELD = "held"  # waits for the channel's active hours
    FOLDED = "folded"  # gathered with one job's burst
    DIGESTED = "digested"  # gathered into a digest window


@dataclass(frozen=True)
class Decision:
    """How one message is routed: ``gather`` key and ``not_before`` for the store, and why."""

    treatment: Treatment
    not_before: float | None = None
    gather: str | None = None
    silence: Silence | None = None
    reason: str = ""


def decide(channel: ChannelConfig, sub: Subscription, event: Event, *, thread_key: str | None,
           now: float, tz: ZoneInfo, silences: Sequence[CompiledSilence],
           labels: StatusLabels, received_at: float | None = None) -> Decision:
    """The treatment of one matched message routed at ``now``.

    A digest window is chosen by ``received_at`` (when the event was accepted), so an
    event routed late, after a restart, still belongs to the window it came in.
    """
    silence = muting(silences, channel.name, event, labels, now)
    if silence is not None:
        return Decision(Treatment.SILENCED, silence=silence, reason=silence_note(silence, tz))
    if sub.digest is not None:
        start, end = digest_window(sub.digest, now if received_at is None else received_at, tz)
        send_at = _open_at(channel, end, tz)
        return Decision(Treatment.DIGESTED, send_at, f"digest:{channel.name}:{sub.id}:{start:.0f}",
                        reason=f"digest of {_clock(start, tz)}-{_clock(end, tz)}, sent at "
                               f"{_clock(send_at, tz)}")
    if sub.group_wait is not None and thread_key is not None:
        send_at = _open_at(channel, now + sub.group_wait, tz)
        return Decision(Treatment.FOLDED, send_at, f"fold:{channel.name}:{sub.id}:{thread_key}",
                        reason=f"folded with updates of the same job within "
                               f"{format_duration(sub.group_wait)}, sent at {_clock(send_at, tz)}")
    if channel.hours is not None:
        opens = next_opening(channel.hours, tz, now)
        if opens is not None:
            return Decision(Treatment.HELD, opens,
                            reason=f"outside active hours ({describe_hours(channel.hours)}); "
                                   f"held until {_clock(opens, tz)}")
    return Decision(Treatment.NOW)


def silence_note(silence: Silence, tz: ZoneInfo) -> str:
    """The note a silenced delivery carries: which silence, by whom, why, until when."""
    return (f"silenced by silence {silence.id} ({silence.created_by}: {silence.comment}) "
            f"until {_clock(silence.expires_at, tz)}")


def _open_at(channel: ChannelConfig, at: float, tz: ZoneInfo) -> float:
    """``at``, or the next opening of the channel's active hours after it."""
    if channel.hours is None:
        return at
    opens = next_opening(channel.hours, tz, at)
    return at if opens is None else opens


def _clock(epoch: float, tz: ZoneInfo) -> str:
    return datetime.fromtimestamp(epoch, tz).strftime("%a %d %b %H:%M:%S %Z")


def apply(deliveries: Sequence[NewDelivery], event: Event, config: Config, *, now: float,
          received_at: float, silences: Sequence[CompiledSilence]) -> list[NewDelivery]:
    """Each planned delivery as noise control makes it (:func:`treatment_of` says how).

    A silenced one keeps its rendered payload (a replay sends it); a gathered one
    has an empty payload, rendered when sent from all the events it gathered. A
    delivery born dead (a template error) is left as it is: it needs fixing, not quiet.
    """
    subs: Mapping[tuple[str, str], Subscription] = {
        (sub.channel, sub.id): sub for sub in config.index.all}
    tz, labels = config.server.timezone, config.hirehop.labels
    result = []
    for new in deliveries:
        sub = subs.get((new.channel, new.subscription))
        channel = config.channels.get(new.channel)
        if new.error is not None or new.kind is not DeliveryKind.MESSAGE or sub is None \
                or channel is None:
            result.append(new)
            continue
        decision = decide(channel, sub, event, thread_key=job_thread(event), now=now, tz=tz,
                          silences=silences, labels=labels, received_at=received_at)
        result.append(_treated(new, decision))
    return result


def _treated(new: NewDelivery, decision: Decision) -> NewDelivery:
    note = decision.reason or None
    match decision.treatment:
        case Treatment.SILENCED:
            return replace(new, status=DeliveryStatus.SILENCED, note=note)
        case Treatment.HELD:
            return replace(new, not_before=decision.not_before, note=note)
        case Treatment.FOLDED:
            return replace(new, payload={}, gather=decision.gather, not_before=decision.not_before,
                           note=note, kind=DeliveryKind.FOLDED)
        case Treatment.DIGESTED:  # many jobs: no thread, no root to update
            return replace(new, payload={}, gather=decision.gather, not_before=decision.not_before,
                           note=note, thread_key=None, update=None, broadcast=False,
                           kind=DeliveryKind.DIGEST)
    return new


def treatment_of(new: NewDelivery) -> Treatment:
    """What noise control did to a delivery :func:`apply` returned (for the metrics)."""
    if new.status is DeliveryStatus.SILENCED:
        return Treatment.SILENCED
    if new.gather is not None:
        return Treatment.DIGESTED if new.gather.startswith("digest:") else Treatment.FOLDED
    return Treatment.HELD if new.not_before is not None else Treatment.NOW
