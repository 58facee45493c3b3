"""An open-loop (constant-rate) HTTP load generator for webhook POSTs, printing one JSON line.

Request i is due at ``start + i / rate`` whatever happened to the ones before, and
its latency is counted from when it was *due*, not from when it was sent: a
server (or this generator) that falls behind is charged for the wait, so there
is no coordinated omission (the flaw of closed-loop tools such as plain wrk).
Each body is unique (its job number), so every 202 is a new durable event.

    .venv/bin/python -m bench.openloop --url http://127.0.0.1:8080/hirehop --rate 1000 --seconds 15

Bounded: ``rate * seconds`` requests, then at most ``--timeout`` seconds more.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import time
import uuid
from collections import Counter
from urllib.parse import urlsplit

import aiohttp

from bench.common import body, distribution


async def run(url: str, rate: float, seconds: float, connections: int, give_up: float,
              nonce: str) -> dict[str, object]:
    host = urlsplit(url).hostname
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit("load is only ever sent to loopback")
    total = int(rate * seconds)
    bodies = [body(i, nonce) for i in range(total)]
    headers = {"Content-Type": "application/json"}
    latencies: list[float] = []
    statuses: Counter[str] = Counter()
    late = 0.0  # how far behind schedule the generator itself ever was
    loop = asyncio.get_running_loop()
    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(connector=connector, trust_env=False,
                                     timeout=aiohttp.ClientTimeout(total=give_up)) as session:

        async def warm() -> None:  # open connections before the clock starts (GET /healthz)
            async with session.get(url.rsplit("/", 1)[0] + "/healthz") as response:
                await response.read()

        await asyncio.gather(*(warm() for _ in range(min(connections, 32))))
        gc.collect()
        gc.freeze()
        gc.disable()  # no collector pauses inside the measured window (bounded run)

        async def one(i: int, due: float) -> None:
            try:
                async with session.post(url, data=bodies[i], headers=headers) as response:
                    await response.read()
                    statuses[str(response.status)] += 1
            except (aiohttp.ClientError, TimeoutError) as exc:
                statuses[type(exc).__name__] += 1
            latencies.append(loop.time() - due)

        tasks = []
        start = loop.time() + 0.1
        wall = time.time()
        for i in range(total):
            due = start + i / rate
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            else:
                late = max(late, -delay)
            tasks.append(asyncio.create_task(one(i, due)))
        await asyncio.wait(tasks, timeout=give_up)
        elapsed = loop.time() - start
        gc.enable()
    return {"requests": total, "rate": rate, "seconds": seconds, "elapsed": round(elapsed, 2),
            "statuses": dict(statuses), "latency_ms": distribution(latencies),
            "generator_max_late_ms": round(late * 1000, 2), "started": wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--rate", type=float, default=1000.0, help="requests per second")
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--timeout", type=float, default=10.0)
    parser.add_argument("--nonce", default="")
    args = parser.parse_args()
    result = asyncio.run(run(args.url, args.rate, args.seconds, args.connections, args.timeout,
                             args.nonce or uuid.uuid4().hex[:8]))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
