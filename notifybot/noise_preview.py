"""What ``notifybot preview`` says about noise control: silence, hours, fold or digest.

Preview sends nothing and writes nothing; the silences are read from the
database when there is one.
"""

from __future__ import annotations

from pathlib import Path

from . import noise
from .channels import build_sender
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


async def thread_notes(config: Config, event: Event, now: float) -> dict[str, str]:
    """For ``preview``: per threaded channel, whether the message would start or join a thread.

    The threads are read from the database when there is one (nothing is written).
    """
    key = thread_key(event)
    threaded = [name for name, chan in config.channels.items() if chan.thread == "job"]
    if key is None or not threaded:
        return {name: "thread: none (the event names no job)" for name in threaded}
    job = key.rpartition(":job:")[2]
    roots: dict[str, bool] = {}
    problem = ""
    if _has_database(config.server.database):
        try:
            store = open_store(config.server.database)
            try:
                for name in threaded:
                    destination = build_sender(name, config.channels[name].options).destination
                    since = now - config.channels[name].thread_max_age
                    roots[name] = await store.thread_root(destination, key, since) is not None
            finally:
                await store.close()
        except Exception as exc:  # no database yet, unreachable, not migrated: say so
            problem = f" (threads not checked: {type(exc).__name__})"
    return {name: (f"thread: joins job {job}'s thread, as a reply" if roots.get(name)
                   else f"thread: starts job {job}'s thread{problem}") for name in threaded}


def _has_database(url: str) -> bool:
    """PostgreSQL is assumed there; a SQLite file must exist (preview never creates one)."""
    return not url.startswith("sqlite:///") or Path(url.removeprefix("sqlite:///")).exists()
