"""The reference for delivery throughput: notifybot's own Slack sender, with no storage at all.

Posts ``--count`` messages through :class:`notifybot.channels.slack.SlackSender`
(slack-sdk, one aiohttp session) with ``--concurrency`` in flight, the outbox's
default, and prints one JSON line with the rate. What the outbox achieves
beside this is what storage and scheduling cost.

    .venv/bin/python -m bench.rawsend --base-url http://127.0.0.1:PORT/api/ --channel C0BENCH
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

from bench.common import SLACK_TOKEN
from notifybot.channels.slack import SlackSender
from notifybot.secret import Secret


async def run(base_url: str, channels: list[str], count: int, concurrency: int) -> dict[str, float]:
    senders = [SlackSender(f"raw{i}", token=Secret(SLACK_TOKEN), channel=c, base_url=base_url, pace=0)
               for i, c in enumerate(channels)]
    for sender in senders:
        await sender.open()
    gate = asyncio.Semaphore(concurrency)
    failed = 0

    async def one(n: int) -> None:
        nonlocal failed
        async with gate:
            try:
                await senders[n % len(senders)].send({"text": f"Job {n} raw", "blocks": None})
            except Exception:  # counted, not fatal: the reference must finish
                failed += 1

    start = time.perf_counter()
    await asyncio.gather(*(one(n) for n in range(count)))
    elapsed = time.perf_counter() - start
    for sender in senders:
        await sender.close()
    return {"count": count, "failed": failed, "seconds": round(elapsed, 3),
            "per_s": round(count / elapsed, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--channel", action="append", required=True)
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    if not args.base_url.startswith(("http://127.0.0.1:", "http://localhost:")):
        raise SystemExit("load is only ever sent to loopback")
    print(json.dumps(asyncio.run(run(args.base_url, args.channel, args.count, args.concurrency))))


if __name__ == "__main__":
    main()
