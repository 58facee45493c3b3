"""The silences in force, as routing sees them: read from the database, cached briefly.

Every instance reads the shared ``silences`` table, so a silence made or expired
on the command line takes effect everywhere with no reload: by default the table
is read once per routing batch (one indexed query, cheap beside the batch's
commit), so an event routed after ``silence expire`` returns is not muted.
``ttl`` can let a busy router reuse what it read for a moment. A silence that
reaches its own expiry stops muting at that very instant:
:meth:`~notifybot.silences.CompiledSilence.mutes` checks the time.
"""

from __future__ import annotations

import logging
from typing import Protocol

from .errors import ConfigError
from .silences import CompiledSilence, Silence, compile_silence
from .statuses import StatusLabels

log = logging.getLogger("notifybot.silences")


class SilenceReader(Protocol):
    async def list_silences(self, now: float, *, expired: bool = False) -> list[Silence]:
        """Silences not expired at ``now``, oldest first."""
        ...


class LiveSilences:
    """Silences not yet expired, compiled with the running status labels."""

    def __init__(self, store: SilenceReader, *, ttl: float = 0.0) -> None:
        self.store = store
        self.ttl = ttl
        self._cached: tuple[CompiledSilence, ...] = ()
        self._read_at: float | None = None
        self._labels: StatusLabels | None = None
        self._warned: set[int] = set()

    async def current(self, now: float, labels: StatusLabels) -> tuple[CompiledSilence, ...]:
        """The silences to check at ``now`` (the pipeline's clock); re-read unless younger than ``ttl``.

        A clock that went backwards makes the cache stale too.
        """
        fresh = (self._read_at is not None and 0 <= now - self._read_at < self.ttl
                 and labels is self._labels)
        if not fresh:
            found = await self.store.list_silences(now)
            compiled = (self._compile(silence, labels) for silence in found)
            self._cached = tuple(c for c in compiled if c is not None)
            self._read_at, self._labels = now, labels
        return self._cached

    def _compile(self, silence: Silence, labels: StatusLabels) -> CompiledSilence | None:
        try:
            return compile_silence(silence, labels)
        except ConfigError as exc:  # e.g. a status label the configuration no longer has
            if silence.id not in self._warned:
                self._warned.add(silence.id)
                log.warning("silence %s mutes nothing: %s", silence.id, exc.message)
            return None
