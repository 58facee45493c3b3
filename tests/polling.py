"""Waiting for work without fixed sleeps: poll a condition until it holds or a deadline passes."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


async def eventually(check: Callable[[], T | Awaitable[T]], *, within: float = 10.0,
                     every: float = 0.02, what: str = "condition") -> T:
    """The first truthy result of ``check()``; AssertionError naming ``what`` after ``within`` s."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result  # type: ignore[return-value]
        if loop.time() > deadline:
            raise AssertionError(f"{what} did not happen within {within}s")
        await asyncio.sleep(every)
