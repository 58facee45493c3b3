"""The channel kinds, one module each, and how to build a sender from a channel's options."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

from .base import STANDALONE, Receipt, SendContext, Sender

__all__ = ["KINDS", "STANDALONE", "ChannelKind", "Receipt", "SendContext", "Sender", "build_sender"]


@dataclass(frozen=True)
class ChannelKind:
    """A channel type: the module that implements it and the option keys it accepts."""

    module: str
    keys: frozenset[str]


KINDS: Mapping[str, ChannelKind] = {
    "console": ChannelKind("notifybot.channels.console", frozenset({"pace"})),
    "slack": ChannelKind(
        "notifybot.channels.slack",
        frozenset({"token", "channel", "base_url", "timeout", "pace"}),
    ),
    "telegram": ChannelKind(
        "notifybot.channels.telegram",
        frozenset({"token", "chat_id", "base_url", "timeout", "pace", "bot_rate"}),
    ),
    "email": ChannelKind(
        "notifybot.channels.email",
        frozenset({"host", "port", "security", "username", "password", "from", "to",
                   "timeout", "ca_file", "pace", "connections"}),
    ),
}


def build_sender(name: str, options: Mapping[str, Any]) -> Sender:
    """A sender for one configured channel; raises ConfigError on a bad option."""
    # Imported on demand so that a console-only setup never loads the chat SDKs.
    module = importlib.import_module(KINDS[options["type"]].module)
    return cast(Sender, module.build(name, options))
