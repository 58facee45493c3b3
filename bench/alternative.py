"""Benchmark 6, the alternative: a web handler calling Apprise per request, beside notifybot.

    .venv/bin/python -m bench.alternative                 # about 2 minutes

Both send to the same Slack stand-in, which runs in this process.

* Throughput (``--runs`` rounds, alternating): ``--events`` webhooks posted
  with ``--concurrency`` in flight; the figure is messages at the stand-in per
  second, from the first POST to the last message. notifybot's Slack channel has
  ``pace = 0`` here, since the stand-in does not throttle and Apprise does not
  pace a fresh ``Apprise`` object. Apprise's own pattern of one shared object is
  measured too, briefly: Apprise throttles it to one Slack call per 1.2 s.
* Loss: the stand-in answers every ``--refuse-every``-th ``chat.postMessage``
  with 429 (``Retry-After: 1``); ``--loss-events`` webhooks are posted to each,
  and a message is lost when its job number never reaches the stand-in.
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
import psutil
from aiohttp import web

from bench.common import (
    JOB_IN_TEXT,
    PYTHON,
    Process,
    body,
    environment,
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
from tests.standins.slack_api import SlackStandIn, _ratelimited

CHANNEL = "C0GENERAL"


class FlakySlack(SlackStandIn):
    """The Slack stand-in, answering every ``refuse_every``-th post with 429 when set."""

    def __init__(self, latency: float = 0.0) -> None:
        super().__init__(channels={CHANNEL: "general"})
        self.refuse_every = 0
        self.posts = 0
        self.refused = 0
        self.latency = latency  # seconds before each answer: Slack's round trip over the internet

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if self.latency > 0:
            await asyncio.sleep(self.latency)
        return await super()._handle(request)

    def _post_message(self, args: Any) -> web.Response:
        self.posts += 1
        if self.refuse_every and self.posts % self.refuse_every == 0:
            self.refused += 1
            return _ratelimited(1)
        attachments = args.get("attachments")
        if not args.get("text") and not args.get("blocks") and isinstance(attachments, list):
            # Slack accepts a message made of legacy attachments only, which is what
            # Apprise sends; the test stand-in knows text and blocks, so read their text.
            args = {**args, "text": " ".join(str(a.get("text", "")) for a in attachments
                                             if isinstance(a, dict))}
        return super()._post_message(args)

    def jobs(self) -> Counter[int]:
        found: Counter[int] = Counter()
        for message in self.messages:
            match = JOB_IN_TEXT.search(message.text or "")
            if match:
                found[int(match.group(1))] += 1
        return found


async def post_all(url: str, jobs: range, concurrency: int) -> tuple[Counter[int], float]:
    """POST one webhook per job, ``concurrency`` at a time; (statuses, seconds)."""
    nonce = uuid.uuid4().hex[:8]
    statuses: Counter[int] = Counter()
    gate = asyncio.Semaphore(concurrency)
    async with aiohttp.ClientSession(trust_env=False,
                                     timeout=aiohttp.ClientTimeout(total=60)) as session:

        async def one(job: int) -> None:
            async with gate, session.post(url, data=body(job, nonce),
                                          headers={"Content-Type": "application/json"}) as r:
                await r.read()
                statuses[r.status] += 1

        start = time.time()
        await asyncio.gather(*(one(job) for job in jobs))
    return statuses, time.time() - start


class CpuClock:
    """CPU seconds used from now on by a server process (with its children) and by this
    process (the load generator and the stand-in): where each message's cost lands."""

    def __init__(self, pid: int) -> None:
        self.server = psutil.Process(pid)
        self.start = self._times()

    def _times(self) -> tuple[float, float]:
        t = self.server.cpu_times()
        return t.user + t.system + t.children_user + t.children_system, time.process_time()

    def used(self) -> dict[str, float]:
        server, harness = self._times()
        return {"server": server - self.start[0], "harness": harness - self.start[1]}


