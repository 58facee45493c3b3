"""Noise control through ``notifybot serve`` and the stand-ins: silences made on the command line
while the server runs, and a burst of one job folded into one Slack message."""

from __future__ import annotations

import json
from typing import Any

from tests.integration.conftest import StandIns
from tests.integration.service import EXPORT_KEY, Service
from tests.polling import eventually


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
                                   '  group_wait = "2s"\n'), encoding="utf-8")
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
