"""Conversations through the real process: one thread per job on Slack, Telegram and email.

A job's created, status, invoice and later events form one Slack thread, one
Telegram reply chain and one email conversation with one subject; the root ends
showing the latest status; another job has its own root; the thread survives a
restart; deleting the roots loses nothing and makes nothing dead.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from tests.integration.conftest import SAMPLES, SLACK_CHANNEL, StandIns
from tests.integration.service import Service
from tests.polling import eventually

CONFIG = """
[server]
database = "sqlite:///{database}"

[hirehop]
export_key = "${{HIREHOP_EXPORT_KEY}}"

[delivery]
backoff_initial = 0.2
backoff_max = 1.0
poll_interval = 0.1

[channels.team]
type = "slack"
token = "${{SLACK_BOT_TOKEN}}"
channel = "{slack_channel}"
base_url = "{slack_url}"
pace = 0
broadcast = "status"
  [[channels.team.subscriptions]]
  events = ["job.*", "invoice.*"]

[channels.warehouse]
type = "telegram"
token = "${{TELEGRAM_BOT_TOKEN}}"
chat_id = "{chat_id}"
base_url = "{telegram_url}"
pace = 0
  [[channels.warehouse.subscriptions]]
  events = ["job.*", "invoice.*"]

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
  events = ["job.*", "invoice.*"]
"""

STATUS = json.loads((SAMPLES / "job.status.updated.constructed.json").read_text())
CREATED = json.loads((SAMPLES / "job.created.constructed.json").read_text())
INVOICE = json.loads((SAMPLES / "invoice.status.updated.constructed.json").read_text())


def config(standins: StandIns) -> Path:
    from tests.standins.telegram_api import PRIVATE_CHAT

    assert standins.smtp.certificate is not None
    path = standins.tmp / "threads.toml"
    path.write_text(CONFIG.format(
        database=standins.tmp / "threads.db", slack_channel=SLACK_CHANNEL,
        slack_url=standins.slack.base_url, chat_id=PRIVATE_CHAT,
        telegram_url=standins.telegram.base_url, smtp_port=standins.smtp.port,
        ca_file=standins.smtp.certificate.ca_file))
    return path


def event(sample: dict[str, Any], job: int, *, moves: tuple[int, int] | None = None,
          at: str = "2026-05-12 13:04:17") -> dict[str, Any]:
    body = copy.deepcopy(sample)
    body["time"] = at
    body["job"] = job
    body["data"]["NUMBER"] = job
    if moves is not None:
        body["data"]["STATUS"] = moves[1]
        body["changes"] = {"STATUS": {"from": moves[0], "to": moves[1]}}
    return body


async def post_all(service: Service, *bodies: dict[str, Any]) -> None:
    for body in bodies:
        assert (await service.post(body)).status_code == 202


async def test_a_jobs_events_are_one_thread_per_channel_kept_current_across_a_restart(
        standins: StandIns) -> None:
    path = config(standins)
    service = await standins.service(path).start()
    try:
        await _a_jobs_events(standins, service, path)
    finally:
        if service.process is not None and service.process.poll() is None:
            await service.terminate()


async def _a_jobs_events(standins: StandIns, service: Service, path: Path) -> None:
    slack, telegram, smtp = standins.slack, standins.telegram, standins.smtp
    await post_all(service, event(CREATED, 15471))
    await eventually(lambda: len(slack.messages) == 1 and len(telegram.messages) == 1,
                     what="the roots")
    await post_all(service, event(STATUS, 15471, moves=(1, 2), at="2026-05-12 13:05:00"),
                   event(INVOICE, 15471, at="2026-05-12 13:06:00"),
                   event(STATUS, 20000, moves=(1, 2), at="2026-05-12 13:07:00"))
    await eventually(lambda: len(slack.messages) == 4 and len(telegram.messages) == 4,
                     what="four messages on each chat")
    assert await service.terminate() == 0
    await service.start()  # the same configuration again: the thread survives a restart
    await post_all(service, event(STATUS, 15471, moves=(2, 5), at="2026-05-12 14:00:00"))
    await eventually(lambda: len(slack.messages) == 5 and len(telegram.messages) == 5
                     and len(smtp.messages) == 5, what="five messages on every channel")

    roots = [m for m in slack.messages if m.thread_ts is None]
    assert len(roots) == 2, "one root per job"
    root = next(r for r in roots if "15471" in (r.text or ""))
    assert len(slack.replies(root.ts)) == 3  # status, invoice, dispatched
    assert "Dispatched" in (slack.current(root.ts).text or ""), "the root shows the job now"
    # broadcast = "status": every reply here moves a status (the job's, the invoice's);
    # roots are never broadcast. (Job 20000's root may come before or after job 15471's
    # replies: two threads keep no order between them.)
    assert [m.broadcast for m in slack.messages if m.thread_ts is None] == [False, False]
    assert [m.broadcast for m in slack.messages if m.thread_ts is not None] == [True] * 3

    tg_roots = [m for m in telegram.messages if m.reply_to is None]
    assert len(tg_roots) == 2
    tg_root = next(r for r in tg_roots if "15471" in r.plain_text)
    assert len(telegram.replies(tg_root.message_id)) == 3
    assert "Dispatched" in telegram.current(tg_root.message_id).plain_text

    threads = smtp.threads()
    assert sorted(len(mails) for mails in threads.values()) == [1, 4]
    [job_mails] = [mails for mails in threads.values() if len(mails) == 4]
    # One subject for the whole conversation: the root's, even when a later event
    # names the job differently (or, like an invoice, not at all).
    assert {m.message["Subject"] for m in job_mails} == {
        '[HireHop] Job 15471 "Corporate AV – Café launch"'}


async def test_deleted_roots_lose_nothing_and_make_nothing_dead(standins: StandIns) -> None:
    slack, telegram = standins.slack, standins.telegram
    service = await standins.service(config(standins)).start()
    try:
        await post_all(service, event(CREATED, 15471))
        await eventually(lambda: len(slack.messages) == 1 and len(telegram.messages) == 1,
                         what="the roots")
        slack.delete_message(slack.messages[0].ts)
        telegram.delete_message(telegram.messages[0].message_id)
        await post_all(service, event(STATUS, 15471, moves=(1, 2)),
                       event(STATUS, 15471, moves=(2, 3), at="2026-05-12 13:10:00"))
        await eventually(lambda: len(slack.messages) == 3 and len(telegram.messages) == 3,
                         what="both messages after the deletions")
        # The first after the deletion starts a new root; the next replies to it.
        assert [m.thread_ts is None for m in slack.messages] == [True, True, False]
        assert slack.messages[2].thread_ts == slack.messages[1].ts
        assert [m.reply_to for m in telegram.messages] == [
            None, None, telegram.messages[1].message_id]
        dead = await service.cli("deliveries", "--status", "dead", "--json")
        assert dead.stdout.strip() == "", dead.stdout
    finally:
        await service.terminate()
