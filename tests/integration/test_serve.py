"""The service end to end: HireHop-shaped POSTs, messages checked at the stand-ins.

Most tests run the app in this process (:class:`InProcessService`: the same
configuration file, store, router, outbox and real SDK clients); the ones about
the process itself (``kill -9`` here, SIGTERM and SIGHUP in test_operations.py) start
``notifybot serve``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
from html.parser import HTMLParser
from itertools import pairwise

from tests.integration.conftest import SAMPLES, SMTP_PASSWORD, StandIns
from tests.integration.service import EXPORT_KEY, InProcessService
from tests.polling import eventually


def sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


async def test_each_sample_reaches_every_matching_channel(
    service: InProcessService, standins: StandIns
) -> None:
    for name in ("job.status.updated.constructed.json", "job.updated.constructed.json",
                 "job.created.constructed.json", "invoice.status.updated.constructed.json"):
        assert (await service.post(sample(name))).status_code == 202

    await eventually(lambda: len(standins.slack.messages) == 3, what="3 Slack messages")
    slack_texts = sorted(m.text for m in standins.slack.messages)
    assert any(t.endswith(": Provisional → Booked, by Sam Taylor") for t in slack_texts)
    assert all(m.blocks for m in standins.slack.messages), "Block Kit with a text fallback"

    [telegram] = await standins.telegram.wait_for_messages(1)
    assert telegram.plain_text.startswith(
        'Job 15471 "Summer Tour 2026 ► Glasgow backline" (Northern Lights Touring Ltd): '
        "Provisional → Booked, by Sam Taylor")
    assert telegram.parse_mode == "HTML"

    [mail] = await standins.smtp.wait_for(1)
    # One steady subject per job (the invoice's job), so mail clients thread; the change
    # leads the body.
    assert mail.message["Subject"] == "[HireHop] Job 16757"
    text = mail.message.get_body(("plain",)).get_content()
    assert text.splitlines()[0] == (
        "Invoice OT-INV-12245: Draft → Approved (by Sam Taylor) · £1,008.00")
    assert mail.message["Message-ID"]
    assert mail.message["Auto-Submitted"] == "auto-generated"
    assert mail.tls and mail.username == "notifybot"
    html = mail.message.get_body(("html",)).get_content()
    assert "<td>Draft</td><td>Approved</td>" in html

    await eventually(lambda: service.stdout.count("[log] ") == 4, what="4 console lines")
    assert "[log] Invoice OT-INV-12245: Draft → Approved (by Sam Taylor) · £1,008.00" in service.stdout


async def test_hostile_text_is_escaped_in_every_channel(
    service: InProcessService, standins: StandIns
) -> None:
    hostile = "<!channel> *bold* <script>alert(1)</script> &amp; Tom & Jerry"
    body = {"export_key": EXPORT_KEY, "event": "job.status.updated", "job": "j900",
            "user_name": hostile, "data": {"JOB_NAME": "x" * 5000, "COMPANY": hostile},
            "changes": {"STATUS": {"from": 1.0, "to": "14"}}}
    assert (await service.post(body)).status_code == 202

    [slack] = await eventually(lambda: standins.slack.messages, what="the Slack message")
    everything = json.dumps({"text": slack.text, "blocks": slack.blocks})
    assert "<!channel>" not in everything and "<script>" not in everything
    assert "&lt;!channel&gt;" in slack.text and "&amp;amp;" in slack.text
    assert "Provisional → Unknown status (14)" in slack.text
    assert "∗bold∗" in slack.text, "payload text cannot style"

    [telegram] = await standins.telegram.wait_for_messages(1)
    assert "<!channel> *bold* <script>" in telegram.plain_text, "shown literally, not as markup"
    assert len(telegram.plain_text) <= 4096

    parser = HTMLParser()
    parser.feed(telegram.text)  # the stand-in refuses unparsable entities; this is a second look
    assert "<script>" not in telegram.text


async def test_what_people_need_is_first_in_every_channel(
        service: InProcessService, standins: StandIns) -> None:
    for name in ("job.updated.cancelled.constructed.json", "invoice.paid.constructed.json",
                 "contact.person.updated.constructed.json", "payment.created.constructed.json"):
        assert (await service.post(sample(name))).status_code == 202

    [slack] = await eventually(lambda: standins.slack.messages, what="the Slack message")
    assert slack.blocks is not None and slack.blocks[0]["type"] == "header"
    assert slack.blocks[0]["text"]["text"].startswith('Job 15471 "Summer Tour 2026 ► Glasgow…" '
                                                      "(Northern Lights Touring Ltd): Booked → Cancelled")
    assert slack.blocks[1]["text"]["text"].endswith("\n…and 30 more")

    [telegram] = await standins.telegram.wait_for_messages(1)
    assert telegram.plain_text.startswith("Contact Alex Morgan updated by Sam Taylor: Email\n")

    [mail] = await standins.smtp.wait_for(1)
    # Email threads per job: the subject is the job's, the action leads the body.
    assert mail.message["Subject"] == "[HireHop] Job 16757"
    assert mail.message.get_body(("plain",)).get_content().splitlines()[0] == (
        "Invoice OT-INV-12245: Approved → Paid (by Lisa Green) · £1,008.00 · Northern Lights")

    await eventually(lambda: service.stdout.count("[log] ") == 4, what="4 console lines")
    assert "[log] Payment £1,008.00 received for INV-0077 (job 16757) by Lisa Green\n" in service.stdout
    # Values too long for one line stay in the body; a few short ones join the line.
    assert "[log] Contact Alex Morgan updated by Sam Taylor: Email\n" in service.stdout


async def test_wrong_key_and_bad_bodies_are_refused_and_nothing_is_sent(
    service: InProcessService, standins: StandIns
) -> None:
    wrong = json.loads(sample("job.updated.constructed.json"))
    wrong["export_key"] = "guess"
    assert (await service.post(wrong)).status_code == 403
    assert (await service.post(b"{not json")).status_code == 400
    assert (await service.post(sample("job.updated.constructed.json"))).status_code == 202
    await eventually(lambda: standins.slack.messages, what="the one accepted event")
    result = await service.cli("deliveries", "--json")
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert {row["event_id"] for row in rows} == {1}


async def test_a_channel_outage_is_retried_until_delivered(
    service: InProcessService, standins: StandIns
) -> None:
    standins.slack.fail_next(3, status=500)
    standins.slack.rate_limit_next(1, retry_after=1)
    assert (await service.post(sample("job.updated.constructed.json"))).status_code == 202
    await eventually(lambda: standins.slack.messages, within=20, what="delivery after the outage")
    assert standins.slack.calls.count("chat.postMessage") == 5
    result = await service.cli("deliveries", "--status", "sent", "--json")
    [row] = [json.loads(line) for line in result.stdout.splitlines() if '"team"' in line]
    assert row["attempts"] == 4, "three 500s and the success; the 429 spends no attempt"


async def test_a_permanent_error_goes_dead_and_replay_resends_it_once_fixed(
    standins: StandIns,
) -> None:
    service = await standins.app(standins.config(chat_id=777)).start()
    try:
        await service.post(sample("job.status.updated.constructed.json"))
        result = await eventually(lambda: _dead(service), within=15, what="a dead delivery")
        assert "telegram: Bad Request: chat not found" in result
        assert standins.telegram.calls.count("sendMessage") == 1, "not retried"

        standins.telegram.add_chat(777)
        replay = await service.cli("replay", "--dead")
        assert replay.returncode == 0 and "1 delivery queued again" in replay.stdout
        [message] = await standins.telegram.wait_for_messages(1, within=10)
        assert message.chat_id == 777
    finally:
        await service.terminate()


async def _dead(service: InProcessService) -> str:
    result = await service.cli("deliveries", "--status", "dead")
    return result.stdout if "chat not found" in result.stdout else ""


async def test_no_secret_reaches_logs_or_command_output(
    service: InProcessService, standins: StandIns
) -> None:
    standins.slack.token = "xoxb-a-different-token"  # now every Slack call fails: invalid_auth
    await service.post(sample("job.status.updated.constructed.json"))
    await service.post(sample("invoice.status.updated.constructed.json"))
    await eventually(lambda: "invalid_auth" in service.stderr, within=15, what="the Slack failure")
    await standins.smtp.wait_for(1)
    outputs = [service.stderr, service.stdout,
               (await service.cli("deliveries")).stdout, (await service.cli("check")).stdout]
    secrets = [EXPORT_KEY, "xoxb-standin-token", standins.telegram.token, SMTP_PASSWORD]
    for text in outputs:
        for secret in secrets:
            assert secret not in text
    db = (standins.tmp / "notifybot.db").read_bytes()
    for secret in secrets:
        assert secret.encode() not in db


async def test_kill_9_under_load_loses_nothing_and_never_resends_what_was_sent(
    standins: StandIns,
) -> None:
    # The 40 webhooks arrive at once (committed in a few group commits) and the Slack
    # channel is paced, so the kill comes with some deliveries recorded as sent and
    # others not.
    config = standins.config(lease=3, pace=0.1)  # the killed process's claims come back after 3 s
    service = await standins.service(config).start()
    try:
        base = json.loads(sample("job.updated.constructed.json"))
        responses = await asyncio.gather(*(
            service.post({**base, "job": job, "time": f"2026-05-13 08:{job:02d}:00"})
            for job in range(1, 41)))
        assert [r.status_code for r in responses] == [202] * 40
        await eventually(lambda: len(_sent_to_team(standins)) >= 5, within=20,
                         what="some deliveries recorded as sent before the kill")
    finally:
        service.stop_now()  # kill -9
    sent_before = _sent_to_team(standins)
    assert 5 <= len(sent_before) < 40, "the kill must come between the first and the last send"

    restarted = await standins.service(config).start()
    try:
        await eventually(lambda: len({m.text for m in standins.slack.messages}) == 40, within=30,
                         what="every accepted event delivered after the restart")
        texts = [m.text for m in standins.slack.messages]
        for text in sent_before:  # recorded as sent: never again (others may repeat once)
            assert texts.count(text) == 1, f"sent again after the restart: {text}"
    finally:
        restarted.stop_now()


def _sent_to_team(standins: StandIns) -> set[str]:
    with contextlib.closing(sqlite3.connect(standins.tmp / "notifybot.db")) as db:
        rows = db.execute("SELECT payload FROM deliveries WHERE channel = 'team' "
                          "AND status = 'sent'").fetchall()
    return {json.loads(payload)["text"] for (payload,) in rows}


async def test_a_burst_of_50_to_one_paced_channel_arrives_in_order_and_spaced(
    standins: StandIns,
) -> None:
    service = await standins.app(standins.config(pace=0.1)).start()
    try:
        base = json.loads(sample("job.updated.constructed.json"))
        for job in range(1, 51):
            assert (await service.post({**base, "job": job})).status_code == 202
        await eventually(lambda: len(standins.slack.messages) == 50, within=30, what="50 messages")
    finally:
        await service.terminate()
    posts = standins.slack.messages
    assert [int(m.text.split(" ")[1]) for m in posts] == list(range(1, 51)), "in order"
    assert min(b.time - a.time for a, b in pairwise(posts)) >= 0.095, "paced"
    assert standins.slack.calls.count("chat.postMessage") == 50, "one attempt each"
