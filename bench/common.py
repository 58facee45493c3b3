"""What the benchmark scripts share: processes, configurations, webhook bodies, statistics.

Every server here listens on 127.0.0.1 only, and every load loop is bounded in
count and in time (see /work/.library/env/README.md, "The network").
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import platform
import re
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import httpx

from tests.standins.slack_api import DEFAULT_TOKEN

ROOT = Path(__file__).resolve().parents[1]
# The notifybot the servers run: this checkout, or another one (an older commit in its
# own git worktree) to measure it with today's scripts, as when bisecting.
SOURCE = Path(os.environ.get("BENCH_NOTIFYBOT_SOURCE") or ROOT).resolve()
PYTHON = sys.executable
EXPORT_KEY = "BENCHKEY123"
SLACK_TOKEN = DEFAULT_TOKEN  # what the Slack stand-in accepts
_PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy")
_SAMPLE = json.loads((ROOT / "samples" / "job.status.updated.constructed.json").read_text("utf-8"))
_SAMPLE.pop("_source", None)
_SAMPLE["export_key"] = EXPORT_KEY
JOB_IN_TEXT = re.compile(r"Job (\d+)")


# -- webhook bodies -------------------------------------------------------------------------

def body(n: int, nonce: str = "", event: str = "job.status.updated") -> bytes:
    """A realistic job.status.updated webhook (~900 bytes), unique for (nonce, n): job = n."""
    payload = json.loads(json.dumps(_SAMPLE))
    payload["event"] = event
    payload["job"] = n
    payload["data"]["NUMBER"] = n
    payload["data"]["ID"] = f"j{n}"
    payload["data"]["CLIENT_REF"] = f"{nonce}-{n}"
    return json.dumps(payload).encode()


def body_template() -> str:
    """The same body with ``__N__`` for the job number and ``__NONCE__`` (for wrk's Lua)."""
    return body(999_999_999, "__NONCE__").decode().replace("999999999", "__N__")


# -- configuration --------------------------------------------------------------------------

def slack_channel(name: str, channel_id: str, base_url: str, *, pace: float = 0.0,
                  events: Sequence[str] = ("job.status.updated",)) -> str:
    events_toml = ", ".join(json.dumps(e) for e in events)
    return (f'\n[channels.{name}]\ntype = "slack"\ntoken = "${{SLACK_BOT_TOKEN}}"\n'
            f'channel = "{channel_id}"\nbase_url = "{base_url}"\ntimeout = 10\npace = {pace}\n'
            f"  [[channels.{name}.subscriptions]]\n  events = [{events_toml}]\n")


def write_config(folder: Path, channels: str, *, database: str | None = None,
                 delivery: Mapping[str, float | int] | None = None) -> Path:
    """A subscriptions.toml in ``folder``: SQLite there unless ``database`` is given."""
    folder.mkdir(parents=True, exist_ok=True)
    database = database or f"sqlite:///{folder / 'notifybot.db'}"
    lines = ["[server]", f'database = "{database}"', "", "[hirehop]",
             'export_key = "${HIREHOP_EXPORT_KEY}"', "", "[delivery]"]
    lines += [f"{k} = {v}" for k, v in (delivery or {}).items()]
    path = folder / "subscriptions.toml"
    path.write_text("\n".join(lines) + "\n" + channels, encoding="utf-8")
    return path


def environment(**extra: str) -> dict[str, str]:
    """This environment without proxies (slack-sdk ignores NO_PROXY), plus the bench secrets."""
    env = {k: v for k, v in os.environ.items() if k not in _PROXY_VARS}
    env.update({"PTB_TIMEDELTA": "1", "HIREHOP_EXPORT_KEY": EXPORT_KEY,
                "SLACK_BOT_TOKEN": SLACK_TOKEN, "PYTHONPATH": str(ROOT)})
    env.pop("NOTIFYBOT_DATABASE", None)
    env.update(extra)
    return env


# -- processes ------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Process:
    """A child process (a server) with its output in files; ``stop()`` sends SIGTERM."""

    def __init__(self, args: Sequence[str], *, cwd: Path, env: Mapping[str, str] | None = None,
                 name: str = "server") -> None:
        self.args = list(args)
        self.cwd = cwd
        self.env = dict(env or environment())
        self.name = name
        self.log = cwd / f"{name}.log"
        self.popen: subprocess.Popen[bytes] | None = None

    def start(self) -> Process:
        with self.log.open("ab") as out:
            self.popen = subprocess.Popen(self.args, cwd=self.cwd, env=self.env, stdout=out,
                                          stderr=subprocess.STDOUT)
        return self

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    async def wait_http(self, url: str, within: float = 30.0) -> None:
        """Until ``url`` answers (any status); raises if the process exits or time runs out."""
        deadline = time.monotonic() + within
        async with httpx.AsyncClient(trust_env=False) as client:
            while True:
                assert self.popen is not None
                if self.popen.poll() is not None:
                    raise RuntimeError(f"{self.name} exited {self.popen.returncode}:\n"
                                       + self.log.read_text(errors="replace")[-3000:])
                with contextlib.suppress(httpx.TransportError):
                    await client.get(url, timeout=1)
                    return
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{self.name} did not answer {url} within {within}s")
                await asyncio.sleep(0.1)

    def stop(self, within: float = 20.0) -> int | None:
        if self.popen is None or self.popen.poll() is not None:
            return None if self.popen is None else self.popen.returncode
        self.popen.send_signal(signal.SIGTERM)
        try:
            return self.popen.wait(within)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            return self.popen.wait()


def notifybot(config: Path, port: int, *, name: str = "notifybot",
              env: Mapping[str, str] | None = None) -> Process:
    """``notifybot serve`` exactly as a user runs it (default logging: INFO, text), from SOURCE.

    With ``BENCH_SQL_COUNTS`` (a file) in ``env``, bench/sqlcount counts its SQL at exit.
    """
    env = dict(env or environment())
    counting = [str(ROOT / "bench" / "sqlcount")] if env.get("BENCH_SQL_COUNTS") else []
    env["PYTHONPATH"] = os.pathsep.join([str(SOURCE), *counting])
    return Process([PYTHON, "-m", "notifybot", "serve", "-c", str(config),
                    "--bind", f"127.0.0.1:{port}"], cwd=config.parent, env=env, name=name)


async def poll(check: Callable[[], bool], within: float, every: float = 0.1) -> bool:
    """Whether ``check()`` came true within ``within`` seconds (checked every ``every``)."""
    deadline = time.monotonic() + within
    while True:
        if check():
            return True
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(every)


@contextlib.asynccontextmanager
async def profiled(pid: int, output: str | None, seconds: float | None = None) -> AsyncIterator[None]:
    """py-spy (the bench extra) sampling process ``pid`` into ``output`` (raw, folded stacks).

    Samples for ``seconds``, or until the block ends (then py-spy is interrupted and
    writes what it has). Every thread, idle samples included (``--threads --idle``), so
    that the event loop waiting for aiosqlite's thread shows; :mod:`bench.profile_top`
    summarizes the file. Nothing happens when ``output`` is None.
    """
    if output is None:
        yield
        return
    local = Path(PYTHON).parent / "py-spy"
    args = [str(local) if local.exists() else "py-spy", "record", "-p", str(pid), "-o", output,
            "-f", "raw", "-r", "200", "--threads", "--idle"]
    args += ["-d", str(int(seconds))] if seconds else []
    spy = await asyncio.create_subprocess_exec(*args, stdout=asyncio.subprocess.DEVNULL,
                                               stderr=asyncio.subprocess.DEVNULL)
    try:
        yield
    finally:
        if seconds is None and spy.returncode is None:
            spy.send_signal(signal.SIGINT)
        await spy.wait()


# -- statistics -----------------------------------------------------------------------------

def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0–100), nearest rank on sorted values; NaN when empty."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def distribution(values: Sequence[float], scale: float = 1000.0) -> dict[str, float]:
    """p50/p90/p99/p99.9/max of ``values`` times ``scale`` (seconds to ms by default)."""
    return {name: round(percentile(values, q) * scale, 2)
            for name, q in (("p50", 50), ("p90", 90), ("p99", 99), ("p99.9", 99.9), ("max", 100))}


