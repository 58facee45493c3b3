"""Stand-ins for Slack, Telegram and SMTP on loopback, and a configuration that points at them."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from tests.integration.service import InProcessService, Service
from tests.standins.slack_api import SlackStandIn
from tests.standins.smtp import SMTPStandIn, make_certificate
from tests.standins.telegram_api import PRIVATE_CHAT, TelegramStandIn
from tests.unit.store.conftest import admin_connection, database_url

SAMPLES = Path(__file__).parents[2] / "samples"
SMTP_USER, SMTP_PASSWORD = "notifybot", "smtp-secret-password"
SLACK_CHANNEL = "C0GENERAL"

CONFIG = """
[server]
database = "{database}"
timezone = "Europe/London"

[hirehop]
export_key = "${{HIREHOP_EXPORT_KEY}}"
currency = "GBP"

[delivery]
backoff_initial = 0.2
backoff_max = 1.0
poll_interval = 0.1
lease = {lease}

[channels.log]
type = "console"
  [[channels.log.subscriptions]]
  events = ["*"]

[channels.team]
type = "slack"
token = "${{SLACK_BOT_TOKEN}}"
channel = "{slack_channel}"
base_url = "{slack_url}"
timeout = 3
pace = {pace}
  [[channels.team.subscriptions]]
  events = ["job.*"]

[channels.warehouse]
type = "telegram"
token = "${{TELEGRAM_BOT_TOKEN}}"
chat_id = "{chat_id}"
base_url = "{telegram_url}"
timeout = 3
pace = {pace}
  [[channels.warehouse.subscriptions]]
  events = ["job.status.updated", "contact.*"]

[channels.oncall]
type = "email"
host = "127.0.0.1"
port = {smtp_port}
security = "starttls"
ca_file = "{ca_file}"
username = "${{SMTP_USER}}"
password = "${{SMTP_PASSWORD}}"
from = "notifybot@example.com"
to = ["oncall@example.com"]
  [[channels.oncall.subscriptions]]
  events = ["invoice.*"]
"""


@dataclass
class StandIns:
    slack: SlackStandIn
    telegram: TelegramStandIn
    smtp: SMTPStandIn
    tmp: Path

    def config(self, *, pace: float = 0.0, chat_id: int | str = PRIVATE_CHAT,
               database: str | None = None, lease: float = 60.0) -> Path:
        assert self.smtp.certificate is not None
        path = self.tmp / "subscriptions.toml"
        path.write_text(CONFIG.format(
            database=database or f"sqlite:///{self.tmp / 'notifybot.db'}", lease=lease,
            slack_url=self.slack.base_url,
            slack_channel=SLACK_CHANNEL, telegram_url=self.telegram.base_url, chat_id=chat_id,
            smtp_port=self.smtp.port, ca_file=self.smtp.certificate.ca_file, pace=pace))
        return path

    def service(self, config: Path, *args: str) -> Service:
        """``notifybot serve`` as a process: for signals, kill -9 and the command's flags."""
        return Service(config, args=args, env=self.secrets())

    def app(self, config: Path) -> InProcessService:
        """The same service in this process: for what it does with webhooks."""
        return InProcessService(config, env=self.secrets())

    def secrets(self) -> dict[str, str]:
        return {"SLACK_BOT_TOKEN": self.slack.token, "TELEGRAM_BOT_TOKEN": self.telegram.token,
                "SMTP_USER": SMTP_USER, "SMTP_PASSWORD": SMTP_PASSWORD}


@pytest.fixture
async def standins(tmp_path: Path) -> AsyncIterator[StandIns]:
    certificate = make_certificate(tmp_path)
    async with (SlackStandIn() as slack, TelegramStandIn() as telegram,
                SMTPStandIn(certificate=certificate, users={SMTP_USER: SMTP_PASSWORD}) as smtp):
        yield StandIns(slack, telegram, smtp, tmp_path)


@pytest.fixture
async def service(standins: StandIns) -> AsyncIterator[InProcessService]:
    """The service on the stand-ins' configuration, in this process."""
    running = await standins.app(standins.config()).start()
    yield running
    await running.terminate()


@asynccontextmanager
async def fresh_database(prefix: str = "nbit") -> AsyncIterator[str]:
    """A new database on the PostgreSQL test server, dropped afterwards: its URL.

    Several ``notifybot serve`` processes can share it, as instances would.
    """
    admin = await admin_connection()
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    await admin.execute(f"CREATE DATABASE {name}")
    try:
        yield urlunsplit(urlsplit(database_url())._replace(path=f"/{name}"))
    finally:
        await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        await admin.close()
