"""Benchmark 1, ingest: durable 202s per second beside a bare Quart endpoint, and p99 at a fixed rate.

    .venv/bin/python -m bench.ingest                      # about 2.5 minutes (3 rounds)

Two servers run side by side, measured one at a time, alternating, in one run:

* ``notifybot serve`` (SQLite, WAL, default logging), whose 202 means the event
  is committed; its one channel is subscribed to an event that is never sent, so
  the router runs for every event but nothing is delivered;
* the reference, :mod:`bench.bare_app`: the same Quart + Hypercorn settings, a
  handler that reads the body and answers 202, storing nothing.

Two load generators, the same for both servers:

* maximum throughput: ``wrk`` (closed loop, 1 thread, ``--connections``
  connections) with a Lua script that makes every body unique, so that every
  202 is a new event; the figure is 202s per second (any other answer is
  counted apart);
* latency at a fixed rate: :mod:`bench.openloop` (open loop, aiohttp), whose
  latencies are measured from when each request was due.

Each round measures both servers with both generators; the ratio is taken
within a round, and the report gives each round and the medians. A third
server, ``bench.bare_app --checks``, is measured with wrk in each round too:
the bare endpoint plus notifybot's in-memory work per request (decode, key
check, redaction, digest, parse, one log line) and still no storage, the
ceiling of any storage design in this one process. At the end
notifybot's database must hold exactly as many events as it answered 202.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sqlite3
import subprocess
import tempfile
import uuid
from pathlib import Path
from typing import Any

from bench.common import (
    PYTHON,
    ROOT,
    Process,
    body_template,
    free_port,
    machine,
    median,
    notifybot,
    report,
    slack_channel,
    write_config,
)

LUA = r"""
local template = [==[%(template)s]==]
local nonce = "%(nonce)s"
local counter = 0
local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end

function init(args)
  accepted, other = 0, 0
end

function request()
  counter = counter + 1
  local text = template:gsub("__N__", tostring(tid * 100000000 + counter))
  text = text:gsub("__NONCE__", nonce)
  return wrk.format("POST", "/hirehop", {["Content-Type"] = "application/json"}, text)
end

function response(status, headers, body)
  if status == 202 then accepted = accepted + 1 else other = other + 1 end
end

