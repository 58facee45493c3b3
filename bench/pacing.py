"""Benchmark 5, pacing: 100 messages to one Slack channel that enforces 1 message/s with 429s.

    .venv/bin/python -m bench.pacing                      # about 105 s per run

The Slack stand-in (tests/standins/slack_api.py) runs with
``enforce_rate_limit``: a second post to a channel within one second gets
HTTP 429 with ``Retry-After: 1``, as Slack does. ``notifybot serve`` (SQLite,
default settings, the Slack channel's default ``pace``) gets 100 events as fast
as this process can post them, then delivers them.

Figures, beside the reference in the same run: the time from the first POST to
the 100th message, beside the least the stand-in allows (99 s: one message a
second after the first); how many answers were 429; whether the messages
arrived in the order posted (job numbers 1..100).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import tempfile
import time
import uuid
from itertools import pairwise
from pathlib import Path
from typing import Any

import aiohttp

from bench.common import (
    JOB_IN_TEXT,
    body,
    free_port,
    machine,
    median,
    notifybot,
    poll,
    report,
    write_config,
)
from tests.standins.slack_api import SlackStandIn

CHANNEL = "C0PACED"


async def one_run(run: int, args: argparse.Namespace) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="nb-pacing-"))
    async with SlackStandIn(channels={CHANNEL: "paced"}, enforce_rate_limit=True) as slack:
        channels = (f'\n[channels.paced]\ntype = "slack"\ntoken = "${{SLACK_BOT_TOKEN}}"\n'
                    f'channel = "{CHANNEL}"\nbase_url = "{slack.base_url}"\n'
                    '  [[channels.paced.subscriptions]]\n  events = ["job.status.updated"]\n')
        config = write_config(tmp, channels)  # no pace given: the Slack default
        port = free_port()
        server = notifybot(config, port).start()
        nonce = uuid.uuid4().hex[:8]
        try:
            await server.wait_http(f"http://127.0.0.1:{port}/healthz")
            statuses = []
            async with aiohttp.ClientSession(trust_env=False) as session:
                first_post = time.time()
                for job in range(1, args.messages + 1):  # one after the other: ids in job order
                    async with session.post(f"http://127.0.0.1:{port}/hirehop",
                                            data=body(job, nonce),
                                            headers={"Content-Type": "application/json"}) as r:
                        statuses.append(r.status)
                posted = time.time() - first_post
            done = await poll(lambda: len(slack.messages) >= args.messages, args.limit, every=0.2)
            await asyncio.sleep(2.0)  # anything sent twice would arrive now
        finally:
            server.stop()
        jobs = [int(m.group(1)) for m in (JOB_IN_TEXT.search(x.text or "") for x in slack.messages)
                if m]
        times = [m.time for m in slack.messages]
        posts = slack.calls.count("chat.postMessage")
    gaps = [b - a for a, b in pairwise(times)]
    elapsed = times[-1] - first_post if times else float("nan")
    ideal = args.messages - 1.0
    result = {
        "run": run, "posted_in_s": round(posted, 2), "accepted_202": statuses.count(202),
        "delivered": len(jobs), "all_delivered": done,
        "in_order": jobs == list(range(1, args.messages + 1)),
        "first_post_to_last_message_s": round(elapsed, 2),
        "reference_least_possible_s": ideal, "ratio_to_least": round(elapsed / ideal, 3),
        "responses_429": posts - len(slack.messages),
        "gap_s": {"min": round(min(gaps), 3), "median": round(median(gaps), 3),
                  "max": round(max(gaps), 3)} if gaps else {},
    }
    if not args.keep:
        shutil.rmtree(tmp, ignore_errors=True)
    return result


async def main(args: argparse.Namespace) -> None:
    print(f"machine: {machine()}")
    runs = []
    for run in range(1, args.runs + 1):
        result = await one_run(run, args)
        report(f"run {run}", result)
        runs.append(result)
    report("summary", {
        "command": f"python -m bench.pacing --runs {args.runs}",
        "first POST -> 100th message s, median (target <= 105)":
            median(r["first_post_to_last_message_s"] for r in runs),
        "reference: least the stand-in allows, s": runs[0]["reference_least_possible_s"],
        "429 responses per run (target <= 2)": [r["responses_429"] for r in runs],
        "in order, all delivered": [r["in_order"] and r["all_delivered"] for r in runs],
    })


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--messages", type=int, default=100)
    parser.add_argument("--limit", type=float, default=180.0, help="seconds to wait for delivery")
    parser.add_argument("--keep", action="store_true")
    asyncio.run(main(parser.parse_args()))
