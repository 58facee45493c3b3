"""Storing events whose text no database accepts as is, and a bad row amid good ones."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from notifybot.store import Store
from notifybot.store.sqlite import SQLiteStore
from tests.immutable import immutable, sqlite_files

T0 = 1_770_000_000.0
BODY = b'{"event": "job.updated"}'


@pytest.mark.parametrize(("name", "stored"), [
    ("pg.nul\x00x", "pg.nulx"), ("job.\udc80", "job.\ufffd"), ("job.\ud800\udc80", "job.\ufffd\ufffd"),
])
async def test_a_name_no_database_would_take_is_stored_safe(store: Store, name: str,
                                                            stored: str) -> None:
    event_id, new = await store.add_event(name, BODY, f"d-{stored}", "application/json\x00",
                                          {"X-Odd": "a\udc80"}, T0)
    assert new
    event = await store.get_event(event_id)
    assert event is not None and event.name == stored
    assert event.content_type == "application/json"


async def test_a_batch_with_surrogate_names_loses_no_neighbour(store: Store) -> None:
    names = [f"job.{n}" if n % 3 else f"job.\udc80{n}" for n in range(120)]
    results = await asyncio.gather(*(
        store.add_event(name, BODY, f"digest-{n}", "application/json", {}, T0)
        for n, name in enumerate(names)))
    assert len({event_id for event_id, _ in results}) == 120
    assert all(new for _, new in results)


async def test_sqlite_group_commit_isolates_a_row_the_driver_refuses(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "n.db")
    await store.migrate()
    try:
        unbindable: Any = object()  # not bytes: sqlite3 cannot bind it, so its INSERT fails
        calls = [store.add_event("job.updated", BODY, f"good-{n}", "application/json", {}, T0)
                 for n in range(40)]
        calls.insert(20, store.add_event("job.updated", unbindable, "bad", "", {}, T0))
        results = await asyncio.gather(*calls, return_exceptions=True)
        failed = [r for r in results if isinstance(r, BaseException)]
        assert len(failed) == 1, failed
        assert len({r[0] for r in results if not isinstance(r, BaseException)}) == 40
        assert len(await store.unrouted_events(100)) == 40
    finally:
        await store.close()


async def test_probe_sees_a_database_that_takes_no_write(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "n.db")
    await store.migrate()
    try:
        await store.probe()
        with immutable(sqlite_files(tmp_path / "n.db")):
            with pytest.raises(sqlite3.OperationalError, match="disk I/O error"):
                await store.probe()
            assert await store.counts() is not None, "reads still work: only a write tells"
        await store.probe()
    finally:
        await store.close()
