"""Fixtures for the store contract: every test runs on SQLite and on PostgreSQL.

PostgreSQL is the server on this machine, ``NOTIFYBOT_TEST_DATABASE`` (default
``postgresql://postgres@127.0.0.1:5432/test``). Each test gets a fresh schema,
dropped afterwards. An unreachable server FAILS the PostgreSQL tests (CI starts
the server, and a silent skip would hide that it did not) unless
``NOTIFYBOT_SKIP_POSTGRES=1`` asks for a skip explicitly.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from notifybot.store import Store
from notifybot.store.postgres import PostgresStore
from notifybot.store.sqlite import SQLiteStore

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"


def database_url() -> str:
    return os.environ.get("NOTIFYBOT_TEST_DATABASE") or DEFAULT_URL


def _redacted(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


_unreachable: list[str] = []  # the reason, once known: later tests need not wait for a timeout


async def admin_connection() -> Any:
    """A plain connection to the test database, or fail (or skip, if asked) saying why."""
    url = database_url()
    if not _unreachable:
        try:
            return await asyncpg.connect(url, timeout=5)
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            _unreachable.append(
                f"PostgreSQL test database {_redacted(url)} is unreachable "
                f"({type(exc).__name__}: {exc}); start the server or point "
                "NOTIFYBOT_TEST_DATABASE at one, or set NOTIFYBOT_SKIP_POSTGRES=1 to skip")
    if os.environ.get("NOTIFYBOT_SKIP_POSTGRES") == "1":
        pytest.skip(_unreachable[0])
    pytest.fail(_unreachable[0], pytrace=False)


@asynccontextmanager
async def fresh_schema() -> AsyncIterator[str]:
    """A schema name no other test uses; the schema (if created) is dropped afterwards."""
    admin = await admin_connection()
    name = f"nbtest_{uuid.uuid4().hex[:16]}"
    try:
        yield name
    finally:
        try:
            await admin.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")
        finally:
            await admin.close()


PgStores = Callable[[], Awaitable[PostgresStore]]


@asynccontextmanager
async def postgres_stores() -> AsyncIterator[PgStores]:
    """A factory of PostgresStore instances sharing one fresh, migrated schema."""
    async with fresh_schema() as schema:
        opened: list[PostgresStore] = []

        async def make() -> PostgresStore:
            store = PostgresStore(database_url(), schema=schema, pool_size=8)
            opened.append(store)
            if len(opened) == 1:
                await store.migrate()
            return store

        try:
            yield make
        finally:
            for store in opened:
                await store.close()


@pytest.fixture
async def pg_stores() -> AsyncIterator[PgStores]:
    """Several PostgresStore instances on one schema: stand-ins for several processes."""
    async with postgres_stores() as make:
        yield make


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    """A migrated, empty store of each backend."""
    if request.param == "sqlite":
        sqlite = SQLiteStore(tmp_path / "notifybot.db")
        await sqlite.migrate()
        try:
            yield sqlite
        finally:
            await sqlite.close()
        return
    async with postgres_stores() as make:
        yield await make()
