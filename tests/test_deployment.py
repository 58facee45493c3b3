"""The deployment files, checked as far as this machine allows (docs/deployment.md says how far).

No container engine runs here, so the Dockerfile is parsed, not built, and its
health check command is run against a stand-in ``/healthz``; compose.yaml is
parsed as YAML (and validated by ``docker-compose config`` where that is
installed); the systemd unit goes through ``systemd-analyze verify``.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).parents[1]


def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) per instruction, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    pairs = []
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            word, _, rest = line.strip().partition(" ")
            pairs.append((word.upper(), rest.strip()))
    return pairs


def instruction(name: str) -> list[str]:
    return [args for word, args in dockerfile() if word == name]


def test_the_image_is_slim_unprivileged_and_keeps_state_on_volumes() -> None:
    [base] = instruction("FROM")
    assert re.fullmatch(r"python:3\.1[1-9]-slim(-\w+)?", base)
    [user] = instruction("USER")
    assert user not in ("root", "0") and "useradd --system" in " ".join(instruction("RUN"))
    [volumes] = instruction("VOLUME")
    assert json.loads(volumes) == ["/etc/notifybot", "/var/lib/notifybot"]
    env = " ".join(instruction("ENV"))
    assert "NOTIFYBOT_CONFIG=/etc/notifybot/subscriptions.toml" in env
    assert "NOTIFYBOT_DATABASE=sqlite:////var/lib/notifybot/notifybot.db" in env
    [cmd] = instruction("CMD")
    assert json.loads(cmd) == ["notifybot", "serve", "--bind", "0.0.0.0:8080"]
    assert instruction("EXPOSE") == ["8080"]
    for copied in instruction("COPY"):
        for source in shlex.split(copied)[:-1]:
            assert (ROOT / source).exists(), f"COPY {source}: not in the repository"


def healthcheck_command() -> list[str]:
    [check] = instruction("HEALTHCHECK")
    exec_form = check[check.index("CMD") + 3:].strip()
    command = json.loads(exec_form)
    assert "/healthz" in command[-1]
    return [sys.executable, *command[1:]]


class _Health(BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        self.send_response(self.status if self.path == "/healthz" else 404)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        return None


@pytest.fixture
def health() -> Iterator[tuple[int, type[_Health]]]:
    handler = type("Handler", (_Health,), {})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], handler
    finally:
        server.shutdown()
        server.server_close()


def test_the_health_check_passes_on_200_and_fails_otherwise(health: tuple[int, type[_Health]]) -> None:
    port, handler = health
    command = [part.replace("127.0.0.1:8080", f"127.0.0.1:{port}") for part in healthcheck_command()]
    assert subprocess.run(command, capture_output=True, check=False, timeout=30).returncode == 0
    handler.status = 503  # storage failing
    assert subprocess.run(command, capture_output=True, check=False, timeout=30).returncode != 0


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text())
    return loaded


def test_compose_runs_two_instances_on_one_postgresql() -> None:
    services = compose()["services"]
    instances = {name: s for name, s in services.items() if name.startswith("notifybot")}
    assert len(instances) == 2
    ports = set()
    for service in instances.values():
        assert service["build"] == "." and service["restart"] == "always"
        assert service["depends_on"]["postgres"]["condition"] == "service_healthy"
        url = service["environment"]["NOTIFYBOT_DATABASE"]
        assert url.startswith("postgresql://") and "@postgres:5432/" in url
        assert "./subscriptions.toml:/etc/notifybot/subscriptions.toml:ro" in service["volumes"]
        assert (ROOT / "deploy" / "notifybot.env.example").exists()
        ports.update(p.split(":")[-1] for p in service["ports"])
    assert ports == {"8080"}, "the port the image serves on"
    postgres = services["postgres"]
    assert postgres["restart"] == "always" and "pg_isready" in " ".join(postgres["healthcheck"]["test"])


@pytest.mark.skipif(shutil.which("docker-compose") is None,
                    reason="docker-compose is not installed here (apt-get install docker-compose)")
def test_compose_file_passes_docker_compose_config(tmp_path: Path) -> None:
    env = tmp_path / "notifybot.env"
    env.write_text("HIREHOP_EXPORT_KEY=x\n")
    shutil.copy(ROOT / "compose.yaml", tmp_path / "compose.yaml")
    result = subprocess.run(["docker-compose", "-f", str(tmp_path / "compose.yaml"), "config", "-q"],
                            capture_output=True, text=True, check=False, timeout=60, cwd=tmp_path,
                            env={**os.environ, "POSTGRES_PASSWORD": "pw"})
    assert result.returncode == 0, result.stderr


@pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                    reason="systemd-analyze is not installed here")
def test_the_systemd_unit_verifies_and_restarts_always(tmp_path: Path) -> None:
    text = (ROOT / "deploy" / "notifybot.service").read_text()
    assert "\nRestart=always\n" in text and "\nStartLimitIntervalSec=0\n" in text
    for option in ("NoNewPrivileges=yes", "ProtectSystem=strict", "ProtectHome=yes",
                   "PrivateTmp=yes", "CapabilityBoundingSet=\n", "SystemCallFilter=@system-service"):
        assert f"\n{option}" in text
    # verify wants the programs to exist: point them at this checkout's notifybot.
    notifybot = Path(sys.executable).parent / "notifybot"
    unit = tmp_path / "notifybot.service"
    unit.write_text(text.replace("/opt/notifybot/bin/notifybot", str(notifybot)))
    result = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True,
                            check=False, timeout=60)
    problems = [line for line in (result.stdout + result.stderr).splitlines()
                if "notifybot.service" in line]
    assert result.returncode == 0 and problems == [], result.stdout + result.stderr
