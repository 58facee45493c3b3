"""The quick set: every target of docs/benchmarks.md measured once, then one table, met or not.

    .venv/bin/python -m bench                     # about 6 minutes
    .venv/bin/python -m bench --short             # about 2.5 minutes, smaller sizes
    .venv/bin/python -m bench --only burst,e2e    # some of them

The first rows are context, not targets: the disk's commit, an aiosqlite round
trip, and a CPU yardstick with no notifybot code in it, so that absolute
figures can be read against the machine they were measured on.

Each part is the benchmark script of the same name run with shorter options
(``--runs 1`` where one run says enough); the scripts' own output comes first,
then the table. Exit status 1 when a target is not met, so a regression shows
on the next run. The full figures in docs/benchmarks.md come from the scripts
themselves, with their defaults.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import time
import timeit
from collections.abc import Callable
from dataclasses import asdict, dataclass

from bench import backlog, burst, e2e, fsync, ingest, matching
from bench.common import SOURCE, body, machine

MIB_PER_MB = 1_000_000 / 2**20


@dataclass(frozen=True)
class Figure:
    """One line of the table: what, its target, what was measured, and whether it met it."""

    what: str
    target: str
    measured: str
    met: bool | None  # None: recorded only, no target


def run_burst(opts: argparse.Namespace) -> list[Figure]:
    figures = []
    for latency in (0, opts.burst_latency):
        s = asyncio.run(burst.main(burst.parser().parse_args(
            ["--runs", str(opts.burst_runs), "--events", str(opts.burst_events),
             "--latency", str(latency)])))
        ratio = s["ratio of medians notifybot / naive (target >= 1.5)"]
        per_s = s["messages/s median"]
        cpu = s["server CPU ms per message, median"]
        complete = s["every message delivered once, every round"]
        answer = "Slack answering at once" if not latency else f"Slack answering in {latency:g} ms"
        figures.append(Figure(
            f"burst {opts.burst_events} webhooks, 16 in flight, {answer}: notifybot ÷ naive msgs/s",
            f"≥ {burst.TARGET}, all delivered",
            f"{ratio} ({per_s['notifybot']} / {per_s['naive']}/s; server CPU "
            f"{cpu['notifybot']} / {cpu['naive']} ms/msg"
            f"{'' if complete else ', NOT all delivered'})", bool(s["met"])))
    return figures


def run_ingest(opts: argparse.Namespace) -> list[Figure]:
    if shutil.which("wrk") is None:
        return [Figure("ingest: durable 202/s ÷ bare Quart (wrk)", "≥ 0.85",
                       "not measured: wrk missing", False)]
    s = asyncio.run(ingest.main(ingest.parser().parse_args(
        ["--rounds", "1", "--wrk-seconds", str(opts.ingest_seconds),
         "--rate-seconds", str(opts.ingest_seconds)])))
    ratio = s["ratio median (target >= 0.85)"]
    per_s = s["max 202/s median"]
    return [Figure("ingest: durable 202/s ÷ bare Quart 202/s (wrk, 32 conn.)", "≥ 0.85",
                   f"{ratio} ({per_s['notifybot']:.0f} / {per_s['bare']:.0f}/s)",
                   ratio >= 0.85 and bool(s["durability"]["ok (every 202 stored; extras <= "
                                                          "requests cut in flight or given up)"]))]


def run_e2e(opts: argparse.Namespace) -> list[Figure]:
    s = asyncio.run(e2e.main(e2e.parser().parse_args(
        ["--runs", "1", "--seconds", str(opts.e2e_seconds)])))
    p50 = s["POST -> stand-in p50 ms, median of runs (target <= 30)"]
    p99 = s["POST -> stand-in p99 ms, median of runs (target <= 250)"]
    lost, duplicated = max(s["lost (target 0)"]), max(s["duplicated (target 0)"])
    what = f"steady 100 events/s × {opts.e2e_seconds:g} s, 2 Slack channels: POST → stand-in"
    return [Figure(f"{what} p50", "≤ 30 ms", f"{p50:,.1f} ms", p50 <= 30),
            Figure(f"{what} p99", "≤ 250 ms", f"{p99:,.1f} ms", p99 <= 250),
            Figure("same: lost / duplicated", "0 / 0", f"{lost} / {duplicated}",
                   lost == 0 and duplicated == 0)]


def run_backlog(opts: argparse.Namespace) -> list[Figure]:
    s = asyncio.run(backlog.main(backlog.parser().parse_args(
        ["--runs", "1", "--deliveries", str(opts.backlog_deliveries), "--raw-count", "2000",
         "--window", str(opts.backlog_window)])))
    rate = s["drain deliveries/s, median of runs (target >= 1000)"]
    rss = s["peak RSS MiB, median of runs (target <= 150 MB = 143 MiB)"]
    once = max(s["duplicated per run"]) == 0 and (opts.backlog_window > 0
                                                   or all(s["all delivered once"]))
    window = f", first {opts.backlog_window:g} s" if opts.backlog_window else ""
    return [Figure(f"backlog of {opts.backlog_deliveries:,}: drain rate (SQLite){window}",
                   "≥ 1,000/s, none twice", f"{rate:,.0f}/s{'' if once else ', NOT once each'}",
                   rate >= 1000 and once),
            Figure(f"backlog of {opts.backlog_deliveries:,}: peak RSS while draining{window}",
                   "≤ 150 MB", f"{rss / MIB_PER_MB:.0f} MB", rss <= 150 * MIB_PER_MB)]


def run_matching(opts: argparse.Namespace) -> list[Figure]:
    s = matching.main(matching.parser().parse_args(["--no-growth"]))
    match = s["match median µs, 10 of 10,000 (target <= 50)"]
    build = s["build s (target <= 1)"]
    return [Figure("matching one event, 10 of 10,000 subscriptions", "≤ 50 µs median",
                   f"{match} µs", match <= 50),
            Figure("load() of 10,000 subscriptions", "≤ 1 s", f"{build} s", build <= 1)]


def run_fsync(opts: argparse.Namespace) -> list[Figure]:
    s = fsync.main(fsync.parser().parse_args(["--runs", "3", "--commits", "300"]))
    return [Figure("disk: one synchronous=FULL SQLite commit (context)", "record",
                   f"{s['synchronous=FULL commit, median ms']} ms median", None),
            Figure("one aiosqlite round trip, SELECT 1 (context)", "record",
                   f"{s['aiosqlite round trip, median ms']} ms median", None),
            Figure("CPU: the stdlib's json.loads and json.dumps of the burst's body (context)",
                   "record", f"{cpu_yardstick():.1f} µs, min of 25", None)]


def cpu_yardstick() -> float:
    """Microseconds for a fixed stdlib workload, no notifybot code in it: how fast this
    machine's CPU is today. Absolute figures (drain rate, latency, load()) move with
    it, so a slower machine is told apart from a slower notifybot."""
    raw = body(15471, "yardstick")
    number = 2000
    timings = timeit.repeat(lambda: json.dumps(json.loads(raw)), number=number, repeat=25)
    return min(timings) / number * 1e6


PARTS: dict[str, Callable[[argparse.Namespace], list[Figure]]] = {
    "fsync": run_fsync, "matching": run_matching, "burst": run_burst, "e2e": run_e2e,
    "backlog": run_backlog, "ingest": run_ingest}


def commit() -> str:
    out = subprocess.run(["git", "-C", str(SOURCE), "describe", "--always", "--dirty"],
                         capture_output=True, text=True, check=False)
    return out.stdout.strip() or "?"


def table(figures: list[Figure]) -> str:
    """A Markdown table (pastes into docs/benchmarks.md as it is)."""
    lines = ["| figure | target | measured | met |", "|---|---|---|---|"]
    for f in figures:
        met = "recorded" if f.met is None else "met" if f.met else "NOT MET"
        lines.append(f"| {f.what} | {f.target} | {f.measured} | {met} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    opts = parser().parse_args(argv)
    if opts.short:
        opts.burst_runs, opts.burst_events = 1, 300
        opts.e2e_seconds, opts.backlog_window, opts.ingest_seconds = 10.0, 15.0, 3
    chosen = [p.strip() for p in opts.only.split(",")] if opts.only else list(PARTS)
    unknown = [p for p in chosen if p not in PARTS]
    if unknown:
        parser().error(f"unknown part(s) {', '.join(unknown)}; known: {', '.join(PARTS)}")
    started, load = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), os.getloadavg()
    measured = commit()  # at the start: the tree may move while the set runs
    figures: list[Figure] = []
    for name in chosen:
        began = time.monotonic()
        figures += PARTS[name](opts)
        print(f"\n[{name}: {time.monotonic() - began:.0f} s]", flush=True)
    print(f"\n== quick set, {started}, commit {measured}, load average at start "
          f"{load[0]:.2f} / end {os.getloadavg()[0]:.2f}\n{machine()}\n")
    print(table(figures))
    if opts.json:
        with open(opts.json, "w", encoding="utf-8") as out:
            json.dump({"date": started, "commit": measured,
                       "figures": [asdict(f) for f in figures]}, out, indent=2, ensure_ascii=False)
    return 1 if any(f.met is False for f in figures) else 0


def parser() -> argparse.ArgumentParser:
    """The quick set's options; each shortens one part."""
    options = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    options.add_argument("--only", help=f"comma-separated parts, of: {', '.join(PARTS)}")
    options.add_argument("--short", action="store_true",
                         help="smaller sizes everywhere (burst 1 × 300, e2e 10 s, backlog 15 s)")
    options.add_argument("--burst-runs", type=int, default=3)
    options.add_argument("--burst-events", type=int, default=600)
    options.add_argument("--burst-latency", type=float, default=100.0, metavar="MS",
                         help="the second burst's Slack round trip (the first answers at once)")
    options.add_argument("--e2e-seconds", type=float, default=20.0)
    options.add_argument("--backlog-deliveries", type=int, default=100_000)
    options.add_argument("--backlog-window", type=float, default=30.0,
                         help="seconds of draining measured (0: until all are delivered)")
    options.add_argument("--ingest-seconds", type=int, default=5,
                         help="wrk seconds and open-loop seconds per server")
    options.add_argument("--json", help="also write the figures to this file")
    return options


if __name__ == "__main__":
    sys.exit(main())