function done(summary, latency, requests)
  local a, o = 0, 0
  for _, t in ipairs(threads) do a = a + t:get("accepted"); o = o + t:get("other") end
  local e = summary.errors
  io.write(string.format(
    'RESULT {"requests": %%d, "accepted": %%d, "other": %%d, "seconds": %%.3f, ' ..
    '"errors": %%d, "p50_ms": %%.2f, "p99_ms": %%.2f, "max_ms": %%.2f}\n',
    summary.requests, a, o, summary.duration / 1e6,
    e.connect + e.read + e.write + e.timeout,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
end
"""


def wrk(url: str, script: Path, seconds: int, connections: int) -> dict[str, Any]:
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s",
                          "-s", str(script), url], capture_output=True, text=True,
                         timeout=seconds + 60)
    if out.returncode != 0 or "RESULT " not in out.stdout:
        raise RuntimeError(f"wrk failed ({out.returncode}) against {url}:\n{out.stdout}\n{out.stderr}")
    line = next(x for x in out.stdout.splitlines() if x.startswith("RESULT "))
    result: dict[str, Any] = json.loads(line.removeprefix("RESULT "))
    result["accepted_per_s"] = round(result["accepted"] / result["seconds"], 1)
    return result


def openloop(url: str, rate: float, seconds: float) -> dict[str, Any]:
    out = subprocess.run([PYTHON, "-m", "bench.openloop", "--url", url, "--rate", str(rate),
                          "--seconds", str(seconds), "--nonce", uuid.uuid4().hex[:8]],
                         capture_output=True, text=True, check=True, cwd=ROOT,
                         timeout=seconds + 60)
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


async def main(args: argparse.Namespace) -> dict[str, Any]:
    print(f"machine: {machine()}")
    tmp = Path(tempfile.mkdtemp(prefix="nb-ingest-"))
    # Subscribed to an event the load never sends: every event is routed, none delivered.
    config = write_config(tmp, slack_channel("team", "C0BENCH", "http://127.0.0.1:9/api/",
                                             events=["invoice.status.updated"]))
    bare_port, nb_port = free_port(), free_port()
    checks_port = free_port()
    servers = {
        "bare": Process([PYTHON, "-m", "bench.bare_app", "--bind", f"127.0.0.1:{bare_port}"],
                        cwd=tmp, name="bare"),
        "notifybot": notifybot(config, nb_port),
        "bare+checks": Process([PYTHON, "-m", "bench.bare_app", "--checks",
                                "--bind", f"127.0.0.1:{checks_port}"], cwd=tmp, name="checks"),
    }
    urls = {"bare": f"http://127.0.0.1:{bare_port}/hirehop",
            "notifybot": f"http://127.0.0.1:{nb_port}/hirehop",
            "bare+checks": f"http://127.0.0.1:{checks_port}/hirehop"}
    script = tmp / "post.lua"
    accepted_total = 0
    cut_at_most = 0  # wrk stops with requests in flight: stored, never answered
    rounds: list[dict[str, Any]] = []
    try:
        for name, server in servers.items():
            server.start()
            await server.wait_http(urls[name].replace("/hirehop", "/healthz"))
        script.write_text(LUA % {"template": body_template(), "nonce": "warm"})
        for name in servers:  # warm-up: imports, first connections, SQLite pages
            warm = wrk(urls[name], script, 3, args.connections)
            if name == "notifybot":
                accepted_total += warm["accepted"]
                cut_at_most += args.connections
        for r in range(args.rounds):
            order = ["bare", "notifybot"] if r % 2 == 0 else ["notifybot", "bare"]
            entry: dict[str, Any] = {"round": r + 1}
            for name in [*order, "bare+checks"]:
                script.write_text(LUA % {"template": body_template(), "nonce": f"r{r}{name}"})
                result = wrk(urls[name], script, args.wrk_seconds, args.connections)
                entry[f"wrk_{name}"] = result
                if name == "notifybot":
                    accepted_total += result["accepted"]
                    cut_at_most += args.connections
            for name in order:
                result = openloop(urls[name], args.rate, args.rate_seconds)
                entry[f"fixed_{name}"] = result
                if name == "notifybot":
                    accepted_total += result["statuses"].get("202", 0)
                    # Requests the generator gave up on (timeout) may still be committed.
                    cut_at_most += result["requests"] - result["statuses"].get("202", 0)
            entry["throughput_ratio"] = round(entry["wrk_notifybot"]["accepted_per_s"]
                                              / entry["wrk_bare"]["accepted_per_s"], 3)
            entry["checks_ratio"] = round(entry["wrk_bare+checks"]["accepted_per_s"]
                                          / entry["wrk_bare"]["accepted_per_s"], 3)
            rounds.append(entry)
            report(f"round {r + 1}", {
                "max 202/s": {n: entry[f"wrk_{n}"]["accepted_per_s"] for n in servers},
                "ratio": entry["throughput_ratio"],
                "ceiling ratio (bare+checks / bare)": entry["checks_ratio"],
                "wrk p99 ms": {n: entry[f"wrk_{n}"]["p99_ms"] for n in servers},
                f"fixed {args.rate:g}/s": {n: {**entry[f"fixed_{n}"]["latency_ms"],
                                               "statuses": entry[f"fixed_{n}"]["statuses"],
                                               "late_ms": entry[f"fixed_{n}"]["generator_max_late_ms"]}
                                           for n in order},
            })
    finally:
        for server in servers.values():
            server.stop()
    with sqlite3.connect(tmp / "notifybot.db") as db:
        stored = db.execute("SELECT COUNT(*) FROM events").fetchone()[0]
    summary = {
        "command": "python -m bench.ingest " + " ".join(
            f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if k != "keep"),
        "connections": args.connections,
        "max 202/s median": {n: median(e[f"wrk_{n}"]["accepted_per_s"] for e in rounds)
                             for n in servers},
        "ceiling: bare+checks / bare, median": median(e["checks_ratio"] for e in rounds),
        "ratio per round": [e["throughput_ratio"] for e in rounds],
        "ratio median (target >= 0.85)": median(e["throughput_ratio"] for e in rounds),
        f"p99 ms at {args.rate:g}/s median (target <= 25)": {
            n: median(e[f"fixed_{n}"]["latency_ms"]["p99"] for e in rounds)
            for n in ("bare", "notifybot")},
        f"p50 ms at {args.rate:g}/s median": {
            n: median(e[f"fixed_{n}"]["latency_ms"]["p50"] for e in rounds)
            for n in ("bare", "notifybot")},
        f"p99 ms at {args.rate:g}/s per round": [
            [e[f"fixed_{n}"]["latency_ms"]["p99"] for n in ("bare", "notifybot")] for e in rounds],
        "durability": {"202s answered": accepted_total, "events stored": stored,
                       "ok (every 202 stored; extras <= requests cut in flight or given up)":
                           0 <= stored - accepted_total <= cut_at_most},
    }
    report("summary", summary)
    if not args.keep:
        shutil.rmtree(tmp, ignore_errors=True)
    return summary


def parser() -> argparse.ArgumentParser:
    """This script's options (``python -m bench`` reuses them)."""
    options = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_argument("--rounds", type=int, default=3)
    options.add_argument("--wrk-seconds", type=int, default=8)
    options.add_argument("--connections", type=int, default=32)
    options.add_argument("--rate", type=float, default=1000.0)
    options.add_argument("--rate-seconds", type=float, default=10.0)
    options.add_argument("--keep", action="store_true", help="keep the temporary folder and logs")
    return options


if __name__ == "__main__":
    asyncio.run(main(parser().parse_args()))
