"""``notifybot serve`` as a real process, for tests that talk to it over real HTTP."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

from tests.polling import eventually

EXPORT_KEY = "EXAMPLEKEY123"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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
        await eventually(self._healthy, within=20, what=f"notifybot serve on {self.url}")
        return self

    async def _healthy(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"notifybot serve exited {self.process.returncode}:\n{self.stderr}")
        try:
            async with httpx.AsyncClient() as client:
                return (await client.get(f"{self.url}/healthz", timeout=1)).status_code == 200
        except httpx.TransportError:
            return False

    async def post(self, body: bytes | str | dict[str, Any],
                   content_type: str = "application/json") -> httpx.Response:
        if isinstance(body, dict):
            body = json.dumps(body)
        async with httpx.AsyncClient() as client:
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
