"""The burst: notifybot (SQLite on disk) beside the naive receiver, 600 webhooks, 16 in flight.

    .venv/bin/python -m bench.burst                       # about 1 minute (3 rounds)

The naive receiver (:mod:`bench.naive_app`) is what a user writes instead of
notifybot: check the key, ``chat_postMessage`` inside the request, store nothing.
Each system gets its own Slack stand-in (tests/standins/slack_api.py, via
:class:`bench.alternative.FlakySlack` with no faults: it never throttles) and one
channel; notifybot's has ``pace = 0`` and its database is SQLite on disk in the
temporary folder. ``--runs`` rounds, alternating which system goes first; in each,
``--events`` webhooks are posted with ``--concurrency`` in flight, and the figure
is messages at the stand-in per second, from the first POST to the last message.
Each round also reports the CPU time each server used per message, and the
harness's (this process: the load generator and both stand-ins).

The stand-ins answer at once by default, so both systems are bound by CPU.
``--latency MS`` makes every answer that late, as Slack's API is over the
internet (100–300 ms from most servers): the naive receiver then holds each
webhook for a round trip, and notifybot sends ``[delivery] concurrency`` at once.

The target is the ratio of the medians, notifybot ÷ naive, ≥ 1.5; a round
counts only if every message arrived exactly once.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from bench.alternative import FlakySlack, Systems
from bench.common import machine, median, report

NAMES = ("notifybot", "naive")
TARGET = 1.5


def per_message(counts: Path, messages: int) -> dict[str, float]:
    """Commits, statements and aiosqlite round trips per message delivered, from bench/sqlcount."""
    data = json.loads(counts.read_text(encoding="utf-8"))
    return {"commits": round(sum(data["commits"].values()) / max(messages, 1), 2),
            "statements": round(sum(data["statements"].values()) / max(messages, 1), 2),
            "round_trips": round(sum(data["round_trips"].values()) / max(messages, 1), 2),
            **{f"commits: {kind}": round(n / max(messages, 1), 2)
               for kind, n in sorted(data["commits"].items())}}


async def main(args: argparse.Namespace) -> dict[str, Any]:
    print(f"machine: {machine()}")
    tmp = Path(tempfile.mkdtemp(prefix="nb-burst-"))
    rounds: list[dict[str, Any]] = []
    latency = args.latency / 1000
    async with FlakySlack(latency) as nb_slack, FlakySlack(latency) as naive_slack:
        systems = {"notifybot": Systems(nb_slack, tmp),
                   "naive": Systems(naive_slack, tmp,
                                    naive_session_per_call=args.naive_session_per_call)}
        for r in range(args.runs):
            order = NAMES if r % 2 == 0 else NAMES[::-1]
            entry: dict[str, Any] = {}
            for name in order:
                first = name == "notifybot" and r == 0
                entry[name] = await systems[name].throughput(
                    name, args.events, args.concurrency, limit=args.limit,
                    profile=args.profile if first else None,
                    count_sql=args.count_sql if first else None)
                if first and args.count_sql:
                    entry["sql_per_message"] = per_message(Path(args.count_sql),
                                                           entry[name]["delivered"])
            entry["ratio"] = round(entry["notifybot"]["delivered_per_s"]
                                   / max(entry["naive"]["delivered_per_s"], 1e-9), 2)
            report(f"round {r + 1}", entry)
            rounds.append(entry)
    per_s = {name: round(median(r[name]["delivered_per_s"] for r in rounds), 1) for name in NAMES}
    complete = all(r[name]["all_delivered_once"] for r in rounds for name in NAMES)
    ratio = round(per_s["notifybot"] / per_s["naive"], 2) if per_s["naive"] else 0.0
    summary = {
        "command": f"python -m bench.burst --runs {args.runs} --events {args.events} "
                   f"--concurrency {args.concurrency}"
                   + (f" --latency {args.latency:g}" if args.latency else "")
                   + (" --naive-session-per-call" if args.naive_session_per_call else ""),
        "messages/s median": per_s,
        "messages/s per round": {name: [r[name]["delivered_per_s"] for r in rounds]
                                 for name in NAMES},
        "webhooks answered in s per round": {name: [r[name]["posting_s"] for r in rounds]
                                             for name in NAMES},
        "server CPU ms per message, median": {
            name: round(median(r[name]["cpu_ms_per_message"]["server"] for r in rounds), 2)
            for name in NAMES},
        "every message delivered once, every round": complete,
        f"ratio of medians notifybot / naive (target >= {TARGET})": ratio,
        "met": complete and ratio >= TARGET,
    }
    report("summary", summary)
    if not args.keep:
        shutil.rmtree(tmp, ignore_errors=True)
    return summary


def parser() -> argparse.ArgumentParser:
    """This script's options (``python -m bench`` reuses them)."""
    options = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_argument("--runs", type=int, default=3)
    options.add_argument("--events", type=int, default=600)
    options.add_argument("--concurrency", type=int, default=16)
    options.add_argument("--latency", type=float, default=0.0, metavar="MS",
                         help="each stand-in answers this many ms late, as Slack does over the "
                              "internet (default 0: at once)")
    options.add_argument("--limit", type=float, default=120.0,
                         help="seconds to wait for the last message after the last POST")
    options.add_argument("--naive-session-per-call", action="store_true",
                         help="the naive receiver as slack-sdk's README makes it (slower)")
    options.add_argument("--profile", help="py-spy raw profile of notifybot in round 1, to this file")
    options.add_argument("--count-sql", help="count notifybot's SQL in round 1 (bench/sqlcount), "
                         "written to this file; per message in the report")
    options.add_argument("--keep", action="store_true")
    return options


if __name__ == "__main__":
    asyncio.run(main(parser().parse_args()))
