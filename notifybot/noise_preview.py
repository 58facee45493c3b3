"""What ``notifybot preview`` says about noise control: silence, hours, fold or digest.

Preview sends nothing and writes nothing; the silences are read from the
database when there is one.
"""

from __future__ import annotations

from pathlib import Path

from . import noise
from .config import Config
from .events import Event
from .silences import Silence, compile_silence
from .store import open_store
from .threads import thread_key


async def noise_notes(config: Config, event: Event, now: float) -> dict[tuple[str, str], str]:
    """For ``preview``: what noise control would do to each matching message, in words.

    The silences are read from the database when there is one; preview sends nothing
    and writes nothing.
    """
    silences: list[Silence] = []
    problem = ""
    url = config.server.database
    if _has_database(url):
        try:
            store = open_store(url)
            try:
                silences = await store.list_silences(now)
            finally:
                await store.close()
        except Exception as exc:  # no database yet, unreachable, not migrated: say so
            problem = f" (silences not checked: {type(exc).__name__})"
    labels = config.hirehop.labels
    compiled = [compile_silence(s, labels) for s in silences]
    notes = {}
    for sub in config.index.match(event):
        decision = noise.decide(config.channels[sub.channel], sub, event,
                                thread_key=thread_key(event), now=now,
                                tz=config.server.timezone, silences=compiled, labels=labels)
        words = decision.reason or "sent at once"
        notes[(sub.channel, sub.id)] = f"{decision.treatment}: {words}{problem}"
    return notes


def _has_database(url: str) -> bool:
    """PostgreSQL is assumed there; a SQLite file must exist (preview never creates one)."""
    return not url.startswith("sqlite:///") or Path(url.removeprefix("sqlite:///")).exists()