def median(values: Iterable[float]) -> float:
    items = [v for v in values if v == v]
    return statistics.median(items) if items else float("nan")


def medians(runs: Sequence[Mapping[str, float]]) -> dict[str, float]:
    """Key by key, the median over runs."""
    return {key: round(median(run[key] for run in runs), 3) for key in runs[0]} if runs else {}


# -- reporting ------------------------------------------------------------------------------

def machine() -> str:
    """One line about the machine and the versions that matter."""
    model = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem = "?"
    with contextlib.suppress(OSError, ValueError, IndexError):
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f"{kb / 1024 / 1024:.0f} GiB"
    versions = []
    for package in ("quart", "hypercorn", "aiosqlite", "asyncpg", "slack_sdk", "aiohttp"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions.append(f"{package} {metadata.version(package)}")
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    source = "" if SOURCE == ROOT else f"; notifybot from {SOURCE}"
    return (f"{model}, {os.cpu_count()} cores, {mem}; {platform.system()} {platform.release()}; "
            f"Python {platform.python_version()}; {', '.join(versions)}; load average {load}{source}")


def report(title: str, data: Any) -> None:
    """Print a result as a titled JSON block (docs/benchmarks.md quotes these)."""
    print(f"\n== {title}")
    print(json.dumps(data, indent=2, default=str, ensure_ascii=False))
    sys.stdout.flush()
