"""Delivery throughput with 1, 2 and 4 ``notifybot serve`` instances on PostgreSQL, beside SQLite.

    .venv/bin/python -m bench.scaleout                    # about 2 minutes

Uses a database of its own, ``nb_bench``, created at the start and dropped at
the end on the server of ``--admin-url`` (default: this machine's PostgreSQL),
so the tests' database is never touched.

Per run and per setup (SQLite with one instance, PostgreSQL with 1, 2, 4): a
fresh outbox gets ``--deliveries`` pending deliveries spread over 8 Slack
channels (``pace = 0``; bench/backlog_fill.py), the instances drain it to the
Slack stand-in in this process, and the figure is deliveries per second from the
first message to the last, beside SQLite's in the same run. The machine's CPU
use while draining is reported too: on 2 cores, more processes cannot add CPU.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import psutil

from bench.backlog_fill import fill_postgres, fill_sqlite
from bench.common import (
    JOB_IN_TEXT,
    Process,
    environment,
    free_port,
    machine,
    median,
    notifybot,
    poll,
    report,
    slack_channel,
    write_config,
)
from tests.standins.slack_api import SlackStandIn

CHANNELS = {f"C0SCALE{i}": f"ch{i}" for i in range(8)}
DATABASE = "nb_bench"
SETUPS = [("sqlite", 1), ("postgresql", 1), ("postgresql", 2), ("postgresql", 4)]


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


async def reset_schema(url: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("DROP SCHEMA IF EXISTS public CASCADE; CREATE SCHEMA public")
    finally:
        await conn.close()


async def one(setup: str, instances: int, slack: SlackStandIn, tmp: Path, pg_url: str,
              deliveries: int, limit: float) -> dict[str, Any]:
    folder = tmp / f"{setup}-{instances}-{time.monotonic_ns()}"
    channels = "".join(slack_channel(name, cid, slack.base_url, pace=0.0)
                       for cid, name in CHANNELS.items())
    database = pg_url if setup == "postgresql" else None
    config = write_config(folder, channels, database=database)
    slack.messages.clear()
    servers: list[Process] = []
    if setup == "sqlite":
        filled = await fill_sqlite(folder / "notifybot.db", config, deliveries)
    else:
        await reset_schema(pg_url)
        # NOTIFYBOT_DATABASE as an operator would set it; the instances share the database.
        env = environment(NOTIFYBOT_DATABASE=pg_url)
        for i in range(instances):
            port = free_port()
            servers.append(notifybot(config, port, name=f"notifybot{i}", env=env).start())
            await servers[-1].wait_http(f"http://127.0.0.1:{port}/healthz")
        filled = await fill_postgres(pg_url, config, deliveries)
    psutil.cpu_percent()  # starts the machine-wide CPU measurement
    if setup == "sqlite":
        port = free_port()
        servers.append(notifybot(config, port).start())
    else:
        conn = await asyncpg.connect(pg_url)
        await conn.execute("NOTIFY notifybot_deliveries")  # every instance wakes at once
        await conn.close()
    try:
        drained = await poll(lambda: len(slack.messages) >= filled, limit, every=0.2)
        cpu = psutil.cpu_percent()
        await asyncio.sleep(1.0)  # anything sent twice would arrive now
    finally:
        for server in servers:
            server.stop()
    jobs: Counter[tuple[str, int]] = Counter()
    for message in slack.messages:
        match = JOB_IN_TEXT.search(message.text or "")
        if match:
            jobs[(message.channel, int(match.group(1)))] += 1
    times = [m.time for m in slack.messages]
    rate = len(times) / (times[-1] - times[0]) if len(times) > 1 else 0.0
    return {"setup": f"{setup} x{instances}", "deliveries": filled, "drained": drained,
            "distinct": len(jobs), "duplicated": sum(n - 1 for n in jobs.values() if n > 1),
            "per_s": round(rate, 1), "machine_cpu_percent": cpu}


async def main(args: argparse.Namespace) -> None:
    print(f"machine: {machine()}")
    pg_url = with_database(args.admin_url, DATABASE)
    admin = await asyncpg.connect(args.admin_url)
    await admin.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
    await admin.execute(f"CREATE DATABASE {DATABASE}")
    tmp = Path(tempfile.mkdtemp(prefix="nb-scaleout-"))
    rounds: list[dict[str, dict[str, Any]]] = []
    try:
        async with SlackStandIn(channels=dict(CHANNELS)) as slack:
            for r in range(args.runs):
                entry = {}
                for setup, instances in SETUPS:
                    result = await one(setup, instances, slack, tmp, pg_url, args.deliveries,
                                       args.limit)
                    entry[result["setup"]] = result
                base = entry["sqlite x1"]["per_s"]
                for result in entry.values():
                    result["ratio_to_sqlite"] = round(result["per_s"] / base, 2) if base else None
                report(f"round {r + 1}", entry)
                rounds.append(entry)
    finally:
        await admin.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
        await admin.close()
        shutil.rmtree(tmp, ignore_errors=True)
    names = list(rounds[0])
    report("summary", {
        "command": f"python -m bench.scaleout --runs {args.runs} --deliveries {args.deliveries}",
        "deliveries/s, median of runs": {n: median(e[n]["per_s"] for e in rounds) for n in names},
        "ratio to SQLite x1 in the same round, median": {
            n: median(e[n]["ratio_to_sqlite"] for e in rounds) for n in names},
        "machine CPU % while draining, median": {
            n: median(e[n]["machine_cpu_percent"] for e in rounds) for n in names},
        "all delivered once": all(e[n]["distinct"] == e[n]["deliveries"]
                                  and e[n]["duplicated"] == 0 for e in rounds for n in names),
    })


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--deliveries", type=int, default=6_000)
    parser.add_argument("--admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--limit", type=float, default=120.0)
    asyncio.run(main(parser.parse_args()))
