"""``notifybot serve`` as a real process, for tests that talk to it over real HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

from notifybot import cli, logs
from notifybot.app import create_app
from notifybot.channels import build_sender
from notifybot.channels.console import ConsoleSender
from notifybot.config import load
from tests.polling import eventually

EXPORT_KEY = "EXAMPLEKEY123"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def loopback_client() -> httpx.AsyncClient:
    """A client for plain HTTP on loopback. ``verify=False``: no TLS context is built, which
    costs ~0.1 s of CPU per client, taken from the process under test on a busy machine."""
    return httpx.AsyncClient(verify=False)  # noqa: S501 - http:// to 127.0.0.1 only


class Service:
    """One ``notifybot serve`` process on a free port, with its output kept in files."""

    def __init__(self, config: Path, env: dict[str, str] | None = None,
                 args: tuple[str, ...] = ()) -> None:
        self.config = config
        self.args = args
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "PTB_TIMEDELTA": "1", "HIREHOP_EXPORT_KEY": EXPORT_KEY,
                    **(env or {})}
        self.stdout_path = config.parent / f"serve-{self.port}.out"
        self.stderr_path = config.parent / f"serve-{self.port}.err"
        self.process: subprocess.Popen[bytes] | None = None

    async def start(self) -> Service:
        with self.stdout_path.open("ab") as out, self.stderr_path.open("ab") as err:
            self.process = subprocess.Popen(  # noqa: ASYNC220 - a long-lived child, not awaited
                [sys.executable, "-m", "notifybot", "serve", "-c", str(self.config),
                 "--bind", f"127.0.0.1:{self.port}", *self.args],
                stdout=out, stderr=err, env=self.env, cwd=self.config.parent)
        async with loopback_client() as client:
            try:
                await eventually(lambda: self._healthy(client), within=20, every=0.05,
                                 what=f"notifybot serve on {self.url}")
            except BaseException:
                self.stop_now()  # never left running behind a failed test
                raise
        return self

    async def _healthy(self, client: httpx.AsyncClient) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"notifybot serve exited {self.process.returncode}:\n{self.stderr}")
        try:
            return (await client.get(f"{self.url}/healthz", timeout=1)).status_code == 200
        except httpx.TransportError:
            return False

    async def post(self, body: bytes | str | dict[str, Any],
                   content_type: str = "application/json") -> httpx.Response:
        if isinstance(body, dict):
            body = json.dumps(body)
        async with loopback_client() as client:
            return await client.post(f"{self.url}/hirehop", content=body,
                                     headers={"Content-Type": content_type}, timeout=10)

    def signal(self, sig: signal.Signals) -> None:
        assert self.process is not None
        self.process.send_signal(sig)

    def kill(self) -> None:
        """``kill -9``: no shutdown hooks, nothing flushed."""
        assert self.process is not None
        self.process.kill()
        self.process.wait()

    def stop_now(self) -> None:
        """Kill the process if it is still running (cleanup after a failure)."""
        if self.process is not None and self.process.poll() is None:
            self.kill()

    async def terminate(self, within: float = 20) -> int:
        """SIGTERM, then wait for a clean exit; returns the exit code."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        process = self.process
        await eventually(lambda: process.poll() is not None, within=within,
                         what="notifybot serve to exit after SIGTERM")
        return int(process.returncode)

    @property
    def stdout(self) -> str:
        return self.stdout_path.read_text(encoding="utf-8", errors="replace")

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")

    async def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run another ``notifybot`` command on the same configuration."""
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "notifybot", *args, "-c", str(self.config),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=self.env,
            cwd=self.config.parent)
        out, err = await proc.communicate()
        return subprocess.CompletedProcess(args, proc.returncode or 0, out.decode(), err.decode())


class InProcessService:
    """The same app as ``notifybot serve``, run in the test's own event loop.

    For tests about what the service does with webhooks, where a process adds
    nothing but start-up time: the real configuration file, store, senders,
    router and outbox, driven through Quart's test client (the ASGI app itself,
    no socket). The console channel writes to :attr:`stdout`; notifybot's log
    records, formatted as ``serve`` formats them, go to :attr:`stderr`. Signals,
    ``kill -9`` and the command line's flags need :class:`Service`.
    """

    def __init__(self, config: Path, env: dict[str, str] | None = None) -> None:
        self.config = config
        self.env = {**os.environ, "HIREHOP_EXPORT_KEY": EXPORT_KEY, **(env or {})}
        self._console = io.StringIO()
        self._log = io.StringIO()
        self._handler = logging.StreamHandler(self._log)
        self._handler.setFormatter(logs.TextFormatter())
        self._running: Any = None
        self._client: Any = None

    async def start(self) -> InProcessService:
        config = load(self.config, environ=self.env)
        senders: dict[str, Any] = {
            name: ConsoleSender(name, stream=self._console) if chan.type == "console"
            else build_sender(name, chan.options) for name, chan in config.channels.items()}
        app = create_app(config, senders=senders, config_path=self.config)
        logger = logging.getLogger("notifybot")
        logger.addHandler(self._handler)
        logger.setLevel(logging.INFO)
        self._running = app.test_app()
        self._client = (await self._running.__aenter__()).test_client()
        return self

    async def post(self, body: bytes | str | dict[str, Any],
                   content_type: str = "application/json") -> Any:
        if isinstance(body, dict):
            body = json.dumps(body)
        data = body.encode() if isinstance(body, str) else body
        return await self._client.post("/hirehop", data=data,
                                       headers={"Content-Type": content_type})

    async def get(self, path: str) -> Any:
        return await self._client.get(path)

    async def terminate(self) -> int:
        """Stop serving as SIGTERM does: the app's shutdown hooks run."""
        try:
            await self._running.__aexit__(None, None, None)
        finally:
            logger = logging.getLogger("notifybot")
            logger.removeHandler(self._handler)
            logger.setLevel(logging.NOTSET)
        return 0

    @property
    def stdout(self) -> str:
        return self._console.getvalue()

    @property
    def stderr(self) -> str:
        return self._log.getvalue()

    async def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Another ``notifybot`` command on the same configuration, in a thread of this process."""
        out, err = io.StringIO(), io.StringIO()

        def command() -> int:
            # Only the service's own variables change, and only for the command's run:
            # the app keeps running on the event loop meanwhile.
            changed = {k: v for k, v in self.env.items() if os.environ.get(k) != v}
            saved = {k: os.environ.get(k) for k in changed}
            os.environ.update(changed)
            try:
                with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                    return cli.run([*args, "-c", str(self.config)])
            finally:
                for key, value in saved.items():
                    if value is None:
                        os.environ.pop(key, None)
                    else:
                        os.environ[key] = value

        code = await asyncio.to_thread(command)
        return subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())
