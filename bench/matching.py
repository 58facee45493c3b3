"""Benchmark 3, matching: 10,000 subscriptions over 500 channels; build time and time per event.

    .venv/bin/python -m bench.matching                    # about 20 seconds

The subscriptions are shaped as a large HireHop tenant writes them: HireHop has
a handful of event names, so the name alone does not tell subscriptions apart;
their ``when`` conditions do (a depot, a status). Of 10,000:

* ``--matches`` (10) hear the benchmark event: ``job.status.updated`` (or
  ``job.*``) at depot 7 when the status becomes Booked;
* 40 % are for ``job.status.updated`` at other depots, 10 % at depot 7 for
  another status, 10 % use globs (``job.*``, ``*``) at other depots, and 40 %
  are for other event names.

Figures, each beside its reference in the same run:

* building: ``notifybot.config.load`` of a generated subscriptions.toml (TOML,
  validation, 500 Slack senders checked, the index), median of 5; and the first
  match of an event name, which files that name's candidates by value once;
* matching one event: ``SubscriptionIndex.match`` per call, median and p99 of
  2,000 calls, beside the same subscriptions evaluated one by one (no index);
* growth: the same with 2,500 / 10,000 / 40,000 subscriptions at 10 matches,
  and with 1 / 10 / 100 matches at 10,000.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.common import machine, percentile, report
from notifybot.conditions import compile_conditions
from notifybot.config import load
from notifybot.events import Event, parse_event
from notifybot.matching import Subscription, SubscriptionIndex, evaluate
from notifybot.statuses import StatusLabels

LABELS = StatusLabels()
OTHER_EVENTS = ["job.created", "job.updated", "job.deleted", "invoice.created",
                "invoice.status.updated", "invoice.updated", "contact.created", "contact.updated",
                "project.created", "project.updated", "purchase_order.created", "stock.updated"]
STATUSES = ["Enquiry", "Provisional", "Prepped", "Dispatched", "Returned", "Cancelled"]
EVENT = parse_event({
    "event": "job.status.updated", "user_email": "sam@example-hire.co.uk", "company_id": 42,
    "job": 15471, "data": {"NUMBER": 15471, "DEPOT": 7, "STATUS": 2, "COMPANY": "Northern Lights"},
    "changes": {"STATUS": {"from": "1", "to": "2"}},
})


def definitions(total: int, matches: int, seed: int = 7) -> list[dict[str, Any]]:
    """``total`` subscription tables (as in TOML), exactly ``matches`` of which hear EVENT."""
    rng = random.Random(seed)
    subs: list[dict[str, Any]] = []
    for i in range(matches):
        events = ["job.*"] if i % 3 == 2 else ["job.status.updated"]
        subs.append({"events": events, "when": {"data.DEPOT": 7, "changes.STATUS.to": "Booked"},
                     "name": f"hit{i}"})
    for i in range(total - matches):
        kind = rng.random()
        depot = rng.randrange(8, 2000)
        if kind < 0.4:
            sub = {"events": ["job.status.updated"],
                   "when": {"data.DEPOT": depot, "changes.STATUS.to": rng.choice(["Booked", *STATUSES])}}
        elif kind < 0.5:
            sub = {"events": ["job.status.updated"],
                   "when": {"data.DEPOT": 7, "changes.STATUS.to": rng.choice(STATUSES)}}
        elif kind < 0.6:
            sub = {"events": [rng.choice(["job.*", "*"])], "when": {"data.DEPOT": depot}}
        else:
            sub = {"events": [rng.choice(OTHER_EVENTS)], "when": {"data.DEPOT": rng.randrange(1, 2000)}}
        sub["name"] = f"s{i}"
        subs.append(sub)
    rng.shuffle(subs)
    return subs


def subscriptions(defs: list[dict[str, Any]], channels: int) -> list[Subscription]:
    return [Subscription(channel=f"c{i % channels}", id=d["name"], events=tuple(d["events"]),
                         when=compile_conditions(d["when"], labels=LABELS, where="", key="when"))
            for i, d in enumerate(defs)]


def toml(defs: list[dict[str, Any]], channels: int) -> str:
    lines = ['[hirehop]\nexport_key = "BENCHKEY123"\n']
    for c in range(channels):
        lines.append(f'[channels.c{c}]\ntype = "slack"\ntoken = "xoxb-bench"\n'
                     f'channel = "C{c:08d}"\n')
        for d in defs[c::channels]:
            when = ", ".join(f'"{k}" = {json.dumps(v)}' for k, v in d["when"].items())
            lines.append(f'  [[channels.c{c}.subscriptions]]\n  name = "{d["name"]}"\n'
                         f'  events = {json.dumps(d["events"])}\n  when = {{ {when} }}\n')
    return "\n".join(lines)


def per_call(fn: Callable[[], object], calls: int) -> dict[str, float]:
    """Median and p99 of single calls, in µs (after up to 200 warm-up calls)."""
    for _ in range(min(200, calls)):
        fn()
    times = []
    for _ in range(calls):
        start = time.perf_counter_ns()
        fn()
        times.append((time.perf_counter_ns() - start) / 1000)
    return {"median_us": round(statistics.median(times), 2),
            "p99_us": round(percentile(times, 99), 2)}


def naive(subs: list[Subscription], event: Event) -> list[Subscription]:
    return [s for s in subs if evaluate(s, event, LABELS).matched]


def measure(total: int, matches: int, channels: int, calls: int) -> dict[str, Any]:
    subs = subscriptions(definitions(total, matches), channels)
    start = time.perf_counter()
    index = SubscriptionIndex(subs, LABELS)
    built = time.perf_counter() - start
    start = time.perf_counter()
    found = index.match(EVENT)  # the first event of a name also files that name's candidates
    first = time.perf_counter() - start
    assert len(found) == matches, (len(found), matches)
    assert found == naive(subs, EVENT)
    indexed = per_call(lambda: index.match(EVENT), calls)
    scan = per_call(lambda: naive(subs, EVENT), max(20, calls // 100))
    return {"subscriptions": total, "matches": matches, "index_build_ms": round(built * 1000, 1),
            "first_match_ms": round(first * 1000, 1),
            "match": indexed, "reference_scan": scan,
            "ratio_scan_over_index": round(scan["median_us"] / indexed["median_us"], 1)}


def main(args: argparse.Namespace) -> dict[str, Any]:
    print(f"machine: {machine()}")
    defs = definitions(args.subscriptions, args.matches)
    with tempfile.TemporaryDirectory(prefix="nb-match-") as folder:
        path = Path(folder) / "subscriptions.toml"
        path.write_text(toml(defs, args.channels), encoding="utf-8")
        builds = []
        for _ in range(5):
            start = time.perf_counter()
            config = load(path, environ={})
            builds.append(time.perf_counter() - start)
        assert len(config.index.all) == args.subscriptions
        assert len(config.channels) == args.channels
        assert len(config.index.match(EVENT)) == args.matches
    build = {"subscriptions": args.subscriptions, "channels": args.channels,
             "load_s_median (target <= 1)": round(statistics.median(builds), 3),
             "load_s_each": [round(b, 3) for b in builds]}
    report("build (notifybot.config.load)", build)
    target = measure(args.subscriptions, args.matches, args.channels, args.calls)
    report(f"match, {args.subscriptions} subscriptions, {args.matches} match", target)
    growth: dict[str, Any] = {}
    if args.growth:
        by_total = [measure(t, args.matches, args.channels, args.calls)
                    for t in (args.subscriptions // 4, args.subscriptions, args.subscriptions * 4)]
        by_matches = [measure(args.subscriptions, m, args.channels, args.calls)
                      for m in (1, 10, 100)]
        growth = {
            "by total (10 match): subscriptions -> median µs":
                {r["subscriptions"]: r["match"]["median_us"] for r in by_total},
            "by matches (10,000 total): matches -> median µs":
                {r["matches"]: r["match"]["median_us"] for r in by_matches},
            "reference scan by total: subscriptions -> median µs":
                {r["subscriptions"]: r["reference_scan"]["median_us"] for r in by_total},
        }
    report("growth", growth)
    summary = {
        "command": "python -m bench.matching",
        "build s (target <= 1)": build["load_s_median (target <= 1)"],
        "match median µs, 10 of 10,000 (target <= 50)": target["match"]["median_us"],
        "match p99 µs": target["match"]["p99_us"],
        "first event of a name, ms (files its candidates once)": target["first_match_ms"],
        "reference scan median µs": target["reference_scan"]["median_us"],
        **growth,
    }
    report("summary", summary)
    return summary


def parser() -> argparse.ArgumentParser:
    """This script's options (``python -m bench`` reuses them)."""
    options = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_argument("--subscriptions", type=int, default=10_000)
    options.add_argument("--channels", type=int, default=500)
    options.add_argument("--matches", type=int, default=10)
    options.add_argument("--calls", type=int, default=2000)
    options.add_argument("--no-growth", dest="growth", action="store_false",
                         help="only the target figure, not how it grows with the sizes")
    return options


if __name__ == "__main__":
    main(parser().parse_args())
