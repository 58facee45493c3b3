"""Benchmark 4, backlog: 100,000 pending deliveries drained by ``notifybot serve`` on SQLite.

    .venv/bin/python -m bench.backlog                     # about 4 minutes (3 runs)

Per run: an SQLite outbox is filled with 100,000 pending deliveries (50,000
events × two Slack channels, ``pace = 0``; see bench/backlog_fill.py), then
``notifybot serve`` starts on it with default ``[delivery]`` settings and
drains it to the Slack stand-in, which runs in this process and does not
throttle. The server's resident memory (RSS) is sampled every 0.2 s.

Figures, each beside its reference in the same run:

* peak RSS while draining, beside the RSS of the same server idle on an empty
  outbox;
* drain rate (first to last message at the stand-in), beside the rate of
  notifybot's own Slack sender posting to the same stand-in with the same
  concurrency and no storage (bench/rawsend.py);
* every delivery arrives once: the stand-in's count of distinct job numbers.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import psutil

from bench.backlog_fill import fill_sqlite
from bench.common import (
    JOB_IN_TEXT,
    PYTHON,
    ROOT,
    free_port,
    machine,
    median,
    notifybot,
    poll,
    profiled,
    report,
    slack_channel,
    write_config,
)
from tests.standins.slack_api import SlackStandIn

CHANNELS = {"C0BACKA": "alpha", "C0BACKB": "beta"}


async def rss_while(pid: int, until: asyncio.Event) -> list[float]:
    """RSS samples in MiB every 0.2 s until ``until`` is set."""
    process = psutil.Process(pid)
    samples = []
    while not until.is_set():
        try:
            samples.append(process.memory_info().rss / 2**20)
        except psutil.Error:
            break
        await asyncio.sleep(0.2)
    return samples


async def idle_rss(config: Path) -> float:
    """RSS of the server idle on an empty outbox, 3 s after it answers."""
    port = free_port()
    server = notifybot(config, port, name="idle").start()
    try:
        await server.wait_http(f"http://127.0.0.1:{port}/healthz")
        await asyncio.sleep(3)
        return float(psutil.Process(server.pid).memory_info().rss / 2**20)
    finally:
        server.stop()


async def raw_rate(base_url: str, count: int, channels: list[str]) -> dict[str, Any]:
    """bench/rawsend.py in a child process (this one's loop serves the stand-in meanwhile)."""
    args = ["-m", "bench.rawsend", "--base-url", base_url, "--count", str(count)]
    for channel in channels:
        args += ["--channel", channel]
    child = await asyncio.create_subprocess_exec(PYTHON, *args, cwd=ROOT,
                                                 stdout=asyncio.subprocess.PIPE)
    out, _ = await asyncio.wait_for(child.communicate(), 300)
    result: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    return result


async def one_run(run: int, args: argparse.Namespace) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="nb-backlog-"))
    async with SlackStandIn(channels=dict(CHANNELS)) as slack:
        channels = "".join(slack_channel(name, cid, slack.base_url, pace=0.0)
                           for cid, name in CHANNELS.items())
        idle_config = write_config(tmp / "idle", channels)
        config = write_config(tmp / "drain", channels, delivery=(
            {"concurrency": args.concurrency} if args.concurrency else None))
        idle = await idle_rss(idle_config)
        raw = await raw_rate(slack.base_url, args.raw_count, list(CHANNELS))
        slack.messages.clear()
        filled = await fill_sqlite(tmp / "drain" / "notifybot.db", config, args.deliveries)
        port = free_port()
        started = time.time()
        server = notifybot(config, port).start()
        done = asyncio.Event()
        sampler = asyncio.create_task(rss_while(server.pid, done))
        try:
            # py-spy (the bench extra), sampling the server while it drains
            async with profiled(server.pid, args.profile, args.profile_seconds):
                drained = await poll(lambda: len(slack.messages) >= filled,
                                     args.window or args.limit, every=0.2)
                await asyncio.sleep(1.0)  # anything sent twice would arrive now
        finally:
            done.set()
            samples = await sampler
            server.stop()
        messages = list(slack.messages)
    jobs: Counter[tuple[str, int]] = Counter()
    for message in messages:
        match = JOB_IN_TEXT.search(message.text or "")
        if match:
            jobs[(message.channel, int(match.group(1)))] += 1
    first, last = (messages[0].time, messages[-1].time) if messages else (started, started)
    rate = len(messages) / (last - first) if last > first else 0.0
    result = {
        "run": run, "deliveries": filled, "window_s": args.window, "drained": drained,
        "received": len(messages),
        "distinct": len(jobs), "duplicated": sum(n - 1 for n in jobs.values() if n > 1),
        "drain_per_s": round(rate, 1), "reference_raw_per_s": raw["per_s"], "raw_failed": raw["failed"],
        "ratio_to_raw": round(rate / raw["per_s"], 3) if raw["per_s"] else None,
        "start_to_first_s": round(first - started, 2), "total_s": round(last - started, 1),
        "peak_rss_mib": round(max(samples), 1) if samples else None,
        "median_rss_mib": round(median(samples), 1) if samples else None,
        "reference_idle_rss_mib": round(idle, 1),
    }
    if not args.keep:
        shutil.rmtree(tmp, ignore_errors=True)
    return result


async def main(args: argparse.Namespace) -> dict[str, Any]:
    print(f"machine: {machine()}")
    runs = []
    for run in range(1, args.runs + 1):
        result = await one_run(run, args)
        report(f"run {run}", result)
        runs.append(result)
    summary = {
        "command": f"python -m bench.backlog --runs {args.runs} --deliveries {args.deliveries}",
        "peak RSS MiB, median of runs (target <= 150 MB = 143 MiB)":
            median(r["peak_rss_mib"] for r in runs),
        "reference idle RSS MiB, median": median(r["reference_idle_rss_mib"] for r in runs),
        "drain deliveries/s, median of runs (target >= 1000)": median(r["drain_per_s"] for r in runs),
        "reference raw sender/s, median": median(r["reference_raw_per_s"] for r in runs),
        "ratio drain / raw per run": [r["ratio_to_raw"] for r in runs],
        "all delivered once": [r["distinct"] == r["deliveries"] and r["duplicated"] == 0
                               for r in runs],
        "duplicated per run": [r["duplicated"] for r in runs],
    }
    report("summary", summary)
    return summary


def parser() -> argparse.ArgumentParser:
    """This script's options (``python -m bench`` reuses them)."""
    options = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_argument("--runs", type=int, default=3)
    options.add_argument("--deliveries", type=int, default=100_000)
    options.add_argument("--raw-count", type=int, default=10_000)
    options.add_argument("--limit", type=float, default=400.0, help="seconds to wait for the drain")
    options.add_argument("--window", type=float, default=0.0,
                         help="stop after this many seconds of draining: rate and memory over "
                              "that window only, with the backlog still nearly full")
    options.add_argument("--concurrency", type=int, default=0,
                         help="[delivery] concurrency of the draining server (default: its own)")
    options.add_argument("--keep", action="store_true")
    options.add_argument("--profile", help="write a py-spy raw profile of the server here")
    options.add_argument("--profile-seconds", type=int, default=15)
    return options


if __name__ == "__main__":
    asyncio.run(main(parser().parse_args()))
