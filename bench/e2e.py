"""Benchmark 2, end to end: 100 events/s for 60 s, each matching two Slack channels.

    .venv/bin/python -m bench.e2e                         # about 3 minutes (3 runs)

Per run: a fresh ``notifybot serve`` (SQLite, default ``[delivery]`` settings)
with two Slack channels, both subscribed to ``job.status.updated`` and pointed
at the Slack stand-in (tests/standins/slack_api.py), which does not throttle;
``pace = 0`` on both, since Slack's real 1 message/s per channel cannot carry
100 a second (benchmark 5 covers pacing). This process posts the events open
loop (each due at ``start + i / rate``) and hosts the stand-in, which stamps
each message as it accepts it; the job number in the message text ties it to
its POST.

Figures: POST → stand-in latency, counted from when the POST was due, beside
its reference in the same run, POST → 202 (the synchronous part); lost (a
(job, channel) pair never posted) and duplicated (posted more than once).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp

from bench.common import (
    JOB_IN_TEXT,
    body,
    distribution,
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

CHANNELS = {"C0E2EA": "alpha", "C0E2EB": "beta"}


async def post_open_loop(url: str, rate: float, seconds: float, nonce: str,
                         first_job: int) -> tuple[dict[int, float], list[float], Counter[str]]:
    """POST ``rate * seconds`` unique events on schedule; (due time per job, 202 latencies, statuses)."""
    total = int(rate * seconds)
    bodies = {first_job + i: body(first_job + i, nonce) for i in range(total)}
    due: dict[int, float] = {}
    answered: list[float] = []
    statuses: Counter[str] = Counter()
    headers = {"Content-Type": "application/json"}
    async with aiohttp.ClientSession(trust_env=False,
                                     timeout=aiohttp.ClientTimeout(total=30)) as session:

        async def one(job: int, when: float) -> None:
            try:
                async with session.post(url, data=bodies[job], headers=headers) as response:
                    await response.read()
                    statuses[str(response.status)] += 1
            except (aiohttp.ClientError, TimeoutError) as exc:
                statuses[type(exc).__name__] += 1
            answered.append(time.time() - when)

        tasks = []
        start = time.time() + 0.2
        for i in range(total):
            job = first_job + i
            due[job] = start + i / rate
            delay = due[job] - time.time()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(job, due[job])))
        await asyncio.wait(tasks, timeout=30)
    return due, answered, statuses


async def one_run(run: int, args: argparse.Namespace) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="nb-e2e-"))
    async with SlackStandIn(channels={cid: name for cid, name in CHANNELS.items()}) as slack:
        channels = "".join(slack_channel(name, cid, slack.base_url, pace=0.0)
                           for cid, name in CHANNELS.items())
        config = write_config(tmp, channels)
        port = free_port()
        server = notifybot(config, port).start()
        try:
            await server.wait_http(f"http://127.0.0.1:{port}/healthz")
            due, answered, statuses = await post_open_loop(
                f"http://127.0.0.1:{port}/hirehop", args.rate, args.seconds,
                uuid.uuid4().hex[:8], first_job=1000)
            expected = 2 * len(due)
            await poll(lambda: len(slack.messages) >= expected, args.drain_limit)
            await asyncio.sleep(1.0)  # anything duplicated would arrive now
        finally:
            server.stop()
        seen: Counter[tuple[str, int]] = Counter()
        latencies: list[float] = []
        for message in slack.messages:
            match = JOB_IN_TEXT.search(message.text or "")
            if match is None:
                continue
            job = int(match.group(1))
            seen[(message.channel, job)] += 1
            if seen[(message.channel, job)] == 1 and job in due:
                latencies.append(message.time - due[job])
    wanted = {(cid, job) for cid in CHANNELS for job in due}
    result = {
        "run": run, "events": len(due), "statuses": dict(statuses),
        "post_to_202_ms": distribution(answered),
        "post_to_standin_ms": distribution(latencies),
        "lost": len(wanted - set(seen)),
        "duplicated": sum(n - 1 for n in seen.values() if n > 1),
        "unexpected": len(set(seen) - wanted),
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
        "command": f"python -m bench.e2e --runs {args.runs} --rate {args.rate:g} "
                   f"--seconds {args.seconds:g}",
        "POST -> stand-in p50 ms, median of runs (target <= 30)":
            median(r["post_to_standin_ms"]["p50"] for r in runs),
        "POST -> stand-in p99 ms, median of runs (target <= 250)":
            median(r["post_to_standin_ms"]["p99"] for r in runs),
        "reference POST -> 202 p50 / p99 ms, median of runs":
            [median(r["post_to_202_ms"]["p50"] for r in runs),
             median(r["post_to_202_ms"]["p99"] for r in runs)],
        "per run p50 / p99 / max ms": [[r["post_to_standin_ms"][k] for k in ("p50", "p99", "max")]
                                       for r in runs],
        "lost (target 0)": [r["lost"] for r in runs],
        "duplicated (target 0)": [r["duplicated"] for r in runs],
    }
    report("summary", summary)
    return summary


def parser() -> argparse.ArgumentParser:
    """This script's options (``python -m bench`` reuses them)."""
    options = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_argument("--runs", type=int, default=3)
    options.add_argument("--rate", type=float, default=100.0)
    options.add_argument("--seconds", type=float, default=60.0)
    options.add_argument("--drain-limit", type=float, default=60.0,
                         help="seconds to wait after the load for the last messages")
    options.add_argument("--keep", action="store_true")
    return options


if __name__ == "__main__":
    asyncio.run(main(parser().parse_args()))
