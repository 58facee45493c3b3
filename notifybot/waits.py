"""Waiting for an :class:`asyncio.Event` with a timeout, without losing a cancellation.

On Python 3.11, ``asyncio.wait_for(event.wait(), t)`` swallows a cancellation
that arrives in the same turn of the loop as the event is set (it returns the
inner result instead of raising). A background loop that is woken just as the
server cancels it then runs on, and shutdown waits for it forever.
``asyncio.timeout`` cancels the waiting task itself and counts cancellations,
so an outside cancellation always propagates.
"""

from __future__ import annotations

import asyncio


async def wait_set(event: asyncio.Event, seconds: float) -> bool:
    """Wait until ``event`` is set or ``seconds`` pass: whether it was set."""
    try:
        async with asyncio.timeout(seconds):
            await event.wait()
    except TimeoutError:
        return False
    return True