class Systems:
    """Starts either system against the stand-in, in a scratch folder."""

    def __init__(self, slack: FlakySlack, tmp: Path, *, naive_session_per_call: bool = False) -> None:
        self.slack, self.tmp = slack, tmp
        self.naive_session_per_call = naive_session_per_call

    async def start(self, name: str, count_sql: str | None = None) -> tuple[Process, str]:
        port = free_port()
        if name == "notifybot":
            config = write_config(self.tmp / f"nb-{port}", slack_channel(
                "team", CHANNEL, self.slack.base_url, pace=0.0))
            env = environment(BENCH_SQL_COUNTS=count_sql) if count_sql else None
            server = notifybot(config, port, env=env).start()
        elif name == "naive":
            folder = self.tmp / f"{name}-{port}"
            folder.mkdir()
            args = [PYTHON, "-m", "bench.naive_app", "--bind", f"127.0.0.1:{port}",
                    "--channel", CHANNEL]
            server = Process(args + (["--session-per-call"] if self.naive_session_per_call else []),
                             cwd=folder, name=name,
                             env=environment(NAIVE_SLACK_API=self.slack.base_url)).start()
        else:
            folder = self.tmp / f"{name}-{port}"
            folder.mkdir()
            args = [PYTHON, "-m", "bench.apprise_app", "--bind", f"127.0.0.1:{port}"]
            server = Process(args + (["--shared"] if name == "apprise-shared" else []),
                             cwd=folder, name=name,
                             env=environment(APPRISE_SLACK_API=self.slack.base_url)).start()
        await server.wait_http(f"http://127.0.0.1:{port}/healthz")
        return server, f"http://127.0.0.1:{port}/hirehop"

    async def throughput(self, name: str, events: int, concurrency: int, *, limit: float = 60.0,
                         profile: str | None = None, count_sql: str | None = None) -> dict[str, Any]:
        """``events`` webhooks, ``concurrency`` in flight; messages/s from first POST to last message.

        ``profile``: a py-spy raw profile of the server during the burst, written there;
        ``count_sql``: notifybot's SQL counted (bench/sqlcount), written there at its exit.
        """
        server, url = await self.start(name, count_sql)
        try:
            self.slack.messages.clear()
            async with profiled(server.pid, profile):
                cpu = CpuClock(server.pid)
                start = time.time()
                statuses, posting = await post_all(url, range(1, events + 1), concurrency)
                await poll(lambda: len(self.slack.messages) >= events, limit)
                used = cpu.used()
        finally:
            server.stop()
        last = self.slack.messages[-1].time if self.slack.messages else start
        jobs = self.slack.jobs()
        delivered = len(self.slack.messages)
        return {"events": events, "statuses": dict(statuses), "posting_s": round(posting, 2),
                "delivered": delivered, "seconds": round(last - start, 2),
                "all_delivered_once": len(jobs) == events and delivered == events,
                "delivered_per_s": round(delivered / (last - start), 1) if delivered else 0.0,
                "cpu_ms_per_message": {who: round(1000 * seconds / max(delivered, 1), 2)
                                       for who, seconds in used.items()}}

    async def loss(self, name: str, events: int, concurrency: int, refuse_every: int,
                   limit: float) -> dict[str, Any]:
        server, url = await self.start(name)
        try:
            self.slack.messages.clear()
            self.slack.posts = self.slack.refused = 0
            self.slack.refuse_every = refuse_every
            statuses, _ = await post_all(url, range(1, events + 1), concurrency)
            await poll(lambda: len(self.slack.jobs()) >= events, limit, every=0.2)
            await asyncio.sleep(1.5)  # anything sent twice would arrive now
        finally:
            self.slack.refuse_every = 0
            server.stop()
        jobs = self.slack.jobs()
        return {"events": events, "answers": dict(statuses), "answered_429_by_standin":
                self.slack.refused, "delivered": len(jobs), "lost": events - len(jobs),
                "duplicated": sum(n - 1 for n in jobs.values() if n > 1)}


async def main(args: argparse.Namespace) -> None:
    print(f"machine: {machine()}")
    tmp = Path(tempfile.mkdtemp(prefix="nb-alternative-"))
    async with FlakySlack() as slack:
        systems = Systems(slack, tmp)
        rounds = []
        for r in range(args.runs):
            order = ["apprise", "notifybot"] if r % 2 == 0 else ["notifybot", "apprise"]
            entry = {name: await systems.throughput(name, args.events, args.concurrency)
                     for name in order}
            entry["ratio_notifybot_over_apprise"] = round(
                entry["notifybot"]["delivered_per_s"] / entry["apprise"]["delivered_per_s"], 2)
            report(f"throughput round {r + 1}", entry)
            rounds.append(entry)
        shared = await systems.throughput("apprise-shared", args.shared_events, args.concurrency)
        report("throughput, one shared Apprise object", shared)
        losses = {name: await systems.loss(name, args.loss_events, args.concurrency,
                                           args.refuse_every, args.limit)
                  for name in ("apprise", "notifybot")}
        report(f"loss, every {args.refuse_every}th post answered 429", losses)
    report("summary", {
        "command": f"python -m bench.alternative --runs {args.runs} --events {args.events}",
        "delivered/s median: apprise per request": median(r["apprise"]["delivered_per_s"]
                                                          for r in rounds),
        "delivered/s median: notifybot": median(r["notifybot"]["delivered_per_s"] for r in rounds),
        "ratio notifybot / apprise per round": [r["ratio_notifybot_over_apprise"] for r in rounds],
        "delivered/s: apprise, one shared object": shared["delivered_per_s"],
        f"lost of {args.loss_events} with every {args.refuse_every}th post 429":
            {name: loss["lost"] for name, loss in losses.items()},
        "duplicated": {name: loss["duplicated"] for name, loss in losses.items()},
    })
    if not args.keep:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--events", type=int, default=600)
    parser.add_argument("--shared-events", type=int, default=10)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--loss-events", type=int, default=200)
    parser.add_argument("--refuse-every", type=int, default=10)
    parser.add_argument("--limit", type=float, default=90.0,
                        help="seconds to wait for notifybot's retries")
    parser.add_argument("--keep", action="store_true")
    asyncio.run(main(parser.parse_args()))
