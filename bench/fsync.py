"""The disk's price of a durable commit: a tiny SQLite commit loop, as notifybot's store commits.

    .venv/bin/python -m bench.fsync                       # about 10 s

Each commit is one small ``INSERT`` in WAL mode, as notifybot's SQLite store
opens its database (``journal_mode=WAL``). With ``synchronous=FULL`` (what a 202
promises) every commit waits for an fsync of the WAL; the reference, in the same
run and the same folder, is ``synchronous=OFF``, which never waits for the disk.
The difference is what the disk charges per commit, and so the least a write
path pays per commit it does not share with others. ``--folder`` measures
another disk (e.g. a tmpfs) instead of the temporary folder.

Beside it, the other unit cost of notifybot's SQLite store: one round trip to
aiosqlite's thread (``execute_fetchall("SELECT 1")``: queue the call, wake the
thread, run, wake the event loop), against the same statement run directly.
The store pays one per statement, whether or not it commits.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import aiosqlite

from bench.common import machine, percentile, report


def commit_loop(path: Path, synchronous: str, commits: int) -> dict[str, float]:
    """``commits`` single-row commits; their median, p99 and rate (ms, ms, per s)."""
    path.unlink(missing_ok=True)
    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(f"PRAGMA synchronous={synchronous}")
        db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT)")
        row = "x" * 900  # about a webhook's size
        times = []
        start = time.perf_counter()
        for _ in range(commits):
            began = time.perf_counter()
            db.execute("INSERT INTO t (body) VALUES (?)", (row,))  # autocommit: one commit
            times.append(time.perf_counter() - began)
        total = time.perf_counter() - start
    finally:
        db.close()
    return {"median_ms": round(statistics.median(times) * 1000, 3),
            "p99_ms": round(percentile(times, 99) * 1000, 3),
            "commits_per_s": round(commits / total, 1)}


async def round_trips(path: Path, calls: int) -> dict[str, float]:
    """Median ms of one ``SELECT 1`` through aiosqlite, and run directly on sqlite3."""
    async with aiosqlite.connect(path) as db:
        times = []
        for _ in range(calls):
            began = time.perf_counter()
            await db.execute_fetchall("SELECT 1")
            times.append(time.perf_counter() - began)
    direct = sqlite3.connect(path)
    try:
        plain = []
        for _ in range(calls):
            began = time.perf_counter()
            direct.execute("SELECT 1").fetchall()
            plain.append(time.perf_counter() - began)
    finally:
        direct.close()
    return {"aiosqlite_median_ms": round(statistics.median(times) * 1000, 3),
            "aiosqlite_p99_ms": round(percentile(times, 99) * 1000, 3),
            "direct_median_ms": round(statistics.median(plain) * 1000, 4)}


def main(args: argparse.Namespace) -> dict[str, Any]:
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory(prefix="nb-fsync-", dir=args.folder) as folder:
        path = Path(folder) / "fsync.db"
        runs = [{"full": commit_loop(path, "FULL", args.commits),
                 "off": commit_loop(path, "OFF", args.commits),
                 "round_trip": asyncio.run(round_trips(path, args.commits))}
                for _ in range(args.runs)]
    for number, run in enumerate(runs, 1):
        report(f"run {number}", run)
    summary = {
        "command": f"python -m bench.fsync --runs {args.runs} --commits {args.commits}"
                   + (f" --folder {args.folder}" if args.folder else ""),
        "synchronous=FULL commit, median ms": statistics.median(r["full"]["median_ms"] for r in runs),
        "synchronous=FULL commits/s, median": statistics.median(
            r["full"]["commits_per_s"] for r in runs),
        "reference synchronous=OFF commit, median ms": statistics.median(
            r["off"]["median_ms"] for r in runs),
        "per run FULL median / p99 ms": [[r["full"]["median_ms"], r["full"]["p99_ms"]] for r in runs],
        "aiosqlite round trip, median ms": statistics.median(
            r["round_trip"]["aiosqlite_median_ms"] for r in runs),
        "reference the same statement direct, median ms": statistics.median(
            r["round_trip"]["direct_median_ms"] for r in runs),
    }
    report("summary", summary)
    return summary


def parser() -> argparse.ArgumentParser:
    """This script's options (``python -m bench`` reuses them)."""
    options = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_argument("--runs", type=int, default=3)
    options.add_argument("--commits", type=int, default=500)
    options.add_argument("--folder", help="a folder on the disk to measure (default: the temp dir)")
    return options


if __name__ == "__main__":
    main(parser().parse_args())
