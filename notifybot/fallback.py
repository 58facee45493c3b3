"""The fallback hop: what a channel's ``fallback`` hears when a message cannot get through.

Two occasions (design §7): a delivery *died* on the channel (``fallback``), or
it has been pending longer than ``escalate_after`` (``escalation``). Either
way the fallback channel gets the original message, rendered for its own kind,
with a notice on top naming the channel and the reason:

    could not reach Slack #ops: invalid_auth
    this message has been waiting 15 minutes for Slack #ops and is still being retried
    (last error: connection refused)

This module is pure: the notice text and the payload with the notice added.
The notice is built from configuration values and a delivery error's reason,
and escaped per kind like any payload text.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any

from .channels import Sender
from .config import ChannelConfig, Config
from .durations import format_duration
from .formatting import (
    EMAIL_SUBJECT_LIMIT,
    SLACK_SECTION_LIMIT,
    SLACK_TEXT_LIMIT,
    SUMMARY_LIMIT,
    TELEGRAM_LIMIT,
    cut_escaped,
    mrkdwn_escape,
    one_line,
    truncate,
)
from .store import Delivery, NewDelivery
from .store.base import DeliveryKind
from .visible_html import cut_visible

# A fallback or escalation never causes another hop: one hop only, no loops.
HOP_KINDS = frozenset({DeliveryKind.FALLBACK, DeliveryKind.ESCALATION})
_KINDS = {"slack": "Slack", "telegram": "Telegram", "email": "email", "console": "console"}
_SHOWN_RECIPIENTS = 3
REASON_LIMIT = 300


def destination_label(channel: ChannelConfig) -> str:
    """The channel as a person knows it: ``Slack #ops``, ``Telegram chat -100…``, ``email to a@b``.

    The configured channel name is added when the destination does not show it,
    e.g. ``Slack C0123ABCD (channel ops)``. Never a secret: only ``channel``,
    ``chat_id`` and ``to`` are read.
    """
    options = channel.options
    kind = _KINDS.get(channel.type, channel.type)
    if channel.type == "slack":
        label = f"{kind} {options.get('channel', '')}".strip()
    elif channel.type == "telegram":
        label = f"{kind} chat {options.get('chat_id', '')}".strip()
    elif channel.type == "email":
        label = f"{kind} to {_recipients(options.get('to'))}".strip()
    else:
        label = f"{kind} {channel.name}"
    if channel.name.casefold() not in label.casefold():
        label += f" (channel {channel.name})"
    return label


def _recipients(value: Any) -> str:
    addresses = [value] if isinstance(value, str) else [str(v) for v in value or []]
    shown = ", ".join(addresses[:_SHOWN_RECIPIENTS])
    more = len(addresses) - _SHOWN_RECIPIENTS
    return f"{shown} and {more} more" if more > 0 else shown


def failure_notice(channel: ChannelConfig, reason: str) -> str:
    """``could not reach Slack #ops: invalid_auth``: a delivery there died for ``reason``."""
    return f"could not reach {destination_label(channel)}: {_reason(channel, reason)}"


def waiting_notice(channel: ChannelConfig, waited: float, reason: str | None) -> str:
    """A delivery to ``channel`` has waited ``waited`` seconds and is still being retried."""
    text = (f"this message has been waiting {_minutes(waited)} for "
            f"{destination_label(channel)} and is still being retried")
    return f"{text} (last error: {_reason(channel, reason)})" if reason else text


def _reason(channel: ChannelConfig, reason: str) -> str:
    # Channels prefix their reasons with their kind ("slack: invalid_auth"); the
    # notice names the kind already.
    text = one_line(reason).removeprefix(f"{channel.type}: ")
    return truncate(text, REASON_LIMIT) or "unknown error"


def _minutes(seconds: float) -> str:
    if seconds < 60:
        count = max(0, int(seconds))
        return f"{count} second{'' if count == 1 else 's'}"
    count = int(seconds // 60)
    return f"{count} minute{'' if count == 1 else 's'}"


def describe(config: Config, channel: str) -> list[str]:
    """What happens when ``channel`` cannot take a message, in words (for ``preview``)."""
    chan = config.channels[channel]
    if chan.fallback is None:
        return []
    target = config.channels[chan.fallback]
    where = f"{target.name} ({destination_label(target)})"
    lines = [f"if it dies: sent to {where} too, headed \"{failure_notice(chan, 'REASON')}\""]
    if chan.escalate_after is not None:
        notice = waiting_notice(chan, chan.escalate_after, None)
        lines.append(f"if still unsent after {format_duration(chan.escalate_after)}: "
                     f"sent to {where} once, headed \"{notice}\"")
    return lines


def hop(origin: Delivery, kind: DeliveryKind, target: str, sender: Sender,
        payload: Mapping[str, Any]) -> NewDelivery:
    """The delivery to ``target`` (the fallback channel) that speaks for ``origin``.

    Its key, ``fallback:{id}`` or ``escalation:{id}``, is UNIQUE: two instances, a
    crash or a replay of ``origin`` never make a second one. It stands alone (no
    thread) and carries the same events, so ``deliveries`` and ``replay --event``
    find it beside its origin.
    """
    return NewDelivery(
        channel=target, subscription=origin.subscription, destination=sender.destination,
        pace=sender.pace, payload=dict(payload), key=f"{kind}:{origin.id}",
        event_ids=origin.event_ids or (origin.event_id,), kind=kind, origin_id=origin.id,
        note=f"{kind} for delivery {origin.id} on {origin.channel}")


def with_notice(kind: str, payload: Mapping[str, Any], notice: str) -> dict[str, Any]:
    """``payload`` (formatted for ``kind``) with ``notice`` on top, escaped for that kind.

    A new dict; the message itself is kept whole, cut only where the kind's
    length limit leaves no room for both.
    """
    add = _PREFIXERS.get(kind)
    return add(dict(payload), notice) if add is not None else dict(payload)


def _slack(payload: dict[str, Any], notice: str) -> dict[str, Any]:
    escaped = mrkdwn_escape(notice)
    block = {"type": "section",
             "text": {"type": "mrkdwn", "text": cut_escaped(f"*{escaped}*", SLACK_SECTION_LIMIT)}}
    payload["blocks"] = [block, *payload.get("blocks", [])]
    text = f"{escaped}\n{payload.get('text', '')}"
    payload["text"] = cut_escaped(text, SLACK_TEXT_LIMIT)
    return payload


def _telegram(payload: dict[str, Any], notice: str) -> dict[str, Any]:
    head = f"<i>{html.escape(notice)}</i>\n\n"
    payload["text"] = cut_visible(head + str(payload.get("text", "")), TELEGRAM_LIMIT)
    return payload


def _email(payload: dict[str, Any], notice: str) -> dict[str, Any]:
    subject = f"{notice} — {payload.get('subject', '')}"
    payload["subject"] = truncate(one_line(subject), EMAIL_SUBJECT_LIMIT)
    payload["text"] = f"{notice}\n\n{payload.get('text', '')}"
    paragraph = f"<p><strong>{html.escape(notice)}</strong></p>"
    html_part = str(payload.get("html", ""))
    start = html_part.find("<body>")
    payload["html"] = (html_part[:start + 6] + paragraph + html_part[start + 6:] if start != -1
                       else paragraph + html_part)
    return payload


def _console(payload: dict[str, Any], notice: str) -> dict[str, Any]:
    payload["text"] = truncate(one_line(f"{notice} — {payload.get('text', '')}"), SUMMARY_LIMIT)
    return payload


_PREFIXERS = {"slack": _slack, "telegram": _telegram, "email": _email, "console": _console}
