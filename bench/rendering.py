"""Rendering: what routing one event costs in the pure core, per message kind.

    .venv/bin/python -m bench.rendering                   # about 15 seconds

The event is the burst's (``samples/job.status.updated.constructed.json``, the
job status change every other benchmark posts), matched by one subscription of
a channel of each kind. Figures, in microseconds per event, the minimum over
``--repeat`` timings of ``--number`` calls each (the least disturbed by the
rest of the machine; the median is printed beside it):

* ``render``: :meth:`notifybot.rendering.Renderer.render` alone (Jinja2, the
  event's values in words);
* ``plan <kind>``: :func:`notifybot.pipeline.plan` for that kind, what the
  router does per event: render, format for the channel (Block Kit, HTML...)
  and make the delivery;
* ``parse``: decoding the stored body and :func:`notifybot.events.parse_event`,
  for scale.

The renderer is made as ``notifybot serve`` makes it (``prepare``: every
template compiled and checked), so what a template is made of is known.
``BENCH_NOTIFYBOT_SOURCE`` is not used: this runs in this process, from the
checkout it is in.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import timeit
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from bench.common import EXPORT_KEY, body, machine, report
from notifybot.channels import build_sender
from notifybot.events import parse_event
from notifybot.ingest import decode
from notifybot.pipeline import plan, prepare

KINDS = {
    "slack": 'type = "slack"\ntoken = "xoxb-bench"\nchannel = "C0BENCH"',
    "telegram": 'type = "telegram"\ntoken = "123:bench"\nchat_id = "-100123"',
    "email": ('type = "email"\nhost = "127.0.0.1"\nport = 25\nsecurity = "none"\n'
              'from = "bot@example.com"\nto = ["ops@example.com"]'),
    "console": 'type = "console"',
}


def config_file(folder: Path, kind: str) -> Path:
    """A subscriptions.toml with one channel of ``kind`` hearing job status changes."""
    path = folder / f"{kind}.toml"
    path.write_text(f'[server]\ndatabase = "sqlite:///{folder / "unused.db"}"\n\n'
                    f'[hirehop]\nexport_key = "{EXPORT_KEY}"\n\n[channels.bench]\n{KINDS[kind]}\n'
                    '  [[channels.bench.subscriptions]]\n  events = ["job.status.updated"]\n',
                    encoding="utf-8")
    return path


def parse_stored(raw: bytes) -> object:
    """What routing does first with a stored body."""
    return parse_event(decode(raw, "application/json"))


def timing(call: Callable[[], Any], number: int, repeat: int) -> dict[str, float]:
    """Microseconds per call: the minimum and the median over ``repeat`` timings."""
    per_call = [t / number * 1e6 for t in timeit.repeat(call, number=number, repeat=repeat)]
    return {"min_us": round(min(per_call), 1), "median_us": round(statistics.median(per_call), 1)}


def main(args: argparse.Namespace) -> dict[str, Any]:
    print(f"machine: {machine()}")
    raw = body(15471, "render")
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="nb-render-") as tmp:
        for kind in KINDS:
            config, renderer, _ = prepare(config_file(Path(tmp), kind))
            senders = {name: build_sender(name, chan.options)
                       for name, chan in config.channels.items()}
            event = parse_event(decode(raw, "application/json"))
            subscriptions = config.index.match(event)
            assert len(subscriptions) == 1, "the benchmark event must match its subscription"
            if kind == "slack":
                results["render"] = timing(partial(renderer.render, event), args.number,
                                           args.repeat)
                results["parse"] = timing(partial(parse_stored, raw), args.number, args.repeat)
            results[f"plan {kind}"] = timing(
                partial(plan, event, subscriptions, renderer, senders, config.channels,
                        config.people), args.number, args.repeat)
    summary = {"command": f"python -m bench.rendering --number {args.number} "
                          f"--repeat {args.repeat}",
               "µs per event (min of repeats; median beside it)": results}
    report("summary", summary)
    return summary


def parser() -> argparse.ArgumentParser:
    options = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_argument("--number", type=int, default=200, help="calls per timing")
    options.add_argument("--repeat", type=int, default=25, help="timings per figure")
    return options


if __name__ == "__main__":
    main(parser().parse_args())
