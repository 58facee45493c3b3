"""Someone always hears (``notifybot serve`` against the stand-ins, SQLite and PostgreSQL).

A revoked Slack token: every message reaches the on-call email instead, naming
the channel and ``invalid_auth``; the dead deliveries stay listed; ``/healthz``
says degraded. A channel pointed at a closed port escalates after
``escalate_after``. A job's MANAGER mapped to a person is mentioned on Slack and
Telegram.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from email.message import EmailMessage
from pathlib import Path

import httpx
import pytest

from tests.integration.conftest import SMTP_PASSWORD, SMTP_USER, StandIns, fresh_database
from tests.integration.service import EXPORT_KEY, Service, free_port
from tests.polling import eventually

CONFIG = """
[server]
database = "{database}"

[hirehop]
export_key = "${{HIREHOP_EXPORT_KEY}}"

[delivery]
backoff_initial = 0.2
backoff_max = 0.5
poll_interval = 0.1
max_attempts = 1000

[people.sam]
names = ["Sam Taylor"]
slack = "U0123ABCD"
telegram = "sam_t"
email = "sam@example.com"

[channels.team]
type = "slack"
token = "{slack_token}"
channel = "C0GENERAL"
base_url = "{slack_url}"
pace = 0
fallback = "oncall"
  [[channels.team.subscriptions]]
  events = ["job.*"]
  mention = ["manager"]

