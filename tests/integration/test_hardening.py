"""``notifybot serve`` under hostile input, storage faults and failed startups (issue 13).

Each test is one of the adversarial reproductions, run against the real process.
"""

from __future__ import annotations

import asyncio
import json
import socket
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.immutable import immutable, sqlite_files
from tests.integration.conftest import SAMPLES, StandIns
from tests.integration.service import EXPORT_KEY, Service, free_port
from tests.polling import eventually
from tests.unit.store.conftest import admin_connection, database_url

MINIMAL = """
[server]
database = "sqlite:///{db}"
[hirehop]
export_key = "${{HIREHOP_EXPORT_KEY}}"
[delivery]
poll_interval = 0.1
[channels.log]
type = "console"
  [[channels.log.subscriptions]]
  events = ["*"]
  unless = {{ "data.NOTE" = {{ matches = "(a+)+$" }} }}
"""


def minimal(tmp_path: Path) -> Path:
    path = tmp_path / "subscriptions.toml"
    path.write_text(MINIMAL.format(db=tmp_path / "notifybot.db"))
    return path


def job(number: int, **fields: Any) -> dict[str, Any]:
    body = json.loads((SAMPLES / "job.updated.constructed.json").read_text())
    body.update(job=number, data={**body["data"], "NUMBER": number, "ID": f"j{number}"})
    return {**body, **fields}


def escaped(body: dict[str, Any]) -> bytes:
    return json.dumps(body).encode()  # ensure_ascii: a lone surrogate goes as "\udc80"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def database(request: pytest.FixtureRequest, standins: StandIns) -> Any:
    if request.param == "sqlite":
        yield None
        return
    admin = await admin_connection()
    name = f"nbhard_{int(time.time() * 1000) % 10**9}_{free_port()}"
    await admin.execute(f"CREATE DATABASE {name}")
    try:
        base = database_url().rsplit("/", 1)[0]
        yield f"{base}/{name}"
    finally:
        await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        await admin.close()


async def test_bad_rows_amid_40_good_concurrent_ones_cost_no_event(
        standins: StandIns, database: str | None) -> None:
    service = await standins.service(standins.config(database=database)).start()
    try:
        good = [escaped(job(20_000 + n)) for n in range(40)]
        status_body = json.loads((SAMPLES / "job.status.updated.constructed.json").read_text())
        invoice = json.loads((SAMPLES / "invoice.status.updated.constructed.json").read_text())
        bad = [
            escaped(job(1, event="job.\udc80")),                       # lone surrogate in the name
            escaped(job(2, event="pg.nul\x00x")),                      # NUL (PostgreSQL refuses it)
            escaped({**status_body, "user_name": "Sam \udc80Taylor"}),  # Telegram and Slack
            escaped({**invoice, "user_name": "Sam \ud800Taylor"}),      # email
            escaped(job(3, export_key="\ud800")),                      # surrogate in the key
            b'{"export_key": "' + EXPORT_KEY.encode() + b'", "d": ' + b"[" * 5000 + b"]" * 5000 + b"}",
        ]
        bodies = good[:20] + bad + good[20:]
        answers = await asyncio.gather(*(service.post(body) for body in bodies))
        statuses = [a.status_code for a in answers]
        assert statuses[:20] + statuses[26:] == [202] * 40
        assert statuses[20:26] == [202, 202, 202, 202, 403, 400]
        assert all(a.headers["content-type"] == "application/json" for a in answers)

        def slack_jobs() -> set[int]:
            texts = " ".join(json.dumps(m.text) for m in standins.slack.messages)
            return {n for n in range(20_000, 20_040) if str(n) in texts}

        await eventually(lambda: len(slack_jobs()) == 40, within=30, what="40 good events on Slack")
        [telegram] = await standins.telegram.wait_for_messages(1, within=15)
        assert "Sam \ufffdTaylor" in telegram.plain_text
        [email] = await standins.smtp.wait_for(1, within=15)
        assert email is not None
        listed = await service.cli("deliveries", "--status", "dead")
        assert listed.stdout.count("\n") <= 1, listed.stdout  # nothing dead: at most a header
    finally:
        await service.terminate()


async def test_the_export_key_never_reaches_the_database_files(tmp_path: Path) -> None:
    service = await Service(minimal(tmp_path)).start()
    try:
        decoy_json = (b'{"export\\u005fkey": "' + EXPORT_KEY.encode() + b'", "event": "job.updated",'
                      b' "data": {"export_key": "decoy"}}')
        envelope = json.dumps({"export_key": EXPORT_KEY, "event": "job.created",
                               "data": {"NOTE": EXPORT_KEY}})
        decoy_form = f'note="export_key":"decoy"&payload={envelope}'.encode()
        assert (await service.post(decoy_json)).status_code == 202
        assert (await service.post(decoy_form, "application/x-www-form-urlencoded")).status_code == 202
    finally:
        await service.terminate()
    stored = _database_bytes(tmp_path)
    assert stored and EXPORT_KEY.encode() not in stored


def _database_bytes(folder: Path) -> bytes:
    return b"".join(path.read_bytes() for path in folder.glob("notifybot.db*"))


async def test_a_catastrophic_regex_does_not_freeze_the_server(tmp_path: Path) -> None:
    service = await Service(minimal(tmp_path)).start()
    try:
        hostile = {"export_key": EXPORT_KEY, "event": "job.updated", "data": {"NOTE": "a" * 40 + "!"}}
        assert (await service.post(hostile)).status_code == 202
        await eventually(lambda: "delivered to log" in service.stderr, what="the event delivered")
        async with httpx.AsyncClient() as client:
            started = time.perf_counter()
            assert (await client.get(f"{service.url}/healthz", timeout=5)).status_code == 200
            assert time.perf_counter() - started < 1.0
    finally:
        await service.terminate()


