"""Noise control through ``notifybot serve`` and the stand-ins: silences made on the command line
while the server runs, and a burst of one job folded into one Slack message."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from tests.integration.conftest import StandIns
from tests.integration.service import EXPORT_KEY, Service
from tests.polling import eventually
from tests.standins.telegram_api import PRIVATE_CHAT


def status_update(job: int, before: int, after: int) -> dict[str, Any]:
    return {"export_key": EXPORT_KEY, "event": "job.status.updated", "job": job,
            "company_id": 1, "user_name": "Sam Taylor",
            "data": {"NUMBER": job, "JOB_NAME": f"Tour {job}", "STATUS": after},
            "changes": {"STATUS": {"from": before, "to": after}}}


def lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines()]


async def test_a_silence_mutes_one_channel_and_one_job_until_expired(
        service: Service, standins: StandIns) -> None:
    made = await service.cli("silence", "add", "team", "--when", "job=15471", "--for", "1h",
                             "--comment", "re-keying")
    assert made.returncode == 0, made.stderr
    silence_id = int(made.stdout)
    [listed] = lines((await service.cli("silence", "list", "--json")).stdout)
    assert (listed["id"], listed["channel"], listed["when"]) == (silence_id, "team",
                                                                 {"job": 15471})

    assert (await service.post(status_update(15471, 1, 2))).status_code == 202
    assert (await service.post(status_update(15472, 1, 2))).status_code == 202
    await eventually(lambda: service.stdout.count("[log] ") == 2, what="both on the console")
    [slack] = await eventually(lambda: standins.slack.messages, what="the unmuted job on Slack")
    assert slack.text is not None and "15472" in slack.text
    telegram = await standins.telegram.wait_for_messages(2)  # only Slack was muted
    assert sorted("15471" in m.plain_text for m in telegram) == [False, True]
    muted = lines((await service.cli("deliveries", "--status", "silenced", "--json")).stdout)
    assert [(d["channel"], d["event_id"]) for d in muted] == [("team", 1)]
    assert f"silence {silence_id}" in muted[0]["note"]

    assert (await service.cli("silence", "expire", str(silence_id))).returncode == 0
    assert lines((await service.cli("silence", "list", "--json")).stdout) == []

    assert (await service.post(status_update(15471, 2, 3))).status_code == 202  # at once
    await eventually(lambda: any("15471" in (m.text or "") for m in standins.slack.messages),
                     what="job 15471 heard again on Slack")
    assert len(lines((await service.cli("deliveries", "--status", "silenced",
                                        "--json")).stdout)) == 1


async def test_three_quick_updates_of_a_job_become_one_slack_message(standins: StandIns) -> None:
    config = standins.config()
    text = config.read_text(encoding="utf-8")
    config.write_text(text.replace('  [[channels.team.subscriptions]]\n  events = ["job.*"]\n',
                                   '  [[channels.team.subscriptions]]\n  events = ["job.*"]\n'
                                   '  group_wait = "1s"\n'), encoding="utf-8")
    service = await standins.service(config).start()
    try:
        body = {"export_key": EXPORT_KEY, "event": "job.updated", "job": 15471, "company_id": 1,
                "user_name": "Sam Taylor", "data": {"NUMBER": 15471, "JOB_NAME": "Tour"}}
        for field, before, after in (("VENUE", "Hall", "Barrowland"),
                                     ("OUT_DATE", "2026-06-09 09:00:00", "2026-06-10 09:00:00"),
                                     ("CLIENT_REF", "PO-1", "PO-2")):
            update = {**body, "changes": {field: {"from": before, "to": after}}}
            assert (await service.post(update)).status_code == 202
        [message] = await eventually(lambda: standins.slack.messages, within=15,
                                     what="the folded message")
        everything = json.dumps({"text": message.text, "blocks": message.blocks},
                                ensure_ascii=False)
        assert message.text is not None and "(3 updates: Client ref, Out, Venue)" in message.text
        assert all(word in everything for word in ("Barrowland", "PO-2", "Client ref"))
        await eventually(lambda: service.stdout.count("[log] ") == 3, what="the console's 3")
        assert len(standins.slack.messages) == 1
    finally:
        await service.terminate()


DIGEST = """
[server]
database = "sqlite:///{db}"
timezone = "Europe/London"
[hirehop]
export_key = "${{HIREHOP_EXPORT_KEY}}"
[delivery]
poll_interval = 0.2
[channels.accounts]
type = "telegram"
token = "${{TELEGRAM_BOT_TOKEN}}"
chat_id = "{chat_id}"
base_url = "{telegram_url}"
thread = "none"
  [[channels.accounts.subscriptions]]
  events = ["invoice.status.updated"]
  when = {{ "changes.STATUS.to" = "Paid" }}
  digest = {{ at = "{at}" }}