[channels.warehouse]
type = "telegram"
token = "{telegram_token}"
chat_id = "42"
base_url = "{telegram_url}"
timeout = 2
pace = 0
fallback = "oncall"
escalate_after = "2s"
  [[channels.warehouse.subscriptions]]
  events = ["job.*"]
  mention = ["manager"]

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
thread = "none"
"""


def job(number: int, manager: str = "Sam Taylor") -> dict[str, object]:
    return {"export_key": EXPORT_KEY, "event": "job.status.updated", "job": number,
            "user_name": "Jo Reid", "company_id": 1,
            "data": {"JOB_NAME": f"Tour {number}", "MANAGER": manager, "STATUS": 2},
            "changes": {"STATUS": {"from": 1, "to": 2}}}


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'notifybot.db'}"
        return
    async with fresh_database("nbhop") as url:
        yield url


async def serve(standins: StandIns, database: str, *, slack_token: str | None = None,
                telegram_url: str | None = None) -> Service:
    assert standins.smtp.certificate is not None
    path = standins.tmp / "subscriptions.toml"
    path.write_text(CONFIG.format(
        database=database, slack_token=slack_token or standins.slack.token,
        slack_url=standins.slack.base_url, telegram_token=standins.telegram.token,
        telegram_url=telegram_url or standins.telegram.base_url, smtp_port=standins.smtp.port,
        ca_file=standins.smtp.certificate.ca_file))
    service = Service(path, env={"SMTP_USER": SMTP_USER, "SMTP_PASSWORD": SMTP_PASSWORD})
    return await service.start()


@pytest.fixture
async def services() -> AsyncIterator[list[Service]]:
    started: list[Service] = []
    yield started
    for service in started:
        if service.process is not None and service.process.poll() is None:
            await service.terminate()


def text_of(mail: EmailMessage) -> str:
    return str(mail.get_body(("plain",)).get_content()).replace("\r\n", "\n")  # type: ignore[union-attr]


async def get(service: Service, path: str) -> httpx.Response:
    async with httpx.AsyncClient() as client:
        return await client.get(f"{service.url}{path}", timeout=5)


async def health(service: Service) -> dict[str, object]:
    answer = await get(service, "/healthz")
    assert answer.status_code == 200  # degraded is not down: the process runs
    return dict(answer.json())


async def test_a_revoked_slack_token_sends_every_message_to_the_oncall_email(
        standins: StandIns, database: str, services: list[Service]) -> None:
    service = await serve(standins, database, slack_token="xoxb-revoked-token")
    services.append(service)
    for number in (101, 102, 103):
        assert (await service.post(job(number))).status_code == 202

    mails = await standins.smtp.wait_for(3, within=20)
    for mail in mails:
        subject, text = str(mail.message["Subject"]), text_of(mail.message)
        assert subject.startswith("could not reach Slack C0GENERAL (channel team): invalid_auth")
        assert text.startswith("could not reach Slack C0GENERAL (channel team): invalid_auth\n")
        assert "xoxb-revoked-token" not in text + subject  # never a secret
        # The job's manager, mentioned on Slack, is copied on the email instead.
        assert mail.message["Cc"] == "sam@example.com"
        assert sorted(mail.rcpt_tos) == ["oncall@example.com", "sam@example.com"]
        assert text.endswith("\ncc Sam Taylor\n")
    assert sorted(str(m.message["Subject"]).split("Tour ")[1][:3] for m in mails) == [
        "101", "102", "103"]
    assert not standins.slack.messages

    listed = await service.cli("deliveries", "--status", "dead")
    assert listed.returncode == 0, listed.stderr
    dead_rows = [line for line in listed.stdout.splitlines() if " team " in f" {line} "]
    assert len(dead_rows) == 3, listed.stdout  # the originals stay, dead and replayable
    assert "invalid_auth" in listed.stdout
    every = await service.cli("deliveries", "--json")
    rows = [json.loads(line) for line in every.stdout.splitlines()]
    dead_ids = {r["id"] for r in rows if r["channel"] == "team" and r["status"] == "dead"}
    hops = [r for r in rows if r["channel"] == "oncall"]
    assert {(r["kind"], r["status"]) for r in hops} == {("fallback", "sent")}
    assert {r["origin_id"] for r in hops} == dead_ids

    report = await health(service)
    assert report["status"] == "degraded"
    failing = report["failing"]
    assert isinstance(failing, dict) and list(failing) == ["team"]
    assert "invalid_auth" in failing["team"]["reason"] and failing["team"]["since"]
    metrics = (await get(service, "/metrics")).text
    assert 'notifybot_channel_up{channel="team"} 0.0' in metrics
    assert 'notifybot_channel_up{channel="warehouse"} 1.0' in metrics
    assert service.stderr.count("channel team is failing") == 1  # once, not per message


async def test_a_channel_at_a_closed_port_escalates_after_escalate_after(
        standins: StandIns, database: str, services: list[Service]) -> None:
    closed = free_port()  # nothing listens there
    service = await serve(standins, database, telegram_url=f"http://127.0.0.1:{closed}/bot")
    services.append(service)
    assert (await service.post(job(201))).status_code == 202

    [mail] = await standins.smtp.wait_for(1, within=20)
    subject = str(mail.message["Subject"])
    assert subject.startswith("this message has been waiting ")
    assert "for Telegram chat 42 (channel warehouse) and is still being retried" in subject
    assert "Tour 201" in text_of(mail.message)
    await eventually(lambda: standins.slack.messages, what="the Slack message")  # others unharmed

    report = await health(service)
    assert report["status"] == "degraded" and list(report["failing"]) == ["warehouse"]  # type: ignore[call-overload]

    async def original_pending() -> bool:  # between attempts; a snapshot may catch it sending
        listed = await service.cli("deliveries", "--status", "pending")
        return any(" warehouse " in f" {line} " for line in listed.stdout.splitlines())

    await eventually(original_pending, within=10, what="the original, pending: it keeps trying")


async def test_a_manager_mapped_to_a_person_is_mentioned_on_slack_and_telegram(
        standins: StandIns, services: list[Service]) -> None:
    service = await serve(standins, f"sqlite:///{standins.tmp / 'n.db'}")
    services.append(service)
    assert (await service.post(job(301, manager="  sam taylor "))).status_code == 202
    assert (await service.post(job(302, manager="<!channel> Alex"))).status_code == 202

    await eventually(lambda: len(standins.slack.messages) == 2, what="2 Slack messages")
    by_job = {("301" in json.dumps(m.blocks)): m for m in standins.slack.messages}
    mapped, unmapped = by_job[True], by_job[False]
    assert "<@U0123ABCD>" in (mapped.text or "")
    assert mapped.blocks is not None and mapped.blocks[-1]["elements"][0]["text"] == \
        "cc <@U0123ABCD>"
    assert "<!channel>" not in json.dumps([unmapped.text, unmapped.blocks])
    assert "cc &lt;!channel&gt; Alex" in (unmapped.text or "")

    sent = await standins.telegram.wait_for_messages(2)
    texts = sorted(m.plain_text for m in sent)
    assert any(t.endswith("\n\ncc @sam_t") for t in texts)
    assert any(t.endswith("\n\ncc <!channel> Alex") for t in texts)  # plain text, no mention
    report = await health(service)
    assert report["status"] == "ok" and "failing" not in report