async def test_150_invented_event_names_make_no_series_each(tmp_path: Path) -> None:
    service = await Service(minimal(tmp_path)).start()
    try:
        names = [f"invented.{n}.\x1b[2J{'z' * 500}" for n in range(150)]
        answers = await asyncio.gather(*(
            service.post({"export_key": EXPORT_KEY, "event": name}) for name in names))
        assert {a.status_code for a in answers} == {202}
        async with httpx.AsyncClient() as client:
            text = (await client.get(f"{service.url}/metrics", timeout=5)).text
    finally:
        await service.terminate()
    assert "invented" not in text and "\x1b" not in text
    assert 'notifybot_events_received_total{event="other",outcome="accepted"} 150.0' in text


async def test_a_newline_in_an_event_name_cannot_forge_a_log_line(tmp_path: Path) -> None:
    forged = "2026-05-12 13:04:17,000 INFO notifybot.app: FORGED"
    service = await Service(minimal(tmp_path)).start()
    try:
        body = {"export_key": EXPORT_KEY, "event": f"job.updated\n{forged}", "data": {}}
        assert (await service.post(body)).status_code == 202
        await eventually(lambda: "FORGED" in service.stderr, what="the event logged")
    finally:
        await service.terminate()
    assert not any(line.startswith(forged) for line in service.stderr.splitlines())


async def test_an_immutable_database_answers_json_503_and_recovers(tmp_path: Path) -> None:
    service = await Service(minimal(tmp_path)).start()
    try:
        assert (await service.post(job(1))).status_code == 202
        with immutable(sqlite_files(tmp_path / "notifybot.db")):
            refused = await service.post(job(2))
            assert refused.status_code == 503
            assert "storage" in refused.json()["error"]
            async with httpx.AsyncClient() as client:
                health = await client.get(f"{service.url}/healthz", timeout=5)
            assert health.status_code == 503 and "storage" in health.json()
        assert (await service.post(job(2))).status_code == 202
        async with httpx.AsyncClient() as client:
            assert (await client.get(f"{service.url}/healthz", timeout=5)).status_code == 200
    finally:
        await service.terminate()


async def test_the_startup_log_shows_the_address_really_bound(tmp_path: Path) -> None:
    service = await Service(minimal(tmp_path)).start()
    try:
        assert f"/hirehop on 127.0.0.1:{service.port}" in service.stderr
        assert str(tmp_path / "notifybot.db") in service.stderr, "the database's absolute path"
    finally:
        await service.terminate()


async def test_reload_is_accepted_from_ipv4_mapped_loopback(tmp_path: Path) -> None:
    service = Service(minimal(tmp_path))
    service.args = ("--bind", f"[::]:{service.port}")  # dual stack: IPv4 peers arrive mapped
    try:
        await service.start()
    except AssertionError:
        pytest.skip("no IPv6 on this machine")
    try:
        async with httpx.AsyncClient() as client:
            response = await client.post(f"{service.url}/-/reload", timeout=5)
        assert response.status_code == 200, response.text
    finally:
        await service.terminate()


def _serve(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> tuple[int, str, float]:
    import os
    import subprocess
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "notifybot", "serve", "-c", str(minimal(tmp_path)), *args],
        capture_output=True, text=True, timeout=30, cwd=tmp_path,
        env={**os.environ, "HIREHOP_EXPORT_KEY": EXPORT_KEY, **(env or {})})
    return done.returncode, done.stderr, time.perf_counter() - started


def _one_clear_line(stderr: str, *expected: str) -> None:
    assert "Traceback" not in stderr, stderr
    errors = [line for line in stderr.splitlines() if "error" in line.lower()]
    assert len(errors) == 1, stderr
    for text in expected:
        assert text in errors[0], stderr


def test_a_port_in_use_ends_startup_at_once(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, stderr, took = _serve(tmp_path, "--bind", f"127.0.0.1:{port}")
    assert code == 1 and took < 10
    _one_clear_line(stderr, f"127.0.0.1:{port}", "in use")


def test_an_unreachable_postgresql_ends_startup_at_once(tmp_path: Path) -> None:
    url = f"postgresql://notifybot:hunter2@127.0.0.1:{free_port()}/nowhere"
    code, stderr, took = _serve(tmp_path, "--bind", "127.0.0.1:0",
                                env={"NOTIFYBOT_DATABASE": url})
    assert code == 1 and took < 15
    _one_clear_line(stderr, "cannot use the database")
    assert "hunter2" not in stderr


def test_a_missing_database_folder_ends_startup_at_once(tmp_path: Path) -> None:
    code, stderr, took = _serve(tmp_path, "--bind", "127.0.0.1:0",
                                env={"NOTIFYBOT_DATABASE": "sqlite:///no/such/folder/n.db"})
    assert code == 1 and took < 10
    _one_clear_line(stderr, "does not exist")


def test_a_bad_log_level_is_a_usage_error(tmp_path: Path) -> None:
    code, stderr, _ = _serve(tmp_path, "--log-level", "LOUD")
    assert code == 2
    assert "Traceback" not in stderr
    assert stderr.splitlines()[-1].startswith("notifybot serve: error: argument --log-level")
