"""Which conversation an event belongs to, and what its thread's root shows (pure).

A channel with ``thread = "job"`` keeps one thread per job: the key is the
company and the job number, so an invoice joins its job's thread and two
companies' job 15471 stay apart. Events without a job stand alone.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from .config import Config
from .events import Event
from .formatting import FORMATTERS, one_line, truncate
from .messages import Message
from .rendering import Renderer

ROOT_TEMPLATE = "thread_root"
SUBJECT_LIMIT = 200


def thread_key(event: Event) -> str | None:
    """``"{company}:job:{number}"``, or None for an event that names no job."""
    if event.job is None:
        return None
    return f"{event.company_id or 0}:job:{event.job}"


def thread_subject(event: Event) -> str:
    """One steady email subject per job, so mail clients keep one conversation."""
    name = event.data.get("JOB_NAME") or (event.data.get("NAME") if event.name.startswith("job.")
                                          else None)
    title = f"[HireHop] Job {event.job}"
    if isinstance(name, str) and name.strip():
        title += f' "{one_line(name)}"'
    return truncate(title, SUBJECT_LIMIT)


def root_update(event: Event, renderer: Renderer, kind: str, latest: Message) -> dict[str, Any] | None:
    """What the thread's root should show after ``event``: the job now, in ``kind``'s payload.

    Only events that carry the job's status can say what the job is now; others
    (an invoice, a contact) leave the root as it was.
    """
    if not event.name.startswith("job.") or renderer.status_change(event) is None:
        return None
    root = renderer.render(event, ROOT_TEMPLATE)
    root = replace(root, changes=(), notes=(f"Latest: {latest.summary}",))
    return FORMATTERS[kind](root)


def thread_ages(config: Config) -> dict[str, float]:
    """Each channel's ``thread_max_age``, for the outbox."""
    return {name: chan.thread_max_age for name, chan in config.channels.items()}


def is_status_change(event: Event) -> bool:
    """Whether the event moves a status (``broadcast = "status"`` shows those in the channel)."""
    return event.change("STATUS") is not None
