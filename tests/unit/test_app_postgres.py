"""The webhook endpoint on PostgreSQL when the server drops every connection (a restart)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from notifybot.app import create_app
from notifybot.config import load
from notifybot.testing import FakeSender
from tests.polling import eventually
from tests.unit.store.conftest import admin_connection, postgres_stores

pytestmark = pytest.mark.postgres

CONFIG = """
[server]
database = "sqlite:///unused.db"
[hirehop]
export_key = "KEY-123456"
[channels.log]
type = "console"
  [[channels.log.subscriptions]]
  events = ["*"]
"""


async def test_dropped_connections_cost_json_503s_at_worst_and_heal(tmp_path: Path) -> None:
    path = tmp_path / "subscriptions.toml"
    path.write_text(CONFIG)
    async with postgres_stores() as make:
        store = await make()
        senders: dict[str, Any] = {"log": FakeSender("log")}
        app = create_app(load(path, environ={}), store=store, senders=senders)
        async with app.test_app() as running:
            client = running.test_client()

            async def post(n: int) -> Any:
                body = {"export_key": "KEY-123456", "event": "pg.nul\x00x", "job": n}
                return await client.post("/hirehop", data=json.dumps(body).encode())

            assert (await post(0)).status_code == 202
            admin = await admin_connection()
            try:
                await admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE application_name LIKE $1", f"%/{store.schema}")
            finally:
                await admin.close()
            answers = await asyncio.gather(*(post(n) for n in range(1, 21)))
            for answer in answers:
                assert answer.status_code in (202, 503)
                assert answer.content_type == "application/json"
            # Healed: a pooled connection that died may fail one more use, not more.
            healed = await eventually(lambda: _accepted(post(99)), within=10,
                                      what="a webhook accepted after the drop")
            assert healed.status_code in (200, 202)

            async def healthy() -> bool:
                return (await client.get("/healthz")).status_code == 200

            await eventually(healthy, within=10, what="/healthz 200 again")
            accepted = sum(a.status_code == 202 for a in answers)
            admin = await admin_connection()
            try:
                stored = await admin.fetchval(f"SELECT count(*) FROM {store.schema}.events")
            finally:
                await admin.close()
            assert stored == accepted + 2, "every 202 is stored, and nothing else"


async def _accepted(answer: Any) -> Any:
    response = await answer
    return response if response.status_code in (200, 202) else None  # 200: stored already
