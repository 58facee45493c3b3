"""The wake-up callbacks a store calls (:meth:`~notifybot.store.base.Store.listen`)."""

from __future__ import annotations

import logging
from collections.abc import Callable

log = logging.getLogger("notifybot.store")


class Wakes:
    """Callbacks each told a word ("events", "deliveries"); one that raises is logged
    and silences none of the others, nor fails the write that called them."""

    def __init__(self) -> None:
        self._callbacks: list[Callable[[str], None]] = []

    def add(self, wake: Callable[[str], None]) -> None:
        self._callbacks.append(wake)

    def clear(self) -> None:
        self._callbacks.clear()

    def __call__(self, word: str) -> None:
        for wake in list(self._callbacks):
            try:
                wake(word)
            except Exception:
                log.exception("wake callback failed")