"""


async def test_five_paid_invoices_and_a_kill_9_make_one_digest_with_each_once(
        standins: StandIns) -> None:
    config = standins.tmp / "digest.toml"
    # The daily window closes 14 s from now (times may name seconds): long enough for
    # a kill and a restart and for the last event to be routed into this window (1-3.5 s
    # with the suite's 4 workers busy; over 8 s once, on a machine at half the speed),
    # short enough not to wait for a minute's end.
    london = ZoneInfo("Europe/London")
    closes = datetime.now(london) + timedelta(seconds=14)
    config.write_text(DIGEST.format(db=standins.tmp / "digest.db", chat_id=PRIVATE_CHAT,
                                    telegram_url=standins.telegram.base_url,
                                    at=f"{closes:%H:%M:%S}"), encoding="utf-8")

    def paid(number: int) -> dict[str, Any]:
        return {"export_key": EXPORT_KEY, "event": "invoice.status.updated", "company_id": 1,
                "job": 17000 + number, "user_name": "Sam Taylor",
                "data": {"NUMBER": f"INV-{number}", "STATUS": 3, "JOB_ID": 17000 + number},
                "changes": {"STATUS": {"from": 2, "to": 3}}}

    first = await standins.service(config).start()
    for number in (1, 2, 3):
        assert (await first.post(paid(number))).status_code == 202
    first.kill()
    second = await standins.service(config).start()
    try:
        for number in (4, 5):
            assert (await second.post(paid(number))).status_code == 202
        assert datetime.now(london) < closes, "too slow: the window closed before the 5th"

        def invoices() -> list[str]:
            return [line for m in standins.telegram.messages for line in m.plain_text.splitlines()
                    if "INV-" in line]

        await eventually(lambda: len(invoices()) >= 5, within=60, every=0.2,
                         what="the digest of five invoices (sent when the window closes)")
        assert len(standins.telegram.messages) == 1, "one digest for the window"
        assert sorted(line.split("INV-")[1][0] for line in invoices()) == ["1", "2", "3", "4", "5"]
        if len(standins.telegram.messages) == 1:
            assert standins.telegram.messages[0].plain_text.startswith("5 invoices paid since ")
    finally:
        await second.terminate()


async def test_a_message_outside_active_hours_waits_for_the_opening(standins: StandIns) -> None:
    london = ZoneInfo("Europe/London")
    now = datetime.now(london)
    # Hours may name seconds too: the window opens a few seconds from now, so the test
    # sees "nothing before" and "within seconds after" without waiting for a minute.
    # What comes before the opening took 1.5-3 s with the suite's 4 workers busy, and
    # over 6 s once on a machine at half the speed with a benchmark running beside.
    opens = (now + timedelta(seconds=10)).replace(microsecond=0)
    config = standins.config()
    text = config.read_text(encoding="utf-8")
    config.write_text(text.replace('[channels.team]\n', '[channels.team]\nhours = "'
                                   f'{opens:%H:%M:%S}-{opens + timedelta(hours=2):%H:%M:%S}"\n'),
                      encoding="utf-8")
    service = await standins.service(config).start()
    try:
        assert (await service.post(status_update(15471, 1, 2))).status_code == 202
        await eventually(lambda: "[log] " in service.stdout, what="the console, always open")
        listed = lines((await service.cli("deliveries", "--json")).stdout)
        [held] = [d for d in listed if d["channel"] == "team"]
        assert held["not_before"] == opens.timestamp() and held["status"] == "pending"
        assert standins.slack.messages == []
        assert datetime.now(london) < opens, "too slow: the window opened before the checks"
        [message] = await eventually(lambda: standins.slack.messages, within=90, every=0.2,
                                     what="the held message once the window opens")
        arrived = datetime.now(london)
        assert opens <= arrived < opens + timedelta(seconds=10)
        assert message.text is not None and "15471" in message.text
    finally:
        await service.terminate()
