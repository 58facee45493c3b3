"""The supervised group of background tasks: a dying task is logged, reported and restarted."""

from __future__ import annotations

import asyncio

import pytest

from notifybot.supervisor import Supervisor
from tests.polling import eventually


async def test_a_dying_task_is_logged_reported_and_restarted(
        caplog: pytest.LogCaptureFixture) -> None:
    runs: list[int] = []
    forever = asyncio.Event()

    async def flaky() -> None:
        runs.append(1)
        if len(runs) == 1:
            raise RuntimeError("first run breaks")
        await forever.wait()

    async with Supervisor(first_delay=0.05) as group:
        group.start("flaky", flaky)
        await eventually(lambda: group.down().get("flaky") == "failed: RuntimeError",
                         what="the failure reported")
        await eventually(lambda: len(runs) == 2, what="the restart")
        assert "flaky" in group.down(), "still reported until it has run a while"
    assert "background task flaky failed" in caplog.text
    assert "RuntimeError: first run breaks" in caplog.text


async def test_leaving_the_group_cancels_every_task() -> None:
    cancelled: list[str] = []

    async def runs_forever(name: str) -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.append(name)
            raise

    async with Supervisor() as group:
        group.start("a", lambda: runs_forever("a"))
        group.start("b", lambda: runs_forever("b"))
        await asyncio.sleep(0)  # let both start
    assert sorted(cancelled) == ["a", "b"]
    assert group.down() == {}


async def test_a_task_that_returns_while_stopping_is_no_failure() -> None:
    done = asyncio.Event()

    async def returns_when_told() -> None:
        await done.wait()

    async with Supervisor(first_delay=0.01) as group:
        group.start("outbox", returns_when_told)
        group.stopping()
        done.set()
        for _ in range(5):  # a few turns of the loop: the task returns, and is not restarted
            await asyncio.sleep(0)
        assert group.down() == {}
